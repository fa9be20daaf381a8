//! The tunnel's data path: bytes between a TCP socket and a liag [`Connection`], both ways, with
//! one copy each way (the kernel's) and one system call per batch.
//!
//! - TCP to liag: each read lands in a shared buffer of at least [`READ_MIN`] free bytes and is
//!   handed to the connection as it is (`WriteHalf::write_all_bytes` takes it without a copy).
//!   Whatever one read returns goes out at once: a small write waits for no timer and no other
//!   bytes.
//! - liag to TCP: the payloads the connection has ready (as `Bytes`, no copy) are gathered,
//!   up to [`GATHER_MAX`] bytes, and written with one vectored write.
//!
//! Each direction passes its end on as a half-close.

use bytes::{Buf, Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use liag_transports::liag_tokio::{Connection, ReadHalf, WriteHalf};

/// A read from TCP always has this much room (a fresh buffer is taken when less is left).
const READ_MIN: usize = 64 << 10;
/// The size of a fresh read buffer: reads share it until it runs low.
const READ_BUFFER: usize = 256 << 10;
/// The most bytes gathered into one write to TCP: read from the connection (and so released
/// from its memory budget) but not yet taken by the socket.
const GATHER_MAX: usize = 128 << 10;
/// A read shorter than this is copied out, so a small payload waiting for acknowledgement
/// does not keep a whole read buffer alive.
const COPY_BELOW: usize = 8 << 10;
/// The most payloads in one vectored write (well under any `IOV_MAX`).
const SLICES_MAX: usize = 64;

/// Copies both ways between `tcp` and `stream` until both directions end; the bytes moved
/// towards the stream and towards the socket.
pub(crate) async fn relay(tcp: TcpStream, stream: Connection) -> io::Result<(u64, u64)> {
    let (tcp_read, tcp_write) = tcp.into_split();
    let (stream_read, stream_write) = stream.into_split();
    tokio::try_join!(
        tcp_to_liag(tcp_read, stream_write),
        liag_to_tcp(stream_read, tcp_write)
    )
}

async fn tcp_to_liag(mut from: OwnedReadHalf, mut to: WriteHalf) -> io::Result<u64> {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut total = 0u64;
    loop {
        if buf.capacity() - buf.len() < READ_MIN {
            // The old buffer lives on in the payloads not yet acknowledged.
            buf = BytesMut::with_capacity(READ_BUFFER);
        }
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        let data = if n < COPY_BELOW {
            let small = Bytes::copy_from_slice(&buf);
            buf.clear();
            small
        } else {
            buf.split().freeze()
        };
        match to.write_all_bytes(data).await {
            Ok(()) => {}
            // The peer stopped receiving (it is shutting down): nothing more goes that way,
            // while the other direction still delivers what the peer sent.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(total),
            Err(e) => return Err(e),
        }
    }
    to.shutdown().await?;
    Ok(total)
}

async fn liag_to_tcp(mut from: ReadHalf, mut to: OwnedWriteHalf) -> io::Result<u64> {
    let mut ready: VecDeque<Bytes> = VecDeque::new();
    let mut total = 0u64;
    while let Some(first) = from.next().await {
        ready.push_back(first?);
        let mut gathered = ready[0].len();
        // What else is ready now, without waiting.
        let mut failed = None;
        while gathered < GATHER_MAX && ready.len() < SLICES_MAX {
            match from.next().now_or_never() {
                Some(Some(Ok(more))) => {
                    gathered += more.len();
                    ready.push_back(more);
                }
                Some(Some(Err(e))) => {
                    failed = Some(e);
                    break;
                }
                _ => break,
            }
        }
        total += gathered as u64;
        // What was read before a failure is written first.
        write_all_vectored(&mut to, &mut ready).await?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    to.shutdown().await?;
    Ok(total)
}

/// Writes every buffer of `ready`, in order, with as few system calls as the socket allows.
async fn write_all_vectored(
    to: &mut OwnedWriteHalf,
    ready: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !ready.is_empty() {
        let slices: Vec<IoSlice<'_>> = ready.iter().map(|b| IoSlice::new(b)).collect();
        let mut n = to.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(front) = ready.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                ready.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
    Ok(())
}
