//! Status write-back of cluster policies. After every rebuild of the set (and every
//! `status_resync` in any case) each policy in the stores is compared with what trustgate
//! observed: `status.observedGeneration` must equal `metadata.generation`, and the `Ready`
//! condition must be `True`/`Valid` or `False`/`Invalid` with the validation message. Only a
//! policy that differs is patched (a JSON merge patch on the `status` subresource carrying the
//! object's `uid` as a precondition, so a re-created namesake is never written), so the task
//! is idempotent and quiet in the steady state; other condition types are kept, and
//! `lastTransitionTime` changes only when the condition's status does.
//!
//! Rate limiting: writes are sequential, at least `status_min_interval` apart. A write that
//! succeeded is not repeated for the same content while the watch catches up; one that failed
//! is logged and tried again, no sooner than `status_retry_after`, on the next change or resync.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::time::Instant;

use crate::policy::crd::{PolicyCondition, TrustPolicyStatus};

use super::{Assessment, Shared, assess_object, object_status, policy_id};

/// The condition type trustgate owns.
pub const READY: &str = "Ready";
/// Longest condition message written (the rest is cut).
const MAX_MESSAGE: usize = 4096;
/// How long a successful write of the same content is not repeated (watch lag).
const WRITTEN_GRACE: Duration = Duration::from_secs(30);

/// Which object: kind, namespace (`None` for cluster policies) and name.
type Key = (&'static str, Option<String>, String);

/// The last write of one object.
struct Attempt {
    uid: Option<String>,
    status: TrustPolicyStatus,
    at: Instant,
    ok: bool,
}

/// One policy whose status is to be written.
struct Work {
    key: Key,
    uid: Option<String>,
    status: TrustPolicyStatus,
}

/// The status task: runs until aborted.
pub(super) async fn run(shared: Arc<Shared>, client: Client) {
    let mut attempts: HashMap<Key, Attempt> = HashMap::new();
    let mut resync = tokio::time::interval(shared.config.status_resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.changed.notified() => {}
            _ = resync.tick() => {}
        }
        let ready = shared
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if ready {
            sync_all(&shared, &client, &mut attempts).await;
        }
    }
}

/// Patches every policy whose status is out of date.
async fn sync_all(shared: &Shared, client: &Client, attempts: &mut HashMap<Key, Attempt>) {
    let work = pending(shared);
    let present: std::collections::HashSet<&Key> = work.iter().map(|(k, _)| k).collect();
    attempts.retain(|k, _| present.contains(k));
    let params = PatchParams {
        field_manager: Some(shared.config.field_manager.clone()),
        ..PatchParams::default()
    };
    let mut last_write: Option<Instant> = None;
    for (_, item) in work {
        let Some(item) = item else { continue };
        if let Some(a) = attempts.get(&item.key) {
            let wait = if a.ok {
                WRITTEN_GRACE
            } else {
                shared.config.status_retry_after
            };
            if a.uid == item.uid && a.status == without_times(&item.status) && a.at.elapsed() < wait
            {
                continue;
            }
        }
        if let Some(at) = last_write {
            tokio::time::sleep_until(at + shared.config.status_min_interval).await;
        }
        last_write = Some(Instant::now());
        let body = json!({"metadata": {"uid": item.uid}, "status": item.status});
        let (kind, namespace, name) = &item.key;
        let result = match namespace {
            Some(ns) => {
                let api: Api<crate::policy::TrustPolicy> = Api::namespaced(client.clone(), ns);
                api.patch_status(name, &params, &Patch::Merge(&body))
                    .await
                    .map(drop)
            }
            None => {
                let api: Api<crate::policy::ClusterTrustPolicy> = Api::all(client.clone());
                api.patch_status(name, &params, &Patch::Merge(&body))
                    .await
                    .map(drop)
            }
        };
        let policy = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        };
        let ok = match result {
            Ok(()) => {
                tracing::debug!(kind, %policy, "policy status written");
                true
            }
            Err(e) => {
                tracing::warn!(kind, %policy, error = %e, "cannot write the policy status; will retry");
                false
            }
        };
        attempts.insert(
            item.key.clone(),
            Attempt {
                status: without_times(&item.status),
                uid: item.uid,
                at: Instant::now(),
                ok,
            },
        );
    }
}

/// Every policy in the stores, with the status to write when it is out of date.
fn pending(shared: &Shared) -> Vec<(Key, Option<Work>)> {
    let trust = shared.trust.state().into_iter().map(|o| (o, false));
    let cluster = shared.cluster.state().into_iter().map(|o| (o, true));
    trust
        .chain(cluster)
        .map(|(object, is_cluster)| {
            let id = policy_id(&object.metadata, is_cluster);
            let key: Key = (id.kind(), id.namespace.clone(), id.name.clone());
            let (_, assessment) = assess_object(id.clone(), &object.data);
            let current = object_status(&object.data);
            let work = desired(current.as_ref(), id.generation, &assessment).map(|status| Work {
                key: key.clone(),
                uid: id.uid.clone(),
                status,
            });
            (key, work)
        })
        .collect()
}

/// The `Ready` condition for an assessment, without `lastTransitionTime`.
pub fn ready_condition(assessment: &Assessment) -> PolicyCondition {
    let (status, reason, message) = match assessment {
        Assessment::Valid => (
            "True",
            "Valid",
            "the policy is valid and in use".to_string(),
        ),
        Assessment::Invalid { message, claims } => (
            "False",
            "Invalid",
            if *claims {
                format!("{message} (the images this policy matches are rejected)")
            } else {
                format!("{message} (no image pattern parses: the policy is ignored)")
            },
        ),
    };
    PolicyCondition {
        type_: READY.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: cut(message, MAX_MESSAGE),
        last_transition_time: None,
    }
}

/// The status to write, or `None` when `current` already says it.
pub fn desired(
    current: Option<&TrustPolicyStatus>,
    generation: Option<i64>,
    assessment: &Assessment,
) -> Option<TrustPolicyStatus> {
    let mut ready = ready_condition(assessment);
    let empty = TrustPolicyStatus::default();
    let current = current.unwrap_or(&empty);
    let existing = current.conditions.iter().find(|c| c.type_ == READY);
    let same_condition = existing.is_some_and(|c| {
        c.status == ready.status && c.reason == ready.reason && c.message == ready.message
    });
    if same_condition && current.observed_generation == generation {
        return None;
    }
    ready.last_transition_time = match existing {
        Some(c) if c.status == ready.status && c.last_transition_time.is_some() => {
            c.last_transition_time.clone()
        }
        _ => Some(now_rfc3339()),
    };
    let mut conditions: Vec<PolicyCondition> = current
        .conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    conditions.insert(0, ready);
    Some(TrustPolicyStatus {
        observed_generation: generation,
        conditions,
    })
}

/// `status` without `lastTransitionTime`s (what decides whether a write is a repeat).
fn without_times(status: &TrustPolicyStatus) -> TrustPolicyStatus {
    let mut s = status.clone();
    for c in &mut s.conditions {
        c.last_transition_time = None;
    }
    s
}

/// The current time as RFC 3339 in UTC, whole seconds (as `metav1.Time` writes it).
fn now_rfc3339() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_status_is_idempotent_and_keeps_transition_times() {
        let valid = Assessment::Valid;
        let first = desired(None, Some(1), &valid).unwrap();
        assert_eq!(first.observed_generation, Some(1));
        assert_eq!(first.conditions[0].status, "True");
        assert_eq!(first.conditions[0].reason, "Valid");
        assert!(first.conditions[0].last_transition_time.is_some());
        assert_eq!(desired(Some(&first), Some(1), &valid), None);

        // A new generation, still valid: the transition time stays.
        let second = desired(Some(&first), Some(2), &valid).unwrap();
        assert_eq!(second.observed_generation, Some(2));
        assert_eq!(
            second.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );

        let invalid = Assessment::Invalid {
            message: "spec.trustRoots[0].publicKey: bad".into(),
            claims: true,
        };
        let mut other = first.clone();
        other.conditions.push(PolicyCondition {
            type_: "Other".into(),
            status: "True".into(),
            ..PolicyCondition::default()
        });
        let third = desired(Some(&other), Some(2), &invalid).unwrap();
        assert_eq!(third.conditions.len(), 2, "other conditions are kept");
        assert_eq!(third.conditions[0].status, "False");
        assert_eq!(third.conditions[0].reason, "Invalid");
        assert_eq!(
            third.conditions[0].message,
            "spec.trustRoots[0].publicKey: bad (the images this policy matches are rejected)"
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = cut("é".repeat(3000), MAX_MESSAGE);
        assert!(s.len() <= MAX_MESSAGE);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
