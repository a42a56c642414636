//! What a policy says to trust for a repository: pinned roots (`TrustRoot`), the pinning
//! threshold and revoked keys (`Revocations`), together `TrustOptions`, with a fingerprint of
//! each for cache keys. The types are
//! re-exported as `notary::updater::{TrustRoot, Revocations, TrustOptions}`.

use std::collections::BTreeSet;

use super::ident;
use super::keys::{KeyError, PinnedKey, PublicKey};

/// A pinned trust root from the policy.
#[derive(Debug, Clone)]
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
///
/// A revoked key ID revokes the public key behind it, in every certificate or other wrapping:
/// [`Revocations::resolve`] learns that public key from the keys of the metadata being verified
/// (and the updater feeds it every root it has seen for the repository), so a fresh certificate
/// around a revoked key is still revoked.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    ids: BTreeSet<String>,
    keys: Vec<PinnedKey>,
    /// `PublicKey::public_key_id`s of keys found revoked by ID or PEM (derived, not policy).
    public: BTreeSet<String>,
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

    /// Whether `key` is revoked: its key ID, canonical ID or public key is listed, or its public
    /// key was found revoked under another wrapping (see [`Revocations::resolve`]).
    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.listed(key) || (!self.public.is_empty() && self.public.contains(&key.public_key_id()))
    }

    fn listed(&self, key: &PublicKey) -> bool {
        self.ids.contains(key.id())
            || (!self.ids.is_empty() && self.ids.contains(&key.canonical_id()))
            || self.keys.iter().any(|p| p.matches(key))
    }

    /// Learns the public keys behind the revoked entries from `keys`: every key whose ID,
    /// canonical ID or public key is revoked revokes its public key from then on, whatever
    /// certificate or key type carries it elsewhere.
    pub fn resolve<'a>(&mut self, keys: impl IntoIterator<Item = &'a PublicKey>) {
        if self.ids.is_empty() && self.keys.is_empty() {
            return;
        }
        for key in keys {
            if self.listed(key) {
                self.public.insert(key.public_key_id());
            }
        }
    }

    /// A sha256 identity of the revoked IDs and keys (for cache keys).
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut parts: Vec<&[u8]> = vec![b"revocations"];
        for id in &self.ids {
            parts.extend([b"id".as_slice(), id.as_bytes()]);
        }
        for key in &self.keys {
            parts.extend([
                b"key".as_slice(),
                key.spki_der(),
                key.cert_key_id().unwrap_or_default().as_bytes(),
            ]);
        }
        ident::id(&parts)
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

impl TrustOptions {
    /// A sha256 identity of the pins, the threshold and the revocations: two options with the
    /// same fingerprint trust exactly the same roots and signatures (for cache keys).
    pub fn fingerprint(&self) -> [u8; 32] {
        let threshold = (self.trust_root_threshold as u64).to_be_bytes();
        let revoked = self.revoked.fingerprint();
        let mut parts: Vec<&[u8]> = vec![b"trust", &threshold, &revoked];
        for root in &self.trust_roots {
            match root {
                TrustRoot::Key(pin) => parts.extend([
                    b"key".as_slice(),
                    pin.spki_der(),
                    pin.cert_key_id().unwrap_or_default().as_bytes(),
                ]),
                TrustRoot::KeyId(id) => parts.extend([b"id".as_slice(), id.as_bytes()]),
                TrustRoot::TrustOnFirstUse => parts.push(b"tofu"),
            }
        }
        ident::id(&parts)
    }
}
