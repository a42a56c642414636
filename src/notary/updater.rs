//! The update flow over a `MetadataSource` (notary-protocol.md §4.1): trusted root (pinning,
//! walking back to a pinned root and verifying each rotation forward), timestamp, snapshot by
//! hash, targets by hash and the delegations listed in the snapshot (pre-order, siblings fetched
//! concurrently). `VersionMemory` remembers, for the life of the process, the highest version
//! seen per (server, GUN, role) and the last trusted root, so nothing ever goes back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt, join_all};
use time::OffsetDateTime;

use super::keys::{KeyError, PinnedKey, PublicKey};
use super::schema::{
    ROOT, Root, SNAPSHOT, SignedFile, Snapshot, TARGETS, TIMESTAMP, Targets, check_meta_hashes,
};
use super::source::{FetchError, MAX_ROOT_SIZE, MAX_TIMESTAMP_SIZE, MetaRequest, MetadataSource};
use super::verify::{
    DelegationOutcome, TrustedRoot, VerifyError, verify_delegation, verify_pinned_root,
    verify_rotation, verify_snapshot, verify_targets, verify_timestamp,
};
use super::view::{RoleInfo, RoleStatus, RootInfo, TrustData, key_infos, restrict_paths};
use crate::clock::Clock;

#[cfg(test)]
#[path = "tests/mod.rs"]
mod tests;

/// How many older root versions the client fetches looking for a pinned one.
pub const MAX_ROOT_WALK: u64 = 32;

/// A pinned trust root from the policy.
#[derive(Debug)]
pub enum TrustRoot {
    /// A PEM public key or certificate; matches a root key with the same public key.
    Key(PinnedKey),
    /// A key ID as in root.json (the canonical ID of the same public key is accepted too).
    KeyId(String),
    /// Trust on first use: any root key counts as pinned, so the root only has to meet its own
    /// threshold. For `trustgate inspect` (discovering the keys to pin); never built from a policy.
    TrustOnFirstUse,
}

impl TrustRoot {
    /// Whether root key `key` is this pinned root.
    pub fn matches(&self, key: &PublicKey) -> bool {
        match self {
            TrustRoot::Key(pin) => pin.matches(key),
            TrustRoot::KeyId(id) => {
                let id = id.trim();
                key.id().eq_ignore_ascii_case(id) || key.canonical_id().eq_ignore_ascii_case(id)
            }
            TrustRoot::TrustOnFirstUse => true,
        }
    }

    /// The pinned key ID (for messages).
    pub fn describe(&self) -> String {
        match self {
            TrustRoot::Key(pin) => pin
                .cert_key_id()
                .map_or_else(|| pin.key_id(), str::to_owned),
            TrustRoot::KeyId(id) => id.clone(),
            TrustRoot::TrustOnFirstUse => "any root key (trust on first use)".into(),
        }
    }
}

/// Keys whose signatures never count (`revokedKeys`), by key ID or public key.
#[derive(Debug, Default)]
pub struct Revocations {
    ids: BTreeSet<String>,
    keys: Vec<PinnedKey>,
}

impl Revocations {
    /// No revoked keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the set from policy entries: a PEM (containing `-----BEGIN`) or a key ID.
    pub fn from_entries<I, S>(entries: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::new();
        for entry in entries {
            let entry = entry.as_ref();
            if entry.contains("-----BEGIN") {
                out.add_key(PinnedKey::from_pem(entry)?);
            } else {
                out.add_key_id(entry);
            }
        }
        Ok(out)
    }

    /// Revokes a key ID (cert ID or canonical ID).
    pub fn add_key_id(&mut self, id: &str) {
        self.ids.insert(id.trim().to_ascii_lowercase());
    }

    /// Revokes a public key.
    pub fn add_key(&mut self, key: PinnedKey) {
        self.keys.push(key);
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.keys.is_empty()
    }

    /// Whether `key` is revoked.
    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.ids.contains(key.id())
            || (!self.ids.is_empty() && self.ids.contains(&key.canonical_id()))
            || self.keys.iter().any(|p| p.matches(key))
    }
}

/// What the policy says to trust for one repository.
#[derive(Debug, Default)]
pub struct TrustOptions {
    /// Pinned root keys (`trustRoots`).
    pub trust_roots: Vec<TrustRoot>,
    /// Distinct pinned keys that must have signed the trusted root (`trustRootThreshold`, min 1).
    pub trust_root_threshold: usize,
    /// Keys whose signatures never count (`revokedKeys`).
    pub revoked: Revocations,
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
}

/// Per-load context for the delegation walk.
struct Ctx<'a, S> {
    source: &'a S,
    gun: &'a str,
    snapshot: &'a Snapshot,
    now: OffsetDateTime,
    revoked: &'a Revocations,
    memory: &'a VersionMemory,
}

impl Updater {
    /// An updater with empty memory, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Updater {
            memory: VersionMemory::default(),
            clock,
        }
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
        let now = self.clock.now();
        let server = source.server();
        let revoked = &opts.revoked;
        let seen = |role: &str| self.memory.seen(server, gun, role);

        let root = self.trusted_root(source, gun, opts, now).await?;

        let raw = source
            .fetch(
                gun,
                &MetaRequest::Current {
                    role: TIMESTAMP.into(),
                },
                MAX_TIMESTAMP_SIZE,
            )
            .await?;
        let timestamp = verify_timestamp(&root, raw, seen(TIMESTAMP), now, revoked)?;

        let raw = fetch_by_hash(source, gun, SNAPSHOT, &timestamp.file.body.snapshot).await?;
        let snapshot = verify_snapshot(
            &root,
            &timestamp.file.body,
            raw,
            seen(SNAPSHOT),
            now,
            revoked,
        )?;
        let snap = &snapshot.file.body;

        let targets_meta = snap
            .meta
            .get(TARGETS)
            .ok_or_else(|| VerifyError::NotInSnapshot {
                gun: gun.to_owned(),
                role: TARGETS.into(),
            })?;
        let raw = fetch_by_hash(source, gun, TARGETS, targets_meta).await?;
        let targets = verify_targets(&root, snap, raw, seen(TARGETS), now, revoked)?;

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
            memory: &self.memory,
        };
        load_children(
            &ctx,
            TARGETS,
            &targets.file.body,
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
        Ok(TrustData::new(
            gun.to_owned(),
            RootInfo::from_trusted(&root),
            roles,
        ))
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

/// Loads the delegations `parent` (role `parent_name`, effective `paths`) declares, in
/// pre-order: the ones listed in the snapshot are fetched concurrently, verified in file order,
/// and each valid one is descended into before its next sibling.
fn load_children<'a, S: MetadataSource>(
    ctx: &'a Ctx<'a, S>,
    parent_name: &'a str,
    parent: &'a Targets,
    paths: &'a [String],
    out: &'a mut Vec<RoleInfo>,
) -> BoxFuture<'a, Result<(), VerifyError>> {
    async move {
        let declared = &parent.delegations.roles;
        let fetches = declared.iter().map(|d| async move {
            match ctx.snapshot.meta.get(&d.name) {
                Some(meta) => Some(fetch_by_hash(ctx.source, ctx.gun, &d.name, meta).await),
                None => None,
            }
        });
        let fetched = join_all(fetches).await;
        for (decl, raw) in declared.iter().zip(fetched) {
            let keys = key_infos(&parent.delegations.keys, &decl.keys.keyids);
            let child_paths = restrict_paths(paths, &decl.paths);
            let threshold = decl.keys.threshold;
            let Some(raw) = raw else {
                out.push(RoleInfo::unusable(&decl.name, keys, threshold, child_paths, RoleStatus::NotPublished));
                continue;
            };
            let seen = ctx.memory.seen(ctx.source.server(), ctx.gun, &decl.name);
            let outcome = verify_delegation(ctx.gun, parent_name, parent, ctx.snapshot, &decl.name, raw?, seen, ctx.now, ctx.revoked)?;
            match outcome {
                DelegationOutcome::Valid(v) => {
                    out.push(RoleInfo::valid(&decl.name, keys, threshold, child_paths.clone(), &v));
                    load_children(ctx, &decl.name, &v.file.body, &child_paths, out).await?;
                }
                DelegationOutcome::Invalid(e) => {
                    tracing::warn!(gun = ctx.gun, role = %decl.name, error = %e, "skipping invalid delegation");
                    out.push(RoleInfo::unusable(&decl.name, keys, threshold, child_paths, RoleStatus::Invalid(e)));
                }
            }
        }
        Ok(())
    }
    .boxed()
}
