//! The webhook under `namespacedPolicies: Tighten` (no Notary needed: the cluster policies are
//! `Deny`, or `Verify` in mode `Warn` against a closed port, so they fail and warn). A tenant's
//! `Allow` for `**` does not lift the platform's rejection, a cluster `Warn` failure still
//! warns, and every output (status message, warnings, audit annotations, events, metrics)
//! shows one decision per image, named after the right policy. Under the default `Override`
//! the tenant's policy decides alone.

use serde_json::Value;

use crate::support::{KEY_ID, Options, closed_url, fixture, fixture_with, serve};

const APP: &str = "allowed.example.com/shop/web:1.0";
const SETUP: &str = "denied.example.com/tools/setup:1.0";

/// The platform's two cluster policies (`namespacedPolicies` as given, or absent) and the
/// tenant's allow-all TrustPolicy in `shop`.
fn policies(namespaced_policies: Option<&str>) -> String {
    let how = namespaced_policies
        .map(|v| format!("\n  namespacedPolicies: {v}"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: platform-verify}}
spec:
  images: ["allowed.example.com/**"]
  mode: Warn
  notary: {{url: "{notary}"}}
  trustRoots: [{{keyID: "{KEY_ID}"}}]{how}
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: platform-deny}}
spec:
  images: ["denied.example.com/**"]
  action: Deny{how}
---
apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: allow-all, namespace: shop}}
spec: {{images: ["**"], action: Allow}}
"#,
        notary = closed_url(),
    )
}

fn annotation<'a>(rsp: &'a Value, key: &str) -> &'a str {
    rsp["auditAnnotations"][key].as_str().unwrap_or_default()
}

#[tokio::test]
async fn tenant_allow_all_does_not_lift_a_tighten_cluster_policy() {
    let srv = serve(Options {
        policy_yaml: Some(policies(Some("Tighten"))),
        ..Options::default()
    })
    .await;

    // The platform's Deny rejects, whatever the tenant's Allow says.
    let rsp = srv.review(&fixture("pod.json")).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.contains(&format!(
            "{SETUP} rejected by policy platform-deny: action Deny; admitted by policy \
             shop/allow-all: action Allow (both apply: ClusterTrustPolicy platform-deny has \
             namespacedPolicies: Tighten)"
        )),
        "{message}"
    );
    let annotated = format!(
        "{} | {}",
        annotation(&rsp, "image-0"),
        annotation(&rsp, "image-1")
    );
    assert!(
        annotated.contains(&format!("REJECTED {SETUP} policy=platform-deny "))
            && annotated.contains(&format!("WARNED {APP} policy=platform-verify ")),
        "{rsp:#}"
    );

    // The platform's Warn failure still warns, although the tenant allows everything.
    let app_only = fixture_with("pod.json", &[(SETUP, APP)]);
    let rsp = srv.review(&app_only).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    let warnings = rsp["warnings"].as_array().expect("a warning");
    assert_eq!(warnings.len(), 1, "one decision, one warning: {warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    // (Warnings are cut to a bounded length; the failing policy's reason comes first.)
    assert!(
        warning.starts_with(&format!(
            "{APP} failed verification by policy platform-verify (mode Warn, admitted): "
        )),
        "{warning}"
    );
    assert!(
        annotation(&rsp, "image-0").starts_with(&format!("WARNED {APP}")),
        "{rsp:#}"
    );
    assert!(
        annotation(&rsp, "image-0").contains("policy=platform-verify"),
        "{rsp:#}"
    );

    // One event record per review, one verdict per distinct image.
    let recorded = srv.events.0.lock().unwrap().clone();
    let verdicts: Vec<Vec<String>> = recorded
        .into_iter()
        .map(|(_, mut v)| {
            v.sort();
            v
        })
        .collect();
    assert_eq!(
        verdicts,
        [vec!["REJECTED", "WARNED"], vec!["WARNED"]],
        "{verdicts:?}"
    );
    let metrics = srv.metrics.encode();
    for want in [
        r#"trustgate_image_decisions_total{policy="platform-deny",policy_kind="ClusterTrustPolicy",namespace="shop",result="rejected",reason="action_deny"} 1"#,
        r#"trustgate_image_decisions_total{policy="platform-verify",policy_kind="ClusterTrustPolicy",namespace="shop",result="warned","#,
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    assert!(!metrics.contains(r#"policy="shop/allow-all""#), "{metrics}");
}

#[tokio::test]
async fn under_override_the_tenant_policy_decides_alone() {
    for how in [None, Some("Override")] {
        let srv = serve(Options {
            policy_yaml: Some(policies(how)),
            ..Options::default()
        })
        .await;
        let rsp = srv.review(&fixture("pod.json")).await;
        assert_eq!(rsp["allowed"], true, "{how:?}: {rsp:#}");
        assert!(rsp.get("warnings").is_none(), "{how:?}: {rsp:#}");
        for key in ["image-0", "image-1"] {
            assert!(
                annotation(&rsp, key).contains("policy=shop/allow-all"),
                "{how:?}: {rsp:#}"
            );
        }
    }
}
