//! Mutations of real documents for the property tests (shared by `tests/properties.rs` and the
//! Notary properties in `src/notary/tests/properties.rs`, which include this file by path):
//! byte flips, insertions, deletions and truncation; a duplicated key inserted textually; and
//! JSON-level edits anywhere in the tree (replace, remove, insert, swap two subtrees, bump a
//! number, re-serialise pretty-printed). Strategies generate mutations independently of the
//! document: positions and tree paths are taken modulo what the document has.
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A walk into a JSON tree: at each level, child `selector % len` (stops at a leaf or at an
/// empty container).
pub type Path = Vec<usize>;

/// One change to a document.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR one byte with a non-zero mask.
    FlipByte { at: usize, mask: u8 },
    /// Insert one byte.
    InsertByte { at: usize, byte: u8 },
    /// Delete up to `len` bytes.
    DeleteRange { at: usize, len: usize },
    /// Cut the document.
    Truncate { at: usize },
    /// `"key":value,` inserted textually right after the `nth` `{` (a duplicate key when the
    /// object already has it; JSON parsers keep the last one).
    DuplicateKey {
        nth: usize,
        key: String,
        value: Value,
    },
    /// Replace a subtree.
    Replace { path: Path, with: Value },
    /// Remove an object member or array element.
    Remove { path: Path },
    /// Add a member to an object (or an element to an array; a leaf becomes an object).
    Insert {
        path: Path,
        key: String,
        with: Value,
    },
    /// Swap two disjoint subtrees (a field swap when both are members).
    Swap { a: Path, b: Path },
    /// Add `delta` to a number.
    Bump { path: Path, delta: i64 },
    /// Re-serialise pretty-printed (same value).
    Pretty,
}

/// JSON leaves, with values that mean something to the documents fuzzed here.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..4).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9_/:.+=@*-]{0,12}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "Root",
            "Targets",
            "Verify",
            "Allow",
            "Deny",
            "Warn",
            "Audit",
            "Enforce",
            "CREATE",
            "UPDATE",
            "2001-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "ecdsa",
            "AAAA",
            "registry.example.com:5000/shop/**",
            "allowed.example.com/shop/web:1.0",
            "denied.example.com/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ])
        .prop_map(|s| json!(s)),
    ]
}

/// Small JSON values (depth up to 3).
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A tree path.
pub fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(any::<usize>(), 0..8)
}

/// A key: random, or one of `known` (the document kind's field names).
pub fn key(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_]{1,10}",
        prop::sample::select(known).prop_map(str::to_owned),
    ]
}

/// Byte-level mutations (mostly break the syntax) and, three times as often, JSON-level ones
/// (keep it well-formed so that the checks after parsing are reached).
pub fn mutation(known: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::FlipByte { at, mask }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte { at, byte }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::DeleteRange { at, len }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        2 => (0usize..4, key(known), value())
            .prop_map(|(nth, key, value)| Mutation::DuplicateKey { nth, key, value }),
        3 => (path(), value()).prop_map(|(path, with)| Mutation::Replace { path, with }),
        3 => path().prop_map(|path| Mutation::Remove { path }),
        3 => (path(), key(known), value())
            .prop_map(|(path, key, with)| Mutation::Insert { path, key, with }),
        3 => (path(), path()).prop_map(|(a, b)| Mutation::Swap { a, b }),
        3 => (path(), -2i64..3).prop_map(|(path, delta)| Mutation::Bump { path, delta }),
        1 => Just(Mutation::Pretty),
    ]
}

/// The node at the end of `path`.
pub fn walk<'a>(node: &'a mut Value, path: &[usize]) -> &'a mut Value {
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

/// The keys and indices `path` actually goes through (to tell whether two paths overlap).
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
    /// The mutated document (JSON-level mutations leave a document that is not JSON as it is).
    pub fn apply(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = raw.to_vec();
        let modulo = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
        match self {
            Mutation::FlipByte { at, mask } => {
                if !out.is_empty() {
                    let i = modulo(*at, out.len());
                    out[i] ^= mask;
                }
            }
            Mutation::InsertByte { at, byte } => {
                let i = modulo(*at, out.len() + 1);
                out.insert(i, *byte);
            }
            Mutation::DeleteRange { at, len } => {
                let i = modulo(*at, out.len());
                let end = (i + len).min(out.len());
                out.drain(i..end);
            }
            Mutation::Truncate { at } => out.truncate(modulo(*at, out.len())),
            Mutation::DuplicateKey { nth, key, value } => {
                if let Some((i, _)) = out
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'{')
                    .nth(*nth)
                {
                    let mut ins = serde_json::to_vec(key).unwrap_or_default();
                    ins.push(b':');
                    ins.extend(serde_json::to_vec(value).unwrap_or_default());
                    ins.push(b',');
                    out.splice(i + 1..i + 1, ins);
                }
            }
            Mutation::Pretty => {
                if let Ok(v) = serde_json::from_slice::<Value>(raw) {
                    out = serde_json::to_vec_pretty(&v).unwrap_or_default();
                }
            }
            tree => {
                if let Ok(mut v) = serde_json::from_slice::<Value>(raw) {
                    tree.edit(&mut v);
                    out = serde_json::to_vec(&v).unwrap_or_default();
                }
            }
        }
        out
    }

    /// Applies a JSON-level mutation to `v` (the others do nothing here).
    pub fn edit(&self, v: &mut Value) {
        match self {
            Mutation::Replace { path, with } => *walk(v, path) = with.clone(),
            Mutation::Remove { path } => {
                if let Some((last, parent)) = path.split_last() {
                    match walk(v, parent) {
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
            Mutation::Insert { path, key, with } => match walk(v, path) {
                Value::Object(map) => {
                    map.insert(key.clone(), with.clone());
                }
                Value::Array(items) => items.push(with.clone()),
                other => *other = json!({ key.clone(): with.clone() }),
            },
            Mutation::Swap { a, b } => {
                let (ra, rb) = (resolved(v, a), resolved(v, b));
                if !ra.starts_with(&rb) && !rb.starts_with(&ra) {
                    let va = walk(v, a).clone();
                    let vb = std::mem::replace(walk(v, b), va);
                    *walk(v, a) = vb;
                }
            }
            Mutation::Bump { path, delta } => {
                let node = walk(v, path);
                if let Some(n) = node.as_i64() {
                    *node = json!(n.wrapping_add(*delta));
                } else if let Some(n) = node.as_u64() {
                    *node = json!(n.wrapping_add_signed(*delta));
                }
            }
            _ => {}
        }
    }
}
