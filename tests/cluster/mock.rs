//! Secrets, ServiceAccounts and Events against kube's mock client (`tower_test::mock::pair`
//! behind `kube::Client::new`): the API-server tier serves no core/v1 or events.k8s.io, so
//! these are checked on a scripted API that records every request and answers by path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use trustgate::decision::CredentialSource;
use trustgate::image::credentials::Credentials;
use trustgate::policy::LoadedPolicy;

/// One request the fake API saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
}

type Route = dyn Fn(&str, &str, &Value) -> Option<(u16, Value)> + Send + Sync;

/// A scripted API: `route(method, path, body)` answers, `None` never answers (hangs).
pub struct FakeApi {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApi {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    /// Waits until at least `n` requests matched `pred`; returns them.
    pub async fn wait_for(&self, n: usize, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        for _ in 0..200 {
            let got: Vec<Seen> = self.requests().into_iter().filter(&pred).collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} matching requests; saw {:?}", self.paths());
    }
}

/// A kube client on a scripted API.
pub fn fake(
    route: impl Fn(&str, &str, &Value) -> Option<(u16, Value)> + Send + Sync + 'static,
) -> (Client, FakeApi) {
    let route: Arc<Route> = Arc::new(route);
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let method = parts.method.to_string();
            let path = parts.uri.path().to_string();
            log.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                body: body.clone(),
            });
            let Some((status, answer)) = route(&method, &path, &body) else {
                // Never answered: the caller waits (its own timeout applies).
                std::mem::forget(respond);
                continue;
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            respond.send_response(response);
        }
    });
    (Client::new(service, "default"), FakeApi { seen, task })
}

/// A `Status` answer.
pub fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": reason, "code": code, "message": format!("{reason} (fake API)")}),
    )
}

/// A Secret object with string data (base64-encoded as the API does).
pub fn secret(namespace: &str, name: &str, type_: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_string(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
           "metadata": {"namespace": namespace, "name": name}, "data": data})
}

/// `.dockerconfigjson` text with one `user:password` login per registry.
pub fn docker_config(logins: &[(&str, &str, &str)]) -> String {
    let auths: serde_json::Map<String, Value> = logins
        .iter()
        .map(|(registry, user, password)| {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            ((*registry).to_string(), json!({"auth": auth}))
        })
        .collect();
    json!({"auths": auths}).to_string()
}

/// Routes GETs of the given objects by path (`/api/v1/namespaces/NS/secrets/NAME`,
/// `.../serviceaccounts/NAME`); anything else is 404, except paths in `errors` (500).
pub fn objects(
    objects: Vec<Value>,
    errors: &[&str],
) -> impl Fn(&str, &str, &Value) -> Option<(u16, Value)> + Send + Sync + 'static {
    let mut by_path: HashMap<String, Value> = HashMap::new();
    for o in objects {
        let resource = match o["kind"].as_str() {
            Some("Secret") => "secrets",
            Some("ServiceAccount") => "serviceaccounts",
            other => panic!("unsupported kind {other:?}"),
        };
        let path = format!(
            "/api/v1/namespaces/{}/{resource}/{}",
            o["metadata"]["namespace"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap()
        );
        by_path.insert(path, o);
    }
    let errors: Vec<String> = errors.iter().map(|e| (*e).to_string()).collect();
    move |method, path, _| {
        if errors.iter().any(|e| e == path) {
            return Some(status(500, "InternalError"));
        }
        match (method, by_path.get(path)) {
            ("GET", Some(o)) => Some((200, o.clone())),
            _ => Some(status(404, "NotFound")),
        }
    }
}

/// The registry credentials `source` gives `policy` for `host` (anonymous when it refuses).
pub async fn registry_of(
    source: &dyn CredentialSource,
    policy: &LoadedPolicy,
    host: &str,
) -> Credentials {
    source
        .credentials(policy, host)
        .await
        .map(|c| c.registry)
        .unwrap_or_default()
}

/// The Notary login `source` gives `policy` (none when it refuses).
pub async fn notary_of(
    source: &dyn CredentialSource,
    policy: &LoadedPolicy,
) -> Option<(String, String)> {
    source.credentials(policy, "").await.ok()?.notary
}

/// Why `source` refuses `policy` credentials, if it does.
pub async fn problem_of(source: &dyn CredentialSource, policy: &LoadedPolicy) -> Option<String> {
    source.credentials(policy, "").await.err()
}
