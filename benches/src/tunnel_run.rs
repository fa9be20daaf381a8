//! One verified byte stream through `liag tunnel` across [`NetPaths`], with a fault on one
//! path on the way: the operator's view of failover.
//!
//! A sink in the server namespace stands behind `liag tunnel server`; a source in the client
//! namespace writes a pattern through `liag tunnel client` as fast as the paths take it. The
//! sink checks every byte and notes when each read returned. Also compiled into `liag-cli`'s
//! tests (`#[path]`, beside `netpaths.rs`), so it uses only std.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::netpaths::{Fault, NetPaths, SERVER, Side};

/// The port the tunnel server takes links on.
const LINK_PORT: u16 = 5800;

/// A tunnel program: `liag tunnel`, or aggligator's `agg-tunnel`, which takes the same flags.
#[derive(Debug, Clone)]
pub struct Tunnel {
    program: PathBuf,
    /// Arguments before `server` or `client`.
    prefix: Vec<String>,
}

impl Tunnel {
    /// `liag tunnel`, with `liag` the binary at `path`.
    pub fn liag(path: &Path) -> Tunnel {
        Tunnel {
            program: path.to_path_buf(),
            prefix: vec!["tunnel".into()],
        }
    }

    /// aggligator's `agg-tunnel` at `path`.
    pub fn aggligator(path: &Path) -> Tunnel {
        Tunnel {
            program: path.to_path_buf(),
            prefix: Vec::new(),
        }
    }

    /// The command that runs this program's `role` (`server` or `client`) on `side`.
    pub fn command(&self, paths: &NetPaths, side: Side, role: &str) -> std::process::Command {
        let mut cmd = paths.command(side, &self.program.display().to_string());
        cmd.args(&self.prefix).arg(role);
        cmd
    }
}

/// When things happen, in seconds from the first byte written.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The fault, on which path, and when it starts and ends.
    pub fault: Option<(usize, Fault)>,
    /// When the fault starts.
    pub fault_at: f64,
    /// When it is healed.
    pub heal_at: f64,
    /// When the source stops writing.
    pub end: f64,
}

/// What the sink saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// (seconds since the first byte was written, bytes) per read.
    pub reads: Vec<(f64, usize)>,
    /// Bytes the source wrote.
    pub sent: u64,
    /// Bytes the sink read, all checked.
    pub received: u64,
    /// The first offset where a byte differed from the pattern, if any.
    pub corrupt_at: Option<u64>,
}

impl Outcome {
    /// Every byte arrived, in order, and nothing else.
    pub fn intact(&self) -> bool {
        self.corrupt_at.is_none() && self.sent == self.received && self.sent > 0
    }
}

/// The pattern byte at `offset`; 251 is prime, so a lost, repeated or moved block shows.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// Kills the process when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `plan` over `paths`, through `server` and `client`. `client_args` go to the client
/// after the port and target (link filter and the like).
pub fn run(
    paths: &NetPaths,
    server: &Tunnel,
    client: &Tunnel,
    plan: &Plan,
    client_args: &[&str],
) -> io::Result<Outcome> {
    // Dual-stack, since the server's target is `localhost`: aggligator takes `-p PORT` only
    // (its `-p 127.0.0.1:PORT` fails to connect), and `localhost` may resolve to either.
    let sink = paths.within(Side::Server, || TcpListener::bind("[::]:0"))??;
    let sink_port = sink.local_addr()?.port();
    let local_port = paths.within(Side::Client, || {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
    })??;
    let local_port = local_port.port();

    let quiet = |mut cmd: std::process::Command| -> io::Result<Killed> {
        cmd.stdin(Stdio::null());
        if std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        } else {
            // aggligator's tools log to stdout.
            cmd.stdout(io::stderr());
        }
        cmd.spawn().map(Killed)
    };
    let mut server = server.command(paths, Side::Server, "server");
    server.args(["-n", "--tcp", &LINK_PORT.to_string()]);
    server.args(["-p", &sink_port.to_string()]);
    let _server = quiet(server)?;
    let mut client = client.command(paths, Side::Client, "client");
    client.args(["-n", "--once"]);
    client.args(["-p", &format!("{sink_port}:{local_port}")]);
    client.args(["--tcp", &format!("{SERVER}:{LINK_PORT}")]);
    client.args(client_args);
    let _client = quiet(client)?;

    let source = paths.within(Side::Client, || connect_retrying(local_port))??;
    let start = Instant::now();
    let sink_thread = std::thread::spawn(move || drain(sink, start));
    let end = plan.end;
    let source_thread = std::thread::spawn(move || write_for(source, start, end));

    if let Some((path, fault)) = plan.fault {
        sleep_until(start, plan.fault_at);
        paths.fault(path, fault)?;
        sleep_until(start, plan.heal_at);
        paths.heal(path, fault)?;
    }
    let sent = join(source_thread)?;
    let mut outcome = join(sink_thread)?;
    outcome.sent = sent;
    Ok(outcome)
}

fn join<T>(thread: std::thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a thread of the run panicked")))
}

fn sleep_until(start: Instant, secs: f64) {
    let at = start + Duration::from_secs_f64(secs);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// Connects to the tunnel client's port, waiting up to 10 s for it to listen.
fn connect_retrying(port: u16) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Ok(s),
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes the pattern until `end` seconds after `start`, then shuts the write side.
fn write_for(mut stream: TcpStream, start: Instant, end: f64) -> io::Result<u64> {
    let mut offset = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    while start.elapsed().as_secs_f64() < end {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(offset + i as u64);
        }
        let mut written = 0;
        while written < buf.len() && start.elapsed().as_secs_f64() < end + 30.0 {
            match stream.write(&buf[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        offset += written as u64;
        if written < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the tunnel took no data for 30 s",
            ));
        }
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(offset)
}

/// Accepts the tunnel server's connection and reads it to its end, checking every byte; gives
/// up when nothing arrives for 30 s.
fn drain(listener: TcpListener, start: Instant) -> io::Result<Outcome> {
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed().as_secs() < 30 => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut outcome = Outcome::default();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(outcome);
        }
        outcome.reads.push((start.elapsed().as_secs_f64(), n));
        if outcome.corrupt_at.is_none() {
            let base = outcome.received;
            let bad = buf[..n]
                .iter()
                .enumerate()
                .position(|(i, &b)| b != pattern(base + i as u64));
            outcome.corrupt_at = bad.map(|i| base + i as u64);
        }
        outcome.received += n as u64;
    }
}
