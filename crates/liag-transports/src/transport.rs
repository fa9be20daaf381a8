//! The traits a transport implements, and the generic loops that run them: [`serve`] for an
//! [`Acceptor`], [`Links`] (from [`connect_with`]) keeping a [`Connector`]'s links up.

use futures::future::BoxFuture;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

use liag_tokio::liag_core::LinkId;
use liag_tokio::liag_core::LinkState;
use liag_tokio::liag_core::proto::message::{UserData, Welcome};
use liag_tokio::{BoxLink, Outgoing, Server, Settings, Stream, connect};

/// Opens links towards one peer: a TCP connector, a WebSocket client, your own.
pub trait Connector: Send + Sync + 'static {
    /// The paths links can be opened on now, each with a unique name such as
    /// `"eth0 -> 192.0.2.1:5700"`. Asked again every second, so paths may come and go.
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>>;

    /// Opens the transport of one path and returns it with this side's user data for the
    /// link. The handshake follows.
    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>>;

    /// Whether to keep a new link on `path`, whose acceptor sent `welcome`, beside the links
    /// already up on other paths (`others`: path and the acceptor's user data). A link filter
    /// (spec §10.5); by default every link is kept.
    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        let _ = (path, welcome, others);
        true
    }
}

/// Accepts links for a server: a TCP listener, a WebSocket route, your own.
pub trait Acceptor: Send + 'static {
    /// The next incoming transport with a tag for it and this side's user data for the link.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxLink, String, UserData)>>;
}

/// Hands every transport `acceptor` accepts to `server`, until the acceptor fails.
pub async fn serve(mut acceptor: impl Acceptor, server: Server) -> io::Result<()> {
    loop {
        let (link, tag, user_data) = acceptor.accept().await?;
        server.add_incoming_link(link, tag, user_data);
    }
}

/// How often the links are looked at.
const TICK: Duration = Duration::from_millis(50);
/// How often the connector is asked for its paths.
const PATHS_EVERY: Duration = Duration::from_secs(1);
/// First and longest wait before retrying a failed path.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A link stalled this long gets a fresh transport on the same path; if that one comes up,
/// it replaces the stalled link, so a healed path carries data again quickly.
const PROBE_AFTER: Duration = Duration::from_millis(150);

/// A connection's links kept up by a connector in a task of their own.
#[derive(Debug)]
pub struct Links {
    outgoing: Outgoing,
    task: tokio::task::JoinHandle<()>,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Links {
    /// The connection's link handle (and through it, [`Outgoing::control`]).
    pub fn outgoing(&self) -> &Outgoing {
        &self.outgoing
    }

    /// Waits until the connection has a link, for at most `limit`; the error says why the
    /// last attempt failed (refused, unreachable, filtered, ...).
    pub async fn wait_for_link(&self, limit: Duration) -> io::Result<()> {
        let control = self.outgoing.control();
        let deadline = Instant::now() + limit;
        while control.links().is_empty() {
            if Instant::now() >= deadline {
                let last = self
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let why = last.unwrap_or_else(|| "no path could be tried".into());
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no link came up within {limit:?}; last attempt: {why}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops making links (the connection keeps those it has).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Makes a connection whose links `connector` opens and keeps: one per path, reconnected
/// with backoff when it fails, replaced when it stalls and a fresh transport gets through.
pub fn connect_with(connector: impl Connector, settings: Settings) -> (Stream, Links) {
    let (stream, outgoing) = connect(settings);
    let last_error = Arc::default();
    let task = tokio::spawn(keep_links(
        Arc::new(connector),
        outgoing.clone(),
        Arc::clone(&last_error),
    ));
    (
        stream,
        Links {
            outgoing,
            task,
            last_error,
        },
    )
}

/// A link the loop made.
struct Live {
    id: LinkId,
    remote_user_data: UserData,
    stalled_since: Option<Instant>,
}

async fn open_link<C: Connector>(
    connector: Arc<C>,
    path: String,
    outgoing: Outgoing,
    others: Vec<(String, UserData)>,
) -> io::Result<(LinkId, UserData)> {
    let (link, user_data) = connector.open(&path).await?;
    let mut remote = UserData::empty();
    let id = outgoing
        .add_packet_link(link, path.clone(), user_data, |welcome| {
            remote = welcome.user_data.clone();
            connector.keep(&path, welcome, &others)
        })
        .await?;
    Ok((id, remote))
}

async fn keep_links<C: Connector>(
    connector: Arc<C>,
    outgoing: Outgoing,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
) {
    let control = outgoing.control();
    let mut paths: Vec<String> = Vec::new();
    let mut paths_at: Option<Instant> = None;
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut retry_at: HashMap<String, (Instant, Duration)> = HashMap::new();
    let mut connecting: HashSet<String> = HashSet::new();
    let mut attempts: JoinSet<(String, io::Result<(LinkId, UserData)>)> = JoinSet::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = attempts.join_next() => {
                let Ok((path, result)) = done else { continue };
                connecting.remove(&path);
                match result {
                    Ok((id, remote_user_data)) => {
                        let fresh = Live { id, remote_user_data, stalled_since: None };
                        if let Some(old) = live.insert(path.clone(), fresh) {
                            control.drop_link(old.id);
                        }
                        retry_at.remove(&path);
                    }
                    Err(e) => {
                        let backoff = retry_at.get(&path).map_or(BACKOFF_MIN, |&(_, b)| (b * 2).min(BACKOFF_MAX));
                        tracing::debug!(%path, error = %e, ?backoff, "link attempt failed");
                        *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{path}: {e}"));
                        retry_at.insert(path, (Instant::now() + backoff, backoff));
                    }
                }
            }
        }
        if outgoing.is_closed() {
            return;
        }
        let now = Instant::now();
        if paths_at.is_none_or(|t| now - t >= PATHS_EVERY) {
            paths_at = Some(now);
            match connector.paths().await {
                Ok(found) => paths = found,
                Err(e) => tracing::debug!(error = %e, "cannot list paths"),
            }
        }
        // Forget links the connection dropped; note stalled ones.
        let stats = control.links();
        live.retain(|_, l| stats.iter().any(|s| s.id == l.id));
        for l in live.values_mut() {
            let stalled = stats
                .iter()
                .any(|s| s.id == l.id && s.state == LinkState::Stalled);
            l.stalled_since = if stalled {
                l.stalled_since.or(Some(now))
            } else {
                None
            };
        }
        for path in &paths {
            if connecting.contains(path) || retry_at.get(path).is_some_and(|&(at, _)| at > now) {
                continue;
            }
            let probe = live
                .get(path)
                .is_some_and(|l| l.stalled_since.is_some_and(|t| now - t > PROBE_AFTER));
            if live.contains_key(path) && !probe {
                continue;
            }
            let others: Vec<(String, UserData)> = live
                .iter()
                .filter(|(p, _)| *p != path)
                .map(|(p, l)| (p.clone(), l.remote_user_data.clone()))
                .collect();
            connecting.insert(path.clone());
            let (connector, outgoing, path) = (connector.clone(), outgoing.clone(), path.clone());
            attempts.spawn(async move {
                let result = open_link(connector, path.clone(), outgoing, others).await;
                (path, result)
            });
        }
    }
}
