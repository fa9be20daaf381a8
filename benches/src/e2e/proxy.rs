//! `liag proxy` as applications use it, on loopback over three links: the time to the first
//! byte of a new proxied connection beside a new `liag tunnel` connection and a direct one,
//! and many downloads at once through the proxy beside the same over direct TCP.

use serde_json::{Value, json};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::quantile;
use crate::tunnel_run::Killed;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Lengths {
    /// New connections timed, direct and through the proxy.
    pub samples: usize,
    /// New tunnel connections timed (each makes its links anew).
    pub tunnel_samples: usize,
    /// Downloads at once.
    pub downloads: usize,
    /// Bytes each download fetches.
    pub download_bytes: usize,
}

/// Runs the scenario with the `liag` binary at `liag`.
pub fn run(liag: &Path, len: Lengths) -> io::Result<Value> {
    let pinger = serve(ping)?;
    let downloads = serve(download)?;
    let token = std::env::temp_dir().join(format!("liag-bench-proxy-{}", std::process::id()));
    std::fs::write(&token, "a bench token, long enough")?;
    let token = token.display().to_string();

    let link_port = free_port()?.to_string();
    let links: Vec<String> = (1..=3)
        .flat_map(|i| ["--tcp".to_string(), format!("127.0.0.{i}:{link_port}")])
        .collect();
    let _server = spawn(
        liag,
        &[
            "proxy",
            "server",
            "--tcp",
            &link_port,
            "--token-file",
            &token,
            "--allow-private",
        ],
    )?;
    let socks = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let listen = socks.to_string();
    let mut args = vec![
        "proxy",
        "client",
        "--listen",
        &listen,
        "--token-file",
        &token,
        "--tcp-link-filter",
        "none",
    ];
    args.extend(links.iter().map(String::as_str));
    let _client = spawn(liag, &args)?;
    wait_listening(socks)?;

    let direct = |to: SocketAddr| TcpStream::connect(to);
    let proxied = |to: SocketAddr| socks_connect(socks, to);
    // Warm both ways (the kept connection's links are up once one stream went through).
    for _ in 0..20 {
        first_byte(proxied, pinger)?;
        first_byte(direct, pinger)?;
    }
    let mut direct_times = Vec::new();
    let mut proxy_times = Vec::new();
    for _ in 0..len.samples {
        direct_times.push(first_byte(direct, pinger)?);
        proxy_times.push(first_byte(proxied, pinger)?);
    }
    let tunnel_times = tunnel_first_bytes(liag, pinger, len.tunnel_samples)?;

    let direct_mb_s = parallel(direct, downloads, len)?;
    let proxy_mb_s = parallel(proxied, downloads, len)?;
    let _ = std::fs::remove_file(&token);
    let us = |mut t: Vec<Duration>, q| quantile(&mut t, q).as_secs_f64() * 1e6;
    Ok(json!({
        "kind": "proxy",
        "scenario": "liag proxy, 3 loopback links",
        "first_byte_us": {
            "direct_p50": us(direct_times.clone(), 0.5), "direct_p99": us(direct_times, 0.99),
            "proxy_p50": us(proxy_times.clone(), 0.5), "proxy_p99": us(proxy_times, 0.99),
            "tunnel_p50": us(tunnel_times.clone(), 0.5), "tunnel_p99": us(tunnel_times, 0.99),
        },
        "downloads": len.downloads,
        "download_bytes": len.download_bytes,
        "direct_mb_s": direct_mb_s,
        "proxy_mb_s": proxy_mb_s,
    }))
}

fn spawn(liag: &Path, args: &[&str]) -> io::Result<Killed> {
    let mut cmd = Command::new(liag);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    cmd.spawn().map(Killed)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(addr: SocketAddr) -> io::Result<()> {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing listens on {addr}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A server on loopback running `handle` for each connection, on a thread of its own.
fn serve(handle: fn(TcpStream) -> io::Result<()>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for socket in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || handle(socket));
        }
    });
    Ok(addr)
}

/// Answers each byte with itself, until the end.
fn ping(mut socket: TcpStream) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let mut byte = [0u8; 1];
    while socket.read(&mut byte)? == 1 {
        socket.write_all(&byte)?;
    }
    Ok(())
}

/// Sends as many bytes as the 8-byte request asks for, then ends.
fn download(mut socket: TcpStream) -> io::Result<()> {
    let mut len = [0u8; 8];
    socket.read_exact(&mut len)?;
    let mut left = u64::from_be_bytes(len) as usize;
    let chunk = vec![0x5a; 256 << 10];
    while left > 0 {
        let n = left.min(chunk.len());
        socket.write_all(&chunk[..n])?;
        left -= n;
    }
    Ok(())
}

/// A connection to `target` through the SOCKS5 proxy at `proxy` (CONNECT, no authentication).
pub(super) fn socks_connect(proxy: SocketAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(target) = target else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPv4 targets only",
        ));
    };
    let mut s = TcpStream::connect(proxy)?;
    s.set_nodelay(true)?;
    s.write_all(&[5, 1, 0])?;
    let mut method = [0u8; 2];
    s.read_exact(&mut method)?;
    let mut request = vec![5, 1, 0, 1];
    request.extend(target.ip().octets());
    request.extend(target.port().to_be_bytes());
    s.write_all(&request)?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply)?;
    if method != [5, 0] || reply[1] != 0 {
        return Err(io::Error::other(format!(
            "the proxy refused: {method:?} {}",
            reply[1]
        )));
    }
    Ok(s)
}

/// From the start of a new connection made by `open` to the first byte back from `pinger`.
fn first_byte(
    open: impl Fn(SocketAddr) -> io::Result<TcpStream>,
    pinger: SocketAddr,
) -> io::Result<Duration> {
    let start = Instant::now();
    let mut s = open(pinger)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&[7])?;
    let mut byte = [0u8; 1];
    s.read_exact(&mut byte)?;
    Ok(start.elapsed())
}

/// First bytes through new `liag tunnel` connections to `pinger` over the same three links.
fn tunnel_first_bytes(
    liag: &Path,
    pinger: SocketAddr,
    samples: usize,
) -> io::Result<Vec<Duration>> {
    let link_port = free_port()?.to_string();
    let published = pinger.port().to_string();
    let _server = spawn(
        liag,
        &[
            "tunnel", "server", "-n", "--tcp", &link_port, "-p", &published,
        ],
    )?;
    let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port()?);
    let forward = format!("{published}:{}", local.port());
    let mut args = vec![
        "tunnel",
        "client",
        "-n",
        "-p",
        &forward,
        "--tcp-link-filter",
        "none",
    ];
    let links: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.{i}:{link_port}"))
        .collect();
    for link in &links {
        args.extend(["--tcp", link.as_str()]);
    }
    let _client = spawn(liag, &args)?;
    wait_listening(local.into())?;
    // The server may still be starting: the first tries may fail.
    let tunnel = |_| TcpStream::connect(local);
    let start = Instant::now();
    while first_byte(tunnel, pinger).is_err() && start.elapsed() < Duration::from_secs(20) {}
    (0..samples).map(|_| first_byte(tunnel, pinger)).collect()
}

/// `len.downloads` downloads at once, each over a new connection made by `open`: MB/s in all.
fn parallel(
    open: impl Fn(SocketAddr) -> io::Result<TcpStream> + Sync,
    server: SocketAddr,
    len: Lengths,
) -> io::Result<f64> {
    let start = Instant::now();
    let total = std::thread::scope(|scope| {
        let each: Vec<_> = (0..len.downloads)
            .map(|_| {
                scope.spawn(|| -> io::Result<usize> {
                    let mut s = open(server)?;
                    s.set_read_timeout(Some(Duration::from_secs(30)))?;
                    s.write_all(&(len.download_bytes as u64).to_be_bytes())?;
                    let mut buf = vec![0u8; 256 << 10];
                    let mut got = 0;
                    loop {
                        match s.read(&mut buf)? {
                            0 => break,
                            n => got += n,
                        }
                    }
                    Ok(got)
                })
            })
            .collect();
        each.into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a download panicked")))
            })
            .sum::<io::Result<usize>>()
    })?;
    if total != len.downloads * len.download_bytes {
        return Err(io::Error::other(format!(
            "{total} bytes arrived of {}",
            len.downloads * len.download_bytes
        )));
    }
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}
