//! Fuzz target: a link's handshake, in either role, on an arbitrary byte stream.
//!
//! The first byte picks the role (even: the responder, which sent Welcome and waits for
//! Connect; odd: the initiator, which waits for Welcome, answers Connect and waits for
//! Accepted or Refused); the rest is the peer's side of the stream, framed as on a link.
//! `cargo xtask fuzz handshake` starts from the captured aggligator handshakes in
//! `fuzz/seeds/handshake/`.
//!
//! Checks beyond "no panic": the responder looks at one packet only (after it, good or bad,
//! the handshake is over), its result resolves in a connection table, and an initiator is
//! accepted only once, by a packet that decodes as Accepted.

#![no_main]

use bytes::{Bytes, BytesMut};
use liag_core::handshake::{
    ConnectionTable, HandshakeError, Initiator, InitiatorParams, InitiatorStep, Responder,
};
use liag_proto::frame::FrameDecoder;
use liag_proto::ids::{ConnId, ServerId};
use liag_proto::message::{ExchangedConfig, Message, UserData};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use std::num::NonZeroU32;

fn packets(wire: &[u8]) -> Vec<Bytes> {
    let mut decoder = FrameDecoder::new();
    let mut buffered = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Ok(Some(packet)) = decoder.decode(&mut buffered) {
        out.push(packet);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, wire)) = data.split_first() else {
        return;
    };
    let cfg = ExchangedConfig {
        recv_buffer: NonZeroU32::new(1 << 20).expect("non-zero"),
    };
    // A fixed generator: the keys do not matter, the parsing does.
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(role));
    if role % 2 == 0 {
        let server_id = ServerId::random(&mut rng);
        let (mut responder, _welcome) = Responder::new(server_id, UserData::empty(), cfg, &mut rng);
        // The responder takes one packet, the Connect: whatever it was, the handshake is over.
        for (i, packet) in packets(wire).into_iter().enumerate() {
            match responder.handle_packet(&packet) {
                Ok(request) => {
                    assert_eq!(i, 0, "a packet after the first was taken");
                    let table: ConnectionTable<()> = ConnectionTable::new(4);
                    let _ = table.resolve(request.conn_id, request.existing_connection);
                }
                Err(HandshakeError::Finished) => assert!(i > 0),
                Err(_) => assert_eq!(i, 0, "a later packet was looked at"),
            }
        }
    } else {
        let params = InitiatorParams::new(ConnId::new(7), role & 2 != 0, cfg);
        let mut initiator = Initiator::new(params, &mut rng);
        let mut accepted = false;
        for packet in packets(wire) {
            match initiator.handle_packet(&packet) {
                Ok(InitiatorStep::Accepted(_)) => {
                    assert!(!accepted, "accepted twice");
                    assert_eq!(Message::decode(&packet), Ok(Message::Accepted));
                    accepted = true;
                }
                Ok(InitiatorStep::SendConnect { .. }) => assert!(!accepted),
                Err(_) => {}
            }
        }
    }
});
