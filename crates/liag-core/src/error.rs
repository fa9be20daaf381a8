//! Why a link or a connection ended.

use std::fmt;

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
    /// The peer closed the transport: its end of the stream, no error.
    Closed,
    /// The transport failed; the driver's description.
    Transport(String),
    /// The connection ended.
    ConnectionClosed,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Frame(e) => write!(f, "framing: {e}"),
            LinkError::Decode(e) => write!(f, "bad message: {e}"),
            LinkError::Protocol(v) => write!(f, "protocol violation: {v}"),
            LinkError::PingTimeout => f.write_str("no answer to ping"),
            LinkError::SendTimeout => {
                f.write_str("the transport took nothing for the ping timeout")
            }
            LinkError::Goodbye => f.write_str("removed gracefully"),
            LinkError::Closed => f.write_str("closed by the peer"),
            LinkError::Transport(e) => write!(f, "transport: {e}"),
            LinkError::ConnectionClosed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for LinkError {}

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
    /// The server refused a link because the connection is closed there.
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
