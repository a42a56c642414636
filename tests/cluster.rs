//! Cluster mode of `trustgate serve`.
//!
//! * Against the real API-server tier (`bash e2e/apiserver.sh up`; skipped with a `SKIP` line
//!   when it is not up, fatal with `TRUSTGATE_REQUIRE_APISERVER=1`): `ClusterPolicySource`
//!   watches TrustPolicy/ClusterTrustPolicy objects, keeps invalid ones as rejecting entries,
//!   writes their status, follows edits and deletions (this file); and the API server's own
//!   admission call to `trustgate serve` in cluster mode (`cluster/admission.rs`, which also
//!   needs the Notary + registry stack of `bash e2e/stack.sh up`), and its call to `/mutate`
//!   whose pinned reference is stored (`cluster/mutate.rs`, the same two stacks).
//! * Against kube's mock client (the tier has no core/v1 or events.k8s.io): Secrets and
//!   ServiceAccounts as credentials (`cluster/credentials.rs`, and for both policies of a
//!   `namespacedPolicies: Tighten` decision, `cluster/tighten.rs`) and Events
//!   (`cluster/events.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cluster/admission.rs"]
mod admission;
mod common;
#[path = "cluster/credentials.rs"]
mod credentials;
#[path = "cluster/events.rs"]
mod events;
#[path = "cluster/mock.rs"]
mod mock;
#[path = "cluster/mutate.rs"]
mod mutate;
#[path = "cluster/tier.rs"]
mod tier;
#[path = "cluster/tighten.rs"]
mod tighten;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use trustgate::clock::SystemClock;
use trustgate::cluster::{ClusterPolicyConfig, ClusterPolicySource};
use trustgate::decision::{Anonymous, Engine, EngineConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::{ClusterTrustPolicy, PolicySource, TrustPolicy};
use trustgate::policy::{LoadedPolicy, PolicySet};

use tier::{NS, eventually, unique};

const KEY_ID: &str = "4f3e1b2c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
/// Passes the CRD schema (a non-empty string), fails Rust validation (not a PEM key).
const BAD_PEM: &str = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";

fn api<K: kube::Resource<DynamicType = ()>>(
    client: &kube::Client,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<K>(&());
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn spec(images: &[String], root: Value) -> Value {
    json!({
        "images": images,
        "notary": {"url": "https://notary.example.com:4443"},
        "trustRoots": [root],
    })
}

fn object<K: kube::Resource<DynamicType = ()>>(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &ApiResource::erase::<K>(&())).data(json!({ "spec": spec }))
}

/// The Ready condition and observedGeneration of an object, once its status says
/// `observedGeneration == metadata.generation`.
async fn observed(api: &Api<DynamicObject>, name: &str) -> Option<(i64, Value)> {
    let o = api.get(name).await.ok()?;
    let generation = o.metadata.generation?;
    let status = o.data.get("status")?;
    if status["observedGeneration"].as_i64() != Some(generation) {
        return None;
    }
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((generation, ready))
}

fn policy_in(set: &PolicySet, ns: Option<&str>, name: &str) -> Option<Arc<LoadedPolicy>> {
    set.get(ns, name).cloned()
}

#[tokio::test]
async fn policies_are_watched_validated_and_their_status_written() {
    let Some(t) = tier::tier().await else { return };
    let client = t.client.clone();
    let tp = api::<TrustPolicy>(&client, Some(NS));
    let ctp = api::<ClusterTrustPolicy>(&client, None);
    let (valid, invalid, cluster) = (unique("valid"), unique("invalid"), unique("cluster"));
    let images = |name: &str| vec![format!("registry.example.com:5000/{name}/**")];
    let pp = PostParams::default();
    tp.create(
        &pp,
        &object::<TrustPolicy>(&valid, spec(&images(&valid), json!({"keyID": KEY_ID}))),
    )
    .await
    .unwrap();
    tp.create(
        &pp,
        &object::<TrustPolicy>(
            &invalid,
            spec(&images(&invalid), json!({"publicKey": BAD_PEM})),
        ),
    )
    .await
    .unwrap();
    ctp.create(
        &pp,
        &object::<ClusterTrustPolicy>(&cluster, spec(&images(&cluster), json!({"keyID": KEY_ID}))),
    )
    .await
    .unwrap();

    let metrics = Arc::new(Metrics::new());
    let source = ClusterPolicySource::start(
        client.clone(),
        ClusterPolicyConfig {
            status_resync: Duration::from_secs(1),
            status_retry_after: Duration::from_millis(500),
            ..ClusterPolicyConfig::default()
        },
        Arc::clone(&metrics),
    );
    assert!(
        source.wait_ready(Duration::from_secs(30)).await,
        "{:?}",
        source.problem()
    );
    assert_eq!(source.problem(), None);

    // The set: the valid policies as written, the invalid one as a rejecting entry.
    let set = eventually(10, "all three policies in the set", || {
        let set = source.current().unwrap();
        let all = [Some(NS), Some(NS), None]
            .iter()
            .zip([&valid, &invalid, &cluster])
            .all(|(ns, name)| set.get(*ns, name).is_some());
        async move { all.then_some(set) }
    })
    .await;
    let v = policy_in(&set, Some(NS), &valid).unwrap();
    assert_eq!(v.problem(), None);
    assert_eq!(v.id.generation, Some(1));
    assert!(v.id.uid.is_some());
    let bad = policy_in(&set, Some(NS), &invalid).unwrap();
    let problem = bad.problem().unwrap().to_string();
    assert!(
        problem.starts_with("spec.trustRoots[0].publicKey: "),
        "{problem}"
    );
    assert_eq!(policy_in(&set, None, &cluster).unwrap().problem(), None);

    // Fail closed: the invalid policy's images are rejected, not passed to the default.
    let engine = Engine::new(EngineConfig::default(), Arc::new(SystemClock));
    let image = format!("registry.example.com:5000/{invalid}/app:1");
    let d = engine.decide(NS, &image, &set, &Anonymous).await;
    assert!(!d.allowed);
    assert_eq!(d.class(), "policy_invalid");
    assert_eq!(
        d.reason,
        format!("{image} rejected by policy {NS}/{invalid}: the policy is invalid: {problem}")
    );

    // Status written back: Ready True/Valid, False/Invalid with the message.
    let (generation, ready) =
        eventually(15, "status of the valid policy", || observed(&tp, &valid)).await;
    assert_eq!(generation, 1);
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Valid"))
    );
    assert!(ready["lastTransitionTime"].is_string());
    let (_, ready) = eventually(15, "status of the invalid policy", || {
        observed(&tp, &invalid)
    })
    .await;
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("Invalid"))
    );
    assert_eq!(
        ready["message"],
        format!("{problem} (the images this policy matches are rejected)")
    );
    let (_, ready) = eventually(15, "status of the cluster policy", || {
        observed(&ctp, &cluster)
    })
    .await;
    assert_eq!(ready["status"], "True");

    // Idempotent: with nothing changing, the resourceVersion stays put across resyncs (the
    // `serve` of the admission test, starting concurrently, may write once: then look again).
    let mut stable = false;
    for _ in 0..3 {
        let rv = tp.get(&valid).await.unwrap().metadata.resource_version;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if tp.get(&valid).await.unwrap().metadata.resource_version == rv {
            stable = true;
            break;
        }
    }
    assert!(stable, "the status keeps being rewritten");

    // Edit: the set follows without a restart, and so does observedGeneration.
    let moved = vec![format!("registry.example.com:5000/{valid}-v2/**")];
    let patch = json!({"spec": {"images": moved}});
    tp.patch(&valid, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(10, "the edited policy in the set", || {
        let p = policy_in(&source.current().unwrap(), Some(NS), &valid);
        let ok = p.is_some_and(|p| p.spec.images == moved && p.id.generation == Some(2));
        async move { ok.then_some(()) }
    })
    .await;
    let (generation, ready) =
        eventually(15, "observedGeneration 2", || observed(&tp, &valid)).await;
    assert_eq!(generation, 2);
    assert_eq!(ready["status"], "True");

    // Fixing the invalid policy makes it Ready and takes it out of the rejecting state.
    let fix = json!({"spec": {"trustRoots": [{"keyID": KEY_ID}]}});
    tp.patch(&invalid, &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .unwrap();
    let (_, ready) = eventually(15, "the fixed policy Ready", || async {
        observed(&tp, &invalid)
            .await
            .filter(|(_, r)| r["status"] == "True")
    })
    .await;
    assert_eq!(ready["reason"], "Valid");
    assert_eq!(
        policy_in(&source.current().unwrap(), Some(NS), &invalid)
            .unwrap()
            .problem(),
        None
    );

    // Delete: gone from the set.
    tp.delete(&valid, &DeleteParams::default()).await.unwrap();
    ctp.delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    eventually(10, "deleted policies gone from the set", || {
        let set = source.current().unwrap();
        let gone = set.get(Some(NS), &valid).is_none() && set.get(None, &cluster).is_none();
        async move { gone.then_some(()) }
    })
    .await;
    tp.delete(&invalid, &DeleteParams::default()).await.unwrap();
    assert!(metrics.policy_reloads.get() >= 3);
}

#[tokio::test]
async fn not_ready_until_both_initial_lists_are_synced() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // TrustPolicy objects list (empty) and then watch; ClusterTrustPolicy lists never answer.
    let listed = Arc::new(AtomicBool::new(false));
    let (client, api) = mock::fake(move |_, path, _| {
        if path.ends_with("/trustpolicies") && !listed.swap(true, Ordering::SeqCst) {
            return Some((
                200,
                json!({"apiVersion": "trustgate.dev/v1alpha1", "kind": "TrustPolicyList",
                       "metadata": {"resourceVersion": "1"}, "items": []}),
            ));
        }
        None
    });
    let source = ClusterPolicySource::start(
        client,
        ClusterPolicyConfig::default(),
        Arc::new(Metrics::new()),
    );
    assert!(!source.wait_ready(Duration::from_millis(500)).await);
    assert!(source.current().is_none());
    assert_eq!(
        source.problem().as_deref(),
        Some("waiting for the initial list of TrustPolicy and ClusterTrustPolicy objects")
    );
    assert!(
        api.paths()
            .contains(&"GET /apis/trustgate.dev/v1alpha1/clustertrustpolicies".to_string())
    );

    // A failing API is reported.
    let (client, _api) = mock::fake(|_, _, _| Some(mock::status(403, "Forbidden")));
    let source = ClusterPolicySource::start(
        client,
        ClusterPolicyConfig::default(),
        Arc::new(Metrics::new()),
    );
    let problem = eventually(10, "the watch error", || {
        let p = source.problem().filter(|p| p.contains("watching"));
        async move { p }
    })
    .await;
    assert!(problem.contains("Forbidden"), "{problem}");
    assert!(source.current().is_none());
}
