//! The paths a connector listed last, by name: `open` looks its path up, and `keep` compares
//! a new link's path with those of the links already up.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;

use liag_tokio::UserData;

/// Paths by the names a connector gave them in its last `paths()`.
#[derive(Debug)]
pub(crate) struct KnownPaths<P>(Mutex<HashMap<String, P>>);

impl<P> Default for KnownPaths<P> {
    fn default() -> Self {
        KnownPaths(Mutex::default())
    }
}

impl<P: Clone> KnownPaths<P> {
    /// Remembers each path under its name; returns the names, in order.
    pub(crate) fn record(&self, paths: impl IntoIterator<Item = (String, P)>) -> Vec<String> {
        let mut known = self.0.lock();
        paths
            .into_iter()
            .map(|(name, path)| {
                known.insert(name.clone(), path);
                name
            })
            .collect()
    }

    /// The path named `name`.
    pub(crate) fn get(&self, name: &str) -> io::Result<P> {
        self.0
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown path {name}")))
    }

    /// Whether a new link on path `name` may stay: none of `others` (the links up, by path
    /// name and remote user data) is on a path that `clash(new, other, other's remote user
    /// data)` says it duplicates. A link on an unknown path stays.
    pub(crate) fn keep(
        &self,
        name: &str,
        others: &[(String, UserData)],
        clash: impl Fn(&P, &P, &UserData) -> bool,
    ) -> bool {
        let known = self.0.lock();
        let Some(this) = known.get(name) else {
            return true;
        };
        !others.iter().any(|(other, remote)| {
            known
                .get(other)
                .is_some_and(|path| clash(this, path, remote))
        })
    }
}
