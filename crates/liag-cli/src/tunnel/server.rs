//! `liag tunnel server`: accepts aggregated connections and forwards each to a published port.
//! SIGHUP applies a changed configuration file's published ports and link ports; SIGINT and
//! SIGTERM end the forwarded connections gracefully.

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use liag_transports::liag_tokio::{Connection, Server};

use super::{Args, ServerArgs, WS_PATH, invalid};
use crate::links::serve_rfcomm;
use crate::listeners::{LinkPorts, Listeners};
use crate::relay::relay;
use crate::service::say;
use crate::service::{self, Service, live};

const WHO: &str = "liag tunnel server";
/// How long a new connection may take to say which port it wants.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Published ports: the port a client asks for, and the address it is forwarded to.
type Published = Arc<RwLock<HashMap<u16, String>>>;

/// `port` or `target:port` → (port, target address).
fn parse_published(spec: &str) -> io::Result<(u16, String)> {
    let (target, port) = match spec.rsplit_once(':') {
        Some((target, port)) => (target.to_string(), port),
        None => ("localhost".to_string(), spec),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("{spec:?}: expected PORT or TARGET:PORT")))?;
    Ok((port, format!("{target}:{port}")))
}

fn published(ports: &[String]) -> io::Result<HashMap<u16, String>> {
    ports.iter().map(|p| parse_published(p)).collect()
}

pub(super) async fn run(args: ServerArgs, mut service: Service<Args>) -> io::Result<ExitCode> {
    let published: Published = Arc::new(RwLock::new(published(&args.ports)?));
    let tls = args.tls.config()?;
    let (server, mut listener) = Server::new(args.limits.config());
    if let Some(addr) = args.service.metrics {
        service::metrics::serve(
            addr,
            "tunnel-server",
            &service.connections,
            Some(server.clone()),
        )?;
    }
    let ports = LinkPorts {
        tcp: args.tcp,
        websocket: args.websocket,
    };
    let mut listeners =
        Listeners::start(WHO, ports, (false, WS_PATH), tls.clone(), &server).await?;
    if let Some(channel) = args.rfcomm {
        serve_rfcomm(channel, &tls, &server, WHO).await;
    }
    say!("{WHO}: publishing {:?}", read(&published));
    service::notify_ready();
    let shutdown = service.shutdown.clone();
    let monitor = live::start(args.no_monitor, WHO, &service.connections, &shutdown);
    loop {
        tokio::select! {
            incoming = listener.next() => {
                let Some(incoming) = incoming else { break };
                let label = format!("from {}", incoming.tag());
                let stream = incoming.accept();
                let (published, shutdown) = (published.clone(), shutdown.clone());
                let tracked = service.connections.track(label, stream.control());
                shutdown.clone().spawn(async move {
                    let control = stream.control();
                    let forwarded = shutdown.guard(&control, forward_to_target(stream, &published));
                    if let Some(Err(e)) = forwarded.await {
                        say!("{WHO}: {e}");
                    }
                    drop(tracked);
                });
            }
            () = shutdown.stopping() => break,
            reloaded = service.reloaded() => {
                match reloaded {
                    Ok(Args::Server(new)) => {
                        reload(&new, &published, &mut listeners).await;
                        service::restart_only(
                            WHO,
                            "TLS, limits, RFCOMM or metrics",
                            (&args, &new),
                            |a: &ServerArgs| {
                                format!("{:?}", (&a.tls, &a.limits, a.rfcomm, &a.service))
                            },
                        );
                    }
                    Ok(Args::Client(_)) => say!("{WHO}: reload: not a server's options"),
                    Err(e) => say!("{WHO}: reload: {e}; nothing changed"),
                }
                service::notify_ready();
            }
        }
    }
    // New connections are refused from here on; those forwarded end gracefully.
    drop(listener);
    if !shutdown.drain().await {
        say!("{WHO}: some connections did not end in time");
    }
    live::finish(monitor).await;
    say!("{WHO}: stopped");
    Ok(ExitCode::SUCCESS)
}

fn read(published: &Published) -> HashMap<u16, String> {
    published
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Applies what a reload can without dropping connections: published ports and the ports
/// links arrive on. Other options wait for a restart.
async fn reload(new: &ServerArgs, published: &Published, listeners: &mut Listeners) {
    match self::published(&new.ports) {
        Ok(ports) => {
            say!("{WHO}: reload: publishing {ports:?}");
            *published.write().unwrap_or_else(PoisonError::into_inner) = ports;
        }
        Err(e) => say!("{WHO}: reload: {e}; the published ports stay"),
    }
    let ports = LinkPorts {
        tcp: new.tcp,
        websocket: new.websocket,
    };
    listeners.change(ports).await;
}

async fn forward_to_target(mut stream: Connection, published: &Published) -> io::Result<()> {
    let mut header = [0u8; 2];
    tokio::time::timeout(HEADER_TIMEOUT, stream.read_exact(&mut header))
        .await
        .map_err(|_| {
            stream.control().terminate();
            io::Error::new(io::ErrorKind::TimedOut, "a client sent no port in time")
        })??;
    let port = u16::from_be_bytes(header);
    let target = read(published).get(&port).cloned();
    let Some(target) = target else {
        // Terminate, so the client learns at once that this went wrong.
        stream.control().terminate();
        return Err(invalid(format!(
            "a client asked for port {port}, which is not published"
        )));
    };
    let socket = TcpStream::connect(&target)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {target}: {e}")))?;
    socket.set_nodelay(true)?;
    say!("{WHO}: forwarding to {target}");
    relay(socket, stream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports() {
        assert_eq!(
            parse_published("5401").unwrap(),
            (5401, "localhost:5401".into())
        );
        assert_eq!(
            parse_published("db:5432").unwrap(),
            (5432, "db:5432".into())
        );
        assert!(parse_published("db:").is_err());
    }
}
