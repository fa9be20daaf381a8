//! `liag speed` end to end on loopback: a client against a server, with JSON results.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// The port in a server's line "… on TCP [[::]:PORT] …", for the transport named by `on`.
fn announced_port(line: &str, on: &str) -> Option<u16> {
    let rest = &line[line.find(on)? + on.len()..];
    let addr = &rest[..rest.rfind(']')?];
    addr.rsplit(':').next()?.parse().ok()
}

/// Runs a one-shot `liag speed server` with `server_args` on TCP and WebSocket ports the
/// system picks (port 0, so no other socket can take them first), reads the ports it
/// announces, runs a client with the arguments `client_args` makes of them (TCP, WebSocket)
/// and returns its JSON report; the server must end well.
fn speed_test(
    server_args: &[&str],
    client_args: impl FnOnce(u16, u16) -> Vec<String>,
) -> serde_json::Value {
    let mut server = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args([
            "speed",
            "server",
            "--oneshot",
            "-n",
            "--tcp",
            "0",
            "--websocket",
            "0",
        ])
        .args(server_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (said_tx, said) = std::sync::mpsc::channel::<String>();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = said_tx.send(line);
        }
    });
    // Wait (at most 30 s: a busy machine) until the server listens on both ports.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut tcp, mut ws, mut heard) = (None, None, String::new());
    while tcp.is_none() || ws.is_none() {
        let wait = deadline.saturating_duration_since(Instant::now());
        match said.recv_timeout(wait) {
            Ok(line) => {
                tcp = tcp.or_else(|| announced_port(&line, " on TCP ["));
                ws = ws.or_else(|| announced_port(&line, " on WebSocket ["));
                heard += &line;
                heard.push('\n');
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let _ = server.kill();
                let _ = server.wait();
                panic!("the server never announced its ports: {heard}");
            }
        }
    }
    let (tcp, ws) = (tcp.unwrap(), ws.unwrap());
    let client_args = client_args(tcp, ws);
    let out = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(["speed", "client", "-t", "1", "-j"])
        .args(&client_args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["send_speed"].as_f64().unwrap() > 0.0);
    assert!(report["recv_speed"].as_f64().unwrap() > 0.0);
    // The one-shot server ends, reporting success, once the test is over.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("the one-shot server did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    report
}

#[test]
fn client_measures_both_directions_against_a_server() {
    let report = speed_test(&[], |tcp, _| {
        let target = format!("127.0.0.1:{tcp}");
        ["--tcp", &target, "--tcp-link-filter", "none"]
            .map(String::from)
            .to_vec()
    });
    assert_eq!(report["links"].as_array().unwrap().len(), 1);
}

#[test]
fn tcp_and_websocket_links_inside_tls() {
    let report = speed_test(&["--tls"], |tcp, ws| {
        let target = format!("127.0.0.1:{tcp}");
        let url = format!("ws://127.0.0.1:{ws}/agg-speed");
        [
            "--tcp",
            &target,
            "--tcp-link-filter",
            "none",
            "--websocket",
            &url,
            "--tls",
        ]
        .map(String::from)
        .to_vec()
    });
    let links = report["links"].as_array().unwrap();
    let tags: Vec<&str> = links.iter().map(|l| l["tag"].as_str().unwrap()).collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.iter().all(|t| t.ends_with("(tls)")), "{tags:?}");
    assert!(tags.iter().any(|t| t.contains("ws://")), "{tags:?}");
}

#[test]
fn unknown_host_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args([
            "speed",
            "client",
            "--tcp",
            "no-such-host.invalid",
            "-t",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resolve"));
}
