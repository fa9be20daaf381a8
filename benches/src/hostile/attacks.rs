//! The attacks: bad bytes, and peers that follow the protocol and abuse it. Each opens its
//! sockets, does its harm and hands the sockets back to be held open while the server is
//! measured.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use super::raw::{LONE, RawLink, connect, crowd, ws_header, ws_upgrade};

/// Where the server under attack listens.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its TCP link port.
    pub tcp: SocketAddr,
    /// Its WebSocket link port (path `/liag-tunnel`).
    pub ws: SocketAddr,
}

/// What an attack leaves behind: its sockets, held open, and what it saw.
#[derive(Debug, Default)]
pub struct Held {
    sockets: Vec<TcpStream>,
    /// What the attack saw of the server, in words.
    pub note: String,
}

impl Held {
    fn join(&mut self, other: Held) {
        self.sockets.extend(other.sockets);
        if !other.note.is_empty() {
            if !self.note.is_empty() {
                self.note.push_str("; ");
            }
            self.note.push_str(&other.note);
        }
    }

    /// Sockets held.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }
}

/// One attack: its name, what it does, and how.
#[derive(Debug, Clone, Copy)]
pub struct Attack {
    /// Its name on the command line and in the report.
    pub name: &'static str,
    /// What it does, in a line.
    pub what: &'static str,
    run: fn(&Target, usize) -> Held,
}

impl Attack {
    /// Runs the attack at `scale` (1 in full, less when quick: counts are divided by it).
    pub fn run(&self, target: &Target, scale: usize) -> Held {
        (self.run)(target, scale.max(1))
    }
}

/// Every attack, in the report's order; `all` runs them at once.
pub const ATTACKS: &[Attack] = &[
    Attack {
        name: "garbage",
        what: "50 sockets from 50 hosts send 64 KiB of noise",
        run: garbage,
    },
    Attack {
        name: "huge-frame",
        what: "50 sockets announce a 4 GiB frame",
        run: huge_frame,
    },
    Attack {
        name: "big-frames",
        what: "100 links from 100 hosts send 4 MiB of an 8 MiB frame after the handshake",
        run: big_frames,
    },
    Attack {
        name: "seq-bomb",
        what: "20 links send Data far beyond the window",
        run: seq_bomb,
    },
    Attack {
        name: "idle-one-host",
        what: "400 silent sockets from one host",
        run: idle_lone,
    },
    Attack {
        name: "idle-crowd",
        what: "300 silent sockets from 300 hosts",
        run: idle_crowd,
    },
    Attack {
        name: "many-links",
        what: "one connection joined by 150 links",
        run: many_links,
    },
    Attack {
        name: "ws-big",
        what: "6 WebSockets send 60 MiB in 15 MiB fragments before any handshake",
        run: ws_big,
    },
    Attack {
        name: "ws-slowloris",
        what: "200 sockets send half an HTTP upgrade",
        run: ws_slowloris,
    },
    Attack {
        name: "pinning",
        what: "4 links send 20,000 one-byte out-of-order Data each",
        run: pinning,
    },
    Attack {
        name: "ooo-flood",
        what: "24 connections send 8 MB each that can never be delivered",
        run: ooo_flood,
    },
    Attack {
        name: "churn",
        what: "5,000 connections from 200 hosts, each left without links",
        run: churn,
    },
    Attack {
        name: "all",
        what: "all of the above at once",
        run: all,
    },
];

/// Sockets from a crowd of hosts, each doing `work` on its own.
fn each(count: usize, to: SocketAddr, work: impl Fn(usize, &mut TcpStream) + Sync) -> Held {
    let mut held = Held::default();
    for i in 0..count {
        if let Ok(mut socket) = connect(crowd(i), to) {
            work(i, &mut socket);
            held.sockets.push(socket);
        }
    }
    held
}

fn noise(seed: usize, len: usize) -> Vec<u8> {
    let mut x = seed as u64 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn garbage(t: &Target, scale: usize) -> Held {
    each(50 / scale, t.tcp, |i, s| {
        let _ = s.write_all(&noise(i, 64 << 10));
    })
}

fn huge_frame(t: &Target, scale: usize) -> Held {
    each(50 / scale, t.tcp, |_, s| {
        let _ = s.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    })
}

/// Handshaken links from a crowd of hosts, each a connection of its own unless `conn_id`
/// says otherwise; `work` runs on each accepted one.
fn links(count: usize, t: &Target, first_id: u128, work: impl Fn(usize, &mut RawLink)) -> Held {
    let mut held = Held::default();
    let mut accepted = 0;
    for i in 0..count {
        let Ok(socket) = connect(crowd(i), t.tcp) else {
            continue;
        };
        let mut link = RawLink::new(socket);
        if link.handshake(first_id + i as u128, false).unwrap_or(false) {
            accepted += 1;
            work(i, &mut link);
        }
        held.sockets.push(link.socket);
    }
    held.note = format!("{accepted} of {count} connections accepted");
    held
}

fn big_frames(t: &Target, scale: usize) -> Held {
    let chunk = vec![0u8; 64 << 10];
    links(100 / scale, t, 6 << 64, |_, link| {
        // Frame 0 was the Connect; this one claims the largest payload and gets half of it.
        let header = liag_core::proto::frame::FrameHeader {
            len: liag_core::proto::frame::MAX_PAYLOAD_LEN,
            frame_seq: 1,
            checksum: 0,
        };
        if link.socket.write_all(&header.to_bytes()).is_err() {
            return;
        }
        for _ in 0..64 {
            if link.socket.write_all(&chunk).is_err() {
                break;
            }
        }
    })
}

fn seq_bomb(t: &Target, scale: usize) -> Held {
    links(20 / scale, t, 1 << 64, |_, link| {
        let _ = link.send_data(1 << 31, b"bomb");
    })
}

fn idle_lone(t: &Target, scale: usize) -> Held {
    let mut held = Held::default();
    for _ in 0..400 / scale {
        if let Ok(socket) = connect(LONE, t.tcp) {
            held.sockets.push(socket);
        }
    }
    held
}

fn idle_crowd(t: &Target, scale: usize) -> Held {
    each(300 / scale, t.tcp, |_, _| {})
}

fn many_links(t: &Target, scale: usize) -> Held {
    let mut held = Held::default();
    let conn_id = 2 << 64;
    let count = 150 / scale;
    let mut accepted = 0;
    for i in 0..count {
        let Ok(socket) = connect(LONE, t.tcp) else {
            continue;
        };
        let mut link = RawLink::new(socket);
        if link.handshake(conn_id, i > 0).unwrap_or(false) {
            accepted += 1;
        }
        held.sockets.push(link.socket);
    }
    held.note = format!("{accepted} of {count} links accepted into one connection");
    held
}

fn ws_big(t: &Target, scale: usize) -> Held {
    let count = 6 / scale.min(3);
    let fragment: u64 = 15 << 20;
    let chunk = vec![0u8; 1 << 20];
    let sent: Vec<(Option<TcpStream>, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .map(|i| {
                let chunk = &chunk;
                scope.spawn(move || {
                    let Ok(mut s) = connect(crowd(i), t.ws) else {
                        return (None, 0);
                    };
                    if ws_upgrade(&mut s, t.ws, "/liag-tunnel").is_err() {
                        return (Some(s), 0);
                    }
                    let mut sent = 0u64;
                    'message: for f in 0..4u8 {
                        let opcode = if f == 0 { 2 } else { 0 };
                        if s.write_all(&ws_header(f == 3, opcode, fragment)).is_err() {
                            break;
                        }
                        for _ in 0..fragment / chunk.len() as u64 {
                            if s.write_all(chunk).is_err() {
                                break 'message;
                            }
                            sent += chunk.len() as u64;
                        }
                    }
                    (Some(s), sent)
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let total: u64 = sent.iter().map(|(_, n)| n).sum();
    Held {
        note: format!(
            "{:.1} MiB of {} MiB written before the server closed",
            total as f64 / (1 << 20) as f64,
            count * 60
        ),
        sockets: sent.into_iter().filter_map(|(s, _)| s).collect(),
    }
}

fn ws_slowloris(t: &Target, scale: usize) -> Held {
    each(200 / scale, t.ws, |_, s| {
        let _ = s.write_all(b"GET /liag-tunnel HTTP/1.1\r\nHost: x\r\n");
    })
}

fn pinning(t: &Target, scale: usize) -> Held {
    links(4, t, 3 << 64, |_, link| {
        // Message 0 never comes: every byte is held out of order.
        for seq in 1..=20_000 / scale as u32 {
            if link.send_data(seq, b"p").is_err() {
                break;
            }
        }
    })
}

fn ooo_flood(t: &Target, scale: usize) -> Held {
    let payload = vec![7u8; 30_000];
    links(24 / scale.min(4), t, 4 << 64, |_, link| {
        for seq in 1..=(8_000_000 / payload.len() / scale) as u32 {
            if link.send_data(seq, &payload).is_err() {
                break;
            }
        }
    })
}

fn churn(t: &Target, scale: usize) -> Held {
    let count = 5000 / scale;
    let mut accepted = 0;
    for i in 0..count {
        let Ok(socket) = connect(crowd(i % 200), t.tcp) else {
            continue;
        };
        let mut link = RawLink::new(socket);
        if link
            .handshake((5 << 64) + i as u128, false)
            .unwrap_or(false)
        {
            accepted += 1;
        }
        // Dropped: the connection is left without links.
    }
    Held {
        note: format!("{accepted} of {count} connections accepted"),
        ..Held::default()
    }
}

fn all(t: &Target, scale: usize) -> Held {
    let each: Vec<Held> = std::thread::scope(|scope| {
        let workers: Vec<_> = ATTACKS
            .iter()
            .filter(|a| a.name != "all")
            .map(|a| scope.spawn(move || a.run(t, scale)))
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let mut held = Held::default();
    for h in each {
        held.join(h);
    }
    held
}
