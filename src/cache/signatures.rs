//! Signature artifacts (Notation and cosign) attached to a digest, as fetched from the registry:
//! one entry per registry set-up, credentials, repository, digest and format, kept for the
//! digest TTL (a failure for the negative TTL), bounded in number, fetched by one caller while
//! concurrent callers wait for its answer. A digest's signatures can be added to (a new
//! signature) or removed (a revoked one), so entries are not kept longer than a tag's digest.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{CacheConfig, Key, KeyBuilder, Timed, timed_cache};
use crate::image::credentials::Credentials;
use crate::image::registry::ArtifactError;
use crate::image::registry::RegistryOptions;
use crate::metrics::Metrics;
use crate::signatures::Attached;

/// What one fetch gave: the artifacts, or why they could not be had.
pub type Fetched = Result<Arc<Vec<Attached>>, ArtifactError>;

/// Signature artifacts per digest and format (see the module docs).
#[derive(Debug)]
pub struct SignatureCache {
    entries: moka::future::Cache<Key, Timed<Fetched>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl SignatureCache {
    /// An empty cache sized by `config` (as many entries as digests).
    pub fn new(config: &CacheConfig) -> SignatureCache {
        SignatureCache {
            entries: timed_cache(config.digest_max_entries),
            ttl: config.digest_ttl,
            negative_ttl: config.negative_ttl,
        }
    }

    /// The key of the `format` signatures of `digest` in `repository`, read with `options`
    /// and `credentials`.
    pub fn key(
        repository: &str,
        digest: &str,
        format: &str,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Key {
        KeyBuilder::new("signatures")
            .opt(options.ca_pem.as_deref())
            .part(&[u8::from(options.plain_http)])
            .duration(options.timeout)
            .credentials(credentials)
            .part(repository.as_bytes())
            .part(digest.as_bytes())
            .part(format.as_bytes())
            .finish()
    }

    /// The cached answer for `key`, or the answer of `fetch` (run by one caller at a time).
    pub async fn fetch(
        &self,
        key: Key,
        fetch: impl Future<Output = Result<Vec<Attached>, ArtifactError>>,
        metrics: &Metrics,
    ) -> Fetched {
        let entry = self
            .entries
            .entry(key)
            .or_insert_with(async {
                let value = fetch.await.map(Arc::new);
                let ttl = if value.is_ok() {
                    self.ttl
                } else {
                    self.negative_ttl
                };
                Timed { value, ttl }
            })
            .await;
        metrics.cache("signatures", !entry.is_fresh());
        entry.into_value().value
    }
}
