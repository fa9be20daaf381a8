//! `liag tunnel` end to end on loopback: an echo server behind a tunnel server, reached through
//! a tunnel client.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A free port on loopback (taken and released: another socket may get it before it is
/// bound again, which [`listening`] detects).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `liag` process, killed when the test ends however it ends, with what it printed on
/// standard error.
struct Liag {
    child: Child,
    stderr: Receiver<String>,
    heard: String,
}

impl Liag {
    /// What the process printed on standard error so far.
    fn heard(&mut self) -> &str {
        self.heard.extend(self.stderr.try_iter().map(|l| l + "\n"));
        &self.heard
    }
}

impl Drop for Liag {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn liag(args: &[&str]) -> Liag {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (said, stderr) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    Liag {
        child,
        stderr,
        heard: String::new(),
    }
}

/// Runs `liag` with the arguments `args(port)` gives for a free port and returns its first
/// connection there, once it listens: with another free port if the first was taken
/// meanwhile (the other tests' processes open sockets all the while), at most ten tries.
/// Waits at most 30 s for each (a busy machine).
fn listening(args: impl Fn(u16) -> Vec<String>) -> (Liag, u16, TcpStream) {
    let mut taken = Vec::new();
    for _ in 0..10 {
        let port = free_port();
        let args = args(port);
        let mut process = liag(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let start = Instant::now();
        loop {
            if let Ok(socket) = TcpStream::connect(("127.0.0.1", port)) {
                return (process, port, socket);
            }
            let exited = process.child.try_wait().unwrap().is_some();
            if exited && process.heard().contains("Address already in use") {
                taken.push(process.heard().to_string());
                break;
            }
            if exited || start.elapsed() > Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
                panic!("{args:?} never listened on {port}: {}", process.heard());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("ten free ports were all taken before liag bound them: {taken:?}");
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
