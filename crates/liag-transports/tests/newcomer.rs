//! The traps a newcomer meets, each of which used to hang or fail in silence: a server that
//! does not accept, a dropped or stopped [`Links`], and two links racing past a link filter.
//! In virtual time, over in-process pipes.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use liag_transports::liag_tokio::stream_link;
use liag_transports::tcp::{TcpConnector, TcpLinkFilter};
use liag_transports::{
    AddLinkError, AttemptError, BoxFuture, BoxLink, ConnectError, ConnectionError, Connector,
    EndpointConfig, IpVersion, LinkEvent, Links, Listener, ParseLinkFilterError, Refusal, Server,
    TcpTargetError, UserData, WaitError, Welcome, connect_with,
};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Paths `pipe0`, `pipe1`, ...: each opens an in-process pipe whose other end goes to
/// `server`. `one_link_only` is a link filter that keeps a link only when no other is up.
struct Pipes {
    server: Server,
    paths: usize,
    one_link_only: bool,
}

impl Connector for Pipes {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let names = (0..self.paths).map(|i| format!("pipe{i}")).collect();
        Box::pin(async move { Ok(names) })
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        Box::pin(async move {
            let (a, b) = tokio::io::duplex(1 << 16);
            self.server.add_link(b, path, UserData::empty());
            Ok((stream_link(a), UserData::empty()))
        })
    }

    fn keep(&self, _path: &str, _welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        !self.one_link_only || others.is_empty()
    }
}

fn pipes(server: &Server, paths: usize, one_link_only: bool) -> Pipes {
    Pipes {
        server: server.clone(),
        paths,
        one_link_only,
    }
}

/// Accepts every connection and echoes what it reads.
fn echo(mut listener: Listener) {
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            let mut stream = incoming.accept();
            tokio::spawn(async move {
                let mut data = Vec::new();
                stream.read_to_end(&mut data).await?;
                stream.write_all(&data).await?;
                stream.shutdown().await
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_server_that_does_not_accept_is_named_in_the_error() {
    let (server, _listener) = Server::new(EndpointConfig::default());
    let (_stream, links) = connect_with(pipes(&server, 2, false), EndpointConfig::default());
    let error = links
        .wait_for_link(Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WaitError::NotAccepted {
                have: 0,
                wanted: 1,
                answered: 2,
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    assert!(text.contains("Incoming::accept"), "{text}");
    assert!(text.contains("answered 2 link handshake(s)"), "{text}");
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::TimedOut);
    assert_eq!(links.outgoing().awaiting_accept(), 2);

    // Past the handshake timeout, the attempts' own error says the same.
    let error = links
        .wait_for_link(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("did not accept the connection"),
        "{error}"
    );
    let last = match &error {
        WaitError::NotAccepted { last_failure, .. }
        | WaitError::NoLinkInTime { last_failure, .. } => last_failure.as_deref(),
        _ => None,
    };
    assert!(
        matches!(
            last,
            Some(AttemptError::AddLink {
                error: AddLinkError::NotAccepted,
                ..
            })
        ),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_links_keep_the_links_up() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    // What a newcomer writes: the keeper dropped at once.
    let (mut stream, _) = connect_with(pipes(&server, 2, false), EndpointConfig::default());
    let sent = vec![7u8; 1 << 20];
    let work = async {
        stream.write_all(&sent).await?;
        stream.shutdown().await?;
        let mut back = Vec::new();
        stream.read_to_end(&mut back).await?;
        io::Result::Ok(back)
    };
    let back = tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("the echo finished")
        .unwrap();
    assert_eq!(back, sent);
}

#[tokio::test(start_paused = true)]
async fn stopped_upkeep_ends_the_connection_when_its_last_link_goes() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    let (mut stream, links) = connect_with(pipes(&server, 1, false), EndpointConfig::default());
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    let control = links.outgoing().control();
    links.stop();
    drop(links);
    let link = control.links()[0].id;
    control.drop_link(link);
    // No link can come back: the stream fails instead of waiting out the no-link timeout.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the read ended");
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::NotConnected);
    assert_eq!(control.result(), Some(Err(ConnectionError::NoLinkLeft)));
}

#[tokio::test(start_paused = true)]
async fn stopped_upkeep_with_a_live_handle_waits_for_links() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    let (_stream, links) = connect_with(pipes(&server, 1, false), EndpointConfig::default());
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    let outgoing = links.outgoing().clone();
    links.stop();
    drop(links);
    let control = outgoing.control();
    control.drop_link(control.links()[0].id);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // `outgoing` can still add a link, so the connection waits (until the no-link timeout).
    assert_eq!(control.result(), None);
    drop(outgoing);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(control.result(), Some(Err(ConnectionError::NoLinkLeft)));
}

#[tokio::test(start_paused = true)]
async fn racing_links_meet_the_filter_one_after_the_other() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    let (_stream, links) = connect_with(pipes(&server, 3, true), EndpointConfig::default());
    let control = links.outgoing().control();
    let mut events = control.link_events();
    links.wait_for_link(Duration::from_secs(5)).await.unwrap();
    // All three handshakes ran at once; the filter kept the first and refused the others.
    let mut refused = 0;
    while refused < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("a refusal was published")
            .unwrap();
        if let LinkEvent::Refused { refusal, .. } = event {
            assert_eq!(refusal, Refusal::LinkFilter);
            refused += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let up = control.links();
    assert_eq!(up.len(), 1, "{up:?}");
    let error = links
        .wait_for_links(2, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("refused by the link filter"),
        "{error}"
    );
    assert!(
        matches!(
            &error,
            WaitError::NoLinkInTime {
                have: 1,
                wanted: 2,
                last_failure: Some(failure),
                ..
            } if matches!(**failure, AttemptError::AddLink { error: AddLinkError::Filtered, .. })
        ),
        "{error:?}"
    );

    // Without the link the filter compared against, a refused path gets its turn at once,
    // not after the refusal's minute of backoff.
    let first = up[0].id;
    control.drop_link(first);
    let back = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let now = control.links();
            if now.iter().any(|l| l.id != first) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("another path's link came up");
    assert_eq!(back.iter().filter(|l| l.id != first).count(), 1, "{back:?}");
}

#[tokio::test(start_paused = true)]
async fn wait_for_links_counts_links() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    let (_stream, links): (_, Links) =
        connect_with(pipes(&server, 3, false), EndpointConfig::default());
    links
        .wait_for_links(3, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(links.outgoing().control().links().len(), 3);
    // A fourth cannot come: one link per path, and there are three.
    let error = links
        .wait_for_links(4, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("3 of 4 links up within 5s: the connector names 3 path(s)"),
        "{error}"
    );
    assert!(
        matches!(
            error,
            WaitError::TooFewPaths {
                have: 3,
                wanted: 4,
                paths: 3,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connector_without_paths_is_named() {
    let (server, listener) = Server::new(EndpointConfig::default());
    echo(listener);
    let (_stream, links) = connect_with(pipes(&server, 0, false), EndpointConfig::default());
    let error = links
        .wait_for_link(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(error, WaitError::NoPath { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "no link came up within 2s: the connector names no path"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_upkeep_is_named() {
    let (server, _listener) = Server::new(EndpointConfig::default());
    let (_stream, links) = connect_with(pipes(&server, 1, false), EndpointConfig::default());
    links.stop();
    // The abort takes effect once the upkeep's task runs again.
    tokio::task::yield_now().await;
    let error = links
        .wait_for_link(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, WaitError::UpkeepStopped { .. }),
        "{error:?}"
    );
    assert!(error.to_string().ends_with("the links' upkeep was stopped"));
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_ends_while_waited_on_is_named() {
    let (server, _listener) = Server::new(EndpointConfig::default());
    let (_stream, links) = connect_with(pipes(&server, 1, false), EndpointConfig::default());
    links.outgoing().control().terminate();
    let error = links
        .wait_for_links(2, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WaitError::Ended {
                have: 0,
                wanted: 2,
                error: Some(ConnectionError::TerminatedLocally),
            }
        ),
        "{error:?}"
    );
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::NotConnected);
}

#[tokio::test]
async fn a_target_without_a_port_is_refused_by_name() {
    let connector = TcpConnector::to(["127.0.0.1:5700", "127.0.0.1"]);
    let error = connector.resolve().await.unwrap_err();
    assert!(
        matches!(
            &error,
            ConnectError::Target(TcpTargetError::NoPort { target }) if target == "127.0.0.1"
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("\"127.0.0.1\" has no port"),
        "{error}"
    );
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::InvalidInput);
    let ok = TcpConnector::to(["127.0.0.1:5700", "[::1]:5701"]);
    assert_eq!(ok.resolve().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_port_out_of_range_is_named_as_such() {
    for target in ["127.0.0.1:99999", "[::1]:70000", "localhost:"] {
        let error = TcpConnector::to([target]).resolve().await.unwrap_err();
        assert!(
            matches!(error, ConnectError::Target(TcpTargetError::BadPort { .. })),
            "{target}: {error:?}"
        );
        assert!(error.to_string().contains("is not a port"), "{error}");
    }
}

#[tokio::test]
async fn targets_without_an_address_of_the_ip_version_asked_for_are_named() {
    let mut connector = TcpConnector::to(["127.0.0.1:5700"]);
    connector.set_ip_version(IpVersion::V6);
    let error = connector
        .connect(EndpointConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectError::NoAddress { .. }), "{error:?}");
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::NotFound);
}

#[test]
fn link_filters_parse_by_name() {
    assert_eq!("none".parse(), Ok(TcpLinkFilter::None));
    assert_eq!("interface-ip".parse(), Ok(TcpLinkFilter::InterfaceIp));
    let error = "interface".parse::<TcpLinkFilter>().unwrap_err();
    let ParseLinkFilterError { given, .. } = &error;
    assert_eq!(given, "interface");
    assert_eq!(
        error.to_string(),
        "unknown link filter \"interface\"; use none, interface-interface or interface-ip"
    );
}

/// A server that takes each link and closes it at once does not make the client reconnect
/// as fast as handshakes go: a link that dies young does not reset its path's backoff.
#[tokio::test(start_paused = true)]
async fn links_closed_at_once_are_reopened_with_backoff() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `Pipes` on one path, counting the links it opens.
    struct Counted(Pipes, Arc<AtomicUsize>);
    impl Connector for Counted {
        fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
            self.0.paths()
        }
        fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.open(path)
        }
    }

    let (server, mut listener) = Server::new(EndpointConfig::default());
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            let stream = incoming.accept();
            let control = stream.control();
            let mut events = control.link_events();
            for link in control.links() {
                control.drop_link(link.id);
            }
            tokio::spawn(async move {
                let _stream = stream;
                while let Ok(event) = events.recv().await {
                    if let LinkEvent::Added { link } = event {
                        control.drop_link(link);
                    }
                }
            });
        }
    });
    let opened = Arc::new(AtomicUsize::new(0));
    let connector = Counted(pipes(&server, 1, false), opened.clone());
    let (_stream, links) = connect_with(connector, EndpointConfig::default());
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Waits of 0.25, 0.5, 1, 2, 4, 8 and then 10 s: about a dozen links in a minute.
    let opened = opened.load(Ordering::Relaxed);
    assert!((3..=16).contains(&opened), "{opened} links opened in 60 s");
    links.stop();
}
