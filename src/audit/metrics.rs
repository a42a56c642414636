//! Prometheus metrics (prometheus-client, OpenMetrics text). One [`Metrics`] per process, shared
//! as `Arc<Metrics>`; every family is registered under the `trustgate_` prefix.
//!
//! Every label value comes from a bounded set, whatever the input: words trustgate itself
//! chooses are checked against their known values, and values that come from requests or from
//! policies (object kinds, policy names) are kept only up to `LIMITS.metric_label_values`
//! distinct values per label; anything else is counted as `other`. A forged AdmissionReview
//! therefore cannot grow `/metrics`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::limits::LIMITS;

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
const REQUEST_RESULTS: [&str; 5] = ["allowed", "denied", "warned", "error", "patched"];
const DECISION_RESULTS: [&str; 4] = ["admitted", "rejected", "warned", "audited"];
const ROLES: [&str; 5] = ["root", "timestamp", "snapshot", "targets", "delegation"];
const CACHES: [&str; 3] = ["digest", "trust", "decision"];

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
            policies: Bounded::new(&["default"], LIMITS.metric_label_values),
            decision_results: Bounded::new(&DECISION_RESULTS, 0),
            reasons: Bounded::new(&[], words),
            roles: Bounded::new(&ROLES, 0),
            outcomes: Bounded::new(&["ok"], words),
            caches: Bounded::new(&CACHES, 0),
            drops: Bounded::new(&[], words),
        }
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
    /// `allowed`, `denied`, `warned` or `error`.
    pub result: String,
}

/// Labels of per-image decisions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Deciding policy (`ns/name`, `name`, or `default`).
    pub policy: String,
    /// `admitted`, `rejected`, `warned`, `audited`.
    pub result: String,
    /// A short reason class (`verified`, `unsigned`, `digest_mismatch`, `untrusted_root`, ...).
    pub reason: String,
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
    /// `trustgate_image_decisions_total{policy,result,reason}`.
    pub image_decisions: Family<DecisionLabels, Counter>,
    /// `trustgate_notary_fetches_total{role,outcome}`.
    pub notary_fetches: Family<FetchLabels, Counter>,
    /// `trustgate_notary_fetch_duration_seconds{role,outcome}`.
    pub notary_fetch_duration: Family<FetchLabels, Histogram>,
    /// `trustgate_registry_resolutions_total{outcome}`.
    pub registry_resolutions: Family<RegistryLabels, Counter>,
    /// `trustgate_registry_resolution_duration_seconds{outcome}`.
    pub registry_duration: Family<RegistryLabels, Histogram>,
    /// `trustgate_cache_requests_total{cache,result}`.
    pub cache_requests: Family<CacheLabels, Counter>,
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
    labels: Labels,
    /// `trustgate_tls_certificate_expiry_timestamp_seconds`: notAfter (Unix time) of the serving
    /// certificate in use (0 until one is loaded).
    pub tls_certificate_expiry: Gauge,
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
            "Per-image decisions, by deciding policy, result and reason class",
            image_decisions.clone(),
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
        let tls_certificate_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "Expiry (notAfter, Unix time) of the serving certificate in use",
            tls_certificate_expiry.clone(),
        );
        Metrics {
            registry: root,
            admission_requests,
            admission_duration,
            image_decisions,
            notary_fetches,
            notary_fetch_duration,
            registry_resolutions,
            registry_duration,
            cache_requests,
            events_dropped,
            policy_reloads,
            policy_reload_errors,
            tls_reloads,
            tls_reload_errors,
            labels: Labels::new(),
            tls_certificate_expiry,
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

    /// Records one per-image decision.
    pub fn image_decision(&self, policy: &str, result: &str, reason: &str) {
        self.image_decisions
            .get_or_create(&DecisionLabels {
                policy: self.labels.policies.label(policy),
                result: self.labels.decision_results.label(result),
                reason: self.labels.reasons.label(reason),
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
                result: if hit { "hit" } else { "miss" }.to_string(),
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

    #[test]
    fn families_are_prefixed_and_counted() {
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
        assert!(text.contains(r#"trustgate_cache_requests_total{cache="trust",result="hit"} 1"#));
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
                "allowed",
                Duration::ZERO,
            );
            m.notary_fetch(&format!("targets/d{i}"), "ok", Duration::ZERO);
        }
        m.admission_request("Pod", "CREATE", "allowed", Duration::ZERO);
        let text = m.encode();
        assert!(
            text.contains(r#"trustgate_admission_requests_total{kind="other",operation="other",result="allowed"} 1000"#),
            "{text}"
        );
        assert!(text.contains(r#"kind="Pod",operation="CREATE""#), "{text}");
        assert!(text.len() < 20_000, "{} bytes", text.len());
        m.allow_kind("Rollout");
        m.admission_request("Rollout", "CREATE", "allowed", Duration::ZERO);
        assert!(m.encode().contains(r#"kind="Rollout""#));
    }

    #[test]
    fn policy_labels_stop_one_past_the_limit() {
        let m = Metrics::new();
        let cap = LIMITS.metric_label_values;
        for i in 0..=cap {
            m.image_decision(&format!("ns/p{i}"), "admitted", "verified");
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
