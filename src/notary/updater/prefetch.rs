//! Fetching ahead, verifying in order: the cold path's concurrency.
//!
//! A load that has to fetch the root (no root kept) also asks, at the same moment,
//! `timestamp.json`, `snapshot.json`, `targets.json` and the delegations `docker trust` consults
//! first ([`SPECULATIVE`]) by their current names, so the whole chain costs about one round trip
//! instead of one per step. Once the snapshot is verified, the delegations it lists (by hash, at
//! most `LIMITS.delegation_fetch_concurrency` of them) are fetched while `targets.json` is being
//! verified.
//!
//! Nothing fetched ahead is trusted by being here:
//!
//! - the timestamp is the very request the chain would make (`timestamp.json`, capped at
//!   `LIMITS.timestamp_bytes`) and is verified against the root once the root is trusted;
//! - any other file is only used once its parent is verified, and goes through the verifier
//!   like a file fetched by hash: its length and hashes are compared with what the parent lists
//!   first (`verify::check_meta`, once). When they do not match (a newer version published in
//!   between, a hostile server) it is dropped and the listed file is fetched by hash and
//!   verified exactly as without prefetching (`kept::settle`); a 404 ahead is dropped at once.
//!   Every error the chain reports comes from the fetch it would have made anyway.
//!
//! Every ahead fetch is capped at the absolute `LIMITS.metadata_bytes` (its parent's length is
//! not known yet); fetch errors are dropped (the later fetch by hash reports its own).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures::future::{FutureExt, join_all};
use futures::stream::{self, StreamExt};

use super::super::schema::{
    FileMeta, SNAPSHOT, Snapshot, TARGETS, TIMESTAMP, check_meta_hashes, is_delegation_name,
};
use super::super::source::{FetchError, MetaRequest, MetadataSource};
use super::{Chain, Trusted};
use crate::limits::LIMITS;

/// The delegations fetched ahead by name on the cold path: `docker trust` signs into
/// `targets/releases`, and every `docker trust inspect` reads it.
pub(super) const SPECULATIVE: &[&str] = &["targets/releases"];

/// Files fetched ahead of their turn, not trusted (see the module header).
#[derive(Default)]
pub(super) struct Prefetched {
    /// Whether this load fetches ahead at all (the cold path); otherwise every method finds
    /// nothing and `prefetch_listed` does nothing.
    cold: bool,
    /// The response to `timestamp.json`, when it was asked ahead.
    timestamp: Mutex<Option<Result<Vec<u8>, FetchError>>>,
    /// Bodies by role, each taken at most once.
    files: Mutex<HashMap<String, Vec<u8>>>,
}

impl Prefetched {
    /// The ahead response to `timestamp.json`, if there is one (taken).
    pub(super) fn take_timestamp(&self) -> Option<Result<Vec<u8>, FetchError>> {
        self.timestamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The ahead body of `role` (taken), if there is one. It is not trusted: the verifier
    /// compares it with the entry its verified parent lists, and a body that does not match is
    /// replaced by the listed file fetched by hash (`kept::settle`).
    pub(super) fn take(&self, role: &str) -> Option<Vec<u8>> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(role)
    }

    /// Whether a body of `role` is waiting.
    fn has(&self, role: &str) -> bool {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(role)
    }

    fn put(&self, role: &str, raw: Vec<u8>) {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(role.to_owned(), raw);
    }
}

impl<S: MetadataSource> Chain<'_, S> {
    /// Asks `timestamp.json`, `snapshot.json`, `targets.json` and [`SPECULATIVE`] at once (the
    /// cold path runs this alongside the root).
    pub(super) async fn prefetch(&self) -> Prefetched {
        let ahead = Prefetched {
            cold: true,
            ..Prefetched::default()
        };
        let others: Vec<&str> = [SNAPSHOT, TARGETS]
            .into_iter()
            .chain(SPECULATIVE.iter().copied())
            .collect();
        let timestamp_req = current(TIMESTAMP);
        let timestamp = self
            .source
            .fetch(self.gun, &timestamp_req, LIMITS.timestamp_bytes);
        let rest = join_all(others.iter().map(|role| {
            let req = current(role);
            async move {
                let got = self
                    .source
                    .fetch(self.gun, &req, LIMITS.metadata_bytes)
                    .await;
                (*role, got)
            }
            .boxed()
        }));
        let (timestamp, rest) = futures::join!(timestamp, rest);
        *ahead
            .timestamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(timestamp);
        for (role, got) in rest {
            if let Ok(raw) = got {
                ahead.put(role, raw);
            }
        }
        ahead
    }
}

impl<S: MetadataSource> Trusted<'_, '_, S> {
    /// Fetches by hash the delegations the verified `snapshot` lists directly under `targets`
    /// (not kept, not already waiting), at most `LIMITS.delegation_fetch_concurrency`, so they
    /// are here when the walk reaches them. Runs while `targets.json` is verified.
    pub(super) async fn prefetch_listed(&self, snapshot: &Snapshot) {
        if !self.prefetched.cold {
            return;
        }
        let chain = self.chain;
        let listed: Vec<(&String, &FileMeta)> = snapshot
            .meta
            .iter()
            .filter(|(name, meta)| {
                is_delegation_name(name)
                    && name.matches('/').count() == 1
                    && check_meta_hashes(meta).is_ok()
                    && !self.prefetched.has(name)
            })
            .take(LIMITS.delegation_fetch_concurrency)
            .collect();
        let fetches: Vec<_> = listed
            .into_iter()
            .map(|(name, meta)| {
                async move {
                    let req = MetaRequest::ByHash {
                        role: name.clone(),
                        sha256_hex: hex::encode(meta.hashes.sha256.as_deref().unwrap_or_default()),
                    };
                    let cap = meta.length.min(LIMITS.metadata_bytes);
                    (name, chain.source.fetch(chain.gun, &req, cap).await)
                }
                .boxed()
            })
            .collect();
        let got: Vec<_> = stream::iter(fetches)
            .buffer_unordered(LIMITS.delegation_fetch_concurrency.max(1))
            .collect()
            .await;
        for (name, result) in got {
            if let Ok(raw) = result {
                self.prefetched.put(name, raw);
            }
        }
    }
}

/// The request for the current version of `role`.
fn current(role: &str) -> MetaRequest {
    MetaRequest::Current { role: role.into() }
}
