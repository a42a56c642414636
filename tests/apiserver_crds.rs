//! The CRDs of `crds/trustgate-crds.yaml` against a real API server: upstream
//! `k8s.io/apiextensions-apiserver` on etcd, started by `bash e2e/apiserver.sh up` (see
//! `e2e/README.md`). Server-side apply of both CRDs, then the real structural schema, defaulting,
//! CEL `x-kubernetes-validations`, the status subresource, printer columns and scope.
//!
//! Skips (prints `SKIP`) unless the env file exists and the server answers:
//! `TRUSTGATE_APISERVER_ENV`, else `$TRUSTGATE_APISERVER_DIR/apiserver.env`, else
//! `<repo>/target/apiserver/apiserver.env`. `TRUSTGATE_REQUIRE_APISERVER=1` makes that fatal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};
use trustgate::policy::{
    Action, ClusterTrustPolicy, Mode, NotarySpec, TrustPolicy, TrustPolicySpec, TrustRoot,
};

const FIELD_MANAGER: &str = "trustgate-apiserver-test";
/// Served by the stub core API (e2e/apiserver.sh); namespaced test objects live here.
const NS: &str = "shop";
const KEY_ID: &str = "4f3e1b2c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

// ------------------------------------------------------------------ environment

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A client for the API server, with both CRDs applied and established; `None` = skip.
async fn setup() -> Option<Client> {
    common::apiserver::setup(FIELD_MANAGER, NS, &[])
        .await
        .map(|(_, client)| client)
}

/// Server-side apply of both CRDs, then wait until they are Established and served.
async fn apply_crds(client: &Client) {
    common::apiserver::apply_trustgate_crds(client, FIELD_MANAGER, NS).await;
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn valid_spec() -> TrustPolicySpec {
    TrustPolicySpec {
        images: vec!["registry.example.com:5000/shop/**".into()],
        notary: Some(NotarySpec {
            url: Some("https://notary.example.com:4443".into()),
            ..Default::default()
        }),
        trust_roots: vec![TrustRoot {
            key_id: Some(KEY_ID.into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A raw-JSON valid spec (no action/mode: the server defaults them).
fn valid_spec_json() -> Value {
    json!({
        "images": ["registry.example.com:5000/shop/**"],
        "notary": {"url": "https://notary.example.com:4443"},
        "trustRoots": [{"keyID": KEY_ID}],
    })
}

/// `Api<DynamicObject>` for either kind; `namespace` None = cluster-wide path.
fn dynamic<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn object<K: kube::Resource<DynamicType = ()>>(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &ApiResource::erase::<K>(&())).data(json!({ "spec": spec }))
}

/// Every `x-kubernetes-validations` message in a CRD generated from src/policy/crd.rs.
fn cel_messages() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(rules)) = m.get("x-kubernetes-validations") {
                    out.extend(
                        rules
                            .iter()
                            .filter_map(|r| r["message"].as_str().map(str::to_owned)),
                    );
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(TrustPolicy::crd()).unwrap(), &mut out);
    out
}

/// The one CEL message of src/policy/crd.rs containing `fragment` (so the expectations below
/// follow the source, and fail loudly if a rule disappears).
fn cel(fragment: &str) -> String {
    let all = cel_messages();
    let hits: Vec<&String> = all.iter().filter(|m| m.contains(fragment)).collect();
    assert_eq!(
        hits.len(),
        1,
        "CEL messages matching {fragment:?}: {hits:?} (all: {all:?})"
    );
    hits[0].clone()
}

// ------------------------------------------------------------------ tests

/// `GET <collection>/<name>` as a `meta.k8s.io` Table (what `kubectl get` shows), through
/// kube's request builder so the test needs no direct `http` dependency.
async fn get_table(client: &kube::Client, collection: &str, name: &str) -> Value {
    let mut req = kube::core::Request::new(collection)
        .get(name, &Default::default())
        .unwrap();
    req.headers_mut().insert(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io"
            .parse()
            .unwrap(),
    );
    client.request(req).await.unwrap()
}

/// The column names of a Table.
fn table_columns(table: &Value) -> Vec<&str> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn crds_apply_and_serve_with_the_expected_version_and_scope() {
    let Some(client) = setup().await else { return };
    let info = client.apiserver_version().await.unwrap();
    assert!(
        info.git_version.starts_with("v1.3"),
        "apiserver version {}",
        info.git_version
    );

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let tp = crds.get("trustpolicies.trustgate.dev").await.unwrap();
    let ctp = crds
        .get("clustertrustpolicies.trustgate.dev")
        .await
        .unwrap();
    assert_eq!(tp.spec.scope, "Namespaced");
    assert_eq!(ctp.spec.scope, "Cluster");
    for crd in [&tp, &ctp] {
        let conds = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .unwrap();
        for t in ["Established", "NamesAccepted"] {
            assert!(
                conds.iter().any(|c| c.type_ == t && c.status == "True"),
                "{}: {t} not True: {conds:?}",
                crd.name_any()
            );
        }
        // A structural schema: no NonStructuralSchema condition.
        assert!(
            !conds
                .iter()
                .any(|c| c.type_ == "NonStructuralSchema" && c.status == "True")
        );
    }
    // Re-applying the same file is a no-op (no generation bump).
    let before = tp.metadata.generation;
    apply_crds(&client).await;
    let again = crds.get("trustpolicies.trustgate.dev").await.unwrap();
    assert_eq!(again.metadata.generation, before);
}

#[tokio::test]
async fn every_example_policy_is_accepted_and_round_trips() {
    let Some(client) = setup().await else { return };
    let dir = repo_root().join("examples/policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    let mut applied = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
            let name = obj.name_any();
            let kind = doc["kind"].as_str().unwrap().to_owned();
            let ctx = format!("{} ({kind} {name})", file.display());
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            match kind.as_str() {
                "TrustPolicy" => {
                    let ns = obj
                        .namespace()
                        .unwrap_or_else(|| panic!("{ctx}: no namespace"));
                    let api = dynamic::<TrustPolicy>(&client, Some(&ns));
                    api.patch(&name, &pp, &Patch::Apply(&obj))
                        .await
                        .unwrap_or_else(|e| panic!("{ctx} rejected: {e}"));
                    // The stored object reads back into the Rust type, equal to a local parse.
                    let typed: Api<TrustPolicy> = Api::namespaced(client.clone(), &ns);
                    let stored = typed.get(&name).await.unwrap();
                    let local: TrustPolicy = serde_json::from_value(doc).unwrap();
                    assert_eq!(stored.spec, local.spec, "{ctx}: stored spec differs");
                    typed.delete(&name, &DeleteParams::default()).await.unwrap();
                }
                "ClusterTrustPolicy" => {
                    let api = dynamic::<ClusterTrustPolicy>(&client, None);
                    api.patch(&name, &pp, &Patch::Apply(&obj))
                        .await
                        .unwrap_or_else(|e| panic!("{ctx} rejected: {e}"));
                    let typed: Api<ClusterTrustPolicy> = Api::all(client.clone());
                    let stored = typed.get(&name).await.unwrap();
                    let local: ClusterTrustPolicy = serde_json::from_value(doc).unwrap();
                    assert_eq!(stored.spec, local.spec, "{ctx}: stored spec differs");
                    typed.delete(&name, &DeleteParams::default()).await.unwrap();
                }
                other => panic!("{ctx}: unexpected kind {other}"),
            }
            applied += 1;
        }
    }
    assert!(applied >= files.len());
}

/// One invalid spec: what is wrong, the JSON, and the causes the 422 must list.
struct Case {
    what: &'static str,
    spec: Value,
    /// Exactly these `details.causes`: (field, substring of the cause's message). The
    /// substrings appear in the Status message too.
    causes: Vec<(&'static str, String)>,
}

fn with(base: Value, patch: Value) -> Value {
    let mut out = base;
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(k);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

fn invalid_cases() -> Vec<Case> {
    let base = valid_spec_json();
    let two_signers = json!([{"name": "alice"}, {"name": "bob"}]);
    // Type-level errors (a missing required field, a value outside an enum) make the server skip
    // the CEL rules, and it says so in one more cause.
    let cel_skipped = || ("<nil>", "some validation rules were not checked".to_owned());
    let case = |what, patch: Value, causes: Vec<(&'static str, String)>| Case {
        what,
        spec: with(base.clone(), patch),
        causes,
    };
    vec![
        case(
            "Verify without notary.url",
            json!({"notary": {"gun": "x/y"}}),
            vec![("spec.notary", cel("notary.url is required"))],
        ),
        case(
            "Verify without notary at all (action defaulted)",
            json!({"notary": null}),
            vec![("spec.notary", cel("notary.url is required"))],
        ),
        case(
            "Verify without trustRoots",
            json!({"action": "Verify", "trustRoots": null}),
            vec![("spec.trustRoots", cel("at least one trust root"))],
        ),
        case(
            "Verify with an empty trustRoots list",
            json!({"trustRoots": []}),
            vec![("spec.trustRoots", cel("at least one trust root"))],
        ),
        case(
            "trust root with both publicKey and keyID",
            json!({"trustRoots": [{"keyID": KEY_ID, "publicKey": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"}]}),
            vec![(
                "spec.trustRoots[0]",
                cel("exactly one of publicKey and keyID"),
            )],
        ),
        case(
            "trust root with neither publicKey nor keyID",
            json!({"trustRoots": [{}]}),
            vec![(
                "spec.trustRoots[0]",
                cel("exactly one of publicKey and keyID"),
            )],
        ),
        case(
            "signerThreshold 0 (schema minimum and CEL rule)",
            json!({"signers": two_signers, "signerThreshold": 0}),
            vec![
                (
                    "spec.signerThreshold",
                    "should be greater than or equal to 1".into(),
                ),
                (
                    "spec.signerThreshold",
                    cel("signerThreshold must be between"),
                ),
            ],
        ),
        case(
            "signerThreshold above the number of signers",
            json!({"signers": two_signers, "signerThreshold": 3}),
            vec![(
                "spec.signerThreshold",
                cel("signerThreshold must be between"),
            )],
        ),
        case(
            "signerThreshold without signers",
            json!({"signerThreshold": 1}),
            vec![(
                "spec.signerThreshold",
                cel("signerThreshold must be between"),
            )],
        ),
        case(
            "trustRootThreshold above the number of trustRoots",
            json!({"trustRootThreshold": 2}),
            vec![(
                "spec.trustRootThreshold",
                cel("trustRootThreshold must be between"),
            )],
        ),
        case(
            "trustRootThreshold 0 (schema minimum and CEL rule)",
            json!({"trustRootThreshold": 0}),
            vec![
                (
                    "spec.trustRootThreshold",
                    "should be greater than or equal to 1".into(),
                ),
                (
                    "spec.trustRootThreshold",
                    cel("trustRootThreshold must be between"),
                ),
            ],
        ),
        case(
            "empty images",
            json!({"images": []}),
            vec![("spec.images", "should have at least 1 items".into())],
        ),
        case(
            "missing images",
            json!({"images": null}),
            vec![("spec.images", "Required value".into()), cel_skipped()],
        ),
        case(
            "unknown action",
            json!({"action": "Maybe"}),
            vec![
                (
                    "spec.action",
                    r#"Unsupported value: "Maybe": supported values: "Verify", "Allow", "Deny""#
                        .into(),
                ),
                cel_skipped(),
            ],
        ),
        case(
            "unknown mode (enums are case-sensitive)",
            json!({"mode": "enforce"}),
            vec![
                ("spec.mode", r#"Unsupported value: "enforce""#.into()),
                cel_skipped(),
            ],
        ),
        case(
            "keyID not 64 hex digits",
            json!({"trustRoots": [{"keyID": "ABCDEF0123"}]}),
            vec![(
                "spec.trustRoots[0].keyID",
                "should match '^[0-9a-f]{64}$'".into(),
            )],
        ),
        case(
            "notary.url with ftp://",
            json!({"notary": {"url": "ftp://notary.example.com"}}),
            vec![("spec.notary.url", cel("url must start with https://"))],
        ),
        case(
            "a signer named targets/x",
            json!({"signers": [{"name": "targets/x"}]}),
            vec![("spec.signers[0].name", cel("role below targets/"))],
        ),
        case(
            "duplicate signer names (list-map key)",
            json!({"signers": [{"name": "alice"}, {"name": "alice"}]}),
            vec![("spec.signers[1]", "Duplicate value".into())],
        ),
        case(
            "image pattern with a space",
            json!({"images": ["bad image"]}),
            vec![("spec.images[0]", "should match".into())],
        ),
    ]
}

/// POSTs `obj` and returns the Status of the expected rejection.
async fn rejected(api: &Api<DynamicObject>, obj: &DynamicObject, what: &str) -> kube::core::Status {
    match api.create(&PostParams::default(), obj).await {
        Ok(created) => {
            let _ = api
                .delete(&created.name_any(), &DeleteParams::default())
                .await;
            panic!("{what}: accepted, expected a 422: {:?}", created.data);
        }
        Err(kube::Error::Api(status)) => *status,
        Err(e) => panic!("{what}: unexpected error {e}"),
    }
}

#[tokio::test]
async fn invalid_policies_are_rejected_with_the_crd_messages() {
    let Some(client) = setup().await else { return };
    let namespaced = dynamic::<TrustPolicy>(&client, Some(NS));
    let cluster = dynamic::<ClusterTrustPolicy>(&client, None);
    let mut failures = Vec::new();
    for case in invalid_cases() {
        for (kind, api, obj) in [
            (
                "TrustPolicy",
                &namespaced,
                object::<TrustPolicy>(&unique("bad"), case.spec.clone()),
            ),
            (
                "ClusterTrustPolicy",
                &cluster,
                object::<ClusterTrustPolicy>(&unique("bad"), case.spec.clone()),
            ),
        ] {
            let what = format!("{kind}: {}", case.what);
            let st = rejected(api, &obj, &what).await;
            let got: Vec<(String, String)> = st
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect();
            let matched = case.causes.len() == got.len()
                && case.causes.iter().all(|(field, msg)| {
                    st.message.contains(msg.as_str())
                        && got
                            .iter()
                            .any(|(f, m)| f == field && m.contains(msg.as_str()))
                });
            if st.code != 422 || st.reason != "Invalid" || !matched {
                failures.push(format!(
                    "{what}: got {} {} {:?}\n    causes {got:?}\n    expected {:?}",
                    st.code, st.reason, st.message, case.causes
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected rejections:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_cel_rules_also_hold_on_update() {
    let Some(client) = setup().await else { return };
    let api: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
    let name = unique("update");
    let tp = TrustPolicy::new(&name, valid_spec());
    api.create(&PostParams::default(), &tp).await.unwrap();
    let err = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"trustRootThreshold": 5}})),
        )
        .await
        .expect_err("an update breaking a CEL rule is rejected");
    let kube::Error::Api(st) = err else {
        panic!("{err}")
    };
    assert_eq!(st.code, 422, "{st:?}");
    assert!(
        st.message
            .contains(&cel("trustRootThreshold must be between")),
        "{}",
        st.message
    );
    // Allow needs neither notary nor trust roots: switching and dropping them is fine.
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"action": "Allow", "notary": null, "trustRoots": null}})),
    )
    .await
    .unwrap();
    let stored = api.get(&name).await.unwrap();
    assert_eq!(stored.spec.action, Action::Allow);
    assert!(stored.spec.notary.is_none() && stored.spec.trust_roots.is_empty());
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn action_and_mode_are_defaulted_by_the_server() {
    let Some(client) = setup().await else { return };
    for cluster in [false, true] {
        let name = unique("defaults");
        let spec = valid_spec_json();
        assert!(spec.get("action").is_none() && spec.get("mode").is_none());
        let (api, obj) = if cluster {
            (
                dynamic::<ClusterTrustPolicy>(&client, None),
                object::<ClusterTrustPolicy>(&name, spec),
            )
        } else {
            (
                dynamic::<TrustPolicy>(&client, Some(NS)),
                object::<TrustPolicy>(&name, spec),
            )
        };
        let created = api.create(&PostParams::default(), &obj).await.unwrap();
        assert_eq!(
            created.data["spec"]["action"], "Verify",
            "{:?}",
            created.data
        );
        assert_eq!(
            created.data["spec"]["mode"], "Enforce",
            "{:?}",
            created.data
        );
        // Also as the typed resources read them.
        if cluster {
            let typed: Api<ClusterTrustPolicy> = Api::all(client.clone());
            let got = typed.get(&name).await.unwrap();
            assert_eq!(
                (got.spec.action, got.spec.mode),
                (Action::Verify, Mode::Enforce)
            );
        } else {
            let typed: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
            let got = typed.get(&name).await.unwrap();
            assert_eq!(
                (got.spec.action, got.spec.mode),
                (Action::Verify, Mode::Enforce)
            );
        }
        api.delete(&name, &DeleteParams::default()).await.unwrap();
    }
    // Explicit values are kept.
    let name = unique("explicit");
    let api = dynamic::<TrustPolicy>(&client, Some(NS));
    let spec = with(
        valid_spec_json(),
        json!({"action": "Deny", "mode": "Audit"}),
    );
    let created = api
        .create(&PostParams::default(), &object::<TrustPolicy>(&name, spec))
        .await
        .unwrap();
    assert_eq!(
        (
            created.data["spec"]["action"].as_str(),
            created.data["spec"]["mode"].as_str()
        ),
        (Some("Deny"), Some("Audit"))
    );
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn status_is_a_subresource() {
    let Some(client) = setup().await else { return };
    let api: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
    let name = unique("status");
    let created = api
        .create(
            &PostParams::default(),
            &TrustPolicy::new(&name, valid_spec()),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none());

    // The controller's way: server-side apply of status only, on the status subresource.
    let status = json!({
        "apiVersion": "trustgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Loaded",
                            "message": "policy in use", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }
    });
    let patched = api
        .patch_status(
            &name,
            &PatchParams::apply("trustgate-controller").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let st = patched.status.as_ref().unwrap();
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.conditions.len(), 1);
    assert_eq!(
        (
            st.conditions[0].type_.as_str(),
            st.conditions[0].status.as_str()
        ),
        ("Ready", "True")
    );
    assert_eq!(patched.spec, created.spec);
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "a status write does not bump generation"
    );

    // A spec change sent to the status subresource is ignored ...
    let ignored = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "Audit"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.spec.mode, Mode::Enforce);
    let cond = &ignored.status.as_ref().unwrap().conditions[0];
    assert_eq!(cond.status, "False");
    // ... defaults inside status apply (reason/message default to "") ...
    assert_eq!((cond.reason.as_str(), cond.message.as_str()), ("", ""));

    // ... and a status change sent with the main resource is ignored, while spec changes there
    // bump generation.
    let main = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "Warn"}, "status": {"observedGeneration": 99}})),
        )
        .await
        .unwrap();
    assert_eq!(main.spec.mode, Mode::Warn);
    assert_eq!(main.metadata.generation, Some(2));
    assert_eq!(main.status.as_ref().unwrap().observed_generation, Some(1));

    // The status subresource is validated too (conditions is a list-map keyed by type).
    let err = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]}})),
        )
        .await
        .expect_err("duplicate condition types are rejected");
    let kube::Error::Api(st) = err else {
        panic!("{err}")
    };
    assert_eq!(st.code, 422, "{st:?}");
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn printer_columns_are_served() {
    let Some(client) = setup().await else { return };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for local in trustgate::policy::crds() {
        let served = crds.get(&local.name_any()).await.unwrap();
        let cols = |c: &CustomResourceDefinition| {
            c.spec.versions[0]
                .additional_printer_columns
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.name, c.type_, c.json_path))
                .collect::<Vec<_>>()
        };
        let names: Vec<String> = cols(&served).into_iter().map(|c| c.0).collect();
        let expected: &[&str] = if local.spec.names.kind == "ClusterTrustPolicy" {
            &["Action", "Mode", "Namespaced", "Images", "Ready", "Age"]
        } else {
            &["Action", "Mode", "Images", "Ready", "Age"]
        };
        assert_eq!(names, expected, "{}", local.name_any());
        assert_eq!(cols(&served), cols(&local), "{}", local.name_any());
    }

    // The server renders them: a Table for a list, with the Ready column from status.
    let api: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
    let name = unique("table");
    api.create(
        &PostParams::default(),
        &TrustPolicy::new(&name, valid_spec()),
    )
    .await
    .unwrap();
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Loaded", "message": ""}]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    let table = get_table(
        &client,
        &format!("/apis/trustgate.dev/v1alpha1/namespaces/{NS}/trustpolicies"),
        &name,
    )
    .await;
    assert_eq!(table["kind"], "Table", "{table}");
    let columns = table_columns(&table);
    assert_eq!(
        columns,
        ["Name", "Action", "Mode", "Images", "Ready", "Age"]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], name.as_str());
    assert_eq!(cells[1], "Verify");
    assert_eq!(cells[2], "Enforce");
    assert!(
        cells[3]
            .as_str()
            .unwrap()
            .contains("registry.example.com:5000/shop/**"),
        "{cells}"
    );
    assert_eq!(cells[4], "True");
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

/// `spec.namespacedPolicies` (Override | Tighten) is accepted, stored and shown on a
/// ClusterTrustPolicy, and refused on a TrustPolicy (the root CEL rule), on create and update.
#[tokio::test]
async fn namespaced_policies_is_accepted_on_cluster_trust_policies_only() {
    let Some(client) = setup().await else { return };
    let typed: Api<ClusterTrustPolicy> = Api::all(client.clone());
    let cluster = dynamic::<ClusterTrustPolicy>(&client, None);
    for value in ["Tighten", "Override"] {
        let name = unique("ctp-namespaced");
        let mut spec = valid_spec_json();
        spec["namespacedPolicies"] = json!(value);
        cluster
            .create(
                &PostParams::default(),
                &object::<ClusterTrustPolicy>(&name, spec),
            )
            .await
            .unwrap_or_else(|e| panic!("ClusterTrustPolicy with namespacedPolicies {value}: {e}"));
        let stored = typed.get(&name).await.unwrap();
        assert_eq!(
            stored.spec.namespaced_policies().as_str(),
            value,
            "stored as written"
        );
        // `kubectl get ctp` shows it.
        let table = get_table(
            &client,
            "/apis/trustgate.dev/v1alpha1/clustertrustpolicies",
            &name,
        )
        .await;
        let columns = table_columns(&table);
        let at = columns.iter().position(|c| *c == "Namespaced").unwrap();
        assert_eq!(table["rows"][0]["cells"][at], value, "{table}");
        typed.delete(&name, &DeleteParams::default()).await.unwrap();
    }
    // Not one of the two values: the enum refuses it.
    let mut spec = valid_spec_json();
    spec["namespacedPolicies"] = json!("Loosen");
    let st = rejected(
        &cluster,
        &object::<ClusterTrustPolicy>(&unique("ctp-loosen"), spec),
        "namespacedPolicies: Loosen",
    )
    .await;
    assert_eq!(st.code, 422, "{st:?}");
    assert!(st.message.contains("Loosen"), "{}", st.message);

    // On a TrustPolicy: refused, at the field, with the rule's message.
    let message = cel("namespacedPolicies can only be set on a ClusterTrustPolicy");
    let namespaced = dynamic::<TrustPolicy>(&client, Some(NS));
    for value in ["Tighten", "Override"] {
        let mut spec = valid_spec_json();
        spec["namespacedPolicies"] = json!(value);
        let st = rejected(
            &namespaced,
            &object::<TrustPolicy>(&unique("tp-namespaced"), spec),
            &format!("TrustPolicy with namespacedPolicies {value}"),
        )
        .await;
        assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
        assert!(st.message.contains(&message), "{}", st.message);
        let causes: Vec<(String, String)> = st
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .map(|c| (c.field.clone(), c.message.clone()))
            .collect();
        assert!(
            causes
                .iter()
                .any(|(f, m)| f == "spec.namespacedPolicies" && m.contains(&message)),
            "{causes:?}"
        );
    }
    // Nor can an existing TrustPolicy be updated to carry it.
    let api: Api<TrustPolicy> = Api::namespaced(client.clone(), NS);
    let name = unique("tp-namespaced-update");
    api.create(
        &PostParams::default(),
        &TrustPolicy::new(&name, valid_spec()),
    )
    .await
    .unwrap();
    let err = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"namespacedPolicies": "Override"}})),
        )
        .await
        .expect_err("the rule holds on update");
    let kube::Error::Api(st) = err else {
        panic!("{err}")
    };
    assert_eq!(st.code, 422, "{st:?}");
    assert!(st.message.contains(&message), "{}", st.message);
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn cluster_trust_policy_is_cluster_scoped() {
    let Some(client) = setup().await else { return };
    let api: Api<ClusterTrustPolicy> = Api::all(client.clone());
    let name = unique("cluster");
    let ctp = ClusterTrustPolicy::new(&name, valid_spec().into());
    let created = api.create(&PostParams::default(), &ctp).await.unwrap();
    assert_eq!(created.metadata.namespace, None);
    assert_eq!(api.get(&name).await.unwrap().spec, ctp.spec);
    let listed = api.list(&Default::default()).await.unwrap();
    assert!(listed.items.iter().any(|c| c.name_any() == name));

    // There is no namespaced path for it.
    let under_ns = dynamic::<ClusterTrustPolicy>(&client, Some(NS));
    let obj = object::<ClusterTrustPolicy>(&unique("cluster-in-ns"), valid_spec_json());
    match under_ns.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(st)) => assert_eq!(st.code, 404, "{st:?}"),
        other => panic!("POST under a namespace: expected 404, got {other:?}"),
    }
    // While a TrustPolicy has no cluster-wide create path.
    let tp_all = dynamic::<TrustPolicy>(&client, None);
    let obj = object::<TrustPolicy>(&unique("tp-no-ns"), valid_spec_json());
    match tp_all.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(st)) => assert_eq!(st.code, 404, "{st:?}"),
        other => panic!("cluster-wide POST of a TrustPolicy: expected an error, got {other:?}"),
    }
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn namespaces_come_from_the_stub_core_api() {
    let Some(client) = setup().await else { return };
    // NamespaceLifecycle asks the stub: an unknown namespace is refused.
    let api: Api<TrustPolicy> = Api::namespaced(client.clone(), "not-served-by-the-stub");
    match api
        .create(
            &PostParams::default(),
            &TrustPolicy::new(&unique("nons"), valid_spec()),
        )
        .await
    {
        Err(kube::Error::Api(st)) => {
            assert_eq!(st.code, 404, "{st:?}");
            assert!(
                st.message.contains("not-served-by-the-stub"),
                "{}",
                st.message
            );
        }
        other => panic!("expected 404 for a namespace the stub does not serve, got {other:?}"),
    }
}
