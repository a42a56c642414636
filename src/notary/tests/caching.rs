//! Caching of trust data: the `Updater`'s re-use of verified files and roots (timestamp-first
//! refresh, content-addressed files, expiry and versions re-checked) and `cache::TrustCache`
//! on top (single flight, TTL bounded by the data's expiry, failures kept briefly), over a
//! counting in-memory source.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use time::macros::datetime;

use super::builder::{CertSpec, MemSource, Repo, TestKey};
use super::*;
use crate::audit::metrics::Metrics;
use crate::cache::{CacheConfig, TrustCache};
use crate::clock::Clock;
use crate::notary::source::{FetchError, MetaRequest};
use crate::notary::updater::Reuse;

const GUN: &str = "example.com/shop/app";
const A: [u8; 32] = [0xaa; 32];
const B: [u8; 32] = [0xbb; 32];

/// A clock tests can move.
#[derive(Debug)]
pub(crate) struct MovableClock(Mutex<OffsetDateTime>);

impl MovableClock {
    pub(crate) fn at(t: OffsetDateTime) -> Arc<MovableClock> {
        Arc::new(MovableClock(Mutex::new(t)))
    }
    pub(crate) fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for MovableClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves a published repository (replaceable), counts requests per file, can be slow or fail.
pub(crate) struct Counting {
    repo: RwLock<Arc<MemSource>>,
    counts: Mutex<BTreeMap<String, usize>>,
    delay: Duration,
    fail: AtomicBool,
}

impl Counting {
    pub(crate) fn new(src: MemSource, delay: Duration) -> Counting {
        Counting {
            repo: RwLock::new(Arc::new(src)),
            counts: Mutex::new(BTreeMap::new()),
            delay,
            fail: AtomicBool::new(false),
        }
    }

    fn publish(&self, src: MemSource) {
        *self.repo.write().expect("lock") = Arc::new(src);
    }

    fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// Requests so far, per file name.
    pub(crate) fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().expect("lock").clone()
    }

    /// Requests since `before`, per file name.
    fn since(&self, before: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
        self.counts()
            .into_iter()
            .filter_map(|(f, n)| {
                let d = n - before.get(&f).copied().unwrap_or(0);
                (d > 0).then_some((f, d))
            })
            .collect()
    }
}

impl MetadataSource for Counting {
    fn fetch(
        &self,
        gun: &str,
        req: &MetaRequest,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send {
        let file = req.file_name();
        *self
            .counts
            .lock()
            .expect("lock")
            .entry(file.clone())
            .or_default() += 1;
        let repo = self.repo.read().expect("lock").clone();
        let (fail, delay) = (self.fail.load(Ordering::SeqCst), self.delay);
        let (gun, req) = (gun.to_owned(), req.clone());
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if fail {
                return Err(FetchError::Server {
                    server: "https://notary.test".into(),
                    file,
                    status: 503,
                });
            }
            repo.fetch(&gun, &req, max_len).await
        }
    }

    fn server(&self) -> &str {
        "https://notary.test"
    }
}

fn names(files: &BTreeMap<String, usize>) -> Vec<String> {
    files
        .keys()
        .map(|f| f.split('.').next().unwrap_or(f).to_owned())
        .collect()
}

/// targets: v1 -> A; targets/releases: v1 -> B; targets/alice: v2 -> A.
pub(crate) fn shop() -> Repo {
    let mut r = Repo::new(GUN);
    r.add_target("targets", "v1", A);
    r.delegate("targets/releases", &[""]);
    r.add_target("targets/releases", "v1", B);
    r.delegate("targets/alice", &[""]);
    r.add_target("targets/alice", "v2", A);
    r
}

pub(crate) fn pins(repo: &Repo) -> TrustOptions {
    pin_ids(&[&repo.roles["root"].keys[0].id])
}

/// Republishes `repo` with new releases content, keeping the bytes of root, targets and alice
/// (signatures are randomised, so re-signing would change every hash).
fn publish_new_release(repo: &mut Repo, old: &MemSource) {
    for role in ["root", "targets", "targets/alice"] {
        let bytes = old.files[&format!("{role}.json")].clone();
        repo.bytes_hooks.insert(
            role.into(),
            Box::new(move |b: &mut Vec<u8>| *b = bytes.clone()),
        );
    }
    repo.add_target("targets/releases", "v3", A);
    for role in ["targets/releases", "snapshot", "timestamp"] {
        repo.role(role).version += 1;
    }
}

fn short_ttls() -> CacheConfig {
    CacheConfig {
        trust_ttl: Duration::from_millis(200),
        negative_ttl: Duration::from_millis(200),
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn refresh_fetches_the_timestamp_first_and_only_changed_files() {
    let mut repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let u = updater_at(NOW).with_reuse(Reuse::default());
    let opts = pins(&repo);

    u.load(&src, GUN, &opts).await.expect("first load");
    let all = src.counts();
    assert_eq!(
        names(&all),
        [
            "root",
            "snapshot",
            "targets",
            "targets/alice",
            "targets/releases",
            "timestamp"
        ]
    );
    assert!(all.values().all(|n| *n == 1), "{all:?}");

    // Nothing changed: the kept root and files are used, only the timestamp is fetched.
    let before = src.counts();
    let data = u.load(&src, GUN, &opts).await.expect("refresh");
    assert_eq!(names(&src.since(&before)), ["timestamp"]);
    assert_eq!(data.roles().len(), 3);

    // A new release: new timestamp, snapshot and releases file; root, targets, alice kept.
    let old = src.repo.read().expect("lock").clone();
    publish_new_release(&mut repo, &old);
    src.publish(repo.publish());
    let before = src.counts();
    let data = u.load(&src, GUN, &opts).await.expect("after publish");
    let fetched = src.since(&before);
    assert_eq!(
        names(&fetched),
        ["snapshot", "targets/releases", "timestamp"],
        "{fetched:?}"
    );
    assert!(
        fetched
            .keys()
            .all(|f| f == "timestamp.json" || f.len() > 70),
        "by hash: {fetched:?}"
    );
    assert!(data.docker_lookup("v3").is_some());
    assert_eq!(
        u.memory().seen("https://notary.test", GUN, "snapshot"),
        Some(2)
    );
}

#[tokio::test]
async fn without_reuse_every_load_fetches_everything() {
    let repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let u = updater_at(NOW);
    let opts = pins(&repo);
    u.load(&src, GUN, &opts).await.expect("load");
    u.load(&src, GUN, &opts).await.expect("load");
    assert!(src.counts().values().all(|n| *n == 2), "{:?}", src.counts());
}

#[tokio::test]
async fn a_rotated_root_is_noticed_through_the_snapshot() {
    let mut repo = shop();
    let src = Counting::new(repo.publish(), Duration::ZERO);
    let u = updater_at(NOW).with_reuse(Reuse::default());
    let opts = pins(&repo);
    assert_eq!(
        u.load(&src, GUN, &opts).await.expect("v1").root().version,
        1
    );

    let old = repo.roles["root"].keys[0].clone();
    let new = TestKey::x509(&CertSpec::new(GUN));
    repo.rotate_root(vec![new.clone()], vec![old, new]);
    src.publish(repo.publish());
    let before = src.counts();
    let data = u.load(&src, GUN, &opts).await.expect("rotated");
    assert_eq!(data.root().version, 2);
    // The kept root failed (root hash in the snapshot changed), so root.json was fetched again.
    assert_eq!(src.since(&before).get("root.json"), Some(&1));
    // And the new root is kept from now on.
    let before = src.counts();
    u.load(&src, GUN, &opts).await.expect("again");
    assert_eq!(names(&src.since(&before)), ["timestamp"]);
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
