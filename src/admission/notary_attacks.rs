//! TUF attacks over the wire, against the real stack in process: the decision engine and the
//! webhook server (HTTPS `/validate`, admin `/healthz`) talking to a malicious Notary server
//! scripted here on 127.0.0.1 (a raw HTTP/1.1 responder serving `builder` repositories, slowly
//! or endlessly where the attack wants). Unit tests because the metadata comes from the
//! `cfg(test)` builder (`notary::testing`); named after the attack. They live with the webhook
//! because they drive it: `notary` itself imports nothing of the application.
//!
//! - signature flood: snapshots with 20,000 bogus signatures for several repositories at once
//!   are rejected within the review budget while `/healthz` keeps answering;
//! - slow retrieval: a server dripping `timestamp.json` is cut off within the budget;
//! - endless data: a server streaming `root.json` forever is cut off at the size cap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::admission::{RunningServer, ServerConfig, Webhook, start};
use crate::cache::CacheConfig;
use crate::clock::SystemClock;
use crate::decision::{Engine, EngineConfig};
use crate::metrics::Metrics;
use crate::notary::testing::{MemSource, Repo};
use crate::policy::{Action, DirPolicySource};
use crate::tls::ServingCert;

/// How the malicious server answers one file.
#[derive(Clone)]
enum Answer {
    Bytes(Vec<u8>),
    /// The bytes, one per `Duration` (Content-Length announced).
    Drip(Vec<u8>, Duration),
    /// Chunks of spaces forever (no Content-Length, connection close).
    Endless,
}

/// A scripted Notary: `/v2/<gun>/_trust/tuf/<file>` from a map, 404 otherwise.
struct EvilNotary {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EvilNotary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EvilNotary {
    async fn start(files: HashMap<String, Answer>) -> EvilNotary {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let files = Arc::new(files);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(conn, files.clone()));
            }
        });
        EvilNotary { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn answer(mut conn: TcpStream, files: Arc<HashMap<String, Answer>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let Some(answer) = files.get(&path).cloned() else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    };
    match answer {
        Answer::Bytes(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&body).await;
        }
        Answer::Drip(body, every) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            for b in body {
                if conn.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
        Answer::Endless => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            while conn.write_all(&chunk).await.is_ok() {}
        }
    }
}

/// Every file of `src` under `gun`, as the notary server's paths.
fn serve_repo(files: &mut HashMap<String, Answer>, gun: &str, src: &MemSource) {
    for (name, raw) in &src.files {
        files.insert(
            format!("/v2/{gun}/_trust/tuf/{name}"),
            Answer::Bytes(raw.clone()),
        );
    }
}

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn repo(gun: &str) -> Repo {
    let mut r = Repo::new(gun);
    r.add_target("targets", "v1", [0xaa; 32]);
    r
}

/// The webhook in process: Verify `prefix/**` against `notary_url` pinning `root_ids`.
struct Hook {
    server: RunningServer,
    client: reqwest::Client,
    admin: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Hook {
    async fn start(prefix: &str, notary_url: &str, root_ids: &[String], budget: Duration) -> Hook {
        crate::tls::install_crypto_provider();
        let roots: String = root_ids
            .iter()
            .map(|id| format!("  - keyID: \"{id}\"\n"))
            .collect();
        let policy = format!(
            "apiVersion: trustgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {{name: signed, namespace: shop}}\n\
             spec:\n  images: [\"{prefix}/**\"]\n  notary:\n    url: {notary_url}\n  trustRoots:\n{roots}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("policy.yaml"), policy).expect("policy");
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::new(
            EngineConfig {
                default_action: Action::Deny,
                deadline: budget,
                registry_timeout: Duration::from_secs(2),
                notary_timeout: budget,
                cache: CacheConfig::default(),
            },
            Arc::new(SystemClock),
        )
        .with_metrics(metrics.clone());
        let source = DirPolicySource::start(dir.path(), Action::Deny, None, metrics);
        let webhook = Webhook::new(Arc::new(engine), Arc::new(source)).with_budget(budget);
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let tls = ServingCert::SelfSigned {
            sans: vec!["trustgate.test.svc".into()],
            ca_out: None,
        };
        let server = start(&ServerConfig::new(any, any, tls), Arc::new(webhook))
            .await
            .expect("server");
        let ca = server.ca_pem.clone().expect("ca");
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca")])
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let admin = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Hook {
            server,
            client,
            admin,
            _dir: dir,
        }
    }

    /// The review's `response` and how long it took.
    async fn review(&self, uid: &str, image: &str) -> (Value, Duration) {
        let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
        let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
        let review = json!({
            "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": uid, "kind": gvk, "requestKind": gvk, "resource": gvr, "requestResource": gvr,
                "name": "web-0", "namespace": "shop", "operation": "CREATE",
                "userInfo": {"username": "alice@example.com"},
                "object": {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web-0", "namespace": "shop"},
                    "spec": {"containers": [{"name": "app", "image": image}]}},
                "oldObject": null, "dryRun": false,
            }
        });
        let started = Instant::now();
        let rsp = self
            .client
            .post(format!(
                "https://localhost:{}/validate",
                self.server.addr.port()
            ))
            .header("content-type", "application/json")
            .body(review.to_string())
            .send()
            .await
            .expect("review");
        let body: Value = rsp.json().await.expect("json");
        (body["response"].clone(), started.elapsed())
    }

    /// The slowest `/healthz` answer while `work` runs (polled every 20 ms).
    async fn healthz_during<F: std::future::Future>(&self, work: F) -> (F::Output, Duration) {
        let url = format!("http://{}/healthz", self.server.admin_addr);
        let worst = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let poll = {
            let (admin, worst) = (self.admin.clone(), worst.clone());
            tokio::spawn(async move {
                loop {
                    let started = Instant::now();
                    let ok = admin
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let took = if ok { started.elapsed() } else { Duration::MAX };
                    if let Ok(mut w) = worst.lock() {
                        *w = (*w).max(took);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let out = work.await;
        poll.abort();
        let worst = worst.lock().map(|w| *w).unwrap_or(Duration::MAX);
        (out, worst)
    }
}

fn reason(rsp: &Value) -> String {
    rsp["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_flood_is_rejected_within_the_deadline_while_healthz_answers() {
    const FLOODED: usize = 4;
    let prefix = "registry.test/flood";
    let budget = Duration::from_secs(1);
    let mut files = HashMap::new();
    let mut root_ids = Vec::new();
    for i in 0..=FLOODED {
        let gun = format!("{prefix}/app{i}");
        let mut r = repo(&gun);
        root_ids.push(r.roles["root"].keys[0].id.clone());
        if i > 0 {
            let key = r.roles["snapshot"].keys[0].id.clone();
            r.bytes_hooks.insert(
                "snapshot".into(),
                Box::new(move |raw| {
                    crate::notary::tests::attacks::prepend_bogus_signatures(raw, &key, 20_000)
                }),
            );
        }
        serve_repo(&mut files, &gun, &r.publish());
    }
    let notary = EvilNotary::start(files).await;
    let hook = Hook::start(prefix, &notary.url(), &root_ids, budget).await;

    // The control: app0 is clean and admitted (the harness reaches the server and verifies).
    let (rsp, _) = hook
        .review("clean", &format!("{prefix}/app0:v1@{DIGEST}"))
        .await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");

    let reviews = futures::future::join_all((1..=FLOODED).map(|i| {
        let image = format!("{prefix}/app{i}:v1@{DIGEST}");
        let hook = &hook;
        async move { hook.review(&format!("flood-{i}"), &image).await }
    }));
    let (results, worst_healthz) = hook.healthz_during(reviews).await;
    for (rsp, took) in &results {
        assert_eq!(rsp["allowed"], false, "{rsp:#}");
        // The margin absorbs a loaded 2-core machine (CI runs builds beside the tests); an
        // unbounded verification of 4 x 20,000 signatures would take far longer.
        assert!(
            took < &(budget + Duration::from_secs(2)),
            "answered after {took:?} (budget {budget:?}): {}",
            reason(rsp)
        );
        // Refused for its signatures, or (a debug build on a busy machine hashing and parsing
        // 3.7 MB four times at once) by the deadline: either way within the budget.
        let why = reason(rsp);
        assert!(
            why.contains("20001 signatures, more than the limit")
                || why.contains("not decided within"),
            "{why}"
        );
    }
    assert!(
        worst_healthz < Duration::from_secs(2),
        "/healthz took {worst_healthz:?} during the flood"
    );
    eprintln!(
        "flood: {FLOODED} reviews answered in {:?}; worst /healthz {worst_healthz:?}",
        results.iter().map(|(_, t)| *t).collect::<Vec<_>>()
    );
    hook.server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_retrieval_is_cut_off_within_the_budget() {
    let prefix = "registry.test/slow";
    let gun = format!("{prefix}/app");
    let budget = Duration::from_secs(1);
    let r = repo(&gun);
    let mut files = HashMap::new();
    let src = r.publish();
    serve_repo(&mut files, &gun, &src);
    files.insert(
        format!("/v2/{gun}/_trust/tuf/timestamp.json"),
        Answer::Drip(
            src.files["timestamp.json"].clone(),
            Duration::from_millis(50),
        ),
    );
    let notary = EvilNotary::start(files).await;
    let hook = Hook::start(
        prefix,
        &notary.url(),
        &[r.roles["root"].keys[0].id.clone()],
        budget,
    )
    .await;
    let ((rsp, took), worst_healthz) = hook
        .healthz_during(hook.review("slow", &format!("{gun}:v1@{DIGEST}")))
        .await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    assert!(
        took < budget + Duration::from_secs(1),
        "{took:?}: {}",
        reason(&rsp)
    );
    assert!(worst_healthz < Duration::from_secs(1), "{worst_healthz:?}");
    hook.server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_data_root_is_cut_off_at_the_size_cap() {
    let prefix = "registry.test/endless";
    let gun = format!("{prefix}/app");
    let budget = Duration::from_secs(5);
    let r = repo(&gun);
    let mut files = HashMap::new();
    serve_repo(&mut files, &gun, &r.publish());
    files.insert(format!("/v2/{gun}/_trust/tuf/root.json"), Answer::Endless);
    let notary = EvilNotary::start(files).await;
    let hook = Hook::start(
        prefix,
        &notary.url(),
        &[r.roles["root"].keys[0].id.clone()],
        budget,
    )
    .await;
    let (rsp, took) = hook.review("endless", &format!("{gun}:v1@{DIGEST}")).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    assert!(took < budget, "{took:?}");
    let why = reason(&rsp);
    assert!(
        why.contains(&crate::limits::LIMITS.root_bytes.to_string()) || why.contains("large"),
        "{why}"
    );
    hook.server
        .shutdown(Duration::from_secs(2))
        .await
        .expect("stop");
}
