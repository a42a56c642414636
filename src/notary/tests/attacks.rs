//! The TUF attack classes against the verifier, one test per attack, named after it, on
//! synthetic repositories (`builder`): arbitrary package, rollback, indefinite freeze, endless
//! data, mix-and-match, fast-forward, threshold with duplicate keys (root pins and role
//! thresholds), key revocation evasion, root rotation that skips the remembered threshold and
//! signature flood. Tests one past each trust-data limit are in `limits`; the attacks over
//! the wire (slow retrieval, a flood against the running webhook) are in `admission::notary_attacks`
//! (they drive the webhook, which `notary` must not import).

use serde_json::{Value, json};

use super::builder::{CertSpec, Repo, TestKey};
use super::*;
use crate::limits::LIMITS;
use crate::notary::source::FetchError;
use crate::notary::view::RoleStatus;

pub(super) const GUN: &str = "example.com/shop/app";
const A: [u8; 32] = [0xaa; 32];
const B: [u8; 32] = [0xbb; 32];

pub(super) fn shop() -> Repo {
    let mut r = Repo::new(GUN);
    r.add_target("targets", "v1", A);
    r.delegate("targets/releases", &[""]);
    r.add_target("targets/releases", "v1", B);
    r
}

pub(super) fn opts(repo: &Repo) -> TrustOptions {
    pin_ids(&[&repo.roles["root"].keys[0].id])
}

pub(super) fn try_load(repo: &Repo) -> Result<TrustData, VerifyError> {
    load(&updater_at(NOW), &repo.publish(), GUN, &opts(repo))
}

/// Rewrites a signed file's JSON (after signing, before parents hash it).
fn edit_json(raw: &mut Vec<u8>, f: impl Fn(&mut Value)) {
    let mut v: Value = serde_json::from_slice(raw).expect("json");
    f(&mut v);
    *raw = serde_json::to_vec(&v).expect("json");
}

/// `n` bogus signatures by `keyid`, put before the real ones (so a verifier that stops at the
/// first valid signature of a key still checks them all).
pub(crate) fn prepend_bogus_signatures(raw: &mut Vec<u8>, keyid: &str, n: usize) {
    let keyid = keyid.to_owned();
    edit_json(raw, move |v| {
        let bogus = json!({"keyid": keyid, "method": "ecdsa",
            "sig": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="});
        let mut sigs = vec![bogus; n];
        sigs.extend(v["signatures"].as_array().cloned().unwrap_or_default());
        v["signatures"] = Value::Array(sigs);
    });
}

/// Pads a file with trailing whitespace (still valid JSON) to exactly `len` bytes.
fn pad_to(raw: &mut Vec<u8>, len: usize) {
    raw.resize(len, b' ');
}

// ---- arbitrary package ---------------------------------------------------------------

#[test]
fn arbitrary_package_signed_by_a_wrong_key_is_rejected() {
    let mut repo = shop();
    repo.role("targets").signers = vec![TestKey::ecdsa()];
    let err = try_load(&repo).expect_err("targets signed by a stranger");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 0, .. } if role == "targets"),
        "{err}"
    );
}

#[test]
fn arbitrary_package_with_a_tampered_digest_is_rejected() {
    let mut repo = shop();
    repo.bytes_hooks.insert(
        "targets".into(),
        Box::new(|raw| {
            edit_json(raw, |v| {
                v["signed"]["targets"]["v1"]["hashes"]["sha256"] =
                    json!("u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7s=");
            });
        }),
    );
    let err = try_load(&repo).expect_err("digest changed after signing");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, .. } if role == "targets"),
        "{err}"
    );
}

// ---- rollback, freeze, mix-and-match, fast-forward ----------------------------------------

#[test]
fn rollback_to_older_signed_metadata_is_rejected() {
    let mut repo = shop();
    let u = updater_at(NOW);
    let old = repo.publish();
    for role in ["timestamp", "snapshot", "targets"] {
        repo.role(role).version = 2;
    }
    load(&u, &repo.publish(), GUN, &opts(&repo)).expect("v2");
    let err = load(&u, &old, GUN, &opts(&repo)).expect_err("replayed v1");
    assert!(
        matches!(
            &err,
            VerifyError::Rollback {
                seen: 2,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn indefinite_freeze_with_an_expired_timestamp_is_rejected() {
    let repo = shop();
    let src = repo.publish();
    // The same, validly signed files, replayed after the timestamp expired.
    let later = time::macros::datetime!(2030-01-02 00:00 UTC);
    let err = load(&updater_at(later), &src, GUN, &opts(&repo)).expect_err("frozen");
    assert!(matches!(&err, VerifyError::Expired { .. }), "{err}");
}

#[test]
fn mix_and_match_of_a_snapshot_from_another_version_is_rejected() {
    let mut repo = shop();
    let v1 = repo.publish();
    repo.role("snapshot").version = 2;
    repo.add_target("targets", "v2", B);
    let mut v2 = repo.publish();
    // Serve v1's snapshot under the name (hash) v2's timestamp asks for, and as the current one
    // (a cold load asks `snapshot.json` ahead).
    let old_snapshot = v1.files["snapshot.json"].clone();
    v2.files
        .insert("snapshot.json".into(), old_snapshot.clone());
    let wanted = v2
        .files
        .keys()
        .find(|k| k.starts_with("snapshot.") && k.len() > "snapshot.json".len())
        .cloned()
        .expect("snapshot by hash");
    v2.files.insert(wanted, old_snapshot);
    let err = load(&updater_at(NOW), &v2, GUN, &opts(&repo)).expect_err("mixed");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, .. } | VerifyError::TooLong { role, .. } if role == "snapshot"),
        "{err}"
    );
}

#[test]
fn mix_and_match_of_targets_from_another_repository_is_rejected() {
    let repo = shop();
    let mut src = repo.publish();
    let other = shop().publish();
    let name = src
        .files
        .keys()
        .find(|k| k.starts_with("targets.") && k.len() > "targets.json".len())
        .cloned()
        .expect("targets by hash");
    // Under both names: a cold load asks `targets.json` ahead.
    src.files.insert(name, other.files["targets.json"].clone());
    src.files
        .insert("targets.json".into(), other.files["targets.json"].clone());
    let err = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect_err("mixed");
    assert!(
        matches!(&err, VerifyError::HashMismatch { role, .. } | VerifyError::TooLong { role, .. } if role == "targets"),
        "{err}"
    );
}

#[test]
fn fast_forward_without_the_keys_is_rejected() {
    let mut repo = shop();
    // Version bumped to the maximum by someone without the timestamp key.
    repo.bytes_hooks.insert(
        "timestamp".into(),
        Box::new(|raw| edit_json(raw, |v| v["signed"]["version"] = json!(1_000_000))),
    );
    let err = try_load(&repo).expect_err("unsigned fast-forward");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, .. } if role == "timestamp"),
        "{err}"
    );
}

#[test]
fn fast_forward_with_a_stolen_timestamp_key_is_undone_by_rotating_that_key() {
    let mut repo = shop();
    let u = updater_at(NOW);
    let o = opts(&repo);
    // The thief signs a timestamp of version 1,000,000 with the stolen key.
    repo.role("timestamp").version = 1_000_000;
    load(&u, &repo.publish(), GUN, &o).expect("fast-forwarded timestamp");
    // The owners rotate the timestamp key in a new root and publish version 2.
    let root_key = repo.roles["root"].keys[0].clone();
    repo.rotate_root(vec![root_key.clone()], vec![root_key]);
    let fresh = TestKey::ecdsa();
    let ts = repo.role("timestamp");
    ts.keys = vec![fresh.clone()];
    ts.signers = vec![fresh];
    ts.version = 2;
    let data = load(&u, &repo.publish(), GUN, &o).expect("recovered after rotation");
    assert_eq!(data.root().version, 2);
    // Without a rotation, the version memory still refuses going back.
    let mut again = shop();
    let u = updater_at(NOW);
    again.role("timestamp").version = 1_000_000;
    let o = opts(&again);
    load(&u, &again.publish(), GUN, &o).expect("fast-forwarded");
    again.role("timestamp").version = 2;
    let err = load(&u, &again.publish(), GUN, &o).expect_err("no rotation, no reset");
    assert!(matches!(&err, VerifyError::Rollback { .. }), "{err}");
}

// ---- thresholds with duplicate keys --------------------------------------------------

#[test]
fn threshold_with_duplicate_keys_does_not_meet_the_root_pins() {
    let mut repo = shop();
    let k1 = repo.roles["root"].keys[0].clone();
    let k1_again = k1.rewrap(&CertSpec::new(GUN));
    let k2 = TestKey::x509(&CertSpec::new(GUN));
    let root = repo.role("root");
    root.keys = vec![k1.clone(), k1_again.clone()];
    root.signers = vec![k1.clone(), k1_again];
    let opts = TrustOptions {
        trust_roots: [&k1, &k2]
            .iter()
            .map(|k| TrustRoot::Key(PinnedKey::from_pem(&k.public_pem()).expect("pem")))
            .collect(),
        trust_root_threshold: 2,
        revoked: Revocations::new(),
    };
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &opts).expect_err("one key");
    assert!(
        matches!(
            &err,
            VerifyError::UntrustedRoot {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    // Two pins of the same key (certificate ID and PEM) are met by that one key only.
    let same_key_twice = TrustOptions {
        trust_roots: vec![
            TrustRoot::KeyId(k1.id.clone()),
            TrustRoot::Key(PinnedKey::from_pem(&k1.public_pem()).expect("pem")),
        ],
        trust_root_threshold: 2,
        revoked: Revocations::new(),
    };
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &same_key_twice)
        .expect_err("one key, two pins");
    assert!(
        matches!(&err, VerifyError::UntrustedRoot { valid: 1, .. }),
        "{err}"
    );
}

#[test]
fn threshold_with_duplicate_keys_does_not_meet_a_root_threshold_of_two() {
    let mut repo = shop();
    let k1 = repo.roles["root"].keys[0].clone();
    let k1_again = k1.rewrap(&CertSpec::new(GUN));
    let root = repo.role("root");
    root.keys = vec![k1.clone(), k1_again.clone()];
    root.signers = vec![k1, k1_again];
    root.threshold = 2;
    let err = try_load(&repo).expect_err("root threshold 2 by one key");
    assert!(
        matches!(&err, VerifyError::BadSignatureThreshold { role, valid: 1, threshold: 2, .. } if role == "root"),
        "{err}"
    );
}

#[test]
fn threshold_with_duplicate_keys_is_not_met_for_base_roles_and_delegations() {
    for role in ["timestamp", "snapshot", "targets"] {
        let mut repo = shop();
        let k = repo.roles[role].keys[0].clone();
        let plain_again = k.as_plain();
        let x509 = k.rewrap(&CertSpec::new("anything"));
        // The same key listed as ecdsa (twice: same ID is one key) and as ecdsa-x509.
        let r = repo.role(role);
        r.keys = vec![k, x509.clone()];
        r.signers = vec![plain_again, x509];
        r.threshold = 2;
        let err = try_load(&repo).expect_err(role);
        assert!(
            matches!(&err, VerifyError::BadSignatureThreshold { role: r, valid: 1, threshold: 2, .. } if r == role),
            "{role}: {err}"
        );
    }
    let mut repo = shop();
    let k = repo.roles["targets/releases"].keys[0].clone();
    let x509 = k.rewrap(&CertSpec::new("releases"));
    let r = repo.role("targets/releases");
    r.keys = vec![k.clone(), x509.clone()];
    r.signers = vec![k, x509];
    r.threshold = 2;
    let data = try_load(&repo).expect("an invalid delegation is skipped");
    let releases = data.role("targets/releases").expect("listed");
    assert!(
        matches!(
            &releases.status,
            RoleStatus::Invalid(VerifyError::BadSignatureThreshold { valid: 1, .. })
        ),
        "{:?}",
        releases.status
    );
}

// ---- key revocation evasion ------------------------------------------------------------

#[test]
fn key_revocation_evasion_with_a_fresh_root_certificate_fails() {
    let mut repo = shop();
    let k1 = repo.roles["root"].keys[0].clone();
    let k1_new_cert = k1.rewrap(&CertSpec::new(GUN));
    let k2 = TestKey::x509(&CertSpec::new(GUN));
    let root = repo.role("root");
    root.keys = vec![k1.clone(), k1_new_cert.clone(), k2.clone()];
    root.signers = vec![k1_new_cert, k2];
    let mut opts = TrustOptions {
        trust_roots: vec![TrustRoot::Key(
            PinnedKey::from_pem(&k1.public_pem()).expect("pem"),
        )],
        trust_root_threshold: 1,
        revoked: Revocations::from_entries([k1.id.as_str()]).expect("ids"),
    };
    let err = load(&updater_at(NOW), &repo.publish(), GUN, &opts).expect_err("revoked key");
    assert!(
        matches!(&err, VerifyError::UntrustedRoot { valid: 0, .. }),
        "{err}"
    );
    opts.revoked = Revocations::new();
    load(&updater_at(NOW), &repo.publish(), GUN, &opts).expect("trusted when not revoked");
}

#[test]
fn key_revocation_evasion_after_the_revoked_certificate_left_the_root_fails() {
    // v1 lists k1 under certificate C1; v2 drops C1 and lists k1 under a fresh C2. The policy
    // revokes C1's ID; the updater saw v1 (remembered), so k1 stays revoked in v2.
    let mut repo = shop();
    let k1 = repo.roles["root"].keys[0].clone();
    let k2 = TestKey::x509(&CertSpec::new(GUN));
    let root = repo.role("root");
    root.keys = vec![k1.clone(), k2.clone()];
    root.signers = vec![k1.clone(), k2.clone()];
    let k2_pem = k2.public_pem();
    let pins = |revoked: &[&str]| TrustOptions {
        trust_roots: vec![TrustRoot::Key(PinnedKey::from_pem(&k2_pem).expect("pem"))],
        trust_root_threshold: 1,
        revoked: Revocations::from_entries(revoked.iter().copied()).expect("ids"),
    };
    let u = updater_at(NOW);
    load(&u, &repo.publish(), GUN, &pins(&[])).expect("v1");
    let c2 = k1.rewrap(&CertSpec::new(GUN));
    // k1 (as C2) and k2 sign v2; v2's root threshold is 2 and needs k1.
    repo.rotate_root(vec![c2.clone(), k2.clone()], vec![k1.clone(), c2, k2]);
    repo.role("root").threshold = 2;
    let revoked = [k1.id.as_str()];
    let err = load(&u, &repo.publish(), GUN, &pins(&revoked)).expect_err("k1 revoked");
    assert!(
        matches!(
            &err,
            VerifyError::BadSignatureThreshold {
                valid: 1,
                threshold: 2,
                ..
            } | VerifyError::RotationNotSigned { .. }
        ),
        "{err}"
    );
}

#[test]
fn key_revocation_evasion_with_a_delegation_key_in_a_new_wrapping_fails() {
    // The policy revokes the delegate's certificate; the same key signs as a plain ecdsa key.
    let mut repo = shop();
    let k = repo.roles["targets/releases"].keys[0].clone();
    let wrapped = k.rewrap(&CertSpec::new("releases"));
    let r = repo.role("targets/releases");
    r.keys = vec![k.clone(), wrapped.clone()];
    r.signers = vec![k];
    let mut o = opts(&repo);
    o.revoked = Revocations::from_entries([wrapped.id.as_str()]).expect("ids");
    let data = load(&updater_at(NOW), &repo.publish(), GUN, &o).expect("loads");
    let releases = data.role("targets/releases").expect("listed");
    assert!(
        matches!(
            &releases.status,
            RoleStatus::Invalid(VerifyError::BadSignatureThreshold { valid: 0, .. })
        ),
        "{:?}",
        releases.status
    );
}

// ---- root rotation --------------------------------------------------------------------

#[test]
fn root_rotation_that_skips_the_remembered_threshold_is_refused() {
    let mut repo = shop();
    let r1 = repo.roles["root"].keys[0].clone();
    let r2 = TestKey::x509(&CertSpec::new(GUN));
    let root = repo.role("root");
    root.keys = vec![r1.clone(), r2.clone()];
    root.signers = vec![r1.clone(), r2];
    root.threshold = 2;
    let o = pin_ids(&[&r1.id]);
    let u = updater_at(NOW);
    load(&u, &repo.publish(), GUN, &o).expect("v1, signed by both keys");
    // v2 drops r2 and lowers the threshold, signed by r1 alone: the pins accept it directly,
    // but v1 (remembered) requires two of its keys.
    repo.rotate_root(vec![r1.clone()], vec![r1.clone()]);
    repo.role("root").threshold = 1;
    let err = load(&u, &repo.publish(), GUN, &o).expect_err("skips v1's threshold");
    assert!(
        matches!(
            &err,
            VerifyError::RotationNotSigned {
                valid: 1,
                threshold: 2,
                prev_version: 1,
                ..
            }
        ),
        "{err}"
    );
    // A fresh process without memory has no remembered threshold to enforce.
    load(&updater_at(NOW), &repo.publish(), GUN, &o).expect("no memory");
}

#[test]
fn root_replaced_at_the_same_version_is_refused() {
    let mut repo = shop();
    let u = updater_at(NOW);
    let o = opts(&repo);
    load(&u, &repo.publish(), GUN, &o).expect("v1");
    repo.role("root").expires = "2029-01-01T00:00:00Z".into();
    let err = load(&u, &repo.publish(), GUN, &o).expect_err("other v1");
    assert!(
        matches!(&err, VerifyError::RootReplaced { version: 1, .. }),
        "{err}"
    );
}

// ---- signature flood and the limits ---------------------------------------------------

#[test]
fn signature_flood_of_twenty_thousand_is_refused_before_any_check() {
    let mut repo = shop();
    let snapshot_key = repo.roles["snapshot"].keys[0].id.clone();
    repo.bytes_hooks.insert(
        "snapshot".into(),
        Box::new(move |raw| prepend_bogus_signatures(raw, &snapshot_key, 20_000)),
    );
    let src = repo.publish();
    let err = load(&updater_at(NOW), &src, GUN, &opts(&repo)).expect_err("flood");
    assert!(
        matches!(&err, VerifyError::TooManySignatures { role, count: 20_001, .. } if role == "snapshot"),
        "{err}"
    );
}

#[test]
fn signature_flood_by_keys_outside_the_role_costs_nothing() {
    // 63 signatures by IDs the role does not list, then the valid one: verified.
    let mut repo = shop();
    repo.bytes_hooks.insert(
        "timestamp".into(),
        Box::new(|raw| {
            edit_json(raw, |v| {
                let mut sigs: Vec<Value> = (0..LIMITS.signatures_per_file - 1)
                    .map(
                        |i| json!({"keyid": format!("{i:064x}"), "method": "ecdsa", "sig": "AAAA"}),
                    )
                    .collect();
                sigs.extend(v["signatures"].as_array().cloned().unwrap_or_default());
                v["signatures"] = Value::Array(sigs);
            });
        }),
    );
    try_load(&repo).expect("the one valid signature counts");
}

#[test]
fn endless_data_root_one_past_its_cap_is_refused() {
    let mut repo = shop();
    let cap = LIMITS.root_bytes as usize;
    repo.bytes_hooks
        .insert("root".into(), Box::new(move |raw| pad_to(raw, cap)));
    try_load(&repo).expect("at the cap");
    repo.bytes_hooks
        .insert("root".into(), Box::new(move |raw| pad_to(raw, cap + 1)));
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::Fetch(FetchError::TooLarge { limit, .. }) if *limit == LIMITS.root_bytes),
        "{err}"
    );
}

#[test]
fn endless_data_timestamp_one_past_its_cap_is_refused() {
    let mut repo = shop();
    let cap = LIMITS.timestamp_bytes as usize;
    repo.bytes_hooks
        .insert("timestamp".into(), Box::new(move |raw| pad_to(raw, cap)));
    try_load(&repo).expect("at the cap");
    repo.bytes_hooks.insert(
        "timestamp".into(),
        Box::new(move |raw| pad_to(raw, cap + 1)),
    );
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::Fetch(FetchError::TooLarge { limit, .. }) if *limit == LIMITS.timestamp_bytes),
        "{err}"
    );
}

#[test]
fn endless_data_snapshot_past_the_absolute_cap_is_refused_whatever_the_timestamp_says() {
    let mut repo = shop();
    let cap = LIMITS.metadata_bytes as usize;
    // The timestamp (signed) declares the padded length: only the absolute cap stops it.
    repo.bytes_hooks
        .insert("snapshot".into(), Box::new(move |raw| pad_to(raw, cap + 1)));
    let err = try_load(&repo).expect_err("one past");
    assert!(
        matches!(&err, VerifyError::Fetch(FetchError::TooLarge { limit, .. }) if *limit == LIMITS.metadata_bytes),
        "{err}"
    );
}
