//! The API-server tier of `e2e/apiserver.sh` for tests/cluster.rs: the env file, an admin
//! kube client, the trustgate CRDs applied and served, and the stub's webhook state.
//!
//! The env file is `TRUSTGATE_APISERVER_ENV`, else `$TRUSTGATE_APISERVER_DIR/apiserver.env`,
//! else `<repo>/target/apiserver/apiserver.env`. Missing or stale: `SKIP`, or a panic with
//! `TRUSTGATE_REQUIRE_APISERVER=1`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use serde_json::Value;

pub const FIELD_MANAGER: &str = "trustgate-cluster-test";
/// A namespace the stub serves.
pub const NS: &str = "shop";

/// The running tier.
pub struct Tier {
    pub env: HashMap<String, String>,
    pub client: Client,
}

/// The tier with both CRDs applied, or `None` (skip).
pub async fn tier() -> Option<Tier> {
    let extra = ["WEBHOOK_CERT", "WEBHOOK_KEY", "APISERVER_CA"];
    let (env, client) = crate::common::apiserver::setup(FIELD_MANAGER, NS, &extra).await?;
    Some(Tier { env, client })
}

/// Server-side applies `crd` and waits until it is Established.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) {
    crate::common::apiserver::apply_crd(client, crd, FIELD_MANAGER).await;
}

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Held by every test that changes the stub's webhook configurations (tests of one binary run
/// in parallel, and the stub has one state).
pub static STUB_WEBHOOKS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `GET $STUB_URL/stub/status`.
pub fn stub_status(env: &HashMap<String, String>) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .arg(format!("{}/stub/status", env["STUB_URL"]))
        .output()
        .expect("spawn curl");
    assert!(out.status.success(), "GET /stub/status");
    serde_json::from_slice(&out.stdout).expect("stub status JSON")
}

/// `PUT $STUB_URL/stub/state` with `state`; the stub's JSON answer.
fn put_state(env: &HashMap<String, String>, state: &Value) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "5", "-X", "PUT"])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(state.to_string())
        .arg(format!("{}/stub/state", env["STUB_URL"]))
        .output()
        .expect("spawn curl");
    assert!(
        out.status.success(),
        "PUT /stub/state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("PUT answer")
}

/// `PUT $STUB_URL/stub/state` with `state`, then waits until the apiserver received it.
pub async fn put_stub_state(env: &HashMap<String, String>, state: &Value) {
    let answer = put_state(env, state);
    let rv = answer["resourceVersion"].as_u64().expect("resourceVersion");
    eventually(10, "the stub to deliver the webhook configuration", || {
        let status = stub_status(env);
        let delivered = status["delivered"]["validatingwebhookconfigurations"]
            .as_u64()
            .unwrap_or(0);
        async move { (delivered >= rv).then_some(()) }
    })
    .await;
}

/// `PUT $STUB_URL/stub/state` with `state` (validating and/or mutating webhook
/// configurations), then waits until the apiserver received every object of both kinds.
pub async fn put_stub_webhooks(env: &HashMap<String, String>, state: &Value) {
    put_state(env, state);
    let served = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .arg(format!("{}/stub/state", env["STUB_URL"]))
        .output()
        .expect("spawn curl");
    let served: Value = serde_json::from_slice(&served.stdout).expect("stub state JSON");
    let resources = [
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    ];
    let wanted: Vec<(&str, u64)> = resources
        .iter()
        .map(|res| {
            let newest = served[*res]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["metadata"]["resourceVersion"].as_str()?.parse().ok())
                .max()
                .unwrap_or(0);
            (*res, newest)
        })
        .collect();
    eventually(10, "the stub to deliver the webhook configurations", || {
        let status = stub_status(env);
        let done = wanted
            .iter()
            .all(|(res, rv)| status["delivered"][*res].as_u64().unwrap_or(0) >= *rv);
        async move { done.then_some(()) }
    })
    .await;
}
