//! Notary v1 keys: types, key IDs, certificates, signature verification.
//!
//! Mirrors notary v0.7.0 `tuf/data/keys.go`, `tuf/signed/verifiers.go` and `tuf/utils/x509.go`:
//!
//! - A key is `{"keytype":T,"keyval":{"public":<base64>,"private":..}}`. `ecdsa`/`rsa` hold a DER
//!   SubjectPublicKeyInfo, `ed25519` the raw 32 bytes, `ecdsa-x509`/`rsa-x509` the text of a PEM
//!   certificate bundle (leaf first). Unknown key types are kept; their signatures never verify.
//! - The key ID is `hex(sha256(canonical {"keytype":T,"keyval":{"private":null,"public":B}}))`
//!   where `B` is the *re-encoded* standard base64 of the decoded public bytes (Go's `TUFKey.ID`
//!   marshals the `[]byte` again). For well-formed files this is the string in the file.
//! - Signature methods: `ecdsa` (SHA-256 for every curve, fixed `r||s`, high-S accepted),
//!   `rsapss` (SHA-256, MGF1-SHA-256, salt 32), `rsapkcs1v15` (SHA-256), `eddsa` (Ed25519 over
//!   the message). RSA needs a modulus of at least 2048 bits and a signature of at least 256
//!   bytes. All cryptography is aws-lc-rs.
//!
//! Certificates, SPKI and PEM are read as Go's `crypto/x509` and `encoding/pem` read them
//! (`keys/x509.rs`).
//!
//! Known differences from Go, all on keys that notary itself never produces: P-224 keys parse but
//! never verify (aws-lc-rs has no P-224), RSA moduli above 8192 bits never verify, the legacy
//! `pycrypto-pkcs#1 pss` method is reported as unsupported, and PEM decoding gives up after 16
//! malformed `BEGIN` candidates (Go scans on, in quadratic time).

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA256_ASN1, ECDSA_P521_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use self::x509::{parse_certificate, parse_spki, pem_decode};
use super::canonical;

mod cert;
mod error;
mod parse;
mod pinned;
#[cfg(test)]
mod tests;
mod x509;

pub use cert::{CertInfo, parse_cert_bundle};
pub use error::{KeyError, SignatureError};
#[allow(clippy::wildcard_imports)]
use parse::*;
pub use pinned::PinnedKey;

/// Go's `base64.StdEncoding`: standard alphabet, padding required, non-zero trailing bits allowed.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes base64 as Go's `encoding/json` does for `[]byte` fields: standard alphabet with
/// padding, `\r` and `\n` ignored, non-zero trailing bits accepted.
pub fn decode_base64_go(s: &str) -> Result<Vec<u8>, KeyError> {
    decode_go_bytes(s.as_bytes(), |b| b == b'\r' || b == b'\n')
}

fn decode_go_bytes(input: &[u8], skip: impl Fn(u8) -> bool) -> Result<Vec<u8>, KeyError> {
    let decoded = if input.iter().any(|&b| skip(b)) {
        let cleaned: Vec<u8> = input.iter().copied().filter(|&b| !skip(b)).collect();
        GO_STD.decode(&cleaned)
    } else {
        // The usual case: nothing to skip, so no copy.
        GO_STD.decode(input)
    };
    decoded.map_err(|e| KeyError::Base64(e.to_string()))
}

/// A Notary key type (`keytype`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `ecdsa`: DER SubjectPublicKeyInfo.
    Ecdsa,
    /// `ecdsa-x509`: PEM certificate (bundle).
    EcdsaX509,
    /// `rsa`: DER SubjectPublicKeyInfo.
    Rsa,
    /// `rsa-x509`: PEM certificate (bundle).
    RsaX509,
    /// `ed25519`: raw 32-byte public key.
    Ed25519,
    /// Anything else, kept verbatim (its key ID still counts; it never verifies).
    Unknown(String),
}

impl KeyType {
    /// Parses a `keytype` string exactly (case-sensitive, as notary does).
    pub fn parse(s: &str) -> KeyType {
        match s {
            "ecdsa" => KeyType::Ecdsa,
            "ecdsa-x509" => KeyType::EcdsaX509,
            "rsa" => KeyType::Rsa,
            "rsa-x509" => KeyType::RsaX509,
            "ed25519" => KeyType::Ed25519,
            other => KeyType::Unknown(other.to_owned()),
        }
    }

    /// The notary string of this key type.
    pub fn as_str(&self) -> &str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::Rsa => "rsa",
            KeyType::RsaX509 => "rsa-x509",
            KeyType::Ed25519 => "ed25519",
            KeyType::Unknown(s) => s,
        }
    }

    /// True for `ecdsa-x509` and `rsa-x509`.
    pub fn is_x509(&self) -> bool {
        matches!(self, KeyType::EcdsaX509 | KeyType::RsaX509)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public-key algorithm of a certificate or SPKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// id-ecPublicKey (P-224, P-256, P-384 or P-521).
    Ecdsa,
    /// rsaEncryption.
    Rsa,
    /// Ed25519.
    Ed25519,
    /// Any other algorithm (certificates only; such a key never verifies).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// The verification material behind a key.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// Uncompressed point.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    /// PKCS#1 RSAPublicKey DER.
    Rsa {
        pkcs1: Vec<u8>,
        bits: usize,
    },
    Ed25519([u8; 32]),
    /// Nothing can be verified with this key, and why.
    Unusable(String),
}

/// A public key from Notary metadata.
#[derive(Clone)]
pub struct PublicKey {
    key_type: KeyType,
    id: String,
    /// Decoded `keyval.public` (`None` when it was null or absent).
    public: Option<Vec<u8>>,
    spki: Option<Vec<u8>>,
    cert: Option<CertInfo>,
    material: Material,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PublicKey");
        d.field("key_type", &self.key_type).field("id", &self.id);
        if let Some(cert) = &self.cert {
            d.field("common_name", &cert.common_name);
        }
        if let Some(reason) = self.unusable_reason() {
            d.field("unusable", &reason);
        }
        d.finish()
    }
}

impl PublicKey {
    /// From a key object `{"keytype":..,"keyval":{"public":<b64>,"private":..}}`.
    ///
    /// An unknown keytype gives a `KeyType::Unknown` key whose signatures never verify.
    /// Malformed structure, base64, DER or PEM for a known type is an error with a readable
    /// reason (see [`PublicKey::from_json_lenient`] for notary's own, lazier behaviour).
    pub fn from_json(v: &Value) -> Result<PublicKey, KeyError> {
        let (keytype, public) = parse_key_json(v, true)?;
        let (key, err) = build(&keytype, public);
        match err {
            Some(e) => Err(e),
            None => Ok(key),
        }
    }

    /// Like [`PublicKey::from_json`], but only fails where Go's `json.Unmarshal` into a `TUFKey`
    /// fails (wrong JSON types, bad base64). A key whose DER/PEM content is broken is returned
    /// anyway, with its key ID, and never verifies ([`PublicKey::unusable_reason`] says why):
    /// notary parses key material lazily, at verification time, so such a key only loses its
    /// signatures instead of invalidating the whole file.
    pub fn from_json_lenient(v: &Value) -> Result<PublicKey, KeyError> {
        let (keytype, public) = parse_key_json(v, false)?;
        Ok(build(&keytype, public).0)
    }

    /// From a keytype and the base64 of `keyval.public` (Go-compatible decoding).
    pub fn from_parts(keytype: &str, public_b64: &str) -> Result<PublicKey, KeyError> {
        let public = decode_base64_go(public_b64)?;
        let (key, err) = build(keytype, Some(public));
        match err {
            Some(e) => Err(e),
            None => Ok(key),
        }
    }

    /// Notary's `CertBundleToKey`: an `ecdsa-x509`/`rsa-x509` key (by the leaf's algorithm) whose
    /// public value is the PEM of `certs` (leaf first), re-encoded as Go does. Notary rebuilds
    /// root keys this way before checking root signatures.
    pub fn from_cert_bundle(certs: &[CertInfo]) -> Result<PublicKey, KeyError> {
        let leaf = certs
            .first()
            .ok_or_else(|| KeyError::Certificate("empty certificate bundle".into()))?;
        let keytype = match leaf.key_algorithm {
            KeyAlgorithm::Ecdsa => KeyType::EcdsaX509,
            KeyAlgorithm::Rsa => KeyType::RsaX509,
            other => {
                return Err(KeyError::Unsupported(format!(
                    "certificate key algorithm {other:?}"
                )));
            }
        };
        let pem: String = certs.iter().map(CertInfo::to_pem).collect();
        let (key, err) = build(keytype.as_str(), Some(pem.into_bytes()));
        match err {
            Some(e) => Err(e),
            None => Ok(key),
        }
    }

    /// The key type as declared (`ecdsa`, `ecdsa-x509`, `rsa`, ...).
    pub fn key_type(&self) -> &KeyType {
        &self.key_type
    }

    /// Notary key ID: hex sha256 of canonical
    /// `{"keytype":T,"keyval":{"private":null,"public":"<b64>"}}`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// For x509 keys: the ID of the plain `ecdsa`/`rsa` key built from the certificate's SPKI DER
    /// (notary's `CanonicalKeyID`, used to name private keys). For others (and x509 keys whose
    /// certificate does not parse): the same as [`PublicKey::id`].
    pub fn canonical_id(&self) -> String {
        let plain = match self.key_type {
            KeyType::EcdsaX509 => "ecdsa",
            KeyType::RsaX509 => "rsa",
            _ => return self.id.clone(),
        };
        match &self.spki {
            Some(spki) => tuf_key_id(plain, Some(spki)),
            None => self.id.clone(),
        }
    }

    /// The identity of the public key itself, whatever wraps it: equal for an `ecdsa` key and
    /// any `ecdsa-x509` certificate of the same key (any number of certificates), different for
    /// different keys. A hex sha256 over the curve and point (EC), the modulus (RSA: whoever can
    /// sign for a modulus can sign for any exponent) or the raw key (Ed25519). Keys that never
    /// verify (unknown type, unusable material) are identified by their key ID. Thresholds and
    /// revocations count these, never key IDs.
    pub fn public_key_id(&self) -> String {
        let mut h = Sha256::new();
        match &self.material {
            Material::Ec { curve, point } => {
                h.update(format!("ec:{curve:?}:").as_bytes());
                h.update(point);
            }
            Material::Rsa { pkcs1, .. } => {
                h.update(b"rsa:");
                match x509::rsa_modulus(pkcs1) {
                    Some(n) => h.update(&n),
                    None => h.update(pkcs1),
                }
            }
            Material::Ed25519(raw) => {
                h.update(b"ed25519:");
                h.update(raw);
            }
            Material::Unusable(_) => {
                h.update(b"keyid:");
                h.update(self.id.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// DER SubjectPublicKeyInfo of the public key (from the leaf certificate for x509 types);
    /// `None` for ed25519, unknown and unusable keys.
    pub fn spki_der(&self) -> Option<&[u8]> {
        self.spki.as_deref()
    }

    /// The raw 32-byte key of an `ed25519` key.
    pub fn raw_ed25519(&self) -> Option<&[u8; 32]> {
        match &self.material {
            Material::Ed25519(k) => Some(k),
            _ => None,
        }
    }

    /// Leaf certificate info for x509 types (the first PEM block, as notary's verifier reads it).
    pub fn certificate(&self) -> Option<&CertInfo> {
        self.cert.as_ref()
    }

    /// The whole certificate bundle in `keyval.public`, parsed as notary's root validation does
    /// ([`parse_cert_bundle`]). Notary attempts this for every root-role key, whatever its type.
    pub fn cert_bundle(&self) -> Result<Vec<CertInfo>, KeyError> {
        parse_cert_bundle(self.public.as_deref().unwrap_or_default())
    }

    /// The decoded `keyval.public` bytes (`None` when null or absent).
    pub fn public_bytes(&self) -> Option<&[u8]> {
        self.public.as_deref()
    }

    /// Why this key can never verify anything (unknown type, or unusable material), if so.
    pub fn unusable_reason(&self) -> Option<&str> {
        match &self.material {
            Material::Unusable(reason) => Some(reason),
            _ => None,
        }
    }

    /// Verifies `sig` (already base64-decoded) over `msg` with notary `method`
    /// (`ecdsa`, `rsapss`, `rsapkcs1v15`, `eddsa`; compared lowercased).
    pub fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let method = method.to_lowercase();
        match method.as_str() {
            "ecdsa" => {
                self.require_type(&method, &[KeyType::Ecdsa, KeyType::EcdsaX509])?;
                let Material::Ec { curve, point } = &self.material else {
                    return Err(self.unusable());
                };
                let expected = 2 * curve.field_len();
                if sig.len() != expected {
                    return Err(SignatureError::EcdsaSignatureLength {
                        expected,
                        actual: sig.len(),
                    });
                }
                let result = match curve {
                    Curve::P256 => {
                        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(msg, sig)
                    }
                    // aws-lc-rs has no fixed-format P-384/SHA-256 verifier: use the ASN.1 one.
                    Curve::P384 => UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, point)
                        .verify(msg, &fixed_to_asn1(sig)),
                    Curve::P521 => {
                        UnparsedPublicKey::new(&ECDSA_P521_SHA256_FIXED, point).verify(msg, sig)
                    }
                };
                result.map_err(|_| SignatureError::Invalid)
            }
            "rsapss" | "rsapkcs1v15" => {
                self.require_type(&method, &[KeyType::Rsa, KeyType::RsaX509])?;
                let Material::Rsa { pkcs1, bits } = &self.material else {
                    return Err(self.unusable());
                };
                if *bits < MIN_RSA_BITS {
                    return Err(SignatureError::RsaKeyTooSmall { bits: *bits });
                }
                if sig.len() < MIN_RSA_BITS / 8 {
                    return Err(SignatureError::RsaSignatureTooShort { len: sig.len() });
                }
                if *bits > MAX_RSA_BITS {
                    return Err(SignatureError::UnusableKey(format!(
                        "RSA keys above {MAX_RSA_BITS} bits are not supported (this one has {bits})"
                    )));
                }
                let alg = if method == "rsapss" {
                    &RSA_PSS_2048_8192_SHA256
                } else {
                    &RSA_PKCS1_2048_8192_SHA256
                };
                UnparsedPublicKey::new(alg, pkcs1)
                    .verify(msg, sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            "eddsa" => {
                self.require_type(&method, &[KeyType::Ed25519])?;
                if sig.len() != 64 {
                    return Err(SignatureError::Ed25519SignatureLength(sig.len()));
                }
                let Material::Ed25519(key) = &self.material else {
                    return Err(self.unusable());
                };
                UnparsedPublicKey::new(&ED25519, key)
                    .verify(msg, sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            "pycrypto-pkcs#1 pss" => Err(SignatureError::UnsupportedMethod(method)),
            _ => Err(SignatureError::UnknownMethod(method)),
        }
    }

    fn require_type(&self, method: &str, allowed: &[KeyType]) -> Result<(), SignatureError> {
        if allowed.contains(&self.key_type) {
            Ok(())
        } else {
            Err(SignatureError::WrongKeyType {
                method: method.to_owned(),
                key_type: self.key_type.to_string(),
            })
        }
    }

    fn unusable(&self) -> SignatureError {
        SignatureError::UnusableKey(
            self.unusable_reason()
                .unwrap_or("key material does not match its type")
                .to_owned(),
        )
    }
}

/// Fixed `r||s` to a DER `ECDSA-Sig-Value` (for aws-lc-rs's P-384/SHA-256 verifier).
fn fixed_to_asn1(sig: &[u8]) -> Vec<u8> {
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = Vec::with_capacity(sig.len() + 6);
    for int in [r, s] {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
        let trimmed = int.get(start..).unwrap_or_default();
        let pad = trimmed.first().is_none_or(|&b| b & 0x80 != 0);
        body.push(0x02);
        // At most 67 bytes per integer for the curves used here: short-form lengths.
        body.push(u8::try_from(trimmed.len() + usize::from(pad)).unwrap_or(0x7f));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    if body.len() < 0x80 {
        out.push(u8::try_from(body.len()).unwrap_or(0x7f));
    } else {
        out.push(0x81);
        out.push(u8::try_from(body.len()).unwrap_or(0xff));
    }
    out.extend_from_slice(&body);
    out
}
