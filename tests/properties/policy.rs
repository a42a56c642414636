//! Policy YAML: arbitrary text, line-level and byte-level mutations of the example policies, and
//! JSON-level mutations of a complete policy (written as JSON, which is YAML), through the
//! policy loader and validator. For every document: no panic, no hang (alias bombs included);
//! every problem names the file and the document, and every field error names its field path.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use trustgate::policy::{LoadError, parse_policies};

use super::mutate::{self, Mutation};
use super::{bounded, config};

/// A load taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(20);
const FILE: &str = "fuzz.yaml";

const PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElPExtEttWN3wlq4p5oo7VIhtR5ln
mDyoSmkDeoh6SDoLlG6hse22wLXY0rNerRKe5ejA5+1nGrPavi4CAfAAWQ==
-----END PUBLIC KEY-----
";
const KEY_ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

/// Field names of policies (keys for inserted and duplicated members).
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "spec",
    "images",
    "action",
    "mode",
    "notary",
    "url",
    "gun",
    "caBundle",
    "credentialsSecret",
    "registry",
    "plainHTTP",
    "trustRoots",
    "keyID",
    "publicKey",
    "trustRootThreshold",
    "signers",
    "required",
    "signerThreshold",
    "revokedKeys",
    "namespaceSelector",
    "status",
];

/// The example policies shipped in `examples/policies`.
fn examples() -> &'static [String] {
    static EXAMPLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("examples/policies")
            .map(|e| e.expect("entry").path())
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("example"))
            .collect()
    })
}

/// A policy using every field.
fn full_policy() -> Value {
    json!({
        "apiVersion": "trustgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "shop-images", "namespace": "shop"},
        "spec": {
            "images": ["registry.example.com:5000/shop/**", "docker.io/library/nginx:1.*"],
            "action": "Verify",
            "mode": "Enforce",
            "notary": {
                "url": "https://notary.example.com:4443",
                "credentialsSecret": {"name": "notary-creds"},
                "gun": "registry.example.com:5000/shop/app"
            },
            "registry": {"plainHTTP": false, "credentialsSecret": {"name": "pull-creds"}},
            "trustRoots": [{"publicKey": PUBLIC_KEY_PEM}, {"keyID": KEY_ID}],
            "trustRootThreshold": 1,
            "signers": [
                {"name": "alice", "publicKey": PUBLIC_KEY_PEM, "required": true},
                {"name": "bob"}
            ],
            "signerThreshold": 2,
            "revokedKeys": [KEY_ID]
        }
    })
}

/// What holds for any text: no panic or hang; on failure every problem names the file and the
/// document, and every field error has a path and a message.
fn check_text(text: String) -> Result<(), TestCaseError> {
    let result = bounded(HANG, move || {
        parse_policies(Path::new(FILE), &text)
            .map(|p| p.len())
            .map_err(|e| {
                let lines: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
                let fields: Vec<(String, String)> = e
                    .problems()
                    .iter()
                    .filter_map(|p| match p {
                        LoadError::Invalid { errors, .. } => Some(errors),
                        _ => None,
                    })
                    .flatten()
                    .map(|f| (f.path.clone(), f.message.clone()))
                    .collect();
                (lines, fields)
            })
    })
    .map_err(TestCaseError::fail)?;
    if let Err((lines, fields)) = result {
        prop_assert!(!lines.is_empty());
        for line in &lines {
            prop_assert!(line.starts_with(&format!("{FILE}: ")), "no file: {}", line);
        }
        for (path, message) in &fields {
            prop_assert!(
                !path.is_empty(),
                "a field error without a path: {}",
                message
            );
            prop_assert!(
                !message.trim().is_empty(),
                "a field error without a message at {}",
                path
            );
        }
    }
    Ok(())
}

/// A line-level edit of a YAML text.
#[derive(Debug, Clone)]
enum LineEdit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Indent(usize, i8),
    Replace(usize, String),
    /// A value replaced after its key's `:`.
    Value(usize, String),
}

impl LineEdit {
    fn apply(&self, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.is_empty() {
            return text.to_owned();
        }
        let n = lines.len();
        match self {
            LineEdit::Delete(i) => {
                lines.remove(i % n);
            }
            LineEdit::Duplicate(i) => lines.insert(i % n, lines[i % n].clone()),
            LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
            LineEdit::Indent(i, by) => {
                let line = &mut lines[i % n];
                if *by > 0 {
                    *line = format!("{}{line}", " ".repeat(usize::from(by.unsigned_abs())));
                } else {
                    let cut =
                        usize::from(by.unsigned_abs()).min(line.len() - line.trim_start().len());
                    *line = line[cut..].to_owned();
                }
            }
            LineEdit::Replace(i, with) => lines[i % n].clone_from(with),
            LineEdit::Value(i, with) => {
                let line = &mut lines[i % n];
                if let Some((key, _)) = line.split_once(':') {
                    *line = format!("{key}: {with}");
                }
            }
        }
        lines.join("\n")
    }
}

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ./:*_-]{0,20}",
        Just("*a".to_owned()),
        Just("&a x".to_owned()),
        Just("[".to_owned()),
        Just("{}".to_owned()),
        Just("~".to_owned()),
        Just("!!binary AAAA".to_owned()),
        Just("<<: *a".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("-1".to_owned()),
        Just("1e400".to_owned()),
        Just("4294967296".to_owned()),
        Just("|".to_owned()),
        Just("Verify".to_owned()),
        Just("Allow".to_owned()),
        Just("Warn".to_owned()),
        Just("---".to_owned()),
        ".{0,10}",
    ]
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        any::<usize>().prop_map(LineEdit::Delete),
        any::<usize>().prop_map(LineEdit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        (any::<usize>(), -4i8..5).prop_map(|(i, by)| LineEdit::Indent(i, by)),
        (any::<usize>(), yaml_scalar()).prop_map(|(i, s)| LineEdit::Replace(i, s)),
        (any::<usize>(), yaml_scalar()).prop_map(|(i, s)| LineEdit::Value(i, s)),
    ]
}

/// `levels` levels of anchors, each a list of `fan` aliases of the previous one: `fan^levels`
/// nodes once expanded.
fn alias_bomb(levels: usize, fan: usize) -> String {
    let mut out = String::from("a0: &a0 [x]\n");
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); fan].join(", ");
        out.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    out
}

proptest! {
    #![proptest_config(config(1, "policy"))]

    #[test]
    fn arbitrary_yaml_is_loaded_or_refused_with_reasons(text in prop_oneof![
        ".{0,200}",
        "([a-zA-Z]{1,8}: ?[a-zA-Z0-9*&!|>{}\\[\\],.:-]{0,12}\n {0,4}-? ?){0,12}",
        any::<String>(),
    ]) {
        check_text(text)?;
    }

    #[test]
    fn line_mutated_examples_are_loaded_or_refused_with_reasons(
        example in 0usize..3,
        edits in prop::collection::vec(line_edit(), 1..5),
    ) {
        let examples = examples();
        let text = edits.iter().fold(examples[example % examples.len()].clone(), |t, e| e.apply(&t));
        check_text(text)?;
    }

    #[test]
    fn byte_mutated_examples_are_loaded_or_refused_with_reasons(
        example in 0usize..3,
        mutations in prop::collection::vec(mutate::mutation(KEYS), 1..4),
    ) {
        let examples = examples();
        let raw = examples[example % examples.len()].clone().into_bytes();
        let raw = mutations.iter().fold(raw, |b, m: &Mutation| m.apply(&b));
        check_text(String::from_utf8_lossy(&raw).into_owned())?;
    }

    #[test]
    fn json_mutated_policies_are_loaded_or_refused_with_field_paths(
        mutations in prop::collection::vec(mutate::mutation(KEYS), 1..4),
        cluster in any::<bool>(),
    ) {
        let mut policy = full_policy();
        if cluster {
            policy["kind"] = json!("ClusterTrustPolicy");
            if let Some(m) = policy["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
        let raw = serde_json::to_vec(&policy).expect("json");
        let raw = mutations.iter().fold(raw, |b, m: &Mutation| m.apply(&b));
        check_text(String::from_utf8_lossy(&raw).into_owned())?;
    }

}

proptest! {
    #![proptest_config(config(4, "policy"))]

    #[test]
    fn alias_bombs_are_loaded_or_refused_in_time(levels in 1usize..7, fan in 1usize..7) {
        check_text(alias_bomb(levels, fan))?;
    }
}

/// A billion laughs (10^9 nodes once expanded) is refused by the YAML reader's budget, quickly.
#[test]
fn a_billion_laughs_is_refused_in_time() {
    let text = alias_bomb(9, 10);
    let started = std::time::Instant::now();
    let result = bounded(HANG, move || {
        parse_policies(Path::new(FILE), &text)
            .map(|p| p.len())
            .map_err(|e| e.to_string())
    })
    .expect("no hang");
    let e = result.expect_err("refused");
    assert!(e.starts_with(&format!("{FILE}: invalid YAML: ")), "{e}");
    assert!(started.elapsed() < HANG, "{:?}", started.elapsed());
}

/// Found by `json_mutated_policies_are_loaded_or_refused_with_field_paths`: a policy without
/// `spec` was reported as `ClusterTrustPolicy x: : missing field `spec`` (no field path).
#[test]
fn a_missing_top_level_field_is_named() {
    let text =
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata: {name: x}\n";
    let e = parse_policies(Path::new(FILE), text).expect_err("no spec");
    assert_eq!(
        e.to_string(),
        "fuzz.yaml: document 1 (line 1): ClusterTrustPolicy x: spec: required"
    );
}

#[test]
fn the_unmutated_policies_load() {
    for text in examples() {
        parse_policies(Path::new(FILE), text).expect("example loads");
    }
    let full = serde_json::to_string(&full_policy()).expect("json");
    parse_policies(Path::new(FILE), &full).expect("full policy loads");
}
