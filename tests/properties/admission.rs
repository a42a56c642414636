//! AdmissionReview bodies: arbitrary bytes, mutated real reviews (`tests/data/admission`) and
//! generated reviews, through the public decoder and image extraction and through the
//! `/validate` handler in process (the axum router, no sockets). For every body: no panic, no
//! hang; either `400` with a Kubernetes `Status` whose message says why, or `200` with a
//! well-formed AdmissionReview answering the request's `uid` whose denials carry a one-line
//! message. Generated pods are admitted exactly when every image is under the allowed registry
//! (everything else falls to the default `Deny`): fail closed, whatever the images look like.
//!
//! The engine has only `Allow` policies and the default `Deny`, so no case touches the network.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use trustgate::admission::extract::images_in;
use trustgate::admission::wire::decode;
use trustgate::admission::{KindTable, Webhook};
use trustgate::clock::SystemClock;
use trustgate::decision::{Engine, EngineConfig};
use trustgate::policy::{Action, PolicySet, StaticPolicySource, parse_policies};

use super::mutate::{self, Mutation};
use super::{bounded, config};

/// A request answered later than this is a hang.
const HANG: Duration = Duration::from_secs(20);
const ALLOWED: &str = "allowed.example.com";

const POLICIES: &str = r#"
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: allow-allowed
spec:
  images: ["allowed.example.com/**"]
  action: Allow
"#;

/// Field names of reviews and pods (keys for inserted and duplicated members).
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "request",
    "uid",
    "operation",
    "object",
    "oldObject",
    "subResource",
    "namespace",
    "name",
    "metadata",
    "spec",
    "template",
    "jobTemplate",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "image",
    "imagePullSecrets",
    "serviceAccountName",
    "dryRun",
    "group",
    "version",
    "resource",
    "userInfo",
];

/// The fixtures, read once.
fn fixtures() -> &'static [(String, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/admission");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("tests/data/admission")
            .map(|e| {
                let path = e.expect("entry").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).expect("fixture"))
            })
            .collect();
        out.sort();
        assert!(out.len() >= 10, "admission fixtures missing");
        out
    })
}

fn fixture() -> impl Strategy<Value = &'static [u8]> {
    (0..fixtures().len()).prop_map(|i| fixtures()[i].1.as_slice())
}

/// The handler under test and a runtime to drive it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let mut set = PolicySet::new(Action::Deny);
        for (_, policy) in parse_policies(Path::new("fuzz.yaml"), POLICIES).expect("policies") {
            set.insert(policy);
        }
        let engine = Engine::new(
            EngineConfig {
                default_action: Action::Deny,
                ..EngineConfig::default()
            },
            Arc::new(SystemClock),
        );
        let webhook = Webhook::new(Arc::new(engine), Arc::new(StaticPolicySource::new(set)))
            .with_kinds(KindTable::builtin());
        let router = trustgate::admission::server::webhook_router(
            Arc::new(webhook),
            trustgate::admission::server::MAX_BODY_BYTES,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Harness { runtime, router }
    })
}

/// POSTs `body` to `/validate`: the status and the body as JSON.
fn post(body: Vec<u8>) -> Result<(StatusCode, Value), String> {
    let h = harness();
    let router = h.router.clone();
    let handle = h.runtime.handle().clone();
    bounded(HANG, move || {
        handle.block_on(async move {
            let request = Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
                .await
                .expect("body");
            let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(
                |e| json!({"unparseable": format!("{e}: {}", String::from_utf8_lossy(&bytes))}),
            );
            (status, json)
        })
    })
}

/// What every answer must be; returns `allowed` for a `200`.
fn check_answer(
    body: &[u8],
    status: StatusCode,
    answer: &Value,
) -> Result<Option<bool>, TestCaseError> {
    let decoded = decode(body);
    match status {
        StatusCode::OK => {
            let request = decoded.map_err(|e| {
                TestCaseError::fail(format!("200 for a body the decoder refuses ({e})"))
            })?;
            prop_assert_eq!(&answer["kind"], "AdmissionReview", "{}", answer);
            prop_assert_eq!(
                answer["apiVersion"].as_str(),
                Some(request.types.api_version.as_str())
            );
            let response = &answer["response"];
            prop_assert_eq!(
                response["uid"].as_str(),
                Some(request.uid.as_str()),
                "{}",
                answer
            );
            let allowed = response["allowed"].as_bool();
            prop_assert!(allowed.is_some(), "no allowed: {}", answer);
            if allowed == Some(false) {
                let message = response["status"]["message"].as_str().unwrap_or("");
                prop_assert!(
                    !message.trim().is_empty(),
                    "a denial without a reason: {}",
                    answer
                );
                prop_assert!(!message.contains('\n'), "a multi-line denial: {}", message);
            }
            if let Some(warnings) = response.get("warnings").filter(|w| !w.is_null()) {
                prop_assert!(
                    warnings
                        .as_array()
                        .is_some_and(|w| w.iter().all(Value::is_string)),
                    "{}",
                    answer
                );
            }
            Ok(allowed)
        }
        StatusCode::BAD_REQUEST => {
            let e = match decoded {
                Ok(_) => return Err(TestCaseError::fail("400 for a body the decoder accepts")),
                Err(e) => e,
            };
            prop_assert_eq!(&answer["kind"], "Status", "{}", answer);
            let message = answer["message"].as_str().unwrap_or("");
            prop_assert!(
                !message.trim().is_empty(),
                "a 400 without a reason: {}",
                answer
            );
            prop_assert_eq!(message, e.to_string());
            Ok(None)
        }
        other => Err(TestCaseError::fail(format!(
            "unexpected status {other}: {answer}"
        ))),
    }
}

fn check_handler(body: Vec<u8>) -> Result<Option<bool>, TestCaseError> {
    let (status, answer) = post(body.clone()).map_err(TestCaseError::fail)?;
    check_answer(&body, status, &answer)
}

// ---- generated reviews --------------------------------------------------------------------

/// An image and whether the policies admit it.
fn image() -> impl Strategy<Value = (Option<String>, bool)> {
    let noise = prop_oneof![
        "[a-zA-Z0-9._/:@+-]{0,40}",
        ".{0,20}",
        "[a-z]{1,8}\\.example\\.com/[a-z]{1,5}(:[a-z0-9]{1,4})?",
    ]
    .prop_filter("not the allowed registry", |s| !s.starts_with(ALLOWED));
    prop_oneof![
        3 => "[a-z]{1,6}(/[a-z0-9]{1,6}){0,2}(:[a-z0-9_][a-z0-9._-]{0,7})?(@sha256:[a-f0-9]{64})?"
            .prop_map(|rest| (Some(format!("{ALLOWED}/{rest}")), true)),
        1 => Just((Some("denied.example.com/tools/setup:1.0".to_owned()), false)),
        2 => noise.prop_map(|s| {
            // An empty image is left to a mutating webhook: not checked.
            let empty = s.is_empty();
            (Some(s), empty)
        }),
        1 => Just((None, true)),
    ]
}

/// A CREATE of a Pod or Deployment with these containers; `true` when it must be admitted.
fn generated_review() -> impl Strategy<Value = (Value, bool)> {
    (
        any::<bool>(),
        prop::collection::vec(image(), 0..4),
        prop::collection::vec(image(), 0..12),
        prop::collection::vec(image(), 0..3),
        "[a-z0-9-]{1,12}",
        prop::sample::select(vec!["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]),
    )
        .prop_map(|(deployment, init, main, ephemeral, uid, version)| {
            let mut admitted = true;
            let mut list = |images: Vec<(Option<String>, bool)>, prefix: &str| -> Vec<Value> {
                images
                    .into_iter()
                    .enumerate()
                    .map(|(i, (image, ok))| {
                        admitted &= ok;
                        let mut c = json!({"name": format!("{prefix}{i}")});
                        if let Some(image) = image {
                            c["image"] = json!(image);
                        }
                        c
                    })
                    .collect()
            };
            let spec = json!({
                "initContainers": list(init, "init"),
                "containers": list(main, "c"),
                "ephemeralContainers": list(ephemeral, "e"),
            });
            let (group, kind, resource, object) = if deployment {
                (
                    "apps",
                    "Deployment",
                    "deployments",
                    json!({"apiVersion": "apps/v1",
                    "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"template": {"spec": spec}}}),
                )
            } else {
                (
                    "",
                    "Pod",
                    "pods",
                    json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}),
                )
            };
            let review = json!({
                "apiVersion": version,
                "kind": "AdmissionReview",
                "request": {
                    "uid": uid,
                    "kind": {"group": group, "version": "v1", "kind": kind},
                    "resource": {"group": group, "version": "v1", "resource": resource},
                    "name": "web",
                    "namespace": "shop",
                    "operation": "CREATE",
                    "userInfo": {"username": "fuzz"},
                    "object": object,
                    "oldObject": null,
                    "dryRun": false
                }
            });
            (review, admitted)
        })
}

proptest! {
    #![proptest_config(config(1, "admission"))]

    #[test]
    fn arbitrary_bytes_decode_or_are_refused_with_a_reason(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[{}\\[\\]:,\"a-zA-Z0-9 ]{0,120}".prop_map(String::into_bytes),
    ]) {
        if let Err(e) = decode(&body) {
            prop_assert!(!e.to_string().trim().is_empty());
        }
    }

    #[test]
    fn mutated_reviews_decode_and_extract_or_are_refused_with_a_reason(
        raw in fixture(),
        mutations in prop::collection::vec(mutate::mutation(KEYS), 1..4),
    ) {
        let body = mutations.iter().fold(raw.to_vec(), |b, m: &Mutation| m.apply(&b));
        match decode(&body) {
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
            Ok(request) => {
                let table = KindTable::builtin();
                if let (Some(path), Some(object)) =
                    (table.pod_spec_path(&request.kind.group, &request.kind.kind), &request.object)
                {
                    match images_in(&object.data, path) {
                        Ok(_) => {}
                        Err(e) => prop_assert!(e.to_string().contains(" is not ")),
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2, "admission"))]

    #[test]
    fn arbitrary_bodies_through_the_handler_answer_200_or_400(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        "[{}\\[\\]:,\"a-zA-Z0-9 ]{0,80}".prop_map(String::into_bytes),
    ]) {
        check_handler(body)?;
    }

    #[test]
    fn mutated_reviews_through_the_handler_answer_200_or_400(
        raw in fixture(),
        mutations in prop::collection::vec(mutate::mutation(KEYS), 1..4),
    ) {
        let body = mutations.iter().fold(raw.to_vec(), |b, m: &Mutation| m.apply(&b));
        check_handler(body)?;
    }

    #[test]
    fn deeply_nested_reviews_answer_200_or_400(
        raw in fixture(),
        depth in 1usize..400,
        at in mutate::path(),
        objects in any::<bool>(),
    ) {
        let mut review: Value = serde_json::from_slice(raw).expect("fixture");
        let mut nested = json!("x");
        for _ in 0..depth {
            nested = if objects { json!({"a": nested}) } else { json!([nested]) };
        }
        *mutate::walk(&mut review, &at) = nested;
        let body = serde_json::to_vec(&review).expect("json");
        check_handler(body)?;
    }

    #[test]
    fn generated_pods_are_admitted_only_with_allowed_images((review, admitted) in generated_review()) {
        let body = serde_json::to_vec(&review).expect("json");
        let allowed = check_handler(body)?;
        prop_assert_eq!(allowed, Some(admitted), "{}", review);
    }
}
