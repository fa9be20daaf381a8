//! Property tests: message round trips, `Seq` laws across the wrap, split-invariant framing,
//! and decoders that never panic on arbitrary bytes.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::{Bytes, BytesMut};
use core::cmp::Ordering;
use core::num::NonZeroU32;
use liag_proto::PublicKey;
use liag_proto::extensions::Extensions;
use liag_proto::frame::{FrameDecoder, FrameEncoder};
use liag_proto::ids::{MaskedConnId, ServerId};
use liag_proto::inbound::InboundReader;
use liag_proto::message::{Connect, ExchangedConfig, Message, RefusedReason, UserData, Welcome};
use liag_proto::seq::{Position, SEQ_WINDOW, Seq};
use proptest::prelude::*;

fn seq() -> impl Strategy<Value = Seq> {
    any::<u32>().prop_map(Seq::new)
}

fn user_data() -> impl Strategy<Value = UserData> {
    prop::collection::vec(any::<u8>(), 0..300)
        .prop_map(|v| UserData::new(Bytes::from(v)).expect("under 64 KiB"))
}

fn cfg() -> impl Strategy<Value = ExchangedConfig> {
    (1..=u32::MAX).prop_map(|n| ExchangedConfig {
        recv_buffer: NonZeroU32::new(n).expect("range starts at 1"),
    })
}

fn server_id() -> impl Strategy<Value = ServerId> {
    (1..=u128::MAX).prop_map(|n| ServerId::new(n).expect("range starts at 1"))
}

fn message() -> impl Strategy<Value = Message> {
    let welcome = (
        any::<u32>(),
        any::<[u8; 32]>(),
        server_id(),
        user_data(),
        cfg(),
    )
        .prop_map(|(ext, key, server_id, user_data, cfg)| {
            Message::Welcome(Welcome {
                extensions: Extensions::from_bits(ext),
                public_key: PublicKey::from(key),
                server_id,
                user_data,
                cfg,
            })
        });
    let connect = (
        any::<u32>(),
        any::<[u8; 32]>(),
        prop::option::of(server_id()),
        any::<u128>(),
        any::<bool>(),
        user_data(),
        cfg(),
    )
        .prop_map(|(ext, key, server_id, conn, existing, user_data, cfg)| {
            Message::Connect(Connect {
                extensions: Extensions::from_bits(ext),
                public_key: PublicKey::from(key),
                server_id,
                connection_id: MaskedConnId::new(conn),
                existing_connection: existing,
                user_data,
                cfg,
            })
        });
    let reason = prop_oneof![
        Just(RefusedReason::Closed),
        Just(RefusedReason::NotListening),
        Just(RefusedReason::ConnectionRefused),
        Just(RefusedReason::LinkRefused),
    ];
    prop_oneof![
        welcome,
        connect,
        Just(Message::Accepted),
        reason.prop_map(Message::Refused),
        Just(Message::Ping),
        Just(Message::Pong),
        seq().prop_map(|seq| Message::Data { seq }),
        seq().prop_map(|received| Message::Ack { received }),
        (seq(), any::<u32>()).prop_map(|(seq, consumed)| Message::Consumed { seq, consumed }),
        seq().prop_map(|seq| Message::SendFinish { seq }),
        seq().prop_map(|seq| Message::ReceiveClose { seq }),
        seq().prop_map(|seq| Message::ReceiveFinish { seq }),
        (0..20_000u32).prop_map(|len| Message::TestData { len }),
        any::<bool>().prop_map(|blocked| Message::SetBlock { blocked }),
        Just(Message::Goodbye),
        Just(Message::Terminate),
    ]
}

/// Splits `wire` at the given cut points (taken modulo its length).
fn split(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| wire[w[0]..w[1]].to_vec())
        .collect()
}

proptest! {
    #[test]
    fn message_round_trip(msg in message()) {
        let wire = msg.to_bytes();
        prop_assert_eq!(wire.len(), msg.encoded_len());
        prop_assert_eq!(Message::decode(&wire), Ok(msg));
    }

    #[test]
    fn trailing_bytes_are_ignored(msg in message(), extra in prop::collection::vec(any::<u8>(), 1..16)) {
        // TestData's length is the rest of the packet, so it is the one exception.
        prop_assume!(!matches!(msg, Message::TestData { .. }));
        let mut wire = BytesMut::from(&msg.to_bytes()[..]);
        wire.extend_from_slice(&extra);
        prop_assert_eq!(Message::decode(&wire.freeze()), Ok(msg));
    }

    #[test]
    fn truncated_messages_are_errors(msg in message(), cut in any::<prop::sample::Index>()) {
        let wire = msg.to_bytes();
        let short = wire.slice(..cut.index(wire.len()));
        // TestData of any length is valid; every other message loses a field.
        if !matches!(msg, Message::TestData { .. }) || short.is_empty() {
            prop_assert!(Message::decode(&short).is_err());
        }
    }

    #[test]
    fn seq_add_and_distance(a in seq(), n in any::<u32>()) {
        prop_assert_eq!(a.add(n).distance_from(a), n);
        prop_assert_eq!(a.add(n).diff(a), n as i32);
        prop_assert_eq!(a.add(n).add(n.wrapping_neg()), a);
    }

    #[test]
    fn seq_serial_order(a in seq(), n in 1..(1u32 << 31)) {
        let b = a.add(n);
        prop_assert_eq!(b.serial_cmp(a), Ordering::Greater);
        prop_assert_eq!(a.serial_cmp(b), Ordering::Less);
        prop_assert!(a.is_before(b));
        prop_assert!(!b.is_before(a));
        prop_assert_eq!(a.next().distance_from(a), 1);
    }

    /// Within 2³⁰ of each other, liag's serial order and the reference order agree (§7.2).
    #[test]
    fn seq_orders_agree_within_window(a in seq(), n in 0..(1u32 << 30)) {
        let b = a.add(n);
        prop_assert_eq!(a.serial_cmp(b), a.reference_cmp(b));
        prop_assert_eq!(b.serial_cmp(a), b.reference_cmp(a));
    }

    #[test]
    fn seq_position(expected in seq(), n in any::<u32>()) {
        let s = expected.add(n);
        let pos = s.position(expected, SEQ_WINDOW);
        match pos {
            Position::Ahead(d) => prop_assert!(d == n && n <= SEQ_WINDOW),
            Position::Behind(d) => prop_assert!(d == n.wrapping_neg() && (n as i32) < 0),
            Position::BeyondWindow(d) => prop_assert!(d == n && n > SEQ_WINDOW && (n as i32) >= 0),
        }
        prop_assert_eq!(s.fits_send_window(expected, SEQ_WINDOW), n <= SEQ_WINDOW);
    }

    #[test]
    fn framing_is_split_invariant(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut enc = FrameEncoder::new();
        let mut dec = FrameDecoder::new();
        let mut wire = BytesMut::new();
        for p in &payloads {
            enc.encode(p, &mut wire).expect("small payload");
        }
        let mut buffered = BytesMut::new();
        let mut out: Vec<Bytes> = Vec::new();
        for piece in split(&wire, &cuts) {
            buffered.extend_from_slice(&piece);
            while let Some(p) = dec.decode(&mut buffered).expect("valid frames") {
                out.push(p);
            }
        }
        prop_assert_eq!(dec.decode_eof(&mut buffered), Ok(None));
        let out: Vec<Vec<u8>> = out.iter().map(|b| b.to_vec()).collect();
        prop_assert_eq!(out, payloads);
    }

    #[test]
    fn corrupting_a_byte_fails_the_frame(
        payload in prop::collection::vec(any::<u8>(), 1..500),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut wire = BytesMut::new();
        FrameEncoder::new().encode(&payload, &mut wire).expect("small payload");
        let i = at.index(wire.len());
        wire[i] ^= flip;
        // Whatever byte changed, the frame is never delivered with the wrong content.
        match FrameDecoder::new().decode_eof(&mut wire) {
            Ok(Some(p)) => prop_assert_eq!(&p[..], &payload[..]),
            Ok(None) => prop_assert!(false, "a whole frame was buffered"),
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_packets_never_panic(packet in prop::collection::vec(any::<u8>(), 0..200)) {
        let packet = Bytes::from(packet);
        let _ = Message::decode(&packet);
        let mut reader = InboundReader::new();
        let _ = reader.read(packet.clone());
        let _ = reader.read(packet);
    }

    #[test]
    fn arbitrary_streams_never_panic(
        wire in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut dec = FrameDecoder::new();
        let mut buffered = BytesMut::new();
        for piece in split(&wire, &cuts) {
            buffered.extend_from_slice(&piece);
            while let Ok(Some(_)) = dec.decode(&mut buffered) {}
        }
        let _ = dec.decode_eof(&mut buffered);
        prop_assert!(dec.bytes_needed(buffered.len()) <= 10 + dec.max_payload_len() as usize);
    }
}
