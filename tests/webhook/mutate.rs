//! `POST /mutate` over real HTTPS: pinning verified tags to `tag@digest` against the real
//! registry + Notary stack (skipped with a `SKIP` line when it is not up), idempotence, the
//! pinned Pod passing `/validate`, a tag moved after admission, and (without the stack) the
//! rejections and the Pods-only default.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{self, Stack};
use crate::support::{Options, TestServer, fixture, fixture_with, sample, serve};

const APP: &str = "allowed.example.com/shop/web:1.0";
const SETUP: &str = "denied.example.com/tools/setup:1.0";
const ANNOTATION: &str = "trustgate.dev/pinned-images";

/// POSTs `review` to `/mutate`; returns its `response`, checking HTTP 200 and the echoed uid.
async fn mutate(srv: &TestServer, review: &Value) -> Value {
    let rsp = srv
        .client
        .post(format!("https://localhost:{}/mutate", srv.addr.port()))
        .header("content-type", "application/json")
        .body(review.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(rsp.status().as_u16(), 200);
    let body: Value = rsp.json().await.unwrap();
    assert_eq!(body["kind"], "AdmissionReview");
    let rsp = body["response"].clone();
    assert_eq!(rsp["uid"], review["request"]["uid"]);
    rsp
}

/// The JSONPatch of a `/mutate` response (`None` when it has none). The bytes come as a base64
/// string or (kube's encoding of `Vec<u8>`) an array of numbers; the API server, a Go program,
/// reads both into its `[]byte`.
fn patch_of(rsp: &Value) -> Option<Vec<Value>> {
    let bytes = match rsp.get("patch")? {
        Value::String(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
        Value::Array(numbers) => numbers
            .iter()
            .map(|n| u8::try_from(n.as_u64().unwrap()).unwrap())
            .collect(),
        other => panic!("patch is neither base64 nor bytes: {other}"),
    };
    assert_eq!(rsp["patchType"], "JSONPatch");
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// `review` with `ops` applied to its object, as the API server would store it.
fn applied(review: &Value, ops: &[Value]) -> Value {
    let mut review = review.clone();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec())).unwrap();
    json_patch::patch(&mut review["request"]["object"], &patch).unwrap();
    review
}

/// A Pod CREATE review for `spec`.
fn pod_review(spec: Value) -> Value {
    let mut review = fixture("pod.json");
    review["request"]["object"]["spec"] = spec;
    review
}

/// `shop/signed-only` verifying `gun`, and `allowed.example.com/**` allowed.
fn policies(st: &Stack, gun: &str, root_id: &str) -> String {
    common::scenario::signed_only_policy(st, "signed-only", gun, root_id)
        + r#"---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: allow}
spec: {images: ["allowed.example.com/**"], action: Allow}
"#
}

async fn stack_server(st: &Stack, gun: &str, root_id: &str) -> TestServer {
    serve(Options {
        policy_yaml: Some(policies(st, gun, root_id)),
        budget: Duration::from_secs(8),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn signed_tags_are_pinned_once_and_the_pinned_pod_validates() {
    let Some(st) = common::stack() else { return };
    let common::scenario::SignedRepo {
        gun,
        signed,
        root_id,
        ..
    } = common::scenario::signed_repo(&st, "mutate/app", true);
    let srv = stack_server(&st, &gun, &root_id).await;
    let digest = &signed.manifest_digest;
    let v1 = format!("{gun}:v1");
    let by_digest = format!("{gun}@{digest}");
    let pinned = format!("{v1}@{digest}");

    // A signed tag in an initContainer and a container, an Allow image, a digest reference.
    let review = pod_review(json!({
        "initContainers": [{"name": "setup", "image": v1}],
        "containers": [
            {"name": "app", "image": v1},
            {"name": "web", "image": APP},
            {"name": "pinned", "image": by_digest}
        ]
    }));
    let rsp = mutate(&srv, &review).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    let ops = patch_of(&rsp).expect("a patch");
    let replaces: Vec<(&str, &str)> = ops
        .iter()
        .filter(|op| op["op"] == "replace")
        .map(|op| (op["path"].as_str().unwrap(), op["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        replaces,
        [
            ("/spec/initContainers/0/image", pinned.as_str()),
            ("/spec/containers/0/image", pinned.as_str()),
        ],
        "{ops:#?}"
    );
    assert_eq!(ops.len(), 3, "two replaces and the annotation: {ops:#?}");
    let stored = applied(&review, &ops);
    let object = &stored["request"]["object"];
    assert_eq!(object["spec"]["containers"][1]["image"], APP);
    assert_eq!(object["spec"]["containers"][2]["image"], by_digest.as_str());
    assert_eq!(
        object["metadata"]["annotations"][ANNOTATION],
        format!(
            "spec.initContainers[0] (name: setup): {v1} -> {pinned}\n\
             spec.containers[0] (name: app): {v1} -> {pinned}"
        )
    );
    let annotation = rsp["auditAnnotations"]["image-0"].as_str().unwrap();
    assert!(
        annotation.contains(&format!("; pinned to {pinned}")),
        "{annotation}"
    );
    let (_, _, metrics) = srv.admin("/metrics").await;
    assert_eq!(sample(&metrics, "trustgate_images_pinned_total"), 2.0);

    // The API server may call again: nothing changes.
    let again = mutate(&srv, &stored).await;
    assert_eq!(again["allowed"], true, "{again:#}");
    assert!(patch_of(&again).is_none(), "{again:#}");

    // The pinned Pod passes /validate, from the caches the /mutate call filled.
    let total = |m: &str, prefix: &str, contains: &str| {
        m.lines()
            .filter(|l| l.starts_with(prefix) && l.contains(contains))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let hits = |m: &str| total(m, "trustgate_cache_requests_total{", r#"outcome="hit""#);
    let resolutions = |m: &str| total(m, "trustgate_registry_resolutions_total{", "");
    let fetches = |m: &str| total(m, "trustgate_notary_fetches_total{", "");
    let (_, _, before) = srv.admin("/metrics").await;
    let validated = srv.review(&stored).await;
    assert_eq!(validated["allowed"], true, "{validated:#}");
    let (_, _, after) = srv.admin("/metrics").await;
    assert!(hits(&after) > hits(&before), "answered from the caches");
    assert_eq!(
        resolutions(&after),
        resolutions(&before),
        "no registry call"
    );
    assert_eq!(fetches(&after), fetches(&before), "no Notary call");

    // An unsigned tag is rejected by /mutate with the reason /validate gives.
    let unsigned =
        pod_review(json!({"containers": [{"name": "app", "image": format!("{gun}:v2")}]}));
    let rsp = mutate(&srv, &unsigned).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    assert!(patch_of(&rsp).is_none());
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(message.contains("tag v2 is not signed"), "{message}");
    let validated = srv.review(&unsigned).await;
    assert_eq!(validated["status"]["message"], rsp["status"]["message"]);
}

#[tokio::test]
async fn a_tag_moved_after_admission_stays_pinned_to_the_verified_digest() {
    let Some(st) = common::stack() else { return };
    let common::scenario::SignedRepo {
        repo,
        gun,
        signed,
        root_id,
        ..
    } = common::scenario::signed_repo(&st, "mutate/moved", false);
    let srv = stack_server(&st, &gun, &root_id).await;
    let v1 = format!("{gun}:v1");
    let review = pod_review(json!({"containers": [{"name": "app", "image": v1}]}));
    let rsp = mutate(&srv, &review).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    let admitted = applied(&review, &patch_of(&rsp).unwrap());
    let pinned = format!("{v1}@{}", signed.manifest_digest);
    assert_eq!(
        admitted["request"]["object"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );

    // Someone with push rights but no signing key moves the tag.
    let moved = common::push_http(&st, &format!("moved-evil-{repo}"), &repo, "v1");
    assert_ne!(moved.manifest_digest, signed.manifest_digest);
    let served = common::registry_digest(&v1, false, None, None);
    assert_eq!(
        served, moved.manifest_digest,
        "the registry serves the new digest"
    );

    // The admitted Pod still names the verified digest, and it still validates.
    assert_eq!(
        admitted["request"]["object"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );
    let rsp = srv.review(&admitted).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");

    // A new Pod with the tag (decided by a webhook that has not cached the old answer) fails.
    let fresh = stack_server(&st, &gun, &root_id).await;
    let rsp = fresh.review(&review).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(message.contains("tag v1 is signed for"), "{message}");
    let (_, _, metrics) = fresh.admin("/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            r#"trustgate_image_decisions_total{policy="shop/signed-only",policy_kind="TrustPolicy",namespace="shop",result="rejected",reason="digest_mismatch"}"#
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn mutate_rejects_what_validate_rejects_and_leaves_allow_images_alone() {
    let srv = serve(Options::default()).await;
    let review = fixture("pod.json");
    let mutated = mutate(&srv, &review).await;
    let validated = srv.review(&review).await;
    assert_eq!(mutated["allowed"], false);
    assert_eq!(mutated["status"], validated["status"]);
    assert!(patch_of(&mutated).is_none());

    let allowed = fixture_with("pod.json", &[(SETUP, APP)]);
    let rsp = mutate(&srv, &allowed).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    assert!(patch_of(&rsp).is_none(), "Allow images are not pinned");
}

#[tokio::test]
async fn templates_are_not_pinned_by_default() {
    let srv = serve(Options::default()).await;
    let rsp = mutate(&srv, &fixture("deployment.json")).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    assert!(patch_of(&rsp).is_none());
    let summary = rsp["auditAnnotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("--pin-templates"), "{summary}");
}
