//! The TLS client configuration of every outbound connection (Notary servers, their token
//! services, registries): the system's CA certificates, read once per process, plus the CA
//! bundle a policy adds. A low-level module: it depends on nothing else in the crate.
//!
//! reqwest's own default verifies through a platform verifier that reads the system's CA
//! certificates lazily, on the first handshake of every client, inside the handshake: about
//! 20 ms of blocked runtime thread for the first fetch from each Notary server and each TLS
//! registry. Here they are read once ([`preload`] at start-up, off the request path) and each
//! client gets a `rustls` configuration over a copy of them, with the same rules: web PKI
//! verification of the server's chain and name, the crate's single crypto provider (aws-lc-rs),
//! TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, and rustls' in-memory session cache, so a
//! second connection to the same server resumes its TLS session.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Errors from building a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// A certificate of the added bundle is not a usable trust anchor.
    #[error("CA certificate is not a usable trust anchor: {0}")]
    BadAnchor(String),
    /// rustls refused the configuration.
    #[error("TLS client configuration: {0}")]
    Config(String),
}

static SYSTEM: OnceLock<Arc<RootCertStore>> = OnceLock::new();

/// The system's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` or the distribution's
/// bundle), read on first use and kept. Unreadable or unparsable ones are skipped (a policy's
/// own CA bundle still works without any).
pub fn system() -> Arc<RootCertStore> {
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "skipping part of the system CA certificates");
            }
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system CA certificates read");
            Arc::new(store)
        })
        .clone()
}

/// Reads the system's CA certificates now, so no handshake waits for them later.
pub fn preload() {
    let _ = system();
}

/// A client configuration trusting the system's CA certificates and `extra`.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<ClientConfig, RootsError> {
    let mut roots = RootCertStore::clone(&system());
    for der in extra {
        roots
            .add(der.clone())
            .map_err(|e| RootsError::BadAnchor(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RootsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_anchors_are_added_to_the_system_ones() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["notary.test".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let system = system().len();
        let config = client_config(&[cert.der().clone()]).expect("config");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        // The same store is handed out again, not read twice.
        assert!(Arc::ptr_eq(
            &SYSTEM.get().cloned().expect("kept"),
            &super::system()
        ));
        assert_eq!(super::system().len(), system);
    }

    #[test]
    fn garbage_is_not_an_anchor() {
        let err = client_config(&[CertificateDer::from(vec![1, 2, 3])]).expect_err("garbage");
        assert!(matches!(err, RootsError::BadAnchor(_)), "{err}");
    }
}
