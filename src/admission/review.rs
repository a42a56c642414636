//! [`Webhook`]: one AdmissionRequest in, one AdmissionResponse out, with no HTTP in sight.
//!
//! 1. Only CREATE and UPDATE of a kind in the [`KindTable`] are checked (the main resource, or
//!    the `pods/ephemeralcontainers` subresource); anything else is admitted with a log line and
//!    a `summary` audit annotation saying why.
//! 2. The images of the object's PodSpec are extracted with their locations; on UPDATE only the
//!    images that the old object does not use are checked, so an UPDATE that changes no image
//!    is admitted without checks.
//! 3. The distinct images are decided by the [`Engine`] against the current policy set, with
//!    credentials from the source the [`RequestCredentials`] binds to this request, asked per
//!    selected policy (cluster mode reads the policies' and the PodSpec's pull Secrets then),
//!    within the budget (the engine's per-image deadline; binding the credentials and
//!    `decide_all` together are also wrapped in a timeout slightly above it, and running out
//!    denies every image: fail closed).
//! 4. Every decision gets an audit log line and a metric sample; the decisions go to the
//!    [`EventSink`] (with `dry_run` set for dry runs, which must produce no Events); the response
//!    is built by [`response::respond`](super::response::respond).
//! 5. `/mutate` ([`Webhook::mutate`]) runs the same flow; its reasons name the pinned reference
//!    and an admitted response gets the pinning patch ([`super::mutate`]). Pod templates are
//!    pinned only with `with_pin_templates(true)`; otherwise `/mutate` admits them unchecked and
//!    leaves them to `/validate`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::audit::context::ReviewContext;
use crate::audit::events::{EventSink, LogEventSink};
use crate::audit::log::{LogDecisions, decision_line};
use crate::decision::{Anonymous, CredentialSource, Decision, Engine, ReasonClass};
use crate::image::reference::ImageRef;
use crate::metrics::Metrics;
use crate::policy::source::PolicySource;
use crate::policy::{Action, Mode};

use super::credentials::{CredentialRequest, FixedCredentials, RequestCredentials};
use super::extract::{ImageUse, KindTable, images_in, pull_identity};
use super::mutate;
use super::response::{Checked, not_checked, refuse, respond};

/// How far above the budget the whole review's decisions may run before they are abandoned.
pub const BUDGET_MARGIN: Duration = Duration::from_millis(500);

/// The subresource of pods whose UPDATE adds ephemeral containers.
pub const EPHEMERAL_CONTAINERS: &str = "ephemeralcontainers";

/// The admission logic: engine, policies, credentials, event sink, kinds and budget.
pub struct Webhook {
    pub(super) engine: Arc<Engine>,
    pub(super) policies: Arc<dyn PolicySource>,
    pub(super) credentials: Arc<dyn RequestCredentials>,
    events: Arc<dyn EventSink<Decision>>,
    metrics: Arc<Metrics>,
    kinds: KindTable,
    budget: Duration,
    pin_templates: bool,
    log_decisions: LogDecisions,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("kinds", &self.kinds)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook deciding with `engine` (whose metrics it shares and whose per-image deadline
    /// is the budget) over `policies`, with anonymous credentials, log events and the built-in
    /// kinds.
    pub fn new(engine: Arc<Engine>, policies: Arc<dyn PolicySource>) -> Webhook {
        let metrics = Arc::clone(engine.metrics());
        let budget = engine.config().deadline;
        metrics.state.admission_budget.set(budget.as_secs_f64());
        Webhook {
            engine,
            policies,
            credentials: Arc::new(FixedCredentials(Arc::new(Anonymous))),
            events: Arc::new(LogEventSink),
            metrics,
            kinds: KindTable::builtin(),
            budget,
            pin_templates: false,
            log_decisions: LogDecisions::All,
        }
    }

    /// Which decisions get an audit log line (default: all).
    pub fn with_log_decisions(mut self, log_decisions: LogDecisions) -> Webhook {
        self.log_decisions = log_decisions;
        self
    }

    /// Registry and Notary credentials, the same for every request.
    pub fn with_credentials(mut self, credentials: Arc<dyn CredentialSource>) -> Webhook {
        self.credentials = Arc::new(FixedCredentials(credentials));
        self
    }

    /// Registry and Notary credentials bound to each request (cluster mode: Secrets).
    pub fn with_request_credentials(mut self, credentials: Arc<dyn RequestCredentials>) -> Webhook {
        self.credentials = credentials;
        self
    }

    /// Where decisions go as events.
    pub fn with_events(mut self, events: Arc<dyn EventSink<Decision>>) -> Webhook {
        self.events = events;
        self
    }

    /// The kinds checked and their PodSpec paths.
    pub fn with_kinds(mut self, kinds: KindTable) -> Webhook {
        self.kinds = kinds;
        self
    }

    /// The time allowed for a whole review's decisions (default: the engine's deadline).
    pub fn with_budget(mut self, budget: Duration) -> Webhook {
        self.budget = budget;
        self.metrics
            .state
            .admission_budget
            .set(budget.as_secs_f64());
        self
    }

    /// Whether `/mutate` also pins pod templates (Deployments, ..., `--extra-kind`); default:
    /// Pods only.
    pub fn with_pin_templates(mut self, pin_templates: bool) -> Webhook {
        self.pin_templates = pin_templates;
        self
    }

    /// The metrics (shared with the engine and the admin server).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// `Ok` when policies are loaded; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.policies.current().is_some() {
            return Ok(());
        }
        Err(match self.policies.problem() {
            Some(why) => format!("policies are not loaded: {why}"),
            None => "policies are not loaded yet".to_string(),
        })
    }

    /// Answers one request (never fails: problems deny, fail closed).
    pub async fn review(&self, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let started = Instant::now();
        let ctx = context(req);
        let (rsp, result) = self.answer(req, &ctx, false).await;
        self.metrics
            .admission_request(&ctx.kind, &ctx.operation, result, started.elapsed());
        rsp
    }

    /// Answers one `/mutate` request: decided as [`review`](Self::review) decides it, and an
    /// admitted object's verified tags are pinned to `tag@digest` ([`super::mutate`]).
    pub async fn mutate(&self, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let started = Instant::now();
        let ctx = context(req);
        let (rsp, result) = self.answer(req, &ctx, true).await;
        self.metrics
            .admission_request(&ctx.kind, &ctx.operation, result, started.elapsed());
        rsp
    }

    async fn answer(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        ctx: &ReviewContext,
        pin: bool,
    ) -> (AdmissionResponse, &'static str) {
        let base = AdmissionResponse::from(req);
        let skip = |why: String| {
            tracing::debug!(uid = %ctx.uid, object = %ctx.object(), "{why}");
            (not_checked(AdmissionResponse::from(req), &why), "admitted")
        };
        if !matches!(req.operation, Operation::Create | Operation::Update) {
            return skip(format!("operation {} is not checked", ctx.operation));
        }
        if let Some(sub) = ctx.sub_resource.as_deref()
            && sub != EPHEMERAL_CONTAINERS
        {
            return skip(format!("subresource {sub} is not checked"));
        }
        let Some(path) = self.kinds.pod_spec_path(&ctx.group, &ctx.kind) else {
            tracing::info!(
                uid = %ctx.uid,
                group = %ctx.group,
                kind = %ctx.kind,
                "kind is not configured for checks (see --extra-kind); admitted"
            );
            return (
                not_checked(base, &format!("kind {} is not checked", ctx.kind)),
                "admitted",
            );
        };
        if pin && !mutate::pins_kind(ctx, self.pin_templates) {
            return skip(format!(
                "{} is a pod template: not pinned (serve --pin-templates); /validate decides it",
                ctx.kind
            ));
        }
        let Some(object) = &req.object else {
            return (
                refuse(
                    base,
                    "trustgate: the request carries no object (fail closed)",
                ),
                "rejected",
            );
        };
        let mut uses = match images_in(&object.data, path) {
            Ok(Some(uses)) => uses,
            Ok(None) => {
                return skip(format!(
                    "{} has no pod spec at {}",
                    ctx.kind,
                    path.join(".")
                ));
            }
            Err(e) => {
                let message = format!(
                    "trustgate: cannot read the images of {}: {e} (fail closed)",
                    ctx.object()
                );
                return (refuse(base, &message), "rejected");
            }
        };
        if req.operation == Operation::Update {
            let old: HashSet<String> = req
                .old_object
                .as_ref()
                .and_then(|old| images_in(&old.data, path).ok().flatten())
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.image)
                .collect();
            uses.retain(|u| !old.contains(&u.image));
            if uses.is_empty() {
                return skip("the update adds no new image".to_string());
            }
        } else if uses.is_empty() {
            return skip("no images".to_string());
        }
        let Some(policies) = self.policies.current() else {
            let why = self
                .readiness()
                .err()
                .unwrap_or_else(|| "policies are not loaded yet".into());
            tracing::warn!(uid = %ctx.uid, object = %ctx.object(), "{why}: denied");
            return (
                refuse(base, &format!("trustgate: {why} (fail closed)")),
                "rejected",
            );
        };

        let (images, locations) = group(uses);
        let pull = pull_identity(&object.data, path);
        let request = CredentialRequest {
            namespace: &ctx.namespace,
            image_pull_secrets: &pull.image_pull_secrets,
            service_account: pull.service_account.as_deref(),
        };
        let decide_started = Instant::now();
        let decided = tokio::time::timeout(self.budget + BUDGET_MARGIN, async {
            let credentials = self.credentials.for_request(request).await;
            self.engine
                .decide_all(&ctx.namespace, &images, &policies, credentials.as_ref())
                .await
        })
        .await;
        let latency = decide_started.elapsed();
        // The engine counts its decisions in trustgate_image_decisions_total; decisions it
        // could not finish are made (and counted) here.
        let decisions = match decided {
            Ok(d) if d.len() == images.len() => d,
            Ok(_) | Err(_) => {
                let undecided: Vec<Decision> = images
                    .iter()
                    .map(|image| undecided(image, self.budget))
                    .collect();
                for d in &undecided {
                    self.metrics.image_decision(&ctx.namespace, d);
                }
                undecided
            }
        };
        let decisions = if pin {
            mutate::note_pins(decisions)
        } else {
            decisions
        };
        let checked: Vec<Checked<'_>> = decisions
            .iter()
            .zip(&locations)
            .map(|(decision, locations)| Checked {
                decision,
                locations,
            })
            .collect();
        for c in &checked {
            if self.log_decisions.wants(c.decision) {
                decision_line(ctx, c.decision, &c.where_used(), latency);
            }
        }
        self.events.record(ctx, &decisions);
        let mut rsp = respond(base, &checked);
        if pin {
            rsp = mutate::pin(rsp, object, path, &decisions, ctx, &self.metrics);
        }
        let result = if !rsp.allowed {
            "rejected"
        } else if rsp.warnings.is_some() {
            "warned"
        } else {
            "admitted"
        };
        (rsp, result)
    }
}

/// Distinct images in first-use order, and the locations of each.
fn group(uses: Vec<ImageUse>) -> (Vec<String>, Vec<Vec<String>>) {
    let mut images: Vec<String> = Vec::new();
    let mut locations: Vec<Vec<String>> = Vec::new();
    for u in uses {
        match images.iter().position(|i| *i == u.image) {
            Some(at) => locations[at].push(u.location),
            None => {
                images.push(u.image);
                locations.push(vec![u.location]);
            }
        }
    }
    (images, locations)
}

/// The decision for an image the review's budget ran out on.
fn undecided(image: &str, budget: Duration) -> Decision {
    let reference = ImageRef::parse(image).ok().map(|r| r.normalized());
    Decision {
        image: image.to_string(),
        reason: format!(
            "{} not decided within the review budget of {budget:?} (fail closed)",
            reference.as_deref().unwrap_or(image)
        ),
        reference,
        digest: None,
        policy: None,
        action: Action::Verify,
        mode: Mode::Enforce,
        allowed: false,
        verified: false,
        reason_class: ReasonClass::Timeout,
        signers: Vec::new(),
        formats: None,
    }
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// The [`ReviewContext`] of a request.
pub fn context(req: &AdmissionRequest<DynamicObject>) -> ReviewContext {
    let meta = req.object.as_ref().map(|o| &o.metadata);
    let namespace = req
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| meta.and_then(|m| m.namespace.clone()))
        .unwrap_or_default();
    let name = if !req.name.is_empty() {
        req.name.clone()
    } else if let Some(name) = meta.and_then(|m| m.name.clone()) {
        name
    } else {
        meta.and_then(|m| m.generate_name.clone())
            .map(|g| format!("{g}*"))
            .unwrap_or_default()
    };
    ReviewContext {
        uid: req.uid.clone(),
        user: req.user_info.username.clone().unwrap_or_default(),
        namespace,
        group: req.kind.group.clone(),
        version: req.kind.version.clone(),
        kind: req.kind.kind.clone(),
        name,
        object_uid: meta.and_then(|m| m.uid.clone()),
        operation: operation_name(&req.operation).to_string(),
        sub_resource: req.sub_resource.clone().filter(|s| !s.is_empty()),
        dry_run: req.dry_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_generated_objects_and_namespaces() {
        let req: AdmissionRequest<DynamicObject> = serde_json::from_value(serde_json::json!({
            "uid": "u1",
            "kind": {"group": "apps", "version": "v1", "kind": "ReplicaSet"},
            "resource": {"group": "apps", "version": "v1", "resource": "replicasets"},
            "name": "",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:deployment-controller"},
            "object": {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"generateName": "web-5d4f-", "namespace": "shop"}},
            "dryRun": true
        }))
        .unwrap();
        let ctx = context(&req);
        assert_eq!(ctx.name, "web-5d4f-*");
        assert_eq!(ctx.api_version(), "apps/v1");
        assert_eq!(ctx.operation, "CREATE");
        assert_eq!(ctx.sub_resource, None);
        assert!(ctx.dry_run);
        assert_eq!(
            ctx.user,
            "system:serviceaccount:kube-system:deployment-controller"
        );
    }

    #[test]
    fn images_are_grouped_in_first_use_order() {
        let uses = ["a:1", "b:1", "a:1"]
            .iter()
            .enumerate()
            .map(|(i, image)| ImageUse {
                image: (*image).to_string(),
                location: format!("spec.containers[{i}]"),
            })
            .collect();
        let (images, locations) = group(uses);
        assert_eq!(images, ["a:1", "b:1"]);
        assert_eq!(locations[0], ["spec.containers[0]", "spec.containers[2]"]);
    }

    #[test]
    fn undecided_images_fail_closed_with_a_timeout_class() {
        let d = undecided("nginx", Duration::from_millis(300));
        assert!(!d.allowed);
        assert_eq!(d.class(), "timeout");
        assert_eq!(
            d.reason,
            "docker.io/library/nginx:latest not decided within the review budget of 300ms (fail closed)"
        );
    }
}
