//! Every test vector of the protocol specification (§2.8, §3.16, §4.6, Appendix A).

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use bytes::{Bytes, BytesMut};
use core::num::NonZeroU32;
use liag_proto::PublicKey;
use liag_proto::extensions::Extensions;
use liag_proto::frame::{FrameDecoder, FrameEncoder, FrameHeader, HEADER_LEN, checksum};
use liag_proto::ids::{ConnId, MaskedConnId, ServerId};
use liag_proto::keys::{KeyAgreementError, LinkKeyPair};
use liag_proto::message::{Connect, ExchangedConfig, Message, RefusedReason, UserData, Welcome};
use liag_proto::seq::Seq;

/// Parses hex with any whitespace or `|` separators.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert!(digits.len() % 2 == 0, "odd hex digit count in {text:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn array<const N: usize>(text: &str) -> [u8; N] {
    hex(text).try_into().unwrap()
}

#[test]
fn crc_check_values() {
    assert_eq!(checksum(b"123456789"), 0xCBF4_3926);
    assert_eq!(checksum(b""), 0);
}

/// §2.8: each frame, encoded with the right counter and decoded back.
#[test]
fn frame_vectors() {
    let cases: &[(u16, &str, &str)] = &[
        (0, "00000005 0000 3610a686", "68656c6c6f"),
        (1, "00000000 0001 00000000", ""),
        (1, "00000001 0001 4b0bbe37", "03"),
        (65535, "00000001 ffff a2681b02", "05"),
        (1, "00000005 0001 74022b0d", "0700000000"),
        (2, "00000002 0002 d8932aac", "6869"),
    ];
    for &(frame_seq, header, payload) in cases {
        let (header, payload) = (hex(header), hex(payload));
        let mut enc = FrameEncoder::new();
        for _ in 0..frame_seq {
            enc.header(b"").unwrap();
        }
        assert_eq!(enc.header(&payload).unwrap().as_slice(), header.as_slice());

        let parsed = FrameHeader::parse(header.as_slice().try_into().unwrap());
        assert_eq!(parsed.frame_seq, frame_seq);
        assert_eq!(parsed.len as usize, payload.len());
        assert_eq!(parsed.checksum, checksum(&payload));
    }
}

/// §2.8's Data frame and its payload frame, decoded as one stream.
#[test]
fn data_frame_pair_decodes() {
    let mut wire = BytesMut::from(
        &hex("00000005 0000 3610a686 68656c6c6f \
         00000005 0001 74022b0d 0700000000 \
         00000002 0002 d8932aac 6869")[..],
    );
    let mut dec = FrameDecoder::new();
    let payloads: Vec<Bytes> = std::iter::from_fn(|| dec.decode(&mut wire).unwrap()).collect();
    assert_eq!(payloads, [&b"hello"[..], &hex("0700000000")[..], b"hi"]);
    assert_eq!(
        Message::decode(&payloads[1]),
        Ok(Message::Data { seq: Seq::ZERO })
    );
}

/// §3.16: every fixed-size message, both ways.
#[test]
fn message_vectors() {
    let cases: Vec<(Message, &str)> = vec![
        (Message::Accepted, "03"),
        (Message::Refused(RefusedReason::NotListening), "04 02"),
        (Message::Ping, "05"),
        (Message::Pong, "06"),
        (
            Message::Data {
                seq: Seq::new(0x0102_0304),
            },
            "07 01020304",
        ),
        (
            Message::Ack {
                received: Seq::new(7),
            },
            "08 00000007",
        ),
        (
            Message::Consumed {
                seq: Seq::new(8),
                consumed: 65536,
            },
            "09 00000008 00010000",
        ),
        (Message::SendFinish { seq: Seq::new(9) }, "0a 00000009"),
        (Message::ReceiveClose { seq: Seq::new(10) }, "0b 0000000a"),
        (Message::ReceiveFinish { seq: Seq::new(11) }, "0c 0000000b"),
        (Message::TestData { len: 5 }, "0d 0001020304"),
        (Message::SetBlock { blocked: true }, "0e 01"),
        (Message::Goodbye, "0f"),
        (Message::Terminate, "10"),
    ];
    for (msg, wire) in cases {
        let wire = Bytes::from(hex(wire));
        assert_eq!(msg.to_bytes(), wire, "encoding {msg:?}");
        assert_eq!(msg.encoded_len(), wire.len(), "length of {msg:?}");
        assert_eq!(Message::decode(&wire), Ok(msg));
    }
}

/// §3.1 rule 2: trailing bytes are ignored; rule 5: any non-zero boolean is true.
#[test]
fn lenient_parsing_rules() {
    assert_eq!(
        Message::decode(&Bytes::from_static(&[5, 1, 2, 3])),
        Ok(Message::Ping)
    );
    assert_eq!(
        Message::decode(&Bytes::from_static(&[14, 0x80])),
        Ok(Message::SetBlock { blocked: true })
    );
}

const INITIATOR_SCALAR: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const INITIATOR_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const ACCEPTOR_SCALAR: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const ACCEPTOR_PUBLIC: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const CONN_ID: u128 = 0x0123456789abcdef0011223344556677;
const MASKED_CONN_ID: u128 = 0x4b7ed83c2d65e00e729f19c7c4606952;

/// §4.6: RFC 7748's keys give the documented shared secret and masked connection id.
#[test]
fn key_agreement_vector() {
    let initiator = LinkKeyPair::from_scalar(array(INITIATOR_SCALAR));
    let acceptor = LinkKeyPair::from_scalar(array(ACCEPTOR_SCALAR));
    assert_eq!(
        initiator.public_key().as_bytes(),
        &array::<32>(INITIATOR_PUBLIC)
    );
    assert_eq!(
        acceptor.public_key().as_bytes(),
        &array::<32>(ACCEPTOR_PUBLIC)
    );

    let acceptor_public = acceptor.public_key();
    let initiator_mask = initiator.agree(&acceptor_public).unwrap();
    let acceptor_mask = acceptor
        .agree(&PublicKey::from(array::<32>(INITIATOR_PUBLIC)))
        .unwrap();
    assert_eq!(initiator_mask, acceptor_mask);
    // The mask is the first half of the shared secret 4a5d9d5b…
    assert_eq!(
        initiator_mask.as_bytes(),
        &array::<16>("4a5d9d5ba4ce2de1728e3bf480350f25")
    );

    let masked = ConnId::new(CONN_ID).mask(&initiator_mask);
    assert_eq!(masked, MaskedConnId::new(MASKED_CONN_ID));
    assert_eq!(masked.unmask(&acceptor_mask), ConnId::new(CONN_ID));
}

/// An all-zero (low-order) public key would give an all-zero secret and reveal the id.
#[test]
fn non_contributory_key_is_refused() {
    let keys = LinkKeyPair::from_scalar(array(INITIATOR_SCALAR));
    assert_eq!(
        keys.agree(&PublicKey::from([0; 32])),
        Err(KeyAgreementError::NonContributory)
    );
    // The point of order 8 from the curve's small subgroup: also refused.
    let keys = LinkKeyPair::from_scalar(array(INITIATOR_SCALAR));
    let order8 = array::<32>("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
    assert_eq!(
        keys.agree(&PublicKey::from(order8)),
        Err(KeyAgreementError::NonContributory)
    );
}

fn cfg_64_mib() -> ExchangedConfig {
    ExchangedConfig {
        recv_buffer: NonZeroU32::new(64 << 20).unwrap(),
    }
}

/// Appendix A: the Welcome and Connect of the handshake transcript, byte for byte, in frames.
#[test]
fn handshake_transcript() {
    let acceptor = LinkKeyPair::from_scalar(array(ACCEPTOR_SCALAR));
    let initiator = LinkKeyPair::from_scalar(array(INITIATOR_SCALAR));

    let welcome = Message::Welcome(Welcome {
        extensions: Extensions::NONE,
        public_key: acceptor.public_key(),
        server_id: ServerId::new(0x11112222333344445555666677778888).unwrap(),
        user_data: UserData::new(Bytes::from_static(b"eth0")).unwrap(),
        cfg: cfg_64_mib(),
    });
    let welcome_wire = hex("00000045 0000 c1c74a80
         01 4c49414700 04 00000000
         de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f
         11112222333344445555666677778888 0004 65746830 04000000");
    let mask = initiator.agree(&acceptor.public_key()).unwrap();
    let connect = Message::Connect(Connect {
        extensions: Extensions::NONE,
        public_key: LinkKeyPair::from_scalar(array(INITIATOR_SCALAR)).public_key(),
        server_id: None,
        connection_id: ConnId::new(CONN_ID).mask(&mask),
        existing_connection: false,
        user_data: UserData::empty(),
        cfg: cfg_64_mib(),
    });
    let connect_wire = hex("00000052 0000 52441f44
         02 4c49414700 04 00000000
         8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a
         00000000000000000000000000000000 4b7ed83c2d65e00e729f19c7c4606952 00 0000 04000000");
    let accepted_wire = hex("00000001 0001 4b0bbe37 03");

    // Acceptor's direction: Welcome is frame 0, Accepted frame 1.
    let mut enc = FrameEncoder::new();
    let mut out = BytesMut::new();
    enc.encode(&welcome.to_bytes(), &mut out).unwrap();
    assert_eq!(&out[..], &welcome_wire[..]);
    out.clear();
    enc.encode(&Message::Accepted.to_bytes(), &mut out).unwrap();
    assert_eq!(&out[..], &accepted_wire[..]);

    // Initiator's direction: Connect is frame 0.
    let mut out = BytesMut::new();
    FrameEncoder::new()
        .encode(&connect.to_bytes(), &mut out)
        .unwrap();
    assert_eq!(&out[..], &connect_wire[..]);

    // And both decode back to what was encoded.
    for (msg, wire) in [(welcome, welcome_wire), (connect, connect_wire)] {
        let payload = Bytes::copy_from_slice(&wire[HEADER_LEN..]);
        assert_eq!(Message::decode(&payload), Ok(msg));
    }
}
