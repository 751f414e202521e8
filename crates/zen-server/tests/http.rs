//! Every answer of the HTTP API, through the real router without a socket (`oneshot`), with a
//! real pipeline and a real SQLite store behind it.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use zen_model::Normalizer;
use zen_pipeline::{Kept, Pipeline, PipelineConfig, Sink, SinkError};
use zen_server::auth::{Scope, Token, Tokens};
use zen_server::{AppState, ServerConfig, app};

const ALERT: &str = r#"{"rule":"Terminal shell in container","priority":"Critical","time":"2026-02-11T09:01:02Z","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart"}}"#;

struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
}

fn harness(config: ServerConfig, pipeline: PipelineConfig, sink: Option<Box<dyn Sink>>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (store, sqlite) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let sink = sink.unwrap_or(Box::new(sqlite));
    let pipeline = Pipeline::start(pipeline, Arc::new(Normalizer::default()), sink).unwrap();
    let state = AppState {
        pipeline: Arc::new(pipeline),
        store: Arc::new(store),
        limiters: Arc::new(zen_server::limits::Limiters::new(config.limits)),
        config: Arc::new(config),
        draining: Arc::new(AtomicBool::new(false)),
        exporter: None,
        alerting: None,
        history: None,
        insights: None,
        sources: zen_pipeline::SourceStates::default(),
    };
    Harness { state, _dir: dir }
}

fn default_harness() -> Harness {
    harness(ServerConfig::default(), PipelineConfig::default(), None)
}

async fn call(h: &Harness, req: Request<Body>) -> (StatusCode, Value, header::HeaderMap) {
    let res = app(h.state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body, headers)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn a_falco_alert_is_accepted_with_counts() {
    let h = default_harness();
    let (status, body, _) = call(&h, post("/api/v1/ingest/falco", "application/json", ALERT)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        body,
        serde_json::json!({"accepted": 1, "ignored": 0, "errors": []})
    );
}

#[tokio::test]
async fn a_partial_batch_is_accepted_with_its_item_errors() {
    let h = default_harness();
    let ndjson = format!("{ALERT}\n{{\"rule\": 5}}\n{ALERT}\n");
    let (status, body, _) = call(
        &h,
        post(
            "/api/v1/ingest/falcosidekick",
            "application/x-ndjson",
            ndjson,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["accepted"], 2);
    assert_eq!(
        body["errors"],
        serde_json::json!(["falco: line 2: $.rule: invalid type: integer `5`, expected a string"])
    );
}

#[tokio::test]
async fn unreadable_bodies_are_400_with_the_problem_and_its_place() {
    let h = default_harness();
    let (status, body, _) = call(
        &h,
        post("/api/v1/ingest/audit", "application/json", "{\"items\": ["),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "code": "bad_request",
            "message": "audit: line 1, column 11: EOF while parsing a list",
            "position": "line 1, column 11",
        }})
    );
    let (status, body, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco",
            "application/json",
            "{\"priority\":\"Notice\"}",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "code": "bad_request",
            "message": "no item of the payload could be read",
            "position": "$",
            "items": ["falco: $: missing field `rule`"],
        }})
    );
    let (status, body, _) = call(
        &h,
        post("/api/v1/ingest/trivy", "application/json", vec![0xff, 0xfe]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("trivy: line 1, column 1"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_sources_are_404_listing_the_known_ones() {
    let h = default_harness();
    let (status, body, _) =
        call(&h, post("/api/v1/ingest/sysdig", "application/json", ALERT)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        "unknown source `sysdig`; known: falco, falcosidekick, audit, trivy, kyverno, kube-bench, checkov, generic"
    );
}

#[tokio::test]
async fn tokens_are_required_and_kept_to_their_scopes() {
    let tokens = Tokens::new(vec![
        Token::new("falco", Scope::Ingest, "ingest-secret-0000"),
        Token::new("grafana", Scope::Read, "read-secret-00000"),
        Token::new("ops", Scope::Admin, "admin-secret-0000"),
    ])
    .unwrap();
    let h = harness(
        ServerConfig {
            tokens,
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        None,
    );
    let with = |req: axum::http::request::Builder, secret: &str| {
        req.header(header::AUTHORIZATION, format!("Bearer {secret}"))
    };
    let ingest = |secret: &str| {
        with(Request::post("/api/v1/ingest/falco"), secret)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(ALERT))
            .unwrap()
    };
    let read = |secret: &str| {
        with(Request::get("/api/v1/stats"), secret)
            .body(Body::empty())
            .unwrap()
    };
    let replay = |secret: &str| {
        with(Request::post("/api/v1/dead-letters/replay"), secret)
            .body(Body::empty())
            .unwrap()
    };

    // None, or a wrong one: 401, asking for a bearer token.
    let (status, body, headers) =
        call(&h, post("/api/v1/ingest/falco", "application/json", ALERT)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "a valid bearer token is required");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        call(&h, ingest("ingest-secret-000")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&h, get("/api/v1/stats")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Each token within its scope; admin everywhere.
    assert_eq!(
        call(&h, ingest("ingest-secret-0000")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(call(&h, read("read-secret-00000")).await.0, StatusCode::OK);
    assert_eq!(
        call(&h, ingest("admin-secret-0000")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(call(&h, read("admin-secret-0000")).await.0, StatusCode::OK);
    assert_ne!(
        call(&h, replay("admin-secret-0000")).await.0,
        StatusCode::FORBIDDEN
    );

    // Outside it: 403, naming the token (never its secret) and what the route needs.
    let (status, body, _) = call(&h, read("ingest-secret-0000")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "token \"falco\" has scope ingest; GET /api/v1/stats needs read"
    );
    assert_eq!(
        call(&h, ingest("read-secret-00000")).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body, _) = call(&h, replay("read-secret-00000")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.to_string().contains("read-secret"), "{body}");
    assert_eq!(
        call(&h, replay("nobody-secret-000")).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The administrative requests from known tokens are in the audit log, refused ones too,
    // newest first; ingestion, reads and unknown tokens are not.
    let audit = with(Request::get("/api/v1/audit"), "read-secret-00000")
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(&h, audit).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries: Vec<(String, String, u64)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["at"].is_string(), "{e}");
            (
                e["token"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let action = "POST /api/v1/dead-letters/replay".to_owned();
    assert_eq!(entries.len(), 2, "{body}");
    assert_eq!(entries[0], ("grafana".to_owned(), action.clone(), 403));
    assert_eq!((&entries[1].0, &entries[1].1), (&"ops".to_owned(), &action));
    assert_ne!(entries[1].2, 403);

    let health = get("/healthz");
    assert_eq!(
        call(&h, health).await.0,
        StatusCode::OK,
        "health needs no token"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_compressed_or_not() {
    let h = harness(
        ServerConfig {
            body_limit: 1000,
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        None,
    );
    let big = format!("[{}]", vec![ALERT; 20].join(","));
    let (status, _, _) = call(
        &h,
        post("/api/v1/ingest/falco", "application/json", big.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let bomb = Request::post("/api/v1/ingest/falco")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(big.as_bytes())))
        .unwrap();
    let (status, body, _) = call(&h, bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body["error"]["message"],
        "the body is larger than 1000 bytes once decompressed"
    );
}

#[tokio::test]
async fn gzip_and_yaml_bodies_are_read() {
    let h = default_harness();
    let req = Request::post("/api/v1/ingest/falco")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(ALERT.as_bytes())))
        .unwrap();
    assert_eq!(call(&h, req).await.1["accepted"], 1);
    let yaml = "kind: PolicyReport\nresults:\n- policy: p\n  result: fail\n";
    let (status, body, _) =
        call(&h, post("/api/v1/ingest/kyverno", "application/yaml", yaml)).await;
    assert_eq!(
        (status, &body["accepted"]),
        (StatusCode::ACCEPTED, &Value::from(1))
    );
    let damaged = Request::post("/api/v1/ingest/falco")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("not gzip"))
        .unwrap();
    assert_eq!(call(&h, damaged).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn other_content_types_are_415() {
    let h = default_harness();
    let (status, body, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco",
            "application/x-www-form-urlencoded",
            ALERT,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded")
    );
}

/// Holds every write until released.
struct Held(Arc<AtomicBool>);

impl Sink for Held {
    fn name(&self) -> &str {
        "held"
    }
    fn write(&mut self, _: &str, _: &[Kept]) -> Result<(), SinkError> {
        while self.0.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
    fn apply_duplicates(&mut self, _: &[zen_dedup::DuplicateUpdate]) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_full_pipeline_makes_requests_wait_then_429_with_retry_after_and_draining_is_503() {
    let hold = Arc::new(AtomicBool::new(true));
    let pipeline = PipelineConfig {
        queue_capacity: 1,
        batch: zen_pipeline::BatchSettings {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let wait = Duration::from_millis(200);
    let h = harness(
        ServerConfig {
            queue_wait: wait,
            ..ServerConfig::default()
        },
        pipeline,
        Some(Box::new(Held(hold.clone()))),
    );
    let alert = |i: usize| ALERT.replace("cart", &format!("cart-{i}"));
    // The sink holds its first write: the hand-off to it fills, then the processor's queue.
    let mut refused = None;
    for i in 0..300 {
        let started = Instant::now();
        let (status, _, headers) = call(
            &h,
            post("/api/v1/ingest/falco", "application/json", alert(i)),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((started.elapsed(), headers));
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (waited, headers) = refused.expect("the queue filled up");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(
        waited >= wait,
        "refused after waiting {waited:?}, not {wait:?}"
    );
    assert_eq!(
        h.state.pipeline.counts().rejected_full,
        1,
        "counted once, however often it tried"
    );
    // A request that finds the queue full is taken once room frees within its wait.
    let release = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        hold.store(false, Ordering::SeqCst);
    };
    let ((status, _, _), ()) = tokio::join!(
        call(
            &h,
            post("/api/v1/ingest/falco", "application/json", alert(300))
        ),
        release
    );
    assert_eq!(status, StatusCode::ACCEPTED);

    h.state.draining.store(true, Ordering::SeqCst);
    let (status, _, headers) =
        call(&h, post("/api/v1/ingest/falco", "application/json", ALERT)).await;
    assert_eq!(
        (status, &headers[header::RETRY_AFTER]),
        (StatusCode::SERVICE_UNAVAILABLE, &"1".parse().unwrap())
    );
    assert_eq!(
        call(&h, get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn what_was_ingested_can_be_listed_fetched_and_counted() {
    let h = default_harness();
    assert_eq!(call(&h, get("/readyz")).await.0, StatusCode::OK);
    let alerts = [
        ALERT.to_owned(),
        ALERT.replace("Critical", "Notice").replace("cart", "web"),
    ]
    .join("\n");
    call(
        &h,
        post("/api/v1/ingest/falco", "application/x-ndjson", alerts),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let items = loop {
        let (status, body, _) = call(&h, get("/api/v1/observations")).await;
        assert_eq!(status, StatusCode::OK);
        if body["items"].as_array().unwrap().len() == 2 || Instant::now() > deadline {
            break body["items"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(items.as_array().unwrap().len(), 2);
    let (status, body, _) = call(
        &h,
        get("/api/v1/observations?min_severity=high&namespace=shop"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let id = body["items"][0]["id"].as_i64().unwrap();
    assert_eq!(body["items"][0]["severity"], "critical");
    assert_eq!(body["items"][0]["count"], 1);
    let (status, one, _) = call(&h, get(&format!("/api/v1/observations/{id}"))).await;
    assert_eq!(
        (status, &one["ruleId"]),
        (StatusCode::OK, &Value::from("Terminal shell in container"))
    );
    let (status, _, _) = call(&h, get("/api/v1/observations/999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body, _) = call(&h, get("/api/v1/observations?min_severity=severe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "`min_severity`: expected one of critical, high, medium, low, info, found \"severe\""
    );
    let (status, body, _) = call(&h, get("/api/v1/observations?since=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("`since`: expected an RFC 3339 time, found \"yesterday\"")
    );
    let (status, stats, _) = call(&h, get("/api/v1/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["pipeline"]["written"], 2);
    assert_eq!(stats["store"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn ack_commit_answers_200_once_the_events_are_in_the_store() {
    let h = default_harness();
    let alerts = [
        ALERT.to_owned(),
        ALERT.to_owned(),
        ALERT.replace("cart", "web"),
    ]
    .join("\n");
    let (status, body, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco?ack=commit",
            "application/x-ndjson",
            alerts,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"], 3);
    // No waiting: acknowledged means stored.
    let page = h.state.store.list(&zen_store::Query::default()).unwrap();
    assert_eq!(page.items.len(), 2, "two findings, one of them seen twice");

    let (status, body, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco?ack=eventually",
            "application/json",
            ALERT,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "`ack`: expected commit or enqueue, found \"eventually\""
    );
}

/// Refuses every write for good.
struct Refusing;

impl Sink for Refusing {
    fn name(&self) -> &str {
        "refusing"
    }
    fn write(&mut self, _: &str, _: &[Kept]) -> Result<(), SinkError> {
        Err(SinkError {
            message: "no".into(),
            retryable: false,
        })
    }
    fn apply_duplicates(&mut self, _: &[zen_dedup::DuplicateUpdate]) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::test]
async fn ack_commit_says_when_events_could_not_be_stored_or_not_in_time() {
    let h = harness(
        ServerConfig {
            ack_commit: true,
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        Some(Box::new(Refusing)),
    );
    let (status, body, _) = call(&h, post("/api/v1/ingest/falco", "application/json", ALERT)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["error"]["message"],
        "1 of 1 events could not be stored; they are in the dead letters"
    );
    let (status, _, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco?ack=enqueue",
            "application/json",
            ALERT,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let hold = Arc::new(AtomicBool::new(true));
    let config = ServerConfig {
        ack_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let h = harness(
        config,
        PipelineConfig::default(),
        Some(Box::new(Held(hold.clone()))),
    );
    let (status, body, _) = call(
        &h,
        post("/api/v1/ingest/falco?ack=commit", "application/json", ALERT),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the events were accepted but not stored within")
    );
    hold.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn alert_routes_say_when_alerting_is_off() {
    let h = default_harness();
    for path in ["/api/v1/slos", "/api/v1/alerts", "/api/v1/alerts/rules"] {
        let (status, body, _) = call(&h, get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("alerting is off"),
            "{body}"
        );
    }
}

/// `levels` arrays and objects nested around a string, which of the two at each level told by
/// the bits of `shape`.
fn nested(levels: usize, shape: u128) -> String {
    let mut out = "\"leaf [ { \\\" ] }\"".to_owned();
    for level in 0..levels {
        out = if shape >> (level % 128) & 1 == 1 {
            format!("[{out}]")
        } else {
            format!("{{\"k{level}\": {out}}}")
        };
    }
    out
}

fn falco_alert(rule: &str, deep: &str) -> String {
    format!(
        r#"{{"rule":"{rule}","priority":"Warning","time":"2026-02-11T09:01:02Z","output_fields":{{"k8s.ns.name":"shop","deep": {deep}}}}}"#
    )
}

#[tokio::test]
async fn an_alert_nested_past_the_limit_is_400_and_the_list_still_reads() {
    let h = default_harness();
    // The alert of the report: `output_fields` 128 levels deep.
    let deep = falco_alert("Deep", &nested(127, 0));
    let (status, body, _) = call(&h, post("/api/v1/ingest/falco", "application/json", deep)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["items"],
        serde_json::json!(["falco: $: nested more than 127 levels deep"])
    );
    // At the limit: stored, listed and fetched whole.
    let at_limit = falco_alert("At the limit", &nested(125, 0));
    let (status, _, _) = call(
        &h,
        post(
            "/api/v1/ingest/falco?ack=commit",
            "application/json",
            at_limit,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/api/v1/observations", "/api/v1/observations/1"] {
        let res = app(h.state.clone()).oneshot(get(path)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains(&nested(125, 0).replace(": ", ":")), "{path}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the nesting of what is stored, listing answers: items past the limit are refused
    /// at intake, the rest come back byte for byte (compact).
    #[test]
    fn any_nesting_stored_is_listed(shapes in proptest::collection::vec((0usize..=140, proptest::prelude::any::<u128>()), 1..6)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let h = default_harness();
            let mut kept = Vec::new();
            for (i, (levels, shape)) in shapes.iter().enumerate() {
                let deep = nested(*levels, *shape);
                let alert = falco_alert(&format!("r{i}"), &deep);
                let (status, _, _) = call(
                    &h,
                    post("/api/v1/ingest/falco?ack=commit", "application/json", alert),
                )
                .await;
                // The alert and `output_fields` are two levels.
                if levels + 2 <= zen_model::MAX_NESTING {
                    assert_eq!(status, StatusCode::OK);
                    kept.push(deep.replace(": ", ":"));
                } else {
                    assert_eq!(status, StatusCode::BAD_REQUEST);
                }
            }
            let res = app(h.state.clone()).oneshot(get("/api/v1/observations")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let text = std::str::from_utf8(&bytes).unwrap();
            serde_json::from_str::<&serde_json::value::RawValue>(text).unwrap();
            for deep in kept {
                assert!(text.contains(&deep));
            }
        });
    }
}

#[tokio::test]
async fn parse_errors_are_one_count_in_stats_and_metrics() {
    let h = default_harness();
    let bad_lines = format!("{ALERT}\n{{\"rule\": 5}}\n{{\"rule\": 6}}\n");
    let (status, _, _) = call(
        &h,
        post("/api/v1/ingest/falco", "application/x-ndjson", bad_lines),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = call(&h, post("/api/v1/ingest/audit", "application/json", "{")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, stats, _) = call(&h, get("/api/v1/stats")).await;
    assert_eq!(stats["pipeline"]["parse_errors"], 3, "{stats}");
}

#[tokio::test]
async fn every_error_answer_has_the_one_json_shape() {
    let h = harness(
        ServerConfig {
            body_limit: 64,
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        None,
    );
    let big = "x".repeat(100);
    for (req, status) in [
        (
            post("/api/v1/ingest/falco", "application/json", big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (get("/no/such/route"), StatusCode::NOT_FOUND),
        (
            Request::delete("/api/v1/stats")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (get("/api/v1/observations?after=x"), StatusCode::BAD_REQUEST),
        (get("/api/v1/observations/x"), StatusCode::BAD_REQUEST),
        (
            post("/api/v1/ingest/falco?ack=x", "application/json", "{}"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let what = format!("{} {}", req.method(), req.uri());
        let (got, body, _) = call(&h, req).await;
        assert_eq!(got, status, "{what}");
        let code = status
            .canonical_reason()
            .unwrap()
            .to_ascii_lowercase()
            .replace(' ', "_");
        assert_eq!(body["error"]["code"], code.as_str(), "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn readyz_verbose_lists_the_sources_and_a_degraded_one_does_not_fail_it() {
    let h = default_harness();
    h.state.sources.set(
        "policyreports.wgpolicyk8s.io",
        zen_pipeline::SourceStatus {
            state: zen_pipeline::SourceState::Degraded,
            detail: "the kind is not served (its CRD is not installed); trying again".to_owned(),
            objects: 0,
            open_findings: 0,
        },
    );
    let res = app(h.state.clone())
        .oneshot(get("/readyz?verbose"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("[+]draining ok"), "{text}");
    assert!(
        text.contains("[+]source policyreports.wgpolicyk8s.io degraded: the kind is not served"),
        "{text}"
    );
    assert!(text.ends_with("readyz check passed\n"), "{text}");
    let (_, stats, _) = call(&h, get("/api/v1/stats")).await;
    assert_eq!(
        stats["sources"]["policyreports.wgpolicyk8s.io"]["state"],
        "degraded"
    );
}

#[tokio::test]
async fn rate_limits_per_token_and_per_source_answer_429_with_retry_after() {
    use zen_server::limits::{Limits, Rate};
    let tokens = Tokens::new(vec![
        Token::new("falco", Scope::Ingest, "ingest-secret-0000"),
        Token::new("grafana", Scope::Read, "read-secret-00000"),
    ])
    .unwrap();
    let h = harness(
        ServerConfig {
            tokens,
            limits: Limits {
                // Far slower than the test runs: refills do not disturb it.
                per_token: Rate { rate: 1, burst: 3 },
                per_source: Rate { rate: 1, burst: 5 },
            },
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        None,
    );
    let ingest = |source: &str, n: usize| {
        Request::post(format!("/api/v1/ingest/{source}"))
            .header(header::AUTHORIZATION, "Bearer ingest-secret-0000")
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(format!("{ALERT}\n").repeat(n)))
            .unwrap()
    };
    // The source's bucket holds 5 events: 4, then 2 more is one too many; a request of more
    // than it ever holds is too large rather than early.
    assert_eq!(call(&h, ingest("falco", 4)).await.0, StatusCode::ACCEPTED);
    let (status, body, headers) = call(&h, ingest("falco", 2)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("source"),
        "{body}"
    );
    let wait: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // The source's last event, and the token's third request; then its bucket is spent, and
    // another token has its own.
    assert_eq!(call(&h, ingest("falco", 1)).await.0, StatusCode::ACCEPTED);
    let (status, body, headers) = call(&h, ingest("trivy", 1)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("token"),
        "{body}"
    );
    assert!(headers.contains_key(header::RETRY_AFTER));
    let read = || {
        Request::get("/api/v1/stats")
            .header(header::AUTHORIZATION, "Bearer read-secret-00000")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&h, read()).await.0, StatusCode::OK);
    // What was refused was not submitted: 5 events in all.
    let (_, stats, _) = call(&h, read()).await;
    assert_eq!(stats["pipeline"]["received"], 5, "{stats}");
    let h2 = harness(
        ServerConfig {
            limits: Limits {
                per_token: Rate::default(),
                per_source: Rate { rate: 1, burst: 5 },
            },
            ..ServerConfig::default()
        },
        PipelineConfig::default(),
        None,
    );
    let open = |n: usize| {
        post(
            "/api/v1/ingest/falco",
            "application/x-ndjson",
            format!("{ALERT}\n").repeat(n),
        )
    };
    let (status, body, _) = call(&h2, open(6)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(call(&h2, open(5)).await.0, StatusCode::ACCEPTED);
}
