//! The API server's own admission call to `trustgate serve` in cluster mode: the binary runs
//! with the tier's KUBECONFIG (policies from the cluster), the stub serves a
//! ValidatingWebhookConfiguration for a test CRD whose objects carry a pod template
//! (`widgets.example.com`, checked through `--extra-kind`), and the policy verifies against the
//! real Notary + registry stack. A Widget with a signed image is admitted, one with an unsigned
//! image is rejected with trustgate's message, and once trustgate is stopped `failurePolicy:
//! Fail` rejects. Needs both `e2e/apiserver.sh up` and `e2e/stack.sh up`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};
use trustgate::policy::TrustPolicy;

use crate::common;
/// A port on 127.0.0.1 nothing listens on, for a child process to bind.
pub use crate::common::scripted::closed_port as free_port;
use crate::tier::{self, NS, eventually, put_stub_state, unique};

const WEBHOOK: &str = "images.trustgate.dev";

/// `trustgate serve` as a child process; killed on drop.
pub struct Serve {
    child: Child,
    admin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// `trustgate serve` in cluster mode on `listen` with the tier's KUBECONFIG and webhook
    /// certificate, the Widget kind, and further `serve` arguments `extra`.
    pub fn start_with(env: &HashMap<String, String>, listen: u16, extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let admin = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_trustgate"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{listen}"),
                "--admin-listen",
                &admin,
            ])
            .args([
                "--tls-cert",
                &env["WEBHOOK_CERT"],
                "--tls-key",
                &env["WEBHOOK_KEY"],
            ])
            .args(["--extra-kind", "example.com/Widget=spec.template.spec"])
            .args(["--namespace", "trustgate", "--budget", "8"])
            .args(extra)
            .env("KUBECONFIG", &env["KUBECONFIG"])
            .env("HOME", dir.path())
            .env("RUST_LOG", "info")
            .env_remove("TRUSTGATE_POLICY_DIR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("serve.err")).unwrap())
            .spawn()
            .expect("spawn trustgate serve");
        Serve {
            child,
            admin,
            log,
            _dir: dir,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
            .arg(format!("http://{}{path}", self.admin))
            .output()
            .expect("spawn curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn logs(&self) -> String {
        let err = self.log.with_file_name("serve.err");
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn widget_resource() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// A namespaced CRD whose objects carry a pod template at `spec.template.spec`.
pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    }))
    .unwrap()
}

pub fn widget(name: &str, image: &str) -> DynamicObject {
    DynamicObject::new(name, &widget_resource()).data(json!({
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
}

/// One webhook `name` sending Widget CREATE/UPDATE to `https://127.0.0.1:<port><path>`, with
/// the settings the chart renders.
pub fn widget_hook(env: &HashMap<String, String>, name: &str, port: u16, path: &str) -> Value {
    let ca = std::fs::read(&env["APISERVER_CA"]).unwrap();
    json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "NoneOnDryRun",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": 10,
        "namespaceSelector": {},
        "objectSelector": {},
        "clientConfig": {
            "url": format!("https://127.0.0.1:{port}{path}"),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca),
        },
        "rules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"],
                   "operations": ["CREATE", "UPDATE"], "resources": ["widgets"], "scope": "*"}]
    })
}

/// The stub's state with one webhook sending Widget CREATE/UPDATE to `port`.
fn webhook_state(env: &HashMap<String, String>, port: u16) -> Value {
    json!({"validatingwebhookconfigurations": [{
        "metadata": {"name": "trustgate-cluster-test"},
        "webhooks": [widget_hook(env, WEBHOOK, port, "/validate")]
    }]})
}

/// Applies the Widget CRD and waits until the API server serves it; its API in [`NS`].
pub async fn widgets_served(client: &kube::Client) -> Api<DynamicObject> {
    tier::apply_crd(client, &widget_crd()).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &widget_resource());
    eventually(10, "widgets served", || {
        let w = widgets.clone();
        async move { w.list(&Default::default()).await.ok().map(drop) }
    })
    .await;
    widgets
}

/// Creates TrustPolicy `NS/name` verifying `gun` against the stack's TLS Notary server, root
/// pinned by key ID, registry over plain HTTP; returns the TrustPolicy API in [`NS`].
pub async fn create_verify_policy(
    client: &kube::Client,
    st: &common::Stack,
    name: &str,
    gun: &str,
    root_id: &str,
) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<TrustPolicy>(&());
    let policies: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let spec = json!({
        "images": [gun],
        "notary": {"url": st.notary_url, "caBundle": std::fs::read_to_string(&st.ca).unwrap()},
        "registry": {"plainHTTP": true},
        "trustRoots": [{"keyID": root_id}],
    });
    let object = DynamicObject::new(name, &resource).data(json!({ "spec": spec }));
    policies
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    policies
}

/// `trustgate serve` (with `extra` arguments) on a free port, once `/readyz` says its policies
/// are synced; returns it and its port.
pub async fn serve_ready(env: &HashMap<String, String>, extra: &[&str]) -> (Serve, u16) {
    let port = free_port();
    let serve = Serve::start_with(env, port, extra);
    eventually(30, "trustgate serve ready (policies synced)", || {
        let (code, _) = serve.get("/readyz");
        async move { (code == 200).then_some(()) }
    })
    .await;
    (serve, port)
}

pub fn denial(result: Result<DynamicObject, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected the API server to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn the_api_server_calls_trustgate_serve_in_cluster_mode() {
    let Some(t) = tier::tier().await else { return };
    let Some(st) = common::stack() else { return };
    let widgets = widgets_served(&t.client).await;

    // A signed tag and an unsigned one in the real registry + Notary.
    let common::scenario::SignedRepo { gun, root_id, .. } =
        common::scenario::signed_repo(&st, "cluster/app", true);

    let policy = unique("signed-only");
    let policies = create_verify_policy(&t.client, &st, &policy, &gun, &root_id).await;

    let _webhooks = tier::STUB_WEBHOOKS.lock().await;
    let (mut serve, port) = serve_ready(&t.env, &[]).await;
    put_stub_state(&t.env, &webhook_state(&t.env, port)).await;

    let pp = PostParams::default();
    let ok = unique("signed");
    let created = widgets
        .create(&pp, &widget(&ok, &format!("{gun}:v1")))
        .await;
    assert!(
        created.is_ok(),
        "signed image refused: {created:?}\n{}",
        serve.logs()
    );

    let unsigned = format!("{gun}:v2");
    let (code, message) = denial(
        widgets
            .create(&pp, &widget(&unique("unsigned"), &unsigned))
            .await,
    );
    assert_eq!(code, 403, "{message}");
    let prefix = format!(
        "admission webhook \"{WEBHOOK}\" denied the request: trustgate: 1 image of 1 rejected: "
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.contains(&format!("{unsigned} rejected by policy {NS}/{policy}: ")),
        "{message}"
    );
    assert!(
        message.contains("(in spec.template.spec.containers[0] (name: app))"),
        "{message}"
    );

    // A dry run is decided the same way (and posts no Event).
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let (code, _) = denial(
        widgets
            .create(&dry, &widget(&unique("dry"), &unsigned))
            .await,
    );
    assert_eq!(code, 403);

    let (_, metrics) = serve.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "trustgate_image_decisions_total{{policy=\"{NS}/{policy}\",policy_kind=\"TrustPolicy\",namespace=\"{NS}\",result=\"rejected\",reason=\"unsigned\"}} 2"
        )),
        "{metrics}"
    );
    // The tier has no events.k8s.io: the one Event (not the dry run's) failed and was counted.
    eventually(10, "the failed Event counted", || {
        let (_, m) = serve.get("/metrics");
        async move {
            m.contains("trustgate_events_dropped_total{reason=\"api_error\"} 1")
                .then_some(())
        }
    })
    .await;

    // trustgate stopped: failurePolicy Fail refuses the same signed image.
    serve.stop();
    let (code, message) = denial(
        widgets
            .create(&pp, &widget(&unique("down"), &format!("{gun}:v1")))
            .await,
    );
    assert_eq!(code, 500, "{message}");
    assert!(
        message.contains(&format!("failed calling webhook \"{WEBHOOK}\"")),
        "{message}"
    );

    put_stub_state(&t.env, &json!({"validatingwebhookconfigurations": []})).await;
    widgets.delete(&ok, &DeleteParams::default()).await.unwrap();
    policies
        .delete(&policy, &DeleteParams::default())
        .await
        .unwrap();
}
