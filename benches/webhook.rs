//! Throughput and latency of the webhook path (a plain binary that prints numbers;
//! `harness = false`): the real server in-process (self-signed TLS, policies from a temp dir
//! with `action: Allow` / `action: Deny` only, so no Notary and no registry are involved),
//! driven by N concurrent keep-alive HTTPS connections (one reqwest client each) in two
//! phases of a fixed time each: back to back (maximum throughput; with a closed loop the
//! latency is about connections / throughput), then at a fixed total rate (open loop, latency
//! counted from the scheduled send time, so a stall is not hidden). Prints reviews/s, latency
//! percentiles, the process's CPU time and RSS (idle before the load and the peak, from
//! /proc/self/status).
//!
//! Run: `cargo bench --bench webhook` (64 connections, 5 s per phase, 10,000 reviews/s in the
//! fixed-rate phase, HTTP/1.1). Environment overrides: `WEBHOOK_BENCH_CONNECTIONS`,
//! `WEBHOOK_BENCH_SECS`, `WEBHOOK_BENCH_RATE`, `WEBHOOK_BENCH_HTTP2=1`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it does one 0.5 s closed-loop smoke run with 4
//! connections. Client and server share the process and its cores, so the figures are a
//! lower bound for the server alone.
//!
//! Then warm `/mutate` against warm `/validate`, closed loop, same reviews: with `--features
//! bench-support` a Pod whose two containers use a tag signed in a synthetic repository (served
//! by the engine's in-memory registry and Notary, `decision::testing`), so `/mutate` verifies
//! from the caches and pins both locations (a JSONPatch per review); without the feature, the Allow/Deny
//! reviews above (the same path, no patch).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trustgate::admission::{KindTable, ServerConfig, Webhook, start};
use trustgate::audit::LogEventSink;
use trustgate::clock::SystemClock;
use trustgate::decision::{Engine, EngineConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::{Action, DirPolicySource};
use trustgate::tls::ServingCert;

const POLICIES: &str = r#"apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: allow}
spec: {images: ["allowed.example.com/**"], action: Allow}
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: deny}
spec: {images: ["denied.example.com/**"], action: Deny}
"#;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// User + system CPU time of the process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

/// Thread name prefix of the server's runtime.
const SERVER_THREADS: &str = "webhook-srv";
/// Thread name prefix of the load generator's runtime.
const CLIENT_THREADS: &str = "bench-client";

/// User + system CPU time of the process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head
            .split_once(" (")
            .is_some_and(|(_, name)| name.starts_with(prefix))
        {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Duration::from_millis(ticks * 10)
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/admission")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// The reviews of the `/validate` vs `/mutate` comparison, and whether `/mutate` pins them.
struct PinCase {
    /// Extra policy YAML (appended to [`POLICIES`]).
    policies: String,
    /// What the engine reaches registries and Notary servers with.
    backends: fn(Engine) -> Engine,
    /// The reviews sent.
    bodies: Arc<[String; 2]>,
    /// What they are.
    label: String,
    /// Whether `/mutate` answers them with a patch.
    pins: bool,
}

/// Without a Verify backend: the Allow/Deny reviews (nothing is pinned).
#[cfg(not(feature = "bench-support"))]
async fn pin_case() -> PinCase {
    PinCase {
        policies: String::new(),
        backends: |engine| engine,
        bodies: Arc::new(review_bodies()),
        label: "Allow/Deny reviews (nothing pinned; --features bench-support pins)".into(),
        pins: false,
    }
}

/// A fake registry + Notary with a signed `v1`, a Verify policy for it, and a Pod using the
/// tag in an initContainer and a container.
#[cfg(feature = "bench-support")]
async fn pin_case() -> PinCase {
    use std::str::FromStr;
    use std::sync::OnceLock;

    use sha2::{Digest as _, Sha256};
    use trustgate::decision::testing::{MemNotary, MemRegistry};
    use trustgate::image::reference::Digest;
    use trustgate::notary::testing::Repo;

    static BACKENDS: OnceLock<(Arc<MemRegistry>, Arc<MemNotary>)> = OnceLock::new();
    let gun = "registry.test:5000/shop/app".to_string();
    let digest: [u8; 32] = Sha256::digest(b"manifest").into();
    let mut repo = Repo::new(&gun);
    repo.add_target("targets", "v1", digest);
    let root_id = repo.roles["root"].keys[0].id.clone();
    let (registry, notary) = BACKENDS.get_or_init(|| (MemRegistry::new(), MemNotary::new()));
    notary.serve(repo.publish().files);
    let text = format!("sha256:{}", hex::encode(digest));
    registry.tag("v1", Digest::from_str(&text).unwrap());
    let policies = format!(
        r#"---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {{name: signed}}
spec:
  images: ["registry.test:5000/shop/**"]
  notary: {{url: "https://notary.test"}}
  trustRoots: [{{keyID: "{root_id}"}}]
"#
    );
    let signed = format!("{gun}:v1");
    let pod = fixture("pod.json")
        .replace("denied.example.com/tools/setup:1.0", &signed)
        .replace("allowed.example.com/shop/web:1.0", &signed);
    PinCase {
        policies,
        backends: |engine| {
            let (registry, notary) = BACKENDS.get().unwrap();
            engine.with_backends(registry.clone(), notary.clone())
        },
        bodies: Arc::new([pod.clone(), pod]),
        label: "a Pod with one signed tag in 2 places (Verify, warm caches; /mutate pins both)"
            .into(),
        pins: true,
    }
}

/// The load phases' reviews: an admitted Pod (2 images) and a denied Deployment (2 images).
fn review_bodies() -> [String; 2] {
    let allowed = fixture("pod.json").replace(
        "denied.example.com/tools/setup:1.0",
        "allowed.example.com/tools/setup:1.0",
    );
    [allowed, fixture("deployment.json")]
}

async fn start_server(
    extra_policies: &str,
    backends: fn(Engine) -> Engine,
) -> (trustgate::admission::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policies.yaml"),
        format!("{POLICIES}{extra_policies}"),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        EngineConfig {
            default_action: Action::Deny,
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    )
    .with_metrics(Arc::clone(&metrics));
    let engine = backends(engine);
    let policies = DirPolicySource::start(
        dir.path(),
        Action::Deny,
        Some(Duration::from_secs(5)),
        metrics,
    );
    let webhook = Webhook::new(Arc::new(engine), Arc::new(policies))
        .with_events(Arc::new(LogEventSink))
        .with_kinds(KindTable::builtin());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tls = ServingCert::SelfSigned {
        sans: Vec::new(),
        ca_out: None,
    };
    let server = start(&ServerConfig::new(any, any, tls), Arc::new(webhook))
        .await
        .unwrap();
    (server, dir)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let connections: usize = env_or("WEBHOOK_BENCH_CONNECTIONS", if full { 64 } else { 4 });
    let secs: f64 = env_or("WEBHOOK_BENCH_SECS", if full { 5.0 } else { 0.5 });
    let http2 = std::env::var("WEBHOOK_BENCH_HTTP2").is_ok_and(|v| v == "1");
    let duration = Duration::from_secs_f64(secs.clamp(0.1, 60.0));
    trustgate::tls::install_crypto_provider();
    let rate = if full {
        Some(env_or("WEBHOOK_BENCH_RATE", 10_000.0))
    } else {
        None
    };
    // Server and load generator on separate runtimes (one worker per core each) so their CPU
    // time can be told apart.
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    };
    let (server_rt, client_rt) = (runtime(SERVER_THREADS), runtime(CLIENT_THREADS));
    let rss_start = status_kib("VmRSS");
    let case = server_rt.block_on(pin_case());
    let (server, _dir) = server_rt.block_on(start_server(&case.policies, case.backends));
    std::thread::sleep(Duration::from_millis(200));
    let rss_idle = status_kib("VmRSS");
    let answered = client_rt.block_on(run(&server, connections, duration, http2, rate, &case));
    server_rt
        .block_on(server.shutdown(Duration::from_secs(5)))
        .unwrap();
    println!("  answered     {answered} reviews per /metrics (incl. warm-up)");
    println!(
        "  rss MiB      start {:.1}  idle (server up, before the clients) {:.1}  peak VmHWM {:.1}",
        rss_start as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        status_kib("VmHWM") as f64 / 1024.0
    );
}

async fn run(
    server: &trustgate::admission::RunningServer,
    connections: usize,
    duration: Duration,
    http2: bool,
    rate: Option<f64>,
    case: &PinCase,
) -> f64 {
    let url = format!("https://localhost:{}/validate", server.addr.port());
    let mutate_url = format!("https://localhost:{}/mutate", server.addr.port());
    let ca = reqwest::Certificate::from_pem(server.ca_pem.clone().unwrap().as_bytes()).unwrap();
    // Two review shapes: an admitted Pod (2 images) and a denied Deployment (2 images).
    let bodies: Arc<[String; 2]> = Arc::new(review_bodies());

    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .no_proxy()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(10));
        b = if http2 {
            b.http2_prior_knowledge()
        } else {
            b.http1_only()
        };
        let client = b.build().unwrap();
        // Warm-up: open the connection (TLS handshake) before timing.
        let rsp = client
            .post(&url)
            .body(bodies[0].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(rsp.status(), 200);
        rsp.bytes().await.unwrap();
        clients.push(client);
    }
    // Warm the caches for the comparison, and check what /mutate answers.
    for body in case.bodies.iter() {
        for target in [&url, &mutate_url] {
            let rsp = clients[0]
                .post(target.as_str())
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(rsp.status(), 200);
            let answer: serde_json::Value = rsp.json().await.unwrap();
            if *target == mutate_url {
                assert_eq!(
                    answer["response"].get("patch").is_some(),
                    case.pins,
                    "{answer:#}"
                );
            }
        }
    }
    let closed = phase(&clients, &url, &bodies, duration, None).await;
    let open = match rate {
        Some(r) => Some(phase(&clients, &url, &bodies, duration, Some(r)).await),
        None => None,
    };
    let validate_warm = phase(&clients, &url, &case.bodies, duration, None).await;
    let mutate_warm = phase(&clients, &mutate_url, &case.bodies, duration, None).await;
    let text = reqwest::get(format!("http://{}/metrics", server.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answered: f64 = text
        .lines()
        .filter(|l| l.starts_with("trustgate_admission_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();

    println!(
        "webhook bench: {connections} keep-alive HTTPS connections ({}), Allow/Deny policies, \
         2 images per review, client and server in one process",
        if http2 { "HTTP/2" } else { "HTTP/1.1" },
    );
    closed
        .print("max throughput (closed loop: each connection sends as soon as it has its answer)");
    if let Some(open) = &open {
        open.print(&format!(
            "fixed rate {:.0}/s (open loop; latency from the scheduled send time)",
            rate.unwrap_or_default()
        ));
    }
    println!("  /validate vs /mutate on {}:", case.label);
    validate_warm.print("/validate, closed loop");
    mutate_warm.print("/mutate, closed loop");
    let per_sec = |p: &Phase| p.latencies.len() as f64 / p.elapsed.as_secs_f64();
    println!(
        "    /mutate throughput is {:.1}% of /validate's",
        100.0 * per_sec(&mutate_warm) / per_sec(&validate_warm).max(1e-9)
    );
    let errors = closed.errors
        + open.as_ref().map_or(0, |p| p.errors)
        + validate_warm.errors
        + mutate_warm.errors;
    assert_eq!(errors, 0, "requests failed");
    answered
}

/// What one load phase measured.
struct Phase {
    elapsed: Duration,
    cpu: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
    latencies: Vec<u32>,
    /// Send to answer (without the wait for a late schedule); only for the open loop.
    service: Vec<u32>,
    errors: u64,
    rss_peak_kib: u64,
}

impl Phase {
    fn print(&self, title: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!("  {title}, {secs:.1} s");
        println!(
            "    reviews    {} ok, {} errors, {:.0} reviews/s",
            self.latencies.len(),
            self.errors,
            self.latencies.len() as f64 / secs
        );
        let l = &self.latencies;
        println!(
            "    latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            percentile(l, 0.50),
            percentile(l, 0.90),
            percentile(l, 0.99),
            percentile(l, 0.999),
            percentile(l, 1.0)
        );
        if !self.service.is_empty() {
            let s = &self.service;
            println!(
                "    service ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (send to answer)",
                percentile(s, 0.50),
                percentile(s, 0.90),
                percentile(s, 0.99),
                percentile(s, 0.999),
                percentile(s, 1.0)
            );
        }
        let per_review = |d: Duration| d.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64;
        println!(
            "    cpu        {:.2} s ({:.0}% of one core): server {:.0} µs/review, client {:.0} µs/review; rss peak sampled {:.1} MiB",
            self.cpu.as_secs_f64(),
            100.0 * self.cpu.as_secs_f64() / secs,
            per_review(self.server_cpu),
            per_review(self.client_cpu),
            self.rss_peak_kib as f64 / 1024.0
        );
    }
}

/// Drives every client for `duration`: back to back (`rate` `None`), or at `rate` reviews/s
/// in total, each connection on its own schedule.
async fn phase(
    clients: &[reqwest::Client],
    url: &str,
    bodies: &Arc<[String; 2]>,
    duration: Duration,
    rate: Option<f64>,
) -> Phase {
    let cpu_before = cpu_time();
    let (server_before, client_before) = (threads_cpu(SERVER_THREADS), threads_cpu(CLIENT_THREADS));
    let started = Instant::now();
    let end = started + duration;
    let n_clients = clients.len();
    let interval = rate.map(|r| Duration::from_secs_f64(n_clients as f64 / r.max(1.0)));
    let mut tasks = Vec::with_capacity(n_clients);
    for (i, client) in clients.iter().cloned().enumerate() {
        let (url, bodies) = (url.to_string(), Arc::clone(bodies));
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(64 * 1024);
            let mut service: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            let mut n = i;
            // Staggered start for the open loop.
            let mut scheduled =
                interval.map(|iv| started + iv.mul_f64(i as f64 / n_clients as f64));
            loop {
                let t = match scheduled {
                    Some(at) => {
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                if t >= end || latencies.len() >= 4_000_000 {
                    break;
                }
                let body = bodies[n % 2].clone();
                n += 1;
                let sent = Instant::now();
                let ok = match client.post(&url).body(body).send().await {
                    Ok(rsp) => rsp.status() == 200 && rsp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if scheduled.is_some() {
                        service.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                } else {
                    errors += 1;
                }
                if let (Some(at), Some(iv)) = (scheduled.as_mut(), interval) {
                    *at += iv;
                }
            }
            (latencies, service, errors)
        }));
    }
    let mut rss_peak_kib = 0;
    while Instant::now() < end {
        rss_peak_kib = rss_peak_kib.max(status_kib("VmRSS"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut latencies, mut service) = (Vec::new(), Vec::new());
    let mut errors = 0;
    for t in tasks {
        let (l, s, e) = t.await.unwrap();
        latencies.extend(l);
        service.extend(s);
        errors += e;
    }
    latencies.sort_unstable();
    service.sort_unstable();
    Phase {
        elapsed: started.elapsed(),
        cpu: cpu_time().saturating_sub(cpu_before),
        server_cpu: threads_cpu(SERVER_THREADS).saturating_sub(server_before),
        client_cpu: threads_cpu(CLIENT_THREADS).saturating_sub(client_before),
        latencies,
        service,
        errors,
        rss_peak_kib,
    }
}
