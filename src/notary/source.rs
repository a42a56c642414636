//! The seam between fetching and verifying: which metadata file the verifier asks for, the
//! `MetadataSource` trait that delivers raw bytes, and the errors a source can report.
//! The HTTP implementation lives in `fetch`; tests use in-memory sources.

use std::future::Future;
use std::time::Duration;

/// One metadata file of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetaRequest {
    /// `<role>.json`: the current version.
    Current {
        /// `root`, `timestamp`, `snapshot`, `targets` or a delegation such as `targets/releases`.
        role: String,
    },
    /// `<role>.<sha256 hex>.json`: the version with this checksum (consistent-snapshot style).
    ByHash {
        /// Role name.
        role: String,
        /// Lowercase sha256 hex of the file.
        sha256_hex: String,
    },
    /// `<N>.<role>.json`: a specific version (used for root rotation).
    Version {
        /// Role name (in practice `root`).
        role: String,
        /// Version number.
        version: u64,
    },
}

impl MetaRequest {
    /// The role this request is for.
    pub fn role(&self) -> &str {
        match self {
            MetaRequest::Current { role }
            | MetaRequest::ByHash { role, .. }
            | MetaRequest::Version { role, .. } => role,
        }
    }

    /// The file name under `/v2/<gun>/_trust/tuf/`, e.g. `snapshot.<hex>.json` or `3.root.json`.
    pub fn file_name(&self) -> String {
        match self {
            MetaRequest::Current { role } => format!("{role}.json"),
            MetaRequest::ByHash { role, sha256_hex } => format!("{role}.{sha256_hex}.json"),
            MetaRequest::Version { role, version } => format!("{version}.{role}.json"),
        }
    }
}

/// Something that delivers the raw bytes of Notary metadata files.
pub trait MetadataSource: Send + Sync {
    /// Fetches one file of repository `gun`, refusing bodies longer than `max_len` bytes.
    fn fetch(
        &self,
        gun: &str,
        req: &MetaRequest,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;

    /// A short name of the source for messages and cache keys (the server URL).
    fn server(&self) -> &str;
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
