//! Synthetic repositories (see `builder`) through the whole updater: delegations and lookups,
//! expiry, thresholds, duplicate and unknown-key signatures, revocation, pinning thresholds,
//! root rotation and memory, rollback, mix-and-match and structural errors.

use serde_json::{Value, json};

use super::builder::{CertSpec, MemSource, Repo, TestKey};
use super::*;
use crate::notary::schema::FileMeta;
use crate::notary::verify::check_meta;
use crate::notary::view::{RoleStatus, SignerResult};

const GUN: &str = "example.com/shop/app";
const A: [u8; 32] = [0xaa; 32];
const B: [u8; 32] = [0xbb; 32];
const PAST: &str = "2025-01-01T00:00:00.123456789-05:00";

fn root_id(repo: &Repo) -> String {
    repo.roles["root"].keys[0].id.clone()
}

fn opts(repo: &Repo) -> TrustOptions {
    pin_ids(&[&root_id(repo)])
}

fn try_load(repo: &Repo) -> Result<TrustData, VerifyError> {
    load(&updater_at(NOW), &repo.publish(), GUN, &opts(repo))
}

/// targets: v1 -> A; releases: v1 -> B; alice: v1 -> B, v2 -> A.
fn shop() -> Repo {
    let mut r = Repo::new(GUN);
    r.add_target("targets", "v1", A);
    r.delegate("targets/releases", &[""]);
    r.add_target("targets/releases", "v1", B);
    r.delegate("targets/alice", &[""]);
    r.add_target("targets/alice", "v1", B);
    r.add_target("targets/alice", "v2", A);
    r
}

#[test]
fn load_future_and_trust_data_are_shareable() {
    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync + Clone>() {}
    let repo = shop();
    let src = repo.publish();
    let u = updater_at(NOW);
    let o = opts(&repo);
    send(&u.load(&src, GUN, &o));
    shared::<TrustData>();
}

#[test]
fn delegations_resolve_like_docker_and_signers() {
    let repo = shop();
    let data = try_load(&repo).expect("verifies");
    let names: Vec<&str> = data.roles().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["targets", "targets/alice", "targets/releases"]);
    assert_eq!(
        data.docker_lookup("v1").map(|t| (t.role, t.digest)),
        Some(("targets/releases".into(), B))
    );
    // v2 is only in targets/alice: docker accepts only releases or targets.
    assert_eq!(data.docker_lookup("v2"), None);
    assert_eq!(
        data.signer_lookup("alice", Some("v1"), &B),
        SignerResult::Signed
    );
    assert_eq!(
        data.signer_lookup("targets/alice", None, &A),
        SignerResult::Signed
    );
    assert!(matches!(
        data.signer_lookup("alice", Some("v3"), &A),
        SignerResult::NotSigned { .. }
    ));
    let alice_pem = repo.roles["targets/alice"].keys[0].public_pem();
    let other_pem = repo.roles["targets/releases"].keys[0].public_pem();
    assert!(data.signer_key_matches("alice", &PinnedKey::from_pem(&alice_pem).expect("pem")));
    assert!(!data.signer_key_matches("alice", &PinnedKey::from_pem(&other_pem).expect("pem")));
    assert_eq!(data.tags().len(), 4);
    let alice = data.role("targets/alice").expect("alice");
    assert_eq!(alice.keys[0].id, repo.roles["targets/alice"].keys[0].id);
}

#[test]
fn nested_delegations_are_loaded_in_preorder_but_not_used_by_docker() {
    let mut repo = shop();
    repo.delegate("targets/releases/ci", &["v"]);
    repo.add_target("targets/releases/ci", "v9", A);
    let data = try_load(&repo).expect("verifies");
    let names: Vec<&str> = data.roles().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "targets",
            "targets/alice",
            "targets/releases",
            "targets/releases/ci"
        ]
    );
    assert_eq!(data.docker_lookup("v9"), None);
    assert_eq!(
        data.signer_lookup("releases/ci", Some("v9"), &A),
        SignerResult::Signed
    );
}

#[test]
fn expired_delegation_is_skipped_and_docker_falls_back_to_targets() {
    let mut repo = shop();
    repo.role("targets/releases").expires = PAST.into();
    let data = try_load(&repo).expect("an expired delegation is not fatal");
    let releases = data.role("targets/releases").expect("recorded");
    assert!(
        matches!(&releases.status, RoleStatus::Invalid(VerifyError::Expired { expires, .. }) if expires == PAST)
    );
    assert_eq!(
        data.docker_lookup("v1").map(|t| (t.role, t.digest)),
        Some(("targets".into(), A))
    );
    assert!(
        matches!(data.signer_lookup("releases", Some("v1"), &B), SignerResult::RoleInvalid { reason } if reason.contains("expired"))
    );
}

#[test]
fn expired_base_roles_are_fatal() {
    for role in ["timestamp", "snapshot", "targets", "root"] {
        let mut repo = shop();
        repo.role(role).expires = PAST.into();
        let err = try_load(&repo).expect_err(role);
        assert!(
            matches!(&err, VerifyError::Expired { role: r, .. } if r == role),
            "{role}: {err}"
        );
    }
}

#[test]
fn unpublished_delegation_is_not_loaded() {
    let mut repo = shop();
    repo.role("targets/alice").listed = false;
    let src = repo.publish();
    let data = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect("verifies");
    assert_eq!(
        data.role("targets/alice").map(|r| r.status.clone()),
        Some(RoleStatus::NotPublished)
    );
    assert!(
        !src.requested()
            .iter()
            .any(|f| f.starts_with("targets/alice"))
    );
    assert!(matches!(
        data.signer_lookup("alice", Some("v1"), &B),
        SignerResult::NotSigned { .. }
    ));
}

#[test]
fn targets_outside_the_delegation_paths_are_ignored() {
    let mut repo = shop();
    repo.delegate("targets/alice", &["v1"]);
    let data = try_load(&repo).expect("verifies");
    let alice = data.role("targets/alice").expect("alice");
    assert_eq!(alice.ignored, vec!["v2".to_owned()]);
    assert_eq!(
        data.signer_lookup("alice", Some("v1"), &B),
        SignerResult::Signed
    );
    assert!(
        matches!(data.signer_lookup("alice", Some("v2"), &A), SignerResult::NotSigned { reason } if reason.contains("outside"))
    );

    // A releases role whose paths exclude the tag is skipped by the docker lookup.
    let mut repo = shop();
    repo.delegate("targets/releases", &["prod-"]);
    let data = try_load(&repo).expect("verifies");
    assert_eq!(
        data.docker_lookup("v1").map(|t| (t.role, t.digest)),
        Some(("targets".into(), A))
    );
}

#[test]
fn duplicate_signatures_count_once() {
    let mut repo = shop();
    let root = repo.role("root");
    root.threshold = 2;
    root.signers = vec![root.keys[0].clone(), root.keys[0].clone()];
    let err = try_load(&repo).expect_err("one key twice");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 1, threshold: 2, .. } if role == "root"),
        "{err}"
    );

    let mut repo = shop();
    let alice = repo.role("targets/alice");
    alice.threshold = 2;
    alice.signers = vec![alice.keys[0].clone(), alice.keys[0].clone()];
    let data = try_load(&repo).expect("an under-signed delegation is not fatal");
    let status = &data.role("targets/alice").expect("alice").status;
    assert!(
        matches!(
            status,
            RoleStatus::Invalid(VerifyError::BadSignatureThreshold {
                valid: 1,
                threshold: 2,
                ..
            })
        ),
        "{status:?}"
    );
}

#[test]
fn threshold_two_with_two_keys() {
    let mut repo = shop();
    let extra = TestKey::ecdsa();
    let targets = repo.role("targets");
    targets.threshold = 2;
    targets.keys.push(extra.clone());
    let err = try_load(&repo).expect_err("only one of two signed");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 1, threshold: 2, .. } if role == "targets"),
        "{err}"
    );
    repo.role("targets").signers.push(extra);
    try_load(&repo).expect("both signed");
}

#[test]
fn unknown_key_type_signatures_do_not_count() {
    let mut repo = shop();
    let unknown = TestKey::unknown();
    let targets = repo.role("targets");
    targets.keys = vec![unknown.clone()];
    targets.signers = vec![unknown.clone()];
    let err = try_load(&repo).expect_err("unknown key type");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 0, .. } if role == "targets"),
        "{err}"
    );
    let good = TestKey::ecdsa();
    let targets = repo.role("targets");
    targets.keys.push(good.clone());
    targets.signers.push(good);
    try_load(&repo).expect("the other key's signature counts");
}

#[test]
fn revoked_keys_are_removed_before_counting() {
    let repo = shop();
    let mut o = opts(&repo);
    o.revoked =
        Revocations::from_entries([repo.roles["targets"].keys[0].public_pem()]).expect("pem");
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &o).expect_err("targets key revoked");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 0, .. } if role == "targets"),
        "{err}"
    );

    let mut o = opts(&repo);
    o.revoked
        .add_key_id(&repo.roles["targets/alice"].keys[0].id);
    let data = load(&updater_at(NOW), &repo.publish(), GUN, &o).expect("alice only invalid");
    assert!(matches!(
        data.signer_lookup("alice", Some("v1"), &B),
        SignerResult::RoleInvalid { .. }
    ));

    let mut o = opts(&repo);
    o.revoked.add_key_id(&root_id(&repo));
    let err =
        load(&updater_at(NOW), &repo.publish(), GUN, &o).expect_err("pinned root key revoked");
    assert!(
        matches!(err, VerifyError::UntrustedRoot { valid: 0, .. }),
        "{err}"
    );
}

#[test]
fn trust_root_threshold_counts_distinct_pinned_signers() {
    let mut repo = shop();
    let second = TestKey::x509(&CertSpec::new(GUN));
    repo.role("root").keys.push(second.clone());
    let ids: Vec<String> = repo.roles["root"]
        .keys
        .iter()
        .map(|k| k.id.clone())
        .collect();
    let mut o = pin_ids(&[&ids[0], &ids[1]]);
    o.trust_root_threshold = 2;
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &o).expect_err("one pinned key signed");
    assert!(
        matches!(
            err,
            VerifyError::UntrustedRoot {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    // The same key pinned twice (by ID and by PEM) is still one key.
    let mut same = pin_ids(&[&ids[0]]);
    same.trust_roots.push(TrustRoot::Key(
        PinnedKey::from_pem(&repo.roles["root"].keys[0].cert_pem()).expect("pem"),
    ));
    same.trust_root_threshold = 2;
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &same).expect_err("same key twice");
    assert!(
        matches!(
            err,
            VerifyError::UntrustedRoot {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    repo.role("root").signers.push(second);
    load(&updater_at(NOW), &repo.publish(), GUN, &o).expect("both pinned keys signed");
}

#[test]
fn pinning_errors() {
    let repo = shop();
    let err =
        load(&updater_at(NOW), &repo.publish(), GUN, &pin_ids(&["00ff"])).expect_err("wrong pin");
    assert!(
        matches!(
            err,
            VerifyError::UntrustedRoot {
                valid: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &pin_ids(&[])).expect_err("no pins");
    assert!(matches!(err, VerifyError::NoTrustRoots { .. }), "{err}");
    let pem = repo.roles["root"].keys[0].public_pem();
    load(&updater_at(NOW), &repo.publish(), GUN, &pin_pem(&pem)).expect("pinned by public key PEM");
}

type CertCase = (&'static str, fn(&mut CertSpec), &'static str);

#[test]
fn root_certificate_rules() {
    let cases: [CertCase; 4] = [
        ("cn", |c| c.cn = "example.com/other".into(), "CN"),
        ("sha1", |c| c.sha1 = true, "SHA-1"),
        ("ca", |c| c.is_ca = true, "leaf"),
        (
            "future",
            |c| c.not_before = "260101000000Z".into(),
            "not valid before",
        ),
    ];
    for (name, edit, expected) in cases {
        let mut spec = CertSpec::new(GUN);
        edit(&mut spec);
        let mut repo = shop();
        let key = TestKey::x509(&spec);
        let root = repo.role("root");
        root.keys = vec![key.clone()];
        root.signers = vec![key];
        let err = try_load(&repo).expect_err(name);
        assert!(
            matches!(&err, VerifyError::RootCertificates { detail, .. } if detail.contains(expected)),
            "{name}: {err}"
        );
    }
    let mut repo = shop();
    let key = TestKey::x509(&CertSpec::new("example.com/shop/*"));
    let root = repo.role("root");
    root.keys = vec![key.clone()];
    root.signers = vec![key];
    try_load(&repo).expect("wildcard CN");
}

#[test]
fn root_rotation_is_followed_from_the_pinned_root() {
    let mut repo = shop();
    let old = repo.roles["root"].keys[0].clone();
    let new = TestKey::x509(&CertSpec::new(GUN));
    repo.role("root").expires = PAST.into(); // intermediate roots may be expired
    repo.rotate_root(vec![new.clone()], vec![old.clone(), new.clone()]);
    repo.role("root").expires = "2030-01-01T00:00:00Z".into();
    let src = repo.publish();
    let data =
        load(&updater_at(NOW), &src, GUN, &pin_ids(&[&old.id])).expect("rotation from pinned v1");
    assert_eq!(data.root().version, 2);
    assert!(src.requested().contains(&"1.root.json".to_owned()));
    load(&updater_at(NOW), &repo.publish(), GUN, &pin_ids(&[&new.id]))
        .expect("pinned new key directly");

    // A root signed only by its new key does not rotate.
    let mut repo = shop();
    let old = repo.roles["root"].keys[0].clone();
    repo.rotate_root(vec![new.clone()], vec![new.clone()]);
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &pin_ids(&[&old.id]))
        .expect_err("not signed by v1");
    assert!(
        matches!(
            err,
            VerifyError::RotationNotSigned {
                version: 2,
                prev_version: 1,
                valid: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn remembered_root_anchors_rotation_and_forbids_rollback() {
    let mut repo = shop();
    let old = repo.roles["root"].keys[0].clone();
    let u = updater_at(NOW);
    let o = pin_ids(&[&old.id]);
    let v1 = repo.publish();
    load(&u, &v1, GUN, &o).expect("v1");
    let new = TestKey::x509(&CertSpec::new(GUN));
    repo.rotate_root(vec![new.clone()], vec![old, new]);
    let v2 = repo.publish();
    load(&u, &v2, GUN, &o).expect("v2 via the remembered v1");
    assert!(
        !v2.requested().contains(&"1.root.json".to_owned()),
        "{:?}",
        v2.requested()
    );
    let err = load(&u, &v1, GUN, &o).expect_err("root went back");
    assert!(
        matches!(&err, VerifyError::Rollback { role, seen: 2, got: 1, .. } if role == "root"),
        "{err}"
    );
}

#[test]
fn versions_never_go_back() {
    let mut repo = shop();
    let u = updater_at(NOW);
    let old = repo.publish();
    for role in ["timestamp", "snapshot", "targets", "targets/alice"] {
        repo.role(role).version = 2;
    }
    load(&u, &repo.publish(), GUN, &opts(&repo)).expect("v2");
    let err = load(&u, &old, GUN, &opts(&repo)).expect_err("old data");
    assert!(
        matches!(&err, VerifyError::Rollback { role, seen: 2, got: 1, .. } if role == "timestamp"),
        "{err}"
    );
    for role in ["timestamp", "snapshot"] {
        repo.role(role).version = 3;
    }
    repo.role("targets/alice").version = 1;
    let err = load(&u, &repo.publish(), GUN, &opts(&repo)).expect_err("alice went back");
    assert!(
        matches!(&err, VerifyError::Rollback { role, .. } if role == "targets/alice"),
        "{err}"
    );
}

fn file_like(src: &MemSource, prefix: &str) -> String {
    let found = src
        .files
        .keys()
        .find(|f| f.starts_with(prefix) && f.len() == prefix.len() + 69);
    found.cloned().unwrap_or_default()
}

#[test]
fn mix_and_match_and_changed_files() {
    let mut repo = shop();
    let a = repo.publish();
    repo.add_target("targets", "v3", B);
    let mut b = repo.publish();
    // Snapshot of the earlier publication served under the new name.
    let name = file_like(&b, "snapshot.");
    b.files.insert(name, a.files["snapshot.json"].clone());
    b.files
        .insert("snapshot.json".into(), a.files["snapshot.json"].clone());
    let err = load(&updater_at(NOW), &b, GUN, &opts(&repo)).expect_err("mixed");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, parent, .. } if role == "snapshot" && parent == "timestamp"),
        "{err}"
    );

    // A delegation that does not match the snapshot is fatal.
    let mut c = repo.publish();
    let name = file_like(&c, "targets/alice.");
    c.files
        .insert(name, a.files["targets/releases.json"].clone());
    let err = load(&updater_at(NOW), &c, GUN, &opts(&repo)).expect_err("delegation hash");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, .. } if role == "targets/alice"),
        "{err}"
    );

    // root.json re-signed (new bytes) after the snapshot was made.
    let mut d = repo.publish();
    d.files.insert("root.json".into(), repo.root_bytes());
    let err = load(&updater_at(NOW), &d, GUN, &opts(&repo)).expect_err("root changed");
    assert!(matches!(err, VerifyError::RootChanged { .. }), "{err}");

    // Longer than the snapshot says: the source refuses it, and so would the verifier.
    let mut e = repo.publish();
    let name = file_like(&e, "targets.");
    let mut long = e.files[&name].clone();
    long.extend_from_slice(b"   ");
    e.files.insert(name, long.clone());
    e.files.insert("targets.json".into(), long.clone());
    let err = load(&updater_at(NOW), &e, GUN, &opts(&repo)).expect_err("too long");
    assert!(
        matches!(
            err,
            VerifyError::Fetch(crate::notary::source::FetchError::TooLarge { .. })
        ),
        "{err}"
    );
    let meta = FileMeta {
        length: 10,
        hashes: Default::default(),
        custom: None,
    };
    let err = check_meta(GUN, "targets", "snapshot", &long, &meta).expect_err("too long");
    assert!(
        matches!(err, VerifyError::TooLong { limit: 10, .. }),
        "{err}"
    );
}

#[test]
fn structural_errors() {
    // A key whose ID is not the one it is listed under.
    let mut repo = shop();
    let real = repo.roles["targets"].keys[0].id.clone();
    let fake = "ab".repeat(32);
    let (r1, f1) = (real.clone(), fake.clone());
    repo.body_hooks.insert(
        "root".into(),
        Box::new(move |v: &mut Value| {
            let key = v["keys"]
                .as_object_mut()
                .and_then(|m| m.remove(&r1))
                .unwrap_or_default();
            v["keys"][&f1] = key;
            v["roles"]["targets"]["keyids"] = json!([f1]);
        }),
    );
    repo.bytes_hooks.insert(
        "targets".into(),
        Box::new(move |b: &mut Vec<u8>| {
            *b = String::from_utf8_lossy(b)
                .replace(&real, &fake)
                .into_bytes();
        }),
    );
    let err = try_load(&repo).expect_err("key ID mismatch");
    assert!(matches!(err, VerifyError::KeyIdMismatch { .. }), "{err}");

    // Delegations may only name direct children.
    let mut repo = shop();
    repo.body_hooks.insert(
        "targets".into(),
        Box::new(|v: &mut Value| {
            v["delegations"]["roles"][0]["name"] = json!("targets/a/b");
        }),
    );
    let err = try_load(&repo).expect_err("grandchild");
    assert!(
        matches!(&err, VerifyError::Malformed { role, detail, .. } if role == "targets" && detail.contains("direct child")),
        "{err}"
    );

    // A threshold of 0 and a key ID missing from the key map.
    for (what, hook) in [
        ("threshold", json!(0)),
        ("keyids", json!(["cd".repeat(32)])),
    ] {
        let mut repo = shop();
        repo.body_hooks.insert(
            "root".into(),
            Box::new(move |v: &mut Value| {
                v["roles"]["snapshot"][what] = hook.clone();
            }),
        );
        let err = try_load(&repo).expect_err(what);
        assert!(
            matches!(&err, VerifyError::Malformed { role, .. } if role == "root"),
            "{what}: {err}"
        );
    }

    // Go's HTML escaping in the file (`\u003c`) still verifies: the canonical form is raw.
    let mut repo = shop();
    repo.add_target("targets", "a<b>&c", A);
    repo.bytes_hooks.insert(
        "targets".into(),
        Box::new(|b: &mut Vec<u8>| {
            *b = String::from_utf8_lossy(b)
                .replace("a<b>&c", "a\\u003cb\\u003e\\u0026c")
                .into_bytes();
        }),
    );
    let data = try_load(&repo).expect("verifies");
    assert!(data.docker_lookup("a<b>&c").is_some());
}
