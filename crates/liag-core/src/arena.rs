//! Encodes outgoing messages into slices of one shared buffer, so a message costs no
//! allocation of its own: a new buffer is needed once per few thousand messages. The first
//! buffers are small and each is twice the last, up to the full size, so a connection that
//! sends little (one of thousands a server holds idle) holds little.

use bytes::{Bytes, BytesMut};

use liag_proto::message::Message;

/// Size of the first shared buffer, and of the later ones.
const FIRST_CHUNK: usize = 512;
const CHUNK: usize = 16 << 10;

#[derive(Debug, Default)]
pub(crate) struct Arena {
    buf: BytesMut,
    /// The size of the last buffer.
    chunk: usize,
}

impl Arena {
    /// The message's packet, as a slice of the current buffer.
    pub(crate) fn encode(&mut self, msg: &Message) -> Bytes {
        let len = msg.encoded_len();
        if self.buf.capacity() - self.buf.len() < len {
            self.chunk = (self.chunk * 2).clamp(FIRST_CHUNK, CHUNK);
            self.buf = BytesMut::with_capacity(self.chunk.max(len));
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
