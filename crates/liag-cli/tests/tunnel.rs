//! `liag tunnel` end to end on loopback: an echo server behind a tunnel server, reached through
//! a tunnel client.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on loopback (taken and released; good enough for a test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn liag(args: &[&str]) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_liag"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Connects, retrying while the listener is not up yet (at most 30 s: a busy machine).
fn connect(port: u16) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("port {port} never listened: {e}"),
        }
    }
}

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
    let (link_port, local_port) = (free_port(), free_port());
    let _server = liag(&[
        "tunnel",
        "server",
        "-p",
        &echo_port.to_string(),
        "--tcp",
        &link_port.to_string(),
    ]);
    // Wait for the server's link port.
    drop(connect(link_port));
    let forward = format!("{echo_port}:{local_port}");
    let target = format!("127.0.0.1:{link_port}");
    let _client = liag(&[
        "tunnel",
        "client",
        "-p",
        &forward,
        "--tcp",
        &target,
        "--tcp-link-filter",
        "none",
        "--once",
    ]);

    let mut socket = connect(local_port);
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
    let (link_port, local_port) = (free_port(), free_port());
    let _server = liag(&[
        "tunnel",
        "server",
        "-p",
        "1",
        "--tcp",
        &link_port.to_string(),
    ]);
    drop(connect(link_port));
    let forward = format!("9:{local_port}");
    let target = format!("127.0.0.1:{link_port}");
    let mut client = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args([
            "tunnel",
            "client",
            "-p",
            &forward,
            "--tcp",
            &target,
            "--tcp-link-filter",
            "none",
            "--once",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut socket = connect(local_port);
    socket.write_all(b"hello").unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the one-shot client did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = client.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("terminated by the peer"));
}
