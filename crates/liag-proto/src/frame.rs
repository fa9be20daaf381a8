//! Stream framing (spec §2): length, frame counter and CRC-32 around every packet.
//!
//! Stream transports (TCP, WebSocket, RFCOMM, TLS) carry packets as frames:
//!
//! ```text
//! +----------------+---------------+------------------+-------------------+
//! | length: u32 BE | frame_seq: u16 | checksum: u32 BE | payload (length) |
//! +----------------+---------------+------------------+-------------------+
//! ```
//!
//! The checksum is CRC-32/ISO-HDLC of the payload. Each direction of a link counts its frames
//! from 0, wrapping at 2¹⁶. Any error fails the link: there is no resynchronisation.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::fmt;

/// Size of a frame header in bytes.
pub const HEADER_LEN: usize = 10;

/// Largest payload a frame may carry: 8 MiB, inclusive (spec §2.5).
pub const MAX_PAYLOAD_LEN: u32 = 8 * 1024 * 1024;

/// The CRC-32/ISO-HDLC checksum of `payload`, as carried in a frame header.
pub fn checksum(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes, not counting the header.
    pub len: u32,
    /// Per-direction frame counter.
    pub frame_seq: u16,
    /// CRC-32/ISO-HDLC of the payload.
    pub checksum: u32,
}

impl FrameHeader {
    /// Reads a header from its 10 wire bytes.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let mut b = &bytes[..];
        FrameHeader {
            len: b.get_u32(),
            frame_seq: b.get_u16(),
            checksum: b.get_u32(),
        }
    }

    /// The 10 wire bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        let mut b = &mut out[..];
        b.put_u32(self.len);
        b.put_u16(self.frame_seq);
        b.put_u32(self.checksum);
        out
    }
}

/// Why a frame could not be encoded or decoded. Every variant fails the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The payload is longer than the limit in force.
    PayloadTooLong {
        /// Length declared by the header, or of the payload to encode.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// The frame counter was not the expected one: stream data was lost or duplicated.
    FrameSeqSkipped {
        /// The counter value the decoder expected.
        expected: u16,
        /// The value in the header.
        found: u16,
    },
    /// The payload's CRC-32 differs from the header's.
    ChecksumMismatch {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the received payload.
        computed: u32,
    },
    /// The stream ended inside a frame.
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::PayloadTooLong { len, max } => {
                write!(
                    f,
                    "frame payload of {len} bytes exceeds the limit of {max} bytes"
                )
            }
            FrameError::FrameSeqSkipped { expected, found } => {
                write!(
                    f,
                    "frame counter skipped: expected {expected}, found {found}"
                )
            }
            FrameError::ChecksumMismatch { expected, computed } => write!(
                f,
                "frame checksum mismatch: header says {expected:#010x}, payload has {computed:#010x}"
            ),
            FrameError::Truncated { buffered } => {
                write!(
                    f,
                    "stream ended inside a frame after {buffered} bytes of it"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// Encodes frames for one direction of one link, numbering them from 0.
#[derive(Debug, Clone, Default)]
pub struct FrameEncoder {
    next_frame_seq: u16,
}

impl FrameEncoder {
    /// An encoder whose first frame carries counter 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter the next frame will carry.
    pub fn next_frame_seq(&self) -> u16 {
        self.next_frame_seq
    }

    /// Makes the header for `payload` and advances the counter.
    ///
    /// Use this to write the header and the payload with one vectored write, without copying
    /// the payload. Fails without advancing the counter if the payload exceeds 8 MiB.
    pub fn header(&mut self, payload: &[u8]) -> Result<[u8; HEADER_LEN], FrameError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= MAX_PAYLOAD_LEN)
            .ok_or(FrameError::PayloadTooLong {
                len: payload.len() as u64,
                max: MAX_PAYLOAD_LEN,
            })?;
        let header = FrameHeader {
            len,
            frame_seq: self.next_frame_seq,
            checksum: checksum(payload),
        };
        self.next_frame_seq = self.next_frame_seq.wrapping_add(1);
        Ok(header.to_bytes())
    }

    /// Appends one whole frame (header and payload) to `dst`.
    pub fn encode(&mut self, payload: &[u8], dst: &mut impl BufMut) -> Result<(), FrameError> {
        let header = self.header(payload)?;
        dst.put_slice(&header);
        dst.put_slice(payload);
        Ok(())
    }
}

/// Incremental frame decoder for one direction of one link.
///
/// Feed it the bytes received so far in a [`BytesMut`]; every call to [`FrameDecoder::decode`]
/// takes at most one whole frame off the front and returns its payload without copying it.
/// The payload limit is checked as soon as a header is complete, before any payload arrives,
/// and the decoder itself never allocates. After an error the decoder stays failed and
/// returns the same error again.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    expected_frame_seq: u16,
    max_payload_len: u32,
    /// Header of the frame whose payload is still arriving.
    pending: Option<FrameHeader>,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder expecting counter 0 and accepting payloads up to [`MAX_PAYLOAD_LEN`].
    pub fn new() -> Self {
        Self::with_max_payload_len(MAX_PAYLOAD_LEN)
    }

    /// A decoder with a lower payload limit, for example during a handshake, where no
    /// legitimate packet exceeds a Connect with 64 KiB of user data. Values above
    /// [`MAX_PAYLOAD_LEN`] are lowered to it.
    pub fn with_max_payload_len(max: u32) -> Self {
        FrameDecoder {
            expected_frame_seq: 0,
            max_payload_len: max.min(MAX_PAYLOAD_LEN),
            pending: None,
            failed: None,
        }
    }

    /// Changes the payload limit, for example once a handshake completes.
    pub fn set_max_payload_len(&mut self, max: u32) {
        self.max_payload_len = max.min(MAX_PAYLOAD_LEN);
    }

    /// The payload limit in force.
    pub fn max_payload_len(&self) -> u32 {
        self.max_payload_len
    }

    /// How many more bytes the frame in progress needs; at most header plus the limit.
    ///
    /// A driver may reserve this much in its read buffer: it is never more than the decoder has
    /// already checked against its limit.
    pub fn bytes_needed(&self, buffered: usize) -> usize {
        let whole = match self.pending {
            Some(header) => header.len as usize,
            None => HEADER_LEN,
        };
        whole.saturating_sub(buffered)
    }

    /// Takes the next whole frame off the front of `src` and returns its payload, or `None`
    /// if `src` does not hold a whole frame yet.
    ///
    /// `src` is a [`BytesMut`] being filled by reads, or [`Bytes`] already read.
    pub fn decode<B: FrameBuf>(&mut self, src: &mut B) -> Result<Option<Bytes>, FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let result = self.decode_inner(src);
        if let Err(err) = result {
            self.failed = Some(err);
        }
        result
    }

    /// Like [`FrameDecoder::decode`], for when the stream has ended: leftover bytes that do not
    /// make a whole frame are reported as [`FrameError::Truncated`].
    pub fn decode_eof<B: FrameBuf>(&mut self, src: &mut B) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(payload) => Ok(Some(payload)),
            None if src.is_empty() && self.pending.is_none() => Ok(None),
            None => {
                let header = if self.pending.is_some() {
                    HEADER_LEN
                } else {
                    0
                };
                let err = FrameError::Truncated {
                    buffered: header + src.len(),
                };
                self.failed = Some(err);
                Err(err)
            }
        }
    }

    fn decode_inner<B: FrameBuf>(&mut self, src: &mut B) -> Result<Option<Bytes>, FrameError> {
        let header = match self.pending {
            Some(header) => header,
            None => {
                let Some(raw) = src.first_chunk::<HEADER_LEN>() else {
                    return Ok(None);
                };
                let header = FrameHeader::parse(raw);
                if header.len > self.max_payload_len {
                    return Err(FrameError::PayloadTooLong {
                        len: header.len.into(),
                        max: self.max_payload_len,
                    });
                }
                if header.frame_seq != self.expected_frame_seq {
                    return Err(FrameError::FrameSeqSkipped {
                        expected: self.expected_frame_seq,
                        found: header.frame_seq,
                    });
                }
                src.advance(HEADER_LEN);
                self.pending = Some(header);
                header
            }
        };
        let len = header.len as usize;
        if src.len() < len {
            return Ok(None);
        }
        let payload = src.take_front(len);
        let computed = checksum(&payload);
        if computed != header.checksum {
            return Err(FrameError::ChecksumMismatch {
                expected: header.checksum,
                computed,
            });
        }
        self.pending = None;
        self.expected_frame_seq = self.expected_frame_seq.wrapping_add(1);
        Ok(Some(payload))
    }
}

/// A buffer the decoder takes frames off the front of: the bytes read so far.
pub trait FrameBuf: Buf + core::ops::Deref<Target = [u8]> {
    /// Removes the first `n` bytes (at most `len()`) and returns them without copying.
    fn take_front(&mut self, n: usize) -> Bytes;
}

impl FrameBuf for BytesMut {
    fn take_front(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }
}

impl FrameBuf for Bytes {
    fn take_front(&mut self, n: usize) -> Bytes {
        self.split_to(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_header_is_refused_before_the_payload() {
        let mut dec = FrameDecoder::new();
        let mut src = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            dec.decode(&mut src),
            Err(FrameError::PayloadTooLong {
                len: 0xffff_ffff,
                max: MAX_PAYLOAD_LEN
            })
        );
        // The decoder stays failed.
        assert!(dec.decode(&mut BytesMut::new()).is_err());
    }

    #[test]
    fn exactly_the_limit_is_allowed() {
        let mut dec = FrameDecoder::new();
        let mut src = BytesMut::new();
        src.put_u32(MAX_PAYLOAD_LEN);
        src.put_u16(0);
        src.put_u32(0);
        assert_eq!(dec.decode(&mut src), Ok(None));
        assert_eq!(dec.bytes_needed(0), MAX_PAYLOAD_LEN as usize);
    }

    #[test]
    fn encoder_refuses_oversized_payload_without_counting_it() {
        let mut enc = FrameEncoder::new();
        let big = alloc::vec![0u8; MAX_PAYLOAD_LEN as usize + 1];
        assert!(enc.header(&big).is_err());
        assert_eq!(enc.next_frame_seq(), 0);
    }

    #[test]
    fn frame_counter_wraps() {
        let mut enc = FrameEncoder::new();
        let mut dec = FrameDecoder::new();
        let mut wire = BytesMut::new();
        for i in 0..=u16::MAX as u32 + 2 {
            enc.encode(&i.to_be_bytes(), &mut wire).unwrap();
            let payload = dec.decode(&mut wire).unwrap().unwrap();
            assert_eq!(&payload[..], &i.to_be_bytes());
        }
        assert_eq!(enc.next_frame_seq(), 2); // 65,538 frames sent
    }

    #[test]
    fn skipped_frame_is_detected() {
        let mut enc = FrameEncoder::new();
        let mut wire = BytesMut::new();
        enc.header(b"lost").unwrap();
        enc.encode(b"next", &mut wire).unwrap();
        assert_eq!(
            FrameDecoder::new().decode(&mut wire),
            Err(FrameError::FrameSeqSkipped {
                expected: 0,
                found: 1
            })
        );
    }

    #[test]
    fn truncated_tail_is_reported_at_eof() {
        let mut enc = FrameEncoder::new();
        let mut wire = BytesMut::new();
        enc.encode(b"hello", &mut wire).unwrap();
        wire.truncate(12);
        let mut dec = FrameDecoder::new();
        assert_eq!(
            dec.decode_eof(&mut wire),
            Err(FrameError::Truncated { buffered: 12 })
        );
    }

    #[test]
    fn frames_come_off_bytes_as_off_bytes_mut_and_share_their_memory() {
        let mut enc = FrameEncoder::new();
        let mut wire = BytesMut::new();
        for payload in [&b"one"[..], b"", b"three"] {
            enc.encode(payload, &mut wire).unwrap();
        }
        let mut read = wire.clone().freeze();
        let start = read.as_ptr() as usize;
        let mut from_bytes = FrameDecoder::new();
        let mut from_mut = FrameDecoder::new();
        for _ in 0..3 {
            let a = from_bytes.decode(&mut read).unwrap().unwrap();
            let b = from_mut.decode(&mut wire).unwrap().unwrap();
            assert_eq!(a, b);
            // A slice of what was read, not a copy.
            let at = a.as_ptr() as usize;
            assert!(a.is_empty() || (start..start + 64).contains(&at));
        }
        assert_eq!(from_bytes.decode_eof(&mut read), Ok(None));
    }
}
