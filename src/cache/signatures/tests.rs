//! The signature cache's byte budget: entries are weighed by what they hold and evicted when
//! together they pass `signature_max_bytes`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const KIB: usize = 1024;

fn artifacts(bytes: usize) -> Vec<Attached> {
    vec![Attached {
        manifest_digest: format!("sha256:{}", "ab".repeat(32)),
        artifact_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        media_type: "application/vnd.dev.sigstore.bundle.v0.3+json".into(),
        annotations: BTreeMap::new(),
        blob: vec![b'x'; bytes],
    }]
}

fn key(i: usize) -> Key {
    SignatureCache::key(
        "registry.test/shop/app",
        &format!("sha256:{i:064x}"),
        "Cosign",
        &RegistryOptions::default(),
        &Credentials::Anonymous,
    )
}

/// Fetches `count` digests of `bytes` each, then all of them again: how many were fetched
/// the second time (not kept).
async fn refetched(cache: &SignatureCache, count: usize, bytes: usize) -> usize {
    let metrics = Metrics::new();
    let fetches = AtomicUsize::new(0);
    for round in 0..2 {
        for i in 0..count {
            let fetch = async {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok(artifacts(bytes))
            };
            let got = cache.fetch(key(i), fetch, &metrics).await.unwrap();
            assert_eq!(got[0].blob.len(), bytes);
        }
        if round == 0 {
            let (_, weight) = cache.usage().await;
            assert!(
                weight <= cache_budget(cache),
                "{weight} bytes kept, over the budget"
            );
        }
    }
    fetches.load(Ordering::SeqCst) - count
}

fn cache_budget(cache: &SignatureCache) -> u64 {
    cache.entries.policy().max_capacity().unwrap()
}

#[tokio::test]
async fn entries_are_evicted_past_the_byte_budget() {
    let config = CacheConfig {
        signature_max_bytes: 1024 * 1024,
        ..CacheConfig::default()
    };
    let cache = SignatureCache::new(&config);
    // Eight envelopes of 256 KiB: at most three fit in 1 MiB with their overhead.
    let again = refetched(&cache, 8, 256 * KIB).await;
    assert!(again >= 5, "only {again} of 8 were evicted");
    let (entries, weight) = cache.usage().await;
    assert!(entries <= 3, "{entries} entries kept");
    assert!(weight <= 1024 * 1024, "{weight}");
}

#[tokio::test]
async fn small_entries_are_all_kept_within_the_budget() {
    let cache = SignatureCache::new(&CacheConfig::default());
    assert_eq!(refetched(&cache, 8, 4 * KIB).await, 0);
    let (entries, weight) = cache.usage().await;
    assert_eq!(entries, 8);
    // Each weighs at least its envelope; none less than budget / max entries.
    let floor = 64 * 1024 * 1024 / 10_000;
    assert!(weight >= 8 * floor.max(4 * 1024), "{weight}");
}

#[tokio::test]
async fn the_entry_bound_still_holds_for_empty_answers() {
    let config = CacheConfig {
        digest_max_entries: 4,
        ..CacheConfig::default()
    };
    let cache = SignatureCache::new(&config);
    let metrics = Metrics::new();
    for i in 0..20 {
        let fetch = async { Ok(Vec::new()) };
        cache.fetch(key(i), fetch, &metrics).await.unwrap();
    }
    let (entries, _) = cache.usage().await;
    assert!(entries <= 4, "{entries} entries kept");
}
