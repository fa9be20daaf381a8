//! `liag tunnel client`: listens on local ports and forwards each connection to the server
//! over a new aggregated connection. SIGHUP applies a changed configuration file's ports and
//! links (to the connections open and those made from then on); SIGINT and SIGTERM end
//! forwarded connections gracefully.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use liag_transports::liag_tokio::Connection;
use liag_transports::{Links, connect_with};

use super::{Args, ClientArgs, invalid};
use crate::links::ClientLinks;
use crate::relay::relay;
use crate::service::say;
use crate::service::{self, Connections, Service, Shutdown, live};

const WHO: &str = "liag tunnel client";

/// How long a forwarded connection waits for its first link.
const LINK_WAIT: Duration = Duration::from_secs(10);
/// How long a forwarded connection that ended waits for the connection to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A forwarding: the local port and the server's port it goes to.
type Forward = (u16, u16);

/// `SERVER_PORT:LOCAL_PORT` → (local port, server port).
fn parse_forward(spec: &str) -> io::Result<Forward> {
    spec.split_once(':')
        .and_then(|(s, l)| Some((l.parse::<u16>().ok()?, s.parse::<u16>().ok()?)))
        .ok_or_else(|| invalid(format!("{spec:?}: expected SERVER_PORT:LOCAL_PORT")))
}

fn forwards(ports: &[String]) -> io::Result<Vec<Forward>> {
    ports.iter().map(|p| parse_forward(p)).collect()
}

/// What every forwarding task shares.
#[derive(Clone)]
struct Shared {
    /// The links configured now; each connection follows them.
    links: Arc<watch::Sender<ClientLinks>>,
    shutdown: Shutdown,
    connections: Connections,
    /// Each forwarded connection's result, for `--once`.
    done: mpsc::Sender<io::Result<()>>,
    once: bool,
}

impl Shared {
    fn links(&self) -> ClientLinks {
        self.links.borrow().clone()
    }
}

pub(super) async fn run(args: ClientArgs, mut service: Service<Args>) -> io::Result<ExitCode> {
    let global = args.global;
    let mut listening: HashMap<Forward, AbortHandle> = HashMap::new();
    let mut bound = Vec::new();
    for forward in forwards(&args.ports)? {
        bound.push((forward, bind(forward, global).await?));
    }
    if let Some(addr) = args.service.metrics {
        service::metrics::serve(addr, "tunnel-client", &service.connections, None)?;
    }
    let links = args.links();
    // Check the server's names (and TLS files) once up front, so a typo fails at once.
    links.connector().await?;
    let (done, mut done_rx) = mpsc::channel(1);
    let shared = Shared {
        links: Arc::new(watch::Sender::new(links)),
        shutdown: service.shutdown.clone(),
        connections: service.connections.clone(),
        done,
        once: args.once,
    };
    for (forward, listener) in bound {
        listening.insert(forward, spawn_accept(listener, forward.1, shared.clone()));
    }
    service::notify_ready();
    let shutdown = service.shutdown.clone();
    let monitor = live::start(args.no_monitor, WHO, &service.connections, &shutdown);
    loop {
        tokio::select! {
            Some(result) = done_rx.recv(), if args.once => {
                shutdown.stop();
                shutdown.drain().await;
                live::finish(monitor).await;
                return Ok(if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            () = shutdown.stopping() => break,
            reloaded = service.reloaded() => {
                match reloaded {
                    Ok(Args::Client(new)) => {
                        reload(&new, global, &shared, &mut listening).await;
                        service::restart_only(
                            WHO,
                            "--global, --once or metrics",
                            (&args, &new),
                            |a: &ClientArgs| format!("{:?}", (a.global, a.once, &a.service)),
                        );
                    }
                    Ok(Args::Server(_)) => say!("{WHO}: reload: not a client's options"),
                    Err(e) => say!("{WHO}: reload: {e}; nothing changed"),
                }
                service::notify_ready();
            }
        }
    }
    for (_, accepting) in listening {
        accepting.abort();
    }
    if !shutdown.drain().await {
        say!("{WHO}: some connections did not end in time");
    }
    live::finish(monitor).await;
    say!("{WHO}: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn bind((local_port, server_port): Forward, global: bool) -> io::Result<TcpListener> {
    let ip = if global { [0, 0, 0, 0] } else { [127, 0, 0, 1] };
    let addr = SocketAddr::from((ip, local_port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    say!("{WHO}: {addr} -> server port {server_port}");
    Ok(listener)
}

/// Applies what a reload can: links, and the forwarded ports.
async fn reload(
    new: &ClientArgs,
    global: bool,
    shared: &Shared,
    listening: &mut HashMap<Forward, AbortHandle>,
) {
    let links = new.links();
    match links.connector().await {
        Ok(_) => {
            shared.links.send_replace(links);
            say!("{WHO}: reload: connections use the links now configured");
        }
        Err(e) => say!("{WHO}: reload: {e}; the links stay"),
    }
    let wanted = match forwards(&new.ports) {
        Ok(wanted) => wanted,
        Err(e) => {
            say!("{WHO}: reload: {e}; the ports stay");
            return;
        }
    };
    listening.retain(|forward, accepting| {
        let keep = wanted.contains(forward);
        if !keep {
            accepting.abort();
            say!(
                "{WHO}: reload: no more forwarding from port {} (its connections go on)",
                forward.0
            );
        }
        keep
    });
    for forward in wanted {
        if listening.contains_key(&forward) {
            continue;
        }
        match bind(forward, global).await {
            Ok(listener) => {
                let accepting = spawn_accept(listener, forward.1, shared.clone());
                listening.insert(forward, accepting);
            }
            Err(e) => say!("{WHO}: reload: {e}"),
        }
    }
}

fn spawn_accept(listener: TcpListener, server_port: u16, shared: Shared) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    say!("{WHO}: accepting: {e}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            if shared.shutdown.is_stopping() {
                return;
            }
            let task = shared.clone();
            shared.shutdown.spawn(async move {
                let result = forward_to_server(socket, peer, server_port, &task).await;
                if let Err(e) = &result {
                    say!("{WHO}: connection from {peer}: {e}");
                }
                // Read only with --once; otherwise the result is dropped here, never awaited.
                let _ = task.done.try_send(result);
            });
            if shared.once {
                return;
            }
        }
    })
    .abort_handle()
}

async fn forward_to_server(
    socket: TcpStream,
    peer: SocketAddr,
    server_port: u16,
    shared: &Shared,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let changes = shared.links.subscribe();
    let links = shared.links();
    let connector = links.connector().await?;
    let (stream, links) = connect_with(connector, links.endpoint_config());
    let control = links.outgoing().control();
    let _tracked = shared
        .connections
        .track(format!("{peer} to port {server_port}"), control.clone());
    let forwarding = async {
        let follow = crate::links::follow(&links, changes);
        tokio::select! {
            forwarded = forward(&links, stream, socket, server_port) => forwarded,
            () = follow => Ok(()),
        }
    };
    // On shutdown the forwarding is dropped: its stream ends gracefully, and the guard waits
    // for the connection to close.
    let forwarded = shared.shutdown.guard(&control, forwarding).await;
    // However the forwarding ended, no new link is made for it: with its stream gone and
    // no handle left to add links, the connection ends with its last link.
    links.stop();
    forwarded.unwrap_or(Ok(()))
}

/// The forwarding itself: the server's port, then the bytes both ways until both end.
async fn forward(
    links: &Links,
    mut stream: Connection,
    socket: TcpStream,
    server_port: u16,
) -> io::Result<()> {
    links.wait_for_link(LINK_WAIT).await?;
    stream.write_all(&server_port.to_be_bytes()).await?;
    relay(socket, stream).await?;
    // Both directions are done; let the connection end gracefully before links go away.
    let closed = links.outgoing().control();
    let _ = tokio::time::timeout(CLOSE_WAIT, closed.closed()).await;
    Ok(())
}
