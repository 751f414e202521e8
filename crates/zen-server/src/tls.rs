//! HTTPS: the listener with rustls, its certificate and key reloaded when their files change,
//! and optional client certificates (verified against a CA) that authenticate a request with a
//! scope of their own — as the Kubernetes API server's audit webhook presents one.
//!
//! Each connection's handshake runs in its connection's task (`listen.rs`), bounded by the
//! header timeout, so a client that opens a connection and says nothing holds only itself. A reload that fails (a
//! file half-written, a key that does not match) is logged and counted, and the certificate in
//! use stays.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::Scope;

/// What the listener serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM: the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CAs client certificates are verified against; none: no client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse a handshake without a client certificate (with `client_ca_file`).
    pub require_client_cert: bool,
    /// What a verified client certificate lets its requests do.
    pub client_scope: Scope,
}

/// The identity a verified client certificate gave a connection: put in each of its requests'
/// extensions, read by the authorisation middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// `cert:` and the certificate's subject (`cert:CN=kube-apiserver,O=…`).
    pub name: String,
    pub scope: Scope,
}

/// A certificate or key that cannot be served: which file and why.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// How often the files are looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

fn certs(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{what} {}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The rustls server configuration the files make now.
pub fn server_config(s: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs(&s.cert_file, "the certificate")?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| TlsError(format!("the key {}: {e}", s.key_file.display())))?;
    // ring, as the rest of the workspace.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &s.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(ca, "the client CA file")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError(format!("the client CA file {}: {e}", ca.display())))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            let verifier = if s.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError(format!("the client CA file {}: {e}", ca.display())))?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "{} and {}: {e}",
            s.cert_file.display(),
            s.key_file.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The acceptor in use, swapped when the files change.
#[derive(Clone)]
pub struct Acceptor {
    current: Arc<RwLock<tokio_rustls::TlsAcceptor>>,
    settings: Arc<TlsSettings>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// When the files were last changed, as far as can be told.
fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [
        Some(&s.cert_file),
        Some(&s.key_file),
        s.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

impl Acceptor {
    /// Loads the files; an error is what makes the daemon refuse to start.
    pub fn new(settings: TlsSettings) -> Result<Acceptor, TlsError> {
        let config = server_config(&settings)?;
        Ok(Acceptor {
            current: Arc::new(RwLock::new(tokio_rustls::TlsAcceptor::from(config))),
            settings: Arc::new(settings),
        })
    }

    pub(crate) fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Looks at the files every second, and serves what they hold once they change and load.
    pub(crate) fn watch(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = stamps(&this.settings);
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let now = stamps(&this.settings);
                if now == seen {
                    continue;
                }
                seen = now;
                match server_config(&this.settings) {
                    Ok(config) => {
                        *this.current.write().unwrap_or_else(|p| p.into_inner()) =
                            tokio_rustls::TlsAcceptor::from(config);
                        tracing::info!(cert = %this.settings.cert_file.display(), "TLS: reloaded the certificate");
                    }
                    Err(e) => {
                        metrics::counter!("zen_watcher_errors_total", "component" => "http", "category" => "tls").increment(1);
                        tracing::error!(error = %e, "TLS: the changed files could not be loaded; still serving the certificate before them");
                    }
                }
            }
        })
    }
}

/// The identity of a connection's verified client certificate, if it showed one.
pub(crate) fn client_cert(
    stream: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    scope: Scope,
) -> Option<ClientCert> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    Some(ClientCert {
        name: format!(
            "cert:{}",
            subject(leaf).unwrap_or_else(|| "(unreadable subject)".to_owned())
        ),
        scope,
    })
}

/// The subject of a DER certificate, as RFC 4514 writes it (`CN=kube-apiserver,O=…`).
fn subject(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject.to_string())
}
