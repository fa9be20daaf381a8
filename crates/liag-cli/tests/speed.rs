//! `liag speed` end to end on loopback: a client against a server, with JSON results.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Picks two free ports and runs `test` with them, again with two others if a port was
/// taken between being picked and being bound (another test's socket may get it first).
fn with_free_ports(test: impl Fn(u16, u16) -> Option<serde_json::Value>) -> serde_json::Value {
    for _ in 0..3 {
        if let Some(report) = test(free_port(), free_port()) {
            return report;
        }
    }
    panic!("three pairs of free ports were all taken before the server bound them");
}

/// Runs a one-shot `liag speed server` with `server_args`, waits until it listens on `ports`,
/// runs a client with `client_args` and returns its JSON report; the server must end well.
/// `None` if the server found a port taken.
fn speed_test(
    ports: &[u16],
    server_args: &[&str],
    client_args: &[&str],
) -> Option<serde_json::Value> {
    let mut server = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(["speed", "server", "--oneshot", "-n"])
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
    let mut heard = String::new();
    // Wait (at most 30 s: a busy machine, namespaces of an earlier test still being torn down)
    // until the server listens on every port (TCP and WebSocket links).
    let start = Instant::now();
    for &port in ports {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            heard.extend(said.try_iter().map(|l| l + "\n"));
            if heard.contains("Address already in use") {
                let _ = server.kill();
                let _ = server.wait();
                return None;
            }
            if start.elapsed() > Duration::from_secs(30) || server.try_wait().unwrap().is_some() {
                let _ = server.kill();
                let _ = server.wait();
                heard.extend(said.try_iter().map(|l| l + "\n"));
                panic!("server never listened on {port}: {heard}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(["speed", "client", "-t", "1", "-j"])
        .args(client_args)
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
    Some(report)
}

#[test]
fn client_measures_both_directions_against_a_server() {
    let report = with_free_ports(|port, ws| {
        let (port_s, ws_s) = (port.to_string(), ws.to_string());
        let target = format!("127.0.0.1:{port}");
        speed_test(
            &[port, ws],
            &["--tcp", &port_s, "--websocket", &ws_s],
            &["--tcp", &target, "--tcp-link-filter", "none"],
        )
    });
    assert_eq!(report["links"].as_array().unwrap().len(), 1);
}

#[test]
fn tcp_and_websocket_links_inside_tls() {
    let report = with_free_ports(|port, ws| {
        let (port_s, ws_s) = (port.to_string(), ws.to_string());
        let target = format!("127.0.0.1:{port}");
        let url = format!("ws://127.0.0.1:{ws}/agg-speed");
        speed_test(
            &[port, ws],
            &["--tcp", &port_s, "--websocket", &ws_s, "--tls"],
            &[
                "--tcp",
                &target,
                "--tcp-link-filter",
                "none",
                "--websocket",
                &url,
                "--tls",
            ],
        )
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
