//! Audit: every decision leaves a trace. `log` writes one structured line per image decision;
//! `events` is the [`EventSink`] seam (log lines in standalone mode; cluster mode posts
//! Kubernetes Events through `cluster::events`); `context` describes the admission request a
//! decision belongs to. Decisions are read as [`DecisionRecord`](crate::record::DecisionRecord)s,
//! so this layer imports nothing of the engine; the Prometheus families are in `metrics`.

pub mod context;
pub mod events;
pub mod log;

pub use context::ReviewContext;
pub use events::{EventSink, LogEventSink, NullEventSink};
