//! `liag tunnel` over real kernel paths: two network namespaces joined by three veth paths
//! shaped with `tbf`, a verified stream through the tunnel, and on the way the fastest path
//! goes down and comes back, has its socket reset, or drops to 1 % of its rate both ways or
//! from the client only.
//!
//! Only that every byte arrives intact is asserted; how long the stream stalled is printed,
//! never judged here (`cargo xtask bench --only real_paths` measures it). Where namespaces
//! cannot be made (not root, no `unshare`, `ip` or `tc`), the test says so and does nothing
//! else. It runs itself in a private mount namespace (`unshare --mount`), so the named
//! network namespaces it makes vanish with it however it ends.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

// Shared with the bench (`cargo xtask bench --only real_paths`), which uses all of it.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../benches/src/netpaths.rs"]
mod netpaths;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../benches/src/tunnel_run.rs"]
mod tunnel_run;

use netpaths::{Fault, NetPaths};
use std::path::Path;
use std::process::Command;
use tunnel_run::{Plan, Tunnel};

const CHILD: &str = "LIAG_TEST_IN_MOUNT_NS";
const TEST: &str = "every_byte_arrives_through_each_fault";

#[test]
fn every_byte_arrives_through_each_fault() {
    if std::env::var_os(CHILD).is_none() {
        let private = ["--mount", "--propagation", "private"];
        let probe = Command::new("unshare").args(private).arg("true").output();
        if let Err(why) = probe.as_ref().map_err(|e| e.to_string()).and_then(|out| {
            (out.status.success())
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string())
        }) {
            eprintln!("skipped: cannot make a mount namespace: {why}");
            return;
        }
        let status = Command::new("unshare")
            .args(private)
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .status();
        match status {
            Ok(status) => assert!(status.success(), "the test in its mount namespace failed"),
            Err(e) => eprintln!("skipped: cannot run unshare: {e}"),
        }
        return;
    }
    if let Err(why) = NetPaths::available() {
        eprintln!("skipped: cannot make network namespaces with shaped veth paths: {why}");
        return;
    }
    let liag = Tunnel::liag(Path::new(env!("CARGO_BIN_EXE_liag")));
    for fault in Fault::ALL {
        let paths = NetPaths::new(&[40.0, 20.0, 10.0]).unwrap();
        let plan = Plan {
            fault: Some((0, fault)),
            fault_at: 1.5,
            heal_at: 3.0,
            end: 4.5,
        };
        let outcome = tunnel_run::run(&paths, &liag, &liag, &plan, &[]).unwrap();
        let stall = outcome
            .reads
            .iter()
            .map(|&(t, _)| t)
            .filter(|&t| t >= plan.fault_at)
            .scan(plan.fault_at, |last, t| {
                let gap = t - *last;
                *last = t;
                Some(gap)
            })
            .fold(0.0, f64::max);
        eprintln!(
            "{}: {} of {} bytes arrived, longest gap after the fault {:.0} ms",
            fault.name(),
            outcome.received,
            outcome.sent,
            stall * 1e3
        );
        assert_eq!(outcome.corrupt_at, None, "{}: a byte differs", fault.name());
        assert_eq!(
            outcome.received,
            outcome.sent,
            "{}: bytes lost",
            fault.name()
        );
        assert!(outcome.intact(), "{}: nothing was sent", fault.name());
    }
}
