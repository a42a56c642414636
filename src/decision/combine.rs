//! One decision from two: under a `ClusterTrustPolicy` with `namespacedPolicies: Tighten`, an
//! image that a namespaced `TrustPolicy` also matches is decided by both policies, each with its
//! own action, mode and credentials, and [`both`] folds the two results into the one
//! [`Decision`] that every output shows (check, webhook responses, warnings, audit annotations,
//! Events, log lines, metrics).
//!
//! The image is admitted only if both admit it; each policy's `mode` applies to its own failure
//! (a cluster `Enforce` failure rejects, a namespaced `Warn` failure only warns). The result
//! names the policy whose outcome shows: the one that rejected the image (the cluster one if
//! both did); else one that failed under `Warn` (so its warning is given), then under `Audit`
//! (the cluster one first at each step); else the namespaced one. Its reason is followed by the
//! other policy's, on one line. If both resolved the tag and got different digests, the image is
//! rejected: no single digest was admitted by both.

use crate::policy::Mode;

use super::Decision;
use super::rules::ReasonClass;

/// How bad an outcome is: a rejection, a failure admitted with a warning, a failure admitted
/// silently, or a pass.
fn severity(d: &Decision) -> u8 {
    match (d.allowed, d.verified, d.mode) {
        (false, _, _) => 3,
        (true, false, Mode::Warn) => 2,
        (true, false, _) => 1,
        (true, true, _) => 0,
    }
}

/// The other decision's reason without the leading reference (`admitted by policy ...`).
fn tail(d: &Decision) -> &str {
    d.reference
        .as_deref()
        .and_then(|r| d.reason.strip_prefix(r))
        .map_or(d.reason.as_str(), str::trim_start)
}

/// The decision of an image that the cluster policy `cluster` (which says
/// `namespacedPolicies: Tighten`) and the namespaced policy `namespaced` both decided.
pub fn both(cluster: Decision, namespaced: Decision) -> Decision {
    let cluster_name = cluster.policy.clone().unwrap_or_default();
    if let (Some(a), Some(b)) = (&cluster.digest, &namespaced.digest)
        && a != b
    {
        // Each policy resolved the tag on its own and the registry answered differently (the
        // tag moved in between): no one digest was admitted by both. Named after the cluster
        // policy, whose requirement could not be established.
        let reference = cluster
            .reference
            .clone()
            .unwrap_or_else(|| cluster.image.clone());
        let namespaced_name = namespaced.policy.clone().unwrap_or_default();
        return Decision {
            reason: format!(
                "{reference} rejected by policy {cluster_name}: it decided {a} but policy \
                 {namespaced_name} decided {b} (the tag moved while it was checked; fail closed)"
            ),
            allowed: false,
            verified: false,
            mode: Mode::Enforce,
            reason_class: ReasonClass::DigestMismatch,
            ..cluster
        };
    }
    let cluster_shows = severity(&cluster) >= severity(&namespaced) && severity(&cluster) > 0;
    let (mut shown, other) = if cluster_shows {
        (cluster, namespaced)
    } else {
        (namespaced, cluster)
    };
    shown.reason = format!(
        "{}; {} (both apply: ClusterTrustPolicy {cluster_name} has namespacedPolicies: Tighten)",
        shown.reason,
        tail(&other)
    );
    for signer in &other.signers {
        if !shown.signers.contains(signer) {
            shown.signers.push(signer.clone());
        }
    }
    if shown.digest.is_none() {
        shown.digest = other.digest.clone();
    }
    if severity(&shown) == 0 && other.reason_class == ReasonClass::Verified {
        // Both admitted and one of them verified signatures: say so rather than `action_allow`.
        shown.reason_class = ReasonClass::Verified;
    }
    // Already so by the choice of `shown`; kept explicit, as the rule reads.
    shown.allowed = shown.allowed && other.allowed;
    shown.verified = shown.verified && other.verified;
    shown
}
