//! What notary's checks need from an X.509 certificate, and PEM certificate bundles as notary
//! reads them. A child of `keys`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What notary's checks need from an X.509 certificate (parsed as Go's `x509.ParseCertificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject CN (the last CN attribute, as Go); `None` when the subject has no CN.
    pub common_name: Option<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// BasicConstraints cA (false when the extension is absent).
    pub is_ca: bool,
    /// Signed with SHA-1 (sha1WithRSA, dsaWithSHA1 or ecdsa-with-SHA1), which notary rejects.
    pub sha1_signature: bool,
    /// Modulus size of an RSA subject key.
    pub rsa_bits: Option<usize>,
    /// Algorithm of the subject public key.
    pub key_algorithm: KeyAlgorithm,
    /// DER SubjectPublicKeyInfo of the subject key.
    pub spki_der: Vec<u8>,
    /// The whole certificate, DER.
    pub der: Vec<u8>,
}

impl CertInfo {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, KeyError> {
        parse_certificate(der).map(|p| p.info)
    }

    /// This certificate as Go's `pem.EncodeToMemory` writes it (64 columns, trailing newline).
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.der);
        let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

/// Parses a PEM certificate bundle as Go's `LoadCertBundleFromPEM` (used by notary's root
/// validation): every block must be a `CERTIFICATE` that parses, and there must be at least one.
/// The order is kept (notary requires the leaf first).
pub fn parse_cert_bundle(pem: &[u8]) -> Result<Vec<CertInfo>, KeyError> {
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some((block, next)) = pem_decode(rest) {
        if block.label != "CERTIFICATE" {
            return Err(KeyError::Pem(format!(
                "invalid PEM block type {:?} in certificate bundle",
                block.label
            )));
        }
        certs.push(CertInfo::from_der(&block.der)?);
        rest = next;
    }
    if certs.is_empty() {
        return Err(KeyError::Pem("no certificates found".into()));
    }
    Ok(certs)
}
