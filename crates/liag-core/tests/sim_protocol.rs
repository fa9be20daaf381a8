//! Protocol behaviour in the simulator: half-close, stop, terminate, Goodbye, SetBlock,
//! timeouts, a peer that never reads, and hostile packets that must fail one link only.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use liag_core::proto::message::{Message, RefusedReason};
use liag_core::proto::seq::Seq;
use liag_core::sim::{Fault, LinkSpec, Side, Sim};
use liag_core::{Config, ConnectionError, LinkError, LinkId, Time, Violation};
use std::num::NonZeroU32;
use std::time::Duration;

fn secs(s: f64) -> Time {
    Time::from(Duration::from_secs_f64(s))
}

fn three_links(seed: u64, config: Config) -> Sim {
    let mut sim = Sim::new(seed, config);
    for spec in [
        LinkSpec::mbit(40.0, 10),
        LinkSpec::mbit(20.0, 20),
        LinkSpec::mbit(10.0, 30),
    ] {
        sim.add_link(spec);
    }
    sim
}

fn both_closed_ok(sim: &Sim) -> bool {
    matches!(sim.closed(Side::A), Some(Ok(()))) && matches!(sim.closed(Side::B), Some(Ok(())))
}

#[test]
fn both_directions_finish_and_close_gracefully() {
    let mut sim = three_links(10, Config::default());
    sim.send(Side::A, 3_000_000);
    sim.send(Side::B, 1_000_000);
    assert!(
        sim.run_until(secs(60.0), both_closed_ok),
        "closed: {:?} {:?}",
        sim.closed(Side::A),
        sim.closed(Side::B)
    );
    assert!(sim.verified(Side::A) && sim.verified(Side::B));
}

#[test]
fn one_way_transfer_closes_gracefully() {
    let mut sim = three_links(11, Config::default());
    sim.send(Side::A, 2_000_000);
    sim.send(Side::B, 0);
    assert!(sim.run_until(secs(60.0), both_closed_ok));
    assert!(sim.verified(Side::B));
    assert_eq!(sim.received(Side::A).bytes, 0);
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    let mut sim = three_links(12, Config::default());
    sim.send(Side::A, 100_000);
    sim.run_until(secs(5.0), |s| s.received(Side::B).finished);
    assert!(sim.received(Side::B).finished);
    // B still sends long after A finished.
    sim.write_at(Duration::from_secs(6), Side::B, 500_000);
    sim.run_until(secs(10.0), |_| false);
    assert_eq!(sim.received(Side::A).bytes, 500_000);
    assert!(sim.closed(Side::A).is_none());
}

#[test]
fn receiver_stopping_ends_the_senders_direction() {
    let mut sim = three_links(13, Config::default());
    sim.send(Side::A, 100_000_000);
    sim.run_until(secs(2.0), |_| false);
    sim.set_reading(Side::B, false);
    sim.connection_mut(Side::B).stop_receiving();
    sim.send(Side::B, 0);
    assert!(
        sim.run_until(secs(30.0), both_closed_ok),
        "closed: {:?} {:?}",
        sim.closed(Side::A),
        sim.closed(Side::B)
    );
    assert!(sim.connection(Side::A).peer_stopped_receiving() || sim.closed(Side::A).is_some());
    assert!(sim.bytes_written(Side::A) < 100_000_000);
}

#[test]
fn terminate_reaches_the_peer() {
    let mut sim = three_links(14, Config::default());
    sim.send(Side::A, 100_000_000);
    sim.run_until(secs(1.0), |_| false);
    sim.connection_mut(Side::A).terminate();
    assert!(sim.run_until(secs(5.0), |s| s.closed(Side::B).is_some()));
    assert_eq!(
        sim.closed(Side::A),
        Some(&Err(ConnectionError::TerminatedLocally))
    );
    assert_eq!(
        sim.closed(Side::B),
        Some(&Err(ConnectionError::TerminatedByPeer))
    );
}

#[test]
fn no_link_timeout_ends_both_sides() {
    let mut config = Config::default();
    config.no_link_timeout = Duration::from_secs(5);
    let mut sim = three_links(15, config);
    sim.send(Side::A, 100_000_000);
    for link in 0..3 {
        sim.fault_at(Duration::from_secs(1), link, Fault::Reset);
    }
    assert!(sim.run_until(secs(30.0), |s| s.closed(Side::A).is_some()
        && s.closed(Side::B).is_some()));
    assert_eq!(
        sim.closed(Side::A),
        Some(&Err(ConnectionError::NoLinksTimeout))
    );
    assert_eq!(
        sim.closed(Side::B),
        Some(&Err(ConnectionError::NoLinksTimeout))
    );
    let ended = sim.now().since_epoch().as_secs_f64();
    assert!((6.0..6.1).contains(&ended), "ended at {ended}");
}

#[test]
fn a_connection_that_never_received_data_loses_its_links_sooner() {
    let mut config = Config::default();
    config.no_link_timeout_before_data = Some(Duration::from_secs(5));
    let mut sim = three_links(16, config);
    // A sends and B receives; B sends nothing, so A never receives data.
    sim.send(Side::A, 1_000_000);
    for link in 0..3 {
        sim.fault_at(Duration::from_secs(2), link, Fault::Reset);
    }
    assert!(sim.run_until(secs(30.0), |s| s.closed(Side::A).is_some()));
    assert_eq!(
        sim.closed(Side::A),
        Some(&Err(ConnectionError::NoLinksTimeout))
    );
    let ended = sim.now().since_epoch().as_secs_f64();
    assert!((7.0..7.1).contains(&ended), "ended at {ended}");
    // B got data: the full no-link timeout (90 s) applies to it.
    assert!(sim.connection(Side::B).received_data());
    assert!(sim.closed(Side::B).is_none());
}

#[test]
fn goodbye_removes_a_link_without_loss() {
    let mut sim = three_links(16, Config::default());
    sim.send(Side::A, 40_000_000);
    sim.remove_at(Duration::from_secs(2), 0);
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    let removed: Vec<_> = sim
        .removed_links()
        .iter()
        .map(|(_, side, _, e)| (*side, e.clone()))
        .collect();
    assert!(
        removed.contains(&(Side::A, LinkError::Goodbye)),
        "{removed:?}"
    );
    assert!(
        removed.contains(&(Side::B, LinkError::Goodbye)),
        "{removed:?}"
    );
    assert_eq!(sim.connection(Side::A).link_stats().len(), 2);
}

#[test]
fn blocked_link_carries_no_new_data_either_way() {
    let mut sim = three_links(17, Config::default());
    sim.send(Side::A, 200_000_000);
    sim.send(Side::B, 200_000_000);
    sim.block_at(Duration::from_secs(1), 0, true);
    sim.run_until(secs(2.0), |_| false);
    let before: Vec<u64> = [Side::A, Side::B]
        .map(|s| sim.connection(s).link_stats()[0].data_bytes)
        .to_vec();
    sim.run_until(secs(5.0), |_| false);
    let after: Vec<u64> = [Side::A, Side::B]
        .map(|s| sim.connection(s).link_stats()[0].data_bytes)
        .to_vec();
    assert_eq!(before, after, "no data on the blocked link");
    sim.block_at(Duration::from_secs(5), 0, false);
    sim.run_until(secs(8.0), |_| false);
    let unblocked = sim.connection(Side::A).link_stats()[0].data_bytes;
    assert!(unblocked > after[0] + 1_000_000);
}

#[test]
fn corruption_and_flapping_lose_nothing() {
    let mut sim = three_links(18, Config::default());
    sim.send(Side::A, 30_000_000);
    sim.send(Side::B, 10_000_000);
    sim.fault_at(Duration::from_millis(700), 1, Fault::Corrupt);
    for i in 0..10 {
        sim.fault_at(Duration::from_millis(500 + 400 * i), 2, Fault::BlackHole);
        sim.fault_at(Duration::from_millis(700 + 400 * i), 2, Fault::Heal);
    }
    assert!(sim.run_until(secs(120.0), both_closed_ok));
    assert!(sim.verified(Side::A) && sim.verified(Side::B));
}

#[test]
fn memory_stays_within_buffers_when_the_peer_never_reads() {
    let mut config = Config::default();
    config.recv_buffer = NonZeroU32::new(4 << 20).unwrap();
    config.send_buffer = 8 << 20;
    let mut sim = three_links(19, config);
    sim.set_reading(Side::B, false);
    sim.send(Side::A, 100_000_000);
    let mut peak = (0, 0, 0);
    for step in 1..=40 {
        sim.run_until(secs(step as f64 * 0.5), |_| false);
        let received = sim.connection(Side::B).stats();
        let (buffered, held) = (received.receive_buffered, received.receive_held);
        let sent = sim.connection(Side::A).stats();
        let sending = sent.queued + sent.unacked;
        peak = (peak.0.max(buffered), peak.1.max(held), peak.2.max(sending));
    }
    println!(
        "peer never reads: receiver buffered at most {} bytes in {} messages, sender {} bytes",
        peak.0, peak.1, peak.2
    );
    assert!(peak.0 <= 4 << 20);
    assert!(peak.2 <= 8 << 20);
    assert!(peak.0 >= 3 << 20, "the window was used");
    // Once the application reads, everything arrives.
    sim.set_reading(Side::B, true);
    assert!(sim.run_until(secs(120.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
}

/// Adds a link and injects packets on B's end of it, as if A had sent them. (A fresh link,
/// because a packet injected between a real Data message and its payload would become that
/// payload, which no receiver can tell from real data.)
fn inject(sim: &mut Sim, packets: &[Bytes]) -> LinkId {
    sim.add_link(LinkSpec::mbit(10.0, 10));
    let now = sim.now();
    let conn = sim.connection_mut(Side::B);
    let link = conn.link_stats().last().unwrap().id;
    for p in packets {
        conn.handle_packet(now, link, p.clone());
    }
    link
}

fn removed_for(sim: &Sim, link: LinkId) -> Option<LinkError> {
    sim.removed_links()
        .iter()
        .find(|(_, side, id, _)| *side == Side::B && *id == link)
        .map(|(_, _, _, e)| e.clone())
}

/// Each hostile input fails the link it came on; the transfer completes over the others.
#[test]
fn hostile_packets_fail_only_their_link() {
    let data = |seq: u32| Message::Data { seq: Seq::new(seq) }.to_bytes();
    type Expect = fn(&LinkError) -> bool;
    let cases: Vec<(Vec<Bytes>, Expect)> = vec![
        // The Data that aborts aggligator 0.9.11: 2^31 - 1 ahead.
        (vec![data(0x7FFF_FFFF), Bytes::from_static(b"x")], |e| {
            matches!(e, LinkError::Protocol(Violation::BeyondWindow { .. }))
        }),
        (vec![Message::Accepted.to_bytes()], |e| {
            matches!(
                e,
                LinkError::Protocol(Violation::HandshakeAfterEstablished(_))
            )
        }),
        (
            vec![Message::Refused(RefusedReason::Closed).to_bytes()],
            |e| {
                matches!(
                    e,
                    LinkError::Protocol(Violation::HandshakeAfterEstablished(_))
                )
            },
        ),
        (
            vec![Message::Goodbye.to_bytes(), Message::Goodbye.to_bytes()],
            |e| matches!(e, LinkError::Protocol(Violation::RepeatedGoodbye)),
        ),
        (
            vec![
                Message::Consumed {
                    seq: Seq::new(60_000),
                    consumed: u32::MAX,
                }
                .to_bytes(),
            ],
            |e| matches!(e, LinkError::Protocol(Violation::ConsumedUnderflow { .. })),
        ),
        (vec![Bytes::from_static(&[0xEE, 1, 2])], |e| {
            matches!(e, LinkError::Decode(_))
        }),
        (vec![Bytes::new()], |e| matches!(e, LinkError::Decode(_))),
    ];
    for (i, (packets, expected)) in cases.into_iter().enumerate() {
        let mut sim = three_links(20 + i as u64, Config::default());
        sim.send(Side::A, 5_000_000);
        sim.send(Side::B, 5_000_000);
        sim.run_until(secs(0.5), |_| false);
        let link = inject(&mut sim, &packets);
        assert!(
            sim.run_until(secs(60.0), both_closed_ok),
            "case {i}: {:?} {:?}",
            sim.closed(Side::A),
            sim.closed(Side::B)
        );
        assert!(sim.verified(Side::A) && sim.verified(Side::B), "case {i}");
        let error = removed_for(&sim, link);
        assert!(
            error.as_ref().is_some_and(expected),
            "case {i}: link removed for {error:?}"
        );
    }
}

/// Floods of Pings and duplicate messages cost bounded memory and break nothing.
#[test]
fn floods_are_bounded() {
    let mut config = Config::default();
    config.max_queued_acks = 1000;
    let mut sim = three_links(30, config);
    sim.send(Side::A, 2_000_000);
    sim.run_until(secs(0.5), |_| false);
    let mut flood: Vec<Bytes> = (0..5000).map(|_| Message::Ping.to_bytes()).collect();
    // A control message already received, again and again: duplicates to be acked.
    flood.extend((0..5000).map(|_| Message::ReceiveClose { seq: Seq::new(0) }.to_bytes()));
    flood.extend((0..5000).map(|_| Message::TestData { len: 100 }.to_bytes()));
    let link = inject(&mut sim, &flood);
    sim.send(Side::B, 0);
    assert!(sim.run_until(secs(60.0), both_closed_ok));
    assert!(sim.verified(Side::B));
    // The flood broke no rule: the link stayed until the connection closed.
    let removed = removed_for(&sim, link);
    assert!(
        !matches!(removed, Some(LinkError::Protocol(_) | LinkError::Decode(_))),
        "{removed:?}"
    );
    // B answered at most a handful of Pongs and at most 1000 Acks on that link.
    let stats = sim.connection(Side::B).link_stats();
    let sent = stats
        .iter()
        .find(|l| l.id == link)
        .map_or(0, |l| l.sent_bytes);
    assert!(sent < 200_000, "sent {sent} bytes in answer to the flood");
}

#[test]
fn server_id_mismatch_ends_the_connection() {
    use liag_core::proto::ids::ServerId;
    let mut conn = liag_core::Connection::new(Config::default(), Time::ZERO);
    let first = ServerId::new(1).unwrap();
    assert_eq!(conn.handle_server_id(first), Ok(()));
    assert_eq!(conn.handle_server_id(first), Ok(()));
    assert_eq!(
        conn.handle_server_id(ServerId::new(2).unwrap()),
        Err(ConnectionError::ServerIdMismatch)
    );
    assert!(conn.is_closed());
    assert_eq!(
        conn.poll_event(),
        Some(liag_core::Event::Closed(Err(
            ConnectionError::ServerIdMismatch
        )))
    );
}

/// A per-link cap on bytes in flight holds that link to less than its share.
#[test]
fn per_link_config_caps_a_link() {
    let mut sim = Sim::new(31, Config::default());
    sim.add_link(LinkSpec::mbit(40.0, 20));
    sim.add_link(LinkSpec::mbit(40.0, 20));
    let first = sim.connection(Side::A).link_stats()[0].id;
    let mut capped = liag_core::LinkConfig::default();
    capped.max_inflight = Some(32 << 10);
    sim.connection_mut(Side::A).set_link_config(first, capped);
    sim.send(Side::A, 40_000_000);
    assert!(sim.run_until(secs(60.0), |s| s.received(Side::B).finished));
    assert!(sim.verified(Side::B));
    let stats = sim.connection(Side::A).link_stats();
    // 32 KiB per 40 ms round trip is at most ~0.8 MB/s of the link's 5 MB/s.
    assert!(
        stats[0].data_bytes * 4 < stats[1].data_bytes,
        "{} vs {}",
        stats[0].data_bytes,
        stats[1].data_bytes
    );
}

#[test]
fn each_link_counts_the_acknowledgements_that_come_back_on_it() {
    let mut sim = three_links(7, Config::default());
    sim.send(Side::A, 200_000_000);
    sim.fault_at(Duration::from_secs(2), 1, Fault::BlackHole);
    let acks = |sim: &Sim, i: usize| sim.connection(Side::A).link_stats()[i].acks_received;
    sim.run_until(secs(2.0), |_| false);
    for i in 0..3 {
        let link = &sim.connection(Side::A).link_stats()[i];
        // Each payload carried and not still in flight came back acknowledged on its link.
        let settled = link.data_bytes - link.inflight as u64;
        assert!(settled > 0, "link {i} carried nothing");
        assert!(
            link.acks_received * (32 << 10) >= settled,
            "link {i}: {} acks for {settled} bytes",
            link.acks_received
        );
    }
    // A path that carries nothing brings no acknowledgements; the others go on counting.
    let at_fault = [acks(&sim, 0), acks(&sim, 1), acks(&sim, 2)];
    sim.run_until(secs(4.0), |_| false);
    assert_eq!(acks(&sim, 1), at_fault[1]);
    assert!(acks(&sim, 0) > at_fault[0] && acks(&sim, 2) > at_fault[2]);
}

/// Small messages read at once are not reported one by one: a Consumed for each would cost
/// both ends a reliable message and its acknowledgement per message. They are reported once 4
/// KiB has been read, and the last of them once no more data comes, which the graceful end
/// waits for.
#[test]
fn small_messages_read_at_once_are_reported_in_bulk_and_at_the_end() {
    let mut sim = three_links(41, Config::default());
    for i in 0..50 {
        sim.write_at(Duration::from_millis(500 + 10 * i), Side::A, 64);
    }
    sim.run_until(secs(2.0), |_| false);
    assert_eq!(sim.received(Side::B).bytes, 3200);
    let (a, b) = (
        sim.connection(Side::A).stats(),
        sim.connection(Side::B).stats(),
    );
    assert_eq!((a.unconsumed, b.unreported), (3200, 3200), "no report yet");
    for i in 0..20 {
        sim.write_at(Duration::from_millis(2000 + 10 * i), Side::A, 64);
    }
    sim.run_until(secs(3.0), |_| false);
    let (a, b) = (
        sim.connection(Side::A).stats(),
        sim.connection(Side::B).stats(),
    );
    assert_eq!(sim.received(Side::B).bytes, 4480);
    assert_eq!(
        (a.unconsumed, b.unreported),
        (4480 - 4096, 4480 - 4096),
        "one report once 4 KiB was read"
    );
    sim.send(Side::A, 0);
    sim.send(Side::B, 0);
    assert!(sim.run_until(secs(30.0), both_closed_ok));
    assert_eq!(sim.connection(Side::A).stats().unconsumed, 0);
    assert!(sim.verified(Side::B));
}
