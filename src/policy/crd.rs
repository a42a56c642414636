//! The policy resources (docs/policy-reference.md): `TrustPolicy` (namespaced) and `ClusterTrustPolicy`
//! (cluster-scoped), group `trustgate.dev`, version `v1alpha1`, sharing one [`TrustPolicySpec`]
//! and one [`TrustPolicyStatus`]. This file owns the Rust types, their OpenAPI schema with the
//! CEL `x-kubernetes-validations` the API server enforces at apply time, and the generated CRD
//! YAML held in `crds/trustgate-crds.yaml` (`crd_yaml`, `write_crds`, and the drift test).
//!
//! The CEL rules are attached with kube's `KubeSchema` derive (`#[x_kube(validation = ...)]`);
//! simple bounds (`minItems`, `pattern`, `minimum`, list-map keys) are plain OpenAPI via
//! `#[schemars(...)]`. `policy::validate` repeats every rule in Rust for policies read from files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::formats::{
    CosignSpec, NotationSpec, Require, SignatureFormat, SignaturesSpec, UnsupportedSpec,
};

/// API group of both resources.
pub const GROUP: &str = "trustgate.dev";
/// API version of both resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of both resources.
pub const API_VERSION: &str = "trustgate.dev/v1alpha1";
/// Kind of the namespaced resource.
pub const TRUST_POLICY_KIND: &str = "TrustPolicy";
/// Kind of the cluster-scoped resource.
pub const CLUSTER_TRUST_POLICY_KIND: &str = "ClusterTrustPolicy";

/// Most image patterns one policy may list (also enforced by the schema).
pub const MAX_IMAGES: usize = 256;
/// Most trust roots one policy may list.
pub const MAX_TRUST_ROOTS: usize = 16;
/// Most signers one policy may list.
pub const MAX_SIGNERS: usize = 32;
/// Most revoked keys one policy may list.
pub const MAX_REVOKED_KEYS: usize = 256;

/// Signer names: the delegation role below `targets/` (schema `pattern`, checked in Rust too).
pub const SIGNER_NAME_PATTERN: &str = "^[a-z0-9_-]+(/[a-z0-9_-]+)*$";

/// What a policy does with the images it matches.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    /// Admit only images whose tag or digest is signed as the policy requires (the decision rules).
    #[default]
    Verify,
    /// Admit without any check.
    Allow,
    /// Always reject.
    Deny,
}

/// What happens when verification fails.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Failures reject the workload.
    #[default]
    Enforce,
    /// Admit with an API warning.
    Warn,
    /// Admit silently; the failure is only recorded (event, metric, log).
    Audit,
}

/// ClusterTrustPolicy only. Override (default): a matching namespaced TrustPolicy decides
/// instead of this policy. Tighten: a matching namespaced TrustPolicy can only add
/// requirements; the image must be admitted by both.
// The type of `spec.namespacedPolicies`: this doc comment is the field's schema description.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NamespacedPolicies {
    /// A matching namespaced `TrustPolicy` decides instead of this policy (the default).
    #[default]
    Override,
    /// A matching namespaced `TrustPolicy` can only add requirements: the image must be
    /// admitted by both policies, each applying its own `mode` to its own failure.
    Tighten,
}

impl NamespacedPolicies {
    /// The name as written in a policy: `Override`, `Tighten`.
    pub fn as_str(self) -> &'static str {
        match self {
            NamespacedPolicies::Override => "Override",
            NamespacedPolicies::Tighten => "Tighten",
        }
    }
}

impl fmt::Display for NamespacedPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The spec shared by `TrustPolicy` and `ClusterTrustPolicy` (docs/policy-reference.md).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
// Several `printcolumn(type_ = "string", ...)` look like repeated attributes to clippy.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "trustgate.dev",
    version = "v1alpha1",
    kind = "TrustPolicy",
    namespaced,
    status = "TrustPolicyStatus",
    derive = "PartialEq",
    shortname = "tp",
    category = "trustgate",
    doc = "TrustPolicy decides how images matching its patterns are admitted in its namespace: \
           verified against Docker Content Trust (Notary v1) data, allowed, or denied.",
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Images", type_ = "string", json_path = ".spec.images"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = Rule::new("!has(self.spec.namespacedPolicies)")
        .message("namespacedPolicies can only be set on a ClusterTrustPolicy")
        .field_path(".spec.namespacedPolicies")
        .reason(Reason::FieldValueForbidden)
)]
#[x_kube(validation = Rule::new(
    "(has(self.action) && self.action != 'Verify') || (has(self.signatures) && !('NotaryV1' in self.signatures.formats)) || (has(self.notary) && has(self.notary.url))"
).message("notary.url is required when action is Verify and NotaryV1 is evaluated").field_path(".notary").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "(has(self.action) && self.action != 'Verify') || (has(self.signatures) && !('NotaryV1' in self.signatures.formats)) || (has(self.trustRoots) && size(self.trustRoots) > 0)"
).message("at least one trust root is required when action is Verify and NotaryV1 is evaluated").field_path(".trustRoots").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "!has(self.trustRootThreshold) || (self.trustRootThreshold >= 1 && has(self.trustRoots) && self.trustRootThreshold <= size(self.trustRoots))"
).message("trustRootThreshold must be between 1 and the number of trustRoots").field_path(".trustRootThreshold"))]
#[x_kube(validation = Rule::new(
    "!has(self.signerThreshold) || (self.signerThreshold >= 1 && has(self.signers) && self.signerThreshold <= size(self.signers))"
).message("signerThreshold must be between 1 and the number of signers").field_path(".signerThreshold"))]
#[x_kube(validation = Rule::new(
    "!has(self.signatures) || !('Notation' in self.signatures.formats) || has(self.notation)"
).message("notation is required when signatures.formats lists Notation").field_path(".notation").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "!has(self.signatures) || !('Cosign' in self.signatures.formats) || has(self.cosign)"
).message("cosign is required when signatures.formats lists Cosign").field_path(".cosign").reason(Reason::FieldValueRequired))]
#[schemars(description = "Which images the policy applies to and how they are admitted.")]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicySpec {
    /// Image patterns this policy applies to, matched against the normalised reference
    /// `host[:port]/path:tag[@sha256:...]`. `*` matches within one path segment, `**` across
    /// segments; a pattern without tag or digest matches every tag and digest; Docker Hub short
    /// names are normalised (`nginx` is `docker.io/library/nginx`).
    #[schemars(
        length(min = 1, max = 256),
        inner(
            length(min = 1, max = 512),
            regex(pattern = r"^[A-Za-z0-9._:/@+\[\]*-]+$")
        )
    )]
    pub images: Vec<String>,
    /// Verify (default): check signatures. Allow: admit without checks. Deny: always reject.
    #[serde(default)]
    pub action: Action,
    /// Enforce (default): failures reject. Warn: admit with a warning. Audit: admit, record only.
    #[serde(default)]
    pub mode: Mode,
    /// The Notary server holding the trust data (required when action is Verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notary: Option<NotarySpec>,
    /// How to reach the registry to resolve tags to digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySpec>,
    /// Pinned root keys of the repositories (at least one when action is Verify).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub trust_roots: Vec<TrustRoot>,
    /// Distinct pinned keys that must have signed the trusted root (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub trust_root_threshold: Option<u32>,
    /// Delegation roles whose signatures count. Absent: Docker Content Trust default
    /// (`targets/releases`, then `targets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub signers: Vec<Signer>,
    /// Distinct listed signers that must have signed (default: all listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub signer_threshold: Option<u32>,
    /// Keys (64-hex key ID or PEM) whose signatures never count, in any role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 16384)))]
    pub revoked_keys: Vec<String>,
    /// ClusterTrustPolicy only. Override (default): a matching namespaced TrustPolicy decides
    /// instead of this policy. Tighten: a matching namespaced TrustPolicy can only add
    /// requirements; the image must be admitted by both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaced_policies: Option<NamespacedPolicies>,
    /// Which signature formats are evaluated (NotaryV1, Notation, Cosign) and whether one
    /// (AnyOf, default) or all (AllOf) must pass. Absent: Docker Content Trust alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<SignaturesSpec>,
    /// How Notation signatures are trusted (required when formats lists Notation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notation: Option<NotationSpec>,
    /// How cosign signatures are trusted (required when formats lists Cosign).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign: Option<CosignSpec>,
}

impl TrustPolicySpec {
    /// `spec.namespacedPolicies`, `Override` when absent.
    pub fn namespaced_policies(&self) -> NamespacedPolicies {
        self.namespaced_policies.unwrap_or_default()
    }
}

/// The Notary server of a policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotarySpec {
    /// Base URL of the Notary server, e.g. `https://notary.example.com:4443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')")
        .message("url must start with https:// or http://"))]
    pub url: Option<String>,
    /// Extra CA certificates (PEM) for the Notary server and its token service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Secret with `username`/`password` or `.dockerconfigjson` for the Notary server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretRef>,
    /// GUN override; default is the normalised repository of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub gun: Option<String>,
}

/// How the registry is reached.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Extra CA certificates (PEM) for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Allow plain http:// to the registry (local registries).
    #[serde(
        rename = "plainHTTP",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub plain_http: bool,
    /// Registry credentials; otherwise the pod's imagePullSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretRef>,
}

/// A Secret in the policy's namespace (for a ClusterTrustPolicy: trustgate's namespace).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// A pinned root key: exactly one of `publicKey` and `keyID`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.publicKey) != has(self.keyID)")
    .message("a trust root has exactly one of publicKey and keyID"))]
#[serde(rename_all = "camelCase")]
pub struct TrustRoot {
    /// A PEM public key or X.509 certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub public_key: Option<String>,
    /// A key ID exactly as it appears in root.json (64 lowercase hex digits).
    #[serde(rename = "keyID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub key_id: Option<String>,
}

/// A delegation role whose signature counts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    /// The role below `targets/`: `alice` is the delegation role `targets/alice`.
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = "^[a-z0-9_-]+(/[a-z0-9_-]+)*$")
    )]
    #[x_kube(validation = Rule::new("!self.startsWith('targets/')")
        .message("name is the role below targets/: write alice, not targets/alice"))]
    pub name: String,
    /// Optional pin: this signer's signature must come from this key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub public_key: Option<String>,
    /// This signer must always have signed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is `True` when the policy is valid and in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<PolicyCondition>,
}

/// A status condition.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyCondition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The cluster-scoped twin of [`TrustPolicy`]: the same spec, applying in every namespace; where
/// a `TrustPolicy` also matches an image, `spec.namespacedPolicies` says whether that one
/// decides instead (`Override`) or both must admit it (`Tighten`). The spec is a transparent newtype over [`TrustPolicySpec`]
/// (one type cannot derive two resources); it dereferences to it.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "trustgate.dev",
    version = "v1alpha1",
    kind = "ClusterTrustPolicy",
    status = "TrustPolicyStatus",
    derive = "PartialEq",
    shortname = "ctp",
    category = "trustgate",
    doc = "ClusterTrustPolicy decides how images matching its patterns are admitted in every \
           namespace: where a TrustPolicy also matches, that one decides instead \
           (namespacedPolicies: Override, the default) or both must admit the image \
           (namespacedPolicies: Tighten).",
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Namespaced",
        type_ = "string",
        json_path = ".spec.namespacedPolicies"
    ),
    printcolumn(name = "Images", type_ = "string", json_path = ".spec.images"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
#[schemars(description = "Which images the policy applies to and how they are admitted.")]
pub struct ClusterTrustPolicySpec(pub TrustPolicySpec);

impl std::ops::Deref for ClusterTrustPolicySpec {
    type Target = TrustPolicySpec;
    fn deref(&self) -> &TrustPolicySpec {
        &self.0
    }
}

impl From<TrustPolicySpec> for ClusterTrustPolicySpec {
    fn from(spec: TrustPolicySpec) -> Self {
        ClusterTrustPolicySpec(spec)
    }
}

impl Action {
    /// The name as written in a policy: `Verify`, `Allow`, `Deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Verify => "Verify",
            Action::Allow => "Allow",
            Action::Deny => "Deny",
        }
    }
}

impl Mode {
    /// The name as written in a policy: `Enforce`, `Warn`, `Audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "Enforce",
            Mode::Warn => "Warn",
            Mode::Audit => "Audit",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of {expected}")]
pub struct UnknownName {
    /// The input.
    pub value: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl FromStr for Action {
    type Err = UnknownName;
    /// Case-insensitive: `Allow`, `allow`, `DENY`.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        [Action::Verify, Action::Allow, Action::Deny]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                value: s.to_owned(),
                expected: "Verify, Allow, Deny",
            })
    }
}

impl FromStr for Mode {
    type Err = UnknownName;
    /// Case-insensitive: `Enforce`, `warn`, `AUDIT`.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        [Mode::Enforce, Mode::Warn, Mode::Audit]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                value: s.to_owned(),
                expected: "Enforce, Warn, Audit",
            })
    }
}

/// Why the CRD YAML could not be produced or written.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Serialising a CRD failed.
    #[error("cannot serialise the {crd} CRD: {message}")]
    Serialize {
        /// `metadata.name` of the CRD.
        crd: String,
        /// The serialiser's message.
        message: String,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// File name of the generated CRDs inside `crds/`.
pub const CRD_FILE: &str = "trustgate-crds.yaml";

/// First lines of the generated YAML.
const GENERATED_HEADER: &str = "# Generated from src/policy/crd.rs by `trustgate crdgen`. Do not edit: regenerate with\n\
                                # `cargo run -- crdgen > crds/trustgate-crds.yaml`.\n";

/// Both CRDs: `TrustPolicy`, then `ClusterTrustPolicy`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![TrustPolicy::crd(), ClusterTrustPolicy::crd()]
}

/// Both CRDs as one multi-document YAML stream, `TrustPolicy` first, after a "generated"
/// comment: what `trustgate crdgen` prints and `crds/trustgate-crds.yaml` holds.
///
/// # Errors
/// [`CrdError::Serialize`] if a CRD cannot be serialised (not expected).
pub fn crd_yaml() -> Result<String, CrdError> {
    let mut out = String::from(GENERATED_HEADER);
    for (i, crd) in crds().iter().enumerate() {
        let yaml = serde_saphyr::to_string(crd).map_err(|e| CrdError::Serialize {
            crd: crd.metadata.name.clone().unwrap_or_default(),
            message: e.to_string(),
        })?;
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml);
    }
    Ok(out)
}

/// Writes [`crd_yaml`] to `dir/trustgate-crds.yaml` (`dir` must exist) and returns the path.
///
/// # Errors
/// [`CrdError`] when serialising or writing fails.
pub fn write_crds(dir: &Path) -> Result<PathBuf, CrdError> {
    let path = dir.join(CRD_FILE);
    let yaml = crd_yaml()?;
    std::fs::write(&path, yaml).map_err(|source| CrdError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests;
