//! Content identities: the sha256 of length-prefixed parts, for cache keys and fingerprints
//! (of trust options, revocations, meta entries and verifier contexts). The bottom of `notary`:
//! it depends only on the schema's `FileMeta`.

use sha2::{Digest, Sha256};

use super::schema::FileMeta;

/// A sha256 identity.
pub(crate) type Id = [u8; 32];

/// The sha256 of `parts`, each length-prefixed (so no two part lists collide).
pub(crate) fn id(parts: &[&[u8]]) -> Id {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The identity of a meta entry: what a file listed with it must be.
pub(crate) fn meta_id(meta: &FileMeta) -> Id {
    id(&[
        b"meta",
        &meta.length.to_be_bytes(),
        meta.hashes.sha256.as_deref().unwrap_or_default(),
        meta.hashes.sha512.as_deref().unwrap_or_default(),
    ])
}

/// The identity of the verifier of a file: `signer` (root or parent identity) and the revocations.
pub(crate) fn context(signer: &Id, revoked: &Id) -> Id {
    id(&[b"context", signer, revoked])
}
