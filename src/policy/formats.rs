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
use crate::signatures::Revoked;
use crate::signatures::cosign::{CosignError, CosignPolicy};
use crate::signatures::notation::{NotationError, NotationPolicy};

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

/// What verification needs from the formats of a `Verify` policy, built by the one validation
/// pass: the formats in the policy's order, how they combine, whether the policy lists them
/// itself (`signatures` present: results are shown per format), and the parsed Notation and
/// cosign blocks of the formats it evaluates.
#[derive(Debug, Clone)]
pub struct CompiledFormats {
    /// The formats evaluated, in the policy's order (`[NotaryV1]` without `signatures`).
    pub formats: Vec<SignatureFormat>,
    /// How their results combine.
    pub require: Require,
    /// Whether `spec.signatures` is present (then every decision shows its formats).
    pub listed: bool,
    /// The Notation block, parsed, when Notation is evaluated.
    pub notation: Option<NotationPolicy>,
    /// The cosign block, parsed, when Cosign is evaluated.
    pub cosign: Option<CosignPolicy>,
}

impl CompiledFormats {
    /// Whether only Docker Content Trust is evaluated, as by a policy without `signatures`.
    pub fn notary_v1_only(&self) -> bool {
        self.formats == [SignatureFormat::NotaryV1]
    }

    /// Whether `format` is evaluated.
    pub fn evaluates(&self, format: SignatureFormat) -> bool {
        self.formats.contains(&format)
    }
}

/// The Rust twin of the schema and CEL rules above, for policies read from files; also the
/// parse checks CEL cannot do (certificates, keys and identities parse, with the very parsers
/// verification uses). Returns the compiled formats when nothing was wrong with them.
pub(super) fn check_formats(
    spec: &TrustPolicySpec,
    errors: &mut Vec<FieldError>,
) -> Option<CompiledFormats> {
    let before = errors.len();
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
    let revoked = revoked_keys(spec);
    let notation = spec
        .notation
        .as_ref()
        .and_then(|n| check_notation(n, revoked.clone(), errors));
    let cosign = spec
        .cosign
        .as_ref()
        .and_then(|c| check_cosign(c, revoked, errors));
    (errors.len() == before).then(|| CompiledFormats {
        formats: spec.formats(),
        require: spec.require(),
        listed: spec.signatures.is_some(),
        notation: notation.filter(|_| spec.evaluates(SignatureFormat::Notation)),
        cosign: cosign.filter(|_| spec.evaluates(SignatureFormat::Cosign)),
    })
}

fn check_notation(
    notation: &NotationSpec,
    revoked: Revoked,
    errors: &mut Vec<FieldError>,
) -> Option<NotationPolicy> {
    if notation.trust_store.len() > MAX_FORMAT_KEYS {
        errors.push(FieldError::new(
            "spec.notation.trustStore",
            format!("at most {MAX_FORMAT_KEYS} entries"),
        ));
    }
    if notation.trusted_identities.len() > MAX_TRUSTED_IDENTITIES {
        errors.push(FieldError::new(
            "spec.notation.trustedIdentities",
            format!("at most {MAX_TRUSTED_IDENTITIES} entries"),
        ));
    }
    match NotationPolicy::new(&notation.trust_store, &notation.trusted_identities, revoked) {
        Ok(policy) => Some(policy),
        Err(NotationError::Policy { entry, detail }) => {
            errors.push(FieldError::new(format!("spec.notation.{entry}"), detail));
            None
        }
        Err(other) => {
            errors.push(FieldError::new("spec.notation", other.to_string()));
            None
        }
    }
}

fn check_cosign(
    cosign: &CosignSpec,
    revoked: Revoked,
    errors: &mut Vec<FieldError>,
) -> Option<CosignPolicy> {
    let keys = &cosign.public_keys;
    if keys.len() > MAX_FORMAT_KEYS {
        errors.push(FieldError::new(
            "spec.cosign.publicKeys",
            format!("at most {MAX_FORMAT_KEYS} entries"),
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
    let threshold = cosign.threshold();
    if threshold < 1 || threshold as usize > keys.len() {
        errors.push(FieldError::new(
            "spec.cosign.threshold",
            "must be between 1 and the number of publicKeys",
        ));
        return None;
    }
    match CosignPolicy::new(keys, threshold, revoked) {
        Ok(policy) => Some(policy),
        Err(CosignError::BadKey(detail)) => {
            let (path, detail) = match detail.split_once(": ") {
                Some((at, rest)) if at.starts_with("publicKeys[") => {
                    (format!("spec.cosign.{at}"), rest.to_owned())
                }
                _ => ("spec.cosign.publicKeys".to_owned(), detail),
            };
            errors.push(FieldError::new(path, detail));
            None
        }
        Err(CosignError::BadThreshold { keys, .. }) => {
            errors.push(FieldError::new(
                "spec.cosign.threshold",
                format!("must be between 1 and the number of distinct publicKeys ({keys})"),
            ));
            None
        }
        Err(other) => {
            errors.push(FieldError::new("spec.cosign.publicKeys", other.to_string()));
            None
        }
    }
}

/// The revocations of `revokedKeys` for the new formats: every PEM key or certificate read as
/// the NotaryV1 checks read it (the first PEM block, any line width), and the key IDs. Entries
/// that do not parse are reported by the NotaryV1 checks of `validate`.
fn revoked_keys(spec: &TrustPolicySpec) -> Revoked {
    let (mut spki, mut ids) = (Vec::new(), Vec::new());
    for entry in &spec.revoked_keys {
        if super::validate::is_key_id(entry) {
            ids.push(entry.clone());
        } else if let Ok(key) = crate::notary::keys::PinnedKey::from_pem(entry) {
            spki.push(key.spki_der().to_vec());
        }
    }
    Revoked::from_spki(spki).with_key_ids(ids)
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
                "spec.notation.trustStore: no certificate",
            ),
            (
                "identity syntax",
                with_notation(|n| n.trusted_identities = vec!["CN=release".into()]),
                "spec.notation.trustedIdentities[0]: \"CN=release\" has no \"x509.subject:\" prefix",
            ),
            (
                "star among others",
                with_notation(|n| n.trusted_identities.push("*".into())),
                "spec.notation.trustedIdentities[1]: \"*\" cannot be combined",
            ),
            (
                "attribute twice",
                with_notation(|n| n.trusted_identities = vec!["x509.subject: CN=a, CN=b".into()]),
                "attribute CN appears twice",
            ),
            (
                "bad key",
                with_cosign(|c| {
                    c.public_keys =
                        vec!["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()]
                }),
                "spec.cosign.publicKeys[0]: ",
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

    /// The DER body of a single-block PEM.
    fn der_of(pem: &str) -> Vec<u8> {
        x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap().1
    }

    #[test]
    fn revocations_reach_the_new_formats_in_every_form_notary_accepts() {
        use base64::Engine as _;
        let key = der_of(PUBLIC_KEY_PEM);
        let cert = der_of(CERT_PEM);
        let cert_spki = {
            use x509_cert::der::{Decode, Encode};
            x509_cert::Certificate::from_der(&cert)
                .unwrap()
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap()
        };
        // The base64 on one line (as YAML writers often leave it).
        let one_line = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&key)
        );
        // A certificate followed by another block (its chain): the first block counts.
        let chained = format!("{CERT_PEM}\n{PUBLIC_KEY_PEM}");
        for (entry, spki) in [
            (one_line.as_str(), &key),
            (chained.as_str(), &cert_spki),
            (PUBLIC_KEY_PEM, &key),
        ] {
            let mut spec = only(&[SignatureFormat::Cosign]);
            spec.revoked_keys = vec![entry.to_string()];
            assert!(problems(&spec).is_empty(), "{entry}: {:?}", problems(&spec));
            assert!(revoked_keys(&spec).contains(spki), "not revoked: {entry}");
        }
        // A key ID revokes the cosign key whose SPKI hashes to it.
        let mut spec = only(&[SignatureFormat::Cosign]);
        spec.revoked_keys = vec![hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&key))];
        assert!(revoked_keys(&spec).contains(&key));
        let other = der_of(&rcgen::KeyPair::generate().unwrap().public_key_pem());
        assert!(!revoked_keys(&spec).contains(&other));
    }
}
