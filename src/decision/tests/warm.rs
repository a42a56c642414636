//! Warming (`Engine::warm`): the Notary set-up of every Verify policy is opened once and
//! warmed; the review after it uses that very source.

use super::*;

#[tokio::test]
async fn verify_policies_are_warmed_once_per_set_up_and_reviews_reuse_the_source() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let set = policies(&server, &repo, Action::Verify);
    let verify = set.iter().next().unwrap().clone();
    // The same Notary set-up in another policy, and an Allow policy (nothing to warm).
    let twin =
        LoadedPolicy::new(PolicyId::namespaced("shop", "twin"), verify.spec.clone()).unwrap();
    let allow = LoadedPolicy::new(
        PolicyId::namespaced("shop", "allow"),
        TrustPolicySpec {
            images: vec!["other.test/**".into()],
            action: Action::Allow,
            ..TrustPolicySpec::default()
        },
    )
    .unwrap();
    let creds: Arc<dyn CredentialSource> = Arc::new(Anonymous);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let warmed = engine
        .warm(
            &[
                (verify, creds.clone()),
                (Arc::new(twin), creds.clone()),
                (Arc::new(allow), creds),
            ],
            4,
        )
        .await;
    assert_eq!(warmed, 1);
    assert_eq!(server.notary.warmed(), vec![4]);
    assert_eq!(server.notary.connected().len(), 1);
    assert!(
        server.notary.requests().is_empty(),
        "warming fetches no metadata"
    );

    let d = engine
        .decide("shop", &format!("{}:v1", server.gun()), &set, &Anonymous)
        .await;
    assert!(d.allowed && d.verified, "{}", d.reason);
    assert_eq!(
        server.notary.connected().len(),
        1,
        "the review used the warmed source"
    );
}

#[tokio::test]
async fn one_warming_opens_at_most_max_warm_sources() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    let set = policies(&server, &repo, Action::Verify);
    let verify = set.iter().next().unwrap().clone();
    let creds: Arc<dyn CredentialSource> = Arc::new(Anonymous);
    let many: Vec<(Arc<LoadedPolicy>, Arc<dyn CredentialSource>)> = (0..MAX_WARM_SOURCES + 8)
        .map(|i| {
            let mut spec = verify.spec.clone();
            spec.notary = Some(NotarySpec {
                url: Some(format!("https://notary-{i}.test")),
                ..NotarySpec::default()
            });
            let p = LoadedPolicy::new(PolicyId::namespaced("shop", format!("p{i}")), spec).unwrap();
            (Arc::new(p), creds.clone())
        })
        .collect();
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    assert_eq!(engine.warm(&many, 2).await, MAX_WARM_SOURCES);
    assert_eq!(server.notary.connected().len(), MAX_WARM_SOURCES);
    assert_eq!(server.notary.warmed(), vec![2; MAX_WARM_SOURCES]);
}
