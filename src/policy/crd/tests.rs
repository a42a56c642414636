//! CRD tests: names, scope and printer columns; the CEL rules are in the schema, compile,
//! stay within the cost budget and accept or reject what they should (evaluated client-side
//! with kube's CEL engine); serde round trip of the reference example; and the drift check of
//! `crds/trustgate-crds.yaml`.

use kube::core::cel::{ScopeContext, Validator, WarningKind, analyze_rule, compile_schema};
use serde_json::{Value, json};

use super::*;
use crate::policy::testdata::{KEY_ID, PUBLIC_KEY_PEM, reference_example_yaml};

fn open_api_schema(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("derived CRDs have a schema");
    serde_json::to_value(schema).expect("schema serialises")
}

fn reference_example() -> TrustPolicy {
    serde_saphyr::from_str(&reference_example_yaml()).expect("the reference example parses")
}

#[test]
fn names_scope_and_status_subresource() {
    let [tp, ctp]: [CustomResourceDefinition; 2] = crds().try_into().expect("two CRDs");
    assert_eq!(
        tp.metadata.name.as_deref(),
        Some("trustpolicies.trustgate.dev")
    );
    assert_eq!(
        ctp.metadata.name.as_deref(),
        Some("clustertrustpolicies.trustgate.dev")
    );
    assert_eq!(tp.spec.scope, "Namespaced");
    assert_eq!(ctp.spec.scope, "Cluster");
    assert_eq!(tp.spec.names.kind, TRUST_POLICY_KIND);
    assert_eq!(ctp.spec.names.kind, CLUSTER_TRUST_POLICY_KIND);
    assert_eq!(tp.spec.names.short_names, Some(vec!["tp".to_owned()]));
    assert_eq!(ctp.spec.names.short_names, Some(vec!["ctp".to_owned()]));
    for crd in [&tp, &ctp] {
        assert_eq!(crd.spec.group, GROUP);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION);
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }
    // Both kinds validate their spec with the same schema.
    assert_eq!(
        open_api_schema(&tp)["properties"]["spec"],
        open_api_schema(&ctp)["properties"]["spec"]
    );
}

#[test]
fn printer_columns() {
    for crd in crds() {
        let columns: Vec<(String, String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.type_, c.json_path))
            .collect();
        let mut expected: Vec<(String, String, String)> = [
            ("Action", "string", ".spec.action"),
            ("Mode", "string", ".spec.mode"),
            ("Images", "string", ".spec.images"),
            (
                "Ready",
                "string",
                r#".status.conditions[?(@.type=="Ready")].status"#,
            ),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        .to_vec();
        if crd.spec.names.kind == CLUSTER_TRUST_POLICY_KIND {
            // `kubectl get ctp` shows whether namespaced policies can relax the policy.
            expected.insert(
                2,
                (
                    "Namespaced".into(),
                    "string".into(),
                    ".spec.namespacedPolicies".into(),
                ),
            );
        }
        assert_eq!(columns, expected);
    }
}

/// `(location, rule)` of every `x-kubernetes-validations` entry under `schema`.
fn cel_rules(schema: &Value, at: &str, out: &mut Vec<(String, String)>) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            out.push((
                at.to_owned(),
                rule["rule"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, child) in props {
            cel_rules(child, &format!("{at}.{name}"), out);
        }
    }
    if schema["items"].is_object() {
        cel_rules(&schema["items"], &format!("{at}[]"), out);
    }
}

#[test]
fn schema_carries_the_cel_rules_and_bounds() {
    let schema = open_api_schema(&TrustPolicy::crd());
    let mut rules = Vec::new();
    cel_rules(&schema, "", &mut rules);
    // The one rule at the root: only a ClusterTrustPolicy may set namespacedPolicies.
    let root = rules.remove(0);
    assert_eq!(
        root,
        (
            "".to_owned(),
            "!has(self.spec.namespacedPolicies)".to_owned()
        )
    );
    let mut cluster_rules = Vec::new();
    cel_rules(
        &open_api_schema(&ClusterTrustPolicy::crd()),
        "",
        &mut cluster_rules,
    );
    assert_eq!(cluster_rules, rules, "the same rules, without the root one");
    let locations: Vec<&str> = rules.iter().map(|(at, _)| at.as_str()).collect();
    assert_eq!(
        locations,
        [
            ".spec",
            ".spec",
            ".spec",
            ".spec",
            ".spec",
            ".spec",
            ".spec.cosign",
            ".spec.cosign",
            ".spec.cosign",
            ".spec.notary.url",
            ".spec.signers[].name",
            ".spec.trustRoots[]",
        ]
    );
    assert!(rules[0].1.contains("has(self.notary.url)"));
    assert!(rules[1].1.contains("size(self.trustRoots) > 0"));
    assert!(
        rules[2]
            .1
            .contains("self.trustRootThreshold <= size(self.trustRoots)")
    );
    assert!(
        rules[3]
            .1
            .contains("self.signerThreshold <= size(self.signers)")
    );
    assert!(rules[4].1.contains("has(self.notation)"));
    assert!(rules[5].1.contains("has(self.cosign)"));
    assert_eq!(rules[11].1, "has(self.publicKey) != has(self.keyID)");

    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["images"]));
    assert_eq!(spec["properties"]["images"]["minItems"], json!(1));
    assert_eq!(spec["properties"]["images"]["items"]["minLength"], json!(1));
    assert_eq!(
        spec["properties"]["action"]["enum"],
        json!(["Verify", "Allow", "Deny"])
    );
    assert_eq!(spec["properties"]["action"]["default"], json!("Verify"));
    assert_eq!(
        spec["properties"]["mode"]["enum"],
        json!(["Enforce", "Warn", "Audit"])
    );
    assert_eq!(spec["properties"]["mode"]["default"], json!("Enforce"));
    assert_eq!(
        spec["properties"]["signers"]["items"]["properties"]["name"]["pattern"],
        json!(SIGNER_NAME_PATTERN)
    );
    assert_eq!(
        spec["properties"]["signers"]["x-kubernetes-list-map-keys"],
        json!(["name"])
    );
    assert_eq!(
        spec["properties"]["trustRoots"]["items"]["properties"]["keyID"]["pattern"],
        json!("^[0-9a-f]{64}$")
    );
    assert_eq!(
        spec["properties"]["registry"]["properties"]["plainHTTP"]["type"],
        json!("boolean")
    );
    for (field, max) in [
        ("images", MAX_IMAGES),
        ("trustRoots", MAX_TRUST_ROOTS),
        ("signers", MAX_SIGNERS),
        ("revokedKeys", MAX_REVOKED_KEYS),
    ] {
        assert_eq!(spec["properties"][field]["maxItems"], json!(max), "{field}");
    }
}

#[test]
fn cel_rules_compile_within_scope_and_budget() {
    fn walk(compiled: &kube::core::cel::CompiledSchema, rules: &mut usize) {
        assert!(
            compiled.compilation_errors().is_empty(),
            "{:?}",
            compiled.compilation_errors()
        );
        *rules += compiled.validations.len();
        for child in compiled.properties.values() {
            walk(child, rules);
        }
        if let Some(items) = &compiled.items {
            walk(items, rules);
        }
    }
    let schema = open_api_schema(&TrustPolicy::crd());
    let compiled = compile_schema(&schema);
    let mut count = 0;
    walk(&compiled, &mut count);
    assert_eq!(count, 13);
    let root = &schema["x-kubernetes-validations"][0]["rule"];
    let warnings = analyze_rule(
        root.as_str().expect("root rule"),
        &compiled,
        ScopeContext::CrdValidation,
    );
    assert!(
        !warnings
            .iter()
            .any(|w| matches!(w.kind, WarningKind::CostExceeded | WarningKind::WrongScope)),
        "{root}: {warnings:?}"
    );

    let spec = &compiled.properties["spec"];
    let mut rules = Vec::new();
    cel_rules(&schema["properties"]["spec"], "", &mut rules);
    for (at, rule) in &rules {
        let node = match at.as_str() {
            "" => spec,
            ".notary.url" => &spec.properties["notary"].properties["url"],
            ".cosign" => &spec.properties["cosign"],
            ".signers[].name" => spec.properties["signers"]
                .items
                .as_ref()
                .map(|i| &i.properties["name"])
                .expect("items"),
            ".trustRoots[]" => spec.properties["trustRoots"]
                .items
                .as_deref()
                .expect("items"),
            other => panic!("unexpected rule location {other}"),
        };
        let warnings = analyze_rule(rule, node, ScopeContext::CrdValidation);
        assert!(
            !warnings
                .iter()
                .any(|w| matches!(w.kind, WarningKind::CostExceeded | WarningKind::WrongScope)),
            "{rule}: {warnings:?}"
        );
    }
}

/// Messages of the CEL rules `spec` breaks (empty when it passes).
fn cel_failures(spec: Value) -> Vec<String> {
    cel_failures_of(&TrustPolicy::crd(), spec)
}

/// Messages of the CEL rules of `crd` that an object with `spec` breaks.
fn cel_failures_of(crd: &CustomResourceDefinition, spec: Value) -> Vec<String> {
    let schema = open_api_schema(crd);
    let object = json!({
        "apiVersion": API_VERSION,
        "kind": crd.spec.names.kind,
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec,
    });
    match Validator::new().validate(&schema, &object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

fn base_spec() -> Value {
    json!({
        "images": ["registry.example.com/**"],
        "notary": {"url": "https://notary.example.com"},
        "trustRoots": [{"keyID": KEY_ID}, {"publicKey": PUBLIC_KEY_PEM}],
        "signers": [{"name": "alice"}, {"name": "team/bob", "required": true}],
    })
}

fn with(mut spec: Value, pointer: &str, value: Value) -> Value {
    match spec.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            spec.pointer_mut(parent).expect("parent")[key] = value;
        }
    }
    spec
}

fn without(mut spec: Value, key: &str) -> Value {
    spec.as_object_mut().map(|m| m.remove(key));
    spec
}

#[test]
fn cel_accepts_sensible_policies() {
    assert_eq!(cel_failures(base_spec()), Vec::<String>::new());
    let example = serde_json::to_value(reference_example().spec).expect("serialises");
    assert_eq!(cel_failures(example), Vec::<String>::new());
    let thresholds = with(
        with(base_spec(), "/trustRootThreshold", json!(2)),
        "/signerThreshold",
        json!(1),
    );
    assert_eq!(cel_failures(thresholds), Vec::<String>::new());
    for action in ["Allow", "Deny"] {
        let spec = json!({"images": ["**"], "action": action});
        assert_eq!(cel_failures(spec), Vec::<String>::new(), "{action}");
    }
}

#[test]
fn cel_rejects_nonsense() {
    let explicit_verify = with(without(base_spec(), "notary"), "/action", json!("Verify"));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no notary",
            without(base_spec(), "notary"),
            "notary.url is required",
        ),
        ("explicit Verify", explicit_verify, "notary.url is required"),
        (
            "no url",
            with(base_spec(), "/notary", json!({"gun": "x/y"})),
            "notary.url is required",
        ),
        (
            "bad scheme",
            with(base_spec(), "/notary/url", json!("ftp://n")),
            "url must start with",
        ),
        (
            "no roots",
            without(base_spec(), "trustRoots"),
            "at least one trust root",
        ),
        (
            "empty roots",
            with(base_spec(), "/trustRoots", json!([])),
            "at least one trust root",
        ),
        (
            "root with both",
            with(
                base_spec(),
                "/trustRoots/0/publicKey",
                json!(PUBLIC_KEY_PEM),
            ),
            "exactly one of publicKey and keyID",
        ),
        (
            "root with neither",
            with(base_spec(), "/trustRoots/1", json!({})),
            "exactly one of publicKey and keyID",
        ),
        (
            "root threshold 0",
            with(base_spec(), "/trustRootThreshold", json!(0)),
            "trustRootThreshold must be",
        ),
        (
            "root threshold 3",
            with(base_spec(), "/trustRootThreshold", json!(3)),
            "trustRootThreshold must be",
        ),
        (
            "signer threshold 0",
            with(base_spec(), "/signerThreshold", json!(0)),
            "signerThreshold must be",
        ),
        (
            "signer threshold 3",
            with(base_spec(), "/signerThreshold", json!(3)),
            "signerThreshold must be",
        ),
        (
            "signer threshold without signers",
            with(
                without(base_spec(), "signers"),
                "/signerThreshold",
                json!(1),
            ),
            "signerThreshold must be",
        ),
        (
            "targets/ prefix",
            with(base_spec(), "/signers/0/name", json!("targets/alice")),
            "role below targets/",
        ),
    ];
    for (case, spec, expected) in cases {
        let failures = cel_failures(spec);
        assert_eq!(failures.len(), 1, "{case}: {failures:?}");
        assert!(failures[0].contains(expected), "{case}: {failures:?}");
    }
    let allow_without_roots = json!({"images": ["**"], "action": "Allow", "trustRootThreshold": 1});
    assert_eq!(cel_failures(allow_without_roots).len(), 1);
}

const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn notation_spec() -> Value {
    json!({"trustStore": [CERT_PEM], "trustedIdentities": ["*"]})
}

fn cosign_spec() -> Value {
    json!({"publicKeys": [PUBLIC_KEY_PEM]})
}

#[test]
fn cel_accepts_new_format_policies() {
    // Only the new formats: no Notary server or trust roots needed.
    let only_new = json!({
        "images": ["**"],
        "signatures": {"formats": ["Notation", "Cosign"], "require": "AllOf"},
        "notation": notation_spec(),
        "cosign": cosign_spec(),
    });
    assert_eq!(cel_failures(only_new), Vec::<String>::new());
    let migrating = with(
        with(
            base_spec(),
            "/signatures",
            json!({"formats": ["NotaryV1", "Notation"]}),
        ),
        "/notation",
        notation_spec(),
    );
    assert_eq!(cel_failures(migrating), Vec::<String>::new());
    let two_keys = with(
        base_spec(),
        "/cosign",
        json!({"publicKeys": [PUBLIC_KEY_PEM, PUBLIC_KEY_PEM], "threshold": 2}),
    );
    assert_eq!(cel_failures(two_keys), Vec::<String>::new());
}

#[test]
fn cel_rejects_format_nonsense() {
    let only = |formats: Value| json!({"images": ["**"], "signatures": {"formats": formats}});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "Notation without its block",
            only(json!(["Notation"])),
            "notation is required",
        ),
        (
            "Cosign without its block",
            only(json!(["Cosign"])),
            "cosign is required",
        ),
        (
            "NotaryV1 listed without a server",
            with(
                only(json!(["Cosign", "NotaryV1"])),
                "/cosign",
                cosign_spec(),
            ),
            "notary.url is required",
        ),
        (
            "cosign threshold above the keys",
            with(
                base_spec(),
                "/cosign",
                json!({"publicKeys": [PUBLIC_KEY_PEM], "threshold": 2}),
            ),
            "cosign.threshold must be",
        ),
        (
            "keyless",
            with(
                base_spec(),
                "/cosign",
                json!({"publicKeys": [PUBLIC_KEY_PEM], "keyless": {"issuer": "https://x"}}),
            ),
            "keyless (Fulcio certificate) verification is not supported in v1alpha1",
        ),
        (
            "rekor",
            with(
                base_spec(),
                "/cosign",
                json!({"publicKeys": [PUBLIC_KEY_PEM], "rekor": {"url": "https://rekor"}}),
            ),
            "(Rekor) verification is not supported in v1alpha1",
        ),
    ];
    for (case, spec, expected) in cases {
        let failures = cel_failures(spec);
        assert!(
            failures.iter().any(|f| f.contains(expected)),
            "{case}: {failures:?}"
        );
    }
}

#[test]
fn cel_allows_namespaced_policies_on_cluster_trust_policies_only() {
    for value in ["Tighten", "Override"] {
        let spec = with(base_spec(), "/namespacedPolicies", json!(value));
        assert_eq!(
            cel_failures_of(&ClusterTrustPolicy::crd(), spec.clone()),
            Vec::<String>::new(),
            "{value}"
        );
        let failures = cel_failures(spec);
        assert_eq!(failures.len(), 1, "{value}: {failures:?}");
        assert!(
            failures[0].contains("namespacedPolicies can only be set on a ClusterTrustPolicy"),
            "{failures:?}"
        );
    }
    let schema = open_api_schema(&ClusterTrustPolicy::crd());
    assert_eq!(
        schema["properties"]["spec"]["properties"]["namespacedPolicies"]["enum"],
        json!(["Override", "Tighten"])
    );
    let tighten: ClusterTrustPolicySpec =
        serde_json::from_value(with(base_spec(), "/namespacedPolicies", json!("Tighten")))
            .expect("parses");
    assert_eq!(tighten.namespaced_policies(), NamespacedPolicies::Tighten);
    let absent: ClusterTrustPolicySpec = serde_json::from_value(base_spec()).expect("parses");
    assert_eq!(absent.namespaced_policies(), NamespacedPolicies::Override);
    assert_eq!(
        serde_json::to_value(&absent.0)
            .expect("to JSON")
            .get("namespacedPolicies"),
        None,
        "the default is not written"
    );
}

#[test]
fn reference_example_round_trips() {
    let policy = reference_example();
    assert_eq!(policy.metadata.name.as_deref(), Some("shop-images"));
    assert_eq!(policy.metadata.namespace.as_deref(), Some("shop"));
    let spec = &policy.spec;
    assert_eq!(
        spec.images,
        [
            "registry.example.com:5000/shop/**",
            "docker.io/library/nginx:1.*"
        ]
    );
    assert_eq!((spec.action, spec.mode), (Action::Verify, Mode::Enforce));
    let notary = spec.notary.as_ref().expect("notary");
    assert_eq!(
        notary.url.as_deref(),
        Some("https://notary.example.com:4443")
    );
    assert_eq!(
        notary.credentials_secret.as_ref().map(|s| s.name.as_str()),
        Some("notary-creds")
    );
    assert_eq!(
        notary.gun.as_deref(),
        Some("registry.example.com:5000/shop/app")
    );
    let registry = spec.registry.as_ref().expect("registry");
    assert!(!registry.plain_http);
    assert_eq!(
        registry
            .credentials_secret
            .as_ref()
            .map(|s| s.name.as_str()),
        Some("pull-creds")
    );
    assert_eq!(spec.trust_roots.len(), 2);
    assert_eq!(spec.trust_roots[1].key_id.as_deref(), Some(KEY_ID));
    assert_eq!(spec.trust_root_threshold, Some(1));
    assert_eq!(spec.signers[0].name, "alice");
    assert!(spec.signers[0].required && spec.signers[0].public_key.is_some());
    assert_eq!(
        (spec.signers[1].name.as_str(), spec.signers[1].required),
        ("bob", false)
    );
    assert_eq!(spec.signer_threshold, Some(2));
    assert_eq!(spec.revoked_keys, [KEY_ID]);
    let status = policy.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(status.conditions[0].type_, "Ready");
    assert_eq!(status.conditions[0].status, "True");
    assert_eq!(crate::policy::validate(spec), Ok(()));

    let json = serde_json::to_value(&policy).expect("to JSON");
    assert_eq!(json["apiVersion"], API_VERSION);
    assert_eq!(json["kind"], TRUST_POLICY_KIND);
    assert_eq!(json["spec"]["trustRoots"][1]["keyID"], KEY_ID);
    assert_eq!(
        json["spec"]["registry"].get("plainHTTP"),
        None,
        "false is omitted"
    );
    assert_eq!(json["status"]["conditions"][0]["type"], "Ready");
    let back: TrustPolicy = serde_json::from_value(json).expect("from JSON");
    assert_eq!(back, policy);
    let yaml = serde_saphyr::to_string(&policy).expect("to YAML");
    let back: TrustPolicy = serde_saphyr::from_str(&yaml).expect("from YAML");
    assert_eq!(back, policy);

    let cluster = ClusterTrustPolicy::new("baseline", policy.spec.clone().into());
    let json = serde_json::to_value(&cluster).expect("to JSON");
    assert_eq!(json["kind"], CLUSTER_TRUST_POLICY_KIND);
    assert_eq!(
        json["spec"],
        serde_json::to_value(&policy.spec).expect("spec")
    );
    let back: ClusterTrustPolicy = serde_json::from_value(json).expect("from JSON");
    assert_eq!(back.spec.images, policy.spec.images);
}

#[test]
fn enum_names() {
    assert_eq!("allow".parse::<Action>(), Ok(Action::Allow));
    assert_eq!("Deny".parse::<Action>(), Ok(Action::Deny));
    assert_eq!("WARN".parse::<Mode>(), Ok(Mode::Warn));
    let err = "maybe".parse::<Action>().expect_err("not an action");
    assert_eq!(
        err.to_string(),
        "\"maybe\" is not one of Verify, Allow, Deny"
    );
    assert_eq!(Action::default(), Action::Verify);
    assert_eq!(Mode::default().to_string(), "Enforce");
}

/// The CI drift check. Set `TRUSTGATE_UPDATE_CRDS=1` to rewrite the file instead.
#[test]
fn crds_directory_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let expected = crd_yaml().expect("CRDs serialise");
    assert!(expected.contains("kind: TrustPolicy\n"));
    assert!(expected.contains("\n---\n"));
    if std::env::var_os("TRUSTGATE_UPDATE_CRDS").is_some() {
        std::fs::create_dir_all(&dir).expect("create crds/");
        write_crds(&dir).expect("write crds/");
    }
    let path = dir.join(CRD_FILE);
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is missing or differs from the CRDs generated from src/policy/crd.rs: run \
         `scripts/crdgen.sh` (it also updates the Helm chart's copy and manifests/) and commit \
         the result",
        path.display()
    );
}
