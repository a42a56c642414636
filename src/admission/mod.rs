//! The admission webhook (`trustgate serve`): AdmissionReview in, AdmissionReview out.
//!
//! ```text
//!   server (axum + rustls)  ──►  review::Webhook  ──►  decision::Engine (policies from a PolicySource)
//!     POST /validate, /mutate      │  extract: PodSpec images + locations (KindTable)
//!     admin: /healthz /readyz      │  response: allowed / 403 + message, warnings, auditAnnotations
//!            /metrics              └► audit (log line per image, EventSink), metrics
//! ```
//!
//! * [`extract`]: which kinds carry a PodSpec where, and the images (and pull secrets) in it.
//! * [`credentials`]: per-request registry and Notary credentials ([`RequestCredentials`]).
//! * [`review`]: the decision flow for one request ([`Webhook`]), independent of HTTP.
//! * [`response`]: decisions to an `AdmissionResponse`.
//! * [`mutate`]: `/mutate`'s pinning of verified tags to `tag@digest` (a JSONPatch).
//! * [`server`]: the listeners, TLS and graceful shutdown ([`start`]).
//! * [`wire`]: AdmissionReview bodies to kube's `AdmissionRequest` in one pass.

pub mod credentials;
pub mod extract;
pub mod mutate;
pub mod response;
pub mod review;
pub mod server;
pub mod warm;
pub mod wire;

#[cfg(test)]
mod notary_attacks;

pub use credentials::{CredentialRequest, FixedCredentials, RequestCredentials};
pub use extract::{ExtraKind, ImageUse, KindTable};
pub use review::Webhook;
pub use server::{RunningServer, ServerConfig, ServerError, ShutdownHandle, start};
