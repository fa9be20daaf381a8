//! Fuzz target: a Connection fed arbitrary packets on arbitrary links, interleaved with time,
//! application calls and link changes.
//!
//! Checks beyond "no panic": memory stays within the configured buffers after every input.

#![no_main]

use bytes::Bytes;
use liag_core::{Config, Connection, Direction, LinkInfo, Time};
use libfuzzer_sys::fuzz_target;
use std::num::NonZeroU32;
use std::time::Duration;

const BUFFER: u32 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut config = Config::default();
    config.recv_buffer = NonZeroU32::new(BUFFER).expect("non-zero");
    config.send_buffer = BUFFER as usize;
    config.max_queued_acks = 256;
    let mut now = Time::ZERO;
    let mut conn = Connection::new(config, now);
    let rtt = Duration::from_millis(10);
    let mut links =
        vec![conn.attach_link(now, LinkInfo::new(Direction::Incoming, "l0", rtt), BUFFER)];

    let mut input = data;
    while let Some((&op, rest)) = input.split_first() {
        input = rest;
        let link = links[usize::from(op >> 4) % links.len()];
        match op & 0x0F {
            // A packet: a length byte, then that many bytes.
            0..=7 => {
                let Some((&len, rest)) = input.split_first() else {
                    break;
                };
                let len = usize::from(len).min(rest.len());
                conn.handle_packet(now, link, Bytes::copy_from_slice(&rest[..len]));
                input = &rest[len..];
            }
            8 => {
                let Some((&ms, rest)) = input.split_first() else {
                    break;
                };
                input = rest;
                now += Duration::from_millis(u64::from(ms) * 10);
                conn.handle_timeout(now);
            }
            9 => {
                let _ = conn.write(Bytes::from(vec![0x5A; 3000]));
            }
            10 => while conn.read().is_some() {},
            11 => conn.finish(),
            12 => conn.stop_receiving(),
            13 => conn.set_link_blocked(now, link, op & 0x10 != 0),
            14 => conn.remove_link(now, link),
            _ => links.push(conn.attach_link(
                now,
                LinkInfo::new(Direction::Outgoing, "n", rtt),
                BUFFER,
            )),
        }
        for &l in &links {
            for _ in 0..10_000 {
                if conn.poll_transmit(now, l).is_none() {
                    break;
                }
            }
        }
        while conn.poll_event().is_some() {}
        let stats = conn.stats();
        assert!(stats.receive_buffered <= BUFFER as usize);
        assert!(stats.receive_held <= 65_537);
        assert!(stats.queued + stats.unacked <= BUFFER as usize);
    }
});
