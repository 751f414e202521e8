//! One pass of the advisor: the input the daemon gathers, the insights it gets back, and the
//! recommendations, whose state (new, acknowledged, applied, dismissed) a person moves and the
//! advisor keeps from pass to pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::detect::{Anomaly, Change, Regression, anomaly};
use crate::forecast::{Forecast, Limit, exhaustion};
use crate::{Series, Trend, trend};

/// A resource forecast to exhaustion: its name (`filesystem:/var`, `memory`, `queue`,
/// `error_budget:…`), its series over the last day, and its limit.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub name: &'a str,
    pub series: Series<'a>,
    pub limit: Limit,
}

/// What the daemon knows now that the recommendations and bottlenecks weigh: readings (NaN or
/// `None` when unknown) and the settings a recommendation would change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// P95 of the per-event time by stage (`normalize`, `process`, `sink`), and from receipt
    /// to commit (`total`), in seconds.
    pub stage_p95: Vec<(String, f64)>,
    /// The latency objective: P95 from receipt to commit under this many seconds.
    pub latency_objective: f64,
    /// Events read per second, lately.
    pub events_per_second: f64,
    /// The submissions queue's depth over its capacity.
    pub queue_fill: Option<f64>,
    /// P95 of one commit of the sink, in seconds.
    pub commit_p95: Option<f64>,
    /// Shares of time some task waited on CPU, memory and IO (PSI), 0–1.
    pub pressure: [Option<f64>; 3],
    /// The daemon's CPU and memory, in percent of its limit.
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub max_batch_size: usize,
    /// Seconds.
    pub max_batch_age: f64,
    pub queue_capacity: usize,
    /// How long Observations are kept, in seconds; the filesystem that holds them.
    pub retention: f64,
    pub data_filesystem: Option<String>,
    /// Running in Kubernetes, where one more replica is the way to more CPU.
    pub kubernetes: bool,
    /// The daemon's threads by name and the cores each used lately, most first.
    pub threads: Vec<(String, f64)>,
    /// Fingerprints the de-duplication forgot before their window ended, per second lately;
    /// new Observations per second; the settings that bound it (entries, window in seconds).
    pub dedup_evictions_per_second: Option<f64>,
    pub new_observations_per_second: Option<f64>,
    pub dedup_max_entries: usize,
    pub dedup_window: f64,
    /// Configuration lookups per second and the share the cache answered; its TTL, seconds.
    pub cache_lookups_per_second: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
    pub cache_ttl: f64,
    /// Rules by their share of new Observations lately: source, rule, share, per second.
    pub rules: Vec<(String, String, f64, f64)>,
    /// Seconds between two readings of the host collectors.
    pub collect_interval: f64,
    /// Ingestion requests refused with 429 per second lately, and how long a request waits
    /// for room before that (`queue_wait`), in seconds.
    pub rejected_per_second: Option<f64>,
    pub queue_wait: f64,
}

/// The collector's thread, whose CPU the collection interval sets.
pub const COLLECTOR_THREAD: &str = "zen-collect";

/// Where a recommendation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    New,
    Acknowledged,
    Applied,
    Dismissed,
}

/// What a recommendation asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// A configuration key (as `zen-watcher config print` names it) and the value to give it.
    Setting { key: String, value: String },
    /// Something a person does.
    Step { text: String },
}

/// One recommendation: see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Stable from pass to pass while its cause lasts: the kind and what it is about.
    pub id: String,
    pub kind: &'static str,
    pub severity: &'static str,
    pub summary: String,
    /// The readings behind it.
    pub evidence: Vec<Evidence>,
    pub action: Action,
    pub effect: String,
    pub state: State,
}

/// A reading behind a recommendation: what, and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub what: String,
    pub value: f64,
}

/// One entry of the ranked bottlenecks: what, its share or value, and why it ranks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    pub what: String,
    pub value: f64,
    pub detail: String,
}

/// A series' trend over the hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendOf {
    pub series: String,
    pub hour: Trend,
    /// The hour's median against the same hour a day and a week earlier (`now / then − 1`),
    /// when those were kept.
    pub vs_day: Option<f64>,
    pub vs_week: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastOf {
    pub resource: String,
    pub limit: Limit,
    pub forecast: Forecast,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionOf {
    pub series: String,
    pub change: Change,
    pub message: String,
    /// The daemon's own event that coincides with the change, if one does.
    pub near: Option<Event>,
}

/// Something the daemon did that may explain a change: it started (a version), a setting was
/// changed, the tuner moved one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: i64,
    pub what: String,
}

/// A change begun this many seconds from an event is tied to it.
pub const NEAR: i64 = 120;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyOf {
    pub series: String,
    pub anomaly: Anomaly,
}

/// Everything one pass found.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Insights {
    pub at: i64,
    pub trends: Vec<TrendOf>,
    pub forecasts: Vec<ForecastOf>,
    pub regressions: Vec<RegressionOf>,
    /// Every series scored, most unusual first.
    pub anomalies: Vec<AnomalyOf>,
    pub bottlenecks: Vec<Bottleneck>,
    pub recommendations: Vec<Recommendation>,
}

/// What the advisor is given each pass.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub now: i64,
    /// Series to trend and score, over the last hour.
    pub recent: &'a [(&'a str, Series<'a>)],
    /// The same hour a day and a week earlier, in `recent`'s order (empty when not kept).
    pub day_before: &'a [Series<'a>],
    pub week_before: &'a [Series<'a>],
    /// Series watched for regressions (latency percentiles, CPU per event, error rates), over
    /// the last hour.
    pub watched: &'a [(&'a str, Series<'a>)],
    /// The daemon's own events, to tie regressions to.
    pub events: &'a [Event],
    pub resources: &'a [Resource<'a>],
    pub facts: &'a Facts,
}

/// A forecast under this many seconds is critical.
pub const SOON: f64 = 86_400.0;

/// Keeps the recommendations' states between passes; see the module docs.
#[derive(Debug)]
pub struct Advisor {
    states: BTreeMap<String, State>,
    points: Vec<(f64, f64)>,
    scratch: Vec<f64>,
    pub regression: Regression,
    /// Seconds of history a forecast needs (half an hour by default).
    pub forecast_after: i64,
}

impl Default for Advisor {
    fn default() -> Self {
        Advisor {
            states: BTreeMap::new(),
            points: Vec::new(),
            scratch: Vec::new(),
            regression: Regression::default(),
            forecast_after: 1_800,
        }
    }
}

/// The id of no recommendation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no recommendation {0:?} (see /api/v1/insights)")]
pub struct Unknown(pub String);

impl Advisor {
    /// One pass over `input`.
    pub fn pass(&mut self, input: &Input<'_>) -> Insights {
        let mut out = Insights {
            at: input.now,
            ..Insights::default()
        };
        for (i, (name, s)) in input.recent.iter().enumerate() {
            if let Some(t) = trend(*s, &mut self.points, &mut self.scratch) {
                let mut vs = |earlier: &[Series<'_>]| {
                    earlier
                        .get(i)
                        .and_then(|e| crate::change(*s, *e, &mut self.scratch))
                };
                let (vs_day, vs_week) = (vs(input.day_before), vs(input.week_before));
                out.trends.push(TrendOf {
                    series: (*name).to_owned(),
                    hour: t,
                    vs_day,
                    vs_week,
                });
            }
            if let Some(a) = anomaly(*s, 60, &mut self.scratch) {
                out.anomalies.push(AnomalyOf {
                    series: (*name).to_owned(),
                    anomaly: a,
                });
            }
        }
        out.anomalies
            .sort_by(|a, b| b.anomaly.score.total_cmp(&a.anomaly.score));
        for (name, s) in input.watched {
            if let Some(change) = self.regression.find(*s, &mut self.scratch) {
                let at = jiff::Timestamp::from_second(change.at)
                    .map(|t| t.strftime("%H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                let near = input
                    .events
                    .iter()
                    .filter(|e| (e.at - change.at).abs() <= NEAR)
                    .min_by_key(|e| (e.at - change.at).abs())
                    .cloned();
                let mut message = format!(
                    "{name} {} {:.0} % since {at}",
                    if change.ratio > 0.0 { "up" } else { "down" },
                    change.ratio.abs() * 100.0
                );
                if let Some(e) = &near {
                    let _ = write!(message, ", when {}", e.what);
                }
                out.regressions.push(RegressionOf {
                    series: (*name).to_owned(),
                    change,
                    message,
                    near,
                });
            }
        }
        for r in input.resources {
            let f = exhaustion(
                r.series,
                r.limit,
                input.now,
                self.forecast_after,
                &mut self.points,
                &mut self.scratch,
            );
            out.forecasts.push(ForecastOf {
                resource: r.name.to_owned(),
                limit: r.limit,
                forecast: f,
            });
        }
        out.bottlenecks = bottlenecks(input.facts);
        let mut recs = recommend(input.facts, &out.forecasts);
        for r in &mut recs {
            r.state = *self.states.entry(r.id.clone()).or_insert(State::New);
        }
        // A recommendation whose cause is gone is forgotten, with its state.
        self.states.retain(|id, _| recs.iter().any(|r| &r.id == id));
        out.recommendations = recs;
        out
    }

    /// Moves the recommendation `id` to `state`.
    pub fn set_state(&mut self, id: &str, state: State) -> Result<(), Unknown> {
        match self.states.get_mut(id) {
            Some(s) => {
                *s = state;
                Ok(())
            }
            None => Err(Unknown(id.to_owned())),
        }
    }
}

fn stage(facts: &Facts, name: &str) -> Option<f64> {
    facts
        .stage_p95
        .iter()
        .find(|(s, _)| s == name)
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
}

/// The ranked bottlenecks: the stage that dominates the per-event time, the host's pressure,
/// a filling queue, and commits that dominate latency — largest first.
pub fn bottlenecks(facts: &Facts) -> Vec<Bottleneck> {
    let mut out = Vec::new();
    let stages: Vec<(&str, f64)> = ["normalize", "process", "sink"]
        .into_iter()
        .filter_map(|s| stage(facts, s).map(|v| (s, v)))
        .collect();
    let sum: f64 = stages.iter().map(|(_, v)| v).sum();
    if sum > 0.0 {
        for (s, v) in &stages {
            out.push(Bottleneck {
                what: format!("stage {s}"),
                value: v / sum,
                detail: format!(
                    "{:.0} % of the per-event time in the stages (P95 {:.3} ms of {:.3} ms)",
                    v / sum * 100.0,
                    v * 1e3,
                    sum * 1e3
                ),
            });
        }
    }
    for (i, what) in ["CPU", "memory", "IO"].into_iter().enumerate() {
        if let Some(p) = facts.pressure[i].filter(|p| *p >= 0.05) {
            out.push(Bottleneck {
                what: format!("host {what}"),
                value: p,
                detail: format!("some task waited on {what} {:.0} % of the time", p * 100.0),
            });
        }
    }
    if let Some(fill) = facts.queue_fill.filter(|f| *f >= 0.5) {
        out.push(Bottleneck {
            what: "queue".to_owned(),
            value: fill,
            detail: format!("the submissions queue is {:.0} % full", fill * 100.0),
        });
    }
    if let (Some(commit), Some(total)) = (facts.commit_p95, stage(facts, "total"))
        && total > 0.0
        && commit / total >= 0.5
    {
        out.push(Bottleneck {
            what: "commits".to_owned(),
            value: commit / total,
            detail: format!(
                "one commit (P95 {:.1} ms) is {:.0} % of receipt to commit (P95 {:.1} ms)",
                commit * 1e3,
                commit / total * 100.0,
                total * 1e3
            ),
        });
    }
    let daemon: f64 = facts.threads.iter().map(|(_, c)| c).sum();
    for (name, cores) in &facts.threads {
        if *cores >= 0.05 && daemon > 0.0 {
            out.push(Bottleneck {
                what: format!("thread {name}"),
                value: cores / daemon,
                detail: format!(
                    "{:.0} % of a core, {:.0} % of the daemon's CPU",
                    cores * 100.0,
                    cores / daemon * 100.0
                ),
            });
        }
    }
    out.sort_by(|a, b| b.value.total_cmp(&a.value));
    out
}

fn rec(
    id: String,
    kind: &'static str,
    severity: &'static str,
    summary: String,
    evidence: Vec<(String, f64)>,
    action: Action,
    effect: String,
) -> Recommendation {
    Recommendation {
        id,
        kind,
        severity,
        summary,
        evidence: evidence
            .into_iter()
            .map(|(what, value)| Evidence { what, value })
            .collect(),
        action,
        effect,
        state: State::New,
    }
}

fn setting(key: &str, value: String) -> Action {
    Action::Setting {
        key: key.to_owned(),
        value,
    }
}

/// The recommendations the facts and forecasts support.
pub fn recommend(facts: &Facts, forecasts: &[ForecastOf]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let total = stage(facts, "total");
    let objective = facts.latency_objective;
    let fill_rate = facts.max_batch_size as f64 / facts.max_batch_age.max(1e-3);
    if let Some(p95) = total.filter(|p| *p > objective && objective > 0.0) {
        if let Some(commit) = facts.commit_p95.filter(|c| *c >= facts.max_batch_age) {
            // A commit lasts longer than a batch gathers: batches queue for the sink, and
            // shorter ones would only make more commits.
            let age = (commit * 2.0).clamp(0.01, 10.0);
            out.push(rec(
                "sink-slow".to_owned(),
                "sink",
                "warning",
                format!(
                    "The sink is slow: a commit takes {:.0} ms (P95), longer than a batch gathers ({:.0} ms), so batches queue for it; P95 from receipt to commit is {:.0} ms against the {:.0} ms objective.",
                    commit * 1e3,
                    facts.max_batch_age * 1e3,
                    p95 * 1e3,
                    objective * 1e3
                ),
                vec![
                    ("P95 of a commit (s)".to_owned(), commit),
                    ("pipeline.max_batch_age (s)".to_owned(), facts.max_batch_age),
                    ("P95 receipt to commit (s)".to_owned(), p95),
                ],
                setting("pipeline.max_batch_age", format!("{}ms", (age * 1e3).round())),
                "Fewer, fuller commits for the same events. The cure for the cause is a faster disk (or more CPU) for the data directory: the bottlenecks say which it is short of.".to_owned(),
            ));
        } else if facts.events_per_second < fill_rate && facts.max_batch_age * 1.5 >= p95 * 0.5 {
            // Batches age out rather than fill: events wait for the age.
            let age = (objective / 4.0).max(0.01);
            out.push(rec(
                "batch-age".to_owned(),
                "batch_age",
                "warning",
                format!(
                    "Events wait for their batch to age out: at {:.1} events/s a batch of {} never fills, and P95 from receipt to commit is {:.0} ms against the {:.0} ms objective.",
                    facts.events_per_second,
                    facts.max_batch_size,
                    p95 * 1e3,
                    objective * 1e3
                ),
                vec![
                    ("P95 receipt to commit (s)".to_owned(), p95),
                    ("events per second".to_owned(), facts.events_per_second),
                    ("pipeline.max_batch_age (s)".to_owned(), facts.max_batch_age),
                ],
                setting("pipeline.max_batch_age", format!("{}ms", (age * 1e3).round())),
                format!(
                    "P95 down by about {:.0} ms; a few more, smaller commits at this rate.",
                    (facts.max_batch_age - age) * 1e3
                ),
            ));
        } else if facts.events_per_second >= fill_rate
            && (facts.commit_p95.is_some_and(|c| c >= 0.5 * p95)
                || facts.queue_fill.is_some_and(|f| f >= 0.5))
        {
            // Batches fill, and wait for the sink: commits dominate.
            let size = (facts.max_batch_size * 2).min(1_000);
            out.push(rec(
                "batch-size".to_owned(),
                "batch_size",
                "warning",
                format!(
                    "Commits dominate: batches of {} fill at {:.0} events/s and wait for the sink; P95 is {:.0} ms against the {:.0} ms objective.",
                    facts.max_batch_size,
                    facts.events_per_second,
                    p95 * 1e3,
                    objective * 1e3
                ),
                vec![
                    ("P95 receipt to commit (s)".to_owned(), p95),
                    ("P95 of a commit (s)".to_owned(), facts.commit_p95.unwrap_or(f64::NAN)),
                    ("queue fill".to_owned(), facts.queue_fill.unwrap_or(f64::NAN)),
                    ("pipeline.max_batch_size".to_owned(), facts.max_batch_size as f64),
                ],
                setting("pipeline.max_batch_size", size.to_string()),
                "Fewer, larger commits: less time per event in the sink.".to_owned(),
            ));
        }
    }
    if let Some(fill) = facts.queue_fill.filter(|f| *f >= 0.8) {
        let (action, effect) = if facts.kubernetes {
            (
                Action::Step {
                    text: "Run one more replica (the Deployment's replicas + 1).".to_owned(),
                },
                "The load shared by one more daemon.".to_owned(),
            )
        } else {
            (
                setting(
                    "pipeline.queue_capacity",
                    (facts.queue_capacity * 2).to_string(),
                ),
                "Bursts absorbed instead of answered with 429.".to_owned(),
            )
        };
        out.push(rec(
            "queue-capacity".to_owned(),
            "queue",
            "warning",
            format!(
                "The submissions queue is {:.0} % full: ingestion is about to answer 429.",
                fill * 100.0
            ),
            vec![("queue fill".to_owned(), fill)],
            action,
            effect,
        ));
    }
    if let Some(rejected) = facts.rejected_per_second.filter(|r| *r >= 0.1)
        && facts.queue_wait < 2.0
    {
        let wait = (facts.queue_wait * 4.0).clamp(0.25, 2.0);
        out.push(rec(
            "queue-wait".to_owned(),
            "queue_wait",
            "warning",
            format!(
                "Ingestion refuses {rejected:.1} requests a second with 429: the queue is full for moments, and a request waits only {:.0} ms for room.",
                facts.queue_wait * 1e3
            ),
            vec![
                ("requests refused per second".to_owned(), rejected),
                ("queue_wait (s)".to_owned(), facts.queue_wait),
            ],
            setting("queue_wait", format!("{:.0}ms", wait * 1e3)),
            "Senders wait for room instead of retrying: fewer refusals, slower answers while the queue is full.".to_owned(),
        ));
    }
    if facts.kubernetes && facts.cpu_percent.is_some_and(|c| c >= 80.0) {
        out.push(rec(
            "replica".to_owned(),
            "replica",
            "warning",
            "The daemon uses most of its CPU limit.".to_owned(),
            vec![(
                "CPU, % of the limit".to_owned(),
                facts.cpu_percent.unwrap_or(f64::NAN),
            )],
            Action::Step {
                text: "Run one more replica (the Deployment's replicas + 1).".to_owned(),
            },
            "Each replica takes a share of the sources.".to_owned(),
        ));
    }
    housekeeping(facts, &mut out);
    for f in forecasts {
        let Some(seconds) = f.forecast.seconds() else {
            continue;
        };
        let hours = seconds / 3_600.0;
        let severity = if seconds < SOON {
            "critical"
        } else {
            "warning"
        };
        let evidence = vec![(format!("{} exhausted in (s)", f.resource), seconds)];
        let data = facts.data_filesystem.as_deref();
        if let Some(fs) = f.resource.strip_prefix("filesystem:") {
            if Some(fs) == data && seconds < facts.retention {
                let days = (seconds / 2.0 / 86_400.0).floor().max(1.0);
                out.push(rec(
                    format!("retention:{fs}"),
                    "retention",
                    severity,
                    format!("{fs} fills in {hours:.1} h, before Observations age out ({:.0} days kept).", facts.retention / 86_400.0),
                    evidence,
                    setting("retention", format!("{days}d")),
                    "Old Observations purged before the disk fills.".to_owned(),
                ));
            } else if seconds < 7.0 * 86_400.0 {
                out.push(rec(
                    format!("disk:{fs}"),
                    "disk",
                    severity,
                    format!("{fs} fills in {hours:.1} h at its pace of the last hours."),
                    evidence,
                    Action::Step {
                        text: format!("Free or grow {fs}."),
                    },
                    "No writes refused for want of space.".to_owned(),
                ));
            }
        } else if seconds < 7.0 * 86_400.0 {
            out.push(rec(
                format!("exhaustion:{}", f.resource),
                "exhaustion",
                severity,
                format!("{} runs out in {hours:.1} h at its pace of the last hours.", f.resource),
                evidence,
                Action::Step {
                    text: format!("Find what drives {} (the trend, the regressions and the bottlenecks) before it runs out.", f.resource),
                },
                "Nothing runs out.".to_owned(),
            ));
        }
    }
    out
}

/// What the de-duplication, the configuration cache, the rules and the collectors say.
fn housekeeping(facts: &Facts, out: &mut Vec<Recommendation>) {
    if let Some(evictions) = facts.dedup_evictions_per_second.filter(|e| *e > 0.0) {
        // Every fingerprint of a window held: what arrives in one, with room to spare.
        let new = facts.new_observations_per_second.unwrap_or(0.0) + evictions;
        let needed = (new * facts.dedup_window * 1.5).max(facts.dedup_max_entries as f64 * 2.0);
        let entries = ((needed / 1_000.0).ceil() * 1_000.0) as u64;
        out.push(rec(
            "dedup-capacity".to_owned(),
            "dedup",
            "warning",
            format!(
                "De-duplication forgets {evictions:.1} fingerprints a second before their {:.0} s window ends: it holds {} and about {:.0} arrive in a window, so their repeats are stored as new Observations.",
                facts.dedup_window,
                facts.dedup_max_entries,
                new * facts.dedup_window
            ),
            vec![
                ("evictions per second".to_owned(), evictions),
                ("new Observations per second".to_owned(), new),
                ("pipeline.dedup_max_entries".to_owned(), facts.dedup_max_entries as f64),
                ("pipeline.dedup_window (s)".to_owned(), facts.dedup_window),
            ],
            setting("pipeline.dedup_max_entries", entries.to_string()),
            format!(
                "Repeats within the window merged again; about {:.1} MB more memory at 40 bytes a fingerprint.",
                (entries as f64 - facts.dedup_max_entries as f64) * 40.0 / 1e6
            ),
        ));
    }
    if let (Some(lookups), Some(hits)) = (facts.cache_lookups_per_second, facts.cache_hit_ratio)
        && lookups >= 1.0
        && hits < 0.9
        && facts.cache_ttl > 0.0
    {
        let ttl = (facts.cache_ttl * 4.0).min(3_600.0);
        out.push(rec(
            "cache-ttl".to_owned(),
            "cache",
            "info",
            format!(
                "The configuration cache answers {:.0} % of {lookups:.0} lookups a second: its {:.0} s TTL expires entries that are asked for again.",
                hits * 100.0,
                facts.cache_ttl
            ),
            vec![
                ("lookups per second".to_owned(), lookups),
                ("hit ratio".to_owned(), hits),
                ("pipeline.cache_ttl (s)".to_owned(), facts.cache_ttl),
            ],
            setting("pipeline.cache_ttl", format!("{ttl:.0}s")),
            "Fewer loads of the configuration; a change still shows at once where a watch invalidates it, else within the TTL.".to_owned(),
        ));
    }
    if facts.rules.len() >= 2 {
        for (source, rule, share, rate) in &facts.rules {
            if *share < 0.3 || *rate < 0.1 || rule.is_empty() {
                continue;
            }
            out.push(rec(
                format!("noisy-rule:{source}:{rule}"),
                "noisy_rule",
                "info",
                format!(
                    "{source} rule \"{rule}\" makes {:.0} % of the new Observations ({rate:.1} a second): a candidate for a filter if it is noise here.",
                    share * 100.0
                ),
                vec![
                    ("share of new Observations".to_owned(), *share),
                    ("per second".to_owned(), *rate),
                ],
                Action::Step {
                    text: format!(
                        "If it is noise here, add \"{rule}\" to filter.sources.{source}.exclude_rules (or narrow it with filter.sources.{source}.expression)."
                    ),
                },
                format!("{:.0} % fewer Observations to store and to read.", share * 100.0),
            ));
        }
    }
    if let Some((_, cores)) = facts
        .threads
        .iter()
        .find(|(name, _)| name == COLLECTOR_THREAD)
        && *cores >= 0.02
        && facts.collect_interval > 0.0
    {
        let interval = facts.collect_interval * 2.0;
        out.push(rec(
            "collector-interval".to_owned(),
            "collector_interval",
            "info",
            format!(
                "The host and container collectors use {:.1} % of a core reading every {:.0} s.",
                cores * 100.0,
                facts.collect_interval
            ),
            vec![
                ("collector CPU (cores)".to_owned(), *cores),
                ("collect.interval (s)".to_owned(), facts.collect_interval),
            ],
            setting("collect.interval", format!("{interval:.0}s")),
            format!(
                "About half the collectors' CPU ({:.1} % of a core saved); host charts at {interval:.0} s.",
                cores * 50.0
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            stage_p95: vec![
                ("normalize".to_owned(), 0.0002),
                ("process".to_owned(), 0.0001),
                ("sink".to_owned(), 0.002),
                ("total".to_owned(), 0.19),
            ],
            latency_objective: 0.1,
            events_per_second: 2.0,
            queue_fill: Some(0.0),
            commit_p95: Some(0.002),
            pressure: [Some(0.0), Some(0.0), Some(0.12)],
            max_batch_size: 15,
            max_batch_age: 0.1,
            queue_capacity: 10_000,
            retention: 30.0 * 86_400.0,
            data_filesystem: Some("/".to_owned()),
            ..Facts::default()
        }
    }

    #[test]
    fn slow_commits_at_a_low_rate_recommend_a_shorter_batch_age() {
        let recs = recommend(&facts(), &[]);
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0].id, "batch-age");
        assert_eq!(
            recs[0].action,
            Action::Setting {
                key: "pipeline.max_batch_age".to_owned(),
                value: "25ms".to_owned()
            }
        );
        let b = bottlenecks(&facts());
        assert_eq!(b[0].what, "stage sink", "{b:?}");
        assert!(b.iter().any(|x| x.what == "host IO"));
    }

    #[test]
    fn a_regression_is_tied_to_the_daemons_event_near_it() {
        // P95 50 ms for 240 points, then 80 ms for 30, a point each 10 s from 0.
        let values: Vec<f64> = (0..270)
            .map(|i| if i < 240 { 0.05 } else { 0.08 } * (1.0 + 0.01 * f64::from(i % 7)))
            .collect();
        let s = Series {
            start: 0,
            step: 10,
            values: &values,
        };
        let events = [
            Event {
                at: 1_000,
                what: "zen-watcher 0.0.0 started".to_owned(),
            },
            Event {
                at: 2_390,
                what: "the tuner set pipeline.max_batch_size to 30".to_owned(),
            },
        ];
        let f = facts();
        let input = Input {
            now: 2_700,
            recent: &[],
            day_before: &[],
            week_before: &[],
            watched: &[("p95", s)],
            events: &events,
            resources: &[],
            facts: &f,
        };
        let found = Advisor::default().pass(&input);
        let r = &found.regressions[0];
        assert_eq!(r.near.as_ref().map(|e| e.at), Some(2_390), "{r:?}");
        assert!(
            r.message
                .ends_with("when the tuner set pipeline.max_batch_size to 30"),
            "{}",
            r.message
        );
    }

    #[test]
    fn a_disk_filling_before_retention_recommends_less_retention_and_states_are_kept() {
        let mut advisor = Advisor::default();
        let free: Vec<f64> = (0..600).map(|m| 1e9 - f64::from(m) * 1e6).collect();
        let resources = [Resource {
            name: "filesystem:/",
            series: Series {
                start: 0,
                step: 60,
                values: &free,
            },
            limit: Limit::FallsTo(0.0),
        }];
        let mut f = facts();
        f.stage_p95.clear();
        let input = Input {
            now: 600 * 60,
            recent: &[],
            day_before: &[],
            week_before: &[],
            events: &[],
            watched: &[],
            resources: &resources,
            facts: &f,
        };
        let insights = advisor.pass(&input);
        let r = &insights.recommendations[0];
        assert_eq!(r.id, "retention:/");
        assert_eq!(r.severity, "critical", "{r:?}");
        assert_eq!(r.state, State::New);
        assert_eq!(
            advisor.set_state("retention:/", State::Acknowledged),
            Ok(())
        );
        assert_eq!(
            advisor.pass(&input).recommendations[0].state,
            State::Acknowledged
        );
        assert!(advisor.set_state("nope", State::Dismissed).is_err());
    }

    /// Facts where nothing is wrong: every recommendation below is caused by one change.
    fn quiet() -> Facts {
        Facts {
            stage_p95: vec![("total".to_owned(), 0.01)],
            latency_objective: 0.1,
            events_per_second: 100.0,
            max_batch_size: 100,
            max_batch_age: 0.1,
            queue_capacity: 10_000,
            retention: 30.0 * 86_400.0,
            dedup_max_entries: 100_000,
            dedup_window: 60.0,
            cache_ttl: 30.0,
            collect_interval: 1.0,
            ..Facts::default()
        }
    }

    fn only(facts: &Facts) -> Recommendation {
        let recs = recommend(facts, &[]);
        assert_eq!(recs.len(), 1, "{recs:?}");
        recs[0].clone()
    }

    #[test]
    fn quiet_facts_recommend_nothing() {
        assert_eq!(recommend(&quiet(), &[]), Vec::new());
    }

    #[test]
    fn evictions_before_the_window_ends_ask_for_room_for_a_window() {
        let f = Facts {
            dedup_evictions_per_second: Some(500.0),
            new_observations_per_second: Some(2_500.0),
            ..quiet()
        };
        let r = only(&f);
        assert_eq!((r.id.as_str(), r.kind), ("dedup-capacity", "dedup"));
        // 3,000 a second over 60 s, and half as much again: 270,000.
        assert_eq!(
            r.action,
            setting("pipeline.dedup_max_entries", "270000".to_owned())
        );
        assert!(
            r.summary.contains("500.0 fingerprints a second"),
            "{}",
            r.summary
        );
        // Few evictions still ask for at least twice the room.
        let f = Facts {
            dedup_evictions_per_second: Some(0.1),
            new_observations_per_second: Some(10.0),
            ..quiet()
        };
        assert_eq!(
            only(&f).action,
            setting("pipeline.dedup_max_entries", "200000".to_owned())
        );
    }

    #[test]
    fn a_cache_that_misses_asks_for_a_longer_ttl_and_one_that_hits_does_not() {
        let missing = Facts {
            cache_lookups_per_second: Some(50.0),
            cache_hit_ratio: Some(0.6),
            ..quiet()
        };
        let r = only(&missing);
        assert_eq!(r.action, setting("pipeline.cache_ttl", "120s".to_owned()));
        let hitting = Facts {
            cache_hit_ratio: Some(0.99),
            ..missing.clone()
        };
        assert!(recommend(&hitting, &[]).is_empty());
        let idle = Facts {
            cache_lookups_per_second: Some(0.2),
            ..missing
        };
        assert!(recommend(&idle, &[]).is_empty(), "too few lookups to judge");
    }

    #[test]
    fn a_rule_with_most_of_the_observations_is_a_filter_candidate() {
        let f = Facts {
            rules: vec![
                (
                    "falco".to_owned(),
                    "Read sensitive file".to_owned(),
                    0.7,
                    7.0,
                ),
                ("trivy".to_owned(), "CVE-2024-1".to_owned(), 0.3, 0.05),
            ],
            ..quiet()
        };
        let r = only(&f);
        assert_eq!(r.id, "noisy-rule:falco:Read sensitive file");
        assert!(
            matches!(&r.action, Action::Step { text } if text.contains("filter.sources.falco.exclude_rules")),
            "{:?}",
            r.action
        );
        // One rule alone is all there is, not noise among others.
        let alone = Facts {
            rules: f.rules[..1].to_vec(),
            ..quiet()
        };
        assert!(recommend(&alone, &[]).is_empty());
    }

    #[test]
    fn threads_rank_among_the_bottlenecks_and_a_costly_collector_asks_for_a_longer_interval() {
        let f = Facts {
            threads: vec![
                ("zen-sink".to_owned(), 0.6),
                ("zen-collect".to_owned(), 0.05),
                ("zen-history".to_owned(), 0.01),
            ],
            ..quiet()
        };
        let b = bottlenecks(&f);
        assert_eq!(b[0].what, "thread zen-sink");
        assert!((b[0].value - 0.6 / 0.66).abs() < 1e-9);
        assert!(b.iter().all(|b| b.what != "thread zen-history"), "{b:?}");
        let r = only(&f);
        assert_eq!(r.action, setting("collect.interval", "2s".to_owned()));
    }

    #[test]
    fn commits_longer_than_a_batch_gathers_name_the_slow_sink() {
        let f = Facts {
            stage_p95: vec![("total".to_owned(), 0.4), ("sink".to_owned(), 0.03)],
            commit_p95: Some(0.2),
            events_per_second: 50.0,
            ..quiet()
        };
        let r = only(&f);
        assert_eq!((r.id.as_str(), r.kind), ("sink-slow", "sink"));
        assert_eq!(
            r.action,
            setting("pipeline.max_batch_age", "400ms".to_owned())
        );
        assert!(r.summary.contains("a commit takes 200 ms"), "{}", r.summary);
    }

    #[test]
    fn refusals_ask_for_a_longer_queue_wait_up_to_two_seconds() {
        let f = Facts {
            rejected_per_second: Some(12.0),
            queue_wait: 0.1,
            ..quiet()
        };
        let r = only(&f);
        assert_eq!((r.id.as_str(), r.kind), ("queue-wait", "queue_wait"));
        assert_eq!(r.action, setting("queue_wait", "400ms".to_owned()));
        let at_most = Facts {
            queue_wait: 2.0,
            ..f
        };
        assert!(recommend(&at_most, &[]).is_empty());
    }
}
