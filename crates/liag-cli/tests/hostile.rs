//! The hostile suite, quick: every attack of `cargo xtask hostile` (with a quarter of its
//! counts) against a real `liag tunnel server` process on loopback. The server must survive
//! each and serve a real client through the tunnel after the attackers leave; memory, CPU and
//! the round trip while they hold on are printed, not checked.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
#![cfg(target_os = "linux")] // Attackers from 127.0.0.2 and beyond; the server seen in /proc.

#[path = "../../../benches/src/hostile/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod hostile;

use std::path::Path;

#[test]
fn the_server_survives_every_attack_and_serves_after() {
    let liag = Path::new(env!("CARGO_BIN_EXE_liag"));
    let reports = hostile::run(liag, true, &[]).unwrap();
    println!("{}", hostile::table(&reports));
    for r in &reports {
        assert!(r.alive, "the server died under {}", r.attack);
        assert!(r.served_after, "no client served after {}", r.attack);
        // The attacks did reach the server.
        assert!(
            r.held > 0 || r.attack == "churn",
            "{} opened no socket",
            r.attack
        );
    }
}
