//! Prometheus metrics (prometheus-client, OpenMetrics text). One [`Metrics`] per process, shared
//! as `Arc<Metrics>`; every family is registered under the `trustgate_` prefix.
//!
//! Every label value comes from a bounded set, whatever the input: words trustgate itself
//! chooses are checked against their known values, and values that come from requests or from
//! policies (object kinds, policy names) are kept only up to `LIMITS.metric_label_values`
//! distinct values per label; anything else is counted as `other`. A forged AdmissionReview
//! therefore cannot grow `/metrics`.
//!
//! Results use one vocabulary: `admitted`, `rejected`, `warned`, `audited` (and `error`,
//! `patched` for whole requests); cache lookups have an `outcome` of `hit` or `miss`. Image
//! decisions name the deciding policy with `policy` and `policy_kind` (`TrustPolicy`,
//! `ClusterTrustPolicy`, `default` for the global default action with `policy=""`, `none` when
//! no policy could be chosen), and the namespace the decision was for (bounded; turned off with
//! [`Metrics::set_namespace_label`]). `state` holds the gauges (build info, policies, expiries)
//! and `process` the standard `process_*` families.

mod observers;
mod process;
mod state;

pub use process::{ProcessCollector, ProcessStats};
pub use state::{PolicyGauge, RunningLabels, StateMetrics, TRUST_ROLES, TrustExpirySource};

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::limits::LIMITS;
use crate::record::DecisionRecord;

/// The label value of anything outside a label's bounded set.
pub const OTHER: &str = "other";

/// Object kinds trustgate decides out of the box (more are added with [`Metrics::allow_kind`]).
const BUILTIN_KINDS: [&str; 9] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "unknown",
];
const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "unknown"];
const REQUEST_RESULTS: [&str; 5] = ["admitted", "rejected", "warned", "error", "patched"];
const DECISION_RESULTS: [&str; 4] = ["admitted", "rejected", "warned", "audited"];
const ROLES: [&str; 5] = ["root", "timestamp", "snapshot", "targets", "delegation"];
const CACHES: [&str; 4] = ["digest", "trust", "decision", "signatures"];

/// A bounded label: known values, plus at most `cap` others seen first.
#[derive(Debug)]
struct Bounded {
    known: &'static [&'static str],
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

impl Bounded {
    fn new(known: &'static [&'static str], cap: usize) -> Bounded {
        Bounded {
            known,
            cap,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// `value` if it is known or one of the first `cap` others (and not too long), else `other`.
    fn label(&self, value: &str) -> String {
        if self.known.contains(&value) {
            return value.to_string();
        }
        if value.len() > 253 {
            return OTHER.to_string();
        }
        let Ok(mut seen) = self.seen.lock() else {
            return OTHER.to_string();
        };
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() < self.cap {
            seen.insert(value.to_string());
            return value.to_string();
        }
        OTHER.to_string()
    }

    /// Adds `value` to the set whatever the cap (configured values, e.g. `--extra-kind`).
    fn allow(&self, value: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(value.to_string());
        }
    }
}

/// The bounded sets of every free-form label.
#[derive(Debug)]
struct Labels {
    kinds: Bounded,
    operations: Bounded,
    request_results: Bounded,
    policies: Bounded,
    namespaces: Bounded,
    signers: Bounded,
    decision_results: Bounded,
    reasons: Bounded,
    roles: Bounded,
    outcomes: Bounded,
    caches: Bounded,
    drops: Bounded,
}

impl Labels {
    fn new() -> Labels {
        // Words trustgate chooses itself (reason classes, error labels) are a few dozen; the cap
        // only guards against a future caller passing input through.
        let words = 64;
        Labels {
            kinds: Bounded::new(&BUILTIN_KINDS, 0),
            operations: Bounded::new(&OPERATIONS, 0),
            request_results: Bounded::new(&REQUEST_RESULTS, 0),
            policies: Bounded::new(&[""], LIMITS.metric_label_values),
            namespaces: Bounded::new(&[""], LIMITS.metric_label_values),
            signers: Bounded::new(&["targets", "targets/releases"], LIMITS.metric_label_values),
            decision_results: Bounded::new(&DECISION_RESULTS, 0),
            reasons: Bounded::new(&[], words),
            roles: Bounded::new(&ROLES, 0),
            outcomes: Bounded::new(&["ok"], words),
            caches: Bounded::new(&CACHES, 0),
            drops: Bounded::new(&[], words),
        }
    }
}

/// The `policy` and `policy_kind` labels of a decision. The global default action has
/// `policy=""`, which no policy name can take (a namespaced policy's label has a `/`, a
/// cluster policy's is a non-empty object name), so a ClusterTrustPolicy named `default` and
/// the default action never share a series.
pub fn policy_labels<D: DecisionRecord + ?Sized>(d: &D) -> (&str, &'static str) {
    match d.policy() {
        Some(p) if p.contains('/') => (p, "TrustPolicy"),
        Some(p) => (p, "ClusterTrustPolicy"),
        None if d.is_default_action() => ("", "default"),
        None => ("", "none"),
    }
}

/// Buckets (seconds) for request and fetch latencies: 0.5 ms .. 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Labels of admission requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Object kind (`Pod`, `Deployment`, ...).
    pub kind: String,
    /// `CREATE` or `UPDATE`.
    pub operation: String,
    /// `admitted`, `rejected`, `warned`, `error` (or `patched`).
    pub result: String,
}

/// Labels of per-image decisions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Deciding policy (`ns/name`, `name`, or empty for the default action).
    pub policy: String,
    /// `TrustPolicy`, `ClusterTrustPolicy`, `default` (the global default action) or `none`.
    pub policy_kind: String,
    /// Namespace of the workload (empty when the namespace label is turned off).
    pub namespace: String,
    /// `admitted`, `rejected`, `warned`, `audited`.
    pub result: String,
    /// A short reason class (`verified`, `unsigned`, `digest_mismatch`, `untrusted_root`, ...).
    pub reason: String,
}

/// Labels of the signer count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignerLabels {
    /// The signing role that counted (`targets`, `targets/releases`, `targets/alice`, ...).
    pub signer: String,
    /// The deciding policy, as in `trustgate_image_decisions_total`.
    pub policy: String,
}

/// Labels of Notary fetches.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// `root`, `timestamp`, `snapshot`, `targets`, `delegation`.
    pub role: String,
    /// `ok` or an error label (`not_found`, `timeout`, ...).
    pub outcome: String,
}

/// Labels of registry resolutions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    /// `ok` or an error class.
    pub outcome: String,
}

/// Labels of cache lookups.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `digest`, `trust`, `decision`, ...
    pub cache: String,
    /// `hit` or `miss`.
    pub outcome: String,
}

/// Labels of signature-format evaluations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FormatLabels {
    /// `NotaryV1`, `Notation` or `Cosign`.
    pub format: String,
    /// `passed` or `failed`.
    pub result: String,
}

/// Labels of dropped events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Why (`rate_limited`, `api_error`, `queue_full`).
    pub reason: String,
}

/// All of trustgate's metric families.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `trustgate_admission_requests_total{kind,operation,result}`.
    pub admission_requests: Family<RequestLabels, Counter>,
    /// `trustgate_admission_duration_seconds`.
    pub admission_duration: Histogram,
    /// `trustgate_image_decisions_total{policy,policy_kind,namespace,result,reason}`.
    pub image_decisions: Family<DecisionLabels, Counter>,
    /// `trustgate_image_signers_total{signer,policy}`: signer roles that counted towards
    /// admitted, verified images.
    pub image_signers: Family<SignerLabels, Counter>,
    /// `trustgate_notary_fetches_total{role,outcome}`.
    pub notary_fetches: Family<FetchLabels, Counter>,
    /// `trustgate_notary_fetch_duration_seconds{role,outcome}`.
    pub notary_fetch_duration: Family<FetchLabels, Histogram>,
    /// `trustgate_registry_resolutions_total{outcome}`.
    pub registry_resolutions: Family<RegistryLabels, Counter>,
    /// `trustgate_registry_resolution_duration_seconds{outcome}`.
    pub registry_duration: Family<RegistryLabels, Histogram>,
    /// `trustgate_cache_requests_total{cache,outcome}`.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// `trustgate_image_signature_formats_total{format,result}`: each signature format a
    /// decision evaluated (policies with `spec.signatures`), passed or failed.
    pub image_signature_formats: Family<FormatLabels, Counter>,
    /// `trustgate_events_dropped_total{reason}`.
    pub events_dropped: Family<DropLabels, Counter>,
    /// `trustgate_policy_reloads_total`: policy sets (re)loaded from the policy source.
    pub policy_reloads: Counter,
    /// `trustgate_policy_reload_errors_total`: policy loads that failed (the previous set stays).
    pub policy_reload_errors: Counter,
    /// `trustgate_tls_reloads_total`: serving certificates (re)loaded from files.
    pub tls_reloads: Counter,
    /// `trustgate_tls_reload_errors_total`: new certificate/key pairs that were refused.
    pub tls_reload_errors: Counter,
    /// Build info, policies, last reload and expiry gauges.
    pub state: StateMetrics,
    labels: Labels,
    namespace_label: AtomicBool,
    /// `trustgate_images_pinned_total`: image locations `/mutate` rewrote to `tag@digest`.
    pub images_pinned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("trustgate");
        let admission_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReview requests answered, by object kind, operation and result",
            admission_requests.clone(),
        );
        let admission_duration = latency_histogram();
        registry.register(
            "admission_duration_seconds",
            "Time to answer an AdmissionReview",
            admission_duration.clone(),
        );
        let image_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "image_decisions",
            "Per-image decisions, by deciding policy and its kind, namespace, result and reason class",
            image_decisions.clone(),
        );
        let image_signers = Family::<SignerLabels, Counter>::default();
        registry.register(
            "image_signers",
            "Signer roles whose signatures counted for verified images, by signer and policy",
            image_signers.clone(),
        );
        let notary_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "notary_fetches",
            "Notary metadata fetches, by role and outcome",
            notary_fetches.clone(),
        );
        let notary_fetch_duration = Family::<FetchLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "notary_fetch_duration_seconds",
            "Latency of Notary metadata fetches",
            notary_fetch_duration.clone(),
        );
        let registry_resolutions = Family::<RegistryLabels, Counter>::default();
        registry.register(
            "registry_resolutions",
            "Tag-to-digest resolutions against registries, by outcome",
            registry_resolutions.clone(),
        );
        let registry_duration = Family::<RegistryLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "registry_resolution_duration_seconds",
            "Latency of tag-to-digest resolutions",
            registry_duration.clone(),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_requests",
            "Cache lookups, by cache and hit or miss",
            cache_requests.clone(),
        );
        let image_signature_formats = Family::<FormatLabels, Counter>::default();
        registry.register(
            "image_signature_formats",
            "Signature formats evaluated per image decision, by format and passed or failed",
            image_signature_formats.clone(),
        );
        let events_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "events_dropped",
            "Kubernetes Events not emitted, by reason",
            events_dropped.clone(),
        );
        let policy_reloads = Counter::default();
        registry.register(
            "policy_reloads",
            "Policy sets loaded from the policy source",
            policy_reloads.clone(),
        );
        let policy_reload_errors = Counter::default();
        registry.register(
            "policy_reload_errors",
            "Policy loads that failed (the previous policy set stays in force)",
            policy_reload_errors.clone(),
        );
        let tls_reloads = Counter::default();
        registry.register(
            "tls_reloads",
            "Serving certificates loaded from files",
            tls_reloads.clone(),
        );
        let tls_reload_errors = Counter::default();
        registry.register(
            "tls_reload_errors",
            "Certificate/key pairs refused on reload (the previous certificate stays in use)",
            tls_reload_errors.clone(),
        );
        let state = StateMetrics::register(registry);
        let images_pinned = Counter::default();
        registry.register(
            "images_pinned",
            "Image locations rewritten by /mutate to the verified tag@digest",
            images_pinned.clone(),
        );
        root.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry: root,
            admission_requests,
            admission_duration,
            image_decisions,
            image_signers,
            notary_fetches,
            notary_fetch_duration,
            registry_resolutions,
            registry_duration,
            cache_requests,
            image_signature_formats,
            events_dropped,
            policy_reloads,
            policy_reload_errors,
            tls_reloads,
            tls_reload_errors,
            state,
            labels: Labels::new(),
            namespace_label: AtomicBool::new(true),
            images_pinned,
        }
    }

    /// Counts requests for `kind` under its own label (a configured extra kind); other kinds
    /// than the built-in ones and these are counted as `other`.
    pub fn allow_kind(&self, kind: &str) {
        self.labels.kinds.allow(kind);
    }

    /// Records one dropped event.
    pub fn event_dropped(&self, reason: &str) {
        self.events_dropped
            .get_or_create(&DropLabels {
                reason: self.labels.drops.label(reason),
            })
            .inc();
    }

    /// Records one answered AdmissionReview.
    pub fn admission_request(&self, kind: &str, operation: &str, result: &str, elapsed: Duration) {
        self.admission_requests
            .get_or_create(&RequestLabels {
                kind: self.labels.kinds.label(kind),
                operation: self.labels.operations.label(operation),
                result: self.labels.request_results.label(result),
            })
            .inc();
        self.admission_duration.observe(elapsed.as_secs_f64());
    }

    /// Labels decisions with their namespace (the default) or not (`false`: `namespace=""`,
    /// which Prometheus stores as no label), for clusters with very many namespaces.
    pub fn set_namespace_label(&self, on: bool) {
        self.namespace_label.store(on, Ordering::Relaxed);
    }

    /// The `namespace` label value for `namespace`: bounded, or empty when turned off.
    pub fn namespace_label(&self, namespace: &str) -> String {
        if self.namespace_label.load(Ordering::Relaxed) {
            self.labels.namespaces.label(namespace)
        } else {
            String::new()
        }
    }

    /// Records one per-image decision for a workload in `namespace`.
    pub fn image_decision<D: DecisionRecord + ?Sized>(&self, namespace: &str, d: &D) {
        let (policy, policy_kind) = policy_labels(d);
        let namespace = self.namespace_label(namespace);
        let policy = self.labels.policies.label(policy);
        if d.verified() {
            for signer in d.signers() {
                self.image_signers
                    .get_or_create(&SignerLabels {
                        signer: self.labels.signers.label(signer),
                        policy: policy.clone(),
                    })
                    .inc();
            }
        }
        d.each_format(&mut |format, passed| {
            self.image_signature_formats
                .get_or_create(&FormatLabels {
                    format: format.to_owned(),
                    result: if passed { "passed" } else { "failed" }.to_owned(),
                })
                .inc();
        });
        self.image_decisions
            .get_or_create(&DecisionLabels {
                policy,
                policy_kind: policy_kind.to_string(),
                namespace,
                result: self.labels.decision_results.label(d.result()),
                reason: self.labels.reasons.label(d.class()),
            })
            .inc();
    }

    /// Records one Notary fetch.
    pub fn notary_fetch(&self, role: &str, outcome: &str, elapsed: Duration) {
        let labels = FetchLabels {
            role: self.labels.roles.label(role),
            outcome: self.labels.outcomes.label(outcome),
        };
        self.notary_fetches.get_or_create(&labels).inc();
        self.notary_fetch_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one registry resolution.
    pub fn registry_resolution(&self, outcome: &str, elapsed: Duration) {
        let labels = RegistryLabels {
            outcome: self.labels.outcomes.label(outcome),
        };
        self.registry_resolutions.get_or_create(&labels).inc();
        self.registry_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one cache lookup.
    pub fn cache(&self, cache: &str, hit: bool) {
        self.cache_requests
            .get_or_create(&CacheLabels {
                cache: self.labels.caches.label(cache),
                outcome: if hit { "hit" } else { "miss" }.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Decision, ReasonClass};
    use std::sync::Arc;

    #[test]
    fn families_are_prefixed_and_counted() {
        // (cache lookups carry `outcome`, not `result`: one result vocabulary)
        let m = Metrics::new();
        m.notary_fetch("timestamp", "ok", Duration::from_millis(3));
        m.cache("trust", true);
        m.cache("trust", false);
        m.registry_resolution("tag_not_found", Duration::from_millis(1));
        let text = m.encode();
        assert!(
            text.contains(r#"trustgate_notary_fetches_total{role="timestamp",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"trustgate_cache_requests_total{cache="trust",outcome="hit"} 1"#));
        assert!(
            text.contains(r#"trustgate_registry_resolutions_total{outcome="tag_not_found"} 1"#)
        );
        assert!(text.contains("trustgate_admission_duration_seconds"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn forged_label_values_are_counted_as_other() {
        let m = Metrics::new();
        for i in 0..1000 {
            m.admission_request(
                &format!("Forged{i}"),
                &format!("OP{i}"),
                "admitted",
                Duration::ZERO,
            );
            m.notary_fetch(&format!("targets/d{i}"), "ok", Duration::ZERO);
        }
        m.admission_request("Pod", "CREATE", "admitted", Duration::ZERO);
        let text = m.encode();
        assert!(
            text.contains(r#"trustgate_admission_requests_total{kind="other",operation="other",result="admitted"} 1000"#),
            "{text}"
        );
        assert!(text.contains(r#"kind="Pod",operation="CREATE""#), "{text}");
        assert!(text.len() < 20_000, "{} bytes", text.len());
        m.allow_kind("Rollout");
        m.admission_request("Rollout", "CREATE", "admitted", Duration::ZERO);
        assert!(m.encode().contains(r#"kind="Rollout""#));
    }

    fn decided(policy: Option<&str>, class: ReasonClass) -> Decision {
        Decision {
            image: "nginx".into(),
            reference: Some("docker.io/library/nginx:latest".into()),
            digest: None,
            policy: policy.map(str::to_string),
            action: crate::policy::Action::Verify,
            mode: crate::policy::Mode::Enforce,
            allowed: class == ReasonClass::Verified,
            verified: class == ReasonClass::Verified,
            reason_class: class,
            reason: "why".into(),
            signers: Vec::new(),
            formats: None,
        }
    }

    #[test]
    fn default_action_and_a_cluster_policy_named_default_differ() {
        let m = Metrics::new();
        m.image_decision("shop", &decided(None, ReasonClass::DefaultAction));
        m.image_decision("shop", &decided(Some("default"), ReasonClass::Verified));
        m.image_decision(
            "shop",
            &decided(Some("default/default"), ReasonClass::Verified),
        );
        m.image_decision("shop", &decided(None, ReasonClass::BadReference));
        let text = m.encode();
        for series in [
            r#"{policy="",policy_kind="default",namespace="shop",result="rejected",reason="default_action"} 1"#,
            r#"{policy="default",policy_kind="ClusterTrustPolicy",namespace="shop",result="admitted",reason="verified"} 1"#,
            r#"{policy="default/default",policy_kind="TrustPolicy",namespace="shop",result="admitted",reason="verified"} 1"#,
            r#"{policy="",policy_kind="none",namespace="shop",result="rejected",reason="bad_reference"} 1"#,
        ] {
            assert!(
                text.contains(&format!("trustgate_image_decisions_total{series}")),
                "{series} in {text}"
            );
        }
    }

    #[test]
    fn namespace_label_is_bounded_and_can_be_turned_off() {
        let m = Metrics::new();
        let cap = LIMITS.metric_label_values;
        for i in 0..=cap {
            m.image_decision(
                &format!("ns{i}"),
                &decided(Some("p"), ReasonClass::Verified),
            );
        }
        let text = m.encode();
        assert!(text.contains(&format!(r#"namespace="ns{}""#, cap - 1)));
        assert!(
            !text.contains(&format!(r#"namespace="ns{cap}""#)),
            "one past the limit"
        );
        assert!(text.contains(r#"namespace="other""#));
        let m = Metrics::new();
        m.set_namespace_label(false);
        m.image_decision("shop", &decided(Some("p"), ReasonClass::Verified));
        let text = m.encode();
        assert!(
            text.contains(r#"policy="p",policy_kind="ClusterTrustPolicy",namespace="","#),
            "{text}"
        );
    }

    #[test]
    fn state_and_process_families_are_exported() {
        use crate::policy::matcher::{LoadedPolicy, PolicyId, PolicySet};
        let m = Metrics::new();
        let mut set = PolicySet::default();
        let spec: crate::policy::TrustPolicySpec = serde_json::from_value(serde_json::json!({
            "images": ["docker.io/shop/*"], "action": "Allow"
        }))
        .unwrap();
        set.insert(LoadedPolicy::new(PolicyId::cluster("a"), spec.clone()).unwrap());
        set.insert(
            LoadedPolicy::invalid(PolicyId::namespaced("shop", "b"), spec, "bad keys").unwrap(),
        );
        m.state
            .policies_loaded(crate::policy::source::policy_gauges(&set));
        m.state.serving_certificate(1_900_000_000.0);
        m.state
            .set_trust_expiry_source(Arc::new(|| vec![("timestamp", 1_800_000_000.0)]));
        let text = m.encode();
        for line in [
            r#"trustgate_build_info{version=""#,
            r#"trustgate_policies{kind="ClusterTrustPolicy",action="Allow",mode="Enforce",ready="true"} 1"#,
            r#"trustgate_policies{kind="TrustPolicy",action="Allow",mode="Enforce",ready="false"} 1"#,
            "trustgate_serving_certificate_expiry_timestamp_seconds 1900000000",
            r#"trustgate_trust_data_expiry_timestamp_seconds{role="timestamp"} 1800000000"#,
            "trustgate_policy_last_reload_success_timestamp_seconds ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn policy_labels_stop_one_past_the_limit() {
        let m = Metrics::new();
        let cap = LIMITS.metric_label_values;
        for i in 0..=cap {
            m.image_decision(
                "ns",
                &decided(Some(&format!("ns/p{i}")), ReasonClass::Verified),
            );
        }
        let text = m.encode();
        assert!(
            text.contains(&format!(r#"policy="ns/p{}""#, cap - 1)),
            "{text}"
        );
        assert!(
            !text.contains(&format!(r#"policy="ns/p{cap}""#)),
            "one past the limit"
        );
        assert!(text.contains(r#"policy="other""#), "{text}");
    }
}
