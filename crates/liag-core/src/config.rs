//! Connection configuration: buffers, payload size, timeouts.

use core::num::NonZeroU32;
use std::time::Duration;

use crate::budget::MemoryBudget;

/// How a connection behaves. Only `recv_buffer` is sent to the peer; the rest is local.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Config {
    /// Largest number of received payload bytes buffered before the application reads them.
    /// Announced to the peer as its send window. Default 64 MiB.
    pub recv_buffer: NonZeroU32,
    /// Largest number of payload bytes written by the application and not yet acknowledged
    /// by the peer (queued plus in flight): a memory bound. [`Config::send_queue_time`] also
    /// bounds the queued part, by time. Default 64 MiB.
    pub send_buffer: usize,
    /// About how long written data waits in liag before a link takes it: a connection queues
    /// no more than its usable primary and secondary links (its backup links, when no other
    /// is usable) carry in this time at their estimated rates, so a writer feels the
    /// network's pace rather than filling the send buffer, and what it writes next, such as
    /// a small message behind a bulk transfer, waits milliseconds rather than seconds.
    ///
    /// Links whose paths' delays differ add 1.5 times the difference, at most 500 ms (120 ms
    /// for a link of 80 ms round trip beside one of nearly 0): the nearer links must have
    /// that much to deliver before the farther one is worth using. The queue always takes
    /// two of the largest payloads a link takes (see [`Config::max_payload`]; two of 32 KiB
    /// while no link is usable), which on a slow link last longer (two 1 KiB payloads are
    /// 16 ms at 1 Mbit/s); and a message written with
    /// [`Connection::write_message`](crate::Connection::write_message) finds room for up to
    /// `max_payload` once what was written before it is acknowledged. While a usable
    /// secondary link exists, the queue holds up to three times what the primary links
    /// deliver in [`crate::SECONDARY_HORIZON`] (300 ms of their
    /// rate), since secondary links open only on such a backlog: a message behind a bulk
    /// transfer then waits up to that long. A smaller value cuts the wait but wakes the
    /// writer more often (it is woken when half the queue is left, or the paths' spread's
    /// part of it if that is more); a larger one trades wait for slack. `Duration::ZERO`
    /// leaves the spread and the floors (and, where the paths' delays differ, wakes a writer
    /// for each payload the links take); `Duration::MAX` leaves only the send buffer (a
    /// configuration file has no such value: a long duration, such as `1h`, bounds a
    /// connection with links by little but its send buffer). A library setting: the `liag`
    /// command keeps the default. Default 2 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub send_queue_time: Duration,
    /// Largest Data payload liag sends. Default 32 KiB; never above 8 MiB, nor above half the
    /// receive buffer the first link's peer announces (though not cut below 1 KiB for it;
    /// [`crate::Connection::config`] shows the value in use), and, per link, cut to what the
    /// link transmits in 1 ms (at least 1 KiB), so the receiver never waits long for one
    /// payload. That 1 ms is at the highest rate the link showed over the last 10-20 s, and
    /// at most 4 ms at its rate now: a sender short of CPU delivers less with smaller
    /// payloads, and payloads cut to what it delivered would shrink round after round. A
    /// message written with
    /// [`Connection::write_message`](crate::Connection::write_message) of up to `max_payload`
    /// goes in one payload all the same.
    pub max_payload: usize,
    /// Most reliable sequence numbers outstanding at once; at most 65,536 by the protocol.
    /// Default 65,000, leaving room for control messages.
    pub seq_window: u32,
    /// Shortest time a link may go without acknowledging before liag moves its data to the
    /// other links, and the least an acknowledgement may come late beyond the link's rate
    /// before its data counts as overdue and moves too. Default 100 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub ack_timeout_min: Duration,
    /// Longest such time. Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub ack_timeout_max: Duration,
    /// A link idle this long is pinged. Default 15 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub ping_interval: Duration,
    /// A link that does not answer a Ping in this time is dropped. Default 40 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub ping_timeout: Duration,
    /// The connection fails when it has had no working link for this long. Default 90 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub no_link_timeout: Duration,
    /// The same for a connection that has received no data yet, if shorter: a peer that
    /// opens connections and leaves them without links or data cannot keep them long. Default
    /// `None` (`no_link_timeout` applies); a `liag_tokio::Server` fills it in from its
    /// settings where it is `None`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub no_link_timeout_before_data: Option<Duration>,
    /// Most Acks queued on one link; copies beyond it are not acknowledged (the peer
    /// resends), so a peer flooding duplicates cannot grow memory. Default 16,384.
    pub max_queued_acks: usize,
    /// Whether a later link reaching a different server ends the connection. Default true.
    pub disconnect_on_server_id_mismatch: bool,
    /// A byte budget shared with other connections (see [`MemoryBudget`]): what they buffer
    /// together stays within it. Default `None`; a `liag_tokio::Server` gives all its
    /// connections one.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub memory_budget: Option<MemoryBudget>,
    /// Redundant sending, for traffic where delay matters more than bandwidth (calls, games,
    /// remote desktops): each reliable message (Data, and the Consumed and end-of-stream
    /// messages numbered with it) goes on the link the scheduler chose and, as a copy, on the
    /// usable link with the next earliest arrival, when that link has window room (and rate
    /// cap) for it. Copies go on primary and secondary links; on backup links only while
    /// their tier is open. The first copy to arrive is delivered, so a link that stops for a
    /// moment costs nothing while another works. It costs bytes: up to twice the data on the
    /// links ([`crate::LinkStats::copied_bytes`] counts the copies' payload); and on links
    /// that a bulk transfer fills, its copies take the room the other links had, down to the
    /// fastest link's rate rather than the links' sum. Any protocol 4 peer receives the
    /// copies correctly: it acknowledges every copy and delivers each message once. This
    /// governs this end's sending; a liag client that sends redundantly asks a liag server,
    /// in each link's handshake, to do the same. Default false.
    pub redundant: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            recv_buffer: NonZeroU32::new(64 << 20).expect("non-zero constant"),
            send_buffer: 64 << 20,
            send_queue_time: Duration::from_millis(2),
            max_payload: 32 << 10,
            seq_window: 65_000,
            ack_timeout_min: Duration::from_millis(100),
            ack_timeout_max: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(40),
            no_link_timeout: Duration::from_secs(90),
            no_link_timeout_before_data: None,
            max_queued_acks: 16_384,
            disconnect_on_server_id_mismatch: true,
            memory_budget: None,
            redundant: false,
        }
    }
}
