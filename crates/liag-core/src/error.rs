//! Why a link or a connection ended.
//!
//! Each error converts into [`std::io::Error`] with a fitting [`ErrorKind`], the error itself
//! kept inside (`io::Error::get_ref` and `downcast_ref` give it back), so `?` works in code
//! that returns `io::Result`.

use std::fmt;
use std::io::ErrorKind;

use liag_proto::frame::FrameError;
use liag_proto::message::{DecodeError, MessageKind};
use liag_proto::seq::Seq;

/// A peer broke a rule of the protocol on one link. liag removes that link only; the
/// connection goes on over the others (unlike protocol 4's reference, weak point W4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A reliable message further ahead than the window allows (spec §7.3).
    BeyondWindow {
        /// Its sequence number.
        seq: Seq,
        /// How far ahead of the next expected one it was.
        offset: u32,
    },
    /// Data beyond the receive buffer this endpoint announced.
    ReceiveBufferOverflow {
        /// Bytes it would have buffered.
        buffered: usize,
        /// The announced limit.
        limit: usize,
    },
    /// Consumed reporting more bytes than were sent.
    ConsumedUnderflow {
        /// The count reported.
        consumed: u32,
        /// Bytes outstanding.
        outstanding: u64,
    },
    /// A handshake message on an established link (spec §3.15).
    HandshakeAfterEstablished(MessageKind),
    /// A second Goodbye after the peer's first (spec §6.7).
    RepeatedGoodbye,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::BeyondWindow { seq, offset } => write!(
                f,
                "reliable message {seq} is {offset} ahead of the next expected, beyond the window"
            ),
            Violation::ReceiveBufferOverflow { buffered, limit } => write!(
                f,
                "peer overflowed the receive buffer: {buffered} bytes buffered, limit {limit}"
            ),
            Violation::ConsumedUnderflow {
                consumed,
                outstanding,
            } => write!(
                f,
                "peer reported {consumed} bytes consumed, only {outstanding} were outstanding"
            ),
            Violation::HandshakeAfterEstablished(kind) => {
                write!(f, "{kind} message on an established link")
            }
            Violation::RepeatedGoodbye => f.write_str("second Goodbye on a link"),
        }
    }
}

impl std::error::Error for Violation {}

/// Why a link left the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The stream framing failed (reported by the driver).
    Frame(FrameError),
    /// A packet was not a valid message.
    Decode(DecodeError),
    /// The peer broke a protocol rule on this link.
    Protocol(Violation),
    /// No Pong within the ping timeout.
    PingTimeout,
    /// The transport took nothing for the ping timeout: not even a Ping could be sent.
    SendTimeout,
    /// Removed gracefully with Goodbye, by either side.
    Goodbye,
    /// This side said Goodbye and the peer did not answer within the ping timeout (while
    /// still sending on the link, say): the link is dropped as a failed one.
    GoodbyeTimeout,
    /// The peer closed the transport: its end of the stream, no error.
    Closed,
    /// The transport failed with an I/O error.
    Transport {
        /// The I/O error's kind (`BrokenPipe`, `ConnectionReset`, ...).
        kind: ErrorKind,
        /// The I/O error's text.
        message: String,
    },
    /// This side's application dropped the link at once, as if its transport had failed
    /// (`liag_tokio::Control::drop_link`).
    Dropped,
    /// The connection ended.
    ConnectionClosed,
}

impl LinkError {
    /// A transport failure of this kind, with this text.
    pub fn transport(kind: ErrorKind, message: impl Into<String>) -> Self {
        LinkError::Transport {
            kind,
            message: message.into(),
        }
    }

    /// The [`ErrorKind`] the error has as an [`std::io::Error`].
    pub fn io_kind(&self) -> ErrorKind {
        match self {
            LinkError::Frame(_) | LinkError::Decode(_) | LinkError::Protocol(_) => {
                ErrorKind::InvalidData
            }
            LinkError::PingTimeout | LinkError::SendTimeout | LinkError::GoodbyeTimeout => {
                ErrorKind::TimedOut
            }
            LinkError::Goodbye | LinkError::Dropped => ErrorKind::ConnectionAborted,
            LinkError::Closed => ErrorKind::UnexpectedEof,
            LinkError::Transport { kind, .. } => *kind,
            LinkError::ConnectionClosed => ErrorKind::NotConnected,
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Frame(e) => write!(f, "framing: {e}"),
            LinkError::Decode(e) => write!(f, "bad message: {e}"),
            LinkError::Protocol(v) => write!(f, "protocol violation: {v}"),
            LinkError::PingTimeout => f.write_str("no answer to ping"),
            LinkError::GoodbyeTimeout => f.write_str("no answer to Goodbye"),
            LinkError::SendTimeout => {
                f.write_str("the transport took nothing for the ping timeout")
            }
            LinkError::Goodbye => f.write_str("removed gracefully"),
            LinkError::Closed => f.write_str("closed by the peer"),
            LinkError::Transport { message, .. } => write!(f, "transport: {message}"),
            LinkError::Dropped => f.write_str("dropped by the application"),
            LinkError::ConnectionClosed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<LinkError> for std::io::Error {
    fn from(e: LinkError) -> Self {
        std::io::Error::new(e.io_kind(), e)
    }
}

impl From<Violation> for LinkError {
    fn from(v: Violation) -> Self {
        LinkError::Protocol(v)
    }
}

/// Why a connection ended other than gracefully.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// No working link for the configured `no_link_timeout` (or `no_link_timeout_before_data`).
    NoLinksTimeout,
    /// A new link reached a different server than the first (the peer restarted).
    ServerIdMismatch,
    /// This endpoint terminated the connection.
    TerminatedLocally,
    /// The peer sent Terminate.
    TerminatedByPeer,
    /// The server refused a link because the connection is closed there (Refused(Closed)),
    /// and none of the connection's links worked any more (all stalled or gone), with no
    /// link accepted for it since.
    AbortedByServer,
    /// The last link went while nothing could add another
    /// ([`Connection::close_to_new_links`](crate::Connection::close_to_new_links)).
    NoLinkLeft,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionError::NoLinksTimeout => "no working link within the timeout",
            ConnectionError::ServerIdMismatch => "a link reached a different server (restarted?)",
            ConnectionError::TerminatedLocally => "connection terminated",
            ConnectionError::TerminatedByPeer => "connection terminated by the peer",
            ConnectionError::AbortedByServer => "the server closed the connection",
            ConnectionError::NoLinkLeft => {
                "no link is left and none can be added (nothing keeps the links up any more)"
            }
        })
    }
}

impl std::error::Error for ConnectionError {}

impl ConnectionError {
    /// The [`ErrorKind`] the error has as an [`std::io::Error`]: what a connection's stream
    /// reports once the connection ended this way.
    pub fn io_kind(&self) -> ErrorKind {
        match self {
            ConnectionError::NoLinksTimeout => ErrorKind::TimedOut,
            // The server the connection lived on is gone (restarted): its state is lost.
            ConnectionError::ServerIdMismatch => ErrorKind::ConnectionReset,
            ConnectionError::TerminatedLocally => ErrorKind::ConnectionAborted,
            ConnectionError::TerminatedByPeer | ConnectionError::AbortedByServer => {
                ErrorKind::ConnectionReset
            }
            ConnectionError::NoLinkLeft => ErrorKind::NotConnected,
        }
    }
}

impl From<ConnectionError> for std::io::Error {
    fn from(e: ConnectionError) -> Self {
        std::io::Error::new(e.io_kind(), e)
    }
}
