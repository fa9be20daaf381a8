//! Fuzz target: the message decoder on arbitrary packets.
//!
//! Checks beyond "no panic": whatever decodes re-encodes to a message that decodes the same,
//! and never to more bytes than the input (trailing bytes are ignored).

#![no_main]

use bytes::Bytes;
use liag_proto::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let packet = Bytes::copy_from_slice(data);
    let Ok(msg) = Message::decode(&packet) else {
        return;
    };
    let encoded = msg.to_bytes();
    assert_eq!(Message::decode(&encoded).as_ref(), Ok(&msg));
    assert!(encoded.len() <= packet.len());
});
