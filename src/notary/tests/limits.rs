//! One test past each trust-data limit of `crate::limits::LIMITS` (signatures, keys and
//! delegations per file, delegations per repository, the root walk, the version memory, the
//! delegation fetch fan-out); the size caps per file kind are the endless-data tests of
//! `attacks`.

use super::attacks::{GUN, opts, prepend_bogus_signatures, try_load};
use super::builder::{CertSpec, MemSource, Repo, TestKey};
use super::*;
use crate::limits::LIMITS;
use crate::notary::source::FetchError;
use crate::notary::updater::VersionMemory;

fn shop() -> Repo {
    super::attacks::shop()
}

#[test]
fn signatures_per_file_one_past_the_limit_is_refused() {
    let mut repo = shop();
    let key = repo.roles["targets"].keys[0].id.clone();
    let at_limit = LIMITS.signatures_per_file - 1;
    repo.bytes_hooks.insert(
        "targets".into(),
        Box::new(move |raw| prepend_bogus_signatures(raw, &key, at_limit)),
    );
    // At the limit: the bogus signatures of the key are ignored after the first one, so the
    // file is checked once per key ID... and the first (bogus) one fails.
    let err = try_load(&repo).expect_err("first signature of the key is bogus");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { valid: 0, .. }),
        "{err}"
    );
    let key = repo.roles["targets"].keys[0].id.clone();
    repo.bytes_hooks.insert(
        "targets".into(),
        Box::new(move |raw| prepend_bogus_signatures(raw, &key, at_limit + 1)),
    );
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::TooManySignatures { count, limit, .. } if *count == LIMITS.signatures_per_file + 1 && *limit == LIMITS.signatures_per_file),
        "{err}"
    );
}

#[test]
fn keys_per_file_one_past_the_limit_is_refused() {
    let mut repo = shop();
    let n = LIMITS.keys_per_file;
    repo.body_hooks.insert(
        "targets".into(),
        Box::new(move |body| {
            let keys = body["delegations"]["keys"].as_object_mut().expect("keys");
            let filler = keys.values().next().cloned().expect("one key");
            let mut i = 0;
            while keys.len() < n + 1 {
                keys.insert(format!("{i:064x}"), filler.clone());
                i += 1;
            }
        }),
    );
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::Malformed { detail, .. } if detail.contains(&format!("{} keys", n + 1))),
        "{err}"
    );
}

#[test]
fn delegations_per_role_one_past_the_limit_is_refused() {
    let mut repo = Repo::new(GUN);
    let key = TestKey::ecdsa();
    for i in 0..=LIMITS.delegations_per_role {
        let r = repo.delegate(&format!("targets/d{i}"), &[""]);
        r.keys = vec![key.clone()];
        r.signers = vec![key.clone()];
        r.listed = false;
    }
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::Malformed { detail, .. } if detail.contains("delegations")),
        "{err}"
    );
    repo.roles.remove("targets/d0");
    try_load(&repo).expect("at the limit");
}

#[test]
fn delegations_per_repository_one_past_the_limit_is_refused() {
    let mut repo = Repo::new(GUN);
    let key = TestKey::ecdsa();
    let total = LIMITS.delegations_per_repository + 1;
    let parents = total.div_ceil(LIMITS.delegations_per_role) + 1;
    let mut made = 0;
    for p in 0..parents {
        let r = repo.delegate(&format!("targets/p{p}"), &[""]);
        r.keys = vec![key.clone()];
        r.signers = vec![key.clone()];
        made += 1;
    }
    'outer: for p in 0..parents {
        for c in 0..LIMITS.delegations_per_role {
            if made == total {
                break 'outer;
            }
            let r = repo.delegate(&format!("targets/p{p}/c{c}"), &[""]);
            r.keys = vec![key.clone()];
            r.signers = vec![key.clone()];
            r.listed = false;
            made += 1;
        }
    }
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::TooManyDelegations { limit, .. } if *limit == LIMITS.delegations_per_repository),
        "{err}"
    );
    // Exactly at the limit loads.
    let last = repo
        .roles
        .keys()
        .rfind(|n| n.matches('/').count() == 2)
        .cloned()
        .expect("a child");
    repo.roles.remove(&last);
    try_load(&repo).expect("at the limit");
}

#[test]
fn root_walk_one_past_the_limit_is_refused() {
    let mut repo = shop();
    let first = repo.roles["root"].keys[0].clone();
    let o = pin_ids(&[&first.id]);
    // Every version is signed by the previous key and its own: a chain of root_walk + 1
    // rotations back to the pinned root.
    let mut prev = first;
    for _ in 0..=LIMITS.root_walk {
        let next = TestKey::x509(&CertSpec::new(GUN));
        repo.rotate_root(vec![next.clone()], vec![prev, next.clone()]);
        prev = next;
    }
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &o).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::RootChainTooLong { limit, .. } if *limit == LIMITS.root_walk),
        "{err}"
    );
    // One rotation fewer (the pinned root is exactly root_walk versions back) is followed.
    let mut repo = shop();
    let first = repo.roles["root"].keys[0].clone();
    let o = pin_ids(&[&first.id]);
    let mut prev = first;
    for _ in 0..LIMITS.root_walk {
        let next = TestKey::x509(&CertSpec::new(GUN));
        repo.rotate_root(vec![next.clone()], vec![prev, next.clone()]);
        prev = next;
    }
    load(&updater_at(NOW), &repo.publish(), GUN, &o).expect("at the limit");
}

#[test]
fn version_memory_is_a_bounded_lru() {
    let memory = VersionMemory::with_capacity(3, 1);
    for i in 0..4 {
        memory.record("s", &format!("gun{i}"), "timestamp", 5);
        memory.entries();
        // Touch gun0 so it is recently used.
        assert_eq!(memory.seen("s", "gun0", "timestamp"), Some(5));
        memory.entries();
    }
    let (versions, _) = memory.entries();
    assert_eq!(versions, 3, "one past the capacity evicts one entry");
    assert_eq!(
        memory.seen("s", "gun0", "timestamp"),
        Some(5),
        "recently used is kept"
    );
    memory.record("s", "gun0", "timestamp", 3);
    assert_eq!(
        memory.seen("s", "gun0", "timestamp"),
        Some(5),
        "keeps the maximum"
    );
    let default = VersionMemory::default();
    for i in 0..(LIMITS.version_memory_entries + 1) {
        default.record("s", "g", &format!("targets/r{i}"), 1);
    }
    assert_eq!(default.entries().0, LIMITS.version_memory_entries);
}

#[test]
fn delegation_fetches_are_bounded_in_fan_out() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting {
        inner: MemSource,
        now: AtomicUsize,
        max: AtomicUsize,
    }
    impl MetadataSource for Counting {
        async fn fetch(
            &self,
            gun: &str,
            req: &crate::notary::source::MetaRequest,
            max_len: u64,
        ) -> Result<Vec<u8>, FetchError> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.inner.fetch(gun, req, max_len).await
        }
        fn server(&self) -> &str {
            self.inner.server()
        }
    }
    let mut repo = Repo::new(GUN);
    let key = TestKey::ecdsa();
    for i in 0..(LIMITS.delegation_fetch_concurrency * 3) {
        let r = repo.delegate(&format!("targets/d{i}"), &[""]);
        r.keys = vec![key.clone()];
        r.signers = vec![key.clone()];
    }
    let src = Counting {
        inner: repo.publish(),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(updater_at(NOW).load(&src, GUN, &opts(&repo)))
        .expect("loads");
    let max = src.max.load(Ordering::SeqCst);
    assert!(
        max <= LIMITS.delegation_fetch_concurrency && max > 1,
        "{max} fetches at once"
    );
}

#[test]
fn json_depth_one_past_the_limit_is_refused() {
    fn nested(d: usize) -> serde_json::Value {
        (0..d).fold(serde_json::json!(1), |v, _| serde_json::json!([v]))
    }
    // Envelope (1) + `signed` (1) + the nested arrays.
    for (extra, ok) in [
        (LIMITS.json_depth - 2, true),
        (LIMITS.json_depth - 1, false),
    ] {
        let mut repo = shop();
        repo.body_hooks
            .insert("targets".into(), Box::new(move |b| b["x"] = nested(extra)));
        match try_load(&repo) {
            Ok(_) => assert!(ok, "{extra} levels accepted"),
            Err(e) => {
                assert!(!ok, "{extra}: {e}");
                assert!(
                    matches!(&e, VerifyError::Malformed { detail, .. } if detail.contains("more than the limit")),
                    "{e}"
                );
            }
        }
    }
}
