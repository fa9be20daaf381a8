//! Throughput of the wire layer: frame encode and decode, message decode.

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use liag_proto::frame::{FrameDecoder, FrameEncoder, HEADER_LEN};
use liag_proto::message::Message;
use liag_proto::seq::Seq;
use std::hint::black_box;

const PAYLOAD: usize = 16 * 1024;
const FRAMES: usize = 64;

fn frames(c: &mut Criterion) {
    let payload = vec![0xA5u8; PAYLOAD];
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes((PAYLOAD * FRAMES) as u64));

    group.bench_function("encode 16 KiB", |b| {
        let mut out = BytesMut::with_capacity(FRAMES * (PAYLOAD + HEADER_LEN));
        b.iter(|| {
            let mut enc = FrameEncoder::new();
            out.clear();
            for _ in 0..FRAMES {
                enc.encode(black_box(&payload), &mut out)
                    .expect("payload under the limit");
            }
        })
    });

    let mut wire = BytesMut::new();
    let mut enc = FrameEncoder::new();
    for _ in 0..FRAMES {
        enc.encode(&payload, &mut wire)
            .expect("payload under the limit");
    }
    let wire = wire.freeze();
    group.bench_function("decode 16 KiB", |b| {
        b.iter(|| {
            let mut dec = FrameDecoder::new();
            let mut src = BytesMut::from(&wire[..]);
            let mut n = 0;
            while let Some(p) = dec.decode(&mut src).expect("valid frames") {
                n += p.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

fn messages(c: &mut Criterion) {
    let data = Message::Data { seq: Seq::new(42) }.to_bytes();
    let consumed = Message::Consumed {
        seq: Seq::new(7),
        consumed: 65536,
    }
    .to_bytes();
    let mut group = c.benchmark_group("message");
    group.bench_function("decode Data", |b| {
        b.iter(|| Message::decode(black_box(&data)))
    });
    group.bench_function("decode Consumed", |b| {
        b.iter(|| Message::decode(black_box(&consumed)))
    });
    group.bench_function("encode Ack", |b| {
        let mut out = BytesMut::with_capacity(64);
        b.iter(|| {
            out.clear();
            Message::Ack {
                received: black_box(Seq::new(9)),
            }
            .encode(&mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, frames, messages);
criterion_main!(benches);
