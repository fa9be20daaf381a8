//! The link handshake's error paths and the server's connection table (spec §5).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use liag_core::handshake::{
    ConnectionTable, HandshakeError, Initiator, InitiatorParams, InitiatorStep, Resolution,
    Responder,
};
use liag_core::proto::PublicKey;
use liag_core::proto::extensions::Extensions;
use liag_core::proto::ids::{ConnId, MaskedConnId, ServerId};
use liag_core::proto::keys::KeyAgreementError;
use liag_core::proto::message::{
    Connect, DecodeError, ExchangedConfig, Message, MessageKind, RefusedReason, UserData, Welcome,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::num::NonZeroU32;

fn cfg() -> ExchangedConfig {
    ExchangedConfig {
        recv_buffer: NonZeroU32::new(1 << 20).unwrap(),
    }
}

fn server_id() -> ServerId {
    ServerId::new(42).unwrap()
}

#[test]
fn initiator_wants_welcome_first() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut init = Initiator::new(InitiatorParams::new(ConnId::new(1), false, cfg()), &mut rng);
    assert_eq!(
        init.handle_packet(&Message::Ping.to_bytes()),
        Err(HandshakeError::Unexpected(MessageKind::Ping))
    );
}

#[test]
fn initiator_reports_refusal_and_garbage() {
    let mut rng = StdRng::seed_from_u64(2);
    let (_, welcome) = Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
    for (answer, expected) in [
        (
            Message::Refused(RefusedReason::NotListening).to_bytes(),
            HandshakeError::Refused(RefusedReason::NotListening),
        ),
        (
            Bytes::from_static(&[4, 9]),
            HandshakeError::Decode(DecodeError::UnknownRefusedReason(9)),
        ),
        (
            Message::Pong.to_bytes(),
            HandshakeError::Unexpected(MessageKind::Pong),
        ),
    ] {
        let mut init = Initiator::new(InitiatorParams::new(ConnId::new(1), false, cfg()), &mut rng);
        assert!(matches!(
            init.handle_packet(&welcome),
            Ok(InitiatorStep::SendConnect { .. })
        ));
        assert_eq!(init.handle_packet(&answer), Err(expected));
        assert_eq!(init.handle_packet(&answer), Err(HandshakeError::Finished));
    }
}

#[test]
fn wrong_version_is_a_decode_error() {
    let mut rng = StdRng::seed_from_u64(3);
    let (_, welcome) = Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
    let mut bad = welcome.to_vec();
    bad[6] = 5;
    let mut init = Initiator::new(InitiatorParams::new(ConnId::new(1), false, cfg()), &mut rng);
    assert_eq!(
        init.handle_packet(&Bytes::from(bad)),
        Err(HandshakeError::Decode(DecodeError::UnsupportedVersion {
            kind: MessageKind::Welcome,
            version: 5
        }))
    );
}

/// A peer offering an all-zero key would make the connection id travel in the clear.
#[test]
fn low_order_keys_are_refused_both_ways() {
    let mut rng = StdRng::seed_from_u64(4);
    let evil_welcome = Message::Welcome(Welcome {
        extensions: Extensions::NONE,
        public_key: PublicKey::from([0; 32]),
        server_id: server_id(),
        user_data: UserData::empty(),
        cfg: cfg(),
    })
    .to_bytes();
    let mut init = Initiator::new(InitiatorParams::new(ConnId::new(1), false, cfg()), &mut rng);
    assert_eq!(
        init.handle_packet(&evil_welcome),
        Err(HandshakeError::KeyAgreement(
            KeyAgreementError::NonContributory
        ))
    );

    let (mut responder, _) = Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
    let evil_connect = Message::Connect(Connect {
        extensions: Extensions::NONE,
        public_key: PublicKey::from([0; 32]),
        server_id: None,
        connection_id: MaskedConnId::new(5),
        existing_connection: false,
        user_data: UserData::empty(),
        cfg: cfg(),
    })
    .to_bytes();
    assert_eq!(
        responder.handle_packet(&evil_connect),
        Err(HandshakeError::KeyAgreement(
            KeyAgreementError::NonContributory
        ))
    );
}

#[test]
fn responder_wants_connect() {
    let mut rng = StdRng::seed_from_u64(5);
    let (mut responder, welcome) = Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
    assert_eq!(
        responder.handle_packet(&welcome),
        Err(HandshakeError::Unexpected(MessageKind::Welcome))
    );
    assert_eq!(
        responder.handle_packet(&welcome),
        Err(HandshakeError::Finished)
    );
}

/// Fresh keys per link: the same connection id is masked differently on every link.
#[test]
fn every_link_masks_differently() {
    let mut rng = StdRng::seed_from_u64(6);
    let id = ConnId::new(0xABCD);
    let mut masked = Vec::new();
    for _ in 0..2 {
        let (mut responder, welcome) =
            Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
        let mut init = Initiator::new(InitiatorParams::new(id, false, cfg()), &mut rng);
        let Ok(InitiatorStep::SendConnect { connect, .. }) = init.handle_packet(&welcome) else {
            panic!("Connect expected");
        };
        let Ok(Message::Connect(c)) = Message::decode(&connect) else {
            panic!()
        };
        masked.push(c.connection_id);
        assert_eq!(responder.handle_packet(&connect).unwrap().conn_id, id);
    }
    assert_ne!(masked[0], masked[1]);
}

/// Spec §5.4, row by row.
#[test]
fn connection_table_resolution() {
    let mut table = ConnectionTable::new(2);
    let (a, b, c) = (ConnId::new(1), ConnId::new(2), ConnId::new(3));
    assert_eq!(table.resolve(a, false), Resolution::New);
    assert_eq!(
        table.resolve(a, true),
        Resolution::Refuse(RefusedReason::Closed)
    );
    table.insert(a, "a");
    assert_eq!(table.resolve(a, true), Resolution::Join("a"));
    assert_eq!(table.resolve(a, false), Resolution::Join("a"));
    table.stop_taking_links(a);
    assert_eq!(
        table.resolve(a, false),
        Resolution::Refuse(RefusedReason::Closed)
    );
    table.insert(b, "b");
    // Full: a third connection is not taken.
    assert_eq!(
        table.resolve(c, false),
        Resolution::Refuse(RefusedReason::NotListening)
    );
    table.remove(a);
    assert_eq!(table.resolve(c, false), Resolution::New);
    table.set_listening(false);
    assert_eq!(
        table.resolve(c, false),
        Resolution::Refuse(RefusedReason::NotListening)
    );
    assert_eq!(table.len(), 1);
}

/// An id reused after its connection was forgotten: the old connection's end leaves the new
/// one's entry alone.
#[test]
fn an_old_connections_end_leaves_a_new_one_under_its_id_alone() {
    let mut table = ConnectionTable::new(2);
    let a = ConnId::new(1);
    table.insert(a, "old");
    // Ended to make room: forgotten at once, its driver still closing.
    assert_eq!(table.remove(a), Some("old"));
    table.insert(a, "new");
    table.stop_taking_links_if(a, |h| *h == "old");
    assert_eq!(table.remove_if(a, |h| *h == "old"), None);
    assert_eq!(table.resolve(a, true), Resolution::Join("new"));
    // Its own end does reach it.
    table.stop_taking_links_if(a, |h| *h == "new");
    assert_eq!(
        table.resolve(a, true),
        Resolution::Refuse(RefusedReason::Closed)
    );
    assert_eq!(table.remove_if(a, |h| *h == "new"), Some("new"));
    assert!(table.is_empty());
}

/// A link's tier and a request for redundancy go in Connect only to a responder whose Welcome
/// says it applies them (a liag server); a protocol 4 peer's Welcome (extensions 0) gets a
/// Connect without them.
#[test]
fn the_link_tier_and_redundancy_go_only_to_a_responder_that_applies_them() {
    use liag_core::proto::extensions::LinkTier;
    let mut rng = StdRng::seed_from_u64(7);
    let backup = || {
        let mut params = InitiatorParams::new(ConnId::new(1), false, cfg());
        params.extensions = Extensions::REDUNDANT.with_link_tier(LinkTier::Backup);
        params
    };
    let connect_to = |welcome: &Bytes, rng: &mut StdRng| {
        let mut init = Initiator::new(backup(), rng);
        match init.handle_packet(welcome) {
            Ok(InitiatorStep::SendConnect { connect, .. }) => connect,
            other => panic!("{other:?}"),
        }
    };

    let (mut responder, liag) = Responder::new(server_id(), UserData::empty(), cfg(), &mut rng);
    let connect = connect_to(&liag, &mut rng);
    let request = responder.handle_packet(&connect).unwrap();
    assert_eq!(request.extensions.link_tier(), LinkTier::Backup);
    assert!(request.extensions.contains(Extensions::REDUNDANT));

    let Ok(Message::Welcome(mut welcome)) = Message::decode(&liag) else {
        panic!("not a Welcome");
    };
    assert!(welcome.extensions.contains(Extensions::TIERS));
    // A responder that applies tiers but not redundancy gets the tier alone.
    welcome.extensions = Extensions::TIERS;
    let connect = connect_to(&Message::Welcome(welcome.clone()).to_bytes(), &mut rng);
    match Message::decode(&connect).unwrap() {
        Message::Connect(c) => assert_eq!(c.extensions, Extensions::from_bits(2)),
        other => panic!("{other:?}"),
    }

    // The same Welcome as a protocol 4 peer sends it.
    welcome.extensions = Extensions::NONE;
    let connect = connect_to(&Message::Welcome(welcome).to_bytes(), &mut rng);
    match Message::decode(&connect).unwrap() {
        Message::Connect(c) => assert_eq!(c.extensions, Extensions::NONE),
        other => panic!("{other:?}"),
    }
}
