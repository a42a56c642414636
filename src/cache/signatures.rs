//! Signature artifacts (Notation and cosign) attached to a digest, as fetched from the registry:
//! one entry per registry set-up, credentials, repository, digest and format, kept for the
//! digest TTL (a failure for the negative TTL), bounded in bytes (`signature_max_bytes`, each
//! entry weighed by what it holds) and so in number, fetched by one caller while concurrent
//! callers wait for its answer. A digest's signatures can be added to (a new
//! signature) or removed (a revoked one), so entries are not kept longer than a tag's digest.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{CacheConfig, Key, KeyBuilder, Timed, TtlOfValue};
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
    /// An empty cache sized by `config`: at most `signature_max_bytes`, each entry weighed by
    /// the bytes it holds and at least `signature_max_bytes / digest_max_entries` (so at most
    /// `digest_max_entries` entries too).
    pub fn new(config: &CacheConfig) -> SignatureCache {
        let budget = config.signature_max_bytes;
        let floor = budget
            .checked_div(config.digest_max_entries)
            .unwrap_or(budget);
        let entries = moka::future::Cache::builder()
            .max_capacity(budget)
            .weigher(move |_: &Key, v: &Timed<Fetched>| {
                u32::try_from(weight(&v.value).max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(TtlOfValue)
            .build();
        SignatureCache {
            entries,
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

    /// Entries and their total weight in bytes, once pending evictions have run (tests).
    #[cfg(test)]
    pub(crate) async fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks().await;
        (self.entries.entry_count(), self.entries.weighted_size())
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

/// Fixed cost counted for every entry and artifact (key, TTL, allocations).
const OVERHEAD: u64 = 256;

/// The bytes an answer holds: every artifact's envelope, annotations and names, plus a fixed
/// overhead per entry and per artifact; an error counts its message.
fn weight(fetched: &Fetched) -> u64 {
    let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    match fetched {
        Err(e) => OVERHEAD.saturating_add(len(e.to_string().len())),
        Ok(sigs) => sigs.iter().fold(OVERHEAD, |sum, a| {
            let annotations = a
                .annotations
                .iter()
                .fold(0u64, |s, (k, v)| s.saturating_add(len(k.len() + v.len())));
            sum.saturating_add(OVERHEAD)
                .saturating_add(len(a.blob.len()))
                .saturating_add(len(a.manifest_digest.len()))
                .saturating_add(len(a.artifact_type.len()))
                .saturating_add(len(a.media_type.len()))
                .saturating_add(annotations)
        }),
    }
}

#[cfg(test)]
mod tests;
