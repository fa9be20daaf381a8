//! Writing a message into one packet.

use bytes::{BufMut, Bytes, BytesMut};

use super::{ExchangedConfig, MAGIC, Message, MessageKind, UserData, VERSION};
use crate::extensions::Extensions;

/// TestData filler: byte `i` of the filler is `i mod 256` (spec §3.12).
const FILLER: [u8; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i as u8;
        i += 1;
    }
    table
};

fn put_preamble(dst: &mut impl BufMut, kind: MessageKind, extensions: Extensions) {
    dst.put_u8(kind as u8);
    dst.put_slice(&MAGIC);
    dst.put_u8(VERSION);
    dst.put_u32(extensions.bits());
}

fn put_user_data(dst: &mut impl BufMut, user_data: &UserData) {
    let bytes = user_data.as_bytes();
    // UserData is at most u16::MAX bytes long by construction.
    dst.put_u16(bytes.len() as u16);
    dst.put_slice(bytes);
}

fn put_cfg(dst: &mut impl BufMut, cfg: &ExchangedConfig) {
    dst.put_u32(cfg.recv_buffer.get());
}

impl Message {
    /// The length of this message's packet in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Welcome(w) => 65 + w.user_data.as_bytes().len(),
            Message::Connect(c) => 82 + c.user_data.as_bytes().len(),
            Message::Accepted
            | Message::Ping
            | Message::Pong
            | Message::Goodbye
            | Message::Terminate => 1,
            Message::Refused(_) | Message::SetBlock { .. } => 2,
            Message::Data { .. }
            | Message::Ack { .. }
            | Message::SendFinish { .. }
            | Message::ReceiveClose { .. }
            | Message::ReceiveFinish { .. } => 5,
            Message::Consumed { .. } => 9,
            Message::TestData { len } => 1 + *len as usize,
        }
    }

    /// Appends this message's packet to `dst`.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let kind = self.kind();
        match self {
            Message::Welcome(w) => {
                put_preamble(dst, kind, w.extensions);
                dst.put_slice(w.public_key.as_bytes());
                dst.put_u128(w.server_id.get());
                put_user_data(dst, &w.user_data);
                put_cfg(dst, &w.cfg);
            }
            Message::Connect(c) => {
                put_preamble(dst, kind, c.extensions);
                dst.put_slice(c.public_key.as_bytes());
                dst.put_u128(c.server_id.map_or(0, |id| id.get()));
                dst.put_u128(c.connection_id.get());
                dst.put_u8(c.existing_connection.into());
                put_user_data(dst, &c.user_data);
                put_cfg(dst, &c.cfg);
            }
            Message::Refused(reason) => {
                dst.put_u8(kind as u8);
                dst.put_u8(*reason as u8);
            }
            Message::Data { seq }
            | Message::SendFinish { seq }
            | Message::ReceiveClose { seq }
            | Message::ReceiveFinish { seq }
            | Message::Ack { received: seq } => {
                dst.put_u8(kind as u8);
                dst.put_u32(seq.get());
            }
            Message::Consumed { seq, consumed } => {
                dst.put_u8(kind as u8);
                dst.put_u32(seq.get());
                dst.put_u32(*consumed);
            }
            Message::TestData { len } => {
                dst.put_u8(kind as u8);
                let mut left = *len as usize;
                while left > 0 {
                    let n = left.min(FILLER.len());
                    dst.put_slice(&FILLER[..n]);
                    left -= n;
                }
            }
            Message::SetBlock { blocked } => {
                dst.put_u8(kind as u8);
                dst.put_u8((*blocked).into());
            }
            Message::Accepted
            | Message::Ping
            | Message::Pong
            | Message::Goodbye
            | Message::Terminate => dst.put_u8(kind as u8),
        }
    }

    /// This message's packet as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}
