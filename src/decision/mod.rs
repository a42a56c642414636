//! The decision engine (docs/policy-reference.md, decision rules): one function from (namespace, image reference, policies,
//! credentials) to a [`Decision`]. `trustgate check` and the webhook both call it, so there is
//! one code path for every verdict. Each image is decided under a deadline; running out of time,
//! or any failure to fetch or verify, rejects the image (fail closed) with a one-line reason
//! and a [`ReasonClass`]. Digests, trust data and decisions are cached as `crate::cache`
//! describes; every decision counts in `trustgate_image_decisions_total{policy,policy_kind,namespace,result,reason}`.
//! Where two policies take part (a `namespacedPolicies: Tighten` cluster policy and a
//! namespaced one), each decides on its own, concurrently, and `combine` makes the one
//! decision shown for the image.
//!
//! The engine selects the deciding policy once, then works with what was compiled when the
//! policy was loaded (`LoadedPolicy::compiled`), asks its [`CredentialSource`] for that policy's
//! credentials, and reaches the registry and the Notary server through the traits of
//! [`backends`] (HTTP by default, in memory in tests: `testing`).

pub mod backends;
mod combine;
pub mod credentials;
mod formats;
mod record;
mod rules;
#[cfg(any(test, feature = "bench-support"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod warm;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cache::{
    CacheConfig, DecisionCache, DigestCache, Key, KeyBuilder, SignatureCache, TrustCache,
    TrustEntry,
};
use crate::clock::Clock;
use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::image::registry::RegistryOptions;
use crate::metrics::Metrics;
use crate::notary::fetch::NotaryConfig;
use crate::policy::formats::SignatureFormat;
use crate::policy::matcher::{LoadedPolicy, PolicySet, Selection};
use crate::policy::{Action, CompiledPolicy, Mode};

pub use backends::{DigestResolver, HttpBackends, NotaryConnector, NotarySource};
pub use credentials::{Anonymous, CredentialSource, PolicyCredentials};
pub use formats::FormatResults;
pub use rules::ReasonClass;
pub use warm::MAX_WARM_SOURCES;

use rules::Failure;

/// The outcome of verifying one digest (what the decision cache keeps).
type Outcome = Result<rules::Passed, rules::Failure>;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Action for images that no policy matches (`Deny` unless configured).
    pub default_action: Action,
    /// Time allowed for deciding one image (credentials + registry + Notary + verification).
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
    /// The signers that counted: NotaryV1 roles (`targets/alice`, or `targets/releases` /
    /// `targets`), Notation certificate subjects, cosign key IDs.
    pub signers: Vec<String>,
    /// Every evaluated signature format's result, for policies that list their formats
    /// (`spec.signatures`); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formats: Option<FormatResults>,
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

/// The engine: a registry resolver and Notary sources (behind [`backends`]'s traits), the
/// digest, trust-data and decision caches (the trust cache's updater keeps the rollback
/// memory), all shared by every decision of the process.
pub struct Engine {
    config: EngineConfig,
    resolver: Arc<dyn DigestResolver>,
    notary: Arc<dyn NotaryConnector>,
    /// Whether `resolver` and `notary` were given ([`Engine::with_backends`]) rather than the
    /// HTTP defaults (which [`Engine::with_metrics`] rebuilds).
    custom_backends: bool,
    digests: DigestCache,
    trust: TrustCache,
    decisions: DecisionCache<Outcome>,
    signatures: SignatureCache,
    /// Turns for Notation and cosign evaluations (`LIMITS.signature_evaluations_at_once`).
    format_permits: Arc<tokio::sync::Semaphore>,
    sources: moka::sync::Cache<Key, NotarySource>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("custom_backends", &self.custom_backends)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with its own caches, reaching registries and Notary servers over HTTP.
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>) -> Engine {
        let metrics = Arc::new(Metrics::new());
        let cache = &config.cache;
        let trust = TrustCache::new(clock.clone(), cache);
        metrics.state.set_trust_expiry_source(trust.expiry_source());
        let http = HttpBackends::new(cache.client_max_entries, metrics.clone());
        Engine {
            resolver: http.resolver(),
            notary: Arc::new(http),
            custom_backends: false,
            digests: DigestCache::new(cache),
            trust,
            decisions: DecisionCache::new(cache),
            signatures: SignatureCache::new(cache),
            format_permits: Arc::new(tokio::sync::Semaphore::new(
                crate::limits::LIMITS.signature_evaluations_at_once,
            )),
            sources: moka::sync::Cache::builder()
                .max_capacity(cache.client_max_entries)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            metrics,
            clock,
            config,
        }
    }

    /// Uses `metrics` (shared with the webhook and the admin server) instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Engine {
        if !self.custom_backends {
            let http = HttpBackends::new(self.config.cache.client_max_entries, metrics.clone());
            self.resolver = http.resolver();
            self.notary = Arc::new(http);
        }
        self.sources.invalidate_all();
        metrics
            .state
            .set_trust_expiry_source(self.trust.expiry_source());
        self.metrics = metrics;
        self
    }

    /// Reaches registries through `resolver` and Notary servers through `notary` instead of
    /// HTTP (tests and benches use in-memory ones).
    pub fn with_backends(
        mut self,
        resolver: Arc<dyn DigestResolver>,
        notary: Arc<dyn NotaryConnector>,
    ) -> Engine {
        self.resolver = resolver;
        self.notary = notary;
        self.custom_backends = true;
        self.sources.invalidate_all();
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

    /// Decides every image concurrently; results come back in input order. Their Notation and
    /// cosign evaluations take turns with every other decision of the engine
    /// (`LIMITS.signature_evaluations_at_once`).
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
            Err(e) => return rules::bad_reference(image, self.config.default_action, &e),
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
            formats: None,
        };
        if let Some(problem) = policy.problem() {
            // An invalid cluster policy rejects what it matches, whatever its action and mode.
            decision.mode = Mode::Enforce;
            let why = format!("the policy is invalid: {problem}");
            return rules::finish(decision, Err(Failure::new(ReasonClass::PolicyInvalid, why)));
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
            Err(Failure::new(
                ReasonClass::Timeout,
                format!(
                    "not decided within {:?} (fail closed)",
                    self.config.deadline
                ),
            ))
        });
        rules::finish(decision, outcome)
    }

    /// Verifies `image` under the `Verify` policy `policy`, in the steps every signature format
    /// shares: the policy's compiled form and credentials, the digest, the decision cache, the
    /// trust data, the signature rules.
    async fn verify(
        &self,
        image: &ImageRef,
        reference: &str,
        policy: &LoadedPolicy,
        creds: &dyn CredentialSource,
    ) -> Outcome {
        // 1. What the policy compiled to when it was loaded, and its credentials.
        let compiled = match policy.compiled() {
            Some(Ok(compiled)) => compiled,
            Some(Err(e)) => return Err(invalid(e)),
            None => return Err(invalid("its action is not Verify")),
        };
        let credentials = creds
            .credentials(policy, image.domain())
            .await
            .map_err(|why| Failure::new(ReasonClass::FetchError, why))?;
        // 2. The digest to verify. A tag the registry has not been asked about yet is resolved
        // while the Notary chain loads (it does not depend on the digest): a cold review costs
        // the longer of the two, not their sum.
        let source_id = self.source_id(compiled, credentials.notary.as_ref());
        let evaluates_v1 = compiled.formats.evaluates(SignatureFormat::NotaryV1);
        let mut early_trust = None;
        let digest = if let Some(digest) = image.digest() {
            digest.clone()
        } else {
            let key = DigestCache::key(image, &compiled.registry, &credentials.registry);
            if evaluates_v1 && !self.digests.contains(&key) {
                // A tag the registry refuses decides at once: the chain is not waited for.
                let digest = self.resolve_digest(image, key, compiled, &credentials.registry);
                let trust = self.trust_of(image, compiled, source_id, credentials.notary.clone());
                tokio::pin!(digest, trust);
                let (digest, trust) = tokio::select! {
                    digest = &mut digest => (digest?, trust.await),
                    trust = &mut trust => (digest.await?, trust),
                };
                early_trust = Some(trust);
                digest
            } else {
                self.resolve_digest(image, key, compiled, &credentials.registry)
                    .await?
            }
        };
        // 3. An outcome kept for this policy, digest and still-current trust data.
        let decision_key = policy
            .fingerprint()
            .map(|p| DecisionCache::<Outcome>::key(p, reference, &digest, &source_id));
        if let Some(key) = &decision_key
            && let Some(outcome) = self.decisions.get(key, &self.trust, &self.metrics).await
        {
            return outcome;
        }
        // 4. The verified trust data, then 5. the signature rules over it (Docker Content
        // Trust alone, as every policy without `spec.signatures`).
        let formats = &compiled.formats;
        if formats.notary_v1_only() && !formats.listed {
            let (trust_key, trust) = self
                .trust_unless_loaded(early_trust, image, compiled, source_id, credentials.notary)
                .await
                .map_err(|(class, why)| Failure::with_digest(class, &digest, why))?;
            let outcome = rules::check_signatures(image, &digest, &trust.data, compiled);
            if let Some(key) = decision_key {
                self.decisions
                    .insert(key, outcome.clone(), trust_key, trust.serial)
                    .await;
            }
            return outcome;
        }
        // 4'. Each format the policy lists, concurrently, then their combination.
        let notary_v1 = async {
            if !formats.evaluates(SignatureFormat::NotaryV1) {
                return None;
            }
            let trust = self
                .trust_unless_loaded(
                    early_trust,
                    image,
                    compiled,
                    source_id,
                    credentials.notary.clone(),
                )
                .await;
            Some(match trust {
                Ok((trust_key, trust)) => (
                    rules::check_signatures(image, &digest, &trust.data, compiled),
                    Some((trust_key, trust.serial)),
                ),
                Err((class, why)) => (Err(Failure::with_digest(class, &digest, why)), None),
            })
        };
        let (notary_v1, others) = futures::join!(
            notary_v1,
            self.new_formats(image, &digest, compiled, &credentials.registry)
        );
        let (tie, mut outcomes) = match notary_v1 {
            Some((outcome, tie)) => (Some(tie), vec![(SignatureFormat::NotaryV1, outcome)]),
            None => (None, Vec::new()),
        };
        outcomes.extend(others);
        outcomes.sort_by_key(|(f, _)| formats.formats.iter().position(|g| g == f));
        let outcome = formats::combine(formats.require, formats.listed, outcomes);
        if let Some(key) = decision_key {
            match tie {
                // Kept as long as the trust data it used is current.
                Some(Some((trust_key, serial))) => {
                    self.decisions
                        .insert(key, outcome.clone(), trust_key, serial)
                        .await;
                }
                // Trust data that could not be had is retried (its cache remembers failures).
                Some(None) => {}
                None => self.decisions.insert_untied(key, outcome.clone()).await,
            }
        }
        outcome
    }

    /// The digest the registry serves for `image`'s tag (cached under `key`).
    async fn resolve_digest(
        &self,
        image: &ImageRef,
        key: Key,
        compiled: &CompiledPolicy,
        credentials: &Credentials,
    ) -> Result<Digest, Failure> {
        // The key names the policy's registry set-up; the engine's timeout is the same for
        // every key, and the options are only built when the registry is asked.
        let resolve = async {
            let options = RegistryOptions {
                timeout: self.config.registry_timeout,
                ..compiled.registry.clone()
            };
            self.resolver.resolve(image, &options, credentials).await
        };
        self.digests
            .resolve(key, resolve, &self.metrics)
            .await
            .map_err(|e| Failure::new(ReasonClass::of_registry(&e), e.to_string()))
    }

    /// `loaded` (the trust data loaded while the tag was resolved), or [`Engine::trust_of`] now.
    async fn trust_unless_loaded(
        &self,
        loaded: Option<TrustOutcome>,
        image: &ImageRef,
        compiled: &CompiledPolicy,
        source_id: Key,
        credentials: Option<(String, String)>,
    ) -> TrustOutcome {
        match loaded {
            Some(trust) => trust,
            None => self.trust_of(image, compiled, source_id, credentials).await,
        }
    }

    /// The verified trust data of `image`'s repository (cached) and its cache key, or the
    /// class and reason of the failure.
    async fn trust_of(
        &self,
        image: &ImageRef,
        compiled: &CompiledPolicy,
        source_id: Key,
        credentials: Option<(String, String)>,
    ) -> TrustOutcome {
        let source = self
            .source(source_id, compiled, credentials)
            .map_err(|e| (ReasonClass::of_fetch(&e), e.to_string()))?;
        let gun = compiled.gun.clone().unwrap_or_else(|| image.repository());
        let trust_key = TrustCache::key_of(&source_id, &gun, &compiled.trust_fingerprint);
        let trust = self
            .trust
            .load(&source, trust_key, &gun, &compiled.trust, &self.metrics)
            .await
            .map_err(|e| (ReasonClass::of_trust(&e), e.to_string()))?;
        Ok((trust_key, trust))
    }

    /// The identity of a Notary set-up: URL, CA bundle, credentials and timeout.
    fn source_id(&self, compiled: &CompiledPolicy, credentials: Option<&(String, String)>) -> Key {
        let b = KeyBuilder::new("source").part(&compiled.notary_fingerprint);
        let b = match credentials {
            None => b.part(b"anonymous"),
            Some((user, password)) => b
                .part(b"basic")
                .part(user.as_bytes())
                .part(password.as_bytes()),
        };
        b.duration(self.config.notary_timeout).finish()
    }

    /// The source of the Notary set-up `key` (opened once, then kept).
    fn source(
        &self,
        key: Key,
        compiled: &CompiledPolicy,
        credentials: Option<(String, String)>,
    ) -> Result<NotarySource, crate::notary::source::FetchError> {
        if let Some(s) = self.sources.get(&key) {
            return Ok(s);
        }
        let source = self.notary.connect(NotaryConfig {
            url: compiled.notary_url.clone(),
            ca_pem: compiled.notary_ca.clone(),
            credentials,
            timeout: self.config.notary_timeout,
        })?;
        self.sources.insert(key, source.clone());
        Ok(source)
    }
}

/// Verified trust data and its cache key, or the class and reason of the failure.
type TrustOutcome = Result<(Key, Arc<TrustEntry>), (ReasonClass, String)>;

/// The failure of a policy that does not compile.
fn invalid(why: &str) -> Failure {
    Failure::new(
        ReasonClass::PolicyInvalid,
        format!("policy is invalid: {why}"),
    )
}
