//! The `liag` binary end to end: the demo, and argument errors a person can act on.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::Command;

fn liag(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liag"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn demo_verifies_every_byte() {
    let out = liag(&["demo", "--duration", "3", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["verified"], true);
    assert!(summary["bytes_verified"].as_u64().unwrap() > 1_000_000);
    assert_eq!(summary["bytes_verified"], summary["bytes_sent"]);
    assert!(summary["stall_after_cut_ms"].is_number());
}

#[test]
fn demo_plain_output_has_a_line_per_link() {
    let out = liag(&[
        "demo",
        "--duration",
        "2",
        "--no-fault",
        "--link",
        "20mbit/2ms",
        "--link",
        "10mbit/10ms",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("link 0") && stdout.contains("link 1") && !stdout.contains("link 2"));
    assert!(stdout.contains("every byte arrived intact"));
}

#[test]
fn bad_arguments_are_explained() {
    for (args, expected) in [
        (&["demo", "--link", "fast"][..], "expected RATE/DELAY"),
        (
            &["demo", "--link", "40parsec/5ms"][..],
            "is not a number with a unit",
        ),
        (&["demo", "--duration", "0"][..], "from 1 to 3600"),
        (&["nonsense"][..], "unrecognized subcommand"),
    ] {
        let out = liag(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn help_has_examples() {
    let out = liag(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Examples:") && stdout.contains("liag demo"));
}

/// A build without Bluetooth says so, and how to get it, when asked for RFCOMM links.
#[cfg(not(feature = "bluetooth"))]
#[test]
fn rfcomm_without_bluetooth_names_the_feature() {
    let out = liag(&["speed", "client", "--rfcomm", "AA:BB:CC:DD:EE:FF"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--features bluetooth"), "{stderr}");
}
