//! A path with its own propagation delay between two network namespaces, where the kernel
//! offers no netem: a TUN device in each namespace, and this process carrying every packet
//! from one to the other after a fixed delay, each way. Rate and queue stay with the kernel:
//! the caller's `tbf` on each TUN device shapes what enters the line, as on a veth path.
//!
//! `delayline NS_A DEV_A NS_B DEV_B MS` (root, and `/dev/net/tun`): creates `DEV_A` in the
//! namespace `NS_A` and `DEV_B` in `NS_B` (both down and without addresses, for the caller to
//! set up), prints `ready`, and carries packets until it is killed or either device fails
//! (deleted, or its namespace gone); then it exits, and the devices go with it. The delay is
//! one way, so a path's round trip gains `2 * MS` milliseconds. `benches/both_ways.sh` runs
//! it when `DELAY` is set, and `benches/src/netpaths.rs` with `LIAG_PATH_DELAY_MS`. Linux
//! only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use liag_benches::netpaths::in_netns;

/// `struct ifreq` as `TUNSETIFF` reads it: the name, the flags, and the rest of the union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// Creates the TUN device `name` (layer 3, no packet information) in the network namespace
/// `netns` (a name `ip netns` knows) and returns its file. The device is made from a thread
/// inside the namespace ([`in_netns`]), so this process stays in its own and `ip netns pids`
/// never counts it among the namespace's.
fn open_tun(netns: &str, name: &str) -> io::Result<File> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad device name",
        ));
    }
    let tun = in_netns(netns, || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
    })??;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _rest: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a live `struct ifreq` of the size the kernel reads for TUNSETIFF, and
    // the descriptor is the open `/dev/net/tun` above.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tun)
}

/// Carries every packet read from `from` to `to`, `delay` after it was read, in order, until
/// either device fails; then it sends why on `done`.
fn carry(mut from: File, mut to: File, delay: Duration, done: mpsc::Sender<io::Error>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer_done = done.clone();
    thread::spawn(move || {
        for (due, packet) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            // A packet the device refuses (down, or malformed) is lost, as on any path; any
            // other failure means the device went away.
            if let Err(e) = to.write(&packet) {
                if !matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) {
                    let _ = writer_done.send(e);
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 1 << 16];
    let error = loop {
        match from.read(&mut buf) {
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    // The writer ended and said why.
                    return;
                }
            }
            Err(e) => break e,
        }
    };
    let _ = done.send(error);
}

fn run(args: &[String]) -> io::Result<()> {
    let [ns_a, dev_a, ns_b, dev_b, ms] = args else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: delayline NS_A DEV_A NS_B DEV_B MS",
        ));
    };
    let ms: f64 = ms
        .parse()
        .ok()
        .filter(|ms: &f64| ms.is_finite() && (0.0..=10_000.0).contains(ms))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "MS: 0 to 10000"))?;
    let delay = Duration::from_secs_f64(ms / 1000.0);
    let a = open_tun(ns_a, dev_a)?;
    let b = open_tun(ns_b, dev_b)?;
    println!("ready");
    // The first failure of either way ends the process, and both ways with it.
    let (done, failed) = mpsc::channel();
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let back = done.clone();
    thread::spawn(move || carry(b2, a2, delay, back));
    thread::spawn(move || carry(a, b, delay, done));
    Err(failed
        .recv()
        .unwrap_or_else(|_| io::Error::other("both ways ended")))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("delayline: {e}");
            ExitCode::FAILURE
        }
    }
}
