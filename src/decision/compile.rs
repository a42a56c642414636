//! Turns a policy spec into what verification needs: parsed trust roots, pinned signer keys,
//! revocations, the Notary and registry set-up. Errors name the field that is wrong.

use std::time::Duration;

use crate::image::registry::RegistryOptions;
use crate::notary::keys::PinnedKey;
use crate::notary::updater::{Revocations, TrustOptions, TrustRoot};
use crate::policy::TrustPolicySpec;

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

/// A policy ready for verification.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// Notary server URL.
    pub notary_url: String,
    /// Extra CA (PEM) for the Notary server.
    pub notary_ca: Option<Vec<u8>>,
    /// GUN override.
    pub gun: Option<String>,
    /// Registry set-up.
    pub registry: RegistryOptions,
    /// Root pins, threshold and revocations.
    pub trust: TrustOptions,
    /// Listed signers (empty: Docker Content Trust default lookup).
    pub signers: Vec<CompiledSigner>,
    /// Distinct listed signers that must count.
    pub signer_threshold: usize,
}

/// Compiles `spec` (action Verify); the error names the offending field.
pub fn compile(
    spec: &TrustPolicySpec,
    registry_timeout: Duration,
) -> Result<CompiledPolicy, String> {
    let notary = spec.notary.as_ref();
    let notary_url = notary
        .and_then(|n| n.url.clone())
        .filter(|u| !u.is_empty())
        .ok_or("spec.notary.url is required for action Verify")?;
    let mut trust_roots = Vec::new();
    for (i, root) in spec.trust_roots.iter().enumerate() {
        match (&root.public_key, &root.key_id) {
            (Some(pem), None) => trust_roots
                .push(TrustRoot::Key(PinnedKey::from_pem(pem).map_err(|e| {
                    format!("spec.trustRoots[{i}].publicKey: {e}")
                })?)),
            (None, Some(id)) => trust_roots.push(TrustRoot::KeyId(id.clone())),
            _ => {
                return Err(format!(
                    "spec.trustRoots[{i}]: give exactly one of publicKey and keyID"
                ));
            }
        }
    }
    if trust_roots.is_empty() {
        return Err(
            "spec.trustRoots: at least one trust root is required for action Verify".into(),
        );
    }
    let revoked = Revocations::from_entries(spec.revoked_keys.iter().map(String::as_str))
        .map_err(|e| format!("spec.revokedKeys: {e}"))?;
    let mut signers = Vec::new();
    for (i, s) in spec.signers.iter().enumerate() {
        let key = match &s.public_key {
            Some(pem) => Some(
                PinnedKey::from_pem(pem)
                    .map_err(|e| format!("spec.signers[{i}].publicKey: {e}"))?,
            ),
            None => None,
        };
        signers.push(CompiledSigner {
            name: s.name.clone(),
            key,
            required: s.required,
        });
    }
    let signer_threshold = spec.signer_threshold.map_or(signers.len(), |t| t as usize);
    if !signers.is_empty() && (signer_threshold < 1 || signer_threshold > signers.len()) {
        return Err(format!(
            "spec.signerThreshold: must be between 1 and {} (the number of signers)",
            signers.len()
        ));
    }
    let registry = spec.registry.as_ref();
    Ok(CompiledPolicy {
        notary_url,
        notary_ca: notary
            .and_then(|n| n.ca_bundle.as_ref())
            .map(|pem| pem.as_bytes().to_vec()),
        gun: notary.and_then(|n| n.gun.clone()).filter(|g| !g.is_empty()),
        registry: RegistryOptions {
            ca_pem: registry
                .and_then(|r| r.ca_bundle.as_ref())
                .map(|pem| pem.as_bytes().to_vec()),
            plain_http: registry.is_some_and(|r| r.plain_http),
            timeout: registry_timeout,
        },
        trust: TrustOptions {
            trust_roots,
            trust_root_threshold: spec.trust_root_threshold.map_or(1, |t| t as usize),
            revoked,
        },
        signers,
        signer_threshold,
    })
}
