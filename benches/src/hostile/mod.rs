//! The hostile suite: each attack against a fresh `liag tunnel server` process on loopback,
//! with a real `liag tunnel client` using it during and after.
//!
//! For each attack it reports whether the server is still alive, its peak resident memory,
//! the CPU it uses while the attackers merely hold their sockets, and whether real clients'
//! round trips through the tunnel succeeded all along (one client over TCP links, one over
//! WebSocket links, each making a round trip every 200 ms from the attack's start until the
//! attackers leave) and after they left.
//! The server runs with a file limit (`ulimit -n`) of [`NOFILE`], so attacks on descriptors
//! bite. Attackers come from their own loopback addresses (127.0.0.2 for a lone host, 127.1.x.y
//! for a crowd); the real client from 127.0.0.1.
//!
//! `cargo xtask hostile` runs it in full and prints the table; `liag-cli`'s tests run it
//! quick (every count divided by [`QUICK`]) and check only that the server survives and
//! serves. Compiled into those tests (`#[path]`), so it uses only std, socket2, rand and
//! liag-core.

pub mod attacks;
mod raw;
mod watch;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attacks::{ATTACKS, Attack, Target};

/// The server's file limit.
pub const NOFILE: u32 = 1024;
/// How much smaller the quick suite's counts are.
pub const QUICK: usize = 4;
/// How long attackers hold their sockets while the server's CPU is measured.
const HOLD: Duration = Duration::from_secs(2);
/// Most time one round trip through the tunnel may take to count as served.
const SERVED_WITHIN: Duration = Duration::from_secs(5);

/// What one attack did to the server.
#[derive(Debug, Clone)]
pub struct Report {
    /// The attack's name.
    pub attack: &'static str,
    /// What it does.
    pub what: &'static str,
    /// The server still runs at the end.
    pub alive: bool,
    /// Peak resident memory of the server during the attack, MiB.
    pub peak_rss_mib: f64,
    /// The server's CPU while the attackers held their sockets, % of one core.
    pub hold_cpu_percent: f64,
    /// Sockets the attackers held.
    pub held: usize,
    /// Round trips made while the attack ran and the attackers held on, and how many worked...
    pub during: (usize, usize),
    /// ... the slowest of them, ms...
    pub during_max_ms: f64,
    /// ... and whether both clients were served after the attackers left.
    pub served_after: bool,
    /// What the attack saw.
    pub note: String,
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An echo server on loopback, in threads, for as long as the process lives.
fn echo() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// `liag tunnel server` and two clients (TCP links, WebSocket links) around an echo server.
struct Tunnel {
    server: Killed,
    _clients: [Killed; 2],
    target: Target,
    /// The clients' forwarded ports.
    local: [u16; 2],
}

impl Tunnel {
    /// Starts both ends; tries again on other ports if one was taken meanwhile.
    fn start(liag: &Path, echo_port: u16) -> io::Result<Tunnel> {
        let mut last = None;
        for _ in 0..3 {
            match Tunnel::try_start(liag, echo_port) {
                Ok(tunnel) => return Ok(tunnel),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no tunnel")))
    }

    fn try_start(liag: &Path, echo_port: u16) -> io::Result<Tunnel> {
        let (tcp, ws) = (free_port()?, free_port()?);
        let local = [free_port()?, free_port()?];
        let server = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {NOFILE} && exec \"$0\" tunnel server --tcp {tcp} --websocket {ws} --port {echo_port}"
            ))
            .arg(liag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Killed)?;
        let target = Target {
            tcp: SocketAddr::from(([127, 0, 0, 1], tcp)),
            ws: SocketAddr::from(([127, 0, 0, 1], ws)),
        };
        wait_for(target.tcp)?;
        wait_for(target.ws)?;
        let client = |links: [String; 2], local: u16| {
            Command::new(liag)
                .args(["tunnel", "client"])
                .args(links)
                .arg("--port")
                .arg(format!("{echo_port}:{local}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(Killed)
        };
        let tcp_client = client(["--tcp".into(), target.tcp.to_string()], local[0])?;
        let ws_url = format!("ws://{}/liag-tunnel", target.ws);
        let ws_client = client(["--websocket".into(), ws_url], local[1])?;
        for port in local {
            wait_for(SocketAddr::from(([127, 0, 0, 1], port)))?;
        }
        Ok(Tunnel {
            server,
            _clients: [tcp_client, ws_client],
            target,
            local,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.server.0.try_wait(), Ok(None))
    }

    /// A round trip through each client; whether both worked.
    fn served(&self) -> bool {
        self.local.iter().all(|&port| round_trip(port).is_some())
    }
}

/// One round trip of 64 KiB through a tunnel client's port `local`, on a new connection; its
/// time if it came back whole in time.
fn round_trip(local: u16) -> Option<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", local)).ok()?;
    s.set_read_timeout(Some(SERVED_WITHIN)).ok()?;
    s.set_write_timeout(Some(SERVED_WITHIN)).ok()?;
    let data: Vec<u8> = (0..64 << 10).map(|i: u32| (i * 7 + 3) as u8).collect();
    s.write_all(&data).ok()?;
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).ok()?;
    (back == data && started.elapsed() <= SERVED_WITHIN).then(|| started.elapsed())
}

/// Waits until `addr` takes connections (bounded: 10 s).
fn wait_for(addr: SocketAddr) -> io::Result<()> {
    for _ in 0..200 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nothing listens on {addr}"),
    ))
}

/// Round trips through both clients, one every 200 ms, until told to stop (at most ten
/// minutes): how many, how many worked, and the slowest.
struct Prober {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, usize, Duration)>,
}

impl Prober {
    fn start(local: [u16; 2]) -> Prober {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut made, mut worked, mut slowest) = (0, 0, Duration::ZERO);
            for _ in 0..3000 {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for port in local {
                    made += 1;
                    match round_trip(port) {
                        Some(t) => {
                            worked += 1;
                            slowest = slowest.max(t);
                        }
                        None => slowest = slowest.max(SERVED_WITHIN),
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (made, worked, slowest)
        });
        Prober { stop, thread }
    }

    fn finish(self) -> (usize, usize, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Runs `attack` against a fresh tunnel; `scale` divides its counts.
pub fn run_one(liag: &Path, attack: &Attack, scale: usize) -> io::Result<Report> {
    let echo_port = echo()?;
    let mut tunnel = Tunnel::start(liag, echo_port)?;
    // The clients' first connections set up their links; the suite measures what follows.
    tunnel.served();
    let pid = tunnel.server.0.id();
    let peak = watch::PeakRss::start(pid);
    let prober = Prober::start(tunnel.local);
    let held = attack.run(&tunnel.target, scale);
    let cpu_before = watch::cpu_secs(pid);
    std::thread::sleep(HOLD);
    let cpu_after = watch::cpu_secs(pid);
    let (made, worked, slowest) = prober.finish();
    let sockets = held.sockets();
    let note = held.note.clone();
    drop(held);
    std::thread::sleep(Duration::from_secs(1));
    let after = tunnel.served();
    let alive = tunnel.alive();
    let hold_cpu_percent = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => (b - a) / HOLD.as_secs_f64() * 100.0,
        _ => f64::NAN,
    };
    Ok(Report {
        attack: attack.name,
        what: attack.what,
        alive,
        peak_rss_mib: peak.finish(),
        hold_cpu_percent,
        held: sockets,
        during: (worked, made),
        during_max_ms: slowest.as_secs_f64() * 1000.0,
        served_after: after,
        note,
    })
}

/// Runs every attack (or those whose name is in `only`), each against a fresh server.
pub fn run(liag: &Path, quick: bool, only: &[String]) -> io::Result<Vec<Report>> {
    let scale = if quick { QUICK } else { 1 };
    ATTACKS
        .iter()
        .filter(|a| only.is_empty() || only.iter().any(|o| o == a.name))
        .map(|a| run_one(liag, a, scale))
        .collect()
}

/// The reports as a Markdown table.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| attack | what | alive | peak RSS | CPU while held | sockets opened | round trips during (slowest) | served after | seen |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    for r in reports {
        let (worked, made) = r.during;
        let during = if worked == made {
            format!("{worked} of {made} ({:.0} ms)", r.during_max_ms)
        } else {
            format!("**{worked} of {made}** ({:.0} ms)", r.during_max_ms)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} MiB | {:.1} % | {} | {} | {} | {} |\n",
            r.attack,
            r.what,
            yes(r.alive),
            r.peak_rss_mib,
            r.hold_cpu_percent,
            r.held,
            during,
            yes(r.served_after),
            r.note
        ));
    }
    out
}
