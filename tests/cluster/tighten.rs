//! Cluster mode's credentials under `namespacedPolicies: Tighten`: when a namespaced policy and
//! a Tighten cluster policy both decide an image, the Secrets of both are read for the review,
//! each in its own namespace (the namespaced policy's, trustgate's), so each policy verifies
//! with its own credentials. Under the default Override only the namespaced policy's are read.

use serde_json::json;
use trustgate::admission::credentials::{CredentialRequest, RequestCredentials};
use trustgate::cluster::{SecretConfig, SecretCredentials};
use trustgate::image::reference::ImageRef;
use trustgate::policy::{
    Action, LoadedPolicy, NamespacedPolicies, NotarySpec, PolicyId, PolicySet, SecretRef,
    TrustPolicySpec, TrustRoot,
};

use crate::mock::{fake, notary_of, objects, problem_of, secret};

/// A Verify spec for `images` naming the Notary Secret `notary_secret`.
fn spec(images: &[&str], notary_secret: &str) -> TrustPolicySpec {
    TrustPolicySpec {
        images: images.iter().map(|s| (*s).to_string()).collect(),
        action: Action::Verify,
        notary: Some(NotarySpec {
            url: Some("https://notary.example.com:4443".into()),
            credentials_secret: Some(SecretRef {
                name: notary_secret.into(),
            }),
            ..NotarySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            key_id: Some("a".repeat(64)),
            ..TrustRoot::default()
        }],
        ..TrustPolicySpec::default()
    }
}

#[tokio::test]
async fn both_policies_secrets_are_read_under_tighten_only() {
    for how in [NamespacedPolicies::Tighten, NamespacedPolicies::Override] {
        let (client, api) = fake(objects(
            vec![
                secret(
                    "shop",
                    "tenant-notary",
                    "Opaque",
                    &[("username", "tenant"), ("password", "tp")],
                ),
                secret(
                    "trustgate",
                    "platform-notary",
                    "Opaque",
                    &[("username", "platform"), ("password", "pp")],
                ),
            ],
            &[],
        ));
        let namespaced = LoadedPolicy::new(
            PolicyId::namespaced("shop", "tenant"),
            spec(&["reg.example/**"], "tenant-notary"),
        )
        .unwrap();
        let mut cluster_spec = spec(&["reg.example/shop/**"], "platform-notary");
        cluster_spec.namespaced_policies = Some(how);
        let cluster = LoadedPolicy::new(PolicyId::cluster("platform"), cluster_spec).unwrap();
        let mut policies = PolicySet::new(Action::Deny);
        policies.extend([namespaced.clone(), cluster.clone()]);

        let creds = SecretCredentials::new(client, "trustgate", SecretConfig::default());
        let source = creds
            .for_request(CredentialRequest {
                namespace: "shop",
                image_pull_secrets: &[],
                service_account: None,
            })
            .await;
        assert_eq!(
            notary_of(source.as_ref(), &namespaced).await,
            Some(("tenant".into(), "tp".into())),
            "{how}"
        );
        assert_eq!(
            problem_of(source.as_ref(), &namespaced).await,
            None,
            "{how}"
        );
        // The engine asks for the credentials of every policy the selection names.
        let image = ImageRef::parse("reg.example/shop/app:1").unwrap();
        for policy in policies.select("shop", &image).policies() {
            assert!(source.credentials(policy, image.domain()).await.is_ok());
        }
        let mut paths: Vec<String> = api
            .paths()
            .into_iter()
            .filter(|p| p.contains("/secrets/"))
            .collect();
        paths.sort();
        match how {
            NamespacedPolicies::Tighten => {
                assert_eq!(
                    notary_of(source.as_ref(), &cluster).await,
                    Some(("platform".into(), "pp".into())),
                    "the cluster policy's own login, from trustgate's namespace"
                );
                assert_eq!(problem_of(source.as_ref(), &cluster).await, None);
                assert_eq!(
                    paths,
                    [
                        "GET /api/v1/namespaces/shop/secrets/tenant-notary",
                        "GET /api/v1/namespaces/trustgate/secrets/platform-notary",
                    ]
                );
            }
            NamespacedPolicies::Override => {
                assert_eq!(
                    paths,
                    ["GET /api/v1/namespaces/shop/secrets/tenant-notary"],
                    "the cluster policy does not take part: {:?}",
                    json!(api.paths())
                );
            }
        }
    }
}
