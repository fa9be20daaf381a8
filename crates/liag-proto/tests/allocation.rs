//! Decoding arbitrary bytes allocates nothing in proportion to what a header claims.
//!
//! This test binary counts every allocation (per thread) with `allocation-counter`. The only
//! allocation decoding may make is the `bytes` crate's small reference-count header when a
//! buffer is first shared; a payload buffer is never reserved from a length field.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::{BufMut, Bytes, BytesMut};
use liag_proto::frame::FrameDecoder;
use liag_proto::inbound::InboundReader;
use liag_proto::message::Message;
use proptest::prelude::*;

/// The most a decode call may allocate: one shared-buffer header of the `bytes` crate.
const BOOKKEEPING: u64 = 64;

proptest! {
    #[test]
    fn message_decoding_does_not_allocate(packet in prop::collection::vec(any::<u8>(), 0..300)) {
        let packet = Bytes::from(packet);
        let info = allocation_counter::measure(|| {
            let _ = Message::decode(&packet);
        });
        prop_assert!(info.bytes_total <= BOOKKEEPING, "{} bytes allocated", info.bytes_total);
    }

    #[test]
    fn frame_decoding_does_not_allocate(
        claimed_len in any::<u32>(),
        frame_seq in 0u16..2,
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        // A header claiming up to 4 GiB, followed by a little of anything.
        let mut wire = BytesMut::with_capacity(10 + rest.len());
        wire.put_u32(claimed_len);
        wire.put_u16(frame_seq);
        wire.put_u32(0);
        wire.extend_from_slice(&rest);
        let mut decoder = FrameDecoder::new();
        let mut reader = InboundReader::new();
        let info = allocation_counter::measure(|| {
            while let Ok(Some(packet)) = decoder.decode(&mut wire) {
                let _ = reader.read(packet);
            }
            let _ = decoder.decode_eof(&mut wire);
        });
        prop_assert!(info.bytes_total <= BOOKKEEPING, "{} bytes allocated", info.bytes_total);
        prop_assert!(decoder.bytes_needed(0) <= 8 << 20);
    }
}

/// Guards the tests above against a counter that sees nothing.
#[test]
fn counter_sees_allocations() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(1000));
    });
    assert!(info.bytes_total >= 1000);
}
