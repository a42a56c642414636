//! The Grafana dashboard against real data: the `trustgate serve` binary (policies from a
//! directory) decides pods whose images were pushed to the real registry and signed with the
//! real notary CLI (verified, rejected, default-action and cached decisions), a real Prometheus
//! (the Debian `prometheus` binary, on 127.0.0.1 with a temporary config and data directory)
//! scrapes its `/metrics` every second, and every query of every panel of
//! `charts/trustgate/files/grafana-dashboard.json` is evaluated through Prometheus' HTTP API:
//! each must return data (one policy lists its signature formats, for the formats panel).
//!
//! Needs the stack of `e2e/stack.sh` (skipped otherwise, fatal with `TRUSTGATE_REQUIRE_STACK=1`)
//! and a `prometheus` binary on PATH (skipped otherwise, fatal with
//! `TRUSTGATE_REQUIRE_PROMETHEUS=1`, which `scripts/test.sh` sets after `scripts/prometheus.sh`
//! installed it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::scenario::{signed_only_policy, signed_repo};
use common::scripted::closed_port as free_port;

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p.display().to_string()),
        None if std::env::var_os("TRUSTGATE_REQUIRE_PROMETHEUS").is_some() => {
            panic!("TRUSTGATE_REQUIRE_PROMETHEUS is set but no prometheus binary is on PATH")
        }
        None => {
            eprintln!(
                "SKIP: no prometheus binary (apt-get install prometheus, or scripts/prometheus.sh)"
            );
            None
        }
    }
}

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
        .collect();
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5b1f1d1c-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "dashboard-test"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"containers": containers}
            }
        }
    })
}

/// Waits until `url` answers 200 (or panics after `limit`).
async fn wait_ok(client: &reqwest::Client, url: &str, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(start.elapsed() < limit, "{what} did not come up at {url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `spec.signatures` evaluating Docker Content Trust and cosign (AnyOf), with a cosign key,
/// to append to a policy document.
fn formats_block() -> String {
    let key: String = include_str!("../src/signatures/cosign/testdata/cosign.pub")
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        "  signatures:\n    formats: [NotaryV1, Cosign]\n    require: AnyOf\n  cosign:\n    publicKeys:\n    - |\n{key}"
    )
}

async fn query(client: &reqwest::Client, prom: &str, expr: &str) -> Value {
    let url =
        url::Url::parse_with_params(&format!("{prom}/api/v1/query"), [("query", expr)]).unwrap();
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The panel queries of the dashboard, with Grafana's variables replaced as Grafana would for
/// "All" over this test's data.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
                .replace("$job", "trustgate")
                .replace("$namespace", ".*");
            out.push((
                format!("{} [{}]", panel["title"].as_str().unwrap(), t["refId"]),
                expr,
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    let Some(st) = common::stack() else { return };
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    trustgate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();

    // Two repositories, each with a signed tag (v1) and an unsigned one (v2). The second
    // policy lists its signature formats (Docker Content Trust or cosign, AnyOf) so that the
    // "Signature formats" panel has data: NotaryV1 passes for v1 and fails for v2, cosign
    // (nothing attached) fails for both.
    let mut guns = Vec::new();
    let mut policies = String::new();
    for (i, name) in ["first", "second"].into_iter().enumerate() {
        let repo = signed_repo(&st, &format!("dashboard/{name}"), true);
        policies += &signed_only_policy(&st, &format!("p{i}"), &repo.gun, &repo.root_id);
        if i == 1 {
            policies += &formats_block();
        }
        policies += "---\n";
        guns.push(repo.gun);
    }
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("policies.yaml"), policies).unwrap();

    // trustgate serve.
    let (listen, admin) = (free_port(), free_port());
    let ca_out = dir.path().join("ca.pem");
    let _serve = Running(
        Command::new(env!("CARGO_BIN_EXE_trustgate"))
            .args(["serve", "--policy-dir"])
            .arg(&policy_dir)
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .arg("--ca-out")
            .arg(&ca_out)
            .env_remove("NOTARY_AUTH")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_ok(
        &plain,
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(60),
        "trustgate serve",
    )
    .await;

    // Prometheus, scraping it every second.
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: trustgate\n    static_configs:\n      - targets: ['127.0.0.1:{admin}']\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("prometheus-data");
    let _prometheus = Running(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ok(
        &plain,
        &format!("{prom}/-/ready"),
        Duration::from_secs(60),
        "prometheus",
    )
    .await;
    let start = Instant::now();
    loop {
        let up = query(&plain, &prom, r#"up{job="trustgate"} == 1"#).await;
        if !up["data"]["result"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never scraped: {up}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A short load: the first repository, then the second (so fetch counters move while
    // Prometheus watches), each review with a signed, an unsigned and an unmatched image.
    let ca = std::fs::read(&ca_out).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("https://localhost:{listen}/validate");
    let mut rejected = 0;
    for round in 0..12 {
        let gun = &guns[usize::from(round >= 4)];
        let review = pod(&[
            &format!("{gun}:v1"),
            &format!("{gun}:v2"),
            "unmatched.example.com/tools/setup:1.0",
        ]);
        let rsp: Value = https
            .post(&url)
            .json(&review)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rsp["response"]["allowed"], false, "{rsp:#}");
        rejected += 1;
        // The signed image alone through `/mutate`: admitted and pinned (the pinning panel).
        let signed = pod(&[&format!("{gun}:v1")]);
        let rsp: Value = https
            .post(url.replace("/validate", "/mutate"))
            .json(&signed)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rsp["response"]["allowed"], true, "{rsp:#}");
        assert!(rsp["response"]["patch"].is_string(), "{rsp:#}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(rejected, 12);
    // Let Prometheus scrape the last changes.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("charts/trustgate/files/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // The formats the second policy evaluated, with both results.
    let formats = query(
        &plain,
        &prom,
        "sum by (format, result) (trustgate_image_signature_formats_total)",
    )
    .await;
    let mut seen: Vec<String> = formats["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["metric"]["format"], r["metric"]["result"]))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            r#""Cosign" "failed""#,
            r#""NotaryV1" "failed""#,
            r#""NotaryV1" "passed""#
        ],
        "{formats}"
    );
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut empty = Vec::new();
    for (what, expr) in &queries {
        let answer = query(&plain, &prom, expr).await;
        assert_eq!(answer["status"], "success", "{what}: {expr}: {answer}");
        let result = answer["data"]["result"].as_array().unwrap();
        // Data: at least one sample, and not only NaN (an empty rate or quantile).
        let has_number = result.iter().any(|r| {
            r["value"][1]
                .as_str()
                .is_some_and(|v| v.parse::<f64>().is_ok_and(|f| f.is_finite()))
        });
        if !has_number {
            empty.push(format!("{what}: {expr} -> {answer}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
}
