//! Gauges describing trustgate's state rather than counting events: build info, the loaded
//! policies, the last successful policy load, the serving certificate's expiry and the earliest
//! expiry of cached Notary trust data per role class. Every label comes from a fixed set
//! (kinds, actions, modes, role classes), so none of these families can grow with input.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// Role classes of the trust-expiry gauge.
pub const TRUST_ROLES: [&str; 5] = ["root", "timestamp", "snapshot", "targets", "delegation"];

/// Labels of `trustgate_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: String,
    /// Operating system the binary was built for.
    pub os: String,
    /// CPU architecture the binary was built for.
    pub arch: String,
}

/// Labels of `trustgate_policies`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// `TrustPolicy` or `ClusterTrustPolicy`.
    pub kind: String,
    /// `Verify`, `Allow` or `Deny`.
    pub action: String,
    /// `Enforce`, `Warn` or `Audit`.
    pub mode: String,
    /// `true`, or `false` for a policy kept only to reject what it matches (invalid).
    pub ready: String,
}

/// One loaded policy as `trustgate_policies` counts it (the policy layer describes its set
/// with these; metrics know nothing of policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyGauge {
    /// `TrustPolicy` or `ClusterTrustPolicy`.
    pub kind: &'static str,
    /// `Verify`, `Allow` or `Deny`.
    pub action: &'static str,
    /// `Enforce`, `Warn` or `Audit`.
    pub mode: &'static str,
    /// `false` for a policy kept only to reject what it matches (invalid).
    pub ready: bool,
}

/// Labels of `trustgate_running_images`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunningLabels {
    /// `admitted`, `rejected`, `warned` or `audited`: what the webhook would decide now.
    pub verdict: String,
    /// The Pod's namespace (bounded as the decisions' label).
    pub namespace: String,
}

/// Label of `trustgate_trust_data_expiry_timestamp_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    /// `root`, `timestamp`, `snapshot`, `targets` or `delegation`.
    pub role: String,
}

/// Earliest expiry (Unix seconds) of cached trust data per role class, asked at scrape time.
pub type TrustExpirySource = Arc<dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync>;

/// The collector behind `trustgate_trust_data_expiry_timestamp_seconds`: it asks the trust
/// cache (once one is attached) at every scrape, so evicted entries stop counting.
#[derive(Clone, Default)]
struct TrustExpiry {
    source: Arc<Mutex<Option<TrustExpirySource>>>,
}

impl std::fmt::Debug for TrustExpiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustExpiry").finish_non_exhaustive()
    }
}

impl Collector for TrustExpiry {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let source = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(source) = source else {
            return Ok(());
        };
        let values = source();
        if values.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "trust_data_expiry_timestamp_seconds",
            "Earliest expiry (Unix time) of the cached, verified Notary trust data, per role class",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (role, at) in values {
            let labels = RoleLabels {
                role: if TRUST_ROLES.contains(&role) {
                    role
                } else {
                    super::OTHER
                }
                .to_string(),
            };
            ConstGauge::new(at).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The state gauges (see the module docs).
#[derive(Debug)]
pub struct StateMetrics {
    /// `trustgate_build_info{version,os,arch}`: always 1.
    pub build_info: Family<BuildLabels, Gauge>,
    /// `trustgate_policies{kind,action,mode,ready}`: loaded policies.
    pub policies: Family<PolicyLabels, Gauge>,
    /// `trustgate_policy_last_reload_success_timestamp_seconds`.
    pub policy_last_reload: Gauge<f64, AtomicU64>,
    /// `trustgate_running_images{verdict,namespace}`: image occurrences of running Pods by
    /// what the webhook would decide now (the periodic audit, `serve --audit-interval`).
    pub running_images: Family<RunningLabels, Gauge>,
    /// `trustgate_audit_last_run_timestamp_seconds`: when the periodic audit last completed.
    pub audit_last_run: Gauge<f64, AtomicU64>,
    /// `trustgate_admission_budget_seconds`: the time allowed to answer a review (`--budget`),
    /// so latency alerts and panels can compare against it.
    pub admission_budget: Gauge<f64, AtomicU64>,
    /// `trustgate_serving_certificate_expiry_timestamp_seconds` (`notAfter` of the leaf).
    pub serving_certificate_expiry: Gauge<f64, AtomicU64>,
    trust_expiry: TrustExpiry,
}

impl StateMetrics {
    /// Registers every state family: `prefixed` is the `trustgate_` sub-registry, `root` the
    /// top-level one (collectors name their families in full).
    pub(super) fn register(prefixed: &mut Registry) -> StateMetrics {
        let build_info = Family::<BuildLabels, Gauge>::default();
        prefixed.register(
            "build_info",
            "Always 1; the labels describe the running build",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
            })
            .set(1);
        let policies = Family::<PolicyLabels, Gauge>::default();
        prefixed.register(
            "policies",
            "Policies in force, by kind, action, mode and readiness (ready=false: invalid, rejects what it matches)",
            policies.clone(),
        );
        let policy_last_reload = Gauge::<f64, AtomicU64>::default();
        prefixed.register(
            "policy_last_reload_success_timestamp_seconds",
            "Unix time of the last successful policy load",
            policy_last_reload.clone(),
        );
        let running_images = Family::<RunningLabels, Gauge>::default();
        prefixed.register(
            "running_images",
            "Image occurrences of running Pods by what the webhook would decide now (periodic audit)",
            running_images.clone(),
        );
        let audit_last_run = Gauge::<f64, AtomicU64>::default();
        prefixed.register(
            "audit_last_run_timestamp_seconds",
            "Unix time the periodic audit of running Pods last completed",
            audit_last_run.clone(),
        );
        let admission_budget = Gauge::<f64, AtomicU64>::default();
        prefixed.register(
            "admission_budget_seconds",
            "Time allowed to answer an AdmissionReview (--budget)",
            admission_budget.clone(),
        );
        let serving_certificate_expiry = Gauge::<f64, AtomicU64>::default();
        prefixed.register(
            "serving_certificate_expiry_timestamp_seconds",
            "notAfter (Unix time) of the webhook's serving certificate",
            serving_certificate_expiry.clone(),
        );
        let trust_expiry = TrustExpiry::default();
        prefixed.register_collector(Box::new(trust_expiry.clone()));
        StateMetrics {
            build_info,
            policies,
            policy_last_reload,
            running_images,
            audit_last_run,
            admission_budget,
            serving_certificate_expiry,
            trust_expiry,
        }
    }

    /// Records a successful policy load: the policies gauge is rebuilt from `policies` (one
    /// item per loaded policy) and the last-reload timestamp set to now.
    pub fn policies_loaded(&self, policies: impl IntoIterator<Item = PolicyGauge>) {
        self.policies.clear();
        for p in policies {
            self.policies
                .get_or_create(&PolicyLabels {
                    kind: p.kind.to_string(),
                    action: p.action.to_string(),
                    mode: p.mode.to_string(),
                    ready: p.ready.to_string(),
                })
                .inc();
        }
        self.policy_last_reload.set(super::process::unix_now());
    }

    /// Records the `notAfter` of the serving certificate now in use (Unix seconds).
    pub fn serving_certificate(&self, not_after: f64) {
        self.serving_certificate_expiry.set(not_after);
    }

    /// Attaches the trust cache: `source` gives the earliest expiry per role class.
    pub fn set_trust_expiry_source(&self, source: TrustExpirySource) {
        *self
            .trust_expiry
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }
}
