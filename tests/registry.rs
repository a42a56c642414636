//! Tag-to-digest resolution against the real `docker-registry` (distribution 2.8) in four set-ups:
//! plain HTTP, TLS with a test CA, TLS with htpasswd basic auth, and token auth. Images are built
//! here as OCI layouts and pushed with `skopeo`; the digest trustgate resolves must equal the one
//! the registry serves.

mod common;

use std::time::{Duration, Instant};

use common::Push;
use common::scripted::{Reply, Scripted, closed_port};
use trustgate::image::credentials::{Credentials, DockerConfig};
use trustgate::image::reference::ImageRef;
use trustgate::image::registry::{RegistryError, RegistryOptions, Resolver};

fn setup() -> Option<common::Stack> {
    trustgate::tls::install_crypto_provider();
    common::stack()
}

fn http() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    }
}

fn tls(stack: &common::Stack) -> RegistryOptions {
    RegistryOptions {
        ca_pem: Some(std::fs::read(&stack.ca).expect("read CA")),
        ..RegistryOptions::default()
    }
}

fn basic(u: &str, p: &str) -> Credentials {
    Credentials::Basic {
        username: u.into(),
        password: p.into(),
    }
}

async fn resolve(
    image: &str,
    opts: &RegistryOptions,
    creds: &Credentials,
) -> Result<String, RegistryError> {
    let image = ImageRef::parse(image).expect("valid reference");
    Resolver::default()
        .resolve(&image, opts, creds)
        .await
        .map(|d| d.to_string())
}

/// [`resolve`] that must succeed.
async fn resolved(image: &str, opts: &RegistryOptions, creds: &Credentials) -> String {
    let result = resolve(image, opts, creds).await;
    assert!(result.is_ok(), "resolve {image}: {result:?}");
    result.expect("resolved")
}

/// `err` is `Unauthorized`, with or without credentials sent.
fn assert_unauthorized(err: &RegistryError, with: bool) {
    assert!(
        matches!(err, RegistryError::Unauthorized { with_credentials, .. } if *with_credentials == with),
        "{err}"
    );
}

#[tokio::test]
async fn plain_http_single_manifest_and_index() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/http");
    let img = common::oci_image("plain-http", "v1");
    common::skopeo_push(&img, &Push::plain(&stack.registry_http, &repo, "v1"));
    let idx = common::oci_index("plain-http-multi", "multi");
    common::skopeo_push(&idx, &Push::plain(&stack.registry_http, &repo, "multi"));

    // The multi-arch tag resolves to the index digest, which is what a kubelet pulls.
    let mut got = String::new();
    for (tag, layout) in [("v1", &img), ("multi", &idx)] {
        let reference = format!("{}/{repo}:{tag}", stack.registry_http);
        let served = common::registry_digest(&reference, false, None, None);
        assert_eq!(served, layout.manifest_digest, "{tag}");
        got = resolved(&reference, &http(), &Credentials::Anonymous).await;
        assert_eq!(got, served, "{tag}");
    }
    assert_ne!(got, img.manifest_digest);
}

#[tokio::test]
async fn docker_v2s2_manifest_resolves_to_its_own_digest() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/v2s2");
    let img = common::oci_image("v2s2", "v1");
    common::skopeo_push(
        &img,
        &Push {
            format_v2s2: true,
            ..Push::plain(&stack.registry_http, &repo, "v1")
        },
    );
    let reference = format!("{}/{repo}:v1", stack.registry_http);
    let served = common::registry_digest(&reference, false, None, None);
    // skopeo converted the manifest, so the served digest differs from the OCI layout's.
    assert_ne!(served, img.manifest_digest);
    assert_eq!(
        resolved(&reference, &http(), &Credentials::Anonymous).await,
        served
    );
}

#[tokio::test]
async fn unknown_tag_and_unknown_repository_are_distinct() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/missing");
    let img = common::oci_image("missing", "v1");
    common::skopeo_push(&img, &Push::plain(&stack.registry_http, &repo, "v1"));

    let err = resolve(
        &format!("{}/{repo}:nope", stack.registry_http),
        &http(),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::TagNotFound { ref tag, .. } if tag == "nope"),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");

    let err = resolve(
        &format!("{}/{repo}-absent:v1", stack.registry_http),
        &http(),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::RepositoryNotFound { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn tls_with_test_ca_and_untrusted_ca() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/tls");
    let img = common::oci_image("tls", "v1");
    let push = Push::tls(&stack.registry_tls, &repo, "v1", &stack.cert_dir);
    common::skopeo_push(&img, &push);
    let reference = format!("{}/{repo}:v1", stack.registry_tls);
    let served = common::registry_digest(&reference, true, Some(&stack.cert_dir), None);
    let got = resolved(&reference, &tls(&stack), &Credentials::Anonymous).await;
    assert_eq!(got, served);
    assert_eq!(got, img.manifest_digest);

    // Without the test CA the handshake must fail, and say so.
    let err = resolve(
        &reference,
        &RegistryOptions::default(),
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/basic");
    let img = common::oci_image("basic", "v1");
    let (u, p) = (
        stack.registry_user.as_str(),
        stack.registry_password.as_str(),
    );
    let push = Push {
        creds: Some((u, p)),
        ..Push::tls(&stack.registry_basic, &repo, "v1", &stack.cert_dir)
    };
    common::skopeo_push(&img, &push);
    let reference = format!("{}/{repo}:v1", stack.registry_basic);
    let got = resolved(&reference, &tls(&stack), &basic(u, p)).await;
    assert_eq!(got, img.manifest_digest);

    let err = resolve(&reference, &tls(&stack), &basic(u, "wrong-password"))
        .await
        .unwrap_err();
    assert_unauthorized(&err, true);
    let err = resolve(&reference, &tls(&stack), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_unauthorized(&err, false);
}

#[tokio::test]
async fn token_auth_with_dockerconfigjson() {
    let Some(stack) = setup() else { return };
    let repo = common::unique_repo("reg/token");
    let img = common::oci_image("token", "v1");
    let (u, p) = (
        stack.registry_user.as_str(),
        stack.registry_password.as_str(),
    );
    let push = Push {
        creds: Some((u, p)),
        ..Push::plain(&stack.registry_token, &repo, "v1")
    };
    common::skopeo_push(&img, &push);
    let reference = format!("{}/{repo}:v1", stack.registry_token);

    // Credentials picked from a dockerconfigjson by host, as a pull secret would give them.
    let cfg = format!(
        r#"{{"auths":{{"http://{}":{{"username":"{u}","password":"{p}"}},"other.example":{{"username":"x","password":"y"}}}}}}"#,
        stack.registry_token
    );
    let cfg = DockerConfig::parse(cfg.as_bytes()).expect("config");
    let creds = cfg.credentials_for(&stack.registry_token);
    assert_eq!(creds, basic(u, p));
    let got = resolved(&reference, &http(), &creds).await;
    assert_eq!(got, img.manifest_digest);

    // Anonymous users get pull-only tokens from the test token service, so pulls work.
    let got = resolved(&reference, &http(), &Credentials::Anonymous).await;
    assert_eq!(got, img.manifest_digest);

    let err = resolve(&reference, &http(), &basic(u, "wrong"))
        .await
        .unwrap_err();
    assert_unauthorized(&err, true);
}

#[tokio::test]
async fn closed_port_fails_fast_and_clearly() {
    trustgate::tls::install_crypto_provider();
    let opts = RegistryOptions {
        plain_http: true,
        timeout: Duration::from_millis(500),
        ..RegistryOptions::default()
    };
    let start = Instant::now();
    let err = resolve(
        &format!("127.0.0.1:{}/a/b:v1", closed_port()),
        &opts,
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// On paused tokio time: the resolution deadline is the first timer due, so the clock jumps to it.
#[tokio::test(start_paused = true)]
async fn silent_server_hits_the_timeout() {
    trustgate::tls::install_crypto_provider();
    // Reads each request and never answers.
    let server = Scripted::start(|_| Reply::Silence).await;
    let timeout = Duration::from_millis(300);
    let opts = RegistryOptions {
        plain_http: true,
        timeout,
        ..RegistryOptions::default()
    };
    let start = tokio::time::Instant::now();
    let err = resolve(
        &format!("{}/a/b:v1", server.addr),
        &opts,
        &Credentials::Anonymous,
    )
    .await
    .unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert!(
        elapsed >= timeout && elapsed < 2 * timeout,
        "took {elapsed:?}"
    );
    assert_eq!(server.requests().len(), 1, "the request was sent");
}
