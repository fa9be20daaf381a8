//! An attacker's hands: blocking sockets from chosen loopback sources, the liag handshake
//! run by hand, raw frames and raw WebSocket frames.

use bytes::{Bytes, BytesMut};
use liag_core::handshake::{Initiator, InitiatorParams, InitiatorStep};
use liag_core::proto::frame::{FrameDecoder, FrameEncoder};
use liag_core::proto::ids::ConnId;
use liag_core::proto::message::{ExchangedConfig, Message};
use liag_core::proto::seq::Seq;
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::num::NonZeroU32;
use std::time::Duration;

/// How long any one read or write of an attacker may block.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The loopback source of attacker `i` of a crowd: each a host of its own.
pub(crate) fn crowd(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        1 + (i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        1 + (i % 250) as u8,
    )
}

/// The one source a lone attacker uses.
pub(crate) const LONE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection to `to` from the loopback address `from`.
pub(crate) fn connect(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&to.into(), IO_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// A link driven by hand, frame by frame.
pub(crate) struct RawLink {
    pub(crate) socket: TcpStream,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl RawLink {
    pub(crate) fn new(socket: TcpStream) -> Self {
        RawLink {
            socket,
            encoder: FrameEncoder::new(),
            decoder: FrameDecoder::new(),
            buf: BytesMut::new(),
        }
    }

    /// The next packet the server sends.
    fn receive(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(p) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(io::Error::other)?
            {
                return Ok(p);
            }
            let mut chunk = [0u8; 4096];
            let n = self.socket.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends packets, each as one frame.
    pub(crate) fn send(&mut self, packets: &[&[u8]]) -> io::Result<()> {
        let mut out = BytesMut::new();
        for p in packets {
            self.encoder.encode(p, &mut out).map_err(io::Error::other)?;
        }
        self.socket.write_all(&out)
    }

    /// Runs the initiator's handshake for `conn_id`; `Ok(true)` when Accepted.
    pub(crate) fn handshake(&mut self, conn_id: u128, existing: bool) -> io::Result<bool> {
        let cfg = ExchangedConfig {
            recv_buffer: NonZeroU32::new(1 << 20).unwrap_or(NonZeroU32::MIN),
        };
        let params = InitiatorParams::new(ConnId::new(conn_id), existing, cfg);
        let mut initiator = Initiator::new(params, &mut rand::rng());
        let welcome = self.receive()?;
        let step = initiator
            .handle_packet(&welcome)
            .map_err(io::Error::other)?;
        let InitiatorStep::SendConnect { connect, .. } = step else {
            return Err(io::Error::other("no Connect to send"));
        };
        self.send(&[&connect])?;
        let answer = self.receive()?;
        Ok(matches!(Message::decode(&answer), Ok(Message::Accepted)))
    }

    /// A Data message numbered `seq` with its payload.
    pub(crate) fn send_data(&mut self, seq: u32, payload: &[u8]) -> io::Result<()> {
        let header = Message::Data { seq: Seq::new(seq) }.to_bytes();
        self.send(&[&header, payload])
    }
}

/// Upgrades `socket` to a WebSocket at `path` of `host`.
pub(crate) fn ws_upgrade(socket: &mut TcpStream, host: SocketAddr, path: &str) -> io::Result<()> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes())?;
    let mut response = [0u8; 1024];
    let n = socket.read(&mut response)?;
    if response[..n].starts_with(b"HTTP/1.1 101") {
        Ok(())
    } else {
        Err(io::Error::other("websocket upgrade refused"))
    }
}

/// A client's WebSocket frame header of `len` payload bytes, masked with a zero key (so the
/// payload goes as it is). `opcode` 2 is Binary, 0 a continuation.
pub(crate) fn ws_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![u8::from(fin) << 7 | opcode, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    header
}
