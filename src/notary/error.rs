//! The two error types of trust-data loading: [`FetchError`] (a metadata file could not be
//! fetched: what a `MetadataSource` reports) and [`VerifyError`] (trust data could not be
//! loaded or a role is not trusted: what the update chain reports, wrapping fetch errors).
//! Every message is one readable line naming the repository and role.

use std::time::Duration;

/// Why trust data could not be loaded or a role is not trusted. One variant per kind of failure;
/// each message is one readable line naming the repository and role. In every variant `gun` is
/// the repository and `role` the role of the file concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Not JSON, bad base64, missing or ill-typed fields, or a structural rule broken (`detail`).
    #[error("{role} metadata of {gun} is malformed: {detail}")]
    Malformed {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// What is wrong.
        detail: String,
    },
    /// `_type` is `got`, not the `expected` capitalised type of the role.
    #[error("{role} metadata of {gun} has type {got:?}, expected {expected:?}")]
    WrongType {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The `_type` the role must carry.
        expected: String,
        /// The `_type` found.
        got: String,
    },
    /// The file carries no signatures at all.
    #[error("{role} metadata of {gun} has no signatures")]
    NoSignatures {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
    },
    /// Fewer distinct public keys with a valid signature (`valid`) than the role's `threshold`.
    #[error("role {role} of {gun} is signed by {valid} of the {threshold} required keys")]
    BadSignatureThreshold {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// How many counted.
        valid: usize,
        /// The threshold of the role.
        threshold: u64,
    },
    /// A key listed (and signed) as `listed` has the computed ID `computed`.
    #[error("role {role} of {gun}: key listed as {listed} has ID {computed}")]
    KeyIdMismatch {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The key ID as listed.
        listed: String,
        /// The key ID computed from the key.
        computed: String,
    },
    /// The role's `expires` (as written) is in the past.
    #[error("{role} of {gun} (version {version}) expired at {expires}")]
    Expired {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The version concerned.
        version: u64,
        /// The expiry as written.
        expires: String,
    },
    /// The file does not match the `algorithm` hash that role `parent` lists.
    #[error("{role} of {gun} does not match the {algorithm} hash listed in {parent}")]
    HashMismatch {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The role whose listing the file was checked against.
        parent: String,
        /// The hash algorithm (`sha256` or `sha512`).
        algorithm: String,
    },
    /// The file is `got` bytes, longer than the `limit` that role `parent` lists.
    #[error("{role} of {gun} is {got} bytes, longer than the {limit} bytes listed in {parent}")]
    TooLong {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The role whose listing the file was checked against.
        parent: String,
        /// The length the parent lists.
        limit: u64,
        /// The actual length.
        got: u64,
    },
    /// Version `got` is lower than the version `seen` before (rollback attack or stale server).
    #[error("{role} of {gun} went back from version {seen} to {got}")]
    Rollback {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The highest version seen before.
        seen: u64,
        /// The version found.
        got: u64,
    },
    /// A versioned file (`N.root.json`) holds version `got`, not `expected`.
    #[error("{role} of {gun}: asked for version {expected}, got version {got}")]
    VersionMismatch {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The version asked for.
        expected: u64,
        /// The version found.
        got: u64,
    },
    /// The policy pins no trust roots.
    #[error("no trust roots are pinned for {gun}")]
    NoTrustRoots {
        /// The repository (GUN).
        gun: String,
    },
    /// No root-role key is a usable certificate; `detail` says why each was dropped.
    #[error("root version {version} of {gun} has no usable root certificate: {detail}")]
    RootCertificates {
        /// The repository (GUN).
        gun: String,
        /// The version concerned.
        version: u64,
        /// What is wrong.
        detail: String,
    },
    /// Only `valid` distinct pinned public keys (each satisfying a distinct pin) signed the root,
    /// fewer than `threshold`
    /// (`trustRootThreshold`); `pinned` and `root_keys` list the key IDs on both sides.
    #[error(
        "root of {gun} (version {version}) is signed by {valid} of the {threshold} required pinned trust roots (pinned key IDs: {pinned}; root keys: {root_keys})"
    )]
    UntrustedRoot {
        /// The repository (GUN).
        gun: String,
        /// The version concerned.
        version: u64,
        /// How many counted.
        valid: usize,
        /// The pinning threshold (`trustRootThreshold`).
        threshold: usize,
        /// The pinned key IDs.
        pinned: String,
        /// The root role's key IDs.
        root_keys: String,
    },
    /// Root `version` is signed by `valid` keys of trusted root `prev_version`, fewer than that
    /// root's `threshold`.
    #[error(
        "root version {version} of {gun} is signed by {valid} of the {threshold} keys required by trusted root version {prev_version}"
    )]
    RotationNotSigned {
        /// The repository (GUN).
        gun: String,
        /// The version concerned.
        version: u64,
        /// The version of the trusted root.
        prev_version: u64,
        /// How many counted.
        valid: usize,
        /// The trusted root's threshold.
        threshold: u64,
    },
    /// No pinned root within the last `limit` versions of the root's rotation history.
    #[error("no pinned root of {gun} within {limit} versions before version {version}")]
    RootChainTooLong {
        /// The repository (GUN).
        gun: String,
        /// The version concerned.
        version: u64,
        /// The most versions walked.
        limit: u64,
    },
    /// The root does not match the snapshot's `algorithm` hash: it changed during the update.
    #[error(
        "root of {gun} changed during the update (it does not match the snapshot's {algorithm})"
    )]
    RootChanged {
        /// The repository (GUN).
        gun: String,
        /// The hash algorithm (`sha256` or `sha512`).
        algorithm: String,
    },
    /// The file carries `count` signatures, more than `limit`; none was checked.
    #[error("{role} metadata of {gun} carries {count} signatures, more than the limit of {limit}")]
    TooManySignatures {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// How many the file carries.
        count: usize,
        /// The limit (`LIMITS.signatures_per_file`).
        limit: usize,
    },
    /// The repository declares more delegations than `limit` (all levels together).
    #[error("{gun} declares more than {limit} delegations (at {role})")]
    TooManyDelegations {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The limit (`LIMITS.delegations_per_repository`).
        limit: usize,
    },
    /// The server's root has the version of the root trusted before but other signed content.
    #[error("root version {version} of {gun} differs from the trusted root of the same version")]
    RootReplaced {
        /// The repository (GUN).
        gun: String,
        /// The version concerned.
        version: u64,
    },
    /// Verification could not run to completion (`detail`); nothing is trusted.
    #[error("verification of {role} of {gun} failed: {detail}")]
    Verifier {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// What is wrong.
        detail: String,
    },
    /// Delegation `role` is not declared by `parent`.
    #[error("{role} of {gun} is not delegated by {parent}")]
    UnknownDelegation {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
        /// The role whose listing the file was checked against.
        parent: String,
    },
    /// A role the snapshot does not list (never published).
    #[error("{role} of {gun} is not listed in the snapshot")]
    NotInSnapshot {
        /// The repository (GUN).
        gun: String,
        /// The role of the file concerned.
        role: String,
    },
}

/// Why a metadata file could not be fetched.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// 404: the repository has no trust data, or this file/version/checksum does not exist.
    #[error("no trust data for {gun} on {server} ({file} not found)")]
    NotFound {
        /// Server URL.
        server: String,
        /// Repository.
        gun: String,
        /// File name requested.
        file: String,
    },
    /// 401/403 after authenticating, or the token service refused the credentials.
    #[error("notary server {server} refused access to {gun}: {detail}")]
    Unauthorized {
        /// Server URL.
        server: String,
        /// Repository.
        gun: String,
        /// What the server or token service said.
        detail: String,
    },
    /// Any other non-success HTTP status.
    #[error("notary server {server} answered HTTP {status} for {file}")]
    Server {
        /// Server URL.
        server: String,
        /// File name requested.
        file: String,
        /// HTTP status code.
        status: u16,
    },
    /// The request (connect, headers or body) did not finish in time.
    #[error("timed out after {timeout:?} fetching {file} from {server}")]
    Timeout {
        /// Server URL.
        server: String,
        /// File name requested.
        file: String,
        /// The limit that was hit.
        timeout: Duration,
    },
    /// The body is longer than the size the parent role (or a fixed cap) allows.
    #[error("{file} from {server} exceeds the allowed {limit} bytes")]
    TooLarge {
        /// Server URL.
        server: String,
        /// File name requested.
        file: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// TLS handshake or certificate verification failed.
    #[error("TLS failure talking to notary server {server}: {detail}")]
    Tls {
        /// Server URL.
        server: String,
        /// Underlying error text.
        detail: String,
    },
    /// Connection refused, DNS failure and other transport errors.
    #[error("cannot reach notary server {server}: {detail}")]
    Connect {
        /// Server URL.
        server: String,
        /// Underlying error text.
        detail: String,
    },
    /// The server answered something that is not a Notary response (bad challenge, bad token JSON, ...).
    #[error("invalid response from notary server {server}: {detail}")]
    Protocol {
        /// Server URL.
        server: String,
        /// What was wrong.
        detail: String,
    },
}
