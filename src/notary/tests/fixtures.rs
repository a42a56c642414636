//! Tests on real notary-produced data: notary's compatibility fixtures (served through the
//! whole updater) and connaisseur's pretty-printed files (verify-level checks only: their
//! snapshot hashes cover a compact re-serialization and some lengths were edited by hand).

use base64::Engine as _;
use serde_json::Value;
use time::macros::datetime;

use super::builder::MemSource;
use super::*;
use crate::notary::schema::{Root, SignedFile, Snapshot, Targets, Timestamp};
use crate::notary::verify::{
    DelegationOutcome, TrustedRoot, verify_delegation, verify_pinned_root, verify_snapshot,
    verify_targets, verify_threshold, verify_timestamp,
};
use crate::notary::view::{RoleStatus, SignerResult};

const GUN01: &str = "docker.com/notary0.1/samplerepo";
const GUN03: &str = "docker.com/notary0.3/tst";
const ROOT01: &str = "4ff57dc987163053a12c066f2dd36b1ae6037a92f5416d381fe311a3db1868d8";
const ROOT03: &str = "354e203ba09dbe17807b6a9d191bff887167c06d121e738d849446a9c76c2866";
const TS03: &str = "f694343ec1d508b2840d86aec5387d7b4d62a39647e33566b2b2abf96029750c";
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const LICENSE_SHA: &str = "9395bac6fccb26bcb55efb083d1b4b0fe72a1c25f959f056c016120b3bb56a62";

fn fixture(rel: &str) -> Vec<u8> {
    let path = crate::notary::fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// A notary fixture repository served under the server's file names.
fn notary_source(dir: &str, roles: &[&str]) -> MemSource {
    let mut src = MemSource::default();
    for role in roles {
        src.put(role, fixture(&format!("notary/{dir}/{role}.json")));
    }
    let root = fixture(&format!("notary/{dir}/root.json"));
    src.files.insert("1.root.json".into(), root);
    src
}

fn source03() -> MemSource {
    notary_source(
        "notary0.3",
        &[
            "root",
            "timestamp",
            "snapshot",
            "targets",
            "targets/releases",
        ],
    )
}

/// The PEM certificate of notary0.3's root key.
fn root03_pem() -> String {
    let root: Value = serde_json::from_slice(&fixture("notary/notary0.3/root.json")).expect("json");
    let b64 = root["signed"]["keys"][ROOT03]["keyval"]["public"]
        .as_str()
        .expect("public");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("b64"),
    )
    .expect("utf8")
}

#[test]
fn notary01_loads_and_resolves() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut src = notary_source("notary0.1", &["root", "timestamp", "snapshot", "targets"]);
    // Without a current `snapshot.json` to take ahead, the snapshot is fetched by hash.
    src.files.remove("snapshot.json");
    let data =
        load(&updater_at(NOW), &src, GUN01, &pin_ids(&[ROOT01])).expect("notary0.1 verifies");
    assert_eq!(data.root().version, 1);
    assert_eq!(data.role("targets").map(|r| r.version), Some(Some(2)));
    let hit = data.docker_lookup("LICENSE").expect("LICENSE signed");
    assert_eq!(
        (hit.role.as_str(), hit.digest, hit.length),
        ("targets", sha(LICENSE_SHA), 11309)
    );
    assert_eq!(data.tags().len(), 1);
    // Fetched by hash once the checksum is known, as notary does.
    let asked = src.requested();
    assert!(
        asked
            .iter()
            .any(|f| f.starts_with("snapshot.") && f.len() == "snapshot..json".len() + 64),
        "{asked:?}"
    );
}

#[test]
fn notary03_loads_with_rsa_x509_delegation() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let data = load(&updater_at(NOW), &source03(), GUN03, &pin_ids(&[ROOT03]))
        .expect("notary0.3 verifies");
    let releases = data.role("targets/releases").expect("releases loaded");
    assert_eq!(releases.status, RoleStatus::Valid);
    assert_eq!(
        releases.signed_by,
        vec!["68243a1f948be7841403f65fc8f24d5eda9050c337e727e2eacc3d3cb5227d73"]
    );
    let hello = data.docker_lookup("hello").expect("hello via releases");
    assert_eq!(
        (hello.role.as_str(), hello.digest),
        ("targets/releases", sha(EMPTY_SHA))
    );
    assert_eq!(
        data.docker_lookup("LICENSE").map(|t| t.role),
        Some("targets".to_owned())
    );
    assert_eq!(data.docker_lookup("nope"), None);
    assert_eq!(
        data.signer_lookup("releases", Some("hello"), &sha(EMPTY_SHA)),
        SignerResult::Signed
    );
    assert_eq!(
        data.signer_lookup("releases", None, &sha(EMPTY_SHA)),
        SignerResult::Signed
    );
    assert!(matches!(
        data.signer_lookup("releases", Some("hello"), &sha(LICENSE_SHA)),
        SignerResult::NotSigned { reason } if reason.contains("not sha256:9395")
    ));
    assert_eq!(
        data.signer_lookup("bob", Some("hello"), &sha(EMPTY_SHA)),
        SignerResult::NoSuchRole
    );
    assert_eq!(data.root().roles.timestamp.keyids, vec![TS03]);
}

#[test]
fn notary03_pinned_by_certificate_pem_and_canonical_id() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let u = updater_at(NOW);
    load(&u, &source03(), GUN03, &pin_pem(&root03_pem())).expect("pinned by PEM certificate");
    let pin = PinnedKey::from_pem(&root03_pem()).expect("pem");
    assert_eq!(pin.cert_key_id(), Some(ROOT03));
    load(
        &updater_at(NOW),
        &source03(),
        GUN03,
        &pin_ids(&[&pin.key_id()]),
    )
    .expect("pinned by canonical ID");
}

#[test]
fn notary03_expired_root_certificate_is_rejected() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let u = updater_at(datetime!(2026-11-25 00:00 UTC));
    let err =
        load(&u, &source03(), GUN03, &pin_ids(&[ROOT03])).expect_err("cert expired 2026-07-25");
    assert!(
        matches!(&err, VerifyError::RootCertificates { detail, .. } if detail.contains("expired")),
        "{err}"
    );
}

#[test]
fn notary03_other_gun_does_not_match_certificate_cn() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let err = load(
        &updater_at(NOW),
        &source03(),
        "docker.com/other",
        &pin_ids(&[ROOT03]),
    )
    .expect_err("CN");
    assert!(
        matches!(&err, VerifyError::RootCertificates { detail, .. } if detail.contains("CN")),
        "{err}"
    );
}

#[test]
fn notary03_wrong_pin_is_untrusted() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let err = load(&updater_at(NOW), &source03(), GUN03, &pin_ids(&[TS03])).expect_err("wrong pin");
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
    assert!(
        err.to_string()
            .contains("signed by 0 of the 1 required pinned trust roots"),
        "{err}"
    );
}

#[test]
fn notary03_tampered_targets_fail_the_snapshot_hash() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut src = source03();
    let raw = fixture("notary/notary0.3/targets.json");
    let tampered = String::from_utf8(raw)
        .expect("utf8")
        .replace("LICENSE", "LICENSF")
        .into_bytes();
    let name = src
        .files
        .keys()
        .find(|f| f.starts_with("targets.") && f.len() > 20)
        .cloned()
        .expect("file");
    // Under both names: a cold load asks `targets.json` ahead.
    src.files.insert(name, tampered.clone());
    src.files.insert("targets.json".into(), tampered);
    let err = load(&updater_at(NOW), &src, GUN03, &pin_ids(&[ROOT03])).expect_err("hash");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, parent, .. } if role == "targets" && parent == "snapshot"),
        "{err}"
    );
}

#[test]
fn notary03_snapshot_from_another_repository_is_a_hash_mismatch() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut src = source03();
    let name = src
        .files
        .keys()
        .find(|f| f.starts_with("snapshot.") && f.len() > 20)
        .cloned()
        .expect("file");
    src.files
        .insert(name, fixture("notary/notary0.1/snapshot.json"));
    src.files.insert(
        "snapshot.json".into(),
        fixture("notary/notary0.1/snapshot.json"),
    );
    let err = load(&updater_at(NOW), &src, GUN03, &pin_ids(&[ROOT03])).expect_err("mix and match");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, .. } if role == "snapshot"),
        "{err}"
    );
}

#[test]
fn notary03_revoked_keys_do_not_count() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut opts = pin_ids(&[ROOT03]);
    opts.revoked.add_key_id(TS03);
    let err = load(&updater_at(NOW), &source03(), GUN03, &opts).expect_err("revoked timestamp key");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 0, threshold: 1, .. } if role == "timestamp"),
        "{err}"
    );

    // Revoking the delegation's certificate only invalidates the delegation.
    let targets: Value =
        serde_json::from_slice(&fixture("notary/notary0.3/targets.json")).expect("json");
    let keys = &targets["signed"]["delegations"]["keys"];
    let b64 = keys
        .as_object()
        .and_then(|m| m.values().next())
        .expect("key")["keyval"]["public"]
        .as_str()
        .expect("b64");
    let cert = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("b64"),
    )
    .expect("pem");
    let mut opts = pin_ids(&[ROOT03]);
    opts.revoked = Revocations::from_entries([cert]).expect("revocation");
    let data = load(&updater_at(NOW), &source03(), GUN03, &opts).expect("loads");
    let releases = data.role("targets/releases").expect("releases");
    assert!(matches!(
        releases.status,
        RoleStatus::Invalid(VerifyError::BadSignatureThreshold { .. })
    ));
    assert_eq!(data.docker_lookup("hello"), None);
    assert!(matches!(
        data.signer_lookup("releases", Some("hello"), &sha(EMPTY_SHA)),
        SignerResult::RoleInvalid { .. }
    ));
}

#[test]
fn notary03_malformed_files() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut src = source03();
    src.files
        .insert("root.json".into(), b"{\"signed\": {".to_vec());
    let err = load(&updater_at(NOW), &src, GUN03, &pin_ids(&[ROOT03])).expect_err("json");
    assert!(
        matches!(&err, VerifyError::Malformed { role, detail, .. } if role == "root" && detail.contains("JSON")),
        "{err}"
    );

    let mut src = source03();
    let ts = String::from_utf8(fixture("notary/notary0.3/timestamp.json")).expect("utf8");
    let ts = ts.replace("\"sig\":\"4DDa", "\"sig\":\"!DDa");
    src.files.insert("timestamp.json".into(), ts.into_bytes());
    let err = load(&updater_at(NOW), &src, GUN03, &pin_ids(&[ROOT03])).expect_err("base64");
    assert!(
        matches!(&err, VerifyError::Malformed { role, detail, .. } if role == "timestamp" && detail.contains("base64")),
        "{err}"
    );

    let mut src = source03();
    src.files.insert(
        "timestamp.json".into(),
        fixture("notary/notary0.3/snapshot.json"),
    );
    let err = load(&updater_at(NOW), &src, GUN03, &pin_ids(&[ROOT03])).expect_err("type");
    assert!(
        matches!(&err, VerifyError::WrongType { got, .. } if got == "Snapshot"),
        "{err}"
    );
}

fn trusted03() -> TrustedRoot {
    let root = SignedFile::<Root>::parse(GUN03, "root", fixture("notary/notary0.3/root.json"))
        .expect("root");
    verify_pinned_root(
        root,
        &pin_ids(&[ROOT03]).trust_roots,
        1,
        &Revocations::new(),
        NOW,
        true,
    )
    .expect("trusted")
}

#[test]
fn notary03_timestamp_signature_checks() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let root = trusted03();
    let none = Revocations::new();
    let raw = fixture("notary/notary0.3/timestamp.json");
    verify_timestamp(&root, raw.clone(), None, NOW, &none).expect("valid");

    // Re-serialized pretty, keys reordered: still verifies (canonical form is what is signed).
    let v: Value = serde_json::from_slice(&raw).expect("json");
    let pretty = serde_json::to_vec_pretty(
        &serde_json::json!({"signatures": v["signatures"], "signed": v["signed"]}),
    )
    .expect("json");
    verify_timestamp(&root, pretty, None, NOW, &none).expect("reformatted still verifies");

    // A flipped byte in `signed`: signature no longer counts.
    let flipped = String::from_utf8(raw.clone())
        .expect("utf8")
        .replace("\"version\":4", "\"version\":5")
        .into_bytes();
    let err = verify_timestamp(&root, flipped, None, NOW, &none).expect_err("bad signature");
    assert!(
        matches!(
            &err,
            VerifyError::BadSignatureThreshold {
                valid: 0,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("role timestamp of {GUN03} is signed by 0 of the 1 required keys")
    );

    // Dropped signature.
    let mut dropped = v.clone();
    dropped["signatures"] = Value::Array(Vec::new());
    let err = verify_timestamp(
        &root,
        serde_json::to_vec(&dropped).expect("json"),
        None,
        NOW,
        &none,
    )
    .expect_err("none");
    assert!(matches!(err, VerifyError::NoSignatures { .. }), "{err}");

    // Rollback and expiry.
    let err = verify_timestamp(&root, raw.clone(), Some(5), NOW, &none).expect_err("rollback");
    assert!(
        matches!(
            err,
            VerifyError::Rollback {
                seen: 5,
                got: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = verify_timestamp(&root, raw, None, datetime!(2117-01-01 00:00 UTC), &none)
        .expect_err("expired");
    assert!(
        matches!(&err, VerifyError::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
}

/// Connaisseur files compacted with key order kept (what their snapshot hashes cover).
fn compact(rel: &str) -> Vec<u8> {
    let raw = fixture(&format!(
        "connaisseur/never-expire-with-delegations-image/{rel}.json"
    ));
    let (mut out, mut in_str, mut esc) = (Vec::with_capacity(raw.len()), false, false);
    for b in raw {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}

#[test]
fn connaisseur_signatures_hashes_and_delegations() {
    if !crate::notary::fixtures_present() {
        return;
    }
    const GUN: &str = "securesystems.de";
    const ROOT: &str = "52e8085cd75be93c5062130e08663a83a20f2eb9baf31f28eef4735e50f3a407";
    let none = Revocations::new();
    let root = SignedFile::<Root>::parse(GUN, "root", compact("root")).expect("root");
    // Its root certificate is a CA (BasicConstraints CA:TRUE): notary accepts no such root.
    let err = verify_pinned_root(
        root.clone(),
        &pin_ids(&[ROOT]).trust_roots,
        1,
        &none,
        NOW,
        true,
    )
    .expect_err("CA");
    assert!(
        matches!(&err, VerifyError::RootCertificates { detail, .. } if detail.contains("leaf")),
        "{err}"
    );
    // The signature itself is good; take the root as trusted to check the other roles.
    let signed_by = verify_threshold(&root, &root.body.keys, &root.body.roles.root, &none)
        .expect("root signature");
    let root = TrustedRoot {
        root_keys: root.body.keys.clone(),
        file: root,
        signed_by,
    };
    let ts = verify_timestamp(&root, compact("timestamp"), None, NOW, &none).expect("timestamp");
    let snap = verify_snapshot(&root, &ts.file.body, compact("snapshot"), None, NOW, &none)
        .expect("snapshot");
    let snap: &Snapshot = &snap.file.body;

    // targets' listed length (523) was edited by hand: the length check catches it.
    let err = verify_targets(&root, snap, compact("targets"), None, NOW, &none)
        .expect_err("length edited");
    assert!(
        matches!(err, VerifyError::TooLong { limit: 523, .. }),
        "{err}"
    );
    let targets =
        SignedFile::<Targets>::parse(GUN, "targets", compact("targets")).expect("targets");
    verify_threshold(
        &targets,
        &root.file.body.keys,
        &root.file.body.roles.targets,
        &none,
    )
    .expect("targets signature");

    for (name, tag) in [
        ("targets/del1", "sign"),
        ("targets/del2", "v1"),
        ("targets/releases", "sign"),
    ] {
        let out = verify_delegation(
            GUN,
            "targets",
            &targets.body,
            snap,
            name,
            compact(name),
            None,
            NOW,
            &none,
        )
        .expect(name);
        let DelegationOutcome::Valid(v) = out else {
            panic!("{name} invalid")
        };
        assert!(v.file.body.targets.contains_key(tag), "{name}");
    }
    // The pretty-printed file itself is not what the snapshot hashed.
    let pretty = fixture("connaisseur/never-expire-with-delegations-image/targets/del1.json");
    let err = verify_delegation(
        GUN,
        "targets",
        &targets.body,
        snap,
        "targets/del1",
        pretty,
        None,
        NOW,
        &none,
    )
    .expect_err("pretty");
    assert!(
        matches!(
            err,
            VerifyError::TooLong { .. } | VerifyError::HashMismatch { .. }
        ),
        "{err}"
    );
    // A timestamp is not a root.
    let err = SignedFile::<Timestamp>::parse(GUN, "timestamp", compact("root")).expect_err("type");
    assert!(matches!(err, VerifyError::WrongType { .. }), "{err}");
}
