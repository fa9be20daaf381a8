//! `liag tunnel` end to end on loopback: an echo server behind a tunnel server, reached through
//! a tunnel client.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::listening;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn tunnel_forwards_an_echo() {
    // The service behind the tunnel: an echo server.
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = echo.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                let _ = s.shutdown(std::net::Shutdown::Write);
                return;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let echo_port = echo_port.to_string();
    let (_server, link_port, probe) = listening(|port| {
        let port = port.to_string();
        ["tunnel", "server", "-p", &echo_port, "--tcp", &port]
            .map(String::from)
            .to_vec()
    });
    drop(probe);
    let target = format!("127.0.0.1:{link_port}");
    let (_client, _, mut socket) = listening(|port| {
        let forward = format!("{echo_port}:{port}");
        let args = ["tunnel", "client", "-p", &forward, "--tcp", &target];
        let once = ["--tcp-link-filter", "none", "--once"];
        args.iter().chain(&once).map(|a| a.to_string()).collect()
    });
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let writer = {
        let mut socket = socket.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            socket.write_all(&data).unwrap();
            socket.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    socket.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(
        back == data,
        "echo through the tunnel differs ({} of {} bytes)",
        back.len(),
        data.len()
    );
}

#[test]
fn tunnel_argument_errors() {
    for (args, expected) in [
        (
            &["tunnel", "client", "-p", "22", "--tcp", "127.0.0.1:1"][..],
            "SERVER_PORT:LOCAL_PORT",
        ),
        (
            &[
                "tunnel",
                "client",
                "-p",
                "22:0",
                "--tcp",
                "no-such-host.invalid",
            ][..],
            "cannot resolve",
        ),
        (
            &[
                "tunnel",
                "client",
                "-p",
                "22:0",
                "--tcp",
                "x",
                "--tcp-link-filter",
                "some",
            ][..],
            "unknown link filter",
        ),
        (
            &["tunnel", "server", "-p", "x:y"][..],
            "expected PORT or TARGET:PORT",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_liag"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Asking for a port the server does not publish fails the forwarded connection at once, and
/// a one-shot client exits with an error.
#[test]
fn unpublished_port_is_an_error() {
    let (_server, link_port, probe) = listening(|port| {
        let port = port.to_string();
        ["tunnel", "server", "-p", "1", "--tcp", &port]
            .map(String::from)
            .to_vec()
    });
    drop(probe);
    let target = format!("127.0.0.1:{link_port}");
    let (mut client, _, mut socket) = listening(|port| {
        let forward = format!("9:{port}");
        let args = ["tunnel", "client", "-p", &forward, "--tcp", &target];
        let once = ["--tcp-link-filter", "none", "--once"];
        args.iter().chain(&once).map(|a| a.to_string()).collect()
    });
    socket.write_all(b"hello").unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = client.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the one-shot client did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    // Its last words may still be in the pipe.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !client.heard().contains("terminated by the peer") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        client.heard().contains("terminated by the peer"),
        "{}",
        client.heard()
    );
}
