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

use crate::admission::extract::images_in;
use crate::decision::{CredentialSource, Decision, Engine};
use crate::policy::cluster::{assess_object, policy_id};
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

/// Decides every image of every Pod (each image once per Pod; every occurrence reported).
pub async fn decide_pods(
    engine: &Engine,
    pods: &[PodObject],
    policies: &PolicySet,
    creds: &dyn CredentialSource,
) -> Vec<RunningImage> {
    let spec = ["spec".to_string()];
    let mut out = Vec::new();
    for pod in pods {
        let uses = match images_in(&pod.object, &spec) {
            Ok(Some(uses)) => uses,
            Ok(None) | Err(_) => continue,
        };
        let images: Vec<String> = uses.iter().map(|u| u.image.clone()).collect();
        let decisions = engine
            .decide_all(&pod.namespace, &images, policies, creds)
            .await;
        for (u, d) in uses.into_iter().zip(decisions) {
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
