//! Real kernel paths between two network namespaces, for the real-path scenarios of the bench
//! and the tests: a client namespace and a server namespace joined by veth pairs, each shaped
//! with `tbf`, and faults applied with `ip` and `ss` as an operator's network would apply them.
//!
//! The server owns one address, [`SERVER`], on its loopback interface; the client reaches it
//! over every veth, one route per interface, as a host with several uplinks reaches a server.
//! So a `liag` client given that one address makes one link per path. Addresses are from
//! 198.18.0.0/15, the range set aside for benchmarks (RFC 2544), and exist only inside the two
//! namespaces, which are deleted when the [`NetPaths`] is dropped.
//!
//! With `LIAG_PATH_DELAY_MS` set to a number of milliseconds (above 0), every path also
//! delays each packet that long each way, where the kernel has no netem: the paths are then
//! TUN devices (`/dev/net/tun`) joined by the `delayline` binary of liag-benches (found
//! beside the running executable or one directory up, or at `LIAG_DELAYLINE`), and shaped,
//! faulted and healed just as the veths are. The delay lines run outside the namespaces, and
//! end when the paths are dropped.
//!
//! This file is also compiled into `liag-cli`'s tests (`#[path]`), so it uses only std and nix.

use std::io::{self, BufRead};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The server's address, reachable over every path.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 1);

/// Which end of the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The namespace of the client.
    Client,
    /// The namespace of the server.
    Server,
}

/// Two namespaces joined by shaped veth paths; deleted on drop.
#[derive(Debug)]
pub struct NetPaths {
    client: String,
    server: String,
    rates: Vec<f64>,
    /// The delay lines' processes, one per path, when the paths have a delay of their own.
    lines: Vec<Child>,
}

/// The one-way delay `LIAG_PATH_DELAY_MS` asks of every path, in milliseconds: none when
/// it is unset, empty or 0, an error when it is not a number of milliseconds (0 to 10,000).
fn delay_setting() -> io::Result<Option<f64>> {
    let Some(value) = std::env::var_os("LIAG_PATH_DELAY_MS").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let ms = value
        .to_str()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && (0.0..=10_000.0).contains(ms))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "LIAG_PATH_DELAY_MS: a number of milliseconds, 0 to 10000",
            )
        })?;
    Ok((ms > 0.0).then_some(ms))
}

/// The one-way delay of every path in milliseconds (`LIAG_PATH_DELAY_MS`), if any.
pub fn path_delay_ms() -> Option<f64> {
    delay_setting().ok().flatten()
}

/// The `delayline` binary: `LIAG_DELAYLINE`, or the one beside the running executable.
fn delayline() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LIAG_DELAYLINE") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("no executable directory"))?;
    // A test binary lives in `deps/`, the binaries one directory up.
    [dir.join("delayline"), dir.join("../delayline")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::other(
                "LIAG_PATH_DELAY_MS needs delayline beside this executable (cargo build \
                 --release -p liag-benches --bin delayline) or at LIAG_DELAYLINE",
            )
        })
}

/// A fault that can hit one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server's end of the path is set down: packets vanish, nothing is reset.
    Down,
    /// The client's sockets on the path are destroyed (`ss -K`): the link fails at once.
    Reset,
    /// The path's rate drops to 1 % of its own both ways: slow, not dead.
    Degraded,
    /// The path's rate from the client drops to 1 % of its own, and the way back keeps its
    /// rate: an uplink that degrades. The client sends the stream, so its data crawls while
    /// the way back, which carries the server's acknowledgements, keeps its rate.
    DegradedUp,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 4] = [
        Fault::Down,
        Fault::Reset,
        Fault::Degraded,
        Fault::DegradedUp,
    ];

    /// The fault a command-line word names: `down`, `reset`, `degraded` or `degraded-up`.
    pub fn parse(word: &str) -> Option<Fault> {
        match word {
            "down" => Some(Fault::Down),
            "reset" => Some(Fault::Reset),
            "degraded" => Some(Fault::Degraded),
            "degraded-up" => Some(Fault::DegradedUp),
            _ => None,
        }
    }

    /// The fault's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Down => "interface down",
            Fault::Reset => "socket reset",
            Fault::Degraded => "rate at 1 %",
            Fault::DegradedUp => "rate at 1 % one way",
        }
    }
}

/// Runs a command, turning a failure into an error that carries its output.
fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl NetPaths {
    /// Whether this machine lets us make namespaces and shape paths; the reason if not.
    pub fn available() -> Result<(), String> {
        let probe = NetPaths::new(&[1.0]);
        probe.map(drop).map_err(|e| e.to_string())
    }

    /// Makes the namespaces and one path per rate (in Mbit/s), each shaped in both directions;
    /// a path whose rate is `f64::INFINITY` is left unshaped.
    pub fn new(rates_mbit: &[f64]) -> io::Result<NetPaths> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let base = format!("liag-{}-{n}", std::process::id());
        let mut paths = NetPaths {
            client: format!("{base}-c"),
            server: format!("{base}-s"),
            rates: rates_mbit.to_vec(),
            lines: Vec::new(),
        };
        run("ip", &["netns", "add", &paths.client])?;
        run("ip", &["netns", "add", &paths.server])?;
        // From here on, drop deletes what was made.
        paths.ip(Side::Client, "link set lo up")?;
        paths.ip(Side::Server, "link set lo up")?;
        paths.ip(Side::Server, &format!("addr add {SERVER}/32 dev lo"))?;
        let delay = delay_setting()?;
        for (i, &mbit) in rates_mbit.iter().enumerate() {
            let (c, s) = (Self::dev(Side::Client, i), Self::dev(Side::Server, i));
            match delay {
                Some(ms) => paths.delay_line(&c, &s, ms)?,
                None => run(
                    "ip",
                    &[
                        "link",
                        "add",
                        &c,
                        "netns",
                        &paths.client,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &s,
                        "netns",
                        &paths.server,
                    ],
                )
                .map(drop)?,
            }
            paths.ip(Side::Client, &format!("addr add 198.18.{i}.2/24 dev {c}"))?;
            paths.ip(Side::Server, &format!("addr add 198.18.{i}.1/24 dev {s}"))?;
            paths.ip(Side::Client, &format!("link set {c} up"))?;
            paths.ip(Side::Server, &format!("link set {s} up"))?;
            paths.ip(
                Side::Client,
                &format!(
                    "route add {SERVER}/32 via 198.18.{i}.1 dev {c} metric {}",
                    10 + i
                ),
            )?;
            if mbit.is_finite() {
                paths.shape(i, mbit, "add")?;
            }
        }
        Ok(paths)
    }

    /// Makes the devices `c` (client) and `s` (server) of a path that delays each packet `ms`
    /// milliseconds each way, and returns once they exist.
    fn delay_line(&mut self, c: &str, s: &str, ms: f64) -> io::Result<()> {
        let mut line = Command::new(delayline()?)
            .args([&self.client, c, &self.server, s, &ms.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let ready = line.stdout.take().map(|out| {
            let mut first = String::new();
            let _ = io::BufReader::new(out).read_line(&mut first);
            first
        });
        self.lines.push(line);
        if ready.as_deref().map(str::trim) == Some("ready") {
            Ok(())
        } else {
            Err(io::Error::other("delayline did not start"))
        }
    }

    /// The interface of path `i` on `side`.
    pub fn dev(side: Side, i: usize) -> String {
        match side {
            Side::Client => format!("pc{i}"),
            Side::Server => format!("ps{i}"),
        }
    }

    /// The namespace of `side`.
    pub fn netns(&self, side: Side) -> &str {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// The paths' rates in Mbit/s.
    pub fn rates(&self) -> &[f64] {
        &self.rates
    }

    /// Runs `ip ARGS` inside `side`'s namespace.
    pub fn ip(&self, side: Side, args: &str) -> io::Result<Output> {
        let mut all = vec!["-n", self.netns(side)];
        all.extend(args.split_whitespace());
        run("ip", &all)
    }

    /// A command that runs `program` inside `side`'s namespace.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns(side), program]);
        cmd
    }

    /// Sets path `i`'s rate in both directions (`op` is `add` or `change`). The queue holds
    /// 50 ms at that rate.
    fn shape(&self, i: usize, mbit: f64, op: &str) -> io::Result<()> {
        for side in [Side::Client, Side::Server] {
            self.shape_from(side, i, mbit, op)?;
        }
        Ok(())
    }

    /// Sets path `i`'s rate in the direction from `side` (`op` is `add` or `change`).
    fn shape_from(&self, side: Side, i: usize, mbit: f64, op: &str) -> io::Result<()> {
        let kbit = ((mbit * 1000.0) as u64).max(8);
        let dev = Self::dev(side, i);
        let args = format!(
            "exec {} tc qdisc {op} dev {dev} root tbf rate {kbit}kbit burst 16kb latency 50ms",
            self.netns(side)
        );
        let all: Vec<&str> = ["netns"]
            .into_iter()
            .chain(args.split_whitespace())
            .collect();
        run("ip", &all).map(drop)
    }

    /// Applies `fault` to path `i`.
    pub fn fault(&self, i: usize, fault: Fault) -> io::Result<()> {
        match fault {
            Fault::Down => self
                .ip(
                    Side::Server,
                    &format!("link set {} down", Self::dev(Side::Server, i)),
                )
                .map(drop),
            Fault::Reset => {
                let args = format!(
                    "netns exec {} ss -K -t src 198.18.{i}.2 dst {SERVER}",
                    self.client
                );
                run("ip", &args.split_whitespace().collect::<Vec<_>>()).map(drop)
            }
            Fault::Degraded => self.shape(i, self.rates[i] / 100.0, "change"),
            Fault::DegradedUp => self.shape_from(Side::Client, i, self.rates[i] / 100.0, "change"),
        }
    }

    /// Undoes `fault` on path `i` (a reset needs no undoing: the client reconnects).
    pub fn heal(&self, i: usize, fault: Fault) -> io::Result<()> {
        match fault {
            Fault::Down => self
                .ip(
                    Side::Server,
                    &format!("link set {} up", Self::dev(Side::Server, i)),
                )
                .map(drop),
            Fault::Reset => Ok(()),
            Fault::Degraded => self.shape(i, self.rates[i], "change"),
            Fault::DegradedUp => self.shape_from(Side::Client, i, self.rates[i], "change"),
        }
    }

    /// Runs `f` on a thread inside `side`'s namespace: sockets it makes belong there and can be
    /// used from any thread afterwards.
    pub fn within<T: Send>(&self, side: Side, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        in_netns(self.netns(side), f)
    }
}

/// Runs `f` on a thread of its own inside the network namespace `netns` (a name `ip netns`
/// knows), so the caller's thread stays where it is: what `f` makes there (sockets, devices)
/// belongs to that namespace and can be used from any thread afterwards.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let path = format!("/run/netns/{netns}");
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> io::Result<T> {
                let ns = std::fs::File::open(&path)?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

impl Drop for NetPaths {
    fn drop(&mut self) {
        for line in &mut self.lines {
            let _ = line.kill();
            let _ = line.wait();
        }
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
