//! The daemon's per-second history: a recorder thread that samples the pipeline's counts and
//! the host collectors' readings once a second into a [`zen_history::History`], and the routes
//! that read it — `GET /api/v1/meta` (series, tiers, server time), `GET /api/v1/query`, and
//! `GET /api/v1/stream`, Server-Sent Events of each second as it is recorded.
//!
//! The series are the lines of zen-export's panels, reduced each second from the exporter's
//! readings (`node_cpu_seconds_total{mode="user"}`, `…_seconds:p95{stage="total"}`); counters
//! are kept as rates per second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use zen_export::Exporter;
use zen_export::panels::{self, PANELS, Reducer, Stored};
use zen_history::{Frame, History, Kind, Query, SeriesId, TIERS};

use crate::{ApiError, AppState, Json};

/// The history the recorder writes and the routes read.
pub type Shared = Arc<Mutex<History>>;

/// The wall clock in whole seconds since 1970.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The thread recording the history once a second, until dropped; dropping it writes what the
/// history's journals lack (`History::close`).
#[derive(Debug)]
pub struct Recorder {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    history: Shared,
}

impl Recorder {
    /// Starts recording what the panels read from `exporter`'s readings.
    pub fn start(history: Shared, exporter: Arc<Exporter>) -> std::io::Result<Recorder> {
        let (stop, stopped) = mpsc::channel();
        let thread = {
            let history = history.clone();
            std::thread::Builder::new()
                .name("zen-history".to_owned())
                .spawn(move || record(&history, &exporter, &stopped))?
        };
        Ok(Recorder {
            stop: Some(stop),
            thread: Some(thread),
            history,
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // The thread wakes when its channel closes.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = h.close() {
            tracing::error!(error = %e, "the history could not be written at stop");
        }
    }
}

/// Series ids by name, and the samples of one second.
#[derive(Default)]
struct Seconds {
    ids: HashMap<String, SeriesId>,
    values: Vec<(SeriesId, f64)>,
}

impl Seconds {
    /// Adds a value of the series `name`, registering it the first time.
    fn add(&mut self, h: &mut History, name: &str, kind: Kind, v: f64) {
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => match h.series(name, kind) {
                Ok(id) => *self.ids.entry(name.to_owned()).or_insert(id),
                Err(e) => {
                    tracing::warn!(error = %e, series = name, "a series is not recorded");
                    return;
                }
            },
        };
        self.values.push((id, v));
    }
}

/// The recorder's loop: the panels' series at each wall-clock second, until `stop` closes.
fn record(history: &Mutex<History>, exporter: &Exporter, stop: &mpsc::Receiver<()>) {
    let mut seconds = Seconds::default();
    let mut reducer = Reducer::default();
    loop {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let wait = Duration::from_secs(1)
            .saturating_sub(Duration::from_nanos(u64::from(since.subsec_nanos())));
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let second = now();
        exporter.readings(&mut |name, labels, reading| reducer.add(name, labels, reading));
        let mut h = history.lock().unwrap_or_else(PoisonError::into_inner);
        seconds.values.clear();
        reducer.finish(&mut |name, stored, v| {
            let kind = match stored {
                Stored::Counter => Kind::Counter,
                Stored::Gauge => Kind::Gauge,
            };
            seconds.add(&mut h, name, kind, v);
        });
        if let Err(e) = h.record(second, &seconds.values) {
            tracing::debug!(error = %e, "a second was not recorded");
        }
        for why in h.take_damage() {
            tracing::error!(damage = why, "history");
        }
    }
}

pub(crate) fn history_of(s: &AppState) -> Result<&Shared, ApiError> {
    s.history
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the history is not kept"))
}

/// `GET /api/v1/meta`: the panels with the series each draws (and its legend), every series
/// recorded, the tiers and the server's time.
pub(crate) async fn meta(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let h = history_of(&s)?
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let series: Vec<&str> = h.names().map(|(_, n)| n).collect();
    let tiers: Vec<Value> = TIERS
        .iter()
        .map(|t| json!({ "step_seconds": t.step, "retention_seconds": t.retention }))
        .collect();
    let panels: Vec<Value> = PANELS
        .iter()
        .map(|p| {
            let members: Vec<Value> = panels::members(p, &series)
                .into_iter()
                .map(|(name, legend)| json!({ "name": name, "legend": legend }))
                .collect();
            let thresholds: Vec<Value> = p
                .thresholds
                .iter()
                .map(|(value, colour)| json!({ "value": value, "colour": colour }))
                .collect();
            json!({
                "id": p.id, "section": p.section.name(), "title": p.title, "about": p.about,
                "unit": p.unit, "base": p.base, "thresholds": thresholds, "series": members,
            })
        })
        .collect();
    Ok(Json(json!({
        "now": now(), "tiers": tiers, "panels": panels, "series": series,
    })))
}

/// A time of a query: seconds since 1970, or at most 0 for seconds before `now`.
pub(crate) fn time(text: &str, name: &str, now: i64) -> Result<i64, ApiError> {
    let t: i64 = text.parse().map_err(|_| {
        ApiError::bad(format!(
            "{name}: expected seconds (since 1970, or before now when negative), got {text:?}"
        ))
    })?;
    Ok(if t <= 0 { now + t } else { t })
}

/// What a query of the history asks for: `series=NAME` (repeated; none means every series),
/// `from`, `to` ([`time`]), `points`, and for an export `format`.
struct Range {
    names: Vec<String>,
    from: i64,
    to: i64,
    points: usize,
    format: Option<String>,
}

impl Range {
    /// Reads the query string: `from` defaults to an hour ago, `to` to now, `points` to 1,000.
    fn parse(raw: Option<String>, now: i64, with_format: bool) -> Result<Range, ApiError> {
        let mut r = Range {
            names: Vec::new(),
            from: now - 3_600,
            to: now,
            points: 1_000,
            format: None,
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match &*k {
                "series" => r.names.push(v.into_owned()),
                "from" => r.from = time(&v, "from", now)?,
                "to" => r.to = time(&v, "to", now)?,
                "points" => {
                    r.points = v.parse().map_err(|_| {
                        ApiError::bad(format!("points: expected a number, got {v:?}"))
                    })?;
                }
                "format" if with_format => r.format = Some(v.into_owned()),
                other => {
                    let expected = if with_format {
                        "format, series, from, to, points"
                    } else {
                        "series, from, to, points"
                    };
                    return Err(ApiError::bad(format!(
                        "unknown parameter {other:?}: expected {expected}"
                    )));
                }
            }
        }
        Ok(r)
    }

    /// The frame of the range, with the names of its series (every series when none named).
    async fn frame(self, s: &AppState, now: i64) -> Result<(Vec<String>, Frame), ApiError> {
        let history = history_of(s)?.clone();
        crate::blocking(move || {
            let mut h = history.lock().unwrap_or_else(PoisonError::into_inner);
            let (names, ids) = ids_of(&h, &self.names)?;
            let frame = h
                .query(
                    &Query {
                        series: &ids,
                        from: self.from,
                        to: self.to,
                        points: self.points,
                    },
                    now,
                )
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok::<_, ApiError>((names, frame))
        })
        .await?
    }
}

/// A column of values as JSON: `null` where there is none.
fn column(v: &[f64]) -> Vec<Value> {
    v.iter()
        .map(|x| if x.is_finite() { json!(x) } else { Value::Null })
        .collect()
}

/// `GET /api/v1/query?series=NAME&series=…&from=-3600&to=0&points=N`: columnar points of the
/// named series, from the finest tier that holds `from`.
pub(crate) async fn query(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let now = now();
    let range = Range::parse(raw, now, false)?;
    if range.names.is_empty() {
        return Err(ApiError::bad("series: at least one (see /api/v1/meta)"));
    }
    let (names, frame) = range.frame(&s, now).await?;
    Ok(Json(columns(&names, &frame)))
}

/// A frame as `/api/v1/query` answers it.
fn columns(names: &[String], frame: &Frame) -> Value {
    let series: Vec<Value> = names
        .iter()
        .zip(&frame.series)
        .map(|(n, p)| json!({ "name": n, "avg": column(&p.avg), "min": column(&p.min), "max": column(&p.max) }))
        .collect();
    json!({
        "tier_step": frame.tier_step,
        "step": frame.step,
        "times": frame.times,
        "series": series,
    })
}

/// A field of CSV (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// `GET /api/v1/export?format=csv|json&series=…&from=…&to=…&points=…`: the range as a file to
/// download. CSV: a header `timestamp,<series…>`, then one row per step, the time in RFC 3339
/// (UTC) and each series' average over the step (empty where there is none). JSON: what
/// `/api/v1/query` answers. Every series when none is named.
pub(crate) async fn export(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let now = now();
    let range = Range::parse(raw, now, true)?;
    let format = range.format.clone().unwrap_or_else(|| "csv".to_owned());
    if format != "csv" && format != "json" {
        return Err(ApiError::bad(format!(
            "format: expected csv or json, got {format:?}"
        )));
    }
    let (names, frame) = range.frame(&s, now).await?;
    let stamp = jiff::Timestamp::from_second(now).map_or_else(
        |_| now.to_string(),
        |t| t.strftime("%Y%m%dT%H%M%SZ").to_string(),
    );
    let file = format!("attachment; filename=\"zen-watcher-{stamp}.{format}\"");
    let (kind, body) = if format == "csv" {
        let mut out = String::from("timestamp");
        for n in &names {
            out.push(',');
            csv_field(&mut out, n);
        }
        out.push('\n');
        for (i, t) in frame.times.iter().enumerate() {
            match jiff::Timestamp::from_second(*t) {
                Ok(t) => write!(out, "{t}"),
                Err(_) => write!(out, "{t}"),
            }
            .unwrap_or_default();
            for p in &frame.series {
                out.push(',');
                if let Some(v) = p.avg.get(i).filter(|v| v.is_finite()) {
                    let _ = write!(out, "{v}");
                }
            }
            out.push('\n');
        }
        ("text/csv; charset=utf-8", out)
    } else {
        ("application/json", columns(&names, &frame).to_string())
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, kind.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}

/// Seconds a new stream starts with, when it does not resume one.
const BACKFILL: i64 = 60;

/// The series a request names (`series=`, repeated), or every series; unknown ones refused.
fn ids_of(h: &History, names: &[String]) -> Result<(Vec<String>, Vec<SeriesId>), ApiError> {
    if names.is_empty() {
        let all: Vec<(SeriesId, &str)> = h.names().collect();
        return Ok((
            all.iter().map(|(_, n)| (*n).to_owned()).collect(),
            all.iter().map(|(id, _)| *id).collect(),
        ));
    }
    let ids = names
        .iter()
        .map(|n| {
            h.find(n).ok_or_else(|| {
                ApiError::bad(format!("series {n:?}: not recorded (see /api/v1/meta)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((names.to_vec(), ids))
}

/// What a stream has still to send.
struct Streaming {
    history: Shared,
    /// Every series, not those named: the list follows the series registered since.
    all: bool,
    names: Vec<String>,
    ids: Vec<SeriesId>,
    /// The next second to send.
    next: i64,
    queue: std::collections::VecDeque<Event>,
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Streaming {
    /// Queues an event per second recorded from `next` on: `id` the second, data the values.
    fn catch_up(&mut self) {
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = h.last() else { return };
        if last < self.next {
            return;
        }
        // Series registered (a source's first event) or dropped since the last list: a new
        // list before the seconds that carry them.
        if self.all
            && !h
                .names()
                .map(|(_, n)| n)
                .eq(self.names.iter().map(String::as_str))
        {
            (self.ids, self.names) = h.names().map(|(id, n)| (id, n.to_owned())).unzip();
            self.queue.push_back(
                Event::default()
                    .event("series")
                    .data(json!(self.names).to_string()),
            );
        }
        let query = Query {
            series: &self.ids,
            from: self.next,
            to: last,
            points: zen_history::MAX_POINTS,
        };
        let Ok(frame) = h.query(&query, last) else {
            return;
        };
        drop(h);
        for (i, t) in frame.times.iter().enumerate() {
            let values: Vec<Value> = frame
                .series
                .iter()
                .map(|p| {
                    p.avg
                        .get(i)
                        .filter(|v| v.is_finite())
                        .map_or(Value::Null, |v| json!(v))
                })
                .collect();
            if values.iter().all(Value::is_null) {
                continue; // not recorded
            }
            let data = json!({ "t": t, "values": values }).to_string();
            self.queue
                .push_back(Event::default().id(t.to_string()).data(data));
        }
        self.next = last + 1;
    }
}

/// `GET /api/v1/stream?series=…`: Server-Sent Events. First `event: series` with the names,
/// then every recorded second as an event whose `id` is the second and whose data is
/// `{"t", "values"}` (in the names' order): the last minute at once, then each second as it is
/// recorded. Sent `Last-Event-ID`, it resumes after that second (within the last hour), so a
/// reconnect misses nothing. Without `series`, every series: a new `event: series` comes
/// before the first second that has a series registered since (a source's first event, after
/// the page connected). Streams end within a second of the daemon starting to stop.
pub(crate) async fn stream(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let history = history_of(&s)?.clone();
    let mut names = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*k {
            "series" => names.push(v.into_owned()),
            other => {
                return Err(ApiError::bad(format!(
                    "unknown parameter {other:?}: expected series"
                )));
            }
        }
    }
    let all = names.is_empty();
    let (names, ids) = {
        let h = history.lock().unwrap_or_else(PoisonError::into_inner);
        ids_of(&h, &names)?
    };
    let now = now();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok());
    let next = match resume {
        Some(id) => (id + 1).max(now - 3_600),
        None => now - BACKFILL,
    };
    let mut first = std::collections::VecDeque::new();
    first.push_back(
        Event::default()
            .event("series")
            .data(json!(names).to_string()),
    );
    let state = Streaming {
        history,
        all,
        names,
        ids,
        next,
        queue: first,
        draining: s.draining.clone(),
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queue.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), state));
            }
            if state.draining.load(Ordering::Acquire) {
                return None;
            }
            state.catch_up();
            if state.queue.is_empty() {
                // The recorder writes at each second: look again a little after the next one.
                let since = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let wait = Duration::from_millis(1_150)
                    .saturating_sub(Duration::from_nanos(u64::from(since.subsec_nanos())));
                tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
