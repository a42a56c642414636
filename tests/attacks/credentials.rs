//! Attacks on credentials (see tests/attacks.rs): an operator's or a policy's login forwarded
//! to a server an attacker controls (a tenant's Notary, another registry, a token realm or a
//! redirect target), and registry answers that never end.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use trustgate::admission::credentials::{CredentialRequest, RequestCredentials};
use trustgate::clock::SystemClock;
use trustgate::cluster::{SecretConfig, SecretCredentials};
use trustgate::decision::{CredentialSource, Engine, EngineConfig, PolicyCredentials};
use trustgate::image::credentials::Credentials;
use trustgate::image::reference::ImageRef;
use trustgate::image::registry::{RegistryError, RegistryOptions, Resolver};
use trustgate::policy::{
    Action, LoadedPolicy, NotarySpec, PolicyId, PolicySet, RegistrySpec, SecretRef,
    TrustPolicySpec, TrustRoot,
};

use crate::common::scripted::{Reply, Scripted};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const KEY_ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: password.into(),
    }
}

/// `trustgate check` with a clean environment (no docker config, no Notary login) plus `env`.
fn check(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.arg("check")
        .args(args)
        .env("HOME", dir)
        .env_remove("NOTARY_AUTH")
        .env_remove("TRUSTGATE_NOTARY_AUTH_SERVER")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn verify_policy(name: &str, images: &str, notary_url: &str) -> String {
    format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata: {{name: {name}}}\n\
         spec:\n  images: [\"{images}\"]\n  notary: {{url: \"{notary_url}\"}}\n  \
         registry: {{plainHTTP: true}}\n  trustRoots: [{{keyID: \"{KEY_ID}\"}}]\n"
    )
}

/// H3: a policy whose `notary.url` is a server its author controls, answering every request
/// with a Basic challenge, must never receive the operator's global Notary login.
#[tokio::test(flavor = "multi_thread")]
async fn operator_notary_login_is_not_forwarded_to_a_tenant_notary() {
    let evil = Scripted::start(|_| {
        Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"tenant\"")], "")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("p.yaml");
    std::fs::write(
        &policies,
        format!(
            "{}---\n{}",
            verify_policy("tenant", "127.0.0.1:1/tenant/**", &evil.url()),
            verify_policy(
                "ops",
                "127.0.0.1:1/ops/**",
                "https://notary.ops.example:4443"
            )
        ),
    )
    .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
    let image = format!("127.0.0.1:1/tenant/app@{DIGEST}");
    let p = policies.to_str().unwrap();
    let d = dir.path().to_path_buf();

    // A login with two Notary servers in the policies and no binding is a usage error.
    let (d1, p1, i1, a1) = (d.clone(), p.to_string(), image.clone(), auth.clone());
    let out = tokio::task::spawn_blocking(move || {
        check(&d1, &[("NOTARY_AUTH", &a1)], &["--policy", &p1, &i1])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--notary-auth-server"), "{stderr}");

    // Bound to the operator's server: the tenant's server is asked without it.
    let (p2, i2) = (p.to_string(), image.clone());
    let out = tokio::task::spawn_blocking(move || {
        check(
            &d,
            &[("NOTARY_AUTH", &auth)],
            &[
                "--notary-auth-server",
                "https://notary.ops.example:4443",
                "--output",
                "json",
                "--policy",
                &p2,
                &i2,
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "rejected: {stdout}");
    assert!(
        !evil.requests().is_empty(),
        "the tenant's server was asked (the test reaches it)"
    );
    assert_eq!(
        evil.authorizations(),
        Vec::<String>::new(),
        "no Authorization ever reaches the tenant's Notary"
    );
}

/// H3: `serve` refuses a global Notary login that is not bound to a server.
#[test]
fn serve_refuses_an_unbound_notary_login() {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--policy-dir")
        .arg(dir.path())
        .env("HOME", dir.path())
        .env("NOTARY_AUTH", auth)
        .env_remove("TRUSTGATE_NOTARY_AUTH_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(stderr.contains("--notary-auth-server"), "{stderr}");
}

fn spec(images: &[&str], registry_secret: Option<&str>) -> TrustPolicySpec {
    TrustPolicySpec {
        images: images.iter().map(|s| (*s).to_string()).collect(),
        action: Action::Verify,
        notary: Some(NotarySpec {
            url: Some("https://notary.example.com:4443".into()),
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

struct OperatorLogin;

impl CredentialSource for OperatorLogin {
    fn credentials<'a>(
        &'a self,
        _: &'a LoadedPolicy,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<PolicyCredentials, String>> {
        Box::pin(async {
            Ok(PolicyCredentials {
                registry: Credentials::Anonymous,
                notary: Some(("ops".into(), "s3cret".into())),
            })
        })
    }
}
/// The registry credentials `source` gives `policy` for `host` (anonymous when it refuses).
async fn registry_of(
    source: &dyn CredentialSource,
    policy: &LoadedPolicy,
    host: &str,
) -> Credentials {
    source
        .credentials(policy, host)
        .await
        .map(|c| c.registry)
        .unwrap_or_default()
}

/// The Notary login `source` gives `policy` (none when it refuses).
async fn notary_of(
    source: &dyn CredentialSource,
    policy: &LoadedPolicy,
) -> Option<(String, String)> {
    source.credentials(policy, "").await.ok()?.notary
}

/// Why `source` refuses `policy` credentials, if it does.
async fn problem_of(source: &dyn CredentialSource, policy: &LoadedPolicy) -> Option<String> {
    source.credentials(policy, "").await.err()
}

/// M6 and H3 in cluster mode: a policy's `username`/`password` registry Secret under a `**`
/// pattern must not go to whatever registry a Pod names, a Secret without `registry` is refused
/// for its policy, and a namespaced policy never gets the operator's Notary login.
#[tokio::test]
async fn policy_registry_login_is_not_sent_to_another_registry() {
    let (client, _api) = fake(objects(
        vec![
            secret(
                "shop",
                "bound",
                "kubernetes.io/basic-auth",
                &[
                    ("username", "u"),
                    ("password", "p"),
                    ("registry", "reg.shop.example:443"),
                ],
            ),
            secret(
                "shop",
                "unbound",
                "kubernetes.io/basic-auth",
                &[("username", "u"), ("password", "p")],
            ),
        ],
        &[],
    ));
    let bound = LoadedPolicy::new(
        PolicyId::namespaced("shop", "bound"),
        spec(&["**"], Some("bound")),
    )
    .unwrap();
    let unbound = LoadedPolicy::new(
        PolicyId::namespaced("shop", "unbound"),
        spec(&["evil.example/**"], Some("unbound")),
    )
    .unwrap();
    let mut set = PolicySet::new(Action::Deny);
    set.extend(vec![bound.clone(), unbound.clone()]);
    let creds = SecretCredentials::new(client, "trustgate", SecretConfig::default())
        .with_fallback(Arc::new(OperatorLogin));
    let source = creds
        .for_request(CredentialRequest {
            namespace: "shop",
            image_pull_secrets: &[],
            service_account: None,
        })
        .await;
    assert_eq!(
        registry_of(source.as_ref(), &bound, "reg.shop.example").await,
        basic("u", "p")
    );
    assert_eq!(
        registry_of(source.as_ref(), &bound, "attacker.example").await,
        Credentials::Anonymous,
        "the login goes only to its registry"
    );
    let problem = problem_of(source.as_ref(), &unbound)
        .await
        .unwrap_or_default();
    assert!(problem.contains("`registry` key"), "{problem:?}");
    assert_eq!(
        registry_of(source.as_ref(), &unbound, "evil.example").await,
        Credentials::Anonymous
    );
    assert_eq!(
        notary_of(source.as_ref(), &bound).await,
        None,
        "a namespaced policy never gets the operator's Notary login"
    );
}

/// H3 in cluster mode, end to end: a namespaced TrustPolicy pointing `notary.url` at its
/// author's server (answering with a Basic challenge) is decided without the operator's login,
/// even though the operator's fallback would hand it to any policy.
#[tokio::test]
async fn namespaced_policy_never_gets_the_operator_notary_login() {
    let evil = Scripted::start(|_| {
        Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"tenant\"")], "")
    })
    .await;
    let (client, _api) = fake(objects(vec![], &[]));
    let mut tenant_spec = spec(&["127.0.0.1:1/**"], None);
    if let Some(notary) = tenant_spec.notary.as_mut() {
        notary.url = Some(evil.url());
    }
    let tenant = LoadedPolicy::new(PolicyId::namespaced("shop", "tenant"), tenant_spec).unwrap();
    let mut set = PolicySet::new(Action::Deny);
    set.extend(vec![tenant]);
    let creds = SecretCredentials::new(client, "trustgate", SecretConfig::default())
        .with_fallback(Arc::new(OperatorLogin));
    let images = vec![format!("127.0.0.1:1/tenant/app@{DIGEST}")];
    let source = creds
        .for_request(CredentialRequest {
            namespace: "shop",
            image_pull_secrets: &[],
            service_account: None,
        })
        .await;
    let engine = Engine::new(EngineConfig::default(), Arc::new(SystemClock));
    let decisions = engine
        .decide_all("shop", &images, &set, source.as_ref())
        .await;
    assert!(!decisions[0].allowed, "{}", decisions[0].reason);
    assert!(!evil.requests().is_empty(), "the tenant's server was asked");
    assert_eq!(evil.authorizations(), Vec::<String>::new());
}

fn options() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        timeout: Duration::from_secs(5),
        ..RegistryOptions::default()
    }
}

async fn resolve(image: &str, creds: &Credentials) -> Result<String, RegistryError> {
    trustgate::tls::install_crypto_provider();
    Resolver::default()
        .resolve(&ImageRef::parse(image).unwrap(), &options(), creds)
        .await
        .map(|d| d.to_string())
}

/// A registry whose Bearer challenge names a token realm (`realm_host:port`); with a token it
/// serves the manifest digest.
async fn bearer_registry(realm: String) -> Scripted {
    Scripted::start(move |req| match req.authorization().as_deref() {
        Some("Bearer granted") => Reply::status(200, &[("Docker-Content-Digest", DIGEST)], ""),
        _ => Reply::status(
            401,
            &[(
                "WWW-Authenticate",
                &format!("Bearer realm=\"{realm}\",service=\"reg\""),
            )],
            "",
        ),
    })
    .await
}

async fn token_service() -> Scripted {
    Scripted::start(|_| Reply::status(200, &[], r#"{"token":"granted"}"#)).await
}

/// M6 (token realms): a Bearer realm on another host than the registry is asked without the
/// login; a realm on the registry's own host gets it (the positive control).
#[tokio::test]
async fn token_realm_on_another_host_gets_no_login() {
    let tokens = token_service().await;
    // `localhost` is another host name than the registry's `127.0.0.1`.
    let registry = bearer_registry(format!("http://localhost:{}/token", tokens.addr.port())).await;
    let image = format!("{}/team/app:v1", registry.addr);
    let got = resolve(&image, &basic("u", "s3cret")).await.unwrap();
    assert_eq!(got, DIGEST);
    assert!(!tokens.requests().is_empty(), "the realm was asked");
    assert_eq!(tokens.authorizations(), Vec::<String>::new());

    let own = token_service().await;
    let registry = bearer_registry(format!("http://127.0.0.1:{}/token", own.addr.port())).await;
    let image = format!("{}/team/app:v1", registry.addr);
    trustgate::tls::install_crypto_provider();
    let resolver = Resolver::default();
    let parsed = ImageRef::parse(&image).unwrap();
    for _ in 0..2 {
        resolver
            .resolve(&parsed, &options(), &basic("u", "s3cret"))
            .await
            .unwrap();
    }
    assert_eq!(
        own.authorizations().len(),
        1,
        "the registry's own realm gets the login"
    );
    assert_eq!(
        own.requests().len(),
        1,
        "the token is reused while it is fresh"
    );
    // Another login never reuses that token.
    resolver
        .resolve(&parsed, &options(), &basic("v", "other"))
        .await
        .unwrap();
    assert_eq!(own.requests().len(), 2);
}

/// Redirects: a registry that redirects an authenticated manifest request to another host must
/// not make trustgate carry `Authorization` there.
#[tokio::test]
async fn redirect_does_not_carry_authorization_to_another_host() {
    let elsewhere =
        Scripted::start(|_| Reply::status(200, &[("Docker-Content-Digest", DIGEST)], "")).await;
    let target = format!(
        "http://localhost:{}/v2/team/app/manifests/v1",
        elsewhere.addr.port()
    );
    let registry = Scripted::start(move |req| match req.authorization().as_deref() {
        None => Reply::status(401, &[("WWW-Authenticate", "Basic realm=\"reg\"")], ""),
        Some(_) => Reply::status(307, &[("Location", &target)], ""),
    })
    .await;
    let image = format!("{}/team/app:v1", registry.addr);
    let result = resolve(&image, &basic("u", "s3cret")).await;
    assert!(
        registry
            .authorizations()
            .iter()
            .any(|a| a.starts_with("Basic ")),
        "the registry itself got the login"
    );
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| r.target == "/v2/team/app/manifests/v1"),
        "{:?}",
        registry.requests()
    );
    assert_eq!(
        elsewhere.authorizations(),
        Vec::<String>::new(),
        "{result:?}"
    );
}

/// M4 (endless data): a registry serving an endless manifest is refused at the limit, without
/// reading far past it.
#[tokio::test]
async fn endless_manifest_is_refused_at_the_limit() {
    let registry = Scripted::start(|req| {
        if req.method == "HEAD" {
            Reply::status(200, &[], "")
        } else {
            Reply::Endless(200, vec![], 64 << 20)
        }
    })
    .await;
    let image = format!("{}/team/app:v1", registry.addr);
    let err = resolve(&image, &Credentials::Anonymous).await.unwrap_err();
    assert!(
        err.to_string().contains("manifest larger than the limit"),
        "{err}"
    );
    let limit = trustgate::limits::LIMITS.manifest_bytes;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = registry.sent();
    assert!(
        sent < 64 << 20,
        "the client hung up early ({sent} bytes sent, limit {limit})"
    );
}

/// M4, as the issue states it: `trustgate check` of an image whose registry serves a 64 MiB
/// manifest rejects it with peak RSS under 48 MiB (GNU time's maximum resident set size).
#[tokio::test(flavor = "multi_thread")]
async fn endless_manifest_check_stays_under_48_mib() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("SKIP endless_manifest_check_stays_under_48_mib: /usr/bin/time is not installed");
        return;
    }
    let registry = Scripted::start(|req| {
        if req.method == "HEAD" {
            Reply::status(200, &[], "")
        } else {
            Reply::Endless(200, vec![], 64 << 20)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    let host = registry.addr.to_string();
    std::fs::write(
        &policy,
        verify_policy("evil", &format!("{host}/**"), "http://127.0.0.1:1"),
    )
    .unwrap();
    let image = format!("{host}/team/app:v1");
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/time")
            .args(["-f", "maxrss_kib=%M"])
            .arg(env!("CARGO_BIN_EXE_trustgate"))
            .args(["check", "--plain-http", "--output", "json", "--policy"])
            .arg(&policy)
            .arg(&image)
            .env("HOME", &d)
            .env_remove("NOTARY_AUTH")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let reason = v["results"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("manifest larger than the limit"),
        "{reason}"
    );
    let kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {stderr}"));
    eprintln!("trustgate check peak RSS: {kib} KiB");
    assert!(kib < 48 * 1024, "peak RSS {kib} KiB");
}

#[path = "../cluster/mock.rs"]
#[allow(dead_code)]
mod mock;
use mock::{fake, objects, secret};

/// M4 (endless data): a token answer one byte past `LIMITS.token_bytes` is refused, and an
/// endless error body is read only up to `LIMITS.error_body_bytes`.
#[tokio::test]
async fn endless_token_and_error_bodies_are_cut_at_their_limits() {
    let limit = usize::try_from(trustgate::limits::LIMITS.token_bytes).unwrap();
    let big = format!(
        r#"{{"token":"{}"}}"#,
        "t".repeat(limit + 1 - r#"{"token":""}"#.len())
    );
    assert_eq!(big.len(), limit + 1);
    let tokens = Scripted::start(move |_| Reply::status(200, &[], &big)).await;
    let registry = bearer_registry(format!("http://127.0.0.1:{}/token", tokens.addr.port())).await;
    let err = resolve(
        &format!("{}/team/app:v1", registry.addr),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("token answer larger than the limit"),
        "{err}"
    );

    let endless = Scripted::start(|_| Reply::Endless(404, vec![], 64 << 20)).await;
    let started = Instant::now();
    let err = resolve(
        &format!("{}/team/app:v1", endless.addr),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::TagNotFound { .. }), "{err}");
    assert!(err.to_string().len() < 400, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = endless.sent();
    assert!(sent < 64 << 20, "{sent} bytes sent");
}

/// H3 for `inspect`: a login bound elsewhere is not sent to `--notary-url`.
#[test]
fn inspect_does_not_send_a_login_bound_to_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
    let out = Command::new(env!("CARGO_BIN_EXE_trustgate"))
        .args([
            "inspect",
            "--notary-url",
            "http://127.0.0.1:1",
            "--notary-auth-server",
            "https://notary.ops.example:4443",
            "127.0.0.1:1/tenant/app:v1",
        ])
        .env("HOME", dir.path())
        .env("NOTARY_AUTH", auth)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not to --notary-url"), "{stderr}");
}

/// M4: a manifest of exactly `LIMITS.manifest_bytes` is hashed; one byte more is refused.
#[tokio::test]
async fn manifest_one_past_the_limit_is_refused() {
    let limit = usize::try_from(trustgate::limits::LIMITS.manifest_bytes).unwrap();
    let at_limit = Scripted::start(move |req| {
        if req.method == "HEAD" {
            Reply::status(200, &[], "")
        } else {
            Reply::Full(200, vec![], vec![b'{'; limit])
        }
    })
    .await;
    let got = resolve(
        &format!("{}/team/app:v1", at_limit.addr),
        &Credentials::Anonymous,
    )
    .await
    .unwrap();
    let expected = format!("sha256:{}", {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(vec![b'{'; limit]))
    });
    assert_eq!(got, expected);

    let past = Scripted::start(move |req| {
        if req.method == "HEAD" {
            Reply::status(200, &[], "")
        } else {
            Reply::Full(200, vec![], vec![b'{'; limit + 1])
        }
    })
    .await;
    let err = resolve(
        &format!("{}/team/app:v1", past.addr),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("manifest larger than the limit"),
        "{err}"
    );
}
