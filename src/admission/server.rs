//! The HTTP side: an HTTPS listener with `POST /validate` (and `/mutate`) and a plain-HTTP admin listener with
//! `/healthz`, `/readyz` and `/metrics`, both on axum-server and drained together by one
//! [`ShutdownHandle`].
//!
//! `/validate` always answers an AdmissionReview (HTTP 200, `uid` echoed) for a well-formed
//! review. A body that is not an `admission.k8s.io` AdmissionReview with a request gets HTTP 400
//! and a JSON `Status`; a body over [`ServerConfig::max_body_bytes`] gets 413. A panic in a
//! handler (there should be none) becomes a JSON 500 instead of a dropped connection.
//!
//! [`start`] binds both listeners before returning (port 0 works: the bound addresses are in
//! [`RunningServer`]), so tests and benchmarks run the real server in-process.

use std::any::Any;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::accept::{TcpConfigAcceptor, TcpSocketConfig};
use axum_server::{Control, Handle};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use crate::tls::{ServingCert, ServingTls, ServingTlsError};

use super::review::Webhook;
use super::wire::decode;

/// Largest accepted AdmissionReview body (the API server's own request limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = crate::limits::LIMITS.review_bytes;

/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS address of `POST /validate`.
    pub listen: SocketAddr,
    /// Plain-HTTP address of `/healthz`, `/readyz` and `/metrics`.
    pub admin_listen: SocketAddr,
    /// The serving certificate.
    pub tls: ServingCert,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// CA bundle (PEM file) of mutual TLS: only callers with a client certificate from it are
    /// answered on `listen` (the admin listener is unaffected).
    pub client_ca: Option<PathBuf>,
}

impl ServerConfig {
    /// Listeners on the given addresses with the default body limit.
    pub fn new(listen: SocketAddr, admin_listen: SocketAddr, tls: ServingCert) -> ServerConfig {
        ServerConfig {
            listen,
            admin_listen,
            tls,
            max_body_bytes: MAX_BODY_BYTES,
            client_ca: None,
        }
    }

    /// Requires client certificates from the CA bundle at `path` (mutual TLS).
    #[must_use]
    pub fn with_client_ca(mut self, path: Option<PathBuf>) -> ServerConfig {
        self.client_ca = path;
        self
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
    /// The serving certificate could not be set up.
    #[error(transparent)]
    Tls(#[from] ServingTlsError),
    /// A listener failed while serving.
    #[error("{which} listener failed: {error}")]
    Serve {
        /// `webhook` or `admin`.
        which: &'static str,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
    /// A listener task ended abnormally.
    #[error("{which} listener task ended abnormally: {detail}")]
    Task {
        /// `webhook` or `admin`.
        which: &'static str,
        /// What happened.
        detail: String,
    },
}

/// Starts graceful shutdown of both listeners: no new connections, in-flight requests finish
/// (idle keep-alive connections are closed), and whatever is still open after the timeout is cut.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Control);

impl ShutdownHandle {
    /// Begins the graceful shutdown.
    pub fn graceful(&self, timeout: Duration) {
        self.0.graceful_shutdown(Some(timeout));
    }

    /// Open connections on both listeners.
    pub fn connection_count(&self) -> usize {
        self.0.connection_count()
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Bound HTTPS address.
    pub addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    /// The CA certificate PEM in self-signed mode.
    pub ca_pem: Option<String>,
    control: Control,
    _tls: ServingTls,
    webhook_task: tokio::task::JoinHandle<std::io::Result<()>>,
    admin_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// A handle that starts the graceful shutdown (clone it into a signal handler).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.control.clone())
    }

    /// Waits until both listeners have stopped (after a shutdown, or on a listener error).
    pub async fn wait(self) -> Result<(), ServerError> {
        let webhook = joined("webhook", self.webhook_task.await);
        let admin = joined("admin", self.admin_task.await);
        webhook.and(admin)
    }

    /// Graceful shutdown with `timeout`, then waits for it to finish.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), ServerError> {
        self.shutdown_handle().graceful(timeout);
        self.wait().await
    }
}

fn joined(
    which: &'static str,
    r: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ServerError::Serve { which, error }),
        Err(e) => Err(ServerError::Task {
            which,
            detail: e.to_string(),
        }),
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let listener = TcpListener::bind(addr).map_err(|error| ServerError::Bind { addr, error })?;
    listener
        .set_nonblocking(true)
        .map_err(|error| ServerError::Bind { addr, error })?;
    Ok(listener)
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|error| ServerError::Bind { addr, error })
}

/// What every accepted connection (webhook and admin) goes through before TLS and HTTP:
/// `TCP_NODELAY`, so a small response is not held back by Nagle's algorithm waiting for the
/// peer's delayed ACK (the ~40 ms stalls on keep-alive and fresh connections).
fn accepted_socket() -> TcpConfigAcceptor {
    TcpConfigAcceptor::new(TcpSocketConfig::new().nodelay(true))
}

/// Sets up TLS, binds both listeners and starts serving on the current tokio runtime.
pub async fn start(
    config: &ServerConfig,
    webhook: Arc<Webhook>,
) -> Result<RunningServer, ServerError> {
    let tls = ServingTls::start_for_clients(
        &config.tls,
        config.client_ca.as_deref(),
        Arc::clone(webhook.metrics()),
    )
    .await?;
    let listener = bind(config.listen)?;
    let admin_listener = bind(config.admin_listen)?;
    let addr = local_addr(&listener, config.listen)?;
    let admin_addr = local_addr(&admin_listener, config.admin_listen)?;
    let control = Control::new();

    let app = webhook_router(Arc::clone(&webhook), config.max_body_bytes);
    let server = axum_server::from_tcp_rustls(listener, tls.config.clone())
        .map_err(|error| ServerError::Bind {
            addr: config.listen,
            error,
        })?
        .map(|tls| tls.acceptor(accepted_socket()))
        .handle(Handle::with_control(control.clone()));
    let webhook_task = tokio::spawn(server.serve(app.into_make_service()));

    let admin = admin_router(webhook);
    let admin_server = axum_server::from_tcp(admin_listener)
        .map_err(|error| ServerError::Bind {
            addr: config.admin_listen,
            error,
        })?
        .acceptor(accepted_socket())
        .handle(Handle::with_control(control.clone()));
    let admin_task = tokio::spawn(admin_server.serve(admin.into_make_service()));

    tracing::info!(%addr, %admin_addr, "webhook listening (HTTPS POST /validate and /mutate; admin HTTP /healthz /readyz /metrics)");
    Ok(RunningServer {
        addr,
        admin_addr,
        ca_pem: tls.ca_pem.clone(),
        control,
        _tls: tls,
        webhook_task,
        admin_task,
    })
}

/// The HTTPS router: `POST /validate` and `POST /mutate`.
pub fn webhook_router(webhook: Arc<Webhook>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(webhook)
}

/// The admin router: `GET /healthz`, `/readyz`, `/metrics`.
pub fn admin_router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(webhook)
}

/// A Kubernetes-style JSON `Status` error body.
fn json_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": status.as_u16(),
        "reason": status.canonical_reason().unwrap_or("Error").replace(' ', ""),
        "message": message,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn validate(
    State(webhook): State<Arc<Webhook>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(webhook, body, false).await
}

/// `/mutate`: as `/validate`, plus the pinning patch ([`super::mutate`]).
async fn mutate(
    State(webhook): State<Arc<Webhook>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(webhook, body, true).await
}

async fn answer(webhook: Arc<Webhook>, body: Result<Bytes, BytesRejection>, pin: bool) -> Response {
    let started = Instant::now();
    let bad = |status: StatusCode, message: String| {
        webhook
            .metrics()
            .admission_request("unknown", "unknown", "error", started.elapsed());
        tracing::warn!(status = status.as_u16(), "{message}");
        json_error(status, &message)
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return bad(rejection.status(), rejection.body_text()),
    };
    let request = match decode(&body) {
        Ok(request) => request,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let encoded = if pin {
        super::mutate::encode_review(webhook.mutate(&request).await.into_review())
    } else {
        serde_json::to_vec(&webhook.review(&request).await.into_review())
    };
    match encoded {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the response: {e}"),
        ),
    }
}

async fn readyz(State(webhook): State<Arc<Webhook>>) -> Response {
    match webhook.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(webhook): State<Arc<Webhook>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        webhook.metrics().encode(),
    )
        .into_response()
}

#[cfg(test)]
mod socket_tests {
    use axum_server::accept::Accept;
    use tokio::net::{TcpListener, TcpStream};

    use super::accepted_socket;

    /// The acceptor both listeners use turns Nagle off on the accepted socket (a fresh accepted
    /// socket has it on, so this fails without the acceptor).
    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let _client = client.expect("connect");
        let (stream, _) = accepted.expect("accept");
        assert!(
            !stream.nodelay().expect("nodelay"),
            "the kernel default is Nagle on"
        );
        let (stream, ()) = accepted_socket().accept(stream, ()).await.expect("accept");
        assert!(stream.nodelay().expect("nodelay"));
    }
}
