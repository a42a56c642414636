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
use serde_json::{Map, Value, json};

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

/// A walk into a JSON tree: at each level, child `selector % len` (stops at a leaf).
type Path = Vec<usize>;

/// One change to a metadata file.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, mask: u8 },
    InsertByte { at: usize, byte: u8 },
    DeleteRange { at: usize, len: usize },
    Truncate { at: usize },
    /// `"key":value,` inserted right after `{"signed":{` (a duplicate key inside `signed`).
    DuplicateKey { key: String, value: Value },
    Replace { path: Path, with: Value },
    Remove { path: Path },
    Insert { path: Path, key: String, with: Value },
    Swap { a: Path, b: Path },
    Bump { path: Path, delta: i64 },
    /// Re-serialised pretty-printed: `signed` unchanged.
    Pretty,
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..4).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9_/:.+=-]{0,12}".prop_map(Value::String),
        Just(json!("Root")),
        Just(json!("Targets")),
        Just(json!("2001-01-01T00:00:00Z")),
        Just(json!("2999-01-01T00:00:00Z")),
        Just(json!("ecdsa")),
        Just(json!("AAAA")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(any::<usize>(), 0..7)
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,10}",
        Just("signed".to_owned()),
        Just("signatures".to_owned()),
        Just("_type".to_owned()),
        Just("version".to_owned()),
        Just("expires".to_owned()),
        Just("keys".to_owned()),
        Just("roles".to_owned()),
        Just("meta".to_owned()),
        Just("targets".to_owned()),
        Just("delegations".to_owned()),
        Just("threshold".to_owned()),
        Just("keyids".to_owned()),
    ]
}

/// Byte-level mutations (mostly break the JSON) and, three times as often, JSON-level ones
/// (keep it well-formed so that verification gets past parsing).
fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::FlipByte { at, mask }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte { at, byte }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::DeleteRange { at, len }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        2 => (key(), value()).prop_map(|(key, value)| Mutation::DuplicateKey { key, value }),
        3 => (path(), value()).prop_map(|(path, with)| Mutation::Replace { path, with }),
        3 => path().prop_map(|path| Mutation::Remove { path }),
        3 => (path(), key(), value()).prop_map(|(path, key, with)| Mutation::Insert { path, key, with }),
        3 => (path(), path()).prop_map(|(a, b)| Mutation::Swap { a, b }),
        3 => (path(), -2i64..3).prop_map(|(path, delta)| Mutation::Bump { path, delta }),
        1 => Just(Mutation::Pretty),
    ]
}

/// The node at the end of `path` (stopping early at leaves and empty containers).
fn walk<'a>(node: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let Some((sel, rest)) = path.split_first() else {
        return node;
    };
    let key = match &*node {
        Value::Object(map) if !map.is_empty() => map.keys().nth(sel % map.len()).cloned(),
        Value::Array(items) if !items.is_empty() => Some(String::new()),
        _ => None,
    };
    match (key, node) {
        (Some(k), Value::Object(map)) => walk(map.get_mut(&k).expect("key exists"), rest),
        (Some(_), Value::Array(items)) => {
            let n = items.len();
            walk(&mut items[sel % n], rest)
        }
        (_, node) => node,
    }
}

/// The path actually reached by `path` (so two paths can be compared after truncation).
fn resolved(mut node: &Value, path: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for sel in path {
        match node {
            Value::Object(map) if !map.is_empty() => {
                let (k, v) = map.iter().nth(sel % map.len()).expect("in range");
                out.push(k.clone());
                node = v;
            }
            Value::Array(items) if !items.is_empty() => {
                let i = sel % items.len();
                out.push(i.to_string());
                node = &items[i];
            }
            _ => break,
        }
    }
    out
}

impl Mutation {
    fn apply(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = raw.to_vec();
        let at = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
        match self {
            Mutation::FlipByte { at: i, mask } => {
                if !out.is_empty() {
                    let i = at(*i, out.len());
                    out[i] ^= mask;
                }
            }
            Mutation::InsertByte { at: i, byte } => {
                let i = at(*i, out.len() + 1);
                out.insert(i, *byte);
            }
            Mutation::DeleteRange { at: i, len } => {
                let i = at(*i, out.len());
                let end = (i + len).min(out.len());
                out.drain(i..end);
            }
            Mutation::Truncate { at: i } => out.truncate(at(*i, out.len())),
            Mutation::DuplicateKey { key, value } => {
                let prefix = br#"{"signed":{"#;
                if out.starts_with(prefix) {
                    let mut ins = serde_json::to_vec(key).unwrap_or_default();
                    ins.push(b':');
                    ins.extend(serde_json::to_vec(value).unwrap_or_default());
                    ins.push(b',');
                    out.splice(prefix.len()..prefix.len(), ins);
                }
            }
            Mutation::Pretty => {
                if let Ok(v) = serde_json::from_slice::<Value>(raw) {
                    out = serde_json::to_vec_pretty(&v).unwrap_or_default();
                }
            }
            tree => {
                let Ok(mut v) = serde_json::from_slice::<Value>(raw) else {
                    return out;
                };
                match tree {
                    Mutation::Replace { path, with } => *walk(&mut v, path) = with.clone(),
                    Mutation::Remove { path } => {
                        if let Some((last, parent)) = path.split_last() {
                            match walk(&mut v, parent) {
                                Value::Object(map) if !map.is_empty() => {
                                    let k = map.keys().nth(last % map.len()).cloned();
                                    if let Some(k) = k {
                                        map.remove(&k);
                                    }
                                }
                                Value::Array(items) if !items.is_empty() => {
                                    let n = items.len();
                                    items.remove(last % n);
                                }
                                _ => {}
                            }
                        }
                    }
                    Mutation::Insert { path, key, with } => match walk(&mut v, path) {
                        Value::Object(map) => {
                            map.insert(key.clone(), with.clone());
                        }
                        Value::Array(items) => items.push(with.clone()),
                        other => *other = json!({ key.clone(): with.clone() }),
                    },
                    Mutation::Swap { a, b } => {
                        let (ra, rb) = (resolved(&v, a), resolved(&v, b));
                        // Only disjoint subtrees can be swapped.
                        if !ra.starts_with(&rb) && !rb.starts_with(&ra) {
                            let va = walk(&mut v, a).clone();
                            let vb = std::mem::replace(walk(&mut v, b), va);
                            *walk(&mut v, a) = vb;
                        }
                    }
                    Mutation::Bump { path, delta } => {
                        let node = walk(&mut v, path);
                        if let Some(n) = node.as_i64() {
                            *node = json!(n.wrapping_add(*delta));
                        } else if let Some(n) = node.as_u64() {
                            *node = json!(n.wrapping_add_signed(*delta));
                        }
                    }
                    _ => unreachable!(),
                }
                out = serde_json::to_vec(&v).unwrap_or_default();
            }
        }
        out
    }
}

/// The canonical bytes of the file's `signed` object, `None` when there are none.
fn signed_part(raw: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    to_canonical(v.get("signed")?).ok()
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

/// notary0.3's files (`None` when the public fixtures are not beside the repository).
fn fixture03() -> Option<Vec<(&'static str, Vec<u8>)>> {
    ROLES
        .iter()
        .map(|role| {
            let path = crate::notary::fixtures_dir().join(format!("notary/notary0.3/{role}.json"));
            std::fs::read(path).ok().map(|raw| (*role, raw))
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
            eprintln!("SKIP: notary fixtures not found");
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
