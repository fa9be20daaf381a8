//! Real traffic captured from aggligator 0.9.11 (`tests/data/`, each capture with a README of what
//! was sent): every frame decodes, and the Data payloads of all links reassemble into exactly
//! the bytes the application sent.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::{Bytes, BytesMut};
use liag_proto::frame::{FrameDecoder, FrameError};
use liag_proto::inbound::{Inbound, InboundReader};
use liag_proto::message::{Message, MessageKind};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;

fn vectors_dir(capture: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(capture)
}

/// What one captured link direction decodes to.
struct Decoded {
    messages: Vec<Inbound>,
    /// The error at the end of the file, if it ends inside a frame.
    tail: Option<FrameError>,
    /// A Data message whose payload frame never arrived.
    dangling_data: bool,
}

/// Decodes a whole capture file, feeding it in `piece`-byte reads like a socket would.
fn decode_file(capture: &str, file: &str, piece: usize) -> Decoded {
    let path = vectors_dir(capture).join(file);
    let gz = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();

    let mut decoder = FrameDecoder::new();
    let mut reader = InboundReader::new();
    let mut buffered = BytesMut::new();
    let mut messages = Vec::new();
    for chunk in raw.chunks(piece) {
        buffered.extend_from_slice(chunk);
        while let Some(packet) = decoder
            .decode(&mut buffered)
            .unwrap_or_else(|e| panic!("{file}: frame error mid-stream: {e}"))
        {
            let inbound = reader
                .read(packet)
                .unwrap_or_else(|e| panic!("{file}: message error: {e}"));
            messages.extend(inbound);
        }
    }
    let tail = decoder.decode_eof(&mut buffered).err();
    Decoded {
        messages,
        tail,
        dangling_data: reader.awaiting_payload().is_some(),
    }
}

/// Keeps one payload per sequence number (copies must be identical) and concatenates in order.
fn reassemble(links: &[&Decoded]) -> Vec<u8> {
    let mut by_seq: BTreeMap<u32, Bytes> = BTreeMap::new();
    for link in links {
        for msg in &link.messages {
            if let Inbound::Data { seq, payload } = msg {
                if let Some(earlier) = by_seq.insert(seq.get(), payload.clone()) {
                    assert_eq!(earlier, payload, "two different payloads for seq {seq}");
                }
            }
        }
    }
    // These captures never wrap the sequence space, so numeric order is sequence order.
    by_seq.values().flat_map(|p| p.iter().copied()).collect()
}

fn pattern(len: usize) -> impl Iterator<Item = u8> {
    (0..len).map(|i| (i * 7 + 3) as u8)
}

fn kinds(decoded: &Decoded) -> HashMap<MessageKind, usize> {
    let mut counts = HashMap::new();
    for msg in &decoded.messages {
        let kind = match msg {
            Inbound::Message(m) => m.kind(),
            Inbound::Data { .. } => MessageKind::Data,
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

#[test]
fn two_links_echo() {
    const CAPTURE: &str = "aggligator-0.9.11-echo-two-links";
    // Odd read sizes put frame boundaries everywhere within a read.
    for piece in [1 << 16, 1447, 7] {
        let get = |file| decode_file(CAPTURE, file, piece);
        let (a_c2s, a_s2c) = (
            get("link-a.client-to-server.bin.gz"),
            get("link-a.server-to-client.bin.gz"),
        );
        let (b_c2s, b_s2c) = (
            get("link-b.client-to-server.bin.gz"),
            get("link-b.server-to-client.bin.gz"),
        );
        for d in [&a_c2s, &a_s2c, &b_c2s, &b_s2c] {
            assert_eq!(d.tail, None);
            assert!(!d.dangling_data);
        }

        // Each link opens with the handshake: Welcome (user data "lo") then Accepted from the
        // server, Connect from the client.
        for s2c in [&a_s2c, &b_s2c] {
            let Inbound::Message(Message::Welcome(welcome)) = &s2c.messages[0] else {
                panic!("server's first message is {:?}", s2c.messages[0]);
            };
            assert_eq!(&welcome.user_data.as_bytes()[..], b"lo");
            assert_eq!(s2c.messages[1], Inbound::Message(Message::Accepted));
        }
        for c2s in [&a_c2s, &b_c2s] {
            assert!(matches!(
                c2s.messages[0],
                Inbound::Message(Message::Connect(_))
            ));
        }
        // Link a carries every kind the capture's README lists, in both directions.
        for d in [&a_c2s, &a_s2c] {
            let k = kinds(d);
            for kind in [
                MessageKind::TestData,
                MessageKind::Data,
                MessageKind::Ack,
                MessageKind::Consumed,
            ] {
                assert!(k.contains_key(&kind), "no {kind} in link a");
            }
        }

        let mut c2s_expected = b"\x15\x19hello liag\n".to_vec();
        c2s_expected.extend(pattern(300_000));
        let s2c_expected = &c2s_expected[2..];
        assert_eq!(reassemble(&[&a_c2s, &b_c2s]).len(), 300_013);
        assert!(reassemble(&[&a_c2s, &b_c2s]) == c2s_expected);
        assert!(reassemble(&[&a_s2c, &b_s2c]) == s2c_expected);
        // Both links carried data.
        for d in [&a_c2s, &b_c2s] {
            assert!(kinds(d).get(&MessageKind::Data).copied().unwrap_or(0) > 0);
        }
    }
}

#[test]
fn three_links_one_cut() {
    const CAPTURE: &str = "aggligator-0.9.11-echo-three-links-one-cut";
    let get = |file: &str| decode_file(CAPTURE, file, 4096);
    let links: Vec<(Decoded, Decoded)> = ["a", "b", "c"]
        .iter()
        .map(|l| {
            (
                get(&format!("link-{l}.client-to-server.bin.gz")),
                get(&format!("link-{l}.server-to-client.bin.gz")),
            )
        })
        .collect();

    // The cut link's client-to-server stream ends inside a frame: reported, not fatal.
    let cut = &links[0].0;
    // The stream stops 4,921 bytes into the payload frame of a Data message.
    assert_eq!(cut.tail, Some(FrameError::Truncated { buffered: 4921 }));
    assert!(cut.dangling_data);
    for (c2s, s2c) in &links[1..] {
        assert_eq!(c2s.tail, None);
        assert_eq!(s2c.tail, None);
    }

    // Resent Data appears on more than one link, always with the same payload.
    let mut copies: HashMap<u32, usize> = HashMap::new();
    for (c2s, _) in &links {
        for msg in &c2s.messages {
            if let Inbound::Data { seq, .. } = msg {
                *copies.entry(seq.get()).or_default() += 1;
            }
        }
    }
    // Three Data messages were in flight on the cut link and were sent again on the others.
    assert_eq!(copies.values().filter(|&&n| n > 1).count(), 3);

    let mut c2s_expected = b"\x15\x19".to_vec();
    c2s_expected.extend(pattern(4_000_000));
    let c2s: Vec<&Decoded> = links.iter().map(|(c, _)| c).collect();
    let s2c: Vec<&Decoded> = links.iter().map(|(_, s)| s).collect();
    let c2s_got = reassemble(&c2s);
    assert_eq!(c2s_got.len(), 4_000_002);
    assert!(c2s_got == c2s_expected);
    assert!(reassemble(&s2c) == c2s_expected[2..]);
}
