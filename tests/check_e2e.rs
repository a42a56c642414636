//! End-to-end tests of the `trustgate check` BINARY against the real stack of `e2e/stack.sh`:
//! images pushed with skopeo to the plain-HTTP registry, signed with the real notary CLI, policies
//! written as YAML files, and the command's exit status, JSON results and text verdicts checked
//! against the CLI reference and the decision rules (docs/).
//!
//! Run with `bash e2e/stack.sh up && TRUSTGATE_REQUIRE_STACK=1 cargo test --test check_e2e`
//! (skipped, with a `SKIP` line, when the stack is not up and the variable is not set).
//!
//! Two repositories are shared, read-only after their set-up, through `OnceLock`s: `main` (tags
//! signed in `targets`) and `signers` (`targets/releases`, `targets/alice`, `targets/bob`).
//! Tests that change trust data (rotations, token auth) make their own repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use common::scenario::delegation_key;
use common::{NotaryClient, Push, Stack};

// ------------------------------------------------------------------ running the binary

/// One run of the `trustgate` binary.
struct Run {
    /// What the command line was (for messages).
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// The whole JSON document of `--output json`.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.what, self.stdout, self.stderr
            )
        })
    }

    /// `results` of the JSON document.
    fn results(&self) -> Vec<Value> {
        self.json()["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no results array: {}", self.what, self.stdout))
            .clone()
    }

    /// The single result of a one-image run.
    fn one(&self) -> Value {
        let mut r = self.results();
        assert_eq!(r.len(), 1, "{}: {}", self.what, self.stdout);
        r.remove(0)
    }

    /// Asserts the exit status.
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "{}: exit status {} (want {code})\nstdout: {}\nstderr: {}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `trustgate ARGS` with `env` added; Notary credentials from the caller's environment
/// (`NOTARY_AUTH`, `NOTARY_USER`, `NOTARY_PASSWORD`) are removed so every run says what it uses.
fn trustgate(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.args(args)
        .env_remove("NOTARY_AUTH")
        .env_remove("NOTARY_USER")
        .env_remove("NOTARY_PASSWORD")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("spawn trustgate");
    let elapsed = start.elapsed();
    if std::env::var_os("CHECK_E2E_SHOW").is_some() {
        // `CHECK_E2E_SHOW=1 cargo test --test check_e2e -- --nocapture` shows every run.
        eprintln!(
            "$ trustgate {}  [exit {:?}, {elapsed:?}]\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Run {
        what: format!("trustgate {}", args.join(" ")),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    }
}

/// `trustgate check --policy P... --namespace NS --output json EXTRA... IMAGES...`.
fn check_with(
    policies: &[&Path],
    namespace: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    images: &[&str],
) -> Run {
    let mut args: Vec<String> = vec!["check".into()];
    for p in policies {
        args.push("--policy".into());
        args.push(p.to_str().expect("utf8 path").into());
    }
    args.extend(["--namespace".into(), namespace.into()]);
    args.extend(["--output".into(), "json".into()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(images.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    trustgate(&args, env)
}

/// `check_with` in namespace `default`, no extra flags or environment.
fn check(policy: &Path, images: &[&str]) -> Run {
    check_with(&[policy], "default", &[], &[], images)
}

/// The verdict word that starts the text output of a one-image `check`.
fn text_verdict(policies: &[&Path], namespace: &str, extra: &[&str], image: &str) -> String {
    let mut args: Vec<&str> = vec!["check"];
    for p in policies {
        args.push("--policy");
        args.push(p.to_str().expect("utf8 path"));
    }
    args.extend(["--namespace", namespace, "--output", "text"]);
    args.extend(extra);
    args.push(image);
    let run = trustgate(&args, &[]);
    let first = run.stdout.split_whitespace().next().unwrap_or_default();
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "{}: one line per image: {}",
        run.what,
        run.stdout
    );
    first.to_owned()
}

/// Asserts a result: `allowed`, and `reason` containing every one of `needles`.
#[track_caller]
fn assert_result(r: &Value, allowed: bool, needles: &[&str]) {
    assert_eq!(r["allowed"], json!(allowed), "allowed in {r:#}");
    let reason = r["reason"].as_str().expect("reason string");
    assert!(!reason.contains('\n'), "reason is one line: {reason:?}");
    for n in needles {
        assert!(reason.contains(n), "reason lacks {n:?}: {reason}");
    }
}

/// Whether `reason` names `digest` (in full, or abbreviated to at least 12 hex digits) right
/// after some occurrence of `after`.
fn names_digest_after(reason: &str, after: &str, digest: &str) -> bool {
    let full = digest.strip_prefix("sha256:").expect("sha256 digest");
    reason.match_indices(after).any(|(i, _)| {
        let rest = &reason[i + after.len()..];
        let Some(rest) = rest.trim_start().strip_prefix("sha256:") else {
            return false;
        };
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        hex.len() >= 12 && full.starts_with(&hex)
    })
}

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

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
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
            registry: &st.registry_http,
            repo,
            tag,
            tls_verify: false,
            cert_dir: None,
            creds: None,
            format_v2s2: v2s2,
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
    let run = check_with(&[&p], "shop", &[], &[], &[&image]);
    run.expect_code(0);
    let r = run.one();
    let served = common::registry_digest(&image, false, None, None);
    assert_eq!(served, m.a);
    assert_eq!(r["image"], image.as_str());
    assert_eq!(r["reference"], image.as_str());
    assert_eq!(r["digest"], served.as_str());
    assert_eq!(r["signers"], json!(["targets"]));
    assert_eq!(r["policy"], "shop/signed");
    assert_eq!(r["action"], "Verify");
    assert_eq!(r["mode"], "Enforce");
    assert_eq!(r["verified"], true);
    assert_eq!(r["verdict"], "ADMITTED");
    assert_result(&r, true, &[&image]);
    assert_eq!(text_verdict(&[&p], "shop", &[], &image), "ADMITTED");
}

/// Scenario 2: An unsigned tag is rejected (exit 1) saying the tag is not signed.
#[test]
fn unsigned_tag_is_rejected() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "unsigned", &m.spec());
    let image = m.image(":v2");
    let run = check(&p, &[&image]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["v2", "not signed", "default/unsigned"]);
    assert_eq!(r["verified"], false);
    assert_eq!(r["verdict"], "REJECTED");
    assert_eq!(r["digest"], m.a.as_str(), "the resolved digest is reported");
    assert_eq!(r["signers"], json!([]));
    assert_eq!(text_verdict(&[&p], "default", &[], &image), "REJECTED");
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
    let run = check(&p, &[&image]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["moved"]);
    let reason = r["reason"].as_str().unwrap();
    assert!(
        names_digest_after(reason, "signed for", &m.a),
        "reason names the signed digest {}: {reason}",
        m.a
    );
    assert!(
        names_digest_after(reason, "serves", &m.b),
        "reason names the served digest {}: {reason}",
        m.b
    );
    assert_eq!(r["digest"], m.b.as_str());
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
    let run = check(&p, &[&images[0], &images[1]]);
    run.expect_code(0);
    let r = run.results();
    for (res, (image, signed)) in r.iter().zip(images.iter().zip([&m.index, &m.docker])) {
        assert_eq!(common::registry_digest(image, false, None, None), *signed);
        assert_eq!(res["digest"], signed.as_str(), "{res:#}");
        assert_eq!(res["signers"], json!(["targets"]));
    }
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
    let run = check(&p, &[&image]);
    run.expect_code(0);
    assert_eq!(run.one()["digest"], m.a.as_str());
    // v2 is signed in neither GUN.
    check(&p, &[&m.image(":v2")]).expect_code(1);
    // Without the override the alt root does not fit the image's own GUN ...
    spec.as_object_mut().unwrap()["notary"]
        .as_object_mut()
        .unwrap()
        .remove("gun");
    let p = files.policy("no-override.yaml", "default", "no-override", &spec);
    let run = check(&p, &[&image]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["root", "pinned"]);
    // ... and the image's root does not fit the alt GUN.
    spec["notary"]["gun"] = json!(m.alt_gun);
    spec["trustRoots"] = json!([{"keyID": m.root_id}]);
    let p = files.policy("mixed.yaml", "default", "mixed", &spec);
    let run = check(&p, &[&image]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["root", "pinned"]);
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
    let p = files.policy("p.yaml", "default", "wrong-root", &spec);
    let run = check(&p, &[&m.image(":v1")]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["root", "pinned"]);
    assert_eq!(r["signers"], json!([]));

    // Two pins, one right: threshold 1 is met, threshold 2 is not.
    spec["trustRoots"] = json!([{"keyID": other.root_id}, {"keyID": m.root_id}]);
    let p = files.policy("two.yaml", "default", "two-roots", &spec);
    check(&p, &[&m.image(":v1")]).expect_code(0);
    spec["trustRootThreshold"] = json!(2);
    let p = files.policy("two-of-two.yaml", "default", "two-of-two", &spec);
    let run = check(&p, &[&m.image(":v1")]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["root", "pinned"]);
}

/// Pinning the root by PEM: the certificate from root.json, and the public key `inspect`
/// prints; another repository's certificate is rejected.
#[test]
fn pinned_root_by_pem() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let ca = st.ca.to_str().unwrap();
    let inspect = trustgate(
        &[
            "inspect",
            "--notary-url",
            &st.notary_url,
            "--ca",
            ca,
            "--output",
            "json",
            &m.image(":v1"),
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
    for (i, pem) in [&m.root_cert, &public_key].into_iter().enumerate() {
        let mut spec = m.spec();
        spec["trustRoots"] = json!([{"publicKey": pem}]);
        let p = files.policy(&format!("pem{i}.yaml"), "default", "pem", &spec);
        let run = check(&p, &[&m.image(":v1")]);
        run.expect_code(0);
        assert_eq!(run.one()["signers"], json!(["targets"]));
    }
    // The certificate of another repository's root.
    let client = st.notary_client(&st.notary_url);
    let other_gun = format!(
        "{}/{}",
        st.registry_http,
        common::unique_repo("check-e2e/pem")
    );
    client.init(&other_gun);
    let (_, other_cert) = root_key(&client, &other_gun);
    let mut spec = m.spec();
    spec["trustRoots"] = json!([{"publicKey": other_cert}]);
    let p = files.policy("other.yaml", "default", "other-pem", &spec);
    let run = check(&p, &[&m.image(":v1")]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["root", "pinned"]);
}

// ------------------------------------------------------------------ 5-7: signers

/// Scenario 5: Without `signers`, `targets/releases` wins over `targets` (docker's lookup).
#[test]
fn releases_signature_wins_without_signers() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    let files = Files::new();
    let p = files.policy("p.yaml", "default", "releases", &s.spec(None));
    let run = check(&p, &[&s.image(":v1")]);
    run.expect_code(0);
    let r = run.one();
    assert_result(&r, true, &[]);
    assert_eq!(r["signers"], json!(["targets/releases"]));
    assert_eq!(r["digest"], s.a.as_str());
    assert_ne!(s.a, s.c);
}

/// Scenario 6: Listed signers: thresholds, `required`, pinned signer keys.
#[test]
fn signers_threshold_required_and_pinned_keys() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    let files = Files::new();
    let v1 = s.image(":v1");
    let both = s.image(":both");

    // Threshold 1: alice signed v1.
    let mut spec = s.spec(Some(json!([{"name": "alice"}, {"name": "bob"}])));
    spec["signerThreshold"] = json!(1);
    let p = files.policy("t1.yaml", "default", "t1", &spec);
    let run = check(&p, &[&v1]);
    run.expect_code(0);
    let r = run.one();
    assert_eq!(r["signers"], json!(["targets/alice"]));
    assert_eq!(r["digest"], s.a.as_str());

    // Threshold 2: only alice signed v1; the reason says who did.
    spec["signerThreshold"] = json!(2);
    let p = files.policy("t2.yaml", "default", "t2", &spec);
    let run = check(&p, &[&v1]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["1 of the 2", "targets/alice", "bob"]);
    assert_eq!(r["signers"], json!(["targets/alice"]));
    // ... while both signed `both`, and the default threshold is every listed signer.
    let mut all = s.spec(Some(json!([{"name": "alice"}, {"name": "bob"}])));
    let p = files.policy("all.yaml", "default", "all", &all);
    let run = check(&p, &[&both]);
    run.expect_code(0);
    assert_eq!(
        run.one()["signers"],
        json!(["targets/alice", "targets/bob"])
    );
    let run = check(&p, &[&v1]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["1 of the 2"]);

    // bob required, threshold 1: bob did not sign v1.
    let mut req = s.spec(Some(
        json!([{"name": "alice"}, {"name": "bob", "required": true}]),
    ));
    req["signerThreshold"] = json!(1);
    let p = files.policy("req.yaml", "default", "req", &req);
    let run = check(&p, &[&v1]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["required", "bob"]);
    check(&p, &[&both]).expect_code(0);

    // Pinned signer keys: alice's own key (PEM public key), bob's certificate.
    all["signers"] = json!([
        {"name": "alice", "publicKey": s.alice_spki},
        {"name": "bob", "publicKey": s.bob_cert},
    ]);
    let p = files.policy("pinned.yaml", "default", "pinned", &all);
    let run = check(&p, &[&both]);
    run.expect_code(0);
    assert_eq!(
        run.one()["signers"],
        json!(["targets/alice", "targets/bob"])
    );
    let alice_only = s.spec(Some(json!([{"name": "alice", "publicKey": s.alice_spki}])));
    let p = files.policy("alice.yaml", "default", "alice", &alice_only);
    let run = check(&p, &[&v1]);
    run.expect_code(0);
    assert_eq!(run.one()["signers"], json!(["targets/alice"]));

    // alice pinned to a key that is not hers.
    let wrong = s.spec(Some(json!([{"name": "alice", "publicKey": s.bob_spki}])));
    let p = files.policy("wrong.yaml", "default", "wrong-pin", &wrong);
    let run = check(&p, &[&v1]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["alice", "pinned key"]);
    assert_eq!(r["signers"], json!([]));
}

/// Scenario 7: A revoked key no longer counts, whether revoked by PEM or by key ID.
#[test]
fn revoked_key_does_not_count() {
    let Some(st) = common::stack() else { return };
    let s = signers_repo(&st);
    let files = Files::new();
    for (i, revoked) in [&s.alice_spki, &s.alice_id].into_iter().enumerate() {
        let mut spec = s.spec(Some(json!([{"name": "alice"}, {"name": "bob"}])));
        spec["signerThreshold"] = json!(1);
        spec["revokedKeys"] = json!([revoked]);
        let p = files.policy(&format!("revoked{i}.yaml"), "default", "revoked", &spec);
        let run = check(&p, &[&s.image(":v1")]);
        run.expect_code(1);
        let r = run.one();
        assert_result(&r, false, &["0 of the 1", "alice"]);
        assert_eq!(r["signers"], json!([]));
        // bob's signature still counts where he signed.
        let run = check(&p, &[&s.image(":both")]);
        run.expect_code(0);
        assert_eq!(run.one()["signers"], json!(["targets/bob"]));
    }
    // Revoking the releases key: `targets/releases` no longer vouches for v1, and `targets`
    // signed another digest.
    let mut spec = s.spec(None);
    spec["revokedKeys"] = json!([s.releases_id]);
    let p = files.policy("releases.yaml", "default", "no-releases", &spec);
    let run = check(&p, &[&s.image(":v1")]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &[]);
    assert_ne!(r["signers"], json!(["targets/releases"]));
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
    check(&p, &[&v1]).expect_code(0);

    client.rotate(&gun, "root", false);
    let root = published_root(&st, &gun);
    let (new_root, _) = root_key_of(&root);
    assert_ne!(new_root, old_root, "the root key changed");
    assert_eq!(root["signed"]["version"], 2, "{root:#}");
    let run = check(&p, &[&v1]);
    run.expect_code(0);
    assert_eq!(run.one()["signers"], json!(["targets"]));
    let spec_new = verify_spec(&st, &[&gun], &st.notary_url, json!([{"keyID": new_root}]));
    let p_new = files.policy("new.yaml", "default", "new-root", &spec_new);
    check(&p_new, &[&v1]).expect_code(0);

    client.rotate(&gun, "targets", false);
    let (b, b_size) = push(&st, &repo, "check-e2e rotate B", "v2");
    client.addhash(&gun, "v2", &b, b_size);
    let v2 = format!("{gun}:v2");
    let run = check(&p, &[&v1, &v2]);
    run.expect_code(0);
    let r = run.results();
    assert_eq!(r[0]["digest"], a.as_str());
    assert_eq!(r[1]["digest"], b.as_str());
}

// ------------------------------------------------------------------ 9-11: modes, actions, default

/// Scenario 9: Warn and Audit admit an unsigned tag (exit 0) without calling it verified.
#[test]
fn warn_and_audit_admit_unsigned() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let image = m.image(":v2");
    for (mode, verdict) in [("Warn", "WARNED"), ("Audit", "AUDITED")] {
        let mut spec = m.spec();
        spec["mode"] = json!(mode);
        let p = files.policy(&format!("{mode}.yaml"), "default", "modes", &spec);
        let run = check(&p, &[&image]);
        run.expect_code(0);
        let r = run.one();
        assert_result(&r, true, &["not signed", mode]);
        assert_eq!(r["verified"], false);
        assert_eq!(r["mode"], mode);
        assert_eq!(r["verdict"], verdict);
        assert_eq!(text_verdict(&[&p], "default", &[], &image), verdict);
        // A signed tag under the same mode is plainly admitted.
        let run = check(&p, &[&m.image(":v1")]);
        run.expect_code(0);
        assert_eq!(run.one()["verdict"], "ADMITTED");
    }
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
    let p = files.policy("allow.yaml", "default", "allow", &spec);
    let run = check(&p, &[&m.image(":v2")]);
    run.expect_code(0);
    let r = run.one();
    assert_result(&r, true, &["Allow"]);
    assert_eq!(r["action"], "Allow");
    assert_eq!(r["policy"], "default/allow");
    assert_eq!(r["signers"], json!([]));
    // The same URL with Verify fails: Allow really did not contact it.
    spec["action"] = json!("Verify");
    let p_verify = files.policy("verify.yaml", "default", "verify-dead", &spec);
    check(&p_verify, &[&m.image(":v2")]).expect_code(1);

    spec["action"] = json!("Deny");
    let p = files.policy("deny.yaml", "default", "deny", &spec);
    let run = check(&p, &[&m.image(":v1")]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["Deny", "default/deny"]);
    assert_eq!(r["action"], "Deny");
    assert_eq!(
        text_verdict(&[&p], "default", &[], &m.image(":v1")),
        "REJECTED"
    );
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
    let run = check(&p, &[&unmatched, "busybox"]);
    run.expect_code(1);
    let r = run.results();
    assert_eq!(r.len(), 2);
    for (res, reference) in r
        .iter()
        .zip([unmatched.as_str(), "docker.io/library/busybox:latest"])
    {
        assert_result(res, false, &["no policy"]);
        assert_eq!(res["policy"], Value::Null);
        assert_eq!(res["reference"], reference);
        assert_eq!(res["action"], "Deny");
    }
    let run = check_with(
        &[&p],
        "default",
        &["--default-action", "Allow"],
        &[],
        &[&unmatched, "busybox"],
    );
    run.expect_code(0);
    for res in run.results() {
        assert_result(&res, true, &["no policy"]);
        assert_eq!(res["policy"], Value::Null);
        assert_eq!(res["action"], "Allow");
    }
    assert_eq!(
        text_verdict(&[&p], "default", &["--default-action", "Allow"], "busybox"),
        "ADMITTED"
    );
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
    let run = check(&p, &[&signed]);
    run.expect_code(0);
    let r = run.one();
    assert_eq!(r["digest"], m.a.as_str());
    assert_eq!(r["reference"], signed.as_str());
    assert_eq!(r["signers"], json!(["targets"]));

    // B is in the registry (as `moved`) but signed under no tag.
    let unsigned = m.image(&format!("@{}", m.b));
    let run = check(&p, &[&unsigned]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["not signed"]);
    assert_eq!(r["digest"], m.b.as_str());

    let tag_digest = m.image(&format!(":v1@{}", m.a));
    let run = check(&p, &[&tag_digest]);
    run.expect_code(0);
    assert_eq!(run.one()["digest"], m.a.as_str());
    let tag_other = m.image(&format!(":v1@{}", m.b));
    let run = check(&p, &[&tag_other]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &["v1"]);
    assert_eq!(r["digest"], m.b.as_str());
    // v2 carries A in the registry, but the tag v2 itself was never signed.
    let run = check(&p, &[&m.image(&format!(":v2@{}", m.a))]);
    run.expect_code(1);
    assert_result(&run.one(), false, &["v2", "not signed"]);
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
    let url = format!("https://127.0.0.1:{port}");
    let mut spec = m.spec();
    spec["notary"]["url"] = json!(url);
    let p = files.policy("closed.yaml", "default", "closed", &spec);
    let run = check_with(
        &[&p],
        "default",
        &["--deadline", "3"],
        &[],
        &[&m.image(":v1")],
    );
    run.expect_code(1);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    let r = run.one();
    assert_result(&r, false, &[&format!("127.0.0.1:{port}")]);
    assert_eq!(r["digest"], m.a.as_str(), "the tag was still resolved");

    // A black hole: the kernel accepts the connection, nobody ever answers the TLS handshake.
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}", hole.local_addr().unwrap());
    spec["notary"]["url"] = json!(url);
    let p = files.policy("hole.yaml", "default", "hole", &spec);
    let run = check_with(
        &[&p],
        "default",
        &["--deadline", "3"],
        &[],
        &[&m.image(":v1")],
    );
    run.expect_code(1);
    assert!(
        run.elapsed >= Duration::from_millis(2900) && run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_result(&run.one(), false, &[]);
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
    let run = check(&p, &[&m.image(":v1")]);
    run.expect_code(1);
    let host = st.notary_url.trim_start_matches("https://");
    assert_result(&run.one(), false, &[host]);
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
    let run = check(&p, &[&images[0], &images[1], &images[2]]);
    run.expect_code(1);
    let r = run.results();
    assert_result(&r[0], true, &[]);
    assert_eq!(r[0]["digest"], a.as_str());
    assert_result(&r[1], false, &["v2", "not signed"]);
    // A tag the registry does not have fails closed, with no digest.
    assert_result(&r[2], false, &["v3", "not found"]);
    assert_eq!(r[2]["digest"], Value::Null);
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

    let before = st.token_requests_for_scope(&scope);
    let auth = B64.encode(format!("{user}:{pass}"));
    let run = check_with(&[&p], "default", &[], &[("NOTARY_AUTH", &auth)], &[&image]);
    run.expect_code(0);
    assert_eq!(run.one()["signers"], json!(["targets"]));
    assert!(
        st.token_requests_for_scope(&scope) > before,
        "a token was requested for {scope}"
    );

    // Anonymous pull is allowed by the test token server.
    let run = check(&p, &[&image]);
    run.expect_code(0);
    assert_eq!(run.one()["digest"], a.as_str());

    // The flags instead of NOTARY_AUTH.
    let run = check_with(
        &[&p],
        "default",
        &["--notary-user", user, "--notary-password", pass],
        &[],
        &[&image],
    );
    run.expect_code(0);

    let wrong = B64.encode(format!("{user}:not-{pass}"));
    let run = check_with(&[&p], "default", &[], &[("NOTARY_AUTH", &wrong)], &[&image]);
    run.expect_code(1);
    let r = run.one();
    assert_result(&r, false, &[]);
    let reason = r["reason"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        reason.contains("unauthorized") || reason.contains("refused"),
        "reason says the server refused the credentials: {reason}"
    );
    assert!(
        !reason.contains(&format!("not-{pass}")),
        "no password in the reason"
    );
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
    let v1 = m.image(":v1");
    let v2 = m.image(":v2");

    let run = check_with(&[&cluster, &ns], "shop", &[], &[], &[&v1, &v2]);
    run.expect_code(1);
    let r = run.results();
    assert_result(&r[0], true, &[]);
    assert_eq!(r[0]["policy"], "shop/verify");
    assert_eq!(r[0]["signers"], json!(["targets"]));
    // The cluster policy naming v2 exactly does not beat the namespaced `<registry>/**`.
    assert_result(&r[1], false, &["not signed"]);
    assert_eq!(r[1]["policy"], "shop/verify");

    let run = check_with(&[&cluster, &ns], "other", &[], &[], &[&v1, &v2]);
    run.expect_code(1);
    let r = run.results();
    assert_result(&r[0], false, &["Deny"]);
    assert_eq!(r[0]["policy"], "deny-all");
    assert_eq!(r[0]["action"], "Deny");
    assert_result(&r[1], true, &[]);
    assert_eq!(r[1]["policy"], "exact-allow");
    assert_eq!(r[1]["action"], "Allow");

    // The same through --policy-dir, and a TrustPolicy without namespace is in `default`.
    let dir = files.dir.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&cluster, dir.join("a-cluster.yaml")).unwrap();
    let mut no_ns = policy_doc("verify", None, &shop);
    no_ns["kind"] = json!("TrustPolicy");
    std::fs::write(dir.join("b-default.yml"), yaml_docs(&[no_ns])).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    let dir_arg = dir.to_str().unwrap();
    let run = trustgate(
        &["check", "--policy-dir", dir_arg, "--output", "json", &v1],
        &[],
    );
    run.expect_code(0);
    assert_eq!(run.one()["policy"], "default/verify");
    let run = trustgate(
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
        &[],
    );
    run.expect_code(1);
    assert_eq!(run.one()["policy"], "deny-all");
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
    let run = check(&bad_yaml, &[&image]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(bad_yaml.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert!(run.stdout.trim().is_empty(), "no results: {}", run.stdout);

    let mut spec = m.spec();
    spec.as_object_mut().unwrap().remove("trustRoots");
    let no_roots = files.policy("no-roots.yaml", "default", "no-roots", &spec);
    let run = check(&no_roots, &[&image]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(no_roots.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("trustRoots"), "{}", run.stderr);

    // Fields that parse as YAML but not as what they claim to be.
    let garbage_pem = "-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n";
    let mut bad_pem = m.spec();
    bad_pem["trustRoots"] = json!([{"publicKey": garbage_pem}]);
    let mut bad_threshold = m.spec();
    bad_threshold["signers"] = json!([{"name": "alice"}]);
    bad_threshold["signerThreshold"] = json!(2);
    for (name, spec, field) in [
        ("bad-pem", &bad_pem, "trustRoots[0].publicKey"),
        ("bad-threshold", &bad_threshold, "signerThreshold"),
    ] {
        let file = files.policy(&format!("{name}.yaml"), "default", name, spec);
        let run = check(&file, &[&image]);
        run.expect_code(2);
        assert!(
            run.stderr.contains(file.to_str().unwrap()),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(field), "{}", run.stderr);
    }

    // A good file next to a bad one still fails the whole run.
    let good = files.policy("good.yaml", "default", "good", &m.spec());
    let run = check_with(&[&good, &no_roots], "default", &[], &[], &[&image]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(no_roots.to_str().unwrap()),
        "{}",
        run.stderr
    );

    let missing = files.dir.path().join("missing.yaml");
    let run = check(&missing, &[&image]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(missing.to_str().unwrap()),
        "{}",
        run.stderr
    );

    // Usage errors: no image, no policy.
    trustgate(&["check", "--policy", good.to_str().unwrap()], &[]).expect_code(2);
    trustgate(&["check", &image], &[]).expect_code(2);
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
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let run = check_with(&[&main_p, &signers_p], "default", &[], &[], &refs);
    run.expect_code(1);
    let r = run.results();
    assert_eq!(r.len(), images.len());
    for (res, image) in r.iter().zip(&images) {
        assert_eq!(res["image"], image.as_str());
    }
    let allowed: Vec<bool> = r.iter().map(|x| x["allowed"].as_bool().unwrap()).collect();
    assert_eq!(allowed, [false, true, true, true, false, false]);
    assert_eq!(r[2]["signers"], json!(["targets/releases"]));

    let ok = [&images[1], &images[2], &images[3]].map(String::as_str);
    let run = check_with(&[&main_p, &signers_p], "default", &[], &[], &ok);
    run.expect_code(0);
    assert!(run.results().iter().all(|x| x["allowed"] == true));

    // Text output: one line per image, in input order.
    let text = trustgate(
        &[
            "check",
            "--policy",
            main_p.to_str().unwrap(),
            &images[1],
            &images[0],
        ],
        &[],
    );
    text.expect_code(1);
    let words: Vec<&str> = text
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(words, ["ADMITTED", "REJECTED"], "{}", text.stdout);
}

/// Scenario 17: The images are decided concurrently: three images stuck on a silent Notary server
/// take about one deadline, not three.
#[test]
fn several_images_are_decided_concurrently() {
    let Some(st) = common::stack() else { return };
    let m = main_repo(&st);
    let files = Files::new();
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut spec = m.spec();
    spec["notary"]["url"] = json!(format!("https://{}", hole.local_addr().unwrap()));
    let p = files.policy("hole.yaml", "default", "hole", &spec);
    let images = [m.image(":v1"), m.image(":v2"), m.image(":moved")];
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let run = check_with(&[&p], "default", &["--deadline", "2"], &[], &refs);
    run.expect_code(1);
    assert!(
        run.elapsed >= Duration::from_millis(1900) && run.elapsed < Duration::from_millis(4500),
        "3 images with a 2 s deadline each took {:?}",
        run.elapsed
    );
    let r = run.results();
    for (res, image) in r.iter().zip(&images) {
        assert_eq!(res["image"], image.as_str());
        assert_result(res, false, &[]);
    }
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
    let mut args = vec![
        "check",
        "--policy",
        p.to_str().unwrap(),
        "--namespace",
        "shop",
    ];
    args.extend(["--output", "json", "-f", path.to_str().unwrap()]);
    let run = trustgate(&args, &[]);
    run.expect_code(1);
    let results = run.results();
    assert_eq!(results.len(), 3, "{}", run.stdout);
    let summary: Vec<(String, String, String, bool)> = results
        .iter()
        .map(|r| {
            let o = &r["object"];
            (
                format!(
                    "{} {}/{}",
                    o["kind"].as_str().unwrap(),
                    o["namespace"].as_str().unwrap(),
                    o["name"].as_str().unwrap()
                ),
                r["location"].as_str().unwrap().to_string(),
                r["image"].as_str().unwrap().to_string(),
                r["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary[0].0, "Deployment shop/web");
    assert!(
        summary[0]
            .1
            .starts_with("spec.template.spec.initContainers[0]"),
        "{summary:?}"
    );
    assert_eq!(
        (summary[0].2.as_str(), summary[0].3),
        (signed.as_str(), true)
    );
    assert!(
        summary[1].1.starts_with("spec.template.spec.containers[0]"),
        "{summary:?}"
    );
    assert_eq!(
        (summary[1].2.as_str(), summary[1].3),
        (unsigned.as_str(), false)
    );
    assert_eq!(
        summary[2].0, "CronJob shop/nightly",
        "no namespace: --namespace"
    );
    assert!(
        summary[2]
            .1
            .starts_with("spec.jobTemplate.spec.template.spec.containers[0]")
    );
    assert!(summary[2].3);
    assert_eq!(results[1]["policy"], "shop/signed");

    // The same manifest from stdin, text output: one line per occurrence.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.args([
        "check",
        "--policy",
        p.to_str().unwrap(),
        "--namespace",
        "shop",
        "-f",
        "-",
    ])
    .env_remove("NOTARY_AUTH")
    .env("RUST_LOG", "warn")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("ADMITTED Deployment shop/web spec.template.spec.initContainers[0]"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("REJECTED Deployment shop/web spec.template.spec.containers[0]"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("ADMITTED CronJob shop/nightly"),
        "{text}"
    );

    // Unreadable input: exit 2.
    let run = trustgate(
        &[
            "check",
            "--policy",
            p.to_str().unwrap(),
            "-f",
            "/nonexistent/m.yaml",
        ],
        &[],
    );
    run.expect_code(2);
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
    let run = check_with(
        &[&p],
        "shop",
        &["--pin"],
        &[],
        &[&v1, &by_digest, &unsigned],
    );
    run.expect_code(1);
    let r = run.results();
    assert_eq!(r[0]["pinned"], format!("{v1}@{}", m.a).as_str());
    assert_eq!(r[1]["pinned"], by_digest.as_str());
    assert_eq!(r[2]["pinned"], Value::Null);
    assert!(check(&p, &[&v1]).one().get("pinned").is_none());

    let text = trustgate(
        &[
            "check",
            "--policy",
            p.to_str().unwrap(),
            "--namespace",
            "shop",
            "--pin",
            &v1,
        ],
        &[],
    );
    text.expect_code(0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(lines[0].starts_with("ADMITTED "), "{}", text.stdout);
    assert_eq!(lines[1], format!("PINNED   {v1}@{}", m.a));
}
