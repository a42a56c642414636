//! Notation (Notary Project) signatures, verified as `notation verify` does at its `strict`
//! level, over bytes only (the registry fetching is `image::registry`'s).
//!
//! One signature artifact ([`Attached`]) goes through, in Notation's order:
//! 1. integrity: the envelope (JWS, `jws`; COSE_Sign1, `cose`) parses within the limits, its
//!    signed attributes are the ones Notation defines (content type, signing scheme, signing time,
//!    every critical header understood: `envelope`), the algorithm is the one the signing
//!    certificate's key requires and the signature verifies with that key;
//! 2. the signed descriptor (`targetArtifact`) equals the [`Subject`] (media type, digest, size);
//! 3. authenticity: the certificate chain meets Notation's certificate requirements and is valid
//!    at signing time (`chain`), one of its certificates is in the trust store, no key of it is
//!    revoked;
//! 4. the signing certificate's subject matches a trusted identity (`identity`);
//! 5. the signature's expiry (`io.cncf.notary.expiry`) has not passed;
//! 6. without a trusted timestamp (trustgate verifies no RFC 3161 countersignature), every
//!    certificate of the chain is valid now.
//!
//! [`evaluate`] applies the rule of the format: one valid signature among those attached passes.

use std::fmt;

use time::OffsetDateTime;

use super::{Attached, Evaluation, Revoked, Subject};
use crate::limits::LIMITS;

mod chain;
mod cose;
mod envelope;
mod identity;
mod jws;

#[cfg(test)]
mod tests;

/// Artifact type of a Notation signature manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// Media type of a JWS envelope layer.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// Media type of a COSE envelope layer.
pub const MEDIA_TYPE_COSE: &str = "application/cose";

/// Why a Notation signature (or the policy's Notation block) was not accepted. Each message is
/// one line that says which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotationError {
    /// A trust store entry or trusted identity of the policy is not usable.
    #[error("notation policy: {entry}: {detail}")]
    Policy {
        /// Which entry (`trustStore[0]`, `trustedIdentities[1]`).
        entry: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The artifact is not a Notation signature.
    #[error("artifact type {0:?} is not a Notation signature ({ARTIFACT_TYPE})")]
    NotASignature(String),
    /// The envelope media type is neither JWS nor COSE.
    #[error(
        "signature envelope type {0:?} is not supported (JWS {MEDIA_TYPE_JWS} or COSE {MEDIA_TYPE_COSE})"
    )]
    UnsupportedEnvelope(String),
    /// An input is larger than its limit.
    #[error("{what} of {size} exceeds the limit of {limit}")]
    TooLarge {
        /// What was measured (`signature envelope bytes`, `certificate chain length`, ...).
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The envelope does not parse as its format says.
    #[error("malformed {format} envelope: {detail}")]
    Malformed {
        /// `JWS` or `COSE`.
        format: &'static str,
        /// What did not parse.
        detail: String,
    },
    /// A signed attribute is missing, of the wrong value, or not allowed.
    #[error("signed attributes: {0}")]
    Attributes(String),
    /// A header is marked critical that trustgate does not understand.
    #[error("unknown critical header {0:?}: the signature needs a verifier that understands it")]
    UnknownCritical(String),
    /// The signature names a verification plugin; trustgate runs no plugins.
    #[error("the signature requires the verification plugin {0:?}, which trustgate does not run")]
    PluginRequired(String),
    /// `notary.x509.signingAuthority` needs a signing-authority trust store.
    #[error(
        "signing scheme notary.x509.signingAuthority needs a signingAuthority trust store; a policy's trustStore is Notation's `ca` store (notary.x509 only)"
    )]
    SigningAuthority,
    /// The signing key is not one Notation supports.
    #[error("signing certificate key: {0}")]
    UnsupportedKey(String),
    /// The envelope's algorithm is not the one the signing key requires.
    #[error("algorithm {alg} does not match the signing key ({key} requires {expected})")]
    AlgorithmMismatch {
        /// The envelope's algorithm.
        alg: String,
        /// The key (`RSA 2048`, `EC P-256`).
        key: String,
        /// The algorithm that key requires.
        expected: String,
    },
    /// The envelope signature does not verify with the signing certificate's key.
    #[error("the envelope signature does not verify with the signing certificate's key")]
    BadSignature,
    /// The signed descriptor is not the resolved manifest.
    #[error("the signature is for another artifact: signed {signed}, resolved {expected}")]
    OtherArtifact {
        /// The signed `targetArtifact` (media type, digest, size).
        signed: String,
        /// The resolved manifest.
        expected: String,
    },
    /// The certificate chain does not meet Notation's certificate requirements.
    #[error("certificate chain: {0}")]
    Chain(String),
    /// A certificate was not valid when the signature was made.
    #[error("certificate {subject:?} was not valid at signing time {signing_time}")]
    NotValidAtSigningTime {
        /// The certificate's subject.
        subject: String,
        /// The signing time (RFC 3339).
        signing_time: String,
    },
    /// No certificate of the chain is in the trust store.
    #[error("certificate chain of {subject:?} does not end in a trust store certificate")]
    Untrusted {
        /// The signing certificate's subject.
        subject: String,
    },
    /// A key of the chain is listed in `revokedKeys`.
    #[error("certificate {subject:?} has a revoked key")]
    Revoked {
        /// The subject of the certificate with the revoked key.
        subject: String,
    },
    /// The signing certificate's subject matches no trusted identity.
    #[error("signer {subject:?} matches no trusted identity")]
    IdentityNotTrusted {
        /// The signing certificate's subject.
        subject: String,
    },
    /// The signature's expiry has passed.
    #[error("the signature expired at {0}")]
    SignatureExpired(String),
    /// A certificate of the chain is not valid now (no trusted timestamp extends it).
    #[error(
        "certificate {subject:?} is not valid now (valid {not_before} to {not_after}); a signature without a trusted timestamp needs a currently valid chain, and trustgate verifies no RFC 3161 timestamp countersignature"
    )]
    CertificateNotValidNow {
        /// The certificate's subject.
        subject: String,
        /// notBefore (RFC 3339).
        not_before: String,
        /// notAfter (RFC 3339).
        not_after: String,
    },
    /// More signatures than the limit were given to [`evaluate`].
    #[error("{count} Notation signatures attached, more than the limit of {limit}")]
    TooManySignatures {
        /// How many were given.
        count: usize,
        /// `signatures_per_format`.
        limit: usize,
    },
}

impl NotationError {
    /// How far verification got before this error: the failure of the signature that got
    /// furthest is the most relevant one to report.
    fn stage(&self) -> u8 {
        use NotationError::*;
        match self {
            Policy { .. } | TooManySignatures { .. } => 0,
            NotASignature(_) | UnsupportedEnvelope(_) | TooLarge { .. } | Malformed { .. } => 1,
            Attributes(_) | UnknownCritical(_) | PluginRequired(_) | SigningAuthority => 2,
            UnsupportedKey(_) | AlgorithmMismatch { .. } | BadSignature => 3,
            OtherArtifact { .. } => 4,
            Chain(_) | NotValidAtSigningTime { .. } | Untrusted { .. } => 5,
            Revoked { .. } | IdentityNotTrusted { .. } => 6,
            SignatureExpired(_) | CertificateNotValidNow { .. } => 7,
        }
    }
}

/// The Notation block of a policy, parsed once: trust store certificates, trusted identities
/// and the revoked keys of the whole policy.
#[derive(Debug, Clone)]
pub struct NotationPolicy {
    trust_store: Vec<Vec<u8>>,
    identities: Vec<identity::TrustedIdentity>,
    revoked: Revoked,
}

impl NotationPolicy {
    /// Parses the trust store (PEM; an entry may hold several certificates) and the trusted
    /// identities in Notation's syntax (`"*"` alone, or `"x509.subject: C=US, ST=WA, O=Shop"`
    /// with at least C and O). Errors name the bad entry.
    pub fn new(
        trust_store: &[String],
        trusted_identities: &[String],
        revoked: Revoked,
    ) -> Result<Self, NotationError> {
        let mut certs = Vec::new();
        for (i, pem) in trust_store.iter().enumerate() {
            let entry = || format!("trustStore[{i}]");
            let parsed =
                chain::certificates_from_pem(pem).map_err(|detail| NotationError::Policy {
                    entry: entry(),
                    detail,
                })?;
            certs.extend(parsed);
        }
        if certs.is_empty() {
            return Err(NotationError::Policy {
                entry: "trustStore".into(),
                detail: "no certificate".into(),
            });
        }
        let identities = identity::parse_all(trusted_identities)?;
        Ok(Self {
            trust_store: certs,
            identities,
            revoked,
        })
    }
}

/// The signer of a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The signing certificate's subject as `notation` prints it (`CN=release,O=Shop,C=US`).
    pub subject: String,
    /// SHA-256 of the signing certificate (lower-case hex), as in the manifest's
    /// `io.cncf.notary.x509chain.thumbprint#S256` annotation.
    pub thumbprint: String,
    /// The signing time the signature claims (`io.cncf.notary.signingTime`).
    pub signing_time: OffsetDateTime,
}

/// Envelope formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    /// JWS JSON serialisation (`application/jose+json`).
    Jws,
    /// COSE_Sign1 (`application/cose`).
    Cose,
}

impl fmt::Display for EnvelopeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvelopeFormat::Jws => "JWS",
            EnvelopeFormat::Cose => "COSE",
        })
    }
}

/// What a signature claims, read without trusting it (for `trustgate inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// JWS or COSE.
    pub format: EnvelopeFormat,
    /// The algorithm (`PS256`, `ES384`, ...).
    pub algorithm: String,
    /// `notary.x509` or `notary.x509.signingAuthority`.
    pub signing_scheme: String,
    /// Signing time (or authentic signing time), if the envelope has one.
    pub signing_time: Option<OffsetDateTime>,
    /// The signature's expiry, if set.
    pub expiry: Option<OffsetDateTime>,
    /// The signed descriptor's media type.
    pub target_media_type: String,
    /// The signed descriptor's digest.
    pub target_digest: String,
    /// The signed descriptor's size.
    pub target_size: u64,
    /// The signing certificate's subject.
    pub subject: String,
    /// The signing certificate's issuer.
    pub issuer: String,
    /// The signing certificate's key (`RSA 2048`, `EC P-256`), or why Notation cannot use it.
    pub key_type: String,
    /// SHA-256 thumbprints (lower-case hex) of the chain, signing certificate first.
    pub thumbprints: Vec<String>,
}

/// Verifies one signature artifact against the policy for `subject` at time `now`: the signer,
/// or the first check that failed.
pub fn verify(
    policy: &NotationPolicy,
    subject: &Subject,
    sig: &Attached,
    now: OffsetDateTime,
) -> Result<Signer, NotationError> {
    let env = envelope::parse(sig)?;
    let scheme = env.check_attributes()?;
    if scheme == envelope::Scheme::SigningAuthority {
        return Err(NotationError::SigningAuthority);
    }
    let signing_time = env
        .signing_time
        .ok_or_else(|| NotationError::Attributes("no signing time".into()))?;
    let certs = chain::parse_chain(&env.chain)?;
    let leaf = certs
        .first()
        .ok_or_else(|| NotationError::Chain("no certificate".into()))?;

    // 1. integrity
    chain::verify_envelope_signature(leaf, env.algorithm, &env.signed, &env.signature)?;
    // 2. the signed descriptor
    let target = envelope::target_artifact(&env.payload)?;
    if target.media_type != subject.media_type
        || target.digest != subject.digest
        || target.size != subject.size
    {
        return Err(NotationError::OtherArtifact {
            signed: format!(
                "{} {} ({} bytes)",
                target.media_type, target.digest, target.size
            ),
            expected: format!(
                "{} {} ({} bytes)",
                subject.media_type, subject.digest, subject.size
            ),
        });
    }
    // 3. authenticity
    chain::validate(&certs, signing_time)?;
    if !certs
        .iter()
        .any(|c| policy.trust_store.iter().any(|t| t.as_slice() == c.der))
    {
        return Err(NotationError::Untrusted {
            subject: leaf.subject.clone(),
        });
    }
    if let Some(c) = certs.iter().find(|c| policy.revoked.contains(&c.spki)) {
        return Err(NotationError::Revoked {
            subject: c.subject.clone(),
        });
    }
    // 4. trusted identity
    identity::check(&policy.identities, leaf)?;
    // 5. expiry
    if let Some(expiry) = env.expiry
        && now >= expiry
    {
        return Err(NotationError::SignatureExpired(chain::rfc3339(expiry)));
    }
    // 6. no trusted timestamp: the chain must be valid now
    for c in &certs {
        if !c.valid_at(now) {
            return Err(NotationError::CertificateNotValidNow {
                subject: c.subject.clone(),
                not_before: chain::rfc3339(c.not_before),
                not_after: chain::rfc3339(c.not_after),
            });
        }
    }
    Ok(Signer {
        subject: leaf.subject.clone(),
        thumbprint: leaf.thumbprint(),
        signing_time,
    })
}

/// Evaluates every Notation signature attached to the subject: passed when one verifies. A
/// failure says how many were tried and the error of the one that got furthest.
pub fn evaluate(
    policy: &NotationPolicy,
    subject: &Subject,
    sigs: &[Attached],
    now: OffsetDateTime,
) -> Evaluation {
    let fail = |reason: String| Evaluation {
        passed: false,
        reason,
        signers: Vec::new(),
    };
    if sigs.is_empty() {
        return fail(format!(
            "no Notation signature is attached to {}",
            subject.digest
        ));
    }
    let limit = LIMITS.signatures_per_format;
    if sigs.len() > limit {
        return fail(
            NotationError::TooManySignatures {
                count: sigs.len(),
                limit,
            }
            .to_string(),
        );
    }
    let mut signers = Vec::new();
    let mut valid = 0usize;
    let mut worst: Option<(&Attached, NotationError)> = None;
    for sig in sigs {
        match verify(policy, subject, sig, now) {
            Ok(s) => {
                valid += 1;
                signers.push(s.subject);
            }
            Err(e) => {
                if worst.as_ref().is_none_or(|(_, w)| e.stage() > w.stage()) {
                    worst = Some((sig, e));
                }
            }
        }
    }
    signers.sort();
    signers.dedup();
    if !signers.is_empty() {
        return Evaluation {
            passed: true,
            reason: format!(
                "signed by {} ({} of {} Notation signatures valid)",
                signers.join("; "),
                valid,
                sigs.len()
            ),
            signers,
        };
    }
    match worst {
        Some((sig, e)) => fail(format!(
            "no valid Notation signature ({} tried); signature {}: {e}",
            sigs.len(),
            short_digest(&sig.manifest_digest)
        )),
        None => fail("no valid Notation signature".into()),
    }
}

/// `sha256:` and the first 12 hex digits, for one-line reasons.
fn short_digest(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

/// Reads what a signature claims without verifying it.
pub fn describe(sig: &Attached) -> Result<Description, NotationError> {
    let env = envelope::parse(sig)?;
    let target = envelope::target_artifact(&env.payload)?;
    let certs = chain::parse_chain(&env.chain)?;
    let leaf = certs
        .first()
        .ok_or_else(|| NotationError::Chain("no certificate".into()))?;
    Ok(Description {
        format: env.format,
        algorithm: env.algorithm.to_string(),
        signing_scheme: env.signing_scheme.clone(),
        signing_time: env.signing_time.or(env.authentic_signing_time),
        expiry: env.expiry,
        target_media_type: target.media_type,
        target_digest: target.digest,
        target_size: target.size,
        subject: leaf.subject.clone(),
        issuer: leaf.issuer.clone(),
        key_type: chain::key_name(leaf),
        thumbprints: certs.iter().map(chain::Cert::thumbprint).collect(),
    })
}
