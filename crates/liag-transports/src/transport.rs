//! The traits a transport implements, and the generic loops that run them: [`serve`] for an
//! [`Acceptor`], [`Links`] (from [`connect_with`]) keeping a [`Connector`]'s links up.

use liag_tokio::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::WaitError;
use crate::keep::Status;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use liag_tokio::{BoxLink, Connection, EndpointConfig, LinkGuard, Outgoing, Server, connect};
use liag_tokio::{LinkConfig, UserData, Welcome};

/// Opens links towards one peer: a TCP connector, a WebSocket client, your own.
pub trait Connector: Send + Sync + 'static {
    /// The paths links can be opened on now, each with a unique name such as
    /// `"eth0 -> 192.0.2.1:5700"`. Asked again every second, so paths may come and go.
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>>;

    /// Opens the transport of one path and returns it with this side's user data for the
    /// link. The handshake follows.
    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>>;

    /// Whether to keep a new link on `path`, whose server sent `welcome`, beside the links
    /// already up on other paths (`others`: path and the server's user data). A link filter
    /// (spec §10.5); by default every link is kept.
    ///
    /// Links reaching the filter at once are measured one after another, each against the
    /// links kept before it, so it runs under a lock shared with the link upkeep: make it a
    /// quick comparison that never blocks.
    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        let _ = (path, welcome, others);
        true
    }

    /// The settings of a link on `path`, such as its [`liag_tokio::Tier`]; applied as the
    /// link joins, and to the links already up when the connector replaces another
    /// ([`Links::set_connector`]). By default the connection's own.
    fn link_config(&self, path: &str) -> LinkConfig {
        let _ = path;
        LinkConfig::default()
    }
}

/// A transport an acceptor took in, ready for the link handshake.
///
/// Give it the peer's address ([`Accepted::with_peer`]) wherever the transport has one:
/// without it, the [`Server`]'s per-source limits do not apply to the link, and all links
/// without an address count as one source when handshakes are too many.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<T> {
    /// The transport: a link, or a byte stream still to be framed.
    pub io: T,
    /// A name for the link, such as `"eth0 <- 192.0.2.7:40112"`.
    pub tag: String,
    /// This side's user data for the link (sent in the Welcome).
    pub user_data: UserData,
    /// The peer's IP address, where the transport has one: a [`Server`] limits what each
    /// source may hold (`EndpointConfig::max_links_per_source` and
    /// `EndpointConfig::max_connections_per_source`).
    pub peer: Option<IpAddr>,
    /// What the transport needs to hear of the link: a WebSocket acceptor's meter.
    pub(crate) hooks: Option<Hooks>,
}

/// A transport's [`LinkGuard`], carried by the link it becomes.
#[derive(Clone)]
pub(crate) struct Hooks(pub(crate) Arc<dyn LinkGuard + Sync>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

impl<T> Accepted<T> {
    /// A transport with no peer address.
    pub fn new(io: T, tag: impl Into<String>, user_data: UserData) -> Self {
        Accepted {
            io,
            tag: tag.into(),
            user_data,
            peer: None,
            hooks: None,
        }
    }

    /// The same, from the peer address `peer`.
    pub fn with_peer(mut self, peer: IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The same with the transport changed by `f` (wrapped in TLS, framed as a link).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Accepted<U> {
        Accepted {
            io: f(self.io),
            tag: self.tag,
            user_data: self.user_data,
            peer: self.peer,
            hooks: self.hooks,
        }
    }

    /// The transport, and everything else about it, for a wrapper that changes the transport
    /// over time (a TLS handshake) and puts it back with [`Accepted::map`].
    pub fn split(self) -> (T, Accepted<()>) {
        let rest = Accepted {
            io: (),
            tag: self.tag,
            user_data: self.user_data,
            peer: self.peer,
            hooks: self.hooks,
        };
        (self.io, rest)
    }
}

/// Accepts links for a server: a TCP listener, a WebSocket route, your own.
pub trait Acceptor: Send + 'static {
    /// The next incoming transport with a tag for it, this side's user data for the link and
    /// the peer's address if it has one.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxLink>>>;
}

/// Hands every transport `acceptor` accepts to `server`, until the acceptor fails.
pub async fn serve(mut acceptor: impl Acceptor, server: Server) -> io::Result<()> {
    loop {
        let accepted = acceptor.accept().await?;
        match accepted.peer {
            Some(peer) => {
                server.add_packet_link_from(accepted.io, accepted.tag, accepted.user_data, peer)
            }
            None => server.add_packet_link(accepted.io, accepted.tag, accepted.user_data),
        }
    }
}

/// A connection's links kept up by a connector in a task of their own.
///
/// The upkeep runs until the connection ends or [`Links::stop`] is called; dropping `Links`
/// does not stop it. Once it is stopped and every handle that adds links is gone (this one and
/// the clones of [`Links::outgoing`]), the connection ends with
/// [`ConnectionError::NoLinkLeft`](liag_tokio::ConnectionError::NoLinkLeft) as soon as its
/// last link goes: it never waits for a link that cannot come.
#[must_use = "the links' upkeep runs on when dropped; keep `Links` to watch or stop it"]
pub struct Links {
    outgoing: Outgoing,
    task: tokio::task::AbortHandle,
    status: Arc<Mutex<Status>>,
    connector: tokio::sync::watch::Sender<Arc<dyn Connector>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("outgoing", &self.outgoing)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Links {
    /// Makes links with `connector` from now on, for a changed configuration: a path both
    /// connectors name keeps its link, a new path gets one, and the link of a path `connector`
    /// does not name is removed gracefully (its data moves to the other links first). Links
    /// not yet up on such paths are given up.
    pub fn set_connector(&self, connector: impl Connector) {
        self.connector.send_replace(Arc::new(connector));
    }

    /// The connection's link handle (and through it, [`Outgoing::control`]).
    pub fn outgoing(&self) -> &Outgoing {
        &self.outgoing
    }

    /// Waits until the connection has a link, for at most `limit`; the error says what is
    /// still pending (the server not accepting the connection, attempts under way) or why
    /// the last attempt failed (refused, unreachable, filtered, ...).
    ///
    /// # Errors
    ///
    /// As [`Links::wait_for_links`].
    pub async fn wait_for_link(&self, limit: Duration) -> Result<(), WaitError> {
        self.wait_for_links(1, limit).await
    }

    /// Waits until the connection has `count` links at once, for at most `limit`; the error
    /// says how many it has and why no more came, as [`Links::wait_for_link`].
    ///
    /// # Errors
    ///
    /// [`WaitError::Ended`] (or [`WaitError::EventsEnded`]): the connection ended first.
    /// Otherwise the time ran out, and the variant says what kept the links away:
    /// [`WaitError::NotAccepted`] (the server's application has not accepted the
    /// connection), [`WaitError::UpkeepStopped`], [`WaitError::NoPath`],
    /// [`WaitError::TooFewPaths`] or [`WaitError::NoLinkInTime`] (attempts under way or
    /// failed, with the last failure).
    pub async fn wait_for_links(&self, count: usize, limit: Duration) -> Result<(), WaitError> {
        let control = self.outgoing.control();
        let mut events = control.link_events();
        let deadline = Instant::now().checked_add(limit);
        loop {
            let have = control.links().len();
            if have >= count {
                return Ok(());
            }
            if let Some(closed) = control.result() {
                return Err(WaitError::Ended {
                    have,
                    wanted: count,
                    error: closed.err(),
                });
            }
            // The deadline holds however many events come before it.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.why_not(have, count, limit));
            }
            let event = match deadline {
                Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
                None => Some(events.recv().await),
            };
            if let Some(Err(RecvError::Closed)) = event {
                return Err(WaitError::EventsEnded {
                    have,
                    wanted: count,
                });
            }
        }
    }

    /// What keeps the connection from `count` links after `limit`.
    fn why_not(&self, have: usize, wanted: usize, limit: Duration) -> WaitError {
        let status = self.status.lock();
        let answered = self.outgoing.awaiting_accept();
        let last_failure = status.last_error.clone();
        if answered > 0 {
            WaitError::NotAccepted {
                have,
                wanted,
                limit,
                answered,
                last_failure,
            }
        } else if self.task.is_finished() {
            WaitError::UpkeepStopped {
                have,
                wanted,
                limit,
            }
        } else if status.paths == 0 {
            WaitError::NoPath {
                have,
                wanted,
                limit,
                last_failure,
            }
        } else if status.paths < wanted {
            WaitError::TooFewPaths {
                have,
                wanted,
                limit,
                paths: status.paths,
            }
        } else {
            WaitError::NoLinkInTime {
                have,
                wanted,
                limit,
                attempts: status.attempts,
                last_failure,
            }
        }
    }

    /// Stops making links (the connection keeps those it has).
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Makes a connection whose links `connector` opens and keeps: one per path, reconnected
/// with backoff when it fails, replaced when it stalls and a fresh transport gets through.
///
/// Keep the [`Links`]: it tells when links are up ([`Links::wait_for_link`]) and what went
/// wrong when they are not. On the server side, the application must be accepting
/// connections (`Listener::next`, `Incoming::accept`) while the links come up: a link's
/// handshake ends only once the server accepted its connection.
#[must_use = "the connection is unused; its links are kept up until it ends"]
pub fn connect_with(connector: impl Connector, config: EndpointConfig) -> (Connection, Links) {
    let (conn, outgoing) = connect(config);
    let status = Arc::default();
    let (connector, connectors) =
        tokio::sync::watch::channel(Arc::new(connector) as Arc<dyn Connector>);
    let task = tokio::spawn(crate::keep::keep_links(
        connectors,
        outgoing.clone(),
        Arc::clone(&status),
    ))
    .abort_handle();
    (
        conn,
        Links {
            outgoing,
            task,
            status,
            connector,
        },
    )
}

/// Several connectors' links in one connection: TCP beside WebSocket beside TLS, say.
///
/// Paths keep their connectors' names (a name two connectors both give goes to the first);
/// each connector's link filter sees only the links of its own paths.
#[derive(Default)]
pub struct MultiConnector {
    connectors: Vec<Box<dyn Connector>>,
    owner: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for MultiConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiConnector")
            .field("connectors", &self.connectors.len())
            .finish_non_exhaustive()
    }
}

impl MultiConnector {
    /// No connectors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connector.
    pub fn push(&mut self, connector: impl Connector) {
        self.connectors.push(Box::new(connector));
    }

    /// Adds a connector, builder style.
    pub fn with(mut self, connector: impl Connector) -> Self {
        self.push(connector);
        self
    }

    /// Whether no connector was added.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }

    fn owner_of(&self, path: &str) -> Option<usize> {
        self.owner.lock().get(path).copied()
    }
}

impl Connector for MultiConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            let mut owner = HashMap::new();
            let mut last_error = None;
            for (i, connector) in self.connectors.iter().enumerate() {
                match connector.paths().await {
                    Ok(paths) => {
                        for path in paths {
                            if !owner.contains_key(&path) {
                                owner.insert(path.clone(), i);
                                all.push(path);
                            }
                        }
                    }
                    // One transport failing (a name that does not resolve) leaves the others.
                    Err(e) => last_error = Some(e),
                }
            }
            *self.owner.lock() = owner;
            match last_error {
                Some(e) if all.is_empty() => Err(e),
                _ => Ok(all),
            }
        })
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        Box::pin(async move {
            let i = self.owner_of(path).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("unknown path {path}"))
            })?;
            self.connectors[i].open(path).await
        })
    }

    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        let Some(i) = self.owner_of(path) else {
            return true;
        };
        let mine: Vec<(String, UserData)> = others
            .iter()
            .filter(|(p, _)| self.owner_of(p) == Some(i))
            .cloned()
            .collect();
        self.connectors[i].keep(path, welcome, &mine)
    }

    fn link_config(&self, path: &str) -> LinkConfig {
        match self.owner_of(path) {
            Some(i) => self.connectors[i].link_config(path),
            None => LinkConfig::default(),
        }
    }
}
