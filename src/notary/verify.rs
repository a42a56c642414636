//! Pure verification of Notary v1 metadata (no I/O): signature thresholds over distinct public
//! keys (two key IDs of one public key, such as two certificates of it, count once; at most one
//! signature checked per key ID), root validation (submodule `root`: Notary's `ValidateRoot`
//! with our key pinning and rotation), and the checks on
//! timestamp, snapshot, targets and delegations (hashes, lengths, versions, expiry). The update
//! chain (`updater`) calls these in protocol order; errors are in `error`, the policy inputs
//! (`TrustRoot`, `Revocations`) in `options`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub use super::error::VerifyError;
use super::options::Revocations;
use super::schema::{
    Common, FileMeta, KeyMap, ROOT, RoleBody, RoleKeys, Root, SNAPSHOT, SignedFile, Snapshot,
    TARGETS, TIMESTAMP, Targets, Timestamp,
};
use crate::limits::LIMITS;

mod root;
pub use root::{usable_root_keys, verify_pinned_root, verify_rotation};

/// A verified file and the key IDs whose signatures counted (one per distinct public key).
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The file.
    pub file: SignedFile<T>,
    /// Key IDs with a valid, unrevoked signature.
    pub signed_by: Vec<String>,
}

/// A root that passed pinning (or rotation from a pinned root).
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// The root file.
    pub file: SignedFile<Root>,
    /// Root-role keys that are usable certificates (CN = GUN, valid, strong algorithms).
    pub root_keys: KeyMap,
    /// Root keys whose signature counted.
    pub signed_by: Vec<String>,
}

impl TrustedRoot {
    /// The root's version.
    pub fn version(&self) -> u64 {
        self.file.body.common.version
    }
}

/// Outcome of a check that may leave a role unusable without failing the whole load (notary
/// skips an expired delegation, or one below its threshold, with a warning).
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    /// Verified; usable.
    Valid(T),
    /// Expired or below threshold: skipped, as notary does.
    Invalid(VerifyError),
}

/// Outcome of a delegation that did not fail fatally.
pub type DelegationOutcome = Outcome<Verified<Targets>>;

/// The key IDs among `keyids` with a valid, unrevoked signature over the canonical bytes, one
/// per distinct public key (two key IDs of one public key, such as two certificates of it or the
/// key listed as `ecdsa` and `ecdsa-x509`, count once). Signatures by keys outside the role, with
/// unknown methods or that don't verify are skipped, and at most one signature per key ID is
/// checked (the first; the rest are ignored), so the work is bounded by the role's keys, not by
/// what the file carries. A key whose computed ID differs from the signature's key ID is a hard
/// error (as notary). A key ID revoked by the policy revokes its public key in every key of
/// `keys` ([`Revocations::resolve`]).
pub fn valid_signers<T>(
    file: &SignedFile<T>,
    keys: &KeyMap,
    keyids: &[String],
    revoked: &Revocations,
) -> Result<BTreeSet<String>, VerifyError> {
    Ok(valid_public_keys(file, keys, keyids, revoked)?
        .into_values()
        .collect())
}

/// As [`valid_signers`], keyed by `PublicKey::public_key_id` (value: the key ID that counted).
fn valid_public_keys<T>(
    file: &SignedFile<T>,
    keys: &KeyMap,
    keyids: &[String],
    revoked: &Revocations,
) -> Result<BTreeMap<String, String>, VerifyError> {
    if file.signatures.is_empty() {
        return Err(VerifyError::NoSignatures {
            gun: file.gun.clone(),
            role: file.role.clone(),
        });
    }
    if file.signatures.len() > LIMITS.signatures_per_file {
        return Err(VerifyError::TooManySignatures {
            gun: file.gun.clone(),
            role: file.role.clone(),
            count: file.signatures.len(),
            limit: LIMITS.signatures_per_file,
        });
    }
    let revoked = if revoked.is_empty() {
        Cow::Borrowed(revoked)
    } else {
        let mut resolved = revoked.clone();
        resolved.resolve(keys.values().map(AsRef::as_ref));
        Cow::Owned(resolved)
    };
    let mut tried: BTreeSet<&str> = BTreeSet::new();
    let mut valid: BTreeMap<String, String> = BTreeMap::new();
    for sig in &file.signatures {
        if !keyids.contains(&sig.keyid) {
            continue;
        }
        let Some(key) = keys.get(&sig.keyid) else {
            continue;
        };
        if key.id() != sig.keyid {
            return Err(VerifyError::KeyIdMismatch {
                gun: file.gun.clone(),
                role: file.role.clone(),
                listed: sig.keyid.clone(),
                computed: key.id().to_owned(),
            });
        }
        if !tried.insert(sig.keyid.as_str()) || revoked.is_revoked(key) {
            continue;
        }
        let public = key.public_key_id();
        if valid.contains_key(&public) {
            continue;
        }
        if key.verify(&sig.method, &file.canonical, &sig.sig).is_ok() {
            valid.insert(public, sig.keyid.clone());
        }
    }
    Ok(valid)
}

/// Checks that `role`'s threshold of distinct public keys validly signed `file`.
pub fn verify_threshold<T>(
    file: &SignedFile<T>,
    keys: &KeyMap,
    role: &RoleKeys,
    revoked: &Revocations,
) -> Result<Vec<String>, VerifyError> {
    let valid = valid_signers(file, keys, &role.keyids, revoked)?;
    if (valid.len() as u64) < role.threshold {
        return Err(VerifyError::BadSignatureThreshold {
            gun: file.gun.clone(),
            role: file.role.clone(),
            valid: valid.len(),
            threshold: role.threshold,
        });
    }
    Ok(valid.into_iter().collect())
}

/// Fails when `common` expired before `now` (notary: `expires.Before(now)`).
pub fn check_expiry(
    gun: &str,
    role: &str,
    common: &Common,
    now: OffsetDateTime,
) -> Result<(), VerifyError> {
    if common.expires < now {
        return Err(VerifyError::Expired {
            gun: gun.to_owned(),
            role: role.to_owned(),
            version: common.version,
            expires: common.expires_raw.clone(),
        });
    }
    Ok(())
}

/// Fails when `common.version` is below the highest version `seen` before.
pub fn check_version(
    gun: &str,
    role: &str,
    common: &Common,
    seen: Option<u64>,
) -> Result<(), VerifyError> {
    match seen {
        Some(seen) if common.version < seen => Err(VerifyError::Rollback {
            gun: gun.to_owned(),
            role: role.to_owned(),
            seen,
            got: common.version,
        }),
        _ => Ok(()),
    }
}

/// Checks raw bytes against a parent's meta entry: not longer than `length`, a sha256 present,
/// and every listed hash (sha256, sha512) equal, compared in constant time.
pub fn check_meta(
    gun: &str,
    role: &str,
    parent: &str,
    raw: &[u8],
    meta: &FileMeta,
) -> Result<(), VerifyError> {
    let got = raw.len() as u64;
    if got > meta.length {
        return Err(VerifyError::TooLong {
            gun: gun.to_owned(),
            role: role.to_owned(),
            parent: parent.to_owned(),
            limit: meta.length,
            got,
        });
    }
    check_hashes(gun, role, parent, raw, meta)
}

fn check_hashes(
    gun: &str,
    role: &str,
    parent: &str,
    raw: &[u8],
    meta: &FileMeta,
) -> Result<(), VerifyError> {
    let Some(sha256) = &meta.hashes.sha256 else {
        return Err(VerifyError::Malformed {
            gun: gun.to_owned(),
            role: parent.to_owned(),
            detail: format!("meta {role} has no sha256 hash"),
        });
    };
    let mismatch = |algorithm: &str| VerifyError::HashMismatch {
        gun: gun.to_owned(),
        role: role.to_owned(),
        parent: parent.to_owned(),
        algorithm: algorithm.to_owned(),
    };
    if !bool::from(Sha256::digest(raw).as_slice().ct_eq(sha256)) {
        return Err(mismatch("sha256"));
    }
    if let Some(sha512) = &meta.hashes.sha512
        && !bool::from(Sha512::digest(raw).as_slice().ct_eq(sha512))
    {
        return Err(mismatch("sha512"));
    }
    Ok(())
}

fn verify_base_role<T: RoleBody>(
    root: &TrustedRoot,
    role: &str,
    raw: Vec<u8>,
    seen: Option<u64>,
    now: OffsetDateTime,
    revoked: &Revocations,
) -> Result<Verified<T>, VerifyError> {
    let gun = root.file.gun.as_str();
    let file = SignedFile::<T>::parse(gun, role, raw)?;
    let spec = root
        .file
        .body
        .roles
        .get(role)
        .ok_or_else(|| VerifyError::Malformed {
            gun: gun.to_owned(),
            role: role.to_owned(),
            detail: "not a base role".into(),
        })?;
    let signed_by = verify_threshold(&file, &root.file.body.keys, spec, revoked)?;
    check_version(gun, role, file.body.common(), seen)?;
    check_expiry(gun, role, file.body.common(), now)?;
    Ok(Verified { file, signed_by })
}

/// Verifies `timestamp.json`: signatures by the root's timestamp role, version, expiry.
pub fn verify_timestamp(
    root: &TrustedRoot,
    raw: Vec<u8>,
    seen: Option<u64>,
    now: OffsetDateTime,
    revoked: &Revocations,
) -> Result<Verified<Timestamp>, VerifyError> {
    verify_base_role(root, TIMESTAMP, raw, seen, now, revoked)
}

/// Verifies the snapshot: length and hashes from the timestamp, signatures by the root's
/// snapshot role, version, expiry; then the trusted root's bytes against the snapshot's `root`
/// hashes (a mismatch means the root changed under us).
pub fn verify_snapshot(
    root: &TrustedRoot,
    timestamp: &Timestamp,
    raw: Vec<u8>,
    seen: Option<u64>,
    now: OffsetDateTime,
    revoked: &Revocations,
) -> Result<Verified<Snapshot>, VerifyError> {
    let gun = root.file.gun.as_str();
    check_meta(gun, SNAPSHOT, TIMESTAMP, &raw, &timestamp.snapshot)?;
    let snap: Verified<Snapshot> = verify_base_role(root, SNAPSHOT, raw, seen, now, revoked)?;
    if let Some(meta) = snap.file.body.meta.get(ROOT) {
        match check_hashes(gun, ROOT, SNAPSHOT, &root.file.raw, meta) {
            Err(VerifyError::HashMismatch { algorithm, .. }) => {
                return Err(VerifyError::RootChanged {
                    gun: gun.to_owned(),
                    algorithm,
                });
            }
            other => other?,
        }
    }
    Ok(snap)
}

/// Verifies `targets.json`: length and hashes from the snapshot, signatures by the root's
/// targets role, version, expiry. Every failure is fatal.
pub fn verify_targets(
    root: &TrustedRoot,
    snapshot: &Snapshot,
    raw: Vec<u8>,
    seen: Option<u64>,
    now: OffsetDateTime,
    revoked: &Revocations,
) -> Result<Verified<Targets>, VerifyError> {
    let gun = root.file.gun.as_str();
    let meta = snapshot
        .meta
        .get(TARGETS)
        .ok_or_else(|| VerifyError::NotInSnapshot {
            gun: gun.to_owned(),
            role: TARGETS.into(),
        })?;
    check_meta(gun, TARGETS, SNAPSHOT, &raw, meta)?;
    verify_base_role(root, TARGETS, raw, seen, now, revoked)
}

/// Verifies delegation `name` declared by `parent` (role `parent_role`) in the order notary
/// does: hash and length from the snapshot, structure, version (all fatal), then signatures
/// with the parent's delegation keys and threshold and expiry (both only make it invalid).
#[allow(clippy::too_many_arguments)]
pub fn verify_delegation(
    gun: &str,
    parent_role: &str,
    parent: &Targets,
    snapshot: &Snapshot,
    name: &str,
    raw: Vec<u8>,
    seen: Option<u64>,
    now: OffsetDateTime,
    revoked: &Revocations,
) -> Result<DelegationOutcome, VerifyError> {
    let decl = parent
        .delegations
        .roles
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| VerifyError::UnknownDelegation {
            gun: gun.to_owned(),
            role: name.to_owned(),
            parent: parent_role.to_owned(),
        })?;
    let meta = snapshot
        .meta
        .get(name)
        .ok_or_else(|| VerifyError::NotInSnapshot {
            gun: gun.to_owned(),
            role: name.to_owned(),
        })?;
    check_meta(gun, name, SNAPSHOT, &raw, meta)?;
    let file = SignedFile::<Targets>::parse(gun, name, raw)?;
    check_version(gun, name, &file.body.common, seen)?;
    let signed_by = match verify_threshold(&file, &parent.delegations.keys, &decl.keys, revoked) {
        Ok(s) => s,
        Err(e @ VerifyError::BadSignatureThreshold { .. }) => {
            return Ok(DelegationOutcome::Invalid(e));
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = check_expiry(gun, name, &file.body.common, now) {
        return Ok(DelegationOutcome::Invalid(e));
    }
    Ok(DelegationOutcome::Valid(Verified { file, signed_by }))
}
