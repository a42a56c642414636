//! The HTTP `MetadataSource` for a real Notary v1 server.
//!
//! `HttpSource` fetches `GET {url}/v2/{gun}/_trust/tuf/{file}` (GUN verbatim, slashes not
//! encoded) and returns the raw body bytes, never requiring a content type (notary-server sends
//! none, Go sniffs `text/plain`). Bodies are streamed and capped at `max_len`: a
//! `Content-Length` above the cap is refused before reading, and reading stops as soon as more
//! than `max_len` bytes arrived.
//!
//! Auth works as the docker/notary client does (docker/distribution's token flow):
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
//! Warming ([`MetadataSource::warm`]): `GET {url}/_notary_server/health` sent on several
//! connections at once (no credentials, body read up to 4 KiB and dropped), so the pool holds
//! open, TLS-established connections before the first review needs them.
//!
//! Every fetch runs in a `notary.fetch` debug span (url, status, bytes, elapsed, outcome) and ends
//! in exactly one call to `observe`, the hook for metrics (role, outcome, latency): with
//! [`HttpSource::with_metrics`] it also reports to a [`FetchObserver`] (the application counts
//! `trustgate_notary_fetches_total{role,outcome}` and the fetch latency histogram).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode, redirect};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, field};
use url::{Host, Url};

use super::source::{FetchError, FetchObserver, MetaRequest, MetadataSource};
use crate::limits::LIMITS;

pub(crate) mod auth;
#[allow(clippy::wildcard_imports)]
use auth::*;

mod exchange;

use exchange::same_origin_redirects;

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
    metrics: Option<Arc<dyn FetchObserver>>,
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
        let tls_err = |detail: String| FetchError::Tls {
            server: server.clone(),
            detail,
        };
        let ders = match &cfg.ca_pem {
            Some(pem) => crate::pem::parse_pem_bundle(pem).map_err(|e| tls_err(e.to_string()))?,
            None => Vec::new(),
        };
        let tls = crate::roots::client_config(&ders)
            .map_err(|e| tls_err(format!("bad CA certificate: {e}")))?;
        builder = builder.tls_backend_preconfigured(tls);
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

    /// Reports every finished fetch to `metrics` (the application's metrics count them in
    /// `notary_fetches` and `notary_fetch_duration`).
    pub fn with_metrics(mut self, metrics: Arc<dyn FetchObserver>) -> HttpSource {
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

    async fn warm(&self, connections: usize) {
        let inner = &self.inner;
        let mut url = inner.base.clone();
        url.set_path(&format!("{}/_notary_server/health", inner.base_path));
        let one = |url: Url| async move {
            let Ok(mut response) = inner.client.get(url).send().await else {
                return;
            };
            let mut read = 0;
            while read < WARM_BODY_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
        };
        futures::future::join_all((0..connections).map(|_| one(url.clone()))).await;
        debug!(server = %inner.server, connections, "notary connections warmed");
    }
}

/// The most of a health answer read while warming (the rest is dropped with its connection).
const WARM_BODY_BYTES: usize = 4096;

/// The single reporting point of a finished fetch: a debug event, and the metrics when set.
/// `role` is a bounded label from [`role_label`], `outcome` one from [`error_label`] or "ok".
fn observe(
    metrics: Option<&dyn FetchObserver>,
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
        m.fetch_finished(role, outcome, elapsed);
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

#[cfg(test)]
mod tests;
