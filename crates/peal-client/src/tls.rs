//! Which servers the SDK trusts: the public web roots, plus any private roots
//! the application adds (a company CA, a self-signed test server).

use crate::error::ClientError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;
use tokio_rustls::rustls;

/// One TLS configuration for both HTTPS requests and the WSS event socket.
pub fn client_config(
    extra_roots_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| ClientError::Protocol(format!("bad root certificate PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Protocol(format!("unusable root certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientError::Protocol(
                "no certificate in the root certificate PEM".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Protocol(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
