//! Emulated paths between a client and a server in one process, as a [`Connector`].
//!
//! Where [`super::pair`] makes one link, [`MemPaths`] stands for the network between two
//! endpoints: each named path has a [`MemLinkSpec`], every [`Connector::open`] on it makes a
//! fresh link and hands the far end to the [`Server`], and faults apply to the path, so a
//! black-holed path swallows new links too, just as a dead route does. With
//! [`crate::connect_with`] that exercises reconnection and stalled-path probing exactly as a
//! real transport would.

use liag_tokio::BoxFuture;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use liag_tokio::Server;
use liag_tokio::UserData;

use super::{MemControl, MemLinkSpec, pair};
use crate::Connector;

/// Named emulated paths towards a server; cloning shares them.
#[derive(Clone)]
pub struct MemPaths {
    server: Server,
    inner: Arc<Mutex<Vec<Path>>>,
    seed: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|p| p.name.clone()).collect();
        f.debug_struct("MemPaths").field("paths", &names).finish()
    }
}

struct Path {
    name: String,
    spec: MemLinkSpec,
    black_holed: bool,
    links: Vec<MemControl>,
}

impl MemPaths {
    /// Paths named `path0`, `path1`, ... with these specs, towards `server`; `seed` seeds the
    /// links' jitter.
    pub fn new(server: Server, specs: impl IntoIterator<Item = MemLinkSpec>, seed: u64) -> Self {
        let paths = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Path {
                name: format!("path{i}"),
                spec,
                black_holed: false,
                links: Vec::new(),
            })
            .collect();
        MemPaths {
            server,
            inner: Arc::new(Mutex::new(paths)),
            seed: Arc::new(AtomicU64::new(seed)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Path>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_path(&self, index: usize, f: impl FnOnce(&mut Path)) {
        if let Some(path) = self.lock().get_mut(index) {
            f(path);
        }
    }

    /// Resets every link on path `index` (both ends fail, what was in flight is lost); new
    /// links on it work.
    pub fn reset(&self, index: usize) {
        self.with_path(index, |p| p.links.drain(..).for_each(|l| l.cut()));
    }

    /// Silences path `index`: its links, and any opened on it, carry nothing until
    /// [`MemPaths::heal`].
    pub fn black_hole(&self, index: usize) {
        self.with_path(index, |p| {
            p.black_holed = true;
            p.links.iter().for_each(MemControl::black_hole);
        });
    }

    /// Ends a black hole on path `index`.
    pub fn heal(&self, index: usize) {
        self.with_path(index, |p| {
            p.black_holed = false;
            p.links.iter().for_each(MemControl::heal);
        });
    }

    /// The sum of the paths' rates, in payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.lock().iter().map(|p| p.spec.bytes_per_sec()).sum()
    }
}

impl Connector for MemPaths {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let names = self.lock().iter().map(|p| p.name.clone()).collect();
        Box::pin(async move { Ok(names) })
    }

    fn open<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(liag_tokio::BoxLink, UserData)>> {
        Box::pin(async move {
            let seed = self.seed.fetch_add(1, Ordering::Relaxed);
            let mut paths = self.lock();
            let p = paths.iter_mut().find(|p| p.name == path).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no path {path}"))
            })?;
            let (near, far, control) = pair(p.spec, seed);
            if p.black_holed {
                control.black_hole();
            }
            // Links whose ends are gone have nothing left to control.
            p.links.retain(MemControl::in_use);
            p.links.push(control);
            drop(paths);
            self.server
                .add_incoming_link(far.boxed(), path.to_string(), UserData::empty());
            Ok((near.boxed(), UserData::empty()))
        })
    }
}
