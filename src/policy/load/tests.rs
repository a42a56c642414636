//! YAML loading: several documents, the default namespace, wrong kinds, bad YAML, field errors
//! with paths, unknown fields, duplicates and directories.

use super::*;
use crate::image::reference::ImageRef;
use crate::policy::crd::Action;
use crate::policy::matcher::Selection;
use crate::policy::testdata::{KEY_ID, reference_example_yaml};

fn verify_doc(kind: &str, meta: &str, images: &str) -> String {
    format!(
        "apiVersion: trustgate.dev/v1alpha1
kind: {kind}
metadata: {meta}
spec:
  images: {images}
  notary: {{url: https://notary.example.com}}
  trustRoots: [{{keyID: \"{KEY_ID}\"}}]
"
    )
}

fn parse(text: &str) -> Result<Vec<(DocumentRef, LoadedPolicy)>, LoadError> {
    parse_policies(Path::new("policies.yaml"), text)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

#[test]
fn several_documents_and_the_default_namespace() {
    let text = format!(
        "---\n{}---\n{}---\n{}",
        verify_doc(
            "TrustPolicy",
            "{name: shop-images, namespace: shop}",
            "[\"registry.example.com/shop/**\"]"
        ),
        verify_doc("TrustPolicy", "{name: no-namespace}", "[nginx]"),
        verify_doc("ClusterTrustPolicy", "{name: baseline}", "[\"**\"]"),
    );
    let policies = parse(&text).expect("valid");
    let ids: Vec<String> = policies.iter().map(|(_, p)| p.id.to_string()).collect();
    assert_eq!(
        ids,
        ["shop/shop-images", "default/no-namespace", "baseline"]
    );
    let lines: Vec<Option<usize>> = policies.iter().map(|(at, _)| at.line).collect();
    assert_eq!(lines[0], Some(2));
    assert!(lines[1] > lines[0] && lines[2] > lines[1], "{lines:?}");
    assert_eq!(policies[2].0.index, 3);
}

#[test]
fn the_reference_example_loads() {
    let policies = parse(&reference_example_yaml()).expect("reference example is valid");
    assert_eq!(policies.len(), 1);
    let (_, policy) = &policies[0];
    assert_eq!(policy.id.to_string(), "shop/shop-images");
    assert_eq!(policy.spec.signers.len(), 2);
    assert_eq!(policy.spec.signer_threshold, Some(2));
}

#[test]
fn other_kinds_are_errors_naming_file_and_document() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n",
        verify_doc("TrustPolicy", "{name: a}", "[nginx]")
    );
    let err = parse(&text)
        .expect_err("ConfigMap is not a policy")
        .to_string();
    assert!(
        err.starts_with("policies.yaml: document 2 (line 9): kind ConfigMap"),
        "{err}"
    );
    assert!(err.contains("apiVersion v1"), "{err}");

    let err = parse("apiVersion: trustgate.dev/v1\nkind: TrustPolicy\nmetadata: {name: a}\n")
        .expect_err("wrong version")
        .to_string();
    assert!(
        err.contains("TrustPolicy has apiVersion trustgate.dev/v1"),
        "{err}"
    );

    let err = parse("- a\n- b\n").expect_err("a list").to_string();
    assert!(err.contains("document 1 (line 1): not a mapping"), "{err}");
}

#[test]
fn bad_yaml_names_the_file() {
    let err = parse("apiVersion: trustgate.dev/v1alpha1\nkind: [TrustPolicy\n")
        .expect_err("unterminated flow sequence");
    assert!(matches!(err, LoadError::Yaml { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("policies.yaml: invalid YAML: "),
        "{err}"
    );
}

#[test]
fn field_errors_name_policy_and_field() {
    let text = verify_doc("TrustPolicy", "{name: a, namespace: shop}", "[nginx]").replace(
        "trustRoots: [{keyID:",
        "trustRoots: [{keyID: \"abc\"}, {keyID:",
    );
    let err = parse(&text).expect_err("bad key ID").to_string();
    assert_eq!(
        err,
        "policies.yaml: document 1 (line 1): TrustPolicy shop/a: spec.trustRoots[0].keyID: \
         \"abc\" is not a key ID (64 lower-case hex digits)"
    );

    let text = verify_doc("ClusterTrustPolicy", "{name: c}", "[nginx]")
        .replace("spec:\n", "spec:\n  action: Verifyy\n");
    let err = parse(&text).expect_err("bad enum").to_string();
    assert!(
        err.contains("ClusterTrustPolicy c: spec.action: unknown variant `Verifyy`"),
        "{err}"
    );

    let text = verify_doc("ClusterTrustPolicy", "{name: c}", "[nginx]")
        .replace("spec:\n", "spec:\n  trustRootThreshold: many\n");
    let err = parse(&text).expect_err("bad type").to_string();
    assert!(
        err.contains("spec.trustRootThreshold: invalid type"),
        "{err}"
    );
}

#[test]
fn unknown_fields_and_missing_names_are_errors() {
    let text = verify_doc(
        "TrustPolicy",
        "{namespace: shop, labels: {a: b}}",
        "[nginx]",
    )
    .replace(
        "spec:\n",
        "spec:\n  trustroots: []\n  signers: [{name: alice, requird: true}]\n",
    );
    let LoadError::Invalid { errors, policy, .. } = parse(&text).expect_err("typos") else {
        panic!("expected Invalid");
    };
    assert_eq!(policy, "shop/");
    let mut paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "metadata.name",
            "spec.signers[0].requird",
            "spec.trustroots"
        ]
    );
    assert!(
        errors.iter().skip(1).all(|e| e.message == "unknown field"),
        "{errors:?}"
    );
}

#[test]
fn all_problems_are_reported() {
    let text = format!(
        "{}---\nkind: Deployment\n",
        verify_doc("TrustPolicy", "{name: a}", "[\"a b\"]")
    );
    let err = parse(&text).expect_err("two problems");
    assert_eq!(err.problems().len(), 2, "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("2 problems in policy files:\n  policies.yaml: document 1"),
        "{shown}"
    );
    assert!(
        shown.contains("spec.images[0]: invalid image pattern \"a b\""),
        "{shown}"
    );
    assert!(
        shown.contains("\n  policies.yaml: document 2 (line 9): kind Deployment"),
        "{shown}"
    );
}

#[test]
fn duplicates_across_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "a.yaml",
        &verify_doc("TrustPolicy", "{name: p}", "[nginx]"),
    );
    let b = write(
        dir.path(),
        "b.yaml",
        &format!(
            "{}---\n{}",
            // Same name, other namespace or kind: not duplicates.
            verify_doc("TrustPolicy", "{name: p, namespace: other}", "[nginx]"),
            verify_doc("ClusterTrustPolicy", "{name: p}", "[nginx]"),
        ),
    );
    let c = write(
        dir.path(),
        "c.yaml",
        &verify_doc("TrustPolicy", "{name: p, namespace: default}", "[nginx]"),
    );
    assert_eq!(
        load_policies(&[a.clone(), b.clone()], &[])
            .map(|p| p.len())
            .ok(),
        Some(3)
    );
    let err = load_policies(&[a, b, c], &[])
        .expect_err("default/p twice")
        .to_string();
    assert!(
        err.contains("c.yaml: document 1 (line 1): TrustPolicy default/p is already defined at"),
        "{err}"
    );
    assert!(err.contains("a.yaml: document 1 (line 1)"), "{err}");
}

#[test]
fn policy_dir_reads_yaml_files_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20-b.yml",
        &verify_doc("ClusterTrustPolicy", "{name: b}", "[\"**\"]"),
    );
    write(
        dir.path(),
        "10-a.yaml",
        &verify_doc("ClusterTrustPolicy", "{name: a}", "[nginx]"),
    );
    write(dir.path(), "notes.txt", "not yaml");
    write(dir.path(), ".hidden.yaml", "kind: Broken\n");
    std::fs::create_dir(dir.path().join("sub.yaml")).expect("mkdir");
    std::fs::create_dir(dir.path().join("..data")).expect("mkdir");
    write(&dir.path().join("..data"), "x.yaml", "kind: Broken\n");

    let files = policy_files_in(dir.path()).expect("listable");
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, ["10-a.yaml", "20-b.yml"]);

    let set = load_policy_set(&[], &[dir.path().to_path_buf()]).expect("valid");
    assert_eq!(set.len(), 2);
    assert_eq!(set.default_action(), Action::Deny);
    let nginx = ImageRef::parse("nginx").expect("valid reference");
    match set.select("any", &nginx) {
        Selection::Policy { policy, pattern } => {
            assert_eq!(
                (policy.id.to_string(), pattern),
                ("a".to_owned(), "nginx".to_owned())
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let err = load_policy_set(&[], &[dir.path().join("missing")]).expect_err("no such dir");
    assert!(matches!(err, LoadError::ReadDir { .. }), "{err:?}");
    let err = load_policy_set(&[dir.path().join("missing.yaml")], &[]).expect_err("no such file");
    assert!(
        err.to_string().contains("missing.yaml: cannot read"),
        "{err}"
    );
}

#[test]
fn namespaced_policies_is_read_on_cluster_policies_and_refused_on_trust_policies() {
    let cluster = format!(
        "{}  namespacedPolicies: Tighten\n",
        verify_doc("ClusterTrustPolicy", "{name: platform}", "[\"**\"]")
    );
    let loaded = parse(&cluster).expect("valid");
    assert_eq!(
        loaded[0].1.spec.namespaced_policies(),
        crate::policy::NamespacedPolicies::Tighten
    );
    let namespaced = format!(
        "{}  namespacedPolicies: Override\n",
        verify_doc("TrustPolicy", "{name: p, namespace: shop}", "[\"**\"]")
    );
    let err = parse(&namespaced).expect_err("refused on a TrustPolicy");
    assert_eq!(
        err.to_string(),
        "policies.yaml: document 1 (line 1): TrustPolicy shop/p: spec.namespacedPolicies: \
         can only be set on a ClusterTrustPolicy"
    );
    let bad = format!(
        "{}  namespacedPolicies: Loosen\n",
        verify_doc("ClusterTrustPolicy", "{name: platform}", "[\"**\"]")
    );
    let err = parse(&bad).expect_err("not a value").to_string();
    assert!(
        err.contains("spec.namespacedPolicies") && err.contains("Loosen"),
        "{err}"
    );
}
