//! Encodes outgoing messages into slices of one shared buffer, so a message costs no
//! allocation of its own: a new buffer is needed once per few thousand messages.

use bytes::{Bytes, BytesMut};

use liag_proto::message::Message;

/// Size of each shared buffer.
const CHUNK: usize = 16 << 10;

#[derive(Debug, Default)]
pub(crate) struct Arena {
    buf: BytesMut,
}

impl Arena {
    /// The message's packet, as a slice of the current buffer.
    pub(crate) fn encode(&mut self, msg: &Message) -> Bytes {
        let len = msg.encoded_len();
        if self.buf.capacity() - self.buf.len() < len {
            self.buf = BytesMut::with_capacity(CHUNK.max(len));
        }
        msg.encode(&mut self.buf);
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liag_proto::seq::Seq;

    #[test]
    fn slices_are_the_encodings() {
        let mut arena = Arena::default();
        let a = arena.encode(&Message::Ack {
            received: Seq::new(7),
        });
        let b = arena.encode(&Message::Ping);
        let big = arena.encode(&Message::TestData { len: 40_000 });
        assert_eq!(
            a,
            Message::Ack {
                received: Seq::new(7)
            }
            .to_bytes()
        );
        assert_eq!(b, Message::Ping.to_bytes());
        assert_eq!(big.len(), 40_001);
    }
}
