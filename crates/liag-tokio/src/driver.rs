//! The driver: one task per connection that runs liag-core and owns its links' I/O.
//!
//! The core owns every link's state. The driver reports each I/O outcome to it (a packet, a
//! transport error, a transport that ended) and acts only on the core's events: it starts
//! closing a link's transport when the core removes the link or the connection closes (or
//! dropping it at once when the link failed, see [`abandons`]), and it publishes those events to the connection's handles ([`crate::LinkEvent`]). It keeps no
//! link state of its own beyond the transports and whether each is being closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Sleep;
use tracing::Instrument;

use liag_core::proto::frame::FrameError;
use liag_core::{Event, LinkError, LinkId, Time};

use crate::codec::BoxLink;
use crate::control::LinkEvent;
use crate::shared::{CLOSE_GRACE, Inner, Shared};

/// Packets taken from one link per turn, so one busy link cannot starve the others.
const RECV_BUDGET: usize = 64;
/// Packets handed to one link per turn.
const SEND_BUDGET: usize = 256;
/// Turns per poll before the task yields to others (and wakes itself if work remains).
const TURNS: usize = 16;

struct LinkIo {
    id: LinkId,
    /// The link's tracing span, inside the connection's.
    span: tracing::Span,
    io: BoxLink,
    /// Since when the core is done with the link: flush what is left, then close the
    /// transport, for at most [`CLOSE_GRACE`].
    closing: Option<tokio::time::Instant>,
    /// Packets were written since the last flush.
    dirty: bool,
}

/// The future behind a connection's task.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    links: Vec<LinkIo>,
    timer: Pin<Box<Sleep>>,
}

/// Starts the driver task of a connection.
pub(crate) fn spawn(shared: Arc<Shared>, span: tracing::Span) {
    let driver = Driver {
        shared,
        links: Vec::new(),
        timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
    };
    tokio::spawn(driver.instrument(span));
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut inner = shared.lock();
        inner.driver = Some(cx.waker().clone());
        let mut changed = false;
        let links_before = this.links.len();
        // Each turn handles what is ready; a turn that used up a budget goes again.
        let mut more = true;
        for _ in 0..TURNS {
            more = this.turn(&mut inner, cx, &mut changed);
            if !more {
                break;
            }
        }
        if more {
            // Work is left (a budget ran out): come back after other tasks had their turn,
            // not when the next timer happens to fire.
            cx.waker().wake_by_ref();
        }
        // A link that came or went gets a sample at once, so its rates count from its start.
        inner.sample(this.links.len() != links_before);
        let done = this.finish_turn(&mut inner, cx);
        drop(inner);
        if changed || done {
            shared.notify_change();
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Driver {
    /// One pass over inputs and outputs; returns whether there may be more to do at once.
    fn turn(&mut self, inner: &mut Inner, cx: &mut Context<'_>, changed: &mut bool) -> bool {
        let mut more = false;
        let now = inner.now();
        for new in std::mem::take(&mut inner.new_links) {
            let stats = inner.conn.link_stats();
            let tag = stats
                .iter()
                .find(|l| l.id == new.id)
                .map_or("", |l| l.tag.as_str());
            let span = tracing::debug_span!("link", id = new.id.number(), %tag);
            span.in_scope(|| tracing::debug!("link attached"));
            inner.publish(LinkEvent::Added { link: new.id });
            self.links.push(LinkIo {
                id: new.id,
                span,
                io: new.io,
                closing: None,
                dirty: false,
            });
            *changed = true;
        }
        for id in std::mem::take(&mut inner.links_to_remove) {
            inner.conn.remove_link(now, id);
        }

        // Packets in.
        for link in self.links.iter_mut().filter(|l| l.closing.is_none()) {
            for i in 0.. {
                if i == RECV_BUDGET {
                    more = true;
                    break;
                }
                match link.io.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(packet))) => inner.conn.handle_packet(now, link.id, packet),
                    Poll::Ready(Some(Err(e))) => {
                        fail(inner, now, link, &e);
                        break;
                    }
                    Poll::Ready(None) => {
                        fail_with(inner, now, link, LinkError::Closed);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }

        // Timers.
        if inner.conn.poll_timeout().is_some_and(|t| t <= now) {
            inner.conn.handle_timeout(now);
        }
        self.drain_events(inner, changed);

        // Packets out: every link that can take them, including a closing link's last ones.
        // A redundant copy queued for a link served earlier in the pass takes one more (a
        // link whose transport is full has its waker registered and wakes the driver later).
        for pass in 0..2 {
            if pass == 1 {
                if !inner.conn.copies_waiting() {
                    break;
                }
                // Links that failed in the first pass start closing, and are left out.
                self.drain_events(inner, changed);
            }
            for link in self
                .links
                .iter_mut()
                .filter(|l| pass == 0 || l.closing.is_none())
            {
                let (sent, error) = send(inner, now, link, cx);
                more |= sent == SEND_BUDGET;
                if let Some(e) = error {
                    fail(inner, now, link, &e);
                    // Its data moved to the resend queue: the links already served this turn
                    // may take it, so go round again.
                    more = true;
                }
            }
        }
        // Sending can end links too (the answer to a peer's Goodbye is a link's last packet).
        self.drain_events(inner, changed);
        more
    }

    /// Acts on the core's events: wakes the application, starts closing the links the core
    /// let go, and publishes link changes to the handles.
    fn drain_events(&mut self, inner: &mut Inner, changed: &mut bool) {
        while let Some(event) = inner.conn.poll_event() {
            match event {
                Event::Readable => {
                    if let Some(w) = inner.reader.take() {
                        w.wake();
                    }
                }
                Event::Writable => {
                    if let Some(w) = inner.writer.take() {
                        w.wake();
                    }
                }
                Event::LinkState { link, state } => {
                    if let Some(l) = self.links.iter().find(|l| l.id == link) {
                        l.span.in_scope(|| tracing::debug!(?state, "link state"));
                    }
                    inner.publish(LinkEvent::State { link, state });
                    *changed = true;
                }
                Event::LinkRemoved { link, error } => {
                    let mut closing = false;
                    if let Some(l) = self.links.iter_mut().find(|l| l.id == link) {
                        l.span.in_scope(|| tracing::debug!(%error, "link removed"));
                        closing = l.closing.is_some();
                        l.closing.get_or_insert_with(tokio::time::Instant::now);
                    }
                    // A link already closing (the connection ended) finishes sending its last
                    // messages, whatever removes it later.
                    if abandons(&error) && !closing {
                        self.links.retain(|l| l.id != link);
                    }
                    inner.publish(LinkEvent::Removed { link, error });
                    *changed = true;
                }
                Event::Closed(result) => {
                    tracing::debug!(?result, "connection closed");
                    inner.wake_app();
                    let now = tokio::time::Instant::now();
                    for l in &mut self.links {
                        l.closing.get_or_insert(now);
                    }
                    inner.publish(LinkEvent::Closed(result));
                    *changed = true;
                }
                _ => {}
            }
        }
    }

    /// Closes finished links, re-arms the timer; returns whether the task is done.
    fn finish_turn(&mut self, inner: &mut Inner, cx: &mut Context<'_>) -> bool {
        let now = tokio::time::Instant::now();
        self.links.retain_mut(|link| {
            let Some(since) = link.closing else {
                return true;
            };
            // A transport that cannot even flush (its peer stopped reading) is dropped after
            // the grace time, whether or not the connection goes on (a TCP link then resets,
            // discarding what it could not send).
            if now - since > CLOSE_GRACE {
                return false;
            }
            // Flush and close; keep polling until the transport is done (an error is done too:
            // the core let go of the link already).
            !matches!(link.io.as_mut().poll_close(cx), Poll::Ready(_))
        });

        if inner.conn.is_closed() && self.links.is_empty() {
            inner.driver_done = true;
            inner.wake_app();
            return true;
        }
        // The core's next timer, or the first closing link's end of grace.
        let grace = self
            .links
            .iter()
            .filter_map(|l| l.closing)
            .min()
            .map(|since| since + CLOSE_GRACE + std::time::Duration::from_millis(1));
        let core = inner.conn.poll_timeout().map(|t| inner.instant(t));
        let deadline = match (core, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(deadline) = deadline {
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        false
    }
}

/// Whether a link removed with `error` failed, so that its transport is dropped at once
/// rather than flushed and closed.
///
/// Whatever a failed link still holds, in the driver or in the kernel's send buffer, the core
/// has already queued again for the other links; sending it would only compete with them, and
/// with a new link on the same path, for a path that is slow or gone. A TCP link dropped this
/// way resets its connection, which discards what the socket holds. A link that ends cleanly
/// (Goodbye, the peer's end of the stream, the connection's end) is flushed and closed.
fn abandons(error: &LinkError) -> bool {
    match error {
        LinkError::Frame(_)
        | LinkError::Decode(_)
        | LinkError::Protocol(_)
        | LinkError::PingTimeout
        | LinkError::SendTimeout
        | LinkError::GoodbyeTimeout
        | LinkError::Transport { .. }
        | LinkError::Dropped => true,
        LinkError::Goodbye | LinkError::Closed | LinkError::ConnectionClosed => false,
        _ => false,
    }
}

/// Reports a transport failure to the core, which removes the link (and says so in an event).
/// A link the core already let go only finishes closing.
fn fail(inner: &mut Inner, now: Time, link: &mut LinkIo, e: &io::Error) {
    fail_with(inner, now, link, link_error(e));
}

/// What a transport's error means for its link: a framing error (the stream framing puts its
/// [`FrameError`] inside the `io::Error`) stays one; any other error keeps its kind and text.
fn link_error(e: &io::Error) -> LinkError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<FrameError>())
    {
        Some(frame) => LinkError::Frame(*frame),
        None => LinkError::transport(e.kind(), e.to_string()),
    }
}

fn fail_with(inner: &mut Inner, now: Time, link: &mut LinkIo, error: LinkError) {
    link.dirty = false;
    if link.closing.is_some() {
        return;
    }
    inner.conn.handle_link_error(now, link.id, error);
}

/// Hands `link` the packets the core has for it while its transport takes them, then flushes.
/// Returns how many it sent and the transport's error, if it failed.
fn send(
    inner: &mut Inner,
    now: Time,
    link: &mut LinkIo,
    cx: &mut Context<'_>,
) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < SEND_BUDGET {
        match link.io.as_mut().poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return (sent, Some(e)),
            Poll::Pending => break,
        }
        let Some(packet) = inner.conn.poll_transmit(now, link.id) else {
            break;
        };
        if let Err(e) = link.io.as_mut().start_send(packet) {
            return (sent, Some(e));
        }
        link.dirty = true;
        sent += 1;
    }
    if link.dirty {
        match link.io.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => link.dirty = false,
            Poll::Ready(Err(e)) => return (sent, Some(e)),
            Poll::Pending => {}
        }
    }
    (sent, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_abandoned_and_clean_ends_closed() {
        let failed = [
            LinkError::PingTimeout,
            LinkError::SendTimeout,
            LinkError::Dropped,
            LinkError::transport(io::ErrorKind::ConnectionReset, "reset"),
            LinkError::Frame(FrameError::PayloadTooLong { len: 1, max: 0 }),
        ];
        assert!(failed.iter().all(abandons));
        let clean = [
            LinkError::Goodbye,
            LinkError::Closed,
            LinkError::ConnectionClosed,
        ];
        assert!(!clean.iter().any(abandons));
    }
}
