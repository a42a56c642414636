//! The cold path's fetching ahead (`updater::prefetch`): every file asked at once, each used
//! only once its parent is verified and only when it matches what the parent lists; anything
//! else fetched again by hash, and errors still reported in protocol order.

use super::attacks::{GUN, opts, shop};
use super::caching::A;
use super::{NOW, load, updater_at};
use crate::notary::testing::MemSource;
use crate::notary::updater::{Reuse, Updater};
use crate::notary::verify::VerifyError;

fn by_hash(src: &MemSource, role: &str) -> Vec<String> {
    let prefix = format!("{role}.");
    src.requested()
        .into_iter()
        .filter(|f| f.starts_with(&prefix) && f.len() == prefix.len() + 64 + ".json".len())
        .collect()
}

#[test]
fn a_cold_load_asks_every_file_at_once_and_uses_the_ones_that_match() {
    let mut repo = shop();
    repo.delegate("targets/alice", &[""]);
    repo.add_target("targets/alice", "v2", A);
    let src = repo.publish();
    let data = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect("loads");
    assert_eq!(data.tags().len(), 3, "{:?}", data.tags());
    let asked = src.requested();
    let mut first: Vec<&str> = asked.iter().take(5).map(String::as_str).collect();
    first.sort_unstable();
    assert_eq!(
        first,
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "targets/releases.json",
            "timestamp.json"
        ],
        "{asked:?}"
    );
    // What matched was used: nothing of it fetched again.
    for role in ["snapshot", "targets", "targets/releases"] {
        assert!(by_hash(&src, role).is_empty(), "{role}: {asked:?}");
    }
    // A signer's delegation the snapshot lists is fetched by hash once, not twice.
    assert_eq!(by_hash(&src, "targets/alice").len(), 1, "{asked:?}");
    assert_eq!(asked.len(), 6, "{asked:?}");
}

#[test]
fn files_fetched_ahead_that_do_not_match_their_parent_are_fetched_again_by_hash() {
    let mut repo = shop();
    let old = repo.publish();
    for role in ["timestamp", "snapshot", "targets", "targets/releases"] {
        repo.role(role).version = 2;
    }
    repo.add_target("targets/releases", "v2", A);
    let mut src = repo.publish();
    // Validly signed, older files under the current names (as a server publishing in between,
    // or a mirror replaying files, would serve): never used, the listed versions are.
    for name in ["snapshot.json", "targets.json", "targets/releases.json"] {
        src.files.insert(name.into(), old.files[name].clone());
    }
    let data = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect("loads");
    for role in ["snapshot", "targets", "targets/releases"] {
        assert_eq!(
            by_hash(&src, role).len(),
            1,
            "{role}: {:?}",
            src.requested()
        );
    }
    assert_eq!(
        data.role("targets/releases").map(|r| r.version),
        Some(Some(2))
    );
    assert!(data.docker_lookup("v2").is_some());
}

#[test]
fn a_file_fetched_ahead_is_not_trusted_before_its_parent() {
    let repo = shop();
    let mut src = repo.publish();
    // The timestamp (the snapshot's parent) is corrupt: the load fails on it, whatever was
    // fetched ahead, and nothing past it is fetched by hash.
    let mut ts = src.files["timestamp.json"].clone();
    let at = ts.len() / 2;
    ts[at] ^= 0x01;
    src.files.insert("timestamp.json".into(), ts);
    let err = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect_err("bad timestamp");
    assert!(
        !matches!(err, VerifyError::HashMismatch { .. }) && err.to_string().contains("timestamp"),
        "{err}"
    );
    assert!(
        by_hash(&src, "snapshot").is_empty(),
        "{:?}",
        src.requested()
    );
}

#[test]
fn missing_files_fetched_ahead_are_only_reported_in_their_turn() {
    let repo = shop();
    let mut src = repo.publish();
    // No current names at all (a server serving only by hash): the ahead fetches fail, the
    // load still succeeds by hash.
    for name in ["snapshot.json", "targets.json", "targets/releases.json"] {
        src.files.remove(name);
    }
    load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect("loads by hash");
    for role in ["snapshot", "targets", "targets/releases"] {
        assert_eq!(
            by_hash(&src, role).len(),
            1,
            "{role}: {:?}",
            src.requested()
        );
    }
}

#[test]
fn a_refresh_with_a_kept_root_asks_nothing_ahead() {
    let repo = shop();
    let src = repo.publish();
    let u = Updater::new(std::sync::Arc::new(crate::clock::FixedClock(NOW)))
        .with_reuse(Reuse::default());
    futures::executor::block_on(u.load(&src, GUN, &opts(&repo))).expect("first");
    let before = src.requested().len();
    futures::executor::block_on(u.load(&src, GUN, &opts(&repo))).expect("refresh");
    assert_eq!(src.requested()[before..], ["timestamp.json".to_owned()]);
}
