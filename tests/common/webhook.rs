//! The in-process webhook for the tests that post AdmissionReviews (webhook, attacks,
//! resilience): a server (real TLS, real listeners on 127.0.0.1:0) built from policy YAML, an
//! HTTPS client trusting its CA, fixture loading, a recording event sink and a slow Notary (a
//! scripted server holding each request).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use super::scripted::closed_url;
use super::scripted::{Reply, Scripted};
use trustgate::admission::{KindTable, RunningServer, ServerConfig, Webhook, start};
use trustgate::audit::{EventSink, ReviewContext};
use trustgate::cache::CacheConfig;
use trustgate::clock::SystemClock;
use trustgate::decision::{Anonymous, CredentialSource, Decision, Engine, EngineConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::{Action, DirPolicySource};
use trustgate::tls::ServingCert;

/// A digest for `@sha256:` references that need no registry.
pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A syntactically valid root key ID (nothing is signed with it).
pub const KEY_ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

/// The policies most tests use: `allowed.example.com/**` Allow, `denied.example.com/**` Deny,
/// `warn.example.com/**` Verify in mode Warn against `notary_url` (a closed port: fails), and
/// `slow.example.com/**` Verify (Enforce) against `slow_url`.
pub fn policies(notary_url: &str, slow_url: &str) -> String {
    format!(
        r#"apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: allow}}
spec: {{images: ["allowed.example.com/**"], action: Allow}}
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: deny}}
spec: {{images: ["denied.example.com/**"], action: Deny}}
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: warn}}
spec:
  images: ["warn.example.com/**"]
  mode: Warn
  notary: {{url: "{notary_url}"}}
  trustRoots: [{{keyID: "{KEY_ID}"}}]
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: slow}}
spec:
  images: ["slow.example.com/**"]
  notary: {{url: "{slow_url}"}}
  trustRoots: [{{keyID: "{KEY_ID}"}}]
"#
    )
}

/// Every `record` call: the context and the verdict of each decision.
#[derive(Default)]
pub struct RecordingSink(pub Mutex<Vec<(ReviewContext, Vec<String>)>>);

impl EventSink<Decision> for RecordingSink {
    fn record(&self, ctx: &ReviewContext, decisions: &[Decision]) {
        let verdicts = decisions.iter().map(|d| d.verdict().to_string()).collect();
        self.0.lock().unwrap().push((ctx.clone(), verdicts));
    }
}

/// How to build a test server.
pub struct Options {
    /// Policy YAML written to `policy.yaml` in the policy directory (`None`: leave it empty).
    pub policy_yaml: Option<String>,
    /// Extra kinds.
    pub kinds: KindTable,
    /// Budget (and engine deadline).
    pub budget: Duration,
    /// TLS source (`None`: self-signed).
    pub tls: Option<ServingCert>,
    /// Policy reload interval.
    pub policy_reload: Duration,
    /// Registry timeout of the engine.
    pub registry_timeout: Duration,
    /// Notary timeout of the engine.
    pub notary_timeout: Duration,
    /// The engine's caches.
    pub cache: CacheConfig,
    /// Credentials.
    pub credentials: Arc<dyn CredentialSource>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy_yaml: Some(policies(&closed_url(), &closed_url())),
            kinds: KindTable::builtin(),
            budget: Duration::from_secs(8),
            tls: None,
            policy_reload: Duration::from_millis(100),
            registry_timeout: Duration::from_secs(5),
            notary_timeout: Duration::from_secs(10),
            cache: CacheConfig::default(),
            credentials: Arc::new(Anonymous),
        }
    }
}

/// A running in-process webhook and a client for it.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: reqwest::Client,
    pub events: Arc<RecordingSink>,
    pub metrics: Arc<Metrics>,
    pub policy_dir: PathBuf,
    pub ca_pem: String,
    _dir: tempfile::TempDir,
}

/// An HTTPS client trusting only `ca_pems`, with TLS info on responses, no proxy.
pub fn client(ca_pems: &[&str]) -> reqwest::Client {
    let certs = ca_pems
        .iter()
        .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .tls_info(true)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Starts a server: policies from a fresh temp dir, a recording event sink.
pub async fn serve(opts: Options) -> TestServer {
    trustgate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    if let Some(yaml) = &opts.policy_yaml {
        std::fs::write(policy_dir.join("policy.yaml"), yaml).unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        EngineConfig {
            default_action: Action::Deny,
            deadline: opts.budget,
            registry_timeout: opts.registry_timeout,
            notary_timeout: opts.notary_timeout,
            cache: opts.cache,
        },
        Arc::new(SystemClock),
    )
    .with_metrics(Arc::clone(&metrics));
    let source = DirPolicySource::start(
        &policy_dir,
        Action::Deny,
        Some(opts.policy_reload),
        Arc::clone(&metrics),
    );
    let events = Arc::new(RecordingSink::default());
    let webhook = Webhook::new(Arc::new(engine), Arc::new(source))
        .with_credentials(opts.credentials)
        .with_events(events.clone())
        .with_kinds(opts.kinds)
        .with_budget(opts.budget);
    let tls = opts.tls.unwrap_or(ServingCert::SelfSigned {
        sans: vec!["trustgate.test.svc".into()],
        ca_out: None,
    });
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = ServerConfig::new(any, any, tls);
    let server = start(&config, Arc::new(webhook)).await.unwrap();
    let ca_pem = server.ca_pem.clone().unwrap_or_default();
    TestServer {
        addr: server.addr,
        admin_addr: server.admin_addr,
        client: client(&[&ca_pem]),
        server: Some(server),
        events,
        metrics,
        policy_dir,
        ca_pem,
        _dir: dir,
    }
}

impl TestServer {
    /// Shuts the server down, waiting up to `grace` for requests in flight.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace).await.unwrap();
        }
    }

    /// `https://localhost:<port>/validate`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/validate", self.addr.port())
    }

    /// `http://127.0.0.1:<admin port><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// POSTs `body`; returns the status and the body as JSON (`Null` if not JSON).
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let rsp = self
            .client
            .post(self.url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        let bytes = rsp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// POSTs a review and returns its `response`, checking HTTP 200 and the echoed uid.
    pub async fn review(&self, review: &Value) -> Value {
        let (status, body) = self.post(review.to_string()).await;
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        let rsp = body["response"].clone();
        assert_eq!(rsp["uid"], review["request"]["uid"], "uid echoed");
        assert!(
            rsp["auditAnnotations"]["summary"].is_string(),
            "summary annotation: {rsp:#}"
        );
        rsp
    }

    /// GET on the admin port: status and body text.
    pub async fn admin(&self, path: &str) -> (u16, String, String) {
        let rsp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(self.admin_url(path))
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        let content_type = rsp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, rsp.text().await.unwrap())
    }
}

/// Replaces the policy file `file` atomically (a sibling temp file renamed over it), so the
/// server's reload never reads it half-written.
pub fn replace_policy_file(file: &Path, yaml: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// The fixture `tests/data/admission/<name>` as JSON.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/admission")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `fixture(name)` with every occurrence of each `from` image string replaced by `to`.
pub fn fixture_with(name: &str, replace: &[(&str, &str)]) -> Value {
    let mut text = fixture(name).to_string();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap()
}

/// A Notary server that is too slow: it holds each request for `hold`, then closes the
/// connection without answering.
pub async fn slow_notary(hold: Duration) -> Scripted {
    Scripted::start(move |_| Reply::Hangup.after(hold)).await
}

/// The value of a Prometheus sample line `name{labels} value` (0 when absent).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}
