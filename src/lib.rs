//! trustgate: a Kubernetes admission controller that enforces Docker Content Trust.
//!
//! Module map (what each owns; dependencies point downwards):
//!
//! ```text
//!   cli (main) ─► admission ─► cluster ─► decision ─► policy ──► image   (references, registries)
//!                    │                      │  cache             notary  (TUF fetch + verify)
//!                    ▼                      ▼                    signatures
//!                  audit ──────────────► metrics, record ─────►  limits, clock, json, pem, tls
//! ```
//!
//! - `admission`: HTTPS server, AdmissionReview decoding, image extraction of every pod-template
//!   kind (containers, init/ephemeral containers, image volumes), `/validate` and `/mutate`
//!   responses.
//! - `cluster`: everything of cluster mode that talks to the Kubernetes API: the policy watch
//!   and status writer (`cluster::policies`), credentials from Secrets (`cluster::secrets`),
//!   Events (`cluster::events`) and the audit of running Pods (`cluster::running`).
//! - `decision`: the one engine `check`, `serve` and `audit` share (selection, Tighten, caches).
//! - `cache`: digests, trust data and decisions (bounded moka caches).
//! - `policy`: TrustPolicy / ClusterTrustPolicy types, CRDs, validation, patterns, policies
//!   compiled once, the file policy sources.
//! - `image`, `notary`: registries and Notary v1 trust data (`notary::updater` is the update
//!   chain). They import nothing of the application and no Kubernetes types: they report
//!   through traits they define (`image::observer::RegistryObserver`,
//!   `notary::source::FetchObserver`), which `metrics` implements.
//! - `signatures`: the shared vocabulary of Notation and cosign verification.
//! - `audit`: decision log lines, the `EventSink` seam (log lines standalone), the request
//!   context of a decision. It reads decisions as `record::DecisionRecord`s, so it imports
//!   nothing of `decision`.
//! - `metrics`: every Prometheus family, at the bottom: the engine, the caches, the webhook, TLS
//!   reloads and the policy sources update it; it imports no application layer (decisions come
//!   as `record::DecisionRecord`s, policy sets as `metrics::PolicyGauge` items).
//! - `record`: the `DecisionRecord` trait, what metrics, audit lines and Events read of a
//!   decision (the engine's `decision::Decision` implements it).
//! - `tls`: serving certificates, client CAs, reloads; `limits`: every bound on what is read;
//!   `clock`: the injected clock; `json`, `pem`: low-level checks of untrusted JSON and PEM
//!   bundles shared by every layer.
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
pub mod metrics;
pub mod notary;
pub mod pem;
pub mod policy;
pub mod record;
pub mod roots;
pub mod signatures;
pub mod text;
pub mod tls;
