//! TLS for connections that leave the machine: the server configuration from
//! PEM files. Handshakes run in each connection's own task ([`crate::conns`]),
//! so a slow or hostile client can't stall accepting others.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("no certificate in {0}")]
    NoCertificate(String),
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// A server TLS configuration from PEM files (a certificate chain and its private key).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let name = |p: &Path| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Read(name(cert), e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read(name(cert), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(name(cert)));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Read(name(key), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
