//! The webhook against the real registry + Notary stack of `e2e/stack.sh` (skipped with a
//! `SKIP` line when it is not up, fatal with `TRUSTGATE_REQUIRE_STACK=1`): an image pushed with
//! skopeo and signed with the notary CLI is admitted, an unsigned tag of the same repository
//! is denied, and a Deployment is checked through its pod template.

use std::time::Duration;

use crate::common;
use crate::support::{Options, fixture_with, serve};

const APP: &str = "allowed.example.com/shop/web:1.0";
const SETUP: &str = "denied.example.com/tools/setup:1.0";

#[tokio::test]
async fn signed_images_are_admitted_unsigned_denied_and_templates_checked() {
    let Some(st) = common::stack() else { return };
    let common::scenario::SignedRepo {
        gun,
        signed,
        root_id,
        ..
    } = common::scenario::signed_repo(&st, "webhook/app", true);

    let srv = serve(Options {
        policy_yaml: Some(common::scenario::signed_only_policy(
            &st,
            "signed-only",
            &gun,
            &root_id,
        )),
        budget: Duration::from_secs(8),
        ..Options::default()
    })
    .await;
    let v1 = format!("{gun}:v1");
    let v2 = format!("{gun}:v2");

    let pod = fixture_with("pod.json", &[(APP, &v1), (SETUP, &v1)]);
    let rsp = srv.review(&pod).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    let annotation = rsp["auditAnnotations"]["image-0"].as_str().unwrap();
    assert!(
        annotation.starts_with(&format!(
            "ADMITTED {v1}@{} policy=shop/signed-only ",
            signed.manifest_digest
        )),
        "{annotation}"
    );
    assert_eq!(rsp["auditAnnotations"]["summary"], "1 image: 1 admitted");

    let unsigned = fixture_with("pod.json", &[(APP, &v2), (SETUP, &v2)]);
    let rsp = srv.review(&unsigned).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(message.contains("tag v2 is not signed"), "{message}");
    assert!(
        message.contains("rejected by policy shop/signed-only"),
        "{message}"
    );

    let deployment = fixture_with("deployment.json", &[(APP, &v1), (SETUP, &v2)]);
    let rsp = srv.review(&deployment).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("trustgate: 1 image of 2 rejected: {v2} rejected by policy shop/signed-only: tag v2 is not signed")),
        "{message}"
    );
    assert!(
        message.ends_with("(in spec.template.spec.initContainers[0] (name: setup))"),
        "{message}"
    );
    assert_eq!(
        rsp["auditAnnotations"]["summary"],
        "2 images: 1 rejected, 1 admitted"
    );

    // The verified trust data is cached: its earliest expiry per role class is exported, in
    // the future, and the signer that counted is seen.
    let (_, _, metrics) = srv.admin("/metrics").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for role in ["root", "timestamp", "snapshot", "targets"] {
        let at = crate::support::sample(
            &metrics,
            &format!(r#"trustgate_trust_data_expiry_timestamp_seconds{{role="{role}"}}"#),
        );
        assert!(at > now, "{role}: {at} in {metrics}");
    }
    assert!(
        crate::support::sample(
            &metrics,
            r#"trustgate_image_signers_total{signer="targets",policy="shop/signed-only"}"#
        ) >= 2.0,
        "{metrics}"
    );
}
