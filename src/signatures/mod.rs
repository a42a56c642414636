//! Signatures in the formats that replace Docker Content Trust, attached to an image digest as
//! OCI artifacts: Notation (the Notary Project's JWS/COSE envelopes, `notation`) and cosign
//! (Sigstore's simple-signing payloads and bundles). This module only verifies what was fetched
//! (fetching is `image::registry`'s); it knows no Kubernetes, policy or metrics types, so the
//! engine and `trustgate inspect` share it.
//!
//! The common vocabulary: the [`Subject`] a signature must name (the manifest the registry
//! resolved the image to), and one [`Attached`] signature artifact as read from the registry.

use std::collections::BTreeMap;

pub mod cosign;
pub mod keyid;
pub mod listing;
pub mod notation;

/// The manifest a signature must name: the one the image resolved to, as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `host/path` of the repository, normalised (`docker.io/library/nginx`).
    pub repository: String,
    /// The manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// The manifest's media type as the registry served it.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// One signature artifact as fetched from the registry: the envelope (or payload) blob and what
/// its manifest says about it. The blob's digest was checked against the manifest while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// Digest of the artifact's manifest (`sha256:<hex>`), for messages.
    pub manifest_digest: String,
    /// The manifest's own `artifactType`, else its `config.mediaType` (never the referrers
    /// list's entry: cosign writes that one as `application/vnd.oci.empty.v1+json`).
    pub artifact_type: String,
    /// Media type of the layer that holds the envelope.
    pub media_type: String,
    /// That layer's annotations (a legacy cosign signature is in one of them).
    pub annotations: BTreeMap<String, String>,
    /// The layer's bytes.
    pub blob: Vec<u8>,
}

/// Public keys that never count, in any format (`revokedKeys`): the identities of the keys
/// and certificates given as PEM ([`keyid::key_identity`], so any encoding of a revoked key is
/// revoked), and the key IDs given as 64 hex digits (Notary's for NotaryV1; for cosign, the hex
/// SHA-256 of a policy key's SubjectPublicKeyInfo, as `trustgate check` reports its signers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    identities: Vec<keyid::KeyIdentity>,
    key_ids: Vec<String>,
}

impl Revoked {
    /// Revokes the keys whose DER SubjectPublicKeyInfo are `spki` (unparsable ones are
    /// ignored: `revokedKeys` entries are checked when the policy is validated).
    pub fn from_spki(spki: impl IntoIterator<Item = Vec<u8>>) -> Revoked {
        Revoked {
            identities: spki
                .into_iter()
                .filter_map(|der| keyid::key_identity(&der))
                .collect(),
            key_ids: Vec::new(),
        }
    }

    /// Also revokes the keys with these key IDs (64 lower-case hex digits).
    pub fn with_key_ids(mut self, ids: impl IntoIterator<Item = String>) -> Revoked {
        self.key_ids.extend(ids);
        self
    }

    /// Whether the key with this DER SubjectPublicKeyInfo is revoked: the same key in any
    /// encoding, or (for a cosign policy key) its key ID.
    pub fn contains(&self, spki_der: &[u8]) -> bool {
        if let Some(id) = keyid::key_identity(spki_der)
            && self.identities.contains(&id)
        {
            return true;
        }
        !self.key_ids.is_empty() && {
            let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(spki_der));
            self.key_ids.contains(&hex)
        }
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.key_ids.is_empty()
    }
}

/// What one format concluded for one digest: passed or not, why in one line, and who signed
/// (Notation: certificate subjects; cosign: key IDs `sha256:<hex of SHA-256 of the SPKI DER>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Evaluation {
    /// Whether the format's rule is met (one valid Notation signature; `threshold` distinct
    /// cosign keys).
    pub passed: bool,
    /// Why, in one line (for a failure: what was missing or which check failed).
    pub reason: String,
    /// The signers that counted, sorted, without duplicates.
    pub signers: Vec<String>,
}
