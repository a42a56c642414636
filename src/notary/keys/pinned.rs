//! Keys a policy author pins (`trustRoots`, `revokedKeys`): PEM public keys or certificates,
//! normalised so they compare with metadata keys. A child of `keys`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A key given by a policy author: a PEM `PUBLIC KEY` block or a PEM `CERTIFICATE`, normalised
/// to SPKI DER (or the raw ed25519 key) so it can be compared with metadata keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKey {
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
    ed25519: Option<[u8; 32]>,
    cert_key_id: Option<String>,
}

impl PinnedKey {
    /// Reads the first PEM block (as Go's `pem.Decode`); it must be `PUBLIC KEY` (EC, RSA or
    /// Ed25519 SPKI) or `CERTIFICATE` (EC or RSA subject key). Certificate validity is not
    /// checked here.
    pub fn from_pem(pem: &str) -> Result<PinnedKey, KeyError> {
        let (block, _) =
            pem_decode(pem.as_bytes()).ok_or_else(|| KeyError::Pem("no PEM block found".into()))?;
        match block.label.as_str() {
            "PUBLIC KEY" => {
                let parsed = parse_spki(&block.der)?;
                let ed25519 = match parsed.material {
                    Material::Ed25519(raw) => Some(raw),
                    _ => None,
                };
                Ok(PinnedKey {
                    algorithm: parsed.algorithm,
                    spki: block.der,
                    ed25519,
                    cert_key_id: None,
                })
            }
            "CERTIFICATE" => {
                let parsed = parse_certificate(&block.der)?;
                let keytype = match parsed.info.key_algorithm {
                    KeyAlgorithm::Ecdsa => KeyType::EcdsaX509,
                    KeyAlgorithm::Rsa => KeyType::RsaX509,
                    other => {
                        return Err(KeyError::Unsupported(format!(
                            "certificate key algorithm {other:?}"
                        )));
                    }
                };
                let cert_key_id =
                    tuf_key_id(keytype.as_str(), Some(parsed.info.to_pem().as_bytes()));
                Ok(PinnedKey {
                    algorithm: parsed.info.key_algorithm,
                    spki: parsed.info.spki_der,
                    ed25519: None,
                    cert_key_id: Some(cert_key_id),
                })
            }
            other => Err(KeyError::Pem(format!(
                "unsupported PEM block type {other:?}, expected CERTIFICATE or PUBLIC KEY"
            ))),
        }
    }

    /// True when `key` (from metadata) carries the same public key (SPKI equality; for ed25519
    /// raw equality). Unknown and unusable keys never match.
    pub fn matches(&self, key: &PublicKey) -> bool {
        if let Some(raw) = &self.ed25519 {
            return key.raw_ed25519() == Some(raw);
        }
        key.unusable_reason().is_none() && key.spki_der() == Some(self.spki.as_slice())
    }

    /// The notary key ID a plain key of this public key would have (an `ecdsa`/`rsa` TUFKey over
    /// the SPKI DER, or `ed25519` over the raw key).
    pub fn key_id(&self) -> String {
        match (&self.ed25519, self.algorithm) {
            (Some(raw), _) => tuf_key_id("ed25519", Some(raw)),
            (None, KeyAlgorithm::Rsa) => tuf_key_id("rsa", Some(&self.spki)),
            (None, _) => tuf_key_id("ecdsa", Some(&self.spki)),
        }
    }

    /// For a pinned certificate: the ID of the x509 key notary builds from it (`CertToKey`),
    /// i.e. the ID that metadata holding exactly this certificate uses.
    pub fn cert_key_id(&self) -> Option<&str> {
        self.cert_key_id.as_deref()
    }

    /// The DER SubjectPublicKeyInfo of the pinned key.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}
