//! Bluetooth RFCOMM links through BlueZ (spec §12: a stream transport, framed like TCP):
//! [`RfcommAcceptor`] listens on a channel or registers a service UUID, [`RfcommConnector`]
//! keeps one link per local adapter towards a device, by channel or by service UUID.
//!
//! Needs Linux with BlueZ (bluetoothd on D-Bus) for adapters and profiles; errors say when
//! BlueZ, an adapter or the peer is missing.

use futures::StreamExt;
use liag_tokio::BoxFuture;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::Mutex;

use bluer::rfcomm::{self, Listener, Profile, ProfileHandle, Role, Socket};
use bluer::{Adapter, Session};
pub use bluer::{Address, Uuid};

use liag_tokio::{Connection, EndpointConfig};
use liag_tokio::{UserData, Welcome};

use crate::error::{ConnectError, RfcommTargetError};
use crate::stream::{BoxStream, StreamAcceptor, StreamConnector, box_stream};
use crate::transport::{Accepted, Links, connect_with};

/// agg-speed's RFCOMM channel.
pub const DEFAULT_CHANNEL: u8 = 20;
/// agg-speed's RFCOMM service UUID.
pub const AGG_SPEED_UUID: Uuid = Uuid::from_u128(0x7f95058c_c00e_44a9_9003_2ce90d60e2e7);
/// Time allowed for an RFCOMM connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

fn user_data(text: &str) -> UserData {
    UserData::new(bytes::Bytes::copy_from_slice(text.as_bytes())).unwrap_or_default()
}

fn bt_error(what: impl fmt::Display) -> impl FnOnce(bluer::Error) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

/// Connects to BlueZ over D-Bus; the error says BlueZ is not there.
async fn session() -> io::Result<Session> {
    Session::new().await.map_err(|e| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("BlueZ is not reachable over D-Bus (is bluetoothd running?): {e}"),
        )
    })
}

/// The powered local adapters with their addresses; an error if there is none.
async fn adapters(session: &Session) -> io::Result<Vec<(String, Adapter, Address)>> {
    let names = session
        .adapter_names()
        .await
        .map_err(bt_error("cannot list Bluetooth adapters"))?;
    let mut found = Vec::new();
    for name in names {
        let adapter = session
            .adapter(&name)
            .map_err(bt_error(format!("adapter {name}")))?;
        if adapter.is_powered().await.unwrap_or(false) {
            let address = adapter
                .address()
                .await
                .map_err(bt_error(format!("adapter {name}")))?;
            found.push((name, adapter, address));
        }
    }
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no powered Bluetooth adapter",
        ));
    }
    Ok(found)
}

/// Where on the peer device links go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RfcommService {
    /// A fixed RFCOMM channel (1 to 30).
    Channel(u8),
    /// A service UUID the peer registered; BlueZ finds its channel through SDP.
    Uuid(Uuid),
}

impl fmt::Display for RfcommService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RfcommService::Channel(c) => write!(f, "channel {c}"),
            RfcommService::Uuid(u) => write!(f, "service {u}"),
        }
    }
}

impl FromStr for RfcommService {
    type Err = RfcommTargetError;

    /// A channel number or a UUID.
    fn from_str(s: &str) -> Result<Self, RfcommTargetError> {
        if let Ok(channel) = s.parse::<u8>() {
            return match channel {
                1..=30 => Ok(RfcommService::Channel(channel)),
                _ => Err(RfcommTargetError::ChannelOutOfRange(channel)),
            };
        }
        s.parse::<Uuid>()
            .map(RfcommService::Uuid)
            .map_err(|_| RfcommTargetError::NotAService(s.to_string()))
    }
}

/// Parses `AA:BB:CC:DD:EE:FF` (channel 20, as agg-speed) or `AA:BB:CC:DD:EE:FF/SERVICE` with
/// a channel number or service UUID.
///
/// # Errors
///
/// The address or the service does not parse ([`RfcommTargetError`]).
pub fn parse_target(s: &str) -> Result<(Address, RfcommService), RfcommTargetError> {
    let (addr, service) = match s.split_once('/') {
        Some((a, svc)) => (a, svc.parse()?),
        None => (s, RfcommService::Channel(DEFAULT_CHANNEL)),
    };
    let addr = addr
        .parse::<Address>()
        .map_err(|_| RfcommTargetError::NotAnAddress(addr.to_string()))?;
    Ok((addr, service))
}

/// Accepts RFCOMM links: on a channel, or for a registered service UUID.
pub struct RfcommAcceptor {
    source: Source,
}

enum Source {
    Channel(Listener),
    Profile {
        // Kept with the profile it registered.
        _session: Session,
        handle: ProfileHandle,
    },
}

impl fmt::Debug for RfcommAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.source {
            Source::Channel(_) => "channel",
            Source::Profile { .. } => "profile",
        };
        f.debug_struct("RfcommAcceptor")
            .field("source", &kind)
            .finish()
    }
}

impl RfcommAcceptor {
    /// Listens on `channel` of every local adapter.
    pub async fn listen(channel: u8) -> io::Result<Self> {
        let addr = rfcomm::SocketAddr::new(Address::any(), channel);
        let listener = Listener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on RFCOMM channel {channel} (is there an adapter?): {e}"),
            )
        })?;
        Ok(RfcommAcceptor {
            source: Source::Channel(listener),
        })
    }

    /// Registers a profile for service `uuid` with BlueZ (on `channel` if given) and accepts
    /// its connections.
    pub async fn register(uuid: Uuid, channel: Option<u16>) -> io::Result<Self> {
        let session = session().await?;
        adapters(&session).await?;
        let profile = Profile {
            uuid,
            name: Some("liag".into()),
            role: Some(Role::Server),
            channel,
            require_authentication: Some(false),
            require_authorization: Some(false),
            ..Default::default()
        };
        let handle = session
            .register_profile(profile)
            .await
            .map_err(bt_error(format!("cannot register RFCOMM service {uuid}")))?;
        Ok(RfcommAcceptor {
            source: Source::Profile {
                _session: session,
                handle,
            },
        })
    }
}

impl StreamAcceptor for RfcommAcceptor {
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>> {
        Box::pin(async move {
            match &mut self.source {
                Source::Channel(listener) => {
                    let (stream, peer) = listener.accept().await?;
                    let tag = format!("rfcomm <- {peer}");
                    Ok(Accepted::new(box_stream(stream), tag, UserData::empty()))
                }
                Source::Profile { handle, .. } => loop {
                    let request = handle.next().await.ok_or_else(|| {
                        io::Error::new(io::ErrorKind::BrokenPipe, "BlueZ dropped the profile")
                    })?;
                    let peer = request.device();
                    match request.accept() {
                        Ok(stream) => {
                            let tag = format!("rfcomm <- {peer}");
                            return Ok(Accepted::new(box_stream(stream), tag, UserData::empty()));
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "RFCOMM connect failed"),
                    }
                },
            }
        })
    }
}

/// Opens and keeps RFCOMM links to one device: one per powered local adapter.
pub struct RfcommConnector {
    peer: Address,
    service: RfcommService,
    session: Mutex<Option<Session>>,
    /// The client profile for UUID targets, registered on first use; its requests are taken
    /// one connect at a time.
    profile: Mutex<Option<ProfileHandle>>,
}

impl fmt::Debug for RfcommConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RfcommConnector")
            .field("peer", &self.peer)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl RfcommConnector {
    /// Links to `service` on the device at `peer`.
    pub fn new(peer: Address, service: RfcommService) -> Self {
        RfcommConnector {
            peer,
            service,
            session: Mutex::new(None),
            profile: Mutex::new(None),
        }
    }

    /// Makes a connection and starts keeping its links; fails if BlueZ or an adapter is missing.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Unavailable`]: BlueZ is not reachable, or no adapter is powered; the
    /// error says which.
    pub async fn connect(
        self,
        config: EndpointConfig,
    ) -> Result<(Connection, Links), ConnectError> {
        StreamConnector::paths(&self)
            .await
            .map_err(ConnectError::Unavailable)?;
        Ok(connect_with(self, config))
    }

    async fn session(&self) -> io::Result<Session> {
        let mut cached = self.session.lock().await;
        if let Some(s) = &*cached {
            return Ok(s.clone());
        }
        let s = session().await?;
        *cached = Some(s.clone());
        Ok(s)
    }

    async fn open_on(&self, adapter_name: &str) -> io::Result<BoxStream> {
        let session = self.session().await?;
        let adapter = session
            .adapter(adapter_name)
            .map_err(bt_error(format!("adapter {adapter_name}")))?;
        let local = adapter
            .address()
            .await
            .map_err(bt_error(format!("adapter {adapter_name}")))?;
        let what = format!("{} on {} from {adapter_name}", self.service, self.peer);
        match self.service {
            RfcommService::Channel(channel) => {
                let socket = Socket::new()?;
                socket.bind(rfcomm::SocketAddr::new(local, 0))?;
                let connecting = socket.connect(rfcomm::SocketAddr::new(self.peer, channel));
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                    .await
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("connecting {what} timed out"),
                        )
                    })?
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot connect {what}: {e}")))?;
                Ok(box_stream(stream))
            }
            RfcommService::Uuid(uuid) => {
                let mut profile = self.profile.lock().await;
                if profile.is_none() {
                    let client = Profile {
                        uuid,
                        role: Some(Role::Client),
                        require_authentication: Some(false),
                        require_authorization: Some(false),
                        auto_connect: Some(false),
                        ..Default::default()
                    };
                    let handle =
                        session
                            .register_profile(client)
                            .await
                            .map_err(bt_error(format!(
                                "cannot register RFCOMM client for {uuid}"
                            )))?;
                    *profile = Some(handle);
                }
                let Some(handle) = profile.as_mut() else {
                    unreachable!("registered just above")
                };
                let device = adapter
                    .device(self.peer)
                    .map_err(bt_error(format!("device {}", self.peer)))?;
                let work = async {
                    device
                        .connect_profile(&uuid)
                        .await
                        .map_err(bt_error(format!("cannot connect {what}")))?;
                    loop {
                        let request = handle.next().await.ok_or_else(|| {
                            io::Error::new(io::ErrorKind::BrokenPipe, "BlueZ dropped the profile")
                        })?;
                        if request.device() == self.peer {
                            return request
                                .accept()
                                .map_err(bt_error(format!("cannot open {what}")));
                        }
                        request.reject(rfcomm::ReqError::Rejected);
                    }
                };
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, work)
                        .await
                        .map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("connecting {what} timed out"),
                            )
                        })??;
                Ok(box_stream(stream))
            }
        }
    }
}

impl StreamConnector for RfcommConnector {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let session = self.session().await?;
            let found = adapters(&session).await?;
            Ok(found
                .into_iter()
                .map(|(name, _, _)| format!("{name} -> {} {}", self.peer, self.service))
                .collect())
        })
    }

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let adapter = path.split(" -> ").next().unwrap_or(path);
            let stream = self.open_on(adapter).await?;
            Ok((stream, user_data(adapter)))
        })
    }

    /// One link per local adapter.
    fn keep(&self, path: &str, _: &Welcome, others: &[(String, UserData)]) -> bool {
        !same_adapter(path, others)
    }
}

/// Whether one of `others` leaves from the adapter `path` leaves from.
fn same_adapter(path: &str, others: &[(String, UserData)]) -> bool {
    let adapter = path.split(" -> ").next();
    others
        .iter()
        .any(|(other, _)| other.split(" -> ").next() == adapter)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;

    #[test]
    fn targets_parse_with_channel_or_uuid() {
        let (addr, svc) = parse_target("01:23:45:67:89:0A").unwrap();
        assert_eq!(addr, Address::new([0x01, 0x23, 0x45, 0x67, 0x89, 0x0a]));
        assert_eq!(svc, RfcommService::Channel(DEFAULT_CHANNEL));
        let (_, svc) = parse_target("01:23:45:67:89:0A/5").unwrap();
        assert_eq!(svc, RfcommService::Channel(5));
        let (_, svc) =
            parse_target("01:23:45:67:89:0A/7f95058c-c00e-44a9-9003-2ce90d60e2e7").unwrap();
        assert_eq!(svc, RfcommService::Uuid(AGG_SPEED_UUID));
        let e = parse_target("01:23:45:67:89:0A/31").unwrap_err();
        assert_eq!(e, RfcommTargetError::ChannelOutOfRange(31));
        assert!(e.to_string().contains("1 to 30"), "{e}");
        let e = parse_target("not-an-address").unwrap_err();
        assert_eq!(e, RfcommTargetError::NotAnAddress("not-an-address".into()));
        assert!(e.to_string().contains("Bluetooth address"), "{e}");
        let e = parse_target("01:23:45:67:89:0A/x").unwrap_err();
        assert_eq!(e, RfcommTargetError::NotAService("x".into()));
        assert!(e.to_string().contains("neither"), "{e}");
    }

    #[test]
    fn one_link_per_adapter() {
        let others = |names: &[&str]| -> Vec<(String, UserData)> {
            names
                .iter()
                .map(|o| (o.to_string(), UserData::empty()))
                .collect()
        };
        assert!(!same_adapter("hci0 -> x", &others(&["hci1 -> x"])));
        assert!(same_adapter(
            "hci0 -> x",
            &others(&["hci1 -> x", "hci0 -> x"])
        ));
    }

    /// Errors name what is missing; here (no BlueZ, or no adapter) either is acceptable.
    #[tokio::test]
    async fn missing_bluez_or_adapter_is_said_plainly() {
        let c = RfcommConnector::new(Address::any(), RfcommService::Channel(3));
        match StreamConnector::paths(&c).await {
            Ok(paths) => assert!(paths.iter().all(|p| p.contains("channel 3"))),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("BlueZ") || text.contains("adapter"), "{text}");
            }
        }
    }
}
