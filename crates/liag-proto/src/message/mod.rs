//! The 16 link messages of protocol 4 (spec §3).
//!
//! Every message is one packet whose first byte is its type. [`Message::decode`] reads one
//! from a packet without copying (user data stays a slice of the packet) and never allocates;
//! [`Message::encode`] writes one. Data is special: its payload follows as the *next* packet
//! on the same link, with no type byte, see [`crate::inbound`].

mod decode;
mod encode;

pub use decode::DecodeError;

use bytes::Bytes;
use core::fmt;
use core::num::NonZeroU32;
use x25519_dalek::PublicKey;

use crate::extensions::Extensions;
use crate::ids::{MaskedConnId, ServerId};
use crate::seq::Seq;

/// `"LIAG\0"`, sent in Welcome and Connect.
pub const MAGIC: [u8; 5] = *b"LIAG\0";

/// The protocol version liag speaks.
pub const VERSION: u8 = 4;

/// The largest user data a Welcome or Connect can carry (its length is a `u16`).
pub const MAX_USER_DATA_LEN: usize = u16::MAX as usize;

/// The largest Welcome or Connect packet, a bound for frame decoders during a handshake.
pub const MAX_HANDSHAKE_LEN: u32 = 82 + MAX_USER_DATA_LEN as u32;

/// The type of a message: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // The names are the spec's; see [`Message`] for each.
pub enum MessageKind {
    Welcome = 1,
    Connect = 2,
    Accepted = 3,
    Refused = 4,
    Ping = 5,
    Pong = 6,
    Data = 7,
    Ack = 8,
    Consumed = 9,
    SendFinish = 10,
    ReceiveClose = 11,
    ReceiveFinish = 12,
    TestData = 13,
    SetBlock = 14,
    Goodbye = 15,
    Terminate = 16,
}

impl MessageKind {
    /// The kind with this type byte, if there is one.
    pub fn from_u8(byte: u8) -> Option<Self> {
        use MessageKind::*;
        Some(match byte {
            1 => Welcome,
            2 => Connect,
            3 => Accepted,
            4 => Refused,
            5 => Ping,
            6 => Pong,
            7 => Data,
            8 => Ack,
            9 => Consumed,
            10 => SendFinish,
            11 => ReceiveClose,
            12 => ReceiveFinish,
            13 => TestData,
            14 => SetBlock,
            15 => Goodbye,
            16 => Terminate,
            _ => return None,
        })
    }

    /// Whether messages of this kind carry a sequence number and must be acknowledged (§7.1).
    pub fn is_reliable(self) -> bool {
        matches!(
            self,
            MessageKind::Data
                | MessageKind::Consumed
                | MessageKind::SendFinish
                | MessageKind::ReceiveClose
                | MessageKind::ReceiveFinish
        )
    }

    /// Whether this kind belongs to the handshake (types 1–4), which is a protocol error on an
    /// established link (§3.15).
    pub fn is_handshake(self) -> bool {
        (self as u8) <= 4
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why the responder (the server's side of a link's handshake; the spec's acceptor) refused
/// a link (spec §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RefusedReason {
    /// The connection is unknown or closed, or stopped taking links.
    Closed = 1,
    /// A new connection was asked for, but the server takes none.
    NotListening = 2,
    /// The server's application refused the new connection.
    ConnectionRefused = 3,
    /// The server's link filter rejected this link.
    LinkRefused = 4,
}

impl RefusedReason {
    /// The reason with this wire value, if there is one.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => RefusedReason::Closed,
            2 => RefusedReason::NotListening,
            3 => RefusedReason::ConnectionRefused,
            4 => RefusedReason::LinkRefused,
            _ => return None,
        })
    }
}

impl fmt::Display for RefusedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusedReason::Closed => "connection closed or unknown",
            RefusedReason::NotListening => "server is not accepting new connections",
            RefusedReason::ConnectionRefused => "connection refused by the server's application",
            RefusedReason::LinkRefused => "link refused by the server's link filter",
        })
    }
}

/// The configuration both sides send in the handshake (spec §3.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangedConfig {
    /// The most Data payload bytes the sender of the handshake message will buffer unread:
    /// its peer's flow-control window.
    pub recv_buffer: NonZeroU32,
}

/// Opaque per-link bytes from the transport, at most [`MAX_USER_DATA_LEN`] long (spec §5.7).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct UserData(Bytes);

impl UserData {
    /// Wraps `bytes`, or gives them back if they are too long to send.
    pub fn new(bytes: Bytes) -> Result<Self, Bytes> {
        if bytes.len() <= MAX_USER_DATA_LEN {
            Ok(UserData(bytes))
        } else {
            Err(bytes)
        }
    }

    /// No user data.
    pub const fn empty() -> Self {
        UserData(Bytes::new())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Debug for UserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.0) {
            Ok(text) => write!(f, "UserData({text:?})"),
            Err(_) => write!(f, "UserData({:02x?})", &self.0[..]),
        }
    }
}

/// The responder's first packet on a new link (spec §3.3): the server's side of the
/// handshake (the spec's acceptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Extensions the server supports; none in protocol 4.
    pub extensions: Extensions,
    /// The server's key for this link.
    pub public_key: PublicKey,
    /// The server's id.
    pub server_id: ServerId,
    /// The server's user data for this link.
    pub user_data: UserData,
    /// The server's configuration.
    pub cfg: ExchangedConfig,
}

/// The initiator's answer to Welcome (spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Extensions the initiator supports; none in protocol 4.
    pub extensions: Extensions,
    /// The initiator's key for this link.
    pub public_key: PublicKey,
    /// The initiator's own server id if it also accepts links for this connection.
    pub server_id: Option<ServerId>,
    /// The connection id, masked with this link's shared secret.
    pub connection_id: MaskedConnId,
    /// Whether an earlier link of this connection was already accepted.
    pub existing_connection: bool,
    /// The initiator's user data for this link.
    pub user_data: UserData,
    /// The initiator's configuration.
    pub cfg: ExchangedConfig,
}

/// One link message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Acceptor's greeting, the first packet on a link.
    Welcome(Welcome),
    /// Initiator's reply to Welcome.
    Connect(Connect),
    /// The link joined the connection.
    Accepted,
    /// The link was refused, and will be closed.
    Refused(RefusedReason),
    /// Asks for a Pong on the same link.
    Ping,
    /// Answers a Ping.
    Pong,
    /// A reliable data message; its payload is the next packet on the link.
    Data {
        /// Sequence number.
        seq: Seq,
    },
    /// Acknowledges the one reliable message `received` that arrived on this link.
    Ack {
        /// The acknowledged sequence number.
        received: Seq,
    },
    /// The sender handed `consumed` more payload bytes to its application.
    Consumed {
        /// Sequence number.
        seq: Seq,
        /// Bytes consumed since the previous Consumed.
        consumed: u32,
    },
    /// The sender will send no more data.
    SendFinish {
        /// Sequence number.
        seq: Seq,
    },
    /// The sender's application closed its receiving side; please stop sending.
    ReceiveClose {
        /// Sequence number.
        seq: Seq,
    },
    /// The sender's application dropped its receiving side; further data is discarded.
    ReceiveFinish {
        /// Sequence number.
        seq: Seq,
    },
    /// Filler for measuring a link; `len` bytes `00 01 02 …` follow the type byte.
    TestData {
        /// Number of filler bytes.
        len: u32,
    },
    /// The sender's application blocked (or unblocked) this link for reliable traffic.
    SetBlock {
        /// Whether the link is blocked.
        blocked: bool,
    },
    /// The sender is removing this link gracefully.
    Goodbye,
    /// The sender ends the whole connection at once.
    Terminate,
}

impl Message {
    /// The type of this message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Welcome(_) => MessageKind::Welcome,
            Message::Connect(_) => MessageKind::Connect,
            Message::Accepted => MessageKind::Accepted,
            Message::Refused(_) => MessageKind::Refused,
            Message::Ping => MessageKind::Ping,
            Message::Pong => MessageKind::Pong,
            Message::Data { .. } => MessageKind::Data,
            Message::Ack { .. } => MessageKind::Ack,
            Message::Consumed { .. } => MessageKind::Consumed,
            Message::SendFinish { .. } => MessageKind::SendFinish,
            Message::ReceiveClose { .. } => MessageKind::ReceiveClose,
            Message::ReceiveFinish { .. } => MessageKind::ReceiveFinish,
            Message::TestData { .. } => MessageKind::TestData,
            Message::SetBlock { .. } => MessageKind::SetBlock,
            Message::Goodbye => MessageKind::Goodbye,
            Message::Terminate => MessageKind::Terminate,
        }
    }

    /// The sequence number of a reliable message, `None` for the others.
    pub fn seq(&self) -> Option<Seq> {
        match *self {
            Message::Data { seq }
            | Message::Consumed { seq, .. }
            | Message::SendFinish { seq }
            | Message::ReceiveClose { seq }
            | Message::ReceiveFinish { seq } => Some(seq),
            _ => None,
        }
    }
}
