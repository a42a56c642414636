//! The signature formats of a policy (docs/signature-formats.md): `spec.signatures` (which of
//! Docker Content Trust, Notation and cosign are evaluated and how their results combine),
//! `spec.notation` (trust store and trusted identities) and `spec.cosign` (public keys and
//! threshold). This file owns those types, their schema and CEL rules (attached to the spec in
//! `crd`), and their Rust validation (called by `validate`). A policy without `signatures`
//! evaluates Docker Content Trust alone, as before.

use std::fmt;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::crd::TrustPolicySpec;
use super::validate::FieldError;

/// Most certificates or keys one `notation.trustStore` / `cosign.publicKeys` list may hold.
pub const MAX_FORMAT_KEYS: usize = 32;
/// Most entries of `notation.trustedIdentities`.
pub const MAX_TRUSTED_IDENTITIES: usize = 64;

/// A signature format a policy can evaluate.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum SignatureFormat {
    /// Docker Content Trust: Notary v1 trust data (`notary`, `trustRoots`, `signers`).
    NotaryV1,
    /// The Notary Project's signatures (`notation sign`), verified with `spec.notation`.
    Notation,
    /// Sigstore's signatures made with a key (`cosign sign --key`), verified with `spec.cosign`.
    Cosign,
}

impl SignatureFormat {
    /// Every format, in the order results are shown.
    pub const ALL: [SignatureFormat; 3] = [
        SignatureFormat::NotaryV1,
        SignatureFormat::Notation,
        SignatureFormat::Cosign,
    ];

    /// The name as written in a policy (and used as a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFormat::NotaryV1 => "NotaryV1",
            SignatureFormat::Notation => "Notation",
            SignatureFormat::Cosign => "Cosign",
        }
    }
}

impl fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the results of the listed formats combine.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Require {
    /// One listed format passing admits the image (the default).
    #[default]
    AnyOf,
    /// Every listed format must pass.
    AllOf,
}

impl Require {
    /// The name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Require::AnyOf => "AnyOf",
            Require::AllOf => "AllOf",
        }
    }
}

impl fmt::Display for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signature formats the policy evaluates and how their results combine. Absent: Docker
/// Content Trust (Notary v1) alone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignaturesSpec {
    /// The formats evaluated, each at most once: NotaryV1, Notation, Cosign.
    #[schemars(length(min = 1, max = 3), extend("x-kubernetes-list-type" = "set"))]
    pub formats: Vec<SignatureFormat>,
    /// AnyOf (default): one listed format passing admits the image. AllOf: every listed format
    /// must pass.
    #[serde(default)]
    pub require: Require,
}

/// How Notation signatures are trusted (Notation's `ca` trust store and trusted identities).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotationSpec {
    /// X.509 CA or signing certificates (PEM; an entry may hold several): a signature counts if
    /// its certificate chain ends in one of them.
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 65536)))]
    pub trust_store: Vec<String>,
    /// Identities whose signatures count, in Notation's syntax: `x509.subject: C=US, O=Shop,
    /// CN=release` (every attribute listed must be in the signing certificate's subject), or
    /// `*` for any certificate the trust store admits.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 1024)))]
    pub trusted_identities: Vec<String>,
}

/// How cosign signatures are trusted: public keys and how many distinct ones must have signed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(
    "!has(self.threshold) || (self.threshold >= 1 && self.threshold <= size(self.publicKeys))"
).message("cosign.threshold must be between 1 and the number of publicKeys").field_path(".threshold"))]
#[x_kube(validation = Rule::new("!has(self.keyless)")
    .message("keyless (Fulcio certificate) verification is not supported in v1alpha1: list the signing keys in publicKeys")
    .field_path(".keyless"))]
#[x_kube(validation = Rule::new("!has(self.rekor)")
    .message("transparency-log (Rekor) verification is not supported in v1alpha1: remove rekor")
    .field_path(".rekor"))]
#[serde(rename_all = "camelCase")]
pub struct CosignSpec {
    /// Public keys (PEM, as `cosign generate-key-pair` writes `cosign.pub`): a signature counts
    /// if it verifies with one of them.
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 16384)))]
    pub public_keys: Vec<String>,
    /// Distinct keys that must have signed the digest (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threshold: Option<u32>,
    /// Not supported in v1alpha1 (keyless signatures: Fulcio certificates with an OIDC
    /// identity). Present only so that a policy asking for it is refused, never silently pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<UnsupportedSpec>,
    /// Not supported in v1alpha1 (transparency-log checks against Rekor). Present only so that
    /// a policy asking for it is refused, never silently pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekor: Option<UnsupportedSpec>,
}

impl CosignSpec {
    /// `threshold`, 1 when absent.
    pub fn threshold(&self) -> u32 {
        self.threshold.unwrap_or(1)
    }
}

/// A settings block of a feature that v1alpha1 refuses (its content is not read).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsupportedSpec {
    /// Whatever was written.
    #[serde(flatten)]
    #[schemars(skip)]
    pub fields: std::collections::BTreeMap<String, serde_json::Value>,
}

impl TrustPolicySpec {
    /// The formats this policy evaluates: `signatures.formats`, `[NotaryV1]` when absent.
    pub fn formats(&self) -> Vec<SignatureFormat> {
        match &self.signatures {
            Some(s) => s.formats.clone(),
            None => vec![SignatureFormat::NotaryV1],
        }
    }

    /// Whether the policy evaluates `format`.
    pub fn evaluates(&self, format: SignatureFormat) -> bool {
        match &self.signatures {
            Some(s) => s.formats.contains(&format),
            None => format == SignatureFormat::NotaryV1,
        }
    }

    /// `signatures.require`, `AnyOf` when absent.
    pub fn require(&self) -> Require {
        self.signatures
            .as_ref()
            .map(|s| s.require)
            .unwrap_or_default()
    }
}

/// The Rust twin of the schema and CEL rules above, for policies read from files; also the
/// parse checks CEL cannot do (certificates and keys parse, identities follow Notation's syntax).
pub(super) fn check_formats(spec: &TrustPolicySpec, errors: &mut Vec<FieldError>) {
    if let Some(signatures) = &spec.signatures {
        let formats = &signatures.formats;
        if formats.is_empty() {
            errors.push(FieldError::new(
                "spec.signatures.formats",
                "must list at least one of NotaryV1, Notation, Cosign",
            ));
        }
        for (i, f) in formats.iter().enumerate() {
            if formats[..i].contains(f) {
                errors.push(FieldError::new(
                    format!("spec.signatures.formats[{i}]"),
                    format!("{f} is listed twice"),
                ));
            }
        }
    }
    if spec.evaluates(SignatureFormat::Notation) && spec.notation.is_none() {
        errors.push(FieldError::new(
            "spec.notation",
            "required when signatures.formats lists Notation",
        ));
    }
    if spec.evaluates(SignatureFormat::Cosign) && spec.cosign.is_none() {
        errors.push(FieldError::new(
            "spec.cosign",
            "required when signatures.formats lists Cosign",
        ));
    }
    if let Some(notation) = &spec.notation {
        check_notation(notation, errors);
    }
    if let Some(cosign) = &spec.cosign {
        check_cosign(cosign, errors);
    }
}

fn check_notation(notation: &NotationSpec, errors: &mut Vec<FieldError>) {
    let store = &notation.trust_store;
    if store.is_empty() {
        errors.push(FieldError::new(
            "spec.notation.trustStore",
            "must hold at least one certificate",
        ));
    }
    if store.len() > MAX_FORMAT_KEYS {
        errors.push(FieldError::new(
            "spec.notation.trustStore",
            format!("at most {MAX_FORMAT_KEYS} entries"),
        ));
    }
    for (i, pem) in store.iter().enumerate() {
        if let Err(message) = parse_certificates(pem) {
            errors.push(FieldError::new(
                format!("spec.notation.trustStore[{i}]"),
                message,
            ));
        }
    }
    let identities = &notation.trusted_identities;
    if identities.is_empty() {
        errors.push(FieldError::new(
            "spec.notation.trustedIdentities",
            "must list at least one identity (or \"*\")",
        ));
    }
    if identities.len() > MAX_TRUSTED_IDENTITIES {
        errors.push(FieldError::new(
            "spec.notation.trustedIdentities",
            format!("at most {MAX_TRUSTED_IDENTITIES} entries"),
        ));
    }
    for (i, identity) in identities.iter().enumerate() {
        if let Err(message) = check_identity(identity, identities.len()) {
            errors.push(FieldError::new(
                format!("spec.notation.trustedIdentities[{i}]"),
                message,
            ));
        }
    }
}

fn check_cosign(cosign: &CosignSpec, errors: &mut Vec<FieldError>) {
    let keys = &cosign.public_keys;
    if keys.is_empty() {
        errors.push(FieldError::new(
            "spec.cosign.publicKeys",
            "must hold at least one public key",
        ));
    }
    if keys.len() > MAX_FORMAT_KEYS {
        errors.push(FieldError::new(
            "spec.cosign.publicKeys",
            format!("at most {MAX_FORMAT_KEYS} entries"),
        ));
    }
    for (i, pem) in keys.iter().enumerate() {
        if let Err(message) = parse_public_key(pem) {
            errors.push(FieldError::new(
                format!("spec.cosign.publicKeys[{i}]"),
                message,
            ));
        }
    }
    if let Some(t) = cosign.threshold
        && (t < 1 || t as usize > keys.len())
    {
        errors.push(FieldError::new(
            "spec.cosign.threshold",
            "must be between 1 and the number of publicKeys",
        ));
    }
    if cosign.keyless.is_some() {
        errors.push(FieldError::new(
            "spec.cosign.keyless",
            "keyless (Fulcio certificate) verification is not supported in v1alpha1: list the signing keys in publicKeys",
        ));
    }
    if cosign.rekor.is_some() {
        errors.push(FieldError::new(
            "spec.cosign.rekor",
            "transparency-log (Rekor) verification is not supported in v1alpha1: remove rekor",
        ));
    }
}

/// Notation's trusted-identity syntax: `*` alone, or `x509.subject: <DN>` with `K=V` attributes
/// separated by commas, each key at most once.
fn check_identity(identity: &str, count: usize) -> Result<(), String> {
    let identity = identity.trim();
    if identity == "*" {
        return if count == 1 {
            Ok(())
        } else {
            Err("\"*\" must be the only trusted identity".to_owned())
        };
    }
    let Some(dn) = identity.strip_prefix("x509.subject:") else {
        return Err(format!(
            "{identity:?} is neither \"*\" nor \"x509.subject: <distinguished name>\""
        ));
    };
    let mut keys: Vec<&str> = Vec::new();
    for attribute in dn.split(',') {
        let Some((k, v)) = attribute.split_once('=') else {
            return Err(format!("attribute {:?} is not KEY=VALUE", attribute.trim()));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(format!("attribute {:?} is not KEY=VALUE", attribute.trim()));
        }
        if keys.contains(&k) {
            return Err(format!("attribute {k} is listed twice"));
        }
        keys.push(k);
    }
    Ok(())
}

/// Every PEM block of `pem` is an X.509 certificate; at least one.
pub fn parse_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use x509_cert::der::Decode;
    let blocks = crate::tls::parse_pem_bundle(pem.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(blocks.len());
    for der in blocks {
        x509_cert::Certificate::from_der(&der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        out.push(der.to_vec());
    }
    Ok(out)
}

/// One PEM `PUBLIC KEY` block (SubjectPublicKeyInfo), returned as DER.
pub fn parse_public_key(pem: &str) -> Result<Vec<u8>, String> {
    use x509_cert::der::{Decode, pem::PemLabel};
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    let (label, der) = x509_cert::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| format!("not a PEM public key: {e}"))?;
    if label != SubjectPublicKeyInfoOwned::PEM_LABEL {
        return Err(format!("PEM block is {label:?}, expected \"PUBLIC KEY\""));
    }
    SubjectPublicKeyInfoOwned::from_der(&der).map_err(|e| format!("not a public key: {e}"))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testdata::{CERT_PEM, PUBLIC_KEY_PEM, verify_spec};
    use crate::policy::validate;

    fn problems(spec: &TrustPolicySpec) -> Vec<String> {
        validate(spec)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn only(formats: &[SignatureFormat]) -> TrustPolicySpec {
        TrustPolicySpec {
            images: vec!["**".into()],
            signatures: Some(SignaturesSpec {
                formats: formats.to_vec(),
                require: Require::AnyOf,
            }),
            notation: Some(NotationSpec {
                trust_store: vec![CERT_PEM.into()],
                trusted_identities: vec!["x509.subject: C=US, O=Shop, CN=release".into()],
            }),
            cosign: Some(CosignSpec {
                public_keys: vec![PUBLIC_KEY_PEM.into()],
                ..CosignSpec::default()
            }),
            ..TrustPolicySpec::default()
        }
    }

    fn with_notation(f: impl FnOnce(&mut NotationSpec)) -> TrustPolicySpec {
        let mut spec = only(&[SignatureFormat::Notation]);
        if let Some(n) = spec.notation.as_mut() {
            f(n);
        }
        spec
    }

    fn with_cosign(f: impl FnOnce(&mut CosignSpec)) -> TrustPolicySpec {
        let mut spec = only(&[SignatureFormat::Cosign]);
        if let Some(c) = spec.cosign.as_mut() {
            f(c);
        }
        spec
    }

    #[test]
    fn absent_signatures_means_notary_v1_alone() {
        let spec = verify_spec(&["**"]);
        assert_eq!(spec.formats(), [SignatureFormat::NotaryV1]);
        assert!(spec.evaluates(SignatureFormat::NotaryV1));
        assert!(!spec.evaluates(SignatureFormat::Notation));
        assert_eq!(spec.require(), Require::AnyOf);
        assert_eq!(problems(&spec), Vec::<String>::new());
    }

    #[test]
    fn new_formats_alone_need_no_notary_server() {
        use SignatureFormat::*;
        assert_eq!(problems(&only(&[Notation, Cosign])), Vec::<String>::new());
        let with_v1 = problems(&only(&[NotaryV1, Cosign]));
        assert!(
            with_v1.iter().any(|p| p.starts_with("spec.notary.url")),
            "{with_v1:?}"
        );
        assert!(
            with_v1.iter().any(|p| p.starts_with("spec.trustRoots")),
            "{with_v1:?}"
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        use SignatureFormat::*;
        let mut missing = only(&[Notation, Cosign]);
        missing.notation = None;
        missing.cosign = None;
        let cases: Vec<(&str, TrustPolicySpec, &str)> = vec![
            (
                "missing blocks",
                missing.clone(),
                "spec.notation: required when",
            ),
            ("missing cosign", missing, "spec.cosign: required when"),
            (
                "no formats",
                only(&[]),
                "spec.signatures.formats: must list",
            ),
            (
                "twice",
                only(&[Cosign, Cosign]),
                "spec.signatures.formats[1]: Cosign is listed twice",
            ),
            (
                "bad certificate",
                with_notation(|n| n.trust_store = vec![PUBLIC_KEY_PEM.into()]),
                "spec.notation.trustStore[0]",
            ),
            (
                "empty store",
                with_notation(|n| n.trust_store.clear()),
                "spec.notation.trustStore: must hold",
            ),
            (
                "identity syntax",
                with_notation(|n| n.trusted_identities = vec!["CN=release".into()]),
                "spec.notation.trustedIdentities[0]: \"CN=release\" is neither",
            ),
            (
                "star among others",
                with_notation(|n| n.trusted_identities.push("*".into())),
                "spec.notation.trustedIdentities[1]: \"*\" must be the only",
            ),
            (
                "attribute twice",
                with_notation(|n| n.trusted_identities = vec!["x509.subject: CN=a, CN=b".into()]),
                "attribute CN is listed twice",
            ),
            (
                "bad key",
                with_cosign(|c| c.public_keys = vec![CERT_PEM.into()]),
                "spec.cosign.publicKeys[0]: PEM block is \"CERTIFICATE\"",
            ),
            (
                "threshold",
                with_cosign(|c| c.threshold = Some(2)),
                "spec.cosign.threshold: must be between 1",
            ),
            (
                "keyless",
                with_cosign(|c| c.keyless = Some(UnsupportedSpec::default())),
                "spec.cosign.keyless: keyless (Fulcio certificate) verification is not supported in v1alpha1",
            ),
            (
                "rekor",
                with_cosign(|c| c.rekor = Some(UnsupportedSpec::default())),
                "spec.cosign.rekor: transparency-log (Rekor) verification is not supported",
            ),
        ];
        for (case, spec, expected) in cases {
            let found = problems(&spec);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{case}: {found:?}"
            );
        }
    }

    #[test]
    fn keyless_in_a_policy_file_is_refused_not_ignored() {
        let yaml = "images: ['**']\nsignatures: {formats: [Cosign]}\ncosign:\n  publicKeys: ['x']\n  keyless: {issuer: https://accounts.example.com}\n";
        let spec: TrustPolicySpec = serde_saphyr::from_str(yaml).expect("parses");
        assert!(
            spec.cosign
                .as_ref()
                .and_then(|c| c.keyless.as_ref())
                .is_some()
        );
        assert!(
            problems(&spec)
                .iter()
                .any(|p| p.contains("spec.cosign.keyless"))
        );
    }
}
