//! The signature rules (docs/policy-reference.md, decision rules 3 and 4) over verified trust data, the one-line
//! reasons for every outcome, and the low-cardinality [`ReasonClass`] set where each outcome is
//! produced (for metrics and logs; never derived from the reason text).

use serde::Serialize;

use crate::image::reference::{Digest, DigestAlgorithm, ImageRef};
use crate::image::registry::RegistryError;
use crate::notary::schema::{RELEASES, TARGETS};
use crate::notary::source::FetchError;
use crate::notary::verify::VerifyError;
use crate::notary::view::{SignerResult, TrustData};
use crate::policy::{Action, Mode};

use super::Decision;
use super::formats::FormatResults;
use crate::policy::CompiledPolicy;

/// Why a decision came out as it did, in one of a few stable classes (the `reason` label of
/// `trustgate_image_decisions_total`). Serialised in snake case, as [`ReasonClass::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// Every check passed.
    Verified,
    /// No signature for the tag or digest (or no trust data at all for the repository).
    Unsigned,
    /// The tag is signed for another digest than the registry serves.
    DigestMismatch,
    /// The repository's root is not trusted by the pinned roots (or not usable).
    UntrustedRoot,
    /// Fewer listed signers than `signerThreshold` signed the digest.
    SignerThreshold,
    /// A `required` signer did not sign the digest.
    RequiredSigner,
    /// Trust data failed verification (expired, rolled back, bad signatures or hashes, malformed).
    TrustDataInvalid,
    /// The Notary server could not be asked (connection, TLS, HTTP status, refused access).
    FetchError,
    /// The registry could not resolve the tag (unknown tag or repository, refused, unreachable).
    RegistryError,
    /// Time ran out: the per-image deadline, a registry or a Notary timeout.
    Timeout,
    /// No policy matches; the default action decided.
    DefaultAction,
    /// The deciding policy's action is Allow.
    ActionAllow,
    /// The deciding policy's action is Deny.
    ActionDeny,
    /// The deciding policy does not compile (bad keys, missing Notary URL, ...).
    PolicyInvalid,
    /// The image reference does not parse.
    BadReference,
    /// Signatures of a new format (Notation, cosign) are attached, but none verifies under the
    /// policy (untrusted certificate or key, identity, another digest, tampered, expired).
    UntrustedSignature,
}

impl ReasonClass {
    /// The label, e.g. `digest_mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::Verified => "verified",
            ReasonClass::Unsigned => "unsigned",
            ReasonClass::DigestMismatch => "digest_mismatch",
            ReasonClass::UntrustedRoot => "untrusted_root",
            ReasonClass::SignerThreshold => "signer_threshold",
            ReasonClass::RequiredSigner => "required_signer",
            ReasonClass::TrustDataInvalid => "trust_data_invalid",
            ReasonClass::FetchError => "fetch_error",
            ReasonClass::RegistryError => "registry_error",
            ReasonClass::Timeout => "timeout",
            ReasonClass::DefaultAction => "default_action",
            ReasonClass::ActionAllow => "action_allow",
            ReasonClass::ActionDeny => "action_deny",
            ReasonClass::PolicyInvalid => "policy_invalid",
            ReasonClass::BadReference => "bad_reference",
            ReasonClass::UntrustedSignature => "untrusted_signature",
        }
    }

    /// The class of a failure to fetch Notary metadata. A missing `root.json` or
    /// `timestamp.json` means the repository has no trust data: unsigned.
    pub fn of_fetch(e: &FetchError) -> ReasonClass {
        match e {
            FetchError::Timeout { .. } => ReasonClass::Timeout,
            FetchError::NotFound { file, .. }
                if file == "root.json" || file == "timestamp.json" =>
            {
                ReasonClass::Unsigned
            }
            _ => ReasonClass::FetchError,
        }
    }

    /// The class of a failure to load trust data.
    pub fn of_trust(e: &VerifyError) -> ReasonClass {
        match e {
            VerifyError::Fetch(f) => ReasonClass::of_fetch(f),
            VerifyError::UntrustedRoot { .. }
            | VerifyError::RotationNotSigned { .. }
            | VerifyError::RootCertificates { .. }
            | VerifyError::RootChainTooLong { .. }
            | VerifyError::NoTrustRoots { .. } => ReasonClass::UntrustedRoot,
            _ => ReasonClass::TrustDataInvalid,
        }
    }

    /// The class of a failure to resolve a tag.
    pub fn of_registry(e: &RegistryError) -> ReasonClass {
        match e {
            RegistryError::Timeout { .. } => ReasonClass::Timeout,
            _ => ReasonClass::RegistryError,
        }
    }
}

/// Verification passed.
#[derive(Debug, Clone)]
pub struct Passed {
    pub digest: Digest,
    pub signers: Vec<String>,
    /// Per-format results, for policies that list their formats.
    pub formats: Option<FormatResults>,
}

/// Verification failed: why (and its class), and the digest if it was resolved.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: ReasonClass,
    pub digest: Option<Digest>,
    pub why: String,
    pub signers: Vec<String>,
    /// Per-format results, for policies that list their formats.
    pub formats: Option<FormatResults>,
}

impl Failure {
    pub fn new(class: ReasonClass, why: String) -> Failure {
        Failure {
            class,
            digest: None,
            why,
            signers: Vec::new(),
            formats: None,
        }
    }

    pub fn with_digest(class: ReasonClass, digest: &Digest, why: String) -> Failure {
        Failure {
            digest: Some(digest.clone()),
            ..Failure::new(class, why)
        }
    }
}

/// The decision for an image whose reference does not parse (`error` says why).
pub fn bad_reference(image: &str, action: Action, error: &dyn std::fmt::Display) -> Decision {
    Decision {
        image: image.to_string(),
        reference: None,
        digest: None,
        policy: None,
        action,
        mode: Mode::Enforce,
        allowed: false,
        verified: false,
        reason_class: ReasonClass::BadReference,
        reason: error.to_string(),
        signers: Vec::new(),
        formats: None,
    }
}

/// The decision for an image no policy matches.
pub fn default_decision(image: &str, reference: &str, action: Action) -> Decision {
    let allowed = action == Action::Allow;
    Decision {
        image: image.to_string(),
        reference: Some(reference.to_string()),
        digest: None,
        policy: None,
        action,
        mode: Mode::Enforce,
        allowed,
        verified: allowed,
        reason_class: ReasonClass::DefaultAction,
        reason: if allowed {
            format!("{reference} admitted: no policy matches and the default action is Allow")
        } else {
            format!("{reference} rejected: no policy matches it and the default action is Deny")
        },
        signers: Vec::new(),
        formats: None,
    }
}

/// Completes a Verify decision from the outcome, applying the policy's mode.
pub fn finish(mut d: Decision, outcome: Result<Passed, Failure>) -> Decision {
    let reference = d.reference.clone().unwrap_or_else(|| d.image.clone());
    let policy = d.policy.clone().unwrap_or_default();
    match outcome {
        Ok(p) => {
            d.digest = Some(p.digest.to_string());
            d.allowed = true;
            d.verified = true;
            d.reason_class = ReasonClass::Verified;
            d.reason = format!(
                "{reference} verified by policy {policy}: {} signed by {}",
                p.digest,
                p.signers.join(", ")
            );
            d.signers = p.signers;
            d.formats = p.formats;
        }
        Err(f) => {
            if let Some(digest) = f.digest {
                d.digest = Some(digest.to_string());
            }
            d.signers = f.signers;
            d.formats = f.formats;
            d.verified = false;
            d.reason_class = f.class;
            d.allowed = d.mode != Mode::Enforce;
            d.reason = match d.mode {
                Mode::Enforce => format!("{reference} rejected by policy {policy}: {}", f.why),
                Mode::Warn => format!(
                    "{reference} failed verification by policy {policy} (mode Warn, admitted): {}",
                    f.why
                ),
                Mode::Audit => format!(
                    "{reference} failed verification by policy {policy} (mode Audit, admitted): {}",
                    f.why
                ),
            };
        }
    }
    printable_decision(&mut d);
    d
}

/// Control characters in what a decision says (registry errors, certificate subjects, cosign
/// payloads: text an attacker may write) escaped as `\u{..}`, so no reason, signer or format
/// result can move a terminal's cursor or forge a line in `check` output, logs or Events.
fn printable_decision(d: &mut Decision) {
    use crate::text::make_printable;
    make_printable(&mut d.reason);
    d.signers.iter_mut().for_each(make_printable);
    for evaluation in d.formats.iter_mut().flat_map(|f| f.values_mut()) {
        make_printable(&mut evaluation.reason);
        evaluation.signers.iter_mut().for_each(make_printable);
    }
}

fn short(hex: &str) -> String {
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Checks the signatures of `data` for `image` resolved to `digest`, as the decision rules say.
pub fn check_signatures(
    image: &ImageRef,
    digest: &Digest,
    data: &TrustData,
    policy: &CompiledPolicy,
) -> Result<Passed, Failure> {
    let fail = |class: ReasonClass, why: String, signers: Vec<String>| Failure {
        class,
        digest: Some(digest.clone()),
        why,
        signers,
        formats: None,
    };
    if digest.algorithm() != DigestAlgorithm::Sha256 {
        return Err(fail(
            ReasonClass::Unsigned,
            format!("{digest}: Notary signs sha256 digests only"),
            Vec::new(),
        ));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digest.hex(), &mut bytes).map_err(|_| {
        fail(
            ReasonClass::BadReference,
            format!("{digest} is not valid hex"),
            Vec::new(),
        )
    })?;
    // A reference with a tag is checked for that tag; a digest-only one for any tag.
    let tag = if image.digest().is_some() {
        image.tag()
    } else {
        image.tag_or_latest()
    };

    if policy.signers.is_empty() {
        let source = if image.digest().is_some() {
            "the reference pins"
        } else {
            "the registry serves"
        };
        return docker_default(tag, digest, &bytes, data, source)
            .map_err(|(class, why)| fail(class, why, Vec::new()));
    }

    let mut counted = Vec::new();
    let mut problems = Vec::new();
    for s in &policy.signers {
        let role = format!("targets/{}", s.name);
        let why = match data.signer_lookup(&s.name, tag, &bytes) {
            SignerResult::Signed => match &s.key {
                Some(pin) if !data.signer_key_matches(&s.name, pin) => {
                    Some("signed, but not with the pinned key".to_string())
                }
                _ => None,
            },
            SignerResult::NotSigned { reason } => Some(reason),
            SignerResult::RoleInvalid { reason } => Some(format!("role invalid: {reason}")),
            SignerResult::NoSuchRole => Some("no such delegation in the repository".into()),
        };
        match why {
            None => counted.push(role),
            Some(why) => problems.push((s, format!("{}: {why}", s.name))),
        }
    }
    let missing_required: Vec<&String> = problems
        .iter()
        .filter(|(s, _)| s.required)
        .map(|(_, why)| why)
        .collect();
    if !missing_required.is_empty() {
        let list: Vec<&str> = missing_required.iter().map(|s| s.as_str()).collect();
        return Err(fail(
            ReasonClass::RequiredSigner,
            format!("required signer did not sign {digest}: {}", list.join("; ")),
            counted,
        ));
    }
    if counted.len() < policy.signer_threshold {
        let list: Vec<&str> = problems.iter().map(|(_, w)| w.as_str()).collect();
        return Err(fail(
            ReasonClass::SignerThreshold,
            format!(
                "{digest} signed by {} of the {} required signers ({}); {}",
                counted.len(),
                policy.signer_threshold,
                if counted.is_empty() {
                    "none".to_string()
                } else {
                    counted.join(", ")
                },
                list.join("; ")
            ),
            counted,
        ));
    }
    Ok(Passed {
        digest: digest.clone(),
        signers: counted,
        formats: None,
    })
}

/// `docker trust`'s rule: the tag's digest from `targets/releases`, else `targets`, must equal
/// the resolved digest. For a digest-only reference, some tag in those roles must carry it.
/// `source` says where the digest came from ("the registry serves", "the reference pins").
fn docker_default(
    tag: Option<&str>,
    digest: &Digest,
    bytes: &[u8; 32],
    data: &TrustData,
    source: &str,
) -> Result<Passed, (ReasonClass, String)> {
    match tag {
        Some(tag) => match data.docker_lookup(tag) {
            None => Err((
                ReasonClass::Unsigned,
                format!("tag {tag} is not signed (no valid signature in {RELEASES} or {TARGETS})"),
            )),
            Some(t) if &t.digest != bytes => Err((
                ReasonClass::DigestMismatch,
                format!(
                    "tag {tag} is signed for {} ({}) but {source} {}",
                    short(&hex::encode(t.digest)),
                    t.role,
                    short(digest.hex())
                ),
            )),
            Some(t) => Ok(Passed {
                digest: digest.clone(),
                signers: vec![t.role],
                formats: None,
            }),
        },
        None => {
            let hex = digest.hex();
            let tags = data.tags();
            [RELEASES, TARGETS]
                .iter()
                .find_map(|role| {
                    tags.iter()
                        .find(|t| t.role == *role && t.digest_hex == hex)
                        .map(|t| Passed {
                            digest: digest.clone(),
                            signers: vec![t.role.clone()],
                            formats: None,
                        })
                })
                .ok_or_else(|| {
                    (
                        ReasonClass::Unsigned,
                        format!("{digest} is not signed for any tag in {RELEASES} or {TARGETS}"),
                    )
                })
        }
    }
}
