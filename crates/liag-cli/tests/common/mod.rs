//! Helpers shared by the tests that run the `liag` binary: free ports, a process whose
//! standard error is collected, and waiting for it to listen.

#![allow(dead_code)] // Each test binary uses its own part.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A free port on loopback (taken and released: another socket may get it before it is
/// bound again, which [`listening`] detects).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `liag` process, killed when the test ends however it ends, with what it printed on
/// standard error.
pub(crate) struct Liag {
    pub(crate) child: Child,
    stderr: Receiver<String>,
    heard: String,
}

impl Liag {
    /// What the process printed on standard error so far.
    pub(crate) fn heard(&mut self) -> &str {
        self.heard.extend(self.stderr.try_iter().map(|l| l + "\n"));
        &self.heard
    }
}

impl Liag {
    /// Waits up to `limit` for the process to print `text`; what it printed so far, if it
    /// did.
    pub(crate) fn wait_for(&mut self, text: &str, limit: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.heard().contains(text) {
                return Some(self.heard.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to 30 s for it to exit and print `words`; its exit status.
    pub(crate) fn exits_saying(&mut self, words: &str) -> ExitStatus {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                assert!(
                    self.heard().contains(words),
                    "expected {words:?} in:\n{}",
                    self.heard()
                );
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("still running after 30 s; it said:\n{}", self.heard());
    }

    /// Sends the process a signal, as `kill -SIGNAL` does.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Liag {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn liag(args: &[&str]) -> Liag {
    liag_with_env(args, &[])
}

/// [`liag`] with environment variables set.
pub(crate) fn liag_with_env(args: &[&str], env: &[(&str, &str)]) -> Liag {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(args)
        .envs(env.iter().copied())
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
pub(crate) fn listening(args: impl Fn(u16) -> Vec<String>) -> (Liag, u16, TcpStream) {
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

/// How long a helper here waits for an answer before the test fails.
const READ_PATIENCE: Duration = Duration::from_secs(30);

/// GET `path` from an HTTP server on loopback `port`: the body of its 200 answer.
pub(crate) fn http_get(port: u16, path: &str) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(READ_PATIENCE)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// A sample line of the Prometheus text format: name, labels, value.
pub(crate) fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
            let labels = inner
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "bad name in {line:?}"
    );
    (name.to_string(), labels, value)
}
