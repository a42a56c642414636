//! Registry credentials: parsing docker config files (`~/.docker/config.json`, Kubernetes
//! `.dockerconfigjson` and legacy `.dockercfg` secrets) and choosing the entry for a registry the
//! way the docker CLI does.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use serde::Deserialize;

/// The Docker Hub key docker writes into config files.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Host names that all mean Docker Hub in a config key.
const DOCKER_HUB_HOSTS: [&str; 3] = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Credentials {
    /// No credentials: anonymous access (bearer challenges are still answered anonymously).
    #[default]
    Anonymous,
    /// Username and password (HTTP Basic, or exchanged for a bearer token).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A ready bearer token (`registrytoken` in a docker config).
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

impl Credentials {
    /// True when these are no credentials at all.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

/// Errors reading a docker config.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not JSON, or not the expected shape.
    #[error("docker config is not valid JSON: {0}")]
    Json(String),
    /// An `auth` field that is not base64 of `user:password`.
    #[error("docker config entry for {registry}: `auth` is not base64 of user:password")]
    BadAuthField {
        /// The config key of the bad entry.
        registry: String,
    },
}

#[derive(Debug, Deserialize, Default)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// A parsed docker config: registry key to credentials, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    entries: BTreeMap<String, Credentials>,
}

impl DockerConfig {
    /// Parses `config.json` / `.dockerconfigjson` (`{"auths":{...}}`) or legacy `.dockercfg`
    /// (the map of entries at the top level). Entries without usable credentials are skipped.
    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, CredentialsError> {
        let limit = crate::limits::LIMITS.json_depth;
        if !crate::json::json_depth_within(bytes, limit) {
            return Err(CredentialsError::Json(format!(
                "nested deeper than the limit of {limit} levels"
            )));
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| CredentialsError::Json(e.to_string()))?;
        let map = match value.get("auths") {
            Some(auths) => auths.clone(),
            None if value.get("credsStore").is_some() || value.get("credHelpers").is_some() => {
                serde_json::Value::Object(Default::default())
            }
            None => value,
        };
        let raw: BTreeMap<String, RawEntry> =
            serde_json::from_value(map).map_err(|e| CredentialsError::Json(e.to_string()))?;
        let mut entries = BTreeMap::new();
        for (key, entry) in raw {
            if let Some(creds) = entry_credentials(&key, entry)? {
                entries.insert(key, creds);
            }
        }
        Ok(DockerConfig { entries })
    }

    /// Merges another config into this one; entries already present win (first secret wins, as
    /// the kubelet tries pull secrets in order).
    pub fn merge(&mut self, other: DockerConfig) {
        for (k, v) in other.entries {
            self.entries.entry(k).or_insert(v);
        }
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is usable.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Credentials for a registry host (`docker.io`, `registry.example.com:5000`), matched as the
    /// docker CLI does: Docker Hub uses the `https://index.docker.io/v1/` key (or any key naming a
    /// Docker Hub host); other registries use the exact key, else the first key whose host part
    /// (scheme and path stripped) is the same registry ([`same_registry`]). Never a key of
    /// another host: a login goes only to the registry it was issued for.
    pub fn credentials_for(&self, registry: &str) -> Credentials {
        let wanted = canonical_registry(registry);
        if wanted == "docker.io"
            && let Some(c) = self.entries.get(DOCKER_HUB_CONFIG_KEY)
        {
            return c.clone();
        }
        if let Some(c) = self.entries.get(registry.to_ascii_lowercase().as_str()) {
            return c.clone();
        }
        self.entries
            .iter()
            .find(|(k, _)| canonical_registry(k) == wanted)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }
}

/// True when two registry names (`host[:port]`, or a config key such as
/// `https://host/v1/`) name the same registry: host names compared case-insensitively,
/// `:443` dropped, Docker Hub's names (`docker.io`, `index.docker.io`, `registry-1.docker.io`)
/// one registry.
pub fn same_registry(a: &str, b: &str) -> bool {
    canonical_registry(a) == canonical_registry(b)
}

/// `host[:port]` of a registry name or config key, canonical (see [`same_registry`]).
fn canonical_registry(name: &str) -> String {
    let mut host = config_key_host(name.trim());
    if let Some(stripped) = host.strip_suffix(":443") {
        host = stripped.to_string();
    }
    if DOCKER_HUB_HOSTS.contains(&host.as_str()) {
        return "docker.io".into();
    }
    host
}

/// docker's `ConvertToHostname`: strip `http://`/`https://`, keep what precedes the first `/`.
fn config_key_host(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn entry_credentials(key: &str, entry: RawEntry) -> Result<Option<Credentials>, CredentialsError> {
    if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::Bearer(token)));
    }
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let bad = || CredentialsError::BadAuthField {
            registry: key.to_string(),
        };
        let cleaned: String = auth.chars().filter(|c| !c.is_whitespace()).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    match (entry.username, entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(Some(Credentials::Basic { username, password }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn docker_hub_uses_index_v1_key() {
        let cfg = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}}}}}}"#,
            b64("hub:secret"),
            b64("q:w")
        );
        let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap();
        assert_eq!(cfg.credentials_for("docker.io"), basic("hub", "secret"));
        assert_eq!(
            cfg.credentials_for("index.docker.io"),
            basic("hub", "secret")
        );
        assert_eq!(cfg.credentials_for("quay.io"), basic("q", "w"));
        assert_eq!(cfg.credentials_for("ghcr.io"), Credentials::Anonymous);
    }

    #[test]
    fn host_matching_strips_scheme_and_path_but_keeps_port() {
        let cfg = r#"{"auths":{
            "https://registry.example.com/v2/":{"username":"a","password":"b"},
            "127.0.0.1:5000":{"username":"local","password":"pw"},
            "http://other.example:8443":{"username":"o","password":"p"}}}"#;
        let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap();
        assert_eq!(cfg.credentials_for("registry.example.com"), basic("a", "b"));
        assert_eq!(cfg.credentials_for("127.0.0.1:5000"), basic("local", "pw"));
        assert_eq!(
            cfg.credentials_for("127.0.0.1:5001"),
            Credentials::Anonymous
        );
        assert_eq!(cfg.credentials_for("other.example:8443"), basic("o", "p"));
        assert_eq!(cfg.credentials_for("other.example"), Credentials::Anonymous);
        // A look-alike host must never match by prefix.
        assert_eq!(
            cfg.credentials_for("registry.example.com.evil.io"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn hub_matches_other_hub_spellings() {
        let cfg = format!(
            r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#,
            b64("u:p:x")
        );
        let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap();
        // Passwords may contain colons: split at the first one only.
        assert_eq!(cfg.credentials_for("docker.io"), basic("u", "p:x"));
    }

    #[test]
    fn legacy_dockercfg_and_tokens() {
        let cfg = r#"{"reg.example":{"auth":"","registrytoken":"tok"},"empty.example":{}}"#;
        let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap();
        assert_eq!(cfg.len(), 1);
        assert_eq!(
            cfg.credentials_for("reg.example"),
            Credentials::Bearer("tok".into())
        );
    }

    #[test]
    fn credential_helpers_only_config_is_empty() {
        let cfg = DockerConfig::parse(br#"{"credsStore":"desktop"}"#).unwrap();
        assert!(cfg.is_empty());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let err = DockerConfig::parse(b"not json").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        let err = DockerConfig::parse(br#"{"auths":{"r.example":{"auth":"!!!"}}}"#).unwrap_err();
        assert!(err.to_string().contains("r.example"), "{err}");
        let no_colon = format!(
            r#"{{"auths":{{"r.example":{{"auth":"{}"}}}}}}"#,
            b64("nocolon")
        );
        assert!(DockerConfig::parse(no_colon.as_bytes()).is_err());
        assert!(DockerConfig::parse(br#"{"auths":[1,2]}"#).is_err());
    }

    #[test]
    fn merge_keeps_first() {
        let mut a =
            DockerConfig::parse(br#"{"auths":{"r":{"username":"a","password":"1"}}}"#).unwrap();
        let b = DockerConfig::parse(
            br#"{"auths":{"r":{"username":"b","password":"2"},"s":{"username":"c","password":"3"}}}"#,
        )
        .unwrap();
        a.merge(b);
        assert_eq!(a.credentials_for("r"), basic("a", "1"));
        assert_eq!(a.credentials_for("s"), basic("c", "3"));
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", basic("user", "hunter2"));
        assert!(!s.contains("hunter2"));
    }
}

#[cfg(test)]
mod alias_tests {
    use super::*;

    #[test]
    fn logins_match_registry_aliases_and_nothing_else() {
        let cfg = DockerConfig::parse(
            br#"{"auths":{"registry.example.com:443":{"username":"a","password":"b"},
                          "registry-1.docker.io":{"username":"h","password":"p"}}}"#,
        )
        .unwrap();
        let a = Credentials::Basic {
            username: "a".into(),
            password: "b".into(),
        };
        assert_eq!(cfg.credentials_for("registry.example.com"), a);
        assert_eq!(cfg.credentials_for("Registry.Example.com:443"), a);
        assert!(
            cfg.credentials_for("registry.example.com:5000")
                .is_anonymous()
        );
        assert!(cfg.credentials_for("evil.example").is_anonymous());
        assert!(!cfg.credentials_for("docker.io").is_anonymous());
        assert!(same_registry("index.docker.io", "docker.io"));
        assert!(same_registry("https://r.example/v2/", "R.example:443"));
        assert!(!same_registry("r.example", "r.example.evil.io"));
    }

    #[test]
    fn configs_one_past_the_json_depth_limit_are_refused() {
        let limit = crate::limits::LIMITS.json_depth;
        // {"auths":{"r":{"x": [..]}}}: three objects, then arrays.
        let nest = |n: usize| {
            format!(
                r#"{{"auths":{{"r":{{"username":"u","password":"p","x":{}0{}}}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(DockerConfig::parse(nest(limit - 3).as_bytes()).is_ok());
        let e = DockerConfig::parse(nest(limit - 2).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("deeper than the limit"), "{e}");
    }
}
