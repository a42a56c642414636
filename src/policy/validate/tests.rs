//! One test per validation rule, each checking the field path in the error.

use super::*;
use crate::policy::crd::{NotarySpec, RegistrySpec, Signer, TrustRoot};
use crate::policy::testdata::{CERT_PEM, KEY_ID, PUBLIC_KEY_PEM, verify_spec};

/// The errors of `spec` as (path, message) pairs; panics when it is valid.
fn errors(spec: &TrustPolicySpec) -> Vec<FieldError> {
    validate(spec).expect_err("spec should be invalid")
}

/// Asserts exactly one error, at `path`, whose message contains `needle`.
fn assert_one(spec: &TrustPolicySpec, path: &str, needle: &str) {
    let errs = errors(spec);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
    assert_eq!(errs[0].path, path, "{errs:?}");
    assert!(
        errs[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        errs[0].message
    );
}

fn signer(name: &str) -> Signer {
    Signer {
        name: name.into(),
        ..Signer::default()
    }
}

#[test]
fn minimal_verify_spec_is_valid() {
    assert_eq!(validate(&verify_spec(&["nginx"])), Ok(()));
}

#[test]
fn allow_and_deny_need_no_notary_or_roots() {
    for action in [Action::Allow, Action::Deny] {
        let spec = TrustPolicySpec {
            images: vec!["**".into()],
            action,
            ..TrustPolicySpec::default()
        };
        assert_eq!(validate(&spec), Ok(()), "{action}");
    }
}

#[test]
fn images_required_and_parsed() {
    let mut spec = verify_spec(&[]);
    assert_one(&spec, "spec.images", "at least one");
    spec.images = vec!["nginx".into(), "".into(), "registry.example.com/App".into()];
    let errs = errors(&spec);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].path, "spec.images[1]");
    assert!(errs[0].message.contains("empty"), "{errs:?}");
    assert_eq!(errs[1].path, "spec.images[2]");
    assert!(errs[1].message.contains("\"App\""), "{errs:?}");
    spec.images = vec!["x".into(); MAX_IMAGES + 1];
    assert_one(&spec, "spec.images", "at most 256");
}

#[test]
fn verify_needs_notary_url() {
    let mut spec = verify_spec(&["nginx"]);
    spec.notary = None;
    assert_one(&spec, "spec.notary.url", "required when action is Verify");
    spec.notary = Some(NotarySpec::default());
    assert_one(&spec, "spec.notary.url", "required when action is Verify");
}

#[test]
fn notary_url_scheme_and_shape() {
    for (url, needle) in [
        ("notary.example.com", "must start with https:// or http://"),
        (
            "ftp://notary.example.com",
            "must start with https:// or http://",
        ),
        ("https://", "not a valid URL"),
        ("https://notary.example.com/?x=1", "query"),
    ] {
        let mut spec = verify_spec(&["nginx"]);
        spec.notary = Some(NotarySpec {
            url: Some(url.into()),
            ..NotarySpec::default()
        });
        assert_one(&spec, "spec.notary.url", needle);
    }
    let mut spec = verify_spec(&["nginx"]);
    spec.notary = Some(NotarySpec {
        url: Some("http://127.0.0.1:4443".into()),
        ..NotarySpec::default()
    });
    assert_eq!(validate(&spec), Ok(()));
}

#[test]
fn ca_bundles_secrets_and_gun() {
    let mut spec = verify_spec(&["nginx"]);
    spec.notary = Some(NotarySpec {
        url: Some("https://notary.example.com".into()),
        ca_bundle: Some(CERT_PEM.into()),
        credentials_secret: Some(SecretRef {
            name: "notary-creds".into(),
        }),
        gun: Some("registry.example.com:5000/shop/app".into()),
    });
    spec.registry = Some(RegistrySpec {
        ca_bundle: Some(CERT_PEM.into()),
        plain_http: true,
        credentials_secret: Some(SecretRef {
            name: "pull-creds".into(),
        }),
    });
    assert_eq!(validate(&spec), Ok(()));

    let mut bad = spec.clone();
    if let Some(n) = bad.notary.as_mut() {
        n.ca_bundle = Some("not pem".into());
    }
    assert_one(&bad, "spec.notary.caBundle", "no PEM certificate");

    let mut bad = spec.clone();
    if let Some(r) = bad.registry.as_mut() {
        r.ca_bundle = Some(CERT_PEM.replace("MIIBqDCCAU2g", "MIIBqDCCAU2h"));
    }
    assert_one(&bad, "spec.registry.caBundle", "certificate 1");

    let mut bad = spec.clone();
    if let Some(r) = bad.registry.as_mut() {
        r.credentials_secret = Some(SecretRef {
            name: "Pull_Creds".into(),
        });
    }
    assert_one(
        &bad,
        "spec.registry.credentialsSecret.name",
        "not a valid Secret name",
    );

    let mut bad = spec.clone();
    if let Some(n) = bad.notary.as_mut() {
        n.gun = Some("registry.example.com/app:v1".into());
    }
    assert_one(&bad, "spec.notary.gun", "without tag or digest");
}

#[test]
fn verify_needs_a_trust_root() {
    let mut spec = verify_spec(&["nginx"]);
    spec.trust_roots.clear();
    assert_one(&spec, "spec.trustRoots", "at least one trust root");
}

#[test]
fn trust_root_has_exactly_one_of_key_and_id() {
    let mut spec = verify_spec(&["nginx"]);
    spec.trust_roots = vec![
        TrustRoot {
            public_key: Some(PUBLIC_KEY_PEM.into()),
            key_id: None,
        },
        TrustRoot {
            public_key: Some(CERT_PEM.into()),
            key_id: Some(KEY_ID.into()),
        },
    ];
    assert_one(&spec, "spec.trustRoots[1]", "not both");
    spec.trust_roots[1] = TrustRoot::default();
    assert_one(
        &spec,
        "spec.trustRoots[1]",
        "exactly one of publicKey and keyID",
    );
}

#[test]
fn trust_root_keys_parse() {
    let mut spec = verify_spec(&["nginx"]);
    spec.trust_roots.push(TrustRoot {
        public_key: Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()),
        key_id: None,
    });
    assert_one(&spec, "spec.trustRoots[1].publicKey", "");
    spec.trust_roots[1] = TrustRoot {
        public_key: None,
        key_id: Some(KEY_ID.to_uppercase()),
    };
    assert_one(&spec, "spec.trustRoots[1].keyID", "64 lower-case hex");
    spec.trust_roots[1] = TrustRoot {
        public_key: None,
        key_id: Some(KEY_ID.into()),
    };
    assert_one(&spec, "spec.trustRoots[1]", "duplicate trust root");
}

#[test]
fn trust_root_threshold_bounds() {
    let mut spec = verify_spec(&["nginx"]);
    spec.trust_root_threshold = Some(1);
    assert_eq!(validate(&spec), Ok(()));
    spec.trust_root_threshold = Some(0);
    assert_one(
        &spec,
        "spec.trustRootThreshold",
        "between 1 and the number of trustRoots (1)",
    );
    spec.trust_root_threshold = Some(2);
    assert_one(
        &spec,
        "spec.trustRootThreshold",
        "between 1 and the number of trustRoots (1)",
    );
}

#[test]
fn signer_names() {
    let mut spec = verify_spec(&["nginx"]);
    spec.signers = vec![signer("alice"), signer("team/bob"), signer("ci_bot-2")];
    assert_eq!(validate(&spec), Ok(()));
    for bad in ["Alice", "alice/", "/alice", "a b", "a//b", ""] {
        spec.signers = vec![signer(bad)];
        assert_one(&spec, "spec.signers[0].name", "must match");
    }
    spec.signers = vec![signer("targets/alice")];
    assert_one(&spec, "spec.signers[0].name", "write \"alice\"");
    spec.signers = vec![signer("alice"), signer("alice")];
    assert_one(&spec, "spec.signers[1].name", "duplicate signer");
}

#[test]
fn signer_keys_parse() {
    let mut spec = verify_spec(&["nginx"]);
    spec.signers = vec![Signer {
        name: "alice".into(),
        public_key: Some(PUBLIC_KEY_PEM.into()),
        required: true,
    }];
    assert_eq!(validate(&spec), Ok(()));
    spec.signers[0].public_key = Some("alice's key".into());
    assert_one(&spec, "spec.signers[0].publicKey", "PEM");
}

#[test]
fn signer_threshold_bounds() {
    let mut spec = verify_spec(&["nginx"]);
    spec.signer_threshold = Some(1);
    assert_one(&spec, "spec.signerThreshold", "number of signers (0)");
    spec.signers = vec![signer("alice"), signer("bob")];
    spec.signer_threshold = Some(2);
    assert_eq!(validate(&spec), Ok(()));
    spec.signer_threshold = Some(3);
    assert_one(
        &spec,
        "spec.signerThreshold",
        "between 1 and the number of signers (2)",
    );
    spec.signer_threshold = Some(0);
    assert_one(&spec, "spec.signerThreshold", "between 1");
}

#[test]
fn revoked_keys_are_key_ids_or_pem() {
    let mut spec = verify_spec(&["nginx"]);
    spec.revoked_keys = vec![KEY_ID.into(), PUBLIC_KEY_PEM.into(), CERT_PEM.into()];
    assert_eq!(validate(&spec), Ok(()));
    spec.revoked_keys = vec![KEY_ID.into(), "1a2b".into()];
    assert_one(&spec, "spec.revokedKeys[1]", "neither a key ID");
    spec.revoked_keys = vec!["-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n".into()];
    assert_one(&spec, "spec.revokedKeys[0]", "");
}

#[test]
fn all_errors_are_reported_together() {
    let spec = TrustPolicySpec {
        images: vec![],
        signer_threshold: Some(1),
        ..TrustPolicySpec::default()
    };
    let errs = errors(&spec);
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.images",
            "spec.notary.url",
            "spec.trustRoots",
            "spec.signerThreshold"
        ]
    );
    let line = FieldErrors(&errs).to_string();
    assert!(
        line.starts_with("spec.images: at least one image pattern is required; "),
        "{line}"
    );
}

#[test]
fn namespaced_policies_only_on_cluster_trust_policies() {
    use crate::policy::crd::NamespacedPolicies;
    for value in [NamespacedPolicies::Tighten, NamespacedPolicies::Override] {
        let mut spec = verify_spec(&["nginx"]);
        spec.namespaced_policies = Some(value);
        assert_eq!(validate_for(&spec, false), Ok(()), "{value}");
        let errs = validate_for(&spec, true).expect_err("refused on a TrustPolicy");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "spec.namespacedPolicies");
        assert!(
            errs[0]
                .message
                .contains("only be set on a ClusterTrustPolicy"),
            "{errs:?}"
        );
    }
    // Absent is fine everywhere, and the other errors are still reported with it.
    assert_eq!(validate_for(&verify_spec(&["nginx"]), true), Ok(()));
    let mut spec = verify_spec(&[]);
    spec.namespaced_policies = Some(NamespacedPolicies::Tighten);
    let paths: Vec<String> = validate_for(&spec, true)
        .expect_err("two problems")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["spec.images", "spec.namespacedPolicies"]);
}
