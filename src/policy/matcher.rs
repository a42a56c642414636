//! Which policy decides an image (docs/policy-reference.md): the in-memory [`PolicySet`] of loaded policies
//! and its precedence rules. `TrustPolicy` objects of the workload's namespace are considered
//! first; only when none of their patterns matches, `ClusterTrustPolicy` objects. Within a tier
//! the most specific matching pattern wins (longest literal part before the first wildcard,
//! [`ImagePattern::specificity`]); ties go to the policy name, then the pattern text, in
//! ascending order. An image no policy matches gets the set's default action.
//!
//! The one exception to "namespaced first": when the most specific matching
//! `ClusterTrustPolicy` says `namespacedPolicies: Tighten`, a matching `TrustPolicy` does not
//! replace it; both take part ([`Selection::Both`]) and the image must be admitted by each.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::image::reference::ImageRef;

use super::compiled::{CompiledPolicy, fingerprint};
use super::crd::{
    Action, ClusterTrustPolicy, Mode, NamespacedPolicies, TrustPolicy, TrustPolicySpec,
};
use super::pattern::ImagePattern;
use super::validate::{FieldError, FieldErrors, check};

/// Identity of a loaded policy. `namespace` is `Some` for a `TrustPolicy` and `None` for a
/// `ClusterTrustPolicy`. Displays as the JSON `policy` field of `check`: `namespace/name` or
/// `name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    /// Namespace of a `TrustPolicy`; `None` for a `ClusterTrustPolicy`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.generation` (cluster objects only).
    pub generation: Option<i64>,
    /// `metadata.uid` (cluster objects only).
    pub uid: Option<String>,
}

impl PolicyId {
    /// A `TrustPolicy` in `namespace`.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> PolicyId {
        PolicyId {
            namespace: Some(namespace.into()),
            name: name.into(),
            generation: None,
            uid: None,
        }
    }

    /// A `ClusterTrustPolicy`.
    pub fn cluster(name: impl Into<String>) -> PolicyId {
        PolicyId {
            namespace: None,
            name: name.into(),
            generation: None,
            uid: None,
        }
    }

    /// `TrustPolicy` or `ClusterTrustPolicy`.
    pub fn kind(&self) -> &'static str {
        match self.namespace {
            Some(_) => super::crd::TRUST_POLICY_KIND,
            None => super::crd::CLUSTER_TRUST_POLICY_KIND,
        }
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A policy ready for matching and verifying: its identity, its spec, its compiled image
/// patterns, and what verification needs (compiled once, when the policy is loaded).
#[derive(Clone, Debug)]
pub struct LoadedPolicy {
    /// Which object this is.
    pub id: PolicyId,
    /// The spec as written (the compiled form below is built from it by the constructors).
    pub spec: TrustPolicySpec,
    patterns: Vec<ImagePattern>,
    /// Why the policy is invalid, when it is kept only to reject what it matches (cluster mode,
    /// see [`LoadedPolicy::invalid`]).
    problem: Option<String>,
    /// For a `Verify` policy: its compiled form, or why it does not compile.
    compiled: Option<Result<Arc<CompiledPolicy>, String>>,
    /// [`fingerprint`] of the id and spec (cache keys of decisions).
    fingerprint: Option<[u8; 32]>,
}

impl PartialEq for LoadedPolicy {
    /// Same object and spec (the compiled parts follow from them).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.spec == other.spec
            && self.patterns == other.patterns
            && self.problem == other.problem
    }
}

impl LoadedPolicy {
    /// Compiles the image patterns of `spec`, and, for a `Verify` policy, what verification
    /// needs. Only the patterns can make this fail (a policy whose keys do not parse still
    /// claims its images and then fails closed at verification, naming the problem); use
    /// [`LoadedPolicy::checked`] to refuse a policy with any problem.
    ///
    /// # Errors
    /// One [`FieldError`] per pattern that does not parse, at `spec.images[i]`.
    pub fn new(id: PolicyId, spec: TrustPolicySpec) -> Result<LoadedPolicy, Vec<FieldError>> {
        let patterns = patterns(&spec)?;
        let compiled = match check(&spec, Some(id.namespace.is_some())) {
            Ok(compiled) => compiled.map(|c| Ok(Arc::new(c))),
            Err(errors) => {
                (spec.action == Action::Verify).then(|| Err(FieldErrors(&errors).to_string()))
            }
        };
        Ok(LoadedPolicy {
            fingerprint: fingerprint(&id, &spec),
            id,
            spec,
            patterns,
            problem: None,
            compiled,
        })
    }

    /// As [`LoadedPolicy::new`], but a policy with any problem (every rule of
    /// [`validate_for`](super::validate::validate_for), checked in the same pass that compiles
    /// it) is refused.
    ///
    /// # Errors
    /// Every problem found, in field order.
    pub fn checked(id: PolicyId, spec: TrustPolicySpec) -> Result<LoadedPolicy, Vec<FieldError>> {
        let compiled = check(&spec, Some(id.namespace.is_some()))?;
        let patterns = patterns(&spec)?;
        Ok(LoadedPolicy {
            fingerprint: fingerprint(&id, &spec),
            id,
            spec,
            patterns,
            problem: None,
            compiled: compiled.map(|c| Ok(Arc::new(c))),
        })
    }

    /// A policy that failed validation but still claims the images its parseable patterns
    /// match, so they fail closed instead of falling through to a more permissive policy: the
    /// engine rejects every image it decides, whatever its action and mode, saying `problem`.
    /// `None` when not one pattern parses (then it can claim nothing).
    pub fn invalid(
        id: PolicyId,
        spec: TrustPolicySpec,
        problem: impl Into<String>,
    ) -> Option<LoadedPolicy> {
        let patterns: Vec<ImagePattern> = spec
            .images
            .iter()
            .filter_map(|text| ImagePattern::parse(text).ok())
            .collect();
        if patterns.is_empty() {
            return None;
        }
        let problem = problem.into();
        Some(LoadedPolicy {
            fingerprint: fingerprint(&id, &spec),
            id,
            spec,
            patterns,
            compiled: Some(Err(problem.clone())),
            problem: Some(problem),
        })
    }

    /// Why this policy is invalid (`None` for a valid policy); see [`LoadedPolicy::invalid`].
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// For a `Verify` policy, what verification needs, or why the policy does not compile;
    /// `None` for `Allow` and `Deny`. Built once, when the policy was loaded.
    pub fn compiled(&self) -> Option<Result<&CompiledPolicy, &str>> {
        self.compiled
            .as_ref()
            .map(|c| c.as_ref().map(Arc::as_ref).map_err(String::as_str))
    }

    /// A sha256 of the policy's identity (namespace, name, generation, uid) and whole spec,
    /// computed once: decisions cached under it are not reused once the policy changes. `None`
    /// if the spec could not be serialised (then no decision of the policy is cached).
    pub fn fingerprint(&self) -> Option<&[u8; 32]> {
        self.fingerprint.as_ref()
    }

    /// From a `TrustPolicy` object (namespace `default` when it has none), checked as
    /// [`LoadedPolicy::checked`] does.
    ///
    /// # Errors
    /// As [`LoadedPolicy::checked`].
    pub fn from_trust_policy(object: &TrustPolicy) -> Result<LoadedPolicy, Vec<FieldError>> {
        let meta = &object.metadata;
        let id = PolicyId {
            namespace: Some(
                meta.namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            name: meta.name.clone().unwrap_or_default(),
            generation: meta.generation,
            uid: meta.uid.clone(),
        };
        LoadedPolicy::checked(id, object.spec.clone())
    }

    /// From a `ClusterTrustPolicy` object, checked as [`LoadedPolicy::checked`] does.
    ///
    /// # Errors
    /// As [`LoadedPolicy::checked`].
    pub fn from_cluster_trust_policy(
        object: &ClusterTrustPolicy,
    ) -> Result<LoadedPolicy, Vec<FieldError>> {
        let meta = &object.metadata;
        let id = PolicyId {
            namespace: None,
            name: meta.name.clone().unwrap_or_default(),
            generation: meta.generation,
            uid: meta.uid.clone(),
        };
        LoadedPolicy::checked(id, object.spec.0.clone())
    }

    /// The compiled patterns, in `spec.images` order.
    pub fn patterns(&self) -> &[ImagePattern] {
        &self.patterns
    }

    /// `spec.action`.
    pub fn action(&self) -> Action {
        self.spec.action
    }

    /// `spec.mode`.
    pub fn mode(&self) -> Mode {
        self.spec.mode
    }

    /// The most specific of this policy's patterns matching `image` (ties: pattern text).
    pub fn best_match(&self, image: &ImageRef) -> Option<&ImagePattern> {
        self.patterns
            .iter()
            .filter(|p| p.matches(image))
            .min_by(|a, b| {
                b.specificity()
                    .cmp(&a.specificity())
                    .then_with(|| a.as_str().cmp(b.as_str()))
            })
    }
}

/// What decides an image.
#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    /// This policy, through this pattern (as written in `spec.images`).
    Policy {
        /// The deciding policy.
        policy: Arc<LoadedPolicy>,
        /// The pattern that matched.
        pattern: String,
    },
    /// A namespaced policy and a `namespacedPolicies: Tighten` cluster policy both match: the
    /// image must be admitted by both.
    Both {
        /// The most specific matching `TrustPolicy` of the workload's namespace.
        namespaced: Arc<LoadedPolicy>,
        /// Its matching pattern.
        namespaced_pattern: String,
        /// The most specific matching `ClusterTrustPolicy` (it says `Tighten`).
        cluster: Arc<LoadedPolicy>,
        /// Its matching pattern.
        cluster_pattern: String,
    },
    /// No policy matches: the global default action.
    Default(Action),
}

impl Selection {
    /// Every policy taking part in the decision: none, one, or the cluster policy then the
    /// namespaced one.
    pub fn policies(&self) -> Vec<&Arc<LoadedPolicy>> {
        match self {
            Selection::Policy { policy, .. } => vec![policy],
            Selection::Both {
                namespaced,
                cluster,
                ..
            } => vec![cluster, namespaced],
            Selection::Default(_) => Vec::new(),
        }
    }
}

/// All loaded policies: namespaced ones keyed by namespace then name, cluster ones by name.
#[derive(Clone, Debug)]
pub struct PolicySet {
    namespaced: BTreeMap<String, BTreeMap<String, Arc<LoadedPolicy>>>,
    cluster: BTreeMap<String, Arc<LoadedPolicy>>,
    default_action: Action,
}

impl Default for PolicySet {
    /// Empty, default action `Deny`.
    fn default() -> Self {
        PolicySet::new(Action::Deny)
    }
}

impl PolicySet {
    /// An empty set whose unmatched images get `default_action`.
    pub fn new(default_action: Action) -> PolicySet {
        PolicySet {
            namespaced: BTreeMap::new(),
            cluster: BTreeMap::new(),
            default_action,
        }
    }

    /// The same set with another default action.
    #[must_use]
    pub fn with_default_action(mut self, default_action: Action) -> PolicySet {
        self.default_action = default_action;
        self
    }

    /// The action for images no policy matches.
    pub fn default_action(&self) -> Action {
        self.default_action
    }

    /// Adds `policy`, replacing (and returning) one with the same namespace and name.
    pub fn insert(&mut self, policy: LoadedPolicy) -> Option<Arc<LoadedPolicy>> {
        let name = policy.id.name.clone();
        let policy = Arc::new(policy);
        match policy.id.namespace.clone() {
            Some(namespace) => self
                .namespaced
                .entry(namespace)
                .or_default()
                .insert(name, policy),
            None => self.cluster.insert(name, policy),
        }
    }

    /// Removes the policy `name` of `namespace` (`None`: a cluster policy).
    pub fn remove(&mut self, namespace: Option<&str>, name: &str) -> Option<Arc<LoadedPolicy>> {
        match namespace {
            Some(ns) => {
                let policies = self.namespaced.get_mut(ns)?;
                let removed = policies.remove(name);
                if policies.is_empty() {
                    self.namespaced.remove(ns);
                }
                removed
            }
            None => self.cluster.remove(name),
        }
    }

    /// The policy `name` of `namespace` (`None`: a cluster policy).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<&Arc<LoadedPolicy>> {
        match namespace {
            Some(ns) => self.namespaced.get(ns)?.get(name),
            None => self.cluster.get(name),
        }
    }

    /// Every policy: namespaced ones by namespace and name, then cluster ones by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPolicy>> {
        self.namespaced
            .values()
            .flat_map(BTreeMap::values)
            .chain(self.cluster.values())
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.namespaced.values().map(BTreeMap::len).sum::<usize>() + self.cluster.len()
    }

    /// True when there are no policies.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The policies deciding `image` for a workload in `namespace` (docs/policy-precedence.md):
    /// the most specific namespaced match, else the most specific cluster match, else the
    /// default action; both matches when the cluster one says `namespacedPolicies: Tighten`.
    pub fn select(&self, namespace: &str, image: &ImageRef) -> Selection {
        let namespaced = self
            .namespaced
            .get(namespace)
            .and_then(|policies| best(policies.values(), image));
        let cluster = best(self.cluster.values(), image);
        let one = |(policy, pattern): (&Arc<LoadedPolicy>, &ImagePattern)| Selection::Policy {
            policy: Arc::clone(policy),
            pattern: pattern.as_str().to_owned(),
        };
        match (namespaced, cluster) {
            (Some((ns, ns_pattern)), Some((cl, cl_pattern)))
                if cl.spec.namespaced_policies() == NamespacedPolicies::Tighten =>
            {
                Selection::Both {
                    namespaced: Arc::clone(ns),
                    namespaced_pattern: ns_pattern.as_str().to_owned(),
                    cluster: Arc::clone(cl),
                    cluster_pattern: cl_pattern.as_str().to_owned(),
                }
            }
            (Some(ns), _) => one(ns),
            (None, Some(cl)) => one(cl),
            (None, None) => Selection::Default(self.default_action),
        }
    }
}

impl Extend<LoadedPolicy> for PolicySet {
    fn extend<I: IntoIterator<Item = LoadedPolicy>>(&mut self, iter: I) {
        for policy in iter {
            self.insert(policy);
        }
    }
}

/// The patterns of `spec`, or one error per pattern that does not parse.
fn patterns(spec: &TrustPolicySpec) -> Result<Vec<ImagePattern>, Vec<FieldError>> {
    let mut patterns = Vec::with_capacity(spec.images.len());
    let mut errors = Vec::new();
    for (i, text) in spec.images.iter().enumerate() {
        match ImagePattern::parse(text) {
            Ok(p) => patterns.push(p),
            Err(e) => errors.push(FieldError::new(format!("spec.images[{i}]"), e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(patterns)
    } else {
        Err(errors)
    }
}

/// The most specific match among `policies`; ties by policy name, then pattern text.
fn best<'a>(
    policies: impl Iterator<Item = &'a Arc<LoadedPolicy>>,
    image: &ImageRef,
) -> Option<(&'a Arc<LoadedPolicy>, &'a ImagePattern)> {
    policies
        .filter_map(|policy| policy.best_match(image).map(|pattern| (policy, pattern)))
        .min_by(|(pa, a), (pb, b)| {
            b.specificity()
                .cmp(&a.specificity())
                .then_with(|| pa.id.name.cmp(&pb.id.name))
                .then_with(|| a.as_str().cmp(b.as_str()))
        })
}

#[cfg(test)]
mod tests;
