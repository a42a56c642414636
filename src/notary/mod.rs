//! Notary v1 (Docker Content Trust) trust data: fetching it from a Notary server and verifying it
//! exactly as Notary 0.7.0 does. Nothing here knows about Kubernetes or the rest of the
//! application: its only outward dependencies are traits it defines ([`source::MetadataSource`]
//! for where metadata comes from, [`source::FetchObserver`] for metrics), plus `limits` and
//! `clock`.
//!
//! Read it in this order (each module uses only the ones above it):
//!
//! - `error`: [`error::FetchError`] and [`error::VerifyError`], the errors of a load.
//! - `canonical`: Notary's canonical JSON (the bytes signatures cover).
//! - `keys`: key types, key IDs, certificates and signature methods.
//! - `schema`: the typed metadata files (root, targets, snapshot, timestamp, delegations).
//! - `ident`: content identities for cache keys and fingerprints.
//! - `options`: what a policy trusts (pinned roots, threshold, revoked keys).
//! - `verify`: pure checks of one file: signature thresholds, root pinning and rotation,
//!   hashes, lengths, versions, expiry.
//! - `view`: the verified view the policy engine reads (tags, digests, signers).
//! - `memory`, `reuse`: versions remembered against rollback; verified files kept between loads.
//! - `source`: the seam between fetching and verifying (`MetadataSource`, `FetchObserver`).
//! - `updater`: **the update chain**, root, timestamp, snapshot, targets, delegations, in
//!   protocol order over a `MetadataSource`.
//! - `fetch`: the HTTP `MetadataSource` for a real Notary server (token auth, size caps).

pub mod canonical;
pub mod error;
pub mod fetch;
pub mod ident;
pub mod keys;
pub mod memory;
pub mod options;
pub mod reuse;
pub mod schema;
pub mod source;
pub mod updater;
pub mod verify;
pub mod view;

/// Synthetic, signed Notary repositories and an in-memory `MetadataSource` (the unit tests'
/// builder), exposed for `benches/` with the `bench-support` feature. Not a stable API.
#[cfg(any(test, feature = "bench-support"))]
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
pub(crate) mod tests;

/// Public Notary test data (real trust data of public repositories, read in place, never
/// copied into the repository): the directory `TRUSTGATE_NOTARY_FIXTURES` names. Without the
/// variable the tests that read it are skipped visibly (see [`fixtures_present`]).
#[cfg(test)]
pub(crate) fn fixtures_dir() -> std::path::PathBuf {
    std::env::var_os("TRUSTGATE_NOTARY_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
}

/// Whether the public Notary fixtures are there. A test that reads them starts with
/// `if !crate::notary::fixtures_present() { return; }`: without the variable it prints one
/// `SKIP` line and passes; when `TRUSTGATE_NOTARY_FIXTURES` is set (as CI sets it) a missing
/// directory fails the test instead.
#[cfg(test)]
pub(crate) fn fixtures_present() -> bool {
    use std::io::Write as _;
    let dir = fixtures_dir();
    if dir.is_dir() {
        return true;
    }
    assert!(
        std::env::var_os("TRUSTGATE_NOTARY_FIXTURES").is_none(),
        "TRUSTGATE_NOTARY_FIXTURES={} is not a directory",
        dir.display()
    );
    let thread = std::thread::current();
    // Written to stderr directly: libtest would swallow eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {}: TRUSTGATE_NOTARY_FIXTURES is not set (the directory of public Notary fixtures)",
        thread.name().unwrap_or("test"),
    );
    false
}
