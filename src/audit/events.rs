//! Kubernetes-Event-like records of decisions. The webhook hands every review's decisions to an
//! [`EventSink`]; standalone mode uses [`LogEventSink`] (the events go to the log, target
//! `trustgate::events`), cluster mode posts `events.k8s.io/v1` Events
//! ([`KubeEventSink`](crate::cluster::KubeEventSink)). A sink records nothing for a dry-run review (`ctx.dry_run`): the API
//! server asks webhooks with `sideEffects: None` to have no side effects then.

use crate::record::DecisionRecord;

use super::context::ReviewContext;

/// The tracing target of [`LogEventSink`] lines.
pub const EVENTS_TARGET: &str = "trustgate::events";

/// Receives the decisions `D` of every answered review (including dry runs, which it must not
/// turn into Events). Called after the response is built; it must not block for long. The
/// webhook and the running-Pod audit hold an `EventSink<decision::Decision>`.
pub trait EventSink<D>: Send + Sync {
    /// Records the decisions of one review.
    fn record(&self, ctx: &ReviewContext, decisions: &[D]);
}

/// An Event's `type` and `reason` for a decision, `None` for a plain admission (no Event).
pub fn event_kind<D: DecisionRecord + ?Sized>(d: &D) -> Option<(&'static str, &'static str)> {
    match d.verdict() {
        "REJECTED" => Some(("Warning", "ImageRejected")),
        "WARNED" => Some(("Warning", "ImageWarned")),
        "AUDITED" => Some(("Normal", "ImageAudited")),
        _ => None,
    }
}

/// Standalone sink: one log line per Event that would be emitted (rejections, Warn and Audit
/// admissions of failing images); nothing for admitted images or dry runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEventSink;

impl<D: DecisionRecord> EventSink<D> for LogEventSink {
    fn record(&self, ctx: &ReviewContext, decisions: &[D]) {
        if ctx.dry_run {
            tracing::debug!(target: EVENTS_TARGET, uid = %ctx.uid, "dry run: no events");
            return;
        }
        for d in decisions {
            if let Some((event_type, reason)) = event_kind(d) {
                tracing::info!(
                    target: EVENTS_TARGET,
                    uid = %ctx.uid,
                    object = %ctx.object(),
                    api_version = %ctx.api_version(),
                    event_type,
                    reason,
                    message = d.reason(),
                    "event"
                );
            }
        }
    }
}

/// A sink that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullEventSink;

impl<D> EventSink<D> for NullEventSink {
    fn record(&self, _: &ReviewContext, _: &[D]) {}
}
