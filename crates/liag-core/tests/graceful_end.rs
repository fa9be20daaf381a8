//! The graceful end (spec §8.3) when a peer closes its links before acknowledging our last
//! messages, as the reference may (§8.3, 5).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod common;

use bytes::Bytes;
use liag_core::{Config, Connection, LinkError, Time};
use std::time::Duration;

/// The peer stopped receiving (ReceiveFinish), which ends our write direction, then sent its
/// last data and SendFinish. Our last Consumed, which its end waits for, is all we owe; the
/// peer closes its links before its Ack of it comes back. The connection has ended well.
#[test]
fn a_peer_that_stopped_receiving_and_closes_before_its_last_ack_ends_cleanly() {
    let rtt = Duration::from_millis(10);
    let mut now = Time::ZERO;
    let mut a = Connection::new(Config::default(), now);
    let mut b = Connection::new(Config::default(), now);
    let (la, lb) = common::attach_pair(now, &mut a, &mut b, "l", rtt);
    b.stop_receiving();
    assert_eq!(b.write(Bytes::from_static(b"last words")).unwrap(), 10);
    b.finish();
    // B's messages reach A; A's answers are lost with the link.
    let to_a: Vec<Bytes> = std::iter::from_fn(|| b.poll_transmit(now, lb)).collect();
    now += rtt / 2;
    to_a.into_iter().for_each(|p| a.handle_packet(now, la, p));
    assert!(a.peer_stopped_receiving());
    assert_eq!(a.read().as_deref(), Some(&b"last words"[..]));
    assert!(a.read_finished());
    let from_a: Vec<Bytes> = std::iter::from_fn(|| a.poll_transmit(now, la)).collect();
    assert!(
        !from_a.is_empty(),
        "its acknowledgements and its last Consumed"
    );
    assert!(!a.is_closed(), "the last Consumed is not acknowledged yet");
    a.handle_link_error(now, la, LinkError::Closed);
    assert!(matches!(a.outcome(), Some(Ok(()))), "{:?}", a.outcome());
}
