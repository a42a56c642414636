//! The HTTP `MetadataSource` for a real Notary v1 server.
//!
//! `HttpSource` fetches `GET {url}/v2/{gun}/_trust/tuf/{file}` (GUN verbatim, slashes not
//! encoded) and returns the raw body bytes, never requiring a content type (notary-server sends
//! none, Go sniffs `text/plain`). Bodies are streamed and capped at `max_len`: a
//! `Content-Length` above the cap is refused before reading, and reading stops as soon as more
//! than `max_len` bytes arrived.
//!
//! Auth works as the docker/notary client does (notary-protocol.md §1.3):
//! - On a 401 with `WWW-Authenticate: Bearer realm=..,service=..,scope=..` the source asks the
//!   realm for a token (`GET realm?service=..&scope=repository:<gun>:pull[&account=<user>]`, HTTP
//!   Basic when credentials are configured), prefers `access_token` over `token`, caches it per
//!   (realm, service, scope) until shortly before `expires_in` (default 60 s), and retries once
//!   with `Authorization: Bearer`. It remembers the server's challenge, so later fetches send a
//!   (cached or freshly fetched) token straight away instead of collecting a 401 first.
//! - The token scope is always pull-only: a challenge's scope is used verbatim when it is exactly
//!   `repository:<gun>:pull`; anything else (another repository, `push,pull`, the catalog scope)
//!   is replaced by `repository:<gun>:pull`. A read-only client never asks for push.
//! - On `WWW-Authenticate: Basic` the configured credentials are sent to the notary server.
//! - Credentials only ever go to the notary server (Basic challenge) or to the realm it announced
//!   (token request). Redirects are followed only within the same origin (scheme, host, port).
//! - Plain-http realms: allowed when the notary URL itself is `http://` (the operator already
//!   accepted plain http) or when the realm host is loopback (`127.0.0.0/8`, `::1`, `localhost`:
//!   the traffic never leaves the machine). An `https` notary server announcing a plain-http realm
//!   elsewhere is refused with `FetchError::Protocol`, so credentials never cross the network in
//!   clear text.
//!
//! Timeouts: `NotaryConfig::timeout` bounds the TCP connect and each HTTP exchange including its
//! body (reqwest). A whole fetch makes at most four exchanges (token, request, fresh token,
//! retry), and a `tokio::time::timeout` of four times the limit is the backstop around it.
//!
//! Every fetch runs in a `notary.fetch` debug span (url, status, bytes, elapsed, outcome) and ends
//! in exactly one call to [`observe`], the hook for metrics (role, outcome, latency): with
//! [`HttpSource::with_metrics`] it also counts `trustgate_notary_fetches_total{role,outcome}` and
//! the fetch latency histogram.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode, redirect};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, field};
use url::{Host, Url};

use super::source::{FetchError, MetaRequest, MetadataSource};
use crate::audit::metrics::Metrics;
use crate::limits::LIMITS;

pub(crate) mod auth;
#[allow(clippy::wildcard_imports)]
use auth::*;

/// Default per-request timeout for [`NotaryConfig::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted `NotaryConfig::timeout` (deadline arithmetic stays far from overflow).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Token lifetime when the token service gives no `expires_in` (docker's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Upper bound on how long a token is cached, whatever the service claims.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A cached token is dropped this long before it expires (at most half its lifetime).
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Bound on the token cache (hostile image names must not grow memory without limit).
const MAX_CACHED_TOKENS: usize = 512;
/// Same-origin redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// HTTP exchanges one fetch may make: token, request, fresh token, retry.
const MAX_EXCHANGES: u32 = 4;

/// How to reach one Notary server.
#[derive(Clone)]
pub struct NotaryConfig {
    /// `https://host:port` (or `http://`), optionally with a path prefix.
    pub url: String,
    /// Extra CA certificates (PEM bundle) trusted for the notary server and its token service,
    /// in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Username and password for the token service (or a Basic challenge).
    pub credentials: Option<(String, String)>,
    /// Limit for connecting and for each whole request including its body.
    pub timeout: Duration,
}

impl NotaryConfig {
    /// A config for `url` without extra CA or credentials and with [`DEFAULT_TIMEOUT`].
    pub fn new(url: impl Into<String>) -> Self {
        NotaryConfig {
            url: url.into(),
            ca_pem: None,
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for NotaryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotaryConfig")
            .field("url", &self.url)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|p| format!("{} bytes", p.len())),
            )
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(u, _)| format!("{u}:<redacted>")),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The `MetadataSource` for a real Notary server. Cheap to clone (shares connections and tokens).
#[derive(Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
    /// Where finished fetches are counted (none: only the debug event).
    metrics: Option<Arc<Metrics>>,
}

struct Inner {
    /// Normalised server URL (no trailing slash), used in errors and as `server()`.
    server: String,
    base: Url,
    /// Path prefix of `base` without trailing slash ("" for none).
    base_path: String,
    client: Client,
    credentials: Option<(String, String)>,
    timeout: Duration,
    has_ca: bool,
    /// What the server asked for last time, so later fetches authenticate up front.
    hint: Mutex<Option<AuthHint>>,
    /// Bearer tokens per (realm, service, scope); the async lock coalesces concurrent refreshes.
    tokens: Mutex<HashMap<TokenKey, TokenSlot>>,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

#[derive(Clone, Debug)]
enum AuthHint {
    Bearer { realm: String, service: String },
    Basic,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scope: String,
}

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// The `Authorization` a request carries.
enum Auth {
    Bearer(String),
    Basic,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("HttpSource")
            .field("server", &i.server)
            .field("timeout", &i.timeout)
            .field("custom_ca", &i.has_ca)
            .field(
                "credentials",
                &i.credentials
                    .as_ref()
                    .map(|(u, _)| format!("{u}:<redacted>")),
            )
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// Validates the config and builds the HTTP client. Errors: a bad URL or a timeout outside
    /// (0, 1 h] (`Protocol`), an unusable CA bundle (`Tls`).
    pub fn new(cfg: NotaryConfig) -> Result<HttpSource, FetchError> {
        let bad = |detail: String| FetchError::Protocol {
            server: cfg.url.clone(),
            detail,
        };
        let base = Url::parse(&cfg.url).map_err(|e| bad(format!("invalid notary URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad(
                "notary URL must be http:// or https:// with a host".into()
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(bad(
                "notary URL must not carry credentials; use `credentials`".into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("notary URL must not have a query or fragment".into()));
        }
        if cfg.timeout.is_zero() || cfg.timeout > MAX_TIMEOUT {
            return Err(bad(
                "timeout must be greater than zero and at most one hour".into(),
            ));
        }
        let server = base.as_str().trim_end_matches('/').to_string();
        let base_path = base.path().trim_end_matches('/').to_string();

        let mut builder = Client::builder()
            .user_agent(concat!("trustgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .redirect(same_origin_redirects())
            // reqwest's default since 0.9; stated so a default change cannot bring Nagle stalls back.
            .tcp_nodelay(true);
        if let Some(pem) = &cfg.ca_pem {
            let tls_err = |detail: String| FetchError::Tls {
                server: server.clone(),
                detail,
            };
            let ders = crate::pem::parse_pem_bundle(pem).map_err(|e| tls_err(e.to_string()))?;
            let certs = ders
                .iter()
                .map(|der| reqwest::Certificate::from_der(der.as_ref()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err(format!("bad CA certificate: {e}")))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| FetchError::Tls {
            server: server.clone(),
            detail: format!("cannot build HTTP client: {}", error_chain(&e)),
        })?;
        Ok(HttpSource {
            inner: Arc::new(Inner {
                server,
                base,
                base_path,
                client,
                credentials: cfg.credentials,
                timeout: cfg.timeout,
                has_ca: cfg.ca_pem.is_some(),
                hint: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
            }),
            metrics: None,
        })
    }

    /// Counts every finished fetch in `metrics` (`notary_fetches`, `notary_fetch_duration`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> HttpSource {
        self.metrics = Some(metrics);
        self
    }

    /// The URL a request maps to (after validating the GUN and file name).
    pub fn url_for(&self, gun: &str, req: &MetaRequest) -> Result<Url, FetchError> {
        self.inner.file_url(gun, &req.file_name())
    }
}

impl MetadataSource for HttpSource {
    async fn fetch(
        &self,
        gun: &str,
        req: &MetaRequest,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let inner = &self.inner;
        let file = req.file_name();
        let role = role_label(req.role());
        let started = Instant::now();
        let span = debug_span!(
            "notary.fetch",
            url = field::Empty,
            role,
            status = field::Empty,
            bytes = field::Empty,
            elapsed_ms = field::Empty,
            outcome = field::Empty,
        );
        let result = match inner.file_url(gun, &file) {
            Err(e) => Err(e),
            Ok(url) => {
                span.record("url", url.as_str());
                let limit = inner.timeout.saturating_mul(MAX_EXCHANGES);
                let work = inner
                    .fetch_url(gun, &file, url, max_len)
                    .instrument(span.clone());
                match tokio::time::timeout(limit, work).await {
                    Ok(r) => r,
                    Err(_) => Err(FetchError::Timeout {
                        server: inner.server.clone(),
                        file: file.clone(),
                        timeout: limit,
                    }),
                }
            }
        };
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => error_label(e),
        };
        span.record("elapsed_ms", elapsed.as_secs_f64() * 1e3);
        span.record("outcome", outcome);
        if let Ok(body) = &result {
            span.record("bytes", body.len());
        }
        span.in_scope(|| observe(self.metrics.as_deref(), role, outcome, elapsed));
        result
    }

    fn server(&self) -> &str {
        &self.inner.server
    }
}

/// The single reporting point of a finished fetch: a debug event, and the metrics when set.
/// `role` is a bounded label from [`role_label`], `outcome` one from [`error_label`] or "ok".
fn observe(
    metrics: Option<&Metrics>,
    role: &'static str,
    outcome: &'static str,
    elapsed: Duration,
) {
    debug!(
        role,
        outcome,
        elapsed_ms = elapsed.as_secs_f64() * 1e3,
        "notary fetch finished"
    );
    if let Some(m) = metrics {
        m.notary_fetch(role, outcome, elapsed);
    }
}

/// A bounded label for a role (delegation names come from metadata and are not bounded).
pub fn role_label(role: &str) -> &'static str {
    match role {
        "root" => "root",
        "targets" => "targets",
        "snapshot" => "snapshot",
        "timestamp" => "timestamp",
        _ => "delegation",
    }
}

/// A short stable label for an error, for logs and metrics.
pub fn error_label(e: &FetchError) -> &'static str {
    match e {
        FetchError::NotFound { .. } => "not_found",
        FetchError::Unauthorized { .. } => "unauthorized",
        FetchError::Server { .. } => "server_error",
        FetchError::Timeout { .. } => "timeout",
        FetchError::TooLarge { .. } => "too_large",
        FetchError::Tls { .. } => "tls",
        FetchError::Connect { .. } => "connect",
        FetchError::Protocol { .. } => "protocol",
    }
}

impl Inner {
    fn file_url(&self, gun: &str, file: &str) -> Result<Url, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        check_path_part(gun)
            .map_err(|why| protocol(format!("refusing GUN {:?}: {why}", short(gun))))?;
        check_path_part(file)
            .map_err(|why| protocol(format!("refusing file name {:?}: {why}", short(file))))?;
        let path = format!("{}/v2/{gun}/_trust/tuf/{file}", self.base_path);
        let mut url = self.base.clone();
        url.set_path(&path);
        if url.path() != path {
            return Err(protocol(format!("path {path:?} cannot be sent verbatim")));
        }
        Ok(url)
    }

    async fn fetch_url(
        &self,
        gun: &str,
        file: &str,
        url: Url,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let mut auth = self.upfront_auth(gun, file).await?;
        let mut retried = false;
        loop {
            let mut resp = self
                .send(self.client.get(url.clone()), auth.as_ref(), file)
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                let stale = match &auth {
                    Some(Auth::Bearer(t)) => Some(t.clone()),
                    _ => None,
                };
                let challenges = parse_challenges(resp.headers());
                let message = self.error_message(&mut resp).await;
                auth = Some(
                    self.answer(gun, file, &challenges, stale.as_deref(), &message)
                        .await?,
                );
                continue;
            }
            // Recorded once, for the final answer (a challenge is logged by `answer`).
            tracing::Span::current().record("status", status.as_u16());
            if status.is_success() {
                return self.read_capped(&mut resp, file, max_len).await;
            }
            let message = self.error_message(&mut resp).await;
            return Err(match status {
                StatusCode::NOT_FOUND => FetchError::NotFound {
                    server: self.server.clone(),
                    gun: gun.to_string(),
                    file: file.to_string(),
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => self.unauthorized(gun, message),
                _ => FetchError::Server {
                    server: self.server.clone(),
                    file: file.to_string(),
                    status: status.as_u16(),
                },
            });
        }
    }

    /// Authorization to send on the first request, from what the server asked for before.
    async fn upfront_auth(&self, gun: &str, file: &str) -> Result<Option<Auth>, FetchError> {
        let hint = self
            .hint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match hint {
            None => Ok(None),
            Some(AuthHint::Basic) => Ok(self.credentials.as_ref().map(|_| Auth::Basic)),
            Some(AuthHint::Bearer { realm, service }) => {
                let key = TokenKey {
                    realm,
                    service,
                    scope: pull_scope(gun),
                };
                Ok(Some(Auth::Bearer(
                    self.bearer_token(&key, file, None).await?,
                )))
            }
        }
    }

    /// Answers a 401 challenge with the authorization for the one retry.
    async fn answer(
        &self,
        gun: &str,
        file: &str,
        challenges: &[Challenge],
        stale: Option<&str>,
        message: &str,
    ) -> Result<Auth, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        if let Some(ch) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = ch.param("realm").filter(|r| !r.is_empty());
            let realm = realm.ok_or_else(|| protocol("bearer challenge without realm".into()))?;
            let realm = self.check_realm(realm).map_err(protocol)?;
            let service = ch.param("service").unwrap_or_default().to_string();
            let scope = choose_scope(ch.param("scope"), gun);
            debug!(realm = realm.as_str(), service, scope, "bearer challenge");
            let hint = AuthHint::Bearer {
                realm: realm.to_string(),
                service: service.clone(),
            };
            *self.hint.lock().unwrap_or_else(PoisonError::into_inner) = Some(hint);
            let key = TokenKey {
                realm: realm.into(),
                service,
                scope,
            };
            return Ok(Auth::Bearer(self.bearer_token(&key, file, stale).await?));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            *self.hint.lock().unwrap_or_else(PoisonError::into_inner) = Some(AuthHint::Basic);
            if self.credentials.is_none() {
                return Err(self.unauthorized(
                    gun,
                    "server requires HTTP Basic auth; no credentials configured".into(),
                ));
            }
            return Ok(Auth::Basic);
        }
        let detail = if message.is_empty() {
            "HTTP 401 without a usable challenge".into()
        } else {
            message.to_string()
        };
        Err(self.unauthorized(gun, detail))
    }

    /// Accepts a realm URL: http(s), no userinfo or fragment, plain http only as documented above.
    fn check_realm(&self, realm: &str) -> Result<Url, String> {
        let shown = short(realm);
        let url = Url::parse(realm).map_err(|e| format!("invalid token realm {shown:?}: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(format!(
                "refusing token realm {shown:?} with userinfo or fragment"
            ));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.base.scheme() == "http" || is_loopback(&url) => Ok(url),
            "http" => Err(format!(
                "refusing plain-http token realm {shown:?} for an https notary server"
            )),
            other => Err(format!("unsupported token realm scheme {:?}", short(other))),
        }
    }

    /// A valid token for `key` from the cache, else from the token service. `stale` is a token the
    /// server just refused: it is never handed out again.
    async fn bearer_token(
        &self,
        key: &TokenKey,
        file: &str,
        stale: Option<&str>,
    ) -> Result<String, FetchError> {
        let slot = self.token_slot(key);
        let mut cached = slot.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
            && Some(t.token.as_str()) != stale
        {
            debug!(scope = key.scope, "using cached token");
            return Ok(t.token.clone());
        }
        *cached = None;
        let fresh = self.request_token(key, file).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    fn token_slot(&self, key: &TokenKey) -> TokenSlot {
        let mut map = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= MAX_CACHED_TOKENS {
            let now = Instant::now();
            // Keep slots in use (locked) and still-valid tokens; drop the rest, then everything idle.
            map.retain(|_, s| {
                s.try_lock()
                    .map(|t| t.as_ref().is_some_and(|t| now < t.refresh_at))
                    .unwrap_or(true)
            });
            if map.len() >= MAX_CACHED_TOKENS {
                map.retain(|_, s| s.try_lock().is_err());
            }
        }
        map.entry(key.clone()).or_default().clone()
    }

    async fn request_token(&self, key: &TokenKey, file: &str) -> Result<CachedToken, FetchError> {
        let protocol = |detail: String| FetchError::Protocol {
            server: self.server.clone(),
            detail,
        };
        let mut url =
            Url::parse(&key.realm).map_err(|e| protocol(format!("invalid token realm: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if !key.service.is_empty() {
                q.append_pair("service", &key.service);
            }
            q.append_pair("scope", &key.scope);
            if let Some((user, _)) = &self.credentials {
                q.append_pair("account", user);
            }
        }
        let span = debug_span!(
            "notary.token",
            realm = key.realm,
            scope = key.scope,
            status = field::Empty
        );
        async {
            let started = Instant::now();
            let auth = self.credentials.as_ref().map(|_| Auth::Basic);
            let mut resp = self.send(self.client.get(url), auth.as_ref(), file).await?;
            let status = resp.status();
            tracing::Span::current().record("status", status.as_u16());
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = if self.credentials.is_some() {
                    "token service rejected the credentials"
                } else {
                    "token service refused anonymous access"
                };
                return Err(FetchError::Unauthorized {
                    server: self.server.clone(),
                    gun: gun_of_scope(&key.scope).to_string(),
                    detail: detail.into(),
                });
            }
            if !status.is_success() {
                return Err(protocol(format!(
                    "token service {} answered HTTP {}",
                    key.realm,
                    status.as_u16()
                )));
            }
            let body = self
                .read_capped(&mut resp, file, LIMITS.token_bytes)
                .await
                .map_err(|e| match e {
                    FetchError::TooLarge { .. } => protocol("token response too large".into()),
                    other => other,
                })?;
            let (token, lifetime) = parse_token_response(&body).map_err(protocol)?;
            let margin = TOKEN_EXPIRY_MARGIN.min(lifetime / 2);
            debug!(
                lifetime_s = lifetime.as_secs(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "token issued"
            );
            Ok(CachedToken {
                token,
                refresh_at: Instant::now() + lifetime - margin,
            })
        }
        .instrument(span)
        .await
    }

    async fn send(
        &self,
        rb: RequestBuilder,
        auth: Option<&Auth>,
        file: &str,
    ) -> Result<Response, FetchError> {
        let rb = match (auth, &self.credentials) {
            (Some(Auth::Bearer(token)), _) => rb.bearer_auth(token),
            (Some(Auth::Basic), Some((user, pass))) => rb.basic_auth(user, Some(pass)),
            _ => rb,
        };
        rb.send().await.map_err(|e| self.transport_error(file, &e))
    }

    /// Reads the body, refusing more than `max_len` bytes (by `Content-Length` before reading,
    /// and while streaming).
    async fn read_capped(
        &self,
        resp: &mut Response,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge {
            server: self.server.clone(),
            file: file.to_string(),
            limit: max_len,
        };
        let declared = resp.content_length();
        if declared.is_some_and(|n| n > max_len) {
            return Err(too_large());
        }
        let initial = declared.unwrap_or(0).min(max_len).min(1 << 20);
        let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(file, &e))?
        {
            let total = u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
            if total > max_len {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// At most 1 KiB of an error body, as "CODE: message" from an errcode JSON, else as text.
    async fn error_message(&self, resp: &mut Response) -> String {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = usize::try_from(LIMITS.error_body_bytes)
                .unwrap_or(0)
                .saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            if body.len() >= usize::try_from(LIMITS.error_body_bytes).unwrap_or(0) {
                break;
            }
        }
        errcode_message(&body)
    }

    fn unauthorized(&self, gun: &str, detail: String) -> FetchError {
        let detail = if detail.is_empty() {
            "access denied".into()
        } else {
            detail
        };
        FetchError::Unauthorized {
            server: self.server.clone(),
            gun: gun.to_string(),
            detail,
        }
    }

    fn transport_error(&self, file: &str, e: &reqwest::Error) -> FetchError {
        let server = self.server.clone();
        if e.is_timeout() {
            return FetchError::Timeout {
                server,
                file: file.to_string(),
                timeout: self.timeout,
            };
        }
        if let Some(detail) = tls_detail(e) {
            return FetchError::Tls { server, detail };
        }
        if e.is_builder() {
            return FetchError::Protocol {
                server,
                detail: format!("cannot build request: {}", error_chain(e)),
            };
        }
        FetchError::Connect {
            server,
            detail: error_chain(e),
        }
    }
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

/// At most 200 characters of a server-controlled string, for error messages.
fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// GUNs and file names go into the path verbatim, so only plain path segments are allowed:
/// visible ASCII without `?`, `#`, `%`, `\`, no `..`, no empty or `.` segments.
fn check_path_part(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 1024 {
        return Err("empty or longer than 1024 bytes");
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains whitespace, control or non-ASCII characters");
    }
    if s.contains(['?', '#', '%', '\\']) {
        return Err("contains '?', '#', '%' or '\\'");
    }
    if s.contains("..") {
        return Err("contains '..'");
    }
    if s.split('/').any(|seg| seg.is_empty() || seg == ".") {
        return Err("has an empty or '.' path segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
