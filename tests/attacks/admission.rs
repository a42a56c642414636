//! Attacks on admission (see tests/attacks.rs): forged reviews that grow memory through metric
//! labels, registry host aliases that slip past host-specific policies, callers without the
//! API server's client certificate, and reviews one past the size and depth limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use trustgate::admission::{ServerConfig, Webhook, start};
use trustgate::clock::SystemClock;
use trustgate::decision::{Anonymous, Engine, EngineConfig};
use trustgate::limits::LIMITS;
use trustgate::metrics::Metrics;
use trustgate::policy::{
    Action, DirPolicySource, LoadedPolicy, PolicyId, PolicySet, TrustPolicySpec,
};
use trustgate::tls::ServingCert;

use crate::common::webhook as support;

fn policy(name: &str, images: &[&str], action: Action) -> LoadedPolicy {
    LoadedPolicy::new(
        PolicyId::cluster(name),
        TrustPolicySpec {
            images: images.iter().map(|s| (*s).to_string()).collect(),
            action,
            ..TrustPolicySpec::default()
        },
    )
    .unwrap()
}

/// M5: 200 reviews with random kinds (each a new label value on today's main) grow `/metrics`
/// by less than 200 KB.
#[tokio::test]
async fn forged_kinds_do_not_grow_metrics() {
    let server = support::serve(support::Options::default()).await;
    let (_, _, before) = server.admin("/metrics").await;
    let pod = support::fixture("pod.json");
    for i in 0..200 {
        let mut review = pod.clone();
        let kind = format!("Forged{i}{}", "x".repeat(1500));
        review["request"]["kind"]["kind"] = json!(kind);
        review["request"]["uid"] = json!(format!("forged-{i}"));
        let (status, _) = server.post(serde_json::to_vec(&review).unwrap()).await;
        assert_eq!(status, 200);
    }
    let (_, _, after) = server.admin("/metrics").await;
    let growth = after.len().saturating_sub(before.len());
    assert!(growth < 200_000, "/metrics grew by {growth} bytes");
    assert!(
        !after.contains("Forged1"),
        "forged kinds are not label values"
    );
    assert!(after.contains(r#"kind="other""#), "{after}");
}

/// L1: `registry.example.com:443/...` (and Docker Hub's aliases) are decided by the policy for
/// the registry they name, not by a broader Allow.
#[tokio::test]
async fn host_alias_bypass_is_decided_by_the_host_policy() {
    let mut set = PolicySet::new(Action::Deny);
    set.extend(vec![
        policy("anything", &["**"], Action::Allow),
        policy("shop-registry", &["registry.example.com/**"], Action::Deny),
        policy("hub-nginx", &["docker.io/library/nginx"], Action::Deny),
    ]);
    let engine = Engine::new(EngineConfig::default(), Arc::new(SystemClock));
    let images: Vec<String> = [
        "registry.example.com:443/shop/app:v1",
        "REGISTRY.example.com/shop/app:v1",
        "index.docker.io/library/nginx:1",
        "registry-1.docker.io/library/nginx:1",
        "registry-1.docker.io:443/nginx",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let decisions = engine
        .decide_all("default", &images, &set, &Anonymous)
        .await;
    for d in &decisions {
        assert!(!d.allowed, "{} was admitted: {}", d.image, d.reason);
        assert_ne!(d.policy.as_deref(), Some("anything"), "{}", d.image);
    }
    assert_eq!(decisions[0].policy.as_deref(), Some("shop-registry"));
    assert_eq!(
        decisions[0].reference.as_deref(),
        Some("registry.example.com/shop/app:v1")
    );
    assert_eq!(decisions[2].policy.as_deref(), Some("hub-nginx"));
}

/// A client CA and a client certificate it issued (PEM): (ca, cert, key).
fn client_pki() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

async fn mtls_server(client_ca: &std::path::Path) -> (trustgate::admission::RunningServer, String) {
    trustgate::tls::install_crypto_provider();
    let dir = client_ca.parent().unwrap().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(EngineConfig::default(), Arc::new(SystemClock));
    let source = DirPolicySource::start(&dir, Action::Deny, None, Arc::clone(&metrics));
    let webhook = Webhook::new(Arc::new(engine), Arc::new(source));
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tls = ServingCert::SelfSigned {
        sans: vec![],
        ca_out: None,
    };
    let config = ServerConfig::new(any, any, tls).with_client_ca(Some(client_ca.to_path_buf()));
    let server = start(&config, Arc::new(webhook)).await.unwrap();
    let ca = server.ca_pem.clone().unwrap();
    (server, ca)
}

/// M5: under `--client-ca`, a caller without a client certificate from that CA gets no answer
/// (the TLS handshake fails); the API server's certificate is answered.
#[tokio::test]
async fn caller_without_client_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = client_pki();
    let ca_path = dir.path().join("client-ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let (server, serving_ca) = mtls_server(&ca_path).await;
    let url = format!("https://localhost:{}/validate", server.addr.port());
    let review = support::fixture("pod.json");

    let anonymous = support::client(&[&serving_ca]);
    let err = anonymous.post(&url).json(&review).send().await;
    assert!(
        err.is_err(),
        "answered without a client certificate: {err:?}"
    );

    // A certificate from another CA is refused too.
    let (_, other_cert, other_key) = client_pki();
    let stranger = client_with_identity(&serving_ca, &other_cert, &other_key);
    assert!(stranger.post(&url).json(&review).send().await.is_err());

    let apiserver = client_with_identity(&serving_ca, &cert, &key);
    let rsp = apiserver.post(&url).json(&review).send().await.unwrap();
    assert_eq!(rsp.status(), 200);
    let body: Value = rsp.json().await.unwrap();
    assert!(body["response"]["uid"].is_string(), "{body}");
}

fn client_with_identity(serving_ca: &str, cert: &str, key: &str) -> reqwest::Client {
    let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(serving_ca.as_bytes()).unwrap()])
        .identity(identity)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Limits: a review one byte past `LIMITS.review_bytes` is refused (413), one nested one level
/// past `LIMITS.json_depth` is refused (400) with a reason naming the limit.
#[tokio::test]
async fn reviews_one_past_the_size_and_depth_limits_are_refused() {
    let server = support::serve(support::Options::default()).await;
    let mut review = support::fixture("pod.json");
    let text = serde_json::to_string(&review).unwrap();
    let pad = LIMITS.review_bytes + 1 - text.len() - r#","pad":"""#.len();
    review["pad"] = json!("x".repeat(pad));
    let body = serde_json::to_vec(&review).unwrap();
    assert_eq!(body.len(), LIMITS.review_bytes + 1);
    let (status, _) = server.post(body).await;
    assert_eq!(status, 413);

    // `request.object.deep` holds arrays below three objects (review, request, object).
    let mut deep = json!("leaf");
    for _ in 0..LIMITS.json_depth - 2 {
        deep = json!([deep]);
    }
    let mut review = support::fixture("pod.json");
    review["request"]["object"]["deep"] = deep;
    let (status, body) = server.post(serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("deeper than the limit"), "{body}");

    let mut ok = json!("leaf");
    for _ in 0..LIMITS.json_depth - 3 {
        ok = json!([ok]);
    }
    let mut review = support::fixture("pod.json");
    review["request"]["object"]["deep"] = ok;
    let (status, body) = server.post(serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

// ---- image volumes (issue 9, H1) ----

/// An AdmissionReview (Pod CREATE in `shop`) for `spec`.
fn image_volume_review(spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "image-volume-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web-0",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "mallory"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web-0", "namespace": "shop"}, "spec": spec},
            "oldObject": null
        }
    })
}

/// H1: a Pod mounting an unsigned image as an image volume next to a signed container image.
/// Before the fix, extract.rs read only container lists and the Pod was admitted.
#[tokio::test]
async fn image_volume_with_unsigned_image_is_rejected() {
    use crate::common;
    let Some(st) = common::stack() else { return };
    let common::scenario::SignedRepo { gun, root_id, .. } =
        common::scenario::signed_repo(&st, "attacks/image-volume", true);
    let server = support::serve(support::Options {
        policy_yaml: Some(common::scenario::signed_only_policy(
            &st,
            "signed-only",
            &gun,
            &root_id,
        )),
        ..support::Options::default()
    })
    .await;
    let post = |spec: serde_json::Value| {
        let body = image_volume_review(spec).to_string();
        let server = &server;
        async move {
            let (status, body) = server.post(body).await;
            assert_eq!(status, 200, "{body:#}");
            body["response"].clone()
        }
    };
    let pod = |volume_image: &str| {
        serde_json::json!({
            "containers": [{"name": "app", "image": format!("{gun}:v1")}],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "payload", "image": {"reference": volume_image}}
            ]
        })
    };

    // The control: the same Pod with a signed image volume is admitted.
    let rsp = post(pod(&format!("{gun}:v1"))).await;
    assert_eq!(rsp["allowed"], true, "{rsp:#}");

    // The attack: the image volume names an unsigned tag of the same repository.
    let unsigned = format!("{gun}:v2");
    let rsp = post(pod(&unsigned)).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{unsigned} rejected by policy shop/signed-only: tag v2 is not signed"
        )),
        "{message}"
    );
    assert!(
        message.ends_with("(in spec.volumes[1] (name: payload))"),
        "{message}"
    );

    // An image no policy matches, mounted as a volume, meets the default Deny.
    let rsp = post(pod("docker.io/library/busybox:1")).await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");

    // An image volume without a reference is refused, not skipped.
    let rsp = post(serde_json::json!({
        "containers": [{"name": "app", "image": format!("{gun}:v1")}],
        "volumes": [{"name": "payload", "image": {"pullPolicy": "Always"}}]
    }))
    .await;
    assert_eq!(rsp["allowed"], false, "{rsp:#}");
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.volumes[0] (name: payload) is an image volume without a reference"),
        "{message}"
    );
    server.stop(std::time::Duration::from_secs(1)).await;
}
