//! Shared harness for trustgate's integration tests (`mod common;` in `tests/*.rs`).
//!
//! * [`stack()`] loads the local Notary/registry stack started by `bash e2e/stack.sh up`
//!   (see `e2e/README.md`) and skips the test when it is not running.
//! * [`oci_image`] / [`oci_index`] build deterministic OCI image layouts on disk.
//! * [`skopeo_push`] and [`registry_digest`] push them and read back the served digest.
//! * [`NotaryClient`] drives the notary CLI non-interactively to sign test images.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apiserver;
pub mod scenario;
pub mod scripted;
pub mod sigtools;
pub mod webhook;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer media type (used for every layer built here).
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker schema 2 manifest media type (what `format_v2s2` pushes produce).
pub const DOCKER_V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";

// ------------------------------------------------------------------ stack

/// The running test stack, as described by `stack.env` (written by `e2e/stack.sh up`).
///
/// Registry addresses are `host:port` (no scheme); notary and token-server addresses are
/// full URLs. Every listener is on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Work dir of the stack (`TRUSTGATE_STACK_DIR`).
    pub dir: PathBuf,
    /// PEM file of the throwaway CA that issued every server certificate (`CA`).
    pub ca: PathBuf,
    /// Directory holding `ca.crt` only, for `skopeo --dest-cert-dir` (`CERT_DIR`).
    pub cert_dir: PathBuf,
    /// Plain-HTTP registry, no auth (`REGISTRY_HTTP`).
    pub registry_http: String,
    /// TLS registry (test CA), no auth (`REGISTRY_TLS`).
    pub registry_tls: String,
    /// TLS registry with htpasswd basic auth (`REGISTRY_BASIC`).
    pub registry_basic: String,
    /// Plain-HTTP registry with token auth against the token server (`REGISTRY_TOKEN`).
    pub registry_token: String,
    /// User for the basic-auth registry and the token server (`REGISTRY_USER`).
    pub registry_user: String,
    /// Password for [`Stack::registry_user`] (`REGISTRY_PASSWORD`).
    pub registry_password: String,
    /// Token server base URL, `http://127.0.0.1:port` (`TOKEN_SERVER`); realm is `<it>/token`.
    pub token_server: String,
    /// notary-server with TLS and the remote notary-signer (`NOTARY_URL`, https).
    pub notary_url: String,
    /// notary-server with the local (ed25519) trust service over plain HTTP (`NOTARY_LOCAL_URL`).
    pub notary_local_url: String,
    /// notary-server with TLS and token auth (`NOTARY_TOKEN_URL`, https).
    pub notary_token_url: String,
    /// Token-server user for the token-auth notary server (`NOTARY_USER`).
    pub notary_user: String,
    /// Password for [`Stack::notary_user`] (`NOTARY_PASSWORD`).
    pub notary_password: String,
    /// Every `KEY=VALUE` of `stack.env`, including the extra keys (passphrases, services, ...).
    pub env: HashMap<String, String>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the stack env file: `TRUSTGATE_STACK_ENV`, else `$TRUSTGATE_STACK_DIR/stack.env`,
/// else `<repo>/target/stack/stack.env`.
pub fn stack_env_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TRUSTGATE_STACK_ENV") {
        return PathBuf::from(p);
    }
    if let Some(d) = std::env::var_os("TRUSTGATE_STACK_DIR") {
        return PathBuf::from(d).join("stack.env");
    }
    repo_root().join("target/stack/stack.env")
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn reachable(addr: &str) -> bool {
    let hostport = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|sa| TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok())
}

fn load_stack(path: &Path) -> Result<Stack, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read stack env {}: {e}", path.display()))?;
    let env = parse_env(&text);
    let get = |k: &str| -> Result<String, String> {
        env.get(k)
            .cloned()
            .ok_or_else(|| format!("{} lacks {k}", path.display()))
    };
    let s = Stack {
        dir: get("TRUSTGATE_STACK_DIR")?.into(),
        ca: get("CA")?.into(),
        cert_dir: get("CERT_DIR")?.into(),
        registry_http: get("REGISTRY_HTTP")?,
        registry_tls: get("REGISTRY_TLS")?,
        registry_basic: get("REGISTRY_BASIC")?,
        registry_token: get("REGISTRY_TOKEN")?,
        registry_user: get("REGISTRY_USER")?,
        registry_password: get("REGISTRY_PASSWORD")?,
        token_server: get("TOKEN_SERVER")?,
        notary_url: get("NOTARY_URL")?,
        notary_local_url: get("NOTARY_LOCAL_URL")?,
        notary_token_url: get("NOTARY_TOKEN_URL")?,
        notary_user: get("NOTARY_USER")?,
        notary_password: get("NOTARY_PASSWORD")?,
        env: env.clone(),
    };
    for addr in [&s.registry_http, &s.notary_url, &s.token_server] {
        if !reachable(addr) {
            return Err(format!(
                "{} exists but {addr} does not answer (stale env file?)",
                path.display()
            ));
        }
    }
    Ok(s)
}

/// Reads the env file named by `TRUSTGATE_STACK_ENV` (default `<repo>/target/stack/stack.env`,
/// or `$TRUSTGATE_STACK_DIR/stack.env`) and checks that the stack answers.
///
/// Missing or stale: with `TRUSTGATE_REQUIRE_STACK=1` this panics telling you to run
/// `bash e2e/stack.sh up`; otherwise it prints a `SKIP` line to stderr and returns `None`,
/// so a test starts with `let Some(st) = common::stack() else { return };`.
pub fn stack() -> Option<Stack> {
    let path = stack_env_path();
    match load_stack(&path) {
        Ok(s) => Some(s),
        Err(why) => {
            let required = std::env::var("TRUSTGATE_REQUIRE_STACK").is_ok_and(|v| v == "1");
            if required {
                panic!(
                    "test stack required (TRUSTGATE_REQUIRE_STACK=1) but unavailable: {why}\n\
                     run `bash e2e/stack.sh up` first"
                );
            }
            let thread = std::thread::current();
            // Written to fd 2 directly: libtest would swallow eprintln! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {}: {why}; run `bash e2e/stack.sh up` (TRUSTGATE_REQUIRE_STACK=1 makes this fatal)",
                thread.name().unwrap_or("test")
            );
            None
        }
    }
}

impl Stack {
    /// A value of `stack.env`; panics if the key is missing.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("stack.env has no {key}"))
    }

    /// `(user, password)` accepted by the basic-auth registry and the token server.
    pub fn creds(&self) -> (&str, &str) {
        (&self.registry_user, &self.registry_password)
    }

    /// Token realm (`<token_server>/token`).
    pub fn token_realm(&self) -> String {
        format!("{}/token", self.token_server)
    }

    /// Current request counters of the token server (`GET /stats`): keys `requests`,
    /// `tokens_issued`, `authenticated`, `anonymous`, `denied`, and the maps `by_service`,
    /// `by_scope` (raw scope string → count) and `by_account`. Prefer per-scope counts with a
    /// [`unique_repo`] name: other tests share the server.
    pub fn token_stats(&self) -> Value {
        let out = run_ok(
            Command::new("curl").args([
                "-sf",
                "--max-time",
                "5",
                &format!("{}/stats", self.token_server),
            ]),
            "curl token stats",
        );
        serde_json::from_slice(&out.stdout).expect("token /stats JSON")
    }

    /// How many token requests named exactly `scope` (e.g. `repository:<gun>:pull`).
    pub fn token_requests_for_scope(&self, scope: &str) -> u64 {
        self.token_stats()["by_scope"][scope].as_u64().unwrap_or(0)
    }

    /// Fetches a token from the token server for `service` and `scope`, with the test
    /// credentials when `authenticated` (anonymous callers get `pull` only).
    pub fn fetch_token(&self, service: &str, scope: &str, authenticated: bool) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "--max-time", "5", "-G", &self.token_realm()])
            .args(["--data-urlencode", &format!("service={service}")])
            .args(["--data-urlencode", &format!("scope={scope}")]);
        if authenticated {
            cmd.args([
                "-u",
                &format!("{}:{}", self.registry_user, self.registry_password),
            ]);
        }
        let out = run_ok(&mut cmd, "curl token");
        let v: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
        v["token"].as_str().expect("token field").to_owned()
    }

    /// A notary CLI client with a fresh, private trust dir for `server_url` (one of
    /// [`Stack::notary_url`], [`Stack::notary_local_url`], [`Stack::notary_token_url`]).
    pub fn notary_client(&self, server_url: &str) -> NotaryClient {
        let tmp = tempfile::Builder::new()
            .prefix("trustgate-notary-")
            .tempdir()
            .expect("tempdir");
        let mut env: Vec<(String, String)> = [
            "NOTARY_ROOT_PASSPHRASE",
            "NOTARY_TARGETS_PASSPHRASE",
            "NOTARY_SNAPSHOT_PASSPHRASE",
            "NOTARY_DELEGATION_PASSPHRASE",
            "NOTARY_AUTH",
        ]
        .iter()
        .filter_map(|k| self.env.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
        env.sort();
        NotaryClient {
            url: server_url.to_owned(),
            trust_dir: tmp.path().join("trust"),
            ca: self.ca.clone(),
            env,
            _tmp: tmp,
        }
    }
}

// ------------------------------------------------------------------ notary CLI

/// The notary CLI bound to one server and one private trust dir; every call runs with
/// stdin = /dev/null and all passphrases (and `NOTARY_AUTH`) from `stack.env`, so it fails
/// instead of prompting.
pub struct NotaryClient {
    /// Server URL (`-s`).
    pub url: String,
    /// Trust dir (`-d`), deleted with the client.
    pub trust_dir: PathBuf,
    ca: PathBuf,
    env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl NotaryClient {
    /// `notary -s URL [--tlscacert CA] -d TRUST_DIR` with the passphrase env; add args.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("notary");
        cmd.arg("-s").arg(&self.url);
        if self.url.starts_with("https://") {
            cmd.arg("--tlscacert").arg(&self.ca);
        }
        cmd.arg("-d").arg(&self.trust_dir).stdin(Stdio::null());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `notary <args>`; panics with stdout/stderr on failure; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = run_ok(
            self.command().args(args),
            &format!("notary {}", args.join(" ")),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `notary <args>` and returns the raw output whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("spawn notary")
    }

    /// `notary init -p GUN` (creates root/targets keys locally, publishes).
    pub fn init(&self, gun: &str) {
        self.run(&["init", "-p", gun]);
    }

    /// `notary addhash -p GUN TARGET SIZE --sha256 HEX`; `digest` is `sha256:<hex>`.
    pub fn addhash(&self, gun: &str, target: &str, digest: &str, size: u64) {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.run(&[
            "addhash",
            "-p",
            gun,
            target,
            &size.to_string(),
            "--sha256",
            hex,
        ]);
    }

    /// init + addhash: publishes trust data for `gun` with one signed `target`.
    pub fn sign(&self, gun: &str, target: &str, digest: &str, size: u64) {
        self.init(gun);
        self.addhash(gun, target, digest, size);
    }
}

// ------------------------------------------------------------------ OCI layouts

/// One platform manifest inside an [`oci_index`] layout (or the single manifest of [`oci_image`]).
#[derive(Debug, Clone)]
pub struct PlatformManifest {
    /// `linux/amd64`, `linux/arm64`.
    pub platform: String,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
}

/// An OCI image layout on disk (kept alive as long as this value lives).
#[derive(Debug)]
pub struct Layout {
    /// The OCI layout directory (`oci:<dir>:<tag>` for skopeo).
    pub dir: PathBuf,
    /// Tag recorded as `org.opencontainers.image.ref.name` in `index.json`.
    pub tag: String,
    /// `sha256:<hex>` of the top-level manifest (the image index for [`oci_index`]).
    pub manifest_digest: String,
    /// Size of the top-level manifest in bytes.
    pub manifest_size: u64,
    /// Media type of the top-level manifest ([`OCI_MANIFEST`] or [`OCI_INDEX`]).
    pub media_type: String,
    /// Raw bytes of the top-level manifest.
    pub manifest: Vec<u8>,
    /// Platform manifests (one for an image, two for an index).
    pub platforms: Vec<PlatformManifest>,
    root: tempfile::TempDir,
}

impl Layout {
    /// True for an image index.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX
    }

    /// `skopeo` signature policy accepting anything (written next to the layout).
    pub fn policy(&self) -> PathBuf {
        self.root.path().join("policy.json")
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(dir: &Path, data: &[u8]) -> (String, u64) {
    let digest = sha256_digest(data);
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::write(dir.join("blobs/sha256").join(hex), data).expect("write blob");
    (digest, data.len() as u64)
}

fn tar_one(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).expect("tar path");
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, content).expect("tar append");
    b.into_inner().expect("tar finish")
}

/// Writes layer + config + manifest for one platform; returns (manifest bytes, digest, size).
fn write_image(dir: &Path, seed: &str, arch: &str) -> (Vec<u8>, String, u64) {
    let layer = tar_one("seed.txt", seed.as_bytes());
    let (layer_digest, layer_size) = put_blob(dir, &layer);
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/seed.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": format!("trustgate test harness: {seed}")}],
    });
    let (config_digest, config_size) = put_blob(dir, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": layer_digest, "size": layer_size}],
    }))
    .unwrap();
    let (digest, size) = put_blob(dir, &manifest);
    (manifest, digest, size)
}

fn new_layout_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::Builder::new()
        .prefix("trustgate-oci-")
        .tempdir()
        .expect("tempdir");
    let dir = root.path().join("oci");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        root.path().join("policy.json"),
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    (root, dir)
}

fn write_index_json(dir: &Path, media_type: &str, digest: &str, size: u64, tag: &str) {
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Builds a deterministic single-platform (linux/amd64) OCI image layout: one uncompressed
/// tar layer holding `seed.txt` whose content is `seed`, a config and an OCI manifest;
/// `index.json` points at the manifest with `org.opencontainers.image.ref.name` = `tag`.
/// Same seed → same digest, different seeds → different digests.
pub fn oci_image(seed: &str, tag: &str) -> Layout {
    let (root, dir) = new_layout_dir();
    let (manifest, digest, size) = write_image(&dir, seed, "amd64");
    write_index_json(&dir, OCI_MANIFEST, &digest, size, tag);
    Layout {
        dir,
        tag: tag.to_owned(),
        manifest_digest: digest.clone(),
        manifest_size: size,
        media_type: OCI_MANIFEST.to_owned(),
        manifest,
        platforms: vec![PlatformManifest {
            platform: "linux/amd64".into(),
            digest,
            size,
        }],
        root,
    }
}

/// Builds a deterministic multi-arch OCI layout: an OCI image index
/// (`application/vnd.oci.image.index.v1+json`) referring to two platform manifests
/// (linux/amd64, linux/arm64) made from `seed`; `manifest_digest` is the INDEX digest and
/// [`Layout::platforms`] lists the children.
pub fn oci_index(seed: &str, tag: &str) -> Layout {
    let (root, dir) = new_layout_dir();
    let mut platforms = Vec::new();
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (_, digest, size) = write_image(&dir, seed, arch);
        entries.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
        platforms.push(PlatformManifest {
            platform: format!("linux/{arch}"),
            digest,
            size,
        });
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    let (digest, size) = put_blob(&dir, &index);
    write_index_json(&dir, OCI_INDEX, &digest, size, tag);
    Layout {
        dir,
        tag: tag.to_owned(),
        manifest_digest: digest,
        manifest_size: size,
        media_type: OCI_INDEX.to_owned(),
        manifest: index,
        platforms,
        root,
    }
}

// ------------------------------------------------------------------ skopeo

/// Where and how [`skopeo_push`] pushes a [`Layout`].
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    /// Registry `host:port` (e.g. [`Stack::registry_http`]).
    pub registry: &'a str,
    /// Repository path inside the registry (see [`unique_repo`]).
    pub repo: &'a str,
    /// Destination tag.
    pub tag: &'a str,
    /// `false` for the plain-HTTP registries; `true` + `cert_dir` for the TLS ones.
    pub tls_verify: bool,
    /// Directory with `ca.crt` ([`Stack::cert_dir`]).
    pub cert_dir: Option<&'a Path>,
    /// Registry credentials; `None` pushes anonymously (no auth file is consulted).
    pub creds: Option<(&'a str, &'a str)>,
    /// Convert to Docker schema 2 (`--format v2s2`); this changes the digest. Otherwise the
    /// OCI manifest is pushed byte-for-byte (`--preserve-digests`).
    pub format_v2s2: bool,
}

impl<'a> Push<'a> {
    /// An anonymous push over plain HTTP, the OCI manifest kept byte-for-byte.
    pub fn plain(registry: &'a str, repo: &'a str, tag: &'a str) -> Push<'a> {
        Push {
            registry,
            repo,
            tag,
            tls_verify: false,
            cert_dir: None,
            creds: None,
            format_v2s2: false,
        }
    }

    /// [`Push::plain`] over TLS, trusting the CA in `cert_dir` ([`Stack::cert_dir`]).
    pub fn tls(registry: &'a str, repo: &'a str, tag: &'a str, cert_dir: &'a Path) -> Push<'a> {
        Push {
            tls_verify: true,
            cert_dir: Some(cert_dir),
            ..Push::plain(registry, repo, tag)
        }
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot spawn: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

static PUSH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `skopeo copy oci:DIR:tag docker://registry/repo:tag` (with `--multi-arch all` for an
/// index); panics with skopeo's stderr on failure. Returns the digest skopeo reports for
/// the pushed manifest (`--digestfile`), which equals `layout.manifest_digest` unless
/// `format_v2s2` is set.
pub fn skopeo_push(layout: &Layout, p: &Push) -> String {
    let n = PUSH_COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest_file = layout.root.path().join(format!("pushed-{n}.digest"));
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(layout.policy()).arg("copy");
    if layout.is_index() {
        cmd.args(["--multi-arch", "all"]);
    }
    if p.format_v2s2 {
        cmd.args(["--format", "v2s2"]);
    } else {
        cmd.arg("--preserve-digests");
    }
    cmd.arg(format!("--dest-tls-verify={}", p.tls_verify));
    if let Some(d) = p.cert_dir {
        cmd.arg("--dest-cert-dir").arg(d);
    }
    match p.creds {
        Some((u, pw)) => cmd.arg("--dest-creds").arg(format!("{u}:{pw}")),
        None => cmd.arg("--dest-no-creds"),
    };
    cmd.arg("--digestfile").arg(&digest_file);
    cmd.arg(format!("oci:{}:{}", layout.dir.display(), layout.tag));
    let dest = format!("docker://{}/{}:{}", p.registry, p.repo, p.tag);
    cmd.arg(&dest);
    run_ok(&mut cmd, &format!("skopeo copy to {dest}"));
    std::fs::read_to_string(&digest_file)
        .expect("skopeo digest file")
        .trim()
        .to_owned()
}

/// `skopeo inspect --raw` of `docker://<reference>` hashed with sha256 → `sha256:<hex>`,
/// i.e. the digest the registry serves for that reference (`reference` may carry the
/// `docker://` prefix). Panics with skopeo's stderr on failure.
pub fn registry_digest(
    reference: &str,
    tls_verify: bool,
    cert_dir: Option<&Path>,
    creds: Option<(&str, &str)>,
) -> String {
    sha256_digest(&registry_manifest(reference, tls_verify, cert_dir, creds))
}

/// The raw manifest bytes `skopeo inspect --raw` gets for `docker://<reference>`.
pub fn registry_manifest(
    reference: &str,
    tls_verify: bool,
    cert_dir: Option<&Path>,
    creds: Option<(&str, &str)>,
) -> Vec<u8> {
    let reference = reference.strip_prefix("docker://").unwrap_or(reference);
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw"]);
    cmd.arg(format!("--tls-verify={tls_verify}"));
    if let Some(d) = cert_dir {
        cmd.arg("--cert-dir").arg(d);
    }
    match creds {
        Some((u, pw)) => cmd.arg("--creds").arg(format!("{u}:{pw}")),
        None => cmd.arg("--no-creds"),
    };
    cmd.arg(format!("docker://{reference}"));
    run_ok(&mut cmd, &format!("skopeo inspect --raw {reference}")).stdout
}

// ------------------------------------------------------------------ misc

/// A unique repository name per call: `<prefix>-<pid>-<run nonce>-<counter>`, lower-cased
/// and restricted to registry-legal characters, so tests (and repeated runs against the
/// same long-lived stack, whose notary storage keeps old GUNs) never collide.
pub fn unique_repo(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static NONCE: OnceLock<String> = OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{:x}", (nanos / 1000) % 0xff_ffff)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let clean = if clean.is_empty() { "test" } else { clean };
    format!("{clean}-{}-{nonce}-{n}", std::process::id())
}

/// HTTP status code of `curl <args>` (adds `-s -o /dev/null -w %{http_code}`); 0 when curl
/// could not connect.
pub fn curl_status(args: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Pushes `oci_image(seed)` as `repo:tag` to the stack's plain-HTTP registry; returns the layout.
pub fn push_http(st: &Stack, seed: &str, repo: &str, tag: &str) -> Layout {
    let layout = oci_image(seed, tag);
    skopeo_push(&layout, &Push::plain(&st.registry_http, repo, tag));
    layout
}
