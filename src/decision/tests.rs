//! Engine tests on in-memory outside systems (`decision::testing`): a registry (tag to digest)
//! and a Notary server (a synthetic signed repository from `notary::testing`),
//! each counting what it was asked. Covers single flight through the whole engine, the digest
//! TTL and a re-pushed tag, decision-cache hits, expiry with cached data, reason classes,
//! metrics, credentials asked after selection, and the per-image deadline (on paused time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::str::FromStr;

use time::OffsetDateTime;
use time::macros::datetime;

use super::testing::{MemNotary, MemRegistry};
use super::*;
use crate::clock::FixedClock;
use crate::notary::testing::{MemSource, Repo};
use crate::notary::tests::caching::MovableClock;
use crate::policy::{NotarySpec, PolicyId, RegistrySpec, TrustPolicySpec, TrustRoot};

mod deadline;
mod signature_turns;
mod tighten;
mod warm;

const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);
const A: [u8; 32] = [0xaa; 32];
const B: [u8; 32] = [0xbb; 32];

fn hex_of(d: [u8; 32]) -> String {
    format!("sha256:{}", hex::encode(d))
}

/// The registry and Notary server of a test, in memory.
struct Server {
    registry: Arc<MemRegistry>,
    notary: Arc<MemNotary>,
}

impl Server {
    async fn start() -> Server {
        Server {
            registry: MemRegistry::new(),
            notary: MemNotary::new(),
        }
    }

    /// The registry host (part of every image and of the GUN).
    fn host(&self) -> &'static str {
        "registry.test:5000"
    }

    fn url(&self) -> String {
        "https://notary.test".into()
    }

    fn gun(&self) -> String {
        format!("{}/shop/app", self.host())
    }

    fn serve_notary(&self, src: MemSource) {
        self.notary.serve(src.files);
    }

    fn tag(&self, tag: &str, digest: [u8; 32]) {
        self.registry
            .tag(tag, Digest::from_str(&hex_of(digest)).unwrap());
    }

    /// Requests per file or manifest (`GET .../_trust/tuf/<file>`, `GET .../manifests/<tag>`).
    fn counts(&self) -> BTreeMap<String, usize> {
        let gun = self.gun();
        let mut counts: BTreeMap<String, usize> = self
            .notary
            .requests()
            .into_iter()
            .map(|(file, n)| (format!("GET /v2/{gun}/_trust/tuf/{file}"), n))
            .collect();
        for (tag, n) in self.registry.requests() {
            counts.insert(format!("GET /v2/{gun}/manifests/{tag}"), n);
        }
        counts
    }

    fn count(&self, suffix: &str) -> usize {
        self.counts()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }
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
        images: vec![format!("{}/shop/**", server.host())],
        action,
        notary: Some(NotarySpec {
            url: Some(server.url()),
            ..NotarySpec::default()
        }),
        registry: Some(RegistrySpec::default()),
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

fn engine(server: &Server, cache: CacheConfig, clock: Arc<dyn Clock>) -> Engine {
    Engine::new(
        EngineConfig {
            cache,
            ..EngineConfig::default()
        },
        clock,
    )
    .with_backends(server.registry.clone(), server.notary.clone())
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
    let engine = Arc::new(engine(
        &server,
        CacheConfig::default(),
        Arc::new(FixedClock(NOW)),
    ));

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
    let engine = engine(&server, cache, Arc::new(FixedClock(NOW)));
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
    let engine = engine(&server, CacheConfig::default(), clock.clone());
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
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
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
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    assert_eq!(
        server.count("/manifests/v2"),
        1,
        "the unknown tag was asked once"
    );
}

#[tokio::test]
async fn a_changed_policy_is_not_answered_from_the_decision_cache() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
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

/// Answers with fixed logins (or a failure) and records what it was asked.
struct Logins {
    fail: Option<String>,
    asked: std::sync::Mutex<Vec<(String, String)>>,
}

impl CredentialSource for Logins {
    fn credentials<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        registry: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<PolicyCredentials, String>> {
        self.asked
            .lock()
            .unwrap()
            .push((policy.id.to_string(), registry.to_string()));
        let answer = match &self.fail {
            Some(why) => Err(why.clone()),
            None => Ok(PolicyCredentials {
                registry: Credentials::Basic {
                    username: "reg-user".into(),
                    password: "reg-pw".into(),
                },
                notary: Some(("notary-user".into(), "notary-pw".into())),
            }),
        };
        Box::pin(async move { answer })
    }
}

/// The engine selects once and asks the source for exactly the deciding policy and the image's
/// registry; the answer is what the registry and the Notary source get. Allow, Deny and
/// unmatched images ask nothing.
#[tokio::test]
async fn credentials_are_asked_after_selection_for_the_deciding_policy() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let mut set = policies(&server, &repo, Action::Verify);
    let other = TrustPolicySpec {
        images: vec!["other.example/**".into()],
        action: Action::Allow,
        ..TrustPolicySpec::default()
    };
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "other"), other).unwrap());
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let logins = Logins {
        fail: None,
        asked: Default::default(),
    };
    let images = [
        format!("{}:v1", server.gun()),
        "other.example/app:v1".to_string(),
        "unmatched.example/app:v1".to_string(),
    ];
    let decided = engine.decide_all("shop", &images, &set, &logins).await;
    assert!(decided[0].verified, "{}", decided[0].reason);
    assert_eq!(decided[1].class(), "action_allow");
    assert_eq!(decided[2].class(), "default_action");
    assert_eq!(
        *logins.asked.lock().unwrap(),
        [("shop/p".to_string(), server.host().to_string())]
    );
    assert_eq!(
        server.registry.credentials(),
        [Credentials::Basic {
            username: "reg-user".into(),
            password: "reg-pw".into(),
        }]
    );
    let connected = server.notary.connected();
    assert_eq!(connected.len(), 1);
    assert_eq!(
        connected[0].credentials,
        Some(("notary-user".into(), "notary-pw".into()))
    );
}

/// Credentials the policy names but that cannot be had reject its images (fail closed) before
/// the registry or the Notary server is asked.
#[tokio::test]
async fn credentials_that_cannot_be_had_reject_without_asking_anyone() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let set = policies(&server, &repo, Action::Verify);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let logins = Logins {
        fail: Some("registry.credentialsSecret shop/pull: not found".into()),
        asked: Default::default(),
    };
    let d = engine
        .decide("shop", &format!("{}:v1", server.gun()), &set, &logins)
        .await;
    assert!(!d.allowed);
    assert_eq!(d.class(), "fetch_error");
    assert!(
        d.reason
            .contains("registry.credentialsSecret shop/pull: not found"),
        "{}",
        d.reason
    );
    assert!(server.counts().is_empty(), "{:?}", server.counts());
}

/// A policy is compiled when it is loaded: the decision path finds it compiled (or its
/// problem) and its fingerprint changes with its spec.
#[test]
fn policies_are_compiled_when_loaded() {
    let spec = TrustPolicySpec {
        images: vec!["registry.test:5000/**".into()],
        notary: Some(NotarySpec {
            url: Some("https://notary.test".into()),
            ..NotarySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            public_key: None,
            key_id: Some("a".repeat(64)),
        }],
        ..TrustPolicySpec::default()
    };
    let p = LoadedPolicy::new(PolicyId::namespaced("shop", "p"), spec.clone()).unwrap();
    let compiled = p.compiled().unwrap().unwrap();
    assert_eq!(compiled.notary_url, "https://notary.test");
    assert_eq!(compiled.signer_threshold, 0);
    let mut changed = spec.clone();
    changed.signers = vec![crate::policy::Signer {
        name: "alice".into(),
        ..crate::policy::Signer::default()
    }];
    let q = LoadedPolicy::new(PolicyId::namespaced("shop", "p"), changed).unwrap();
    assert_ne!(p.fingerprint(), q.fingerprint());
    let mut broken = spec;
    broken.trust_roots[0] = TrustRoot {
        public_key: Some("not a pem".into()),
        key_id: None,
    };
    let b = LoadedPolicy::new(PolicyId::namespaced("shop", "p"), broken.clone()).unwrap();
    let Some(Err(why)) = b.compiled() else {
        panic!("compiles")
    };
    assert!(why.starts_with("spec.trustRoots[0].publicKey: "), "{why}");
    let e = LoadedPolicy::checked(PolicyId::namespaced("shop", "p"), broken).unwrap_err();
    assert_eq!(e[0].path, "spec.trustRoots[0].publicKey");
    let allow = TrustPolicySpec {
        images: vec!["**".into()],
        action: Action::Allow,
        ..TrustPolicySpec::default()
    };
    let a = LoadedPolicy::new(PolicyId::cluster("a"), allow).unwrap();
    assert!(a.compiled().is_none());
}

#[test]
fn control_characters_an_attacker_writes_are_escaped_in_every_decision_text() {
    let base = rules::default_decision("r.test/a:v1", "r.test/a:v1", Action::Verify);
    let mut failure = Failure::new(
        ReasonClass::UntrustedSignature,
        "payload names repository \u{1b}[2Jevil\nADMITTED r.test/b".into(),
    );
    failure.signers = vec!["CN=x\u{7}".into()];
    let d = rules::finish(base, Err(failure));
    for text in std::iter::once(&d.reason).chain(&d.signers) {
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
    assert!(
        d.reason.contains("\\u{1b}[2Jevil\\u{a}ADMITTED"),
        "{}",
        d.reason
    );
    assert_eq!(d.signers, ["CN=x\\u{7}"]);
}
