//! Per-request credentials. The engine asks a [`CredentialSource`] for registry and Notary
//! credentials synchronously; in cluster mode they come from Kubernetes Secrets that depend on
//! the request (the workload's namespace, its `imagePullSecrets` and service account, and the
//! policies deciding its images), so the webhook first asks a [`RequestCredentials`] for a
//! source prepared for this one request, then decides with it.
//!
//! [`FixedCredentials`] is the standalone implementation: the same source for every request
//! (the CLI's docker config and Notary login). The cluster implementation is
//! `cluster::secrets::SecretCredentials`.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::decision::CredentialSource;
use crate::policy::matcher::PolicySet;

/// What one review tells about whose credentials to use.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRequest<'a> {
    /// Namespace of the workload (where its pull secrets and service account live).
    pub namespace: &'a str,
    /// The distinct images to decide.
    pub images: &'a [String],
    /// The PodSpec's `imagePullSecrets` names, in order.
    pub image_pull_secrets: &'a [String],
    /// The PodSpec's service account (`None`: the namespace's `default` account).
    pub service_account: Option<&'a str>,
    /// The policy set the images are decided against.
    pub policies: &'a PolicySet,
}

/// Builds the [`CredentialSource`] for one review. Implementations bound their own time
/// (the webhook's review budget covers this call and the decisions together).
pub trait RequestCredentials: Send + Sync {
    /// The credentials for `request`.
    fn for_request<'a>(
        &'a self,
        request: CredentialRequest<'a>,
    ) -> BoxFuture<'a, Arc<dyn CredentialSource>>;
}

/// The same credentials for every request (standalone mode).
#[derive(Clone)]
pub struct FixedCredentials(pub Arc<dyn CredentialSource>);

impl std::fmt::Debug for FixedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedCredentials")
    }
}

impl RequestCredentials for FixedCredentials {
    fn for_request<'a>(
        &'a self,
        _: CredentialRequest<'a>,
    ) -> BoxFuture<'a, Arc<dyn CredentialSource>> {
        Box::pin(futures::future::ready(Arc::clone(&self.0)))
    }
}
