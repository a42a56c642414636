//! Audit: every decision leaves a trace. `metrics` holds the Prometheus families (under the
//! `trustgate_` prefix) that the webhook, the engine, the caches and the Notary and registry
//! clients update.

pub mod metrics;
