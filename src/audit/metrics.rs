//! Prometheus metrics (prometheus-client, OpenMetrics text). One [`Metrics`] per process, shared
//! as `Arc<Metrics>`; every family is registered under the `trustgate_` prefix.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
        let images_pinned = Counter::default();
        registry.register(
            "images_pinned",
            "Image locations rewritten by /mutate to the verified tag@digest",
            images_pinned.clone(),
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
            images_pinned,
        }
    }

    /// Records one answered AdmissionReview.
    pub fn admission_request(&self, kind: &str, operation: &str, result: &str, elapsed: Duration) {
        self.admission_requests
            .get_or_create(&RequestLabels {
                kind: kind.to_string(),
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.admission_duration.observe(elapsed.as_secs_f64());
    }

    /// Records one per-image decision.
    pub fn image_decision(&self, policy: &str, result: &str, reason: &str) {
        self.image_decisions
            .get_or_create(&DecisionLabels {
                policy: policy.to_string(),
                result: result.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records one Notary fetch.
    pub fn notary_fetch(&self, role: &str, outcome: &str, elapsed: Duration) {
        let labels = FetchLabels {
            role: role.to_string(),
            outcome: outcome.to_string(),
        };
        self.notary_fetches.get_or_create(&labels).inc();
        self.notary_fetch_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one registry resolution.
    pub fn registry_resolution(&self, outcome: &str, elapsed: Duration) {
        let labels = RegistryLabels {
            outcome: outcome.to_string(),
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
                cache: cache.to_string(),
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
}
