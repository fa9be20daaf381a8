//! Helpers shared by the tests that join two connections by hand.

use bytes::Bytes;
use liag_core::{Connection, Direction, LinkId, LinkInfo, Time};
use std::time::Duration;

/// Attaches a link named `tag` to `a` (outgoing) and `b` (incoming), with a handshake that
/// took `rtt` and 64 MiB of peer window: (a's id, b's id).
pub(crate) fn attach_pair(
    now: Time,
    a: &mut Connection,
    b: &mut Connection,
    tag: &str,
    rtt: Duration,
) -> (LinkId, LinkId) {
    let la = a.attach_link(now, LinkInfo::new(Direction::Outgoing, tag, rtt), 64 << 20);
    let lb = b.attach_link(now, LinkInfo::new(Direction::Incoming, tag, rtt), 64 << 20);
    (la, lb)
}

/// Passes packets both ways until neither side has any, `rtt` per exchange.
#[allow(dead_code)] // Not every test file that has this module uses it.
pub(crate) fn exchange(
    now: &mut Time,
    rtt: Duration,
    (a, la): (&mut Connection, LinkId),
    (b, lb): (&mut Connection, LinkId),
) {
    for _ in 0..100 {
        let to_b: Vec<Bytes> = std::iter::from_fn(|| a.poll_transmit(*now, la)).collect();
        *now += rtt / 2;
        let empty = to_b.is_empty();
        to_b.into_iter().for_each(|p| b.handle_packet(*now, lb, p));
        let to_a: Vec<Bytes> = std::iter::from_fn(|| b.poll_transmit(*now, lb)).collect();
        *now += rtt / 2;
        if empty && to_a.is_empty() {
            return;
        }
        to_a.into_iter().for_each(|p| a.handle_packet(*now, la, p));
    }
}
