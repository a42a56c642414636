//! The webhook over real HTTPS against an in-process server (`admission::start` on
//! 127.0.0.1:0): every pod-carrying kind from `tests/data/admission/*.json`, UPDATE and
//! dry-run handling, warnings, audit annotations, malformed and oversized bodies, the admin
//! endpoints and readiness. TLS reload, self-signed mode, budgets and graceful shutdown are in
//! `webhook/tls.rs`; the real Notary + registry stack in `webhook/real_stack.rs`; `/mutate`'s
//! pinning in `webhook/mutate.rs`.
//!
//! Most tests need no Notary: their policies are `action: Allow` / `action: Deny`, or Verify
//! in mode Warn against a closed port (so it fails and warns).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::webhook as support;
#[path = "webhook/metrics.rs"]
mod metrics;
#[path = "webhook/mutate.rs"]
mod mutate;
#[path = "webhook/real_stack.rs"]
mod real_stack;
#[path = "webhook/tighten.rs"]
mod tighten;
#[path = "webhook/tls.rs"]
mod tls_and_shutdown;

use std::time::Duration;

use serde_json::Value;
use support::{DIGEST, Options, fixture, fixture_with, sample, serve};
use trustgate::admission::{ExtraKind, KindTable};

const SETUP: &str = "denied.example.com/tools/setup:1.0";

fn annotations(rsp: &Value) -> Vec<(String, String)> {
    let mut a: Vec<(String, String)> = rsp["auditAnnotations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    a.sort();
    a
}

#[tokio::test]
async fn every_pod_template_kind_is_checked_through_its_pod_spec() {
    let srv = serve(Options::default()).await;
    let cases = [
        ("pod.json", "spec"),
        ("deployment.json", "spec.template.spec"),
        ("replicaset.json", "spec.template.spec"),
        ("statefulset.json", "spec.template.spec"),
        ("daemonset.json", "spec.template.spec"),
        ("job.json", "spec.template.spec"),
        ("cronjob.json", "spec.jobTemplate.spec.template.spec"),
        ("replicationcontroller.json", "spec.template.spec"),
    ];
    for (name, prefix) in cases {
        let rsp = srv.review(&fixture(name)).await;
        assert_eq!(rsp["allowed"], false, "{name}: {rsp:#}");
        assert_eq!(rsp["status"]["code"], 403, "{name}");
        let message = rsp["status"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!(
                "trustgate: 1 image of 2 rejected: denied.example.com/tools/setup:1.0 rejected by \
                 policy deny: action Deny (in {prefix}.initContainers[0] (name: setup))"
            ),
            "{name}"
        );
        let a = annotations(&rsp);
        assert_eq!(a[0].0, "image-0");
        assert!(
            a[0].1
                .starts_with("REJECTED denied.example.com/tools/setup:1.0 policy=deny "),
            "{a:?}"
        );
        assert!(
            a[1].1
                .starts_with("ADMITTED allowed.example.com/shop/web:1.0 policy=allow "),
            "{a:?}"
        );
        assert_eq!(
            a[2],
            ("summary".into(), "2 images: 1 rejected, 1 admitted".into())
        );
    }
}

#[tokio::test]
async fn allowed_review_has_annotations_and_no_warnings() {
    let srv = serve(Options::default()).await;
    let review = fixture_with(
        "deployment.json",
        &[(SETUP, "allowed.example.com/tools/setup:1.0")],
    );
    let rsp = srv.review(&review).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    assert!(rsp.get("warnings").is_none());
    let a = annotations(&rsp);
    assert_eq!(a.len(), 3);
    assert_eq!(a[2].1, "2 images: 2 admitted");
}

#[tokio::test]
async fn warn_mode_failures_become_warnings() {
    let srv = serve(Options::default()).await;
    let warned = format!("warn.example.com/tools/setup@{DIGEST}");
    let review = fixture_with("pod.json", &[(SETUP, warned.as_str())]);
    let rsp = srv.review(&review).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    let warnings = rsp["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("failed verification by policy warn (mode Warn, admitted)"),
        "{w}"
    );
    assert!(w.chars().count() <= 256);
    let a = annotations(&rsp);
    assert!(
        a[0].1.starts_with(&format!("WARNED {warned} policy=warn ")),
        "{a:?}"
    );
    assert_eq!(a[2].1, "2 images: 1 warned, 1 admitted");
}

#[tokio::test]
async fn ephemeral_containers_subresource_checks_the_new_container() {
    let srv = serve(Options::default()).await;
    let rsp = srv.review(&fixture("pod-ephemeralcontainers.json")).await;
    assert_eq!(rsp["allowed"], false);
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("trustgate: 1 image of 1 rejected: denied.example.com/tools/debug:1.0"),
        "{message}"
    );
    assert!(
        message.contains("(in spec.ephemeralContainers[0] (name: debugger))"),
        "{message}"
    );
}

#[tokio::test]
async fn custom_kinds_are_checked_only_when_configured() {
    let plain = serve(Options::default()).await;
    let rsp = plain.review(&fixture("rollout.json")).await;
    assert_eq!(rsp["allowed"], true);
    assert_eq!(
        rsp["auditAnnotations"]["summary"],
        "kind Rollout is not checked"
    );

    let rollout: ExtraKind = "argoproj.io/Rollout=spec.template.spec".parse().unwrap();
    let configured = serve(Options {
        kinds: KindTable::builtin().with_extra([rollout]),
        ..Options::default()
    })
    .await;
    let rsp = configured.review(&fixture("rollout.json")).await;
    assert_eq!(rsp["allowed"], false);
    assert!(
        rsp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("(in spec.template.spec.initContainers[0] (name: setup))")
    );
}

#[tokio::test]
async fn unknown_kinds_are_admitted_unchecked() {
    let srv = serve(Options::default()).await;
    let rsp = srv.review(&fixture("service.json")).await;
    assert_eq!(rsp["allowed"], true);
    assert_eq!(
        rsp["auditAnnotations"]["summary"],
        "kind Service is not checked"
    );
}

#[tokio::test]
async fn update_that_changes_no_image_is_admitted_without_checks() {
    let srv = serve(Options::default()).await;
    let rsp = srv.review(&fixture("update-unchanged.json")).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    assert_eq!(
        rsp["auditAnnotations"]["summary"],
        "the update adds no new image"
    );
    let (_, _, metrics) = srv.admin("/metrics").await;
    assert!(
        !metrics.contains("trustgate_image_decisions_total{"),
        "no image decided: {metrics}"
    );
    assert!(srv.events.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn update_checks_only_the_images_it_adds() {
    let srv = serve(Options::default()).await;
    let rsp = srv.review(&fixture("update-new-image.json")).await;
    assert_eq!(rsp["allowed"], false);
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("trustgate: 1 image of 2 rejected: denied.example.com/tools/debug:1.0"),
        "{message}"
    );
    assert!(
        !message.contains("legacy/agent"),
        "unchanged images are not checked: {message}"
    );
    let a = annotations(&rsp);
    assert!(
        a[0].1
            .starts_with("ADMITTED allowed.example.com/shop/web:2.0"),
        "{a:?}"
    );
    assert!(
        a[1].1
            .starts_with("REJECTED denied.example.com/tools/debug:1.0"),
        "{a:?}"
    );
}

#[tokio::test]
async fn dry_run_is_decided_the_same_and_marked_for_the_event_sink() {
    let srv = serve(Options::default()).await;
    let rsp = srv.review(&fixture("dry-run.json")).await;
    assert_eq!(rsp["allowed"], false);
    assert_eq!(rsp["status"]["code"], 403);
    let normal = srv.review(&fixture("pod.json")).await;
    assert_eq!(normal["allowed"], false);
    let recorded = srv.events.0.lock().unwrap();
    assert_eq!(recorded.len(), 2);
    let (ctx, verdicts) = &recorded[0];
    assert!(ctx.dry_run);
    assert_eq!(
        (ctx.kind.as_str(), ctx.name.as_str(), ctx.namespace.as_str()),
        ("Pod", "web-dry", "shop")
    );
    assert_eq!(ctx.user, "alice@example.com");
    assert_eq!(verdicts, &["REJECTED", "ADMITTED"]);
    assert!(!recorded[1].0.dry_run);
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_json_status() {
    let srv = serve(Options::default()).await;
    let no_request = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
    let wrong_kind = fixture("pod.json")
        .to_string()
        .replace("\"AdmissionReview\"", "\"Pod\"");
    for body in [
        "not json",
        "{}",
        no_request,
        &wrong_kind,
        r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":1}}"#,
    ] {
        let (status, json) = srv.post(body.to_string()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(json["kind"], "Status", "{json}");
        assert_eq!(json["code"], 400);
        assert!(json["message"].as_str().unwrap().len() > 10, "{json}");
    }
    let (_, _, metrics) = srv.admin("/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            r#"trustgate_admission_requests_total{kind="unknown",operation="unknown",result="error"}"#
        ),
        5.0
    );
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let srv = serve(Options::default()).await;
    let mut review = fixture("pod.json");
    review["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"padding": "x".repeat(3 * 1024 * 1024)});
    let (status, json) = srv.post(review.to_string()).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["code"], 413);
    // Just under the limit is fine.
    review["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"padding": "x".repeat(3 * 1024 * 1024 - 8 * 1024)});
    let (status, _) = srv.post(review.to_string()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let srv = serve(Options::default()).await;
    assert_eq!(srv.admin("/healthz").await.0, 200);
    let (status, _, body) = srv.admin("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, content_type, before) = srv.admin("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(before.ends_with("# EOF\n"));
    let denied = r#"trustgate_admission_requests_total{kind="Deployment",operation="CREATE",result="rejected"}"#;
    let rejected = r#"trustgate_image_decisions_total{policy="deny",policy_kind="ClusterTrustPolicy",namespace="shop",result="rejected",reason="action_deny"}"#;
    let admitted = r#"trustgate_image_decisions_total{policy="allow",policy_kind="ClusterTrustPolicy",namespace="shop",result="admitted",reason="action_allow"}"#;
    assert_eq!(sample(&before, denied), 0.0);
    for _ in 0..3 {
        srv.review(&fixture("deployment.json")).await;
    }
    let (_, _, after) = srv.admin("/metrics").await;
    assert_eq!(sample(&after, denied), 3.0, "{after}");
    assert_eq!(sample(&after, rejected), 3.0);
    assert_eq!(sample(&after, admitted), 3.0);
    assert!(sample(&after, "trustgate_admission_duration_seconds_count") >= 3.0);
    assert_eq!(sample(&after, "trustgate_policy_reloads_total"), 1.0);
}

#[tokio::test]
async fn not_ready_until_policies_load_and_bad_edits_keep_the_previous_set() {
    let srv = serve(Options {
        policy_yaml: Some("kind: [".into()),
        ..Options::default()
    })
    .await;
    let (status, _, body) = srv.admin("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("not ready: policies are not loaded: "),
        "{body}"
    );
    let rsp = srv.review(&fixture("pod.json")).await;
    assert_eq!(rsp["allowed"], false);
    assert!(
        rsp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("policies are not loaded")
    );

    let file = srv.policy_dir.join("policy.yaml");
    support::replace_policy_file(
        &file,
        &support::policies(&support::closed_url(), &support::closed_url()),
    );
    wait_for(|| async { srv.admin("/readyz").await.0 == 200 }).await;
    let allowed = fixture_with("pod.json", &[(SETUP, "allowed.example.com/a:1")]);
    assert_eq!(srv.review(&allowed).await["allowed"], true);

    // A bad edit: the previous set stays, the error is counted.
    support::replace_policy_file(&file, "apiVersion: trustgate.dev/v1alpha1\nkind: Nope\n");
    wait_for(|| async {
        let (_, _, m) = srv.admin("/metrics").await;
        sample(&m, "trustgate_policy_reload_errors_total") >= 2.0
    })
    .await;
    assert_eq!(srv.admin("/readyz").await.0, 200);
    assert_eq!(srv.review(&allowed).await["allowed"], true);
}

/// Polls `check` every 50 ms for up to 5 s.
async fn wait_for<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5 s");
}
