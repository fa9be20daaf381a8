//! TLS around any stream transport (spec §12): [`TlsConnector`] wraps a [`StreamConnector`],
//! [`TlsAcceptor`] a [`StreamAcceptor`]; the stream framing runs inside TLS. Configurations for
//! the usual cases: a certificate and key from PEM files, a private CA, the WebPKI roots, and an
//! explicit mode without server authentication (aggligator's `agg-speed --tls`).

use liag_tokio::BoxFuture;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
pub use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use liag_tokio::{UserData, Welcome};

use crate::error::ServerNameError;
use crate::stream::{BoxStream, StreamAcceptor, StreamConnector, box_stream};
use crate::transport::Accepted;
use crate::upgrades::Upgrades;

/// The server name aggligator's tools use with `--tls`; a liag client with `--tls` sends it too.
pub const AGG_SERVER_NAME: &str = "aggligator.rs";
/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What TLS adds to a path's or a tag's name.
const SUFFIX: &str = " (tls)";

/// The crypto provider: ring, so no C toolchain beyond ring's own is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: String) -> impl FnOnce(rustls::Error) -> io::Error {
    move |e| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

fn client_with_roots(roots: RootCertStore) -> io::Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error("TLS client configuration".into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that checks servers against the WebPKI (Mozilla) roots.
pub fn webpki_client_config() -> Arc<ClientConfig> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // The ring provider supports the safe default versions; this cannot fail.
    client_with_roots(roots).unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
}

/// Reads every certificate of a PEM file; the error names the file.
pub fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot read certificates from {}: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// A client configuration that checks servers against the CA certificates of a PEM file.
pub fn ca_client_config(ca_file: &Path) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file)? {
        roots.add(cert).map_err(tls_error(format!(
            "CA certificate in {}",
            ca_file.display()
        )))?;
    }
    client_with_roots(roots)
}

/// A client configuration that does **not** authenticate the server: it accepts any
/// certificate (it still checks the handshake signatures against the certificate sent).
/// Encryption without authentication, as aggligator's `agg-speed --tls`; an active attacker in
/// the path can read and change everything.
pub fn insecure_client_config() -> Arc<ClientConfig> {
    let verifier = Arc::new(NoServerAuth {
        algorithms: provider().signature_verification_algorithms,
    });
    let mut config = (*client_with_roots(RootCertStore::empty())
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3")))
    .clone();
    config.dangerous().set_certificate_verifier(verifier);
    Arc::new(config)
}

/// A server configuration from a certificate chain and private key in PEM files.
pub fn server_config_from_pem(cert_file: &Path, key_file: &Path) -> io::Result<Arc<ServerConfig>> {
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot read a private key from {}: {e}", key_file.display()),
        )
    })?;
    server_config(certs, key)
}

/// A server configuration from a certificate chain and its private key.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error("TLS server configuration".into()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error("TLS certificate and key".into()))?;
    Ok(Arc::new(config))
}

/// Accepts any server certificate; see [`insecure_client_config`].
#[derive(Debug)]
struct NoServerAuth {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoServerAuth {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// TLS client around a stream connector: every stream it opens gets a TLS handshake first.
/// Paths are the inner connector's with ` (tls)` added.
pub struct TlsConnector<C> {
    inner: C,
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl<C: std::fmt::Debug> std::fmt::Debug for TlsConnector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("inner", &self.inner)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl<A: std::fmt::Debug> std::fmt::Debug for TlsAcceptor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("inner", &self.inner)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl<C: StreamConnector> TlsConnector<C> {
    /// Wraps `inner`; the server must prove it is `server_name` under `config`.
    ///
    /// # Errors
    ///
    /// `server_name` is neither a DNS name nor an IP address.
    pub fn new(
        inner: C,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> Result<Self, ServerNameError> {
        let server_name =
            ServerName::try_from(server_name.to_string()).map_err(|error| ServerNameError {
                name: server_name.to_string(),
                error,
            })?;
        Ok(TlsConnector {
            inner,
            tls: config.into(),
            server_name,
        })
    }

    /// The wrapped connector.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Makes a connection and starts keeping its links.
    pub fn connect(
        self,
        config: liag_tokio::EndpointConfig,
    ) -> (liag_tokio::Connection, crate::transport::Links) {
        crate::connect_with(self, config)
    }
}

fn inner_name(path: &str) -> &str {
    path.strip_suffix(SUFFIX).unwrap_or(path)
}

impl<C: StreamConnector> StreamConnector for TlsConnector<C> {
    fn paths(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let paths = self.inner.paths().await?;
            Ok(paths.into_iter().map(|p| p + SUFFIX).collect())
        })
    }

    fn open_stream<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, io::Result<(BoxStream, UserData)>> {
        Box::pin(async move {
            let inner = inner_name(path);
            let (io, user_data) = self.inner.open_stream(inner).await?;
            let handshake = self.tls.connect(self.server_name.clone(), io);
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("TLS handshake on {inner} timed out"),
                    )
                })?
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("TLS handshake on {inner} failed: {e}"))
                })?;
            Ok((box_stream(tls), user_data))
        })
    }

    fn keep(&self, path: &str, welcome: &Welcome, others: &[(String, UserData)]) -> bool {
        let others: Vec<(String, UserData)> = others
            .iter()
            .map(|(p, u)| (inner_name(p).to_string(), u.clone()))
            .collect();
        self.inner.keep(inner_name(path), welcome, &others)
    }
}

/// Most TLS handshakes a [`TlsAcceptor`] runs at once; when all are taken, a newcomer takes
/// the place of the oldest handshake of the source with the most.
pub const MAX_HANDSHAKES: usize = 64;

/// TLS server around a stream acceptor. Handshakes run concurrently, each for at most ten
/// seconds, so a slow or silent client holds up no one; at most [`MAX_HANDSHAKES`] at once,
/// the oldest of the busiest source abandoned for a newcomer when all are taken.
/// Tags get ` (tls)` added.
pub struct TlsAcceptor<A> {
    inner: A,
    tls: tokio_rustls::TlsAcceptor,
    handshakes: Upgrades<io::Result<Accepted<BoxStream>>>,
}

impl<A: StreamAcceptor> TlsAcceptor<A> {
    /// Wraps `inner`, answering with the certificate of `config`.
    pub fn new(inner: A, config: Arc<ServerConfig>) -> Self {
        TlsAcceptor {
            inner,
            tls: config.into(),
            handshakes: Upgrades::new(MAX_HANDSHAKES),
        }
    }

    /// The wrapped acceptor.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: StreamAcceptor> StreamAcceptor for TlsAcceptor<A> {
    fn accept_stream(&mut self) -> BoxFuture<'_, io::Result<Accepted<BoxStream>>> {
        Box::pin(async move {
            loop {
                tokio::select! {
                    accepted = self.inner.accept_stream() => {
                        let (io, mut rest) = accepted?.split();
                        let tag = rest.tag.clone();
                        rest.tag.push_str(SUFFIX);
                        let handshake = self.tls.accept(io);
                        self.handshakes.spawn(rest.peer, async move {
                            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                                .await
                                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("TLS handshake on {tag} timed out")))?
                                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake on {tag} failed: {e}")))?;
                            Ok(rest.map(|()| box_stream(tls)))
                        });
                    }
                    Some(done) = self.handshakes.next() => match done {
                        Ok(Ok(accepted)) => return Ok(accepted),
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS link refused"),
                        Err(e) => tracing::debug!(error = %e, "TLS handshake task failed"),
                    },
                }
            }
        })
    }
}
