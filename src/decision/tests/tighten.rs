//! `namespacedPolicies`: the matrix Override / Tighten × namespaced Allow / Verify / Deny ×
//! cluster Verify / Allow / Deny × both modes × a signed and an unsigned tag, through the whole
//! engine (selection, both decisions, the caches shared across every case), plus the folding of
//! two decisions into one ([`super::combine::both`]) and the credentials asked for each policy.

use std::sync::Mutex;

use super::*;
use crate::decision::combine;
use crate::policy::NamespacedPolicies;

/// One policy's outcome for an image, as the policy reference states it: Allow passes, Deny rejects,
/// Verify passes when the tag is signed and otherwise fails under the policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alone {
    Pass,
    Reject,
    Warned,
    Audited,
}

fn alone(action: Action, mode: Mode, signed: bool) -> Alone {
    match (action, signed, mode) {
        (Action::Allow, _, _) | (Action::Verify, true, _) => Alone::Pass,
        (Action::Deny, _, _) | (Action::Verify, false, Mode::Enforce) => Alone::Reject,
        (Action::Verify, false, Mode::Warn) => Alone::Warned,
        (Action::Verify, false, Mode::Audit) => Alone::Audited,
    }
}

fn verdict(a: Alone) -> &'static str {
    match a {
        Alone::Pass => "ADMITTED",
        Alone::Reject => "REJECTED",
        Alone::Warned => "WARNED",
        Alone::Audited => "AUDITED",
    }
}

fn rank(a: Alone) -> u8 {
    match a {
        Alone::Reject => 3,
        Alone::Warned => 2,
        Alone::Audited => 1,
        Alone::Pass => 0,
    }
}

/// The expected (verdict, policy) of the combined decision.
fn expected(cluster: Alone, namespaced: Alone) -> (&'static str, &'static str) {
    if rank(cluster) > 0 && rank(cluster) >= rank(namespaced) {
        (verdict(cluster), "platform")
    } else {
        (verdict(namespaced), "shop/ns")
    }
}

fn spec_of(server: &Server, repo: &Repo, action: Action, mode: Mode) -> TrustPolicySpec {
    let set = policies(server, repo, action);
    let mut spec = set.get(Some("shop"), "p").unwrap().spec.clone();
    spec.mode = mode;
    spec
}

const ACTIONS: [Action; 3] = [Action::Allow, Action::Verify, Action::Deny];
const MODES: [Mode; 3] = [Mode::Enforce, Mode::Warn, Mode::Audit];

#[tokio::test]
async fn override_and_tighten_matrix() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    // v2 serves the signed content A, but the tag v2 was never signed.
    server.tag("v2", A);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let mut cases = 0;
    for how in [NamespacedPolicies::Override, NamespacedPolicies::Tighten] {
        for (ns_action, ns_mode) in ACTIONS.into_iter().flat_map(|a| MODES.map(|m| (a, m))) {
            for (cl_action, cl_mode) in ACTIONS.into_iter().flat_map(|a| MODES.map(|m| (a, m))) {
                let mut set = PolicySet::new(Action::Deny);
                let ns = spec_of(&server, &repo, ns_action, ns_mode);
                set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "ns"), ns).unwrap());
                let mut cl = spec_of(&server, &repo, cl_action, cl_mode);
                cl.images = vec!["**".into()];
                cl.namespaced_policies = Some(how);
                set.insert(LoadedPolicy::new(PolicyId::cluster("platform"), cl).unwrap());
                for (tag, signed) in [("v1", true), ("v2", false)] {
                    let image = format!("{}:{tag}", server.gun());
                    let d = engine.decide("shop", &image, &set, &Anonymous).await;
                    let n = alone(ns_action, ns_mode, signed);
                    let c = alone(cl_action, cl_mode, signed);
                    let (want_verdict, want_policy) = match how {
                        NamespacedPolicies::Override => (verdict(n), "shop/ns"),
                        NamespacedPolicies::Tighten => expected(c, n),
                    };
                    let case = format!(
                        "{how} ns {ns_action}/{ns_mode} cluster {cl_action}/{cl_mode} {tag}: {}",
                        d.reason
                    );
                    assert_eq!(d.verdict(), want_verdict, "{case}");
                    assert_eq!(d.policy.as_deref(), Some(want_policy), "{case}");
                    assert_eq!(
                        d.allowed,
                        want_verdict != "REJECTED",
                        "{case}: admitted only if every policy taking part admits"
                    );
                    assert!(!d.reason.contains('\n'), "{case}");
                    assert!(d.reason.starts_with(&image), "{case}");
                    if how == NamespacedPolicies::Tighten {
                        // One line naming both policies.
                        assert!(
                            d.reason.contains("policy platform") && d.reason.contains("shop/ns"),
                            "{case}"
                        );
                        assert!(d.reason.contains("namespacedPolicies: Tighten"), "{case}");
                    } else {
                        assert!(!d.reason.contains("platform"), "{case}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 9 * 9 * 2);
    // One decision per image in the metrics, never two.
    let text = engine.metrics().encode();
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("trustgate_image_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, cases);
}

#[tokio::test]
async fn tenant_allow_all_cannot_relax_a_tighten_policy() {
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v2", A);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let mut set = PolicySet::new(Action::Deny);
    let allow_all = TrustPolicySpec {
        images: vec!["**".into()],
        action: Action::Allow,
        ..TrustPolicySpec::default()
    };
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "allow-all"), allow_all).unwrap());
    let mut platform = spec_of(&server, &repo, Action::Verify, Mode::Enforce);
    platform.namespaced_policies = Some(NamespacedPolicies::Tighten);
    set.insert(LoadedPolicy::new(PolicyId::cluster("platform"), platform.clone()).unwrap());
    let image = format!("{}:v2", server.gun());

    let d = engine.decide("shop", &image, &set, &Anonymous).await;
    assert!(!d.allowed, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("platform"));
    assert_eq!(d.class(), "unsigned");
    assert_eq!(d.digest.as_deref(), Some(hex_of(A).as_str()));
    assert!(d.reason.contains("tag v2 is not signed"), "{}", d.reason);
    assert!(
        d.reason
            .contains("admitted by policy shop/allow-all: action Allow"),
        "{}",
        d.reason
    );

    // The same set under the default Override: the tenant's Allow decides (today's rule).
    platform.namespaced_policies = None;
    set.insert(LoadedPolicy::new(PolicyId::cluster("platform"), platform).unwrap());
    let d = engine.decide("shop", &image, &set, &Anonymous).await;
    assert!(d.allowed, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("shop/allow-all"));
    assert_eq!(d.class(), "action_allow");
}

#[tokio::test]
async fn both_policies_get_their_own_credentials() {
    /// Records which policies the engine asked Notary credentials for.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);
    impl CredentialSource for Recording {
        fn credentials<'a>(
            &'a self,
            policy: &'a LoadedPolicy,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<PolicyCredentials, String>> {
            self.0.lock().unwrap().push(policy.id.to_string());
            Box::pin(async { Ok(PolicyCredentials::default()) })
        }
    }
    let server = Server::start().await;
    let repo = repo(&server.gun());
    server.serve_notary(repo.publish());
    server.tag("v1", A);
    let engine = engine(&server, CacheConfig::default(), Arc::new(FixedClock(NOW)));
    let mut set = PolicySet::new(Action::Deny);
    let ns = spec_of(&server, &repo, Action::Verify, Mode::Enforce);
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "ns"), ns).unwrap());
    let mut cl = spec_of(&server, &repo, Action::Verify, Mode::Enforce);
    cl.namespaced_policies = Some(NamespacedPolicies::Tighten);
    set.insert(LoadedPolicy::new(PolicyId::cluster("platform"), cl).unwrap());
    let creds = Recording::default();
    let d = engine
        .decide("shop", &format!("{}:v1", server.gun()), &set, &creds)
        .await;
    assert!(d.allowed && d.verified, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("shop/ns"));
    assert_eq!(d.class(), "verified");
    let mut asked = creds.0.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["platform", "shop/ns"]);
    // Two policies, two decision-cache entries: the second round is answered from the cache
    // for each of them, with the same result.
    let again = engine
        .decide("shop", &format!("{}:v1", server.gun()), &set, &creds)
        .await;
    assert_eq!(again, d);
}

fn decision(policy: &str, action: Action, mode: Mode, outcome: Alone) -> Decision {
    let reference = "example.com/shop/app:v1";
    let (allowed, verified, class, why) = match outcome {
        Alone::Pass => (true, true, ReasonClass::Verified, "verified by"),
        Alone::Reject => (false, false, ReasonClass::Unsigned, "rejected by"),
        Alone::Warned | Alone::Audited => (true, false, ReasonClass::Unsigned, "failed by"),
    };
    Decision {
        image: reference.into(),
        reference: Some(reference.into()),
        digest: None,
        policy: Some(policy.into()),
        action,
        mode,
        allowed,
        verified,
        reason_class: class,
        reason: format!("{reference} {why} policy {policy}: because"),
        signers: Vec::new(),
        formats: None,
    }
}

#[test]
fn folding_two_decisions() {
    let mode = |a: Alone| match a {
        Alone::Warned => Mode::Warn,
        Alone::Audited => Mode::Audit,
        _ => Mode::Enforce,
    };
    let all = [Alone::Pass, Alone::Reject, Alone::Warned, Alone::Audited];
    for c in all {
        for n in all {
            let d = combine::both(
                decision("platform", Action::Verify, mode(c), c),
                decision("shop/ns", Action::Verify, mode(n), n),
            );
            let (want_verdict, want_policy) = expected(c, n);
            assert_eq!(
                (d.verdict(), d.policy.as_deref()),
                (want_verdict, Some(want_policy)),
                "{c:?} {n:?}: {}",
                d.reason
            );
            let other = if want_policy == "platform" {
                "shop/ns"
            } else {
                "platform"
            };
            assert!(
                d.reason.starts_with(&format!(
                    "example.com/shop/app:v1 {}",
                    match want_verdict {
                        "ADMITTED" => "verified by",
                        "REJECTED" => "rejected by",
                        _ => "failed by",
                    }
                )),
                "{}",
                d.reason
            );
            assert!(d.reason.contains("; "), "{}", d.reason);
            assert!(
                d.reason.contains(&format!("policy {other}")),
                "{}",
                d.reason
            );
        }
    }
}

#[test]
fn different_digests_from_the_two_policies_reject() {
    let mut c = decision("platform", Action::Verify, Mode::Enforce, Alone::Pass);
    c.digest = Some(hex_of(A));
    let mut n = decision("shop/ns", Action::Verify, Mode::Warn, Alone::Pass);
    n.digest = Some(hex_of(B));
    let d = combine::both(c.clone(), n.clone());
    assert!(!d.allowed && !d.verified);
    assert_eq!(d.policy.as_deref(), Some("platform"));
    assert_eq!(d.mode, Mode::Enforce);
    assert_eq!(d.class(), "digest_mismatch");
    assert!(
        d.reason.contains(&hex_of(A)) && d.reason.contains(&hex_of(B)),
        "{}",
        d.reason
    );
    // The same digest, or one side without one (Allow), is fine; the digest is kept.
    n.digest = None;
    n.signers = vec!["targets/alice".into()];
    c.signers = vec!["targets".into()];
    let d = combine::both(c, n);
    assert!(d.allowed && d.verified, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("shop/ns"));
    assert_eq!(d.digest, Some(hex_of(A)));
    assert_eq!(d.signers, ["targets/alice", "targets"]);
}
