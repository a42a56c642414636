//! Auditing what already runs: the images of the cluster's Pods decided against the policies,
//! as `trustgate audit` prints them and as `serve --audit-interval` exports them
//! (`trustgate_running_images{verdict,namespace}`, and an Event on each Pod whose images would
//! now be rejected: a revoked key, expired trust data or a changed policy). Images are read from
//! each Pod's spec with the webhook's own extraction; Pods that finished (`Succeeded`,
//! `Failed`) are skipped.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::Serialize;

use crate::admission::extract::{images_in, pull_identity};
use crate::admission::{CredentialRequest, RequestCredentials};
use crate::cluster::policies::{assess_object, policy_id};
use crate::decision::{Decision, Engine};
use crate::policy::{Action, ClusterTrustPolicy, PolicySet, TrustPolicy};

/// Why the cluster cannot be audited.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Listing Pods or policies failed.
    #[error("listing {what}: {error}")]
    List {
        /// `pods`, `trustpolicies`, `clustertrustpolicies`.
        what: &'static str,
        /// The API error.
        error: kube::Error,
    },
}

/// One image occurrence of a running Pod and its decision.
#[derive(Debug, Clone, Serialize)]
pub struct RunningImage {
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub pod: String,
    /// Where the image is used in the Pod (`spec.containers[0] (name: app)`).
    pub location: String,
    /// The decision (its `image`, `allowed`, `reason`, `policy`, ...).
    pub decision: Decision,
}

/// A Pod to audit: namespace, name and its JSON (for the extraction).
#[derive(Debug, Clone)]
pub struct PodObject {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The Pod as JSON.
    pub object: serde_json::Value,
}

/// Lists the Pods of `namespace` (every namespace when `None`) that have not finished, page by
/// page.
///
/// # Errors
/// The API refused or failed.
pub async fn list_pods(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<PodObject>, AuditError> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.map_err(|error| AuditError::List {
            what: "pods",
            error,
        })?;
        for pod in page.items {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let Ok(object) = serde_json::to_value(&pod) else {
                continue;
            };
            out.push(PodObject {
                namespace,
                name,
                object,
            });
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(out)
}

/// The cluster's TrustPolicy and ClusterTrustPolicy objects as the webhook would use them
/// (invalid ones kept to reject what they match).
///
/// # Errors
/// The API refused or failed (e.g. the CRDs are not installed).
pub async fn cluster_policies(
    client: &Client,
    default_action: Action,
) -> Result<PolicySet, AuditError> {
    let mut set = PolicySet::new(default_action);
    for (resource, cluster, what) in [
        (
            ApiResource::erase::<TrustPolicy>(&()),
            false,
            "trustpolicies",
        ),
        (
            ApiResource::erase::<ClusterTrustPolicy>(&()),
            true,
            "clustertrustpolicies",
        ),
    ] {
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|error| AuditError::List { what, error })?;
        for object in list.items {
            let (policy, _) = assess_object(policy_id(&object.metadata, cluster), &object.data);
            if let Some(policy) = policy {
                set.insert(policy);
            }
        }
    }
    Ok(set)
}

/// Decides every image of every Pod (each image once per Pod; every occurrence reported), with
/// the credentials the webhook would use for the Pod (its pull secrets and service account,
/// the policies' Secrets, in cluster mode).
pub async fn decide_pods(
    engine: &Engine,
    pods: &[PodObject],
    policies: &PolicySet,
    credentials: &dyn RequestCredentials,
) -> Vec<RunningImage> {
    let spec = ["spec".to_string()];
    let mut out = Vec::new();
    for pod in pods {
        let uses = match images_in(&pod.object, &spec) {
            Ok(Some(uses)) => uses,
            Ok(None) | Err(_) => continue,
        };
        let mut images: Vec<String> = Vec::new();
        for u in &uses {
            if !images.contains(&u.image) {
                images.push(u.image.clone());
            }
        }
        let pull = pull_identity(&pod.object, &spec);
        let creds = credentials
            .for_request(CredentialRequest {
                namespace: &pod.namespace,
                image_pull_secrets: &pull.image_pull_secrets,
                service_account: pull.service_account.as_deref(),
            })
            .await;
        let decided = engine
            .decide_all(&pod.namespace, &images, policies, creds.as_ref())
            .await;
        for u in uses {
            let Some(d) = images
                .iter()
                .position(|i| *i == u.image)
                .and_then(|i| decided.get(i))
                .cloned()
            else {
                continue;
            };
            out.push(RunningImage {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                location: u.location,
                decision: d,
            });
        }
    }
    out
}

/// Sets `trustgate_running_images{verdict,namespace}` from one audit's results (the previous
/// audit's series are removed first) and the last-run timestamp.
pub fn export(metrics: &crate::metrics::Metrics, found: &[RunningImage]) {
    use crate::metrics::RunningLabels;
    let gauge = &metrics.state.running_images;
    gauge.clear();
    for r in found {
        gauge
            .get_or_create(&RunningLabels {
                verdict: r.decision.result().to_string(),
                namespace: metrics.namespace_label(&r.namespace),
            })
            .inc();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics.state.audit_last_run.set(now);
}

/// The review context under which a running Pod's rejections are posted as Events (the Pod is
/// the regarded object; operation `AUDIT`, so the Event's reason is `RunningImageRejected`).
pub fn pod_context(pod: &PodObject) -> crate::audit::ReviewContext {
    crate::audit::ReviewContext {
        uid: String::new(),
        user: "trustgate-audit".into(),
        namespace: pod.namespace.clone(),
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
        name: pod.name.clone(),
        object_uid: pod
            .object
            .pointer("/metadata/uid")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
        operation: crate::cluster::events::AUDIT_OPERATION.into(),
        sub_resource: None,
        dry_run: false,
    }
}

/// Settings of the periodic audit.
pub struct PeriodicAudit {
    /// The cluster.
    pub client: Client,
    /// An engine of its own (its decisions are not admission decisions: they do not count in
    /// `trustgate_image_decisions_total`).
    pub engine: Engine,
    /// The policies in force (the webhook's source).
    pub policies: std::sync::Arc<dyn crate::policy::PolicySource>,
    /// Registry and Notary credentials per Pod, as the webhook gets them.
    pub credentials: std::sync::Arc<dyn RequestCredentials>,
    /// Where Events about Pods now rejected go.
    pub events: std::sync::Arc<dyn crate::audit::EventSink<Decision>>,
    /// The process metrics (`trustgate_running_images`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Time between audits.
    pub interval: std::time::Duration,
}

impl PeriodicAudit {
    /// Audits every `interval` (the first time after one interval, once policies are loaded)
    /// until the task is dropped.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.once().await;
        }
    }

    /// One audit: list, decide, export, post Events for rejected images.
    pub async fn once(&self) {
        let Some(policies) = self.policies.current() else {
            tracing::info!("periodic audit skipped: policies are not loaded yet");
            return;
        };
        let pods = match list_pods(&self.client, None).await {
            Ok(pods) => pods,
            Err(e) => {
                tracing::warn!(error = %e, "periodic audit: cannot list pods");
                return;
            }
        };
        let found = decide_pods(&self.engine, &pods, &policies, self.credentials.as_ref()).await;
        export(&self.metrics, &found);
        let mut rejected = 0usize;
        for pod in &pods {
            let decisions: Vec<Decision> = found
                .iter()
                .filter(|r| {
                    r.namespace == pod.namespace && r.pod == pod.name && !r.decision.allowed
                })
                .map(|r| r.decision.clone())
                .collect();
            if !decisions.is_empty() {
                rejected += decisions.len();
                self.events.record(&pod_context(pod), &decisions);
            }
        }
        tracing::info!(
            pods = pods.len(),
            images = found.len(),
            rejected,
            "periodic audit of running pods"
        );
    }
}
