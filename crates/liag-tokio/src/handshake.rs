//! Link handshakes over a real link, with a time limit, for both roles.

use futures::{SinkExt, StreamExt};
use std::io;
use std::time::Duration;

use liag_core::handshake::{
    Acceptor, HandshakeError, IncomingLink, Initiator, InitiatorParams, InitiatorStep,
};
use liag_core::proto::ids::ServerId;
use liag_core::proto::message::{ExchangedCfg, UserData, Welcome};

use crate::codec::BoxLink;

fn invalid(e: HandshakeError) -> io::Error {
    let kind = match e {
        HandshakeError::Refused(_) => io::ErrorKind::ConnectionRefused,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

async fn next_packet(link: &mut BoxLink) -> io::Result<bytes::Bytes> {
    match link.next().await {
        Some(packet) => packet,
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "link closed during the handshake",
        )),
    }
}

/// Runs the initiator's side. `check_server` sees the Welcome before Connect goes out and may
/// refuse it (a server-id mismatch).
pub(crate) async fn initiate(
    link: &mut BoxLink,
    params: InitiatorParams,
    check_server: impl FnOnce(&Welcome) -> io::Result<()>,
) -> io::Result<Welcome> {
    let mut initiator = Initiator::new(params, &mut rand::rng());
    let packet = next_packet(link).await?;
    let InitiatorStep::SendConnect { connect, welcome } =
        initiator.handle_packet(&packet).map_err(invalid)?
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake out of order",
        ));
    };
    check_server(&welcome)?;
    link.send(connect).await?;
    let packet = next_packet(link).await?;
    match initiator.handle_packet(&packet).map_err(invalid)? {
        InitiatorStep::Accepted(welcome) => {
            link.as_mut().handshake_done();
            Ok(welcome)
        }
        InitiatorStep::SendConnect { .. } => {
            Err(io::Error::new(io::ErrorKind::InvalidData, "second Welcome"))
        }
    }
}

/// Runs the acceptor's side up to Connect; the caller then sends Accepted or Refused.
pub(crate) async fn accept(
    link: &mut BoxLink,
    server_id: ServerId,
    user_data: UserData,
    cfg: ExchangedCfg,
) -> io::Result<IncomingLink> {
    let (mut acceptor, welcome) = Acceptor::new(server_id, user_data, cfg, &mut rand::rng());
    link.send(welcome).await?;
    let packet = next_packet(link).await?;
    acceptor.handle_packet(&packet).map_err(invalid)
}

/// Runs `f` within `limit`, turning a timeout into an error.
pub(crate) async fn within<T>(
    limit: Duration,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}
