//! epigrid's HTTP face: the JSON API under `/api/v1`, the probes, and the
//! layers every request passes (body limit, timeout, tracing). Handlers are
//! thin; the rules live in `epigrid-service`.

pub mod api;
pub mod connection_cap;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod field_api;
pub mod i18n;
pub mod multipart;
pub mod openapi;
pub mod pages;
pub mod public_api;
pub mod refusal_pause;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use epigrid_service::Service;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted by the API (imports will get their own).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer than this is cut off with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Only our own scripts, styles and images; no inline script or style, no
/// plugins, no framing, forms post only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Service,
    /// Mark cookies `Secure` (when served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// The bearer token `/metrics` asks for; without one it is not served.
    pub metrics_token: Option<MetricsToken>,
}

/// The operations figures' token: shown nowhere, compared in constant time.
#[derive(Clone)]
pub struct MetricsToken(std::sync::Arc<str>);

impl MetricsToken {
    /// `None` for an empty token: an empty `Bearer` must not open the figures.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self(token.into()))
    }

    fn admits(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::routes().merge(public_api::staff_routes()))
        .merge(pages::routes())
        .merge(pages::selfservice::routes(&state))
        .route(openapi::DOCUMENT_PATH, get(openapi::openapi_json))
        .route("/api/docs", get(pages::api_docs::show))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // One layer made of all of them, so each route is wrapped (and its
        // service cloned per request) once rather than once per layer. The
        // first listed is the outermost.
        .layer(
            ServiceBuilder::new()
                // Every response carries the security headers, errors and
                // assets included.
                .map_response(security_headers)
                // Counted and timed for `/metrics`, whatever answers
                // (a handler, the timeout, the CSRF check).
                .layer(axum::middleware::from_fn(staff_figures))
                // Spans carry method and path only: query strings may hold
                // personal data and never reach the log.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &axum::http::Request<_>| {
                            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                        })
                        .on_failure(log_failure),
                )
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::protect)),
        )
        // Outside the stack above: the resident routes carry their own
        // (`public_api::resident_routes` says what they skip, and why).
        .merge(public_api::resident_routes(&state))
        .with_state(state)
}

/// Counts and times a staff request for `/metrics` (the resident routes
/// have the intake's figures instead).
async fn staff_figures(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let figures = epigrid_service::metrics::figures();
    let _in_flight = figures.staff_request_started();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    figures.staff_request_answered(response.status().as_u16(), started.elapsed());
    response
}

/// The headers every response carries. A page that sets a stricter
/// `Referrer-Policy` (`no-referrer`) keeps it.
pub(crate) fn security_headers<B>(
    mut response: axum::http::Response<B>,
) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// A server error is logged, except a 503: under a storm nearly every
/// answer is the intake's deliberate refusal, and an error line for each
/// would cost more than the refusal itself.
fn log_failure(
    failure: tower_http::classify::ServerErrorsFailureClass,
    latency: Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    if matches!(failure, ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE)) {
        return;
    }
    tracing::error!(classification = %failure, latency_ms = latency.as_millis(), "response failed");
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain", example = "ok"))
)]
async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    summary = "Readiness",
    responses(
        (status = 200, description = "The store answers", body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "The store does not answer", body = String, content_type = "text/plain", example = "store unavailable"),
    )
)]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
    }
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    summary = "Operations figures",
    description = "The intake's submissions, batches, commit times and queue, the resident \
        routes' refusals and the connections, in the Prometheus text format (OpenMetrics). \
        Served only when the `metrics_token` setting is set, to callers that send it as \
        `Authorization: Bearer`. No figure names a resident, a household or an address.",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The figures", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "No token, or not the configured one"),
        (status = 404, description = "No `metrics_token` is configured"),
    )
)]
async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let Some(token) = &state.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token.admits(given.trim()) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        state.service.metrics_text().await,
    )
        .into_response()
}

/// The process's tokio runtime: one worker thread fewer than the machine
/// has cores (at least one), unless `TOKIO_WORKER_THREADS` says otherwise.
///
/// The intake writer runs on a thread of its own (`epigrid_service`'s
/// intake), and under load it keeps most of a core busy: its commits are
/// system calls (the WAL's writes and `fdatasync`), one after another. With
/// a worker on every core as well, the workers and the writer took turns at
/// the same cores, and each turn was a context switch and a cold cache. On
/// the 2-core bench machine one worker served 13–17 % more reports a second
/// at 256 connections and as many at 64 on SQLite, 10 % more at both on
/// PostgreSQL, with less CPU per report (docs/PERFORMANCE.md, session 11);
/// hello-world on one worker lost 1–4 %.
pub fn serving_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // tokio reads the variable itself when no count is set.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(serving_workers(std::thread::available_parallelism()));
    }
    builder.enable_all().build()
}

/// Worker threads for `cores` cores: one is left to the intake writer.
fn serving_workers(cores: std::io::Result<std::num::NonZeroUsize>) -> usize {
    cores.map_or(1, |cores| cores.get().saturating_sub(1)).max(1)
}

/// Connections waiting to be accepted, at most (the kernel caps it at
/// `net.core.somaxconn`, 4,096 on current Linux).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the server's listener with a backlog of `LISTEN_BACKLOG` rather
/// than tokio's 1,024. In a burst of new connections (a storm, or every
/// phone reconnecting after a network blip) a full accept queue drops the
/// handshake's last packet, and the client's request then waits for a
/// retransmission: 200 ms at least, which was the p99 of refusals under
/// the bench's storm of 2,560 connections (docs/PERFORMANCE.md).
pub async fn bind(address: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last_error = None;
    for address in tokio::net::lookup_host(address).await? {
        let socket = match address {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As `TcpListener::bind` does: a restart can bind at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// Serves `router` on `listener` until `shutdown` resolves.
///
/// At most `max_connections` are served at once; beyond, a new connection
/// is answered 503 with `Retry-After` and held until a place frees, its
/// retries refused at a slow pace (`connection_cap`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // `tap_io` only for its `ConnectInfo<SocketAddr>`, which axum provides
    // for any listener through it.
    let listener = connection_cap::CappedListener::new(listener, max_connections).tap_io(|_| {});
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Serves over HTTPS with rustls, for offices without a reverse proxy.
/// Session cookies are then always `Secure`. At most `max_connections` are
/// open at once, as with `serve` (`connection_cap::CappedAcceptor`).
pub async fn serve_tls(
    listener: std::net::TcpListener,
    mut state: AppState,
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_pem, key_pem).await?;
    state.secure_cookies = true;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let acceptor = connection_cap::CappedAcceptor::new(config.get_inner(), max_connections);
    axum_server::from_tcp(listener)?.acceptor(acceptor).handle(handle).serve(app).await
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::serving_workers;

    #[test]
    fn the_serving_runtime_leaves_one_core_to_the_intake_writer() {
        let cores = |n| Ok(NonZeroUsize::new(n).expect("non-zero"));
        assert_eq!(serving_workers(cores(1)), 1);
        assert_eq!(serving_workers(cores(2)), 1);
        assert_eq!(serving_workers(cores(8)), 7);
        assert_eq!(serving_workers(Err(std::io::Error::other("unknown"))), 1);
    }
}
