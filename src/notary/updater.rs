//! The update chain: how a client comes to trust a repository's targets, step by step in the
//! order of Notary's client (`client/tufclient.go` `Update`) and the TUF client workflow (TUF
//! specification §5.3-5.6). [`Updater::load_with_expiry`] runs it; `Chain::run` reads top to
//! bottom:
//!
//! 1. **root** (`root`): the pinned or rotated root, or the one kept from an earlier load;
//! 2. **timestamp** (`Trusted::timestamp`): always fetched;
//! 3. **snapshot** (`Trusted::snapshot`): by the hash the timestamp lists;
//! 4. **targets** (`Trusted::targets`): by the hash the snapshot lists;
//! 5. **delegations** (`delegations`): pre-order, the ones the snapshot lists;
//!
//! then the versions seen are remembered (`VersionMemory`) and the earliest expiry computed.
//! A step starts only once its parent is verified; nothing is trusted before that.
//!
//! On the cold path (no root kept) the files of steps 2 to 5 are fetched while the root is
//! (`prefetch`), and still verified in this order, each only once its parent is verified and
//! only if it matches what the parent lists; otherwise fetched again by hash.
//!
//! Every file is read under an absolute size cap (`LIMITS.root_bytes`, `timestamp_bytes`,
//! `metadata_bytes`), whatever length its parent declares, and every signature check runs on
//! tokio's blocking pool (`off_runtime`), so a deadline around a load fires and the async
//! workers keep serving while a hostile file is checked.
//!
//! With [`Updater::with_reuse`] verified files are kept content-addressed and the trusted root per
//! trust options (`notary::reuse`), so a refresh fetches `timestamp.json` first and only the files
//! whose hashes changed (one helper, `kept`, decides between a kept file and a fetched one). A
//! load with a kept root that fails verification is retried once with a freshly fetched root (as
//! notary's client retries `update()` after downloading the root). Versions and expiry are checked
//! on every load, for kept files too.

mod delegations;
mod kept;
mod prefetch;
mod root;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use time::OffsetDateTime;

use self::prefetch::Prefetched;
use super::ident::{self, Id};
use super::reuse::Store;
use super::schema::{ROOT, SNAPSHOT, Snapshot, TARGETS, TIMESTAMP, Targets, Timestamp};
use super::source::{MetaRequest, MetadataSource};
use super::verify::{
    Outcome, TrustedRoot, Verified, VerifyError, verify_snapshot, verify_targets, verify_timestamp,
};
use super::view::{RoleInfo, RoleStatus, RootInfo, TrustData, key_infos};
use crate::clock::Clock;
use crate::limits::LIMITS;

pub use super::memory::VersionMemory;
pub use super::options::{Revocations, TrustOptions, TrustRoot};
pub use super::reuse::Reuse;

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

    /// As [`load`](Self::load), also saying until when the data is valid: runs the update chain.
    pub async fn load_with_expiry<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
    ) -> Result<Loaded, VerifyError> {
        Chain {
            source,
            server: source.server(),
            gun,
            opts,
            now: self.clock.now(),
            memory: &self.memory,
            store: self.store.as_ref(),
        }
        .run()
        .await
    }
}

/// One load of one repository: what every step shares, so no step takes loose parameters.
struct Chain<'a, S> {
    source: &'a S,
    /// The source's name (part of every memory and cache key).
    server: &'a str,
    gun: &'a str,
    opts: &'a TrustOptions,
    /// The time of the whole load: every expiry is checked against it.
    now: OffsetDateTime,
    memory: &'a VersionMemory,
    store: Option<&'a Store>,
}

/// The chain once its root is trusted (steps 2 to 5): the root, the revocations resolved over
/// every root read, and the identities kept files are keyed by.
struct Trusted<'c, 'a, S> {
    chain: &'c Chain<'a, S>,
    root: Arc<TrustedRoot>,
    revoked: Arc<Revocations>,
    /// The cache identity of the policy's revocations (not of what was learned from roots).
    revoked_id: Id,
    /// The identity of the root as the verifier of snapshot and targets.
    root_context: Id,
    /// Delegations declared so far in this load (bounded by `LIMITS.delegations_per_repository`).
    declared: AtomicUsize,
    /// Files fetched ahead of their turn (cold path), used only once their parent is verified.
    prefetched: Prefetched,
}

impl<S: MetadataSource> Chain<'_, S> {
    /// The whole chain, in protocol order. With files kept, a kept root is tried first; when the
    /// update under it fails for any reason but a fetch error, the root is fetched and trusted
    /// again and the update runs once more (notary's client: "download root once and retry").
    async fn run(&self) -> Result<Loaded, VerifyError> {
        // Revoked key IDs revoke their public keys: learn them from the remembered root too.
        let mut revoked = self.opts.revoked.clone();
        let remembered = self.memory.trusted_root(self.server, self.gun);
        if let Some(prev) = &remembered {
            revoked.resolve(prev.file.body.keys.values().map(AsRef::as_ref));
        }
        let root_key = self.store.map(|store| {
            (
                store,
                Store::root_key(self.server, self.gun, &self.opts.fingerprint()),
            )
        });
        let newest = remembered.map(|r| r.version());
        let mut retry = false;
        if let Some((store, root_key)) = &root_key
            && let Some(root) = store.root(root_key, self.now, newest)
        {
            match self
                .update(root, revoked.clone(), Prefetched::default())
                .await
            {
                Ok(loaded) => return Ok(loaded),
                Err(e @ VerifyError::Fetch(_)) => return Err(e),
                Err(e) => {
                    tracing::debug!(gun = self.gun, error = %e, "update with the kept root failed; fetching the root again");
                    store.forget_root(root_key);
                    retry = true;
                }
            }
        }
        // Step 1, while the files of steps 2 to 5 are fetched ahead (`prefetch`): they are
        // verified only after the root, each after its parent. Not on the retry after a kept
        // root failed: the files kept then are reused, not fetched again.
        let ahead = async {
            if retry {
                Prefetched::default()
            } else {
                self.prefetch().await
            }
        };
        let (root, ahead) = futures::join!(self.trusted_root(&mut revoked), ahead);
        let root = Arc::new(root?);
        let loaded = self.update(root.clone(), revoked, ahead).await?;
        if let Some((store, root_key)) = root_key {
            store.keep_root(root_key, root);
        }
        Ok(loaded)
    }

    /// Steps 2 to 5 under a trusted root, then the versions are remembered. `revoked` is the
    /// policy's revocations, resolved over the roots read so far; `ahead` the files fetched
    /// ahead (none on a refresh with a kept root).
    async fn update(
        &self,
        root: Arc<TrustedRoot>,
        mut revoked: Revocations,
        ahead: Prefetched,
    ) -> Result<Loaded, VerifyError> {
        self.fast_forward(&root);
        revoked.resolve(root.file.body.keys.values().map(AsRef::as_ref));
        let revoked_id = self.opts.revoked.fingerprint();
        let step = Trusted {
            chain: self,
            root_context: ident::context(&ident::id(&[&root.file.raw]), &revoked_id),
            root,
            revoked: Arc::new(revoked),
            revoked_id,
            declared: AtomicUsize::new(0),
            prefetched: ahead,
        };
        let timestamp = step.timestamp().await?;
        let snapshot = step.snapshot(&timestamp).await?;
        // The delegations the snapshot lists are fetched while targets is verified.
        let (targets, ()) = futures::join!(
            step.targets(&snapshot),
            step.prefetch_listed(&snapshot.file.body)
        );
        let targets = targets?;
        let roles = step.delegations(&snapshot, targets).await?;
        Ok(step.finish(&timestamp.file.body, &snapshot.file.body, roles))
    }

    /// Fast-forward attack recovery (TUF §5.3.11): when the trusted root is newer than the one
    /// remembered, a base role whose keys it replaced starts its version memory afresh.
    fn fast_forward(&self, root: &TrustedRoot) {
        let Some(prev) = self.memory.trusted_root(self.server, self.gun) else {
            return;
        };
        if prev.version() >= root.version() {
            return;
        }
        for role in [TIMESTAMP, SNAPSHOT, TARGETS] {
            let keyids = |r: &TrustedRoot| {
                r.file.body.roles.get(role).map(|k| {
                    let mut ids = k.keyids.clone();
                    ids.sort();
                    ids
                })
            };
            if keyids(&prev) != keyids(root) {
                self.memory.forget(self.server, self.gun, role);
            }
        }
    }

    /// The highest version of `role` seen before (the floor against rollback).
    fn seen(&self, role: &str) -> Option<u64> {
        self.memory.seen(self.server, self.gun, role)
    }
}

impl<S: MetadataSource> Trusted<'_, '_, S> {
    /// Step 2, the timestamp (TUF §5.4; notary `update` (a)): always fetched as `timestamp.json`
    /// (at most `LIMITS.timestamp_bytes`), signed by the root's timestamp role threshold, not
    /// below the version seen, not expired.
    async fn timestamp(&self) -> Result<Verified<Timestamp>, VerifyError> {
        let chain = self.chain;
        let raw = match self.prefetched.take_timestamp() {
            Some(ahead) => ahead?,
            None => {
                chain
                    .source
                    .fetch(
                        chain.gun,
                        &MetaRequest::Current {
                            role: TIMESTAMP.into(),
                        },
                        LIMITS.timestamp_bytes,
                    )
                    .await?
            }
        };
        let (root, revoked, seen, now) = (
            self.root.clone(),
            self.revoked.clone(),
            chain.seen(TIMESTAMP),
            chain.now,
        );
        kept::off_runtime(chain.gun, TIMESTAMP, move || {
            verify_timestamp(&root, raw, seen, now, &revoked)
        })
        .await
    }

    /// Step 3, the snapshot (TUF §5.5; notary `update` (b)): the file whose length and hashes
    /// the timestamp lists, signed by the root's snapshot role threshold, not below the version
    /// seen, not expired; and the trusted root must match the root hash it lists (else the root
    /// changed during the update).
    async fn snapshot(
        &self,
        timestamp: &Verified<Timestamp>,
    ) -> Result<Arc<Verified<Snapshot>>, VerifyError> {
        let (root, listed, revoked, now) = (
            self.root.clone(),
            timestamp.file.body.clone(),
            self.revoked.clone(),
            self.chain.now,
        );
        self.kept_or_verified(
            SNAPSHOT,
            &timestamp.file.body.snapshot,
            &self.root_context,
            move |raw, seen| {
                verify_snapshot(&root, &listed, raw, seen, now, &revoked).map(Outcome::Valid)
            },
        )
        .await
    }

    /// Step 4, the top-level targets (TUF §5.6; notary `update` (c)): the file whose length and
    /// hashes the snapshot lists, signed by the root's targets role threshold, not below the
    /// version seen, not expired. Every failure is fatal.
    async fn targets(
        &self,
        snapshot: &Arc<Verified<Snapshot>>,
    ) -> Result<Arc<Verified<Targets>>, VerifyError> {
        let chain = self.chain;
        let meta =
            snapshot
                .file
                .body
                .meta
                .get(TARGETS)
                .ok_or_else(|| VerifyError::NotInSnapshot {
                    gun: chain.gun.to_owned(),
                    role: TARGETS.into(),
                })?;
        let (root, snapshot, revoked, now) = (
            self.root.clone(),
            snapshot.clone(),
            self.revoked.clone(),
            chain.now,
        );
        self.kept_or_verified(TARGETS, meta, &self.root_context, move |raw, seen| {
            verify_targets(&root, &snapshot.file.body, raw, seen, now, &revoked).map(Outcome::Valid)
        })
        .await
    }

    /// Everything verified: remembers the versions seen (root, timestamp, snapshot and every
    /// valid targets role) and says until when the data is valid (the earliest expiry, root
    /// certificates included).
    fn finish(self, timestamp: &Timestamp, snapshot: &Snapshot, roles: Vec<RoleInfo>) -> Loaded {
        let Chain {
            server,
            gun,
            memory,
            ..
        } = *self.chain;
        let root = &self.root;
        memory.remember_root(server, gun, root);
        memory.record(server, gun, ROOT, root.version());
        memory.record(server, gun, TIMESTAMP, timestamp.common.version);
        memory.record(server, gun, SNAPSHOT, snapshot.common.version);
        for role in &roles {
            if let (RoleStatus::Valid, Some(v)) = (&role.status, role.version) {
                memory.record(server, gun, &role.name, v);
            }
        }
        let valid_until = [timestamp.common.expires, snapshot.common.expires]
            .into_iter()
            .chain(root_certs_expire(root))
            .chain(
                roles
                    .iter()
                    .filter(|r| r.status == RoleStatus::Valid)
                    .filter_map(|r| r.expires),
            )
            .fold(root.file.body.common.expires, OffsetDateTime::min);
        Loaded {
            data: TrustData::new(gun.to_owned(), RootInfo::from_trusted(root), roles),
            valid_until,
            timestamp_expires: timestamp.common.expires,
            snapshot_expires: snapshot.common.expires,
        }
    }

    /// The `targets` role as the first entry of the verified view.
    fn targets_info(&self, targets: &Verified<Targets>) -> RoleInfo {
        let root_body = &self.root.file.body;
        RoleInfo::valid(
            TARGETS,
            key_infos(&root_body.keys, &root_body.roles.targets.keyids),
            root_body.roles.targets.threshold,
            vec![String::new()],
            targets,
        )
    }
}

/// The earliest `notAfter` of the leaf certificates of `root`'s usable root keys.
fn root_certs_expire(root: &TrustedRoot) -> Option<OffsetDateTime> {
    root.root_keys
        .values()
        .filter_map(|k| k.cert_bundle().ok()?.first().map(|c| c.not_after))
        .min()
}
