//! Cluster mode's policy source: [`ClusterPolicySource`] watches every `TrustPolicy` (all
//! namespaces) and `ClusterTrustPolicy` with kube's `reflector` + `watcher`, and rebuilds the
//! [`PolicySet`] (an `Arc` swap) from the two stores after every change. It is ready (its
//! [`PolicySource::current`] is `Some`) only once both initial lists are synced; until then
//! the webhook denies (fail closed) and `/readyz` says why.
//!
//! Every object is checked with [`validate_for`](crate::policy::validate_for) (the CRD's rules
//! plus the parse checks CEL cannot do, such as PEM keys). **Fail closed:** an invalid policy is
//! *not* dropped, which would let its images fall through to a more permissive policy or the
//! default action; it stays in the set as [`LoadedPolicy::invalid`], claiming the images its
//! patterns match, and the engine rejects each of them with `the policy is invalid: <field
//! errors>`, whatever its action and mode. Only a policy none of whose patterns parse can claim
//! nothing and is left out. Either way its status says `Ready=False`.
//!
//! The watches read the objects as `DynamicObject`s and parse each spec on its own, so one
//! object this build cannot parse (say, an enum value added by a newer CRD) cannot stall the
//! whole source: it counts as invalid, claiming the `spec.images` it lists.
//!
//! Status write-back (`status`): a background task patches the status subresource of every
//! policy whose `observedGeneration` or `Ready` condition differs from what trustgate
//! observed. See that module for idempotence, rate limiting and retries. Several replicas
//! compute the same status, so their writes converge (there is no leader election).

mod status;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::Notify;

use crate::metrics::Metrics;

use crate::policy::crd::{
    Action, ClusterTrustPolicy, NamespacedPolicies, TrustPolicy, TrustPolicySpec, TrustPolicyStatus,
};
use crate::policy::matcher::{LoadedPolicy, PolicyId, PolicySet};
use crate::policy::source::PolicySource;
use crate::policy::validate::FieldErrors;

/// Settings of a [`ClusterPolicySource`].
#[derive(Debug, Clone)]
pub struct ClusterPolicyConfig {
    /// Action for images no policy matches (`--default-action`).
    pub default_action: Action,
    /// Write `status` (observedGeneration and the `Ready` condition) back to the policies.
    pub write_status: bool,
    /// How often every policy's status is compared again even without a change (this is also
    /// when failed status writes are retried).
    pub status_resync: Duration,
    /// Least time between two status writes (rate limit).
    pub status_min_interval: Duration,
    /// Least time before a failed status write of the same content is tried again.
    pub status_retry_after: Duration,
    /// Field manager of the status writes.
    pub field_manager: String,
}

impl Default for ClusterPolicyConfig {
    fn default() -> Self {
        ClusterPolicyConfig {
            default_action: Action::Deny,
            write_status: true,
            status_resync: Duration::from_secs(60),
            status_min_interval: Duration::from_millis(50),
            status_retry_after: Duration::from_secs(10),
            field_manager: "trustgate".to_string(),
        }
    }
}

/// What trustgate makes of one policy object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Valid: in the set as written.
    Valid,
    /// Invalid, with the field errors on one line; `claims` is true when it stays in the set to
    /// reject the images it matches.
    Invalid {
        /// The field errors, `; `-separated.
        message: String,
        /// Whether it still claims (and rejects) the images its patterns match.
        claims: bool,
    },
}

/// Validates one policy: the [`LoadedPolicy`] to put in the set (if any) and the assessment.
pub fn assess(id: PolicyId, spec: &TrustPolicySpec) -> (Option<LoadedPolicy>, Assessment) {
    let errors = match LoadedPolicy::checked(id.clone(), spec.clone()) {
        Ok(policy) => return (Some(policy), Assessment::Valid),
        Err(errors) => errors,
    };
    let message = FieldErrors(&errors).to_string();
    let policy = LoadedPolicy::invalid(id, spec.clone(), message.clone());
    let claims = policy.is_some();
    (policy, Assessment::Invalid { message, claims })
}

/// Validates one policy object as the watch delivers it (`data` holds `spec` and `status`):
/// as [`assess`], except that a spec that does not even parse is invalid too, claiming the
/// images of its `spec.images` strings.
pub fn assess_object(id: PolicyId, data: &Value) -> (Option<LoadedPolicy>, Assessment) {
    let spec = data.get("spec").cloned().unwrap_or(Value::Null);
    match serde_path_to_error::deserialize::<_, TrustPolicySpec>(spec) {
        Ok(spec) => assess(id, &spec),
        Err(e) => {
            let message = match e.path().to_string().as_str() {
                "." => format!("spec: {}", e.inner()),
                path => format!("spec.{path}: {}", e.inner()),
            };
            let images = data
                .pointer("/spec/images")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            // A ClusterTrustPolicy that says Tighten keeps tightening while it is broken, so
            // its images fail closed in every namespace (fail closed, not open).
            let namespaced_policies = (data
                .pointer("/spec/namespacedPolicies")
                .and_then(Value::as_str)
                == Some(NamespacedPolicies::Tighten.as_str()))
            .then_some(NamespacedPolicies::Tighten);
            let spec = TrustPolicySpec {
                images,
                namespaced_policies,
                ..TrustPolicySpec::default()
            };
            let policy = LoadedPolicy::invalid(id, spec, message.clone());
            let claims = policy.is_some();
            (policy, Assessment::Invalid { message, claims })
        }
    }
}

/// The `status` of a policy object as the watch delivers it (`None` when absent or malformed).
pub fn object_status(data: &Value) -> Option<TrustPolicyStatus> {
    serde_json::from_value(data.get("status")?.clone()).ok()
}

/// The [`PolicyId`] of a policy object (`cluster`: a `ClusterTrustPolicy`).
pub fn policy_id(meta: &ObjectMeta, cluster: bool) -> PolicyId {
    PolicyId {
        namespace: (!cluster).then(|| meta.namespace.clone().unwrap_or_else(|| "default".into())),
        name: meta.name.clone().unwrap_or_default(),
        generation: meta.generation,
        uid: meta.uid.clone(),
    }
}

/// Which of the two watches an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Trust,
    Cluster,
}

impl Watch {
    fn kind(self) -> &'static str {
        match self {
            Watch::Trust => crate::policy::crd::TRUST_POLICY_KIND,
            Watch::Cluster => crate::policy::crd::CLUSTER_TRUST_POLICY_KIND,
        }
    }
}

/// What a watch event means for the set.
enum Signal {
    /// The store changed (an object applied or deleted, or a re-list completed).
    Changed { synced: bool },
    /// An event that does not change the store yet (a re-list in progress).
    Nothing,
    /// The watch failed; it is retried with backoff.
    Failed(String),
}

fn signal<K>(event: Result<watcher::Event<K>, watcher::Error>) -> Signal {
    match event {
        Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
            Signal::Changed { synced: false }
        }
        Ok(watcher::Event::InitDone) => Signal::Changed { synced: true },
        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Signal::Nothing,
        Err(e) => Signal::Failed(e.to_string()),
    }
}

/// State shared by the source, its watch task and its status task.
struct Shared {
    config: ClusterPolicyConfig,
    metrics: Arc<Metrics>,
    trust: Store<DynamicObject>,
    cluster: Store<DynamicObject>,
    current: RwLock<Option<Arc<PolicySet>>>,
    /// The last watch error of each watch, cleared by its next good event.
    problems: Mutex<[Option<String>; 2]>,
    /// Invalid policies already logged: (`ns/name` or `name`, generation).
    reported: Mutex<HashSet<(String, Option<i64>)>>,
    /// Wakes the status task after a rebuild.
    changed: Notify,
}

/// Policies from the cluster's `TrustPolicy` and `ClusterTrustPolicy` objects (see the module
/// docs). The watch and status tasks stop when the source is dropped.
pub struct ClusterPolicySource {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ClusterPolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPolicySource")
            .field("ready", &self.current().is_some())
            .finish_non_exhaustive()
    }
}

impl ClusterPolicySource {
    /// Starts watching with `client` on the current tokio runtime.
    pub fn start(
        client: Client,
        config: ClusterPolicyConfig,
        metrics: Arc<Metrics>,
    ) -> ClusterPolicySource {
        let trust_resource = ApiResource::erase::<TrustPolicy>(&());
        let cluster_resource = ApiResource::erase::<ClusterTrustPolicy>(&());
        let trust_writer = reflector::store::Writer::<DynamicObject>::new(trust_resource.clone());
        let cluster_writer =
            reflector::store::Writer::<DynamicObject>::new(cluster_resource.clone());
        let (trust, cluster) = (trust_writer.as_reader(), cluster_writer.as_reader());
        let shared = Arc::new(Shared {
            config,
            metrics,
            trust,
            cluster,
            current: RwLock::new(None),
            problems: Mutex::new([None, None]),
            reported: Mutex::new(HashSet::new()),
            changed: Notify::new(),
        });
        let trust_events = reflector::reflector(
            trust_writer,
            watcher(
                Api::<DynamicObject>::all_with(client.clone(), &trust_resource),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .map(|e| (Watch::Trust, signal(e)));
        let cluster_events = reflector::reflector(
            cluster_writer,
            watcher(
                Api::<DynamicObject>::all_with(client.clone(), &cluster_resource),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .map(|e| (Watch::Cluster, signal(e)));
        let events = futures::stream::select(trust_events, cluster_events);
        let mut tasks = vec![tokio::spawn(watch_loop(Arc::clone(&shared), events))];
        if shared.config.write_status {
            tasks.push(tokio::spawn(status::run(Arc::clone(&shared), client)));
        }
        ClusterPolicySource { shared, tasks }
    }

    /// Waits until both initial lists are synced, for at most `timeout`; true when ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.current().is_none() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for ClusterPolicySource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PolicySource for ClusterPolicySource {
    fn current(&self) -> Option<Arc<PolicySet>> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn problem(&self) -> Option<String> {
        let problems = self
            .shared
            .problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let listed: Vec<&str> = problems.iter().flatten().map(String::as_str).collect();
        if listed.is_empty() {
            if self.current().is_none() {
                return Some(
                    "waiting for the initial list of TrustPolicy and ClusterTrustPolicy objects"
                        .into(),
                );
            }
            return None;
        }
        Some(listed.join("; "))
    }
}

/// Consumes both watches: records problems, tracks sync, rebuilds after changes (a burst of
/// ready events is coalesced into one rebuild).
async fn watch_loop(
    shared: Arc<Shared>,
    events: impl futures::Stream<Item = (Watch, Signal)> + Send,
) {
    let mut events = std::pin::pin!(events);
    let mut synced = [false, false];
    while let Some(first) = events.next().await {
        let mut changed = shared.note(first, &mut synced);
        // Coalesce whatever is ready right now.
        for _ in 0..256 {
            match futures::FutureExt::now_or_never(events.next()) {
                Some(Some(event)) => changed |= shared.note(event, &mut synced),
                _ => break,
            }
        }
        if changed && synced == [true, true] {
            shared.rebuild();
        }
    }
    tracing::error!("the policy watches ended; policies are no longer updated");
}

impl Shared {
    /// Applies one event's signal; true when the store changed.
    fn note(&self, (watch, signal): (Watch, Signal), synced: &mut [bool; 2]) -> bool {
        let slot = match watch {
            Watch::Trust => 0,
            Watch::Cluster => 1,
        };
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        match signal {
            Signal::Failed(e) => {
                let message = format!("watching {} objects: {e}", watch.kind());
                if problems[slot].as_deref() != Some(message.as_str()) {
                    self.metrics.policy_reload_errors.inc();
                    tracing::warn!(error = %e, kind = watch.kind(), "policy watch failed; retrying");
                }
                problems[slot] = Some(message);
                false
            }
            Signal::Nothing => {
                problems[slot] = None;
                false
            }
            Signal::Changed { synced: done } => {
                problems[slot] = None;
                if done && !synced[slot] {
                    tracing::info!(kind = watch.kind(), "policy list synced");
                }
                synced[slot] |= done;
                true
            }
        }
    }

    /// Rebuilds the set from both stores and swaps it in.
    fn rebuild(&self) {
        let mut set = PolicySet::new(self.config.default_action);
        let mut invalid = Vec::new();
        let trust = self.trust.state();
        let cluster = self.cluster.state();
        let objects = trust
            .iter()
            .map(|o| (policy_id(&o.metadata, false), &o.data))
            .chain(
                cluster
                    .iter()
                    .map(|o| (policy_id(&o.metadata, true), &o.data)),
            );
        for (id, data) in objects {
            let (policy, assessment) = assess_object(id.clone(), data);
            if let Some(policy) = policy {
                set.insert(policy);
            }
            if let Assessment::Invalid { message, claims } = assessment {
                invalid.push((id, message, claims));
            }
        }
        self.report(&invalid);
        let count = set.len();
        self.metrics
            .state
            .policies_loaded(crate::policy::source::policy_gauges(&set));
        let first = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            let first = current.is_none();
            *current = Some(Arc::new(set));
            first
        };
        self.metrics.policy_reloads.inc();
        tracing::info!(
            policies = count,
            invalid = invalid.len(),
            "{}",
            if first {
                "cluster policies loaded"
            } else {
                "cluster policies updated"
            }
        );
        self.changed.notify_one();
    }

    /// Logs each invalid policy once per generation.
    fn report(&self, invalid: &[(PolicyId, String, bool)]) {
        let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        let now: HashSet<(String, Option<i64>)> = invalid
            .iter()
            .map(|(id, _, _)| (id.to_string(), id.generation))
            .collect();
        for (id, message, claims) in invalid {
            if !reported.contains(&(id.to_string(), id.generation)) {
                tracing::warn!(
                    kind = id.kind(),
                    policy = %id,
                    generation = id.generation,
                    error = %message,
                    "{}",
                    if *claims {
                        "invalid policy: the images it matches are rejected"
                    } else {
                        "invalid policy: none of its image patterns parses, it is ignored"
                    }
                );
            }
        }
        *reported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::crd::{NotarySpec, TrustRoot};

    fn spec(public_key: &str) -> TrustPolicySpec {
        TrustPolicySpec {
            images: vec!["registry.example.com/shop/**".into()],
            notary: Some(NotarySpec {
                url: Some("https://notary.example.com".into()),
                ..Default::default()
            }),
            trust_roots: vec![TrustRoot {
                public_key: Some(public_key.into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn invalid_policies_stay_to_reject_what_they_match() {
        let bad = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
        let (policy, assessment) = assess(PolicyId::namespaced("shop", "p"), &spec(bad));
        let policy = policy.unwrap();
        let Assessment::Invalid { message, claims } = assessment else {
            panic!("{assessment:?}")
        };
        assert!(claims);
        assert!(
            message.starts_with("spec.trustRoots[0].publicKey"),
            "{message}"
        );
        assert_eq!(policy.problem(), Some(message.as_str()));

        let mut unparseable = spec(bad);
        unparseable.images = vec!["[".into()];
        let (policy, assessment) = assess(PolicyId::cluster("c"), &unparseable);
        assert!(policy.is_none());
        assert!(matches!(
            assessment,
            Assessment::Invalid { claims: false, .. }
        ));
    }

    #[test]
    fn unparseable_specs_are_invalid_but_claim_their_images() {
        let data = serde_json::json!({"spec": {
            "images": ["registry.example.com/shop/**"], "mode": "Shadow"
        }});
        let (policy, assessment) = assess_object(PolicyId::cluster("c"), &data);
        let Assessment::Invalid { message, claims } = assessment else {
            panic!("{assessment:?}")
        };
        assert!(claims);
        assert!(
            message.starts_with("spec.mode: unknown variant `Shadow`"),
            "{message}"
        );
        assert_eq!(policy.unwrap().patterns().len(), 1);
        let (policy, _) = assess_object(PolicyId::cluster("c"), &serde_json::json!({}));
        assert!(policy.is_none());
    }

    #[test]
    fn namespaced_policies_is_refused_on_trust_policies_and_kept_when_unparseable() {
        let mut s = spec("x");
        s.trust_roots = vec![TrustRoot {
            key_id: Some("a".repeat(64)),
            ..Default::default()
        }];
        s.namespaced_policies = Some(NamespacedPolicies::Tighten);
        let (_, assessment) = assess(PolicyId::cluster("c"), &s);
        assert_eq!(assessment, Assessment::Valid);
        let (policy, assessment) = assess(PolicyId::namespaced("shop", "p"), &s);
        let Assessment::Invalid { message, claims } = assessment else {
            panic!("{assessment:?}")
        };
        assert!(claims && policy.is_some());
        assert_eq!(
            message,
            "spec.namespacedPolicies: can only be set on a ClusterTrustPolicy"
        );
        // A broken ClusterTrustPolicy that says Tighten keeps tightening (it rejects).
        let data = serde_json::json!({"spec": {
            "images": ["registry.example.com/shop/**"], "mode": "Shadow",
            "namespacedPolicies": "Tighten"
        }});
        let (policy, _) = assess_object(PolicyId::cluster("c"), &data);
        let policy = policy.unwrap();
        assert!(policy.problem().is_some());
        assert_eq!(
            policy.spec.namespaced_policies(),
            NamespacedPolicies::Tighten
        );
    }

    #[test]
    fn valid_policy_is_loaded_as_is() {
        let mut s = spec("x");
        s.trust_roots = vec![TrustRoot {
            key_id: Some("a".repeat(64)),
            ..Default::default()
        }];
        let (policy, assessment) = assess(PolicyId::cluster("c"), &s);
        assert_eq!(assessment, Assessment::Valid);
        assert_eq!(policy.unwrap().problem(), None);
    }
}
