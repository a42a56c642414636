//! Per-request credentials. The engine selects the policy deciding an image, then asks a
//! [`CredentialSource`] for that policy's registry and Notary credentials; in cluster mode they
//! come from Kubernetes Secrets that depend on the request (the workload's namespace, its
//! `imagePullSecrets` and service account), so the webhook first asks a [`RequestCredentials`]
//! for a source bound to this one request, then decides with it.
//!
//! [`FixedCredentials`] is the standalone implementation: the same source for every request
//! (the CLI's docker config and Notary login). The cluster implementation is
//! `cluster::secrets::SecretCredentials`.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::decision::CredentialSource;

/// What one review tells about whose credentials to use.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRequest<'a> {
    /// Namespace of the workload (where its pull secrets and service account live).
    pub namespace: &'a str,
    /// The PodSpec's `imagePullSecrets` names, in order.
    pub image_pull_secrets: &'a [String],
    /// The PodSpec's service account (`None`: the namespace's `default` account).
    pub service_account: Option<&'a str>,
}

/// Builds the [`CredentialSource`] for one review. Implementations bound their own time (the
/// engine's per-image deadline covers the questions the source answers).
pub trait RequestCredentials: Send + Sync {
    /// The credentials for `request`.
    fn for_request<'a>(
        &'a self,
        request: CredentialRequest<'a>,
    ) -> BoxFuture<'a, Arc<dyn CredentialSource>>;
}

/// The same credentials for every request (standalone mode).
#[derive(Clone)]
pub struct FixedCredentials(pub Arc<dyn CredentialSource>);

impl std::fmt::Debug for FixedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedCredentials")
    }
}

impl RequestCredentials for FixedCredentials {
    fn for_request<'a>(
        &'a self,
        _: CredentialRequest<'a>,
    ) -> BoxFuture<'a, Arc<dyn CredentialSource>> {
        Box::pin(futures::future::ready(Arc::clone(&self.0)))
    }
}

/// Why a Notary login cannot be bound to its servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// A server URL that does not parse or is not http(s).
    #[error("Notary login server {url:?} is not an http(s) URL: {detail}")]
    BadServer {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// The operator's global Notary login (`NOTARY_AUTH`, `--notary-user`), bound to the Notary
/// servers it was issued for (`--notary-auth-server`). It is handed out only for a policy whose
/// `notary.url` is one of those servers (same scheme, host, port and path), never for any other
/// server: a policy author who points `notary.url` at a server they control gets no login.
#[derive(Clone, PartialEq, Eq)]
pub struct NotaryLogin {
    user: String,
    password: String,
    servers: Vec<url::Url>,
}

impl std::fmt::Debug for NotaryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotaryLogin")
            .field("user", &self.user)
            .field("servers", &self.servers())
            .finish_non_exhaustive()
    }
}

impl NotaryLogin {
    /// `user`/`password` for the Notary servers at `servers` (URLs).
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
        servers: &[String],
    ) -> Result<NotaryLogin, LoginError> {
        let servers = servers
            .iter()
            .map(|s| server_url(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NotaryLogin {
            user: user.into(),
            password: password.into(),
            servers,
        })
    }

    /// The servers the login is bound to, as given (normalised).
    pub fn servers(&self) -> Vec<String> {
        self.servers.iter().map(ToString::to_string).collect()
    }

    /// The login if `url` is one of its servers; `None` for any other server or a URL that does
    /// not parse.
    pub fn for_url(&self, url: &str) -> Option<(String, String)> {
        let url = server_url(url).ok()?;
        self.servers
            .iter()
            .any(|s| same_server(s, &url))
            .then(|| (self.user.clone(), self.password.clone()))
    }
}

/// Parses a Notary server URL: http(s), no userinfo, query or fragment.
fn server_url(text: &str) -> Result<url::Url, LoginError> {
    let bad = |detail: String| LoginError::BadServer {
        url: text.chars().take(200).collect(),
        detail,
    };
    let url = url::Url::parse(text.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("scheme {:?}", url.scheme())));
    }
    if url.host_str().is_none() {
        return Err(bad("no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it carries userinfo".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it carries a query or fragment".into()));
    }
    Ok(url)
}

/// Same scheme, host, port (default ports made explicit) and path (trailing `/` ignored).
fn same_server(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_goes_only_to_its_servers() {
        let login = NotaryLogin::new(
            "ops",
            "pw",
            &[
                "https://notary.example.com:4443".into(),
                "http://127.0.0.1:4000/".into(),
            ],
        )
        .unwrap();
        let yes = Some(("ops".to_string(), "pw".to_string()));
        assert_eq!(login.for_url("https://notary.example.com:4443"), yes);
        assert_eq!(login.for_url("https://NOTARY.example.com:4443/"), yes);
        assert_eq!(login.for_url("http://127.0.0.1:4000"), yes);
        for other in [
            "https://notary.example.com",
            "https://notary.example.com:4444",
            "http://notary.example.com:4443",
            "https://notary.example.com.evil.io:4443",
            "https://evil.io/notary.example.com:4443",
            "https://notary.example.com:4443/other",
            "not a url",
        ] {
            assert_eq!(login.for_url(other), None, "{other}");
        }
        let none = NotaryLogin::new("ops", "pw", &[]).unwrap();
        assert_eq!(none.for_url("https://notary.example.com:4443"), None);
        assert!(!format!("{login:?}").contains("pw"));
    }

    #[test]
    fn bad_login_servers_are_refused() {
        for bad in ["notary:4443", "ftp://x", "https://u:p@x", "https://x/?q=1"] {
            let e = NotaryLogin::new("u", "p", &[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains("Notary login server"), "{e}");
        }
    }
}
