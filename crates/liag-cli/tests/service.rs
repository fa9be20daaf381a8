//! `liag tunnel` run as a service: a configuration file, clean shutdown on SIGTERM, SIGHUP
//! reloading the forwarded ports, and `liag config show`.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::{Liag, http_get, liag, liag_with_env, listening, parse_sample};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long anything may take on a busy machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A file `name` in a directory of this test's own, holding `text`.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liag-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An echo server on loopback that serves any number of connections; its port.
fn echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = socket.read(&mut buf) {
                    if socket.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                let _ = socket.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// `liag COMMAND --config FILE`, the file holding `text(port)` for a free link port `port`,
/// once it listens there; the process and the port.
fn configured(name: &str, command: [&str; 2], text: impl Fn(u16) -> String) -> (Liag, u16) {
    let (process, port, probe) = listening(|port| {
        let config = file(&format!("{name}-{port}.toml"), &text(port));
        vec![
            command[0].into(),
            command[1].into(),
            "--config".into(),
            config.display().to_string(),
        ]
    });
    drop(probe);
    (process, port)
}

/// A tunnel server publishing `echo` from a configuration file; its link port.
fn server(name: &str, echo: u16) -> (Liag, u16) {
    configured(name, ["tunnel", "server"], |port| {
        format!("port = [\"{echo}\"]\ntcp = {port}\n")
    })
}

/// A tunnel client forwarding local `port` to the server's `echo`, from configuration file
/// `config`, once it listens.
fn client(config: &Path, port: u16) -> Liag {
    let mut client = liag(&["tunnel", "client", "--config", config.to_str().unwrap()]);
    let listens = format!("127.0.0.1:{port} -> server port");
    assert!(
        client.wait_for(&listens, PATIENCE).is_some(),
        "the client never listened: {}",
        client.heard()
    );
    client
}

/// A round trip through a forwarded port.
fn echoes(port: u16) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    socket.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    socket
}

#[test]
fn sigterm_ends_forwarded_connections_cleanly_and_exits_0() {
    let echo = echo();
    let (mut server, link_port) = server("term", echo);
    let local = common::free_port();
    let config = file(
        "term-client.toml",
        &format!("port = [\"{echo}:{local}\"]\ntcp = [\"127.0.0.1:{link_port}\"]\n"),
    );
    let mut client = client(&config, local);
    // Connections that came and went leave nothing behind for the shutdown to wait for.
    for _ in 0..3 {
        drop(echoes(local));
    }
    let mut socket = echoes(local);

    server.signal("TERM");
    // The application sees the end of the stream, not a reset or a hang.
    let mut rest = Vec::new();
    match socket.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(e) => panic!("the forwarded connection did not end cleanly: {e}"),
    }
    let status = server
        .exit_within(PATIENCE)
        .expect("the server did not exit");
    assert!(status.success(), "{status}: {}", server.heard());
    assert!(server.heard().contains("SIGTERM"), "{}", server.heard());
    assert!(server.heard().contains("stopped"), "{}", server.heard());
    assert!(
        !client.heard().contains("connection from"),
        "the client saw an error: {}",
        client.heard()
    );

    client.signal("INT");
    let status = client
        .exit_within(PATIENCE)
        .expect("the client did not exit");
    assert!(status.success(), "{status}: {}", client.heard());
    assert!(
        !client.heard().contains("did not end in time"),
        "{}",
        client.heard()
    );
}

#[test]
fn sighup_applies_a_changed_configuration_file() {
    let echo = echo();
    let (_server, link_port) = server("hup", echo);
    let (first, second) = (common::free_port(), common::free_port());
    let text =
        |local: u16| format!("port = [\"{echo}:{local}\"]\ntcp = [\"127.0.0.1:{link_port}\"]\n");
    let config = file("hup-client.toml", &text(first));
    let mut client = client(&config, first);
    drop(echoes(first));

    std::fs::write(&config, text(second)).unwrap();
    client.signal("HUP");
    let listens = format!("127.0.0.1:{second} -> server port");
    assert!(
        client.wait_for(&listens, PATIENCE).is_some(),
        "the reload did not add the port: {}",
        client.heard()
    );
    assert!(
        client
            .wait_for("no more forwarding from port", PATIENCE)
            .is_some(),
        "the reload did not remove the port: {}",
        client.heard()
    );
    drop(echoes(second));
    let refused = TcpStream::connect(("127.0.0.1", first)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    // A broken file changes nothing and says where it is broken.
    std::fs::write(&config, "port = [\"1:2\"]\ntcpp = 1\n").unwrap();
    client.signal("HUP");
    assert!(
        client
            .wait_for("hup-client.toml:2: `tcpp`", PATIENCE)
            .is_some(),
        "{}",
        client.heard()
    );
    drop(echoes(second));
}

#[test]
fn config_show_prints_the_effective_configuration() {
    let config = file("show.toml", "port = [\"22\", \"db:5432\"]\ntls = true\n");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_liag"))
            .args(args)
            .output()
            .unwrap()
    };
    let shown = run(&[
        "config",
        "show",
        "tunnel",
        "server",
        "--config",
        config.to_str().unwrap(),
        "--tcp",
        "7000",
    ]);
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8(shown.stdout).unwrap();
    for line in [
        "port = [22, \"db:5432\"]",
        "tcp = 7000",
        "tls = true",
        "memory-budget = 128",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // What it prints runs as it is.
    let again = file("show-again.toml", &text);
    let shown_again = run(&[
        "config",
        "show",
        "tunnel",
        "server",
        "--config",
        again.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(shown_again.stdout).unwrap(), text);

    let bad = file("bad.toml", "port = [\"22\"]\ntcp = \"many\"\n");
    let refused = run(&["tunnel", "server", "--config", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8(refused.stderr).unwrap();
    assert!(
        said.contains("bad.toml:2: `tcp`: invalid value 'many'"),
        "{said}"
    );
}

#[test]
fn metrics_are_served_in_the_prometheus_format() {
    let echo = echo();
    let metrics_port = std::cell::Cell::new(0);
    let (_server, link_port) = configured("metrics", ["tunnel", "server"], |port| {
        metrics_port.set(common::free_port());
        format!(
            "port = [\"{echo}\"]\ntcp = {port}\nmetrics = \"127.0.0.1:{}\"\n",
            metrics_port.get()
        )
    });
    let local = common::free_port();
    let config = file(
        "metrics-client.toml",
        &format!("port = [\"{echo}:{local}\"]\ntcp = [\"127.0.0.1:{link_port}\"]\n"),
    );
    let _client = client(&config, local);
    let _socket = echoes(local);

    // Sampled every second: wait for the connection's link to show.
    let start = std::time::Instant::now();
    let samples = loop {
        let body = http_get(metrics_port.get(), "/metrics");
        let samples: Vec<_> = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_sample)
            .collect();
        let has = |name: &str| samples.iter().any(|(n, ..)| n == name);
        if has("liag_link_sent_bytes_total") && has("liag_handshakes_accepted_total") {
            break samples;
        }
        assert!(start.elapsed() < PATIENCE, "no link metrics in {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let value = |name: &str, label: (&str, &str)| {
        samples
            .iter()
            .find(|(n, labels, _)| {
                n == name && labels.iter().any(|(k, v)| k == label.0 && v == label.1)
            })
            .map(|(.., v)| *v)
            .unwrap_or_else(|| panic!("no {name} with {label:?} in {samples:?}"))
    };
    assert!(
        samples.iter().all(|(n, ..)| n.starts_with("liag_")),
        "{samples:?}"
    );
    assert_eq!(
        value("liag_connections_open", ("command", "tunnel-server")),
        1.0
    );
    assert!(
        value(
            "liag_handshakes_accepted_total",
            ("command", "tunnel-server")
        ) >= 1.0
    );
    assert_eq!(value("liag_link_state", ("state", "active")), 1.0);
    assert_eq!(value("liag_link_tier", ("tier", "primary")), 1.0);
    assert_eq!(value("liag_link_tier", ("tier", "backup")), 0.0);
    assert!(value("liag_link_sent_bytes_total", ("command", "tunnel-server")) > 0.0);
    // One link: nothing to copy to.
    assert_eq!(
        value("liag_link_copied_bytes_total", ("command", "tunnel-server")),
        0.0
    );
    assert!(value("liag_link_rtt_seconds", ("command", "tunnel-server")) > 0.0);
    assert!(value("liag_link_min_rtt_seconds", ("command", "tunnel-server")) > 0.0);
    assert!(
        value(
            "liag_link_rate_bytes_per_second",
            ("command", "tunnel-server")
        ) > 0.0
    );
    assert!(value("liag_link_window_bytes", ("command", "tunnel-server")) > 0.0);
    assert_eq!(value("liag_link_events_total", ("event", "up")), 1.0);
    assert_eq!(
        value("liag_handshakes_refused_total", ("reason", "not_listening")),
        0.0
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let (mut server, _, probe) = listening(|port| {
        [
            "--log-format",
            "json",
            "tunnel",
            "server",
            "-p",
            "22",
            "--tcp",
        ]
        .map(String::from)
        .into_iter()
        .chain([port.to_string()])
        .collect()
    });
    drop(probe);
    server.signal("TERM");
    let status = server
        .exit_within(PATIENCE)
        .expect("the server did not exit");
    assert!(status.success(), "{status}");
    let said = server.wait_for("stopped", PATIENCE).expect("no stop said");
    let messages: Vec<String> = said
        .lines()
        .map(|line| {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
            assert_eq!(event["target"], "liag::cli", "{line}");
            event["fields"]["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("links on TCP")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("SIGTERM")),
        "{messages:?}"
    );
}

/// A SOCKS5 CONNECT to 127.0.0.1:`port` through the proxy client on `socks`.
fn socks_connect(socks: u16, port: u16) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", socks)).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    socket.read_exact(&mut method).unwrap();
    assert_eq!(method, [5, 0]);
    let [hi, lo] = port.to_be_bytes();
    socket
        .write_all(&[5, 1, 0, 1, 127, 0, 0, 1, hi, lo])
        .unwrap();
    let mut reply = [0u8; 10];
    socket.read_exact(&mut reply).unwrap();
    assert_eq!(reply[..2], [5, 0], "the proxy did not connect");
    socket
}

#[test]
fn the_proxy_follows_a_reload_and_ends_cleanly_on_sigterm() {
    let echo = echo();
    let (mut server, link_port) = configured("proxy-server", ["proxy", "server"], |port| {
        format!("loopback-only = true\nallow-private = true\ntcp = {port}\n")
    });
    let socks = common::free_port();
    let config = file(
        "proxy-client.toml",
        &format!("listen = \"127.0.0.1:{socks}\"\ntcp = [\"127.0.0.1:{link_port}\"]\n"),
    );
    let mut client = liag(&["proxy", "client", "--config", config.to_str().unwrap()]);
    assert!(
        client
            .wait_for("connected to the server", PATIENCE)
            .is_some(),
        "{}",
        client.heard()
    );
    let mut socket = socks_connect(socks, echo);
    let mut round_trip = || {
        socket.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        socket.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
    };
    round_trip();

    // A reload to a path that does not work (the server listens on loopback only) keeps the
    // working link: make before break.
    let reload_to = |client: &Liag, target: &str| {
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:{socks}\"\ntcp = [\"{target}:{link_port}\"]\n"),
        )
        .unwrap();
        client.signal("HUP");
    };
    reload_to(&client, "127.0.0.3");
    std::thread::sleep(Duration::from_secs(2));
    round_trip();
    assert!(!client.heard().contains("link down"), "{}", client.heard());

    // A reload to a path that works moves the running connection over, and the proxied
    // connection goes on over it.
    reload_to(&client, "[::1]");
    let up = format!("link up: lo -> [::1]:{link_port}");
    let down = format!("link down: lo -> 127.0.0.1:{link_port}");
    assert!(
        client.wait_for(&up, PATIENCE).is_some(),
        "{}",
        client.heard()
    );
    assert!(
        client.wait_for(&down, PATIENCE).is_some(),
        "{}",
        client.heard()
    );
    round_trip();

    client.signal("TERM");
    let status = client
        .exit_within(PATIENCE)
        .expect("the client did not exit");
    assert!(status.success(), "{status}: {}", client.heard());
    // The proxied connection ends; the server sees its client leave, with no error.
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    server.signal("TERM");
    let status = server
        .exit_within(PATIENCE)
        .expect("the server did not exit");
    assert!(status.success(), "{status}: {}", server.heard());
    // Its last words may still be on their way from the pipe's reader.
    let heard = server.wait_for("stopped", PATIENCE);
    let heard = heard.unwrap_or_else(|| panic!("{}", server.heard()));
    assert!(!heard.contains("failed"), "{heard}");
}

#[test]
fn the_systemd_units_and_example_files_are_valid() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd");
    for (unit, config) in [
        ("liag-tunnel-server.service", "tunnel-server.toml"),
        ("liag-tunnel-client@.service", "tunnel-client-example.toml"),
    ] {
        let text = std::fs::read_to_string(contrib.join(unit)).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/liag "))
            .unwrap_or_else(|| panic!("no ExecStart in {unit}"));
        // The unit's command line, with the example file in place of /etc/liag's.
        let mut args = vec!["config".to_string(), "show".to_string()];
        for arg in exec.split_whitespace() {
            if arg.starts_with("/etc/liag/") {
                args.push(contrib.join(config).display().to_string());
            } else {
                args.push(arg.to_string());
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_liag"))
            .args(&args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{unit} with {config}: {said}");
        let shown = String::from_utf8(out.stdout).unwrap();
        assert!(shown.contains("no-monitor = true"), "{shown}");
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("metrics = \"127.0.0.1:")),
            "{shown}"
        );
    }
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("liag-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(PATIENCE)).unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = systemd.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let config = file("notify.toml", "port = [\"22\"]\ntcp = 0\n");
    let mut server = liag_with_env(
        &["tunnel", "server", "--config", config.to_str().unwrap()],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    assert_eq!(next(), "READY=1\n", "{}", server.heard());
    server.signal("HUP");
    assert_eq!(next(), "RELOADING=1\n");
    assert_eq!(next(), "READY=1\n");
    server.signal("TERM");
    assert_eq!(next(), "STOPPING=1\n");
    let status = server
        .exit_within(PATIENCE)
        .expect("the server did not exit");
    assert!(status.success(), "{status}");
}
