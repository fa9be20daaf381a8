//! The link test: a link joining a connection whose links already carry data, and a link
//! that stalled, carry no data until filler and a Ping have shown what they deliver now.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use bytes::Bytes;
use liag_core::proto::message::MessageKind;
use liag_core::{Config, Connection, Event, LinkId, LinkState, Time};
use std::time::Duration;

const RTT: Duration = Duration::from_millis(10);

/// Two connections joined by `n` links: (a's ids, b's ids), pairwise. The tests write one
/// large backlog and nothing after, standing for a writer that keeps a long queue full, so
/// the queue is bounded by the send buffer alone (`Config::send_queue_time`).
fn joined(now: Time, n: usize) -> (Connection, Connection, Vec<(LinkId, LinkId)>) {
    let mut config = Config::default();
    config.send_queue_time = Duration::MAX;
    let mut a = Connection::new(config.clone(), now);
    let mut b = Connection::new(config, now);
    let links = (0..n)
        .map(|i| common::attach_pair(now, &mut a, &mut b, &format!("link {i}"), RTT))
        .collect();
    (a, b, links)
}

/// Every packet `from` has for `link` now.
fn transmits(now: Time, from: &mut Connection, link: LinkId) -> Vec<Bytes> {
    std::iter::from_fn(|| from.poll_transmit(now, link)).collect()
}

fn deliver(now: Time, to: &mut Connection, link: LinkId, packets: Vec<Bytes>) {
    for p in packets {
        to.handle_packet(now, link, p);
    }
}

/// Moves packets both ways on one link pair until it is quiet.
fn exchange(now: Time, a: &mut Connection, b: &mut Connection, (la, lb): (LinkId, LinkId)) {
    for _ in 0..1000 {
        let to_b = transmits(now, a, la);
        let to_a = transmits(now, b, lb);
        if to_b.is_empty() && to_a.is_empty() {
            return;
        }
        deliver(now, b, lb, to_b);
        deliver(now, a, la, to_a);
    }
}

/// The kinds of the messages among `packets`; the payload packet after each Data is skipped.
fn kinds(packets: &[Bytes]) -> Vec<MessageKind> {
    let mut kinds = Vec::new();
    let mut payload_next = false;
    for p in packets {
        if std::mem::take(&mut payload_next) {
            continue;
        }
        let kind = MessageKind::from_u8(p[0]).unwrap();
        payload_next = kind == MessageKind::Data;
        kinds.push(kind);
    }
    kinds
}

fn state(c: &Connection, link: LinkId) -> LinkState {
    c.link_stats()
        .into_iter()
        .find(|l| l.id == link)
        .unwrap()
        .state
}

/// Two connections whose first link is up and whose second, joining beside it, is about to
/// be tested: (a, b, the second link's ids).
fn second_link_to_test(now: Time) -> (Connection, Connection, (LinkId, LinkId)) {
    let (mut a, mut b, links) = joined(now, 2);
    exchange(now, &mut a, &mut b, links[0]);
    (a, b, links[1])
}

/// Two connections whose first link is up, with a round-trip sample of [`RTT`], and whose
/// second, joining beside it with a handshake that took `rtt`, is about to be tested.
fn second_link_with_rtt(now: Time, rtt: Duration) -> (Connection, Connection, (LinkId, LinkId)) {
    let (mut a, mut b, links) = joined(now, 1);
    let (fa, fb) = links[0];
    // The first link's Ping is answered a round trip later: it has one.
    let ping = transmits(now, &mut a, fa);
    deliver(now, &mut b, fb, ping);
    deliver(now + RTT, &mut a, fa, transmits(now, &mut b, fb));
    exchange(now + RTT, &mut a, &mut b, links[0]);
    let pair = common::attach_pair(now, &mut a, &mut b, "slow", rtt);
    (a, b, pair)
}

/// Delivers `packets` to `to` on `link` and returns the Pongs it answers with (it may be
/// testing the link itself).
fn pongs_for(now: Time, to: &mut Connection, link: LinkId, packets: Vec<Bytes>) -> Vec<Bytes> {
    deliver(now, to, link, packets);
    transmits(now, to, link)
        .into_iter()
        .filter(|p| p[..] == [MessageKind::Pong as u8])
        .collect()
}

/// Writes `len` bytes, takes what `link` sends (held on the way, never delivered) and lets its
/// ack timeout pass: the link stalls. Returns the held packets and the time after.
fn stall(now: Time, a: &mut Connection, link: LinkId, len: usize) -> (Vec<Bytes>, Time) {
    a.write(Bytes::from(vec![1u8; len])).unwrap();
    let held = transmits(now, a, link);
    assert!(kinds(&held).contains(&MessageKind::Data));
    let t = now + Duration::from_secs(1);
    a.handle_timeout(t);
    assert_eq!(state(a, link), LinkState::Stalled);
    (held, t)
}

#[test]
fn a_link_joining_busy_links_is_tested_before_it_carries_data() {
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 2);
    let (first, second) = (links[0], links[1]);
    assert_eq!(state(&a, first.0), LinkState::Active);
    assert_eq!(state(&a, second.0), LinkState::Testing);
    let published: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(published.contains(&Event::LinkState {
        link: second.0,
        state: LinkState::Testing
    }));

    a.write(Bytes::from(vec![7u8; 1 << 20])).unwrap();
    let sent = transmits(now, &mut a, second.0);
    let sent_kinds = kinds(&sent);
    // 16 KiB of filler, then the Ping, and nothing reliable.
    assert_eq!(sent_kinds.last(), Some(&MessageKind::Ping));
    let filler: usize = sent
        .iter()
        .filter(|p| p[0] == MessageKind::TestData as u8)
        .map(|p| p.len() - 1)
        .sum();
    assert_eq!(filler, 16 << 10);
    assert!(!sent_kinds.contains(&MessageKind::Data), "{sent_kinds:?}");

    // The peer answers; the Pong ends the test and the link carries data.
    let later = now + Duration::from_millis(30);
    deliver(later, &mut b, second.1, sent);
    deliver(later, &mut a, second.0, transmits(later, &mut b, second.1));
    assert_eq!(state(&a, second.0), LinkState::Active);
    let published: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(published.contains(&Event::LinkState {
        link: second.0,
        state: LinkState::Active
    }));
    let rate = a.link_stats()[1].rate;
    assert!(rate > 0.0 && rate.is_finite(), "rate {rate}");
}

#[test]
fn the_first_link_carries_data_at_once() {
    let now = Time::ZERO;
    let (mut a, _b, links) = joined(now, 1);
    a.write(Bytes::from_static(b"hello")).unwrap();
    assert!(kinds(&transmits(now, &mut a, links[0].0)).contains(&MessageKind::Data));
}

#[test]
fn late_acknowledgements_do_not_bring_a_stalled_link_back() {
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 2);
    for &pair in &links {
        exchange(now, &mut a, &mut b, pair);
    }
    let (la, lb) = links[0];
    assert_eq!(state(&a, links[1].0), LinkState::Active);

    // Data goes out on the first link and is held on the way: the link stalls.
    let (held, t) = stall(now, &mut a, la, 100_000);

    // The held data arrives at last and is acknowledged: still stalled.
    deliver(t, &mut b, lb, held);
    let acks = transmits(t, &mut b, lb);
    assert!(kinds(&acks).contains(&MessageKind::Ack));
    deliver(t, &mut a, la, acks);
    assert_eq!(state(&a, la), LinkState::Stalled);

    // The link test goes out, a Ping, filler, a Ping; its last Pong brings the link back.
    let test = transmits(t, &mut a, la);
    assert_eq!(kinds(&test).last(), Some(&MessageKind::Ping));
    assert!(kinds(&test).contains(&MessageKind::TestData));
    let t2 = t + Duration::from_millis(50);
    deliver(t2, &mut b, lb, test);
    deliver(t2, &mut a, la, transmits(t2, &mut b, lb));
    assert_eq!(state(&a, la), LinkState::Active);
}

#[test]
fn a_lone_link_is_tested_with_its_ping_alone() {
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 1);
    exchange(now, &mut a, &mut b, links[0]);
    let (la, lb) = links[0];
    let (held, t) = stall(now, &mut a, la, 1000);
    // No other link could carry data, so no filler delays the link's return.
    let test = transmits(t, &mut a, la);
    assert_eq!(kinds(&test), vec![MessageKind::Ping]);
    deliver(t, &mut b, lb, held);
    deliver(t, &mut b, lb, test);
    deliver(t, &mut a, la, transmits(t, &mut b, lb));
    assert_eq!(state(&a, la), LinkState::Active);
}

#[test]
fn a_test_whose_pongs_never_come_shows_the_link_stalled() {
    let now = Time::ZERO;
    let (mut a, _b, (la, _)) = second_link_to_test(now);
    // The test goes out and vanishes: the path went silent after the handshake.
    let test = transmits(now, &mut a, la);
    assert_eq!(kinds(&test).first(), Some(&MessageKind::Ping));
    assert_eq!(state(&a, la), LinkState::Testing);
    // Within a second or so the link shows as stalled, so a keeper probes its path instead of
    // waiting for the ping timeout.
    let t = a.poll_timeout().unwrap();
    assert!(t <= now + Duration::from_millis(1500), "{t:?}");
    a.handle_timeout(t);
    assert_eq!(state(&a, la), LinkState::Stalled);
}

#[test]
fn a_clean_end_still_sends_the_acks_it_owes() {
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 1);
    let (la, lb) = links[0];
    exchange(now, &mut a, &mut b, links[0]);
    b.write(Bytes::from_static(b"last words")).unwrap();
    b.finish();
    a.finish();
    // Packet by packet, until b ends: it ends on the peer's final Consumed, which it must
    // still acknowledge, or the peer waits for its timeouts.
    let mut owed_after_end = Vec::new();
    for _ in 0..100 {
        for p in transmits(now, &mut b, lb) {
            a.handle_packet(now, la, p);
        }
        while a.read().is_some() {}
        for p in transmits(now, &mut a, la) {
            b.handle_packet(now, lb, p);
            if b.outcome().is_some() {
                owed_after_end = kinds(&transmits(now, &mut b, lb));
                break;
            }
        }
        if b.outcome().is_some() {
            break;
        }
    }
    assert_eq!(b.outcome(), Some(&Ok(())));
    assert!(
        owed_after_end.contains(&MessageKind::Ack),
        "{owed_after_end:?}"
    );
}

#[test]
fn a_test_slowed_by_the_peers_own_filler_is_not_overdue() {
    let now = Time::ZERO;
    let (mut a, _b, (la, _)) = second_link_to_test(now);
    let test = transmits(now, &mut a, la);
    assert!(!test.is_empty());
    // The Pongs are late, but the peer's own test filler keeps arriving: the path works.
    let filler = liag_core::proto::message::Message::TestData { len: 8192 }.to_bytes();
    let mut t = now;
    for _ in 0..30 {
        t += Duration::from_millis(100);
        a.handle_packet(t, la, filler.clone());
        if a.poll_timeout().is_some_and(|due| due <= t) {
            a.handle_timeout(t);
        }
    }
    assert_eq!(state(&a, la), LinkState::Testing);
}

#[test]
fn a_peer_answering_both_test_pings_with_one_pong_still_ends_the_test() {
    // aggligator owes at most one Pong per link: Pings that reach it before its Pong leaves
    // are answered once.
    let now = Time::ZERO;
    let (mut a, _b, (la, _)) = second_link_to_test(now);
    let test = transmits(now, &mut a, la);
    let pings = kinds(&test)
        .iter()
        .filter(|&&k| k == MessageKind::Ping)
        .count();
    assert_eq!(pings, 2, "{:?}", kinds(&test));
    let pong = liag_core::proto::message::Message::Pong.to_bytes();
    let t = now + Duration::from_millis(12);
    a.handle_packet(t, la, pong.clone());
    assert_eq!(state(&a, la), LinkState::Testing);

    // The lead's round trip (12 ms) and 10 ms after its Pong, a fresh Ping asks again, and
    // its answer ends the test; the link never shows as Stalled.
    let due = a.poll_timeout().unwrap();
    assert_eq!(due, t + Duration::from_millis(12 + 10));
    a.handle_timeout(due);
    assert_eq!(state(&a, la), LinkState::Testing);
    assert_eq!(kinds(&transmits(due, &mut a, la)), vec![MessageKind::Ping]);
    let t = due + RTT;
    a.handle_packet(t, la, pong);
    assert_eq!(state(&a, la), LinkState::Active);
    let rate = a.link_stats()[1].rate;
    assert!(rate > 0.0 && rate.is_finite(), "rate {rate}");
}

#[test]
fn a_crawling_link_fresh_from_its_test_carries_one_payload_at_a_time() {
    // The second link's handshake took 500 ms through a queue its path had then, and its test
    // shows 41 kB/s (16 KiB between Pongs 400 ms apart) beside a first link of megabytes per
    // second. Were that round trip taken for the path's, 20 kB would go out at once: half a
    // second the stream would wait.
    let now = Time::ZERO;
    let handshake = Duration::from_millis(500);
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, handshake);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let gap = Duration::from_millis(400);
    let closing_at = tested(now, &mut a, &mut b, (la, lb), handshake, gap);

    let first = transmits(closing_at, &mut a, la);
    let data = |packets: &[Bytes]| {
        kinds(packets)
            .iter()
            .filter(|&&k| k == MessageKind::Data)
            .count()
    };
    assert_eq!(data(&first), 1, "{:?}", kinds(&first));
    // Its acknowledgement, 100 ms later, lets the next go; until an interval of them has
    // measured the link, one at a time.
    let acked_at = closing_at + Duration::from_millis(100);
    deliver(acked_at, &mut b, lb, first);
    deliver(acked_at, &mut a, la, transmits(acked_at, &mut b, lb));
    let next = transmits(acked_at, &mut a, la);
    assert_eq!(data(&next), 1, "{:?}", kinds(&next));
}

/// Tests `la` from `now`: the Pongs come 100 ms later, 4 ms apart (4 MB/s: a token bucket's
/// burst). Returns when the link went active. 100 ms is exactly the most round trip a due time
/// allows beside a 10 ms link: a lead beyond it would give the test the whole test's rate
/// (`a_new_links_test_whose_lead_waited_far_beyond_the_others_round_trips_is_not_trusted`),
/// and the test would no longer be fooled.
fn fooled_test(now: Time, a: &mut Connection, b: &mut Connection, links: (LinkId, LinkId)) -> Time {
    tested(
        now,
        a,
        b,
        links,
        Duration::from_millis(100),
        Duration::from_millis(4),
    )
}

/// Tests `la` from `now`: the lead's Pong comes `lead` later, the closing one `gap` after
/// it. Returns when the link went active.
fn tested(
    now: Time,
    a: &mut Connection,
    b: &mut Connection,
    (la, lb): (LinkId, LinkId),
    lead: Duration,
    gap: Duration,
) -> Time {
    let test = transmits(now, a, la);
    let lead_at = now + lead;
    let mut pongs = pongs_for(lead_at, b, lb, test).into_iter();
    a.handle_packet(lead_at, la, pongs.next().unwrap());
    let closing_at = lead_at + gap;
    a.handle_packet(closing_at, la, pongs.next().unwrap());
    assert_eq!(state(a, la), LinkState::Active);
    closing_at
}

#[test]
fn a_link_slower_than_its_test_stalls_once_its_first_data_is_overdue() {
    // The second link's test Pongs came 4 ms apart: 4 MB/s, as fast as the first link. The
    // path delivers 50 kB/s now. The link takes a queue on the test's word, and the ack
    // timeout, from the lead's 100 ms sample, is hundreds of milliseconds away.
    let now = Time::ZERO;
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, RTT);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let closing_at = fooled_test(now, &mut a, &mut b, (la, lb));
    let queued = transmits(closing_at, &mut a, la);
    let payloads = kinds(&queued)
        .iter()
        .filter(|&&k| k == MessageKind::Data)
        .count();
    assert!(payloads > 1, "{:?}", kinds(&queued));

    // Not one acknowledgement in 125 ms: at a quarter of the test's rate the first payload
    // would have been acknowledged within 118 ms (its 8 ms transmission at 1 MB/s, the 10 ms
    // handshake round trip and 100 ms). The link stalls, and its data is sent again on the
    // first link.
    let late = closing_at + Duration::from_millis(125);
    assert!(a.poll_timeout().is_some_and(|t| t <= late));
    a.handle_timeout(late);
    assert_eq!(state(&a, la), LinkState::Stalled);
    let stats = a.stats();
    assert!(stats.resend_queue >= payloads, "{stats:?}");
}

#[test]
fn a_link_slower_than_its_test_stalls_once_acknowledgements_fall_behind() {
    // The second link's handshake took 100 ms: the round trip is that long (the most a due
    // time allows beside a 10 ms link). The test's Pongs came 4 ms apart (4 MB/s, a token
    // bucket's burst). The first payloads are acknowledged a round trip after they left,
    // back to back; then nothing more. At a quarter of the test's rate the next one (4 kB,
    // what the test's rate sends in 1 ms) is 4 ms behind the last, and 100 ms of slack later
    // the link stalls. Without the acknowledgements pulling its due time in, the fourth
    // payload would be due 116 ms after them (its place in the queue at 1 MB/s and the
    // 100 ms round trip), and the ack timeout later still.
    let now = Time::ZERO;
    let round_trip = Duration::from_millis(100);
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, round_trip);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let closing_at = fooled_test(now, &mut a, &mut b, (la, lb));
    let mut queued = transmits(closing_at, &mut a, la).into_iter();
    // Each Data message is a header packet and a payload packet.
    let first_three: Vec<Bytes> = queued.by_ref().take(6).collect();
    assert_eq!(
        kinds(&first_three),
        [MessageKind::Data, MessageKind::Data, MessageKind::Data]
    );
    assert!(kinds(&queued.collect::<Vec<_>>()).contains(&MessageKind::Data));

    let acked_at = closing_at + round_trip;
    deliver(acked_at, &mut b, lb, first_three);
    deliver(acked_at, &mut a, la, transmits(acked_at, &mut b, lb));
    assert_eq!(state(&a, la), LinkState::Active);
    assert_eq!(
        a.poll_timeout(),
        Some(acked_at + Duration::from_millis(104))
    );
    let late = acked_at + Duration::from_millis(115);
    a.handle_timeout(late);
    assert_eq!(state(&a, la), LinkState::Stalled);
}

#[test]
fn a_new_links_test_whose_lead_waited_far_beyond_the_others_round_trips_is_not_trusted() {
    // Handshaken and tested through a crawling path's losses: half a second, beside a 10 ms
    // link. The test's Pongs came 4 ms apart, but after a lead that waited that long they
    // prove nothing (a retransmission brought lead, filler and closing Ping to the peer
    // together): the rate is the whole test's, 16 KiB in 504 ms.
    let now = Time::ZERO;
    let round_trip = Duration::from_millis(500);
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, round_trip);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let gap = Duration::from_millis(4);
    let closing_at = tested(now, &mut a, &mut b, (la, lb), round_trip, gap);
    let rate = a.link_stats()[1].rate;
    let whole = (16 << 10) as f64 / 0.504;
    assert!(
        (rate - whole).abs() < 1.0,
        "rate {rate}, whole test {whole}"
    );

    // A crawl beside the first link: one payload at a time, of what it sends in 1 ms (at
    // least 1 KiB), and due after its slow transmission (at a quarter of that rate), at most
    // 100 ms of round trip (not the 500 the link showed) and 100 ms of slack. No acknowledgement comes by
    // then, and the link stalls: its payload moves to the first link, and its next test sets
    // its rate with no due times.
    let sent = transmits(closing_at, &mut a, la);
    assert_eq!(kinds(&sent), [MessageKind::Data]);
    let len = sent[1].len();
    assert_eq!(len, ((whole * 0.001) as usize).max(1 << 10));
    let slow = Duration::from_secs_f64(len as f64 / (whole / 4.0));
    let due = closing_at + slow + Duration::from_millis(200);
    let timeout = a.poll_timeout().unwrap();
    let off = timeout.since_epoch().abs_diff(due.since_epoch());
    assert!(
        off <= Duration::from_millis(1),
        "{timeout:?} against {due:?}"
    );
    a.handle_timeout(timeout);
    assert_eq!(state(&a, la), LinkState::Stalled);
}

#[test]
fn a_retest_led_late_by_what_the_link_queued_before_keeps_the_gaps_rate() {
    // A link that has carried data may have its socket full of it when it is tested after a
    // stall: the lead waits for that to drain, and then the gap between the Pongs is the
    // filler's, whatever the lead's round trip.
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 2);
    exchange(now, &mut a, &mut b, links[0]);
    exchange(now, &mut a, &mut b, links[1]);
    let (la, lb) = links[0];
    let (_, stalled_at) = stall(now, &mut a, la, 1 << 20);
    let (lead, gap) = (Duration::from_millis(500), Duration::from_millis(4));
    tested(stalled_at, &mut a, &mut b, (la, lb), lead, gap);
    let rate = a.link_stats()[0].rate;
    assert!((rate - 4_096_000.0).abs() < 1.0, "rate {rate}");
}

#[test]
fn a_link_stalled_once_for_its_test_is_not_held_to_the_next_before_it_is_measured() {
    // A path whose round trip has grown since the handshake by more than the slack: every
    // first payload after a test is overdue. The link stalls once; its next test's rate
    // sets no due times, or it would stall after every test.
    let now = Time::ZERO;
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, RTT);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let active = fooled_test(now, &mut a, &mut b, (la, lb));
    assert!(kinds(&transmits(active, &mut a, la)).contains(&MessageKind::Data));
    let late = active + Duration::from_millis(150);
    a.handle_timeout(late);
    assert_eq!(state(&a, la), LinkState::Stalled);

    let active = fooled_test(late, &mut a, &mut b, (la, lb));
    assert!(kinds(&transmits(active, &mut a, la)).contains(&MessageKind::Data));
    let late = active + Duration::from_millis(150);
    a.handle_timeout(late);
    assert_eq!(state(&a, la), LinkState::Active);
}

#[test]
fn a_lone_link_slower_than_its_test_keeps_its_data() {
    // As in the test above, but the first link fails once the second has taken its queue:
    // with no other link to move the data to, a stall would only hold it back for a test.
    let now = Time::ZERO;
    let (mut a, mut b, (la, lb)) = second_link_with_rtt(now, RTT);
    a.write(Bytes::from(vec![3u8; 32 << 20])).unwrap();
    let closing_at = fooled_test(now, &mut a, &mut b, (la, lb));
    assert!(kinds(&transmits(closing_at, &mut a, la)).contains(&MessageKind::Data));
    let first = a.link_stats().into_iter().find(|l| l.id != la).unwrap().id;
    a.handle_link_error(closing_at, first, liag_core::LinkError::PingTimeout);
    assert_eq!(a.link_count(), 1);

    let late = closing_at + Duration::from_millis(125);
    a.handle_timeout(late);
    assert_eq!(state(&a, la), LinkState::Active);
    assert_eq!(a.stats().resend_queue, 0);
    // Its due times are dropped: no timer stays due.
    assert!(a.poll_timeout().is_some_and(|t| t > late));
}

#[test]
fn a_slow_links_late_closing_pong_ends_its_test() {
    // A peer that answers every Ping, on a slow link: the closing Pong comes 300 ms after the
    // test began, after the fresh Ping went out, and it ends the test.
    let now = Time::ZERO;
    let (mut a, mut b, (la, lb)) = second_link_to_test(now);
    let test = transmits(now, &mut a, la);
    let lead_at = now + RTT;
    let pongs = pongs_for(lead_at, &mut b, lb, test);
    assert_eq!(pongs.len(), 2);
    let mut pongs = pongs.into_iter();
    a.handle_packet(lead_at + RTT, la, pongs.next().unwrap());
    let due = a.poll_timeout().unwrap();
    let closing_at = now + Duration::from_millis(300);
    assert!(due < closing_at, "{due:?}");
    a.handle_timeout(due);
    assert_eq!(kinds(&transmits(due, &mut a, la)), vec![MessageKind::Ping]);
    a.handle_packet(closing_at, la, pongs.next().unwrap());
    assert_eq!(state(&a, la), LinkState::Active);
    // 16 KiB over the whole test, 300 ms.
    let rate = a.link_stats()[1].rate;
    assert!((rate - (16 << 10) as f64 / 0.3).abs() < 1.0, "rate {rate}");
}

#[test]
fn a_peer_answering_each_test_ping_in_time_gets_no_third() {
    let now = Time::ZERO;
    let (mut a, mut b, (la, lb)) = second_link_to_test(now);
    let test = transmits(now, &mut a, la);
    let pongs = pongs_for(now + RTT / 2, &mut b, lb, test);
    assert_eq!(pongs.len(), 2);
    // The filler kept the closing Pong 5 ms behind the lead's.
    let mut pongs = pongs.into_iter();
    a.handle_packet(now + RTT, la, pongs.next().unwrap());
    a.handle_packet(
        now + RTT + Duration::from_millis(5),
        la,
        pongs.next().unwrap(),
    );
    assert_eq!(state(&a, la), LinkState::Active);
    let later = now + Duration::from_millis(100);
    if a.poll_timeout().is_some_and(|due| due <= later) {
        a.handle_timeout(later);
    }
    let sent = kinds(&transmits(later, &mut a, la));
    assert!(!sent.contains(&MessageKind::Ping), "{sent:?}");
    // 16 KiB in the 5 ms between the Pongs.
    let rate = a.link_stats()[1].rate;
    assert!(
        (rate - (16 << 10) as f64 / 0.005).abs() < 1.0,
        "rate {rate}"
    );
}

/// The peer ended: its SendFinish arrived, then it closed the link, perhaps before its last
/// Acks left it (spec §8.3, W8). Whether that is a clean end depends on how the link ended.
fn last_link_ends(error: liag_core::LinkError) -> Option<Result<(), liag_core::ConnectionError>> {
    let now = Time::ZERO;
    let (mut a, mut b, links) = joined(now, 1);
    let (la, lb) = links[0];
    exchange(now, &mut a, &mut b, links[0]);
    b.finish();
    exchange(now, &mut a, &mut b, links[0]);
    a.write(Bytes::from_static(b"last words")).unwrap();
    a.finish();
    // a's data and SendFinish reach b; b's Acks for them never reach a.
    deliver(now, &mut b, lb, transmits(now, &mut a, la));
    a.handle_link_error(now, la, error);
    a.outcome().cloned()
}

#[test]
fn a_peer_closing_its_last_link_after_both_finished_is_a_clean_end() {
    assert_eq!(last_link_ends(liag_core::LinkError::Closed), Some(Ok(())));
}

#[test]
fn a_last_link_failing_with_data_unacknowledged_is_no_clean_end() {
    let error = liag_core::LinkError::transport(std::io::ErrorKind::ConnectionReset, "reset");
    assert_eq!(last_link_ends(error), None);
}
