//! Re-use of verified metadata across loads: the `Updater`'s half of caching (the application's
//! caches build on it). The update chain asks it through one helper (`updater::kept`).
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
//! Files are kept "slim": the raw bytes and the canonical bytes are dropped (only the typed body
//! and the signing key IDs are read after verification).
//!
//! Keys hold no credentials: every load fetches `timestamp.json` through its own source, so a
//! caller without access to the repository still fails there, whatever is kept.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::ident::{Id, id, meta_id};
use super::schema::{FileMeta, ROOT, RoleBody, Snapshot, Targets};
use super::verify::{TrustedRoot, Verified, check_expiry, usable_root_keys};

/// How much verified metadata an `Updater` keeps between loads.
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

/// A verified file.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Snapshot(Arc<Verified<Snapshot>>),
    Targets(Arc<Verified<Targets>>),
}

/// A verified role the store can keep: the snapshot, or a targets file (top-level or delegation).
pub(crate) trait Keep: RoleBody + Send + Sync + 'static {
    /// As a kept file.
    fn wrap(v: Arc<Verified<Self>>) -> Cached;
    /// Back from a kept file, when it is of this type.
    fn unwrap(c: Cached) -> Option<Arc<Verified<Self>>>;
}

impl Keep for Snapshot {
    fn wrap(v: Arc<Verified<Self>>) -> Cached {
        Cached::Snapshot(v)
    }
    fn unwrap(c: Cached) -> Option<Arc<Verified<Self>>> {
        match c {
            Cached::Snapshot(v) => Some(v),
            Cached::Targets(_) => None,
        }
    }
}

impl Keep for Targets {
    fn wrap(v: Arc<Verified<Self>>) -> Cached {
        Cached::Targets(v)
    }
    fn unwrap(c: Cached) -> Option<Arc<Verified<Self>>> {
        match c {
            Cached::Targets(v) => Some(v),
            Cached::Snapshot(_) => None,
        }
    }
}

/// The verified files and trusted roots of one `Updater`.
#[derive(Debug)]
pub(crate) struct Store {
    files: moka::sync::Cache<Id, Cached>,
    roots: moka::sync::Cache<Id, Arc<TrustedRoot>>,
}

impl Store {
    pub(crate) fn new(reuse: &Reuse) -> Store {
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
    pub(crate) fn file_key(
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

    pub(crate) fn file(&self, key: &Id) -> Option<Cached> {
        self.files.get(key)
    }

    pub(crate) fn keep_file(&self, key: Id, file: Cached) {
        self.files.insert(key, file);
    }

    /// The key of the trusted root of `gun` on `server` under trust options `trust`.
    pub(crate) fn root_key(server: &str, gun: &str, trust: &Id) -> Id {
        id(&[b"root", server.as_bytes(), gun.as_bytes(), trust])
    }

    /// The kept root, if it may still be used at `now`: not expired, every root key that was
    /// usable still usable (certificate validity), and not older than `newest` (the newest root
    /// of the repository trusted since, under any options).
    pub(crate) fn root(
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

    pub(crate) fn keep_root(&self, key: Id, root: Arc<TrustedRoot>) {
        self.roots.insert(key, root);
    }

    pub(crate) fn forget_root(&self, key: &Id) {
        self.roots.invalidate(key);
    }
}

/// Drops what is not read after verification (raw bytes, canonical bytes).
pub(crate) fn slim<T>(mut v: Verified<T>) -> Verified<T> {
    v.file.raw = Vec::new();
    v.file.canonical = Vec::new();
    v
}
