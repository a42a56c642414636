//! Live `/metrics` of a running webhook: build info, process metrics, the policies gauge, the
//! serving certificate's expiry, the last policy load, and decisions by the default action
//! and by a ClusterTrustPolicy named `default` on different series.

use crate::support::{Options, closed_url, fixture_with, policies, sample, serve};

const DEFAULT_NAMED: &str = r#"
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: default}
spec: {images: ["named-default.example.com/**"], action: Allow}
"#;

#[tokio::test]
async fn live_metrics_tell_the_default_action_from_a_policy_named_default() {
    let yaml = policies(&closed_url(), &closed_url()) + DEFAULT_NAMED;
    let srv = serve(Options {
        policy_yaml: Some(yaml),
        ..Options::default()
    })
    .await;
    let review = fixture_with(
        "pod.json",
        &[
            (
                "allowed.example.com/shop/web:1.0",
                "named-default.example.com/shop/web:1.0",
            ),
            (
                "denied.example.com/tools/setup:1.0",
                "nomatch.example.com/tools/setup:1.0",
            ),
        ],
    );
    let rsp = srv.review(&review).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let (_, _, text) = srv.admin("/metrics").await;
    let by_policy = r#"trustgate_image_decisions_total{policy="default",policy_kind="ClusterTrustPolicy",namespace="shop",result="admitted",reason="action_allow"}"#;
    let by_default = r#"trustgate_image_decisions_total{policy="",policy_kind="default",namespace="shop",result="rejected",reason="default_action"}"#;
    assert_eq!(sample(&text, by_policy), 1.0, "{text}");
    assert_eq!(sample(&text, by_default), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"trustgate_admission_requests_total{kind="Pod",operation="CREATE",result="rejected"}"#
        ),
        1.0
    );

    // State: build info, the five cluster policies, the last load, the certificate's expiry.
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(r#"trustgate_build_info{{version="{version}","#)),
        "{text}"
    );
    let allow = r#"trustgate_policies{kind="ClusterTrustPolicy",action="Allow",mode="Enforce",ready="true"}"#;
    assert_eq!(sample(&text, allow), 2.0, "{text}");
    let verify = r#"trustgate_policies{kind="ClusterTrustPolicy",action="Verify",mode="Enforce",ready="true"}"#;
    assert_eq!(sample(&text, verify), 1.0, "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let reload = sample(
        &text,
        "trustgate_policy_last_reload_success_timestamp_seconds",
    );
    assert!(
        (now - 120.0..=now + 1.0).contains(&reload),
        "{reload} vs {now}"
    );
    // The self-signed certificate is valid for a year.
    let expiry = sample(
        &text,
        "trustgate_serving_certificate_expiry_timestamp_seconds",
    );
    assert!(
        (now + 360.0 * 86_400.0..now + 366.0 * 86_400.0).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(sample(&text, "trustgate_admission_budget_seconds"), 8.0);
    // Process metrics from /proc.
    if cfg!(target_os = "linux") {
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(sample(&text, family) > 0.0, "{family} in {text}");
        }
    }
}
