//! The proxy client's kept connections, its lanes ([`super::lanes`]): each made at start, made
//! again with backoff whenever it ends, and multiplexed by yamux into one stream per proxied
//! connection, so a new proxied connection costs no link handshake.

use futures::future::poll_fn;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use tokio_util::task::AbortOnDropHandle;

use liag_transports::connect_with;
use liag_transports::liag_tokio::{Connection, Control, LinkEvent, LinkId};

use super::frames::{FRAME_MAX, FrameSize, FrameWriter};
use super::lanes::{self, Lane, LaneSeat};
use super::stream::ProxyStream;
use super::wire::{self, Greeting};
use crate::links::ClientLinks;
use crate::service::say;
use crate::service::{Connections, Shutdown};

/// A request for a stream, answered with the stream or why there is none.
type OpenRequest = oneshot::Sender<io::Result<ProxyStream>>;

/// The first wait before the connection is made again; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lived this long was healthy: the next attempt waits only [`BACKOFF_MIN`].
const LIVED_LONG: Duration = Duration::from_secs(10);
/// How long the first link of a connection may take.
const LINK_WAIT: Duration = Duration::from_secs(10);
/// At most this many stream requests wait for a connection.
const WAITING_MAX: usize = 1024;

/// Opens streams on the kept connections.
#[derive(Debug, Clone)]
pub(crate) struct Opener {
    /// Each lane's requests, and what is known of it.
    lanes: Arc<[(mpsc::Sender<OpenRequest>, Arc<Lane>)]>,
    /// One permit for each stream that may be open; a stream holds its permit until dropped.
    slots: Arc<Semaphore>,
    /// Once the client stops, no lane will serve again.
    shutdown: Shutdown,
}

impl Opener {
    /// A new stream on the lane that carries least, once a lane's connection is up.
    pub(crate) async fn open(&self) -> io::Result<ProxyStream> {
        // With every slot taken, a new connection waits for one (as long as its caller waits).
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| {
            io::Error::other(format!("already {MAX_OPEN} proxied connections at once"))
        })?;
        let gone = || io::Error::new(io::ErrorKind::NotConnected, "the proxy client has stopped");
        // A lane that ends as the request reaches it answers that it was lost: the request is
        // made once more, on the lane then chosen.
        let mut retried = false;
        loop {
            // While every lane is down, a request waits for the first to come up rather than
            // for one chosen beforehand.
            tokio::select! {
                () = self.lanes[0].1.any_serving() => {}
                () = self.shutdown.stopping() => return Err(gone()),
            }
            let (requests, lane) = &self.lanes[lanes::choose(self.lanes.iter().map(|(_, l)| &**l))];
            let seat = LaneSeat::take(lane);
            let (tx, rx) = oneshot::channel();
            requests.send(tx).await.map_err(|_| gone())?;
            match rx.await.map_err(|_| gone())? {
                Ok(stream) => return Ok(stream.holding(slot, seat)),
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted && !retried => {
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What each lane's connection is made with; a reload changes it.
#[derive(Clone)]
pub(crate) struct Setup {
    /// The links configured now; the connection open follows them.
    pub(crate) links: watch::Receiver<ClientLinks>,
    /// The token the next connection gives.
    pub(crate) token: watch::Receiver<Vec<u8>>,
}

/// Why a connection ended.
enum Ended {
    /// It may work again: try anew.
    Lost(io::Error),
    /// It will not: the server refused the token or speaks another protocol.
    Refused(io::Error),
    /// The client is shutting down.
    Stopped,
}

/// Keeps `lanes` connections to the server up, each made as `setup` says, and each in a task
/// of its own; the returned task ends if the server refuses this client, with the reason, or
/// on shutdown, with `None`, once every connection has ended gracefully.
pub(crate) fn keep(
    setup: Setup,
    shutdown: Shutdown,
    connections: Connections,
    lanes: usize,
) -> (Opener, tokio::task::JoinHandle<Option<io::Error>>) {
    let mut kept = tokio::task::JoinSet::new();
    let mut known = Vec::with_capacity(lanes);
    for (i, lane) in Lane::lanes(lanes.max(1)).into_iter().enumerate() {
        let (requests, rx) = mpsc::channel(WAITING_MAX);
        let task = LaneTask {
            label: lanes::label(i, lanes),
            lane: lane.clone(),
        };
        let (setup, shutdown, connections) = (setup.clone(), shutdown.clone(), connections.clone());
        kept.spawn(keep_connected(setup, rx, task, shutdown, connections));
        known.push((requests, lane));
    }
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let mut failed = None;
        while let Some(ended) = kept.join_next().await {
            let why = match ended {
                Ok(None) => continue,
                Ok(Some(refused)) => refused,
                Err(e) => io::Error::other(format!("a lane failed: {e}")),
            };
            // The server refused one lane (so it refuses them all), or a lane failed: the
            // other lanes end gracefully, as on shutdown, and the first reason is the client's.
            stop.stop();
            failed.get_or_insert(why);
        }
        failed
    });
    let slots = Arc::new(Semaphore::new(MAX_OPEN));
    let opener = Opener {
        lanes: known.into(),
        slots,
        shutdown,
    };
    (opener, task)
}

/// A lane as its task knows it.
struct LaneTask {
    /// How the operator's messages name it.
    label: String,
    /// Where the lane says whether it serves.
    lane: Arc<Lane>,
}

async fn keep_connected(
    setup: Setup,
    mut requests: mpsc::Receiver<OpenRequest>,
    lane: LaneTask,
    shutdown: Shutdown,
    connections: Connections,
) -> Option<io::Error> {
    let mut backoff = BACKOFF_MIN;
    loop {
        let began = Instant::now();
        let ended = session(
            setup.clone(),
            &mut requests,
            &lane,
            (&shutdown, &connections),
        )
        .await;
        lane.lane.set_serving(false);
        // Whatever reached the lane while it was not serving asks again elsewhere.
        turn_away(&mut requests, []);
        match ended {
            Ended::Stopped => return None,
            Ended::Refused(e) => return Some(e),
            Ended::Lost(e) => {
                if began.elapsed() >= LIVED_LONG {
                    backoff = BACKOFF_MIN;
                }
                let label = &lane.label;
                say!("liag proxy client{label}: {e}; connecting again in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.stopping() => return None,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One connection, from its first link until it ends.
async fn session(
    mut setup: Setup,
    requests: &mut mpsc::Receiver<OpenRequest>,
    lane: &LaneTask,
    (shutdown, connections): (&Shutdown, &Connections),
) -> Ended {
    let token = setup.token.borrow_and_update().clone();
    let links = setup.links.borrow_and_update().clone();
    let connector = match links.connector().await {
        Ok(c) => c,
        Err(e) => return Ended::Lost(e),
    };
    let (mut conn, handle) = connect_with(connector, links.endpoint_config());
    let control = conn.control();
    let label = format!("proxy connection{}", lane.label);
    let _tracked = connections.track(label, control.clone());
    let body = async {
        handle
            .wait_for_link(LINK_WAIT)
            .await
            .map_err(|e| Ended::Lost(io::Error::other(format!("no link to the server: {e}"))))?;
        let greeting = tokio::time::timeout(LINK_WAIT, wire::greet(&mut conn, &token))
            .await
            .map_err(|_| Ended::Lost(io::Error::other("the server did not answer the greeting")))?
            .map_err(|e| {
                Ended::Lost(match e.kind() {
                    io::ErrorKind::UnexpectedEof => io::Error::other(
                        "the server closed before answering the greeting: is it a liag proxy \
                     server (port 5810)?",
                    ),
                    _ => e,
                })
            })?;
        match greeting {
            Greeting::Welcome => {}
            Greeting::WrongToken => {
                let why = if token.is_empty() {
                    "the server asks for a token: give --token-file with a copy of the server's"
                } else {
                    "the server refused the token: give both ends the same --token-file"
                };
                return Err(Ended::Refused(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    why,
                )));
            }
            Greeting::Unknown => {
                return Err(Ended::Refused(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server is not a liag proxy server of this version",
                )));
            }
        }
        // The lane's figures first: the opener chooses by them as soon as the lane serves.
        lane.lane.read(&control);
        lane.lane.set_serving(true);
        let _following =
            AbortOnDropHandle::new(tokio::spawn(lane.lane.clone().follow(control.clone())));
        let _reporting = AbortOnDropHandle::new(tokio::spawn(report_links(
            control.clone(),
            lane.label.clone(),
        )));
        Err(multiplex(conn, requests, &lane.lane).await)
    };
    // A reload's links apply to this connection as it runs.
    let session = async {
        tokio::select! {
            ended = body => ended,
            () = crate::links::follow(&handle, setup.links) => Ok(()),
        }
    };
    // On shutdown the session, and with it the connection, is dropped: the connection ends
    // gracefully, and the guard waits for it.
    let ended = shutdown
        .guard(&control, session)
        .await
        .unwrap_or(Err(Ended::Stopped));
    handle.stop();
    match ended {
        Ok(()) => Ended::Lost(io::Error::other("the connection ended")),
        Err(e) => e,
    }
}

/// The most streams yamux keeps per connection. Asking yamux for one more stream than this
/// ends the whole connection, so the client opens at most [`MAX_OPEN`].
const MAX_STREAMS: usize = 256;
/// The most proxied connections open at once. yamux lets a dropped stream go only when its
/// connection is next polled, so it may count some more than the client holds: the margin
/// keeps those from reaching [`MAX_STREAMS`].
pub(crate) const MAX_OPEN: usize = MAX_STREAMS - 32;

/// What one connection's streams may buffer in all: twice the 256 KiB each stream starts
/// with, so a busy stream's window can grow past it (yamux grows windows only from what is
/// left).
const MUX_WINDOW: usize = 2 * MAX_STREAMS * (256 << 10);

/// The aggregated connection as yamux drives it.
pub(crate) type Muxed = yamux::Connection<FrameWriter<Compat<Connection>>>;

/// Says which links the connection has, and when one comes or goes, so the operator sees
/// the bonding at work.
async fn report_links(control: Control, label: String) {
    let (links, mut events) = control.links_and_events();
    let mut tags: HashMap<LinkId, String> = links.into_iter().map(|l| (l.id, l.tag)).collect();
    let mut up: Vec<&str> = tags.values().map(String::as_str).collect();
    up.sort_unstable();
    say!(
        "liag proxy client{label}: connected to the server over {} link(s): {}",
        up.len(),
        up.join(", ")
    );
    loop {
        match events.recv().await {
            Ok(LinkEvent::Added { link }) => {
                if let Some(stats) = control.links().into_iter().find(|l| l.id == link) {
                    say!("liag proxy client{label}: link up: {}", stats.tag);
                    tags.insert(link, stats.tag);
                }
            }
            Ok(LinkEvent::Removed { link, error }) => {
                let tag = tags.remove(&link).unwrap_or_else(|| format!("{link:?}"));
                say!("liag proxy client{label}: link down: {tag}: {error}");
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// yamux over `conn` in `mode`, with the same settings at both ends: streams and their windows
/// bounded, so one connection's memory is bounded (256 KiB per stream at first, 128 MiB in
/// all). Its streams' frames follow the connection's rate ([`FrameSize`]); give each stream
/// the one returned.
pub(crate) fn multiplexer(conn: Connection, mode: yamux::Mode) -> (Muxed, FrameSize) {
    let frame = FrameSize::following(conn.control());
    let mut config = yamux::Config::default();
    // In this order: yamux checks that the window leaves every stream its 256 KiB.
    config.set_max_num_streams(MAX_STREAMS);
    config.set_max_connection_receive_window(Some(MUX_WINDOW));
    config.set_split_send_size(FRAME_MAX);
    let io = FrameWriter::new(conn.compat(), frame.clone());
    (yamux::Connection::new(io, config, mode), frame)
}

/// Serves stream requests on `conn` until it ends; `lane` serves no more from then on.
async fn multiplex(
    conn: Connection,
    requests: &mut mpsc::Receiver<OpenRequest>,
    lane: &Lane,
) -> Ended {
    let (mut mux, frame) = multiplexer(conn, yamux::Mode::Client);
    let mut waiting: VecDeque<OpenRequest> = VecDeque::new();
    let mut requests_open = true;
    let lost = |e: yamux::ConnectionError| {
        Ended::Lost(io::Error::other(format!("the connection failed: {e}")))
    };
    let ended = poll_fn(|cx| {
        while requests_open {
            match requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => waiting.push_back(request),
                Poll::Ready(None) => requests_open = false,
                Poll::Pending => break,
            }
        }
        // A requester that gave up (its caller's time ran out) gets no stream: yamux counts
        // a dropped stream until it is next polled, so a burst of them could reach its limit.
        waiting.retain(|request| !request.is_closed());
        while !waiting.is_empty() {
            match mux.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    if let Some(request) = waiting.pop_front() {
                        // A requester that gave up drops the stream, which resets it.
                        let _ = request.send(Ok(ProxyStream::new(stream, frame.clone())));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(lost(e)),
                Poll::Pending => break,
            }
        }
        // Driving the inbound side moves every stream's bytes.
        loop {
            match mux.poll_next_inbound(cx) {
                // The server opens no streams; one it opens anyway is reset.
                Poll::Ready(Some(Ok(stream))) => drop(stream),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(lost(e)),
                Poll::Ready(None) => {
                    return Poll::Ready(Ended::Lost(io::Error::other(
                        "the server closed the connection",
                    )));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    // Not chosen from now on; what was sent to the lane before is told to ask again.
    lane.set_serving(false);
    turn_away(requests, waiting);
    ended
}

/// Tells `waiting` and every request still in `requests` that this lane has no connection,
/// so that [`Opener::open`] asks once more, on the lane then chosen.
fn turn_away(
    requests: &mut mpsc::Receiver<OpenRequest>,
    waiting: impl IntoIterator<Item = OpenRequest>,
) {
    let queued = std::iter::from_fn(|| requests.try_recv().ok());
    for request in waiting.into_iter().chain(queued) {
        let _ = request.send(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the connection to the server was lost",
        )));
    }
}
