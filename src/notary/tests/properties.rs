//! Property tests (proptest) of Notary verification against mutated signed metadata: byte flips,
//! insertions, deletions and truncation; JSON-level replacement, removal, insertion and swapping
//! of fields anywhere in the envelope; duplicated keys; re-serialisation. Two corpora: synthetic
//! repositories from `builder` (the mutation is applied to a role's bytes *before* its parents
//! hash them, so the signature is the only defence left) and notary's own signed fixtures
//! (served as they are, mutated).
//!
//! Properties: verification never panics, never hangs (a watchdog fails a case after
//! [`HANG`]), every rejection has a reason, and a file whose signed part changed (its canonical
//! `signed` bytes differ, or it no longer parses) is never accepted: a base role makes the whole
//! load fail, a delegation is never `Valid`.
//!
//! Runs `PROPTEST_CASES / 4` cases per property (64 by default); see docs/fuzzing.md for a long
//! run.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

use super::builder::{MemSource, Repo};
use super::*;
use crate::notary::canonical::to_canonical;
use crate::notary::view::RoleStatus;

const GUN: &str = "example.com/fuzz/app";
const GUN03: &str = "docker.com/notary0.3/tst";
const ROOT03: &str = "354e203ba09dbe17807b6a9d191bff887167c06d121e738d849446a9c76c2866";
/// A load taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(20);
const ROLES: [&str; 5] = [
    "root",
    "timestamp",
    "snapshot",
    "targets",
    "targets/releases",
];

/// `PROPTEST_CASES` (default 256) divided by `cost`; shrinking bounded.
fn config(cost: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / cost).max(1),
        max_shrink_iters: 256,
        ..base
    }
}

// ---- mutations ----------------------------------------------------------------------------

/// The mutations shared with the integration properties.
#[path = "../../../tests/properties/mutate.rs"]
mod mutate;
use mutate::Mutation;

/// Field names of Notary metadata (keys for inserted and duplicated members).
const KEYS: &[&str] = &[
    "signed",
    "signatures",
    "_type",
    "version",
    "expires",
    "keys",
    "roles",
    "meta",
    "targets",
    "delegations",
    "threshold",
    "keyids",
    "paths",
    "name",
    "hashes",
    "length",
    "sha256",
    "keyid",
    "method",
    "sig",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    mutate::mutation(KEYS)
}

/// The canonical bytes of the file's `signed` object, `None` when there are none.
fn signed_part(raw: &[u8]) -> Option<Vec<u8>> {
    /// Read as the loader reads the envelope: only `signed` is parsed; other members are
    /// skipped unvalidated (a `Value` of the whole file would reject invalid UTF-8 in an
    /// unsigned member the loader rightly ignores, and count that as a change).
    #[derive(serde::Deserialize)]
    struct Envelope {
        signed: Value,
    }
    let env: Envelope = serde_json::from_slice(raw).ok()?;
    to_canonical(&env.signed).ok()
}

// ---- running a load -----------------------------------------------------------------------

/// Loads on another thread; `Err` when it takes longer than [`HANG`].
fn load_bounded(
    src: MemSource,
    gun: &'static str,
    opts: TrustOptions,
) -> Result<Result<TrustData, VerifyError>, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = load(&updater_at(NOW), &src, gun, &opts);
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG) {
        Ok(result) => Ok(result),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("load hung for {HANG:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("load panicked".to_owned()),
    }
}

/// The properties every outcome must have; `changed` says whether `role`'s signed part changed.
fn check_outcome(
    outcome: Result<Result<TrustData, VerifyError>, String>,
    role: &str,
    changed: bool,
) -> Result<(), TestCaseError> {
    let result = outcome.map_err(TestCaseError::fail)?;
    match result {
        Err(e) => {
            let reason = e.to_string();
            prop_assert!(!reason.trim().is_empty(), "a rejection without a reason");
        }
        Ok(data) if changed => {
            if role.starts_with("targets/") {
                let status = data.role(role).map(|r| &r.status);
                prop_assert!(
                    !matches!(status, Some(RoleStatus::Valid)),
                    "mutated delegation {role} accepted as valid"
                );
                for r in data.roles() {
                    if let RoleStatus::Invalid(e) = &r.status {
                        prop_assert!(!e.to_string().trim().is_empty());
                    }
                }
            } else {
                prop_assert!(false, "mutated {role} accepted");
            }
        }
        Ok(_) => {}
    }
    Ok(())
}

// ---- synthetic repositories ---------------------------------------------------------------

thread_local! {
    /// One repository per test thread (keys are generated once); each case sets its hook.
    static REPO: RefCell<Repo> = RefCell::new({
        let mut r = Repo::new(GUN);
        r.add_target("targets", "v1", [0xaa; 32]);
        r.delegate("targets/releases", &[""]);
        r.add_target("targets/releases", "v1", [0xbb; 32]);
        r
    });
}

/// Publishes the thread's repository with `mutation` applied to `role` before its parents hash
/// it; returns the source and whether the role's signed part changed.
fn publish_mutated(role: &str, mutation: &Mutation) -> (MemSource, TrustOptions, bool) {
    REPO.with(|cell| {
        let mut repo = cell.borrow_mut();
        repo.bytes_hooks.clear();
        let seen: Arc<Mutex<Option<bool>>> = Arc::default();
        let (m, s) = (mutation.clone(), Arc::clone(&seen));
        repo.bytes_hooks.insert(
            role.to_owned(),
            Box::new(move |raw: &mut Vec<u8>| {
                let mutated = m.apply(raw);
                let changed = match (signed_part(raw), signed_part(&mutated)) {
                    (Some(before), Some(after)) => before != after,
                    _ => true,
                };
                if let Ok(mut slot) = s.lock() {
                    *slot = Some(slot.unwrap_or(false) || changed);
                }
                *raw = mutated;
            }),
        );
        let src = repo.publish();
        repo.bytes_hooks.clear();
        let opts = pin_ids(&[&repo.roles["root"].keys[0].id]);
        let changed = seen.lock().map(|s| s.unwrap_or(false)).unwrap_or(true);
        (src, opts, changed)
    })
}

#[test]
fn unmutated_synthetic_repository_loads() {
    let (src, opts, changed) = publish_mutated("timestamp", &Mutation::Pretty);
    assert!(!changed);
    let data = load(&updater_at(NOW), &src, GUN, &opts).expect("loads");
    assert_eq!(
        data.role("targets/releases").map(|r| &r.status),
        Some(&RoleStatus::Valid)
    );
}

proptest! {
    #![proptest_config(config(4))]

    /// A synthetic repository with one role mutated before its parents hash it.
    #[test]
    fn mutated_synthetic_metadata_is_never_accepted(
        role in prop::sample::select(ROLES.to_vec()),
        mutation in mutation(),
    ) {
        let (src, opts, changed) = publish_mutated(role, &mutation);
        check_outcome(load_bounded(src, GUN, opts), role, changed)?;
    }

    /// Two mutations of one role, or one each of two roles.
    #[test]
    fn doubly_mutated_synthetic_metadata_is_never_accepted(
        role in prop::sample::select(ROLES.to_vec()),
        first in mutation(),
        second in mutation(),
    ) {
        let (src, opts, changed) = REPO.with(|cell| {
            let mut repo = cell.borrow_mut();
            let seen: Arc<Mutex<bool>> = Arc::default();
            let s = Arc::clone(&seen);
            let (a, b) = (first.clone(), second.clone());
            repo.bytes_hooks.insert(role.to_owned(), Box::new(move |raw: &mut Vec<u8>| {
                let mutated = b.apply(&a.apply(raw));
                let changed = match (signed_part(raw), signed_part(&mutated)) {
                    (Some(before), Some(after)) => before != after,
                    _ => true,
                };
                if let Ok(mut slot) = s.lock() {
                    *slot |= changed;
                }
                *raw = mutated;
            }));
            let src = repo.publish();
            repo.bytes_hooks.clear();
            let opts = pin_ids(&[&repo.roles["root"].keys[0].id]);
            let changed = seen.lock().map(|s| *s).unwrap_or(true);
            (src, opts, changed)
        });
        check_outcome(load_bounded(src, GUN, opts), role, changed)?;
    }
}

// ---- notary's own signed files ------------------------------------------------------------

/// notary0.3's files (`None` when the public fixtures are not configured; a configured but
/// incomplete fixture directory fails the test).
fn fixture03() -> Option<Vec<(&'static str, Vec<u8>)>> {
    if !crate::notary::fixtures_present() {
        return None;
    }
    ROLES
        .iter()
        .map(|role| {
            let path = crate::notary::fixtures_dir().join(format!("notary/notary0.3/{role}.json"));
            let raw =
                std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
            Some((*role, raw))
        })
        .collect()
}

proptest! {
    #![proptest_config(config(4))]

    /// notary0.3 (signed by notary itself) with one file mutated as served.
    #[test]
    fn mutated_notary_fixture_is_never_accepted(
        role in prop::sample::select(ROLES.to_vec()),
        mutation in mutation(),
    ) {
        let Some(files) = fixture03() else {
            return Ok(());
        };
        let mut src = MemSource::default();
        let mut changed = false;
        for (name, raw) in files {
            let raw = if name == role {
                let mutated = mutation.apply(&raw);
                changed = match (signed_part(&raw), signed_part(&mutated)) {
                    (Some(before), Some(after)) => before != after,
                    _ => true,
                };
                mutated
            } else {
                raw
            };
            if name == "root" {
                src.files.insert("1.root.json".into(), raw.clone());
            }
            src.put(name, raw);
        }
        check_outcome(load_bounded(src, GUN03, pin_ids(&[ROOT03])), role, changed)?;
    }
}
