//! Cluster mode's reads of core Kubernetes objects for the webhook: [`secrets`] turns the
//! policies' `credentialsSecret`s and the workloads' pull Secrets (and their service accounts'
//! `imagePullSecrets`) into per-request credentials. The other cluster-mode pieces live next to
//! what they replace: `policy::cluster` (policies from `TrustPolicy` objects, status write-back)
//! and `audit::kube_events` (decisions as `events.k8s.io/v1` Events).

pub mod secrets;

pub use secrets::{SecretConfig, SecretCredentials};
