//! Sending to aggligator: `liag speed client` and `agg-speed client` each send to the same
//! `agg-speed server` over three unshaped veth paths between two namespaces, over TCP,
//! WebSocket and TLS, interleaved in the same run.
//!
//! Both senders speak protocol 4 to the same receiver, so the fair count is the bytes the
//! server's namespace receives on its veth interfaces while the test is steady (from 1 s in
//! until 0.5 s before the end): the senders' own figures differ in what they count (agg-speed
//! counts bytes handed to its send buffer, `liag speed` bytes the server acknowledged).

use serde_json::{Value, json};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::netpaths::{NetPaths, SERVER, Side};
use crate::tunnel_run::Killed;

/// The test's length in seconds, and the steady window inside it.
const SECS: f64 = 6.0;
const FROM: f64 = 1.0;
const UNTIL: f64 = SECS - 0.5;

/// The transports, by the name the report gives them.
const TRANSPORTS: [&str; 3] = ["TCP", "WebSocket", "TLS"];

/// Who sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Liag,
    Aggligator,
}

/// Runs each transport `rounds` times for each sender against `agg_speed` (aggligator
/// `version`'s speed test program), the senders taking turns.
pub fn run(liag: &Path, version: &str, agg_speed: &Path, rounds: usize) -> io::Result<Vec<Value>> {
    let paths = NetPaths::new(&[f64::INFINITY; 3])?;
    let mut out = Vec::new();
    for transport in TRANSPORTS {
        let mut figures = [Vec::new(), Vec::new()];
        let mut own = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            for (i, sender) in [Sender::Aggligator, Sender::Liag].into_iter().enumerate() {
                let measured = once(&paths, liag, agg_speed, sender, transport)?;
                eprintln!(
                    "  to aggligator {version} over {transport}, round {}: {} sent {}",
                    round + 1,
                    match sender {
                        Sender::Liag => "liag",
                        Sender::Aggligator => "agg-speed",
                    },
                    measured.map_or("nothing (the test did not start)".into(), |m| format!(
                        "{:.0} MB/s received; its own count {}",
                        m.received_mb_s,
                        m.own_mb_s.map_or("-".into(), |v| format!("{v:.0} MB/s"))
                    ))
                );
                figures[i].push(measured.map_or(0.0, |m| m.received_mb_s));
                own[i].push(measured.and_then(|m| m.own_mb_s));
            }
        }
        let median = |v: &[f64]| super::median(v);
        let (agg, liag_mb) = (median(&figures[0]), median(&figures[1]));
        out.push(json!({
            "kind": "to_aggligator",
            "scenario": format!("sending to aggligator {version}, {transport}"),
            "links": "3 unshaped veth paths",
            "transport": transport,
            "version": version,
            "rounds": rounds,
            "aggligator_mb_s": figures[0],
            "liag_mb_s": figures[1],
            "aggligator_own_mb_s": own[0],
            "liag_own_mb_s": own[1],
            "aggligator_median_mb_s": agg,
            "liag_median_mb_s": liag_mb,
            "share": if agg > 0.0 { liag_mb / agg } else { 0.0 },
        }));
    }
    Ok(out)
}

/// Tests made so far, for their ports: each server gets ports of its own, since agg-speed
/// 0.18 cannot always listen again at once on a port its killed predecessor used.
static TESTS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// One test: a fresh `agg-speed server`, one sender for [`SECS`]; `None` if nothing flowed.
fn once(
    paths: &NetPaths,
    liag: &Path,
    agg_speed: &Path,
    sender: Sender,
    transport: &str,
) -> io::Result<Option<Measured>> {
    let quiet = std::env::var_os("LIAG_TUNNEL_RUN_LOG").is_none();
    let n = TESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
    let (tcp, ws) = (5700 + n, 8100 + n);
    let mut server = paths.command(Side::Server, &agg_speed.display().to_string());
    server.args(["server", "-n", "--tcp", &tcp.to_string()]);
    server.args(["--websocket", &ws.to_string()]);
    if transport == "TLS" {
        server.arg("--tls");
    }
    server.stdin(Stdio::null()).stdout(Stdio::null());
    if quiet {
        server.stderr(Stdio::null());
    }
    let _server = Killed(server.spawn()?);
    wait_listening(paths, tcp)?;

    let (program, prefix): (PathBuf, &[&str]) = match sender {
        Sender::Liag => (liag.to_path_buf(), &["speed", "client"]),
        Sender::Aggligator => (agg_speed.to_path_buf(), &["client"]),
    };
    let mut client = paths.command(Side::Client, &program.display().to_string());
    client
        .args(prefix)
        .args(["-n", "-j", "-s", "-t", &format!("{SECS}")]);
    match transport {
        "WebSocket" => client.args(["--websocket", &format!("ws://{SERVER}:{ws}/agg-speed")]),
        "TLS" => client.args(["--tls", "--tcp", &format!("{SERVER}:{tcp}")]),
        _ => client.args(["--tcp", &format!("{SERVER}:{tcp}")]),
    };
    // agg-speed's client may wait on its terminal: give it none, and a process group of its
    // own; it is killed once the window has passed, whether it ended or not.
    client.stdin(Stdio::null()).stdout(Stdio::piped());
    if quiet {
        client.stderr(Stdio::null());
    }
    std::os::unix::process::CommandExt::process_group(&mut client, 0);
    let mut client = Killed(client.spawn()?);
    let mut stdout = client.0.stdout.take();

    // The test starts when the first link's handshake is done; wait for bytes to flow.
    let start = Instant::now();
    let mut last = received(paths)?;
    let began = loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = received(paths)?;
        if now > last + (1 << 20) {
            break Instant::now();
        }
        last = now;
        if start.elapsed() > Duration::from_secs(10) {
            return Ok(None);
        }
    };
    sleep_until(began, FROM);
    let before = received(paths)?;
    sleep_until(began, UNTIL);
    let after = received(paths)?;
    // The sender's own report, if it ends within 3 s; it is killed otherwise (agg-speed's
    // client often does not end by itself).
    let waited = Instant::now();
    while client.0.try_wait()?.is_none() && waited.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(client);
    let mut text = String::new();
    if let Some(mut out) = stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    let own = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["send_speed"].as_f64())
        .map(|bytes_per_sec| bytes_per_sec / 1e6);
    Ok(Some(Measured {
        received_mb_s: (after - before) as f64 / (UNTIL - FROM) / 1e6,
        own_mb_s: own,
    }))
}

/// One test's figures.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// What the server's namespace received over the steady window, in MB/s.
    received_mb_s: f64,
    /// What the sender reported itself, if it did.
    own_mb_s: Option<f64>,
}

fn sleep_until(start: Instant, secs: f64) {
    let at = start + Duration::from_secs_f64(secs);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// Bytes received so far on the server namespace's veth interfaces.
fn received(paths: &NetPaths) -> io::Result<u64> {
    let out = paths.ip(Side::Server, "-s -j link show")?;
    let links: Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let total = links
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n != "lo"))
        .filter_map(|l| l["stats64"]["rx"]["bytes"].as_u64())
        .sum();
    Ok(total)
}

/// Waits up to 5 s for a listener on `port` in the server's namespace.
fn wait_listening(paths: &NetPaths, port: u16) -> io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let up = paths.within(Side::Server, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("agg-speed server did not listen on port {port} within 5 s"),
    ))
}
