//! A custom transport plugged into liag-core, with no runtime: two endpoints joined by two
//! in-memory byte pipes (think of two serial lines), each framed with `liag_proto::frame`,
//! each link opened with the real handshake. docs/architecture.md walks through this file.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::{Bytes, BytesMut};
use liag_core::handshake::{
    self, ConnectionTable, Initiator, InitiatorParams, InitiatorStep, Resolution, Responder,
};
use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
use liag_core::proto::ids::{ConnId, ServerId};
use liag_core::proto::message::{ExchangedConfig, MAX_HANDSHAKE_LEN, RefusedReason, UserData};
use liag_core::{Config, Connection, Direction, LinkId, LinkInfo, Time};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::time::Duration;

/// One end of a byte pipe: frames out, frames in.
struct FramedEnd {
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    inbox: BytesMut,
}

impl FramedEnd {
    fn new() -> Self {
        FramedEnd {
            encoder: FrameEncoder::new(),
            // Until the handshake is done, nothing legitimate is bigger than a Connect.
            decoder: FrameDecoder::with_max_payload_len(MAX_HANDSHAKE_LEN),
            inbox: BytesMut::new(),
        }
    }

    fn send(&mut self, packet: &[u8], wire: &mut VecDeque<u8>) {
        let mut frame = BytesMut::new();
        self.encoder
            .encode(packet, &mut frame)
            .expect("packets are small");
        wire.extend(frame.iter());
    }

    /// Takes up to `max` bytes off the wire (a serial line delivers what it has) and returns
    /// the packets that completed.
    fn receive(&mut self, wire: &mut VecDeque<u8>, max: usize) -> Vec<Bytes> {
        let n = wire.len().min(max);
        self.inbox.extend(wire.drain(..n));
        std::iter::from_fn(|| self.decoder.decode(&mut self.inbox).expect("clean line")).collect()
    }
}

/// A pipe: one framed end per side, one byte queue per direction.
struct Line {
    client: FramedEnd,
    server: FramedEnd,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
}

impl Line {
    fn new() -> Self {
        Line {
            client: FramedEnd::new(),
            server: FramedEnd::new(),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
        }
    }
}

fn cfg() -> ExchangedConfig {
    ExchangedConfig {
        recv_buffer: Config::default().recv_buffer,
    }
}

/// The accepting endpoint: its table of connections and, once created, its connection.
struct ServerSide {
    table: ConnectionTable<()>,
    conn: Option<Connection>,
}

/// Opens `line` as a link of the client's connection `conn_id` and, on the server, joins or
/// creates the connection. Returns both sides' link ids.
fn open_link(
    line: &mut Line,
    client: &mut Connection,
    server: &mut ServerSide,
    conn_id: ConnId,
    existing: bool,
    rng: &mut StdRng,
    now: Time,
) -> Result<(LinkId, LinkId), RefusedReason> {
    let server_id = ServerId::new(0x5E).unwrap();
    let (mut responder, welcome) = Responder::new(server_id, UserData::empty(), cfg(), rng);
    line.server.send(&welcome, &mut line.to_client);

    let mut initiator = Initiator::new(InitiatorParams::new(conn_id, existing, cfg()), rng);
    let packet = line
        .client
        .receive(&mut line.to_client, usize::MAX)
        .remove(0);
    let InitiatorStep::SendConnect { connect, welcome } = initiator.handle_packet(&packet).unwrap()
    else {
        panic!("a Welcome asks for a Connect");
    };
    client.handle_server_id(welcome.server_id).unwrap();
    line.client.send(&connect, &mut line.to_server);

    let packet = line
        .server
        .receive(&mut line.to_server, usize::MAX)
        .remove(0);
    let request = responder.handle_packet(&packet).unwrap();
    assert_eq!(request.conn_id, conn_id, "the id survives masking");
    let rtt = Duration::from_millis(1);
    let conn = match server
        .table
        .resolve(request.conn_id, request.existing_connection)
    {
        Resolution::Refuse(reason) => {
            line.server
                .send(&handshake::refused(reason), &mut line.to_client);
            None
        }
        Resolution::New => {
            server.table.insert(request.conn_id, ());
            Some(server.conn.insert(Connection::new(Config::default(), now)))
        }
        Resolution::Join(()) => server.conn.as_mut(),
    };
    let server_link = conn.map(|conn| {
        line.server
            .send(&handshake::accepted(), &mut line.to_client);
        let info = LinkInfo::new(Direction::Incoming, "line", rtt);
        conn.attach_link(now, info, request.cfg.recv_buffer.get())
    });

    let packet = line
        .client
        .receive(&mut line.to_client, usize::MAX)
        .remove(0);
    match initiator.handle_packet(&packet) {
        Ok(InitiatorStep::Accepted(welcome)) => {
            // Handshake over: the framing may now carry full-size packets.
            line.client
                .decoder
                .set_max_payload_len(liag_core::proto::frame::MAX_PAYLOAD_LEN);
            line.server
                .decoder
                .set_max_payload_len(liag_core::proto::frame::MAX_PAYLOAD_LEN);
            let client_link = client.attach_link(
                now,
                LinkInfo::new(Direction::Outgoing, "line", rtt),
                welcome.cfg.recv_buffer.get(),
            );
            Ok((client_link, server_link.unwrap()))
        }
        Err(handshake::HandshakeError::Refused(reason)) => Err(reason),
        other => panic!("unexpected handshake result {other:?}"),
    }
}

#[test]
fn two_serial_lines_carry_one_connection() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut now = Time::ZERO;
    let conn_id = ConnId::random(&mut rng);
    let mut client = Connection::new(Config::default(), now);
    let mut server = ServerSide {
        table: ConnectionTable::new(16),
        conn: None,
    };

    let mut lines = [Line::new(), Line::new()];
    let mut ids = Vec::new();
    for (i, line) in lines.iter_mut().enumerate() {
        let existing = i > 0;
        ids.push(
            open_link(
                line,
                &mut client,
                &mut server,
                conn_id,
                existing,
                &mut rng,
                now,
            )
            .unwrap(),
        );
    }

    // A connection id the server does not know, marked existing: refused as Closed.
    let mut stray = Line::new();
    let mut other = Connection::new(Config::default(), now);
    let refused = open_link(
        &mut stray,
        &mut other,
        &mut server,
        ConnId::new(7),
        true,
        &mut rng,
        now,
    );
    assert_eq!(refused, Err(RefusedReason::Closed));

    let mut server = server.conn.unwrap();
    let message: Bytes = (0..3_000_000u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut offset = 0;
    let mut received = BytesMut::new();
    // The run loop: every tick each line moves up to 4 KiB per direction; after every input,
    // the outputs are drained (transmits per link, events, timeout).
    for _ in 0..10_000 {
        if offset < message.len() {
            offset += client.write(message.slice(offset..)).unwrap_or(0);
            if offset == message.len() {
                client.finish();
            }
        }
        for (line, &(c, s)) in lines.iter_mut().zip(&ids) {
            while let Some(p) = client.poll_transmit(now, c) {
                line.client.send(&p, &mut line.to_server);
            }
            while let Some(p) = server.poll_transmit(now, s) {
                line.server.send(&p, &mut line.to_client);
            }
            for p in line.server.receive(&mut line.to_server, 4096) {
                server.handle_packet(now, s, p);
            }
            for p in line.client.receive(&mut line.to_client, 4096) {
                client.handle_packet(now, c, p);
            }
        }
        while let Some(data) = server.read() {
            received.extend_from_slice(&data);
        }
        now += Duration::from_micros(100);
        for conn in [&mut client, &mut server] {
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
            while conn.poll_event().is_some() {}
        }
        if server.read_finished() {
            break;
        }
    }
    assert!(server.read_finished());
    assert_eq!(received.freeze(), message);
    // Both lines carried data.
    for stats in client.link_stats() {
        assert!(stats.data_bytes > 0, "{stats:?}");
    }
}
