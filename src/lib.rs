//! trustgate: a Kubernetes admission controller that enforces Docker Content Trust.
//!
//! Module map (what each owns; dependencies point downwards):
//!
//! ```text
//!   cli (main) ─► admission ─► decision ─► policy      ─► image   (references, registries)
//!                    │            │          cluster       notary  (TUF fetch + verify)
//!                    ▼            ▼                        cache   (bounded moka caches)
//!                  audit ◄────────┘                        limits, clock, tls
//! ```
//!
//! - `admission`: HTTPS server, AdmissionReview decoding, image extraction of every pod-template
//!   kind (containers, init/ephemeral containers, image volumes), `/validate` and `/mutate`
//!   responses.
//! - `decision`: the one engine `check`, `serve` and `audit` share (selection, Tighten, caches).
//! - `policy`: TrustPolicy / ClusterTrustPolicy types, CRDs, validation, patterns, policy sources.
//! - `cluster`: cluster mode's credentials (policy and pull Secrets, service accounts).
//! - `image`, `notary`: registries and Notary v1 trust data; no Kubernetes types. They still
//!   report to `audit::metrics` and take TLS settings from `tls` (to be cut to traits).
//! - `cache`: digests, trust data and decisions; `limits`: every bound on what is read;
//!   `clock`: the injected clock; `tls`: serving certificates, client CAs, reloads.
//! - `audit`: metrics, decision log lines, Events, the running-Pod audit.
//!
//! Cluster mode talks to the Kubernetes API in `policy::cluster` (watches the policies, writes
//! their status), `cluster` (reads Secrets), `audit::kube_events` (posts Events) and
//! `audit::running` (lists Pods for the periodic audit).
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod decision;
pub mod image;
pub mod json;
pub mod limits;
pub mod notary;
pub mod pem;
pub mod policy;
pub mod signatures;
pub mod tls;
