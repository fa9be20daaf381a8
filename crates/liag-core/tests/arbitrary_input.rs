//! A Connection fed arbitrary packets on arbitrary links, interleaved with time and the
//! application, never panics and keeps its memory within its configured bounds.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::Bytes;
use liag_core::proto::message::Message;
use liag_core::proto::seq::Seq;
use liag_core::{Config, Connection, Direction, LinkInfo, Time};
use proptest::prelude::*;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Input {
    Packet(usize, Vec<u8>),
    /// A well-formed message, to get past the decoder often.
    Message(usize, u8, u32, u32),
    Time(u16),
    Write(u16),
    Read,
    Finish,
    Stop,
    Block(usize, bool),
    Remove(usize),
    AddLink,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0..4usize, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(l, p)| Input::Packet(l, p)),
        (0..4usize, 1..17u8, any::<u32>(), any::<u32>())
            .prop_map(|(l, t, a, b)| Input::Message(l, t, a, b)),
        any::<u16>().prop_map(Input::Time),
        any::<u16>().prop_map(Input::Write),
        Just(Input::Read),
        Just(Input::Finish),
        Just(Input::Stop),
        (0..4usize, any::<bool>()).prop_map(|(l, b)| Input::Block(l, b)),
        (0..4usize).prop_map(Input::Remove),
        Just(Input::AddLink),
    ]
}

/// A message of type `t` built from two numbers; Data gets a payload packet after it.
fn message(t: u8, a: u32, b: u32) -> Vec<Bytes> {
    let seq = Seq::new(a % 70_000);
    let msg = match t {
        5 => Message::Ping,
        6 => Message::Pong,
        7 => {
            return vec![
                Message::Data { seq }.to_bytes(),
                Bytes::from(vec![0u8; (b % 5000) as usize]),
            ];
        }
        8 => Message::Ack { received: seq },
        9 => Message::Consumed {
            seq,
            consumed: b % 100_000,
        },
        10 => Message::SendFinish { seq },
        11 => Message::ReceiveClose { seq },
        12 => Message::ReceiveFinish { seq },
        13 => Message::TestData { len: b % 1000 },
        14 => Message::SetBlock {
            blocked: b % 2 == 0,
        },
        15 => Message::Goodbye,
        16 => Message::Terminate,
        _ => Message::Accepted,
    };
    vec![msg.to_bytes()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_inputs(inputs in prop::collection::vec(input(), 1..300)) {
        let mut config = Config::default();
        config.recv_buffer = NonZeroU32::new(1 << 20).unwrap();
        config.send_buffer = 1 << 20;
        config.max_queued_acks = 256;
        let mut now = Time::ZERO;
        let mut conn = Connection::new(config, now);
        let rtt = Duration::from_millis(10);
        let mut links = vec![conn.attach_link(now, LinkInfo::new(Direction::Incoming, "l0", rtt), 1 << 20)];
        for input in inputs {
            let link = |i: usize| links[i % links.len()];
            match input {
                Input::Packet(l, p) => conn.handle_packet(now, link(l), Bytes::from(p)),
                Input::Message(l, t, a, b) => {
                    for p in message(t, a, b) {
                        conn.handle_packet(now, link(l), p);
                    }
                }
                Input::Time(ms) => {
                    now += Duration::from_millis(ms.into());
                    conn.handle_timeout(now);
                }
                Input::Write(n) => { let _ = conn.write(Bytes::from(vec![1u8; n.into()])); }
                Input::Read => { while conn.read().is_some() {} }
                Input::Finish => conn.finish(),
                Input::Stop => conn.stop_receiving(),
                Input::Block(l, b) => conn.set_link_blocked(now, link(l), b),
                Input::Remove(l) => conn.remove_link(now, link(l)),
                Input::AddLink => links.push(conn.attach_link(now, LinkInfo::new(Direction::Outgoing, "n", rtt), 1 << 20)),
            }
            // Drain, as a driver would.
            for &l in &links {
                for _ in 0..10_000 {
                    if conn.poll_transmit(now, l).is_none() { break; }
                }
            }
            while conn.poll_event().is_some() {}
            let stats = conn.stats();
            prop_assert!(stats.receive_buffered <= 1 << 20);
            prop_assert!(stats.receive_held <= 65_537);
            prop_assert!(stats.queued + stats.unacked <= 1 << 20);
        }
    }
}
