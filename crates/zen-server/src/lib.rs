//! The HTTP face of zen-watcher: webhook ingestion, the Observations API, and health.
//!
//! - `POST /api/v1/ingest/{source}` takes one JSON value, a JSON array, NDJSON or YAML (by
//!   `Content-Type`), optionally gzip-compressed, so Falco's `http_output`, falcosidekick and the
//!   API server's audit webhook can point straight at it. It answers 202 with what was accepted
//!   and the errors of bad items; 400 when nothing could be read, naming the problem and where;
//!   401 without the configured bearer token (compared in constant time); 404 for an unknown
//!   source, listing the known ones; 413 over the body limit (compressed or not); 415 for a
//!   content type it does not read; 429 with `Retry-After` when the pipeline's queue is full, and
//!   503 with `Retry-After` while draining. With `?ack=commit` (or `ack_commit` configured) it
//!   answers 200 only once every event is stored (or filtered, or folded into a duplicate); 500
//!   if some were dead-lettered, 504 if the commit takes longer than `ack_timeout`.
//! - `GET /api/v1/observations` (filtered by `source`, `min_severity`, `namespace`, `since`,
//!   `until`, `q`; paged by `limit` and `after`), `GET /api/v1/observations/{id}`,
//!   `GET /api/v1/stats`.
//! - `GET /metrics`: the Prometheus text exposition (zen-export), behind the token like the API.
//! - `GET /healthz` (alive) and `GET /readyz` (not while draining).
//!
//! Every answer is counted by route template and code, timed, and tracked while in flight;
//! ingestion errors are counted by category (connection, parse, permission, rate_limit).
//!
//! The only crate that knows axum. It holds no logic of its own beyond HTTP: reading is
//! zen-model's, processing zen-pipeline's, storage zen-store's.

pub mod alerting;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use zen_model::{Context, Format, Normalizer, Observation, Severity, Syntax, Timestamp};
use zen_pipeline::{Ack, AckOutcome, Pipeline, Submission, SubmitError};
use zen_store::Store;

/// HTTP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// When set, ingestion and the API need `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Largest body accepted, before and after decompression (16 MiB: audit batches are large).
    pub body_limit: usize,
    /// Seconds a client is told to wait when the pipeline is full or draining.
    pub retry_after_secs: u64,
    /// Answer ingestion only once the sink has committed (as `?ack=commit` asks), by default.
    pub ack_commit: bool,
    /// How long an acknowledged request waits for the commit before answering 504.
    pub ack_timeout: std::time::Duration,
    /// How long a request's events wait for room in a full pipeline queue before 429.
    pub queue_wait: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
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
    pub normalizer: Arc<Normalizer>,
    pub store: Arc<Store>,
    pub config: Arc<ServerConfig>,
    /// Set when shutting down: ingestion answers 503 and `/readyz` fails.
    pub draining: Arc<AtomicBool>,
    /// Renders `GET /metrics`; without it the route answers 404.
    pub exporter: Option<Arc<zen_export::Exporter>>,
    /// SLOs and alerts; without it their routes answer 404.
    pub alerting: Option<Arc<alerting::Alerting>>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    // Shared, not cloned: every extraction of `State` clones it, and seven `Arc`s cost about
    // 3 % of the daemon's perf samples under single-event requests.
    let state = Arc::new(state);
    let limit = state.config.body_limit;
    let protected = Router::new()
        .route("/api/v1/ingest/{source}", post(ingest))
        .route("/api/v1/observations", get(list))
        .route("/api/v1/observations/{id}", get(one))
        .route("/api/v1/stats", get(stats))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/slos", get(slos))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/rules", get(rules).put(change_rules))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(protected)
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
        return error(StatusCode::NOT_FOUND, "metrics are not enabled");
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
        Err(e) => e,
    }
}

/// Serves the application on `listener` until `shutdown` completes, then finishes the requests
/// in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn alerting_of(s: &AppState) -> Result<&alerting::Alerting, ApiError> {
    s.alerting.as_deref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "alerting is off (alerting.enabled: false)".into(),
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
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a = alerting_of(&s)?;
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let changes: std::collections::BTreeMap<String, zen_slo::RuleChange> =
        serde_path_to_error::deserialize(de).map_err(|e| {
            bad(format!(
                "expected {{\"RuleName\": {{\"threshold\": 80, \"for\": \"5m\"}}}}; at {}: {}",
                e.path(),
                e.inner()
            ))
        })?;
    if changes.is_empty() {
        return Err(bad("no rule to change".into()));
    }
    a.change_rules(changes)
        .map(Json)
        .map_err(|e| bad(e.to_string()))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An answer that is an error: a status and what is wrong.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn retry_later(status: StatusCode, message: &str, secs: u64) -> Response {
    let mut r = error(status, message);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.config.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            count_error("permission", 1);
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

async fn ready(State(s): State<Arc<AppState>>) -> Response {
    if s.draining.load(Ordering::Acquire) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    "ready\n".into_response()
}

#[derive(Debug, Deserialize)]
struct IngestParams {
    /// The node the payload came from (kube-bench output names none).
    node: Option<String>,
    /// `commit`: answer once the events are stored; `enqueue`: once they are queued.
    ack: Option<String>,
}

/// The syntax a content type stands for, if one we read.
fn syntax_of(headers: &HeaderMap) -> Result<Syntax, String> {
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
        _ => Err(format!(
            "content type {ct:?} is not read here; send application/json, application/x-ndjson or application/yaml"
        )),
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
            reader.read_to_end(&mut out).map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("the gzip body is damaged: {e}"),
                )
            })?;
            if out.len() > limit {
                return Err(ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes once decompressed"),
                ));
            }
            Ok(out.into())
        }
        other => Err(ApiError(
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

async fn ingest(
    State(s): State<Arc<AppState>>,
    Path(source): Path<String>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        // Over the limit: 413, as the limit layer says.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return e.into_response(),
        Err(e) => {
            count_error("connection", 1);
            return error(
                e.status(),
                format!("the body could not be read: {}", e.body_text()),
            );
        }
    };
    let commit = match params.ack.as_deref() {
        None => s.config.ack_commit,
        Some("commit") => true,
        Some("enqueue") => false,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`ack`: expected commit or enqueue, found {other:?}"),
            );
        }
    };
    let Ok(format) = source.parse::<Format>() else {
        let known = "falco, falcosidekick, audit, trivy, kyverno, kube-bench, checkov, generic";
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown source `{source}`; known: {known}"),
        );
    };
    metrics::counter!("zen_watcher_ingest_bytes_total", "source" => format.as_str())
        .increment(body.len() as u64);
    if s.draining.load(Ordering::Acquire) {
        return retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            s.config.retry_after_secs,
        );
    }
    let syntax = match syntax_of(&headers) {
        Ok(syntax) => syntax,
        Err(message) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
    };
    let body = match decode(&headers, body, s.config.body_limit) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let ctx = Context {
        received_at: Timestamp::now(),
        node: params.node,
    };
    let normalizer = s.normalizer.clone();
    // Large payloads (as decoded; chunked bodies carry no length) are read off the IO threads.
    let large = body.len() > 64 << 10;
    let read = move || {
        let started = std::time::Instant::now();
        let outcome = normalizer.normalize_text(format, syntax, &body, &ctx);
        if let Ok(n) = &outcome {
            zen_pipeline::record_normalize(format.as_str(), started.elapsed(), n.events.len());
        }
        outcome
    };
    let outcome = if large {
        match tokio::task::spawn_blocking(read).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "normaliser task failed");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the payload could not be read",
                );
            }
        }
    } else {
        read()
    };
    let normalized = match outcome {
        Ok(n) => n,
        Err(e) => {
            count_error("parse", 1);
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    if !normalized.errors.is_empty() {
        count_error("parse", normalized.errors.len() as u64);
    }
    let errors: Vec<String> = normalized.errors.iter().map(ToString::to_string).collect();
    if normalized.events.is_empty() && normalized.ignored == 0 && !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "no item of the payload could be read", "errors": errors })),
        )
            .into_response();
    }
    let answer = IngestAnswer {
        accepted: normalized.events.len(),
        ignored: normalized.ignored,
        errors,
    };
    if normalized.events.is_empty() {
        let status = if commit {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        return (status, Json(answer)).into_response();
    }
    let (committed_tx, committed) = tokio::sync::oneshot::channel();
    let submission = if commit {
        let ack = Ack::new(normalized.events.len(), move |outcome| {
            let _ = committed_tx.send(outcome);
        });
        Submission::AckedEvents(normalized.events, ack)
    } else {
        Submission::Events(normalized.events)
    };
    match s.pipeline.submit(submission, s.config.queue_wait).await {
        Ok(()) => {}
        Err(SubmitError::Full(_)) => {
            count_error("rate_limit", 1);
            return retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "the pipeline is full",
                s.config.retry_after_secs,
            );
        }
        Err(SubmitError::Closed(_)) => {
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                s.config.retry_after_secs,
            );
        }
    }
    if !commit {
        return (StatusCode::ACCEPTED, Json(answer)).into_response();
    }
    match tokio::time::timeout(s.config.ack_timeout, committed).await {
        Ok(Ok(AckOutcome {
            dead_lettered: 0, ..
        })) => (StatusCode::OK, Json(answer)).into_response(),
        Ok(Ok(outcome)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} of {} events could not be stored; they are in the dead letters",
                outcome.dead_lettered, answer.accepted
            ),
        ),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline stopped before the events were stored",
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the events were accepted but not stored within {:?}",
                s.config.ack_timeout
            ),
        ),
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
    after: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct ObservationOut<'a> {
    id: i64,
    #[serde(flatten)]
    observation: &'a Observation,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            v.parse::<Timestamp>().map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("`{name}`: expected an RFC 3339 time, found {v:?} ({e})"),
                )
            })
        })
        .transpose()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "store task failed");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store could not be read",
        )
    })
}

fn store_error(e: zen_store::StoreError) -> Response {
    tracing::error!(error = %e, "store read failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the store could not be read: {e}"),
    )
}

async fn list(State(s): State<Arc<AppState>>, Query(p): Query<ListParams>) -> Response {
    let min_severity = match p
        .min_severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()
    {
        Ok(sev) => sev,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("`min_severity`: {e}")),
    };
    let (since, until) = match (
        parse_time("since", p.since.as_deref()),
        parse_time("until", p.until.as_deref()),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let query = zen_store::Query {
        source: p.source,
        min_severity,
        namespace: p.namespace,
        since,
        until,
        text: p.q,
        after: p.after,
        limit: p.limit.unwrap_or(0),
    };
    let store = s.store.clone();
    match blocking(move || store.list(&query)).await {
        Ok(Ok(page)) => {
            let items: Vec<ObservationOut<'_>> = page
                .items
                .iter()
                .map(|s| ObservationOut {
                    id: s.id,
                    observation: &s.observation,
                })
                .collect();
            Json(json!({ "items": items, "next": page.next })).into_response()
        }
        Ok(Err(e)) => store_error(e),
        Err(e) => e.into_response(),
    }
}

async fn one(State(s): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    let store = s.store.clone();
    match blocking(move || store.get(id)).await {
        Ok(Ok(Some(found))) => Json(ObservationOut {
            id: found.id,
            observation: &found.observation,
        })
        .into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no observation {id}")),
        Ok(Err(e)) => store_error(e),
        Err(e) => e.into_response(),
    }
}

async fn stats(State(s): State<Arc<AppState>>) -> Response {
    let store = s.store.clone();
    let stored = match blocking(move || store.counts()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return store_error(e),
        Err(e) => return e.into_response(),
    };
    let c = s.pipeline.counts();
    let by: Vec<_> = stored
        .by_source_severity
        .iter()
        .map(|(source, sev, rows, total)| json!({ "source": source, "severity": sev, "observations": rows, "occurrences": total }))
        .collect();
    Json(json!({
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
    }))
    .into_response()
}
