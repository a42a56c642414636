//! `trustgate audit` (the binary) against a cluster whose API serves two running Pods in
//! `shop`: one runs a signed image, the other an unsigned tag of the same repository (pushed to
//! the real registry and signed with the real notary CLI of `e2e/stack.sh`; skipped without the
//! stack). The API is a small HTTP server on 127.0.0.1 answering the Pod list as the API server
//! does (the API-server tier's stub core API serves no Pods); the binary reaches it through a
//! kubeconfig, as every kube tool. `--policy-dir` gives the policies (what-if mode).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use common::scripted::{Reply, Routes, Scripted};
use trustgate::admission::FixedCredentials;
use trustgate::audit::{EventSink, ReviewContext};
use trustgate::clock::SystemClock;
use trustgate::cluster::running::PeriodicAudit;
use trustgate::decision::{Anonymous, Decision, Engine, EngineConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::StaticPolicySource;

fn pod(name: &str, image: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "app", "image": image}]},
        "status": {"phase": phase}
    })
}

/// Serves `GET /api/v1/pods` with `pods` (a scripted API server).
async fn fake_api(pods: Vec<Value>) -> Scripted {
    let list = json!({
        "apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "1"},
        "items": pods
    });
    Scripted::routes(Routes::new().get("/api/v1/pods", Reply::json(200, &list.to_string()))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_signed_and_unsigned_running_pods() {
    let Some(st) = common::stack() else { return };
    let common::scenario::SignedRepo { gun, root_id, .. } =
        common::scenario::signed_repo(&st, "audit/app", true);

    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    std::fs::write(
        policy_dir.join("p.yaml"),
        common::scenario::signed_only_policy(&st, "signed-only", &gun, &root_id),
    )
    .unwrap();

    let (v1, v2) = (format!("{gun}:v1"), format!("{gun}:v2"));
    let api_server = fake_api(vec![
        pod("web-signed", &v1, "Running"),
        pod("web-unsigned", &v2, "Running"),
        pod("old-job", &v2, "Succeeded"),
    ])
    .await;
    let api = api_server.url();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{api}\"}}}}]\nusers: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();

    let policy_dir_arg = policy_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_trustgate"))
            .args(["audit", "--policy-dir"])
            .arg(&policy_dir_arg)
            .args(["--output", "json"])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("NOTARY_AUTH")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "finished Pods are skipped: {stdout}");
    let signed = &results[0];
    assert_eq!(signed["namespace"], "shop");
    assert_eq!(signed["pod"], "web-signed");
    assert_eq!(signed["image"], v1.as_str());
    assert_eq!(signed["allowed"], true, "{signed:#}");
    assert_eq!(signed["policy"], "shop/signed-only");
    let unsigned = &results[1];
    assert_eq!(unsigned["pod"], "web-unsigned");
    assert_eq!(unsigned["image"], v2.as_str());
    assert_eq!(unsigned["allowed"], false);
    assert!(
        unsigned["reason"].as_str().unwrap().contains("not signed"),
        "{unsigned:#}"
    );
    assert_eq!(unsigned["location"], "spec.containers[0] (name: app)");

    // serve's periodic audit over the same cluster: the running-images gauge, and an Event on
    // the Pod whose image would now be rejected (none on the other).
    let config = kube::Config::new(api.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let policies =
        trustgate::policy::load::load_policy_set(&[], &[dir.path().join("policies")]).unwrap();
    let metrics = Arc::new(Metrics::new());
    let events = Arc::new(Recording::default());
    let audit = PeriodicAudit {
        client,
        engine: Engine::new(EngineConfig::default(), Arc::new(SystemClock)),
        policies: Arc::new(StaticPolicySource::new(policies)),
        credentials: Arc::new(FixedCredentials(Arc::new(Anonymous))),
        events: events.clone(),
        metrics: Arc::clone(&metrics),
        interval: std::time::Duration::from_secs(600),
    };
    audit.once().await;
    let text = metrics.encode();
    for series in [
        r#"trustgate_running_images{verdict="admitted",namespace="shop"} 1"#,
        r#"trustgate_running_images{verdict="rejected",namespace="shop"} 1"#,
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
    assert!(
        !text.contains("trustgate_image_decisions_total{"),
        "audit decisions are not admission decisions"
    );
    let recorded = events.0.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (object, verdicts) = &recorded[0];
    assert_eq!(object, "Pod shop/web-unsigned");
    assert_eq!(verdicts, &["REJECTED".to_string()]);
}

/// Records `(object, verdicts)` of every `record` call.
#[derive(Default)]
struct Recording(Mutex<Vec<(String, Vec<String>)>>);

impl EventSink<Decision> for Recording {
    fn record(&self, ctx: &ReviewContext, decisions: &[Decision]) {
        self.0.lock().unwrap().push((
            ctx.object(),
            decisions.iter().map(|d| d.verdict().to_string()).collect(),
        ));
    }
}
