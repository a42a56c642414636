//! The seam between fetching and verifying: which metadata file the verifier asks for and the
//! `MetadataSource` trait that delivers raw bytes (its errors, [`FetchError`], are in `error`).
//! The HTTP implementation lives in `fetch`; tests use in-memory sources. A [`FetchObserver`]
//! is told about every fetch the HTTP source makes (the application's metrics implement it).

use std::future::Future;
use std::time::Duration;

pub use super::error::FetchError;

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

    /// Opens up to `connections` connections ahead of need, so later fetches do not wait for
    /// TCP and TLS handshakes. Best effort: failures are ignored (the fetches report their
    /// own). Sources without connections do nothing.
    fn warm(&self, connections: usize) -> impl Future<Output = ()> + Send {
        let _ = connections;
        std::future::ready(())
    }
}

/// Told about every finished fetch of the HTTP source (`fetch::HttpSource::with_metrics`).
pub trait FetchObserver: Send + Sync {
    /// One finished fetch: `role` is a bounded label (`fetch::role_label`), `outcome` is `ok`
    /// or a stable error label (`fetch::error_label`), and how long it took.
    fn fetch_finished(&self, role: &str, outcome: &str, elapsed: Duration);
}
