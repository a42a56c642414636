//! The per-image deadline, on paused tokio time: a registry or Notary server that answers late
//! is cut off at exactly the deadline (fail closed, class `timeout`), and one that answers
//! within it is waited for.

use std::time::Duration;

use super::*;

/// A signed repository behind `server`, tag v1 -> A, and its policy set.
fn signed(server: &Server) -> PolicySet {
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    policies(server, &repo, Action::Verify)
}

#[tokio::test(start_paused = true)]
async fn a_slow_registry_is_cut_off_at_the_deadline() {
    let server = Server::start().await;
    let policies = signed(&server);
    server.registry.delay(Duration::from_secs(60));
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let started = tokio::time::Instant::now();
    let d = engine
        .decide(
            "shop",
            &format!("{}:v1", server.gun()),
            &policies,
            &Anonymous,
        )
        .await;
    assert_eq!(started.elapsed(), engine.config().deadline);
    assert!(!d.allowed);
    assert_eq!(d.class(), "timeout", "{}", d.reason);
    assert!(
        d.reason.contains("not decided within 8s (fail closed)"),
        "{}",
        d.reason
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_notary_server_is_cut_off_at_the_deadline() {
    let server = Server::start().await;
    let policies = signed(&server);
    server.notary.delay(Duration::from_secs(9));
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let started = tokio::time::Instant::now();
    // root, timestamp, snapshot, targets and releases are asked at once; each answers after 9 s.
    let d = engine
        .decide(
            "shop",
            &format!("{}@{}", server.gun(), hex_of(A)),
            &policies,
            &Anonymous,
        )
        .await;
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    assert_eq!(d.class(), "timeout", "{}", d.reason);
    assert!(!d.allowed);
}

#[tokio::test(start_paused = true)]
async fn answers_within_the_deadline_are_waited_for() {
    let server = Server::start().await;
    let policies = signed(&server);
    server.registry.delay(Duration::from_secs(2));
    server.notary.delay(Duration::from_secs(1));
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let started = tokio::time::Instant::now();
    let d = engine
        .decide(
            "shop",
            &format!("{}:v1", server.gun()),
            &policies,
            &Anonymous,
        )
        .await;
    assert!(d.allowed && d.verified, "{}", d.reason);
    // 2 s for the tag while the five metadata files, fetched all at once, take 1 s.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_tag_the_registry_refuses_does_not_wait_for_the_notary_chain() {
    let server = Server::start().await;
    let policies = signed(&server);
    server.notary.delay(Duration::from_secs(5));
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let started = tokio::time::Instant::now();
    let d = engine
        .decide(
            "shop",
            &format!("{}:missing", server.gun()),
            &policies,
            &Anonymous,
        )
        .await;
    assert!(!d.allowed);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(d.class(), "timeout", "{}", d.reason);
}
