//! Validation of a [`TrustPolicySpec`] in Rust: every rule the CRD schema and its CEL rules
//! enforce at apply time (so policies read from files are held to the same standard), plus the
//! checks CEL cannot do: image patterns parse, PEM keys and certificates parse, revoked keys are
//! key IDs or PEM keys, GUNs and URLs are well formed. Each problem is a [`FieldError`] naming
//! the field path (`spec.trustRoots[1].publicKey`) and what is wrong.
//!
//! The same pass builds what verification needs ([`CompiledPolicy`]) from what it parsed, so a
//! key is parsed once and each rule is written once, for files and cluster objects alike
//! ([`check`]; the CRD's CEL rules repeat the structural ones at apply time).

use std::collections::HashSet;
use std::fmt;

use x509_cert::der::Decode;

use crate::image::reference::ImageRef;
use crate::image::registry::RegistryOptions;
use crate::notary::keys::PinnedKey;
use crate::notary::updater::{Revocations, TrustOptions, TrustRoot};

use super::compiled::{CompiledPolicy, CompiledSigner, notary_fingerprint};

use super::crd::{
    Action, MAX_IMAGES, MAX_REVOKED_KEYS, MAX_SIGNERS, MAX_TRUST_ROOTS, SecretRef, TrustPolicySpec,
};
use super::formats::SignatureFormat;
use super::pattern::ImagePattern;

/// One problem in a policy: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.trustRoots[1].publicKey`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Several field errors shown on one line, separated by `; `.
#[derive(Clone, Copy, Debug)]
pub struct FieldErrors<'a>(pub &'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Checks `spec` against every rule of the CRD schema that both kinds share and the parse
/// checks CEL cannot do; [`validate_for`] adds the kind-specific rule.
///
/// # Errors
/// All problems found, in field order.
pub fn validate(spec: &TrustPolicySpec) -> Result<(), Vec<FieldError>> {
    check(spec, None).map(drop)
}

/// As [`validate`], plus the rule that depends on the resource kind: only a
/// `ClusterTrustPolicy` may set `spec.namespacedPolicies` (`namespaced` is true for a
/// `TrustPolicy`), as the CRD's CEL rule on `TrustPolicy` says.
///
/// # Errors
/// All problems found, in field order.
pub fn validate_for(spec: &TrustPolicySpec, namespaced: bool) -> Result<(), Vec<FieldError>> {
    check(spec, Some(namespaced)).map(drop)
}

/// The one pass over a spec: every rule of [`validate`] (and, when `namespaced` says which
/// kind the spec belongs to, of [`validate_for`]), and for a valid `Verify` policy its
/// compiled form, built from the keys the checks parsed (`None` for `Allow` and `Deny`).
///
/// # Errors
/// All problems found, in field order.
pub fn check(
    spec: &TrustPolicySpec,
    namespaced: Option<bool>,
) -> Result<Option<CompiledPolicy>, Vec<FieldError>> {
    let mut errors = Vec::new();
    check_images(spec, &mut errors);
    check_notary(spec, &mut errors);
    check_registry(spec, &mut errors);
    let trust_roots = check_trust_roots(spec, &mut errors);
    let signers = check_signers(spec, &mut errors);
    let revoked = check_revoked_keys(spec, &mut errors);
    let formats = super::formats::check_formats(spec, &mut errors);
    if namespaced == Some(true) && spec.namespaced_policies.is_some() {
        errors.push(FieldError::new(
            "spec.namespacedPolicies",
            "can only be set on a ClusterTrustPolicy",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Action::Verify, Some(formats)) = (spec.action, formats) else {
        return Ok(None);
    };
    let notary = spec.notary.as_ref();
    let registry = spec.registry.as_ref();
    let trust = TrustOptions {
        trust_roots,
        trust_root_threshold: spec.trust_root_threshold.map_or(1, |t| t as usize),
        revoked,
    };
    let notary_url = notary.and_then(|n| n.url.clone()).unwrap_or_default();
    let notary_ca = notary
        .and_then(|n| n.ca_bundle.as_ref())
        .map(|pem| pem.as_bytes().to_vec());
    Ok(Some(CompiledPolicy {
        notary_fingerprint: notary_fingerprint(&notary_url, notary_ca.as_deref()),
        notary_url,
        notary_ca,
        gun: notary.and_then(|n| n.gun.clone()).filter(|g| !g.is_empty()),
        registry: RegistryOptions {
            ca_pem: registry
                .and_then(|r| r.ca_bundle.as_ref())
                .map(|pem| pem.as_bytes().to_vec()),
            plain_http: registry.is_some_and(|r| r.plain_http),
            ..RegistryOptions::default()
        },
        trust_fingerprint: trust.fingerprint(),
        trust,
        signer_threshold: spec.signer_threshold.map_or(signers.len(), |t| t as usize),
        signers,
        formats,
    }))
}

/// True for a Notary key ID: 64 lower-case hex digits (a SHA-256).
pub fn is_key_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True for a signer name as the schema's pattern `^[a-z0-9_-]+(/[a-z0-9_-]+)*$` accepts it.
pub fn is_signer_name(s: &str) -> bool {
    s.split('/').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    })
}

/// True for a Kubernetes object name (RFC 1123 subdomain, at most 253 characters).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                }
                _ => false,
            }
        })
}

fn check_images(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) {
    if spec.images.is_empty() {
        errors.push(FieldError::new(
            "spec.images",
            "at least one image pattern is required",
        ));
    }
    if spec.images.len() > MAX_IMAGES {
        errors.push(too_many("spec.images", MAX_IMAGES));
    }
    for (i, image) in spec.images.iter().enumerate() {
        if let Err(e) = ImagePattern::parse(image) {
            errors.push(FieldError::new(format!("spec.images[{i}]"), e.to_string()));
        }
    }
}

fn check_notary(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) {
    let notary = spec.notary.as_ref();
    let url = notary.and_then(|n| n.url.as_deref());
    match url {
        None if spec.action == Action::Verify && spec.evaluates(SignatureFormat::NotaryV1) => {
            errors.push(FieldError::new(
                "spec.notary.url",
                "required when action is Verify and NotaryV1 is evaluated",
            ))
        }
        None => {}
        Some(url) => {
            if let Err(message) = check_url(url) {
                errors.push(FieldError::new("spec.notary.url", message));
            }
        }
    }
    let Some(notary) = notary else { return };
    if let Some(bundle) = &notary.ca_bundle {
        check_ca_bundle("spec.notary.caBundle", bundle, errors);
    }
    if let Some(secret) = &notary.credentials_secret {
        check_secret("spec.notary.credentialsSecret.name", secret, errors);
    }
    if let Some(gun) = &notary.gun {
        match ImageRef::parse(gun) {
            Ok(r) if r.tag().is_some() || r.digest().is_some() => errors.push(FieldError::new(
                "spec.notary.gun",
                format!("{gun:?} must name a repository, without tag or digest"),
            )),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(
                "spec.notary.gun",
                format!("not a repository name: {e}"),
            )),
        }
    }
}

fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("{url:?} must start with https:// or http://"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a valid URL: {e}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    Ok(())
}

fn check_registry(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) {
    let Some(registry) = &spec.registry else {
        return;
    };
    if let Some(bundle) = &registry.ca_bundle {
        check_ca_bundle("spec.registry.caBundle", bundle, errors);
    }
    if let Some(secret) = &registry.credentials_secret {
        check_secret("spec.registry.credentialsSecret.name", secret, errors);
    }
}

fn check_ca_bundle(path: &str, pem: &str, errors: &mut Vec<FieldError>) {
    match crate::tls::parse_pem_bundle(pem.as_bytes()) {
        Ok(certs) => {
            for (i, der) in certs.iter().enumerate() {
                if let Err(e) = x509_cert::Certificate::from_der(der.as_ref()) {
                    errors.push(FieldError::new(
                        path,
                        format!("certificate {} does not parse: {e}", i + 1),
                    ));
                }
            }
        }
        Err(e) => errors.push(FieldError::new(path, e.to_string())),
    }
}

fn check_secret(path: &str, secret: &SecretRef, errors: &mut Vec<FieldError>) {
    if !is_dns_subdomain(&secret.name) {
        errors.push(FieldError::new(
            path,
            format!(
                "{:?} is not a valid Secret name (lower-case RFC 1123 subdomain)",
                secret.name
            ),
        ));
    }
}

/// Checks `spec.trustRoots` and returns the roots that parsed.
fn check_trust_roots(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) -> Vec<TrustRoot> {
    let mut parsed = Vec::new();
    let roots = &spec.trust_roots;
    if roots.is_empty()
        && spec.action == Action::Verify
        && spec.evaluates(SignatureFormat::NotaryV1)
    {
        errors.push(FieldError::new(
            "spec.trustRoots",
            "at least one trust root is required when action is Verify and NotaryV1 is evaluated",
        ));
    }
    if roots.len() > MAX_TRUST_ROOTS {
        errors.push(too_many("spec.trustRoots", MAX_TRUST_ROOTS));
    }
    let mut seen = HashSet::new();
    for (i, root) in roots.iter().enumerate() {
        let path = format!("spec.trustRoots[{i}]");
        match (&root.public_key, &root.key_id) {
            (Some(_), Some(_)) => errors.push(FieldError::new(
                &path,
                "exactly one of publicKey and keyID must be set, not both",
            )),
            (None, None) => errors.push(FieldError::new(
                &path,
                "exactly one of publicKey and keyID must be set",
            )),
            _ => {}
        }
        if let Some(pem) = &root.public_key
            && let Some(key) = check_pem_key(&format!("{path}.publicKey"), pem, errors)
        {
            parsed.push(TrustRoot::Key(key));
        }
        if let Some(id) = &root.key_id {
            parsed.push(TrustRoot::KeyId(id.clone()));
        }
        if let Some(id) = &root.key_id
            && !is_key_id(id)
        {
            errors.push(FieldError::new(
                format!("{path}.keyID"),
                format!("{id:?} is not a key ID (64 lower-case hex digits)"),
            ));
        }
        let identity = (
            root.public_key.as_deref().map(str::trim),
            root.key_id.as_deref(),
        );
        if !seen.insert(identity) {
            errors.push(FieldError::new(&path, "duplicate trust root"));
        }
    }
    if let Some(threshold) = spec.trust_root_threshold
        && (threshold < 1 || threshold as usize > roots.len())
    {
        errors.push(FieldError::new(
            "spec.trustRootThreshold",
            format!(
                "{threshold} must be between 1 and the number of trustRoots ({})",
                roots.len()
            ),
        ));
    }
    parsed
}

/// Checks `spec.signers` and `spec.signerThreshold`; returns the signers with their parsed keys.
fn check_signers(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) -> Vec<CompiledSigner> {
    let mut compiled = Vec::with_capacity(spec.signers.len());
    let signers = &spec.signers;
    if signers.len() > MAX_SIGNERS {
        errors.push(too_many("spec.signers", MAX_SIGNERS));
    }
    let mut names = HashSet::new();
    for (i, signer) in signers.iter().enumerate() {
        let path = format!("spec.signers[{i}]");
        if !is_signer_name(&signer.name) {
            errors.push(FieldError::new(
                format!("{path}.name"),
                format!(
                    "{:?} must match ^[a-z0-9_-]+(/[a-z0-9_-]+)*$ (a delegation role below targets/)",
                    signer.name
                ),
            ));
        } else if signer.name.starts_with("targets/") {
            errors.push(FieldError::new(
                format!("{path}.name"),
                format!(
                    "{:?}: name is the role below targets/: write {:?}",
                    signer.name,
                    signer.name.trim_start_matches("targets/")
                ),
            ));
        }
        if !names.insert(signer.name.as_str()) {
            errors.push(FieldError::new(
                format!("{path}.name"),
                format!("duplicate signer {:?}", signer.name),
            ));
        }
        let key = signer
            .public_key
            .as_ref()
            .and_then(|pem| check_pem_key(&format!("{path}.publicKey"), pem, errors));
        compiled.push(CompiledSigner {
            name: signer.name.clone(),
            key,
            required: signer.required,
        });
    }
    if let Some(threshold) = spec.signer_threshold
        && (threshold < 1 || threshold as usize > signers.len())
    {
        errors.push(FieldError::new(
            "spec.signerThreshold",
            format!(
                "{threshold} must be between 1 and the number of signers ({})",
                signers.len()
            ),
        ));
    }
    compiled
}

/// Checks `spec.revokedKeys`; returns the revocations (IDs and parsed keys).
fn check_revoked_keys(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) -> Revocations {
    let mut revoked = Revocations::new();
    if spec.revoked_keys.len() > MAX_REVOKED_KEYS {
        errors.push(too_many("spec.revokedKeys", MAX_REVOKED_KEYS));
    }
    for (i, key) in spec.revoked_keys.iter().enumerate() {
        let path = format!("spec.revokedKeys[{i}]");
        if is_key_id(key) {
            revoked.add_key_id(key);
            continue;
        }
        if !key.contains("-----BEGIN") {
            errors.push(FieldError::new(
                path,
                format!("{key:?} is neither a key ID (64 lower-case hex digits) nor a PEM key"),
            ));
            continue;
        }
        if let Some(pinned) = check_pem_key(&path, key, errors) {
            revoked.add_key(pinned);
        }
    }
    revoked
}

/// Parses a PEM key or certificate, recording an error at `path` when it does not parse.
fn check_pem_key(path: &str, pem: &str, errors: &mut Vec<FieldError>) -> Option<PinnedKey> {
    PinnedKey::from_pem(pem)
        .map_err(|e| errors.push(FieldError::new(path, e.to_string())))
        .ok()
}

fn too_many(path: &str, max: usize) -> FieldError {
    FieldError::new(path, format!("at most {max} entries are allowed"))
}

#[cfg(test)]
mod tests;
