//! Attacks on Notary trust data over the wire, with real data: repositories initialised and
//! signed by the real `notary` CLI on the local stack, served to the real `trustgate check`
//! binary (or the updater with its version memory) through a malicious Notary scripted here on
//! 127.0.0.1 (it proxies the real server and rewrites, records or replays the files the attack
//! needs): signature flood, arbitrary package, mix-and-match, rollback, indefinite freeze.
//! Skipped with a `SKIP` line when the stack is not up.
//!
//! The attacks that need metadata signed by keys the test controls (duplicate keys, revocation
//! evasion, rotation skipping the remembered threshold, fast-forward, the 20,000-signature
//! snapshot against the webhook with `/healthz` polled, slow retrieval, endless data) are unit
//! tests named after the attack in `src/notary/tests/attacks.rs` and `attacks_wire.rs`, where
//! the synthetic-repository builder lives.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::common;

/// Rewrites the body of a proxied file (`path` is the request path).
type Rewrite = Arc<dyn Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync>;

/// A malicious Notary on 127.0.0.1: every request is proxied to `upstream` (plain HTTP) and
/// the answer passed through `rewrite`.
struct EvilNotary {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EvilNotary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EvilNotary {
    async fn start(upstream: &str, rewrite: Rewrite) -> EvilNotary {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(proxy(
                    conn,
                    client.clone(),
                    upstream.clone(),
                    rewrite.clone(),
                ));
            }
        });
        EvilNotary { url, task }
    }
}

async fn proxy(mut conn: TcpStream, client: reqwest::Client, upstream: String, rewrite: Rewrite) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = match client.get(format!("{upstream}{path}")).send().await {
        Ok(rsp) => {
            let status = rsp.status().as_u16();
            let body = rsp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            if status == 200 {
                (status, rewrite(&path, body))
            } else {
                (status, body)
            }
        }
        Err(_) => (502, Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let _ = conn.write_all(&body).await;
}

/// A repository signed by the real `notary` CLI: `gun` with tag `v1` signed for `digest`.
struct Signed {
    gun: String,
    digest: String,
    root_id: String,
    /// The client holding the repository's keys.
    notary: common::NotaryClient,
}

fn signed_repo(st: &common::Stack, name: &str, seed: u8) -> Signed {
    let repo = common::unique_repo(&format!("attacks/{name}"));
    let gun = format!("{}/{repo}", st.registry_http);
    let digest = format!("sha256:{}", hex_of(seed));
    let notary = st.notary_client(&st.notary_local_url);
    notary.sign(&gun, "v1", &digest, 1234);
    let root_id = notary.root_key_id(&gun);
    Signed {
        gun,
        digest,
        root_id,
        notary,
    }
}

fn hex_of(seed: u8) -> String {
    format!("{seed:02x}").repeat(32)
}

/// `trustgate check` of `images` under a Verify policy for `gun` (root pinned by ID) against
/// `notary_url`: (exit code, JSON results, elapsed).
fn check(
    gun_pattern: &str,
    notary_url: &str,
    root_ids: &[&str],
    images: &[&str],
) -> (i32, Vec<Value>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let roots: String = root_ids
        .iter()
        .map(|id| format!("  - keyID: \"{id}\"\n"))
        .collect();
    let policy = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {{name: signed, namespace: default}}\n\
         spec:\n  images: [\"{gun_pattern}\"]\n  action: Verify\n  notary:\n    url: {notary_url}\n  \
         registry: {{plainHTTP: true}}\n  trustRoots:\n{roots}"
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_trustgate"))
        .arg("check")
        .arg("--policy")
        .arg(&path)
        .args(["--namespace", "default", "--output", "json"])
        .args(images)
        .env_remove("NOTARY_AUTH")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check output is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = json["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![json.clone()]);
    (out.status.code().unwrap_or(-1), results, elapsed)
}

fn reason(r: &Value) -> String {
    r["reason"]
        .as_str()
        .map_or_else(|| r.to_string(), str::to_owned)
}

/// Adds `n` bogus signatures by `keyid` in front of the real ones.
fn flood(body: Vec<u8>, keyid: &str, n: usize) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    let bogus = json!({"keyid": keyid, "method": "ecdsa",
        "sig": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="});
    let mut sigs = vec![bogus; n];
    sigs.extend(v["signatures"].as_array().cloned().unwrap_or_default());
    v["signatures"] = Value::Array(sigs);
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_flood_on_a_real_root_is_refused_before_any_check() {
    let Some(st) = common::stack() else { return };
    let repo = signed_repo(&st, "flood", 0x5a);
    let image = format!("{}:v1@{}", repo.gun, repo.digest);

    // Control: through an honest proxy the image is admitted.
    let honest = EvilNotary::start(&st.notary_local_url, Arc::new(|_, b| b)).await;
    let (code, results, _) = check(&repo.gun, &honest.url, &[&repo.root_id], &[&image]);
    assert_eq!(code, 0, "{results:#?}");

    // 5,000 bogus signatures by the root key in front of the real one (under the root size
    // cap): refused before any is checked (a verifier trying them all, then counting the
    // valid one, would admit the image after 5,000 signature checks).
    let root_id = repo.root_id.clone();
    let evil = EvilNotary::start(
        &st.notary_local_url,
        Arc::new(move |path, body| {
            if path.ends_with("/root.json") {
                flood(body, &root_id, 5_000)
            } else {
                body
            }
        }),
    )
    .await;
    let (code, results, elapsed) = check(&repo.gun, &evil.url, &[&repo.root_id], &[&image]);
    assert_eq!(code, 1, "{results:#?}");
    let why = reason(&results[0]);
    assert!(why.contains("signatures, more than the limit"), "{why}");
    eprintln!("root with 5,001 signatures refused in {elapsed:?}: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_package_under_a_signed_tag_is_rejected() {
    let Some(st) = common::stack() else { return };
    let repo = signed_repo(&st, "arbitrary", 0x6b);
    // The tag is signed for one digest; the reference brings another image under it.
    let other = format!("sha256:{}", hex_of(0x6c));
    let image = format!("{}:v1@{other}", repo.gun);
    let (code, results, _) = check(&repo.gun, &st.notary_local_url, &[&repo.root_id], &[&image]);
    assert_eq!(code, 1, "{results:#?}");
    assert!(
        reason(&results[0]).contains(&repo.digest[7..19]) || reason(&results[0]).contains("v1"),
        "{}",
        reason(&results[0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mix_and_match_of_another_repositorys_targets_is_rejected() {
    let Some(st) = common::stack() else { return };
    let victim = signed_repo(&st, "mix-victim", 0x7c);
    let donor = signed_repo(&st, "mix-donor", 0x7d);
    // The donor's targets.json (validly signed, for another repository) is served whenever
    // the victim's targets file is asked for.
    let donor_targets = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/v2/{}/_trust/tuf/targets.json",
            st.notary_local_url, donor.gun
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let victim_gun = victim.gun.clone();
    let evil = EvilNotary::start(
        &st.notary_local_url,
        Arc::new(move |path, body| {
            let file = path.rsplit('/').next().unwrap_or("");
            if path.contains(&victim_gun) && file.starts_with("targets.") {
                donor_targets.clone()
            } else {
                body
            }
        }),
    )
    .await;
    let image = format!("{}:v1@{}", victim.gun, victim.digest);
    let (code, results, _) = check(&victim.gun, &evil.url, &[&victim.root_id], &[&image]);
    assert_eq!(code, 1, "{results:#?}");
    let why = reason(&results[0]);
    assert!(
        why.contains("does not match the")
            || why.contains("longer than")
            || why.contains("exceeds the allowed"),
        "{why}"
    );
}

/// Pins `root_id`, threshold 1, nothing revoked.
fn pinned(root_id: &str) -> trustgate::notary::updater::TrustOptions {
    use trustgate::notary::updater::{Revocations, TrustOptions, TrustRoot};
    TrustOptions {
        trust_roots: vec![TrustRoot::KeyId(root_id.to_owned())],
        trust_root_threshold: 1,
        revoked: Revocations::new(),
    }
}

fn http_source(url: &str) -> trustgate::notary::fetch::HttpSource {
    use trustgate::notary::fetch::{HttpSource, NotaryConfig};
    trustgate::tls::install_crypto_provider();
    let mut cfg = NotaryConfig::new(url);
    cfg.timeout = Duration::from_secs(10);
    HttpSource::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_by_replaying_older_real_metadata_is_rejected() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use trustgate::clock::SystemClock;
    use trustgate::notary::updater::Updater;
    use trustgate::notary::verify::VerifyError;

    let Some(st) = common::stack() else { return };
    let repo = signed_repo(&st, "rollback", 0x8e);
    // 0: record what passes, 1: pass through, 2: replay what was recorded.
    type Phase = (u8, HashMap<String, Vec<u8>>);
    let state: Arc<Mutex<Phase>> = Arc::default();
    let shared = state.clone();
    let evil = EvilNotary::start(
        &st.notary_local_url,
        Arc::new(move |path, body| {
            let mut s = shared.lock().unwrap();
            match s.0 {
                0 => {
                    s.1.insert(path.to_owned(), body.clone());
                    body
                }
                2 => s.1.get(path).cloned().unwrap_or(body),
                _ => body,
            }
        }),
    )
    .await;
    let updater = Updater::new(Arc::new(SystemClock));
    let src = http_source(&evil.url);
    let opts = pinned(&repo.root_id);
    updater.load(&src, &repo.gun, &opts).await.expect("v1");
    state.lock().unwrap().0 = 1;
    // The owner signs another tag: new targets, snapshot and timestamp versions.
    repo.notary
        .addhash(&repo.gun, "v2", &format!("sha256:{}", hex_of(0x8f)), 1234);
    let data = updater.load(&src, &repo.gun, &opts).await.expect("v2");
    assert!(data.docker_lookup("v2").is_some());
    // The attacker replays the (validly signed, unexpired) first versions.
    state.lock().unwrap().0 = 2;
    let err = updater
        .load(&src, &repo.gun, &opts)
        .await
        .expect_err("replayed");
    assert!(
        matches!(&err, VerifyError::Rollback { role, .. } if role == "timestamp"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indefinite_freeze_with_real_metadata_past_its_timestamp_expiry_is_rejected() {
    use trustgate::clock::FixedClock;
    use trustgate::notary::updater::Updater;
    use trustgate::notary::verify::VerifyError;

    let Some(st) = common::stack() else { return };
    let repo = signed_repo(&st, "freeze", 0x9a);
    let src = http_source(&st.notary_local_url);
    let opts = pinned(&repo.root_id);
    // Notary's timestamps live 14 days: the same files, served 15 days on, are a freeze.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(15);
    let err = Updater::new(Arc::new(FixedClock(later)))
        .load(&src, &repo.gun, &opts)
        .await
        .expect_err("frozen");
    assert!(
        matches!(&err, VerifyError::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
}
