//! `--metrics ADDR`: the Prometheus text format on `http://ADDR/metrics`, through the
//! `metrics` facade and its Prometheus exporter. Every second the live connections' links are
//! sampled into gauges and counters; link events are counted as they come.
//!
//! What peers can make the exporter hold is bounded: a closed connection's series are no
//! longer updated and leave after [`IDLE`], at most [`MAX_LINKS`] links are sampled at a
//! time, and link events are counted by interface, not by peer-chosen values.

use metrics::{Label, counter, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use liag_transports::liag_tokio::liag_core::{LinkState, LinkStats, Tier};
use liag_transports::liag_tokio::{Control, LinkEvent, Server};

use super::Connections;

/// How often links are sampled.
const EVERY: Duration = Duration::from_secs(1);
/// Series not updated for this long are dropped (a sample refreshes live ones every second).
const IDLE: Duration = Duration::from_secs(15);
/// The most links sampled at once (a server's connections in the order they opened); the
/// rest are counted in `liag_links_unsampled`.
const MAX_LINKS: usize = 1024;

/// Link events by this host's interface and kind, since the start.
static EVENTS: Mutex<BTreeMap<(String, &'static str), u64>> = Mutex::new(BTreeMap::new());

/// Every state a link can be in, as `liag_link_state` names it.
const STATES: [(LinkState, &str); 5] = [
    (LinkState::Active, "active"),
    (LinkState::Stalled, "stalled"),
    (LinkState::Testing, "testing"),
    (LinkState::Blocked, "blocked"),
    (LinkState::Disconnecting, "disconnecting"),
];

/// Every tier a link can have, as `liag_link_tier` names it.
const TIERS: [Tier; 3] = [Tier::Primary, Tier::Secondary, Tier::Backup];

/// Serves metrics on `addr` for `command` (`tunnel-server`, ...): its connections and, for
/// a server, how its handshakes ended.
pub(crate) fn serve(
    addr: SocketAddr,
    command: &'static str,
    connections: &Connections,
    server: Option<Server>,
) -> io::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .idle_timeout(MetricKindMask::ALL, Some(IDLE))
        .install()
        .map_err(|e| io::Error::other(format!("cannot serve metrics on {addr}: {e}")))?;
    say!("liag: metrics on http://{addr}/metrics");
    describe();
    connections.count_events();
    let connections = connections.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sample(command, &connections, server.as_ref());
        }
    });
    Ok(())
}

/// `(interface, remote)` of a link's tag: `eth0 -> 192.0.2.1:5800` (a link this side made)
/// and `eth0 <- 198.51.100.7:40112` (one it took) name both; other tags the remote end only.
fn interface_and_remote(tag: &str) -> (String, String) {
    match tag.split_once(" -> ").or_else(|| tag.split_once(" <- ")) {
        Some((interface, remote)) => (interface.to_string(), remote.to_string()),
        None => (String::new(), tag.to_string()),
    }
}

/// The `# HELP` of every metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!("liag_connections_open", "Aggregated connections open now.");
    describe_counter!(
        "liag_connections_opened_total",
        "Aggregated connections opened since the start."
    );
    describe_gauge!(
        "liag_link_state",
        "1 for the link's state (active, stalled, testing, blocked, disconnecting), 0 for the others."
    );
    describe_gauge!(
        "liag_link_tier",
        "1 for the link's tier (primary, secondary, backup), 0 for the others."
    );
    describe_gauge!(
        "liag_link_rtt_seconds",
        Unit::Seconds,
        "The link's smoothed round-trip time."
    );
    describe_gauge!(
        "liag_link_min_rtt_seconds",
        Unit::Seconds,
        "The link's smallest recent round-trip time."
    );
    describe_gauge!(
        "liag_link_rate_bytes_per_second",
        Unit::Bytes,
        "The link's estimated delivery rate, in bytes per second."
    );
    describe_gauge!(
        "liag_link_window_bytes",
        Unit::Bytes,
        "The most payload bytes the link may have in flight now."
    );
    describe_gauge!(
        "liag_link_inflight_bytes",
        Unit::Bytes,
        "Payload bytes sent on the link and not yet acknowledged."
    );
    describe_counter!(
        "liag_link_sent_bytes_total",
        Unit::Bytes,
        "Bytes sent on the link (messages, without framing)."
    );
    describe_counter!(
        "liag_link_received_bytes_total",
        Unit::Bytes,
        "Bytes received on the link (messages, without framing)."
    );
    describe_counter!(
        "liag_link_resent_bytes_total",
        Unit::Bytes,
        "Payload bytes the link carried again after another link failed, stalled or left."
    );
    describe_counter!(
        "liag_link_copied_bytes_total",
        Unit::Bytes,
        "Payload bytes the link carried as redundant copies of messages another link carried."
    );
    describe_gauge!(
        "liag_link_max_rate_bytes_per_second",
        "The link's rate cap in bytes per second (--max-rate); no sample for a link without one."
    );
    describe_gauge!(
        "liag_link_over_allowance",
        "1 while the link is blocked for its interface's allowance (--cap: little or nothing \
         left while another link works), 0 otherwise; no sample for a link without one."
    );
    describe_gauge!(
        "liag_allowance_used_bytes",
        Unit::Bytes,
        "Bytes counted against the interface's allowance (--cap) this period, sent and \
         received, over every connection."
    );
    describe_gauge!(
        "liag_allowance_limit_bytes",
        Unit::Bytes,
        "The interface's allowance per period (--cap)."
    );
    describe_counter!(
        "liag_link_events_total",
        "Links that came up (event=up) or went down (event=down), by local interface."
    );
    describe_gauge!(
        "liag_links_unsampled",
        "Links left out of the per-link series, beyond the most sampled at once (1024)."
    );
    describe_counter!(
        "liag_handshakes_accepted_total",
        "Incoming links whose handshake joined a connection."
    );
    describe_counter!(
        "liag_handshakes_refused_total",
        "Incoming links that did not join, by reason."
    );
}

fn link_labels(command: &'static str, connection: u64, link: &LinkStats) -> Vec<Label> {
    let (interface, remote) = interface_and_remote(&link.tag);
    vec![
        Label::new("command", command),
        Label::new("connection", connection.to_string()),
        Label::new("link", link.id.number().to_string()),
        Label::new("tag", link.tag.clone()),
        Label::new("interface", interface),
        Label::new("remote", remote),
    ]
}

fn sample(command: &'static str, connections: &Connections, server: Option<&Server>) {
    let live = connections.snapshot();
    gauge!("liag_connections_open", "command" => command).set(live.len() as f64);
    counter!("liag_connections_opened_total", "command" => command).absolute(connections.opened());
    let (mut sampled, mut unsampled) = (0usize, 0usize);
    for entry in &live {
        let links = entry.control.links();
        if sampled + links.len() > MAX_LINKS {
            unsampled += links.len();
            continue;
        }
        sampled += links.len();
        for link in links {
            let labels = link_labels(command, entry.id, &link);
            for (state, name) in STATES {
                let mut with_state = labels.clone();
                with_state.push(Label::new("state", name));
                gauge!("liag_link_state", with_state).set(f64::from(u8::from(link.state == state)));
            }
            for tier in TIERS {
                let mut with_tier = labels.clone();
                with_tier.push(Label::new("tier", tier.as_str()));
                gauge!("liag_link_tier", with_tier).set(f64::from(u8::from(link.tier == tier)));
            }
            gauge!("liag_link_rtt_seconds", labels.clone()).set(link.rtt.as_secs_f64());
            gauge!("liag_link_min_rtt_seconds", labels.clone()).set(link.min_rtt.as_secs_f64());
            gauge!("liag_link_rate_bytes_per_second", labels.clone()).set(link.rate);
            gauge!("liag_link_window_bytes", labels.clone()).set(link.window as f64);
            gauge!("liag_link_inflight_bytes", labels.clone()).set(link.inflight as f64);
            counter!("liag_link_sent_bytes_total", labels.clone()).absolute(link.sent_bytes);
            counter!("liag_link_received_bytes_total", labels.clone())
                .absolute(link.received_bytes);
            counter!("liag_link_resent_bytes_total", labels.clone()).absolute(link.resent_bytes);
            if let Some(cap) = link.max_rate {
                gauge!("liag_link_max_rate_bytes_per_second", labels.clone()).set(cap as f64);
            }
            if link.meter.is_some() {
                gauge!("liag_link_over_allowance", labels.clone())
                    .set(f64::from(u8::from(link.over_allowance)));
            }
            counter!("liag_link_copied_bytes_total", labels).absolute(link.copied_bytes);
        }
    }
    gauge!("liag_links_unsampled", "command" => command).set(unsampled as f64);
    for allowance in crate::allowance::shown() {
        let labels = [
            ("command", command.to_string()),
            ("interface", allowance.interface),
            ("period", allowance.period),
        ];
        gauge!("liag_allowance_used_bytes", &labels).set(allowance.used as f64);
        gauge!("liag_allowance_limit_bytes", &labels).set(allowance.limit as f64);
    }
    let events = EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((interface, event), n) in events {
        counter!(
            "liag_link_events_total",
            "command" => command,
            "interface" => interface,
            "event" => event
        )
        .absolute(n);
    }
    if let Some(server) = server {
        let h = server.handshake_stats();
        counter!("liag_handshakes_accepted_total", "command" => command).absolute(h.accepted);
        for (reason, n) in [
            ("not_listening", h.refused_not_listening),
            ("connection_refused", h.refused_connection),
            ("link_refused", h.refused_link),
            ("closed", h.refused_closed),
            ("timeout", h.timed_out),
            ("failed", h.failed),
            ("source_limit", h.over_source_limit),
            ("abandoned", h.abandoned),
        ] {
            counter!("liag_handshakes_refused_total", "command" => command, "reason" => reason)
                .absolute(n);
        }
    }
}

/// Counts a connection's link events (`liag_link_events_total`) until it ends.
pub(crate) async fn count_link_events(control: Control) {
    // Taken together, so no link is counted twice. A connection that ended before this
    // subscription is caught by the check after it, and one that ends later by `closed`.
    let (links, mut events) = control.links_and_events();
    if control.result().is_some() {
        return;
    }
    let mut tags: std::collections::HashMap<_, _> =
        links.into_iter().map(|l| (l.id, l.tag)).collect();
    // Labelled by this host's interface only: a peer opening and closing links would make a
    // series per connection or remote port. Counted here, published by each sample (so the
    // idle timeout never drops a counter that is merely quiet).
    let count = |tag: &str, event: &'static str| {
        let (interface, _) = interface_and_remote(tag);
        let mut events = EVENTS.lock().unwrap_or_else(PoisonError::into_inner);
        *events.entry((interface, event)).or_default() += 1;
    };
    for tag in tags.values() {
        count(tag, "up");
    }
    let closed = control.closed();
    tokio::pin!(closed);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = &mut closed => return,
        };
        match event {
            Ok(LinkEvent::Added { link }) => {
                let tag = control
                    .links()
                    .into_iter()
                    .find(|l| l.id == link)
                    .map(|l| l.tag)
                    .unwrap_or_default();
                count(&tag, "up");
                tags.insert(link, tag);
            }
            Ok(LinkEvent::Removed { link, .. }) => {
                let tag = tags.remove(&link).unwrap_or_default();
                count(&tag, "down");
            }
            Ok(LinkEvent::Closed(_)) | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_interface_and_remote() {
        assert_eq!(
            interface_and_remote("eth0 -> 192.0.2.1:5800"),
            ("eth0".into(), "192.0.2.1:5800".into())
        );
        assert_eq!(
            interface_and_remote("lo <- 127.0.0.1:42292"),
            ("lo".into(), "127.0.0.1:42292".into())
        );
        assert_eq!(
            interface_and_remote("198.51.100.7:40112"),
            (String::new(), "198.51.100.7:40112".into())
        );
    }
}
