//! Resilience of the webhook against the real registry + Notary stack of `e2e/stack.sh`
//! (skipped with a `SKIP` line when it is not up, fatal with `TRUSTGATE_REQUIRE_STACK=1`).
//!
//! A small TCP proxy written here sits in front of the Notary server (and the registry): it
//! counts connections, records the HTTP request lines of plain-HTTP traffic, and can be switched
//! "down" (new connections are accepted and closed at once, open ones are cut) and back "up".
//!
//! * `thousand_concurrent_reviews_fetch_each_file_once`: 1,000 concurrent reviews of a new,
//!   signed image make one request per metadata file and one tag resolution (single flight).
//! * `notary_down_mid_run_fails_closed_then_recovers`: with short cache TTLs, an unreachable
//!   Notary server rejects images quickly with a reason naming it; once it is back and the
//!   negative TTL has passed, images are admitted again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use common::webhook::{self, Options, TestServer};
use trustgate::cache::CacheConfig;

// ------------------------------------------------------------------ proxy

/// What a [`Proxy`] saw.
#[derive(Default)]
struct Seen {
    /// Connections forwarded upstream.
    forwarded: AtomicUsize,
    /// Connections accepted and closed at once while down.
    rejected: AtomicUsize,
    /// Request lines (`GET /v2/... HTTP/1.1`) of the client-to-server stream (plain HTTP only).
    requests: Mutex<Vec<String>>,
}

/// A TCP proxy on 127.0.0.1:0 forwarding to `upstream`.
struct Proxy {
    addr: SocketAddr,
    seen: Arc<Seen>,
    up: watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.accept_task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (`host:port` or a URL); with `parse_http` it records the
    /// request lines of what clients send.
    async fn start(upstream: &str, parse_http: bool) -> Proxy {
        let upstream = host_port(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let (up, up_rx) = watch::channel(true);
        let task_seen = seen.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    task_seen.rejected.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                task_seen.forwarded.fetch_add(1, Ordering::SeqCst);
                let seen = parse_http.then(|| task_seen.clone());
                tokio::spawn(forward(client, upstream.clone(), seen, up_rx.clone()));
            }
        });
        Proxy {
            addr,
            seen,
            up,
            accept_task,
        }
    }

    /// Switches the proxy up (forwarding) or down (new connections closed at once, open ones
    /// cut).
    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    fn forwarded(&self) -> usize {
        self.seen.forwarded.load(Ordering::SeqCst)
    }

    fn rejected(&self) -> usize {
        self.seen.rejected.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.requests.lock().unwrap().clone()
    }
}

fn host_port(addr: &str) -> String {
    addr.trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn forward(
    client: TcpStream,
    upstream: String,
    seen: Option<Arc<Seen>>,
    mut up: watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = async {
        tokio::join!(
            pump(client_read, server_write, seen),
            pump(server_read, client_write, None)
        )
    };
    tokio::select! {
        _ = both => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

/// Copies `from` to `to` until EOF (then shuts `to` down), recording request lines if asked.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, seen: Option<Arc<Seen>>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(seen) = &seen {
            pending.extend_from_slice(&buf[..n]);
            record_lines(&mut pending, seen);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Takes every complete line off `pending` and records those that are HTTP request lines.
fn record_lines(pending: &mut Vec<u8>, seen: &Seen) {
    while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
        let line: Vec<u8> = pending.drain(..pos + 2).collect();
        let line = String::from_utf8_lossy(&line[..pos]).into_owned();
        let is_request = ["GET /", "HEAD /", "POST /", "PUT /", "PATCH /", "DELETE /"]
            .iter()
            .any(|m| line.starts_with(m));
        if is_request {
            seen.requests.lock().unwrap().push(line);
        }
    }
    if pending.len() > 64 * 1024 {
        pending.clear();
    }
}

/// The path of a request line (`GET /v2/x HTTP/1.1` → `/v2/x`).
fn path_of(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or_default()
}

// ------------------------------------------------------------------ webhook

/// Starts the in-process webhook with `policy_yaml`, the review budget (also the engine
/// deadline), 2 s registry and Notary timeouts and the cache settings, with a client of up to 64
/// keep-alive HTTP/1.1 connections.
async fn serve(policy_yaml: &str, budget: Duration, cache: CacheConfig) -> TestServer {
    let mut srv = webhook::serve(Options {
        policy_yaml: Some(policy_yaml.to_owned()),
        budget,
        policy_reload: Duration::from_millis(200),
        registry_timeout: Duration::from_secs(2),
        notary_timeout: Duration::from_secs(2),
        cache,
        ..Options::default()
    })
    .await;
    srv.client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(srv.ca_pem.as_bytes()).unwrap()])
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    srv
}

/// Posts a review of a Pod running `image` and returns its `response`.
async fn review(srv: &TestServer, uid: &str, image: &str) -> Value {
    let (status, body) = srv.post(pod_review(uid, image).to_string()).await;
    assert_eq!(status, 200, "{body:#}");
    let response = body["response"].clone();
    assert_eq!(response["uid"], uid, "{body:#}");
    response
}

fn pod_review(uid: &str, image: &str) -> Value {
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk, "requestKind": gvk,
            "resource": gvr, "requestResource": gvr,
            "name": "web-0",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web-0", "namespace": "shop"},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "oldObject": null,
            "dryRun": false,
        }
    })
}

// ------------------------------------------------------------------ stack helpers

/// `shop/signed-only` verifying `gun` against `notary_url` (with the stack CA when `ca` is
/// given), root pinned by key ID, plain-HTTP registry.
fn policy(gun: &str, notary_url: &str, ca: Option<&str>, root_id: &str) -> String {
    common::scenario::verify_policy_yaml("shop", "signed-only", gun, notary_url, ca, root_id)
}

// ------------------------------------------------------------------ tests

const REVIEWS: usize = 1_000;
const CONNECTIONS: usize = 64;

/// 1,000 concurrent reviews (64 keep-alive HTTPS connections) of a never-seen signed image:
/// all admitted, and the Notary server (plain HTTP, behind a counting proxy) is asked exactly
/// once for each metadata file, the registry once for the tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_reviews_fetch_each_file_once() {
    let Some(st) = common::stack() else { return };
    let notary_proxy = Proxy::start(&st.notary_local_url, true).await;
    let registry_proxy = Proxy::start(&st.registry_http, true).await;

    let repo = common::unique_repo("resilience/burst");
    let layout = common::push_http(&st, &format!("resilience-burst-{repo}"), &repo, "v1");
    // The image is pulled through the registry proxy, so that address is in its GUN.
    let gun = format!("{}/{repo}", registry_proxy.addr);
    let notary = st.notary_client(&st.notary_local_url);
    notary.sign(&gun, "v1", &layout.manifest_digest, layout.manifest_size);
    let root_id = notary.root_key_id(&gun);
    let notary_url = format!("http://{}", notary_proxy.addr);

    let srv = serve(
        &policy(&gun, &notary_url, None, &root_id),
        Duration::from_secs(10),
        CacheConfig::default(),
    )
    .await;
    let image = format!("{gun}:v1");
    let started = Instant::now();
    let responses: Vec<Value> = futures::stream::iter(0..REVIEWS)
        .map(|i| {
            let (srv, image) = (&srv, &image);
            async move { review(srv, &format!("burst-{i}"), image).await }
        })
        .buffer_unordered(CONNECTIONS)
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert_eq!(responses.len(), REVIEWS);
    for rsp in &responses {
        assert_eq!(rsp["allowed"], true, "{rsp:#}");
        let annotation = rsp["auditAnnotations"]["image-0"].as_str().unwrap();
        assert!(
            annotation.starts_with(&format!("ADMITTED {image}@{}", layout.manifest_digest)),
            "{annotation}"
        );
    }

    // Notary: every metadata file requested exactly once.
    let requests = notary_proxy.requests();
    let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &requests {
        *per_path.entry(path_of(line)).or_default() += 1;
    }
    let prefix = format!("/v2/{gun}/_trust/tuf/");
    for (path, count) in &per_path {
        assert!(path.starts_with(&prefix), "unexpected request {path}");
        assert_eq!(*count, 1, "{path} fetched {count} times: {requests:#?}");
    }
    let files: Vec<&str> = per_path
        .keys()
        .map(|p| p.strip_prefix(&prefix).unwrap())
        .collect();
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert!(
            files
                .iter()
                .any(|f| f.contains(&format!("{role}.")) && f.ends_with(".json")),
            "no {role} file among {files:?}"
        );
    }

    // Registry: the tag resolved once (one manifest exchange for the tag).
    let tag_requests: Vec<String> = registry_proxy
        .requests()
        .into_iter()
        .filter(|l| path_of(l) == format!("/v2/{repo}/manifests/v1"))
        .collect();
    assert_eq!(tag_requests.len(), 1, "{tag_requests:#?}");

    eprintln!(
        "{REVIEWS} reviews over {CONNECTIONS} connections in {elapsed:?}; notary: {} connection(s), \
         files {files:?}; registry: {tag_requests:?}",
        notary_proxy.forwarded()
    );
    srv.stop(Duration::from_secs(5)).await;
}

/// TLS Notary behind the proxy, short TTLs, a 3 s budget: admitted; proxy down → after the
/// trust TTL the image (and a never-reviewed tag) is rejected within the budget with a reason
/// naming the Notary server; proxy up → after the negative TTL both are admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notary_down_mid_run_fails_closed_then_recovers() {
    let Some(st) = common::stack() else { return };
    let proxy = Proxy::start(&st.notary_url, false).await;

    let repo = common::unique_repo("resilience/outage");
    let gun = format!("{}/{repo}", st.registry_http);
    let v1 = common::push_http(&st, &format!("resilience-outage-v1-{repo}"), &repo, "v1");
    let v2 = common::push_http(&st, &format!("resilience-outage-v2-{repo}"), &repo, "v2");
    let notary = st.notary_client(&st.notary_url);
    notary.sign(&gun, "v1", &v1.manifest_digest, v1.manifest_size);
    notary.addhash(&gun, "v2", &v2.manifest_digest, v2.manifest_size);
    let root_id = notary.root_key_id(&gun);
    let ca = std::fs::read_to_string(&st.ca).unwrap();
    // The stack's server certificate has SAN IP:127.0.0.1, so it matches through the proxy.
    let notary_url = format!("https://{}", proxy.addr);

    let ttl = Duration::from_secs(1);
    let negative_ttl = Duration::from_secs(1);
    let budget = Duration::from_secs(3);
    let cache = CacheConfig {
        digest_ttl: ttl,
        trust_ttl: ttl,
        decision_ttl: ttl,
        negative_ttl,
        ..CacheConfig::default()
    };
    let srv = serve(
        &policy(&gun, &notary_url, Some(&ca), &root_id),
        budget,
        cache,
    )
    .await;
    let image_v1 = format!("{gun}:v1");
    let image_v2 = format!("{gun}:v2");

    // Up: admitted, through the proxy.
    let rsp = review(&srv, "up-1", &image_v1).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");
    assert!(
        proxy.forwarded() > 0,
        "the Notary fetches went through the proxy"
    );

    // Down: past the trust TTL, nothing cached helps; each review fails closed within budget.
    proxy.set_up(false);
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let mut down_times = Vec::new();
    let mut down_message = String::new();
    for (uid, image) in [("down-v1", &image_v1), ("down-v2", &image_v2)] {
        let started = Instant::now();
        let rsp = review(&srv, uid, image).await;
        let took = started.elapsed();
        down_times.push(took);
        assert_eq!(rsp["allowed"], false, "{uid}: {rsp:#}");
        assert_eq!(rsp["status"]["code"], 403, "{uid}: {rsp:#}");
        let message = rsp["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{image} rejected by policy shop/signed-only")),
            "{message}"
        );
        // Whether the proxy's close lands before or after the ClientHello, the error is a
        // connect error ("cannot reach notary server <url>") or a TLS one ("TLS failure
        // talking to <url>"): either way the Notary server's URL is named.
        assert!(
            message.contains(&format!("{notary_url}:"))
                || message.contains(&format!("{notary_url}/")),
            "the reason names the Notary server {notary_url}: {message}"
        );
        assert!(
            took < budget + Duration::from_secs(1),
            "{uid} answered after {took:?}"
        );
        down_message = message.to_owned();
    }
    assert!(proxy.rejected() > 0, "the webhook tried the Notary server");

    // Up again: once the negative TTL has passed, both are admitted.
    proxy.set_up(true);
    tokio::time::sleep(negative_ttl + Duration::from_millis(300)).await;
    for (uid, image, layout) in [("up-v1", &image_v1, &v1), ("up-v2", &image_v2, &v2)] {
        let rsp = review(&srv, uid, image).await;
        assert_eq!(rsp["allowed"], true, "{uid}: {rsp:#}");
        let annotation = rsp["auditAnnotations"]["image-0"].as_str().unwrap();
        assert!(
            annotation.starts_with(&format!("ADMITTED {image}@{}", layout.manifest_digest)),
            "{annotation}"
        );
    }
    eprintln!(
        "outage: rejected in {down_times:?} ({down_message}); proxy forwarded {} / rejected {} \
         connection(s)",
        proxy.forwarded(),
        proxy.rejected()
    );
    srv.stop(Duration::from_secs(5)).await;
}
