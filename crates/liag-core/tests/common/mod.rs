//! Helpers shared by the tests that join two connections by hand.

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
