//! [`KubeEventSink`]: cluster mode's [`EventSink`], one `events.k8s.io/v1` Event per image
//! decision on the workload object under review, so `kubectl describe` / `kubectl events`
//! show why an image was rejected.
//!
//! * **What:** `type` and `reason` from [`event_kind`] (`Warning ImageRejected`, `Warning
//!   ImageWarned`, `Normal ImageAudited`); admitted images give `Normal ImageVerified` (`Normal
//!   ImageAllowed` for `action: Allow`, `ImageAdmitted` for the default action) only with
//!   `events_for_admitted` (`--events-for-admitted`; off by default to limit volume). The
//!   periodic audit of running Pods posts `Warning RunningImageRejected` (action `Audit`). `regarding`
//!   is the object of the review (`apiVersion`, kind, namespace, name, and uid when the request
//!   carries one; a CREATE has none). `related` is the deciding TrustPolicy or
//!   ClusterTrustPolicy (absent for the default action). `note`: the decision's one-line reason, then the image,
//!   digest, policy and signers, cut to 1 KiB. Cluster-scoped objects get their Events in
//!   `default`. Dry-run reviews record nothing.
//! * **Never blocking the webhook:** `record` only rate-limits and queues; a background task
//!   posts. Rate limit: a token bucket per (object, reason), `burst` tokens refilled one per
//!   `refill_every`. The queue is bounded. What is dropped is counted in
//!   `trustgate_events_dropped_total{reason}`: `rate_limited`, `queue_full`, `api_error`.
//! * **Aggregation:** a decision whose (object, reason, note) was already posted within
//!   `series_window` updates that Event's `series` (count, lastObservedTime) instead of
//!   creating another, as kube's `Recorder` and client-go do.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::mpsc;

use crate::decision::Decision;
use crate::policy::Action;

use crate::audit::context::ReviewContext;
use crate::audit::events::{EventSink, event_kind};
use crate::metrics::Metrics;

/// Longest Event note the API accepts (bytes).
pub const MAX_NOTE: usize = 1024;
/// `action` of every Event.
pub const EVENT_ACTION: &str = "Admission";

/// The `operation` of a [`ReviewContext`] from the periodic audit of running Pods: its
/// rejections are posted as `RunningImageRejected` with action `Audit`.
pub const AUDIT_OPERATION: &str = "AUDIT";

/// Settings of a [`KubeEventSink`].
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// Also record admitted images (`Normal ImageVerified`).
    pub events_for_admitted: bool,
    /// Events one (object, reason) may post in a burst.
    pub burst: u32,
    /// One more event per (object, reason) is allowed this often.
    pub refill_every: Duration,
    /// Events waiting to be posted, at most.
    pub queue: usize,
    /// Rate-limit buckets and series kept, at most.
    pub max_keys: u64,
    /// Identical events within this window update one Event's series.
    pub series_window: Duration,
    /// `reportingController`.
    pub reporting_controller: String,
    /// `reportingInstance` (the pod name, or the host name).
    pub reporting_instance: String,
}

impl Default for EventConfig {
    fn default() -> Self {
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "trustgate".to_string());
        EventConfig {
            events_for_admitted: false,
            burst: 5,
            refill_every: Duration::from_secs(30),
            queue: 512,
            max_keys: 10_000,
            series_window: Duration::from_secs(6 * 60),
            reporting_controller: "trustgate.dev/webhook".to_string(),
            reporting_instance: instance,
        }
    }
}

/// One Event to post.
#[derive(Debug, Clone)]
struct Pending {
    namespace: String,
    regarding: ObjectReference,
    related: Option<ObjectReference>,
    type_: &'static str,
    reason: &'static str,
    note: String,
}

impl Pending {
    /// Identifies the regarded object in rate-limit and series keys.
    fn object_key(&self) -> String {
        let r = &self.regarding;
        format!(
            "{}|{}|{}|{}|{}",
            r.api_version.as_deref().unwrap_or_default(),
            r.kind.as_deref().unwrap_or_default(),
            self.namespace,
            r.name.as_deref().unwrap_or_default(),
            r.uid.as_deref().unwrap_or_default()
        )
    }
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, burst: u32, refill_every: Duration) -> bool {
        let now = Instant::now();
        let refill =
            now.duration_since(self.at).as_secs_f64() / refill_every.as_secs_f64().max(1e-9);
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An Event already posted: where, and how often it happened.
#[derive(Debug)]
struct Series {
    name: String,
    count: i32,
}

/// Posts decisions as Kubernetes Events (see the module docs).
pub struct KubeEventSink {
    config: EventConfig,
    metrics: Arc<Metrics>,
    buckets: moka::sync::Cache<(String, &'static str), Arc<Mutex<Bucket>>>,
    queue: mpsc::Sender<Pending>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for KubeEventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeEventSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KubeEventSink {
    /// A sink posting through `client` from a task on the current tokio runtime (stopped when
    /// the sink is dropped).
    pub fn start(client: Client, config: EventConfig, metrics: Arc<Metrics>) -> KubeEventSink {
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        let idle = config
            .refill_every
            .saturating_mul(config.burst.max(1))
            .max(Duration::from_secs(1));
        let buckets = moka::sync::Cache::builder()
            .max_capacity(config.max_keys)
            .time_to_idle(idle)
            .build();
        let poster = Poster {
            client,
            config: config.clone(),
            metrics: Arc::clone(&metrics),
            series: moka::sync::Cache::builder()
                .max_capacity(config.max_keys)
                .time_to_live(config.series_window)
                .build(),
        };
        let task = tokio::spawn(poster.run(rx));
        KubeEventSink {
            config,
            metrics,
            buckets,
            queue,
            task,
        }
    }

    fn dropped(&self, reason: &str) {
        dropped(&self.metrics, reason);
    }

    /// The Event for one decision, if any.
    fn pending(&self, ctx: &ReviewContext, d: &Decision) -> Option<Pending> {
        let (type_, reason) = match event_kind(d) {
            Some(kind) => kind,
            None if self.config.events_for_admitted => ("Normal", admitted_reason(d)),
            None => return None,
        };
        let reason = if ctx.operation == AUDIT_OPERATION && reason == "ImageRejected" {
            "RunningImageRejected"
        } else {
            reason
        };
        let namespace = if ctx.namespace.is_empty() {
            "default".to_string()
        } else {
            ctx.namespace.clone()
        };
        Some(Pending {
            namespace,
            regarding: ObjectReference {
                api_version: Some(ctx.api_version()),
                kind: Some(ctx.kind.clone()),
                namespace: Some(ctx.namespace.clone()).filter(|n| !n.is_empty()),
                name: Some(ctx.name.clone()),
                uid: ctx.object_uid.clone(),
                ..ObjectReference::default()
            },
            related: d.policy.as_deref().map(policy_reference),
            type_,
            reason,
            note: note(d),
        })
    }
}

impl Drop for KubeEventSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventSink<Decision> for KubeEventSink {
    fn record(&self, ctx: &ReviewContext, decisions: &[Decision]) {
        if ctx.dry_run {
            return;
        }
        for d in decisions {
            let Some(event) = self.pending(ctx, d) else {
                continue;
            };
            let bucket = self
                .buckets
                .get_with((event.object_key(), event.reason), || {
                    Arc::new(Mutex::new(Bucket {
                        tokens: f64::from(self.config.burst),
                        at: Instant::now(),
                    }))
                });
            let allowed = bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(self.config.burst, self.config.refill_every);
            if !allowed {
                self.dropped("rate_limited");
                continue;
            }
            if self.queue.try_send(event).is_err() {
                self.dropped("queue_full");
            }
        }
    }
}

/// The reason of an admitted image's Event.
fn admitted_reason(d: &Decision) -> &'static str {
    match (d.policy.is_some(), d.action) {
        (false, _) => "ImageAdmitted",
        (true, Action::Allow) => "ImageAllowed",
        _ => "ImageVerified",
    }
}

/// The note of a decision's Event: its reason, then image, digest, policy and signers.
pub fn note(d: &Decision) -> String {
    let signers = if d.signers.is_empty() {
        "-".to_string()
    } else {
        d.signers.join(",")
    };
    let text = format!(
        "{} [image={} digest={} policy={} signers={}]",
        d.reason,
        d.image,
        d.digest.as_deref().unwrap_or("-"),
        d.policy.as_deref().unwrap_or("-"),
        signers
    );
    cut(text, MAX_NOTE)
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn dropped(metrics: &Metrics, reason: &str) {
    metrics.event_dropped(reason);
}

/// The background task posting queued Events.
struct Poster {
    client: Client,
    config: EventConfig,
    metrics: Arc<Metrics>,
    series: moka::sync::Cache<(String, &'static str, String), Arc<Mutex<Series>>>,
}

impl Poster {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(event) = rx.recv().await {
            if let Err(e) = self.post(&event).await {
                dropped(&self.metrics, "api_error");
                tracing::warn!(
                    namespace = %event.namespace,
                    reason = event.reason,
                    error = %e,
                    "cannot post an Event"
                );
            }
        }
    }

    /// Creates the Event, or bumps the series of the same Event posted recently.
    async fn post(&self, event: &Pending) -> Result<(), kube::Error> {
        let key = (event.object_key(), event.reason, event.note.clone());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &event.namespace);
        let now = MicroTime(Timestamp::now());
        if let Some(series) = self.series.get(&key) {
            let (name, count) = {
                let mut s = series.lock().unwrap_or_else(PoisonError::into_inner);
                s.count = s.count.saturating_add(1);
                (s.name.clone(), s.count)
            };
            let body = serde_json::json!({
                "series": EventSeries { count, last_observed_time: now.clone() }
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone (expired or deleted): post a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => self.series.invalidate(&key),
                Err(e) => return Err(e),
            }
        }
        let name = event_name(event.regarding.name.as_deref().unwrap_or_default());
        let object = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(event.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(now),
            action: Some(
                if event.reason == "RunningImageRejected" {
                    "Audit"
                } else {
                    EVENT_ACTION
                }
                .to_string(),
            ),
            reason: Some(event.reason.to_string()),
            note: Some(event.note.clone()),
            type_: Some(event.type_.to_string()),
            regarding: Some(event.regarding.clone()),
            related: event.related.clone(),
            reporting_controller: Some(self.config.reporting_controller.clone()),
            reporting_instance: Some(self.config.reporting_instance.clone()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &object).await?;
        self.series
            .insert(key, Arc::new(Mutex::new(Series { name, count: 1 })));
        Ok(())
    }
}

/// The object reference of a deciding policy as decisions name it: `namespace/name` is a
/// TrustPolicy, `name` a ClusterTrustPolicy.
pub fn policy_reference(policy: &str) -> ObjectReference {
    let (kind, namespace, name) = match policy.split_once('/') {
        Some((ns, name)) => (
            crate::policy::crd::TRUST_POLICY_KIND,
            Some(ns.to_string()),
            name,
        ),
        None => (crate::policy::crd::CLUSTER_TRUST_POLICY_KIND, None, policy),
    };
    ObjectReference {
        api_version: Some("trustgate.dev/v1alpha1".to_string()),
        kind: Some(kind.to_string()),
        namespace,
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

/// A unique Event name: the object's name made a valid DNS subdomain, then `.` and a hex
/// timestamp with a process-wide counter.
fn event_name(object: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base: String = object
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    base.truncate(200);
    let base = base.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let base = if base.is_empty() { "trustgate" } else { base };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{base}.{:x}{n:x}",
        Timestamp::now().as_nanosecond().unsigned_abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_refill() {
        let mut b = Bucket {
            tokens: 2.0,
            at: Instant::now(),
        };
        let every = Duration::from_secs(3600);
        assert!(b.take(2, every));
        assert!(b.take(2, every));
        assert!(!b.take(2, every));
        b.at -= every;
        assert!(b.take(2, every));
    }

    #[test]
    fn related_names_the_deciding_policy() {
        let r = policy_reference("shop/shop-images");
        assert_eq!(r.kind.as_deref(), Some("TrustPolicy"));
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.name.as_deref(), Some("shop-images"));
        assert_eq!(r.api_version.as_deref(), Some("trustgate.dev/v1alpha1"));
        let r = policy_reference("default");
        assert_eq!(r.kind.as_deref(), Some("ClusterTrustPolicy"));
        assert_eq!(r.namespace, None);
        assert_eq!(r.name.as_deref(), Some("default"));
    }

    #[test]
    fn event_names_are_dns_subdomains() {
        let n = event_name("Web-5d4f-*");
        let (base, suffix) = n.split_once('.').unwrap();
        assert_eq!(base, "web-5d4f");
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{n}");
        assert!(event_name("*").starts_with("trustgate."));
        assert_ne!(event_name("a"), event_name("a"));
    }

    #[test]
    fn notes_are_cut_to_the_api_limit() {
        assert_eq!(cut("ab".repeat(600), MAX_NOTE).len(), MAX_NOTE);
    }
}
