//! The update flow over a `MetadataSource` (notary-protocol.md §4.1): trusted root (pinning,
//! walking back to a pinned root and verifying each rotation forward), timestamp, snapshot by
//! hash, targets by hash and the delegations listed in the snapshot (pre-order, siblings fetched
//! concurrently). `VersionMemory` remembers, for the life of the process, the highest version
//! seen per (server, GUN, role) and the last trusted root, so nothing ever goes back.
//!
//! With [`Updater::with_reuse`] the updater also keeps verified files content-addressed and the
//! trusted root per trust options (module `reuse`), so a refresh fetches `timestamp.json` first
//! and only the files whose hashes changed. A load with a kept root that fails verification is
//! retried once with a freshly fetched root (as notary's client does). Versions and expiry are
//! checked on every load, for kept files too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt, join_all};
use time::OffsetDateTime;

use super::schema::{
    ROOT, Root, SNAPSHOT, SignedFile, Snapshot, TARGETS, TIMESTAMP, Targets, Timestamp,
    check_meta_hashes,
};
use super::source::{FetchError, MAX_ROOT_SIZE, MAX_TIMESTAMP_SIZE, MetaRequest, MetadataSource};
use super::verify::{
    DelegationOutcome, TrustedRoot, Verified, VerifyError, check_expiry, check_version,
    verify_delegation, verify_pinned_root, verify_rotation, verify_snapshot, verify_targets,
    verify_timestamp,
};
use super::view::{RoleInfo, RoleStatus, RootInfo, TrustData, key_infos, restrict_paths};
use crate::clock::Clock;

#[path = "options.rs"]
mod options;
#[path = "reuse.rs"]
mod reuse;

pub use options::{Revocations, TrustOptions, TrustRoot};
pub use reuse::Reuse;
use reuse::{Cached, Id, Store};

#[cfg(test)]
#[path = "tests/mod.rs"]
pub(crate) mod tests;

/// How many older root versions the client fetches looking for a pinned one.
pub const MAX_ROOT_WALK: u64 = 32;

/// Verified trust data and how long it stays valid.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The verified view.
    pub data: TrustData,
    /// The earliest expiry among root, timestamp, snapshot, targets, the valid delegations and
    /// the root certificates: the data must be loaded again before relying on it after this.
    pub valid_until: OffsetDateTime,
    /// Expiry of the verified `timestamp.json` (for the trust-expiry gauge).
    pub timestamp_expires: OffsetDateTime,
    /// Expiry of the verified `snapshot.json` (for the trust-expiry gauge).
    pub snapshot_expires: OffsetDateTime,
}

type RoleKey = (String, String, String);

#[derive(Debug, Default)]
struct Memory {
    versions: HashMap<RoleKey, u64>,
    roots: HashMap<(String, String), Arc<TrustedRoot>>,
}

/// Highest versions seen and last trusted roots, shared by all loads of one process.
#[derive(Debug, Default)]
pub struct VersionMemory {
    inner: Mutex<Memory>,
}

impl VersionMemory {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The highest version of `role` seen for `gun` on `server`.
    pub fn seen(&self, server: &str, gun: &str, role: &str) -> Option<u64> {
        let key = (server.to_owned(), gun.to_owned(), role.to_owned());
        self.lock().versions.get(&key).copied()
    }

    /// Records `version` of `role` (keeps the maximum).
    pub fn record(&self, server: &str, gun: &str, role: &str, version: u64) {
        let key = (server.to_owned(), gun.to_owned(), role.to_owned());
        let mut mem = self.lock();
        let v = mem.versions.entry(key).or_insert(version);
        *v = (*v).max(version);
    }

    /// The last trusted root of `gun` on `server`.
    pub fn trusted_root(&self, server: &str, gun: &str) -> Option<Arc<TrustedRoot>> {
        self.lock()
            .roots
            .get(&(server.to_owned(), gun.to_owned()))
            .cloned()
    }

    fn remember_root(&self, server: &str, gun: &str, root: &TrustedRoot) {
        let mut mem = self.lock();
        let slot = mem.roots.entry((server.to_owned(), gun.to_owned()));
        match slot {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if o.get().version() < root.version() {
                    o.insert(Arc::new(root.clone()));
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Arc::new(root.clone()));
            }
        }
    }
}

/// Loads and verifies trust data, remembering versions across loads.
#[derive(Debug)]
pub struct Updater {
    memory: VersionMemory,
    clock: Arc<dyn Clock>,
    store: Option<Store>,
}

/// Per-load context for the delegation walk.
struct Ctx<'a, S> {
    source: &'a S,
    gun: &'a str,
    snapshot: &'a Snapshot,
    now: OffsetDateTime,
    revoked: &'a Revocations,
    revoked_id: Id,
    memory: &'a VersionMemory,
    store: Option<&'a Store>,
}

impl Updater {
    /// An updater with empty memory, reading time from `clock`. It keeps no files between loads.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Updater {
            memory: VersionMemory::default(),
            clock,
            store: None,
        }
    }

    /// Keeps verified files and trusted roots between loads, bounded by `reuse`.
    pub fn with_reuse(mut self, reuse: Reuse) -> Self {
        self.store = Some(Store::new(&reuse));
        self
    }

    /// The version memory (for inspection and tests).
    pub fn memory(&self) -> &VersionMemory {
        &self.memory
    }

    /// Loads the trust data of `gun` from `source` and verifies it under `opts`.
    pub async fn load<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
    ) -> Result<TrustData, VerifyError> {
        self.load_with_expiry(source, gun, opts)
            .await
            .map(|l| l.data)
    }

    /// As [`load`](Self::load), also saying until when the data is valid.
    pub async fn load_with_expiry<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
    ) -> Result<Loaded, VerifyError> {
        let now = self.clock.now();
        let server = source.server();
        let Some(store) = &self.store else {
            let root = self.trusted_root(source, gun, opts, now).await?;
            return self.update(source, gun, opts, &root, now).await;
        };
        let root_key = Store::root_key(server, gun, &opts.fingerprint());
        let newest = self.memory.trusted_root(server, gun).map(|r| r.version());
        if let Some(root) = store.root(&root_key, now, newest) {
            match self.update(source, gun, opts, &root, now).await {
                Ok(loaded) => return Ok(loaded),
                Err(e @ VerifyError::Fetch(_)) => return Err(e),
                Err(e) => {
                    tracing::debug!(gun, error = %e, "update with the kept root failed; fetching the root again");
                    store.forget_root(&root_key);
                }
            }
        }
        let root = Arc::new(self.trusted_root(source, gun, opts, now).await?);
        let loaded = self.update(source, gun, opts, &root, now).await?;
        store.keep_root(root_key, root);
        Ok(loaded)
    }

    /// Steps 2 to 5 with a trusted root: timestamp, snapshot, targets, delegations; then
    /// remembers the versions.
    async fn update<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
        root: &TrustedRoot,
        now: OffsetDateTime,
    ) -> Result<Loaded, VerifyError> {
        let server = source.server();
        let revoked = &opts.revoked;
        let revoked_id = revoked.fingerprint();
        let root_ctx = reuse::context(&reuse::id(&[&root.file.raw]), &revoked_id);
        let seen = |role: &str| self.memory.seen(server, gun, role);

        let raw = source
            .fetch(
                gun,
                &MetaRequest::Current {
                    role: TIMESTAMP.into(),
                },
                MAX_TIMESTAMP_SIZE,
            )
            .await?;
        let timestamp = verify_timestamp(root, raw, seen(TIMESTAMP), now, revoked)?;
        let snapshot = self
            .snapshot(
                source,
                gun,
                root,
                &timestamp.file.body,
                &root_ctx,
                now,
                revoked,
            )
            .await?;
        let snap = &snapshot.file.body;

        let targets_meta = snap
            .meta
            .get(TARGETS)
            .ok_or_else(|| VerifyError::NotInSnapshot {
                gun: gun.to_owned(),
                role: TARGETS.into(),
            })?;
        let key = self
            .store
            .as_ref()
            .map(|_| Store::file_key(server, gun, TARGETS, targets_meta, &root_ctx));
        let targets = match self.kept_targets(key.as_ref()) {
            Some(t) => {
                check_version(gun, TARGETS, &t.file.body.common, seen(TARGETS))?;
                check_expiry(gun, TARGETS, &t.file.body.common, now)?;
                t
            }
            None => {
                let raw = fetch_by_hash(source, gun, TARGETS, targets_meta).await?;
                let t = verify_targets(root, snap, raw, seen(TARGETS), now, revoked)?;
                keep(self.store.as_ref(), key, t, Cached::Targets)
            }
        };

        let root_body = &root.file.body;
        let mut roles = vec![RoleInfo::valid(
            TARGETS,
            key_infos(&root_body.keys, &root_body.roles.targets.keyids),
            root_body.roles.targets.threshold,
            vec![String::new()],
            &targets,
        )];
        let ctx = Ctx {
            source,
            gun,
            snapshot: snap,
            now,
            revoked,
            revoked_id,
            memory: &self.memory,
            store: self.store.as_ref(),
        };
        let targets_id = reuse::meta_id(targets_meta);
        load_children(
            &ctx,
            TARGETS,
            &targets_id,
            &targets.file.body,
            &[String::new()],
            &mut roles,
        )
        .await?;

        // Everything verified: remember what we saw.
        self.memory.remember_root(server, gun, root);
        self.memory.record(server, gun, ROOT, root.version());
        self.memory
            .record(server, gun, TIMESTAMP, timestamp.file.body.common.version);
        self.memory
            .record(server, gun, SNAPSHOT, snap.common.version);
        for role in &roles {
            if let (RoleStatus::Valid, Some(v)) = (&role.status, role.version) {
                self.memory.record(server, gun, &role.name, v);
            }
        }
        let valid_until = reuse::earliest(
            root.file.body.common.expires,
            [timestamp.file.body.common.expires, snap.common.expires]
                .into_iter()
                .chain(reuse::root_certs_expire(root))
                .chain(
                    roles
                        .iter()
                        .filter(|r| r.status == RoleStatus::Valid)
                        .filter_map(|r| r.expires),
                ),
        );
        Ok(Loaded {
            data: TrustData::new(gun.to_owned(), RootInfo::from_trusted(root), roles),
            valid_until,
            timestamp_expires: timestamp.file.body.common.expires,
            snapshot_expires: snap.common.expires,
        })
    }

    /// Step 3: the snapshot the timestamp lists, kept or fetched by hash.
    #[allow(clippy::too_many_arguments)]
    async fn snapshot<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        root: &TrustedRoot,
        timestamp: &Timestamp,
        root_ctx: &Id,
        now: OffsetDateTime,
        revoked: &Revocations,
    ) -> Result<Arc<Verified<Snapshot>>, VerifyError> {
        let seen = self.memory.seen(source.server(), gun, SNAPSHOT);
        let key = self.store.as_ref().map(|_| {
            Store::file_key(
                source.server(),
                gun,
                SNAPSHOT,
                &timestamp.snapshot,
                root_ctx,
            )
        });
        let kept = match (self.store.as_ref(), key.as_ref()) {
            (Some(store), Some(key)) => store.file(key),
            _ => None,
        };
        if let Some(Cached::Snapshot(s)) = kept {
            // Same bytes, same root: only version and expiry can have changed meaning.
            check_version(gun, SNAPSHOT, &s.file.body.common, seen)?;
            check_expiry(gun, SNAPSHOT, &s.file.body.common, now)?;
            return Ok(s);
        }
        let raw = fetch_by_hash(source, gun, SNAPSHOT, &timestamp.snapshot).await?;
        let s = verify_snapshot(root, timestamp, raw, seen, now, revoked)?;
        Ok(keep(self.store.as_ref(), key, s, Cached::Snapshot))
    }

    fn kept_targets(&self, key: Option<&Id>) -> Option<Arc<Verified<Targets>>> {
        match self.store.as_ref()?.file(key?)? {
            Cached::Targets(t) => Some(t),
            Cached::Snapshot(_) => None,
        }
    }

    /// Step 1: the newest root, trusted directly by the pins or through a chain of rotations
    /// from an older root the pins accept (the remembered root first, else walking back).
    async fn trusted_root<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
        now: OffsetDateTime,
    ) -> Result<TrustedRoot, VerifyError> {
        let (pins, threshold, revoked) =
            (&opts.trust_roots, opts.trust_root_threshold, &opts.revoked);
        let raw = source
            .fetch(
                gun,
                &MetaRequest::Current { role: ROOT.into() },
                MAX_ROOT_SIZE,
            )
            .await?;
        let latest = SignedFile::<Root>::parse(gun, ROOT, raw)?;
        let newest = latest.body.common.version;
        let remembered = self.memory.trusted_root(source.server(), gun);
        if let Some(prev) = &remembered
            && newest < prev.version()
        {
            return Err(VerifyError::Rollback {
                gun: gun.into(),
                role: ROOT.into(),
                seen: prev.version(),
                got: newest,
            });
        }
        let direct = match verify_pinned_root(latest.clone(), pins, threshold, revoked, now, true) {
            Ok(trusted) => return Ok(trusted),
            Err(e @ VerifyError::UntrustedRoot { .. }) if newest > 1 => e,
            Err(e) => return Err(e),
        };

        // Find an anchor: a root the pins accept, older than the newest.
        let mut older: BTreeMap<u64, SignedFile<Root>> = BTreeMap::new();
        let from_memory = remembered
            .filter(|prev| prev.version() < newest)
            .and_then(|prev| {
                verify_pinned_root(prev.file.clone(), pins, threshold, revoked, now, false).ok()
            });
        let anchor = match from_memory {
            Some(anchor) => anchor,
            None => {
                let lowest = newest.saturating_sub(MAX_ROOT_WALK).max(1);
                let mut found = None;
                for v in (lowest..newest).rev() {
                    let Some(file) = fetch_root_version(source, gun, v).await? else {
                        break;
                    };
                    match verify_pinned_root(file.clone(), pins, threshold, revoked, now, false) {
                        Ok(anchor) => {
                            found = Some(anchor);
                            break;
                        }
                        Err(_) => {
                            older.insert(v, file);
                        }
                    }
                }
                match found {
                    Some(anchor) => anchor,
                    None if lowest > 1 && older.len() as u64 == newest - lowest => {
                        return Err(VerifyError::RootChainTooLong {
                            gun: gun.into(),
                            version: newest,
                            limit: MAX_ROOT_WALK,
                        });
                    }
                    None => return Err(direct),
                }
            }
        };

        // Verify each rotation forward; intermediate roots ignore expiry, the newest doesn't.
        let mut current = anchor;
        for v in current.version() + 1..newest {
            let file = match older.remove(&v) {
                Some(file) => file,
                None => fetch_root_version(source, gun, v).await?.ok_or_else(|| {
                    FetchError::NotFound {
                        server: source.server().to_owned(),
                        gun: gun.to_owned(),
                        file: MetaRequest::Version {
                            role: ROOT.into(),
                            version: v,
                        }
                        .file_name(),
                    }
                })?,
            };
            current = verify_rotation(&current, file, revoked, now, false)?;
        }
        verify_rotation(&current, latest, revoked, now, true)
    }
}

/// `<v>.root.json`, parsed and checked to hold version `v`; `None` when the server has none.
async fn fetch_root_version<S: MetadataSource>(
    source: &S,
    gun: &str,
    v: u64,
) -> Result<Option<SignedFile<Root>>, VerifyError> {
    let req = MetaRequest::Version {
        role: ROOT.into(),
        version: v,
    };
    let raw = match source.fetch(gun, &req, MAX_ROOT_SIZE).await {
        Ok(raw) => raw,
        Err(FetchError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = SignedFile::<Root>::parse(gun, ROOT, raw)?;
    if file.body.common.version != v {
        return Err(VerifyError::VersionMismatch {
            gun: gun.into(),
            role: ROOT.into(),
            expected: v,
            got: file.body.common.version,
        });
    }
    Ok(Some(file))
}

/// Fetches `<role>.<sha256>.json`, capped at the length the parent lists.
async fn fetch_by_hash<S: MetadataSource>(
    source: &S,
    gun: &str,
    role: &str,
    meta: &super::schema::FileMeta,
) -> Result<Vec<u8>, VerifyError> {
    check_meta_hashes(meta).map_err(|detail| VerifyError::Malformed {
        gun: gun.to_owned(),
        role: if role == SNAPSHOT {
            TIMESTAMP.into()
        } else {
            SNAPSHOT.into()
        },
        detail: format!("meta {role}: {detail}"),
    })?;
    let sha256_hex = hex::encode(meta.hashes.sha256.as_deref().unwrap_or_default());
    let req = MetaRequest::ByHash {
        role: role.to_owned(),
        sha256_hex,
    };
    Ok(source.fetch(gun, &req, meta.length).await?)
}

/// A delegation file: kept (verified before) or just fetched.
enum Got {
    Kept(Arc<Verified<Targets>>),
    Fetched(Result<Vec<u8>, VerifyError>),
}

/// Loads the delegations `parent` (role `parent_name`, effective `paths`, meta identity
/// `parent_id`) declares, in pre-order: the ones listed in the snapshot are fetched concurrently
/// (unless kept), verified in file order, and each valid one is descended into before its next
/// sibling. Only valid delegations are kept; invalid ones are fetched again on the next load.
fn load_children<'a, S: MetadataSource>(
    ctx: &'a Ctx<'a, S>,
    parent_name: &'a str,
    parent_id: &'a Id,
    parent: &'a Targets,
    paths: &'a [String],
    out: &'a mut Vec<RoleInfo>,
) -> BoxFuture<'a, Result<(), VerifyError>> {
    async move {
        let server = ctx.source.server();
        let context = reuse::context(parent_id, &ctx.revoked_id);
        let declared = &parent.delegations.roles;
        let fetches = declared.iter().map(|d| {
            let context = &context;
            async move {
                let meta = ctx.snapshot.meta.get(&d.name)?;
                let key = ctx
                    .store
                    .map(|_| Store::file_key(server, ctx.gun, &d.name, meta, context));
                let kept = match (ctx.store, key.as_ref()) {
                    (Some(store), Some(key)) => store.file(key),
                    _ => None,
                };
                Some(match kept {
                    Some(Cached::Targets(t)) => (meta, key, Got::Kept(t)),
                    _ => (meta, key, Got::Fetched(fetch_by_hash(ctx.source, ctx.gun, &d.name, meta).await)),
                })
            }
        });
        let fetched = join_all(fetches).await;
        for (decl, got) in declared.iter().zip(fetched) {
            let keys = key_infos(&parent.delegations.keys, &decl.keys.keyids);
            let child_paths = restrict_paths(paths, &decl.paths);
            let threshold = decl.keys.threshold;
            let Some((meta, key, got)) = got else {
                out.push(RoleInfo::unusable(&decl.name, keys, threshold, child_paths, RoleStatus::NotPublished));
                continue;
            };
            let seen = ctx.memory.seen(server, ctx.gun, &decl.name);
            let outcome = match got {
                Got::Kept(v) => {
                    check_version(ctx.gun, &decl.name, &v.file.body.common, seen)?;
                    check_expiry(ctx.gun, &decl.name, &v.file.body.common, ctx.now).map(|()| v)
                }
                Got::Fetched(raw) => {
                    match verify_delegation(ctx.gun, parent_name, parent, ctx.snapshot, &decl.name, raw?, seen, ctx.now, ctx.revoked)? {
                        DelegationOutcome::Valid(v) => Ok(keep(ctx.store, key, v, Cached::Targets)),
                        DelegationOutcome::Invalid(e) => Err(e),
                    }
                }
            };
            match outcome {
                Ok(v) => {
                    out.push(RoleInfo::valid(&decl.name, keys, threshold, child_paths.clone(), &v));
                    let id = reuse::meta_id(meta);
                    load_children(ctx, &decl.name, &id, &v.file.body, &child_paths, out).await?;
                }
                Err(e) => {
                    tracing::warn!(gun = ctx.gun, role = %decl.name, error = %e, "skipping invalid delegation");
                    out.push(RoleInfo::unusable(&decl.name, keys, threshold, child_paths, RoleStatus::Invalid(e)));
                }
            }
        }
        Ok(())
    }
    .boxed()
}

/// Keeps `v` under `key` (slimmed) when files are kept; returns it shared.
fn keep<T>(
    store: Option<&Store>,
    key: Option<Id>,
    v: Verified<T>,
    wrap: fn(Arc<Verified<T>>) -> Cached,
) -> Arc<Verified<T>> {
    match (store, key) {
        (Some(store), Some(key)) => {
            let v = Arc::new(reuse::slim(v));
            store.keep_file(key, wrap(v.clone()));
            v
        }
        _ => Arc::new(v),
    }
}
