//! The decision engine (docs/policy-reference.md, decision rules): one function from (namespace, image reference, policies,
//! credentials) to a [`Decision`]. `trustgate check` and the webhook both call it, so there is
//! one code path for every verdict. Each image is decided under a deadline; running out of time,
//! or any failure to fetch or verify, rejects the image (fail closed) with a one-line reason
//! and a [`ReasonClass`]. Digests, trust data and decisions are cached as `crate::cache`
//! describes; every decision counts in `trustgate_image_decisions_total{policy,policy_kind,namespace,result,reason}`.
//! Where two policies take part (a `namespacedPolicies: Tighten` cluster policy and a
//! namespaced one), each decides on its own, concurrently, and `combine` makes the one
//! decision shown for the image.

mod combine;
mod compile;
mod rules;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::metrics::Metrics;
use crate::cache::{CacheConfig, DecisionCache, DigestCache, Key, KeyBuilder, TrustCache};
use crate::clock::Clock;
use crate::image::credentials::Credentials;
use crate::image::reference::ImageRef;
use crate::image::registry::Resolver;
use crate::notary::fetch::{HttpSource, NotaryConfig};
use crate::policy::matcher::{LoadedPolicy, PolicySet, Selection};
use crate::policy::{Action, Mode};

pub use compile::{CompiledPolicy, compile};
pub use rules::ReasonClass;

/// The outcome of verifying one digest (what the decision cache keeps).
type Outcome = Result<rules::Passed, rules::Failure>;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Action for images that no policy matches (contract: `Deny` unless configured).
    pub default_action: Action,
    /// Time allowed for deciding one image (registry + Notary + verification).
    pub deadline: Duration,
    /// Timeout of each registry resolution.
    pub registry_timeout: Duration,
    /// Timeout of each Notary request.
    pub notary_timeout: Duration,
    /// TTLs and bounds of the digest, trust-data and decision caches.
    pub cache: CacheConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_action: Action::Deny,
            deadline: Duration::from_secs(8),
            registry_timeout: Duration::from_secs(5),
            notary_timeout: Duration::from_secs(5),
            cache: CacheConfig::default(),
        }
    }
}

/// Where registry and Notary credentials come from for one request: the CLI gives a docker
/// config file and `NOTARY_AUTH`; the webhook gives the policy's secrets and the pod's pull
/// secrets, fetched before deciding.
pub trait CredentialSource: Send + Sync {
    /// Registry credentials for `registry` (a host) when `policy` decides the image.
    fn registry(&self, policy: &LoadedPolicy, registry: &str) -> Credentials;
    /// Notary credentials (`user`, `password`) for `policy`'s Notary server.
    fn notary(&self, policy: &LoadedPolicy) -> Option<(String, String)>;
    /// Why credentials that `policy` names cannot be had (e.g. its `credentialsSecret` is
    /// missing or unreadable), if so: its images then fail closed with this reason instead of
    /// being tried without them.
    fn problem(&self, _policy: &LoadedPolicy) -> Option<String> {
        None
    }
}

/// No credentials at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn registry(&self, _: &LoadedPolicy, _: &str) -> Credentials {
        Credentials::Anonymous
    }
    fn notary(&self, _: &LoadedPolicy) -> Option<(String, String)> {
        None
    }
}

/// What the engine decided for one image.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    /// The image as written in the workload.
    pub image: String,
    /// The normalised reference (`None` when the image does not parse).
    pub reference: Option<String>,
    /// The digest that was verified (`sha256:...`), when it was resolved.
    pub digest: Option<String>,
    /// The deciding policy (`namespace/name` or `name`), `None` for the global default.
    pub policy: Option<String>,
    /// The deciding action.
    pub action: Action,
    /// The deciding mode.
    pub mode: Mode,
    /// Whether the image is admitted (Warn and Audit failures are admitted).
    pub allowed: bool,
    /// Whether every check passed (false for a Warn/Audit admission of a failing image).
    pub verified: bool,
    /// Why, as a stable class (see [`Decision::class`]).
    pub reason_class: ReasonClass,
    /// Why, in one line.
    pub reason: String,
    /// The signer roles that counted (`targets/alice`, or `targets/releases` / `targets`).
    pub signers: Vec<String>,
}

impl Decision {
    /// The verdict word used in text output, logs and events.
    pub fn verdict(&self) -> &'static str {
        match (self.allowed, self.verified) {
            (false, _) => "REJECTED",
            (true, true) => "ADMITTED",
            (true, false) if self.mode == Mode::Warn => "WARNED",
            (true, false) => "AUDITED",
        }
    }

    /// The verdict as a metric label: `admitted`, `rejected`, `warned` or `audited`.
    pub fn result(&self) -> &'static str {
        match self.verdict() {
            "ADMITTED" => "admitted",
            "REJECTED" => "rejected",
            "WARNED" => "warned",
            _ => "audited",
        }
    }

    /// The reason class as a metric label (`verified`, `unsigned`, `digest_mismatch`, ...).
    pub fn class(&self) -> &'static str {
        self.reason_class.as_str()
    }
}

/// The engine: a registry resolver and a Notary updater (with its rollback memory) behind the
/// digest, trust-data and decision caches, compiled policies and one HTTP source per Notary
/// set-up, all shared by every decision of the process.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    resolver: Resolver,
    digests: DigestCache,
    trust: TrustCache,
    decisions: DecisionCache<Outcome>,
    policies: moka::sync::Cache<Key, Arc<Result<CompiledPolicy, String>>>,
    sources: moka::sync::Cache<Key, HttpSource>,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// An engine with its own caches.
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>) -> Engine {
        let metrics = Arc::new(Metrics::new());
        let cache = &config.cache;
        let trust = TrustCache::new(clock, cache);
        metrics.state.set_trust_expiry_source(trust.expiry_source());
        Engine {
            resolver: Resolver::new(cache.client_max_entries).with_metrics(metrics.clone()),
            digests: DigestCache::new(cache),
            trust,
            decisions: DecisionCache::new(cache),
            policies: moka::sync::Cache::new(cache.policy_max_entries),
            sources: moka::sync::Cache::builder()
                .max_capacity(cache.client_max_entries)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            metrics,
            config,
        }
    }

    /// Uses `metrics` (shared with the webhook and the admin server) instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Engine {
        self.resolver = self.resolver.with_metrics(metrics.clone());
        self.sources.invalidate_all();
        metrics
            .state
            .set_trust_expiry_source(self.trust.expiry_source());
        self.metrics = metrics;
        self
    }

    /// The metrics this engine updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Decides every image concurrently; results come back in input order.
    pub async fn decide_all(
        &self,
        namespace: &str,
        images: &[String],
        policies: &PolicySet,
        creds: &dyn CredentialSource,
    ) -> Vec<Decision> {
        let futures = images
            .iter()
            .map(|image| self.decide(namespace, image, policies, creds));
        futures::future::join_all(futures).await
    }

    /// Decides one image as the decision rules say (docs/policy-reference.md), within the configured deadline, and counts it.
    pub async fn decide(
        &self,
        namespace: &str,
        image: &str,
        policies: &PolicySet,
        creds: &dyn CredentialSource,
    ) -> Decision {
        let d = self
            .decide_uncounted(namespace, image, policies, creds)
            .await;
        self.metrics.image_decision(namespace, &d);
        d
    }

    async fn decide_uncounted(
        &self,
        namespace: &str,
        image: &str,
        policies: &PolicySet,
        creds: &dyn CredentialSource,
    ) -> Decision {
        let parsed = match ImageRef::parse(image) {
            Ok(r) => r,
            Err(e) => {
                return Decision {
                    image: image.to_string(),
                    reference: None,
                    digest: None,
                    policy: None,
                    action: self.config.default_action,
                    mode: Mode::Enforce,
                    allowed: false,
                    verified: false,
                    reason_class: ReasonClass::BadReference,
                    reason: e.to_string(),
                    signers: Vec::new(),
                };
            }
        };
        let reference = parsed.normalized();
        match policies.select(namespace, &parsed) {
            Selection::Default(action) => rules::default_decision(image, &reference, action),
            Selection::Policy { policy, .. } => {
                self.decide_by(image, &parsed, &reference, &policy, creds)
                    .await
            }
            Selection::Both {
                namespaced,
                cluster,
                ..
            } => {
                let (cluster, namespaced) = futures::join!(
                    self.decide_by(image, &parsed, &reference, &cluster, creds),
                    self.decide_by(image, &parsed, &reference, &namespaced, creds),
                );
                combine::both(cluster, namespaced)
            }
        }
    }

    /// The decision of `policy` alone for `image` (parsed, normalised to `reference`).
    async fn decide_by(
        &self,
        image: &str,
        parsed: &ImageRef,
        reference: &str,
        policy: &LoadedPolicy,
        creds: &dyn CredentialSource,
    ) -> Decision {
        let id = policy.id.to_string();
        let spec = &policy.spec;
        let mut decision = Decision {
            image: image.to_string(),
            reference: Some(reference.to_owned()),
            digest: parsed.digest().map(ToString::to_string),
            policy: Some(id.clone()),
            action: spec.action,
            mode: spec.mode,
            allowed: false,
            verified: false,
            reason_class: ReasonClass::ActionDeny,
            reason: String::new(),
            signers: Vec::new(),
        };
        if let Some(problem) = policy.problem() {
            // An invalid cluster policy rejects what it matches, whatever its action and mode.
            decision.mode = Mode::Enforce;
            let why = format!("the policy is invalid: {problem}");
            return rules::finish(
                decision,
                Err(rules::Failure::new(ReasonClass::PolicyInvalid, why)),
            );
        }
        match spec.action {
            Action::Allow => {
                decision.allowed = true;
                decision.verified = true;
                decision.reason_class = ReasonClass::ActionAllow;
                decision.reason = format!("{reference} admitted by policy {id}: action Allow");
                return decision;
            }
            Action::Deny => {
                decision.reason = format!("{reference} rejected by policy {id}: action Deny");
                return decision;
            }
            Action::Verify => {}
        }
        let outcome = tokio::time::timeout(
            self.config.deadline,
            self.verify(parsed, reference, policy, creds),
        )
        .await
        .unwrap_or_else(|_| {
            Err(rules::Failure::new(
                ReasonClass::Timeout,
                format!(
                    "not decided within {:?} (fail closed)",
                    self.config.deadline
                ),
            ))
        });
        rules::finish(decision, outcome)
    }

    async fn verify(
        &self,
        image: &ImageRef,
        reference: &str,
        policy: &LoadedPolicy,
        creds: &dyn CredentialSource,
    ) -> Outcome {
        use rules::Failure;
        let policy_key = policy_key(policy);
        let compiled = match policy_key {
            Some(key) => self.policies.get_with(key, || {
                Arc::new(compile(&policy.spec, self.config.registry_timeout))
            }),
            None => Arc::new(compile(&policy.spec, self.config.registry_timeout)),
        };
        let compiled = compiled.as_ref().as_ref().map_err(|e| {
            Failure::new(
                ReasonClass::PolicyInvalid,
                format!("policy is invalid: {e}"),
            )
        })?;
        if let Some(why) = creds.problem(policy) {
            return Err(Failure::new(ReasonClass::FetchError, why));
        }
        let digest = match image.digest() {
            Some(d) => d.clone(),
            None => {
                let registry_creds = creds.registry(policy, image.domain());
                let key = DigestCache::key(image, &compiled.registry, &registry_creds);
                let resolve = self
                    .resolver
                    .resolve(image, &compiled.registry, &registry_creds);
                self.digests
                    .resolve(key, resolve, &self.metrics)
                    .await
                    .map_err(|e| Failure::new(ReasonClass::of_registry(&e), e.to_string()))?
            }
        };
        let notary_creds = creds.notary(policy);
        let source_id = self.source_id(compiled, notary_creds.as_ref());
        let decision_key =
            policy_key.map(|p| DecisionCache::<Outcome>::key(&p, reference, &digest, &source_id));
        if let Some(key) = &decision_key
            && let Some(outcome) = self.decisions.get(key, &self.trust, &self.metrics).await
        {
            return outcome;
        }
        let source = self
            .source(source_id, compiled, notary_creds)
            .map_err(|e| Failure::with_digest(ReasonClass::of_fetch(&e), &digest, e.to_string()))?;
        let gun = compiled.gun.clone().unwrap_or_else(|| image.repository());
        let trust_key = TrustCache::key(&source_id, &gun, &compiled.trust);
        let trust = self
            .trust
            .load(&source, trust_key, &gun, &compiled.trust, &self.metrics)
            .await
            .map_err(|e| Failure::with_digest(ReasonClass::of_trust(&e), &digest, e.to_string()))?;
        let outcome = rules::check_signatures(image, &digest, &trust.data, compiled);
        if let Some(key) = decision_key {
            self.decisions
                .insert(key, outcome.clone(), trust_key, trust.serial)
                .await;
        }
        outcome
    }

    /// The identity of a Notary set-up: URL, CA bundle, credentials and timeout.
    fn source_id(&self, compiled: &CompiledPolicy, credentials: Option<&(String, String)>) -> Key {
        let b = KeyBuilder::new("source")
            .part(compiled.notary_url.as_bytes())
            .opt(compiled.notary_ca.as_deref());
        let b = match credentials {
            None => b.part(b"anonymous"),
            Some((user, password)) => b
                .part(b"basic")
                .part(user.as_bytes())
                .part(password.as_bytes()),
        };
        b.duration(self.config.notary_timeout).finish()
    }

    fn source(
        &self,
        key: Key,
        compiled: &CompiledPolicy,
        credentials: Option<(String, String)>,
    ) -> Result<HttpSource, crate::notary::source::FetchError> {
        if let Some(s) = self.sources.get(&key) {
            return Ok(s);
        }
        let source = HttpSource::new(NotaryConfig {
            url: compiled.notary_url.clone(),
            ca_pem: compiled.notary_ca.clone(),
            credentials,
            timeout: self.config.notary_timeout,
        })?
        .with_metrics(self.metrics.clone());
        self.sources.insert(key, source.clone());
        Ok(source)
    }
}

/// The identity of a policy as decisions depend on it: its `PolicyId` (namespace, name,
/// generation, uid) and its whole spec. `None` if the spec cannot be serialised (then nothing
/// about the policy is cached).
fn policy_key(policy: &LoadedPolicy) -> Option<Key> {
    let spec = serde_json::to_vec(&policy.spec).ok()?;
    let id = &policy.id;
    Some(
        KeyBuilder::new("policy")
            .opt(id.namespace.as_deref().map(str::as_bytes))
            .part(id.name.as_bytes())
            .opt(
                id.generation
                    .map(i64::to_be_bytes)
                    .as_ref()
                    .map(|g| g.as_slice()),
            )
            .opt(id.uid.as_deref().map(str::as_bytes))
            .part(&spec)
            .finish(),
    )
}
