//! Who gives way when a server is full: which connection ends to make room for a new one,
//! and which handshake is abandoned for a newcomer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use liag_core::handshake::ConnectionTable;
use liag_core::proto::ids::ConnId;

use crate::server::{Handle, Handshake};
use crate::shared::Shared;
use crate::sources::{Source, oldest_of_busiest};

/// How readily a running connection gives way, most readily first; `None` if it does not.
///
/// 1. no link, and never any data: nobody uses it;
/// 2. links, but never any data for `unproven_after` since it opened: sockets held open to
///    keep a place (a real client sends its first bytes at once);
/// 3. no link, but data before: a real client between two paths, which loses out only to
///    newcomers when nothing else gives way.
fn rank(shared: &Shared, unproven_after: Duration) -> Option<u8> {
    let inner = shared.lock();
    let linkless = inner.conn.is_linkless() && inner.joining == 0;
    let used = inner.conn.received_data();
    let old = inner.now().since_epoch() >= unproven_after;
    match (linkless, used) {
        (true, false) => Some(0),
        (false, false) if old => Some(1),
        (true, true) => Some(2),
        _ => None,
    }
}

/// The running connection to end for a newcomer, if any gives way.
pub(crate) fn connection_to_end(
    table: &ConnectionTable<Handle>,
    unproven_after: Duration,
) -> Option<(ConnId, Arc<Shared>)> {
    let mut best: Option<(u8, ConnId, &Arc<Shared>)> = None;
    for (id, handle) in table.iter() {
        let Handle::Running(shared) = handle else {
            continue;
        };
        let Some(rank) = rank(shared, unproven_after) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
            best = Some((rank, id, shared));
            if rank == 0 {
                break;
            }
        }
    }
    best.map(|(_, id, shared)| (id, shared.clone()))
}

/// The handshake to abandon from a full table: the oldest of the source with the most in
/// progress (links without a source count as one source), so one busy source shuts out only
/// itself.
pub(crate) fn handshake_to_abandon(pending: &mut VecDeque<Handshake>) -> Option<Handshake> {
    let sources: Vec<Option<Source>> = pending.iter().map(|h| h.source).collect();
    pending.remove(oldest_of_busiest(&sources)?)
}
