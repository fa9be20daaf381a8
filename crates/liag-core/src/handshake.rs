//! Link handshakes (spec §5) for both roles, and the responder's table of connections.
//!
//! A handshake runs on a fresh transport before the link joins a [`crate::Connection`]:
//!
//! ```text
//! initiator                          responder
//!     <-------------- Welcome ---------  Responder::new
//!     Initiator::handle_packet
//!     --------------- Connect -------->  Responder::handle_packet -> LinkRequest
//!                                        ConnectionTable::resolve
//!     <------ Accepted | Refused ------  accepted() / refused(reason)
//!     Initiator::handle_packet -> Accepted
//! ```
//!
//! Both sides make fresh X25519 keys per link from the RNG they are given. The driver enforces
//! the handshake timeout and, while a handshake runs, should lower its frame decoder's limit
//! to [`liag_proto::message::MAX_HANDSHAKE_LEN`].

use bytes::Bytes;
use rand_core::CryptoRng;
use std::collections::HashMap;
use std::fmt;

use liag_proto::extensions::{Extensions, LinkTier};
use liag_proto::ids::{ConnId, ServerId};
use liag_proto::keys::{KeyAgreementError, LinkKeyPair};
use liag_proto::message::{
    Connect, DecodeError, ExchangedConfig, Message, MessageKind, RefusedReason, UserData, Welcome,
};

/// Why a handshake failed. The transport is closed; nothing more is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The packet was not a valid message.
    Decode(DecodeError),
    /// A valid message, but not the one this step expects.
    Unexpected(MessageKind),
    /// The peer's key was unusable.
    KeyAgreement(KeyAgreementError),
    /// The responder refused the link.
    Refused(RefusedReason),
    /// A packet arrived after the handshake had finished.
    Finished,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Decode(e) => write!(f, "handshake: {e}"),
            HandshakeError::Unexpected(kind) => write!(f, "handshake: unexpected {kind} message"),
            HandshakeError::KeyAgreement(e) => write!(f, "handshake: {e}"),
            HandshakeError::Refused(reason) => write!(f, "link refused: {reason}"),
            HandshakeError::Finished => f.write_str("handshake already finished"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<HandshakeError> for std::io::Error {
    fn from(e: HandshakeError) -> Self {
        let kind = match e {
            HandshakeError::Refused(_) => std::io::ErrorKind::ConnectionRefused,
            _ => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, e)
    }
}

impl From<DecodeError> for HandshakeError {
    fn from(e: DecodeError) -> Self {
        HandshakeError::Decode(e)
    }
}

/// What the initiator offers on one link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitiatorParams {
    /// The connection's id.
    pub conn_id: ConnId,
    /// Whether an earlier link of this connection was accepted (§5.3 C3).
    pub existing_connection: bool,
    /// This endpoint's server id, if it also accepts links for the connection.
    pub server_id: Option<ServerId>,
    /// This endpoint's user data for the link.
    pub user_data: UserData,
    /// This endpoint's configuration.
    pub cfg: ExchangedConfig,
    /// The extensions Connect announces, such as the link's tier
    /// ([`Extensions::with_link_tier`]); none by default.
    pub extensions: Extensions,
}

impl InitiatorParams {
    /// Parameters with no server id and no user data.
    pub fn new(conn_id: ConnId, existing_connection: bool, cfg: ExchangedConfig) -> Self {
        InitiatorParams {
            conn_id,
            existing_connection,
            server_id: None,
            user_data: UserData::empty(),
            cfg,
            extensions: Extensions::NONE,
        }
    }
}

/// A step of the initiator's handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatorStep {
    /// The Welcome arrived: check its server id against the connection
    /// ([`crate::Connection::handle_server_id`]), send `connect`, and wait for the result.
    SendConnect {
        /// The Connect packet to send.
        connect: Bytes,
        /// What the responder said about itself.
        welcome: Welcome,
    },
    /// The link was accepted: attach it to the connection
    /// ([`crate::Connection::attach_link`]) with the Welcome's configuration.
    Accepted(Welcome),
}

#[derive(Debug)]
enum InitiatorState {
    AwaitWelcome(LinkKeyPair),
    AwaitResult(Welcome),
    Done,
}

/// The initiator's side of one link's handshake: it waits for Welcome, answers Connect, and
/// waits for Accepted or Refused.
#[derive(Debug)]
pub struct Initiator {
    params: InitiatorParams,
    state: InitiatorState,
}

impl Initiator {
    /// Starts a handshake with fresh keys. Nothing is sent until the Welcome arrives.
    pub fn new(params: InitiatorParams, rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Initiator {
            params,
            state: InitiatorState::AwaitWelcome(LinkKeyPair::generate(rng)),
        }
    }

    /// Handles the next packet from the responder.
    pub fn handle_packet(&mut self, packet: &Bytes) -> Result<InitiatorStep, HandshakeError> {
        // Any error ends the handshake: the state is taken first.
        let state = std::mem::replace(&mut self.state, InitiatorState::Done);
        if matches!(state, InitiatorState::Done) {
            return Err(HandshakeError::Finished);
        }
        let msg = Message::decode(packet)?;
        match state {
            InitiatorState::AwaitWelcome(keys) => {
                let welcome = match msg {
                    Message::Welcome(welcome) => welcome,
                    other => return Err(HandshakeError::Unexpected(other.kind())),
                };
                let public_key = keys.public_key();
                let mask = keys
                    .agree(&welcome.public_key)
                    .map_err(HandshakeError::KeyAgreement)?;
                let p = &self.params;
                // The link's tier and a request for redundancy go only to a responder that
                // said it applies them.
                let mut extensions = p.extensions;
                if !welcome.extensions.contains(Extensions::TIERS) {
                    extensions = extensions.with_link_tier(LinkTier::Primary);
                }
                if !welcome.extensions.contains(Extensions::REDUNDANT) {
                    extensions = extensions.without(Extensions::REDUNDANT);
                }
                let connect = Message::Connect(Connect {
                    extensions,
                    public_key,
                    server_id: p.server_id,
                    connection_id: p.conn_id.mask(&mask),
                    existing_connection: p.existing_connection,
                    user_data: p.user_data.clone(),
                    cfg: p.cfg,
                })
                .to_bytes();
                self.state = InitiatorState::AwaitResult(welcome.clone());
                Ok(InitiatorStep::SendConnect { connect, welcome })
            }
            InitiatorState::AwaitResult(welcome) => match msg {
                Message::Accepted => Ok(InitiatorStep::Accepted(welcome)),
                Message::Refused(reason) => Err(HandshakeError::Refused(reason)),
                other => Err(HandshakeError::Unexpected(other.kind())),
            },
            InitiatorState::Done => Err(HandshakeError::Finished),
        }
    }
}

/// What an initiator asked for, as the responder learns it from Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkRequest {
    /// The connection the link is for, unmasked.
    pub conn_id: ConnId,
    /// Whether the initiator says the connection exists already.
    pub existing_connection: bool,
    /// The initiator's server id, if it accepts links itself (informative only).
    pub server_id: Option<ServerId>,
    /// The initiator's user data.
    pub user_data: UserData,
    /// The initiator's configuration.
    pub cfg: ExchangedConfig,
    /// The extensions the initiator announced.
    pub extensions: Extensions,
}

/// The responder's side of one link's handshake: it sends Welcome and waits for Connect.
#[derive(Debug)]
pub struct Responder {
    keys: Option<LinkKeyPair>,
}

/// What a liag responder announces in Welcome by default: it applies a link's tier and sends
/// redundantly on request.
pub const RESPONDER_EXTENSIONS: Extensions = Extensions::TIERS.union(Extensions::REDUNDANT);

impl Responder {
    /// Starts a handshake with fresh keys; returns it and the Welcome packet to send first,
    /// announcing [`RESPONDER_EXTENSIONS`].
    pub fn new(
        server_id: ServerId,
        user_data: UserData,
        cfg: ExchangedConfig,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> (Self, Bytes) {
        Self::announcing(RESPONDER_EXTENSIONS, server_id, user_data, cfg, rng)
    }

    /// Like [`Responder::new`], announcing `extensions` (a server that does not send
    /// redundantly on request leaves out [`Extensions::REDUNDANT`]).
    pub fn announcing(
        extensions: Extensions,
        server_id: ServerId,
        user_data: UserData,
        cfg: ExchangedConfig,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> (Self, Bytes) {
        let keys = LinkKeyPair::generate(rng);
        let welcome = Message::Welcome(Welcome {
            extensions,
            public_key: keys.public_key(),
            server_id,
            user_data,
            cfg,
        })
        .to_bytes();
        (Responder { keys: Some(keys) }, welcome)
    }

    /// Handles the initiator's Connect. Afterwards, resolve the link with a
    /// [`ConnectionTable`] and send [`accepted`] or [`refused`].
    pub fn handle_packet(&mut self, packet: &Bytes) -> Result<LinkRequest, HandshakeError> {
        let keys = self.keys.take().ok_or(HandshakeError::Finished)?;
        let connect = match Message::decode(packet)? {
            Message::Connect(connect) => connect,
            other => return Err(HandshakeError::Unexpected(other.kind())),
        };
        let mask = keys
            .agree(&connect.public_key)
            .map_err(HandshakeError::KeyAgreement)?;
        Ok(LinkRequest {
            conn_id: connect.connection_id.unmask(&mask),
            existing_connection: connect.existing_connection,
            server_id: connect.server_id,
            user_data: connect.user_data,
            cfg: connect.cfg,
            extensions: connect.extensions,
        })
    }
}

/// The Accepted packet, the responder's first after Welcome when a link joins.
pub fn accepted() -> Bytes {
    Message::Accepted.to_bytes()
}

/// A Refused packet; the responder sends it, flushes and closes the transport.
pub fn refused(reason: RefusedReason) -> Bytes {
    Message::Refused(reason).to_bytes()
}

/// Where an incoming link goes (spec §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<H> {
    /// Join the existing connection with this handle.
    Join(H),
    /// Create a new incoming connection and offer it to the application.
    New,
    /// Refuse the link.
    Refuse(RefusedReason),
}

/// The responder's connections by id, and whether it takes new ones.
///
/// `H` is whatever the driver uses to reach a connection (a channel, an index).
#[derive(Debug)]
pub struct ConnectionTable<H> {
    connections: HashMap<ConnId, (H, bool)>,
    listening: bool,
    max_connections: usize,
}

impl<H: Clone> ConnectionTable<H> {
    /// An empty table that takes new connections, up to `max_connections`.
    pub fn new(max_connections: usize) -> Self {
        ConnectionTable {
            connections: HashMap::new(),
            listening: true,
            max_connections,
        }
    }

    /// Whether new connections are taken.
    pub fn set_listening(&mut self, listening: bool) {
        self.listening = listening;
    }

    /// Decides where a link for `conn_id` goes.
    pub fn resolve(&self, conn_id: ConnId, existing_connection: bool) -> Resolution<H> {
        match self.connections.get(&conn_id) {
            Some((handle, true)) => Resolution::Join(handle.clone()),
            Some((_, false)) => Resolution::Refuse(RefusedReason::Closed),
            None if existing_connection => Resolution::Refuse(RefusedReason::Closed),
            None if !self.listening || self.connections.len() >= self.max_connections => {
                Resolution::Refuse(RefusedReason::NotListening)
            }
            None => Resolution::New,
        }
    }

    /// Records a connection that takes links.
    pub fn insert(&mut self, conn_id: ConnId, handle: H) {
        self.connections.insert(conn_id, (handle, true));
    }

    /// Stops a connection from taking links (it is closing); later links are refused.
    pub fn stop_taking_links(&mut self, conn_id: ConnId) {
        if let Some(entry) = self.connections.get_mut(&conn_id) {
            entry.1 = false;
        }
    }

    /// Forgets a connection that has ended.
    pub fn remove(&mut self, conn_id: ConnId) -> Option<H> {
        self.connections.remove(&conn_id).map(|(h, _)| h)
    }

    /// [`stop_taking_links`](Self::stop_taking_links) for the entry under `conn_id` only if
    /// `is_it` says the entry is the caller's connection.
    ///
    /// An id is free again once its connection is forgotten (ended to make room, say), and a
    /// peer that knows it can open a new connection under it: the old connection's end, which
    /// may come seconds later, must not close or forget the new one's entry.
    pub fn stop_taking_links_if(&mut self, conn_id: ConnId, is_it: impl FnOnce(&H) -> bool) {
        if let Some(entry) = self.connections.get_mut(&conn_id) {
            if is_it(&entry.0) {
                entry.1 = false;
            }
        }
    }

    /// [`remove`](Self::remove) the entry under `conn_id` only if `is_it` says it is the
    /// caller's connection (see [`stop_taking_links_if`](Self::stop_taking_links_if)).
    pub fn remove_if(&mut self, conn_id: ConnId, is_it: impl FnOnce(&H) -> bool) -> Option<H> {
        match self.connections.get(&conn_id) {
            Some((handle, _)) if is_it(handle) => self.remove(conn_id),
            _ => None,
        }
    }

    /// Whether the table holds `max_connections`, so a new connection is refused.
    pub fn is_full(&self) -> bool {
        self.connections.len() >= self.max_connections
    }

    /// Every connection known, with its handle.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &H)> + '_ {
        self.connections.iter().map(|(id, (h, _))| (*id, h))
    }

    /// Number of connections known.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether no connection is known.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}
