//! `trustgate webhook`: what the Helm chart's hook Jobs and `helm test` Pod run, so that the
//! chart needs no image besides trustgate's own.
//!
//! - `register`: waits until trustgate answers `/readyz`, then creates or updates (server-side
//!   apply) the webhook configurations given as files, so the API server never calls a webhook
//!   that has no ready replica. An empty `caBundle` is filled from `--ca-file`.
//! - `unregister`: deletes webhook configurations by name (absent ones are fine); the chart's
//!   `pre-delete` hook runs it before Helm deletes anything else.
//! - `probe`: sends one dry-run AdmissionReview and checks the answer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

/// Field manager of the applied webhook configurations.
const FIELD_MANAGER: &str = "trustgate-register";

/// `trustgate webhook` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Wait for trustgate to be ready, then create or update the webhook configurations in
    /// FILE... (YAML or JSON, one ValidatingWebhookConfiguration or MutatingWebhookConfiguration
    /// each; directories are read file by file).
    Register {
        /// Files or directories holding the webhook configurations.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// PEM CA put into every webhook whose `clientConfig.caBundle` is empty.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Readiness URL polled until it answers 200 (e.g. http://SVC.NS.svc:8080/readyz).
        #[arg(long, value_name = "URL")]
        wait_url: Option<String>,
        /// How long to wait for readiness (seconds).
        #[arg(long, value_parser = super::humantime_secs, default_value = "300")]
        wait_timeout: Duration,
        /// A MutatingWebhookConfiguration to delete after registering (the chart's, when
        /// `mutation.enabled` was turned off); repeatable, absent ones are skipped.
        #[arg(long = "remove-mutating", value_name = "NAME")]
        remove_mutating: Vec<String>,
    },
    /// Delete webhook configurations by name; ones that do not exist are skipped.
    Unregister {
        /// Name of a ValidatingWebhookConfiguration (repeatable).
        #[arg(long = "validating", value_name = "NAME")]
        validating: Vec<String>,
        /// Name of a MutatingWebhookConfiguration (repeatable).
        #[arg(long = "mutating", value_name = "NAME")]
        mutating: Vec<String>,
    },
    /// Send one dry-run AdmissionReview (a Pod running --image) and print the answer.
    /// Exit status 0 when the answer is well formed and matches --expect, else 1.
    Probe {
        /// Webhook URL, e.g. https://trustgate.trustgate.svc:443/validate.
        #[arg(long)]
        url: String,
        /// PEM CA that signed the webhook's serving certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Namespace of the reviewed Pod.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Image of the reviewed Pod.
        #[arg(long, default_value = "trustgate-probe.invalid/never/signed:probe")]
        image: String,
        /// Expected answer.
        #[arg(long, value_enum, default_value_t = Expect::Any)]
        expect: Expect,
        /// Request timeout (seconds).
        #[arg(long, value_parser = super::humantime_secs, default_value = "15")]
        timeout: Duration,
    },
}

/// The answer `probe` expects.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Expect {
    /// `allowed: true`.
    Allowed,
    /// `allowed: false`.
    Denied,
    /// Any well-formed answer.
    Any,
}

/// Runs one `webhook` subcommand.
pub async fn run(cmd: WebhookCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WebhookCommand::Register {
            files,
            ca_file,
            wait_url,
            wait_timeout,
            remove_mutating,
        } => {
            let docs = read_configurations(&files)?;
            let ca = read_ca(ca_file.as_deref())?;
            if let Some(url) = wait_url {
                wait_ready(&url, wait_timeout).await?;
            }
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API")?;
            for (path, doc) in docs {
                register(&client, &path, doc, ca.as_deref()).await?;
            }
            let mapi: Api<MutatingWebhookConfiguration> = Api::all(client);
            for name in &remove_mutating {
                delete(&mapi, "mutatingwebhookconfiguration", name).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhookCommand::Unregister {
            validating,
            mutating,
        } => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API")?;
            let vapi: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
            for name in &validating {
                delete(&vapi, "validatingwebhookconfiguration", name).await?;
            }
            let mapi: Api<MutatingWebhookConfiguration> = Api::all(client);
            for name in &mutating {
                delete(&mapi, "mutatingwebhookconfiguration", name).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhookCommand::Probe {
            url,
            ca_file,
            namespace,
            image,
            expect,
            timeout,
        } => {
            probe(
                &url,
                ca_file.as_deref(),
                &namespace,
                &image,
                expect,
                timeout,
            )
            .await
        }
    }
}

/// Every file named (directories: their files, sorted, hidden ones skipped), parsed.
fn read_configurations(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Value)>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.is_file()
                        && !e
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    let mut docs = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let doc: Value =
            serde_saphyr::from_str(&text).with_context(|| format!("{}: not YAML", f.display()))?;
        docs.push((f, doc));
    }
    if docs.is_empty() {
        bail!("no webhook configuration found in {paths:?}");
    }
    Ok(docs)
}

fn read_ca(path: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = path else { return Ok(None) };
    match std::fs::read(path) {
        Ok(pem) if !pem.is_empty() => {
            trustgate::tls::parse_pem_bundle(&pem)
                .with_context(|| format!("{}: not a PEM certificate bundle", path.display()))?;
            Ok(Some(pem))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "CA file absent: caBundle left as rendered");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Polls `url` until it answers 200, for at most `timeout`.
async fn wait_ready(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build HTTP client")?;
    let start = Instant::now();
    let mut last_log = None::<Instant>;
    loop {
        let why = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                println!(
                    "ready: {url} answered {} after {:.0?}",
                    r.status(),
                    start.elapsed()
                );
                return Ok(());
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= timeout {
            bail!(
                "{url} not ready after {timeout:?} (last: {why}): webhook configurations not registered"
            );
        }
        if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            println!("waiting for {url}: {why}");
            last_log = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Server-side applies one webhook configuration, filling empty caBundles from `ca`.
async fn register(
    client: &kube::Client,
    path: &Path,
    doc: Value,
    ca: Option<&[u8]>,
) -> anyhow::Result<()> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match kind.as_str() {
        "ValidatingWebhookConfiguration" => {
            let mut obj: ValidatingWebhookConfiguration = serde_json::from_value(doc)
                .with_context(|| format!("{}: bad {kind}", path.display()))?;
            for w in obj.webhooks.iter_mut().flatten() {
                fill_ca(&mut w.client_config.ca_bundle, ca);
            }
            let name = name_of(obj.metadata.name.as_deref(), path)?;
            let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
            api.patch(&name, &params, &Patch::Apply(&obj))
                .await
                .with_context(|| format!("cannot apply validatingwebhookconfiguration/{name}"))?;
            println!("registered validatingwebhookconfiguration/{name}");
        }
        "MutatingWebhookConfiguration" => {
            let mut obj: MutatingWebhookConfiguration = serde_json::from_value(doc)
                .with_context(|| format!("{}: bad {kind}", path.display()))?;
            for w in obj.webhooks.iter_mut().flatten() {
                fill_ca(&mut w.client_config.ca_bundle, ca);
            }
            let name = name_of(obj.metadata.name.as_deref(), path)?;
            let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
            api.patch(&name, &params, &Patch::Apply(&obj))
                .await
                .with_context(|| format!("cannot apply mutatingwebhookconfiguration/{name}"))?;
            println!("registered mutatingwebhookconfiguration/{name}");
        }
        other => bail!(
            "{}: kind {other:?} is not a ValidatingWebhookConfiguration or MutatingWebhookConfiguration",
            path.display()
        ),
    }
    Ok(())
}

fn name_of(name: Option<&str>, path: &Path) -> anyhow::Result<String> {
    match name {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => bail!("{}: metadata.name is missing", path.display()),
    }
}

fn fill_ca(bundle: &mut Option<ByteString>, ca: Option<&[u8]>) {
    if let Some(ca) = ca
        && bundle.as_ref().is_none_or(|b| b.0.is_empty())
    {
        *bundle = Some(ByteString(ca.to_vec()));
    }
}

async fn delete<K>(api: &Api<K>, kind: &str, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => println!("deleted {kind}/{name}"),
        Err(kube::Error::Api(s)) if s.code == 404 => println!("absent {kind}/{name}"),
        Err(e) => return Err(e).with_context(|| format!("cannot delete {kind}/{name}")),
    }
    Ok(())
}

/// The dry-run review `probe` sends.
fn probe_review(uid: &str, namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "name": "trustgate-probe",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:trustgate-probe"},
            "dryRun": true,
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "trustgate-probe", "namespace": namespace},
                "spec": {"containers": [{"name": "probe", "image": image}]}
            }
        }
    })
}

/// Checks an AdmissionReview answer: its uid and `allowed` against `expect`; returns the line
/// to print.
fn judge(answer: &Value, uid: &str, expect: Expect) -> Result<String, String> {
    let resp = answer
        .get("response")
        .ok_or_else(|| format!("no `response` in the answer: {answer}"))?;
    if resp.get("uid").and_then(Value::as_str) != Some(uid) {
        return Err(format!("answer for another uid: {resp}"));
    }
    let allowed = resp
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("no boolean `allowed` in the answer: {resp}"))?;
    let message = resp
        .pointer("/status/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    let line = format!("allowed={allowed} {message}")
        .trim_end()
        .to_string();
    match (expect, allowed) {
        (Expect::Any, _) | (Expect::Allowed, true) | (Expect::Denied, false) => Ok(line),
        _ => Err(format!("expected {expect:?}, got {line}")),
    }
}

async fn probe(
    url: &str,
    ca_file: Option<&Path>,
    namespace: &str,
    image: &str,
    expect: Expect,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(pem) = read_ca(ca_file)? {
        let certs = trustgate::tls::parse_pem_bundle(&pem)?
            .iter()
            .map(|der| reqwest::Certificate::from_der(der.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .context("bad CA certificate")?;
        builder = builder.tls_certs_only(certs);
    }
    let client = builder.build().context("cannot build HTTP client")?;
    let uid = format!(
        "trustgate-probe-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let started = Instant::now();
    let resp = client
        .post(url)
        .json(&probe_review(&uid, namespace, image))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("POST {url}: answer ({status}) is not JSON"))?;
    match judge(&body, &uid, expect) {
        Ok(line) => {
            println!(
                "probe ok: {url} answered in {:.0?}: {image}: {line}",
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("probe FAILED: {url}: {why}");
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_checks_uid_and_expectation() {
        let ok = json!({"response": {"uid": "u", "allowed": false, "status": {"message": "no"}}});
        assert_eq!(
            judge(&ok, "u", Expect::Denied).as_deref(),
            Ok("allowed=false no")
        );
        assert!(judge(&ok, "u", Expect::Any).is_ok());
        assert!(judge(&ok, "u", Expect::Allowed).is_err());
        assert!(judge(&ok, "other", Expect::Any).is_err());
        assert!(judge(&json!({"response": {"uid": "u"}}), "u", Expect::Any).is_err());
        assert!(judge(&json!({}), "u", Expect::Any).is_err());
    }

    #[test]
    fn empty_ca_bundles_are_filled_and_set_ones_kept() {
        let mut empty = None;
        fill_ca(&mut empty, Some(b"PEM"));
        assert_eq!(empty, Some(ByteString(b"PEM".to_vec())));
        let mut set = Some(ByteString(b"OLD".to_vec()));
        fill_ca(&mut set, Some(b"PEM"));
        assert_eq!(set, Some(ByteString(b"OLD".to_vec())));
        let mut none = None;
        fill_ca(&mut none, None);
        assert_eq!(none, None);
    }

    /// Requests a fake API saw: "METHOD path?query" and the JSON body.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

    /// A kube client whose API answers every request with `status` and echoes the body; the
    /// requests (method, path and query, body) are recorded.
    fn fake_api(status: u16) -> (kube::Client, Seen) {
        use http::{Request, Response};
        use kube::client::Body;
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                log.lock()
                    .expect("lock")
                    .push((format!("{} {}", parts.method, parts.uri), body.clone()));
                let answer = if status == 200 {
                    body
                } else {
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status, "reason": "NotFound", "message": "not found"})
                };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                    .expect("response");
                respond.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), seen)
    }

    #[tokio::test]
    async fn register_server_side_applies_with_the_ca_filled_in() {
        let (client, seen) = fake_api(200);
        let doc = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "tg"},
            "webhooks": [{
                "name": "workloads.trustgate.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "NoneOnDryRun",
                "clientConfig": {"service": {"name": "tg", "namespace": "tg-system", "path": "/validate"}}
            }]
        });
        register(&client, Path::new("validating.json"), doc, Some(b"PEM"))
            .await
            .expect("register");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (request, body) = &seen[0];
        assert!(
            request.starts_with(
                "PATCH /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/tg?"
            ) && request.contains("fieldManager=trustgate-register")
                && request.contains("force=true"),
            "{request}"
        );
        assert_eq!(body["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(body["kind"], "ValidatingWebhookConfiguration");

        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert!(
            register(&client, Path::new("x.json"), other, None)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn unregister_deletes_and_skips_absent_configurations() {
        let (client, seen) = fake_api(404);
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
        delete(&api, "validatingwebhookconfiguration", "tg")
            .await
            .expect("absent is fine");
        let seen = seen.lock().expect("lock").clone();
        assert!(
            seen[0].0.starts_with(
                "DELETE /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/tg"
            ),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn registration_waits_for_readiness_and_gives_up_at_the_deadline() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // Nothing listens: not ready, an error naming the URL, after the timeout.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/readyz", closed.local_addr().expect("addr"));
        drop(closed);
        let err = wait_ready(&url, Duration::from_millis(50))
            .await
            .expect_err("not ready");
        assert!(err.to_string().contains("not ready"), "{err}");
        // 503 first, then 200.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/readyz", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut conn, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                conn.write_all(reply.as_bytes()).await.expect("write");
            }
        });
        wait_ready(&url, Duration::from_secs(20))
            .await
            .expect("ready on the second poll");
    }

    #[test]
    fn configurations_are_read_from_files_and_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("validating.json"),
            r#"{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"tg"}}"#,
        )
        .expect("write");
        std::fs::write(dir.path().join("empty.yaml"), "\n").expect("write");
        let docs = read_configurations(&[dir.path().to_path_buf()]).expect("read");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].1["metadata"]["name"], "tg");
        assert!(read_configurations(&[dir.path().join("empty.yaml")]).is_err());
    }
}
