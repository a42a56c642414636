//! The API-server tier of `e2e/apiserver.sh` for integration tests: its env file, an admin kube
//! client, and the trustgate CRDs applied and served.
//!
//! The env file is `TRUSTGATE_APISERVER_ENV`, else `$TRUSTGATE_APISERVER_DIR/apiserver.env`,
//! else `<repo>/target/apiserver/apiserver.env`. Missing or stale: `SKIP` (`None`), or a panic
//! with `TRUSTGATE_REQUIRE_APISERVER=1`.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use trustgate::policy::{ClusterTrustPolicy, TrustPolicy};

/// Keys every env file of the tier has.
const BASE_KEYS: [&str; 4] = ["APISERVER_URL", "KUBECONFIG", "STUB_URL", "STUB_STATE"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the tier's env file is expected.
pub fn env_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TRUSTGATE_APISERVER_ENV") {
        return PathBuf::from(p);
    }
    if let Some(d) = std::env::var_os("TRUSTGATE_APISERVER_DIR") {
        return PathBuf::from(d).join("apiserver.env");
    }
    repo_root().join("target/apiserver/apiserver.env")
}

/// Reads the env file, checks it has the base keys and `extra_keys`, and that the server answers.
fn load_env(path: &Path, extra_keys: &[&str]) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for key in BASE_KEYS.iter().chain(extra_keys) {
        if !env.contains_key(*key) {
            return Err(format!("{} lacks {key}", path.display()));
        }
    }
    let hostport = env["APISERVER_URL"]
        .trim_start_matches("https://")
        .to_owned();
    let up = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|sa| TcpStream::connect_timeout(&sa, Duration::from_millis(500)).is_ok());
    if !up {
        return Err(format!(
            "{} exists but {hostport} does not answer (stale env file?)",
            path.display()
        ));
    }
    Ok(env)
}

/// The CRDs exactly as shipped in `crds/trustgate-crds.yaml`.
pub fn crd_file() -> Vec<CustomResourceDefinition> {
    let text = std::fs::read_to_string(repo_root().join("crds/trustgate-crds.yaml")).unwrap();
    let crds: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&text).expect("crds/trustgate-crds.yaml parses");
    assert_eq!(crds.len(), 2, "both CRDs");
    crds
}

/// Server-side applies `crd` and waits until it is Established.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition, field_manager: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("server-side apply of CRD {name}: {e}"));
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established after 30 s"))
        .unwrap();
}

/// Applies both trustgate CRDs and waits until `namespace`'s TrustPolicies and the
/// ClusterTrustPolicies are served (Established can precede the first successful request).
pub async fn apply_trustgate_crds(client: &Client, field_manager: &str, namespace: &str) {
    for crd in crd_file() {
        apply_crd(client, &crd, field_manager).await;
    }
    let tp: Api<TrustPolicy> = Api::namespaced(client.clone(), namespace);
    let ctp: Api<ClusterTrustPolicy> = Api::all(client.clone());
    for _ in 0..200 {
        if tp.list(&Default::default()).await.is_ok() && ctp.list(&Default::default()).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trustgate.dev resources not served 10 s after Established");
}

/// The tier's env and an admin client with the trustgate CRDs applied and served, or `None`
/// (skip). `extra_keys` are env keys the caller needs beyond the base ones.
pub async fn setup(
    field_manager: &str,
    namespace: &str,
    extra_keys: &[&str],
) -> Option<(HashMap<String, String>, Client)> {
    let env = match load_env(&env_path(), extra_keys) {
        Ok(env) => env,
        Err(why) => {
            if std::env::var("TRUSTGATE_REQUIRE_APISERVER").is_ok_and(|v| v == "1") {
                panic!(
                    "API server required (TRUSTGATE_REQUIRE_APISERVER=1) but unavailable: {why}\n\
                     run `bash e2e/apiserver.sh up` first"
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {}: {why}; run `bash e2e/apiserver.sh up` (TRUSTGATE_REQUIRE_APISERVER=1 makes this fatal)",
                std::thread::current().name().unwrap_or("test")
            );
            return None;
        }
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&env["KUBECONFIG"]).expect("admin kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from the admin kubeconfig");
    let client = Client::try_from(config).expect("kube client");
    apply_trustgate_crds(&client, field_manager, namespace).await;
    Some((env, client))
}
