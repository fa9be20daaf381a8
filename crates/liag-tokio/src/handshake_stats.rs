//! [`HandshakeStats`]: how a server's incoming links ended their handshakes.

use std::sync::atomic::{AtomicU64, Ordering};

use liag_core::proto::message::RefusedReason;

use crate::error::AcceptError;

/// How a [`Server`](crate::Server)'s incoming links ended, counted since it started: each
/// link is counted once, when its handshake ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeStats {
    /// Joined a connection, new or running.
    pub accepted: u64,
    /// Refused with Refused(NotListening): no listener, too many connections waiting, or the
    /// source holds its most connections.
    pub refused_not_listening: u64,
    /// Refused with Refused(ConnectionRefused): the application refused the connection.
    pub refused_connection: u64,
    /// Refused with Refused(LinkRefused): the link filter, or the connection has its most
    /// links.
    pub refused_link: u64,
    /// Refused with Refused(Closed): the connection it asked for has ended.
    pub refused_closed: u64,
    /// Did not finish within the handshake timeout.
    pub timed_out: u64,
    /// Broke the protocol, or its transport failed or ended.
    pub failed: u64,
    /// Closed at once: its source held its most sockets.
    pub over_source_limit: u64,
    /// Given up to make room for newer handshakes (the handshake table was full).
    pub abandoned: u64,
}

/// The counters behind [`HandshakeStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    refused: [AtomicU64; 4],
    timed_out: AtomicU64,
    failed: AtomicU64,
    over_source_limit: AtomicU64,
    abandoned: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts how one handshake ended.
    pub(crate) fn ended(&self, result: &Result<(), AcceptError>) {
        match result {
            Ok(()) => bump(&self.accepted),
            Err(AcceptError::Refused(reason)) => bump(&self.refused[refused_index(*reason)]),
            Err(AcceptError::Timeout) => bump(&self.timed_out),
            Err(AcceptError::TransportClosed | AcceptError::Protocol(_) | AcceptError::Io(_)) => {
                bump(&self.failed)
            }
        }
    }

    /// Counts a link closed at once for its source's socket limit.
    pub(crate) fn over_source_limit(&self) {
        bump(&self.over_source_limit);
    }

    /// Counts a handshake abandoned to make room.
    pub(crate) fn abandoned(&self) {
        bump(&self.abandoned);
    }

    pub(crate) fn snapshot(&self) -> HandshakeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HandshakeStats {
            accepted: get(&self.accepted),
            refused_not_listening: get(&self.refused[refused_index(RefusedReason::NotListening)]),
            refused_connection: get(&self.refused[refused_index(RefusedReason::ConnectionRefused)]),
            refused_link: get(&self.refused[refused_index(RefusedReason::LinkRefused)]),
            refused_closed: get(&self.refused[refused_index(RefusedReason::Closed)]),
            timed_out: get(&self.timed_out),
            failed: get(&self.failed),
            over_source_limit: get(&self.over_source_limit),
            abandoned: get(&self.abandoned),
        }
    }
}

fn refused_index(reason: RefusedReason) -> usize {
    match reason {
        RefusedReason::Closed => 0,
        RefusedReason::NotListening => 1,
        RefusedReason::ConnectionRefused => 2,
        RefusedReason::LinkRefused => 3,
    }
}
