//! The initiating side: [`connect`] makes a connection, [`Outgoing`] adds links to it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncRead, AsyncWrite};

use liag_core::handshake::{HandshakeError, InitiatorParams};
use liag_core::proto::ids::ConnId;
use liag_core::proto::message::{ExchangedCfg, RefusedReason, UserData, Welcome};
use liag_core::{Connection, Direction, LinkId, LinkInfo};

use crate::codec::{BoxLink, stream_link};
use crate::control::Control;
use crate::handshake::{initiate, within};
use crate::settings::Settings;
use crate::shared::Shared;
use crate::stream::Stream;

/// The initiator's handle for adding links to its connection.
#[derive(Clone)]
pub struct Outgoing {
    shared: Arc<Shared>,
    conn_id: ConnId,
    settings: Settings,
    /// Whether some link was accepted, so later links say `existing_connection`.
    accepted: Arc<AtomicBool>,
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
pub fn connect(settings: Settings) -> (Stream, Outgoing) {
    let conn_id = ConnId::random(&mut rand::rng());
    let shared = Shared::new(Connection::new(
        settings.config.clone(),
        liag_core::Time::ZERO,
    ));
    let span = tracing::info_span!("liag", conn = %conn_id, side = "client");
    crate::driver::spawn(shared.clone(), span);
    let stream = Stream::new(shared.clone());
    let outgoing = Outgoing {
        shared,
        conn_id,
        settings,
        accepted: Arc::new(AtomicBool::new(false)),
    };
    (stream, outgoing)
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

    /// Handshakes a byte-stream transport as a new link of this connection.
    pub async fn add_link<S>(
        &self,
        io: S,
        tag: impl Into<String>,
        user_data: UserData,
    ) -> io::Result<LinkId>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.add_packet_link(stream_link(io), tag, user_data, |_| true)
            .await
    }

    /// Handshakes a link (stream or packet) as a new link of this connection. `filter` sees
    /// the acceptor's Welcome after Accepted; if it says no, the link is closed unused (a link
    /// filter, spec §10.5).
    pub async fn add_packet_link(
        &self,
        mut link: BoxLink,
        tag: impl Into<String>,
        user_data: UserData,
        filter: impl FnOnce(&Welcome) -> bool,
    ) -> io::Result<LinkId> {
        let tag = tag.into();
        if self.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection closed",
            ));
        }
        let mut params = InitiatorParams::new(
            self.conn_id,
            self.accepted.load(Ordering::Acquire),
            ExchangedCfg {
                recv_buffer: self.settings.config.recv_buffer,
            },
        );
        params.user_data = user_data.clone();
        let started = tokio::time::Instant::now();
        let shared = self.shared.clone();
        let existing = params.existing_connection;
        let welcome = within(
            self.settings.handshake_timeout,
            initiate(&mut link, params, move |welcome| {
                let mut inner = shared.lock();
                let result = inner.conn.check_server_id(welcome.server_id);
                inner.wake_driver();
                result.map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e))
            }),
        )
        .await
        .inspect_err(|e| {
            if existing && refused_as_closed(e) {
                tracing::debug!("the server no longer knows the connection; ending it");
                let mut inner = self.shared.lock();
                inner.conn.abort_by_server();
                inner.wake_driver();
            }
        })?;
        self.accepted.store(true, Ordering::Release);
        if !filter(&welcome) {
            return Err(io::Error::other("link rejected by the link filter"));
        }
        let mut info = LinkInfo::new(Direction::Outgoing, tag, started.elapsed());
        info.local_user_data = user_data;
        info.remote_user_data = welcome.user_data.clone();
        tracing::debug!(tag = %info.tag, "link accepted");
        let recv_buffer = welcome.cfg.recv_buffer.get();
        Ok(self.control().attach_link(link, info, recv_buffer))
    }
}

/// Whether a link's handshake ended with Refused(Closed).
fn refused_as_closed(e: &io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<HandshakeError>()),
        Some(HandshakeError::Refused(RefusedReason::Closed))
    )
}
