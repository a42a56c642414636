//! `VersionMemory`: the highest version seen per (server, GUN, role) and the last trusted root
//! per (server, GUN), so nothing ever goes back and a newer root is reached only by rotation.
//! Both are bounded LRU maps (`LIMITS.version_memory_entries`, `LIMITS.remembered_roots`): the
//! least recently used repositories are forgotten first.
//! Re-exported as `notary::updater::VersionMemory`.

use std::sync::Arc;

use moka::policy::EvictionPolicy;

use super::verify::TrustedRoot;
use crate::limits::LIMITS;

type RoleKey = (String, String, String);

/// Highest versions seen and last trusted roots, shared by all loads of one process.
#[derive(Debug)]
pub struct VersionMemory {
    versions: moka::sync::Cache<RoleKey, u64>,
    roots: moka::sync::Cache<(String, String), Arc<TrustedRoot>>,
}

impl Default for VersionMemory {
    fn default() -> Self {
        Self::with_capacity(LIMITS.version_memory_entries, LIMITS.remembered_roots)
    }
}

impl VersionMemory {
    /// A memory keeping at most `versions` role versions and `roots` trusted roots (LRU).
    pub fn with_capacity(versions: u64, roots: u64) -> Self {
        VersionMemory {
            versions: moka::sync::Cache::builder()
                .max_capacity(versions)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            roots: moka::sync::Cache::builder()
                .max_capacity(roots)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    /// The highest version of `role` seen for `gun` on `server`.
    pub fn seen(&self, server: &str, gun: &str, role: &str) -> Option<u64> {
        let key = (server.to_owned(), gun.to_owned(), role.to_owned());
        self.versions.get(&key)
    }

    /// Records `version` of `role` (keeps the maximum).
    pub fn record(&self, server: &str, gun: &str, role: &str, version: u64) {
        let key = (server.to_owned(), gun.to_owned(), role.to_owned());
        self.versions
            .entry(key)
            .and_upsert_with(|old| old.map_or(version, |e| (*e.value()).max(version)));
    }

    /// Forgets the version of `role` (after a root rotation replaced the role's keys: a version
    /// fast-forwarded with the old, compromised keys must not lock out the new ones).
    pub fn forget(&self, server: &str, gun: &str, role: &str) {
        let key = (server.to_owned(), gun.to_owned(), role.to_owned());
        self.versions.invalidate(&key);
    }

    /// The last trusted root of `gun` on `server`.
    pub fn trusted_root(&self, server: &str, gun: &str) -> Option<Arc<TrustedRoot>> {
        self.roots.get(&(server.to_owned(), gun.to_owned()))
    }

    /// Remembers `root` unless a newer root of the repository is remembered already.
    pub(super) fn remember_root(&self, server: &str, gun: &str, root: &Arc<TrustedRoot>) {
        self.roots
            .entry((server.to_owned(), gun.to_owned()))
            .and_upsert_with(|old| match old {
                Some(e) if e.value().version() >= root.version() => e.into_value(),
                _ => root.clone(),
            });
    }

    /// Applies pending evictions (for tests that count entries).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> (u64, u64) {
        self.versions.run_pending_tasks();
        self.roots.run_pending_tasks();
        (self.versions.entry_count(), self.roots.entry_count())
    }
}
