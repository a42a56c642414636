//! End-to-end tests of the `trustgate check` BINARY against the real stack of `e2e/stack.sh`:
//! images pushed with skopeo to the plain-HTTP registry, signed with the real notary CLI, policies
//! written as YAML files, and the command's exit status, JSON results and text verdicts checked
//! against the CLI reference and the decision rules (docs/).
//!
//! Each test is a table of [`Case`]s (one run of the binary and what it must give) run by one
//! driver (`check_e2e/table.rs`), which names the case in every failure.
//!
//! Run with `bash e2e/stack.sh up && TRUSTGATE_REQUIRE_STACK=1 cargo test --test check_e2e`
//! (skipped, with a `SKIP` line, when the stack is not up and the variable is not set).
//!
//! Two repositories are shared, read-only after their set-up, through `OnceLock`s: `main` (tags
//! signed in `targets`) and `signers` (`targets/releases`, `targets/alice`, `targets/bob`).
//! Tests that change trust data (rotations, token auth) make their own repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod check_e2e {
    pub mod table;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use check_e2e::table::{self, Case, Line, Want, trustgate};
use common::scenario::delegation_key;
use common::scripted::{black_hole, closed_port};
use common::{NotaryClient, Push, Stack};

// ------------------------------------------------------------------ policies as YAML

/// Appends `v` as block YAML at `indent` (a mapping or a sequence).
fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                out.push_str(&format!("{pad}{k}:"));
                yaml_value(val, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        yaml_block(item, indent + 2, &mut inner);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&inner[indent + 2..]);
                    }
                    _ => {
                        out.push_str(&format!("{pad}-"));
                        yaml_value(item, indent, out);
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", yaml_scalar(other))),
    }
}

/// Appends what follows `key:` (or `-`) for `v` nested under `indent`.
fn yaml_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_block(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_block(v, indent + 2, out);
        }
        Value::String(s) if s.contains('\n') => {
            // A literal block, as people write PEMs into policies.
            out.push_str(" |\n");
            let pad = " ".repeat(indent + 2);
            for line in s.lines() {
                out.push_str(&format!("{pad}{line}\n"));
            }
        }
        other => out.push_str(&format!(" {}\n", yaml_scalar(other))),
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // JSON string escapes are valid in YAML double-quoted scalars.
        other => other.to_string(),
    }
}

/// One policy document: `TrustPolicy` when `namespace` is given, else `ClusterTrustPolicy`.
fn policy_doc(name: &str, namespace: Option<&str>, spec: &Value) -> Value {
    let (kind, metadata) = match namespace {
        Some(ns) => ("TrustPolicy", json!({"name": name, "namespace": ns})),
        None => ("ClusterTrustPolicy", json!({"name": name})),
    };
    json!({
        "apiVersion": "trustgate.dev/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    })
}

/// The YAML text of several documents separated by `---`.
fn yaml_docs(docs: &[Value]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        yaml_block(d, 0, &mut out);
    }
    out
}

/// A temporary directory for the policy files of one test.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::Builder::new()
                .prefix("trustgate-check-e2e-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// Writes `text` to `name` and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write policy file");
        path
    }

    /// Writes one namespaced policy `ns/name` with `spec`.
    fn policy(&self, file: &str, ns: &str, name: &str, spec: &Value) -> PathBuf {
        self.write(file, &yaml_docs(&[policy_doc(name, Some(ns), spec)]))
    }
}

// ------------------------------------------------------------------ stack helpers

/// Pushes `layout` to the plain-HTTP registry as `repo:tag` (converted to Docker schema 2 with
/// `v2s2`); returns the digest and size of the manifest the registry then serves.
fn push_layout(
    st: &Stack,
    repo: &str,
    layout: &common::Layout,
    tag: &str,
    v2s2: bool,
) -> (String, u64) {
    let digest = common::skopeo_push(
        layout,
        &Push {
            format_v2s2: v2s2,
            ..Push::plain(&st.registry_http, repo, tag)
        },
    );
    let served = common::registry_manifest(
        &format!("{}/{repo}:{tag}", st.registry_http),
        false,
        None,
        None,
    );
    assert_eq!(
        common::sha256_digest(&served),
        digest,
        "pushed {repo}:{tag}"
    );
    (digest, served.len() as u64)
}

/// Pushes `oci_image(seed)` to the plain-HTTP registry as `repo:tag`; returns (digest, size).
fn push(st: &Stack, repo: &str, seed: &str, tag: &str) -> (String, u64) {
    let layout = common::oci_image(seed, tag);
    let pushed = push_layout(st, repo, &layout, tag, false);
    assert_eq!(pushed.0, layout.manifest_digest, "pushed {repo}:{tag}");
    pushed
}

/// The digest and size of `oci_image(seed)` without pushing it.
fn image_digest(seed: &str) -> (String, u64) {
    let layout = common::oci_image(seed, "x");
    (layout.manifest_digest.clone(), layout.manifest_size)
}

/// A cached metadata file of the client's trust dir (`tuf/<gun>/metadata/<role>.json`).
fn cached_metadata(client: &NotaryClient, gun: &str, role: &str) -> Value {
    let path = client
        .trust_dir
        .join("tuf")
        .join(gun)
        .join("metadata")
        .join(format!("{role}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("metadata JSON")
}

/// The root key of `gun` as the client's cached root.json lists it: (key ID, certificate PEM).
/// The cache is what `init` published; after a root rotation use [`published_root`].
fn root_key(client: &NotaryClient, gun: &str) -> (String, String) {
    root_key_of(&cached_metadata(client, gun, "root"))
}

/// The current root.json of `gun` as the TLS Notary server serves it.
fn published_root(st: &Stack, gun: &str) -> Value {
    let url = format!("{}/v2/{gun}/_trust/tuf/root.json", st.notary_url);
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", "--cacert"])
        .arg(&st.ca)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("spawn curl");
    assert!(out.status.success(), "curl {url}: {}", out.status);
    serde_json::from_slice(&out.stdout).expect("root JSON")
}

/// (key ID, certificate PEM) of the root key that `root` (a root.json) lists first.
fn root_key_of(root: &Value) -> (String, String) {
    let id = root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .expect("root key ID")
        .to_owned();
    let key = &root["signed"]["keys"][&id];
    assert_eq!(key["keytype"], "ecdsa-x509", "root key type");
    let cert = B64
        .decode(key["keyval"]["public"].as_str().expect("root public"))
        .expect("base64 cert");
    (id, String::from_utf8(cert).expect("PEM certificate"))
}

/// The key ID the published targets.json lists for delegation `role`.
fn delegation_key_id(client: &NotaryClient, gun: &str, role: &str) -> String {
    let targets = cached_metadata(client, gun, "targets");
    let roles = targets["signed"]["delegations"]["roles"]
        .as_array()
        .expect("delegation roles");
    let r = roles
        .iter()
        .find(|r| r["name"] == role)
        .unwrap_or_else(|| panic!("no delegation {role} in {targets:#}"));
    r["keyids"][0].as_str().expect("key ID").to_owned()
}

/// The stack CA as PEM text (for `caBundle`).
fn ca_pem(st: &Stack) -> String {
    std::fs::read_to_string(&st.ca).expect("read CA")
}

/// A Verify spec for `images` against `notary_url`, pinning `roots`, registry over plain HTTP.
fn verify_spec(st: &Stack, images: &[&str], notary_url: &str, roots: Value) -> Value {
    json!({
        "images": images,
        "action": "Verify",
        "notary": {"url": notary_url, "caBundle": ca_pem(st)},
        "registry": {"plainHTTP": true},
        "trustRoots": roots,
    })
}

// ------------------------------------------------------------------ shared repositories

/// `main`: tags signed in `targets` only.
///
/// * `v1`: image A, signed (A).
/// * `v2`: image A, never signed as `v2`.
/// * `moved`: signed for A, then image B pushed over it (the registry serves B).
/// * B is signed under no tag at all.
/// * `index`: a two-platform OCI image index, signed with the index digest.
/// * `docker`: image A converted to a Docker schema 2 manifest (digest D), signed (D).
/// * `<gun>-alt`: another GUN (own root key) where `v1` is signed (A), for `notary.gun`.
struct MainRepo {
    st: Stack,
    repo: String,
    gun: String,
    a: String,
    b: String,
    index: String,
    docker: String,
    root_id: String,
    root_cert: String,
    alt_gun: String,
    alt_root_id: String,
}

impl MainRepo {
    fn image(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.gun)
    }

    /// Verify spec for `<gun>` (every tag) pinning the root by key ID.
    fn spec(&self) -> Value {
        verify_spec(
            &self.st,
            &[&self.gun],
            &self.st.notary_url,
            json!([{"keyID": self.root_id}]),
        )
    }
}

fn main_repo(st: &Stack) -> &'static MainRepo {
    static MAIN: OnceLock<MainRepo> = OnceLock::new();
    MAIN.get_or_init(|| {
        let repo = common::unique_repo("check-e2e/main");
        let gun = format!("{}/{repo}", st.registry_http);
        let (a, a_size) = push(st, &repo, "check-e2e image A", "v1");
        push(st, &repo, "check-e2e image A", "v2");
        push(st, &repo, "check-e2e image A", "moved");
        let client = st.notary_client(&st.notary_url);
        client.init(&gun);
        client.addhash(&gun, "v1", &a, a_size);
        client.addhash(&gun, "moved", &a, a_size);
        let (b, _) = push(st, &repo, "check-e2e image B", "moved");
        assert_ne!(a, b);
        let layout = common::oci_index("check-e2e index", "index");
        let (index, index_size) = push_layout(st, &repo, &layout, "index", false);
        assert_eq!(index, layout.manifest_digest);
        client.addhash(&gun, "index", &index, index_size);
        let layout = common::oci_image("check-e2e image A", "docker");
        let (docker, docker_size) = push_layout(st, &repo, &layout, "docker", true);
        assert_ne!(docker, a, "the schema 2 conversion has its own digest");
        client.addhash(&gun, "docker", &docker, docker_size);
        let (root_id, root_cert) = root_key(&client, &gun);
        let alt_gun = format!("{gun}-alt");
        client.sign(&alt_gun, "v1", &a, a_size);
        let (alt_root_id, _) = root_key(&client, &alt_gun);
        assert_ne!(alt_root_id, root_id);
        MainRepo {
            st: st.clone(),
            repo,
            gun,
            a,
            b,
            index,
            docker,
            root_id,
            root_cert,
            alt_gun,
            alt_root_id,
        }
    })
}

/// `signers`: delegations `targets/releases`, `targets/alice` (plain ECDSA public key) and
/// `targets/bob` (x509 certificate).
///
/// * `v1`: the registry serves A; `targets/releases` and `targets/alice` signed A, `targets`
///   signed C (another digest) for `v1`.
/// * `both`: the registry serves A; `targets/alice` and `targets/bob` signed A.
struct SignersRepo {
    st: Stack,
    gun: String,
    a: String,
    c: String,
    root_id: String,
    alice_spki: String,
    alice_id: String,
    bob_cert: String,
    bob_spki: String,
    releases_id: String,
}

impl SignersRepo {
    fn image(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.gun)
    }

    /// Verify spec for `<gun>` pinning the root by key ID, with `signers` (JSON list) if given.
    fn spec(&self, signers: Option<Value>) -> Value {
        let mut spec = verify_spec(
            &self.st,
            &[&self.gun],
            &self.st.notary_url,
            json!([{"keyID": self.root_id}]),
        );
        if let Some(s) = signers {
            spec["signers"] = s;
        }
        spec
    }
}

fn signers_repo(st: &Stack) -> &'static SignersRepo {
    static SIGNERS: OnceLock<SignersRepo> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        let repo = common::unique_repo("check-e2e/signers");
        let gun = format!("{}/{repo}", st.registry_http);
        let (a, a_size) = push(st, &repo, "check-e2e signers A", "v1");
        push(st, &repo, "check-e2e signers A", "both");
        let (c, c_size) = image_digest("check-e2e signers C");
        let keys = tempfile::tempdir().expect("tempdir");
        let releases = delegation_key(keys.path(), "targets/releases", false);
        let alice = delegation_key(keys.path(), "targets/alice", false);
        let bob = delegation_key(keys.path(), "targets/bob", true);
        let client = st.notary_client(&st.notary_url);
        client.init(&gun);
        for k in [&releases, &alice, &bob] {
            client.add_delegation(&gun, k, None);
        }
        client.publish(&gun);
        client.sign_into(&gun, "targets", "v1", &c, c_size);
        client.sign_into(&gun, "targets/releases", "v1", &a, a_size);
        client.sign_into(&gun, "targets/alice", "v1", &a, a_size);
        client.sign_into(&gun, "targets/alice", "both", &a, a_size);
        client.sign_into(&gun, "targets/bob", "both", &a, a_size);
        // The set-up is what the tests think it is.
        let in_targets = client.list(&gun, Some("targets"));
        assert!(
            in_targets.iter().any(|l| l.name == "v1"
                && l.role == "targets"
                && Some(l.digest_hex.as_str()) == c.strip_prefix("sha256:")),
            "targets signed C for v1: {in_targets:?}"
        );
        let (root_id, _) = root_key(&client, &gun);
        SignersRepo {
            st: st.clone(),
            gun: gun.clone(),
            a,
            c,
            root_id,
            alice_spki: alice.spki_pem.clone(),
            alice_id: delegation_key_id(&client, &gun, "targets/alice"),
            bob_cert: bob.public_pem.clone(),
            bob_spki: bob.spki_pem.clone(),
            releases_id: delegation_key_id(&client, &gun, "targets/releases"),
        }
    })
}

// ------------------------------------------------------------------ 1-3: the basic verdicts

/// Scenario 1: A tag signed in `targets` is admitted with the registry's digest, signer `targets`
/// and the deciding policy `ns/name`.
#[test]
fn signed_tag_is_admitted_with_registry_digest() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "shop", "signed", &m.spec());
    let image = m.image(":v1");
    let served = common::registry_digest(&image, false, None, None);
    assert_eq!(served, m.a);
    table::run(&[
        Case::check("signed tag", &[&p], "shop", &[&image])
            .code(0)
            .result(
                Want::admitted(&[&image])
                    .eq("image", image.as_str())
                    .eq("reference", image.as_str())
                    .eq("digest", served.as_str())
                    .eq("signers", json!(["targets"]))
                    .eq("policy", "shop/signed")
                    .eq("action", "Verify")
                    .eq("mode", "Enforce")
                    .eq("verified", true)
                    .eq("verdict", "ADMITTED"),
            ),
        Case::check("signed tag, text", &[&p], "shop", &[&image]).text(&["ADMITTED"]),
    ]);
}

/// Scenario 2: An unsigned tag is rejected (exit 1) saying the tag is not signed.
#[test]
fn unsigned_tag_is_rejected() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "unsigned", &m.spec());
    let image = m.image(":v2");
    table::run(&[
        Case::check("unsigned tag", &[&p], "default", &[&image])
            .code(1)
            .result(
                Want::rejected(&["v2", "not signed", "default/unsigned"])
                    .eq("verified", false)
                    .eq("verdict", "REJECTED")
                    // The resolved digest is reported.
                    .eq("digest", m.a.as_str())
                    .eq("signers", json!([])),
            ),
        Case::check("unsigned tag, text", &[&p], "default", &[&image]).text(&["REJECTED"]),
    ]);
}

/// Scenario 3: A tag re-pushed after signing is rejected: signed for A, the registry serves B.
#[test]
fn tag_repushed_after_signing_is_rejected() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "moved", &m.spec());
    let image = m.image(":moved");
    assert_eq!(common::registry_digest(&image, false, None, None), m.b);
    table::run(&[Case::check("re-pushed tag", &[&p], "default", &[&image])
        .code(1)
        .result(
            Want::rejected(&["moved"])
                .digest_after("signed for", &m.a)
                .digest_after("serves", &m.b)
                .eq("digest", m.b.as_str()),
        )]);
}

/// The digest checked is the one a kubelet pulls: an OCI image index is verified by the index
/// digest, a Docker schema 2 manifest by its own digest.
#[test]
fn index_and_docker_manifests_are_verified_by_the_pulled_digest() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "manifests", &m.spec());
    let images = [m.image(":index"), m.image(":docker")];
    let mut wants = Vec::new();
    for (image, signed) in images.iter().zip([&m.index, &m.docker]) {
        assert_eq!(common::registry_digest(image, false, None, None), *signed);
        wants.push(
            Want::any()
                .eq("digest", signed.as_str())
                .eq("signers", json!(["targets"])),
        );
    }
    table::run(&[Case::check(
        "index and schema 2",
        &[&p],
        "default",
        &[&images[0], &images[1]],
    )
    .code(0)
    .results(wants)]);
}

/// `notary.gun` overrides the repository whose trust data is read.
#[test]
fn notary_gun_override() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let image = m.image(":v1");
    let mut spec = m.spec();
    spec["notary"]["gun"] = json!(m.alt_gun);
    spec["trustRoots"] = json!([{"keyID": m.alt_root_id}]);
    let p = files.policy("alt.yaml", "default", "alt", &spec);
    spec["notary"].as_object_mut().unwrap().remove("gun");
    let no_override = files.policy("no-override.yaml", "default", "no-override", &spec);
    spec["notary"]["gun"] = json!(m.alt_gun);
    spec["trustRoots"] = json!([{"keyID": m.root_id}]);
    let mixed = files.policy("mixed.yaml", "default", "mixed", &spec);
    let unpinned = Want::rejected(&["root", "pinned"]);
    table::run(&[
        Case::check("alt GUN and its root", &[&p], "default", &[&image])
            .code(0)
            .result(Want::any().eq("digest", m.a.as_str())),
        Case::check(
            "v2 is signed in neither GUN",
            &[&p],
            "default",
            &[&m.image(":v2")],
        )
        .code(1),
        Case::check(
            "alt root, no override",
            &[&no_override],
            "default",
            &[&image],
        )
        .code(1)
        .result(unpinned.clone()),
        Case::check("image root, alt GUN", &[&mixed], "default", &[&image])
            .code(1)
            .result(unpinned),
    ]);
}

// ------------------------------------------------------------------ 4: trust roots

/// Scenario 4: A pinned root of another repository is not trusted.
#[test]
fn wrong_pinned_root_is_rejected() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let other = signers_repo(&st);
    assert_ne!(m.root_id, other.root_id);
    let files = Files::new();
    let mut spec = m.spec();
    spec["trustRoots"] = json!([{"keyID": other.root_id}]);
    let wrong = files.policy("p.yaml", "default", "wrong-root", &spec);
    // Two pins, one right: threshold 1 is met, threshold 2 is not.
    spec["trustRoots"] = json!([{"keyID": other.root_id}, {"keyID": m.root_id}]);
    let two = files.policy("two.yaml", "default", "two-roots", &spec);
    spec["trustRootThreshold"] = json!(2);
    let two_of_two = files.policy("two-of-two.yaml", "default", "two-of-two", &spec);
    let v1 = m.image(":v1");
    table::run(&[
        Case::check("another repository's root", &[&wrong], "default", &[&v1])
            .code(1)
            .result(Want::rejected(&["root", "pinned"]).eq("signers", json!([]))),
        Case::check("one of two pins, threshold 1", &[&two], "default", &[&v1]).code(0),
        Case::check(
            "one of two pins, threshold 2",
            &[&two_of_two],
            "default",
            &[&v1],
        )
        .code(1)
        .result(Want::rejected(&["root", "pinned"])),
    ]);
}

/// Pinning the root by PEM: the certificate from root.json, and the public key `inspect`
/// prints; another repository's certificate is rejected.
#[test]
fn pinned_root_by_pem() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let ca = st.ca.to_str().unwrap();
    let v1 = m.image(":v1");
    let inspect = trustgate(
        &[
            "inspect",
            "--notary-url",
            &st.notary_url,
            "--ca",
            ca,
            "--output",
            "json",
            &v1,
        ],
        &[],
    );
    inspect.expect_code(0);
    let doc = inspect.json();
    assert_eq!(doc["root"]["keys"][0]["keyID"], m.root_id.as_str());
    let public_key = doc["root"]["keys"][0]["publicKey"]
        .as_str()
        .expect("publicKey")
        .to_owned();
    // The certificate of another repository's root.
    let client = st.notary_client(&st.notary_url);
    let other_gun = format!(
        "{}/{}",
        st.registry_http,
        common::unique_repo("check-e2e/pem")
    );
    client.init(&other_gun);
    let (_, other_cert) = root_key(&client, &other_gun);
    let pinned = |file: &str, name: &str, pem: &str| {
        let mut spec = m.spec();
        spec["trustRoots"] = json!([{"publicKey": pem}]);
        files.policy(file, "default", name, &spec)
    };
    let (cert, key) = (
        pinned("pem0.yaml", "pem", &m.root_cert),
        pinned("pem1.yaml", "pem", &public_key),
    );
    let other = pinned("other.yaml", "other-pem", &other_cert);
    let by_targets = Want::any().eq("signers", json!(["targets"]));
    table::run(&[
        Case::check("root certificate", &[&cert], "default", &[&v1])
            .code(0)
            .result(by_targets.clone()),
        Case::check("public key from inspect", &[&key], "default", &[&v1])
            .code(0)
            .result(by_targets),
        Case::check(
            "another repository's certificate",
            &[&other],
            "default",
            &[&v1],
        )
        .code(1)
        .result(Want::rejected(&["root", "pinned"])),
    ]);
}

// ------------------------------------------------------------------ 5-7: signers

/// Scenario 5: Without `signers`, `targets/releases` wins over `targets` (docker's lookup).
#[test]
fn releases_signature_wins_without_signers() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    assert_ne!(s.a, s.c);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "releases", &s.spec(None));
    table::run(&[
        Case::check("no signers", &[&p], "default", &[&s.image(":v1")])
            .code(0)
            .result(
                Want::admitted(&[])
                    .eq("signers", json!(["targets/releases"]))
                    .eq("digest", s.a.as_str()),
            ),
    ]);
}

/// Scenario 6: Listed signers: thresholds, `required`, pinned signer keys.
#[test]
fn signers_threshold_required_and_pinned_keys() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    let files = Files::new();
    let v1 = s.image(":v1");
    let both = s.image(":both");
    let alice_bob = json!([{"name": "alice"}, {"name": "bob"}]);
    let mut spec = s.spec(Some(alice_bob.clone()));
    spec["signerThreshold"] = json!(1);
    let t1 = files.policy("t1.yaml", "default", "t1", &spec);
    spec["signerThreshold"] = json!(2);
    let t2 = files.policy("t2.yaml", "default", "t2", &spec);
    // The default threshold is every listed signer.
    let mut all = s.spec(Some(alice_bob));
    let all_p = files.policy("all.yaml", "default", "all", &all);
    let mut req = s.spec(Some(
        json!([{"name": "alice"}, {"name": "bob", "required": true}]),
    ));
    req["signerThreshold"] = json!(1);
    let req = files.policy("req.yaml", "default", "req", &req);
    // Pinned signer keys: alice's own key (PEM public key), bob's certificate.
    all["signers"] = json!([
        {"name": "alice", "publicKey": s.alice_spki},
        {"name": "bob", "publicKey": s.bob_cert},
    ]);
    let pinned = files.policy("pinned.yaml", "default", "pinned", &all);
    let alice_only = s.spec(Some(json!([{"name": "alice", "publicKey": s.alice_spki}])));
    let alice = files.policy("alice.yaml", "default", "alice", &alice_only);
    let wrong = s.spec(Some(json!([{"name": "alice", "publicKey": s.bob_spki}])));
    let wrong = files.policy("wrong.yaml", "default", "wrong-pin", &wrong);
    let signers = |names: Value| Want::any().eq("signers", names);
    table::run(&[
        Case::check("threshold 1: alice signed v1", &[&t1], "default", &[&v1])
            .code(0)
            .result(signers(json!(["targets/alice"])).eq("digest", s.a.as_str())),
        Case::check(
            "threshold 2: the reason says who signed",
            &[&t2],
            "default",
            &[&v1],
        )
        .code(1)
        .result(
            Want::rejected(&["1 of the 2", "targets/alice", "bob"])
                .eq("signers", json!(["targets/alice"])),
        ),
        Case::check(
            "default threshold: both signed `both`",
            &[&all_p],
            "default",
            &[&both],
        )
        .code(0)
        .result(signers(json!(["targets/alice", "targets/bob"]))),
        Case::check(
            "default threshold: only alice signed v1",
            &[&all_p],
            "default",
            &[&v1],
        )
        .code(1)
        .result(Want::rejected(&["1 of the 2"])),
        Case::check(
            "bob required: he did not sign v1",
            &[&req],
            "default",
            &[&v1],
        )
        .code(1)
        .result(Want::rejected(&["required", "bob"])),
        Case::check(
            "bob required: he signed `both`",
            &[&req],
            "default",
            &[&both],
        )
        .code(0),
        Case::check("pinned signer keys", &[&pinned], "default", &[&both])
            .code(0)
            .result(signers(json!(["targets/alice", "targets/bob"]))),
        Case::check("alice pinned to her key", &[&alice], "default", &[&v1])
            .code(0)
            .result(signers(json!(["targets/alice"]))),
        Case::check(
            "alice pinned to a key not hers",
            &[&wrong],
            "default",
            &[&v1],
        )
        .code(1)
        .result(Want::rejected(&["alice", "pinned key"]).eq("signers", json!([]))),
    ]);
}

/// Scenario 7: A revoked key no longer counts, whether revoked by PEM or by key ID.
#[test]
fn revoked_key_does_not_count() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    let files = Files::new();
    let mut cases = Vec::new();
    for (i, (how, revoked)) in [("PEM", &s.alice_spki), ("key ID", &s.alice_id)]
        .into_iter()
        .enumerate()
    {
        let mut spec = s.spec(Some(json!([{"name": "alice"}, {"name": "bob"}])));
        spec["signerThreshold"] = json!(1);
        spec["revokedKeys"] = json!([revoked]);
        let p = files.policy(&format!("revoked{i}.yaml"), "default", "revoked", &spec);
        cases.push(
            Case::check(
                &format!("alice revoked by {how}"),
                &[&p],
                "default",
                &[&s.image(":v1")],
            )
            .code(1)
            .result(Want::rejected(&["0 of the 1", "alice"]).eq("signers", json!([]))),
        );
        // bob's signature still counts where he signed.
        cases.push(
            Case::check(
                &format!("alice revoked by {how}, bob signed"),
                &[&p],
                "default",
                &[&s.image(":both")],
            )
            .code(0)
            .result(Want::any().eq("signers", json!(["targets/bob"]))),
        );
    }
    // Revoking the releases key: `targets/releases` no longer vouches for v1, and `targets`
    // signed another digest.
    let mut spec = s.spec(None);
    spec["revokedKeys"] = json!([s.releases_id]);
    let p = files.policy("releases.yaml", "default", "no-releases", &spec);
    cases.push(
        Case::check("releases key revoked", &[&p], "default", &[&s.image(":v1")])
            .code(1)
            .result(Want::rejected(&[]).ne("signers", json!(["targets/releases"]))),
    );
    table::run(&cases);
}

// ------------------------------------------------------------------ 8: rotations

/// Scenario 8: Root rotation with the OLD root pinned, then a targets key rotation and a new
/// signature.
#[test]
fn rotations_keep_the_pinned_root_valid() {
    let Some(st) = common::stack() else { return };
    let repo = common::unique_repo("check-e2e/rotate");
    let gun = format!("{}/{repo}", st.registry_http);
    let (a, a_size) = push(&st, &repo, "check-e2e rotate A", "v1");
    let client = st.notary_client(&st.notary_url);
    client.sign(&gun, "v1", &a, a_size);
    let (old_root, _) = root_key(&client, &gun);
    let files = Files::new();
    let spec = verify_spec(&st, &[&gun], &st.notary_url, json!([{"keyID": old_root}]));
    let p = files.policy("old.yaml", "default", "old-root", &spec);
    let v1 = format!("{gun}:v1");
    table::run(&[Case::check("before the rotations", &[&p], "default", &[&v1]).code(0)]);

    client.rotate(&gun, "root", false);
    let root = published_root(&st, &gun);
    let (new_root, _) = root_key_of(&root);
    assert_ne!(new_root, old_root, "the root key changed");
    assert_eq!(root["signed"]["version"], 2, "{root:#}");
    let spec_new = verify_spec(&st, &[&gun], &st.notary_url, json!([{"keyID": new_root}]));
    let p_new = files.policy("new.yaml", "default", "new-root", &spec_new);
    table::run(&[
        Case::check("root rotated, old root pinned", &[&p], "default", &[&v1])
            .code(0)
            .result(Want::any().eq("signers", json!(["targets"]))),
        Case::check(
            "root rotated, new root pinned",
            &[&p_new],
            "default",
            &[&v1],
        )
        .code(0),
    ]);

    client.rotate(&gun, "targets", false);
    let (b, b_size) = push(&st, &repo, "check-e2e rotate B", "v2");
    client.addhash(&gun, "v2", &b, b_size);
    let v2 = format!("{gun}:v2");
    table::run(&[Case::check(
        "targets key rotated, new signature",
        &[&p],
        "default",
        &[&v1, &v2],
    )
    .code(0)
    .results(vec![
        Want::any().eq("digest", a.as_str()),
        Want::any().eq("digest", b.as_str()),
    ])]);
}

// ------------------------------------------------------------------ 9-11: modes, actions, default

/// Scenario 9: Warn and Audit admit an unsigned tag (exit 0) without calling it verified.
#[test]
fn warn_and_audit_admit_unsigned() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let image = m.image(":v2");
    let mut cases = Vec::new();
    for (mode, verdict) in [("Warn", "WARNED"), ("Audit", "AUDITED")] {
        let mut spec = m.spec();
        spec["mode"] = json!(mode);
        let p = files.policy(&format!("{mode}.yaml"), "default", "modes", &spec);
        cases.extend([
            Case::check(&format!("{mode}: unsigned"), &[&p], "default", &[&image])
                .code(0)
                .result(
                    Want::admitted(&["not signed", mode])
                        .eq("verified", false)
                        .eq("mode", mode)
                        .eq("verdict", verdict),
                ),
            Case::check(
                &format!("{mode}: unsigned, text"),
                &[&p],
                "default",
                &[&image],
            )
            .text(&[verdict]),
            // A signed tag under the same mode is plainly admitted.
            Case::check(
                &format!("{mode}: signed"),
                &[&p],
                "default",
                &[&m.image(":v1")],
            )
            .code(0)
            .result(Want::any().eq("verdict", "ADMITTED")),
        ]);
    }
    table::run(&cases);
}

/// Scenario 10: Action Allow admits without contacting Notary (its URL is a closed port); Deny
/// rejects.
#[test]
fn actions_allow_and_deny() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let dead = format!("https://127.0.0.1:{}", closed_port());
    let mut spec = m.spec();
    spec["notary"]["url"] = json!(dead);
    spec["action"] = json!("Allow");
    let allow = files.policy("allow.yaml", "default", "allow", &spec);
    spec["action"] = json!("Verify");
    let verify = files.policy("verify.yaml", "default", "verify-dead", &spec);
    spec["action"] = json!("Deny");
    let deny = files.policy("deny.yaml", "default", "deny", &spec);
    let (v1, v2) = (m.image(":v1"), m.image(":v2"));
    table::run(&[
        Case::check("Allow", &[&allow], "default", &[&v2])
            .code(0)
            .result(
                Want::admitted(&["Allow"])
                    .eq("action", "Allow")
                    .eq("policy", "default/allow")
                    .eq("signers", json!([])),
            ),
        // The same URL with Verify fails: Allow really did not contact it.
        Case::check(
            "Verify against the same dead URL",
            &[&verify],
            "default",
            &[&v2],
        )
        .code(1),
        Case::check("Deny", &[&deny], "default", &[&v1])
            .code(1)
            .result(Want::rejected(&["Deny", "default/deny"]).eq("action", "Deny")),
        Case::check("Deny, text", &[&deny], "default", &[&v1]).text(&["REJECTED"]),
    ]);
}

/// Scenario 11: An image no policy matches gets the default action: Deny unless `--default-action
/// Allow`.
#[test]
fn unmatched_image_gets_the_default_action() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "main-only", &m.spec());
    let unmatched = format!("{}/{}-other:v1", st.registry_http, m.repo);
    let images = [unmatched.as_str(), "busybox"];
    let denied = |reference: &str| {
        Want::rejected(&["no policy"])
            .eq("policy", Value::Null)
            .eq("reference", reference)
            .eq("action", "Deny")
    };
    let allowed = Want::admitted(&["no policy"])
        .eq("policy", Value::Null)
        .eq("action", "Allow");
    let allow = ["--default-action", "Allow"];
    table::run(&[
        Case::check("default Deny", &[&p], "default", &images)
            .code(1)
            .results(vec![
                denied(&unmatched),
                denied("docker.io/library/busybox:latest"),
            ]),
        Case::check("--default-action Allow", &[&p], "default", &images)
            .flags(&allow)
            .code(0)
            .results(vec![allowed.clone(), allowed]),
        Case::check(
            "--default-action Allow, text",
            &[&p],
            "default",
            &["busybox"],
        )
        .flags(&allow)
        .text(&["ADMITTED"]),
    ]);
}

// ------------------------------------------------------------------ 12: digests

/// Scenario 12: Digest-only and tag@digest references.
#[test]
fn digest_references() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "digests", &m.spec());
    let signed = m.image(&format!("@{}", m.a));
    let one = |name: &str, image: &str| Case::check(name, &[&p], "default", &[image]);
    table::run(&[
        one("signed digest", &signed).code(0).result(
            Want::any()
                .eq("digest", m.a.as_str())
                .eq("reference", signed.as_str())
                .eq("signers", json!(["targets"])),
        ),
        // B is in the registry (as `moved`) but signed under no tag.
        one("unsigned digest", &m.image(&format!("@{}", m.b)))
            .code(1)
            .result(Want::rejected(&["not signed"]).eq("digest", m.b.as_str())),
        one("tag@signed digest", &m.image(&format!(":v1@{}", m.a)))
            .code(0)
            .result(Want::any().eq("digest", m.a.as_str())),
        one("tag@another digest", &m.image(&format!(":v1@{}", m.b)))
            .code(1)
            .result(Want::rejected(&["v1"]).eq("digest", m.b.as_str())),
        // v2 carries A in the registry, but the tag v2 itself was never signed.
        one(
            "unsigned tag@signed digest",
            &m.image(&format!(":v2@{}", m.a)),
        )
        .code(1)
        .result(Want::rejected(&["v2", "not signed"])),
    ]);
}

// ------------------------------------------------------------------ 13-14: the Notary server

/// Scenario 13: An unreachable Notary server fails closed, quickly, naming the server; a server
/// that accepts connections but never answers is cut off by `--deadline`.
#[test]
fn unreachable_notary_fails_closed_quickly() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let port = closed_port();
    let mut spec = m.spec();
    spec["notary"]["url"] = json!(format!("https://127.0.0.1:{port}"));
    let closed = files.policy("closed.yaml", "default", "closed", &spec);
    // A black hole: the kernel accepts the connection, nobody ever answers the TLS handshake.
    let hole = black_hole();
    spec["notary"]["url"] = json!(format!("https://{}", hole.local_addr().unwrap()));
    let hole_p = files.policy("hole.yaml", "default", "hole", &spec);
    let v1 = m.image(":v1");
    table::run(&[
        Case::check("closed port", &[&closed], "default", &[&v1])
            .flags(&["--deadline", "3"])
            .code(1)
            .within(Duration::ZERO, Duration::from_secs(10))
            .result(
                Want::rejected(&[&format!("127.0.0.1:{port}")])
                    // The tag was still resolved.
                    .eq("digest", m.a.as_str()),
            ),
        Case::check("black hole", &[&hole_p], "default", &[&v1])
            .flags(&["--deadline", "3"])
            .code(1)
            .within(Duration::from_millis(2900), Duration::from_secs(10))
            .result(Want::rejected(&[])),
    ]);
    drop(hole);
}

/// The TLS Notary server is trusted only with the policy's `caBundle`.
#[test]
fn notary_tls_needs_the_ca_bundle() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let mut spec = m.spec();
    spec["notary"].as_object_mut().unwrap().remove("caBundle");
    let p = files.policy("no-ca.yaml", "default", "no-ca", &spec);
    let host = st.notary_url.trim_start_matches("https://");
    table::run(&[
        Case::check("no caBundle", &[&p], "default", &[&m.image(":v1")])
            .code(1)
            .result(Want::rejected(&[host])),
    ]);
}

/// notary-server with the local (ed25519) trust service, over plain HTTP.
#[test]
fn local_trust_service_over_http() {
    let Some(st) = common::stack() else { return };
    let repo = common::unique_repo("check-e2e/local");
    let gun = format!("{}/{repo}", st.registry_http);
    let (a, a_size) = push(&st, &repo, "check-e2e local A", "v1");
    push(&st, &repo, "check-e2e local A", "v2");
    let client = st.notary_client(&st.notary_local_url);
    client.sign(&gun, "v1", &a, a_size);
    let (root_id, _) = root_key(&client, &gun);
    let files = Files::new();
    let mut spec = verify_spec(
        &st,
        &[&gun],
        &st.notary_local_url,
        json!([{"keyID": root_id}]),
    );
    spec["notary"].as_object_mut().unwrap().remove("caBundle");
    let p = files.policy("p.yaml", "default", "local", &spec);
    let images = ["v1", "v2", "v3"].map(|t| format!("{gun}:{t}"));
    table::run(&[Case::check(
        "signed, unsigned, absent",
        &[&p],
        "default",
        &[&images[0], &images[1], &images[2]],
    )
    .code(1)
    .results(vec![
        Want::admitted(&[]).eq("digest", a.as_str()),
        Want::rejected(&["v2", "not signed"]),
        // A tag the registry does not have fails closed, with no digest.
        Want::rejected(&["v3", "not found"]).eq("digest", Value::Null),
    ])]);
}

/// Scenario 14: Token auth on the Notary server: NOTARY_AUTH, anonymous pull, the flags, a wrong
/// password.
#[test]
fn notary_token_auth() {
    let Some(st) = common::stack() else { return };
    let repo = common::unique_repo("check-e2e/token");
    let gun = format!("{}/{repo}", st.registry_http);
    let (a, a_size) = push(&st, &repo, "check-e2e token A", "v1");
    let client = st.notary_client(&st.notary_token_url);
    client.sign(&gun, "v1", &a, a_size);
    let (root_id, _) = root_key(&client, &gun);
    let files = Files::new();
    let spec = verify_spec(
        &st,
        &[&gun],
        &st.notary_token_url,
        json!([{"keyID": root_id}]),
    );
    let p = files.policy("p.yaml", "default", "token", &spec);
    let image = format!("{gun}:v1");
    let (user, pass) = (st.notary_user.as_str(), st.notary_password.as_str());
    let scope = format!("repository:{gun}:pull");
    let token = |name: &str| Case::check(name, &[&p], "default", &[&image]);

    let before = st.token_requests_for_scope(&scope);
    let auth = B64.encode(format!("{user}:{pass}"));
    table::run(&[token("NOTARY_AUTH")
        .env("NOTARY_AUTH", &auth)
        .code(0)
        .result(Want::any().eq("signers", json!(["targets"])))]);
    assert!(
        st.token_requests_for_scope(&scope) > before,
        "a token was requested for {scope}"
    );

    let wrong = B64.encode(format!("{user}:not-{pass}"));
    table::run(&[
        // Anonymous pull is allowed by the test token server.
        token("anonymous")
            .code(0)
            .result(Want::any().eq("digest", a.as_str())),
        token("--notary-user/--notary-password")
            .flags(&["--notary-user", user, "--notary-password", pass])
            .code(0),
        // The reason says the server refused the credentials, without the password.
        token("wrong password")
            .env("NOTARY_AUTH", &wrong)
            .code(1)
            .result(
                Want::rejected(&[])
                    .reason_any(&["unauthorized", "refused"])
                    .reason_lacks(&[&format!("not-{pass}")]),
            ),
    ]);
}

// ------------------------------------------------------------------ 15: precedence

/// Scenario 15: Namespaced TrustPolicies come before ClusterTrustPolicies, however specific the
/// cluster pattern; among cluster policies the most specific pattern wins.
#[test]
fn namespaced_policies_come_before_cluster_policies() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let deny_all = json!({"images": ["**"], "action": "Deny"});
    let exact_allow = json!({"images": [m.image(":v2")], "action": "Allow"});
    let registry_wide = format!("{}/**", st.registry_http);
    let mut shop = m.spec();
    shop["images"] = json!([registry_wide]);
    // The cluster policies in one multi-document file, the namespaced one in another.
    let cluster = files.write(
        "cluster.yaml",
        &yaml_docs(&[
            policy_doc("deny-all", None, &deny_all),
            policy_doc("exact-allow", None, &exact_allow),
        ]),
    );
    let ns = files.policy("shop.yaml", "shop", "verify", &shop);
    // The same through --policy-dir, and a TrustPolicy without namespace is in `default`.
    let dir = files.dir.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&cluster, dir.join("a-cluster.yaml")).unwrap();
    let mut no_ns = policy_doc("verify", None, &shop);
    no_ns["kind"] = json!("TrustPolicy");
    std::fs::write(dir.join("b-default.yml"), yaml_docs(&[no_ns])).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    let dir_arg = dir.to_str().unwrap();
    let (v1, v2) = (m.image(":v1"), m.image(":v2"));
    let both: [&Path; 2] = [&cluster, &ns];
    table::run(&[
        Case::check("namespace shop", &both, "shop", &[&v1, &v2])
            .code(1)
            .results(vec![
                Want::admitted(&[])
                    .eq("policy", "shop/verify")
                    .eq("signers", json!(["targets"])),
                // The cluster policy naming v2 exactly does not beat the namespaced
                // `<registry>/**`.
                Want::rejected(&["not signed"]).eq("policy", "shop/verify"),
            ]),
        Case::check("namespace other", &both, "other", &[&v1, &v2])
            .code(1)
            .results(vec![
                Want::rejected(&["Deny"])
                    .eq("policy", "deny-all")
                    .eq("action", "Deny"),
                Want::admitted(&[])
                    .eq("policy", "exact-allow")
                    .eq("action", "Allow"),
            ]),
        Case::raw(
            "--policy-dir, no namespace",
            &["check", "--policy-dir", dir_arg, "--output", "json", &v1],
        )
        .code(0)
        .result(Want::any().eq("policy", "default/verify")),
        Case::raw(
            "--policy-dir, namespace shop",
            &[
                "check",
                "--policy-dir",
                dir_arg,
                "--namespace",
                "shop",
                "--output",
                "json",
                &v1,
            ],
        )
        .code(1)
        .result(Want::any().eq("policy", "deny-all")),
    ]);
}

// ------------------------------------------------------------------ 16: configuration errors

/// Scenario 16: Malformed policy files are configuration errors (exit 2) naming the file.
#[test]
fn malformed_policy_files_exit_2() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let image = m.image(":v1");
    let bad_yaml = files.write(
        "bad-yaml.yaml",
        "apiVersion: trustgate.dev/v1alpha1\nkind: [\n",
    );
    let mut spec = m.spec();
    spec.as_object_mut().unwrap().remove("trustRoots");
    let no_roots = files.policy("no-roots.yaml", "default", "no-roots", &spec);
    // Fields that parse as YAML but not as what they claim to be.
    let garbage_pem = "-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n";
    let mut bad_pem = m.spec();
    bad_pem["trustRoots"] = json!([{"publicKey": garbage_pem}]);
    let bad_pem = files.policy("bad-pem.yaml", "default", "bad-pem", &bad_pem);
    let mut bad_threshold = m.spec();
    bad_threshold["signers"] = json!([{"name": "alice"}]);
    bad_threshold["signerThreshold"] = json!(2);
    let bad_threshold = files.policy(
        "bad-threshold.yaml",
        "default",
        "bad-threshold",
        &bad_threshold,
    );
    let good = files.policy("good.yaml", "default", "good", &m.spec());
    let missing = files.dir.path().join("missing.yaml");
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let bad = |name: &str, file: &PathBuf, more: &[&str]| {
        Case::check(name, &[file], "default", &[&image])
            .code(2)
            .stderr_has(&[&path(file)])
            .stderr_has(more)
    };
    table::run(&[
        bad("bad YAML", &bad_yaml, &[]).stdout_empty(),
        bad("no trustRoots", &no_roots, &["trustRoots"]),
        bad("garbage PEM", &bad_pem, &["trustRoots[0].publicKey"]),
        bad(
            "threshold over the signers",
            &bad_threshold,
            &["signerThreshold"],
        ),
        // A good file next to a bad one still fails the whole run.
        Case::check("good and bad", &[&good, &no_roots], "default", &[&image])
            .code(2)
            .stderr_has(&[&path(&no_roots)]),
        bad("missing file", &missing, &[]),
        // Usage errors: no image, no policy.
        Case::raw("no image", &["check", "--policy", &path(&good)]).code(2),
        Case::raw("no policy", &["check", &image]).code(2),
    ]);
}

// ------------------------------------------------------------------ 17: several images

/// Scenario 17: Several images in one call: input order, exit 1 if any is rejected, 0 if none is.
#[test]
fn several_images_in_input_order() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let s = signers_repo(&st);
    let files = Files::new();
    let main_p = files.policy("main.yaml", "default", "main", &m.spec());
    let signers_p = files.policy("signers.yaml", "default", "signers", &s.spec(None));
    let images = [
        m.image(":v2"),
        m.image(":v1"),
        s.image(":v1"),
        m.image(&format!("@{}", m.a)),
        "busybox".to_owned(),
        m.image(":moved"),
    ];
    let allowed = [false, true, true, true, false, false];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut wants: Vec<Want> = images
        .iter()
        .zip(allowed)
        .map(|(image, ok)| Want::any().eq("image", image.as_str()).eq("allowed", ok))
        .collect();
    wants[2] = wants[2].clone().eq("signers", json!(["targets/releases"]));
    let ok = [&images[1], &images[2], &images[3]].map(String::as_str);
    let policies: [&Path; 2] = [&main_p, &signers_p];
    let main_p = main_p.to_str().unwrap();
    table::run(&[
        Case::check("one rejected: exit 1", &policies, "default", &refs)
            .code(1)
            .results(wants),
        Case::check("none rejected: exit 0", &policies, "default", &ok)
            .code(0)
            .results(vec![Want::any().eq("allowed", true); 3]),
        // Text output: one line per image, in input order.
        Case::raw(
            "text, in input order",
            &["check", "--policy", main_p, &images[1], &images[0]],
        )
        .code(1)
        .lines(vec![
            Line::Word("ADMITTED".into()),
            Line::Word("REJECTED".into()),
        ]),
    ]);
}

/// Scenario 17: The images are decided concurrently: three images stuck on a silent Notary server
/// take about one deadline, not three.
#[test]
fn several_images_are_decided_concurrently() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let hole = black_hole();
    let mut spec = m.spec();
    spec["notary"]["url"] = json!(format!("https://{}", hole.local_addr().unwrap()));
    let p = files.policy("hole.yaml", "default", "hole", &spec);
    let images = [m.image(":v1"), m.image(":v2"), m.image(":moved")];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let wants = images
        .iter()
        .map(|image| Want::rejected(&[]).eq("image", image.as_str()))
        .collect();
    table::run(&[
        Case::check("3 images, 2 s deadline each", &[&p], "default", &refs)
            .flags(&["--deadline", "2"])
            .code(1)
            .within(Duration::from_millis(1900), Duration::from_millis(4500))
            .results(wants),
    ]);
    drop(hole);
}

/// `check -f`: a manifest with a Deployment (signed init container, unsigned container), a
/// ConfigMap and a CronJob (signed) gives one result per image occurrence, with `object` and
/// `location`, and exits 1; the same manifest on stdin (`-f -`) gives the same results.
#[test]
fn check_f_decides_every_image_occurrence_of_a_manifest() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "shop", "signed", &m.spec());
    let (signed, unsigned) = (m.image(":v1"), m.image(":v2"));
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  template:
    spec:
      initContainers: [{{name: setup, image: "{signed}"}}]
      containers: [{{name: app, image: "{unsigned}"}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: shop}}
data: {{image: "{unsigned}"}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly}}
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{{name: job, image: "{signed}"}}]
"#
    );
    let path = files.write("manifest.yaml", &manifest);
    let (p, path) = (p.to_str().unwrap(), path.to_str().unwrap());
    let object = |kind: &str, ns: &str, name: &str| {
        Want::any()
            .eq("/object/kind", kind)
            .eq("/object/namespace", ns)
            .eq("/object/name", name)
    };
    let policy = ["check", "--policy", p, "--namespace", "shop"];
    table::run(&[
        Case::raw(
            "-f FILE",
            &[&policy[..], &["--output", "json", "-f", path]].concat(),
        )
        .code(1)
        .results(vec![
            object("Deployment", "shop", "web")
                .prefix("location", "spec.template.spec.initContainers[0]")
                .eq("image", signed.as_str())
                .eq("allowed", true),
            Want::any()
                .prefix("location", "spec.template.spec.containers[0]")
                .eq("image", unsigned.as_str())
                .eq("allowed", false)
                .eq("policy", "shop/signed"),
            // No namespace in the object: --namespace.
            object("CronJob", "shop", "nightly")
                .prefix(
                    "location",
                    "spec.jobTemplate.spec.template.spec.containers[0]",
                )
                .eq("allowed", true),
        ]),
        // The same manifest from stdin, text output: one line per occurrence.
        Case::raw("-f -, text", &[&policy[..], &["-f", "-"]].concat())
            .stdin(&manifest)
            .code(1)
            .lines(vec![
                Line::Prefix(
                    "ADMITTED Deployment shop/web spec.template.spec.initContainers[0]".into(),
                ),
                Line::Prefix(
                    "REJECTED Deployment shop/web spec.template.spec.containers[0]".into(),
                ),
                Line::Prefix("ADMITTED CronJob shop/nightly".into()),
            ]),
        Case::raw(
            "unreadable input",
            &["check", "--policy", p, "-f", "/nonexistent/m.yaml"],
        )
        .code(2),
    ]);
}

/// `check --pin`: a verified tag in its pinned form, `tag@<verified digest>` (JSON `pinned`, a
/// text `PINNED` line), as `serve`'s `/mutate` writes it; a verified digest reference as written;
/// an unsigned tag `null`. Without `--pin` there is no `pinned` field.
#[test]
fn check_pin_prints_the_pinned_reference() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "shop", "signed", &m.spec());
    let v1 = m.image(":v1");
    let by_digest = m.image(&format!("@{}", m.a));
    let unsigned = m.image(":v2");
    let pinned = format!("{v1}@{}", m.a);
    table::run(&[
        Case::check("--pin", &[&p], "shop", &[&v1, &by_digest, &unsigned])
            .flags(&["--pin"])
            .code(1)
            .results(vec![
                Want::any().eq("pinned", pinned.as_str()),
                Want::any().eq("pinned", by_digest.as_str()),
                Want::any().eq("pinned", Value::Null),
            ]),
        Case::check("no --pin", &[&p], "default", &[&v1]).result(Want::any().absent("pinned")),
        Case::raw(
            "--pin, text",
            &[
                "check",
                "--policy",
                p.to_str().unwrap(),
                "--namespace",
                "shop",
                "--pin",
                &v1,
            ],
        )
        .code(0)
        .lines(vec![
            Line::Prefix("ADMITTED ".into()),
            Line::Exact(format!("PINNED   {pinned}")),
        ]),
    ]);
}
