//! TLS plumbing shared by every client and server: the process-wide rustls crypto provider
//! (aws-lc-rs) and PEM bundle parsing for custom CAs.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Errors from loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM text holds no certificate at all.
    #[error("CA bundle contains no PEM certificate")]
    EmptyBundle,
    /// A PEM block could not be decoded.
    #[error("CA bundle is not valid PEM: {0}")]
    BadPem(String),
}

/// Installs aws-lc-rs as the process-wide rustls provider. Safe to call more than once.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Parses every certificate in a PEM bundle (DER form).
pub fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::EmptyBundle);
    }
    Ok(certs)
}
