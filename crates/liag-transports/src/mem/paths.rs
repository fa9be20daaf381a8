//! Emulated paths between a client and a server in one process, as a [`Connector`].
//!
//! Where [`super::pair`] makes one link, [`MemPaths`] stands for the network between two
//! endpoints: each named path has a [`LinkSpec`], every [`Connector::open`] on it makes a
//! fresh link and hands the far end to the [`Server`], and faults apply to the path, so a
//! black-holed or degraded path swallows or slows new links too, just as a dead or congested
//! route does. With
//! [`crate::connect_with`] that exercises reconnection and stalled-path probing exactly as a
//! real transport would.

use liag_tokio::BoxFuture;
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use liag_tokio::Server;
use liag_tokio::UserData;

use super::{Fault, LinkSpec, MemControl, pair};
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
        let names: Vec<String> = self.inner.lock().iter().map(|p| p.name.clone()).collect();
        f.debug_struct("MemPaths").field("paths", &names).finish()
    }
}

struct Path {
    name: String,
    spec: LinkSpec,
    /// The faults that stand on the path and so apply to new links too: a black hole, a
    /// lower rate.
    standing: Vec<Fault>,
    links: Vec<MemControl>,
}

impl MemPaths {
    /// Paths named `path0`, `path1`, ... with these specs, towards `server`; `seed` seeds the
    /// links' jitter.
    pub fn new(server: Server, specs: impl IntoIterator<Item = LinkSpec>, seed: u64) -> Self {
        let paths = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Path {
                name: format!("path{i}"),
                spec,
                standing: Vec::new(),
                links: Vec::new(),
            })
            .collect();
        MemPaths {
            server,
            inner: Arc::new(Mutex::new(paths)),
            seed: Arc::new(AtomicU64::new(seed)),
        }
    }

    fn with_path(&self, index: usize, f: impl FnOnce(&mut Path)) {
        if let Some(path) = self.inner.lock().get_mut(index) {
            f(path);
        }
    }

    /// Applies `fault` to path `index`: [`Fault::Reset`] and [`Fault::Corrupt`] fail every
    /// link on it (new links work); [`Fault::BlackHole`] and [`Fault::Rate`] stand on the
    /// path, for its links and any opened on it, until [`Fault::Heal`].
    pub fn fault(&self, index: usize, fault: Fault) {
        self.with_path(index, |p| match fault {
            Fault::Reset | Fault::Corrupt => p.links.drain(..).for_each(|l| l.fault(fault)),
            _ => {
                p.standing
                    .retain(|f| !matches!((f, fault), (Fault::Rate(_), Fault::Rate(_))));
                match fault {
                    Fault::Heal => p.standing.clear(),
                    _ => p.standing.push(fault),
                }
                p.links.iter().for_each(|l| l.fault(fault));
            }
        });
    }

    /// The sum of the paths' rates, in payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.inner
            .lock()
            .iter()
            .map(|p| p.spec.bytes_per_sec())
            .sum()
    }
}

impl Connector for MemPaths {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        let names = self.inner.lock().iter().map(|p| p.name.clone()).collect();
        Box::pin(async move { Ok(names) })
    }

    fn open<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(liag_tokio::BoxLink, UserData)>> {
        Box::pin(async move {
            let seed = self.seed.fetch_add(1, Ordering::Relaxed);
            let mut paths = self.inner.lock();
            let p = paths.iter_mut().find(|p| p.name == path).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no path {path}"))
            })?;
            let (near, far, control) = pair(p.spec, seed);
            p.standing.iter().for_each(|&f| control.fault(f));
            // Links whose ends are gone have nothing left to control.
            p.links.retain(MemControl::in_use);
            p.links.push(control);
            drop(paths);
            self.server
                .add_packet_link(far.boxed(), path.to_string(), UserData::empty());
            Ok((near.boxed(), UserData::empty()))
        })
    }
}
