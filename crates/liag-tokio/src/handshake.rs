//! Link handshakes over a real link, with a time limit, for both roles.

use futures::{SinkExt, StreamExt};
use std::time::Duration;

use liag_core::handshake::{
    HandshakeError, Initiator, InitiatorParams, InitiatorStep, LinkRequest, Responder,
};
use liag_core::proto::extensions::Extensions;
use liag_core::proto::ids::ServerId;
use liag_core::proto::message::{ExchangedConfig, MessageKind, UserData, Welcome};

use crate::codec::BoxLink;
use crate::error::{AcceptError, AddLinkError, StepError};

async fn next_packet(link: &mut BoxLink) -> Result<bytes::Bytes, StepError> {
    match link.next().await {
        Some(packet) => Ok(packet?),
        None => Err(StepError::TransportClosed),
    }
}

/// Runs the initiator's side. `check_server` sees the Welcome before Connect goes out and may
/// refuse it (a server-id mismatch).
pub(crate) async fn initiate(
    link: &mut BoxLink,
    params: InitiatorParams,
    check_server: impl FnOnce(&Welcome) -> Result<(), AddLinkError>,
) -> Result<Welcome, AddLinkError> {
    let mut initiator = Initiator::new(params, &mut rand::rng());
    let packet = next_packet(link).await?;
    let step = initiator.handle_packet(&packet).map_err(StepError::from)?;
    let InitiatorStep::SendConnect { connect, welcome } = step else {
        // The initiator takes nothing but a Welcome first; this is not reached.
        let unexpected = HandshakeError::Unexpected(MessageKind::Accepted);
        return Err(AddLinkError::Protocol(unexpected));
    };
    check_server(&welcome)?;
    link.send(connect).await?;
    let packet = next_packet(link).await?;
    match initiator.handle_packet(&packet).map_err(StepError::from)? {
        InitiatorStep::Accepted(welcome) => {
            link.as_mut().handshake_done();
            Ok(welcome)
        }
        InitiatorStep::SendConnect { .. } => Err(AddLinkError::Protocol(
            HandshakeError::Unexpected(MessageKind::Welcome),
        )),
    }
}

/// Runs the responder's side up to Connect, announcing `extensions`; the caller then sends
/// Accepted or Refused.
pub(crate) async fn respond(
    link: &mut BoxLink,
    (server_id, extensions): (ServerId, Extensions),
    user_data: UserData,
    cfg: ExchangedConfig,
) -> Result<LinkRequest, AcceptError> {
    let (mut responder, welcome) = {
        let rng = &mut rand::rng();
        Responder::announcing(extensions, server_id, user_data, cfg, rng)
    };
    link.send(welcome).await?;
    let packet = next_packet(link).await?;
    let request = responder.handle_packet(&packet).map_err(StepError::from)?;
    Ok(request)
}

/// Runs `f` within `limit`; past it, fails with `timed_out`.
pub(crate) async fn within<T, E>(
    limit: Duration,
    timed_out: E,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(timed_out))
}
