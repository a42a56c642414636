//! Engine tests over HTTP: a small in-process server plays both the registry (tag to digest)
//! and the Notary server (a synthetic signed repository from `notary::testing`),
//! counting every request. Covers single flight through the whole engine, the digest TTL and a
//! re-pushed tag, decision-cache hits, expiry with cached data, reason classes and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::clock::FixedClock;
use crate::notary::testing::{MemSource, Repo};
use crate::notary::tests::caching::MovableClock;
use crate::policy::{NotarySpec, PolicyId, RegistrySpec, TrustPolicySpec, TrustRoot};

mod tighten;

const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);
const A: [u8; 32] = [0xaa; 32];
const B: [u8; 32] = [0xbb; 32];

fn hex_of(d: [u8; 32]) -> String {
    format!("sha256:{}", hex::encode(d))
}

/// What the fake server serves and what it was asked.
#[derive(Default)]
struct State {
    notary: RwLock<Option<Arc<MemSource>>>,
    /// Tag to digest for the registry part.
    tags: RwLock<BTreeMap<String, String>>,
    counts: Mutex<BTreeMap<String, usize>>,
}

struct Server {
    port: u16,
    state: Arc<State>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(connection(sock, s.clone()));
            }
        });
        Server { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn gun(&self) -> String {
        format!("127.0.0.1:{}/shop/app", self.port)
    }

    fn serve_notary(&self, src: MemSource) {
        *self.state.notary.write().unwrap() = Some(Arc::new(src));
    }

    fn tag(&self, tag: &str, digest: [u8; 32]) {
        self.state
            .tags
            .write()
            .unwrap()
            .insert(tag.into(), hex_of(digest));
    }

    /// Requests per path (method and path, e.g. `GET /v2/.../timestamp.json`).
    fn counts(&self) -> BTreeMap<String, usize> {
        self.state.counts.lock().unwrap().clone()
    }

    fn count(&self, suffix: &str) -> usize {
        self.counts()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }
}

async fn connection(sock: TcpStream, state: Arc<State>) {
    let mut sock = BufReader::new(sock);
    loop {
        let mut line = String::new();
        if sock.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if sock.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            if h.trim_end().is_empty() {
                break;
            }
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        *state
            .counts
            .lock()
            .unwrap()
            .entry(format!("{method} {path}"))
            .or_default() += 1;
        let (status, headers, body) = answer(&state, &path);
        let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(&body);
        }
        if sock.get_mut().write_all(&out).await.is_err() {
            return;
        }
    }
}

fn answer(state: &State, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    if path == "/v2/" {
        return (200, Vec::new(), b"{}".to_vec());
    }
    if let Some((_, file)) = path.split_once("/_trust/tuf/") {
        let src = state.notary.read().unwrap().clone();
        return match src.and_then(|s| s.files.get(file).cloned()) {
            Some(body) => (200, Vec::new(), body),
            None => (
                404,
                Vec::new(),
                br#"{"errors":[{"code":"METADATA_NOT_FOUND"}]}"#.to_vec(),
            ),
        };
    }
    if let Some((_, tag)) = path.split_once("/manifests/")
        && let Some(digest) = state.tags.read().unwrap().get(tag)
    {
        let headers = vec![
            ("Docker-Content-Digest".into(), digest.clone()),
            (
                "Content-Type".into(),
                "application/vnd.docker.distribution.manifest.v2+json".into(),
            ),
        ];
        return (200, headers, Vec::new());
    }
    (
        404,
        vec![("Content-Type".into(), "application/json".into())],
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
    )
}

/// A signed repository for `gun`: v1 -> A in targets and targets/releases.
fn repo(gun: &str) -> Repo {
    let mut r = Repo::new(gun);
    r.add_target("targets", "v1", A);
    r.delegate("targets/releases", &[""]);
    r.add_target("targets/releases", "v1", A);
    r
}

fn policies(server: &Server, repo: &Repo, action: Action) -> PolicySet {
    let spec = TrustPolicySpec {
        images: vec![format!("127.0.0.1:{}/shop/**", server.port)],
        action,
        notary: Some(NotarySpec {
            url: Some(server.url()),
            ..NotarySpec::default()
        }),
        registry: Some(RegistrySpec {
            plain_http: true,
            ..RegistrySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            public_key: None,
            key_id: Some(repo.roles["root"].keys[0].id.clone()),
        }],
        ..TrustPolicySpec::default()
    };
    let mut set = PolicySet::new(Action::Deny);
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "p"), spec).unwrap());
    set
}

fn engine(cache: CacheConfig, clock: Arc<dyn Clock>) -> Engine {
    Engine::new(
        EngineConfig {
            cache,
            ..EngineConfig::default()
        },
        clock,
    )
}

/// 1,000 concurrent decisions for a new image: one request per metadata file (and one
/// registry resolution for a tag).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_decisions_fetches_everything_once() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let policies = Arc::new(policies(&server, &repo, Action::Verify));
    let engine = Arc::new(engine(CacheConfig::default(), Arc::new(FixedClock(NOW))));

    for image in [
        format!("{}@{}", server.gun(), hex_of(A)),
        format!("{}:v1", server.gun()),
    ] {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (engine, policies, image) = (engine.clone(), policies.clone(), image.clone());
                tokio::spawn(
                    async move { engine.decide("shop", &image, &policies, &Anonymous).await },
                )
            })
            .collect();
        for t in tasks {
            let d = t.await.unwrap();
            assert!(d.allowed && d.verified, "{}", d.reason);
            assert_eq!(d.class(), "verified");
            assert_eq!(d.digest.as_deref(), Some(hex_of(A).as_str()));
        }
    }
    let counts = server.counts();
    let tuf: Vec<_> = counts
        .iter()
        .filter(|(k, _)| k.contains("/_trust/tuf/"))
        .collect();
    assert_eq!(
        tuf.len(),
        5,
        "root, timestamp, snapshot, targets, releases: {counts:?}"
    );
    assert!(tuf.iter().all(|(_, n)| **n == 1), "{counts:?}");
    assert_eq!(server.count("/manifests/v1"), 1, "{counts:?}");

    let text = engine.metrics().encode();
    for want in [
        r#"trustgate_image_decisions_total{policy="shop/p",policy_kind="TrustPolicy",namespace="shop",result="admitted",reason="verified"} 2000"#,
        r#"trustgate_notary_fetches_total{role="root",outcome="ok"} 1"#,
        r#"trustgate_notary_fetches_total{role="delegation",outcome="ok"} 1"#,
        r#"trustgate_registry_resolutions_total{outcome="ok"} 1"#,
        r#"cache="digest",outcome="miss"} 1"#,
        r#"cache="digest",outcome="hit"} 999"#,
        r#"cache="trust",outcome="miss"} 1"#,
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    // Later decisions are answered by the decision cache.
    let d = engine
        .decide(
            "shop",
            &format!("{}:v1", server.gun()),
            &policies,
            &Anonymous,
        )
        .await;
    assert!(d.verified);
    assert!(
        engine
            .metrics()
            .encode()
            .contains(r#"cache="decision",outcome="hit"}"#)
    );
    assert_eq!(
        server.counts().values().sum::<usize>(),
        counts.values().sum::<usize>()
    );
}

#[tokio::test]
async fn a_repushed_tag_is_seen_after_the_digest_ttl() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let policies = policies(&server, &repo, Action::Verify);
    let cache = CacheConfig {
        digest_ttl: Duration::from_secs(1),
        ..CacheConfig::default()
    };
    let engine = engine(cache, Arc::new(FixedClock(NOW)));
    let image = format!("{}:v1", server.gun());
    // Warm the trust data first, so the two decisions below are quick (well within the TTL).
    let pinned = format!("{}@{}", server.gun(), hex_of(A));
    assert!(
        engine
            .decide("shop", &pinned, &policies, &Anonymous)
            .await
            .verified
    );

    let d = engine.decide("shop", &image, &policies, &Anonymous).await;
    assert!(d.verified, "{}", d.reason);
    // Someone pushes unsigned content under v1.
    server.tag("v1", B);
    let d = engine.decide("shop", &image, &policies, &Anonymous).await;
    assert_eq!(
        d.digest.as_deref(),
        Some(hex_of(A).as_str()),
        "still cached"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let d = engine.decide("shop", &image, &policies, &Anonymous).await;
    assert!(!d.allowed);
    assert_eq!(d.digest.as_deref(), Some(hex_of(B).as_str()));
    assert_eq!(d.class(), "digest_mismatch", "{}", d.reason);
    assert_eq!(server.count("/manifests/v1"), 2);
}

#[tokio::test]
async fn expired_trust_data_rejects_even_when_cached() {
    let server = Server::start().await;
    let mut repo = repo(&server.gun());
    repo.role("snapshot").expires = "2026-01-01T00:00:00Z".into();
    server.serve_notary(repo.publish());
    let policies = policies(&server, &repo, Action::Verify);
    let clock = MovableClock::at(NOW);
    let engine = engine(CacheConfig::default(), clock.clone());
    let image = format!("{}@{}", server.gun(), hex_of(A));

    assert!(
        engine
            .decide("shop", &image, &policies, &Anonymous)
            .await
            .verified
    );
    assert!(
        engine
            .decide("shop", &image, &policies, &Anonymous)
            .await
            .verified
    );
    clock.set(datetime!(2026-03-01 00:00 UTC));
    let d = engine.decide("shop", &image, &policies, &Anonymous).await;
    assert!(!d.allowed);
    assert_eq!(d.class(), "trust_data_invalid", "{}", d.reason);
    assert!(d.reason.contains("expired"), "{}", d.reason);
    let snapshots = server
        .counts()
        .into_iter()
        .filter(|(k, _)| k.contains("/snapshot."))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert_eq!(
        snapshots, 1,
        "the snapshot was kept, and its expiry checked again"
    );
}

#[tokio::test]
async fn reason_classes_and_decision_metrics() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let engine = engine(CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let verify = policies(&server, &repo, Action::Verify);
    let gun = server.gun();
    let cases = [
        (&verify, format!("{gun}:v2"), "registry_error", "rejected"),
        (
            &verify,
            format!("{gun}@{}", hex_of(B)),
            "unsigned",
            "rejected",
        ),
        (
            &verify,
            "Not A Reference".to_string(),
            "bad_reference",
            "rejected",
        ),
        (
            &verify,
            "docker.io/library/nginx:1".to_string(),
            "default_action",
            "rejected",
        ),
    ];
    for (policies, image, class, result) in cases {
        let d = engine.decide("shop", &image, policies, &Anonymous).await;
        assert_eq!(
            (d.class(), d.result()),
            (class, result),
            "{image}: {}",
            d.reason
        );
    }
    let allow = policies(&server, &repo, Action::Allow);
    let d = engine
        .decide("shop", &format!("{gun}:v9"), &allow, &Anonymous)
        .await;
    assert_eq!((d.class(), d.result()), ("action_allow", "admitted"));
    let deny = policies(&server, &repo, Action::Deny);
    let d = engine
        .decide("shop", &format!("{gun}:v1"), &deny, &Anonymous)
        .await;
    assert_eq!(d.class(), "action_deny");

    let mut broken = policies(&server, &repo, Action::Verify);
    let mut p = (**broken.get(Some("shop"), "p").unwrap()).clone();
    p.spec.trust_roots[0] = TrustRoot {
        public_key: Some("not a pem".into()),
        key_id: None,
    };
    broken.insert(LoadedPolicy::new(p.id.clone(), p.spec.clone()).unwrap());
    let d = engine
        .decide("shop", &format!("{gun}:v1"), &broken, &Anonymous)
        .await;
    assert_eq!(d.class(), "policy_invalid", "{}", d.reason);

    let text = engine.metrics().encode();
    for want in [
        r#"{policy="shop/p",policy_kind="TrustPolicy",namespace="shop",result="rejected",reason="registry_error"} 1"#,
        r#"{policy="shop/p",policy_kind="TrustPolicy",namespace="shop",result="rejected",reason="unsigned"} 1"#,
        r#"{policy="",policy_kind="none",namespace="shop",result="rejected",reason="bad_reference"} 1"#,
        r#"{policy="",policy_kind="default",namespace="shop",result="rejected",reason="default_action"} 1"#,
        r#"{policy="shop/p",policy_kind="TrustPolicy",namespace="shop",result="admitted",reason="action_allow"} 1"#,
        r#"{policy="shop/p",policy_kind="TrustPolicy",namespace="shop",result="rejected",reason="policy_invalid"} 1"#,
        r#"trustgate_registry_resolutions_total{outcome="tag_not_found"} 1"#,
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
}

#[tokio::test]
async fn a_changed_policy_is_not_answered_from_the_decision_cache() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    let engine = engine(CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let image = format!("{}@{}", server.gun(), hex_of(A));
    let open = policies(&server, &repo, Action::Verify);
    assert!(
        engine
            .decide("shop", &image, &open, &Anonymous)
            .await
            .verified
    );

    // Same policy name, now requiring a signer that never signed.
    let mut strict = open.clone();
    let mut p = (**strict.get(Some("shop"), "p").unwrap()).clone();
    p.spec.signers = vec![crate::policy::Signer {
        name: "alice".into(),
        ..crate::policy::Signer::default()
    }];
    strict.insert(LoadedPolicy::new(p.id.clone(), p.spec.clone()).unwrap());
    let d = engine.decide("shop", &image, &strict, &Anonymous).await;
    assert!(!d.allowed, "{}", d.reason);
    assert_eq!(d.class(), "signer_threshold", "{}", d.reason);
}

#[test]
fn failure_classes_come_from_the_error_kinds() {
    use crate::notary::source::FetchError;
    use crate::notary::verify::VerifyError;
    let not_found = |file: &str| FetchError::NotFound {
        server: "s".into(),
        gun: "g".into(),
        file: file.into(),
    };
    let timeout = FetchError::Timeout {
        server: "s".into(),
        file: "f".into(),
        timeout: Duration::from_secs(1),
    };
    let cases = [
        (VerifyError::Fetch(not_found("timestamp.json")), "unsigned"),
        (
            VerifyError::Fetch(not_found("snapshot.ab.json")),
            "fetch_error",
        ),
        (VerifyError::Fetch(timeout), "timeout"),
        (
            VerifyError::NoTrustRoots { gun: "g".into() },
            "untrusted_root",
        ),
        (
            VerifyError::Rollback {
                gun: "g".into(),
                role: "timestamp".into(),
                seen: 2,
                got: 1,
            },
            "trust_data_invalid",
        ),
    ];
    for (e, class) in cases {
        assert_eq!(ReasonClass::of_trust(&e).as_str(), class, "{e}");
    }
    let e = crate::image::registry::RegistryError::Timeout {
        registry: "r".into(),
        timeout: Duration::from_secs(1),
    };
    assert_eq!(ReasonClass::of_registry(&e), ReasonClass::Timeout);
    assert_eq!(
        serde_json::to_value(ReasonClass::DigestMismatch).unwrap(),
        "digest_mismatch"
    );
}
