//! The audit log: one structured line per image decision, on the `trustgate::audit` tracing
//! target. With `--log-format json` each line is one JSON object whose `fields` carry `uid`,
//! `user`, `namespace`, `kind`, `name`, `operation`, `image`, `reference`, `digest`, `policy`,
//! `policy_kind` (as the metrics label it), `verdict`, `allowed`, `reason`, `reason_class`, `signers`, `latency_ms` and `dry_run`
//! (plus `location`: where the image is used in the object).

use std::time::Duration;

use crate::record::DecisionRecord;

use super::context::ReviewContext;

/// The deciding policy as a label: `namespace/name`, `name`, or `default` for the global
/// default action.
pub fn policy_label<D: DecisionRecord + ?Sized>(d: &D) -> &str {
    d.policy().unwrap_or("default")
}

/// The tracing target of audit lines (filter with `RUST_LOG=trustgate::audit=info`).
pub const AUDIT_TARGET: &str = "trustgate::audit";

/// Which image decisions get an audit line (`serve --log-decisions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogDecisions {
    /// Every decision (the default: auditors rely on it).
    #[default]
    All,
    /// Only decisions that did not admit the image (`allowed: false`).
    Rejected,
    /// No decision lines (metrics and Events still record them).
    None,
}

impl LogDecisions {
    /// Whether `d` gets a line, before the `RUST_LOG` filter (cheap: nothing is formatted for
    /// a decision that gets none).
    pub fn wants<D: DecisionRecord + ?Sized>(self, d: &D) -> bool {
        self.selects(d) && tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO)
    }

    /// Whether the setting selects `d` (regardless of `RUST_LOG`).
    pub fn selects<D: DecisionRecord + ?Sized>(self, d: &D) -> bool {
        match self {
            LogDecisions::All => true,
            LogDecisions::Rejected => !d.allowed(),
            LogDecisions::None => false,
        }
    }
}

/// `a,b,c` without building the joined string.
struct Joined<'a>(&'a [String]);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// Writes the audit line of one decision. `latency` is the time the review spent deciding
/// its images (they are decided concurrently, so every line of a review carries the same).
/// String fields are recorded as `&str` (no `Display` round trip); only `signers` is formatted.
pub fn decision_line<D: DecisionRecord + ?Sized>(
    ctx: &ReviewContext,
    d: &D,
    location: &str,
    latency: Duration,
) {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: AUDIT_TARGET,
        uid = ctx.uid.as_str(),
        user = ctx.user.as_str(),
        namespace = ctx.namespace.as_str(),
        kind = ctx.kind.as_str(),
        name = ctx.name.as_str(),
        operation = ctx.operation.as_str(),
        image = d.image(),
        location,
        reference = d.reference().unwrap_or(""),
        digest = d.digest().unwrap_or(""),
        policy = policy_label(d),
        policy_kind = crate::metrics::policy_labels(d).1,
        verdict = d.verdict(),
        allowed = d.allowed(),
        reason = d.reason(),
        reason_class = d.class(),
        signers = %Joined(d.signers()),
        latency_ms,
        dry_run = ctx.dry_run,
        "image decision"
    );
}

#[cfg(test)]
mod tests {
    use super::{Joined, LogDecisions};
    use crate::decision::{Decision, ReasonClass};
    use crate::policy::{Action, Mode};

    #[test]
    fn log_decisions_selects_by_setting() {
        let mut d = Decision {
            image: "a:1".into(),
            reference: None,
            digest: None,
            policy: None,
            action: Action::Verify,
            mode: Mode::Enforce,
            allowed: true,
            verified: true,
            reason_class: ReasonClass::Verified,
            reason: "signed".into(),
            signers: vec![],
            formats: None,
        };
        assert!(LogDecisions::All.selects(&d));
        assert!(!LogDecisions::Rejected.selects(&d));
        assert!(!LogDecisions::None.selects(&d));
        d.allowed = false;
        assert!(LogDecisions::Rejected.selects(&d));
        assert!(!LogDecisions::None.selects(&d));
    }

    #[test]
    fn signers_join_with_commas() {
        let s = ["a".to_string(), "b".to_string()];
        assert_eq!(Joined(&s).to_string(), "a,b");
        assert_eq!(Joined(&[]).to_string(), "");
    }
}
