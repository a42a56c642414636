//! The update flow over a `MetadataSource` (notary-protocol.md §4.1): trusted root (module
//! `rootchain`: pinning, rotation from the remembered root, walking back to a pinned root),
//! timestamp, snapshot by hash, targets by hash and the delegations listed in the snapshot
//! (pre-order, siblings fetched `LIMITS.delegation_fetch_concurrency` at a time, at most
//! `LIMITS.delegations_per_repository` in all). `VersionMemory` (module `memory`) remembers the
//! highest version seen per (server, GUN, role) and the last trusted root, so nothing goes back.
//!
//! Every file is read under an absolute size cap (`LIMITS.root_bytes`, `timestamp_bytes`,
//! `metadata_bytes`), whatever length its parent declares, and every signature check runs on
//! tokio's blocking pool (`off_runtime`), so a deadline around a load fires and the async
//! workers keep serving while a hostile file is checked.
//!
//! With [`Updater::with_reuse`] the updater also keeps verified files content-addressed and the
//! trusted root per trust options (module `reuse`), so a refresh fetches `timestamp.json` first
//! and only the files whose hashes changed. A load with a kept root that fails verification is
//! retried once with a freshly fetched root (as notary's client does). Versions and expiry are
//! checked on every load, for kept files too.

use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use time::OffsetDateTime;

use super::schema::{
    ROOT, SNAPSHOT, Snapshot, TARGETS, TIMESTAMP, Targets, Timestamp, check_meta_hashes,
};
use super::source::{MetaRequest, MetadataSource};
use super::verify::{
    DelegationOutcome, TrustedRoot, Verified, VerifyError, check_expiry, check_version,
    verify_delegation, verify_snapshot, verify_targets, verify_timestamp,
};
use super::view::{RoleInfo, RoleStatus, RootInfo, TrustData, key_infos, restrict_paths};
use crate::clock::Clock;
use crate::limits::LIMITS;

#[path = "memory.rs"]
mod memory;
#[path = "options.rs"]
mod options;
#[path = "reuse.rs"]
mod reuse;
#[path = "rootchain.rs"]
mod rootchain;

pub use memory::VersionMemory;
pub use options::{Revocations, TrustOptions, TrustRoot};
pub use reuse::Reuse;
use reuse::{Cached, Id, Store};

#[cfg(test)]
#[path = "tests/mod.rs"]
pub(crate) mod tests;

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
    snapshot: Arc<Verified<Snapshot>>,
    now: OffsetDateTime,
    revoked: Arc<Revocations>,
    revoked_id: Id,
    memory: &'a VersionMemory,
    store: Option<&'a Store>,
    /// Delegations declared so far in this load (bounded by `LIMITS.delegations_per_repository`).
    declared: std::sync::atomic::AtomicUsize,
}

/// Runs CPU-bound verification `f` on tokio's blocking pool when a runtime is present, so a
/// deadline around the load still fires and async workers keep serving while it runs (the
/// work itself is bounded by the size and signature caps); inline without a runtime.
async fn off_runtime<R: Send + 'static>(
    gun: &str,
    role: &str,
    f: impl FnOnce() -> Result<R, VerifyError> + Send + 'static,
) -> Result<R, VerifyError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|e| VerifyError::Verifier {
                gun: gun.to_owned(),
                role: role.to_owned(),
                detail: e.to_string(),
            })?,
        Err(_) => f(),
    }
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
        // Revoked key IDs revoke their public keys: learn them from the remembered root too.
        let mut revoked = opts.revoked.clone();
        let remembered = self.memory.trusted_root(server, gun);
        if let Some(prev) = &remembered {
            revoked.resolve(prev.file.body.keys.values().map(AsRef::as_ref));
        }
        let Some(store) = &self.store else {
            let root = self
                .trusted_root(source, gun, opts, &mut revoked, now)
                .await?;
            return self
                .update(source, gun, opts, Arc::new(root), revoked, now)
                .await;
        };
        let root_key = Store::root_key(server, gun, &opts.fingerprint());
        let newest = remembered.map(|r| r.version());
        if let Some(root) = store.root(&root_key, now, newest) {
            let mut kept_revoked = revoked.clone();
            kept_revoked.resolve(root.file.body.keys.values().map(AsRef::as_ref));
            match self
                .update(source, gun, opts, root, kept_revoked, now)
                .await
            {
                Ok(loaded) => return Ok(loaded),
                Err(e @ VerifyError::Fetch(_)) => return Err(e),
                Err(e) => {
                    tracing::debug!(gun, error = %e, "update with the kept root failed; fetching the root again");
                    store.forget_root(&root_key);
                }
            }
        }
        let root = Arc::new(
            self.trusted_root(source, gun, opts, &mut revoked, now)
                .await?,
        );
        let loaded = self
            .update(source, gun, opts, root.clone(), revoked, now)
            .await?;
        store.keep_root(root_key, root);
        Ok(loaded)
    }

    /// Steps 2 to 5 with a trusted root: timestamp, snapshot, targets, delegations; then
    /// remembers the versions. `revoked` is `opts.revoked`, resolved over the roots read.
    async fn update<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
        root: Arc<TrustedRoot>,
        mut revoked: Revocations,
        now: OffsetDateTime,
    ) -> Result<Loaded, VerifyError> {
        let server = source.server();
        // Fast-forward recovery (TUF 5.3.11): a role whose keys the new root replaced starts
        // its version memory afresh.
        if let Some(prev) = self.memory.trusted_root(server, gun)
            && prev.version() < root.version()
        {
            for role in [TIMESTAMP, SNAPSHOT, TARGETS] {
                let keyids = |r: &TrustedRoot| {
                    r.file.body.roles.get(role).map(|k| {
                        let mut ids = k.keyids.clone();
                        ids.sort();
                        ids
                    })
                };
                if keyids(&prev) != keyids(&root) {
                    self.memory.forget(server, gun, role);
                }
            }
        }
        // The cache identity of the revocations is the policy's, not what was learned.
        let revoked_id = opts.revoked.fingerprint();
        revoked.resolve(root.file.body.keys.values().map(AsRef::as_ref));
        let revoked = Arc::new(revoked);
        let root_ctx = reuse::context(&reuse::id(&[&root.file.raw]), &revoked_id);
        let seen = |role: &str| self.memory.seen(server, gun, role);

        let raw = source
            .fetch(
                gun,
                &MetaRequest::Current {
                    role: TIMESTAMP.into(),
                },
                LIMITS.timestamp_bytes,
            )
            .await?;
        let timestamp = {
            let (root, revoked, seen) = (root.clone(), revoked.clone(), seen(TIMESTAMP));
            off_runtime(gun, TIMESTAMP, move || {
                verify_timestamp(&root, raw, seen, now, &revoked)
            })
            .await?
        };
        let snapshot = self
            .snapshot(
                source,
                gun,
                &root,
                &timestamp.file.body,
                &root_ctx,
                now,
                &revoked,
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
                let (root, snapshot, revoked, seen) = (
                    root.clone(),
                    snapshot.clone(),
                    revoked.clone(),
                    seen(TARGETS),
                );
                let t = off_runtime(gun, TARGETS, move || {
                    verify_targets(&root, &snapshot.file.body, raw, seen, now, &revoked)
                })
                .await?;
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
            snapshot: snapshot.clone(),
            now,
            revoked,
            revoked_id,
            memory: &self.memory,
            store: self.store.as_ref(),
            declared: std::sync::atomic::AtomicUsize::new(0),
        };
        let targets_id = reuse::meta_id(targets_meta);
        load_children(
            &ctx,
            TARGETS,
            &targets_id,
            targets.clone(),
            &[String::new()],
            &mut roles,
        )
        .await?;

        // Everything verified: remember what we saw.
        self.memory.remember_root(server, gun, &root);
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
                .chain(reuse::root_certs_expire(&root))
                .chain(
                    roles
                        .iter()
                        .filter(|r| r.status == RoleStatus::Valid)
                        .filter_map(|r| r.expires),
                ),
        );
        Ok(Loaded {
            data: TrustData::new(gun.to_owned(), RootInfo::from_trusted(&root), roles),
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
        root: &Arc<TrustedRoot>,
        timestamp: &Timestamp,
        root_ctx: &Id,
        now: OffsetDateTime,
        revoked: &Arc<Revocations>,
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
        let (root, timestamp, revoked) = (root.clone(), timestamp.clone(), revoked.clone());
        let s = off_runtime(gun, SNAPSHOT, move || {
            verify_snapshot(&root, &timestamp, raw, seen, now, &revoked)
        })
        .await?;
        Ok(keep(self.store.as_ref(), key, s, Cached::Snapshot))
    }

    fn kept_targets(&self, key: Option<&Id>) -> Option<Arc<Verified<Targets>>> {
        match self.store.as_ref()?.file(key?)? {
            Cached::Targets(t) => Some(t),
            Cached::Snapshot(_) => None,
        }
    }
}

/// Fetches `<role>.<sha256>.json`, capped at the length the parent lists and at
/// `LIMITS.metadata_bytes` whatever that length is.
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
    let cap = meta.length.min(LIMITS.metadata_bytes);
    Ok(source.fetch(gun, &req, cap).await?)
}

/// A delegation file: kept (verified before) or just fetched.
enum Got {
    Kept(Arc<Verified<Targets>>),
    Fetched(Result<Vec<u8>, VerifyError>),
}

/// Loads the delegations `parent` (role `parent_name`, effective `paths`, meta identity
/// `parent_id`) declares, in pre-order: the ones listed in the snapshot are fetched
/// `LIMITS.delegation_fetch_concurrency` at a time (unless kept), verified in file order, and
/// each valid one is descended into before its next sibling. More than
/// `LIMITS.delegations_per_repository` declared delegations fail the load. Only valid
/// delegations are kept; invalid ones are fetched again on the next load.
fn load_children<'a, S: MetadataSource>(
    ctx: &'a Ctx<'a, S>,
    parent_name: &'a str,
    parent_id: &'a Id,
    parent: Arc<Verified<Targets>>,
    paths: &'a [String],
    out: &'a mut Vec<RoleInfo>,
) -> BoxFuture<'a, Result<(), VerifyError>> {
    async move {
        let server = ctx.source.server();
        let context = reuse::context(parent_id, &ctx.revoked_id);
        let declared = &parent.file.body.delegations.roles;
        let total = ctx
            .declared
            .fetch_add(declared.len(), std::sync::atomic::Ordering::Relaxed)
            + declared.len();
        if total > LIMITS.delegations_per_repository {
            return Err(VerifyError::TooManyDelegations {
                gun: ctx.gun.to_owned(),
                role: parent_name.to_owned(),
                limit: LIMITS.delegations_per_repository,
            });
        }
        let fetches: Vec<_> = declared.iter().map(|d| {
            let context = &context;
            async move {
                let meta = ctx.snapshot.file.body.meta.get(&d.name)?;
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
            .boxed()
        }).collect();
        let fetched: Vec<_> = stream::iter(fetches)
            .buffered(LIMITS.delegation_fetch_concurrency.max(1))
            .collect()
            .await;
        for (decl, got) in declared.iter().zip(fetched) {
            let keys = key_infos(&parent.file.body.delegations.keys, &decl.keys.keyids);
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
                    let raw = raw?;
                    let (gun, parent_role, name) = (ctx.gun.to_owned(), parent_name.to_owned(), decl.name.clone());
                    let (parent, snapshot, revoked, now) = (parent.clone(), ctx.snapshot.clone(), ctx.revoked.clone(), ctx.now);
                    let verified = off_runtime(ctx.gun, &decl.name, move || {
                        verify_delegation(&gun, &parent_role, &parent.file.body, &snapshot.file.body, &name, raw, seen, now, &revoked)
                    })
                    .await?;
                    match verified {
                        DelegationOutcome::Valid(v) => Ok(keep(ctx.store, key, v, Cached::Targets)),
                        DelegationOutcome::Invalid(e) => Err(e),
                    }
                }
            };
            match outcome {
                Ok(v) => {
                    out.push(RoleInfo::valid(&decl.name, keys, threshold, child_paths.clone(), &v));
                    let id = reuse::meta_id(meta);
                    load_children(ctx, &decl.name, &id, v, &child_paths, out).await?;
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
