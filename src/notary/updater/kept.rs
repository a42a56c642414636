//! The one way the chain gets a file its parent lists (snapshot, targets, a delegation): a file
//! kept from an earlier load when the store has it under the same content identity, or the file
//! fetched by hash and verified now. Either way its version is checked against the version memory
//! and its expiry against the clock, on every load.
//!
//! The helper has two halves so the delegation step can fetch siblings concurrently and still
//! verify them in order: [`Trusted::obtain`] (kept or fetched, not yet trusted) and
//! [`Trusted::settle`] (re-checked or verified, then kept); [`Trusted::kept_or_verified`] is
//! both in a row.

use std::sync::Arc;

use super::super::ident::Id;
use super::super::reuse::{Keep, Store, slim};
use super::super::schema::{FileMeta, SNAPSHOT, TIMESTAMP, check_meta_hashes};
use super::super::source::{MetaRequest, MetadataSource};
use super::super::verify::{Outcome, Verified, VerifyError, check_expiry, check_version};
use super::Trusted;
use crate::limits::LIMITS;

/// A file its parent lists, obtained but not yet trusted.
pub(super) enum Obtained<T> {
    /// Verified in an earlier load, against the same keys (the store's key says so).
    Kept(Arc<Verified<T>>),
    /// Fetched now (or the fetch error, reported when the file's turn comes).
    Fetched(Result<Vec<u8>, VerifyError>),
    /// Fetched ahead by its current name (`prefetch`), not yet compared with what its parent
    /// lists: the verifier compares it (length and hashes, as for any file) and, when it does
    /// not match, the file listed is fetched by hash and verified instead.
    Ahead(Vec<u8>, FileMeta),
}

/// An obtained file and the store key it is kept under once verified (`None` without a store).
pub(super) struct Listed<T> {
    key: Option<Id>,
    obtained: Obtained<T>,
}

impl<S: MetadataSource> Trusted<'_, '_, S> {
    /// The file `role` listed with `meta` and verified in `context` (the root's or the parent's
    /// identity), kept or fetched, then re-checked or verified by `verify` (which gets the raw
    /// bytes and the version seen before). An `Invalid` outcome fails the load here.
    pub(super) async fn kept_or_verified<T: Keep>(
        &self,
        role: &str,
        meta: &FileMeta,
        context: &Id,
        verify: impl Fn(Vec<u8>, Option<u64>) -> Result<Outcome<Verified<T>>, VerifyError>
        + Clone
        + Send
        + 'static,
    ) -> Result<Arc<Verified<T>>, VerifyError> {
        let listed = self.obtain(role, meta, context).await;
        match self.settle(role, listed, verify).await? {
            Outcome::Valid(v) => Ok(v),
            Outcome::Invalid(e) => Err(e),
        }
    }

    /// The first half: the kept file when the store has this very file verified in this very
    /// context, otherwise the file fetched ahead (`prefetch`; compared with `meta` when it is
    /// verified), otherwise `<role>.<sha256>.json` fetched.
    pub(super) async fn obtain<T: Keep>(
        &self,
        role: &str,
        meta: &FileMeta,
        context: &Id,
    ) -> Listed<T> {
        let chain = self.chain;
        let key = chain
            .store
            .map(|_| Store::file_key(chain.server, chain.gun, role, meta, context));
        let kept = match (chain.store, key.as_ref()) {
            (Some(store), Some(key)) => store.file(key).and_then(T::unwrap),
            _ => None,
        };
        let obtained = match kept {
            Some(v) => Obtained::Kept(v),
            None => match self.prefetched.take(role) {
                Some(raw) => Obtained::Ahead(raw, meta.clone()),
                None => Obtained::Fetched(fetch_by_hash(chain.source, chain.gun, role, meta).await),
            },
        };
        Listed { key, obtained }
    }

    /// The second half. A kept file: same bytes, same verifier, so only its version (against
    /// the memory, fatal) and expiry (invalid) can have changed meaning. A fetched file: the
    /// fetch error, or `verify` on the blocking pool; a valid file is kept (slimmed).
    pub(super) async fn settle<T: Keep>(
        &self,
        role: &str,
        listed: Listed<T>,
        verify: impl Fn(Vec<u8>, Option<u64>) -> Result<Outcome<Verified<T>>, VerifyError>
        + Clone
        + Send
        + 'static,
    ) -> Result<Outcome<Arc<Verified<T>>>, VerifyError> {
        let chain = self.chain;
        let seen = chain.seen(role);
        match listed.obtained {
            Obtained::Kept(v) => {
                let common = v.file.body.common();
                check_version(chain.gun, role, common, seen)?;
                Ok(match check_expiry(chain.gun, role, common, chain.now) {
                    Ok(()) => Outcome::Valid(v),
                    Err(e) => Outcome::Invalid(e),
                })
            }
            Obtained::Fetched(raw) => {
                let raw = raw?;
                let outcome = off_runtime(chain.gun, role, move || verify(raw, seen)).await?;
                Ok(kept_if_valid(chain.store, listed.key, outcome))
            }
            Obtained::Ahead(raw, meta) => {
                let again = verify.clone();
                let outcome = match off_runtime(chain.gun, role, move || verify(raw, seen)).await {
                    // Not the file the parent lists (published in between, or a hostile
                    // server): the listed one, by hash, exactly as without fetching ahead.
                    Err(VerifyError::HashMismatch { .. } | VerifyError::TooLong { .. }) => {
                        let raw = fetch_by_hash(chain.source, chain.gun, role, &meta).await?;
                        off_runtime(chain.gun, role, move || again(raw, seen)).await?
                    }
                    other => other?,
                };
                Ok(kept_if_valid(chain.store, listed.key, outcome))
            }
        }
    }
}

/// A valid outcome kept (see [`keep`]); an invalid one as it is.
fn kept_if_valid<T: Keep>(
    store: Option<&Store>,
    key: Option<Id>,
    outcome: Outcome<Verified<T>>,
) -> Outcome<Arc<Verified<T>>> {
    match outcome {
        Outcome::Valid(v) => Outcome::Valid(keep(store, key, v)),
        Outcome::Invalid(e) => Outcome::Invalid(e),
    }
}

/// Keeps `v` under `key` (slimmed) when files are kept; returns it shared.
fn keep<T: Keep>(store: Option<&Store>, key: Option<Id>, v: Verified<T>) -> Arc<Verified<T>> {
    match (store, key) {
        (Some(store), Some(key)) => {
            let v = Arc::new(slim(v));
            store.keep_file(key, T::wrap(v.clone()));
            v
        }
        _ => Arc::new(v),
    }
}

/// Fetches `<role>.<sha256>.json`, capped at the length the parent lists and at
/// `LIMITS.metadata_bytes` whatever that length is.
async fn fetch_by_hash<S: MetadataSource>(
    source: &S,
    gun: &str,
    role: &str,
    meta: &FileMeta,
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

/// Runs CPU-bound verification `f` on tokio's blocking pool when a runtime is present, so a
/// deadline around the load still fires and async workers keep serving while it runs (the
/// work itself is bounded by the size and signature caps); inline without a runtime.
pub(super) async fn off_runtime<R: Send + 'static>(
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
