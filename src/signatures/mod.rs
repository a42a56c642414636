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

/// Public keys that never count, in any format (`revokedKeys` given as PEM keys or
/// certificates), as DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// DER-encoded SubjectPublicKeyInfo of each revoked key.
    pub spki: Vec<Vec<u8>>,
}

impl Revoked {
    /// Whether the key with this DER SubjectPublicKeyInfo is revoked.
    pub fn contains(&self, spki_der: &[u8]) -> bool {
        self.spki.iter().any(|k| k.as_slice() == spki_der)
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
