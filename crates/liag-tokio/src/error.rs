//! Why an operation failed: [`AddLinkError`] for adding a link to an outgoing connection, and
//! the server's own record of why an incoming link did not join.
//!
//! A link that joined and later left says why in [`LinkEvent::Removed`](crate::LinkEvent)
//! ([`LinkError`](liag_core::LinkError)); a connection that ended, in
//! [`Control::result`](crate::Control::result) ([`ConnectionError`](liag_core::ConnectionError)).
//! Every error converts into [`io::Error`] with a fitting [`io::ErrorKind`], the error kept
//! inside (`get_ref` and `downcast_ref` give it back), so `?` works in code that returns
//! `io::Result`.

use std::io;

use liag_core::handshake::HandshakeError;
use liag_core::proto::message::RefusedReason;

/// Why [`Outgoing::add_link`](crate::Outgoing::add_link) or
/// [`Outgoing::add_packet_link`](crate::Outgoing::add_packet_link) did not add the link. The
/// link's transport is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddLinkError {
    /// The server refused the link, for this reason (it comes from the server, in its Refused
    /// message). [`RefusedReason::Closed`] on a later link of a connection means the server no
    /// longer knows the connection: it ends (aborted by the server) as soon as none of its
    /// links works (all stalled or gone), unless a link the server accepts for it joins first.
    #[error("link refused: {0}")]
    Refused(RefusedReason),
    /// The link reached another server than the connection's first link did: the server
    /// restarted, or its name now leads elsewhere. With
    /// [`Config::disconnect_on_server_id_mismatch`](liag_core::Config::disconnect_on_server_id_mismatch)
    /// (the default) the connection ends too.
    #[error("a link reached a different server (restarted?)")]
    ServerIdMismatch,
    /// The server accepted the link, and this side's link filter (the `filter` of
    /// [`Outgoing::add_packet_link`](crate::Outgoing::add_packet_link)) refused it.
    #[error("link refused by the link filter")]
    Filtered,
    /// The handshake did not finish within
    /// [`EndpointConfig::handshake_timeout`](crate::EndpointConfig::handshake_timeout).
    #[error("handshake timed out")]
    Timeout,
    /// The server answered the handshake, but its application did not accept the new
    /// connection within the handshake timeout.
    #[error(
        "the server answered but its application did not accept the connection within the \
         handshake timeout: a server takes each new connection from its Listener and accepts \
         it (Incoming::accept) before the connection's first link is up"
    )]
    NotAccepted,
    /// The connection has ended: no link can join it any more.
    #[error("connection closed")]
    Closed,
    /// The transport ended before the handshake finished.
    #[error("link closed during the handshake")]
    TransportClosed,
    /// The peer broke the handshake: a message that does not decode, one out of order, or an
    /// unusable key. (A refusal is [`AddLinkError::Refused`], never this.)
    #[error(transparent)]
    Protocol(HandshakeError),
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl AddLinkError {
    /// The [`io::ErrorKind`] the error has as an [`io::Error`].
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            AddLinkError::Refused(_) | AddLinkError::ServerIdMismatch | AddLinkError::Filtered => {
                io::ErrorKind::ConnectionRefused
            }
            AddLinkError::Timeout | AddLinkError::NotAccepted => io::ErrorKind::TimedOut,
            AddLinkError::Closed => io::ErrorKind::NotConnected,
            AddLinkError::TransportClosed => io::ErrorKind::UnexpectedEof,
            AddLinkError::Protocol(_) => io::ErrorKind::InvalidData,
            AddLinkError::Io(e) => e.kind(),
        }
    }
}

impl From<AddLinkError> for io::Error {
    /// The transport's own error as it was; any other inside an error of its
    /// [`AddLinkError::io_kind`].
    fn from(e: AddLinkError) -> Self {
        match e {
            AddLinkError::Io(e) => e,
            e => io::Error::new(e.io_kind(), e),
        }
    }
}

/// Why an incoming link did not join a connection on the server. `Server::add_link` runs
/// each handshake in a task of its own, so this is only logged (at `debug`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// The handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    Timeout,
    /// The transport ended before the handshake finished.
    #[error("link closed during the handshake")]
    TransportClosed,
    /// The initiator broke the handshake.
    #[error(transparent)]
    Protocol(HandshakeError),
    /// This server refused the link, for this reason.
    #[error("refused: {0}")]
    Refused(RefusedReason),
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How one step of a handshake failed, on either side.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The transport ended.
    TransportClosed,
    /// The peer's message broke the handshake (or refused the link).
    Protocol(HandshakeError),
    /// The transport failed.
    Io(io::Error),
}

impl From<io::Error> for StepError {
    fn from(e: io::Error) -> Self {
        StepError::Io(e)
    }
}

impl From<HandshakeError> for StepError {
    fn from(e: HandshakeError) -> Self {
        StepError::Protocol(e)
    }
}

impl From<StepError> for AddLinkError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::TransportClosed => AddLinkError::TransportClosed,
            StepError::Protocol(HandshakeError::Refused(reason)) => AddLinkError::Refused(reason),
            StepError::Protocol(e) => AddLinkError::Protocol(e),
            StepError::Io(e) => AddLinkError::Io(e),
        }
    }
}

impl From<StepError> for AcceptError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::TransportClosed => AcceptError::TransportClosed,
            StepError::Protocol(e) => AcceptError::Protocol(e),
            StepError::Io(e) => AcceptError::Io(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_link_errors_become_io_errors_of_their_kind_and_come_back() {
        let e = io::Error::from(AddLinkError::Refused(RefusedReason::LinkRefused));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            e.to_string(),
            "link refused: link refused by the server's link filter"
        );
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<AddLinkError>());
        assert!(
            matches!(
                inner,
                Some(AddLinkError::Refused(RefusedReason::LinkRefused))
            ),
            "{inner:?}"
        );
        for (error, kind) in [
            (AddLinkError::Timeout, io::ErrorKind::TimedOut),
            (AddLinkError::NotAccepted, io::ErrorKind::TimedOut),
            (AddLinkError::Closed, io::ErrorKind::NotConnected),
            (AddLinkError::Filtered, io::ErrorKind::ConnectionRefused),
            (
                AddLinkError::ServerIdMismatch,
                io::ErrorKind::ConnectionRefused,
            ),
            (AddLinkError::TransportClosed, io::ErrorKind::UnexpectedEof),
        ] {
            assert_eq!(io::Error::from(error).kind(), kind);
        }
        // The transport's own error comes out as it went in.
        let os = io::Error::from_raw_os_error(104);
        let back = io::Error::from(AddLinkError::Io(os));
        assert_eq!(back.raw_os_error(), Some(104));
    }

    #[test]
    fn a_refusal_in_a_handshake_step_is_a_refusal() {
        let step = StepError::Protocol(HandshakeError::Refused(RefusedReason::Closed));
        assert!(matches!(
            AddLinkError::from(step),
            AddLinkError::Refused(RefusedReason::Closed)
        ));
    }

    /// How the server's side of a handshake ends, where the server does the handshake.
    mod server {
        use super::*;
        use crate::{EndpointConfig, Server, UserData, connect, stream_link};
        use bytes::BytesMut;
        use liag_core::proto::frame::FrameEncoder;
        use liag_core::proto::message::{Message, MessageKind};
        use std::sync::Arc;
        use tokio::io::AsyncWriteExt;

        #[tokio::test(start_paused = true)]
        async fn a_silent_initiator_times_the_handshake_out() {
            let (server, _listener) = Server::new(EndpointConfig::default());
            let (a, _silent) = tokio::io::duplex(1 << 16);
            let error = server.handshake(stream_link(a)).await.unwrap_err();
            assert!(matches!(error, AcceptError::Timeout), "{error}");
        }

        #[tokio::test(start_paused = true)]
        async fn an_initiator_that_skips_connect_breaks_the_protocol() {
            let (server, _listener) = Server::new(EndpointConfig::default());
            let (a, mut b) = tokio::io::duplex(1 << 16);
            let mut wire = BytesMut::new();
            FrameEncoder::new()
                .encode(&Message::Ping.to_bytes(), &mut wire)
                .unwrap();
            b.write_all(&wire).await.unwrap();
            let error = server.handshake(stream_link(a)).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    AcceptError::Protocol(HandshakeError::Unexpected(MessageKind::Ping))
                ),
                "{error}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_link_the_filter_refuses_is_refused_with_link_refused() {
            let (server, _listener) = Server::new(EndpointConfig::default());
            server.set_link_filter(Arc::new(|_| false));
            let (_client, outgoing) = connect(EndpointConfig::default());
            let (a, b) = tokio::io::duplex(1 << 16);
            let client =
                tokio::spawn(async move { outgoing.add_link(a, "pipe", UserData::empty()).await });
            let error = server.handshake(stream_link(b)).await.unwrap_err();
            assert!(
                matches!(error, AcceptError::Refused(RefusedReason::LinkRefused)),
                "{error}"
            );
            let refused = client.await.unwrap().unwrap_err();
            assert!(
                matches!(refused, AddLinkError::Refused(RefusedReason::LinkRefused)),
                "{refused}"
            );
        }
    }
}
