//! Root validation (Notary's `trustpinning.ValidateRoot`), a child of `verify`: which root keys are usable
//! certificates, pinning (distinct pinned public keys against `trustRootThreshold`) and rotation
//! from a trusted root (a threshold of the old root's keys and of the new root's own).

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::super::keys::CertInfo;
use super::super::options::{Revocations, TrustRoot};
use super::super::schema::{KeyMap, ROOT, RoleKeys, Root, SignedFile};
use super::{
    TrustedRoot, VerifyError, check_expiry, valid_public_keys, valid_signers, verify_threshold,
};

/// notary's `MatchCNToGun`: equal, or a CN ending in `*` whose prefix the GUN starts with.
fn cn_matches(cn: &str, gun: &str) -> bool {
    match cn.strip_suffix('*') {
        Some(prefix) => gun.starts_with(prefix),
        None => cn == gun,
    }
}

/// notary's `ValidateCertificate` and `MatchCNToGun` for a root leaf certificate; expiry is
/// checked only when `now` is given (with 24 h of notBefore slack).
fn cert_problem(cert: &CertInfo, gun: &str, now: Option<OffsetDateTime>) -> Option<String> {
    if !cert
        .common_name
        .as_deref()
        .is_some_and(|cn| cn_matches(cn, gun))
    {
        Some(format!(
            "certificate CN {:?} does not match the GUN",
            cert.common_name
        ))
    } else if cert.not_before > cert.not_after {
        Some("certificate notBefore is after notAfter".to_owned())
    } else if cert.sha1_signature {
        Some("certificate is signed with SHA-1".to_owned())
    } else if let Some(bits) = cert.rsa_bits.filter(|b| *b < 2048) {
        Some(format!("certificate has an RSA key of {bits} bits"))
    } else if let Some(now) = now.filter(|now| *now > cert.not_after) {
        Some(format!(
            "certificate expired at {} (now {now})",
            cert.not_after
        ))
    } else if now.is_some_and(|now| cert.not_before > now.saturating_add(Duration::hours(24))) {
        Some(format!(
            "certificate is not valid before {}",
            cert.not_before
        ))
    } else {
        None
    }
}

/// Root-role keys usable for root validation (§4.2 steps 1-2): keys holding a PEM certificate
/// bundle with exactly one non-CA leaf, first, that passes `cert_problem` (CN = GUN or wildcard
/// prefix, not SHA-1, RSA >= 2048 bits, valid at `now` when given). Returns why the rest were
/// dropped. Unlike notary, the key is used as listed rather than rebuilt from the bundle, which
/// differs only for bundles not in Go's PEM encoding.
pub fn usable_root_keys(
    root: &SignedFile<Root>,
    now: Option<OffsetDateTime>,
) -> (KeyMap, Vec<String>) {
    let mut usable = KeyMap::new();
    let mut dropped = Vec::new();
    for id in &root.body.roles.root.keyids {
        let Some(key) = root.body.keys.get(id) else {
            continue;
        };
        let why = match key.cert_bundle() {
            Err(e) => Some(format!("not a certificate bundle ({e})")),
            Ok(bundle) => match bundle.first() {
                Some(leaf) if !leaf.is_ca && bundle.iter().filter(|c| !c.is_ca).count() == 1 => {
                    cert_problem(leaf, &root.gun, now)
                }
                _ => Some("the bundle needs exactly one leaf certificate, first".to_owned()),
            },
        };
        match why {
            None => {
                usable.insert(id.clone(), key.clone());
            }
            Some(why) => dropped.push(format!("key {id}: {why}")),
        }
    }
    (usable, dropped)
}

fn own_root_keys(
    root: &SignedFile<Root>,
    now: OffsetDateTime,
    is_final: bool,
) -> Result<KeyMap, VerifyError> {
    let (usable, dropped) = usable_root_keys(root, is_final.then_some(now));
    if usable.is_empty() {
        return Err(VerifyError::RootCertificates {
            gun: root.gun.clone(),
            version: root.body.common.version,
            detail: if dropped.is_empty() {
                "no root keys".into()
            } else {
                dropped.join("; ")
            },
        });
    }
    Ok(usable)
}

/// Checks `root` against its own root threshold (over its usable keys) and, when final, its
/// certificates' and its own expiry.
fn self_signed_root(
    root: SignedFile<Root>,
    usable: KeyMap,
    revoked: &Revocations,
    now: OffsetDateTime,
    is_final: bool,
) -> Result<TrustedRoot, VerifyError> {
    let keyids: Vec<String> = usable.keys().cloned().collect();
    let role = RoleKeys {
        keyids,
        threshold: root.body.roles.root.threshold,
    };
    let signed_by = verify_threshold(&root, &usable, &role, revoked)?;
    if is_final {
        check_expiry(&root.gun, ROOT, &root.body.common, now)?;
    }
    Ok(TrustedRoot {
        file: root,
        root_keys: usable,
        signed_by,
    })
}

/// Trusts `root` directly by pinning: at least `pin_threshold` distinct usable public keys,
/// satisfying as many distinct pins, validly signed it, and it meets its own root threshold. `is_final` is false for
/// a historic root that anchors a rotation chain: then expiry (metadata and certificates) is
/// not checked, as notary ignores it for intermediate roots.
pub fn verify_pinned_root(
    root: SignedFile<Root>,
    pins: &[TrustRoot],
    pin_threshold: usize,
    revoked: &Revocations,
    now: OffsetDateTime,
    is_final: bool,
) -> Result<TrustedRoot, VerifyError> {
    if pins.is_empty() {
        return Err(VerifyError::NoTrustRoots {
            gun: root.gun.clone(),
        });
    }
    let usable = own_root_keys(&root, now, is_final)?;
    let keyids: Vec<String> = usable.keys().cloned().collect();
    let signers = valid_public_keys(&root, &usable, &keyids, revoked)?;
    let pinned = pinned_signers(&usable, &signers, pins);
    let threshold = pin_threshold.max(1);
    if pinned < threshold {
        return Err(VerifyError::UntrustedRoot {
            gun: root.gun.clone(),
            version: root.body.common.version,
            valid: pinned,
            threshold,
            pinned: pins
                .iter()
                .map(TrustRoot::describe)
                .collect::<Vec<_>>()
                .join(", "),
            root_keys: root.body.roles.root.keyids.join(", "),
        });
    }
    self_signed_root(root, usable, revoked, now, is_final)
}

/// How many pins the valid signers of a root satisfy, counting distinct public keys and
/// distinct pins (the smaller of the two): one key listed under several key IDs or matching
/// several pins counts once, and two pins of one key are met by one key only. `signers` maps
/// the public key ID of each valid signer to the key ID that counted; every usable key with
/// that public key is tried against the pins (a pin by certificate ID names one wrapping).
fn pinned_signers(
    usable: &KeyMap,
    signers: &BTreeMap<String, String>,
    pins: &[TrustRoot],
) -> usize {
    let mut keys_met = BTreeSet::new();
    let mut pins_met = BTreeSet::new();
    for key in usable.values() {
        let public = key.public_key_id();
        if !signers.contains_key(&public) {
            continue;
        }
        for (i, pin) in pins.iter().enumerate() {
            if pin.matches(key) {
                keys_met.insert(public.clone());
                pins_met.insert(i);
            }
        }
    }
    if pins.iter().any(|p| matches!(p, TrustRoot::TrustOnFirstUse)) {
        keys_met.len()
    } else {
        keys_met.len().min(pins_met.len())
    }
}

/// Trusts `next` by rotation from `prev`: signed by the threshold of `prev`'s root keys (CN
/// rules, no expiry check, as notary) and by its own threshold. Versions must increase.
pub fn verify_rotation(
    prev: &TrustedRoot,
    next: SignedFile<Root>,
    revoked: &Revocations,
    now: OffsetDateTime,
    is_final: bool,
) -> Result<TrustedRoot, VerifyError> {
    let version = next.body.common.version;
    if version <= prev.version() {
        return Err(VerifyError::Rollback {
            gun: next.gun.clone(),
            role: ROOT.into(),
            seen: prev.version(),
            got: version,
        });
    }
    let (prev_keys, _) = usable_root_keys(&prev.file, None);
    let prev_ids: Vec<String> = prev_keys.keys().cloned().collect();
    let by_prev = valid_signers(&next, &prev_keys, &prev_ids, revoked)?.len();
    let threshold = prev.file.body.roles.root.threshold;
    if (by_prev as u64) < threshold {
        return Err(VerifyError::RotationNotSigned {
            gun: next.gun.clone(),
            version,
            prev_version: prev.version(),
            valid: by_prev,
            threshold,
        });
    }
    let usable = own_root_keys(&next, now, is_final)?;
    self_signed_root(next, usable, revoked, now, is_final)
}
