//! Stream transports: [`StreamConnector`] and [`StreamAcceptor`] hand out byte streams, which
//! wrappers such as TLS can wrap before the stream framing (spec §2.1) makes them links.

use liag_tokio::BoxFuture;
use std::io;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

use liag_tokio::{BoxLink, guarded, stream_link};
use liag_tokio::{UserData, Welcome};

use crate::transport::{Accepted, Acceptor, Connector, Hooks};

/// A byte stream a link runs over: TCP, TLS, a WebSocket as bytes, RFCOMM, a pipe.
pub trait IoStream: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> IoStream for T {}

/// A boxed byte stream.
pub type BoxStream = Pin<Box<dyn IoStream>>;

/// Boxes a byte stream.
pub fn box_stream(io: impl IoStream) -> BoxStream {
    Box::pin(io)
}

/// A [`Connector`] whose links run over byte streams. Every `StreamConnector` is a
/// `Connector`: its streams are framed with [`stream_link`]. Wrappers (such as
/// `tls::TlsConnector`) take a `StreamConnector` and are one again.
pub trait StreamConnector: Send + Sync + 'static {
    /// The paths links can be opened on now, as [`Connector::paths`].
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>>;

    /// Opens the byte stream of one path and returns it with this side's user data.
    fn open_stream<'a>(&'a self, path: &'a str)
    -> BoxFuture<'a, io::Result<(BoxStream, UserData)>>;

    /// The link filter, as [`Connector::keep`]; by default every link is kept.
    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        let _ = (path, welcome, others);
        true
    }
}

impl<C: StreamConnector> Connector for C {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        StreamConnector::paths(self)
    }

    fn open<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<(BoxLink, UserData)>> {
        Box::pin(async move {
            let (io, user_data) = self.open_stream(path).await?;
            Ok((stream_link(io), user_data))
        })
    }

    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        StreamConnector::keep(self, path, welcome, others)
    }
}

/// An [`Acceptor`] of byte streams. Every `StreamAcceptor` is an `Acceptor`; wrappers (such as
/// `tls::TlsAcceptor`) take a `StreamAcceptor` and are one again.
pub trait StreamAcceptor: Send + 'static {
    /// The next incoming byte stream with a tag for it and this side's user data.
    ///
    /// Must be cancel-safe: a wrapper may drop the future when something else is ready first,
    /// and must not lose a stream by doing so.
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>>;
}

impl<A: StreamAcceptor> Acceptor for A {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxLink>>> {
        Box::pin(async move {
            let mut accepted = self.accept_stream().await?.map(stream_link);
            if let Some(Hooks(guard)) = accepted.hooks.take() {
                accepted = accepted.map(|link| guarded(link, guard));
            }
            Ok(accepted)
        })
    }
}
