//! `liag proxy` end to end on loopback: a proxy server and a proxy client over three links,
//! applications speaking SOCKS5 to the client, destinations on loopback.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use common::{Liag, free_port, liag};
use fast_socks5::client::{Config, Socks5Datagram, Socks5Stream};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

impl Drop for Proxy {
    fn drop(&mut self) {
        // A failed test shows what both ends said.
        if std::thread::panicking() {
            eprintln!("proxy server said:\n{}", self.server.heard());
            eprintln!("proxy client said:\n{}", self.client.heard());
        }
    }
}

fn token_file(dir: &str, token: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("liag-proxy-test-{}-{dir}", std::process::id()));
    std::fs::write(&path, token).unwrap();
    path
}

/// A proxy server and client on loopback, the client reaching the server over three links
/// (127.0.0.1, .2 and .3): the client's SOCKS5 address once it listens.
struct Proxy {
    server: Liag,
    client: Liag,
    socks: SocketAddr,
}

/// A proxy server and client, the client started but perhaps not yet listening.
fn start(server_token: &Path, client_token: &Path, server_extra: &[&str]) -> Proxy {
    start_with(server_token, client_token, server_extra, |port| {
        (1..=3)
            .flat_map(|i| ["--tcp".to_string(), format!("127.0.0.{i}:{port}")])
            .collect()
    })
}

/// As [`start`], the client's link arguments from `links(server's link port)`.
fn start_with(
    server_token: &Path,
    client_token: &Path,
    server_extra: &[&str],
    links: impl Fn(u16) -> Vec<String>,
) -> Proxy {
    let (server, link_port) = on_a_free_port("links on", |port| {
        let mut args = vec![
            "proxy".into(),
            "server".into(),
            "--tcp".into(),
            port.to_string(),
        ];
        args.extend(["--token-file".into(), server_token.display().to_string()]);
        args.extend(server_extra.iter().map(|a| a.to_string()));
        args
    });
    let links = links(link_port);
    let (client, socks_port) = on_a_free_port("SOCKS5 on", |port| {
        let mut args: Vec<String> = ["proxy", "client", "--tcp-link-filter", "none"]
            .map(String::from)
            .into();
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        args.extend(["--token-file".into(), client_token.display().to_string()]);
        args.extend(links.iter().cloned());
        args
    });
    let socks = SocketAddr::from(([127, 0, 0, 1], socks_port));
    Proxy {
        server,
        client,
        socks,
    }
}

/// `liag` with the arguments `args(port)` gives for a free port, once it has printed `ready`:
/// with another port if that one was taken meanwhile (the other tests open sockets all the
/// while), at most ten tries of 30 s each.
fn on_a_free_port(ready: &str, args: impl Fn(u16) -> Vec<String>) -> (Liag, u16) {
    for _ in 0..10 {
        let port = free_port();
        let args = args(port);
        let mut process = liag(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if process.heard().contains(ready) {
                return (process, port);
            }
            if process.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("liag never printed {ready:?} in ten tries");
}

/// A proxy server and client, the client listening.
fn proxy(server_token: &Path, client_token: &Path, server_extra: &[&str]) -> Proxy {
    listening(start(server_token, client_token, server_extra))
}

/// `proxy` once its client listens.
fn listening(proxy: Proxy) -> Proxy {
    let (socks, start) = (proxy.socks, Instant::now());
    while std::net::TcpStream::connect(socks).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the client never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy
}

fn allowed_proxy(name: &str) -> Proxy {
    let token = token_file(name, "a shared secret, long enough\n");
    proxy(&token, &token, &["--allow-private"])
}

/// The byte at `i` of download `seed`.
fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed)
}

/// A download server: a request is 8 bytes of length and a seed byte; the answer is that
/// many bytes of [`pattern`], then the end.
async fn download_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let len = socket.read_u64().await? as usize;
                let seed = socket.read_u8().await?;
                let mut sent = 0;
                while sent < len {
                    let chunk: Vec<u8> = (sent..len.min(sent + 65536))
                        .map(|i| pattern(seed, i))
                        .collect();
                    socket.write_all(&chunk).await?;
                    sent += chunk.len();
                }
                socket.shutdown().await
            });
        }
    });
    addr
}

async fn through(
    proxy: SocketAddr,
    host: &str,
    port: u16,
) -> fast_socks5::Result<Socks5Stream<TcpStream>> {
    Socks5Stream::connect(proxy, host.to_string(), port, Config::default()).await
}

/// Downloads `len` bytes with `seed` through the proxy and checks every one.
async fn download(proxy: SocketAddr, host: &str, port: u16, len: usize, seed: u8) {
    let mut stream = through(proxy, host, port).await.unwrap();
    stream.write_u64(len as u64).await.unwrap();
    stream.write_u8(seed).await.unwrap();
    let mut got = Vec::with_capacity(len);
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), len, "download {seed}: every byte");
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == pattern(seed, i)),
        "download {seed}: the right bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_downloads_arrive_whole_by_name_and_by_address() {
    let proxy = allowed_proxy("downloads");
    let server = download_server().await;
    let downloads: Vec<_> = (0..200u8)
        .map(|seed| {
            // Some by name, resolved on the server's side.
            let host = if seed % 4 == 0 {
                "localhost"
            } else {
                "127.0.0.1"
            };
            tokio::spawn(download(proxy.socks, host, server.port(), 64 << 10, seed))
        })
        .collect();
    let all = async {
        for d in downloads {
            d.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("200 downloads in 2 minutes");
    // One big one, too.
    tokio::time::timeout(
        Duration::from_secs(120),
        download(proxy.socks, "127.0.0.1", server.port(), 64 << 20, 7),
    )
    .await
    .expect("64 MiB in 2 minutes");
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_does_not_stop_another() {
    let proxy = allowed_proxy("stalled");
    let server = download_server().await;
    // Asks for 256 MiB and reads none of it.
    let mut stalled = through(proxy.socks, "127.0.0.1", server.port())
        .await
        .unwrap();
    stalled.write_u64(256 << 20).await.unwrap();
    stalled.write_u8(1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::time::timeout(
        Duration::from_secs(60),
        download(proxy.socks, "127.0.0.1", server.port(), 16 << 20, 2),
    )
    .await
    .expect("the other stream moves");
    // And the stalled one still has its bytes when read.
    let mut first = vec![0u8; 1 << 20];
    stalled.read_exact(&mut first).await.unwrap();
    assert!(first.iter().enumerate().all(|(i, &b)| b == pattern(1, i)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closes_pass_through_both_ways() {
    let proxy = allowed_proxy("half-close");
    // Echoes until the end, then ends.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        socket.read_to_end(&mut all).await.unwrap();
        socket.write_all(&all).await.unwrap();
        socket.shutdown().await.unwrap();
    });
    let mut stream = through(proxy.socks, "127.0.0.1", port).await.unwrap();
    stream.write_all(b"said before the end").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"said before the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_associate_carries_a_round_trip() {
    let proxy = allowed_proxy("udp");
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let control = TcpStream::connect(proxy.socks).await.unwrap();
    let udp = Socks5Datagram::bind(control, "127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 2048];
    // UDP may lose a datagram: a few tries, each waiting a while.
    let mut answer = None;
    for _ in 0..10 {
        udp.send_to(b"ping over the aggregate", echo_addr)
            .await
            .unwrap();
        if let Ok(got) = tokio::time::timeout(Duration::from_secs(3), udp.recv_from(&mut buf)).await
        {
            answer = Some(got.unwrap());
            break;
        }
    }
    let (n, from) = answer.expect("an answer");
    assert_eq!(&buf[..n], b"ping over the aggregate");
    assert_eq!(
        from.to_string(),
        echo_addr.to_string(),
        "from the echo server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_on_the_servers_own_host_are_refused_unless_allowed() {
    let token = token_file("private", "a secret of sixteen bytes or more");
    let proxy = proxy(&token, &token, &[]);
    let server = download_server().await;
    let refused = through(proxy.socks, "127.0.0.1", server.port()).await;
    let Err(e) = refused else {
        panic!("a loopback destination was opened")
    };
    assert!(e.to_string().to_lowercase().contains("not allowed"), "{e}");
}

#[test]
fn a_wrong_token_is_refused_with_a_clear_error() {
    let right = token_file("right", "the right one, long enough");
    let wrong = token_file("wrong", "a wrong one, long enough too");
    let mut proxy = start(&right, &wrong, &["--allow-private"]);
    // The client greets the server as it starts, and gives up at the first refusal, its
    // other lane too.
    let status = proxy.client.exits_saying("refused the token");
    assert_eq!(status.code(), Some(1), "{}", proxy.client.heard());
    let start = Instant::now();
    while !proxy.server.heard().contains("wrong token") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server said: {}",
            proxy.server.heard()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_server_open_to_anyone_refuses_to_start() {
    let mut server = liag(&["proxy", "server", "--tcp", &free_port().to_string()]);
    assert!(!server.exits_saying("--token-file").success());
}

/// A plain SOCKS5 proxy (no authentication, CONNECT only) on loopback.
struct Socks5Proxy {
    addr: SocketAddr,
    /// Connections relayed so far.
    relayed: Arc<AtomicUsize>,
    /// Ends every connection it relays now, as a failing path would.
    cut: Arc<tokio::sync::Notify>,
}

async fn socks5_proxy() -> Socks5Proxy {
    use fast_socks5::server::Socks5ServerProtocol;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relayed = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(tokio::sync::Notify::new());
    let (count, cut_here) = (relayed.clone(), cut.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (count, cut) = (count.clone(), cut_here.clone());
            tokio::spawn(async move {
                let proto = Socks5ServerProtocol::accept_no_auth(socket).await.ok()?;
                let (proto, _, target) = proto.read_command().await.ok()?;
                let (host, port) = target.into_string_and_port();
                let mut out = TcpStream::connect((host.as_str(), port)).await.ok()?;
                let mut socket = proto.reply_success(out.local_addr().ok()?).await.ok()?;
                count.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut socket, &mut out) => {}
                    _ = cut.notified() => {}
                }
                Some(())
            });
        }
    });
    Socks5Proxy { addr, relayed, cut }
}

/// A proxy client whose links go through `proxies` only.
fn through_proxies(name: &str, proxies: &[&Socks5Proxy]) -> Proxy {
    let token = token_file(name, "a secret of sixteen bytes or more");
    let proxies: Vec<SocketAddr> = proxies.iter().map(|p| p.addr).collect();
    listening(start_with(
        &token,
        &token,
        &["--allow-private"],
        move |port| {
            let mut args: Vec<String> = proxies
                .iter()
                .flat_map(|p| ["--socks".into(), p.to_string()])
                .collect();
            args.extend(["--socks-target".into(), format!("127.0.0.1:{port}")]);
            args
        },
    ))
}

/// Waits up to 30 s until each of `proxies` has relayed a link.
async fn each_relays(proxies: &[&Socks5Proxy]) {
    let start = Instant::now();
    while proxies
        .iter()
        .any(|p| p.relayed.load(Ordering::Relaxed) == 0)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a link through each proxy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_can_go_through_socks5_proxies() {
    let (first, second) = (socks5_proxy().await, socks5_proxy().await);
    let proxy = through_proxies("socks-links", &[&first, &second]);
    let server = download_server().await;
    let fetched = download(proxy.socks, "127.0.0.1", server.port(), 4 << 20, 9);
    tokio::time::timeout(Duration::from_secs(60), fetched)
        .await
        .expect("a download in a minute");
    each_relays(&[&first, &second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_mid_transfer_loses_nothing() {
    let (first, second) = (socks5_proxy().await, socks5_proxy().await);
    let proxy = through_proxies("link-cut", &[&first, &second]);
    each_relays(&[&first, &second]).await;
    let server = download_server().await;
    let len = 64 << 20;
    let mut stream = through(proxy.socks, "127.0.0.1", server.port())
        .await
        .unwrap();
    stream.write_u64(len as u64).await.unwrap();
    stream.write_u8(3).await.unwrap();
    let mut got = vec![0u8; len];
    let cut_at = 8 << 20;
    let reading = async {
        stream.read_exact(&mut got[..cut_at]).await.unwrap();
        // One path fails mid-transfer: its link ends with bytes in flight on it.
        first.cut.notify_waiters();
        stream.read_exact(&mut got[cut_at..]).await.unwrap();
        assert_eq!(stream.read(&mut [0u8; 1]).await.unwrap(), 0, "then the end");
    };
    tokio::time::timeout(Duration::from_secs(120), reading)
        .await
        .expect("the download goes on");
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == pattern(3, i)),
        "every byte, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_asked_for_when_given() {
    let token = token_file("login", "a secret of sixteen bytes or more");
    let login = token_file("login-file", "alice:open sesame\n");
    let login_arg = login.display().to_string();
    let proxy = listening(start_with(&token, &token, &["--allow-private"], |port| {
        vec![
            "--tcp".into(),
            format!("127.0.0.1:{port}"),
            "--listen-auth-file".into(),
            login_arg.clone(),
        ]
    }));
    let server = download_server().await;
    let target = "127.0.0.1".to_string();
    let with = |user: &str, password: &str| {
        Socks5Stream::connect_with_password(
            proxy.socks,
            target.clone(),
            server.port(),
            user.into(),
            password.into(),
            Config::default(),
        )
    };
    assert!(
        with("alice", "open sesame").await.is_ok(),
        "the right login"
    );
    assert!(
        with("alice", "open says me").await.is_err(),
        "a wrong password"
    );
    assert!(with("bob", "open sesame").await.is_err(), "a wrong user");
    assert!(
        through(proxy.socks, "127.0.0.1", server.port())
            .await
            .is_err(),
        "no login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_destinations_are_reached() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(b"over IPv6").await.unwrap();
    });
    let proxy = allowed_proxy("ipv6");
    let mut stream = through(proxy.socks, "::1", port).await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"over IPv6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_passes_through() {
    let proxy = allowed_proxy("reset");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // Once the connection is through: a zero linger, so closing resets it.
        socket.read_u8().await.unwrap();
        socket.set_zero_linger().unwrap();
        drop(socket);
    });
    let mut stream = through(proxy.socks, "127.0.0.1", port).await.unwrap();
    stream.write_u8(1).await.unwrap();
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got))
        .await
        .expect("the end comes through");
    let e = ended.expect_err("a reset, not a clean end");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

/// `curl --socks5-hostname` through the proxy to a local web server (skipped where curl is
/// not installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_a_page_by_name_through_the_proxy() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let body: Vec<u8> = (0..300_000).map(|i| pattern(5, i)).collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = body.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await?;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    page.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(&page).await?;
                socket.shutdown().await
            });
        }
    });
    let proxy = allowed_proxy("curl");
    let socks = proxy.socks.to_string();
    let url = format!("http://localhost:{port}/page");
    let fetched = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "30", "--socks5-hostname", &socks, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(fetched.stdout == body, "the page, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_stream_limit_waits_for_a_free_one() {
    let proxy = allowed_proxy("stream-limit");
    // Holds every connection open, echoing each byte.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                while socket.read(&mut byte).await? == 1 {
                    socket.write_all(&byte).await?;
                }
                std::io::Result::Ok(())
            });
        }
    });
    // The client's limit (224), and one more that has to wait.
    let mut held = Vec::new();
    for _ in 0..224 {
        held.push(through(proxy.socks, "127.0.0.1", port).await.unwrap());
    }
    let socks = proxy.socks;
    let mut waiting = tokio::spawn(async move { through(socks, "127.0.0.1", port).await });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(early.is_err(), "the 225th waits while 224 are open");
    // The connection lives on: the streams held still answer.
    for stream in held.iter_mut().step_by(37) {
        stream.write_u8(9).await.unwrap();
        assert_eq!(stream.read_u8().await.unwrap(), 9);
    }
    drop(held.pop());
    let mut again = tokio::time::timeout(Duration::from_secs(14), waiting)
        .await
        .expect("a slot frees up")
        .unwrap()
        .unwrap();
    again.write_u8(7).await.unwrap();
    assert_eq!(again.read_u8().await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_can_be_websockets() {
    let token = token_file("websocket", "a secret of sixteen bytes or more");
    // The WebSocket port may be taken between choosing and binding it: another, then.
    let mut tries = 0;
    let proxy = loop {
        tries += 1;
        let ws_port = free_port();
        let ws_arg = ws_port.to_string();
        let mut proxy = listening(start_with(
            &token,
            &token,
            &["--allow-private", "--websocket", &ws_arg],
            |_| vec!["--websocket".into(), format!("127.0.0.1:{ws_port}")],
        ));
        let start = Instant::now();
        while !proxy.server.heard().contains("links on WebSocket")
            && proxy.server.child.try_wait().unwrap().is_none()
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if proxy.server.heard().contains("links on WebSocket") {
            break proxy;
        }
        assert!(tries < 10, "the server never took WebSocket links");
    };
    let server = download_server().await;
    let fetched = download(proxy.socks, "127.0.0.1", server.port(), 4 << 20, 11);
    tokio::time::timeout(Duration::from_secs(60), fetched)
        .await
        .expect("a download over WebSocket links in a minute");
}

/// Bytes the proxy client's links received, per aggregated connection, from its metrics on
/// `port`, once each connection has received at least `least` and one of them `most`; at
/// most 30 s of asking, then what there is.
fn received_per_connection(port: u16, least: f64, most: f64) -> Vec<f64> {
    let start = Instant::now();
    loop {
        let mut per = std::collections::BTreeMap::<String, f64>::new();
        for line in common::http_get(port, "/metrics").lines() {
            if !line.starts_with("liag_link_received_bytes_total{") {
                continue;
            }
            let (_, labels, value) = common::parse_sample(line);
            if let Some((_, connection)) = labels.iter().find(|(k, _)| k == "connection") {
                *per.entry(connection.clone()).or_default() += value;
            }
        }
        let sums: Vec<f64> = per.into_values().collect();
        let done = sums.iter().all(|&s| s >= least) && sums.iter().any(|&s| s >= most);
        if done || start.elapsed() > Duration::from_secs(30) {
            return sums;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opened_beside_a_download_takes_another_lane() {
    let token = token_file("lanes", "a shared secret, long enough\n");
    let metrics = free_port();
    let mut proxy = listening(start_with(&token, &token, &["--allow-private"], |port| {
        let metrics = format!("127.0.0.1:{metrics}");
        let link = format!("127.0.0.1:{port}");
        ["--tcp", &link, "--metrics", &metrics]
            .map(String::from)
            .into()
    }));
    for lane in ["(lane 1 of 2): connected", "(lane 2 of 2): connected"] {
        let heard = proxy.client.wait_for(lane, Duration::from_secs(30));
        assert!(heard.is_some(), "{}", proxy.client.heard());
    }
    let server = download_server().await;
    let port = server.port();
    // An idle connection takes the first lane, a download the second (the first has a stream).
    let _idle = through(proxy.socks, "127.0.0.1", port).await.unwrap();
    let (len, read) = (64usize << 20, Arc::new(AtomicUsize::new(0)));
    let mut stream = through(proxy.socks, "127.0.0.1", port).await.unwrap();
    stream.write_u64(len as u64).await.unwrap();
    stream.write_u8(1).await.unwrap();
    let counted = read.clone();
    let big = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        let mut at = 0;
        while at < len {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the download ended at {at} of {len}");
            assert!(
                buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == pattern(1, at + i))
            );
            at += n;
            counted.store(at, Ordering::Relaxed);
            // At most about 100 MB/s, so that it still flows when the next streams open.
            if at % (1 << 20) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let flowing = async {
        while read.load(Ordering::Relaxed) < 8 << 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flowing)
        .await
        .expect("the download flows");
    // The client reads its lanes' traffic every 200 ms: give it a few readings.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each lane holds one stream, and the second carries the download: another idle
    // connection takes the first lane by its traffic, and so does a download opened next,
    // though the first lane now holds two streams to the second's one.
    let _idle_too = through(proxy.socks, "127.0.0.1", port).await.unwrap();
    let small = 4usize << 20;
    download(proxy.socks, "127.0.0.1", port, small, 2).await;
    tokio::time::timeout(Duration::from_secs(120), big)
        .await
        .expect("the download ends")
        .unwrap();
    let mut sums = received_per_connection(metrics, small as f64, len as f64);
    sums.sort_by(f64::total_cmp);
    assert_eq!(sums.len(), 2, "{sums:?}");
    // The quiet lane received the small download; the busy one, the big one.
    assert!(sums[0] >= small as f64, "{sums:?}");
    assert!(sums[1] >= len as f64, "{sums:?}");
}
