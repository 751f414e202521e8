//! The advisor in the daemon: a thread that every [`EVERY`] reads the history into zen-advisor —
//! the panels' series over the last hour (trends, anomalies, regressions of latency percentiles
//! and error rates), memory, the queue, each filesystem and each SLO's error budget over the
//! last three days (forecasts), and the latest readings with the settings (bottlenecks and
//! recommendations) — and publishes what it finds as metrics and at `GET /api/v1/insights`.
//! `POST /api/v1/insights/recommendations/{id}` moves a recommendation's state. With
//! `advisor.auto_apply`, its tuner moves the allowed pipeline settings as the recommendations
//! say, keeps what helps and reverts what does not (`zen_advisor::tune`);
//! `POST /api/v1/insights/tuning/{id}/undo` reverts a change.

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use zen_advisor::advice::Event;
use zen_advisor::advice::Input;
use zen_advisor::tune::{Change, Move, Outcome};
use zen_advisor::{Advisor, Facts, Insights, Knob, Limit, Observed, Resource, Series, Tuner};
use zen_export::panels::{self, PANELS};
use zen_history::{History, Query, SeriesId};
use zen_pipeline::Pipeline;

use crate::history::{Shared, now};
use crate::{ApiError, AppState, Json};

/// The kinds of recommendation, each counted in `zen_watcher_recommendations_open{kind}`.
pub const KINDS: [&str; 13] = [
    "batch_age",
    "sink",
    "batch_size",
    "queue",
    "replica",
    "retention",
    "disk",
    "exhaustion",
    "dedup",
    "cache",
    "noisy_rule",
    "collector_interval",
    "queue_wait",
];

/// The settings the recommendations weigh, where the data is kept, and how often to look.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval: Duration,
    /// How much history a forecast needs.
    pub forecast_after: Duration,
    pub queue_capacity: usize,
    pub retention: Duration,
    /// The data directory: the filesystem that holds it is the one retention protects.
    pub data_dir: std::path::PathBuf,
    pub kubernetes: bool,
    /// P95 from receipt to commit should be under this.
    pub latency_objective: Duration,
    pub dedup_max_entries: usize,
    pub dedup_window: Duration,
    pub cache_ttl: Duration,
    /// How often the host and container collectors read.
    pub collect_interval: Duration,
}

/// What the advisor reads besides the history at each pass: the daemon's threads, and the
/// counters [`zen_export::Exporter::advised`] gives, rated over up to the last hour (a snapshot at the
/// first pass, then one every five minutes).
#[derive(Debug)]
struct Readings {
    threads_before: Option<(i64, std::collections::BTreeMap<String, f64>)>,
    /// Cores by thread name between the last two readings that differed.
    threads_now: Vec<(String, f64)>,
    /// Ingestion requests refused with 429 so far, at each pass of the last 15 minutes.
    refused: std::collections::VecDeque<(i64, f64)>,
    snapshots: std::collections::VecDeque<(i64, std::collections::HashMap<String, f64>)>,
}

/// A pass's readings: cores by thread name since the pass before, most first; counters per
/// second, by series (`metric`, or `metric\x1fsource\x1frule` for rules); and requests
/// refused with 429 per second since the pass before.
#[derive(Debug, Default)]
struct Taken {
    threads: Vec<(String, f64)>,
    rates: Option<std::collections::HashMap<String, f64>>,
    refused: Option<f64>,
}

const RULES: &str = "zen_watcher_observations_by_rule_total";

impl Readings {
    fn new() -> Readings {
        Readings {
            threads_before: None,
            threads_now: Vec::new(),
            refused: std::collections::VecDeque::new(),
            snapshots: std::collections::VecDeque::new(),
        }
    }

    fn take(&mut self, exporter: &zen_export::Exporter, pipeline: &Pipeline, now: i64) -> Taken {
        let mut taken = Taken::default();
        // The collectors read the threads every 10 s: a pass that finds them unchanged keeps
        // the rates of the one before.
        let mut totals = std::collections::BTreeMap::new();
        exporter.readings(&mut |name, labels, reading| {
            if name == "zen_watcher_thread_cpu_seconds_total"
                && let (zen_export::panels::Reading::Number(v), Some((_, thread))) =
                    (reading, labels.iter().find(|(k, _)| *k == "thread"))
            {
                totals.insert((*thread).to_owned(), v);
            }
        });
        match &self.threads_before {
            Some((_, before)) if *before == totals => taken.threads = self.threads_now.clone(),
            Some((then, before)) if now > *then => {
                taken.threads = totals
                    .iter()
                    .map(|(n, t)| {
                        (
                            n.clone(),
                            (t - before.get(n).unwrap_or(&0.0)) / (now - then) as f64,
                        )
                    })
                    .collect();
                taken.threads.sort_by(|a, b| b.1.total_cmp(&a.1));
                self.threads_now = taken.threads.clone();
                self.threads_before = Some((now, totals));
            }
            Some(_) => {}
            None => self.threads_before = Some((now, totals)),
        }
        let mut current: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
        exporter.advised(&mut |name, labels, reading| {
            let zen_export::panels::Reading::Number(v) = reading else {
                return;
            };
            let get = |k: &str| labels.iter().find(|(l, _)| *l == k).map_or("", |(_, v)| *v);
            let key = if name == RULES {
                format!("{name}\x1f{}\x1f{}", get("source"), get("rule"))
            } else {
                name.to_owned()
            };
            *current.entry(key).or_default() += v;
        });
        // Submissions the full queue refused: the 429 answers of ingestion.
        let refused = pipeline.counts().rejected_full as f64;
        if let Some((then, before)) = self.refused.back()
            && now > *then
        {
            taken.refused = Some((refused - before).max(0.0) / (now - then) as f64);
        }
        self.refused.push_back((now, refused));
        while self.refused.front().is_some_and(|(t, _)| now - t > 900) {
            self.refused.pop_front();
        }
        if let Some((then, old)) = self.snapshots.front()
            && now > *then
        {
            let seconds = (now - then) as f64;
            taken.rates = Some(
                current
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (v - old.get(k).unwrap_or(&0.0)).max(0.0) / seconds,
                        )
                    })
                    .collect(),
            );
        }
        if self.snapshots.back().is_none_or(|(t, _)| now - t >= 300) {
            self.snapshots.push_back((now, current));
        }
        while self.snapshots.len() > 1
            && self.snapshots.front().is_some_and(|(t, _)| now - t > 3_600)
        {
            self.snapshots.pop_front();
        }
        taken
    }

    /// Requests refused with 429 per second over the last `window` seconds (NaN with fewer
    /// than two passes in it).
    fn refused_over(&self, now: i64, window: i64) -> f64 {
        let mut within = self.refused.iter().filter(|(t, _)| now - t <= window);
        match (within.next(), self.refused.back()) {
            (Some((t0, v0)), Some((t1, v1))) if t1 > t0 => (v1 - v0).max(0.0) / (t1 - t0) as f64,
            _ => f64::NAN,
        }
    }
}

/// The advisor and what its last pass found, and the tuner when one may change settings.
#[derive(Debug, Default)]
pub struct Latest {
    advisor: Advisor,
    insights: Insights,
    tuner: Option<Tuner>,
    /// Changes made through the API (alert rules, recommendations applied), newest last.
    changes: Vec<Event>,
}

/// How many of the API's changes are kept as events.
const CHANGES_KEPT: usize = 100;

impl Latest {
    /// With a tuner that changes the settings it allows.
    pub fn tuning(tuner: Tuner) -> Latest {
        Latest {
            tuner: Some(tuner),
            ..Latest::default()
        }
    }
}

impl Latest {
    /// What the last pass found.
    pub fn insights(&self) -> &Insights {
        &self.insights
    }

    /// Notes a change of the configuration made at run time: a regression that begins near
    /// it is tied to it.
    pub fn changed(&mut self, what: String) {
        if self.changes.len() == CHANGES_KEPT {
            self.changes.remove(0);
        }
        self.changes.push(Event { at: now(), what });
    }
}

pub type SharedInsights = Arc<Mutex<Latest>>;

/// The advisor's thread, until dropped.
#[derive(Debug)]
pub struct Advising {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Advising {
    /// Starts the thread: a pass at once, then one every `settings.interval`.
    pub fn start(
        history: Shared,
        pipeline: Arc<Pipeline>,
        exporter: Arc<zen_export::Exporter>,
        settings: Settings,
        latest: SharedInsights,
    ) -> std::io::Result<Advising> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zen-advisor".to_owned())
            .spawn(move || {
                let data_dir = std::fs::canonicalize(&settings.data_dir)
                    .unwrap_or_else(|_| settings.data_dir.clone());
                let started = Event {
                    at: now(),
                    what: format!("zen-watcher {} started", env!("CARGO_PKG_VERSION")),
                };
                let mut readings = Readings::new();
                loop {
                    let now = now();
                    let taken = readings.take(&exporter, &pipeline, now);
                    let mut l = latest.lock().unwrap_or_else(PoisonError::into_inner);
                    // The daemon's own events, that a regression may be tied to.
                    let mut events = vec![started.clone()];
                    events.extend(l.changes.iter().cloned());
                    if let Some(t) = &l.tuner {
                        events.extend(t.changes().iter().map(|c| Event {
                            at: c.at,
                            what: format!("the tuner set {} to {}", c.knob.key(), c.to),
                        }));
                    }
                    let found = pass(
                        &history,
                        &mut l.advisor,
                        &pipeline,
                        &settings,
                        &data_dir,
                        &events,
                        &taken,
                        now,
                    );
                    let latest_l = &mut *l;
                    if let Some(tuner) = &mut latest_l.tuner {
                        // Judged on what came after the change only.
                        let window = tuner.settle().clamp(2, 60);
                        let mut seen = observe(&history, now, window);
                        seen.rejected = readings.refused_over(now, window);
                        let before = tuner.changes().last().map(|c| (c.id, c.outcome));
                        let current = pipeline.tuning();
                        let wait = pipeline.queue_wait().as_secs_f64();
                        let value = |k: Knob| match k {
                            Knob::BatchAge => current.max_batch_age.as_secs_f64(),
                            Knob::BatchSize => current.max_batch_size as f64,
                            Knob::QueueWait => wait,
                        };
                        let moved = tuner.step(now, &found.recommendations, &value, seen);
                        if let Some(m) = moved {
                            apply(&pipeline, m);
                        }
                        if let Some(c) = tuner.changes().last()
                            && before != Some((c.id, c.outcome))
                        {
                            count(c);
                            if c.outcome == Outcome::Trying {
                                let _ = latest_l
                                    .advisor
                                    .set_state(&c.recommendation, zen_advisor::State::Applied);
                            }
                        }
                    }
                    publish(&found);
                    latest_l.insights = found;
                    drop(l);
                    match stopped.recv_timeout(settings.interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Advising {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Advising {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The mount point that holds `dir`, of those the collectors read (`mounts`): the longest
/// that is a prefix of it.
fn data_filesystem<'m>(dir: &std::path::Path, mounts: &[&'m str]) -> Option<&'m str> {
    mounts
        .iter()
        .filter(|m| dir.starts_with(m))
        .max_by_key(|m| m.len())
        .copied()
}

/// The label value of `key` in a series name `metric{…key="v"…}`.
fn label<'n>(name: &'n str, key: &str) -> Option<&'n str> {
    let start = name.find(&format!("{key}=\""))? + key.len() + 2;
    let len = name[start..].find('"')?;
    Some(&name[start..start + len])
}

/// How many values a column has.
fn known(values: &[f64]) -> usize {
    values.iter().filter(|v| v.is_finite()).count()
}

/// The median of the last `n` values of a column that have one (NaN when none).
fn recent_median(values: &[f64], n: usize) -> f64 {
    let mut v: Vec<f64> = values
        .iter()
        .rev()
        .filter(|x| x.is_finite())
        .take(n)
        .copied()
        .collect();
    zen_advisor::stats::median(&mut v)
}

/// Moves a pipeline setting.
fn apply(pipeline: &Pipeline, m: Move) {
    let mut t = pipeline.tuning();
    match m.knob {
        Knob::BatchAge => t.max_batch_age = Duration::from_secs_f64(m.value.max(0.0)),
        Knob::BatchSize => t.max_batch_size = m.value.round().max(1.0) as usize,
        Knob::QueueWait => {
            pipeline.set_queue_wait(Duration::from_secs_f64(m.value.clamp(0.0, 10.0)));
            return;
        }
    }
    pipeline.tune(t);
}

/// Logs and counts a change's new outcome.
fn count(c: &Change) {
    let knob = match c.knob {
        Knob::BatchAge => "batch_age",
        Knob::BatchSize => "batch_size",
        Knob::QueueWait => "queue_wait",
    };
    let outcome = match c.outcome {
        Outcome::Trying => "applied",
        Outcome::Kept => "kept",
        Outcome::Reverted => "reverted",
        Outcome::Undone => "undone",
    };
    metrics::counter!("zen_watcher_tuning_changes_total", "knob" => knob, "outcome" => outcome)
        .increment(1);
    tracing::info!(change = c.id, knob, from = c.from, to = c.to, outcome, before = ?c.before, after = ?c.after, "tuning");
}

/// What a change is judged by, over the last `window` seconds at 1 s: P95 from receipt to
/// commit, and the daemon's CPU (share of its limit) per event a second (the requests refused
/// are the caller's to fill in, from its readings).
fn observe(history: &Mutex<History>, now: i64, window: i64) -> Observed {
    let mut h = history.lock().unwrap_or_else(PoisonError::into_inner);
    let names = [
        r#"zen_watcher_event_processing_duration_seconds:p95{stage="total"}"#,
        "zen_watcher_cpu_usage_percent",
        "zen_watcher_events_total",
    ];
    let ids: Vec<_> = names.iter().filter_map(|n| h.find(n)).collect();
    let none = Observed {
        p95: f64::NAN,
        cpu_per_event: f64::NAN,
        rejected: f64::NAN,
    };
    if ids.len() != names.len() {
        return none;
    }
    let Ok(f) = h.query(
        &Query {
            series: &ids,
            from: now - window,
            to: now,
            points: zen_history::MAX_POINTS,
        },
        now,
    ) else {
        return none;
    };
    let m = |i: usize| recent_median(&f.series[i].avg, window as usize);
    Observed {
        p95: m(0),
        cpu_per_event: m(1) / m(2),
        rejected: f64::NAN,
    }
}

/// The series of a frame of the past (none when it could not be read).
fn earlier(f: &Option<zen_history::Frame>, now: i64) -> Vec<Series<'_>> {
    f.as_ref().map_or_else(Vec::new, |f| {
        f.series
            .iter()
            .map(|p| Series {
                start: f.times.first().copied().unwrap_or(now),
                step: f.step,
                values: &p.avg,
            })
            .collect()
    })
}

/// One pass: reads the history, asks the advisor.
#[allow(clippy::too_many_arguments)]
fn pass(
    history: &Mutex<History>,
    advisor: &mut Advisor,
    pipeline: &Pipeline,
    settings: &Settings,
    data_dir: &std::path::Path,
    events: &[Event],
    taken: &Taken,
    now: i64,
) -> Insights {
    // The history is locked for each read only: the recorder and the page's queries wait
    // for no computation.
    let query = |series: &[SeriesId], from: i64, to: i64, points: usize| {
        let q = Query {
            series,
            from,
            to,
            points,
        };
        let mut h = history.lock().unwrap_or_else(PoisonError::into_inner);
        h.query(&q, now).ok()
    };
    let (names, ids) = {
        let h = history.lock().unwrap_or_else(PoisonError::into_inner);
        let names: Vec<String> = h.names().map(|(_, n)| n.to_owned()).collect();
        let ids: Vec<SeriesId> = names.iter().filter_map(|n| h.find(n)).collect();
        (names, ids)
    };
    let mounts: Vec<&str> = names
        .iter()
        .filter(|n| n.starts_with("node_filesystem_avail_bytes{"))
        .filter_map(|n| label(n, "mountpoint"))
        .collect();
    let data_filesystem = data_filesystem(data_dir, &mounts).map(str::to_owned);
    let hour = query(&ids, now - 3_600, now, 360);
    // The same hour a day and a week earlier, for the trends' comparison.
    let back = |ago: i64| query(&ids, now - ago - 3_600, now - ago, 360);
    let (day_before, week_before) = (back(86_400), back(7 * 86_400));
    let column = |name: &str| -> Option<&[f64]> {
        let i = names.iter().position(|n| n == name)?;
        hour.as_ref().map(|f| f.series[i].avg.as_slice())
    };
    let last = |name: &str, n: usize| column(name).map_or(f64::NAN, |c| recent_median(c, n));
    let opt = |v: f64| v.is_finite().then_some(v);

    // The resources forecast, over the last three days at a minute (their daily pattern is
    // forecast from two days on).
    let mut wanted: Vec<(String, usize, Limit)> = Vec::new();
    let capacity = last(r#"zen_watcher_queue_capacity{queue="submissions"}"#, 1);
    for (i, n) in names.iter().enumerate() {
        let resource = if n == "node_memory_MemAvailable_bytes" {
            Some(("memory".to_owned(), Limit::FallsTo(0.0)))
        } else if n == r#"zen_watcher_queue_depth{queue="submissions"}"# && capacity > 0.0 {
            Some(("queue".to_owned(), Limit::RisesTo(capacity)))
        } else if n.starts_with("node_filesystem_avail_bytes{") {
            label(n, "mountpoint").map(|m| (format!("filesystem:{m}"), Limit::FallsTo(0.0)))
        } else if n.starts_with("zen_watcher_slo_error_budget_remaining_ratio{") {
            label(n, "slo").map(|s| (format!("error_budget:{s}"), Limit::FallsTo(0.0)))
        } else {
            None
        };
        if let Some((name, limit)) = resource {
            wanted.push((name, i, limit));
        }
    }
    // A filesystem mounted twice (a bind mount) reads the same to the byte: forecast once,
    // under its shortest mount point.
    let same = |a: Option<&[f64]>, b: Option<&[f64]>| {
        a.zip(b).is_some_and(|(a, b)| {
            known(a) > 0
                && a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        })
    };
    wanted.sort_by_key(|(name, _, _)| match name.starts_with("filesystem:") {
        true => (1, name.len()),
        false => (0, 0),
    });
    let mut kept: Vec<(String, usize, Limit)> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let twice = w.0.starts_with("filesystem:")
            && kept.iter().any(|k| {
                k.0.starts_with("filesystem:") && same(column(&names[k.1]), column(&names[w.1]))
            });
        if !twice {
            kept.push(w);
        }
    }
    let wanted = kept;
    let day_ids: Vec<_> = wanted.iter().map(|(_, i, _)| ids[*i]).collect();
    let days = |from: i64, points: usize| query(&day_ids, from, now, points);
    // A young history has few minutes: its last hour at 10 s then.
    let day = days(now - 3 * 86_400, 4_320)
        .filter(|f| f.times.len() >= 60 && f.series.iter().any(|p| known(&p.avg) >= 60))
        .or_else(|| days(now - 3_600, 360));
    let resources: Vec<Resource<'_>> = match &day {
        Some(f) => wanted
            .iter()
            .zip(&f.series)
            .map(|((name, _, limit), p)| Resource {
                name,
                series: Series {
                    start: f.times.first().copied().unwrap_or(now),
                    step: f.step,
                    values: &p.avg,
                },
                limit: *limit,
            })
            .collect(),
        None => Vec::new(),
    };

    let recent: Vec<(&str, Series<'_>)> = match &hour {
        Some(f) => names
            .iter()
            .zip(&f.series)
            .map(|(n, p)| {
                let s = Series {
                    start: f.times.first().copied().unwrap_or(now),
                    step: f.step,
                    values: &p.avg,
                };
                (n.as_str(), s)
            })
            .collect(),
        None => Vec::new(),
    };
    let watched: Vec<(&str, Series<'_>)> = recent
        .iter()
        .filter(|(n, _)| n.contains(":p") || n.starts_with("zen_watcher_errors_total"))
        .copied()
        .collect();
    let stage = |s: &str| {
        last(
            &format!(r#"zen_watcher_event_processing_duration_seconds:p95{{stage="{s}"}}"#),
            30,
        )
    };
    let rate = |name: &str| {
        taken
            .rates
            .as_ref()
            .map(|r| r.get(name).copied().unwrap_or(0.0))
    };
    let hits = rate("zen_watcher_cache_hits_total").unwrap_or(0.0);
    let lookups = hits + rate("zen_watcher_cache_misses_total").unwrap_or(0.0);
    let mut rules: Vec<(String, String, f64, f64)> = taken
        .rates
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            let mut parts = k.strip_prefix(RULES)?.strip_prefix('\x1f')?.split('\x1f');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned(), 0.0, *v))
        })
        .filter(|r| r.3 > 0.0)
        .collect();
    let observations: f64 = rules.iter().map(|r| r.3).sum();
    for r in &mut rules {
        r.2 = r.3 / observations;
    }
    rules.sort_by(|a, b| b.3.total_cmp(&a.3));
    rules.truncate(10);
    let facts = Facts {
        stage_p95: ["normalize", "process", "sink", "total"]
            .into_iter()
            .map(|s| (s.to_owned(), stage(s)))
            .collect(),
        latency_objective: settings.latency_objective.as_secs_f64(),
        events_per_second: last("zen_watcher_events_total", 30),
        queue_fill: opt(last(r#"zen_watcher_queue_depth{queue="submissions"}"#, 1) / capacity),
        commit_p95: opt(last(
            "zen_watcher_batch_processing_duration_seconds:p95",
            30,
        )),
        pressure: [
            "node_pressure_cpu_waiting_seconds_total",
            "node_pressure_memory_waiting_seconds_total",
            "node_pressure_io_waiting_seconds_total",
        ]
        .map(|n| opt(last(n, 30))),
        cpu_percent: opt(last("zen_watcher_cpu_usage_percent", 6)),
        memory_percent: opt(last("zen_watcher_memory_usage_percent", 6)),
        max_batch_size: pipeline.tuning().max_batch_size,
        max_batch_age: pipeline.tuning().max_batch_age.as_secs_f64(),
        queue_capacity: settings.queue_capacity,
        retention: settings.retention.as_secs_f64(),
        data_filesystem,
        kubernetes: settings.kubernetes,
        threads: taken.threads.clone(),
        dedup_evictions_per_second: rate("zen_watcher_dedup_evictions_total"),
        new_observations_per_second: (!rules.is_empty()).then_some(observations),
        dedup_max_entries: settings.dedup_max_entries,
        dedup_window: settings.dedup_window.as_secs_f64(),
        cache_lookups_per_second: (lookups > 0.0).then_some(lookups),
        cache_hit_ratio: (lookups > 0.0).then(|| hits / lookups),
        cache_ttl: settings.cache_ttl.as_secs_f64(),
        rules,
        collect_interval: settings.collect_interval.as_secs_f64(),
        rejected_per_second: taken.refused,
        queue_wait: pipeline.queue_wait().as_secs_f64(),
    };
    advisor.forecast_after = settings.forecast_after.as_secs() as i64;
    advisor.pass(&Input {
        now,
        recent: &recent,
        day_before: &earlier(&day_before, now),
        week_before: &earlier(&week_before, now),
        watched: &watched,
        events,
        resources: &resources,
        facts: &facts,
    })
}

/// The pass's metrics: time to exhaustion by resource (NaN: no forecast; +Inf: steady), the
/// highest anomaly score of each panel's series, and open recommendations by kind. Memory and
/// the queue are always published, so their series exist before their first forecast.
fn publish(found: &Insights) {
    for always in ["memory", "queue"] {
        if !found.forecasts.iter().any(|f| f.resource == always) {
            metrics::gauge!("zen_watcher_forecast_exhaustion_seconds", "resource" => always)
                .set(f64::NAN);
        }
    }
    for f in &found.forecasts {
        let v = match f.forecast {
            zen_advisor::Forecast::NotEnoughData { .. } => f64::NAN,
            zen_advisor::Forecast::Steady { .. } => f64::INFINITY,
            zen_advisor::Forecast::Exhausted => 0.0,
            zen_advisor::Forecast::Exhaustion { seconds, .. } => seconds,
        };
        metrics::gauge!("zen_watcher_forecast_exhaustion_seconds", "resource" => f.resource.clone())
            .set(v);
    }
    let scored: Vec<&str> = found.anomalies.iter().map(|a| a.series.as_str()).collect();
    for p in PANELS {
        let top = panels::members(p, &scored)
            .iter()
            .filter_map(|(n, _)| found.anomalies.iter().find(|a| a.series == *n))
            .map(|a| a.anomaly.score)
            .fold(f64::NAN, f64::max);
        metrics::gauge!("zen_watcher_anomaly_score", "panel" => p.id).set(top);
    }
    for kind in KINDS {
        let open = found
            .recommendations
            .iter()
            .filter(|r| r.kind == kind)
            .filter(|r| {
                matches!(
                    r.state,
                    zen_advisor::State::New | zen_advisor::State::Acknowledged
                )
            })
            .count();
        metrics::gauge!("zen_watcher_recommendations_open", "kind" => kind).set(open as f64);
    }
}

fn latest_of(s: &AppState) -> Result<&SharedInsights, ApiError> {
    s.insights
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the advisor is not running"))
}

/// `GET /api/v1/insights`: what the advisor's last pass found, `events`: the changes made
/// through the API, and `tuning`: whether it may change settings, the batch size and age in
/// force, and its changes.
pub(crate) async fn insights(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let latest = latest_of(&s)?
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut body = serde_json::to_value(&latest.insights)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let t = s.pipeline.tuning();
    body["events"] = json!(latest.changes);
    body["tuning"] = json!({
        "auto_apply": latest.tuner.is_some(),
        "max_batch_size": t.max_batch_size,
        "max_batch_age_seconds": t.max_batch_age.as_secs_f64(),
        "queue_wait_seconds": s.pipeline.queue_wait().as_secs_f64(),
        "changes": latest.tuner.as_ref().map_or(&[][..], Tuner::changes),
    });
    Ok(Json(body))
}

/// `POST /api/v1/insights/tuning/{id}/undo`: reverts a change of the tuner.
pub(crate) async fn undo(
    State(s): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let mut latest = latest_of(&s)?
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let tuner = latest.tuner.as_mut().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the advisor changes no setting (advisor.auto_apply)",
        )
    })?;
    let back = tuner
        .undo(id, now())
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    apply(&s.pipeline, back);
    if let Some(c) = tuner.changes().iter().find(|c| c.id == id) {
        count(c);
    }
    Ok(Json(json!({ "undone": id })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveTo {
    state: zen_advisor::State,
}

/// `POST /api/v1/insights/recommendations/{id}` with `{"state": "acknowledged" | "applied" |
/// "dismissed" | "new"}`.
pub(crate) async fn recommendation(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<axum::Json<MoveTo>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let axum::Json(m) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let mut latest = latest_of(&s)?
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    latest
        .advisor
        .set_state(&id, m.state)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let mut shown = Value::Null;
    if let Some(r) = latest
        .insights
        .recommendations
        .iter_mut()
        .find(|r| r.id == id)
    {
        r.state = m.state;
        shown = serde_json::to_value(&*r).unwrap_or(Value::Null);
    }
    tracing::info!(recommendation = %id, state = ?m.state, "recommendation moved");
    if m.state == zen_advisor::State::Applied {
        latest.changed(format!("recommendation {id} applied"));
    }
    Ok(Json(json!({ "recommendation": shown })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_the_data_filesystem_are_found() {
        let name = r#"node_filesystem_avail_bytes{device="vda",mountpoint="/var/lib"}"#;
        assert_eq!(label(name, "mountpoint"), Some("/var/lib"));
        assert_eq!(label(name, "slo"), None);
        let mounts = ["/", "/var/lib", "/var"];
        let at = |dir: &str| data_filesystem(std::path::Path::new(dir), &mounts);
        assert_eq!(at("/var/lib/zen"), Some("/var/lib"));
        assert_eq!(at("/home"), Some("/"));
        assert_eq!(recent_median(&[1.0, f64::NAN, 3.0, 5.0], 2), 4.0);
    }
}
