//! Re-use of verified metadata across loads: the `Updater`'s half of caching (the whole design
//! is in `crate::cache`). A child module of `updater` (declared there with `#[path]`).
//!
//! - Files (snapshot, targets, delegations) are kept once verified, keyed by server, GUN, role,
//!   the meta entry the parent listed for them (length, sha256, sha512) and the identity of what
//!   verified their signatures: the trusted root's sha256 for snapshot and targets, the parent's
//!   meta identity for a delegation, plus the revoked keys. The key is content-addressed, so a hit
//!   is the very file that was verified, against the very keys; the caller still re-checks its
//!   version against the version memory and its expiry against the clock on every load.
//! - Trusted roots are kept per (server, GUN, trust options) for `root_ttl`, so a refresh starts
//!   with `timestamp.json`; a root is not re-used once expired, once one of its certificates is no
//!   longer usable, or when a newer root of the repository has been trusted since.
//!
//! Files are kept "slim": the raw bytes, the `signed` JSON and the canonical bytes are dropped
//! (only the body and the signing key IDs are read after verification).
//!
//! Keys hold no credentials: every load fetches `timestamp.json` through its own source, so a
//! caller without access to the repository still fails there, whatever is kept.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::super::schema::{FileMeta, ROOT, Snapshot, Targets};
use super::super::verify::{TrustedRoot, Verified, check_expiry, usable_root_keys};

/// How much verified metadata an [`Updater`](super::Updater) keeps between loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Most verified files (snapshot, targets, delegations) kept, over all repositories.
    pub max_files: u64,
    /// Most trusted roots kept (one per server, repository and trust options).
    pub max_roots: u64,
    /// How long a trusted root is used without fetching `root.json` again. A changed root is
    /// noticed earlier anyway: the snapshot lists the root's hash.
    pub root_ttl: Duration,
}

impl Default for Reuse {
    fn default() -> Self {
        Reuse {
            max_files: 4096,
            max_roots: 1024,
            root_ttl: Duration::from_secs(300),
        }
    }
}

/// A sha256 identity.
pub(super) type Id = [u8; 32];

/// The sha256 of `parts`, each length-prefixed (so no two part lists collide).
pub(super) fn id(parts: &[&[u8]]) -> Id {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The identity of a meta entry: what a file listed with it must be.
pub(super) fn meta_id(meta: &FileMeta) -> Id {
    id(&[
        b"meta",
        &meta.length.to_be_bytes(),
        meta.hashes.sha256.as_deref().unwrap_or_default(),
        meta.hashes.sha512.as_deref().unwrap_or_default(),
    ])
}

/// The identity of the verifier of a file: `signer` (root or parent identity) and the revocations.
pub(super) fn context(signer: &Id, revoked: &Id) -> Id {
    id(&[b"context", signer, revoked])
}

/// A verified file.
#[derive(Debug, Clone)]
pub(super) enum Cached {
    Snapshot(Arc<Verified<Snapshot>>),
    Targets(Arc<Verified<Targets>>),
}

/// The verified files and trusted roots of one `Updater`.
#[derive(Debug)]
pub(super) struct Store {
    files: moka::sync::Cache<Id, Cached>,
    roots: moka::sync::Cache<Id, Arc<TrustedRoot>>,
}

impl Store {
    pub(super) fn new(reuse: &Reuse) -> Store {
        Store {
            files: moka::sync::Cache::builder()
                .max_capacity(reuse.max_files)
                .build(),
            roots: moka::sync::Cache::builder()
                .max_capacity(reuse.max_roots)
                .time_to_live(reuse.root_ttl)
                .build(),
        }
    }

    /// The key of file `role` of `gun` on `server`, listed with `meta`, verified in `context`.
    pub(super) fn file_key(
        server: &str,
        gun: &str,
        role: &str,
        meta: &FileMeta,
        context: &Id,
    ) -> Id {
        id(&[
            b"file",
            server.as_bytes(),
            gun.as_bytes(),
            role.as_bytes(),
            &meta_id(meta),
            context,
        ])
    }

    pub(super) fn file(&self, key: &Id) -> Option<Cached> {
        self.files.get(key)
    }

    pub(super) fn keep_file(&self, key: Id, file: Cached) {
        self.files.insert(key, file);
    }

    /// The key of the trusted root of `gun` on `server` under trust options `trust`.
    pub(super) fn root_key(server: &str, gun: &str, trust: &Id) -> Id {
        id(&[b"root", server.as_bytes(), gun.as_bytes(), trust])
    }

    /// The kept root, if it may still be used at `now`: not expired, every root key that was
    /// usable still usable (certificate validity), and not older than `newest` (the newest root
    /// of the repository trusted since, under any options).
    pub(super) fn root(
        &self,
        key: &Id,
        now: OffsetDateTime,
        newest: Option<u64>,
    ) -> Option<Arc<TrustedRoot>> {
        let root = self.roots.get(key)?;
        if newest.is_some_and(|v| v > root.version())
            || check_expiry(&root.file.gun, ROOT, &root.file.body.common, now).is_err()
        {
            return None;
        }
        let (usable, _) = usable_root_keys(&root.file, Some(now));
        root.root_keys
            .keys()
            .all(|id| usable.contains_key(id))
            .then_some(root)
    }

    pub(super) fn keep_root(&self, key: Id, root: Arc<TrustedRoot>) {
        self.roots.insert(key, root);
    }

    pub(super) fn forget_root(&self, key: &Id) {
        self.roots.invalidate(key);
    }
}

/// Drops what is not read after verification (raw bytes, `signed` JSON, canonical bytes).
pub(super) fn slim<T>(mut v: Verified<T>) -> Verified<T> {
    v.file.raw = Vec::new();
    v.file.signed = serde_json::Value::Null;
    v.file.canonical = Vec::new();
    v
}

/// The earliest of `times` (and `first`).
pub(super) fn earliest(
    first: OffsetDateTime,
    times: impl IntoIterator<Item = OffsetDateTime>,
) -> OffsetDateTime {
    times.into_iter().fold(first, OffsetDateTime::min)
}

/// The earliest `notAfter` of the leaf certificates of `root`'s usable root keys.
pub(super) fn root_certs_expire(root: &TrustedRoot) -> Option<OffsetDateTime> {
    root.root_keys
        .values()
        .filter_map(|k| k.cert_bundle().ok()?.first().map(|c| c.not_after))
        .min()
}
