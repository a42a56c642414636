//! Attacks on policy (see tests/attacks.rs).
//!
//! M7: whoever may create TrustPolicies in a namespace writes `action: Allow` for `**` to walk
//! past the platform team's ClusterTrustPolicy. Under `namespacedPolicies: Tighten` that no
//! longer works; under the default `Override` it still does (today's precedence, kept on
//! purpose). Both run the real `trustgate check` binary against the real registry and Notary
//! server of `e2e/stack.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{self, Stack};

/// A repository of the stack where `v1` is signed and `unsigned` never was.
struct Repo {
    gun: String,
    root_id: String,
    ca_pem: String,
    notary_url: String,
}

fn repo(st: &Stack) -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(|| {
        let name = common::unique_repo("attacks/policy");
        let gun = format!("{}/{name}", st.registry_http);
        let signed = common::push_http(st, "attacks policy signed", &name, "v1");
        common::push_http(st, "attacks policy unsigned", &name, "unsigned");
        let client = st.notary_client(&st.notary_url);
        client.sign(&gun, "v1", &signed.manifest_digest, signed.manifest_size);
        Repo {
            root_id: client.root_key_id(&gun),
            gun,
            ca_pem: std::fs::read_to_string(&st.ca).expect("read the stack CA"),
            notary_url: st.notary_url.clone(),
        }
    })
}

/// The platform team's ClusterTrustPolicy: verify every tag of the repository;
/// `namespacedPolicies` as given (`None`: not set, the default Override).
fn platform_policy(r: &Repo, namespaced_policies: Option<&str>) -> Value {
    let mut spec = json!({
        "images": [r.gun],
        "action": "Verify",
        "notary": {"url": r.notary_url, "caBundle": r.ca_pem},
        "registry": {"plainHTTP": true},
        "trustRoots": [{"keyID": r.root_id}],
    });
    if let Some(value) = namespaced_policies {
        spec["namespacedPolicies"] = json!(value);
    }
    json!({
        "apiVersion": "trustgate.dev/v1alpha1",
        "kind": "ClusterTrustPolicy",
        "metadata": {"name": "platform"},
        "spec": spec,
    })
}

/// The tenant's TrustPolicy: admit everything, unchecked.
fn tenant_allow_all() -> Value {
    json!({
        "apiVersion": "trustgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "allow-all", "namespace": "tenant"},
        "spec": {"images": ["**"], "action": "Allow"},
    })
}

/// Writes the documents to `dir/name` (JSON documents are YAML) and returns the path.
fn write(dir: &Path, name: &str, docs: &[Value]) -> PathBuf {
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_json::to_string_pretty(d).expect("JSON"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text.join("\n---\n")).expect("write policy file");
    path
}

/// `trustgate check --policy P... --namespace tenant --output json IMAGES`: exit status and
/// results.
fn check(policies: &[&Path], images: &[&str]) -> (i32, Vec<Value>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.arg("check");
    for p in policies {
        cmd.arg("--policy").arg(p);
    }
    cmd.args(["--namespace", "tenant", "--output", "json"])
        .args(images)
        .env_remove("NOTARY_AUTH")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    let out = cmd.output().expect("spawn trustgate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = doc["results"].as_array().expect("results").clone();
    (out.status.code().unwrap_or(-1), results)
}

/// Under a Tighten ClusterTrustPolicy that verifies a repository, a namespaced Allow for `**`
/// does not admit an unsigned tag of that repository; a signed tag is still admitted, and an
/// image the cluster policy does not match stays the tenant's business.
#[test]
fn tenant_allow_all_cannot_relax_tighten_policy() {
    let Some(st) = common::stack() else { return };
    let r = repo(&st);
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = write(
        dir.path(),
        "platform.yaml",
        &[platform_policy(r, Some("Tighten"))],
    );
    let tenant = write(dir.path(), "tenant.yaml", &[tenant_allow_all()]);
    let unsigned = format!("{}:unsigned", r.gun);
    let signed = format!("{}:v1", r.gun);
    let elsewhere = format!("{}/attacks-policy/not-the-platforms:1", st.registry_http);

    let (code, results) = check(&[&platform, &tenant], &[&unsigned, &signed, &elsewhere]);
    assert_eq!(code, 1, "{results:#?}");
    let r0 = &results[0];
    assert_eq!(r0["allowed"], false, "{r0:#}");
    assert_eq!(
        r0["policy"], "platform",
        "the cluster policy rejected it: {r0:#}"
    );
    let reason = r0["reason"].as_str().expect("reason");
    assert!(!reason.contains('\n'), "{reason}");
    for needle in [
        unsigned.as_str(),
        "not signed",
        "tenant/allow-all",
        "namespacedPolicies: Tighten",
    ] {
        assert!(reason.contains(needle), "reason lacks {needle:?}: {reason}");
    }
    assert_eq!(results[1]["allowed"], true, "{:#}", results[1]);
    assert_eq!(results[1]["verified"], true, "{:#}", results[1]);
    assert_eq!(results[1]["policy"], "tenant/allow-all", "{:#}", results[1]);
    assert_eq!(
        results[1]["signers"],
        json!(["targets"]),
        "{:#}",
        results[1]
    );
    assert_eq!(results[2]["allowed"], true, "{:#}", results[2]);
    assert_eq!(results[2]["policy"], "tenant/allow-all", "{:#}", results[2]);
}

/// The control: the same two policies without `namespacedPolicies` (the default Override) keep
/// today's precedence, so the tenant's Allow admits the unsigned tag.
#[test]
fn tenant_allow_all_still_overrides_a_default_cluster_policy() {
    let Some(st) = common::stack() else { return };
    let r = repo(&st);
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = write(dir.path(), "tenant.yaml", &[tenant_allow_all()]);
    let unsigned = format!("{}:unsigned", r.gun);
    for (file, value) in [("default.yaml", None), ("override.yaml", Some("Override"))] {
        let platform = write(dir.path(), file, &[platform_policy(r, value)]);
        let (code, results) = check(&[&platform, &tenant], &[&unsigned]);
        assert_eq!(code, 0, "{value:?}: {results:#?}");
        assert_eq!(results[0]["allowed"], true, "{value:?}: {:#}", results[0]);
        assert_eq!(results[0]["policy"], "tenant/allow-all", "{:#}", results[0]);
        assert_eq!(results[0]["action"], "Allow", "{:#}", results[0]);
    }
}

/// A tenant cannot opt out by writing `namespacedPolicies` into its own TrustPolicy: the field
/// is refused there (configuration error, exit 2, naming the field).
#[test]
fn tenant_cannot_set_namespaced_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sneaky = tenant_allow_all();
    sneaky["spec"]["namespacedPolicies"] = json!("Override");
    let tenant = write(dir.path(), "tenant.yaml", &[sneaky]);
    let out = Command::new(env!("CARGO_BIN_EXE_trustgate"))
        .args(["check", "--policy"])
        .arg(&tenant)
        .args(["--output", "json", "nginx:1"])
        .stdin(Stdio::null())
        .output()
        .expect("spawn trustgate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.namespacedPolicies: can only be set on a ClusterTrustPolicy"),
        "{stderr}"
    );
}
