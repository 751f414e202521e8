//! The HTTP face of zen-watcher: webhook ingestion, the Observations API, and health.
//!
//! - `POST /api/v1/ingest/{source}` takes one JSON value, a JSON array, NDJSON or YAML (by
//!   `Content-Type`), optionally gzip-compressed, so Falco's `http_output`, falcosidekick and the
//!   API server's audit webhook can point straight at it. It answers 202 with what was accepted
//!   and the errors of bad items; 400 when nothing could be read, naming the problem and where;
//!   401 without a configured bearer token, 403 with one whose scope does not allow the route
//!   ([`auth`]: `ingest` for the webhooks, `read` for every `GET`, `admin` for every other
//!   change); 404 for an unknown
//!   source, listing the known ones; 413 over the body limit (compressed or not); 415 for a
//!   content type it does not read; 429 with `Retry-After` when the pipeline's queue is full, and
//!   503 with `Retry-After` while draining. With `?ack=commit` (or `ack_commit` configured) it
//!   answers 200 only once every event is stored (or filtered, or folded into a duplicate); 500
//!   if some were dead-lettered, 504 if the commit takes longer than `ack_timeout`.
//! - `GET /api/v1/observations` (filtered by `source`, `min_severity`, `namespace`, `since`,
//!   `until`, `q`, and `state=open|resolved` for findings of watched reports; paged by `limit`
//!   and `after`), `GET /api/v1/observations/{id}`,
//!   `GET /api/v1/stats`.
//! - `GET /api/v1/audit` (paged by `limit` and `after`): administrative requests, allowed or
//!   refused, with the token's name, the method and path, the status and the time.
//! - `GET /api/v1/dead-letters` (paged by `limit` and `after`): what no sink could write, kept
//!   by zen-store; `POST /api/v1/dead-letters/replay` submits each letter's events again, waits
//!   for their commit, and removes the letter once they are stored.
//! - `GET /metrics`: the Prometheus text exposition (zen-export), behind a `read` token like the
//!   API.
//! - `GET /api/v1/meta`, `GET /api/v1/query` and `GET /api/v1/stream` (Server-Sent Events): the
//!   per-second history ([`history`]), which its recorder thread fills once a second.
//! - `GET /healthz` (alive) and `GET /readyz` (not while draining); `GET /readyz?verbose`
//!   lists the checks, and each report watcher's state (a degraded one does not fail it).
//!
//! Every answer is counted by route template and code, timed, and tracked while in flight;
//! ingestion errors are counted by category (connection, parse, permission, rate_limit).
//!
//! The only crate that knows axum. It holds no logic of its own beyond HTTP: reading is
//! zen-model's, processing zen-pipeline's, storage zen-store's, history zen-history's.

pub mod auth;
pub mod history;
pub mod insights;
pub mod limits;
pub mod listen;
mod page;
mod report;
pub mod tls;

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zen_model::{Context, Format, NormalizeError, Observation, Severity, Syntax, Timestamp};
use zen_pipeline::{Ack, AckOutcome, Pipeline, Submission, SubmitError};
use zen_store::Store;

/// HTTP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// When any is set, ingestion and the API need `Authorization: Bearer <token>` of a scope
    /// that allows the route.
    pub tokens: auth::Tokens,
    /// Verified client certificates authenticate requests (`tls.client_ca_file`): the daemon is
    /// not open even without tokens.
    pub client_certs: bool,
    /// Requests a second per token, events a second per source (0: none).
    pub limits: limits::Limits,
    /// Open connections at most, and how long a request's headers and body may take.
    pub connections: listen::Connections,
    /// Largest body accepted, before and after decompression (16 MiB: audit batches are large).
    pub body_limit: usize,
    /// Seconds a client is told to wait when the pipeline is full or draining.
    pub retry_after_secs: u64,
    /// Answer ingestion only once the sink has committed (as `?ack=commit` asks), by default.
    pub ack_commit: bool,
    /// How long an acknowledged request waits for the commit before answering 504.
    pub ack_timeout: std::time::Duration,
    /// How long a request's events wait for room in a full pipeline queue before 429 (at most
    /// [`ServerConfig::MAX_QUEUE_WAIT`]).
    pub queue_wait: std::time::Duration,
}

/// A setting out of its range: which (as [`ServerConfig`]'s fields name it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    pub field: &'static str,
    pub problem: String,
}

impl ServerConfig {
    /// The longest a request may wait for room: a client held longer has likely given up.
    pub const MAX_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    /// Checks the ranges the fields' docs give.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.queue_wait > Self::MAX_QUEUE_WAIT {
            return Err(SettingsError {
                field: "queue_wait",
                problem: format!("expected at most 10s, found {:?}", self.queue_wait),
            });
        }
        if self.body_limit == 0 {
            return Err(SettingsError {
                field: "body_limit",
                problem: "expected at least 1 byte, found 0".to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tokens: auth::Tokens::default(),
            client_certs: false,
            limits: limits::Limits::default(),
            connections: listen::Connections::default(),
            body_limit: 16 << 20,
            retry_after_secs: 1,
            ack_commit: false,
            ack_timeout: std::time::Duration::from_secs(30),
            queue_wait: std::time::Duration::from_millis(100),
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<Store>,
    pub config: Arc<ServerConfig>,
    /// Set when shutting down: ingestion answers 503 and `/readyz` fails.
    pub draining: Arc<AtomicBool>,
    /// Renders `GET /metrics`; without it the route answers 404.
    pub exporter: Option<Arc<zen_export::Exporter>>,
    /// SLOs and alerts; without it their routes answer 404.
    pub alerting: Option<Arc<zen_alerting::Alerting>>,
    /// The per-second history; without it `/api/v1/meta` and `/api/v1/query` answer 404.
    pub history: Option<history::Shared>,
    /// The advisor's findings; without them `/api/v1/insights` answers 404.
    pub insights: Option<insights::SharedInsights>,
    /// What the sources beside HTTP (Kubernetes report watchers) say about themselves.
    pub sources: zen_pipeline::SourceStates,
    /// The buckets of `config.limits`.
    pub limiters: Arc<limits::Limiters>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    // Shared, not cloned: every extraction of `State` clones it, and seven `Arc`s cost about
    // 3 % of the daemon's perf samples under single-event requests.
    // The configured wait, which the advisor's tuner may move from now on.
    state.pipeline.set_queue_wait(state.config.queue_wait);
    let state = Arc::new(state);
    let limit = state.config.body_limit;
    let protected = Router::new()
        .route("/api/v1/ingest/{source}", post(ingest))
        .route("/api/v1/observations", get(list))
        .route("/api/v1/observations/{id}", get(one))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay_dead_letters))
        .route("/api/v1/audit", get(audit))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/slos", get(slos))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/rules", get(rules).put(change_rules))
        .route("/api/v1/meta", get(history::meta))
        .route("/api/v1/query", get(history::query))
        .route("/api/v1/stream", get(history::stream))
        .route("/api/v1/export", get(history::export))
        .route("/api/v1/report", get(report::report))
        .route("/api/v1/top", get(top))
        .route("/api/v1/insights", get(insights::insights))
        .route(
            "/api/v1/insights/recommendations/{id}",
            post(insights::recommendation),
        )
        .route("/api/v1/insights/tuning/{id}/undo", post(insights::undo))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route("/", get(page::index))
        .route("/assets/{name}", get(page::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(protected)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "the route does not take this method",
            )
        })
        .layer(middleware::from_fn(measure))
        .with_state(state)
}

/// `zen_watcher_http_requests_total{route, code}`, `…_request_duration_seconds{route}` and
/// `…_requests_in_flight`, by route template (never the raw path, whose values are unbounded).
async fn measure(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = {
        let _in_flight = InFlight::enter();
        next.run(req).await
    };
    let code = response.status().as_u16();
    metrics::histogram!("zen_watcher_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("zen_watcher_http_requests_total", "route" => route, "code" => code.to_string())
        .increment(1);
    response
}

/// One request in `zen_watcher_http_requests_in_flight`, until dropped — also when the client
/// goes away and the request's future is dropped midway.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn enter() -> Self {
        let gauge = metrics::gauge!("zen_watcher_http_requests_in_flight");
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts an ingestion error of `category` (`connection`, `parse`, `permission`, `rate_limit`).
fn count_error(category: &'static str, n: u64) {
    metrics::counter!("zen_watcher_errors_total", "component" => "ingest", "category" => category)
        .increment(n);
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    let Some(exporter) = s.exporter.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND, "metrics are not enabled").into_response();
    };
    let pipeline = s.pipeline.clone();
    match blocking(move || {
        pipeline.publish_ratios();
        exporter.render()
    })
    .await
    {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Serves the application on `listener` (over TLS with `tls`) until `shutdown` completes, then finishes the requests
/// in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<tls::Acceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bounds = state.config.connections;
    listen::serve(listener, app(state), tls, bounds, shutdown).await
}

fn alerting_of(s: &AppState) -> Result<&zen_alerting::Alerting, ApiError> {
    s.alerting.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "alerting is off (alerting.enabled: false)",
        )
    })
}

async fn slos(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(alerting_of(&s)?.slos()))
}

async fn alerts(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(alerting_of(&s)?.alerts()))
}

async fn rules(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(alerting_of(&s)?.rules()))
}

/// Changes thresholds: a JSON object from rule name to `{"threshold", "for", "keep_firing_for",
/// "severity"}` (any of them). All or nothing; a bad change answers 400 with the reason.
async fn change_rules(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body?;
    let a = alerting_of(&s)?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let changes: std::collections::BTreeMap<String, zen_slo::RuleChange> =
        serde_path_to_error::deserialize(de).map_err(|e| {
            ApiError::bad(format!(
                "expected {{\"RuleName\": {{\"threshold\": 80, \"for\": \"5m\"}}}}; at {}: {}",
                e.path(),
                e.inner()
            ))
        })?;
    if changes.is_empty() {
        return Err(ApiError::bad("no rule to change"));
    }
    let what: Vec<String> = changes
        .iter()
        .map(|(rule, c)| format!("{rule} {}", serde_json::to_string(c).unwrap_or_default()))
        .collect();
    let changed = a
        .change_rules(changes)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    if let Some(latest) = &s.insights {
        latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .changed(format!("alert rules changed: {}", what.join(", ")));
    }
    Ok(Json(changed))
}

/// An error answer. Every error of the API has this one shape:
/// `{"error": {"code", "message", "position"?, "items"?}}` — `code` names the status
/// (`bad_request`, `payload_too_large`, …), `position` says where in the input the problem is,
/// `items` lists what could not be read of a payload — with `Retry-After` or `WWW-Authenticate`
/// when they apply.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    position: Option<String>,
    items: Vec<String>,
    retry_after: Option<u64>,
    /// A gzip body that could not be decompressed (a reason of its own when counted).
    gzip: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            position: None,
            items: Vec::new(),
            retry_after: None,
            gzip: false,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 429 or 503, to be tried again after `secs`.
    fn retry_later(status: StatusCode, message: &str, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..ApiError::new(status, message)
        }
    }

    /// The status's name in snake case: `Payload Too Large` → `payload_too_large`.
    fn code(&self) -> String {
        self.status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: String,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    items: &'a [String],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code(),
            message: &self.message,
            position: self.position.as_deref(),
            items: &self.items,
        };
        let mut r = (self.status, Json(json!({ "error": body }))).into_response();
        let headers = r.headers_mut();
        if let Some(v) = self
            .retry_after
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<NormalizeError> for ApiError {
    fn from(e: NormalizeError) -> Self {
        ApiError {
            position: Some(e.at.clone()),
            ..ApiError::bad(e.to_string())
        }
    }
}

/// A body that could not be read: over the limit (413), or cut off.
impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(e.status(), "the body is larger than the limit (body_limit)");
        }
        count_error("connection", 1);
        // The body did not arrive within `connections.body_timeout`.
        let timed_out = std::iter::successors(std::error::Error::source(&e), |c| c.source())
            .any(|cause| cause.is::<tower_http::timeout::TimeoutError>());
        let status = if timed_out {
            StatusCode::REQUEST_TIMEOUT
        } else {
            e.status()
        };
        ApiError::new(
            status,
            format!("the body could not be read: {}", e.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad(e.body_text())
    }
}

/// Lets a request in if its token's scope allows it; an administrative request (every change
/// but ingestion) from a known token, or on an open daemon, goes to the audit log, allowed or
/// refused. Requests without a valid token are not logged there (they are counted): an
/// unauthenticated flood must not fill the log.
async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let needed = auth::Scope::needed(req.method(), req.uri().path());
    let action =
        (needed == auth::Scope::Admin).then(|| format!("{} {}", req.method(), req.uri().path()));
    let (who, response) = match check_token(&s, &req, needed) {
        Ok(who) => match s.limiters.tokens.take(&who, 1, std::time::Instant::now()) {
            Ok(()) => (who, next.run(req).await),
            Err(refused) => (who, rate_limited(refused, "token").into_response()),
        },
        Err((Some(who), refused)) => (who, refused.into_response()),
        Err((None, refused)) => return refused.into_response(),
    };
    if let Some(action) = action {
        let entry = zen_store::AuditEntry {
            token: who.into_owned(),
            action,
            status: response.status().as_u16(),
        };
        let store = s.store.clone();
        match blocking(move || store.record_audit(&entry)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "an administrative request could not be audited")
            }
            Err(_) => tracing::error!("an administrative request could not be audited"),
        }
    }
    response
}

/// The name of the token (or client certificate) that lets `req` in (`(none)` on an open
/// daemon; a token's name borrowed, so the ingestion path allocates nothing for it); else the
/// refusal, with the name when it was valid but outside its scope. A bearer token, when given,
/// is what counts; without one, a verified client certificate.
fn check_token<'a>(
    s: &'a AppState,
    req: &Request,
    needed: auth::Scope,
) -> Result<Cow<'a, str>, (Option<Cow<'a, str>>, ApiError)> {
    if s.config.tokens.is_empty() && !s.config.client_certs {
        return Ok(Cow::Borrowed("(none)"));
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (name, scope, kind) = match (given, req.extensions().get::<tls::ClientCert>()) {
        (Some(given), _) => match s.config.tokens.find(given.as_bytes()) {
            Some(token) => (Cow::Borrowed(token.name.as_str()), token.scope, "token"),
            None => return Err((None, unauthorized(s.config.client_certs))),
        },
        (None, Some(cert)) => (
            Cow::Owned(cert.name.clone()),
            cert.scope,
            "client certificate",
        ),
        (None, None) => return Err((None, unauthorized(s.config.client_certs))),
    };
    if !scope.allows(needed) {
        count_error("permission", 1);
        let message = format!(
            "{kind} {name:?} has scope {scope}; {} {} needs {needed}",
            req.method(),
            req.uri().path()
        );
        let refused = ApiError::new(StatusCode::FORBIDDEN, message);
        return Err((Some(name), refused));
    }
    Ok(name)
}

/// The answer to a request beyond a rate limit of `what` (`token`, `source`), counted.
fn rate_limited(refused: limits::Refused, what: &str) -> ApiError {
    count_error("rate_limit", 1);
    match refused {
        limits::Refused::Wait(wait) => ApiError::retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("beyond the {what}'s rate limit"),
            wait.as_secs_f64().ceil().max(1.0) as u64,
        ),
        limits::Refused::TooMany { burst } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("more events than the {what}'s rate limit lets through at once ({burst})"),
        ),
    }
}

fn unauthorized(client_certs: bool) -> ApiError {
    count_error("permission", 1);
    let message = if client_certs {
        "a valid bearer token (or client certificate) is required"
    } else {
        "a valid bearer token is required"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

#[derive(Debug, Deserialize)]
struct ReadyParams {
    verbose: Option<String>,
}

/// `GET /readyz`: 200 unless draining. With `?verbose`, one line a check as the Kubernetes API
/// server writes them (`[+]name ok`, `[-]name failed: why`), then each source's state — a
/// report watcher whose CRD is missing is degraded, and the daemon still ready.
async fn ready(State(s): State<Arc<AppState>>, params: Query<ReadyParams>) -> Response {
    let draining = s.draining.load(Ordering::Acquire);
    let failing = s.pipeline.sink_failing();
    if params.verbose.is_none() {
        return match (draining, &failing) {
            (true, _) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining").into_response(),
            (false, Some((_, error))) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store is failing: {error}"),
            )
            .into_response(),
            (false, None) => "ready\n".into_response(),
        };
    }
    let mut text = if draining {
        "[-]draining failed: shutting down\n".to_owned()
    } else {
        "[+]draining ok\n".to_owned()
    };
    match &failing {
        Some((since, error)) => text.push_str(&format!(
            "[-]store failed: {error} (retrying for {}s)\n",
            since.as_secs()
        )),
        None => text.push_str("[+]store ok\n"),
    }
    for (name, status) in s.sources.snapshot() {
        let state = match status.state {
            zen_pipeline::SourceState::Synced => "ok",
            zen_pipeline::SourceState::Syncing => "syncing",
            zen_pipeline::SourceState::Degraded => "degraded",
            zen_pipeline::SourceState::Standby => "standby",
        };
        text.push_str(&format!(
            "[+]source {name} {state}: {} ({} objects, {} open findings)\n",
            status.detail, status.objects, status.open_findings
        ));
    }
    let not_ready = draining || failing.is_some();
    text.push_str(if not_ready {
        "readyz check failed\n"
    } else {
        "readyz check passed\n"
    });
    let code = if not_ready {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, text).into_response()
}

#[derive(Debug, Deserialize)]
struct IngestParams {
    /// The node the payload came from (kube-bench output names none).
    node: Option<String>,
    /// `commit`: answer once the events are stored; `enqueue`: once they are queued.
    ack: Option<String>,
}

/// What an ingestion request asks for, read from its path, query and headers.
#[derive(Debug)]
struct IngestRequest {
    format: Format,
    syntax: Syntax,
    /// Answer once every event is committed, not once queued.
    commit: bool,
    node: Option<String>,
}

impl IngestRequest {
    fn parse(
        config: &ServerConfig,
        source: &str,
        params: IngestParams,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let format = source.parse::<Format>().map_err(|e| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown source `{source}`; known: {}", e.expected),
            )
        })?;
        let commit = match params.ack.as_deref() {
            None => config.ack_commit,
            Some("commit") => true,
            Some("enqueue") => false,
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "`ack`: expected commit or enqueue, found {other:?}"
                )));
            }
        };
        Ok(IngestRequest {
            format,
            syntax: syntax_of(headers)?,
            commit,
            node: params.node,
        })
    }
}

/// The syntax a content type stands for, if one we read.
fn syntax_of(headers: &HeaderMap) -> Result<Syntax, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Syntax::Json);
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/json-seq"
        | "application/x-json-stream"
        | "text/json" => Ok(Syntax::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Syntax::Yaml),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {ct:?} is not read here; send application/json, application/x-ndjson or application/yaml"
            ),
        )),
    }
}

/// Why an ingestion request was refused, as `zen_watcher_ingest_rejected_total` counts it.
fn rejection_reason(e: &ApiError) -> &'static str {
    match e.status {
        StatusCode::BAD_REQUEST if e.gzip => "gzip",
        StatusCode::BAD_REQUEST => "unreadable",
        StatusCode::NOT_FOUND => "unknown_source",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "other",
    }
}

/// The body, decompressed if it says it is gzip, and never larger than `limit`.
fn decode(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&body[..]).take(limit as u64 + 1);
            reader.read_to_end(&mut out).map_err(|e| ApiError {
                gzip: true,
                ..ApiError::bad(format!("the gzip body is damaged: {e}"))
            })?;
            if out.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes once decompressed"),
                ));
            }
            Ok(out.into())
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content encoding {other:?} is not read here; send gzip or none"),
        )),
    }
}

#[derive(Debug, Serialize)]
struct IngestAnswer {
    /// Events accepted into the pipeline.
    accepted: usize,
    /// Items read that are not findings (passed checks, audit events matching no rule).
    ignored: usize,
    /// Items that could not be read, each with its place.
    errors: Vec<String>,
}

/// Reads the body, submits its events, and — with `ack=commit` — waits for their commit. A
/// refusal is counted in `zen_watcher_ingest_rejected_total{source, reason}` (`source` the
/// format's name, or `unknown`: never what a client put in the path).
async fn ingest(
    state: State<Arc<AppState>>,
    source: Result<Path<String>, PathRejection>,
    params: Result<Query<IngestParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = source
        .as_ref()
        .ok()
        .and_then(|p| p.0.parse::<Format>().ok())
        .map_or("unknown", Format::as_str);
    let answer = read_and_submit(state, source, params, headers, body).await;
    if let Err(e) = &answer {
        metrics::counter!("zen_watcher_ingest_rejected_total", "source" => format, "reason" => rejection_reason(e))
            .increment(1);
    }
    answer
}

async fn read_and_submit(
    State(s): State<Arc<AppState>>,
    source: Result<Path<String>, PathRejection>,
    params: Result<Query<IngestParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let received = std::time::Instant::now();
    let body = body?;
    let request = IngestRequest::parse(&s.config, &source?.0, params?.0, &headers)?;
    metrics::counter!("zen_watcher_ingest_bytes_total", "source" => request.format.as_str())
        .increment(body.len() as u64);
    if s.draining.load(Ordering::Acquire) {
        return Err(draining(&s.config));
    }
    let body = decode(&headers, body, s.config.body_limit)?;
    let normalized = read(&s, &request, body).await?;
    let answer = IngestAnswer {
        accepted: normalized.events.len(),
        ignored: normalized.ignored,
        errors: normalized
            .errors
            .iter()
            .map(ToString::to_string)
            .chain((normalized.more_errors > 0).then(|| {
                format!(
                    "… and {} more problems, not listed (the first {} are)",
                    normalized.more_errors,
                    zen_model::Normalized::MAX_ERRORS
                )
            }))
            .collect(),
    };
    if answer.accepted == 0 && answer.ignored == 0 && !answer.errors.is_empty() {
        let first = normalized.errors.into_iter().next().map(|e| e.at);
        return Err(ApiError {
            position: first,
            items: answer.errors,
            ..ApiError::bad("no item of the payload could be read")
        });
    }
    let status = if request.commit {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    if answer.accepted > 0 {
        let n = u32::try_from(answer.accepted).unwrap_or(u32::MAX);
        s.limiters
            .sources
            .take(request.format.as_str(), n, std::time::Instant::now())
            .map_err(|refused| rate_limited(refused, "source"))?;
        submit(&s, request.commit, normalized.events, received).await?;
    }
    Ok((status, Json(answer)).into_response())
}

/// Reads the body into events, off the IO threads when it is large (as decoded: chunked bodies
/// carry no length).
async fn read(
    s: &AppState,
    request: &IngestRequest,
    body: Bytes,
) -> Result<zen_model::Normalized, ApiError> {
    let ctx = Context {
        received_at: Timestamp::now(),
        node: request.node.clone(),
    };
    let (format, syntax) = (request.format, request.syntax);
    if body.len() <= 64 << 10 {
        return Ok(s.pipeline.read(format, syntax, &body, &ctx)?);
    }
    let pipeline = s.pipeline.clone();
    let outcome = blocking(move || pipeline.read(format, syntax, &body, &ctx)).await?;
    Ok(outcome?)
}

fn draining(config: &ServerConfig) -> ApiError {
    ApiError::retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        "draining",
        config.retry_after_secs,
    )
}

/// Submits the events, waiting up to `queue_wait` for room; with `commit`, waits up to
/// `ack_timeout` for every event's outcome.
async fn submit(
    s: &AppState,
    commit: bool,
    events: Vec<zen_model::Event>,
    received: std::time::Instant,
) -> Result<(), ApiError> {
    let n = events.len();
    let mut submission = Submission::new(events, received);
    let (committed_tx, committed) = tokio::sync::oneshot::channel();
    if commit {
        submission.ack = Some(Ack::new(n, move |outcome| {
            let _ = committed_tx.send(outcome);
        }));
    }
    match s.pipeline.submit(submission, s.pipeline.queue_wait()).await {
        Ok(()) => {}
        Err(SubmitError::Full(_)) => {
            count_error("rate_limit", 1);
            return Err(ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "the pipeline is full",
                s.config.retry_after_secs,
            ));
        }
        Err(SubmitError::Closed(_)) => return Err(draining(&s.config)),
    }
    if !commit {
        return Ok(());
    }
    match tokio::time::timeout(s.config.ack_timeout, committed).await {
        Ok(Ok(AckOutcome {
            dead_lettered: 0, ..
        })) => Ok(()),
        Ok(Ok(outcome)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} of {n} events could not be stored; they are in the dead letters",
                outcome.dead_lettered
            ),
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline stopped before the events were stored",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the events were accepted but not stored within {:?}",
                s.config.ack_timeout
            ),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    source: Option<String>,
    min_severity: Option<String>,
    namespace: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    state: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct ObservationOut<'a> {
    id: i64,
    #[serde(flatten)]
    observation: &'a Observation,
    /// When the finding left its watched report.
    #[serde(rename = "resolvedAt", skip_serializing_if = "Option::is_none")]
    resolved_at: Option<Timestamp>,
}

impl<'a> From<&'a zen_store::Stored> for ObservationOut<'a> {
    fn from(s: &'a zen_store::Stored) -> Self {
        ObservationOut {
            id: s.id,
            observation: &s.observation,
            resolved_at: s.resolved_at,
        }
    }
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            v.parse::<Timestamp>().map_err(|e| {
                ApiError::bad(format!(
                    "`{name}`: expected an RFC 3339 time, found {v:?} ({e})"
                ))
            })
        })
        .transpose()
}

/// Runs `f` on the blocking pool (store reads, large payloads).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request could not be served",
        )
    })
}

impl From<zen_store::StoreError> for ApiError {
    fn from(e: zen_store::StoreError) -> Self {
        tracing::error!(error = %e, "store read failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the store could not be read: {e}"),
        )
    }
}

/// A page of Observations, serialised as it is: `details` go out as the JSON text stored,
/// never through a `serde_json::Value` (which stops at 128 levels of nesting).
#[derive(Serialize)]
struct PageOut<'a> {
    items: Vec<ObservationOut<'a>>,
    next: Option<i64>,
}

async fn list(
    State(s): State<Arc<AppState>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    let min_severity = p
        .min_severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()
        .map_err(|e| ApiError::bad(format!("`min_severity`: {e}")))?;
    let query = zen_store::Query {
        source: p.source,
        min_severity,
        namespace: p.namespace,
        since: parse_time("since", p.since.as_deref())?,
        until: parse_time("until", p.until.as_deref())?,
        text: p.q,
        state: match p.state.as_deref() {
            None => None,
            Some("open") => Some(zen_store::State::Open),
            Some("resolved") => Some(zen_store::State::Resolved),
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "`state`: expected open or resolved, found {other:?}"
                )));
            }
        },
        after: p.after,
        limit: p.limit.unwrap_or(0),
    };
    let store = s.store.clone();
    let page = blocking(move || store.list(&query)).await??;
    let items = page.items.iter().map(ObservationOut::from).collect();
    Ok(Json(PageOut {
        items,
        next: page.next,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopParams {
    by: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/top?by=rule|namespace&from=…&to=…&limit=N`: the rules (with their source) or
/// namespaces with the most Observations last seen in the range (the last hour by default;
/// times as `/api/v1/query` takes them, `to` through the end of its second), most first; at
/// most 100.
async fn top(
    State(s): State<Arc<AppState>>,
    params: Result<Query<TopParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    let by = match p.by.as_str() {
        "rule" => zen_store::TopBy::Rule,
        "namespace" => zen_store::TopBy::Namespace,
        other => {
            return Err(ApiError::bad(format!(
                "by: expected rule or namespace, got {other:?}"
            )));
        }
    };
    let now = history::now();
    let from = p
        .from
        .as_deref()
        .map_or(Ok(now - 3_600), |t| history::time(t, "from", now))?;
    let to =
        p.to.as_deref()
            .map_or(Ok(now), |t| history::time(t, "to", now))?;
    let stamp = |t: i64, name: &str| {
        zen_model::Timestamp::from_second(t).map_err(|e| ApiError::bad(format!("{name}: {e}")))
    };
    // Through the end of the second `to` names: what was seen a moment ago is in.
    let (since, until) = (stamp(from, "from")?, stamp(to + 1, "to")?);
    let limit = p.limit.unwrap_or(10);
    let store = s.store.clone();
    let items = blocking(move || store.top(by, since, until, limit)).await??;
    let items: Vec<Value> = items
        .into_iter()
        .map(|t| json!({ "source": t.source, "key": t.key, "observations": t.observations }))
        .collect();
    Ok(Json(json!({ "from": from, "to": to, "items": items })).into_response())
}

async fn one(
    State(s): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let store = s.store.clone();
    match blocking(move || store.get(id)).await?? {
        Some(found) => Ok(Json(ObservationOut::from(&found)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no observation {id}"),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageParams {
    after: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetterOut<'a> {
    id: i64,
    received_at: Timestamp,
    source: &'a str,
    error: &'a str,
    attempts: u32,
    events: &'a [zen_model::Event],
}

async fn dead_letters(
    State(s): State<Arc<AppState>>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    let store = s.store.clone();
    let (letters, next) =
        blocking(move || store.dead_letters(p.after, p.limit.unwrap_or(0))).await??;
    let items: Vec<DeadLetterOut<'_>> = letters
        .iter()
        .map(|d| DeadLetterOut {
            id: d.id,
            received_at: d.received_at,
            source: &d.letter.source,
            error: &d.letter.error,
            attempts: d.letter.attempts,
            events: &d.letter.events,
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })).into_response())
}

#[derive(Serialize)]
struct AuditOut<'a> {
    id: i64,
    at: Timestamp,
    token: &'a str,
    action: &'a str,
    status: u16,
}

/// `GET /api/v1/audit`: the audit log, newest first, paged like the dead letters.
async fn audit(
    State(s): State<Arc<AppState>>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params?;
    let store = s.store.clone();
    let (entries, next) = blocking(move || store.audit(p.after, p.limit.unwrap_or(0))).await??;
    let items: Vec<AuditOut<'_>> = entries
        .iter()
        .map(|e| AuditOut {
            id: e.id,
            at: e.at,
            token: &e.entry.token,
            action: &e.entry.action,
            status: e.entry.status,
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })).into_response())
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
struct Replayed {
    /// Letters whose events are stored again, and removed.
    letters: usize,
    events: usize,
    /// Letters left, with the error that stopped the replay, if one did.
    left: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Submits the events of every dead letter kept when it starts, one letter at a time, each
/// acknowledged on commit; a letter is removed once its events are stored. Stops at the first
/// letter that cannot be stored (it stays, as do the rest).
async fn replay_dead_letters(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let mut done = Replayed::default();
    let mut after = None;
    'pages: loop {
        let store = s.store.clone();
        let (letters, next) = blocking(move || store.dead_letters(after, 100)).await??;
        for d in letters {
            let n = d.letter.events.len();
            if let Err(e) = submit(&s, true, d.letter.events, std::time::Instant::now()).await {
                done.error = Some(e.message);
                break 'pages;
            }
            let store = s.store.clone();
            blocking(move || store.remove_dead_letter(d.id)).await??;
            done.letters += 1;
            done.events += n;
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let store = s.store.clone();
    done.left = blocking(move || store.dead_letter_counts()).await??.letters;
    Ok(Json(done).into_response())
}

async fn stats(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let (stored, dead) = blocking(move || {
        Ok::<_, zen_store::StoreError>((store.counts()?, store.dead_letter_counts()?))
    })
    .await??;
    let c = s.pipeline.counts();
    let by: Vec<_> = stored
        .by_source_severity
        .iter()
        .map(|(source, sev, rows, total)| json!({ "source": source, "severity": sev, "observations": rows, "occurrences": total }))
        .collect();
    Ok(Json(json!({
        "pipeline": {
            "submissions": c.submissions,
            "rejected_full": c.rejected_full,
            "parse_errors": c.parse_errors,
            "received": c.received,
            "written": c.written,
            "filtered": c.filtered,
            "filtered_by_reason": c.filtered_by().map(|(r, n)| (r.as_str(), n)).collect::<std::collections::BTreeMap<_, _>>(),
            "deduplicated": c.deduplicated,
            "dead_lettered": c.dead_lettered,
            "in_flight": c.in_flight(),
        },
        "store": by,
        "dead_letters": { "letters": dead.letters, "events": dead.events },
        "sources": s.sources.snapshot(),
    }))
    .into_response())
}
