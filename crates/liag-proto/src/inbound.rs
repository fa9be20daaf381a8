//! Turning a link's packets into messages, pairing each Data with its payload packet.
//!
//! Data is the one message that spans two packets (spec §3.1 rule 4): the very next packet
//! after a Data message on the same link is its payload, whatever its first byte.

use bytes::Bytes;

use crate::message::{DecodeError, Message};
use crate::seq::Seq;

/// What a link delivered: a message, or a Data message together with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Any message but Data.
    Message(Message),
    /// A Data message and its payload.
    Data {
        /// The Data message's sequence number.
        seq: Seq,
        /// The payload packet. An empty payload is valid on the wire.
        payload: Bytes,
    },
}

/// Per-link packet reader that knows whether the next packet is a Data payload.
#[derive(Debug, Clone, Default)]
pub struct InboundReader {
    awaiting_payload: Option<Seq>,
}

impl InboundReader {
    /// A reader at a message boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a Data message arrived whose payload packet has not.
    ///
    /// When a link ends in this state, that Data message is lost; its sender resends it.
    pub fn awaiting_payload(&self) -> Option<Seq> {
        self.awaiting_payload
    }

    /// Reads one packet. Returns `None` after a Data message, whose payload is the next packet.
    pub fn read(&mut self, packet: Bytes) -> Result<Option<Inbound>, DecodeError> {
        if let Some(seq) = self.awaiting_payload.take() {
            return Ok(Some(Inbound::Data {
                seq,
                payload: packet,
            }));
        }
        match Message::decode(&packet)? {
            Message::Data { seq } => {
                self.awaiting_payload = Some(seq);
                Ok(None)
            }
            msg => Ok(Some(Inbound::Message(msg))),
        }
    }
}
