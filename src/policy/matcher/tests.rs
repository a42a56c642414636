//! Precedence: namespaced before cluster, specificity, ties by name, the default action.

use super::*;
use crate::policy::testdata::verify_spec;

fn image(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap_or_else(|e| panic!("test image {s:?}: {e}"))
}

fn policy(namespace: Option<&str>, name: &str, images: &[&str]) -> LoadedPolicy {
    let id = match namespace {
        Some(ns) => PolicyId::namespaced(ns, name),
        None => PolicyId::cluster(name),
    };
    LoadedPolicy::new(id, verify_spec(images)).unwrap_or_else(|e| panic!("{e:?}"))
}

/// `namespace/name pattern` of the selection, or `default:Action`.
fn chosen(set: &PolicySet, namespace: &str, img: &str) -> String {
    match set.select(namespace, &image(img)) {
        Selection::Policy { policy, pattern } => format!("{} {pattern}", policy.id),
        Selection::Both {
            namespaced,
            namespaced_pattern,
            cluster,
            cluster_pattern,
        } => format!(
            "{} {cluster_pattern} + {} {namespaced_pattern}",
            cluster.id, namespaced.id
        ),
        Selection::Default(action) => format!("default:{action}"),
    }
}

/// A cluster policy saying `namespacedPolicies: mode` (None: not set).
fn cluster(name: &str, images: &[&str], mode: Option<NamespacedPolicies>) -> LoadedPolicy {
    let mut spec = verify_spec(images);
    spec.namespaced_policies = mode;
    LoadedPolicy::new(PolicyId::cluster(name), spec).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn policy_id_display_and_kind() {
    let ns = PolicyId::namespaced("shop", "shop-images");
    assert_eq!(ns.to_string(), "shop/shop-images");
    assert_eq!(ns.kind(), "TrustPolicy");
    let cluster = PolicyId::cluster("baseline");
    assert_eq!(cluster.to_string(), "baseline");
    assert_eq!(cluster.kind(), "ClusterTrustPolicy");
}

#[test]
fn namespaced_policies_win_over_more_specific_cluster_policies() {
    let mut set = PolicySet::default();
    set.insert(policy(Some("shop"), "broad", &["registry.example.com/**"]));
    set.insert(policy(None, "exact", &["registry.example.com/shop/app:v1"]));
    assert_eq!(
        chosen(&set, "shop", "registry.example.com/shop/app:v1"),
        "shop/broad registry.example.com/**"
    );
    // Other namespaces do not see shop's policy.
    assert_eq!(
        chosen(&set, "other", "registry.example.com/shop/app:v1"),
        "exact registry.example.com/shop/app:v1"
    );
    // No namespaced match: fall through to cluster policies.
    assert_eq!(chosen(&set, "shop", "nginx"), "default:Deny");
}

#[test]
fn most_specific_pattern_wins_within_a_tier() {
    let mut set = PolicySet::default();
    set.insert(policy(None, "a-everything", &["**"]));
    set.insert(policy(None, "b-registry", &["registry.example.com/**"]));
    set.insert(policy(
        None,
        "c-shop",
        &["registry.example.com/shop/*", "nginx"],
    ));
    set.insert(policy(
        None,
        "d-tags",
        &["registry.example.com/shop/app:v*"],
    ));
    assert_eq!(
        chosen(&set, "ns", "registry.example.com/shop/app:v1"),
        "d-tags registry.example.com/shop/app:v*"
    );
    assert_eq!(
        chosen(&set, "ns", "registry.example.com/shop/app:latest"),
        "c-shop registry.example.com/shop/*"
    );
    assert_eq!(
        chosen(&set, "ns", "registry.example.com/team/app"),
        "b-registry registry.example.com/**"
    );
    assert_eq!(chosen(&set, "ns", "quay.io/x/y"), "a-everything **");
    assert_eq!(chosen(&set, "ns", "nginx:1.25"), "c-shop nginx");
}

#[test]
fn best_pattern_within_one_policy() {
    let p = policy(
        None,
        "p",
        &["registry.example.com/**", "registry.example.com/shop/app"],
    );
    let found = p.best_match(&image("registry.example.com/shop/app:v1"));
    assert_eq!(
        found.map(ImagePattern::as_str),
        Some("registry.example.com/shop/app")
    );
}

#[test]
fn ties_go_to_the_policy_name_then_the_pattern() {
    let mut set = PolicySet::default();
    // Same specificity (`registry.example.com/`): the names decide, whatever the insert order.
    set.insert(policy(None, "zeta", &["registry.example.com/*"]));
    set.insert(policy(None, "alpha", &["registry.example.com/**"]));
    assert_eq!(
        chosen(&set, "ns", "registry.example.com/app"),
        "alpha registry.example.com/**"
    );
    // Within one policy: the pattern text decides.
    let mut set = PolicySet::default();
    set.insert(policy(
        None,
        "p",
        &["registry.example.com/*", "registry.example.com/**"],
    ));
    assert_eq!(
        chosen(&set, "ns", "registry.example.com/app"),
        "p registry.example.com/*"
    );
}

#[test]
fn default_action_when_nothing_matches() {
    let mut set = PolicySet::default();
    assert_eq!(set.default_action(), Action::Deny);
    set.insert(policy(None, "shop", &["registry.example.com/shop/**"]));
    assert_eq!(chosen(&set, "ns", "nginx"), "default:Deny");
    let set = set.with_default_action(Action::Allow);
    assert_eq!(chosen(&set, "ns", "nginx"), "default:Allow");
    assert_eq!(
        set.select("ns", &image("nginx")),
        Selection::Default(Action::Allow)
    );
}

#[test]
fn insert_replace_remove_and_iterate() {
    let mut set = PolicySet::default();
    assert!(set.is_empty());
    assert!(set.insert(policy(Some("a"), "p", &["nginx"])).is_none());
    assert!(set.insert(policy(Some("b"), "p", &["nginx"])).is_none());
    assert!(set.insert(policy(None, "p", &["nginx"])).is_none());
    let old = set.insert(policy(Some("a"), "p", &["redis"]));
    assert_eq!(
        old.map(|p| p.spec.images.clone()),
        Some(vec!["nginx".to_owned()])
    );
    assert_eq!(set.len(), 3);
    let ids: Vec<String> = set.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids, ["a/p", "b/p", "p"]);
    assert_eq!(chosen(&set, "a", "redis"), "a/p redis");
    assert!(set.get(Some("b"), "p").is_some());
    assert!(set.remove(Some("b"), "p").is_some());
    assert!(set.remove(Some("b"), "p").is_none());
    assert!(set.remove(None, "p").is_some());
    assert_eq!(set.len(), 1);
    assert_eq!(chosen(&set, "b", "nginx"), "default:Deny");
}

#[test]
fn invalid_patterns_are_rejected_with_their_index() {
    let err = LoadedPolicy::new(PolicyId::cluster("p"), verify_spec(&["nginx", "a b"]))
        .expect_err("invalid pattern");
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].path, "spec.images[1]");
}

#[test]
fn from_objects() {
    let mut object = TrustPolicy::new("shop-images", verify_spec(&["nginx"]));
    object.metadata.generation = Some(4);
    object.metadata.uid = Some("uid-1".into());
    let loaded = LoadedPolicy::from_trust_policy(&object).expect("valid");
    assert_eq!(loaded.id.to_string(), "default/shop-images");
    assert_eq!(loaded.id.generation, Some(4));
    assert_eq!(loaded.id.uid.as_deref(), Some("uid-1"));
    assert_eq!(loaded.action(), Action::Verify);
    assert_eq!(loaded.mode(), Mode::Enforce);
    let object = ClusterTrustPolicy::new("baseline", verify_spec(&["**"]).into());
    let loaded = LoadedPolicy::from_cluster_trust_policy(&object).expect("valid");
    assert_eq!(loaded.id.to_string(), "baseline");
    assert_eq!(loaded.patterns().len(), 1);
}

#[test]
fn tighten_makes_both_policies_take_part() {
    let mut set = PolicySet::default();
    set.insert(policy(Some("shop"), "allow-all", &["**"]));
    set.insert(cluster(
        "platform",
        &["registry.example.com/**"],
        Some(NamespacedPolicies::Tighten),
    ));
    set.insert(cluster("other", &["other.example.com/**"], None));
    // Tighten: both, cluster first in `policies()`.
    let img = "registry.example.com/shop/app:v1";
    assert_eq!(
        chosen(&set, "shop", img),
        "platform registry.example.com/** + shop/allow-all **"
    );
    let both = set.select("shop", &image(img));
    let ids: Vec<String> = both.policies().iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids, ["platform", "shop/allow-all"]);
    // The default (absent) is Override: the namespaced policy alone decides.
    assert_eq!(
        chosen(&set, "shop", "other.example.com/x:1"),
        "shop/allow-all **"
    );
    // Images the Tighten policy does not match are the namespaced policy's alone.
    assert_eq!(chosen(&set, "shop", "nginx"), "shop/allow-all **");
    // Without a namespaced match, the cluster policy alone.
    assert_eq!(chosen(&set, "ns", img), "platform registry.example.com/**");
    assert_eq!(set.select("ns", &image(img)).policies().len(), 1);
    assert!(set.select("ns", &image("nginx")).policies().is_empty());
}

#[test]
fn tighten_is_read_from_the_most_specific_cluster_policy() {
    let mut set = PolicySet::default();
    set.insert(policy(Some("shop"), "allow-all", &["**"]));
    set.insert(cluster(
        "broad-tighten",
        &["registry.example.com/**"],
        Some(NamespacedPolicies::Tighten),
    ));
    set.insert(cluster(
        "narrow-override",
        &["registry.example.com/shop/**"],
        Some(NamespacedPolicies::Override),
    ));
    // The more specific cluster policy decides among cluster policies, and it says Override.
    assert_eq!(
        chosen(&set, "shop", "registry.example.com/shop/app:v1"),
        "shop/allow-all **"
    );
    // Elsewhere the Tighten one is the most specific.
    assert_eq!(
        chosen(&set, "shop", "registry.example.com/web/app:v1"),
        "broad-tighten registry.example.com/** + shop/allow-all **"
    );
    // A namespaced policy cannot opt out by saying Override itself (only the cluster
    // policy's field is read; validation rejects it on a TrustPolicy anyway).
    let mut spec = verify_spec(&["registry.example.com/web/**"]);
    spec.namespaced_policies = Some(NamespacedPolicies::Override);
    set.insert(LoadedPolicy::new(PolicyId::namespaced("shop", "sneaky"), spec).unwrap());
    assert_eq!(
        chosen(&set, "shop", "registry.example.com/web/app:v1"),
        "broad-tighten registry.example.com/** + shop/sneaky registry.example.com/web/**"
    );
}
