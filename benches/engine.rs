//! How fast the engine decides with its caches (a plain binary that prints numbers;
//! `harness = false`). In-memory backends (`trustgate::decision::testing`) play registry and
//! Notary server for a synthetic signed repository (`trustgate::notary::testing`), so the
//! figures measure the engine itself (caches, verification), not a network.
//!
//! 1. warm cache: `Engine::decide` answered from the decision cache, for a digest-pinned and a
//!    tag reference, one caller and 8 concurrent callers (decisions/s);
//! 2. refresh: `trust_ttl` = 0, so every decision refreshes the trust data the cheap way
//!    (`timestamp.json` only, kept root and files re-used);
//! 3. no reuse: `trust_ttl` = 0 and nothing kept, so every decision fetches and verifies root,
//!    timestamp, snapshot and targets again (what the engine did before caching).
//!
//! 4. formats: the warm figures again for a policy with `signatures: {formats: [NotaryV1,
//!    Notation], require: AnyOf}` (the migration set-up; the repository has only Notary v1
//!    signatures, so NotaryV1 admits), beside the NotaryV1-only policy.
//!
//! Run: `cargo bench --features bench-support --bench engine` (optionally `-- <seconds per
//! figure>`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use trustgate::cache::CacheConfig;
use trustgate::clock::SystemClock;
use trustgate::decision::testing::{MemNotary, MemRegistry};
use trustgate::decision::{Anonymous, Engine, EngineConfig};
use trustgate::image::reference::Digest;
use trustgate::notary::testing::Repo;
use trustgate::policy::formats::{NotationSpec, Require, SignatureFormat, SignaturesSpec};
use trustgate::policy::{
    Action, LoadedPolicy, NotarySpec, PolicyId, PolicySet, TrustPolicySpec, TrustRoot,
};

/// A self-signed CA certificate for the Notation trust store (PEM).
fn notation_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CountryName, "US");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Shop");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "release");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// Decisions per second of `callers` concurrent loops over `image` for about `secs`.
async fn throughput(
    engine: &Arc<Engine>,
    policies: &Arc<PolicySet>,
    image: &str,
    callers: usize,
    secs: f64,
) -> (f64, usize) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (engine, policies, image) = (engine.clone(), policies.clone(), image.to_string());
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    let d = engine.decide("shop", &image, &policies, &Anonymous).await;
                    assert!(d.verified, "{}", d.reason);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

/// Requests both backends answered so far.
fn requests(notary: &MemNotary, registry: &MemRegistry) -> usize {
    notary.requests().values().sum::<usize>() + registry.requests().values().sum::<usize>()
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(secs));
}

async fn run(secs: f64) {
    let digest: [u8; 32] = Sha256::digest(b"manifest").into();
    let digest_text = format!("sha256:{}", hex::encode(digest));
    let gun = "registry.test:5000/shop/app".to_string();
    let mut repo = Repo::new(&gun);
    for i in 0..100 {
        let d: [u8; 32] = Sha256::digest(format!("other {i}").as_bytes()).into();
        repo.add_target("targets", &format!("old-{i}"), d);
    }
    repo.add_target("targets", "v1", digest);
    repo.delegate("targets/releases", &[""]);
    repo.add_target("targets/releases", "v1", digest);
    let notary = MemNotary::new();
    notary.serve(repo.publish().files);
    let registry = MemRegistry::new();
    registry.tag("v1", Digest::from_str(&digest_text).unwrap());

    let spec = TrustPolicySpec {
        images: vec!["registry.test:5000/shop/**".into()],
        action: Action::Verify,
        notary: Some(NotarySpec {
            url: Some("https://notary.test".into()),
            ..NotarySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            public_key: None,
            key_id: Some(repo.roles["root"].keys[0].id.clone()),
        }],
        ..TrustPolicySpec::default()
    };
    let formats_spec = TrustPolicySpec {
        signatures: Some(SignaturesSpec {
            formats: vec![SignatureFormat::NotaryV1, SignatureFormat::Notation],
            require: Require::AnyOf,
        }),
        notation: Some(NotationSpec {
            trust_store: vec![notation_ca()],
            trusted_identities: vec!["*".into()],
        }),
        ..spec.clone()
    };
    let mut set = PolicySet::new(Action::Deny);
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "p"), spec).unwrap());
    let policies = Arc::new(set);
    let mut set = PolicySet::new(Action::Deny);
    set.insert(LoadedPolicy::checked(PolicyId::namespaced("shop", "p"), formats_spec).unwrap());
    let any_of = Arc::new(set);
    let pinned = format!("{gun}@{digest_text}");
    let tagged = format!("{gun}:v1");

    let configs = [
        ("warm caches (decision cache hit)", CacheConfig::default()),
        (
            "trust_ttl=0: timestamp-only refresh per decision",
            CacheConfig {
                trust_ttl: Duration::ZERO,
                ..CacheConfig::default()
            },
        ),
        (
            "trust_ttl=0, nothing kept: full fetch + verify",
            CacheConfig {
                trust_ttl: Duration::ZERO,
                file_max_entries: 0,
                root_ttl: Duration::ZERO,
                ..CacheConfig::default()
            },
        ),
    ];
    println!("synthetic repository: targets with 101 tags + targets/releases; in-memory backends");
    for (what, cache) in configs {
        let engine = Arc::new(
            Engine::new(
                EngineConfig {
                    cache,
                    ..EngineConfig::default()
                },
                Arc::new(SystemClock),
            )
            .with_backends(registry.clone(), notary.clone()),
        );
        let t = Instant::now();
        let d = engine.decide("shop", &tagged, &policies, &Anonymous).await;
        assert!(d.verified, "{}", d.reason);
        let cold = t.elapsed();
        println!(
            "{what}: first decision (cold) {:.2} ms",
            cold.as_secs_f64() * 1e3
        );
        for (name, image) in [("digest", &pinned), ("tag", &tagged)] {
            for callers in [1, 8] {
                let before = requests(&notary, &registry);
                let (rate, n) = throughput(&engine, &policies, image, callers, secs).await;
                let reqs = requests(&notary, &registry) - before;
                println!(
                    "  {name:<6} reference, {callers} caller(s): {rate:>10.0} decisions/s  ({n} decisions, {:.2} backend requests each)",
                    reqs as f64 / n as f64
                );
            }
        }
    }

    println!("warm caches, by policy (same repository, tag reference):");
    for (what, set) in [
        ("formats [NotaryV1] (no spec.signatures)", &policies),
        ("formats [NotaryV1, Notation], AnyOf", &any_of),
    ] {
        let engine = Arc::new(
            Engine::new(EngineConfig::default(), Arc::new(SystemClock))
                .with_backends(registry.clone(), notary.clone()),
        );
        let d = engine.decide("shop", &tagged, set, &Anonymous).await;
        assert!(d.verified, "{}", d.reason);
        for callers in [1, 8] {
            let (rate, n) = throughput(&engine, set, &tagged, callers, secs).await;
            println!("  {what:<42} {callers} caller(s): {rate:>10.0} decisions/s  ({n} decisions)");
        }
    }
}
