//! Timers: acknowledgement timeouts and due times, pings, link tests, and the no-link
//! timeout, as one table.

use std::time::Duration;

use super::Connection;
use crate::error::{ConnectionError, LinkError};
use crate::link::{Goodbye, LinkId};
use crate::recheck::Recheck;
use crate::time::Time;

/// How long a testing link may stay silent, at least, before it counts as stalled: a slow
/// path's test takes a while (16 KiB at 400 kbit/s is a third of a second), a silent one
/// should be probed. The patience is the larger of this and the link's ack timeout, counted
/// from the later of the test's Ping and the last bytes received on the link.
const TEST_PATIENCE: Duration = Duration::from_secs(1);

/// The kinds of deadline a connection keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The oldest message in flight on a link went unacknowledged for the ack timeout (from
    /// the smoothed round trip and its variation, within the configured floor and cap): the
    /// link is stalled.
    Ack(LinkId),
    /// The oldest message in flight on a link is overdue against the rate the link had when
    /// it went out, its test's or a measured one (`Link::sent_entry`): the test misjudged the
    /// link, or the link slowed to a crawl.
    Overdue(LinkId),
    /// A link's Ping went unanswered too long: the link is dropped.
    PingTimeout(LinkId),
    /// A link's Ping could not even be sent for that long: its transport takes nothing, and
    /// the link is dropped.
    SendTimeout(LinkId),
    /// A link has been quiet: ping it.
    KeepAlive(LinkId),
    /// This side's Goodbye on a link went unanswered for the ping timeout: the link is
    /// dropped (a peer that keeps sending on it would otherwise hold it for ever).
    GoodbyeTimeout(LinkId),
    /// A link test's Pong is overdue and nothing else came on the link either: the link
    /// counts as stalled (so a keeper probes its path) while the test goes on.
    TestOverdue(LinkId),
    /// A link test's lead Pong came after its closing Ping left, and the closing Pong has not
    /// followed: the peer may have answered both Pings with one Pong, and a fresh Ping asks
    /// for it.
    TestReping(LinkId),
    /// The Pong an ended test's fresh Ping may have owed is no longer awaited: a new test may
    /// lead.
    StrayPongGone(LinkId),
    /// A link at its rate cap may take a payload again, and data waits: the driver polls
    /// the links once more.
    Paced(LinkId),
    /// The oldest redundant copy on a link went unacknowledged for the link's ack timeout.
    CopyAck(LinkId),
    /// A link whose test after a stall found it far slower than before is due for another
    /// test (`crate::recheck`).
    Recheck(LinkId),
    /// No working link for too long: the connection fails.
    NoLink,
}

impl Connection {
    /// Every pending deadline.
    fn timers(&self) -> impl Iterator<Item = (Timer, Time)> + '_ {
        let config = &self.config;
        let waiting = self.send.queued > 0 || !self.send.resend.is_empty();
        let links = self.links.iter().flat_map(move |l| {
            let paced = (l.pacer.as_ref())
                .filter(|_| waiting && l.usable())
                .and_then(|p| p.ready_at())
                .map(|at| (Timer::Paced(l.id), at));
            let recheck = Recheck::next_at(&l.recheck)
                .filter(|_| l.usable())
                .map(|at| (Timer::Recheck(l.id), at));
            let copy_ack = (l.copies.oldest_sent())
                .filter(|_| l.usable())
                .map(|at| (Timer::CopyAck(l.id), at + l.ack_timeout(config)));
            let ack = l.inflight.front().filter(|_| !l.stalled).map(|sent| {
                let timeout = sent.at + l.ack_timeout(config);
                match sent.due {
                    Some(due) if due < timeout => (Timer::Overdue(l.id), due),
                    _ => (Timer::Ack(l.id), timeout),
                }
            });
            let ping = match (l.ping_sent, l.ping_wanted) {
                (Some(at), _) => (Timer::PingTimeout(l.id), at + config.ping_timeout),
                (None, Some(at)) => (Timer::SendTimeout(l.id), at + config.ping_timeout),
                (None, None) => {
                    let interval = l.config.ping_interval.unwrap_or(config.ping_interval);
                    (Timer::KeepAlive(l.id), l.last_sent + interval)
                }
            };
            let test = l
                .test
                .filter(|_| !l.stalled)
                .and_then(|t| t.waiting_since(l.ping_sent))
                .map(|at| {
                    // Overdue only while the link is silent: a peer testing the link itself
                    // (aggligator 0.9 sends until its socket blocks) delays the Pongs behind
                    // its own filler, but its bytes show the path works.
                    let patience = l.ack_timeout(config).max(TEST_PATIENCE);
                    (Timer::TestOverdue(l.id), at.max(l.last_received) + patience)
                });
            let reping = l
                .test
                .and_then(|t| t.reping_at(l.ping_sent))
                .map(|at| (Timer::TestReping(l.id), at));
            let stray = l
                .stray_pong_until
                .map(|at| (Timer::StrayPongGone(l.id), at));
            let goodbye = match l.goodbye {
                Goodbye::Local { sent: Some(at) } => {
                    Some((Timer::GoodbyeTimeout(l.id), at + config.ping_timeout))
                }
                _ => None,
            };
            ack.into_iter()
                .chain(paced)
                .chain(copy_ack)
                .chain(Some(ping))
                .chain(goodbye)
                .chain(test)
                .chain(reping)
                .chain(stray)
                .chain(recheck)
        });
        let limit = match self.config.no_link_timeout_before_data {
            Some(before_data) if !self.received_data => {
                before_data.min(self.config.no_link_timeout)
            }
            _ => self.config.no_link_timeout,
        };
        let no_link = self
            .no_link_since
            .map(|since| (Timer::NoLink, since + limit));
        links.chain(no_link)
    }

    /// When [`Connection::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.closed.is_some() {
            return None;
        }
        self.timers().map(|(_, at)| at).min()
    }

    /// Acts on every deadline that has passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.closed.is_some() {
            return;
        }
        let due: Vec<Timer> = self
            .timers()
            .filter(|&(_, at)| at <= now)
            .map(|(timer, _)| timer)
            .collect();
        for timer in due {
            match timer {
                Timer::Ack(link) => self.stall(now, link),
                Timer::Overdue(link) => self.overdue(now, link),
                Timer::PingTimeout(link) => self.fail_link(now, link, LinkError::PingTimeout),
                Timer::GoodbyeTimeout(link) => self.fail_link(now, link, LinkError::GoodbyeTimeout),
                Timer::SendTimeout(link) => self.fail_link(now, link, LinkError::SendTimeout),
                Timer::KeepAlive(link) => {
                    if let Some(l) = self.link_mut(link) {
                        l.ping_wanted.get_or_insert(now);
                    }
                }
                Timer::TestOverdue(link) => {
                    if let Some(l) = self.link_mut(link) {
                        tracing::debug!(%link, "link test overdue");
                        l.stalled = true;
                    }
                    self.end_if_linkless();
                }
                Timer::TestReping(link) => {
                    if let Some(l) = self.link_mut(link) {
                        l.reping_test(now);
                    }
                }
                Timer::StrayPongGone(link) => {
                    if let Some(l) = self.link_mut(link) {
                        l.stray_pong_until = None;
                    }
                }
                Timer::Paced(link) => {
                    // Refilled, the bucket sets no timer until the link takes a payload.
                    if let Some(pacer) = self.link_mut(link).and_then(|l| l.pacer.as_mut()) {
                        pacer.refill(now);
                    }
                }
                Timer::CopyAck(link) => self.copies_overdue(now, link),
                Timer::Recheck(link) => self.recheck(now, link),
                Timer::NoLink => self.close(Err(ConnectionError::NoLinksTimeout)),
            }
        }
        self.refresh_working(now);
    }

    /// A link's payload is overdue against its rate (its test's or a measured one): the link
    /// stalls like one whose acknowledgements stopped, unless no other link could take its
    /// data, where a stall would only hold the data back for a test. Then its due times are
    /// dropped, and the rate estimate, lowered by the slower intervals, follows the link.
    ///
    /// A backup link does not count as one that could take the data of a primary or secondary
    /// link: a primary link that fell far behind its rate is no reason to open the backup
    /// tier. Without another link, each payload sent afterwards gets a due time again, and
    /// each is dropped the same way when it comes.
    fn overdue(&mut self, now: Time, link: LinkId) {
        let own = self
            .links
            .iter()
            .find(|l| l.id == link)
            .map(|l| l.config.tier);
        let could_take = |l: &crate::link::Link| {
            l.id != link
                && l.usable()
                && l.config.tier <= own.unwrap_or_default().max(crate::Tier::Secondary)
        };
        if self.links.iter().any(could_take) {
            tracing::debug!(%link, "link far slower than its rate");
            self.stall(now, link);
            if let Some(l) = self.link_mut(link) {
                l.overdue_once = true;
            }
        } else if let Some(l) = self.link_mut(link) {
            for sent in &mut l.inflight {
                sent.due = None;
            }
        }
    }

    /// A link whose test after a stall found it far slower than before is due for another
    /// test, unless its rate estimate has come back by itself. What it has in flight stays
    /// there; no new data goes on it until the test ends. A link that is no longer usable
    /// (stalled or under test again by now: its own test will decide) is not tested. Nor,
    /// for now, is the only usable link: it carries all the data, so its acknowledgements
    /// measure it, and a test would be its Ping alone, which measures no rate; the test is
    /// put off by a gap, in case another link comes back.
    fn recheck(&mut self, now: Time, link: LinkId) {
        let size = self.test_size(link);
        if let Some(l) = self.link_mut(link).filter(|l| l.usable()) {
            if size == 0 {
                l.postpone_recheck(now);
            } else if l.start_recheck(now) {
                tracing::debug!(%link, "link tested again");
                l.start_test(size, now);
            }
        }
    }

    /// A link stopped acknowledging: its data moves to the others at once, it gets a small
    /// window, and a link test measures it; the test's Pong brings it back. With no other
    /// link to carry data the test is its Ping alone.
    pub(super) fn stall(&mut self, now: Time, link: LinkId) {
        self.requeue_link(link);
        let size = self.test_size(link);
        if let Some(l) = self.link_mut(link) {
            tracing::debug!(%link, "link stalled");
            l.note_stall(now);
            l.stalled = true;
            l.window.reset();
            l.start_test(size, now);
        }
        self.end_if_linkless();
    }
}
