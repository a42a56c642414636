//! Cluster mode: everything that talks to the Kubernetes API, above the engine and the policy
//! types it feeds.
//!
//! - [`policies`]: the policy source of cluster mode (watches every `TrustPolicy` and
//!   `ClusterTrustPolicy`, rebuilds the policy set, writes their status back).
//! - [`secrets`]: the policies' `credentialsSecret`s and the workloads' pull Secrets (and their
//!   service accounts' `imagePullSecrets`) as per-request credentials.
//! - [`events`]: decisions as `events.k8s.io/v1` Events (the cluster's
//!   [`EventSink`](crate::audit::EventSink)).
//! - [`running`]: the audit of the images of Pods that already run (`trustgate audit`,
//!   `serve --audit-interval`).

pub mod events;
pub mod policies;
pub mod running;
pub mod secrets;

pub use events::{EventConfig, KubeEventSink};
pub use policies::{ClusterPolicyConfig, ClusterPolicySource};
pub use secrets::{SecretConfig, SecretCredentials};
