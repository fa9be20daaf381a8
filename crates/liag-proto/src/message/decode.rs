//! Reading a message from one packet.

use bytes::Bytes;
use core::fmt;
use core::num::NonZeroU32;
use x25519_dalek::PublicKey;

use super::{
    Connect, ExchangedConfig, MAGIC, Message, MessageKind, RefusedReason, UserData, VERSION,
    Welcome,
};
use crate::extensions::Extensions;
use crate::ids::{MaskedConnId, ServerId};
use crate::seq::Seq;

/// Why a packet is not a valid message (spec §3.1 rule 3).
///
/// On an established link this fails the link; during a handshake it ends the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet is empty, so it has no type byte.
    Empty,
    /// The type byte names no message (0 or 17 and above).
    UnknownType(u8),
    /// The packet ends before the message's fields do.
    TooShort {
        /// The message type.
        kind: MessageKind,
        /// The packet's length.
        len: usize,
    },
    /// Welcome or Connect without the `LIAG\0` magic.
    BadMagic {
        /// The message type.
        kind: MessageKind,
        /// The five bytes found instead.
        found: [u8; 5],
    },
    /// Welcome or Connect with a protocol version other than 4.
    UnsupportedVersion {
        /// The message type.
        kind: MessageKind,
        /// The version found.
        version: u8,
    },
    /// Welcome or Connect announcing a receive buffer of zero.
    ZeroRecvBuffer {
        /// The message type.
        kind: MessageKind,
    },
    /// Welcome with a server id of zero.
    ZeroServerId,
    /// Refused with a reason that does not exist.
    UnknownRefusedReason(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Empty => f.write_str("empty packet where a message was expected"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::TooShort { kind, len } => {
                write!(f, "{kind} message truncated: packet has only {len} bytes")
            }
            DecodeError::BadMagic { kind, found } => {
                write!(
                    f,
                    "{kind} message has bad magic {found:02x?}, expected \"LIAG\\0\""
                )
            }
            DecodeError::UnsupportedVersion { kind, version } => write!(
                f,
                "{kind} message has protocol version {version}, only {VERSION} is supported"
            ),
            DecodeError::ZeroRecvBuffer { kind } => {
                write!(f, "{kind} message announces a receive buffer of 0 bytes")
            }
            DecodeError::ZeroServerId => f.write_str("Welcome message has server id 0"),
            DecodeError::UnknownRefusedReason(r) => {
                write!(f, "Refused message has unknown reason {r}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// A bounds-checked cursor over one packet.
struct Reader<'a> {
    packet: &'a Bytes,
    pos: usize,
    kind: MessageKind,
}

impl<'a> Reader<'a> {
    fn too_short(&self) -> DecodeError {
        DecodeError::TooShort {
            kind: self.kind,
            len: self.packet.len(),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .packet
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
            .ok_or_else(|| self.too_short())?;
        self.pos += N;
        Ok(*bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        self.array().map(u128::from_be_bytes)
    }

    fn seq(&mut self) -> Result<Seq, DecodeError> {
        self.u32().map(Seq::new)
    }

    /// Reads `len` bytes as a zero-copy slice of the packet.
    fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.packet.len())
            .ok_or_else(|| self.too_short())?;
        let slice = self.packet.slice(self.pos..end);
        self.pos = end;
        Ok(slice)
    }

    /// Magic, version and extensions, common to Welcome and Connect.
    fn preamble(&mut self) -> Result<Extensions, DecodeError> {
        let found = self.array::<5>()?;
        if found != MAGIC {
            return Err(DecodeError::BadMagic {
                kind: self.kind,
                found,
            });
        }
        let version = self.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                kind: self.kind,
                version,
            });
        }
        self.u32().map(Extensions::from_bits)
    }

    fn public_key(&mut self) -> Result<PublicKey, DecodeError> {
        self.array::<32>().map(PublicKey::from)
    }

    fn user_data(&mut self) -> Result<UserData, DecodeError> {
        let len = self.u16()?;
        // A u16 length can never exceed MAX_USER_DATA_LEN.
        Ok(UserData(self.bytes(len.into())?))
    }

    fn cfg(&mut self) -> Result<ExchangedConfig, DecodeError> {
        let recv_buffer =
            NonZeroU32::new(self.u32()?).ok_or(DecodeError::ZeroRecvBuffer { kind: self.kind })?;
        Ok(ExchangedConfig { recv_buffer })
    }
}

impl Message {
    /// Reads the message in `packet`. Trailing bytes after the fields are ignored, as protocol 4
    /// requires (§3.1 rule 2); TestData's length is the rest of the packet.
    ///
    /// Never panics and never allocates: user data is a slice of `packet`.
    pub fn decode(packet: &Bytes) -> Result<Message, DecodeError> {
        let &type_byte = packet.first().ok_or(DecodeError::Empty)?;
        let kind = MessageKind::from_u8(type_byte).ok_or(DecodeError::UnknownType(type_byte))?;
        let mut r = Reader {
            packet,
            pos: 1,
            kind,
        };
        Ok(match kind {
            MessageKind::Welcome => {
                let extensions = r.preamble()?;
                let public_key = r.public_key()?;
                let server_id = ServerId::new(r.u128()?).ok_or(DecodeError::ZeroServerId)?;
                let user_data = r.user_data()?;
                let cfg = r.cfg()?;
                Message::Welcome(Welcome {
                    extensions,
                    public_key,
                    server_id,
                    user_data,
                    cfg,
                })
            }
            MessageKind::Connect => {
                let extensions = r.preamble()?;
                let public_key = r.public_key()?;
                let server_id = ServerId::new(r.u128()?);
                let connection_id = MaskedConnId::new(r.u128()?);
                let existing_connection = r.u8()? != 0;
                let user_data = r.user_data()?;
                let cfg = r.cfg()?;
                Message::Connect(Connect {
                    extensions,
                    public_key,
                    server_id,
                    connection_id,
                    existing_connection,
                    user_data,
                    cfg,
                })
            }
            MessageKind::Accepted => Message::Accepted,
            MessageKind::Refused => {
                let reason = r.u8()?;
                Message::Refused(
                    RefusedReason::from_u8(reason)
                        .ok_or(DecodeError::UnknownRefusedReason(reason))?,
                )
            }
            MessageKind::Ping => Message::Ping,
            MessageKind::Pong => Message::Pong,
            MessageKind::Data => Message::Data { seq: r.seq()? },
            MessageKind::Ack => Message::Ack { received: r.seq()? },
            MessageKind::Consumed => Message::Consumed {
                seq: r.seq()?,
                consumed: r.u32()?,
            },
            MessageKind::SendFinish => Message::SendFinish { seq: r.seq()? },
            MessageKind::ReceiveClose => Message::ReceiveClose { seq: r.seq()? },
            MessageKind::ReceiveFinish => Message::ReceiveFinish { seq: r.seq()? },
            MessageKind::TestData => Message::TestData {
                // Frames are at most 8 MiB, so this never saturates on real input.
                len: u32::try_from(packet.len() - 1).unwrap_or(u32::MAX),
            },
            MessageKind::SetBlock => Message::SetBlock {
                blocked: r.u8()? != 0,
            },
            MessageKind::Goodbye => Message::Goodbye,
            MessageKind::Terminate => Message::Terminate,
        })
    }
}
