//! Metered links ([`LinkConfig::meter`](crate::LinkConfig::meter)): counting what they carry
//! against their allowance, and blocking them once it runs out while another link is usable.

use super::Connection;
use crate::link::LinkId;
use crate::time::Time;

/// Room for a Data message's header beside its payload (its packet is 9 bytes).
const HEADER_ROOM: usize = 16;

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

    /// Blocks `link` if its allowance cannot take what may still come on it while another
    /// link is usable, and unblocks it otherwise (every link is usable again, none is left
    /// but this one, or the allowance grew or began again).
    ///
    /// What may still come: the link's next payload and, twice over, the most of what it
    /// sends or receives in a round trip (what the peer may have under way when the block
    /// reaches it).
    pub(super) fn refresh_allowance(&mut self, link: LinkId) {
        let max_payload = self.config.max_payload;
        let Some(i) = self.links.iter().position(|l| l.id == link) else {
            return;
        };
        let l = &self.links[i];
        let Some(meter) = &l.config.meter else {
            return;
        };
        let flight = l.window.get().max(l.inbound_pace.per_rtt());
        let reserve = (max_payload + HEADER_ROOM + 2 * flight) as u64;
        let (used, limit) = (meter.used(), meter.limit());
        let short = limit.saturating_sub(used) < reserve;
        let blocked = short && self.links.iter().any(|o| o.id != link && o.usable());
        let l = &mut self.links[i];
        if l.over_allowance != blocked {
            tracing::debug!(%link, blocked, used, limit, "metered link");
            l.over_allowance = blocked;
        }
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
