//! Audit: every decision leaves a trace. `metrics` holds the Prometheus families (under the
//! `trustgate_` prefix) that the webhook, the engine, the caches and the Notary and registry
//! clients update; `log` writes one structured line per image decision; `events` is the
//! [`EventSink`] seam (log in standalone mode, Kubernetes Events in the cluster through
//! `kube_events`); `context` describes the admission request a decision belongs to; `running` audits the images
//! of Pods that already run.

pub mod context;
pub mod events;
pub mod log;

pub use context::ReviewContext;
pub use events::{EventSink, LogEventSink, NullEventSink};
