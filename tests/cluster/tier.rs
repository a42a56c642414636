//! The API-server tier of `e2e/apiserver.sh` for tests/cluster.rs: the env file, an admin
//! kube client, the trustgate CRDs applied and served, and the stub's webhook state.
//!
//! The env file is `TRUSTGATE_APISERVER_ENV`, else `$TRUSTGATE_APISERVER_DIR/apiserver.env`,
//! else `<repo>/target/apiserver/apiserver.env`. Missing or stale: `SKIP`, or a panic with
//! `TRUSTGATE_REQUIRE_APISERVER=1`.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use serde_json::Value;
use trustgate::policy::{ClusterTrustPolicy, TrustPolicy};

pub const FIELD_MANAGER: &str = "trustgate-cluster-test";
/// A namespace the stub serves.
pub const NS: &str = "shop";

/// The running tier.
pub struct Tier {
    pub env: HashMap<String, String>,
    pub client: Client,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TRUSTGATE_APISERVER_ENV") {
        return PathBuf::from(p);
    }
    if let Some(d) = std::env::var_os("TRUSTGATE_APISERVER_DIR") {
        return PathBuf::from(d).join("apiserver.env");
    }
    repo_root().join("target/apiserver/apiserver.env")
}

fn load_env() -> Result<HashMap<String, String>, String> {
    let path = env_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for key in [
        "APISERVER_URL",
        "KUBECONFIG",
        "STUB_URL",
        "STUB_STATE",
        "WEBHOOK_CERT",
        "WEBHOOK_KEY",
        "APISERVER_CA",
    ] {
        if !env.contains_key(key) {
            return Err(format!("{} lacks {key}", path.display()));
        }
    }
    let hostport = env["APISERVER_URL"]
        .trim_start_matches("https://")
        .to_owned();
    let up = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|sa| TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok());
    if !up {
        return Err(format!(
            "{} exists but {hostport} does not answer (stale env file?)",
            path.display()
        ));
    }
    Ok(env)
}

/// The tier with both CRDs applied, or `None` (skip).
pub async fn tier() -> Option<Tier> {
    let env = match load_env() {
        Ok(env) => env,
        Err(why) => {
            if std::env::var("TRUSTGATE_REQUIRE_APISERVER").is_ok_and(|v| v == "1") {
                panic!(
                    "API server required (TRUSTGATE_REQUIRE_APISERVER=1) but unavailable: {why}\n\
                     run `bash e2e/apiserver.sh up` first"
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {}: {why}; run `bash e2e/apiserver.sh up` (TRUSTGATE_REQUIRE_APISERVER=1 makes this fatal)",
                std::thread::current().name().unwrap_or("test")
            );
            return None;
        }
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&env["KUBECONFIG"]).expect("admin kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from the admin kubeconfig");
    let client = Client::try_from(config).expect("kube client");
    let text = std::fs::read_to_string(repo_root().join("crds/trustgate-crds.yaml")).unwrap();
    let crds: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&text).unwrap();
    for crd in crds {
        apply_crd(&client, &crd).await;
    }
    let tp: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
    let ctp: Api<ClusterTrustPolicy> = Api::all(client.clone());
    for _ in 0..200 {
        if tp.list(&Default::default()).await.is_ok() && ctp.list(&Default::default()).await.is_ok()
        {
            return Some(Tier { env, client });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trustgate.dev resources not served 10 s after Established");
}

/// Server-side applies `crd` and waits until it is Established.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("server-side apply of CRD {name}: {e}"));
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established after 30 s"))
        .unwrap();
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

/// `PUT $STUB_URL/stub/state` with `state`, then waits until the apiserver received it.
pub async fn put_stub_state(env: &HashMap<String, String>, state: &Value) {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data-binary")
        .arg(state.to_string())
        .arg(format!("{}/stub/state", env["STUB_URL"]))
        .output()
        .expect("spawn curl");
    assert!(
        out.status.success(),
        "PUT /stub/state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("PUT answer");
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
