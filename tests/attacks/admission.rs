//! Attacks on admission (see tests/attacks.rs).

// ---- image volumes (issue 9, H1) ----

/// Policy YAML for the image-volume attack: `gun` verified against the stack's Notary with
/// `root_id` pinned; everything else falls to the default action (Deny).
fn image_volume_policy(st: &crate::common::Stack, gun: &str, root_id: &str) -> String {
    let ca = std::fs::read_to_string(&st.ca).unwrap();
    let ca_block: String = ca.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        r#"apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: signed-only, namespace: shop}}
spec:
  images: ["{gun}"]
  notary:
    url: {notary}
    caBundle: |
{ca_block}  registry: {{plainHTTP: true}}
  trustRoots:
  - keyID: "{root_id}"
"#,
        notary = st.notary_url,
    )
}

/// `trustgate serve`'s webhook in process (real HTTPS on 127.0.0.1:0) with policies from
/// `policy_yaml`; returns the server, its `/validate` URL and a client trusting its CA.
async fn image_volume_webhook(
    policy_yaml: &str,
) -> (
    trustgate::admission::RunningServer,
    String,
    reqwest::Client,
    tempfile::TempDir,
) {
    use std::sync::Arc;
    use trustgate::admission::{ServerConfig, Webhook, start};
    use trustgate::decision::{Engine, EngineConfig};
    use trustgate::policy::{Action, DirPolicySource};
    trustgate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy_yaml).unwrap();
    let engine = Engine::new(
        EngineConfig::default(),
        Arc::new(trustgate::clock::SystemClock),
    );
    let metrics = Arc::clone(engine.metrics());
    let source = DirPolicySource::start(dir.path(), Action::Deny, None, metrics);
    let webhook = Webhook::new(Arc::new(engine), Arc::new(source));
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tls = trustgate::tls::ServingCert::SelfSigned {
        sans: vec![],
        ca_out: None,
    };
    let server = start(&ServerConfig::new(any, any, tls), Arc::new(webhook))
        .await
        .unwrap();
    let ca = server.ca_pem.clone().unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/validate", server.addr.port());
    (server, url, client, dir)
}

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
    let repo = common::unique_repo("attacks/image-volume");
    let gun = format!("{}/{repo}", st.registry_http);
    let signed = common::push_http(&st, &format!("imgvol-signed-{repo}"), &repo, "v1");
    common::push_http(&st, &format!("imgvol-unsigned-{repo}"), &repo, "v2");
    let notary = st.notary_client(&st.notary_url);
    notary.sign(&gun, "v1", &signed.manifest_digest, signed.manifest_size);
    let root_id = notary.root_key_id(&gun);
    let (server, url, client, _dir) =
        image_volume_webhook(&image_volume_policy(&st, &gun, &root_id)).await;
    let post = |spec: serde_json::Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let rsp = client
                .post(&url)
                .json(&image_volume_review(spec))
                .send()
                .await
                .unwrap();
            assert_eq!(rsp.status(), 200);
            let body: serde_json::Value = rsp.json().await.unwrap();
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
    server
        .shutdown(std::time::Duration::from_secs(1))
        .await
        .unwrap();
}
