//! The decision engine (contract §3): one function from (namespace, image reference, policies,
//! credentials) to a [`Decision`]. `trustgate check` and the webhook both call it, so there is
//! one code path for every verdict. Each image is decided under a deadline; running out of time,
//! or any failure to fetch or verify, rejects the image (fail closed) with a one-line reason.

mod compile;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::metrics::Metrics;
use crate::clock::Clock;
use crate::image::credentials::Credentials;
use crate::image::reference::ImageRef;
use crate::image::registry::Resolver;
use crate::notary::fetch::{HttpSource, NotaryConfig};
use crate::notary::updater::Updater;
use crate::policy::matcher::{LoadedPolicy, PolicySet, Selection};
use crate::policy::{Action, Mode};

pub use compile::{CompiledPolicy, compile};

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_action: Action::Deny,
            deadline: Duration::from_secs(8),
            registry_timeout: Duration::from_secs(5),
            notary_timeout: Duration::from_secs(5),
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
}

/// The engine: a registry resolver, a Notary updater (with its rollback memory), and one HTTP
/// source per Notary set-up, all shared by every decision of the process.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    resolver: Resolver,
    updater: Updater,
    sources: moka::sync::Cache<u64, HttpSource>,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// An engine with its own caches.
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            config,
            resolver: Resolver::default(),
            updater: Updater::new(clock),
            sources: moka::sync::Cache::builder()
                .max_capacity(256)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Uses `metrics` (shared with the webhook and the admin server) instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Engine {
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

    /// Decides one image as contract §3 says, within the configured deadline.
    pub async fn decide(
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
                    reason: e.to_string(),
                    signers: Vec::new(),
                };
            }
        };
        let reference = parsed.normalized();
        let policy = match policies.select(namespace, &parsed) {
            Selection::Default(action) => {
                return rules::default_decision(image, &reference, action);
            }
            Selection::Policy { policy, .. } => policy,
        };
        let id = policy.id.to_string();
        let spec = &policy.spec;
        let mut decision = Decision {
            image: image.to_string(),
            reference: Some(reference.clone()),
            digest: parsed.digest().map(ToString::to_string),
            policy: Some(id.clone()),
            action: spec.action,
            mode: spec.mode,
            allowed: false,
            verified: false,
            reason: String::new(),
            signers: Vec::new(),
        };
        match spec.action {
            Action::Allow => {
                decision.allowed = true;
                decision.verified = true;
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
            self.verify(&parsed, &policy, creds),
        )
        .await
        .unwrap_or_else(|_| {
            Err(rules::Failure::plain(format!(
                "not decided within {:?} (fail closed)",
                self.config.deadline
            )))
        });
        rules::finish(decision, outcome)
    }

    async fn verify(
        &self,
        image: &ImageRef,
        policy: &LoadedPolicy,
        creds: &dyn CredentialSource,
    ) -> Result<rules::Passed, rules::Failure> {
        let compiled = compile(&policy.spec, self.config.registry_timeout)
            .map_err(|e| rules::Failure::plain(format!("policy is invalid: {e}")))?;
        let registry_creds = creds.registry(policy, image.domain());
        let digest = self
            .resolver
            .resolve(image, &compiled.registry, &registry_creds)
            .await
            .map_err(|e| rules::Failure::plain(e.to_string()))?;
        let source = self
            .source(&compiled, creds.notary(policy))
            .map_err(|e| rules::Failure::with_digest(&digest, e.to_string()))?;
        let gun = compiled.gun.clone().unwrap_or_else(|| image.repository());
        let data = self
            .updater
            .load(&source, &gun, &compiled.trust)
            .await
            .map_err(|e| rules::Failure::with_digest(&digest, e.to_string()))?;
        rules::check_signatures(image, &digest, &data, &compiled)
    }

    fn source(
        &self,
        compiled: &CompiledPolicy,
        credentials: Option<(String, String)>,
    ) -> Result<HttpSource, crate::notary::source::FetchError> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&compiled.notary_url, &compiled.notary_ca, &credentials).hash(&mut h);
        self.config.notary_timeout.hash(&mut h);
        let key = h.finish();
        if let Some(s) = self.sources.get(&key) {
            return Ok(s);
        }
        let source = HttpSource::new(NotaryConfig {
            url: compiled.notary_url.clone(),
            ca_pem: compiled.notary_ca.clone(),
            credentials,
            timeout: self.config.notary_timeout,
        })?;
        self.sources.insert(key, source.clone());
        Ok(source)
    }
}
