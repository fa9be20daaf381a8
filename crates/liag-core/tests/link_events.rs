//! The core as the one owner of link state: it publishes every state change as an event,
//! fails a link whose transport takes nothing, and takes no links once closed.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use liag_core::{
    Config, Connection, Direction, Event, LinkError, LinkId, LinkInfo, LinkState, Time,
};
use std::time::Duration;

const RTT: Duration = Duration::from_millis(10);

fn pair(now: Time) -> (Connection, LinkId, Connection, LinkId) {
    let mut a = Connection::new(Config::default(), now);
    let mut b = Connection::new(Config::default(), now);
    let la = a.attach_link(now, LinkInfo::new(Direction::Outgoing, "a", RTT), 64 << 20);
    let lb = b.attach_link(now, LinkInfo::new(Direction::Incoming, "b", RTT), 64 << 20);
    (a, la, b, lb)
}

/// Moves every packet each side has, both ways, until both are quiet.
fn exchange(now: Time, a: &mut Connection, la: LinkId, b: &mut Connection, lb: LinkId) {
    for _ in 0..100 {
        let mut moved = false;
        while let Some(p) = a.poll_transmit(now, la) {
            b.handle_packet(now, lb, p);
            moved = true;
        }
        while let Some(p) = b.poll_transmit(now, lb) {
            a.handle_packet(now, la, p);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn a_stall_and_the_recovery_are_published() {
    let now = Time::ZERO;
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    events(&mut a);

    // Data goes out and is never acknowledged: the link stalls at its ack timeout.
    a.write(Bytes::from_static(b"lost")).unwrap();
    while a.poll_transmit(now, la).is_some() {}
    let later = now + Duration::from_secs(1);
    a.handle_timeout(later);
    let stalled = Event::LinkState {
        link: la,
        state: LinkState::Stalled,
    };
    assert!(events(&mut a).contains(&stalled));

    // The peer answers again: the link is back, and that is published too.
    exchange(later, &mut a, la, &mut b, lb);
    let active = Event::LinkState {
        link: la,
        state: LinkState::Active,
    };
    assert!(events(&mut a).contains(&active));
    assert_eq!(a.link_stats()[0].state, LinkState::Active);
}

#[test]
fn a_link_whose_transport_takes_nothing_fails_after_the_ping_timeout() {
    let now = Time::ZERO;
    let config = Config::default();
    let (mut a, la, _b, _lb) = pair(now);
    // The driver never calls poll_transmit: the transport is never ready. The link's first
    // Ping waits since `now`.
    let deadline = now + config.ping_timeout;
    assert!(a.poll_timeout().unwrap() <= deadline);
    a.handle_timeout(deadline);
    let removed = Event::LinkRemoved {
        link: la,
        error: LinkError::SendTimeout,
    };
    assert!(events(&mut a).contains(&removed));
    assert!(a.link_stats().is_empty());
}

#[test]
fn a_link_that_sends_is_not_failed() {
    let now = Time::ZERO;
    let config = Config::default();
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    let mut t = now;
    // Two ping timeouts of quiet, with the transport taking what the core gives it.
    for _ in 0..1000 {
        if t >= now + config.ping_timeout * 2 {
            break;
        }
        t = a.poll_timeout().unwrap().max(t + Duration::from_millis(1));
        a.handle_timeout(t);
        b.handle_timeout(t);
        exchange(t, &mut a, la, &mut b, lb);
    }
    assert_eq!(a.link_stats().len(), 1, "{:?}", events(&mut a));
    assert!(
        !events(&mut a)
            .iter()
            .any(|e| matches!(e, Event::LinkRemoved { .. }))
    );
}

#[test]
fn a_closed_connection_lets_a_new_link_go_at_once() {
    let now = Time::ZERO;
    let (mut a, _la, _b, _lb) = pair(now);
    a.terminate();
    events(&mut a);
    let late = a.attach_link(
        now,
        LinkInfo::new(Direction::Outgoing, "late", RTT),
        1 << 20,
    );
    assert_eq!(
        events(&mut a),
        vec![Event::LinkRemoved {
            link: late,
            error: LinkError::ConnectionClosed
        }]
    );
    assert!(!a.link_stats().iter().any(|l| l.id == late));
}

#[test]
fn closed_to_new_links_it_ends_with_its_last_link() {
    let now = Time::ZERO;
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    a.close_to_new_links();
    // A link is left: the connection goes on.
    assert!(!a.is_closed());
    let mid = now + Duration::from_millis(1);
    a.handle_link_error(mid, la, LinkError::Closed);
    assert!(a.is_closed());
    let closed = Event::Closed(Err(liag_core::ConnectionError::NoLinkLeft));
    assert!(events(&mut a).contains(&closed));
}

#[test]
fn closed_to_new_links_without_a_link_it_ends_at_once() {
    let mut a = Connection::new(Config::default(), Time::ZERO);
    a.close_to_new_links();
    assert_eq!(
        events(&mut a),
        [Event::Closed(Err(liag_core::ConnectionError::NoLinkLeft))]
    );
}

/// Stalls `link`, a's only working link: data sent on it is never acknowledged, and its ack
/// timeout passes.
fn stall(a: &mut Connection, link: LinkId, now: Time) {
    a.write(Bytes::from_static(b"lost")).unwrap();
    while a.poll_transmit(now, link).is_some() {}
    a.handle_timeout(now + Duration::from_secs(1));
}

#[test]
fn forgotten_by_the_server_it_ends_once_no_link_works() {
    let now = Time::ZERO;
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    // A fresh link was refused with Closed while this one still works: it may yet bring the
    // server's last acknowledgements, so the connection goes on.
    a.abort_by_server();
    assert!(!a.is_closed());
    // Nothing works any more.
    stall(&mut a, la, now);
    assert_eq!(
        a.outcome(),
        Some(&Err(liag_core::ConnectionError::AbortedByServer))
    );
}

/// A refusal is not authenticated: a link the server then accepts for the connection shows it
/// knows the connection, and a later stall of every link is a stall, not an abort.
#[test]
fn a_link_accepted_after_a_refusal_overrules_it() {
    let now = Time::ZERO;
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    a.abort_by_server();
    let info = LinkInfo::new(Direction::Outgoing, "second", Duration::from_millis(1));
    let second = a.attach_link(now, info, 1 << 20);
    a.handle_link_error(now, second, LinkError::Closed);
    stall(&mut a, la, now);
    assert!(!a.is_closed(), "{:?}", a.outcome());
}

#[test]
fn forgotten_by_the_server_without_a_link_it_ends_at_once() {
    let mut a = Connection::new(Config::default(), Time::ZERO);
    a.abort_by_server();
    assert_eq!(
        a.outcome(),
        Some(&Err(liag_core::ConnectionError::AbortedByServer))
    );
}

/// The server ends gracefully and closes its links; a refusal met on a fresh link before the
/// last acknowledgement arrived does not turn the clean end into an abort.
#[test]
fn a_refusal_does_not_overtake_a_graceful_end() {
    let now = Time::ZERO;
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    a.write(Bytes::from_static(b"all of it")).unwrap();
    a.finish();
    b.finish();
    // a's data and finish reach b; b's answers are still on their way when the refusal comes.
    while let Some(p) = a.poll_transmit(now, la) {
        b.handle_packet(now, lb, p);
    }
    while b.read().is_some() {}
    a.abort_by_server();
    assert!(!a.is_closed());
    exchange(now, &mut a, la, &mut b, lb);
    a.handle_link_error(now, la, LinkError::Closed);
    assert_eq!(a.outcome(), Some(&Ok(())));
}

#[test]
fn a_goodbye_the_peer_never_answers_ends_the_link_after_the_ping_timeout() {
    let now = Time::ZERO;
    let config = Config::default();
    let (mut a, la, mut b, lb) = pair(now);
    exchange(now, &mut a, la, &mut b, lb);
    a.remove_link(now, la);
    // The Goodbye goes out; the peer never answers it, but pings the link every 10 s, and
    // each Pong it gets back would count as the link's traffic.
    while a.poll_transmit(now, la).is_some() {}
    let ping = liag_core::proto::message::Message::Ping.to_bytes();
    let deadline = now + config.ping_timeout;
    let mut t = now;
    for _ in 0..10 {
        t += Duration::from_secs(10);
        if a.link_stats().is_empty() {
            break;
        }
        a.handle_timeout(t);
        a.handle_packet(t, la, ping.clone());
        while a.poll_transmit(t, la).is_some() {}
    }
    let removed = Event::LinkRemoved {
        link: la,
        error: LinkError::GoodbyeTimeout,
    };
    assert!(events(&mut a).contains(&removed));
    assert!(a.link_stats().is_empty());
    assert!(t <= deadline + Duration::from_secs(10), "removed at {t:?}");
}
