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
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod decision;
pub mod image;
pub mod notary;
pub mod policy;
pub mod tls;
