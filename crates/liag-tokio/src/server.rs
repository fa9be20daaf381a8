//! The accepting side: [`Server`] takes incoming links and routes each to a new or existing
//! connection; [`Listener`] hands new connections to the application as [`Incoming`].

use futures::SinkExt;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use liag_core::handshake::{self, ConnectionTable, LinkRequest, Resolution};
use liag_core::proto::extensions::Extensions;
use liag_core::proto::ids::{ConnId, ServerId};
use liag_core::proto::message::{ExchangedConfig, RefusedReason, UserData};
use liag_core::{Direction, LinkInfo, MemoryBudget, Time};

use crate::codec::{BoxLink, stream_link};
use crate::config::EndpointConfig;
use crate::connection::Connection;
use crate::control::Control;
use crate::ended::Ended;
use crate::error::AcceptError;
use crate::guard::guarded;
use crate::handshake::{respond, within};
use crate::handshake_stats::{Counters, HandshakeStats};
use crate::shared::Shared;
use crate::sources::{Slot, Source, Sources};

/// A link that finished its handshake, waiting for its connection to be accepted.
struct ReadyLink {
    io: BoxLink,
    info: LinkInfo,
    peer_recv_buffer: u32,
}

/// A new connection the application has not decided on yet. Touched only under the
/// connection table's lock, so a link joining it and the application's decision are ordered:
/// every link either reaches the decision or is refused, none falls between.
pub(crate) struct Pending {
    links: Vec<ReadyLink>,
    /// The connection slot of the source it came from, held while the connection lives.
    slot: Option<Slot>,
}

/// Where an incoming link went, decided under the table's lock.
enum Route {
    Refuse(RefusedReason),
    /// Join this running connection (after Accepted goes out).
    Join(Arc<Shared>),
    /// Queued with a connection the application has not decided on.
    Queued,
    /// Opened a new connection, now pending, with this link queued in it.
    New(Arc<Mutex<Pending>>),
}

#[derive(Clone)]
pub(crate) enum Handle {
    Running(Arc<Shared>),
    Pending(Arc<Mutex<Pending>>),
}

impl Handle {
    /// Whether this is the running connection `shared`.
    fn is_running(&self, shared: &Arc<Shared>) -> bool {
        matches!(self, Handle::Running(s) if Arc::ptr_eq(s, shared))
    }

    /// Whether this is the pending connection `pending`.
    fn is_pending(&self, pending: &Arc<Mutex<Pending>>) -> bool {
        matches!(self, Handle::Pending(p) if Arc::ptr_eq(p, pending))
    }
}

/// Decides whether an incoming link may join; `false` refuses it with LinkRefused.
pub type LinkFilter = Arc<dyn Fn(&LinkDescription) -> bool + Send + Sync>;

/// What a link filter sees of an incoming link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkDescription {
    /// The transport's tag for the link (its addresses, say).
    pub tag: String,
    /// The initiator's user data.
    pub remote_user_data: UserData,
    /// Whether the link asks to join an existing connection.
    pub existing_connection: bool,
}

struct ServerInner {
    server_id: ServerId,
    config: EndpointConfig,
    table: Mutex<ConnectionTable<Handle>>,
    /// Connections that ended lately, whose late links are refused (see [`Ended`]); locked
    /// only under `table`'s lock.
    ended: Mutex<Ended>,
    incoming: Mutex<Option<mpsc::Sender<Incoming>>>,
    /// Handshakes in progress, oldest first, to evict when full.
    handshakes: Mutex<VecDeque<Handshake>>,
    /// What each source holds.
    sources: Arc<Sources>,
    /// What all connections buffer together.
    budget: MemoryBudget,
    /// When a full table last had no connection to give way, so the next newcomers do not
    /// each search it again.
    fruitless_search: Mutex<Option<tokio::time::Instant>>,
    next_handshake: std::sync::atomic::AtomicU64,
    filter: Mutex<Option<LinkFilter>>,
    handshake_counts: Counters,
}

/// A handshake in progress.
pub(crate) struct Handshake {
    id: u64,
    pub(crate) source: Option<Source>,
    task: tokio::task::AbortHandle,
}

/// Takes incoming links and routes each to its connection. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("server_id", &self.inner.server_id)
            .finish_non_exhaustive()
    }
}

/// Yields the new connections a [`Server`] receives.
///
/// Take each with [`Listener::next`] and accept it ([`Incoming::accept`]) while clients
/// connect: a client's first links finish their handshakes only once the connection is
/// accepted. Once the `Listener` is dropped, the server refuses every new connection (with
/// [`RefusedReason::NotListening`]); links joining connections already accepted still come.
#[derive(Debug)]
pub struct Listener {
    rx: mpsc::Receiver<Incoming>,
}

/// A new connection waiting to be accepted or refused.
///
/// Dropping it refuses the connection (Refused(ConnectionRefused) on its links), as does
/// dropping the [`Listener`] with offers still queued: nothing is left holding a slot or a
/// socket.
pub struct Incoming {
    conn_id: ConnId,
    pending: Arc<Mutex<Pending>>,
    server: Arc<ServerInner>,
    remote_user_data: UserData,
    tag: String,
    /// Accepted or refused already; dropping then does nothing more.
    answered: bool,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with a fresh server id, and the listener for its new connections: accept
    /// from it while clients connect (see [`Listener`]).
    pub fn new(config: EndpointConfig) -> (Server, Listener) {
        let (tx, rx) = mpsc::channel(config.max_pending_connections.max(1));
        let server = Server {
            inner: Arc::new(ServerInner {
                server_id: ServerId::random(&mut rand::rng()),
                table: Mutex::new(ConnectionTable::new(config.max_connections)),
                ended: Mutex::new(Ended::new(config.handshake_timeout, config.max_connections)),
                handshakes: Mutex::new(VecDeque::new()),
                budget: MemoryBudget::new(config.memory_budget),
                fruitless_search: Mutex::new(None),
                sources: Sources::new(
                    config.max_links_per_source,
                    config.max_connections_per_source,
                ),
                next_handshake: std::sync::atomic::AtomicU64::new(0),
                config,
                incoming: Mutex::new(Some(tx)),
                filter: Mutex::new(None),
                handshake_counts: Counters::default(),
            }),
        };
        (server, Listener { rx })
    }

    /// This server's id, sent in every Welcome.
    pub fn server_id(&self) -> ServerId {
        self.inner.server_id
    }

    /// Installs a filter that may refuse individual links.
    pub fn set_link_filter(&self, filter: LinkFilter) {
        *self.inner.filter.lock() = Some(filter);
    }

    /// Bytes the server's connections buffer together, against `EndpointConfig::memory_budget`
    /// (connections given a budget of their own in `EndpointConfig::config` are not counted).
    pub fn memory_used(&self) -> usize {
        self.inner.budget.used()
    }

    /// Number of connections the server knows, pending or running.
    pub fn connections(&self) -> usize {
        self.inner.table.lock().len()
    }

    /// Takes a new byte-stream transport (an accepted TCP socket, say) and runs its
    /// handshake in a task of its own. `user_data` is sent in the Welcome.
    pub fn add_link<S>(&self, io: S, tag: impl Into<String>, user_data: UserData)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.add_packet_link(stream_link(io), tag, user_data);
    }

    /// Like [`Server::add_link`], for a byte stream from the peer address `peer`, which
    /// the per-source limits count (see [`Server::add_packet_link_from`]).
    pub fn add_link_from<S>(&self, io: S, tag: impl Into<String>, user_data: UserData, peer: IpAddr)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.add_packet_link_from(stream_link(io), tag, user_data, peer);
    }

    /// Like [`Server::add_link`], for a link of any kind.
    ///
    /// Handshakes are bounded in time (`handshake_timeout`) and in number
    /// (`max_pending_handshakes`): when the limit is reached, the oldest handshake of the
    /// source with the most is abandoned (links without an address count as one source), so
    /// sockets that never speak cannot lock real clients out. Links added here have no source:
    /// the per-source limits do not apply to them; prefer [`Server::add_packet_link_from`].
    pub fn add_packet_link(&self, link: BoxLink, tag: impl Into<String>, user_data: UserData) {
        self.start_handshake(link, tag.into(), user_data, None);
    }

    /// Like [`Server::add_packet_link`], for a link from the peer address `peer`: each
    /// source (an IPv4 address, an IPv6 /64) may hold at most `max_links_per_source` sockets
    /// and `max_connections_per_source` connections, and a full handshake table abandons the
    /// oldest handshake of the source with the most, so one busy source shuts out only
    /// itself.
    pub fn add_packet_link_from(
        &self,
        link: BoxLink,
        tag: impl Into<String>,
        user_data: UserData,
        peer: IpAddr,
    ) {
        let source = Source::of(peer);
        let Some(slot) = self.inner.sources.socket(source) else {
            self.inner.handshake_counts.over_source_limit();
            return;
        };
        self.start_handshake(guarded(link, slot), tag.into(), user_data, Some(source));
    }

    fn start_handshake(
        &self,
        link: BoxLink,
        tag: String,
        user_data: UserData,
        source: Option<Source>,
    ) {
        let inner = self.inner.clone();
        let id = inner
            .next_handshake
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut pending = inner.handshakes.lock();
        while pending.len() >= inner.config.max_pending_handshakes.max(1) {
            if let Some(oldest) = crate::evict::handshake_to_abandon(&mut pending) {
                tracing::debug!(source = ?oldest.source, "too many handshakes in progress; abandoning one");
                oldest.task.abort();
                inner.handshake_counts.abandoned();
            }
        }
        let task = inner.clone();
        let handle = tokio::spawn(async move {
            let result = task
                .clone()
                .handle_link(link, tag.clone(), user_data, source)
                .await;
            task.handshakes.lock().retain(|h| h.id != id);
            task.handshake_counts.ended(&result);
            if let Err(e) = result {
                tracing::debug!(%tag, error = %e, "incoming link did not join");
            }
        });
        pending.push_back(Handshake {
            id,
            source,
            task: handle.abort_handle(),
        });
    }

    /// Handshakes in progress.
    pub fn pending_handshakes(&self) -> usize {
        self.inner.handshakes.lock().len()
    }

    /// How the incoming links' handshakes ended so far.
    pub fn handshake_stats(&self) -> HandshakeStats {
        self.inner.handshake_counts.snapshot()
    }

    /// Runs an incoming link's handshake here, to see how it ends.
    #[cfg(test)]
    pub(crate) async fn handshake(&self, link: BoxLink) -> Result<(), AcceptError> {
        (self.inner.clone())
            .handle_link(link, "test".into(), UserData::empty(), None)
            .await
    }
}

impl ServerInner {
    /// Makes room in a full table by ending a connection that gives way (see
    /// [`crate::evict::connection_to_end`]); at most one fruitless search per 100 ms.
    fn make_room(&self, table: &mut ConnectionTable<Handle>) -> bool {
        let mut last = self.fruitless_search.lock();
        if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(100)) {
            return false;
        }
        let unproven_after = self.config.no_link_timeout_before_data;
        match crate::evict::connection_to_end(table, unproven_after) {
            Some((id, shared)) => {
                tracing::debug!(conn = %id, "connection table full; ending a connection that gives way");
                table.remove(id);
                Control::new(shared).terminate();
                true
            }
            None => {
                *last = Some(tokio::time::Instant::now());
                false
            }
        }
    }

    async fn handle_link(
        self: Arc<Self>,
        mut link: BoxLink,
        tag: String,
        user_data: UserData,
        source: Option<Source>,
    ) -> Result<(), AcceptError> {
        let cfg = ExchangedConfig {
            recv_buffer: self.config.config.recv_buffer,
        };
        let started = tokio::time::Instant::now();
        let limit = self.config.handshake_timeout;
        let extensions = if self.config.redundant_on_request {
            handshake::RESPONDER_EXTENSIONS
        } else {
            handshake::RESPONDER_EXTENSIONS.without(Extensions::REDUNDANT)
        };
        let request = within(
            limit,
            AcceptError::Timeout,
            respond(
                &mut link,
                (self.server_id, extensions),
                user_data.clone(),
                cfg,
            ),
        )
        .await?;
        let mut info = LinkInfo::new(Direction::Incoming, tag.clone(), started.elapsed());
        info.local_user_data = user_data;
        info.remote_user_data = request.user_data.clone();
        // The tier the client gave the link (liag's extension bits; none from other peers).
        info.config.tier = request.extensions.link_tier().into();
        info.redundant_requested =
            self.config.redundant_on_request && request.extensions.contains(Extensions::REDUNDANT);

        let description = LinkDescription {
            tag: tag.clone(),
            remote_user_data: request.user_data.clone(),
            existing_connection: request.existing_connection,
        };
        let filter = self.filter.lock().clone();
        if filter.is_some_and(|f| !f(&description)) {
            return refuse(link, RefusedReason::LinkRefused).await;
        }
        // Resolved, registered and queued under one lock: links of a new connection arrive
        // together, and the second must find the connection the first one made.
        let tag = info.tag.clone();
        let peer_recv_buffer = request.cfg.recv_buffer.get();
        let max_links = self.config.max_links_per_connection.max(1);
        let mut link = Some(link);
        // Queues the link on a pending connection, unless that has its fill of links.
        let queue = |pending: &Arc<Mutex<Pending>>, link: &mut Option<BoxLink>| {
            let mut pending = pending.lock();
            if pending.links.len() >= max_links {
                return false;
            }
            if let Some(io) = link.take() {
                let info = info.clone();
                pending.links.push(ReadyLink {
                    io,
                    info,
                    peer_recv_buffer,
                });
            }
            true
        };
        let route = {
            let mut table = self.table.lock();
            let mut resolution = table.resolve(request.conn_id, request.existing_connection);
            // A link of a connection that ended while its handshake was held up: refused
            // before a full table makes room for it.
            if matches!(
                resolution,
                Resolution::New | Resolution::Refuse(RefusedReason::NotListening)
            ) && (self.ended.lock()).contains(request.conn_id, tokio::time::Instant::now())
            {
                resolution = Resolution::Refuse(RefusedReason::Closed);
            }
            if matches!(resolution, Resolution::Refuse(RefusedReason::NotListening))
                && table.is_full()
                && self.make_room(&mut table)
            {
                resolution = table.resolve(request.conn_id, request.existing_connection);
            }
            match resolution {
                Resolution::Refuse(reason) => Route::Refuse(reason),
                Resolution::Join(Handle::Running(shared)) => Route::Join(shared),
                Resolution::Join(Handle::Pending(pending)) => {
                    if queue(&pending, &mut link) {
                        Route::Queued
                    } else {
                        Route::Refuse(RefusedReason::LinkRefused)
                    }
                }
                Resolution::New => match source.map(|s| self.sources.connection(s)) {
                    Some(None) => Route::Refuse(RefusedReason::NotListening),
                    slot => {
                        let pending = Arc::new(Mutex::new(Pending {
                            links: Vec::new(),
                            slot: slot.flatten(),
                        }));
                        table.insert(request.conn_id, Handle::Pending(pending.clone()));
                        queue(&pending, &mut link);
                        Route::New(pending)
                    }
                },
            }
        };
        match (route, link) {
            (Route::Refuse(reason), Some(link)) => refuse(link, reason).await,
            (Route::Join(shared), Some(mut link)) => {
                // Room and a running connection (one closing would be kept alive by a new
                // link: refused, as aggligator does), checked outside the table's lock, which
                // must not wait for a busy connection's.
                let joining = match Joining::reserve(&shared, max_links) {
                    Ok(joining) => joining,
                    Err(reason) => {
                        if reason == RefusedReason::Closed {
                            self.table
                                .lock()
                                .stop_taking_links_if(request.conn_id, |h| h.is_running(&shared));
                        }
                        return refuse(link, reason).await;
                    }
                };
                let accepted = async { Ok(link.send(handshake::accepted()).await?) };
                within(limit, AcceptError::Timeout, accepted).await?;
                link.as_mut().handshake_done();
                link.as_mut().charge_to(self.budget.clone());
                // Should the connection have closed meanwhile, the core lets the link go at
                // once and the driver closes it.
                Control::new(shared).attach_link(link, info, peer_recv_buffer);
                drop(joining);
                Ok(())
            }
            (Route::New(pending), None) => self.offer(tag, request, pending),
            _ => Ok(()),
        }
    }

    /// Offers a new connection, already in the table as `pending` with its first link, to the
    /// application.
    fn offer(
        self: &Arc<Self>,
        tag: String,
        request: LinkRequest,
        pending: Arc<Mutex<Pending>>,
    ) -> Result<(), AcceptError> {
        let offer = Incoming {
            conn_id: request.conn_id,
            pending: pending.clone(),
            server: self.clone(),
            remote_user_data: request.user_data,
            tag,
            answered: false,
        };
        let sender = self.incoming.lock().clone();
        let sent = sender.map(|tx| tx.try_send(offer));
        match sent {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                // Not listening or too many waiting: refuse (the offer's links are dropped).
                let offer = match e {
                    mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
                };
                offer.refuse_as(RefusedReason::NotListening);
                Err(AcceptError::Refused(RefusedReason::NotListening))
            }
            None => Ok(()),
        }
    }
}

/// Sends Refused with `reason` and closes the link, for at most a second.
async fn send_refusal(mut link: BoxLink, reason: RefusedReason) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        link.send(handshake::refused(reason)).await?;
        link.close().await
    })
    .await;
}

/// Refuses an incoming link with `reason`: the handshake's outcome.
async fn refuse(link: BoxLink, reason: RefusedReason) -> Result<(), AcceptError> {
    send_refusal(link, reason).await;
    Err(AcceptError::Refused(reason))
}

impl Listener {
    /// The next new connection; `None` once the server is gone.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }
}

impl Incoming {
    /// The tag of the link that opened the connection.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The initiator's user data on that link.
    pub fn remote_user_data(&self) -> &UserData {
        &self.remote_user_data
    }

    /// Accepts the connection: Accepted goes out on its links and data starts to flow.
    pub fn accept(mut self) -> Connection {
        self.answered = true;
        let server = self.server.clone();
        let mut config = server.config.config.clone();
        let before_data = server.config.no_link_timeout_before_data;
        config.no_link_timeout_before_data =
            config.no_link_timeout_before_data.or(Some(before_data));
        config.memory_budget = config.memory_budget.or(Some(server.budget.clone()));
        let scheduler = server.config.scheduler.make();
        let shared = Shared::new(liag_core::Connection::with_scheduler(
            config,
            Time::ZERO,
            scheduler,
        ));
        let span = tracing::info_span!("liag", conn = %self.conn_id, side = "server");
        crate::driver::spawn(shared.clone(), span);
        let conn = Connection::new(shared.clone());
        // Under the table's lock, as links join a pending connection: from here on they go to
        // the running one.
        // The waiting links are counted against the link limit before any other link can
        // find the running connection.
        let links = {
            let mut table = server.table.lock();
            let links = std::mem::take(&mut self.pending.lock().links);
            let joining: Vec<Joining> = links.iter().map(|_| Joining::add(&shared)).collect();
            table.insert(self.conn_id, Handle::Running(shared.clone()));
            links.into_iter().zip(joining)
        };
        // Links that joined while the application decided were left waiting; accept them.
        let control = Control::new(shared.clone());
        for (ready, joining) in links {
            let control = control.clone();
            let budget = server.budget.clone();
            tokio::spawn(async move {
                let mut io = ready.io;
                if io.send(handshake::accepted()).await.is_ok() {
                    io.as_mut().handshake_done();
                    io.as_mut().charge_to(budget.clone());
                    control.attach_link(io, ready.info, ready.peer_recv_buffer);
                }
                drop(joining);
            });
        }
        // Take no more links once the connection ends; forget it once its links are closed.
        let conn_id = self.conn_id;
        let slot = self.pending.lock().slot.take();
        tokio::spawn(async move {
            let mut changes = control.watch();
            while control.result().is_none() {
                if changes.changed().await.is_err() {
                    break;
                }
            }
            // By this connection's own entry only: one ended to make room is forgotten at
            // once, and its id may already name a newer connection.
            let ours = |h: &Handle| h.is_running(&shared);
            server.table.lock().stop_taking_links_if(conn_id, ours);
            let _ = control.closed().await;
            // A connection that timed out with no link and never any data may never have
            // reached its client, whose first links still say so: their retries make it anew.
            let unknown = {
                let inner = shared.lock();
                matches!(
                    inner.conn.outcome(),
                    Some(Err(liag_core::ConnectionError::NoLinksTimeout))
                ) && !inner.conn.received_data()
            };
            {
                let mut table = server.table.lock();
                if table.remove_if(conn_id, ours).is_some() && !unknown {
                    (server.ended.lock()).note(conn_id, tokio::time::Instant::now());
                }
            }
            drop(slot);
        });
        conn
    }

    /// Refuses the connection.
    pub fn refuse(self) {
        self.refuse_as(RefusedReason::ConnectionRefused);
    }

    fn refuse_as(mut self, reason: RefusedReason) {
        self.refuse_links(reason);
    }

    /// Forgets the connection and refuses its links with `reason`; without a runtime to
    /// send the refusal on, the links are just closed.
    fn refuse_links(&mut self, reason: RefusedReason) {
        self.answered = true;
        let links = {
            let mut table = self.server.table.lock();
            table.remove_if(self.conn_id, |h| h.is_pending(&self.pending));
            std::mem::take(&mut self.pending.lock().links)
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        for ready in links {
            if let Some(runtime) = &runtime {
                runtime.spawn(send_refusal(ready.io, reason));
            }
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.answered {
            self.refuse_links(RefusedReason::ConnectionRefused);
        }
    }
}

/// A link let through to a running connection, counted against its link limit until it is
/// attached or fails.
struct Joining(Arc<Shared>);

impl Joining {
    /// Reserves room for one more link: refused with Closed when the connection is ending (a
    /// new link would only keep it alive; aggligator refuses too), with LinkRefused when it
    /// has `max_links` already.
    fn reserve(shared: &Arc<Shared>, max_links: usize) -> Result<Joining, RefusedReason> {
        let mut inner = shared.lock();
        if inner.conn.is_closed() {
            return Err(RefusedReason::Closed);
        }
        if inner.conn.link_count() + inner.joining >= max_links {
            return Err(RefusedReason::LinkRefused);
        }
        inner.joining += 1;
        Ok(Joining(shared.clone()))
    }

    /// Counts one more link on its way in, unconditionally.
    fn add(shared: &Arc<Shared>) -> Joining {
        shared.lock().joining += 1;
        Joining(shared.clone())
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        self.0.lock().joining -= 1;
    }
}
