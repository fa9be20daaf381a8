//! The loop behind [`crate::Links`]: one link per path, reopened with backoff when it fails,
//! and re-probed with fresh transports while it is stalled and delivers nothing.
//!
//! The loop follows the connection's link events ([`liag_tokio::Control::link_events`]): a
//! link the connection removed is reopened at once (after its path's next backoff if it lived
//! less than [`LIVED_LONG`]), and a link that stalls is probed, with no second record of link
//! state to fall out of step with the connection's.
//!
//! A stalled link is one whose messages go unacknowledged for longer than its round trips
//! allow ([`liag_core::LinkState::Stalled`]). When nothing it sends arrives (a black hole, a
//! dead Wi-Fi, a NAT that forgot the flow), its own transport may take seconds to notice the
//! path is back (TCP backs its retransmissions off), and a single fresh connection attempt
//! would too (a lost SYN is retried after a second, then two, ...). So once a stalled link's
//! peer has acknowledged nothing on it for [`PROBE_AFTER`], the loop starts a short-lived
//! attempt on its path every [`PROBE_EVERY`]: whenever the path heals, an attempt is at most
//! that far away, and the first one through replaces the stalled link. A stalled link whose
//! messages are still acknowledged, late, is left alone (see [`Path::delivers`]).

use liag_tokio::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::Instant;

use liag_core::{LinkId, LinkState};
use liag_tokio::{AddLinkError, LinkEvent, Outgoing};
use liag_tokio::{RefusedReason, UserData};
use tokio::sync::broadcast::error::RecvError;

use crate::error::AttemptError;
use crate::transport::Connector;

/// How often the loop looks for work when no event comes: retries and probes falling due.
const TICK: Duration = Duration::from_millis(50);
/// How often the connector is asked for its paths.
const PATHS_EVERY: Duration = Duration::from_secs(1);
/// First and longest wait before reopening a path whose attempt failed.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Wait before reopening a path whose link the server refused for having enough links: it
/// will not take more soon, and asking every few seconds would only cost both sides.
const REFUSED_BACKOFF: Duration = Duration::from_secs(60);
/// How long a link must have been stalled, and have had none of its messages acknowledged,
/// before its path is probed.
const PROBE_AFTER: Duration = Duration::from_millis(150);
/// While a link is stalled, a fresh attempt on its path starts this often...
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// ... and each gives up after this long, so at most ten are in flight per path.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Wait before reopening a path whose link this side's link filter refused, unless a link
/// goes first (which may change the filter's answer); also the least time between two
/// warnings of a refusal on one path.
const FILTERED_BACKOFF: Duration = Duration::from_secs(60);
/// A link that goes sooner than this after coming up does not reset its path's backoff: the
/// path is reopened after the next wait, so a peer that takes links and closes them at once
/// cannot make this side reconnect as fast as handshakes go. A link that lived longer is
/// reopened at once: a reset path is back within a round trip or two, and a peer that closes
/// links after this long gets at most one handshake a second per path.
const LIVED_LONG: Duration = Duration::from_secs(1);

/// What the loop shares with [`crate::Links`] and with its attempts.
#[derive(Debug, Default)]
pub(crate) struct Status {
    /// Why the last attempt failed.
    pub(crate) last_error: Option<Arc<AttemptError>>,
    /// Paths the connector named last.
    pub(crate) paths: usize,
    /// Attempts under way.
    pub(crate) attempts: usize,
    /// The links up or just kept by the link filter, by path, with the server's user data
    /// and the number of the attempt that made the link: what the filter of the next link to
    /// reach it compares against.
    kept: HashMap<String, (u64, UserData)>,
    /// Attempts started, to number them.
    attempts_started: u64,
    /// Links that went out of the filter's view so far: a refusal measured against an older
    /// view is void.
    generation: u64,
}

/// The link up on a path.
struct Live {
    id: LinkId,
    /// The number of the attempt that made it: its entry in the link filter's view.
    attempt: u64,
    /// When it came up.
    since: Instant,
}

/// What the loop knows of one path.
#[derive(Default)]
struct Path {
    /// The link up on it.
    live: Option<Live>,
    /// Since when the live link is stalled.
    stalled_since: Option<Instant>,
    /// While it is stalled: the acknowledgements the live link had received, and when the
    /// loop last saw that count grow (at first, the stall's start). See [`Path::delivers`].
    acked: Option<(u64, Instant)>,
    /// Attempts in flight on this path.
    attempts: Vec<AbortHandle>,
    /// No probe before this.
    next_probe: Option<Instant>,
    /// Not reopened before this, and the wait that led to it; a link that lives long forgets
    /// the wait.
    retry: Option<(Instant, Duration)>,
    /// Whether the last attempt was refused by the link filter.
    filtered: bool,
    /// When a refusal by the link filter was last logged.
    warned_at: Option<Instant>,
    /// The attempt whose link went, and the link filter's view has yet to hear of it.
    gone: Option<u64>,
}

impl Path {
    /// Takes in where its live link stands: `None` when the connection removed it.
    fn link_is(&mut self, state: Option<LinkState>) {
        match state {
            None => {
                if let Some(live) = self.live.take() {
                    self.gone = Some(live.attempt);
                    let now = Instant::now();
                    self.retry = if now - live.since >= LIVED_LONG {
                        None
                    } else {
                        let backoff = next_backoff(self.retry);
                        Some((now + backoff, backoff))
                    };
                }
                self.stalled_since = None;
                self.acked = None;
            }
            Some(LinkState::Stalled) => {
                self.stalled_since = self.stalled_since.or(Some(Instant::now()));
            }
            Some(_) => {
                if self.stalled_since.is_some() {
                    // Back by itself (its test passed): the probes on its path have nothing
                    // left to replace.
                    self.stop_probing();
                }
            }
        }
    }

    /// The path works again: its probes under way are aborted and no more are due.
    fn stop_probing(&mut self) {
        for attempt in self.attempts.drain(..) {
            attempt.abort();
        }
        (self.stalled_since, self.next_probe, self.acked) = (None, None, None);
    }

    /// Records `acks`, the acknowledgements the stalled live link has received in all, and
    /// says whether that count last grew less than [`PROBE_AFTER`] before `now`.
    ///
    /// A stall says the link's messages are acknowledged late. If they are acknowledged at
    /// all, the path delivers, only slowly: an uplink full of a download's acknowledgements,
    /// say, or a deep queue. A fresh link on that path would wait behind the same traffic
    /// and add its own first flight to it, so it is not probed meanwhile. A path that
    /// delivers nothing (silent, or a transport stuck in its retransmission back-off while
    /// the peer's data still flows) gets no acknowledgements and is probed as before.
    fn delivers(&mut self, acks: u64, now: Instant) -> bool {
        match self.acked {
            Some((count, _)) if count == acks => {}
            // No count was noted as the stall began (the connection had not listed the link
            // yet): this one is the baseline, dated to the stall's start.
            None => self.acked = Some((acks, self.stalled_since.unwrap_or(now))),
            Some(_) => self.acked = Some((acks, now)),
        }
        self.acked.is_some_and(|(_, at)| now - at < PROBE_AFTER)
    }

    /// At a stall's start (no count noted yet), notes the live link's acknowledgements so
    /// far, dated to the stall's start.
    fn note_stall_start(&mut self, acks: Option<u64>) {
        if let (Some(since), None, Some(acks)) = (self.stalled_since, self.acked, acks) {
            self.acked = Some((acks, since));
        }
    }
}

impl Path {
    /// Whether the stalled live link delivers ([`Path::delivers`]), by the connection's
    /// figures `stats`; false without a live link, or one the connection no longer lists.
    fn live_delivers(&mut self, stats: &[liag_core::LinkStats], now: Instant) -> bool {
        let live = self.live.as_ref().map(|live| live.id);
        live.and_then(|id| acks_of(stats, id))
            .is_some_and(|acks| self.delivers(acks, now))
    }
}

/// The acknowledgements `link` has received, if the connection still has it.
fn acks_of(stats: &[liag_core::LinkStats], link: LinkId) -> Option<u64> {
    stats.iter().find(|s| s.id == link).map(|s| s.acks_received)
}

/// The wait after `retry`'s.
fn next_backoff(retry: Option<(Instant, Duration)>) -> Duration {
    retry.map_or(BACKOFF_MIN, |(_, b)| {
        (b * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
    })
}

/// How an attempt ended well: a link, or the link filter's refusal.
enum Opened {
    /// The link, the number of its attempt, and the server's user data.
    Link(LinkId, u64, UserData),
    /// Refused beside these paths, in the filter's view of this generation.
    Filtered {
        others: Vec<String>,
        generation: u64,
    },
}

type Attempt = (String, bool, Result<Opened, AttemptError>);

/// Keeps `outgoing`'s links up on the paths the connector names, until the connection closes.
/// A new connector from `connectors` takes over at once: paths both name keep their links,
/// and links on paths the new one does not name are removed gracefully once a path it names
/// has a link (make before break: a new configuration whose paths do not work yet does not
/// cut the connection).
pub(crate) async fn keep_links(
    mut connectors: watch::Receiver<Arc<dyn Connector>>,
    outgoing: Outgoing,
    status: Arc<Mutex<Status>>,
) {
    let mut connector = connectors.borrow_and_update().clone();
    // Set when a new connector came: the paths it does not name lose their links once one
    // it names has a link.
    let mut replaced = false;
    // Whether `names` are the new connector's yet.
    let mut listed = true;
    let control = outgoing.control();
    let mut events = control.link_events();
    let mut names: Vec<String> = Vec::new();
    let mut names_at: Option<Instant> = None;
    let mut paths: HashMap<String, Path> = HashMap::new();
    let mut running: JoinSet<Attempt> = JoinSet::new();
    let mut running_path: HashMap<Id, String> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Ok(()) = connectors.changed() => {
                connector = connectors.borrow_and_update().clone();
                (names_at, replaced, listed) = (None, true, false);
            }
            event = events.recv() => match event {
                Ok(LinkEvent::State { link, state }) => {
                    if let Some(path) = path_of(&mut paths, link) {
                        path.link_is(Some(state));
                        if state == LinkState::Stalled && path.acked.is_none() {
                            // The count later looks compare against.
                            path.note_stall_start(acks_of(&control.links(), link));
                        }
                    }
                }
                Ok(LinkEvent::Removed { link, .. }) => {
                    if let Some(path) = path_of(&mut paths, link) {
                        path.link_is(None);
                    }
                    forget_gone(&mut paths, &status);
                }
                Ok(LinkEvent::Closed(_)) | Err(RecvError::Closed) => return,
                Ok(_) => {}
                // Fell behind: the connection's own list says where the links stand.
                Err(RecvError::Lagged(_)) => {
                    resync(&control, &mut paths);
                    forget_gone(&mut paths, &status);
                }
            },
            Some(done) = running.join_next_with_id() => {
                let (id, attempt) = match done {
                    Ok((id, attempt)) => (id, Some(attempt)),
                    Err(e) => (e.id(), None),
                };
                if let Some(name) = running_path.remove(&id) {
                    let path = paths.entry(name).or_default();
                    path.attempts.retain(|a| a.id() != id);
                }
                if let Some((name, probe, result)) = attempt {
                    let path = paths.entry(name.clone()).or_default();
                    finished(&control, &name, path, probe, result, &status);
                    // The new link's events may have come before its attempt ended.
                    if path.live.is_some() {
                        resync(&control, &mut paths);
                        forget_gone(&mut paths, &status);
                    }
                }
            }
        }
        if outgoing.is_closed() {
            return;
        }
        let now = Instant::now();
        if names_at.is_none_or(|t| now - t >= PATHS_EVERY) {
            names_at = Some(now);
            match connector.paths().await {
                Ok(found) => {
                    (names, listed) = (found, true);
                    retier(&control, &connector, &names, &paths);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list paths");
                    status.lock().last_error = Some(Arc::new(AttemptError::Paths(e)));
                }
            }
        }

        // A new connector's paths listed, and one of them up and not stalled, of the best
        // tier it names (not only a backup): the others go.
        if replaced && listed && best_tier_up(&connector, &names, &paths) {
            replaced = false;
            retire_unnamed(&control, &names, &mut paths, &status);
        }
        // The links' acknowledgement counts, looked up at most once a pass, and only while some
        // link is stalled.
        let mut stats = None;
        for name in &names {
            let path = paths.entry(name.clone()).or_default();
            let probe = match (&path.live, path.stalled_since) {
                (None, _) => {
                    let waiting = path.retry.is_some_and(|(at, _)| at > now);
                    if !path.attempts.is_empty() || waiting {
                        continue;
                    }
                    false
                }
                (Some(_), Some(since)) => {
                    let stats = stats.get_or_insert_with(|| control.links());
                    if path.live_delivers(stats, now) {
                        // Probes started while it seemed silent would only replace it.
                        for attempt in path.attempts.drain(..) {
                            attempt.abort();
                        }
                        continue;
                    }
                    let due = path.next_probe.is_none_or(|t| now >= t);
                    if now - since < PROBE_AFTER || !due {
                        continue;
                    }
                    path.next_probe = Some(now + PROBE_EVERY);
                    true
                }
                (Some(_), None) => continue,
            };
            let open = open_link(
                connector.clone(),
                name.clone(),
                outgoing.clone(),
                status.clone(),
            );
            let name2 = name.clone();
            let handle = running.spawn(async move {
                let result = if probe {
                    let timed_out = AttemptError::ProbeTimeout {
                        path: name2.clone(),
                    };
                    tokio::time::timeout(PROBE_TIMEOUT, open)
                        .await
                        .unwrap_or(Err(timed_out))
                } else {
                    open.await
                };
                (name2, probe, result)
            });
            running_path.insert(handle.id(), name.clone());
            paths.entry(name.clone()).or_default().attempts.push(handle);
        }
        let mut status = status.lock();
        status.paths = names.len();
        status.attempts = running.len();
    }
}

/// Removes the links (gracefully) and stops the attempts of the paths a new connector does
/// not name.
fn retire_unnamed(
    control: &liag_tokio::Control,
    names: &[String],
    paths: &mut HashMap<String, Path>,
    status: &Mutex<Status>,
) {
    paths.retain(|name, path| {
        if names.contains(name) {
            return true;
        }
        for attempt in path.attempts.drain(..) {
            attempt.abort();
        }
        if let Some(live) = &path.live {
            tracing::debug!(path = %name, "path no longer configured; removing its link");
            control.remove_link(live.id);
        }
        status.lock().kept.remove(name);
        false
    });
}

/// Takes the links that went out of the link filter's view, and lets the paths the filter
/// refused try again at once: without those links, its answer may differ. A path's entry in
/// the view goes only with the link that made it: a newer link on the path keeps its own.
fn forget_gone(paths: &mut HashMap<String, Path>, status: &Mutex<Status>) {
    if paths.values().all(|p| p.gone.is_none()) {
        return;
    }
    let mut forgot = false;
    let mut status = status.lock();
    for (name, path) in paths.iter_mut() {
        let Some(attempt) = path.gone.take() else {
            continue;
        };
        if status.kept.get(name).is_some_and(|(a, _)| *a == attempt) {
            status.kept.remove(name);
            forgot = true;
        }
    }
    if !forgot {
        return;
    }
    status.generation += 1;
    drop(status);
    for path in paths.values_mut().filter(|p| p.filtered) {
        (path.filtered, path.retry) = (false, None);
    }
}

/// The path whose live link is `link`.
fn path_of(paths: &mut HashMap<String, Path>, link: LinkId) -> Option<&mut Path> {
    paths
        .values_mut()
        .find(|p| p.live.as_ref().is_some_and(|live| live.id == link))
}

/// Sets every path's link from the connection's list: gone, stalled or working.
fn resync(control: &liag_tokio::Control, paths: &mut HashMap<String, Path>) {
    let stats = control.links();
    for path in paths.values_mut() {
        let live = path.live.as_ref().map(|live| live.id);
        let state = live.and_then(|id| stats.iter().find(|s| s.id == id).map(|s| s.state));
        path.link_is(state);
        if let Some(id) = live {
            path.note_stall_start(acks_of(&stats, id));
        }
    }
}

/// Whether `path` has a live link that is not stalled, or is stalled and delivers (see
/// [`Path::delivers`]).
fn live_link_delivers(control: &liag_tokio::Control, path: &mut Path) -> bool {
    match (&path.live, path.stalled_since) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(_), Some(_)) => path.live_delivers(&control.links(), Instant::now()),
    }
}

/// Takes in the outcome of an attempt on `path`.
fn finished(
    control: &liag_tokio::Control,
    name: &str,
    path: &mut Path,
    probe: bool,
    result: Result<Opened, AttemptError>,
    status: &Mutex<Status>,
) {
    match result {
        Ok(Opened::Filtered { generation, .. }) if generation != status.lock().generation => {
            // A link went while this one was measured: the refusal is void, try again.
            tracing::debug!(path = %name, "link filter's refusal outdated; trying again");
            (path.filtered, path.retry) = (false, None);
        }
        Ok(Opened::Filtered { others, .. }) => {
            let now = Instant::now();
            if path.warned_at.is_none_or(|t| now - t >= FILTERED_BACKOFF) {
                path.warned_at = Some(now);
                tracing::warn!(
                    path = %name,
                    duplicates = ?others,
                    "link refused by the link filter: it duplicates a link already up; \
                     tried again when a link goes (a TCP connector keeps several links over \
                     one interface with TcpLinkFilter::None)"
                );
            }
            status.lock().last_error = Some(Arc::new(AttemptError::AddLink {
                path: name.to_string(),
                error: AddLinkError::Filtered,
            }));
            path.filtered = true;
            path.retry = Some((now + FILTERED_BACKOFF, FILTERED_BACKOFF));
        }
        Ok(Opened::Link(id, ..)) if probe && live_link_delivers(control, path) => {
            // A probe that got through as the stalled link came back by itself, or as its
            // messages were acknowledged again: the link that carries data and has been
            // measured stays, the spare goes.
            tracing::debug!(path = %name, "probe's link up after the stalled link delivered again; dropping it");
            control.drop_link(id);
        }
        Ok(Opened::Link(id, attempt, remote)) => {
            tracing::debug!(path = %name, probe, "link up");
            // Of two links that passed the filter on this path, the view keeps the live one.
            status
                .lock()
                .kept
                .insert(name.to_string(), (attempt, remote));
            let now = Instant::now();
            let fresh = Live {
                id,
                attempt,
                since: now,
            };
            if let Some(old) = path.live.replace(fresh) {
                control.drop_link(old.id);
            }
            // The path works: the other probes on it have nothing left to find.
            path.stop_probing();
            // Reopened at once if the link lives long, after the next wait if not.
            path.retry = path.retry.map(|(_, backoff)| (now, backoff));
            path.filtered = false;
        }
        // A probe failing says only that the path is still silent; the next one is due soon.
        // Unless the server takes no more links: its answer will not change soon.
        Err(e) if probe => {
            tracing::trace!(path = %name, error = %e, "probe failed");
            if refused_as_one_too_many(&e) {
                path.next_probe = Some(Instant::now() + REFUSED_BACKOFF);
            }
        }
        Err(e) => {
            let backoff = if refused_as_one_too_many(&e) {
                if path.retry.is_none_or(|(_, b)| b < REFUSED_BACKOFF) {
                    tracing::info!(path = %name, "the server takes no more links; retrying in a minute");
                }
                REFUSED_BACKOFF
            } else {
                next_backoff(path.retry)
            };
            tracing::debug!(path = %name, error = %e, ?backoff, "link attempt failed");
            status.lock().last_error = Some(Arc::new(e));
            path.retry = Some((Instant::now() + backoff, backoff));
        }
    }
}

/// Whether the server refused a link because the connection has as many as it takes.
fn refused_as_one_too_many(e: &AttemptError) -> bool {
    matches!(
        e,
        AttemptError::AddLink {
            error: AddLinkError::Refused(RefusedReason::LinkRefused),
            ..
        }
    )
}

/// Whether a path of the best tier among `names` has a link up and not stalled.
fn best_tier_up(
    connector: &Arc<dyn Connector>,
    names: &[String],
    paths: &HashMap<String, Path>,
) -> bool {
    let best = names.iter().map(|n| connector.link_config(n).tier).min();
    names.iter().any(|n| {
        Some(connector.link_config(n).tier) == best
            && paths
                .get(n)
                .is_some_and(|p| p.live.is_some() && p.stalled_since.is_none())
    })
}

/// Gives the live links on the paths `names` lists the tier, rate cap and allowance the
/// connector gives their paths, where they differ (a reload changed them). Only this end follows at once: the
/// peer keeps the tier the link's handshake told it.
fn retier(
    control: &liag_tokio::Control,
    connector: &Arc<dyn Connector>,
    names: &[String],
    paths: &HashMap<String, Path>,
) {
    let live = control.links();
    for name in names {
        let Some(id) = paths.get(name).and_then(|p| p.live.as_ref()).map(|l| l.id) else {
            continue;
        };
        let config = connector.link_config(name);
        let Some(link) = live.iter().find(|l| l.id == id) else {
            continue;
        };
        if link.tier != config.tier {
            control.set_link_tier(id, config.tier);
        }
        if link.max_rate != config.max_rate {
            control.set_link_max_rate(id, config.max_rate);
        }
        if link.meter != config.meter {
            control.set_link_meter(id, config.meter);
        }
    }
}

/// Opens a transport on `path` and adds it to the connection as a link.
///
/// The link filter sees the links up at the moment the server accepted this one, and a link
/// it keeps joins that view at once: of two links racing through their handshakes, the second
/// is measured against the first.
fn open_link(
    connector: Arc<dyn Connector>,
    path: String,
    outgoing: Outgoing,
    status: Arc<Mutex<Status>>,
) -> BoxFuture<'static, Result<Opened, AttemptError>> {
    Box::pin(async move {
        let (link, user_data) = match connector.open(&path).await {
            Ok(opened) => opened,
            Err(error) => return Err(AttemptError::Open { path, error }),
        };
        let attempt = {
            let mut status = status.lock();
            status.attempts_started += 1;
            status.attempts_started
        };
        let (mut remote, mut refused) = (UserData::empty(), None);
        let config = connector.link_config(&path);
        let added = outgoing
            .add_packet_link_with(link, path.clone(), user_data, config, |welcome| {
                let mut status = status.lock();
                let others: Vec<(String, UserData)> = status
                    .kept
                    .iter()
                    .filter(|(other, _)| **other != path)
                    .map(|(other, (_, ud))| (other.clone(), ud.clone()))
                    .collect();
                let keep = connector.keep(&path, welcome, &others);
                if keep {
                    remote = welcome.user_data.clone();
                    status.kept.insert(path.clone(), (attempt, remote.clone()));
                } else {
                    refused = Some(Opened::Filtered {
                        others: others.into_iter().map(|(p, _)| p).collect(),
                        generation: status.generation,
                    });
                }
                keep
            })
            .await;
        match (added, refused) {
            (Ok(id), _) => Ok(Opened::Link(id, attempt, remote)),
            (Err(_), Some(refused)) => Ok(refused),
            (Err(error), None) => Err(AttemptError::AddLink { path, error }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stalled_at(t0: Instant, acks: u64) -> Path {
        let mut path = Path::default();
        path.link_is(Some(LinkState::Stalled));
        path.stalled_since = Some(t0);
        path.note_stall_start(Some(acks));
        path
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_stalled_link_with_nothing_acknowledged_counts_as_silent_at_once() {
        let t0 = Instant::now();
        let mut path = stalled_at(t0, 10);
        assert!(!path.delivers(10, t0 + PROBE_AFTER));
    }

    #[test]
    fn a_stalled_link_still_acknowledged_is_not_probed_until_that_stops() {
        let t0 = Instant::now();
        let mut path = stalled_at(t0, 10);
        // Acknowledgements came after the stall began: the path delivers, late.
        assert!(path.delivers(15, t0 + ms(150)));
        assert!(path.delivers(20, t0 + ms(250)));
        // None since: for less than PROBE_AFTER, then for that long.
        assert!(path.delivers(20, t0 + ms(350)));
        assert!(!path.delivers(20, t0 + ms(250) + PROBE_AFTER));
    }

    #[test]
    fn without_a_count_from_the_stall_s_start_the_first_look_is_the_baseline() {
        let t0 = Instant::now();
        let mut path = Path::default();
        path.link_is(Some(LinkState::Stalled));
        path.stalled_since = Some(t0);
        assert!(!path.delivers(10, t0 + PROBE_AFTER));
        assert!(path.delivers(11, t0 + PROBE_AFTER + ms(50)));
    }

    #[test]
    fn a_stall_that_ends_forgets_its_count() {
        let t0 = Instant::now();
        let mut path = stalled_at(t0, 10);
        assert!(path.delivers(15, t0 + ms(150)));
        path.link_is(Some(LinkState::Active));
        assert_eq!(path.acked, None);
        // Acknowledged while active; the next stall counts from its own start.
        let t1 = t0 + ms(5000);
        path.link_is(Some(LinkState::Stalled));
        path.stalled_since = Some(t1);
        path.note_stall_start(Some(40));
        assert!(!path.delivers(40, t1 + PROBE_AFTER));
    }
}
