//! TLS and lifecycle: certificate reload through a Kubernetes-style `..data` symlink swap (new
//! connections see the new certificate, an open keep-alive connection keeps working), the
//! self-signed CA written to `--ca-out`, the budget failing closed, and graceful shutdown
//! draining an in-flight request.

use std::path::Path;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use trustgate::tls::{ServingCert, generate_self_signed};

use crate::support::{self, DIGEST, Options, TestServer, fixture, fixture_with, serve};

/// DER of the first certificate of a PEM text.
fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The server certificate (DER) the response came over.
fn peer(rsp: &reqwest::Response) -> Vec<u8> {
    rsp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info with the peer certificate")
        .to_vec()
}

/// Writes `tls.crt`/`tls.key` into `dir/<version>/` and points `dir/..data` at it atomically,
/// as the kubelet's atomic writer does for a mounted Secret.
/// POSTs `review` to the server's `/validate` with `client`.
async fn post(client: &reqwest::Client, srv: &TestServer, review: &str) -> reqwest::Response {
    client
        .post(srv.url())
        .body(review.to_owned())
        .send()
        .await
        .unwrap()
}

fn publish(dir: &Path, version: &str, cert: &str, key: &str) {
    let versioned = dir.join(version);
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("tls.crt"), cert).unwrap();
    std::fs::write(versioned.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

#[tokio::test]
async fn reloaded_certificate_serves_new_connections_while_old_ones_finish() {
    trustgate::tls::install_crypto_provider();
    let a = generate_self_signed(&[]).unwrap();
    let b = generate_self_signed(&[]).unwrap();
    let mount = tempfile::tempdir().unwrap();
    publish(mount.path(), "..v1", &a.cert_pem, &a.key_pem);
    let srv = serve(Options {
        tls: Some(ServingCert::Files {
            cert: mount.path().join("tls.crt"),
            key: mount.path().join("tls.key"),
            reload_interval: Duration::from_millis(200),
        }),
        ..Options::default()
    })
    .await;
    let review = fixture("pod.json").to_string();
    let old = support::client(&[&a.ca_pem, &b.ca_pem]);
    let first = post(&old, &srv, &review).await;
    assert_eq!(first.status(), 200);
    assert_eq!(peer(&first), der(&a.cert_pem));
    first.bytes().await.unwrap();

    publish(mount.path(), "..v2", &b.cert_pem, &b.key_pem);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = support::client(&[&a.ca_pem, &b.ca_pem]);
        let rsp = post(&fresh, &srv, &review).await;
        assert_eq!(rsp.status(), 200);
        if peer(&rsp) == der(&b.cert_pem) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the swap still answers, with the old certificate.
    let again = post(&old, &srv, &review).await;
    assert_eq!(again.status(), 200);
    assert_eq!(peer(&again), der(&a.cert_pem), "same keep-alive connection");
    assert_eq!(srv.metrics.tls_reloads.get(), 2);

    // A bad pair (cert B with key A) is refused; B stays in use.
    publish(mount.path(), "..v3", &b.cert_pem, &a.key_pem);
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.metrics.tls_reload_errors.get() == 0 {
        assert!(Instant::now() < deadline, "the bad pair was not noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = support::client(&[&a.ca_pem, &b.ca_pem]);
    let rsp = fresh.post(srv.url()).body(review).send().await.unwrap();
    assert_eq!(peer(&rsp), der(&b.cert_pem));
}

#[tokio::test]
async fn self_signed_ca_is_written_and_verifies_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.crt");
    let srv = serve(Options {
        tls: Some(ServingCert::SelfSigned {
            sans: vec!["trustgate.trustgate.svc".into()],
            ca_out: Some(ca_out.clone()),
        }),
        ..Options::default()
    })
    .await;
    let ca = std::fs::read_to_string(&ca_out).unwrap();
    assert_eq!(ca, srv.ca_pem);
    let client = support::client(&[&ca]);
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/validate", srv.addr.port());
        let rsp = client
            .post(url)
            .body(fixture("pod.json").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(rsp.status(), 200, "{host}");
    }
    // A client trusting another CA refuses the server.
    let other = generate_self_signed(&[]).unwrap();
    let stranger = support::client(&[&other.ca_pem]);
    assert!(stranger.post(srv.url()).body("{}").send().await.is_err());
}

/// On paused tokio time: the budget is the first timer due, so the clock jumps to it.
#[tokio::test(start_paused = true)]
async fn budget_running_out_fails_closed() {
    let slow_notary = support::slow_notary(Duration::from_secs(10)).await;
    let srv = serve(Options {
        policy_yaml: Some(support::policies(
            &support::closed_url(),
            &slow_notary.url(),
        )),
        budget: Duration::from_millis(400),
        ..Options::default()
    })
    .await;
    let slow = format!("slow.example.com/tools/setup@{DIGEST}");
    let review = fixture_with(
        "pod.json",
        &[("denied.example.com/tools/setup:1.0", slow.as_str())],
    );
    let started = tokio::time::Instant::now();
    let rsp = srv.review(&review).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(rsp["allowed"], false);
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("not decided within 400ms (fail closed)"),
        "{message}"
    );
    let (_, _, metrics) = srv.admin("/metrics").await;
    assert_eq!(
        support::sample(
            &metrics,
            r#"trustgate_image_decisions_total{policy="slow",policy_kind="ClusterTrustPolicy",namespace="shop",result="rejected",reason="timeout"}"#
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_request_finish() {
    let slow_notary = support::slow_notary(Duration::from_millis(1500)).await;
    let mut srv = serve(Options {
        policy_yaml: Some(support::policies(
            &support::closed_url(),
            &slow_notary.url(),
        )),
        ..Options::default()
    })
    .await;
    let slow = format!("slow.example.com/tools/setup@{DIGEST}");
    let review = fixture_with(
        "pod.json",
        &[("denied.example.com/tools/setup:1.0", slow.as_str())],
    );
    let uid = review["request"]["uid"].clone();
    let (client, url) = (srv.client.clone(), srv.url());
    let in_flight = tokio::spawn(async move {
        let rsp = client.post(url).body(review.to_string()).send().await?;
        let status = rsp.status().as_u16();
        let body: serde_json::Value = rsp.json().await?;
        Ok::<_, reqwest::Error>((status, body))
    });
    // The engine is now waiting on the slow Notary: the request is in flight.
    tokio::time::timeout(Duration::from_secs(5), slow_notary.wait_for_requests(1))
        .await
        .unwrap();
    let server = srv.server.take().unwrap();
    server.shutdown_handle().graceful(Duration::from_secs(20));
    let started = Instant::now();

    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = support::client(&[&srv.ca_pem]);
    assert!(
        fresh.post(srv.url()).body("{}").send().await.is_err(),
        "new connections are refused while draining"
    );

    let (status, body) = in_flight.await.unwrap().unwrap();
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["response"]["uid"], uid);
    assert_eq!(
        body["response"]["allowed"], false,
        "the slow Notary failed: fail closed"
    );
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
}
