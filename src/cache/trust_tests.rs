//! Tests of `TrustCache` over the notary `Updater`: single flight, TTL bounded by the data's
//! expiry, failures kept briefly, trust options in the key. The counting source, clock and
//! repository helpers come from the notary unit tests (`notary::tests::caching`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheConfig, TrustCache};
use crate::clock::FixedClock;
use crate::metrics::Metrics;
use time::macros::datetime;

use crate::notary::source::FetchError;
use crate::notary::tests::caching::*;
use crate::notary::tests::{NOW, pin_ids, updater_at};
use crate::notary::verify::VerifyError;

fn short_ttls() -> CacheConfig {
    CacheConfig {
        trust_ttl: Duration::from_millis(200),
        negative_ttl: Duration::from_millis(200),
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn kept_files_are_still_checked_for_expiry() {
    let mut repo = shop();
    repo.role("targets").expires = "2026-01-01T00:00:00Z".into();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let clock = MovableClock::at(NOW);
    let cache = TrustCache::new(clock.clone(), &CacheConfig::default());
    let metrics = Metrics::new();
    let opts = pins(&repo);
    let key = TrustCache::key(&[1; 32], GUN, &opts);

    let entry = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("valid");
    assert_eq!(entry.valid_until, datetime!(2026-01-01 00:00 UTC));

    // Past the targets' expiry: the cached entry is not used, the refresh re-uses the kept
    // targets file, and its expiry is checked again.
    clock.set(datetime!(2026-02-01 00:00 UTC));
    let err = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect_err("expired");
    assert!(
        matches!(&err, VerifyError::Expired { role, .. } if role == "targets"),
        "{err}"
    );
    let counts = src.counts();
    assert_eq!(counts.get("timestamp.json"), Some(&3), "{counts:?}");
    let targets: Vec<_> = counts
        .iter()
        .filter(|(f, _)| f.starts_with("targets."))
        .collect();
    assert_eq!(targets.len(), 1, "by hash only: {counts:?}");
    assert_eq!(*targets[0].1, 1, "kept, not fetched again: {counts:?}");

    // The plain updater agrees.
    let u = updater_at(datetime!(2026-02-01 00:00 UTC));
    assert!(matches!(
        u.load(&src, GUN, &opts).await,
        Err(VerifyError::Expired { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_loads_fetch_each_file_once() {
    let repo = shop();
    let src = Arc::new(Counting::new(repo.publish(), Duration::from_millis(20)));
    let cache = Arc::new(TrustCache::new(
        Arc::new(FixedClock(NOW)),
        &CacheConfig::default(),
    ));
    let metrics = Arc::new(Metrics::new());
    let opts = Arc::new(pins(&repo));
    let key = TrustCache::key(&[1; 32], GUN, &opts);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (src, cache, metrics, opts) =
                (src.clone(), cache.clone(), metrics.clone(), opts.clone());
            tokio::spawn(async move {
                let entry = cache.load(&*src, key, GUN, &opts, &metrics).await?;
                Ok::<_, VerifyError>(entry.serial)
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("load"), 1);
    }
    let counts = src.counts();
    assert_eq!(counts.len(), 6, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let text = metrics.encode();
    assert!(
        text.contains(r#"cache="trust",outcome="miss"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cache="trust",outcome="hit"} 999"#),
        "{text}"
    );
}

#[tokio::test]
async fn after_the_ttl_only_the_timestamp_is_fetched_then_changes_by_hash() {
    let mut repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let cache = TrustCache::new(Arc::new(FixedClock(NOW)), &short_ttls());
    let metrics = Metrics::new();
    let opts = pins(&repo);
    let key = TrustCache::key(&[1; 32], GUN, &opts);

    let one = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("load");
    let before = src.counts();
    let again = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("hit");
    assert_eq!(again.serial, one.serial);
    assert!(
        src.since(&before).is_empty(),
        "within the TTL nothing is fetched"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let refreshed = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("refresh");
    assert_ne!(refreshed.serial, one.serial);
    assert_eq!(names(&src.since(&before)), ["timestamp"]);

    let old = src.repo.read().expect("lock").clone();
    publish_new_release(&mut repo, &old);
    src.publish(repo.publish());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = src.counts();
    let new = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("new data");
    assert_eq!(
        names(&src.since(&before)),
        ["snapshot", "targets/releases", "timestamp"]
    );
    assert!(new.data.docker_lookup("v3").is_some());
}

#[tokio::test]
async fn failures_are_kept_for_the_negative_ttl_only() {
    let repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let config = CacheConfig {
        negative_ttl: Duration::from_millis(200),
        ..CacheConfig::default()
    };
    let cache = TrustCache::new(Arc::new(FixedClock(NOW)), &config);
    let metrics = Metrics::new();
    let opts = pins(&repo);
    let key = TrustCache::key(&[1; 32], GUN, &opts);

    src.fail(true);
    let err = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect_err("down");
    assert!(matches!(
        err,
        VerifyError::Fetch(FetchError::Server { status: 503, .. })
    ));
    let attempts = src.counts().values().sum::<usize>();
    src.fail(false);
    // Still the cached failure: no request.
    assert!(cache.load(&src, key, GUN, &opts, &metrics).await.is_err());
    assert_eq!(src.counts().values().sum::<usize>(), attempts);

    tokio::time::sleep(Duration::from_millis(300)).await;
    cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("up again");
    let loaded = src.counts();
    // A success is kept for the (long) positive TTL.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("cached");
    assert_eq!(src.counts(), loaded);
}

#[tokio::test]
async fn the_ttl_is_cut_short_by_the_earliest_expiry() {
    let mut repo = shop();
    // The timestamp expires one second after NOW.
    repo.role("timestamp").expires = "2025-06-01T00:00:01Z".into();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let cache = TrustCache::new(Arc::new(FixedClock(NOW)), &CacheConfig::default());
    let metrics = Metrics::new();
    let opts = pins(&repo);
    let key = TrustCache::key(&[1; 32], GUN, &opts);
    let entry = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("load");
    assert_eq!(entry.valid_until, datetime!(2025-06-01 00:00:01 UTC));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Gone after 1 s although trust_ttl is 30 s (the fixed clock keeps the data valid).
    let again = cache
        .load(&src, key, GUN, &opts, &metrics)
        .await
        .expect("reload");
    assert_ne!(again.serial, entry.serial);
    assert_eq!(src.counts().get("timestamp.json"), Some(&2));
}

#[tokio::test]
async fn trust_options_are_part_of_the_key() {
    let repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let cache = TrustCache::new(Arc::new(FixedClock(NOW)), &CacheConfig::default());
    let metrics = Metrics::new();
    let good = pins(&repo);
    let wrong = pin_ids(&["00".repeat(32).as_str()]);
    assert_ne!(good.fingerprint(), wrong.fingerprint());
    let (k_good, k_wrong) = (
        TrustCache::key(&[1; 32], GUN, &good),
        TrustCache::key(&[1; 32], GUN, &wrong),
    );
    cache
        .load(&src, k_good, GUN, &good, &metrics)
        .await
        .expect("good pins");
    let err = cache
        .load(&src, k_wrong, GUN, &wrong, &metrics)
        .await
        .expect_err("wrong pins");
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
    cache
        .load(&src, k_good, GUN, &good, &metrics)
        .await
        .expect("still good");
}
