//! cosign (Sigstore) signatures verified with public keys, over bytes already fetched (no HTTP,
//! Kubernetes or policy types here). Two formats, as `cosign sign --key` writes them:
//!
//! * **Legacy simple signing** (`simple`): a layer of media type
//!   `application/vnd.dev.cosign.simplesigning.v1+json` (the payload) whose annotation
//!   `dev.cosignproject.cosign/signature` holds the base64 signature over the payload bytes,
//!   in the `sha256-<hex>.sig` tag manifest. The payload names the digest and the repository.
//! * **Sigstore bundle** (`bundle`; cosign 3's default): a layer of media type
//!   `application/vnd.dev.sigstore.bundle.v0.3+json` attached as a referrer, holding a DSSE
//!   envelope (signature over PAE(payloadType, payload)) around an in-toto statement whose
//!   subject is the digest. The statement names no repository: a bundle binds the digest only.
//!
//! The policy ([`CosignPolicy`]) is its public keys (parsed once, identified by SPKI), the
//! threshold of distinct keys and the revoked keys; [`evaluate`] counts distinct keys over all
//! signatures attached to a digest. Keyless signatures (a Fulcio certificate in the bundle or
//! the legacy `dev.sigstore.cosign/certificate` annotation) are refused: keyless and
//! transparency-log verification are not supported in `v1alpha1`. Transparency-log entries a
//! bundle may carry are not checked (as `cosign verify --insecure-ignore-tlog`).
//! Signers are key IDs `sha256:<hex of SHA-256 of the SPKI DER>` ([`key_id`]).

mod bundle;
mod keys;
mod simple;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use self::keys::PublicKey;
pub use self::keys::key_id;
use super::{Attached, Evaluation, Revoked, Subject};
use crate::json::json_depth;
use crate::limits::LIMITS;

/// Media type of a legacy cosign payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation of a legacy payload layer holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation of a legacy payload layer holding a keyless signing certificate.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Media type (and artifact type) of a Sigstore bundle as cosign 3 attaches it.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Every Sigstore bundle media type starts with this (`...bundle.v0.3+json`,
/// `...bundle+json;version=0.2`).
pub const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// `critical.type` of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// The in-toto predicate type of `cosign sign` in the bundle format.
pub const SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// A cosign signer: `sha256:<hex of SHA-256 of the SPKI DER>`.
pub type KeyId = String;

/// Why a cosign policy could not be built or a signature did not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignError {
    /// A policy key is not a usable PEM public key or certificate.
    #[error("cosign public key: {0}")]
    BadKey(String),
    /// The policy lists no public key.
    #[error("cosign policy lists no public key")]
    NoKeys,
    /// The threshold is 0 or larger than the number of distinct keys.
    #[error("cosign threshold {threshold} cannot be met by {keys} distinct public key(s)")]
    BadThreshold {
        /// The threshold asked for.
        threshold: u32,
        /// Distinct keys in the policy.
        keys: usize,
    },
    /// A keyless (certificate) or transparency-log-only signature.
    #[error("{0}: keyless and transparency-log verification are not supported in v1alpha1")]
    KeylessUnsupported(String),
    /// Neither a bundle nor a legacy payload.
    #[error("not a cosign signature (artifact type {artifact_type:?}, layer {media_type:?})")]
    UnknownFormat {
        /// The artifact's type.
        artifact_type: String,
        /// The layer's media type.
        media_type: String,
    },
    /// The envelope or payload is larger than `LIMITS.signature_envelope_bytes` or nests JSON
    /// deeper than `LIMITS.json_depth`.
    #[error("cosign signature of {size} bytes breaks the limit ({detail})")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// Which limit.
        detail: String,
    },
    /// The bytes are not what the format says.
    #[error("malformed cosign {what}: {detail}")]
    Malformed {
        /// `payload`, `bundle`, `signature`, ...
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// No policy key verifies the signature.
    #[error("signature verifies with none of the {keys} policy key(s){hint}")]
    NoKeyVerifies {
        /// How many keys were tried.
        keys: usize,
        /// `" (signed by key sha256:..)"` when the bundle hints at its key.
        hint: String,
    },
    /// More signatures than a limit allows (refused before any is checked).
    #[error("{count} {what}, more than the limit of {limit}")]
    TooManySignatures {
        /// How many there are.
        count: usize,
        /// The limit (`signatures_per_format` or `dsse_signatures_per_envelope`).
        limit: usize,
        /// What was counted.
        what: &'static str,
    },
    /// The only key that verifies it is revoked.
    #[error("signed by revoked key {0}")]
    Revoked(KeyId),
    /// The payload is not a cosign image signature (`critical.type`, payload or predicate type).
    #[error("payload is not a cosign image signature: {0}")]
    WrongType(String),
    /// The payload signs another digest.
    #[error("payload signs digest {signed}, not {expected}")]
    DigestMismatch {
        /// What it signs.
        signed: String,
        /// The resolved digest.
        expected: String,
    },
    /// The payload names another repository.
    #[error("payload names repository {signed}, not {expected}")]
    RepositoryMismatch {
        /// What it names.
        signed: String,
        /// The image's repository.
        expected: String,
    },
}

/// The cosign block of a policy, with its keys parsed once.
#[derive(Debug, Clone)]
pub struct CosignPolicy {
    keys: Vec<PublicKey>,
    threshold: u32,
    revoked: Revoked,
}

impl CosignPolicy {
    /// A policy over `public_keys` (PEM public keys or certificates; the same key given twice
    /// is one key), `threshold` distinct keys to be met, and keys that never count.
    ///
    /// # Errors
    /// A key that does not parse, no key, or a threshold of 0 or above the distinct keys.
    pub fn new(
        public_keys: &[String],
        threshold: u32,
        revoked: Revoked,
    ) -> Result<CosignPolicy, CosignError> {
        let (mut keys, mut identities): (Vec<PublicKey>, Vec<_>) = (Vec::new(), Vec::new());
        for (i, pem) in public_keys.iter().enumerate() {
            let key = PublicKey::from_pem(pem).map_err(|e| match e {
                CosignError::BadKey(d) => CosignError::BadKey(format!("publicKeys[{i}]: {d}")),
                other => other,
            })?;
            // One key in two encodings is one key (`keyid`): it cannot count twice.
            let identity = super::keyid::key_identity(&key.spki);
            if !identities.contains(&identity) {
                identities.push(identity);
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(CosignError::NoKeys);
        }
        if threshold == 0 || usize::try_from(threshold).map_or(true, |t| t > keys.len()) {
            return Err(CosignError::BadThreshold {
                threshold,
                keys: keys.len(),
            });
        }
        Ok(CosignPolicy {
            keys,
            threshold,
            revoked,
        })
    }

    /// The distinct keys' IDs, in the policy's order.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// The threshold of distinct keys.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// The error for a signature no policy key verifies; `hinted` is the key the signature
    /// names. An Ed25519 key (the hinted one, or any without a hint) adds why it cannot have
    /// verified a signature cosign 3 made.
    fn no_key_verifies(&self, hinted: Option<KeyId>) -> CosignError {
        let ed25519 = self
            .keys
            .iter()
            .any(|k| k.is_ed25519() && hinted.as_ref().is_none_or(|h| *h == k.id));
        let mut hint = hinted
            .map(|id| format!(" (the signature names key {id})"))
            .unwrap_or_default();
        if ed25519 {
            hint.push_str(
                "; cosign 3 signs with Ed25519 keys as Ed25519ph, which is not supported: \
                 use an ECDSA or RSA key",
            );
        }
        CosignError::NoKeyVerifies {
            keys: self.keys.len(),
            hint,
        }
    }

    /// The non-revoked policy keys whose signature over `msg` is `sig`, and the revoked ones
    /// that verified it.
    fn signers(&self, msg: &[u8], sig: &[u8]) -> (Vec<&PublicKey>, Vec<&PublicKey>) {
        self.keys
            .iter()
            .filter(|k| k.verifies(msg, sig))
            .partition(|k| !self.revoked.contains(&k.spki))
    }

    /// As [`CosignPolicy::signers`], but when `hint` is the ID of a policy key only that key is
    /// tried.
    fn signers_hinted(
        &self,
        msg: &[u8],
        sig: &[u8],
        hint: Option<&str>,
    ) -> (Vec<&PublicKey>, Vec<&PublicKey>) {
        match hint.and_then(|h| self.keys.iter().find(|k| k.id == h)) {
            Some(key) if key.verifies(msg, sig) => {
                if self.revoked.contains(&key.spki) {
                    (Vec::new(), vec![key])
                } else {
                    (vec![key], Vec::new())
                }
            }
            Some(_) => (Vec::new(), Vec::new()),
            None => self.signers(msg, sig),
        }
    }
}

/// Whether `sig` is a cosign signature artifact (a bundle or a legacy payload layer), by its
/// artifact and layer media types.
pub fn is_cosign(sig: &Attached) -> bool {
    sig.media_type == SIMPLE_SIGNING_MEDIA_TYPE
        || sig.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX)
        || sig.artifact_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX)
}

/// Verifies one signature artifact for `subject`: the signature with a policy key, then what
/// the payload signs. Returns the (first) key that verified it.
///
/// # Errors
/// Why the signature does not count for `subject`.
pub fn verify(
    policy: &CosignPolicy,
    subject: &Subject,
    sig: &Attached,
) -> Result<KeyId, CosignError> {
    verify_all(policy, subject, sig)?
        .into_iter()
        .next()
        .ok_or_else(|| policy.no_key_verifies(None))
}

/// Every non-revoked policy key that signed `sig` for `subject` (a DSSE envelope may carry
/// several signatures); never empty on success.
fn verify_all(
    policy: &CosignPolicy,
    subject: &Subject,
    sig: &Attached,
) -> Result<Vec<KeyId>, CosignError> {
    check_size(&sig.blob)?;
    if sig.media_type == SIMPLE_SIGNING_MEDIA_TYPE {
        simple::verify(policy, subject, sig)
    } else if sig.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        bundle::verify(policy, subject, &sig.blob)
    } else {
        Err(CosignError::UnknownFormat {
            artifact_type: sig.artifact_type.clone(),
            media_type: sig.media_type.clone(),
        })
    }
}

/// Evaluates every cosign signature attached to `subject`: passed when `threshold` distinct
/// policy keys (by SPKI) verified signatures of it. `signers` are their key IDs; `reason` says
/// how many keys counted and, on failure, why each signature did not count.
pub fn evaluate(policy: &CosignPolicy, subject: &Subject, sigs: &[Attached]) -> Evaluation {
    let threshold = usize::try_from(policy.threshold).unwrap_or(usize::MAX);
    let mut signers = BTreeSet::new();
    let mut failures = Vec::new();
    let limit = LIMITS.signatures_per_format;
    if sigs.len() > limit {
        // Refused, never cut: checking only some would let junk artifacts hide the rest.
        return Evaluation {
            passed: false,
            reason: CosignError::TooManySignatures {
                count: sigs.len(),
                limit,
                what: "cosign signatures attached (bundles and legacy .sig layers together)",
            }
            .to_string(),
            signers: Vec::new(),
        };
    }
    for sig in sigs {
        match verify_all(policy, subject, sig) {
            Ok(ids) => signers.extend(ids),
            Err(e) => failures.push(format!("{}: {e}", short_digest(&sig.manifest_digest))),
        }
    }
    let signers: Vec<String> = signers.into_iter().collect();
    let passed = signers.len() >= threshold;
    let mut reason = if sigs.is_empty() {
        format!("no cosign signature attached to {}", subject.digest)
    } else if passed {
        format!(
            "signed by {} of the {} required distinct cosign key(s)",
            signers.len(),
            threshold
        )
    } else {
        format!(
            "{} distinct cosign key(s) signed {}, {} required",
            signers.len(),
            subject.digest,
            threshold
        )
    };
    if !passed && !failures.is_empty() {
        reason.push_str(&format!(
            " ({} of {} signature(s) did not count: {})",
            failures.len(),
            sigs.len(),
            failures.join("; ")
        ));
    }
    Evaluation {
        passed,
        reason,
        signers,
    }
}

/// What a cosign signature artifact claims, without verifying it (for `trustgate inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `bundle` or `simple-signing`.
    pub format: &'static str,
    /// The digests the payload signs (`sha256:<hex>`).
    pub subjects: Vec<String>,
    /// The repository the payload names (legacy format only).
    pub docker_reference: Option<String>,
    /// The key ID the bundle says it was signed with (`publicKey.hint` as `sha256:<hex>`).
    pub key_hint: Option<KeyId>,
    /// Signatures in the envelope.
    pub signatures: usize,
    /// Whether it is a keyless signature (a signing certificate instead of a key hint).
    pub keyless: bool,
    /// Transparency-log entries carried (not checked by trustgate).
    pub tlog_entries: usize,
    /// The signing time, RFC 3339, when the signature carries one (a transparency-log entry's
    /// integrated time, or the legacy payload's `optional` field `timestamp`).
    pub signing_time: Option<String>,
}

/// What `sig` claims (format, subjects, key hint), without verifying its signature.
///
/// # Errors
/// Not a cosign signature, or malformed.
pub fn describe(sig: &Attached) -> Result<Description, CosignError> {
    check_size(&sig.blob)?;
    if sig.media_type == SIMPLE_SIGNING_MEDIA_TYPE {
        simple::describe(sig)
    } else if sig.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        bundle::describe(&sig.blob)
    } else {
        Err(CosignError::UnknownFormat {
            artifact_type: sig.artifact_type.clone(),
            media_type: sig.media_type.clone(),
        })
    }
}

/// `sha256:0123456789ab` for messages.
fn short_digest(d: &str) -> String {
    let end = "sha256:".len() + 12;
    d.get(..end).unwrap_or(d).to_string()
}

/// Refuses blobs above `LIMITS.signature_envelope_bytes` or nesting JSON deeper than
/// `LIMITS.json_depth`.
fn check_size(blob: &[u8]) -> Result<(), CosignError> {
    let limit = LIMITS.signature_envelope_bytes;
    if u64::try_from(blob.len()).map_or(true, |n| n > limit) {
        return Err(CosignError::TooLarge {
            size: blob.len(),
            detail: format!("at most {limit} bytes"),
        });
    }
    if json_depth(blob) > LIMITS.json_depth {
        return Err(CosignError::TooLarge {
            size: blob.len(),
            detail: format!("JSON nested deeper than {} levels", LIMITS.json_depth),
        });
    }
    Ok(())
}

/// Decodes standard base64 (cosign writes padded standard base64).
fn base64_decode(what: &'static str, text: &str) -> Result<Vec<u8>, CosignError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| CosignError::Malformed {
            what,
            detail: format!("invalid base64: {e}"),
        })
}
