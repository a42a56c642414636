//! trustgate: a Kubernetes admission controller that enforces Docker Content Trust.
//!
//! Module map (dependencies point downwards; `image` and `notary` never see Kubernetes types):
//!
//! ```text
//!   main / cli ──► admission (HTTP + AdmissionReview) ──► policy (TrustPolicy, matching)
//!                                  │                           │
//!                                  ▼                           ▼
//!                               audit                image (references, registry)
//!                                                    notary (TUF fetch + verify)
//! ```
//!
//! Cluster mode talks to the Kubernetes API in three places only: `policy::cluster` (watches
//! the policies, writes their status), `cluster` (reads Secrets for credentials) and
//! `audit::kube_events` (posts Events).
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod decision;
pub mod image;
pub mod limits;
pub mod notary;
pub mod policy;
pub mod tls;
