//! [`SecretCredentials`]: the webhook's per-request credentials in cluster mode, read from
//! Kubernetes Secrets through the API (never mounted) and cached.
//!
//! For one review, [`SecretCredentials`] gives the engine a source bound to the workload (its
//! namespace, pull Secrets and service account); the engine asks it, after selecting the
//! policy that verifies an image, for exactly that policy and the image's registry, and the
//! Secrets that answer are read then:
//!
//! * **Registry:** the policy's `registry.credentialsSecret` (a Secret in the policy's
//!   namespace; for a `ClusterTrustPolicy`, in trustgate's own namespace), read as
//!   `.dockerconfigjson`, `.dockercfg` (matched per registry host) or `username`/`password` with
//!   a `registry` key naming the one registry host the login is for; `username`/`password`
//!   without `registry` is refused for the policy (fail closed), never sent everywhere. A
//!   policy without one uses the workload's pull Secrets, as the kubelet would: the PodSpec's
//!   `imagePullSecrets` in order (first entry for a registry wins), or, when it lists none, those
//!   of its service account (`default` when unnamed), which is what the ServiceAccount admission
//!   plugin gives the Pod. Only Secrets of type `kubernetes.io/dockerconfigjson` and
//!   `kubernetes.io/dockercfg` count; missing ones are skipped, as the kubelet skips them.
//!   Without any entry for the registry, the fallback (the CLI's docker config) or anonymous.
//! * **Notary:** the policy's `notary.credentialsSecret`, read as `username`/`password`, or as
//!   a docker config matched against the Notary URL's `host[:port]`. Otherwise, for a
//!   `ClusterTrustPolicy` only, the fallback (`NOTARY_AUTH` / `--notary-user`, which itself is
//!   bound to the Notary servers named with `--notary-auth-server`); a namespaced `TrustPolicy`
//!   only ever gets credentials from its own namespace.
//!
//! A Secret that a policy names and that is missing or unreadable is not silently skipped:
//! [`CredentialSource::credentials`] answers with the reason and the engine rejects the
//! policy's images (fail closed) with it. The workload's pull Secrets are read at most once per
//! review. Lookups are cached (moka, bounded): found objects for `ttl`
//! (default 30 s), missing ones for `missing_ttl` (5 s); API errors are not cached. Each
//! lookup is bounded by `timeout`, and concurrent lookups of one object are coalesced.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::{Api, Client};

use crate::admission::credentials::{CredentialRequest, RequestCredentials};
use crate::decision::{CredentialSource, PolicyCredentials};
use crate::image::credentials::{Credentials, DockerConfig, same_registry};
use crate::policy::matcher::LoadedPolicy;

mod parse;

use parse::{Named, named, notary_host, notary_secret, pull_secret, registry_secret};

/// Type of Secrets holding a `.dockerconfigjson`.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Type of Secrets holding a legacy `.dockercfg`.
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";

/// Cache and timeout settings of [`SecretCredentials`].
#[derive(Debug, Clone)]
pub struct SecretConfig {
    /// How long a Secret or ServiceAccount read is reused.
    pub ttl: Duration,
    /// How long "not found" is reused.
    pub missing_ttl: Duration,
    /// Most cached objects.
    pub max_entries: u64,
    /// Time allowed for one API read.
    pub timeout: Duration,
}

impl Default for SecretConfig {
    fn default() -> Self {
        SecretConfig {
            ttl: Duration::from_secs(30),
            missing_ttl: Duration::from_secs(5),
            max_entries: 10_000,
            timeout: Duration::from_secs(2),
        }
    }
}

/// A cached object: kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    account: bool,
    namespace: String,
    name: String,
}

impl Key {
    fn secret(namespace: &str, name: &str) -> Key {
        Key {
            account: false,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// What a read found.
enum Lookup {
    Secret {
        type_: String,
        data: BTreeMap<String, Vec<u8>>,
    },
    Account {
        pull_secrets: Vec<String>,
    },
    Missing,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never the values.
            Lookup::Secret { type_, data } => f
                .debug_struct("Secret")
                .field("type", type_)
                .field("keys", &data.keys().collect::<Vec<_>>())
                .finish(),
            Lookup::Account { pull_secrets } => f
                .debug_struct("Account")
                .field("pull_secrets", pull_secrets)
                .finish(),
            Lookup::Missing => f.write_str("Missing"),
        }
    }
}

/// Found objects live for `ttl`, missing ones for `missing_ttl`.
struct ByOutcome {
    ttl: Duration,
    missing_ttl: Duration,
}

impl moka::Expiry<Key, Arc<Lookup>> for ByOutcome {
    fn expire_after_create(&self, _: &Key, value: &Arc<Lookup>, _: Instant) -> Option<Duration> {
        Some(match value.as_ref() {
            Lookup::Missing => self.missing_ttl,
            _ => self.ttl,
        })
    }
}

/// Registry and Notary credentials from Kubernetes Secrets (see the module docs).
pub struct SecretCredentials {
    reader: Arc<Reader>,
    fallback: Option<Arc<dyn CredentialSource>>,
}

/// Reads Secrets and ServiceAccounts through a cache.
struct Reader {
    client: Client,
    namespace: String,
    config: SecretConfig,
    cache: moka::future::Cache<Key, Arc<Lookup>>,
}

impl fmt::Debug for SecretCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCredentials")
            .field("namespace", &self.reader.namespace)
            .field("config", &self.reader.config)
            .finish_non_exhaustive()
    }
}

impl SecretCredentials {
    /// Reads through `client`; `namespace` is trustgate's own (for `ClusterTrustPolicy`
    /// secrets).
    pub fn new(client: Client, namespace: impl Into<String>, config: SecretConfig) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(ByOutcome {
                ttl: config.ttl,
                missing_ttl: config.missing_ttl,
            })
            .build();
        SecretCredentials {
            reader: Arc::new(Reader {
                client,
                namespace: namespace.into(),
                config,
                cache,
            }),
            fallback: None,
        }
    }

    /// Credentials used when the Secrets give none for a registry or Notary server.
    #[must_use]
    pub fn with_fallback(mut self, fallback: Arc<dyn CredentialSource>) -> Self {
        self.fallback = Some(fallback);
        self
    }
}

impl Reader {
    /// Reads one object through the cache.
    async fn lookup(&self, key: Key) -> Result<Arc<Lookup>, String> {
        let client = self.client.clone();
        let timeout = self.config.timeout;
        let fetch_key = key.clone();
        self.cache
            .try_get_with(key, async move {
                tokio::time::timeout(timeout, fetch(client, &fetch_key))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
                    .map(Arc::new)
            })
            .await
            .map_err(|e: Arc<String>| e.as_ref().clone())
    }

    /// The namespace of `policy`'s Secrets.
    fn namespace_of<'p>(&'p self, policy: &'p LoadedPolicy) -> &'p str {
        policy.id.namespace.as_deref().unwrap_or(&self.namespace)
    }

    /// A policy's registry Secret, parsed.
    async fn policy_registry(&self, policy: &LoadedPolicy, name: &str) -> Result<Named, String> {
        let ns = self.namespace_of(policy);
        let what = format!("registry.credentialsSecret {ns}/{name}");
        match self.lookup(Key::secret(ns, name)).await {
            Err(e) => Err(format!("{what}: cannot read it: {e}")),
            Ok(found) => match found.as_ref() {
                Lookup::Secret { data, .. } => named(data)
                    .and_then(|n| match n {
                        Named::Basic { registry: None, .. } => Err(
                            "holds username/password without a `registry` key: say which \
                             registry host the login is for (it is sent to no other)"
                                .into(),
                        ),
                        other => Ok(other),
                    })
                    .map_err(|e| format!("{what}: {e}")),
                _ => Err(format!("{what}: not found")),
            },
        }
    }

    /// A policy's Notary Secret, as (user, password) for its Notary host.
    async fn policy_notary(
        &self,
        policy: &LoadedPolicy,
        name: &str,
    ) -> Result<Option<(String, String)>, String> {
        let ns = self.namespace_of(policy);
        let what = format!("notary.credentialsSecret {ns}/{name}");
        let found = self
            .lookup(Key::secret(ns, name))
            .await
            .map_err(|e| format!("{what}: cannot read it: {e}"))?;
        let Lookup::Secret { data, .. } = found.as_ref() else {
            return Err(format!("{what}: not found"));
        };
        let host = notary_host(policy).unwrap_or_default();
        Ok(match named(data).map_err(|e| format!("{what}: {e}"))? {
            Named::Basic { user, password, .. } => Some((user, password)),
            Named::Config(config) => match config.credentials_for(&host) {
                Credentials::Basic { username, password } => Some((username, password)),
                _ => {
                    tracing::debug!(secret = %format!("{ns}/{name}"), %host, "no Notary login for the host in the secret");
                    None
                }
            },
        })
    }

    /// The workload's pull Secrets merged in order (see the module docs).
    async fn pull_config(&self, workload: &Workload) -> DockerConfig {
        let ns = workload.namespace.as_str();
        let mut names: Vec<String> = workload.image_pull_secrets.clone();
        if names.is_empty() {
            let account = workload.service_account.as_deref().unwrap_or("default");
            let key = Key {
                account: true,
                namespace: ns.into(),
                name: account.into(),
            };
            match self.lookup(key).await.as_deref() {
                Ok(Lookup::Account { pull_secrets }) => names.clone_from(pull_secrets),
                Ok(_) => tracing::debug!(namespace = ns, account, "service account not found"),
                Err(e) => {
                    tracing::warn!(namespace = ns, account, error = %e, "cannot read the service account; no pull secrets from it")
                }
            }
        }
        let found = join_all(names.iter().map(|n| self.lookup(Key::secret(ns, n)))).await;
        let mut config = DockerConfig::default();
        for (name, found) in names.iter().zip(found) {
            match found.as_deref() {
                Ok(Lookup::Secret { type_, data }) => match pull_secret(type_, data) {
                    Some(Ok(parsed)) => config.merge(parsed),
                    Some(Err(e)) => {
                        tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "unusable pull secret; skipped")
                    }
                    None => {
                        tracing::debug!(secret = %format!("{ns}/{name}"), type_ = %type_, "not a docker config secret; skipped")
                    }
                },
                Ok(_) => {
                    tracing::debug!(secret = %format!("{ns}/{name}"), "pull secret not found; skipped")
                }
                Err(e) => {
                    tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "cannot read the pull secret; skipped")
                }
            }
        }
        config
    }
}

/// Whose pull Secrets a review's images are pulled with.
#[derive(Debug)]
struct Workload {
    namespace: String,
    image_pull_secrets: Vec<String>,
    service_account: Option<String>,
}

impl RequestCredentials for SecretCredentials {
    fn for_request<'a>(
        &'a self,
        request: CredentialRequest<'a>,
    ) -> BoxFuture<'a, Arc<dyn CredentialSource>> {
        let source = WorkloadCredentials {
            reader: Arc::clone(&self.reader),
            fallback: self.fallback.clone(),
            workload: Workload {
                namespace: request.namespace.to_owned(),
                image_pull_secrets: request.image_pull_secrets.to_vec(),
                service_account: request.service_account.map(str::to_owned),
            },
            pull: tokio::sync::OnceCell::new(),
        };
        Box::pin(futures::future::ready(
            Arc::new(source) as Arc<dyn CredentialSource>
        ))
    }
}

/// The credentials of one review: Secrets read when the engine asks for a policy's.
struct WorkloadCredentials {
    reader: Arc<Reader>,
    fallback: Option<Arc<dyn CredentialSource>>,
    workload: Workload,
    /// The merged pull Secrets, read once (for the policies without a registry Secret).
    pull: tokio::sync::OnceCell<DockerConfig>,
}

impl WorkloadCredentials {
    /// Registry credentials of `policy` for `registry`.
    async fn registry(&self, policy: &LoadedPolicy, registry: &str) -> Result<Credentials, String> {
        if let Some(name) = registry_secret(policy) {
            return Ok(match self.reader.policy_registry(policy, name).await? {
                Named::Config(config) => config.credentials_for(registry),
                Named::Basic {
                    registry: Some(host),
                    user,
                    password,
                } if same_registry(&host, registry) => Credentials::Basic {
                    username: user,
                    password,
                },
                Named::Basic { .. } => Credentials::Anonymous,
            });
        }
        let pull = self
            .pull
            .get_or_init(|| self.reader.pull_config(&self.workload))
            .await;
        let found = pull.credentials_for(registry);
        match &self.fallback {
            Some(fallback) if found.is_anonymous() => {
                Ok(fallback.credentials(policy, registry).await?.registry)
            }
            _ => Ok(found),
        }
    }

    /// Notary credentials of `policy`.
    async fn notary(
        &self,
        policy: &LoadedPolicy,
        registry: &str,
    ) -> Result<Option<(String, String)>, String> {
        if let Some(name) = notary_secret(policy) {
            return self.reader.policy_notary(policy, name).await;
        }
        if policy.id.namespace.is_some() {
            // A namespaced policy gets credentials only from its own namespace.
            return Ok(None);
        }
        match &self.fallback {
            Some(fallback) => Ok(fallback.credentials(policy, registry).await?.notary),
            None => Ok(None),
        }
    }
}

impl CredentialSource for WorkloadCredentials {
    fn credentials<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<PolicyCredentials, String>> {
        Box::pin(async move {
            let (registry_creds, notary) = futures::join!(
                self.registry(policy, registry),
                self.notary(policy, registry)
            );
            Ok(PolicyCredentials {
                registry: registry_creds?,
                notary: notary?,
            })
        })
    }
}

/// Reads a Secret or ServiceAccount; `Missing` for 404.
async fn fetch(client: Client, key: &Key) -> Result<Lookup, String> {
    if key.account {
        let api: Api<ServiceAccount> = Api::namespaced(client, &key.namespace);
        let account = api.get_opt(&key.name).await.map_err(|e| e.to_string())?;
        return Ok(account.map_or(Lookup::Missing, |a| Lookup::Account {
            pull_secrets: a
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .filter(|n| !n.is_empty())
                .collect(),
        }));
    }
    let api: Api<Secret> = Api::namespaced(client, &key.namespace);
    let secret = api.get_opt(&key.name).await.map_err(|e| e.to_string())?;
    Ok(secret.map_or(Lookup::Missing, |s| Lookup::Secret {
        type_: s.type_.unwrap_or_default(),
        data: s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn lookups_never_show_secret_values() {
        let l = Lookup::Secret {
            type_: DOCKER_CONFIG_JSON.into(),
            data: data(&[("password", "hunter2")]),
        };
        let shown = format!("{l:?}");
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
