//! Coverage-guided fuzz targets for zen-watcher (`cargo xtask fuzz`, which runs `cargo +nightly
//! fuzz`): every format reader, the split into documents, YAML, gzip bodies, the filter
//! language, the configuration loader and the ingest handler. The targets (`fuzz_targets/`) are
//! a line each; what they check is here:
//!
//! - a reader never panics, and its one-pass read and the split into documents (the fallback)
//!   agree on every payload the one-pass read takes without a problem ([`format`]);
//! - the ingest handler answers every request — any source, query, headers and body, gzip or
//!   not — with a success or a 4xx whose body is a JSON error saying what is wrong
//!   ([`Ingest::answer`]), never a 5xx;
//! - the filter language and the configuration loader refuse what they cannot read with an
//!   error, and never panic.
//!
//! The configuration loader is the daemon's own `config.rs`, compiled in here (the binary has
//! no library to link).

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use zen_model::{Context, Format, Normalizer, Syntax, Timestamp};
use zen_pipeline::{Kept, Pipeline, PipelineConfig, Sink, SinkError};

#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../crates/zen-watcher/src/config.rs"]
mod config;

fn ctx() -> Context {
    Context::received_at(Timestamp::UNIX_EPOCH)
}

/// Reads `data` as `format`: never a panic; where the one-pass read takes it without a problem,
/// the split into documents gives the same events and ignores as many.
pub fn format(format: Format, data: &[u8]) {
    let normalizer = Normalizer::default();
    let Ok(read) = normalizer.normalize(format, data, &ctx()) else {
        return;
    };
    if !read.errors.is_empty() {
        return;
    }
    let split = normalizer
        .normalize_documents(format, data, &ctx())
        .unwrap_or_else(|e| panic!("the one-pass read took it, the split refused it: {e}"));
    assert!(
        split.errors.is_empty(),
        "the one-pass read took it, the split found problems: {:?}",
        split.errors
    );
    assert_eq!(read.ignored, split.ignored, "ignored items differ");
    let json = |n: &zen_model::Normalized| serde_json::to_string(&n.events).unwrap_or_default();
    assert_eq!(json(&read), json(&split), "events differ");
}

/// The format a fuzz input's first byte picks, and the rest.
pub fn pick(data: &[u8]) -> Option<(Format, &[u8])> {
    let (first, rest) = data.split_first()?;
    Some((Format::ALL[usize::from(*first) % Format::ALL.len()], rest))
}

/// The split into documents, any format: never a panic.
pub fn documents(data: &[u8]) {
    if let Some((format, rest)) = pick(data) {
        let _ = Normalizer::default().normalize_documents(format, rest, &ctx());
        let _ = Syntax::detect(rest);
    }
}

/// YAML, any format: never a panic.
pub fn yaml(data: &[u8]) {
    if let Some((format, rest)) = pick(data) {
        let _ = Normalizer::default().normalize_text(format, Syntax::Yaml, rest, &ctx());
    }
}

/// A filter expression: compiled, or refused with an error; when compiled, checked against
/// events of every format.
pub fn filter(data: &[u8]) {
    let Ok(expression) = std::str::from_utf8(data) else {
        return;
    };
    let config = zen_filter::FilterConfig {
        global: zen_filter::FilterRules {
            expression: Some(expression.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    if let Ok(filter) = zen_filter::Filter::compile(&config) {
        for event in sample_events() {
            let _ = filter.check(event);
        }
    }
}

fn sample_events() -> &'static [zen_model::Event] {
    static EVENTS: OnceLock<Vec<zen_model::Event>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let alert = br#"{"rule":"Terminal shell in container","priority":"Critical","time":"2026-02-11T09:01:02Z","output":"a shell","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart","proc.cmdline":"bash -i","n":3}}"#;
        let generic = br#"{"title":"x","severity":"low","namespace":"a","nested":{"list":[1,"two",null]}}"#;
        let n = Normalizer::default();
        [(Format::Falco, &alert[..]), (Format::Generic, &generic[..])]
            .into_iter()
            .filter_map(|(f, d)| n.normalize(f, d, &ctx()).ok())
            .flat_map(|o| o.events)
            .collect()
    })
}

/// The configuration loader on a file of `data`: loaded, or refused with an error.
pub fn config(data: &[u8]) {
    static FILE: OnceLock<Option<tempfile::NamedTempFile>> = OnceLock::new();
    let Some(file) = FILE
        .get_or_init(|| tempfile::NamedTempFile::new().ok())
        .as_ref()
    else {
        return;
    };
    // Only the file: no environment, no flags.
    if std::fs::write(file.path(), data).is_ok() {
        let _ = config::load(Some(file.path()), Vec::new(), &[]);
    }
}

/// A sink that keeps nothing: the pipeline behind the fuzzed handler runs without a disk.
#[derive(Debug)]
struct Discard;

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }
    fn write(&mut self, _: &str, _: &[Kept]) -> Result<(), SinkError> {
        Ok(())
    }
    fn apply_duplicates(&mut self, _: &[zen_dedup::DuplicateUpdate]) -> Result<(), SinkError> {
        Ok(())
    }
}

/// An ingestion request as the fuzzer makes it.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct IngestRequest {
    /// The path's source: a format's name (by index) unless `raw_source`.
    pub format: u8,
    pub raw_source: Option<String>,
    pub query: String,
    /// Content types by index (JSON, NDJSON, YAML, text, none), unless `raw_type`.
    pub content_type: u8,
    pub raw_type: Option<String>,
    /// Compressed with gzip (as `Content-Encoding: gzip`) before it is sent.
    pub gzip: bool,
    pub body: Vec<u8>,
}

/// The real router with a real pipeline (into [`Discard`]) and store, on a runtime of its own.
#[derive(Debug)]
pub struct Ingest {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

impl Ingest {
    /// The one harness of this process.
    pub fn get() -> &'static Ingest {
        static INGEST: OnceLock<Ingest> = OnceLock::new();
        INGEST.get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let (store, _) = zen_store::open(&dir.path().join("zen.db")).expect("a store");
            let pipeline = Pipeline::start(
                PipelineConfig::default(),
                Arc::new(Normalizer::default()),
                Box::new(Discard),
            )
            .expect("a pipeline");
            let config = zen_server::ServerConfig::default();
            let state = zen_server::AppState {
                pipeline: Arc::new(pipeline),
                store: Arc::new(store),
                limiters: Arc::new(zen_server::limits::Limiters::new(config.limits)),
                config: Arc::new(config),
                draining: Arc::default(),
                exporter: None,
                alerting: None,
                history: None,
                insights: None,
                sources: zen_pipeline::SourceStates::default(),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let router = runtime.block_on(async { zen_server::app(state) });
            Ingest {
                runtime,
                router,
                _dir: dir,
            }
        })
    }

    /// Sends `request` as it is made; checks the answer.
    pub fn request(&self, request: &IngestRequest) {
        let source = match &request.raw_source {
            Some(raw) => raw.clone(),
            None => Format::ALL[usize::from(request.format) % Format::ALL.len()]
                .as_str()
                .to_owned(),
        };
        let content_type = match &request.raw_type {
            Some(raw) => Some(raw.as_str()),
            None => [
                Some("application/json"),
                Some("application/x-ndjson"),
                Some("application/yaml"),
                Some("text/plain"),
                None,
            ][usize::from(request.content_type) % 5],
        };
        let uri = format!("/api/v1/ingest/{source}?{}", request.query);
        let Ok(mut builder) = std::panic::catch_unwind(|| Request::post(uri.as_str())) else {
            return;
        };
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let body = if request.gzip {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            gzip(&request.body)
        } else {
            request.body.clone()
        };
        // What the HTTP layer refuses before the handler (a bad URI or header) is not ours.
        if let Ok(req) = builder.body(Body::from(body)) {
            self.answer(req);
        }
    }

    /// `body` sent as a gzip body, as it is (whether it is gzip or not).
    pub fn gzip_body(&self, body: &[u8]) {
        let req = Request::post("/api/v1/ingest/generic")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(body.to_vec()));
        if let Ok(req) = req {
            self.answer(req);
        }
    }

    /// The answer to `req`: a success, or a 4xx (or 429, 503) with a JSON error saying what is
    /// wrong; never a 5xx of the handler's own.
    fn answer(&self, req: Request<Body>) {
        let (status, body) = self.runtime.block_on(async {
            let res = self
                .router
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|e| match e {});
            let status = res.status();
            let body = res.into_body().collect().await.map(|b| b.to_bytes());
            (status, body.unwrap_or_default())
        });
        if status.is_success() {
            return;
        }
        assert!(
            status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        // axum's own refusals (a path it cannot route, a method) are plain text.
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            return;
        }
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "answered {status} without a JSON error ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "answered {status} without saying what is wrong: {json}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}
