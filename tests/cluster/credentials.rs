//! `SecretCredentials` (cluster mode's per-request credentials) on the scripted API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use trustgate::admission::credentials::{CredentialRequest, RequestCredentials};
use trustgate::clock::SystemClock;
use trustgate::cluster::{SecretConfig, SecretCredentials};
use trustgate::decision::{CredentialSource, Engine, EngineConfig, PolicyCredentials};
use trustgate::image::credentials::Credentials;
use trustgate::policy::{
    Action, LoadedPolicy, NotarySpec, PolicyId, PolicySet, RegistrySpec, SecretRef,
    TrustPolicySpec, TrustRoot,
};

use crate::mock::{docker_config, fake, notary_of, objects, problem_of, registry_of, secret};

const DOCKER_JSON: &str = "kubernetes.io/dockerconfigjson";

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: password.into(),
    }
}

/// A valid Verify spec for `images`, optionally naming registry and Notary secrets.
fn spec(
    images: &[&str],
    registry_secret: Option<&str>,
    notary_secret: Option<&str>,
) -> TrustPolicySpec {
    TrustPolicySpec {
        images: images.iter().map(|s| (*s).to_string()).collect(),
        action: Action::Verify,
        notary: Some(NotarySpec {
            url: Some("https://notary.example.com:4443".into()),
            credentials_secret: notary_secret.map(|n| SecretRef { name: n.into() }),
            ..NotarySpec::default()
        }),
        registry: registry_secret.map(|n| RegistrySpec {
            credentials_secret: Some(SecretRef { name: n.into() }),
            ..RegistrySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            key_id: Some("a".repeat(64)),
            ..TrustRoot::default()
        }],
        ..TrustPolicySpec::default()
    }
}

fn set(policies: Vec<LoadedPolicy>) -> PolicySet {
    let mut set = PolicySet::new(Action::Deny);
    set.extend(policies);
    set
}

fn request<'a>(pull: &'a [String], account: Option<&'a str>) -> CredentialRequest<'a> {
    CredentialRequest {
        namespace: "shop",
        image_pull_secrets: pull,
        service_account: account,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

struct Fallback;

impl CredentialSource for Fallback {
    fn credentials<'a>(
        &'a self,
        _: &'a LoadedPolicy,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<PolicyCredentials, String>> {
        Box::pin(async {
            Ok(PolicyCredentials {
                registry: basic("fallback", "fb"),
                notary: Some(("notary-fallback".into(), "nf".into())),
            })
        })
    }
}

#[tokio::test]
async fn pull_secrets_are_merged_in_order_and_used_for_their_registry() {
    let (client, api) = fake(objects(
        vec![
            secret(
                "shop",
                "pull-a",
                DOCKER_JSON,
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[("reg-a.example:5000", "a", "pa")]),
                )],
            ),
            secret(
                "shop",
                "pull-b",
                DOCKER_JSON,
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[
                        ("reg-a.example:5000", "late", "x"),
                        ("reg-b.example", "b", "pb"),
                    ]),
                )],
            ),
            secret(
                "shop",
                "opaque",
                "Opaque",
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[("reg-c.example", "c", "pc")]),
                )],
            ),
            secret(
                "shop",
                "from-account",
                DOCKER_JSON,
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[("reg-c.example", "sa", "psa")]),
                )],
            ),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"namespace": "shop", "name": "builder"},
                   "imagePullSecrets": [{"name": "from-account"}]}),
        ],
        &[],
    ));
    let policy = LoadedPolicy::new(
        PolicyId::namespaced("shop", "p"),
        spec(
            &[
                "reg-a.example:5000/**",
                "reg-b.example/**",
                "reg-c.example/**",
            ],
            None,
            None,
        ),
    )
    .unwrap();
    let creds = SecretCredentials::new(client, "trustgate", SecretConfig::default());
    let pull = strings(&["pull-a", "missing", "opaque", "pull-b"]);

    let source = creds.for_request(request(&pull, Some("builder"))).await;
    assert_eq!(
        registry_of(source.as_ref(), &policy, "reg-a.example:5000").await,
        basic("a", "pa"),
        "first secret wins"
    );
    assert_eq!(
        registry_of(source.as_ref(), &policy, "reg-b.example").await,
        basic("b", "pb")
    );
    assert_eq!(
        registry_of(source.as_ref(), &policy, "reg-c.example").await,
        Credentials::Anonymous,
        "Opaque secrets are not pull secrets, and the account's are not used when the pod lists its own"
    );
    assert_eq!(
        problem_of(source.as_ref(), &policy).await,
        None,
        "a missing pull secret is skipped, as the kubelet does"
    );
    assert_eq!(notary_of(source.as_ref(), &policy).await, None);
    let mut paths = api.paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            "GET /api/v1/namespaces/shop/secrets/missing",
            "GET /api/v1/namespaces/shop/secrets/opaque",
            "GET /api/v1/namespaces/shop/secrets/pull-a",
            "GET /api/v1/namespaces/shop/secrets/pull-b",
        ]
    );

    // No pull secrets in the PodSpec: its service account's.
    let source = creds.for_request(request(&[], Some("builder"))).await;
    assert_eq!(
        registry_of(source.as_ref(), &policy, "reg-c.example").await,
        basic("sa", "psa")
    );
    assert!(
        api.paths()
            .contains(&"GET /api/v1/namespaces/shop/serviceaccounts/builder".to_string())
    );

    // Cached: the same request reads nothing again.
    let before = api.requests().len();
    let source = creds.for_request(request(&pull, Some("builder"))).await;
    assert_eq!(
        registry_of(source.as_ref(), &policy, "reg-b.example").await,
        basic("b", "pb")
    );
    assert_eq!(api.requests().len(), before, "{:?}", api.paths());
}

#[tokio::test]
async fn policy_secrets_come_from_the_policy_namespace_or_trustgates() {
    let notary_config = docker_config(&[("https://notary.example.com:4443", "nu", "np")]);
    let (client, api) = fake(objects(
        vec![
            secret(
                "shop",
                "reg-creds",
                DOCKER_JSON,
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[("reg.example", "r", "pr")]),
                )],
            ),
            secret(
                "shop",
                "notary-creds",
                "Opaque",
                &[("username", "u"), ("password", "p")],
            ),
            secret(
                "trustgate",
                "cluster-reg",
                "kubernetes.io/basic-auth",
                &[
                    ("username", "cu"),
                    ("password", "cp"),
                    ("registry", "other.example"),
                ],
            ),
            secret(
                "trustgate",
                "cluster-notary",
                DOCKER_JSON,
                &[(".dockerconfigjson", &notary_config)],
            ),
            secret(
                "shop",
                "pod-pull",
                DOCKER_JSON,
                &[(
                    ".dockerconfigjson",
                    &docker_config(&[("reg.example", "pod", "pp")]),
                )],
            ),
        ],
        &[],
    ));
    let namespaced = LoadedPolicy::new(
        PolicyId::namespaced("shop", "tp"),
        spec(
            &["reg.example/team/**"],
            Some("reg-creds"),
            Some("notary-creds"),
        ),
    )
    .unwrap();
    let cluster = LoadedPolicy::new(
        PolicyId::cluster("ctp"),
        spec(
            &["other.example/**"],
            Some("cluster-reg"),
            Some("cluster-notary"),
        ),
    )
    .unwrap();
    let creds = SecretCredentials::new(client, "trustgate", SecretConfig::default())
        .with_fallback(Arc::new(Fallback));
    let pull = strings(&["pod-pull"]);
    let source = creds.for_request(request(&pull, None)).await;

    assert_eq!(
        registry_of(source.as_ref(), &namespaced, "reg.example").await,
        basic("r", "pr"),
        "the policy's secret, not the pod's"
    );
    assert_eq!(
        notary_of(source.as_ref(), &namespaced).await,
        Some(("u".into(), "p".into()))
    );
    assert_eq!(
        registry_of(source.as_ref(), &cluster, "other.example").await,
        basic("cu", "cp")
    );
    assert_eq!(
        registry_of(source.as_ref(), &cluster, "evil.example").await,
        Credentials::Anonymous,
        "a username/password login goes only to its `registry`"
    );
    assert_eq!(
        notary_of(source.as_ref(), &cluster).await,
        Some(("nu".into(), "np".into())),
        "docker config matched against the Notary host"
    );
    assert_eq!(problem_of(source.as_ref(), &namespaced).await, None);
    assert_eq!(problem_of(source.as_ref(), &cluster).await, None);
    let mut paths = api.paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            "GET /api/v1/namespaces/shop/secrets/notary-creds",
            "GET /api/v1/namespaces/shop/secrets/reg-creds",
            "GET /api/v1/namespaces/trustgate/secrets/cluster-notary",
            "GET /api/v1/namespaces/trustgate/secrets/cluster-reg",
        ],
        "pull secrets are not read when every policy names its own"
    );
}

#[tokio::test]
async fn missing_or_unreadable_policy_secrets_fail_closed_pull_secrets_fall_back() {
    let (client, api) = fake(objects(
        vec![secret("shop", "empty", "Opaque", &[("token", "t")])],
        &[
            "/api/v1/namespaces/shop/secrets/broken",
            "/api/v1/namespaces/shop/secrets/pull-broken",
        ],
    ));
    let absent = LoadedPolicy::new(
        PolicyId::namespaced("shop", "absent"),
        spec(&["reg.example/absent/**"], Some("absent"), None),
    )
    .unwrap();
    let broken = LoadedPolicy::new(
        PolicyId::namespaced("shop", "broken"),
        spec(&["reg.example/broken/**"], None, Some("broken")),
    )
    .unwrap();
    let empty = LoadedPolicy::new(
        PolicyId::namespaced("shop", "empty"),
        spec(&["reg.example/empty/**"], Some("empty"), None),
    )
    .unwrap();
    let pod = LoadedPolicy::new(
        PolicyId::namespaced("shop", "pod"),
        spec(&["reg.example/pod/**"], None, None),
    )
    .unwrap();
    let policies = set(vec![
        absent.clone(),
        broken.clone(),
        empty.clone(),
        pod.clone(),
    ]);
    let creds = SecretCredentials::new(
        client,
        "trustgate",
        SecretConfig {
            timeout: Duration::from_secs(1),
            ..SecretConfig::default()
        },
    )
    .with_fallback(Arc::new(Fallback));
    let pull = strings(&["pull-missing", "pull-broken"]);
    let source = creds.for_request(request(&pull, None)).await;

    assert_eq!(
        problem_of(source.as_ref(), &absent).await.as_deref(),
        Some("registry.credentialsSecret shop/absent: not found")
    );
    let broken_problem = problem_of(source.as_ref(), &broken).await.unwrap();
    assert!(
        broken_problem.starts_with("notary.credentialsSecret shop/broken: cannot read it: "),
        "{broken_problem}"
    );
    assert_eq!(
        problem_of(source.as_ref(), &empty).await.as_deref(),
        Some(
            "registry.credentialsSecret shop/empty: has none of the keys .dockerconfigjson, .dockercfg, username and password"
        )
    );
    // Unusable pull secrets are skipped: the fallback (the CLI's docker config) answers.
    assert_eq!(problem_of(source.as_ref(), &pod).await, None);
    assert_eq!(
        registry_of(source.as_ref(), &pod, "reg.example").await,
        basic("fallback", "fb")
    );
    assert_eq!(
        notary_of(source.as_ref(), &pod).await,
        None,
        "a namespaced policy never gets the operator's Notary login"
    );
    assert!(
        api.paths()
            .contains(&"GET /api/v1/namespaces/shop/secrets/pull-broken".to_string())
    );

    // Through the engine: the image is rejected with that reason, before any network call.
    let engine = Engine::new(EngineConfig::default(), Arc::new(SystemClock));
    let d = engine
        .decide("shop", "reg.example/absent/a:1", &policies, source.as_ref())
        .await;
    assert!(!d.allowed, "{d:?}");
    assert_eq!(
        d.reason,
        "reg.example/absent/a:1 rejected by policy shop/absent: registry.credentialsSecret shop/absent: not found"
    );
}

/// What one review asked for: namespace, pull secrets, service account.
type Asked = (String, Vec<String>, Option<String>);

/// Records what the webhook asks for, then delegates.
struct Recording {
    inner: SecretCredentials,
    seen: std::sync::Mutex<Vec<Asked>>,
}

impl RequestCredentials for Recording {
    fn for_request<'a>(
        &'a self,
        request: CredentialRequest<'a>,
    ) -> futures::future::BoxFuture<'a, Arc<dyn CredentialSource>> {
        self.seen.lock().unwrap().push((
            request.namespace.to_string(),
            request.image_pull_secrets.to_vec(),
            request.service_account.map(str::to_string),
        ));
        self.inner.for_request(request)
    }
}

#[tokio::test]
async fn the_webhook_reads_pull_secrets_of_the_pod_spec_and_names_missing_policy_secrets() {
    use kube::core::DynamicObject;
    use kube::core::admission::AdmissionRequest;
    use trustgate::admission::Webhook;
    use trustgate::policy::StaticPolicySource;

    let (client, api) = fake(objects(vec![], &[]));
    let absent = LoadedPolicy::new(
        PolicyId::namespaced("shop", "absent"),
        spec(&["reg.example/absent/**"], Some("absent"), None),
    )
    .unwrap();
    let recording = Arc::new(Recording {
        inner: SecretCredentials::new(client, "trustgate", SecretConfig::default()),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let engine = Arc::new(Engine::new(EngineConfig::default(), Arc::new(SystemClock)));
    let webhook = Webhook::new(engine, Arc::new(StaticPolicySource::new(set(vec![absent]))))
        .with_request_credentials(recording.clone());
    let req: AdmissionRequest<DynamicObject> = serde_json::from_value(json!({
        "uid": "u1",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web",
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"template": {"spec": {
                       "serviceAccountName": "builder",
                       "imagePullSecrets": [{"name": "pull-1"}, {"name": "pull-2"}],
                       "containers": [{"name": "app", "image": "reg.example/absent/app:1"}]}}}}
    }))
    .unwrap();
    let rsp = webhook.review(&req).await;
    assert!(!rsp.allowed);
    assert_eq!(
        recording.seen.lock().unwrap().as_slice(),
        [(
            "shop".to_string(),
            strings(&["pull-1", "pull-2"]),
            Some("builder".to_string())
        )]
    );
    let rsp = serde_json::to_value(&rsp).unwrap();
    let message = rsp["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "reg.example/absent/app:1 rejected by policy shop/absent: \
             registry.credentialsSecret shop/absent: not found"
        ),
        "{message}"
    );
    assert_eq!(api.paths(), ["GET /api/v1/namespaces/shop/secrets/absent"]);
}
