//! trustgate: a Kubernetes admission controller that enforces Docker Content Trust.
//!
//! Module map (what each owns; dependencies point downwards):
//!
//! ```text
//!   cli (main) ─► admission ─► decision ─► policy, cluster ─► image   (references, registries)
//!                    │            │  cache                      notary  (TUF fetch + verify)
//!                    ▼            ▼                             signatures
//!                  audit ─────────┴──────────────────────────►  limits, clock, json, pem, tls
//! ```
//!
//! - `admission`: HTTPS server, AdmissionReview decoding, image extraction of every pod-template
//!   kind (containers, init/ephemeral containers, image volumes), `/validate` and `/mutate`
//!   responses.
//! - `decision`: the one engine `check`, `serve` and `audit` share (selection, Tighten, caches).
//! - `cache`: digests, trust data and decisions (bounded moka caches).
//! - `policy`: TrustPolicy / ClusterTrustPolicy types, CRDs, validation, patterns, policy sources.
//! - `cluster`: cluster mode's credentials (policy and pull Secrets, service accounts).
//! - `image`, `notary`: registries and Notary v1 trust data (`notary::updater` is the update
//!   chain). They import nothing of the application and no Kubernetes types: they report
//!   through traits they define (`image::observer::RegistryObserver`,
//!   `notary::source::FetchObserver`), which `audit::metrics` implements.
//! - `signatures`: the shared vocabulary of Notation and cosign verification.
//! - `audit`: metrics, decision log lines, Events, the running-Pod audit.
//! - `tls`: serving certificates, client CAs, reloads; `limits`: every bound on what is read;
//!   `clock`: the injected clock; `json`, `pem`: low-level checks of untrusted JSON and PEM
//!   bundles shared by every layer.
//!
//! Cluster mode talks to the Kubernetes API in `policy::cluster` (watches the policies, writes
//! their status), `cluster` (reads Secrets), `audit::kube_events` (posts Events) and
//! `audit::running` (lists Pods for the periodic audit).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
