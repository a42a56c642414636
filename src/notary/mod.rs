//! Notary v1 (Docker Content Trust) trust data: fetching it from a Notary server and verifying it
//! exactly as Notary 0.7.0 does. Nothing here knows about Kubernetes.
//!
//! - `canonical`: Notary's canonical JSON (the bytes signatures cover).
//! - `keys`: key types, key IDs and signature methods.
//! - `schema`: the typed metadata files (root, targets, snapshot, timestamp, delegations).
//! - `verify`: signature thresholds, root pinning and rotation, role checks.
//! - `source`: the seam between fetching and verifying (`MetadataSource`, `FetchError`).
//! - `fetch`: the HTTP `MetadataSource` for a real Notary server (token auth, size caps).
//! - `updater`: the update flow over a `MetadataSource`, with version memory against rollback.
//! - `view`: the verified view the policy engine reads (tags, digests, signers).

pub mod canonical;
pub mod fetch;
pub mod keys;
pub mod schema;
pub mod source;
pub mod updater;
pub mod verify;
pub mod view;

/// Synthetic, signed Notary repositories and an in-memory `MetadataSource` (the unit tests'
/// builder), exposed only for `benches/verify.rs`. Not a stable API. (Left out of the crate's
/// own unit-test build, which has the builder as `updater::tests::builder` already.)
#[cfg(all(feature = "bench-support", not(test)))]
#[doc(hidden)]
#[path = "tests/builder.rs"]
pub mod testing;

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
