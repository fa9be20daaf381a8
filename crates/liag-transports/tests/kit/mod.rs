//! Helpers for the transport tests: certificates made at test time, and a TCP relay whose
//! connections can be cut to kill the links running through it.

#![allow(dead_code, clippy::unwrap_used)]

use liag_transports::tls::rustls::ServerConfig;
use liag_transports::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use liag_transports::tls::server_config;
use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
    pub(crate) key_der: Vec<u8>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        server_config(vec![self.cert_der.clone()], key).unwrap()
    }

    /// Writes the CA, certificate and key as PEM files into a fresh directory, removed when
    /// the returned [`PemFiles`] drops.
    pub(crate) fn write(&self) -> PemFiles {
        let dir = tempfile::Builder::new()
            .prefix("liag-pki-")
            .tempdir()
            .unwrap();
        let files = PemFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        std::fs::write(&files.ca, &self.ca_pem).unwrap();
        std::fs::write(&files.cert, &self.cert_pem).unwrap();
        std::fs::write(&files.key, &self.key_pem).unwrap();
        files
    }
}

/// PEM files of a [`Pki`] in a temporary directory.
pub(crate) struct PemFiles {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    _dir: tempfile::TempDir,
}

/// A TCP relay on 127.0.0.1 towards `target`; [`Relay::cut`] kills the connections through
/// it (new ones are still relayed, so a connector can come back).
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    live: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    pub(crate) async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let live: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let handles = live.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                handles.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay { addr, live }
    }

    /// Kills every connection through the relay now; returns how many there were.
    pub(crate) fn cut(&self) -> usize {
        let mut live = self.live.lock().unwrap();
        let n = live.iter().filter(|h| !h.is_finished()).count();
        for h in live.drain(..) {
            h.abort();
        }
        n
    }
}
