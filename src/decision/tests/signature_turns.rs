//! Notation and cosign evaluations take turns engine-wide: however many images are decided at
//! once, at most `LIMITS.signature_evaluations_at_once` fetch (and verify) their signatures at
//! the same time; the others wait within their deadline.

use std::time::Duration;

use super::*;
use crate::limits::LIMITS;
use crate::policy::formats::{CosignSpec, Require, SignaturesSpec};

const COSIGN_PUB: &str = include_str!("../../signatures/cosign/testdata/cosign.pub");

/// A policy evaluating cosign signatures alone for the server's repositories.
fn cosign_policies(server: &Server) -> PolicySet {
    let spec = TrustPolicySpec {
        images: vec![format!("{}/shop/**", server.host())],
        action: Action::Verify,
        registry: Some(RegistrySpec::default()),
        signatures: Some(SignaturesSpec {
            formats: vec![SignatureFormat::Cosign],
            require: Require::AnyOf,
        }),
        cosign: Some(CosignSpec {
            public_keys: vec![COSIGN_PUB.to_string()],
            ..CosignSpec::default()
        }),
        ..TrustPolicySpec::default()
    };
    let mut set = PolicySet::new(Action::Deny);
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "cosign"), spec).unwrap());
    set
}

/// `count` distinct digests of the server's repository.
fn images(server: &Server, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{}@sha256:{i:064x}", server.gun()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signature_evaluations_take_turns_engine_wide() {
    let server = Server::start().await;
    server
        .registry
        .serve_signatures(Vec::new(), Duration::from_millis(40));
    let policies = cosign_policies(&server);
    let engine = Arc::new(engine(
        &server,
        CacheConfig::default(),
        Arc::new(FixedClock(NOW)),
    ));
    let count = 5 * LIMITS.signature_evaluations_at_once;
    // One review of many images, and another one at the same time: the bound is the engine's.
    let (first, second) = (images(&server, count), images(&server, 2 * count));
    let second = second[count..].to_vec();
    let (a, b) = tokio::join!(
        engine.decide_all("shop", &first, &policies, &Anonymous),
        engine.decide_all("shop", &second, &policies, &Anonymous),
    );
    for d in a.iter().chain(&b) {
        assert!(!d.allowed);
        assert!(d.reason.contains("no cosign signature"), "{}", d.reason);
    }
    assert_eq!(
        server.registry.most_signature_fetches_at_once(),
        LIMITS.signature_evaluations_at_once
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_turn_counts_against_the_deadline() {
    let server = Server::start().await;
    // Each fetch takes 3 s: with 8 turns, 24 images need 3 rounds (9 s), past the 8 s deadline.
    server
        .registry
        .serve_signatures(Vec::new(), Duration::from_secs(3));
    let policies = cosign_policies(&server);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let count = 3 * LIMITS.signature_evaluations_at_once;
    let started = tokio::time::Instant::now();
    let decisions = engine
        .decide_all("shop", &images(&server, count), &policies, &Anonymous)
        .await;
    assert_eq!(started.elapsed(), engine.config().deadline);
    let timed_out = decisions.iter().filter(|d| d.class() == "timeout").count();
    assert_eq!(
        timed_out, LIMITS.signature_evaluations_at_once,
        "{decisions:?}"
    );
    for d in &decisions {
        assert!(!d.allowed);
    }
}
