//! The public keys of a cosign policy: PEM (`PUBLIC KEY`, or a `CERTIFICATE` whose key is
//! used) to DER SubjectPublicKeyInfo, the key ID `sha256:<hex of SHA-256 of the SPKI DER>`,
//! and signature verification with the schemes `cosign sign --key` uses for each key type,
//! on aws-lc-rs:
//!
//! * ECDSA, ASN.1 DER signatures: P-256 with SHA-256; P-384 with SHA-384 (and SHA-256, what
//!   older cosign releases hashed with); P-521 with SHA-512 (and SHA-256).
//! * RSA (2048 to 8192 bits): PKCS#1 v1.5 with SHA-256 (and PSS with SHA-256).
//! * Ed25519: the plain (pure) signature over the message. cosign 3 signs with Ed25519 keys
//!   as Ed25519ph (HashEdDSA over SHA-512) in both formats, which aws-lc-rs does not expose:
//!   such signatures do not verify, and the error says why.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ECDSA_P521_SHA256_ASN1,
    ECDSA_P521_SHA512_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    UnparsedPublicKey, VerificationAlgorithm,
};
use sha2::{Digest as _, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use super::CosignError;

use super::super::keyid::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_P521, OID_RSA};

/// The key ID cosign signers are reported by: `sha256:<hex of SHA-256 of the SPKI DER>`.
pub fn key_id(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// What a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    P256,
    P384,
    P521,
    Rsa,
    Ed25519,
}

/// One usable public key of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PublicKey {
    /// DER SubjectPublicKeyInfo (the identity of the key: two PEMs of one key are one key).
    pub(super) spki: Vec<u8>,
    /// `sha256:<hex>` of the SPKI.
    pub(super) id: String,
    kind: Kind,
    /// The key bytes aws-lc-rs takes: the uncompressed EC point, PKCS#1 RSAPublicKey, or the
    /// 32 raw Ed25519 bytes.
    raw: Vec<u8>,
}

impl PublicKey {
    /// Parses one PEM public key or certificate (the first PEM block of `pem`).
    pub(super) fn from_pem(pem: &str) -> Result<PublicKey, CosignError> {
        let bad = |detail: String| CosignError::BadKey(detail);
        let block = first_pem_block(pem)
            .ok_or_else(|| bad("not a PEM public key or certificate".into()))?;
        let rest = pem.split_once(block).map_or("", |(_, rest)| rest);
        if rest.contains("-----BEGIN ") {
            return Err(bad(
                "more than one PEM block: list each key as its own entry".into(),
            ));
        }
        let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| bad(format!("invalid PEM: {e}")))?;
        let spki = match label {
            "PUBLIC KEY" => der,
            "CERTIFICATE" => {
                let cert = x509_cert::Certificate::from_der(&der)
                    .map_err(|e| bad(format!("invalid certificate: {e}")))?;
                cert.tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .map_err(|e| bad(format!("invalid certificate key: {e}")))?
            }
            other => {
                return Err(bad(format!(
                    "PEM block {other:?} is neither PUBLIC KEY nor CERTIFICATE"
                )));
            }
        };
        PublicKey::from_spki(spki)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub(super) fn from_spki(spki: Vec<u8>) -> Result<PublicKey, CosignError> {
        let bad = |detail: String| CosignError::BadKey(detail);
        let parsed = SubjectPublicKeyInfoRef::from_der(&spki)
            .map_err(|e| bad(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
        let bits = parsed
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("public key BIT STRING has unused bits".into()))?;
        let oid = parsed.algorithm.oid;
        let kind = if oid == OID_EC_PUBLIC_KEY {
            let curve = parsed
                .algorithm
                .parameters
                .and_then(|p| ObjectIdentifier::try_from(p).ok())
                .ok_or_else(|| bad("EC key without a named curve".into()))?;
            let (kind, field) = match curve {
                c if c == OID_P256 => (Kind::P256, 32),
                c if c == OID_P384 => (Kind::P384, 48),
                c if c == OID_P521 => (Kind::P521, 66),
                c => return Err(bad(format!("unsupported elliptic curve {c}"))),
            };
            if bits.len() != 1 + 2 * field || bits.first() != Some(&4) {
                return Err(bad("EC public key is not an uncompressed point".into()));
            }
            kind
        } else if oid == OID_RSA {
            Kind::Rsa
        } else if oid == OID_ED25519 {
            if bits.len() != 32 {
                return Err(bad("Ed25519 public key is not 32 bytes".into()));
            }
            Kind::Ed25519
        } else {
            return Err(bad(format!("unsupported public key algorithm {oid}")));
        };
        let raw = bits.to_vec();
        let key = PublicKey {
            id: key_id(&spki),
            spki,
            kind,
            raw,
        };
        if kind == Kind::Rsa {
            let parsed = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&key.spki)
                .map_err(|e| bad(format!("unusable RSA public key: {e}")))?;
            let size = parsed.key_size_bits();
            if !(2048..=8192).contains(&size) {
                return Err(bad(format!(
                    "RSA keys of 2048 to 8192 bits are supported, this one has {size}"
                )));
            }
        }
        Ok(key)
    }

    /// Whether this is an Ed25519 key.
    pub(super) fn is_ed25519(&self) -> bool {
        self.kind == Kind::Ed25519
    }

    /// Whether `sig` is this key's signature over `msg`.
    pub(super) fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        let algs: &[&'static dyn VerificationAlgorithm] = match self.kind {
            Kind::P256 => &[&ECDSA_P256_SHA256_ASN1],
            Kind::P384 => &[&ECDSA_P384_SHA384_ASN1, &ECDSA_P384_SHA256_ASN1],
            Kind::P521 => &[&ECDSA_P521_SHA512_ASN1, &ECDSA_P521_SHA256_ASN1],
            Kind::Rsa => &[&RSA_PKCS1_2048_8192_SHA256, &RSA_PSS_2048_8192_SHA256],
            Kind::Ed25519 => &[&ED25519],
        };
        algs.iter().any(|alg| {
            UnparsedPublicKey::new(*alg, &self.raw)
                .verify(msg, sig)
                .is_ok()
        })
    }
}

/// The first `-----BEGIN ...-----` to `-----END ...-----` block of `text`, trimmed.
fn first_pem_block(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")?;
    let rest = text.get(start..)?;
    let end_marker = rest.find("-----END ")?;
    let after = rest.get(end_marker + "-----END ".len()..)?;
    let close = after.find("-----")?;
    let len = end_marker + "-----END ".len() + close + "-----".len();
    rest.get(..len)
}
