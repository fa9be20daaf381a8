//! The initiating side: [`connect`] makes a connection, [`Outgoing`] adds links to it.

use futures::SinkExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncWrite};

use liag_core::handshake::InitiatorParams;
use liag_core::proto::extensions::Extensions;
use liag_core::proto::ids::ConnId;
use liag_core::proto::message::{ExchangedConfig, RefusedReason, UserData, Welcome};
use liag_core::{Direction, LinkConfig, LinkId, LinkInfo};

use crate::codec::{BoxLink, stream_link};
use crate::config::EndpointConfig;
use crate::connection::Connection;
use crate::control::{Control, LinkEvent, Refusal};
use crate::error::AddLinkError;
use crate::handshake::{initiate, within};
use crate::shared::Shared;

/// The initiator's handle for adding links to its connection. Cheap to clone.
///
/// Once every clone is dropped, nothing can add a link: the connection then ends with
/// [`ConnectionError::NoLinkLeft`](liag_core::ConnectionError::NoLinkLeft) as soon as it has
/// no link, instead of waiting for one that cannot come.
#[derive(Clone)]
pub struct Outgoing {
    shared: Arc<Shared>,
    conn_id: ConnId,
    config: EndpointConfig,
    common: Arc<Common>,
}

/// What the clones of one [`Outgoing`] share.
struct Common {
    shared: Arc<Shared>,
    /// Whether some link was accepted, so later links say `existing_connection`.
    accepted: AtomicBool,
    /// Handshakes that had the server's Welcome for a new connection and wait for its
    /// application to accept it.
    awaiting_accept: AtomicUsize,
}

impl Drop for Common {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.conn.close_to_new_links();
        inner.wake_driver();
    }
}

/// Counts one handshake as waiting for the server's application, until dropped.
struct AwaitingAccept<'a> {
    count: &'a AtomicUsize,
    counted: AtomicBool,
}

impl AwaitingAccept<'_> {
    fn start(&self) {
        if !self.counted.swap(true, Ordering::AcqRel) {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn started(&self) -> bool {
        self.counted.load(Ordering::Acquire)
    }
}

impl Drop for AwaitingAccept<'_> {
    fn drop(&mut self) {
        if self.started() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("conn_id", &self.conn_id)
            .finish_non_exhaustive()
    }
}

/// Makes a new outgoing connection with no links yet. Data written now is sent once the first
/// link is up; add links with [`Outgoing::add_link`] (the transports' connectors do that).
/// Keep the [`Outgoing`] (or a clone) while links may still be added: once every clone is
/// gone, the connection ends as soon as it has no link.
#[must_use = "the connection is unused; links join it through the Outgoing"]
pub fn connect(config: EndpointConfig) -> (Connection, Outgoing) {
    let conn_id = ConnId::random(&mut rand::rng());
    let shared = Shared::new(liag_core::Connection::with_scheduler(
        config.config.clone(),
        liag_core::Time::ZERO,
        config.scheduler.make(),
    ));
    let span = tracing::info_span!("liag", conn = %conn_id, side = "client");
    crate::driver::spawn(shared.clone(), span);
    let conn = Connection::new(shared.clone());
    let outgoing = Outgoing {
        shared: shared.clone(),
        conn_id,
        config,
        common: Arc::new(Common {
            shared,
            accepted: AtomicBool::new(false),
            awaiting_accept: AtomicUsize::new(0),
        }),
    };
    (conn, outgoing)
}

impl Outgoing {
    /// The connection's control handle.
    pub fn control(&self) -> Control {
        Control::new(self.shared.clone())
    }

    /// The connection's id (a bearer secret: keep it out of logs).
    pub fn conn_id(&self) -> ConnId {
        self.conn_id
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().conn.is_closed()
    }

    /// How many link handshakes now wait for the server's application to accept this new
    /// connection: the server answered them, and its application has yet to take the
    /// connection from its `Listener` and call `Incoming::accept`.
    pub fn awaiting_accept(&self) -> usize {
        self.common.awaiting_accept.load(Ordering::Acquire)
    }

    /// Handshakes a byte-stream transport as a new link of this connection.
    ///
    /// # Errors
    ///
    /// As [`Outgoing::add_packet_link`], which never fails with [`AddLinkError::Filtered`]
    /// here.
    pub async fn add_link<S>(
        &self,
        io: S,
        tag: impl Into<String>,
        user_data: UserData,
    ) -> Result<LinkId, AddLinkError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.add_packet_link(stream_link(io), tag, user_data, |_| true)
            .await
    }

    /// Like [`Outgoing::add_link`], for a link with settings of its own from the start, such
    /// as its [`liag_core::Tier`] (see [`Outgoing::add_packet_link_with`]).
    ///
    /// # Errors
    ///
    /// As [`Outgoing::add_link`].
    pub async fn add_link_with<S>(
        &self,
        io: S,
        tag: impl Into<String>,
        user_data: UserData,
        config: LinkConfig,
    ) -> Result<LinkId, AddLinkError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.add_packet_link_with(stream_link(io), tag, user_data, config, |_| true)
            .await
    }

    /// Handshakes a link (stream or packet) as a new link of this connection. `filter` sees
    /// the server's Welcome after Accepted; if it says no, the link is closed unused (a link
    /// filter, spec §10.5).
    ///
    /// A refusal, by the server or by `filter`, is also published as
    /// [`LinkEvent::Refused`].
    ///
    /// # Errors
    ///
    /// The link did not join; its transport is closed. [`AddLinkError::Refused`]: the server
    /// refused it, with its reason ([`RefusedReason::Closed`] on a later link: the server no
    /// longer knows this connection, which ends as soon as none of its links works, unless a
    /// link the server accepts joins first). [`AddLinkError::ServerIdMismatch`]: it reached
    /// another server than the first link did. [`AddLinkError::Filtered`]: `filter` refused it.
    /// [`AddLinkError::Timeout`] and [`AddLinkError::NotAccepted`]: the handshake did not end
    /// within [`EndpointConfig::handshake_timeout`], the second when the server answered but its
    /// application has not accepted the connection. [`AddLinkError::Closed`]: the connection
    /// has ended. [`AddLinkError::TransportClosed`], [`AddLinkError::Protocol`] and
    /// [`AddLinkError::Io`]: the transport ended, carried something else than a handshake, or
    /// failed.
    pub async fn add_packet_link(
        &self,
        link: BoxLink,
        tag: impl Into<String>,
        user_data: UserData,
        filter: impl FnOnce(&Welcome) -> bool,
    ) -> Result<LinkId, AddLinkError> {
        self.add_packet_link_with(link, tag, user_data, LinkConfig::default(), filter)
            .await
    }

    /// Like [`Outgoing::add_packet_link`], for a link with settings of its own from the
    /// start, such as its [`liag_core::Tier`]: a backup link given its tier this way never
    /// carries data while a primary link works.
    ///
    /// # Errors
    ///
    /// As [`Outgoing::add_packet_link`].
    pub async fn add_packet_link_with(
        &self,
        mut link: BoxLink,
        tag: impl Into<String>,
        user_data: UserData,
        config: LinkConfig,
        filter: impl FnOnce(&Welcome) -> bool,
    ) -> Result<LinkId, AddLinkError> {
        let tag = tag.into();
        if self.is_closed() {
            return Err(AddLinkError::Closed);
        }
        let mut params = InitiatorParams::new(
            self.conn_id,
            self.common.accepted.load(Ordering::Acquire),
            ExchangedConfig {
                recv_buffer: self.config.config.recv_buffer,
            },
        );
        params.user_data = user_data.clone();
        // The server learns the link's tier, so its data keeps off a backup link too.
        params.extensions = Extensions::NONE.with_link_tier(config.tier.into());
        // A connection that sends redundantly asks the server to do the same.
        if self.shared.lock().conn.config().redundant {
            params.extensions = params.extensions.union(Extensions::REDUNDANT);
        }
        let started = tokio::time::Instant::now();
        let shared = self.shared.clone();
        let existing = params.existing_connection;
        let awaiting = AwaitingAccept {
            count: &self.common.awaiting_accept,
            counted: AtomicBool::new(false),
        };
        let welcome = within(
            self.config.handshake_timeout,
            AddLinkError::Timeout,
            initiate(&mut link, params, |welcome| {
                let mut inner = shared.lock();
                // A mismatch is the only way the check fails.
                let result = (inner.conn.handle_server_id(welcome.server_id))
                    .map_err(|_| AddLinkError::ServerIdMismatch);
                inner.wake_driver();
                if result.is_ok() && !existing {
                    awaiting.start();
                }
                result
            }),
        )
        .await
        .map_err(|e| match e {
            AddLinkError::Timeout if awaiting.started() => AddLinkError::NotAccepted,
            e => e,
        })
        .inspect_err(|e| {
            if let AddLinkError::Refused(reason) = *e {
                self.shared.lock().publish(LinkEvent::Refused {
                    tag: tag.clone(),
                    refusal: Refusal::Server(reason),
                });
            }
            if existing && matches!(e, AddLinkError::Refused(RefusedReason::Closed)) {
                tracing::debug!("the server no longer knows the connection; ending it");
                let mut inner = self.shared.lock();
                inner.conn.abort_by_server();
                inner.wake_driver();
            }
        })?;
        drop(awaiting);
        self.common.accepted.store(true, Ordering::Release);
        if !filter(&welcome) {
            tracing::debug!(%tag, "link refused by the link filter");
            // Closed cleanly, not just dropped: a TCP link dropped unclosed resets.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), link.close()).await;
            self.shared.lock().publish(LinkEvent::Refused {
                tag,
                refusal: Refusal::LinkFilter,
            });
            return Err(AddLinkError::Filtered);
        }
        let mut info = LinkInfo::new(Direction::Outgoing, tag, started.elapsed());
        info.local_user_data = user_data;
        info.remote_user_data = welcome.user_data.clone();
        info.config = config;
        tracing::debug!(tag = %info.tag, "link accepted");
        let recv_buffer = welcome.cfg.recv_buffer.get();
        Ok(self.control().attach_link(link, info, recv_buffer))
    }
}
