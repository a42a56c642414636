//! The registry's HTTP conversation for one tag-to-digest resolution, on reqwest, with every
//! answer bounded and every credential kept to the host it was issued for:
//!
//! * `HEAD /v2/<path>/manifests/<tag>` with the kubelet's Accept types; its
//!   `Docker-Content-Digest` is the answer. Without one, `GET` the manifest and hash it, reading
//!   at most `LIMITS.manifest_bytes` (refused by `Content-Length` before reading, and while
//!   streaming: nothing past the cap is buffered).
//! * A 401 challenge is answered once: `Basic` with the login (sent to the registry itself);
//!   `Bearer realm=..` by asking the realm for a token (answer read up to `LIMITS.token_bytes`).
//!   The login goes to the realm only when the realm is on the registry's own host (any port;
//!   Docker Hub's `auth.docker.io` counts as Docker Hub's), over https unless the registry
//!   itself is plain http or the realm is loopback; any other realm is asked anonymously. A
//!   ready bearer token (`registrytoken`) is sent to the registry only.
//! * Redirects are followed within the registry's origin (at most `MAX_REDIRECTS`), so
//!   `Authorization` never reaches another host. Blobs fetched by digest alone may also follow
//!   a redirect to another origin (a storage host or pre-signed URL, as Docker Hub, GHCR, ECR
//!   and Quay answer), as a fresh request carrying no credential: see [`blob`].
//! * Error bodies are read up to `LIMITS.error_body_bytes`.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, Method, Response, StatusCode, redirect};
use sha2::{Digest as _, Sha256};
use url::{Host, Url};

mod blob;

use super::MANIFEST_MEDIA_TYPES;
use crate::image::credentials::Credentials;
use crate::limits::LIMITS;
use crate::notary::fetch::auth::{
    Challenge, errcode_message, parse_challenges, parse_token_response,
};

/// Most redirects followed (same origin only).
const MAX_REDIRECTS: usize = 5;
/// Docker Hub's registry host (what `docker.io` references are pulled from).
pub(super) const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Docker Hub's token service, the one realm off the registry's host that gets a login.
const DOCKER_HUB_AUTH: &str = "auth.docker.io";
/// How long a Basic `Authorization` the registry accepted is sent again without a challenge.
const BASIC_REUSE: Duration = Duration::from_secs(300);

/// The answer to a challenge and how long it may be reused.
type Answer = (Option<HeaderValue>, Option<Duration>);

/// A registry client for one set of options (its TLS configuration: system CAs and the
/// policy's CA bundle; timeout).
pub(super) fn build_client(
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> Result<Client, reqwest::Error> {
    Client::builder()
        .user_agent(concat!("trustgate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(same_origin_redirects())
        // reqwest's default since 0.9; stated so a default change cannot bring Nagle stalls back.
        .tcp_nodelay(true)
        .tls_backend_preconfigured(tls)
        .build()
}

fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let same = attempt.previous().first().is_some_and(|first| {
            let (a, b) = (first, attempt.url());
            a.scheme() == b.scheme()
                && a.host() == b.host()
                && a.port_or_known_default() == b.port_or_known_default()
        });
        if same && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A manifest answer that failed (before classification).
#[derive(Debug)]
pub(super) enum Failure {
    /// A transport error.
    Transport(reqwest::Error),
    /// An HTTP status other than success, with the errcode text of the (capped) body.
    Status {
        /// HTTP status.
        status: u16,
        /// errcode codes of the body (`MANIFEST_UNKNOWN`, ...).
        codes: Vec<String>,
        /// "CODE: message" text.
        detail: String,
    },
    /// The token service failed or refused.
    Token(String),
    /// The answer breaks a limit or the protocol.
    Protocol(String),
}

/// A successful answer of [`Conversation::fetch`].
#[derive(Debug)]
pub(super) struct Fetched {
    /// `Content-Type`, trimmed.
    pub(super) content_type: Option<String>,
    /// A valid `Docker-Content-Digest`.
    pub(super) digest: Option<String>,
    /// `Content-Length`.
    pub(super) length: Option<u64>,
    /// The body; `None` when it is larger than the limit (empty for `HEAD`).
    pub(super) body: Option<Vec<u8>>,
}

/// One resolution's conversation: the registry, the repository and the login.
pub(super) struct Conversation<'a> {
    pub(super) client: &'a Client,
    /// `http` or `https`.
    pub(super) scheme: &'static str,
    /// The registry host to contact (`registry-1.docker.io` for `docker.io`).
    pub(super) host: String,
    /// Repository path.
    pub(super) path: &'a str,
    pub(super) credentials: &'a Credentials,
    /// The `Authorization` that worked (or was given) so far.
    auth: Option<HeaderValue>,
    /// How long a newly obtained `auth` may be reused (set when a challenge was answered).
    fresh: Option<Duration>,
    challenged: bool,
}

impl<'a> Conversation<'a> {
    pub(super) fn new(
        client: &'a Client,
        plain_http: bool,
        domain: &str,
        path: &'a str,
        credentials: &'a Credentials,
    ) -> Conversation<'a> {
        let host = if domain == "docker.io" {
            DOCKER_HUB_REGISTRY.to_string()
        } else {
            domain.to_string()
        };
        let auth = match credentials {
            Credentials::Bearer(token) => HeaderValue::from_str(&format!("Bearer {token}")).ok(),
            _ => None,
        };
        Conversation {
            client,
            scheme: if plain_http { "http" } else { "https" },
            host,
            path,
            credentials,
            auth,
            fresh: None,
            challenged: false,
        }
    }

    /// Starts with an `Authorization` reused from an earlier conversation with the same
    /// registry, repository and login (a 401 still gets a fresh answer).
    pub(super) fn with_cached(mut self, auth: Option<HeaderValue>) -> Conversation<'a> {
        if self.auth.is_none() {
            self.auth = auth;
        }
        self
    }

    /// An `Authorization` obtained in this conversation and how long it may be reused.
    pub(super) fn obtained(&self) -> Option<(HeaderValue, Duration)> {
        Some((self.auth.clone()?, self.fresh?))
    }

    fn url(&self, tail: &str) -> String {
        format!("{}://{}/v2/{}/{tail}", self.scheme, self.host, self.path)
    }

    /// The manifest digest of `tag`.
    pub(super) async fn manifest_digest(&mut self, tag: &str) -> Result<String, Failure> {
        let url = self.url(&format!("manifests/{tag}"));
        let head = self.send(Method::HEAD, &url).await?;
        if head.status().is_success()
            && let Some(d) = header_digest(head.headers())
        {
            return Ok(d);
        }
        let mut get = self.send(Method::GET, &url).await?;
        if !get.status().is_success() {
            return Err(status_failure(&mut get).await);
        }
        let declared = header_digest(get.headers());
        let body_digest = read_manifest_digest(&mut get).await?;
        match declared {
            Some(d) if d.starts_with("sha256:") && d != body_digest => {
                Err(Failure::Protocol(format!(
                    "the manifest's digest is {body_digest}, not the {d} the registry declared"
                )))
            }
            _ => Ok(body_digest),
        }
    }

    /// Whether the repository exists: its tag list (`n=1`) answers.
    pub(super) async fn repository_status(&mut self) -> Result<(), Failure> {
        let url = self.url("tags/list?n=1");
        let mut resp = self.send(Method::GET, &url).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(status_failure(&mut resp).await)
    }

    /// `method` on `/v2/<path>/<tail>` (manifests, referrers, blobs), answering a challenge as
    /// a resolution does. A success body is read up to `limit` bytes (`body` is `None` past it:
    /// refused by `Content-Length` before reading, and while streaming). Any other status is a
    /// [`Failure::Status`].
    pub(super) async fn fetch(
        &mut self,
        method: Method,
        tail: &str,
        limit: u64,
    ) -> Result<Fetched, Failure> {
        let url = self.url(tail);
        let mut resp = self.send(method.clone(), &url).await?;
        if !resp.status().is_success() {
            return Err(status_failure(&mut resp).await);
        }
        fetched(resp, &method, limit).await
    }

    /// `GET /v2/<path>/<tail>` of a blob, as [`Conversation::fetch`], except that a redirect
    /// to another origin (a storage host, a pre-signed URL) is followed without any credential
    /// (see [`blob`]). Only for content the caller verifies by its digest.
    pub(super) async fn fetch_blob(&mut self, tail: &str, limit: u64) -> Result<Fetched, Failure> {
        let url = self.url(tail);
        let resp = self.send(Method::GET, &url).await?;
        let (mut resp, elsewhere) = blob::follow_elsewhere(self.client, self.scheme, resp).await?;
        if !resp.status().is_success() {
            let failure = status_failure(&mut resp).await;
            return Err(match failure {
                // A storage host's refusal (an expired pre-signed URL) is not the registry
                // refusing the login: the login is kept.
                Failure::Status { status, detail, .. } if elsewhere && status != 404 => {
                    Failure::Protocol(format!(
                        "blob storage host {} answered HTTP {status}: {}",
                        resp.url().origin().ascii_serialization(),
                        short(&detail)
                    ))
                }
                other => other,
            });
        }
        fetched(resp, &Method::GET, limit).await
    }

    /// Sends one request, answering a 401 challenge once.
    async fn send(&mut self, method: Method, url: &str) -> Result<Response, Failure> {
        let resp = self.request(method.clone(), url).await?;
        if resp.status() != StatusCode::UNAUTHORIZED || self.challenged {
            return Ok(resp);
        }
        self.challenged = true;
        let challenges = parse_challenges(resp.headers());
        drop(resp);
        let (auth, fresh) = self.answer(&challenges).await?;
        self.auth = auth;
        self.fresh = fresh;
        self.request(method, url).await
    }

    async fn request(&self, method: Method, url: &str) -> Result<Response, Failure> {
        let mut req = self
            .client
            .request(method, url)
            .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        req.send().await.map_err(Failure::Transport)
    }

    /// The `Authorization` answering `challenges` (Bearer preferred), if any.
    async fn answer(&self, challenges: &[Challenge]) -> Result<Answer, Failure> {
        if let Credentials::Bearer(token) = self.credentials {
            // A ready token: sent (again) as it is; nothing else to offer.
            return Ok((HeaderValue::from_str(&format!("Bearer {token}")).ok(), None));
        }
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let (token, lifetime) = self.token(bearer).await?;
            let header = HeaderValue::from_str(&format!("Bearer {token}")).ok();
            return Ok((header, Some(lifetime.mul_f64(0.9))));
        }
        if challenges.iter().any(|c| c.scheme == "basic")
            && let Credentials::Basic { username, password } = self.credentials
        {
            return Ok((basic_header(username, password), Some(BASIC_REUSE)));
        }
        Ok((None, None))
    }

    /// A token from the challenge's realm (with the login only where it may go).
    async fn token(&self, challenge: &Challenge) -> Result<(String, Duration), Failure> {
        let realm = challenge
            .param("realm")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Failure::Protocol("bearer challenge without realm".into()))?;
        let mut url = Url::parse(realm).map_err(|e| {
            Failure::Protocol(format!("invalid token realm {:?}: {e}", short(realm)))
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(Failure::Protocol(format!(
                "refusing token realm {:?}",
                short(realm)
            )));
        }
        // Only ever a pull scope for this repository, whatever the challenge asks for.
        let scope = format!("repository:{}:pull", self.path);
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &scope);
        }
        let mut req = self.client.get(url.clone());
        if let Credentials::Basic { username, password } = self.credentials {
            if self.realm_may_get_login(&url) {
                req = req.basic_auth(username, Some(password));
            } else {
                tracing::warn!(
                    registry = %self.host,
                    realm = %short(realm),
                    "token realm is not on the registry's host: asking it without the login"
                );
            }
        }
        let mut resp = req.send().await.map_err(Failure::Transport)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let detail = error_text(&mut resp).await;
            return Err(Failure::Token(format!(
                "token service answered HTTP {status}: {detail}"
            )));
        }
        let body = read_capped(&mut resp, LIMITS.token_bytes)
            .await?
            .ok_or_else(|| {
                Failure::Protocol(format!(
                    "token answer larger than the limit of {} bytes",
                    LIMITS.token_bytes
                ))
            })?;
        if !crate::json::json_depth_within(&body, LIMITS.json_depth) {
            return Err(Failure::Protocol(format!(
                "token answer nests JSON deeper than the limit of {} levels",
                LIMITS.json_depth
            )));
        }
        parse_token_response(&body).map_err(Failure::Token)
    }

    /// True when the login may go to `realm`: the registry's own host (or Docker Hub's token
    /// service for Docker Hub), and not plain http across the network from an https registry.
    fn realm_may_get_login(&self, realm: &Url) -> bool {
        let registry_host = self
            .host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(self.host.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let realm_host = match realm.host() {
            Some(Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return false,
        };
        let same = realm_host == registry_host
            || (registry_host == DOCKER_HUB_REGISTRY && realm_host == DOCKER_HUB_AUTH);
        let loopback = match realm.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        same && (realm.scheme() == "https" || self.scheme == "http" || loopback)
    }
}

/// The parts of a successful answer; its body read up to `limit` (none for `HEAD`).
async fn fetched(mut resp: Response, method: &Method, limit: u64) -> Result<Fetched, Failure> {
    let headers = resp.headers();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let content_type = text("content-type");
    let digest = header_digest(headers);
    let length = text("content-length").and_then(|n| n.parse::<u64>().ok());
    let body = if *method == Method::HEAD {
        Some(Vec::new())
    } else {
        read_capped(&mut resp, limit).await?
    };
    Ok(Fetched {
        content_type,
        digest,
        length,
        body,
    })
}

fn basic_header(username: &str, password: &str) -> Option<HeaderValue> {
    use base64::Engine;
    let raw = format!("{username}:{password}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A valid `Docker-Content-Digest` header.
fn header_digest(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?.trim();
    value
        .parse::<crate::image::reference::Digest>()
        .ok()
        .map(|d| d.to_string())
}

/// The sha256 digest of a manifest body, read up to `LIMITS.manifest_bytes` and hashed as it
/// streams (nothing is kept).
async fn read_manifest_digest(resp: &mut Response) -> Result<String, Failure> {
    let limit = LIMITS.manifest_bytes;
    let too_large = || {
        Failure::Protocol(format!(
            "manifest larger than the limit of {limit} bytes (refused unread)"
        ))
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    while let Some(chunk) = resp.chunk().await.map_err(Failure::Transport)? {
        total = total.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        if total > limit {
            return Err(too_large());
        }
        hasher.update(&chunk);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// The body if it fits in `limit` bytes; `None` if it does not (reading stops at the limit).
async fn read_capped(resp: &mut Response, limit: u64) -> Result<Option<Vec<u8>>, Failure> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Failure::Transport)? {
        if u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// At most `LIMITS.error_body_bytes` of an error body.
async fn error_body(resp: &mut Response) -> Vec<u8> {
    let limit = usize::try_from(LIMITS.error_body_bytes).unwrap_or(1024);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= limit {
            break;
        }
    }
    body
}

async fn error_text(resp: &mut Response) -> String {
    errcode_message(&error_body(resp).await)
}

/// The failure of a non-success answer, with the errcode codes of its (capped) body.
async fn status_failure(resp: &mut Response) -> Failure {
    let status = resp.status().as_u16();
    let body = error_body(resp).await;
    let codes = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("code")?.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    Failure::Status {
        status,
        codes,
        detail: errcode_message(&body),
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(plain_http: bool, domain: &str, realm: &str) -> bool {
        // The process-wide provider (as `tls::install_crypto_provider` installs it).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = Client::new();
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let talk = Conversation::new(&client, plain_http, domain, "a/b", &creds);
        talk.realm_may_get_login(&Url::parse(realm).unwrap())
    }

    #[test]
    fn logins_go_only_to_realms_on_the_registry_host() {
        assert!(may(false, "reg.example", "https://reg.example/token"));
        assert!(may(
            false,
            "reg.example:5000",
            "https://REG.example:5001/token"
        ));
        assert!(may(false, "docker.io", "https://auth.docker.io/token"));
        assert!(may(true, "127.0.0.1:5000", "http://127.0.0.1:5001/token"));
        assert!(
            may(false, "[::1]:5000", "http://[::1]:5001/token"),
            "loopback http"
        );
        assert!(
            !may(false, "reg.example", "http://reg.example/token"),
            "https registry, http realm"
        );
        assert!(!may(false, "reg.example", "https://auth.reg.example/token"));
        assert!(!may(
            false,
            "reg.example",
            "https://reg.example.evil.io/token"
        ));
        assert!(!may(false, "ghcr.io", "https://auth.docker.io/token"));
        assert!(!may(true, "127.0.0.1:5000", "http://localhost:5001/token"));
    }
}
