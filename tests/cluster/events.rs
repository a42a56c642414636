//! `KubeEventSink` (decisions as `events.k8s.io/v1` Events) on the scripted API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use trustgate::audit::EventSink;
use trustgate::audit::ReviewContext;
use trustgate::cluster::events::{EventConfig, KubeEventSink};
use trustgate::decision::{Decision, ReasonClass};
use trustgate::metrics::Metrics;
use trustgate::policy::{Action, Mode};

use crate::mock::{FakeApi, Seen, fake, status};

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

fn ctx(name: &str, uid: Option<&str>, dry_run: bool) -> ReviewContext {
    ReviewContext {
        uid: "review-1".into(),
        user: "alice".into(),
        namespace: "shop".into(),
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        name: name.into(),
        object_uid: uid.map(str::to_string),
        operation: "CREATE".into(),
        sub_resource: None,
        dry_run,
    }
}

fn rejected(image: &str) -> Decision {
    Decision {
        image: image.into(),
        reference: Some(image.into()),
        digest: Some(format!("sha256:{}", "ab".repeat(32))),
        policy: Some("shop/signed".into()),
        action: Action::Verify,
        mode: Mode::Enforce,
        allowed: false,
        verified: false,
        reason_class: ReasonClass::Unsigned,
        reason: format!("{image} rejected by policy shop/signed: no signature for the tag"),
        signers: Vec::new(),
        formats: None,
    }
}

fn admitted(image: &str) -> Decision {
    Decision {
        allowed: true,
        verified: true,
        reason_class: ReasonClass::Verified,
        reason: format!("{image} verified by policy shop/signed"),
        signers: vec!["targets".into()],
        ..rejected(image)
    }
}

/// An API that creates and patches Events (echoing them), or refuses them with `code`.
fn events_api(code: Option<u16>) -> (kube::Client, FakeApi) {
    fake(move |method, _, body| match code {
        Some(code) => Some(status(code, "NotFound")),
        None if method == "POST" => Some((201, body.clone())),
        None => Some((
            200,
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                                  "metadata": {"name": "x", "namespace": "shop"}}),
        )),
    })
}

fn config(burst: u32) -> EventConfig {
    EventConfig {
        burst,
        refill_every: Duration::from_secs(3600),
        reporting_instance: "trustgate-test".into(),
        ..EventConfig::default()
    }
}

fn dropped(metrics: &Metrics, reason: &str) -> u64 {
    let text = metrics.encode();
    let needle = format!("trustgate_events_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn is_post(s: &Seen) -> bool {
    s.method == "POST" && s.path == EVENTS
}

/// The periodic audit of running Pods posts its rejections as `RunningImageRejected` (action
/// `Audit`) on the Pod, with the deciding policy as `related`.
#[tokio::test]
async fn running_pod_rejections_are_their_own_reason() {
    let (client, api) = events_api(None);
    let metrics = Arc::new(Metrics::new());
    let sink = KubeEventSink::start(client, config(5), Arc::clone(&metrics));
    let d = rejected("reg.example/shop/app:1");
    let audit = ReviewContext {
        group: String::new(),
        kind: "Pod".into(),
        operation: trustgate::cluster::events::AUDIT_OPERATION.into(),
        ..ctx("web-0", Some("pod-uid"), false)
    };
    sink.record(&audit, std::slice::from_ref(&d));
    let posted = api.wait_for(1, is_post).await;
    let event = &posted[0].body;
    assert_eq!(event["reason"], "RunningImageRejected");
    assert_eq!(event["action"], "Audit");
    assert_eq!(event["regarding"]["kind"], "Pod");
    assert_eq!(event["regarding"]["uid"], "pod-uid");
    assert_eq!(event["related"]["name"], "signed");
}

#[tokio::test]
async fn a_rejection_posts_an_event_on_the_workload_and_repeats_become_a_series() {
    let (client, api) = events_api(None);
    let metrics = Arc::new(Metrics::new());
    let sink = KubeEventSink::start(client, config(5), Arc::clone(&metrics));
    let d = rejected("reg.example/shop/app:1");
    sink.record(&ctx("web", None, false), std::slice::from_ref(&d));
    let posted = api.wait_for(1, is_post).await;
    let event = &posted[0].body;
    assert_eq!(
        event["regarding"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}),
        "CREATE: no uid"
    );
    assert_eq!(
        event["related"],
        json!({"apiVersion": "trustgate.dev/v1alpha1", "kind": "TrustPolicy", "namespace": "shop", "name": "signed"}),
        "related: the deciding policy"
    );
    assert_eq!(event["reason"], "ImageRejected");
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["action"], "Admission");
    assert_eq!(event["reportingController"], "trustgate.dev/webhook");
    assert_eq!(event["reportingInstance"], "trustgate-test");
    assert_eq!(event["metadata"]["namespace"], "shop");
    assert!(
        event["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web.")
    );
    assert!(event["eventTime"].is_string());
    assert_eq!(
        event["note"],
        format!(
            "{} [image=reg.example/shop/app:1 digest=sha256:{} policy=shop/signed signers=-]",
            d.reason,
            "ab".repeat(32)
        )
    );

    // The same decision again: the Event's series is bumped, not a second Event.
    sink.record(&ctx("web", None, false), &[d]);
    let patched = api
        .wait_for(1, |s| s.method == "PATCH" && s.path.starts_with(EVENTS))
        .await;
    let name = event["metadata"]["name"].as_str().unwrap();
    assert_eq!(patched[0].path, format!("{EVENTS}/{name}"));
    assert_eq!(patched[0].body["series"]["count"], 2);
    assert!(patched[0].body["series"]["lastObservedTime"].is_string());

    // UPDATE of an existing object: regarding carries its uid.
    sink.record(
        &ctx("api", Some("uid-1"), false),
        &[rejected("reg.example/shop/api:1")],
    );
    let posted = api.wait_for(2, is_post).await;
    assert_eq!(posted[1].body["regarding"]["uid"], "uid-1");
    assert_eq!(dropped(&metrics, "rate_limited"), 0);
}

#[tokio::test]
async fn dry_runs_and_admitted_images_post_nothing_unless_asked() {
    let (client, api) = events_api(None);
    let sink = KubeEventSink::start(client, config(5), Arc::new(Metrics::new()));
    sink.record(&ctx("web", None, true), &[rejected("reg.example/a:1")]);
    sink.record(&ctx("web", None, false), &[admitted("reg.example/b:1")]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(api.requests().is_empty(), "{:?}", api.paths());

    let (client, api) = events_api(None);
    let sink = KubeEventSink::start(
        client,
        EventConfig {
            events_for_admitted: true,
            ..config(5)
        },
        Arc::new(Metrics::new()),
    );
    sink.record(&ctx("web", None, true), &[admitted("reg.example/b:1")]);
    sink.record(&ctx("web", None, false), &[admitted("reg.example/b:1")]);
    let posted = api.wait_for(1, is_post).await;
    assert_eq!(posted[0].body["reason"], "ImageVerified");
    assert_eq!(posted[0].body["type"], "Normal");
    assert_eq!(posted.len(), 1, "dry run: nothing");
}

#[tokio::test]
async fn rate_limits_drop_and_count_per_object_and_reason() {
    let (client, api) = events_api(None);
    let metrics = Arc::new(Metrics::new());
    let sink = KubeEventSink::start(client, config(2), Arc::clone(&metrics));
    let decisions: Vec<Decision> = (0..5)
        .map(|i| rejected(&format!("reg.example/app-{i}:1")))
        .collect();
    sink.record(&ctx("web", None, false), &decisions);
    assert_eq!(dropped(&metrics, "rate_limited"), 3, "burst 2 of 5");
    // Another object has its own bucket.
    sink.record(&ctx("other", None, false), &decisions[..1]);
    let posted = api.wait_for(3, is_post).await;
    let names: Vec<&str> = posted
        .iter()
        .map(|s| s.body["regarding"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "web").count(), 2);
    assert!(names.contains(&"other"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(api.requests().len(), 3);
}

#[tokio::test]
async fn a_full_queue_and_api_errors_are_counted_never_waited_on() {
    // An API that never answers: one Event in flight, one queued, the rest dropped.
    let (client, _api) = fake(|_, _, _: &Value| None);
    let metrics = Arc::new(Metrics::new());
    let sink = KubeEventSink::start(
        client,
        EventConfig {
            queue: 1,
            ..config(100)
        },
        Arc::clone(&metrics),
    );
    let decisions: Vec<Decision> = (0..5)
        .map(|i| rejected(&format!("reg.example/q-{i}:1")))
        .collect();
    let started = std::time::Instant::now();
    sink.record(&ctx("web", None, false), &decisions);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "record never waits on the API"
    );
    assert!(dropped(&metrics, "queue_full") >= 3, "{}", metrics.encode());

    // The events API refuses: counted as api_error.
    let (client, api) = events_api(Some(404));
    let metrics = Arc::new(Metrics::new());
    let sink = KubeEventSink::start(client, config(5), Arc::clone(&metrics));
    sink.record(&ctx("web", None, false), &[rejected("reg.example/e:1")]);
    api.wait_for(1, is_post).await;
    for _ in 0..100 {
        if dropped(&metrics, "api_error") == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("api_error not counted: {}", metrics.encode());
}
