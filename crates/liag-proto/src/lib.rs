//! The wire format of liag's link-aggregation protocol, version 4.
//!
//! liag joins several links (TCP connections, WebSockets, RFCOMM channels, ...) into one
//! reliable, ordered connection. This crate is the bottom of its stack and knows only bytes:
//!
//! | module | spec | what it holds |
//! |---|---|---|
//! | [`frame`] | §2 | the stream framing: length, frame counter, CRC-32 |
//! | [`message`] | §3 | the 16 link messages, encode and decode |
//! | [`inbound`] | §3.1 | pairing each Data message with its payload packet |
//! | [`seq`] | §7.2–7.3 | wrapping sequence numbers and the window |
//! | [`ids`], [`keys`] | §4 | server and connection ids, X25519 and the connection-id mask |
//! | [`extensions`] | §3.3 | the extension bit set |
//!
//! It is `no_std` (with `alloc`), runs no clocks and draws randomness only from RNGs passed in.
//! Decoders never panic on any input and never allocate beyond a limit checked first. The
//! `std` feature (on by default) only lets CRC-32 pick the fastest instructions at run time.
//!
//! The state machine that uses these types lives in `liag-core`; this crate is for those who
//! need only the wire format, such as analysers, fuzzers and other implementations.
//!
//! # Example: a packet through the framing and back
//!
//! ```
//! use bytes::BytesMut;
//! use liag_proto::frame::{FrameDecoder, FrameEncoder};
//! use liag_proto::inbound::{Inbound, InboundReader};
//! use liag_proto::message::Message;
//! use liag_proto::seq::Seq;
//!
//! // Sender: a Data message and its payload, as two frames.
//! let mut encoder = FrameEncoder::new();
//! let mut wire = BytesMut::new();
//! encoder.encode(&Message::Data { seq: Seq::new(0) }.to_bytes(), &mut wire)?;
//! encoder.encode(b"hi", &mut wire)?;
//!
//! // Receiver: bytes arrive in pieces of any size; frames come out whole.
//! let mut decoder = FrameDecoder::new();
//! let mut reader = InboundReader::new();
//! let mut buffered = BytesMut::new();
//! let mut received = Vec::new();
//! for piece in wire.chunks(3) {
//!     buffered.extend_from_slice(piece);
//!     while let Some(packet) = decoder.decode(&mut buffered)? {
//!         received.extend(reader.read(packet)?);
//!     }
//! }
//! assert_eq!(received, [Inbound::Data { seq: Seq::new(0), payload: "hi".into() }]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate alloc;

pub mod extensions;
pub mod frame;
pub mod ids;
pub mod inbound;
pub mod keys;
pub mod message;
pub mod seq;

pub use x25519_dalek::PublicKey;
