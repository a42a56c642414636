//! PEM certificate bundles (custom CAs for Notary servers, registries and the webhook's client
//! CA), parsed into DER once. A low-level module: it depends on nothing else in the crate, so
//! `notary`, `image` and `tls` all use it.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Errors from reading a PEM certificate bundle.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The PEM text holds no certificate at all.
    #[error("CA bundle contains no PEM certificate")]
    EmptyBundle,
    /// A PEM block could not be decoded.
    #[error("CA bundle is not valid PEM: {0}")]
    BadPem(String),
}

/// Parses every certificate in a PEM bundle (DER form).
pub fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::BadPem(e.to_string()))?;
    if certs.is_empty() {
        return Err(PemError::EmptyBundle);
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_broken_bundles_are_errors() {
        assert!(matches!(parse_pem_bundle(b""), Err(PemError::EmptyBundle)));
        assert!(matches!(
            parse_pem_bundle(b"no pem here"),
            Err(PemError::EmptyBundle)
        ));
        assert!(
            parse_pem_bundle(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
