//! Fuzz target: the frame decoder and Data pairing, fed arbitrary bytes in arbitrary pieces.
//!
//! Checks beyond "no panic": every frame it delivers re-encodes to exactly the bytes it came
//! from, and the decoder never asks for more than its limit.

#![no_main]

use bytes::BytesMut;
use liag_proto::frame::{FrameDecoder, FrameEncoder, HEADER_LEN};
use liag_proto::inbound::InboundReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, wire)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut decoder = FrameDecoder::new();
    let mut reader = InboundReader::new();
    let mut reencoder = FrameEncoder::new();
    let mut reencoded = BytesMut::new();
    let mut buffered = BytesMut::new();
    for chunk in wire.chunks(piece) {
        buffered.extend_from_slice(chunk);
        assert!(decoder.bytes_needed(buffered.len()) <= HEADER_LEN + (8 << 20));
        loop {
            match decoder.decode(&mut buffered) {
                Ok(Some(packet)) => {
                    reencoder
                        .encode(&packet, &mut reencoded)
                        .expect("decoded frames fit");
                    let _ = reader.read(packet);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = decoder.decode_eof(&mut buffered);
    assert_eq!(&reencoded[..], &wire[..reencoded.len()]);
});
