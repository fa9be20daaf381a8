//! Plain TCP pieces for the operator's tunnel scenario, on blocking std threads: a bulk sink,
//! an echo server, and a user-space relay pair (the best any tunnel of two processes can do:
//! large copies, `TCP_NODELAY`, nothing else), plus the two measurements made through them.
//!
//! Every accept loop polls a stop flag, so the threads end when their [`Stop`] is dropped.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Size of the relay's and the measurements' copies.
const COPY: usize = 256 << 10;

/// Ends the accept loops that hold a clone of it when the last one is dropped by its owner.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Owns a [`Stop`] and sets it when dropped.
#[derive(Debug, Default)]
pub struct Stopper(pub Stop);

impl Drop for Stopper {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Relaxed);
    }
}

/// Accepts on `listener` until `stop`, handing each connection to `serve` on its own thread.
fn accept_loop(
    listener: TcpListener,
    stop: Stop,
    serve: impl Fn(TcpStream) + Send + Clone + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        while !stop.stopped() {
            match listener.accept() {
                Ok((stream, _)) => {
                    let serve = serve.clone();
                    let ready = stream.set_nonblocking(false).and(stream.set_nodelay(true));
                    if ready.is_ok() {
                        std::thread::spawn(move || serve(stream));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
    });
    Ok(())
}

/// Listens on `[::]:0` (dual-stack) and hands every connection's reads to `reads`:
/// (seconds since `start`, bytes) per read, then the connection's end as `None`.
pub fn sink(
    stop: Stop,
    start: Instant,
    reads: mpsc::Sender<Option<(f64, usize)>>,
) -> io::Result<u16> {
    let listener = TcpListener::bind("[::]:0")?;
    let port = listener.local_addr()?.port();
    accept_loop(listener, stop, move |mut stream| {
        let mut buf = vec![0u8; COPY];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            let _ = reads.send(Some((start.elapsed().as_secs_f64(), n)));
        }
        let _ = reads.send(None);
    })?;
    Ok(port)
}

/// Listens on `[::]:0` and echoes every byte back.
pub fn echo(stop: Stop) -> io::Result<u16> {
    let listener = TcpListener::bind("[::]:0")?;
    let port = listener.local_addr()?.port();
    accept_loop(listener, stop, |stream| {
        if let Ok(back) = stream.try_clone() {
            pump(stream, back);
        }
    })?;
    Ok(port)
}

/// Copies `from` to `to` until the end, then passes the end on as a half-close.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; COPY];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Copies both ways between `a` and `b` on two threads.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let forward = std::thread::spawn(move || pump(a, b));
    pump(b2, a2);
    let _ = forward.join();
}

/// The relay's far end: listens on `[::]:0`; each connection names its target port in two
/// bytes (as the tunnel's stream does), and is joined to `localhost:PORT`.
pub fn relay_exit(stop: Stop) -> io::Result<u16> {
    let listener = TcpListener::bind("[::]:0")?;
    let port = listener.local_addr()?.port();
    accept_loop(listener, stop, |mut stream| {
        let mut header = [0u8; 2];
        if stream.read_exact(&mut header).is_err() {
            return;
        }
        let target = ("localhost", u16::from_be_bytes(header));
        if let Ok(out) = TcpStream::connect(target) {
            let _ = out.set_nodelay(true);
            splice(stream, out);
        }
    })?;
    Ok(port)
}

/// The relay's near end: listens on `127.0.0.1:0` and joins each connection to `exit`,
/// asking it for `target_port`.
pub fn relay_entry(stop: Stop, exit: SocketAddr, target_port: u16) -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    accept_loop(listener, stop, move |stream| {
        let Ok(mut out) = TcpStream::connect(exit) else {
            return;
        };
        let _ = out.set_nodelay(true);
        if out.write_all(&target_port.to_be_bytes()).is_ok() {
            splice(stream, out);
        }
    })?;
    Ok(port)
}

/// Connects to `addr`, waiting up to 10 s for it to listen.
pub fn connect_retrying(addr: SocketAddr) -> io::Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes to `stream` for `warm + secs` seconds, while `reads` (a [`sink`]'s) reports what
/// arrived; returns the goodput in MB/s over the last `secs` seconds, as the sink saw it.
pub fn bulk(
    stream: TcpStream,
    start: Instant,
    reads: &mpsc::Receiver<Option<(f64, usize)>>,
    warm: f64,
    secs: f64,
) -> io::Result<f64> {
    bulk_all(vec![stream], start, reads, warm, secs)
}

/// [`bulk`] through each of `streams` at once (all to the one sink of `reads`): the goodput of
/// them all together.
pub fn bulk_all(
    streams: Vec<TcpStream>,
    start: Instant,
    reads: &mpsc::Receiver<Option<(f64, usize)>>,
    warm: f64,
    secs: f64,
) -> io::Result<f64> {
    let began = start.elapsed().as_secs_f64();
    let (from, to) = (began + warm, began + warm + secs);
    let writers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::spawn(move || -> io::Result<()> {
                let buf = vec![0x5au8; COPY];
                stream.set_write_timeout(Some(Duration::from_secs(10)))?;
                while start.elapsed().as_secs_f64() < to {
                    stream.write_all(&buf)?;
                }
                stream.shutdown(Shutdown::Write)
            })
        })
        .collect();
    let (mut counted, mut open) = (0usize, writers.len());
    while open > 0 {
        match reads.recv_timeout(Duration::from_secs(30)) {
            Ok(Some((t, n))) if t >= from && t < to => counted += n,
            Ok(Some(_)) => {}
            Ok(None) => open -= 1,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the sink stalled")),
        }
    }
    for writer in writers {
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer panicked")))?;
    }
    Ok(counted as f64 / secs / 1e6)
}

/// Sends `count` numbered 64-byte messages every `interval` through `stream` (to an [`echo`])
/// and times each echo from when its message was due, so a message held up delays those
/// behind it in the figures too (no coordinated omission). The round trips, in order.
pub fn paced_round_trips(
    stream: TcpStream,
    count: usize,
    interval: Duration,
) -> io::Result<Vec<Duration>> {
    let mut reader = stream.try_clone()?;
    let start = Instant::now();
    let due = move |i: usize| start + interval * i as u32;
    let writer = std::thread::spawn(move || -> io::Result<()> {
        let mut stream = stream;
        let mut message = [0u8; 64];
        for i in 0..count {
            std::thread::sleep(due(i).saturating_duration_since(Instant::now()));
            message[..8].copy_from_slice(&(i as u64).to_le_bytes());
            stream.write_all(&message)?;
        }
        Ok(())
    });
    let mut rtts = Vec::with_capacity(count);
    let mut message = [0u8; 64];
    for i in 0..count {
        reader.read_exact(&mut message)?;
        let seq = u64::from_le_bytes(message[..8].try_into().unwrap_or_default());
        if seq != i as u64 {
            return Err(io::Error::other(format!(
                "echo {seq} came where {i} was due"
            )));
        }
        rtts.push(Instant::now() - due(i));
    }
    writer
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the writer panicked")))?;
    Ok(rtts)
}

/// `samples` round trips of 64 bytes through `stream` (to an [`echo`]) after 200 unmeasured
/// ones, or as many as `within` allows once those are done: each one's time.
pub fn round_trips(
    mut stream: TcpStream,
    samples: usize,
    within: Duration,
) -> io::Result<Vec<Duration>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let ping = [0xa5u8; 64];
    let mut pong = [0u8; 64];
    let mut times = Vec::with_capacity(samples);
    let mut measuring = None;
    for i in 0..samples + 200 {
        if i == 200 {
            measuring = Some(Instant::now());
        }
        if measuring.is_some_and(|since| since.elapsed() >= within) {
            break;
        }
        let t = Instant::now();
        stream.write_all(&ping)?;
        stream.read_exact(&mut pong)?;
        if i >= 200 {
            times.push(t.elapsed());
        }
    }
    Ok(times)
}
