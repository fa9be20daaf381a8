//! Metered links ([`LinkConfig::meter`](crate::LinkConfig::meter)): counting what they carry
//! against their allowance, and blocking them once it runs out while another link is usable.

use super::Connection;
use crate::link::{InboundPace, LinkId};
use crate::time::Time;

/// Room for a Data message's header beside its payload (its packet is 9 bytes).
const HEADER_ROOM: u64 = 16;

impl Connection {
    /// Counts `bytes` carried on `link` against its allowance, if it has one, and blocks or
    /// unblocks it as the allowance now stands.
    pub(super) fn charge_allowance(&mut self, now: Time, link: LinkId, bytes: usize) {
        let Some(l) = self.link_mut(link) else {
            return;
        };
        let Some(meter) = &l.config.meter else {
            return;
        };
        meter.charge(bytes as u64);
        l.inbound_pace.note(now, l.received_bytes, l.rtt.smoothed());
        self.refresh_allowance(link);
    }

    /// Blocks `link` if what is left of its allowance is below the link's reserve while
    /// another link is usable, and unblocks it otherwise: no other link is usable, or the
    /// allowance grew or began again.
    ///
    /// The reserve: the link's next payload and its header and, twice over, the most it
    /// carries in a round trip (its window, or what arrived on it in about its last round
    /// trip: what the peer may have under way when the block reaches it). Once the link is
    /// blocked the reserve it was blocked at holds, since little arrives on a blocked link:
    /// a reserve that shrank with it would unblock the link again, and again.
    pub(super) fn refresh_allowance(&mut self, link: LinkId) {
        let max_payload = self.config.max_payload as u64;
        let Some(i) = self.links.iter().position(|l| l.id == link) else {
            return;
        };
        let l = &self.links[i];
        let Some(meter) = &l.config.meter else {
            return;
        };
        let flight = l.window.get().max(l.inbound_pace.per_rtt()) as u64;
        let mut reserve = (max_payload + HEADER_ROOM).saturating_add(flight.saturating_mul(2));
        if l.over_allowance {
            reserve = reserve.max(l.allowance_reserve);
        }
        let (used, limit) = (meter.used(), meter.limit());
        let short = limit.saturating_sub(used) < reserve;
        let blocked = short && self.links.iter().any(|o| o.id != link && o.usable());
        let l = &mut self.links[i];
        if blocked {
            l.allowance_reserve = reserve;
        }
        if l.over_allowance != blocked {
            tracing::debug!(%link, blocked, used, limit, reserve, "metered link");
            l.over_allowance = blocked;
        }
    }

    /// `link` draws on another allowance now, or on none: what it showed of the old one
    /// goes, and every metered link is looked at again.
    pub(super) fn meter_changed(&mut self, link: LinkId) {
        if let Some(l) = self.link_mut(link) {
            l.over_allowance = false;
            l.allowance_reserve = 0;
            l.inbound_pace = InboundPace::new(l.last_received, l.received_bytes);
        }
        self.refresh_allowances();
    }

    /// Refreshes every metered link: another link's usability changed.
    pub(super) fn refresh_allowances(&mut self) {
        for i in 0..self.links.len() {
            if self.links[i].config.meter.is_some() {
                self.refresh_allowance(self.links[i].id);
            }
        }
    }
}
