//! [`Connections`]: the aggregated connections a command holds, for the monitor and the
//! metrics to read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use liag_transports::liag_tokio::Control;

/// One live connection.
#[derive(Clone)]
pub(crate) struct Entry {
    /// A number unique within this process, in the order connections opened.
    pub(crate) id: u64,
    /// What it carries, for people: `port 22 for 127.0.0.1:40112`, `proxy connection (lane 1 of 2)`.
    pub(crate) label: String,
    /// Its links and figures.
    pub(crate) control: Control,
    /// When it was tracked.
    pub(crate) since: Instant,
}

#[derive(Default)]
struct Table {
    next: u64,
    live: BTreeMap<u64, Entry>,
}

/// The live connections of this process. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    table: Arc<Mutex<Table>>,
    /// Set once metrics are served: link events are counted from then on.
    events_counted: Arc<OnceLock<()>>,
}

impl Connections {
    /// Adds a connection until the returned guard is dropped.
    pub(crate) fn track(&self, label: impl Into<String>, control: Control) -> Tracked {
        let mut table = self.lock();
        let id = table.next;
        table.next += 1;
        let entry = Entry {
            id,
            label: label.into(),
            control,
            since: Instant::now(),
        };
        if self.events_counted.get().is_some() {
            tokio::spawn(super::metrics::count_link_events(entry.control.clone()));
        }
        table.live.insert(id, entry);
        Tracked {
            id,
            connections: self.clone(),
        }
    }

    /// Counts the link events of connections tracked from now on, for the metrics.
    pub(crate) fn count_events(&self) {
        let _ = self.events_counted.set(());
    }

    /// The connections live now, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Entry> {
        self.lock().live.values().cloned().collect()
    }

    /// How many connections were ever tracked.
    pub(crate) fn opened(&self) -> u64 {
        self.lock().next
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic elsewhere leaves the table consistent (every change is one insert or
        // remove), so a poisoned lock is taken as it is.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a connection in [`Connections`]; dropping it removes it.
pub(crate) struct Tracked {
    id: u64,
    connections: Connections,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.connections.lock().live.remove(&self.id);
    }
}
