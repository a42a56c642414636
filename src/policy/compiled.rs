//! What verification needs from a `Verify` policy, built once when the policy is loaded (a
//! file read, a watch event): parsed trust roots, pinned signer keys, revocations, the Notary
//! and registry set-up, and a fingerprint of the policy for cache keys. The one pass that
//! checks a spec ([`check`](super::validate::check)) builds it, so keys are parsed once and
//! the rules exist once; the engine only looks it up.

use sha2::{Digest as _, Sha256};

use crate::image::registry::RegistryOptions;
use crate::notary::keys::PinnedKey;
use crate::notary::updater::TrustOptions;

use super::crd::TrustPolicySpec;
use super::formats::CompiledFormats;
use super::matcher::PolicyId;

/// One listed signer.
#[derive(Debug)]
pub struct CompiledSigner {
    /// Name (the role is `targets/<name>`).
    pub name: String,
    /// Optional pinned key: the signature must come from it.
    pub key: Option<PinnedKey>,
    /// Must always have signed.
    pub required: bool,
}

/// A `Verify` policy ready for verification.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// Notary server URL.
    pub notary_url: String,
    /// Extra CA (PEM) for the Notary server.
    pub notary_ca: Option<Vec<u8>>,
    /// [`notary_fingerprint`] of `notary_url` and `notary_ca`, computed once (the engine keys
    /// its Notary sources by it).
    pub notary_fingerprint: [u8; 32],
    /// GUN override.
    pub gun: Option<String>,
    /// Registry set-up (its `timeout` is the default; the engine applies its own).
    pub registry: RegistryOptions,
    /// Root pins, threshold and revocations.
    pub trust: TrustOptions,
    /// `trust.fingerprint()`, computed once (for trust-data cache keys).
    pub trust_fingerprint: [u8; 32],
    /// Listed signers (empty: Docker Content Trust default lookup).
    pub signers: Vec<CompiledSigner>,
    /// Distinct listed signers that must count.
    pub signer_threshold: usize,
    /// The signature formats evaluated and their parsed blocks (Docker Content Trust alone
    /// without `spec.signatures`).
    pub formats: CompiledFormats,
}

/// A sha256 of a Notary server's URL and extra CA bundle.
pub fn notary_fingerprint(url: &str, ca: Option<&[u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((url.len() as u64).to_be_bytes());
    h.update(url.as_bytes());
    match ca {
        None => h.update([0u8]),
        Some(ca) => {
            h.update([1u8]);
            h.update(ca);
        }
    }
    h.finalize().into()
}

/// The identity of a policy as decisions depend on it: its [`PolicyId`] (namespace, name,
/// generation, uid) and its whole spec, hashed once when the policy is loaded. `None` if the
/// spec cannot be serialised (then nothing about the policy is cached).
pub fn fingerprint(id: &PolicyId, spec: &TrustPolicySpec) -> Option<[u8; 32]> {
    let spec = serde_json::to_vec(spec).ok()?;
    let mut h = Sha256::new();
    let mut part = |bytes: Option<&[u8]>| match bytes {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    part(Some(b"policy"));
    part(id.namespace.as_deref().map(str::as_bytes));
    part(Some(id.name.as_bytes()));
    part(
        id.generation
            .map(i64::to_be_bytes)
            .as_ref()
            .map(|g| g.as_slice()),
    );
    part(id.uid.as_deref().map(str::as_bytes));
    part(Some(&spec));
    Some(h.finalize().into())
}
