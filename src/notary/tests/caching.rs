//! Caching of trust data: the `Updater`'s re-use of verified files and roots (timestamp-first
//! refresh, content-addressed files, expiry and versions re-checked), over a counting in-memory
//! source. The helpers here (a movable clock, the counting source, a published repository)
//! also serve the tests of `cache::TrustCache` on top (`src/cache/trust_tests.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use super::builder::{CertSpec, MemSource, Repo, TestKey};
use super::*;
use crate::clock::Clock;
use crate::notary::source::{FetchError, MetaRequest};
use crate::notary::updater::Reuse;

pub(crate) const GUN: &str = "example.com/shop/app";
pub(crate) const A: [u8; 32] = [0xaa; 32];
pub(crate) const B: [u8; 32] = [0xbb; 32];

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
    pub(crate) repo: RwLock<Arc<MemSource>>,
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

    pub(crate) fn publish(&self, src: MemSource) {
        *self.repo.write().expect("lock") = Arc::new(src);
    }

    pub(crate) fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// Requests so far, per file name.
    pub(crate) fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().expect("lock").clone()
    }

    /// Requests since `before`, per file name.
    pub(crate) fn since(&self, before: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
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

pub(crate) fn names(files: &BTreeMap<String, usize>) -> Vec<String> {
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
pub(crate) fn publish_new_release(repo: &mut Repo, old: &MemSource) {
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
