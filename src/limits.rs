//! Every bound trustgate puts on what it reads, in one place: sizes per input kind, counts,
//! nesting depth and lengths. An input one past a limit is refused with a reason that names the
//! limit; nothing is buffered past a size cap. Each limit has a test that goes one past it.
//!
//! The numbers are generous for real data (a 10,000-tag Notary targets role is under 1 MiB, a
//! real root has a handful of keys and signatures) and small enough that a hostile server or a
//! forged review cannot exhaust memory, CPU or the metrics registry.

/// The limits in force (see [`LIMITS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    // ---- admission ----
    /// Largest AdmissionReview body accepted by `/validate` and `/mutate` (the API server's own
    /// request limit is 3 MiB).
    pub review_bytes: usize,
    /// Most image occurrences decided in one object (containers, initContainers,
    /// ephemeralContainers and image volumes together); more is a rejection, never a partial check.
    pub images_per_object: usize,
    /// Rejected images listed in one denial message (then `and N more`).
    pub denial_images_listed: usize,
    /// Characters of one image's reason in a denial message.
    pub denial_reason_chars: usize,
    /// Characters of one API warning (the API server truncates longer ones).
    pub warning_chars: usize,
    /// Warnings in one admission response (then one line saying how many more).
    pub warnings_per_response: usize,
    /// Characters of one audit annotation value.
    pub audit_annotation_chars: usize,
    /// Images with their own `image-<i>` audit annotation (then `images-omitted`).
    pub audit_annotated_images: usize,
    /// Largest value `/mutate` writes to the `trustgate.dev/pinned-images` annotation (the API
    /// server allows 256 KiB for all annotations together); further lines are summarised.
    pub pinned_annotation_bytes: usize,
    /// Deepest JSON nesting accepted in any JSON input (reviews, Notary metadata, registry
    /// answers, policy files).
    pub json_depth: usize,
    /// Most distinct values of a metric label that comes from input or configuration (policy
    /// names); further values are counted as `other`.
    pub metric_label_values: usize,
    /// Largest manifest file (or stdin) `trustgate check -f` reads.
    pub manifest_file_bytes: u64,

    // ---- image references and registries ----
    /// Longest image reference string accepted (name, tag and digest together).
    pub reference_bytes: usize,
    /// Largest manifest (or index) read from a registry (the distribution spec's 4 MiB).
    pub manifest_bytes: u64,
    /// Largest registry or Notary token-service answer read.
    pub token_bytes: u64,
    /// Most bytes of an error body kept for a message.
    pub error_body_bytes: u64,

    // ---- Notary trust data ----
    /// Largest `root.json` (also `N.root.json`) read.
    pub root_bytes: u64,
    /// Largest `timestamp.json` read (Notary's `MaxTimestampSize`).
    pub timestamp_bytes: u64,
    /// Largest snapshot, targets or delegation file read, whatever length its parent declares.
    pub metadata_bytes: u64,
    /// Most signatures in one metadata file; a file with more is refused before any is checked.
    pub signatures_per_file: usize,
    /// Most keys one metadata file (root or targets with delegations) may declare.
    pub keys_per_file: usize,
    /// Most delegation roles one targets role may declare.
    pub delegations_per_role: usize,
    /// Most delegation files fetched and verified for one repository.
    pub delegations_per_repository: usize,
    /// Most delegation files fetched at once for one repository.
    pub delegation_fetch_concurrency: usize,
    /// Most root versions walked in one rotation chain.
    pub root_walk: u64,
    /// Most (server, repository, role) version memories kept against rollback (LRU).
    pub version_memory_entries: u64,
    /// Most last-trusted roots remembered (one per server and repository, LRU): a newer root of
    /// a remembered repository is reached only by rotation from it.
    pub remembered_roots: u64,

    // ---- Notation and cosign signatures ----
    /// Largest referrers list (an OCI index from the referrers API or the `sha256-<hex>` tag)
    /// read for one digest.
    pub referrers_index_bytes: u64,
    /// Most entries of a referrers list (or layers of a legacy cosign `.sig` manifest) looked
    /// at; a longer list is refused, never silently cut.
    pub referrers_per_subject: usize,
    /// Most signature artifacts of one format fetched and verified for one digest.
    pub signatures_per_format: usize,
    /// Largest signature artifact manifest read.
    pub signature_manifest_bytes: u64,
    /// Largest signature envelope read (a Notation JWS/COSE envelope with its certificate chain,
    /// a cosign simple-signing payload or Sigstore bundle).
    pub signature_envelope_bytes: u64,
    /// Most certificates in one signature's chain (Notation `x5c`).
    pub certificate_chain_len: usize,
    /// Most DSSE signatures in one cosign bundle's envelope (cosign writes one); an envelope
    /// with more is refused before any is checked. With `signatures_per_format` and at most 32
    /// keys of 2 schemes each, cosign verification of one digest is at most
    /// 16 x 4 x 32 x 2 = 4,096 signature checks.
    pub dsse_signatures_per_envelope: usize,
    /// Most Notation or cosign format evaluations (fetching the artifacts and verifying them)
    /// running at once in one process; others wait for a turn within their image's deadline.
    /// Bounds the signature bytes held and the verification work under way whatever the
    /// number of images being decided.
    pub signature_evaluations_at_once: usize,
}

/// The limits trustgate runs with.
pub const LIMITS: Limits = Limits {
    review_bytes: 3 * 1024 * 1024,
    images_per_object: 512,
    denial_images_listed: 10,
    denial_reason_chars: 400,
    warning_chars: 256,
    warnings_per_response: 20,
    audit_annotation_chars: 512,
    audit_annotated_images: 32,
    pinned_annotation_bytes: 32 * 1024,
    json_depth: 64,
    metric_label_values: 512,
    manifest_file_bytes: 32 * 1024 * 1024,

    reference_bytes: 1024,
    manifest_bytes: 4 * 1024 * 1024,
    token_bytes: 64 * 1024,
    error_body_bytes: 1024,

    root_bytes: 1 << 20,
    timestamp_bytes: 1 << 20,
    metadata_bytes: 16 << 20,
    signatures_per_file: 64,
    keys_per_file: 1024,
    delegations_per_role: 256,
    delegations_per_repository: 512,
    delegation_fetch_concurrency: 8,
    root_walk: 32,
    version_memory_entries: 100_000,
    remembered_roots: 4_096,

    referrers_index_bytes: 1 << 20,
    referrers_per_subject: 256,
    signatures_per_format: 16,
    signature_manifest_bytes: 64 * 1024,
    signature_envelope_bytes: 256 * 1024,
    certificate_chain_len: 8,
    dsse_signatures_per_envelope: 4,
    signature_evaluations_at_once: 8,
};
