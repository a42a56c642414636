//! trustgate's Notary v1 verifier against trust data made by the REAL notary-server,
//! notary-signer and notary CLI (the stack of `e2e/stack.sh`): every test signs into its own
//! GUN with its own CLI trust dir, loads the data with `Updater` over `HttpSource` and compares
//! the verified view with what `notary list` prints.
//!
//! Run with `bash e2e/stack.sh up && TRUSTGATE_REQUIRE_STACK=1 cargo test --test notary_real`
//! (skipped, with a `SKIP` line, when the stack is not up and the variable is not set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use common::scenario::{Listed, delegation_key};
use common::{NotaryClient, Stack};
use trustgate::clock::SystemClock;
use trustgate::limits::LIMITS;
use trustgate::notary::fetch::{HttpSource, NotaryConfig};
use trustgate::notary::keys::{KeyType, PinnedKey};
use trustgate::notary::schema::{Root, SignedFile};
use trustgate::notary::source::{FetchError, MetaRequest, MetadataSource};
use trustgate::notary::updater::{Revocations, TrustOptions, TrustRoot, Updater};
use trustgate::notary::verify::VerifyError;
use trustgate::notary::view::{RoleStatus, SignedTarget, SignerResult, TrustData};

// ------------------------------------------------------------------ helpers

/// A manifest-like blob: its `sha256:<hex>` digest, raw digest bytes and size.
struct Manifest {
    digest: String,
    sha256: [u8; 32],
    size: u64,
}

/// A fake but real-looking manifest derived from `seed` (only its digest and size are signed).
fn manifest(seed: &str) -> Manifest {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"sha256:{}"}},"annotations":{{"seed":"{seed}"}}}}"#,
        common::OCI_MANIFEST,
        hex::encode(Sha256::digest(seed.as_bytes())),
    );
    let sha256: [u8; 32] = Sha256::digest(body.as_bytes()).into();
    Manifest {
        digest: format!("sha256:{}", hex::encode(sha256)),
        sha256,
        size: body.len() as u64,
    }
}

/// A fresh GUN `<registry>/<unique repo>` (no image push is needed for trust data).
fn new_gun(st: &Stack, prefix: &str) -> String {
    format!(
        "{}/{}",
        st.registry_http,
        common::unique_repo(&format!("notary-real/{prefix}"))
    )
}

/// `HttpSource` for one of the stack's notary servers (test CA for https).
fn source(st: &Stack, url: &str, creds: Option<(&str, &str)>) -> HttpSource {
    trustgate::tls::install_crypto_provider();
    let mut cfg = NotaryConfig::new(url);
    cfg.timeout = Duration::from_secs(10);
    if url.starts_with("https://") {
        cfg.ca_pem = Some(std::fs::read(&st.ca).expect("read CA"));
    }
    cfg.credentials = creds.map(|(u, p)| (u.to_owned(), p.to_owned()));
    HttpSource::new(cfg).expect("HttpSource")
}

fn updater() -> Updater {
    Updater::new(Arc::new(SystemClock))
}

fn opts(roots: Vec<TrustRoot>) -> TrustOptions {
    TrustOptions {
        trust_roots: roots,
        trust_root_threshold: 1,
        revoked: Revocations::new(),
    }
}

fn pin_pem(pem: &str) -> TrustOptions {
    opts(vec![TrustRoot::Key(
        PinnedKey::from_pem(pem).expect("pin PEM"),
    )])
}

fn pin_id(id: &str) -> TrustOptions {
    opts(vec![TrustRoot::KeyId(id.to_owned())])
}

/// Loads `gun` with a FRESH updater (empty version memory).
async fn load_fresh(
    src: &HttpSource,
    gun: &str,
    o: &TrustOptions,
) -> Result<TrustData, VerifyError> {
    updater().load(src, gun, o).await
}

/// Raw `root.json` (current, or `<version>.root.json`) as the server serves it.
async fn fetch_root(src: &HttpSource, gun: &str, version: Option<u64>) -> Vec<u8> {
    let req = match version {
        None => MetaRequest::Current {
            role: "root".into(),
        },
        Some(version) => MetaRequest::Version {
            role: "root".into(),
            version,
        },
    };
    src.fetch(gun, &req, LIMITS.root_bytes)
        .await
        .expect("fetch root")
}

async fn fetch_json(src: &HttpSource, gun: &str, role: &str) -> Value {
    let req = MetaRequest::Current { role: role.into() };
    let raw = src.fetch(gun, &req, 1 << 20).await.expect("fetch metadata");
    serde_json::from_slice(&raw).expect("metadata JSON")
}

/// The root-role key of a raw root.json: (key ID as listed, certificate PEM).
fn root_cert(raw_root: &[u8]) -> (String, String) {
    let root: Value = serde_json::from_slice(raw_root).expect("root JSON");
    let ids = root["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .expect("root keyids");
    assert_eq!(ids.len(), 1, "notary roots have one root key: {ids:?}");
    let id = ids[0].as_str().expect("keyid").to_owned();
    let key = &root["signed"]["keys"][&id];
    assert_eq!(key["keytype"], "ecdsa-x509");
    let pem = B64
        .decode(key["keyval"]["public"].as_str().expect("public"))
        .expect("base64 public");
    (id, String::from_utf8(pem).expect("PEM text"))
}

/// The root cert PEM of `<version>.root.json`.
async fn root_pem_at(src: &HttpSource, gun: &str, version: u64) -> String {
    root_cert(&fetch_root(src, gun, Some(version)).await).1
}

/// The first 64-hex token of the `notary key list` line of `role` (the CLI's canonical ID).
fn cli_key_id(client: &NotaryClient, role: &str) -> String {
    let out = client.key_list();
    out.lines()
        .filter(|l| l.split_whitespace().next() == Some(role))
        .flat_map(str::split_whitespace)
        .find(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no {role} key in `notary key list`:\n{out}"))
        .to_owned()
}

/// The key IDs `notary delegation list` prints for `role`.
fn cli_delegation_key_ids(client: &NotaryClient, gun: &str, role: &str) -> Vec<String> {
    let out = client.run(&["delegation", "list", gun]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(role))
        .unwrap_or_else(|| panic!("{role} not in `notary delegation list`:\n{out}"));
    line.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

/// What `notary list GUN [--roles start]` prints, computed from our view: notary's
/// `ListTargets` walks breadth-first from `start` through valid roles in delegation order and
/// keeps the first role that lists each name (within its paths).
fn expected_list(data: &TrustData, start: &str) -> Vec<Listed> {
    let mut found: BTreeMap<String, Listed> = BTreeMap::new();
    let mut queue = VecDeque::from([start.to_owned()]);
    while let Some(name) = queue.pop_front() {
        let Some(role) = data.role(&name) else {
            continue;
        };
        if role.status != RoleStatus::Valid {
            continue;
        }
        for (tag, t) in &role.targets {
            found.entry(tag.clone()).or_insert_with(|| Listed {
                name: tag.clone(),
                digest_hex: hex::encode(t.sha256),
                size: t.length,
                role: role.name.clone(),
            });
        }
        queue.extend(role.delegations.iter().cloned());
    }
    let mut rows: Vec<Listed> = found.into_values().collect();
    rows.sort();
    rows
}

/// Our view equals `notary list` for the whole repository and for each of `roles`; every
/// listed row is one of `TrustData::tags()`.
fn assert_matches_list(data: &TrustData, client: &NotaryClient, gun: &str, roles: &[&str]) {
    let listed = client.list(gun, None);
    assert_eq!(expected_list(data, "targets"), listed, "notary list {gun}");
    let tags = data.tags();
    for row in &listed {
        assert!(
            tags.iter().any(|t| t.tag == row.name
                && t.role == row.role
                && t.digest_hex == row.digest_hex
                && t.length == row.size),
            "{row:?} missing from tags() {tags:?}"
        );
    }
    for role in roles {
        let listed = client.list(gun, Some(role));
        assert_eq!(
            expected_list(data, role),
            listed,
            "notary list --roles {role}"
        );
    }
}

fn signed(role: &str, m: &Manifest) -> Option<SignedTarget> {
    Some(SignedTarget {
        role: role.to_owned(),
        digest: m.sha256,
        length: m.size,
    })
}

/// A repository on the remote-signer server with three delegations:
/// `targets/releases` (PUBLIC KEY PEM) and `targets/alice` (x509 certificate) sign v1 = `d1`,
/// `targets/bob` (PUBLIC KEY PEM) signs v1 = `d2`, `targets` alone signs v2 = `d3`.
struct Delegated {
    st: Stack,
    gun: String,
    client: NotaryClient,
    alice: common::scenario::DelegationKey,
    d1: Manifest,
    d2: Manifest,
    d3: Manifest,
    _keys: tempfile::TempDir,
}

fn delegated(prefix: &str) -> Option<Delegated> {
    let st = common::stack()?;
    let gun = new_gun(&st, prefix);
    let client = st.notary_client(&st.notary_url);
    let keys = tempfile::tempdir().expect("tempdir");
    let (d1, d2, d3) = (
        manifest(&format!("{gun} one")),
        manifest(&format!("{gun} two")),
        manifest(&format!("{gun} three")),
    );
    client.init(&gun);
    let releases = delegation_key(keys.path(), "targets/releases", false);
    let alice = delegation_key(keys.path(), "targets/alice", true);
    let bob = delegation_key(keys.path(), "targets/bob", false);
    for key in [&releases, &alice, &bob] {
        client.add_delegation(&gun, key, None);
    }
    client.publish(&gun);
    client.sign_into(&gun, "targets/releases", "v1", &d1.digest, d1.size);
    client.sign_into(&gun, "targets/alice", "v1", &d1.digest, d1.size);
    client.sign_into(&gun, "targets/bob", "v1", &d2.digest, d2.size);
    client.sign_into(&gun, "targets", "v2", &d3.digest, d3.size);
    Some(Delegated {
        st,
        gun,
        client,
        alice,
        d1,
        d2,
        d3,
        _keys: keys,
    })
}

// ------------------------------------------------------------------ a. targets only

/// init + addhash into `targets` on the TLS server with the remote signer (ecdsa server keys,
/// server-managed timestamp): pinned by the root certificate PEM, by the key ID root.json lists
/// and by the canonical ID the CLI prints; the view equals `notary list`.
#[tokio::test]
async fn targets_only_remote_signer() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "targets");
    let client = st.notary_client(&st.notary_url);
    let m = manifest(&gun);
    client.sign(&gun, "v1", &m.digest, m.size);
    let src = source(&st, &st.notary_url, None);

    let raw_root = fetch_root(&src, &gun, None).await;
    let (root_id, root_pem) = root_cert(&raw_root);
    let data = load_fresh(&src, &gun, &pin_pem(&root_pem))
        .await
        .expect("loads");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m));
    assert_eq!(data.docker_lookup("v2"), None);
    assert_eq!(data.root().version, 1);
    assert_eq!(data.root().signed_by, std::slice::from_ref(&root_id));
    assert_eq!(data.root().root_keys.len(), 1);
    assert_eq!(data.root().root_keys[0].id, root_id);
    assert_eq!(
        data.roles()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["targets"]
    );
    let targets = data.role("targets").expect("targets role");
    assert_eq!(targets.status, RoleStatus::Valid);
    assert_eq!(targets.paths, [String::new()]);
    assert!(targets.ignored.is_empty());
    assert_matches_list(&data, &client, &gun, &["targets"]);

    // Key types of the remote-signer layout: x509 root, ecdsa everything else.
    let root = SignedFile::<Root>::parse(&gun, "root", raw_root).expect("root parses");
    for (role, want) in [
        ("root", KeyType::EcdsaX509),
        ("targets", KeyType::Ecdsa),
        ("snapshot", KeyType::Ecdsa),
        ("timestamp", KeyType::Ecdsa),
    ] {
        let spec = root.body.roles.get(role).expect("base role");
        for id in &spec.keyids {
            assert_eq!(root.body.keys[id].key_type(), &want, "{role} key {id}");
        }
    }
    let ts = fetch_json(&src, &gun, "timestamp").await;
    assert_eq!(ts["signatures"][0]["method"], "ecdsa");

    // Pinning by key ID: the x509 key ID of root.json, and the CLI's canonical ID.
    let cli_root_id = cli_key_id(&client, "root");
    assert_ne!(
        cli_root_id, root_id,
        "notes §7.2: the CLI prints the canonical ID"
    );
    assert_eq!(root.body.keys[&root_id].canonical_id(), cli_root_id);
    for id in [root_id.as_str(), cli_root_id.as_str()] {
        let data = load_fresh(&src, &gun, &pin_id(id))
            .await
            .expect("pinned by ID");
        assert_eq!(data.docker_lookup("v1"), signed("targets", &m), "pin {id}");
    }
}

// ------------------------------------------------------------------ b. delegations

/// releases / alice (x509) / bob delegations: docker resolution, signer checks, per-role
/// `notary list`, and alice's x509 key ID (metadata) versus her canonical ID (CLI).
#[tokio::test]
async fn delegations_like_docker_trust() {
    let Some(r) = delegated("delegations") else {
        return;
    };
    let src = source(&r.st, &r.st.notary_url, None);
    let (_, root_pem) = root_cert(&fetch_root(&src, &r.gun, None).await);
    let data = load_fresh(&src, &r.gun, &pin_pem(&root_pem))
        .await
        .expect("loads");

    assert_eq!(data.docker_lookup("v1"), signed("targets/releases", &r.d1));
    assert_eq!(data.docker_lookup("v2"), signed("targets", &r.d3));
    assert_eq!(data.docker_lookup("v3"), None);
    assert_eq!(
        data.signer_lookup("alice", Some("v1"), &r.d1.sha256),
        SignerResult::Signed
    );
    assert_eq!(
        data.signer_lookup("targets/alice", None, &r.d1.sha256),
        SignerResult::Signed
    );
    assert!(
        matches!(
            data.signer_lookup("bob", Some("v1"), &r.d1.sha256),
            SignerResult::NotSigned { ref reason } if reason.contains(&hex::encode(r.d2.sha256))
        ),
        "bob signed v1 with another digest"
    );
    assert_eq!(
        data.signer_lookup("bob", Some("v1"), &r.d2.sha256),
        SignerResult::Signed
    );
    assert!(matches!(
        data.signer_lookup("alice", Some("v2"), &r.d3.sha256),
        SignerResult::NotSigned { .. }
    ));
    assert_eq!(
        data.signer_lookup("carol", Some("v1"), &r.d1.sha256),
        SignerResult::NoSuchRole
    );

    let mut names: Vec<&str> = data.roles().iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "targets",
            "targets/alice",
            "targets/bob",
            "targets/releases"
        ]
    );
    for role in data.roles() {
        assert_eq!(role.status, RoleStatus::Valid, "{}", role.name);
        assert_eq!(role.paths, [String::new()], "{}", role.name);
        assert!(role.ignored.is_empty(), "{}", role.name);
        assert_eq!(role.threshold, 1, "{}", role.name);
    }
    assert_matches_list(
        &data,
        &r.client,
        &r.gun,
        &[
            "targets",
            "targets/releases",
            "targets/alice",
            "targets/bob",
        ],
    );

    // Alice's certificate key: `ecdsa-x509` in targets.json under the x509 key ID, while the CLI
    // prints the canonical ID of the bare public key (notes §7.2).
    let alice = data.role("targets/alice").expect("alice");
    assert_eq!(alice.keys.len(), 1);
    let key = &alice.keys[0];
    assert_eq!(key.key.key_type(), &KeyType::EcdsaX509);
    assert_eq!(alice.signed_by, std::slice::from_ref(&key.id));
    let cli_ids = cli_delegation_key_ids(&r.client, &r.gun, "targets/alice");
    assert_eq!(cli_ids.len(), 1, "{cli_ids:?}");
    assert_ne!(
        key.id, cli_ids[0],
        "x509 key ID differs from the CLI's canonical ID"
    );
    assert_eq!(key.key.canonical_id(), cli_ids[0]);
    let by_cert = PinnedKey::from_pem(&r.alice.public_pem).expect("alice cert");
    let by_spki = PinnedKey::from_pem(&r.alice.spki_pem).expect("alice public key");
    assert!(by_cert.matches(&key.key) && by_spki.matches(&key.key));
    assert_eq!(by_cert.cert_key_id(), Some(key.id.as_str()));
    assert_eq!(by_spki.key_id(), cli_ids[0]);
    assert!(data.signer_key_matches("alice", &by_cert));
    assert!(data.signer_key_matches("alice", &by_spki));
    assert!(!data.signer_key_matches("bob", &by_spki));
    // Public-key delegations: the metadata ID is the one the CLI prints.
    let bob = data.role("targets/bob").expect("bob");
    assert_eq!(bob.keys[0].key.key_type(), &KeyType::Ecdsa);
    assert_eq!(
        vec![bob.keys[0].id.clone()],
        cli_delegation_key_ids(&r.client, &r.gun, "targets/bob")
    );
}

// ------------------------------------------------------------------ c. path restriction

/// `targets/qa` restricted to `qa/`: `qa/v1` is honoured, nothing is ignored, the CLI refuses
/// to sign outside the paths, docker would not use the delegation.
#[tokio::test]
async fn delegation_paths_are_honoured() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "paths");
    let client = st.notary_client(&st.notary_url);
    let keys = tempfile::tempdir().expect("tempdir");
    let (m0, m1) = (manifest(&format!("{gun} 0")), manifest(&format!("{gun} 1")));
    client.sign(&gun, "v1", &m0.digest, m0.size);
    let qa = delegation_key(keys.path(), "targets/qa", true);
    client.add_delegation(&gun, &qa, Some(&["qa/"]));
    client.publish(&gun);
    client.sign_into(&gun, "targets/qa", "qa/v1", &m1.digest, m1.size);
    // Outside the paths: the CLI refuses to publish it (and it stays staged until reset).
    let hex1 = m1.digest.trim_start_matches("sha256:");
    let size = m1.size.to_string();
    let out = client.output(&[
        "addhash",
        "-p",
        &gun,
        "v9",
        &size,
        "--sha256",
        hex1,
        "--roles",
        "targets/qa",
    ]);
    assert!(
        !out.status.success(),
        "notary signed outside the delegation's paths"
    );
    client.run(&["reset", &gun, "--all"]);

    let src = source(&st, &st.notary_url, None);
    let (_, root_pem) = root_cert(&fetch_root(&src, &gun, None).await);
    let data = load_fresh(&src, &gun, &pin_pem(&root_pem))
        .await
        .expect("loads");
    let role = data.role("targets/qa").expect("qa");
    assert_eq!(role.status, RoleStatus::Valid);
    assert_eq!(role.paths, ["qa/"]);
    assert!(role.ignored.is_empty(), "{:?}", role.ignored);
    assert_eq!(role.targets.keys().collect::<Vec<_>>(), ["qa/v1"]);
    assert_eq!(
        data.signer_lookup("qa", Some("qa/v1"), &m1.sha256),
        SignerResult::Signed
    );
    assert!(matches!(
        data.signer_lookup("qa", Some("v9"), &m1.sha256),
        SignerResult::NotSigned { .. }
    ));
    // docker only accepts targets/releases or targets.
    assert_eq!(data.docker_lookup("qa/v1"), None);
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m0));
    assert_matches_list(&data, &client, &gun, &["targets/qa"]);
}

// ------------------------------------------------------------------ d. rotations

/// Snapshot to the server, targets key, root key: after each step a FRESH updater pinned to the
/// ORIGINAL root certificate follows the rotation chain; the new root key alone is enough
/// after the root rotation; an unrelated key is not.
#[tokio::test]
async fn key_rotations_follow_the_chain() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "rotate");
    let client = st.notary_client(&st.notary_url);
    let m = manifest(&gun);
    client.sign(&gun, "v1", &m.digest, m.size);
    let src = source(&st, &st.notary_url, None);
    let original = root_pem_at(&src, &gun, 1).await;
    let pinned = pin_pem(&original);

    let data = load_fresh(&src, &gun, &pinned)
        .await
        .expect("loads before rotation");
    let mut version = data.root().version;
    let mut targets_keys = data.root().roles.targets.keyids.clone();
    let snapshot_keys = data.root().roles.snapshot.keyids.clone();

    for (role, server_managed) in [("snapshot", true), ("targets", false), ("root", false)] {
        client.rotate(&gun, role, server_managed);
        let data = load_fresh(&src, &gun, &pinned)
            .await
            .unwrap_or_else(|e| panic!("after rotating {role}: {e}"));
        assert_eq!(
            data.docker_lookup("v1"),
            signed("targets", &m),
            "after rotating {role}"
        );
        assert!(
            data.root().version > version,
            "root version after rotating {role}: {} <= {version}",
            data.root().version
        );
        version = data.root().version;
        match role {
            "snapshot" => assert_ne!(data.root().roles.snapshot.keyids, snapshot_keys),
            "targets" => {
                assert_ne!(data.root().roles.targets.keyids, targets_keys);
                let t = data.role("targets").expect("targets");
                assert_eq!(t.signed_by, data.root().roles.targets.keyids);
                targets_keys = t.signed_by.clone();
            }
            _ => {}
        }
        assert_matches_list(&data, &client, &gun, &[]);
    }

    // Root v(N) is signed by the old and the new root key.
    let raw = fetch_root(&src, &gun, None).await;
    let json: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(json["signatures"].as_array().unwrap().len(), 2);
    let (new_id, new_pem) = root_cert(&raw);
    assert_ne!(new_pem, original);

    let data = load_fresh(&src, &gun, &pin_pem(&new_pem))
        .await
        .expect("new root pinned");
    assert_eq!(data.root().version, version);
    assert_eq!(data.root().signed_by, std::slice::from_ref(&new_id));
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m));
    let data = load_fresh(&src, &gun, &pin_id(&new_id))
        .await
        .expect("new root ID pinned");
    assert_eq!(data.root().version, version);

    // A key that never was a root key of this repository.
    let keys = tempfile::tempdir().expect("tempdir");
    let stranger = delegation_key(keys.path(), "targets/stranger", true);
    let err = load_fresh(&src, &gun, &pin_pem(&stranger.public_pem))
        .await
        .expect_err("unrelated pin must fail");
    assert!(
        matches!(err, VerifyError::UntrustedRoot { version: v, valid: 0, .. } if v == version),
        "{err:?}"
    );
    assert!(err.to_string().contains("pinned trust roots"), "{err}");
}

// ------------------------------------------------------------------ e. version memory

/// One updater across publishes, a snapshot and a root rotation: versions only grow, the
/// remembered root anchors the chain, no false rollback.
#[tokio::test]
async fn one_updater_sees_versions_grow() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "memory");
    let client = st.notary_client(&st.notary_url);
    let (m1, m2, m3) = (
        manifest(&format!("{gun} 1")),
        manifest(&format!("{gun} 2")),
        manifest(&format!("{gun} 3")),
    );
    client.sign(&gun, "v1", &m1.digest, m1.size);
    let src = source(&st, &st.notary_url, None);
    let pinned = pin_pem(&root_pem_at(&src, &gun, 1).await);
    let u = updater();
    let server = src.server().to_owned();
    let versions = |u: &Updater| {
        ["root", "timestamp", "snapshot", "targets"].map(|role| {
            u.memory()
                .seen(&server, &gun, role)
                .expect("version recorded")
        })
    };

    let data = u.load(&src, &gun, &pinned).await.expect("first load");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m1));
    let first = versions(&u);
    // Loading again without changes: same versions, still fine.
    u.load(&src, &gun, &pinned).await.expect("reload unchanged");
    assert_eq!(versions(&u), first);

    client.addhash(&gun, "v2", &m2.digest, m2.size);
    let data = u.load(&src, &gun, &pinned).await.expect("after a publish");
    assert_eq!(data.docker_lookup("v2"), signed("targets", &m2));
    let second = versions(&u);
    assert_eq!(second[0], first[0], "root unchanged");
    for i in 1..4 {
        assert!(second[i] > first[i], "role {i}: {second:?} vs {first:?}");
    }

    client.rotate(&gun, "snapshot", true);
    client.rotate(&gun, "root", false);
    client.addhash(&gun, "v3", &m3.digest, m3.size);
    let data = u.load(&src, &gun, &pinned).await.expect("after rotations");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m1));
    assert_eq!(data.docker_lookup("v3"), signed("targets", &m3));
    let third = versions(&u);
    for i in 0..4 {
        assert!(third[i] > second[i], "role {i}: {third:?} vs {second:?}");
    }
    assert_eq!(data.root().version, third[0]);
    assert_eq!(
        u.memory().trusted_root(&server, &gun).map(|r| r.version()),
        Some(third[0])
    );
    assert_matches_list(&data, &client, &gun, &[]);
}

// ------------------------------------------------------------------ f. local trust service

/// The notary-server with the local (ed25519) trust service over plain HTTP: `eddsa`
/// timestamp and snapshot signatures verify and the view equals `notary list`.
#[tokio::test]
async fn local_trust_service_ed25519() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "local");
    let client = st.notary_client(&st.notary_local_url);
    let (m1, m2) = (manifest(&format!("{gun} 1")), manifest(&format!("{gun} 2")));
    client.sign(&gun, "v1", &m1.digest, m1.size);
    client.rotate(&gun, "snapshot", true);
    client.addhash(&gun, "v2", &m2.digest, m2.size);
    let src = source(&st, &st.notary_local_url, None);
    let raw_root = fetch_root(&src, &gun, None).await;
    let (_, root_pem) = root_cert(&raw_root);

    let root = SignedFile::<Root>::parse(&gun, "root", raw_root).expect("root parses");
    for role in ["timestamp", "snapshot"] {
        let spec = root.body.roles.get(role).expect("base role");
        for id in &spec.keyids {
            assert_eq!(
                root.body.keys[id].key_type(),
                &KeyType::Ed25519,
                "{role} key"
            );
        }
        let file = fetch_json(&src, &gun, role).await;
        assert_eq!(file["signatures"][0]["method"], "eddsa", "{role}");
    }

    let data = load_fresh(&src, &gun, &pin_pem(&root_pem))
        .await
        .expect("loads");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m1));
    assert_eq!(data.docker_lookup("v2"), signed("targets", &m2));
    assert_matches_list(&data, &client, &gun, &["targets"]);
}

// ------------------------------------------------------------------ g. token auth

/// The token-auth notary-server: with credentials, anonymously (pull is anonymous), and with a
/// wrong password (refused).
#[tokio::test]
async fn token_auth_server() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "token");
    let client = st.notary_client(&st.notary_token_url);
    let m = manifest(&gun);
    client.sign(&gun, "v1", &m.digest, m.size);
    let user = st.notary_user.as_str();
    let authed = source(&st, &st.notary_token_url, Some((user, &st.notary_password)));
    let (_, root_pem) = root_cert(&fetch_root(&authed, &gun, None).await);
    let pinned = pin_pem(&root_pem);

    let data = load_fresh(&authed, &gun, &pinned)
        .await
        .expect("with credentials");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m));
    assert_matches_list(&data, &client, &gun, &[]);

    let anon = source(&st, &st.notary_token_url, None);
    let data = load_fresh(&anon, &gun, &pinned)
        .await
        .expect("anonymous pull");
    assert_eq!(data.docker_lookup("v1"), signed("targets", &m));

    let bad = source(&st, &st.notary_token_url, Some((user, "wrong-password")));
    let err = load_fresh(&bad, &gun, &pinned)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(err, VerifyError::Fetch(FetchError::Unauthorized { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("refused") && text.contains(&gun), "{text}");
}

// ------------------------------------------------------------------ h. revocation

/// Revoking alice's key (by PEM) makes her role invalid without touching releases; revoking
/// the targets key (by key ID) makes the whole load fail.
#[tokio::test]
async fn revoked_keys() {
    let Some(r) = delegated("revoked") else {
        return;
    };
    let src = source(&r.st, &r.st.notary_url, None);
    let (_, root_pem) = root_cert(&fetch_root(&src, &r.gun, None).await);
    let pin = || TrustRoot::Key(PinnedKey::from_pem(&root_pem).expect("pin"));

    for alice_pem in [&r.alice.public_pem, &r.alice.spki_pem] {
        let o = TrustOptions {
            trust_roots: vec![pin()],
            trust_root_threshold: 1,
            revoked: Revocations::from_entries([alice_pem]).expect("revocation PEM"),
        };
        let data = load_fresh(&src, &r.gun, &o).await.expect("loads");
        let alice = data.role("targets/alice").expect("alice");
        assert!(
            matches!(
                alice.status,
                RoleStatus::Invalid(VerifyError::BadSignatureThreshold {
                    valid: 0,
                    threshold: 1,
                    ..
                })
            ),
            "{:?}",
            alice.status
        );
        match data.signer_lookup("alice", Some("v1"), &r.d1.sha256) {
            SignerResult::RoleInvalid { reason } => {
                assert!(reason.contains("targets/alice"), "{reason}");
            }
            other => panic!("alice: {other:?}"),
        }
        assert_eq!(data.docker_lookup("v1"), signed("targets/releases", &r.d1));
        assert_eq!(
            data.signer_lookup("releases", Some("v1"), &r.d1.sha256),
            SignerResult::Signed
        );
        assert_eq!(
            data.signer_lookup("bob", Some("v1"), &r.d2.sha256),
            SignerResult::Signed
        );
        assert!(data.tags().iter().all(|t| t.role != "targets/alice"));
    }

    let data = load_fresh(&src, &r.gun, &pin_pem(&root_pem))
        .await
        .expect("loads");
    let targets_key = data.root().roles.targets.keyids[0].clone();
    let o = TrustOptions {
        trust_roots: vec![pin()],
        trust_root_threshold: 1,
        revoked: Revocations::from_entries([targets_key.as_str()]).expect("revocation ID"),
    };
    let err = load_fresh(&src, &r.gun, &o)
        .await
        .expect_err("targets key revoked");
    assert!(
        matches!(err, VerifyError::BadSignatureThreshold { ref role, valid: 0, threshold: 1, .. } if role == "targets"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("role targets of") && text.contains(&r.gun),
        "{text}"
    );
}

// ------------------------------------------------------------------ i. unknown GUN

/// A GUN the server has never seen: "no trust data".
#[tokio::test]
async fn unknown_gun_has_no_trust_data() {
    let Some(st) = common::stack() else { return };
    let gun = new_gun(&st, "never-published");
    let src = source(&st, &st.notary_url, None);
    let keys = tempfile::tempdir().expect("tempdir");
    let any = delegation_key(keys.path(), "targets/any", true);
    let err = load_fresh(&src, &gun, &pin_pem(&any.public_pem))
        .await
        .expect_err("no trust data");
    assert!(
        matches!(err, VerifyError::Fetch(FetchError::NotFound { gun: ref g, .. }) if *g == gun),
        "{err:?}"
    );
    assert!(err.to_string().contains("no trust data"), "{err}");
}
