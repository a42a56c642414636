//! What the Secrets hold, read as the kubelet and the policies' fields say: a Secret a policy
//! names (`.dockerconfigjson`, `.dockercfg`, or `username`/`password` with `registry`), a pull
//! Secret (by its type), and the policy fields that name Secrets and the Notary host.

use std::collections::BTreeMap;

use crate::image::credentials::DockerConfig;
use crate::policy::matcher::LoadedPolicy;

use super::{DOCKER_CFG, DOCKER_CONFIG_JSON};

/// What a Secret named by a policy holds.
pub(super) enum Named {
    /// A docker config, matched per host.
    Config(DockerConfig),
    /// `username`/`password`, with the registry host of a `registry` key (required for a
    /// registry Secret; a Notary Secret's login is for the policy's own Notary server).
    Basic {
        /// The `registry` key.
        registry: Option<String>,
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

/// Reads a Secret named by a policy: `.dockerconfigjson`, `.dockercfg`, or
/// `username`/`password` (and `registry`).
pub(super) fn named(data: &BTreeMap<String, Vec<u8>>) -> Result<Named, String> {
    for key in [".dockerconfigjson", ".dockercfg"] {
        if let Some(bytes) = data.get(key) {
            return DockerConfig::parse(bytes)
                .map(Named::Config)
                .map_err(|e| format!("{key}: {e}"));
        }
    }
    match (data.get("username"), data.get("password")) {
        (Some(user), Some(password)) => {
            let text = |b: &[u8], k: &str| {
                String::from_utf8(b.to_vec()).map_err(|_| format!("{k} is not UTF-8"))
            };
            let registry = match data.get("registry") {
                Some(r) => Some(text(r, "registry")?.trim().to_string()).filter(|r| !r.is_empty()),
                None => None,
            };
            Ok(Named::Basic {
                registry,
                user: text(user, "username")?,
                password: text(password, "password")?,
            })
        }
        _ => {
            Err("has none of the keys .dockerconfigjson, .dockercfg, username and password".into())
        }
    }
}

/// A pull Secret as the kubelet reads it: by type; `None` for other types.
pub(super) fn pull_secret(
    type_: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Option<Result<DockerConfig, String>> {
    let key = match type_ {
        DOCKER_CONFIG_JSON => ".dockerconfigjson",
        DOCKER_CFG => ".dockercfg",
        _ => return None,
    };
    Some(match data.get(key) {
        Some(bytes) => DockerConfig::parse(bytes).map_err(|e| format!("{key}: {e}")),
        None => Err(format!("type {type_} without the key {key}")),
    })
}

/// The name of `policy`'s `registry.credentialsSecret`.
pub(super) fn registry_secret(policy: &LoadedPolicy) -> Option<&str> {
    let secret = policy.spec.registry.as_ref()?.credentials_secret.as_ref()?;
    Some(secret.name.as_str())
}

/// The name of `policy`'s `notary.credentialsSecret`.
pub(super) fn notary_secret(policy: &LoadedPolicy) -> Option<&str> {
    let secret = policy.spec.notary.as_ref()?.credentials_secret.as_ref()?;
    Some(secret.name.as_str())
}

/// `host[:port]` of the policy's Notary URL.
pub(super) fn notary_host(policy: &LoadedPolicy) -> Option<String> {
    let url = url::Url::parse(policy.spec.notary.as_ref()?.url.as_deref()?).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::credentials::Credentials;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn named_secrets_read_docker_configs_or_logins() {
        let cfg = r#"{"auths":{"reg.example:5000":{"username":"u","password":"p"}}}"#;
        let Ok(Named::Config(c)) = named(&data(&[(".dockerconfigjson", cfg)])) else {
            panic!("docker config")
        };
        assert!(matches!(
            c.credentials_for("reg.example:5000"),
            Credentials::Basic { .. }
        ));
        assert!(matches!(
            named(&data(&[("username", "a"), ("password", "b")])),
            Ok(Named::Basic { registry: None, user, password }) if user == "a" && password == "b"
        ));
        assert!(matches!(
            named(&data(&[("username", "a"), ("password", "b"), ("registry", "r.example")])),
            Ok(Named::Basic { registry: Some(r), .. }) if r == "r.example"
        ));
        let Err(e) = named(&data(&[("token", "x")])) else {
            panic!("no usable key")
        };
        assert!(e.contains("has none of the keys"), "{e}");
        let Err(e) = named(&data(&[(".dockerconfigjson", "{")])) else {
            panic!("bad JSON")
        };
        assert!(e.starts_with(".dockerconfigjson: "), "{e}");
    }

    #[test]
    fn pull_secrets_count_only_docker_config_types() {
        let cfg = r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#;
        assert!(pull_secret("Opaque", &data(&[(".dockerconfigjson", cfg)])).is_none());
        assert!(matches!(
            pull_secret(DOCKER_CONFIG_JSON, &data(&[(".dockerconfigjson", cfg)])),
            Some(Ok(_))
        ));
        let legacy = r#"{"r.example":{"auth":"dTpw"}}"#;
        assert!(matches!(
            pull_secret(DOCKER_CFG, &data(&[(".dockercfg", legacy)])),
            Some(Ok(_))
        ));
        assert!(matches!(pull_secret(DOCKER_CFG, &data(&[])), Some(Err(_))));
    }
}
