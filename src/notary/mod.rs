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
