//! The audit log: one structured line per image decision, on the `trustgate::audit` tracing
//! target. With `--log-format json` each line is one JSON object whose `fields` carry `uid`,
//! `user`, `namespace`, `kind`, `name`, `operation`, `image`, `reference`, `digest`, `policy`,
//! `policy_kind` (as the metrics label it), `verdict`, `allowed`, `reason`, `reason_class`, `signers`, `latency_ms` and `dry_run`
//! (plus `location`: where the image is used in the object).

use std::time::Duration;

use crate::decision::Decision;

use super::context::ReviewContext;

/// The deciding policy as a label: `namespace/name`, `name`, or `default` for the global
/// default action.
pub fn policy_label(d: &Decision) -> &str {
    d.policy.as_deref().unwrap_or("default")
}

/// The tracing target of audit lines (filter with `RUST_LOG=trustgate::audit=info`).
pub const AUDIT_TARGET: &str = "trustgate::audit";

/// Writes the audit line of one decision. `latency` is the time the review spent deciding
/// its images (they are decided concurrently, so every line of a review carries the same).
pub fn decision_line(ctx: &ReviewContext, d: &Decision, location: &str, latency: Duration) {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: AUDIT_TARGET,
        uid = %ctx.uid,
        user = %ctx.user,
        namespace = %ctx.namespace,
        kind = %ctx.kind,
        name = %ctx.name,
        operation = %ctx.operation,
        image = %d.image,
        location = %location,
        reference = d.reference.as_deref().unwrap_or(""),
        digest = d.digest.as_deref().unwrap_or(""),
        policy = policy_label(d),
        policy_kind = super::metrics::policy_labels(d).1,
        verdict = d.verdict(),
        allowed = d.allowed,
        reason = %d.reason,
        reason_class = d.class(),
        signers = %d.signers.join(","),
        latency_ms,
        dry_run = ctx.dry_run,
        "image decision"
    );
}
