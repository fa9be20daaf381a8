//! Messages written with `Connection::write_message` go in one payload each, however short a
//! slow link's payloads are cut; the byte stream is cut to them.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use bytes::Bytes;
use liag_core::proto::message::MessageKind;
use liag_core::{Config, Connection, Direction, LinkId, LinkInfo, Time, WriteError};
use std::time::Duration;

/// Two connections joined by one link of 200 ms round trip, up at the time returned. Until
/// acknowledged data measures it, the link's rate is its window over that round trip,
/// 1.3 MB/s: its payloads are cut to what that carries in 1 ms, 1.3 kB.
fn slow_pair() -> (Connection, Connection, LinkId, Time) {
    let rtt = Duration::from_millis(200);
    let mut now = Time::ZERO;
    let mut config = Config::default();
    config.send_queue_time = Duration::MAX;
    let mut a = Connection::new(config.clone(), now);
    let mut b = Connection::new(config, now);
    let (la, lb) = common::attach_pair(now, &mut a, &mut b, "slow", rtt);
    common::exchange(&mut now, rtt, (&mut a, la), (&mut b, lb));
    let rate = a.link_stats()[0].rate;
    assert!((1e6..2e6).contains(&rate), "rate {rate}");
    (a, b, la, now)
}

/// The lengths of the payloads `a` sends on `link` now.
fn payloads(now: Time, a: &mut Connection, link: LinkId) -> Vec<usize> {
    let packets: Vec<Bytes> = std::iter::from_fn(|| a.poll_transmit(now, link)).collect();
    let mut lens = Vec::new();
    let mut payload_next = false;
    for p in packets {
        if std::mem::take(&mut payload_next) {
            lens.push(p.len());
        } else {
            payload_next = p[0] == MessageKind::Data as u8;
        }
    }
    lens
}

#[test]
fn a_message_goes_in_one_payload_on_a_slow_link() {
    let (mut a, _b, la, now) = slow_pair();
    let max = a.config().max_payload;
    for _ in 0..4 {
        a.write_message(Bytes::from(vec![1u8; max])).unwrap();
    }
    a.write_message(Bytes::from(vec![2u8; 100])).unwrap();
    assert_eq!(payloads(now, &mut a, la), [max, max, max, max, 100]);
}

#[test]
fn the_byte_stream_is_cut_to_a_slow_links_payloads() {
    let (mut a, _b, la, now) = slow_pair();
    let max = a.config().max_payload;
    assert_eq!(a.write(Bytes::from(vec![1u8; max])).unwrap(), max);
    let lens = payloads(now, &mut a, la);
    assert!(lens.len() > 1, "{lens:?}");
    assert!(lens.iter().all(|&n| n < 4_000), "{lens:?}");
    assert_eq!(lens.iter().sum::<usize>(), max);
}

/// A connection with no link and a send buffer of `send_buffer` bytes, and its `max_payload`.
fn with_send_buffer(send_buffer: usize) -> (Connection, usize) {
    let mut config = Config::default();
    config.send_buffer = send_buffer;
    let a = Connection::new(config, Time::ZERO);
    let max = a.config().max_payload;
    (a, max)
}

#[test]
fn a_message_waits_for_room_for_all_of_it() {
    let (mut a, max) = with_send_buffer(40 << 10);
    a.write_message(Bytes::from(vec![1u8; max])).unwrap();
    // 8 KiB of send buffer left: not room for another whole message.
    assert_eq!(
        a.write_message(Bytes::from(vec![1u8; max])),
        Err(WriteError::Blocked)
    );
    assert_eq!(a.write(Bytes::from(vec![1u8; max])), Ok(8 << 10));
}

#[test]
fn a_message_larger_than_the_send_buffer_goes_when_nothing_else_is_held() {
    let (mut a, max) = with_send_buffer(16 << 10);
    a.write_message(Bytes::from(vec![1u8; max])).unwrap();
    assert_eq!(
        a.write_message(Bytes::from(vec![1u8; 10])),
        Err(WriteError::Blocked),
        "the first is held: the send buffer bounds the next"
    );
}

/// A connection with `config` and one outgoing link whose peer announced `window`.
fn with_peer_window(config: Config, window: u32) -> (Connection, LinkId) {
    let mut a = Connection::new(config, Time::ZERO);
    let info = LinkInfo::new(Direction::Outgoing, "link", Duration::from_millis(1));
    let la = a.attach_link(Time::ZERO, info, window);
    (a, la)
}

#[test]
fn payloads_are_at_most_half_the_peers_receive_window() {
    let (mut a, la) = with_peer_window(Config::default(), 16 << 10);
    assert_eq!(a.config().max_payload, 8 << 10);
    // A message of the new max_payload still goes whole; a longer one is cut to it. The
    // peer's window takes two payloads before it acknowledges.
    a.write_message(Bytes::from(vec![1u8; 8 << 10])).unwrap();
    a.write_message(Bytes::from(vec![2u8; 12 << 10])).unwrap();
    assert_eq!(payloads(Time::ZERO, &mut a, la), [8 << 10, 8 << 10]);
    // A second link's peer says nothing new: the first link's window is the connection's.
    let info = LinkInfo::new(Direction::Outgoing, "second", Duration::from_millis(1));
    a.attach_link(Time::ZERO, info, 4 << 10);
    assert_eq!(a.config().max_payload, 8 << 10);
    // A smaller max_payload of the application's own is kept.
    let mut config = Config::default();
    config.max_payload = 4 << 10;
    let (a, _) = with_peer_window(config, 16 << 10);
    assert_eq!(a.config().max_payload, 4 << 10);
}

#[test]
fn a_tiny_receive_window_cuts_payloads_to_no_less_than_1_kib() {
    // The window bounds the data anyway; a link test's filler, which no window holds, would
    // otherwise go a byte at a time.
    let (a, _) = with_peer_window(Config::default(), 2);
    assert_eq!(a.config().max_payload, 1 << 10);
}

/// A receive window too small to hold back what a drain leaves unreported: a whole message
/// that needs all of it waits until the last small one read is reported, and the report
/// comes.
#[test]
fn a_whole_message_that_needs_a_small_window_whole_gets_it() {
    let rtt = Duration::from_millis(10);
    let mut now = Time::ZERO;
    let mut config = Config::default();
    config.recv_buffer = std::num::NonZeroU32::new(1000).unwrap();
    let mut a = Connection::new(Config::default(), now);
    let mut b = Connection::new(config, now);
    let la = a.attach_link(now, LinkInfo::new(Direction::Outgoing, "l", rtt), 1000);
    let lb = b.attach_link(now, LinkInfo::new(Direction::Incoming, "l", rtt), 64 << 20);
    a.write_message(Bytes::from(vec![1u8; 50])).unwrap();
    common::exchange(&mut now, rtt, (&mut a, la), (&mut b, lb));
    assert_eq!(b.read().map(|m| m.len()), Some(50));
    a.write_message(Bytes::from(vec![2u8; 1000])).unwrap();
    common::exchange(&mut now, rtt, (&mut a, la), (&mut b, lb));
    assert_eq!(a.stats().unconsumed, 1000, "the 50 bytes were reported");
    assert_eq!(b.read().map(|m| m.len()), Some(1000));
}
