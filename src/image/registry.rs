//! Tag-to-digest resolution against a container registry, on reqwest (`http`: the HTTP
//! conversation, its limits and where credentials may go).
//!
//! The manifest is requested with the Accept types of an OCI index, OCI manifest, Docker manifest
//! list and Docker v2 schema 2 manifest, so the digest is the one a kubelet pulls (for a
//! multi-arch image: the index digest). Auth: anonymous, basic credentials (answered to a bearer
//! challenge on the registry's own host, or sent as HTTP Basic to the registry) or a ready bearer
//! token; custom CA bundles; plain HTTP only when asked; a timeout on every call; manifests,
//! token answers and error bodies read only up to their limits (`LIMITS`). Errors say which of
//! tag, repository, credentials, TLS, time, size or server failed.
//! With [`Resolver::with_metrics`] every registry round trip (not a digest taken from the
//! reference) is reported to a [`RegistryObserver`] (the application's metrics count it in
//! `trustgate_registry_resolutions_total{outcome}` and its latency histogram).

mod artifacts;
mod http;

pub use self::artifacts::{ArtifactError, Descriptor, SignatureFormat};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use self::http::{Conversation, Failure};
use super::credentials::Credentials;
use super::observer::RegistryObserver;
use super::reference::{Digest, ImageRef};

/// The media types a kubelet accepts, in the order the Accept header lists them.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How to reach one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryOptions {
    /// Extra CA certificates (PEM) trusted for this registry, on top of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Speak plain HTTP instead of HTTPS (local registries only).
    pub plain_http: bool,
    /// Limit for the whole resolution (auth round trips included).
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            ca_pem: None,
            plain_http: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why a reference could not be resolved to a digest.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The repository exists but has no such tag.
    #[error("tag {tag} of {repository} not found on the registry")]
    TagNotFound {
        /// `host/path` of the repository.
        repository: String,
        /// The tag asked for.
        tag: String,
    },
    /// The registry does not know the repository.
    #[error("repository {repository} not found on the registry")]
    RepositoryNotFound {
        /// `host/path` of the repository.
        repository: String,
    },
    /// The registry (or its token service) refused the request.
    #[error("registry {registry} refused access to {repository}{}: {detail}", if *.with_credentials { " with the given credentials" } else { " without credentials" })]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// `host/path` of the repository.
        repository: String,
        /// Whether credentials were sent.
        with_credentials: bool,
        /// What the server said.
        detail: String,
    },
    /// The TLS handshake failed (untrusted CA, wrong host name, ...).
    #[error("TLS failure talking to registry {registry}: {detail}")]
    Tls {
        /// Registry host.
        registry: String,
        /// Underlying error text.
        detail: String,
    },
    /// The registry did not answer in time.
    #[error("registry {registry} did not answer within {timeout:?}")]
    Timeout {
        /// Registry host.
        registry: String,
        /// The limit.
        timeout: Duration,
    },
    /// Connection refused, DNS failure and other transport errors.
    #[error("cannot reach registry {registry}: {detail}")]
    Connect {
        /// Registry host.
        registry: String,
        /// Underlying error text.
        detail: String,
    },
    /// The registry answered with an error status.
    #[error("registry {registry} answered HTTP {status}: {detail}")]
    Server {
        /// Registry host.
        registry: String,
        /// HTTP status.
        status: u16,
        /// Error text from the body.
        detail: String,
    },
    /// Anything else: bad CA bundle, a response that breaks the distribution spec, ...
    #[error("registry {registry}: {detail}")]
    Other {
        /// Registry host.
        registry: String,
        /// What went wrong.
        detail: String,
    },
}

/// Resolves image references to manifest digests. Keeps one HTTP client (with its connection
/// pool) per registry set-up, keyed by the whole set-up (never by a hash of it alone), and the
/// `Authorization` that worked per registry, repository and login until it expires (a token's
/// own lifetime; five minutes for Basic), both bounded in number.
#[derive(Clone)]
pub struct Resolver {
    clients: moka::sync::Cache<RegistryOptions, reqwest::Client>,
    /// `Authorization` values that worked, per conversation identity, until they expire.
    auths: moka::sync::Cache<AuthKey, (reqwest::header::HeaderValue, std::time::Instant)>,
    metrics: Option<Arc<dyn RegistryObserver>>,
}

/// Who an `Authorization` is for: the registry set-up, host, repository and login (the whole
/// key, never a hash of it alone).
#[derive(Clone, PartialEq, Eq, Hash)]
struct AuthKey {
    options: RegistryOptions,
    registry: String,
    path: String,
    credentials: Credentials,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("clients", &self.clients.entry_count())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(256)
    }
}

impl Resolver {
    /// A resolver keeping at most `max_clients` registry clients.
    pub fn new(max_clients: u64) -> Resolver {
        Resolver {
            clients: moka::sync::Cache::builder()
                .max_capacity(max_clients)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            auths: moka::sync::Cache::builder()
                .max_capacity(max_clients.saturating_mul(16))
                .time_to_live(Duration::from_secs(3600))
                .build(),
            metrics: None,
        }
    }

    /// Reports every resolution that asks the registry to `metrics` (the application's
    /// metrics count them in `registry_resolutions` and `registry_duration`).
    pub fn with_metrics(mut self, metrics: Arc<dyn RegistryObserver>) -> Resolver {
        self.metrics = Some(metrics);
        self
    }

    /// The digest of `image`: the reference's own digest when it has one, otherwise the digest
    /// the registry serves for its tag (`latest` when the reference names none).
    pub async fn resolve(
        &self,
        image: &ImageRef,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Digest, RegistryError> {
        if let Some(d) = image.digest() {
            return Ok(d.clone());
        }
        let started = tokio::time::Instant::now();
        let result = self.ask_registry(image, options, credentials).await;
        if let Some(m) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => error_label(e),
            };
            m.resolution_finished(outcome, started.elapsed());
        }
        result
    }

    /// The key of a conversation about `image` and the `Authorization` that last worked for
    /// it, if it has not expired.
    fn cached_auth(
        &self,
        image: &ImageRef,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> (AuthKey, Option<reqwest::header::HeaderValue>) {
        let key = AuthKey {
            options: options.clone(),
            registry: image.domain().to_string(),
            path: image.path().to_string(),
            credentials: credentials.clone(),
        };
        let cached = self
            .auths
            .get(&key)
            .filter(|(_, until)| std::time::Instant::now() < *until)
            .map(|(auth, _)| auth);
        (key, cached)
    }

    /// After a conversation: forgets the kept `Authorization` when the registry `refused` it,
    /// else keeps the one `obtained` (with how long it stays fresh), if any.
    fn remember_auth(
        &self,
        key: AuthKey,
        refused: bool,
        obtained: Option<(reqwest::header::HeaderValue, Duration)>,
    ) {
        match obtained {
            _ if refused => self.auths.invalidate(&key),
            Some((auth, fresh)) => {
                self.auths
                    .insert(key, (auth, std::time::Instant::now() + fresh));
            }
            None => {}
        }
    }

    async fn ask_registry(
        &self,
        image: &ImageRef,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Digest, RegistryError> {
        let registry = image.domain().to_string();
        let tag = image.tag_or_latest().unwrap_or("latest").to_string();
        let client = self.client(&registry, options)?;
        let ctx = Ctx {
            registry: &registry,
            repository: image.repository(),
            tag: &tag,
            with_credentials: !credentials.is_anonymous(),
            timeout: options.timeout,
        };
        let (key, cached) = self.cached_auth(image, options, credentials);
        let mut talk = Conversation::new(
            &client,
            options.plain_http,
            &registry,
            image.path(),
            credentials,
        )
        .with_cached(cached);
        let attempt = async {
            match talk.manifest_digest(&tag).await {
                Ok(d) => Ok(d),
                Err(e) => match ctx.classify(e) {
                    // distribution answers MANIFEST_UNKNOWN for a missing repository too; its tag
                    // list tells the two apart (NAME_UNKNOWN).
                    RegistryError::TagNotFound { .. } => {
                        Err(match talk.repository_status().await {
                            Err(e) => match ctx.classify(e) {
                                not_found @ RegistryError::RepositoryNotFound { .. } => not_found,
                                _ => ctx.tag_not_found(),
                            },
                            Ok(()) => ctx.tag_not_found(),
                        })
                    }
                    other => Err(other),
                },
            }
        };
        let outcome = tokio::time::timeout(options.timeout, attempt).await;
        let refused = matches!(outcome, Ok(Err(RegistryError::Unauthorized { .. })));
        self.remember_auth(key, refused, talk.obtained());
        let digest = match outcome {
            Err(_) => return Err(ctx.timeout()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(d)) => d,
        };
        Digest::from_str(&digest).map_err(|e| RegistryError::Other {
            registry: registry.clone(),
            detail: format!("registry sent an invalid digest {digest:?}: {e}"),
        })
    }

    fn client(
        &self,
        registry: &str,
        options: &RegistryOptions,
    ) -> Result<reqwest::Client, RegistryError> {
        if let Some(c) = self.clients.get(options) {
            return Ok(c);
        }
        let client = build_client(registry, options)?;
        self.clients.insert(options.clone(), client.clone());
        Ok(client)
    }
}

/// A short stable label for an error, for logs and metrics.
pub fn error_label(e: &RegistryError) -> &'static str {
    match e {
        RegistryError::TagNotFound { .. } => "tag_not_found",
        RegistryError::RepositoryNotFound { .. } => "repository_not_found",
        RegistryError::Unauthorized { .. } => "unauthorized",
        RegistryError::Tls { .. } => "tls",
        RegistryError::Timeout { .. } => "timeout",
        RegistryError::Connect { .. } => "connect",
        RegistryError::Server { .. } => "server_error",
        RegistryError::Other { .. } => "other",
    }
}

fn build_client(
    registry: &str,
    options: &RegistryOptions,
) -> Result<reqwest::Client, RegistryError> {
    let bad_ca = |detail: String| RegistryError::Other {
        registry: registry.to_string(),
        detail: format!("bad registry CA bundle: {detail}"),
    };
    let extra = match &options.ca_pem {
        Some(pem) => crate::pem::parse_pem_bundle(pem).map_err(|e| bad_ca(e.to_string()))?,
        None => Vec::new(),
    };
    let tls = crate::roots::client_config(&extra).map_err(|e| bad_ca(e.to_string()))?;
    http::build_client(tls, options.timeout).map_err(|e| RegistryError::Other {
        registry: registry.to_string(),
        detail: format!("cannot build registry client: {}", error_chain(&e)),
    })
}

struct Ctx<'a> {
    registry: &'a str,
    repository: String,
    tag: &'a str,
    with_credentials: bool,
    timeout: Duration,
}

impl Ctx<'_> {
    fn timeout(&self) -> RegistryError {
        RegistryError::Timeout {
            registry: self.registry.to_string(),
            timeout: self.timeout,
        }
    }

    fn tag_not_found(&self) -> RegistryError {
        RegistryError::TagNotFound {
            repository: self.repository.clone(),
            tag: self.tag.to_string(),
        }
    }

    fn unauthorized(&self, detail: String) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.to_string(),
            repository: self.repository.clone(),
            with_credentials: self.with_credentials,
            detail,
        }
    }

    fn classify(&self, e: Failure) -> RegistryError {
        let registry = self.registry.to_string();
        match e {
            Failure::Transport(err) => self.classify_transport(&err),
            Failure::Token(detail) => {
                self.unauthorized(format!("token service: {}", first_line(&detail)))
            }
            Failure::Protocol(detail) => RegistryError::Other { registry, detail },
            Failure::Status {
                status,
                codes,
                detail,
            } => {
                let has = |c: &str| codes.iter().any(|x| x == c);
                if has("NAME_UNKNOWN") {
                    RegistryError::RepositoryNotFound {
                        repository: self.repository.clone(),
                    }
                } else if has("MANIFEST_UNKNOWN") || has("NOT_FOUND") || status == 404 {
                    self.tag_not_found()
                } else if has("UNAUTHORIZED") || has("DENIED") || status == 401 || status == 403 {
                    self.unauthorized(if detail.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        detail
                    })
                } else {
                    RegistryError::Server {
                        registry,
                        status,
                        detail: first_line(&detail),
                    }
                }
            }
        }
    }

    fn classify_transport(&self, err: &reqwest::Error) -> RegistryError {
        let registry = self.registry.to_string();
        let chain = error_chain(err);
        if err.is_timeout() || chain.contains("timed out") {
            return self.timeout();
        }
        if is_tls_error(err) {
            return RegistryError::Tls {
                registry,
                detail: chain,
            };
        }
        RegistryError::Connect {
            registry,
            detail: chain,
        }
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}

/// The error and all its sources, joined with ": ".
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// True when a transport error was caused by TLS (handshake, certificate verification).
pub(crate) fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        let s = e.to_string().to_ascii_lowercase();
        if s.contains("certificate") || s.contains("tls") || s.contains("handshake") {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_types_cover_indexes_and_manifests() {
        assert!(MANIFEST_MEDIA_TYPES.contains(&"application/vnd.oci.image.index.v1+json"));
        assert!(
            MANIFEST_MEDIA_TYPES
                .contains(&"application/vnd.docker.distribution.manifest.list.v2+json")
        );
    }

    #[tokio::test]
    async fn digest_references_are_used_as_is() {
        let r = Resolver::default();
        let d = "sha256:".to_string() + &"ab".repeat(32);
        // Unroutable registry: never contacted because the digest is in the reference.
        let image = ImageRef::parse(&format!("127.0.0.1:1/x/y@{d}")).unwrap();
        let got = r
            .resolve(&image, &RegistryOptions::default(), &Credentials::Anonymous)
            .await
            .unwrap();
        assert_eq!(got.to_string(), d);
    }

    #[tokio::test]
    async fn bad_ca_bundle_is_reported() {
        let r = Resolver::default();
        let image = ImageRef::parse("127.0.0.1:1/x/y:v1").unwrap();
        let opts = RegistryOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..RegistryOptions::default()
        };
        let err = r
            .resolve(&image, &opts, &Credentials::Anonymous)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CA bundle"), "{err}");
    }

    /// Records what a [`Resolver`] reports.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<String>>);

    impl RegistryObserver for Recorder {
        fn resolution_finished(&self, outcome: &str, _elapsed: Duration) {
            self.0.lock().unwrap().push(outcome.to_string());
        }
    }

    #[tokio::test]
    async fn registry_round_trips_are_reported() {
        let seen = Arc::new(Recorder::default());
        let r = Resolver::default().with_metrics(seen.clone());
        let d = "sha256:".to_string() + &"ab".repeat(32);
        let pinned = ImageRef::parse(&format!("127.0.0.1:1/x/y@{d}")).unwrap();
        r.resolve(
            &pinned,
            &RegistryOptions::default(),
            &Credentials::Anonymous,
        )
        .await
        .unwrap();
        let opts = RegistryOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..RegistryOptions::default()
        };
        let tagged = ImageRef::parse("127.0.0.1:1/x/y:v1").unwrap();
        assert!(
            r.resolve(&tagged, &opts, &Credentials::Anonymous)
                .await
                .is_err()
        );
        // A pinned digest is not a resolution: only the failed one is reported.
        assert_eq!(*seen.0.lock().unwrap(), vec!["other".to_string()]);
    }
}
