//! WebSocket links (spec §11): [`WsConnector`] for `ws://` and `wss://` URLs, one link per local
//! interface and server address; [`WsAcceptor`] listening on a TCP port at a URL path; and
//! [`WsBytes`], which makes any upgraded WebSocket (from an HTTP server's route, say) a byte
//! stream for [`liag_tokio::Server::add_link_from`].
//!
//! Both sides run the stream framing over the WebSocket seen as bytes, as aggligator does.

mod acceptor;
mod connector;
mod gate;
mod ws_bytes;

pub use acceptor::WsAcceptor;
pub use connector::WsConnector;
pub use gate::{FREE_MESSAGE, PRE_HANDSHAKE_READ};
pub use tokio_tungstenite::tungstenite;
pub use ws_bytes::WsBytes;

use std::io;
use std::net::IpAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use liag_tokio::UserData;

/// agg-speed's WebSocket port.
pub const DEFAULT_PORT: u16 = 8080;
/// agg-speed's WebSocket path.
pub const AGG_SPEED_PATH: &str = "/agg-speed";
/// Time allowed for a WebSocket (and TLS) handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often targets are resolved again.
pub(crate) const RESOLVE_EVERY: Duration = Duration::from_secs(10);

/// The largest WebSocket message liag sends: one stream frame, header and the largest payload
/// protocol 4 allows.
pub const MAX_SENT_MESSAGE: usize =
    liag_core::proto::frame::HEADER_LEN + liag_core::proto::frame::MAX_PAYLOAD_LEN as usize;

/// The largest WebSocket message or frame either side takes: two stream frames' worth, room
/// for a peer that gathers writes, and no more (tungstenite's own default is 64 MiB). Spec §11
/// lets a peer chunk the stream as it likes; a peer sending messages beyond this is refused.
pub const MAX_MESSAGE: usize = 2 * MAX_SENT_MESSAGE;

/// Most WebSocket upgrades (with their TLS handshakes) an acceptor runs at once; a newcomer
/// beyond them takes the place of the oldest upgrade of the source with the most.
pub const MAX_UPGRADES: usize = 64;

/// tungstenite's limits for a link: no message or frame beyond [`MAX_MESSAGE`].
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The user data an acceptor sends: the raw octets of its configured local IP (spec §11).
pub fn acceptor_user_data(local_ip: IpAddr) -> UserData {
    let octets = match local_ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    UserData::new(octets.into()).unwrap_or_default()
}

/// Why an upgrade failed, in words: "HTTP 404" rather than a debug dump of the response.
pub(crate) fn upgrade_error(url: &str, e: WsError) -> io::Error {
    let why = match e {
        WsError::Http(response) => format!("HTTP {}", response.status()),
        WsError::Io(e) => e.to_string(),
        other => other.to_string(),
    };
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("websocket upgrade to {url} failed: {why}"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn no_message_or_frame_beyond_two_stream_frames() {
        let config = ws_config();
        assert_eq!(config.max_message_size, Some(2 * (8 * 1024 * 1024 + 10)));
        assert_eq!(config.max_frame_size, Some(2 * (8 * 1024 * 1024 + 10)));
    }

    #[test]
    fn acceptor_user_data_is_the_ip_octets() {
        let default = acceptor_user_data(Ipv6Addr::UNSPECIFIED.into());
        assert_eq!(default.as_bytes().as_ref(), &[0u8; 16]);
        let v4 = acceptor_user_data(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(v4.as_bytes().as_ref(), &[10, 0, 0, 1]);
    }
}
