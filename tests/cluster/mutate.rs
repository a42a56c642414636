//! The API server's own call to `/mutate`: `trustgate serve --pin-templates` in cluster mode,
//! a MutatingWebhookConfiguration (and the ValidatingWebhookConfiguration after it) for the
//! Widget test CRD of `cluster/admission.rs`, a TrustPolicy verifying against the real Notary +
//! registry stack. The stored Widget carries the pinned `tag@digest` and the
//! `trustgate.dev/pinned-images` annotation; an unsigned tag is refused by the mutating webhook
//! with trustgate's message. Needs both `e2e/apiserver.sh up` and `e2e/stack.sh up`.

use std::collections::HashMap;

use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::admission::{
    create_verify_policy, denial, serve_ready, widget, widget_hook, widgets_served,
};
use crate::common;
use crate::tier::{self, NS, put_stub_webhooks, unique};

const PIN: &str = "pin.trustgate.dev";
const CHECK: &str = "check.trustgate.dev";

/// The stub's state: `/mutate` then `/validate` for Widget CREATE/UPDATE on `port`, with the
/// settings the chart renders.
fn webhooks(env: &HashMap<String, String>, port: u16) -> Value {
    let hook = |name: &str, path: &str| widget_hook(env, name, port, path);
    let mut pin = hook(PIN, "/mutate");
    pin["reinvocationPolicy"] = json!("IfNeeded");
    json!({
        "mutatingwebhookconfigurations": [{
            "metadata": {"name": "trustgate-mutate-test"}, "webhooks": [pin]
        }],
        "validatingwebhookconfigurations": [{
            "metadata": {"name": "trustgate-mutate-test"}, "webhooks": [hook(CHECK, "/validate")]
        }]
    })
}

#[tokio::test]
async fn the_api_server_stores_the_pinned_reference() {
    let Some(t) = tier::tier().await else { return };
    let Some(st) = common::stack() else { return };
    let widgets = widgets_served(&t.client).await;

    let common::scenario::SignedRepo {
        gun,
        signed,
        root_id,
        ..
    } = common::scenario::signed_repo(&st, "cluster/pinned", true);

    let policy = unique("pin-signed");
    let policies = create_verify_policy(&t.client, &st, &policy, &gun, &root_id).await;

    let _webhooks = tier::STUB_WEBHOOKS.lock().await;
    let (serve, port) = serve_ready(&t.env, &["--pin-templates"]).await;
    put_stub_webhooks(&t.env, &webhooks(&t.env, port)).await;

    let pp = PostParams::default();
    let v1 = format!("{gun}:v1");
    let pinned = format!("{v1}@{}", signed.manifest_digest);
    let name = unique("pinned");
    let created = widgets.create(&pp, &widget(&name, &v1)).await;
    let created = match created {
        Ok(o) => o,
        Err(e) => panic!("signed image refused: {e:?}\n{}", serve.logs()),
    };
    let stored = widgets.get(&name).await.unwrap();
    for o in [&created, &stored] {
        assert_eq!(
            o.data["spec"]["template"]["spec"]["containers"][0]["image"],
            pinned.as_str(),
            "{o:#?}\n{}",
            serve.logs()
        );
    }
    let annotation = stored
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("trustgate.dev/pinned-images"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        annotation,
        format!("spec.template.spec.containers[0] (name: app): {v1} -> {pinned}")
    );

    // The unsigned tag never gets past the mutating webhook.
    let unsigned = format!("{gun}:v2");
    let (code, message) = denial(
        widgets
            .create(&pp, &widget(&unique("unsigned"), &unsigned))
            .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.starts_with(&format!(
            "admission webhook \"{PIN}\" denied the request: trustgate: 1 image of 1 rejected: {unsigned} rejected by policy {NS}/{policy}: "
        )),
        "{message}"
    );

    let (_, metrics) = serve.get("/metrics");
    assert!(
        metrics.contains("trustgate_images_pinned_total 1"),
        "{metrics}"
    );

    put_stub_webhooks(
        &t.env,
        &json!({"validatingwebhookconfigurations": [], "mutatingwebhookconfigurations": []}),
    )
    .await;
    widgets
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    policies
        .delete(&policy, &DeleteParams::default())
        .await
        .unwrap();
}
