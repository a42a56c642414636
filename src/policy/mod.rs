//! Trust policies (docs/policy-reference.md): the `TrustPolicy` / `ClusterTrustPolicy` resources and their
//! CRDs (`crd`), the same validation in Rust for policies read from files (`validate`), image
//! patterns (`pattern`), what verification needs, compiled once (`compiled`), which policy decides an image (`matcher`), and loading policies from
//! YAML files (`load`); `source` holds the policy sources of `serve`. Only `cluster` (the
//! policy source of cluster mode, with its status writer) talks to a cluster.

pub mod compiled;
pub mod crd;
pub mod formats;
pub mod load;
pub mod matcher;
pub mod pattern;
pub mod source;
pub mod validate;

#[cfg(test)]
pub(crate) mod testdata;

pub use compiled::{CompiledPolicy, CompiledSigner};
pub use crd::{
    API_VERSION, Action, CLUSTER_TRUST_POLICY_KIND, CRD_FILE, ClusterTrustPolicy,
    ClusterTrustPolicySpec, CrdError, GROUP, Mode, NamespacedPolicies, NotarySpec, PolicyCondition,
    RegistrySpec, SecretRef, Signer, TRUST_POLICY_KIND, TrustPolicy, TrustPolicySpec,
    TrustPolicyStatus, TrustRoot, VERSION, crd_yaml, crds, write_crds,
};
pub use load::{
    DocumentRef, LoadError, load_policies, load_policy_set, parse_policies, policy_files_in,
};
pub use matcher::{LoadedPolicy, PolicyId, PolicySet, Selection};
pub use pattern::{ImagePattern, PatternError, PatternProblem};
pub use source::{DirPolicySource, PolicySource, StaticPolicySource};
pub use validate::{FieldError, FieldErrors, validate, validate_for};
