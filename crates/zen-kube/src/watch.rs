//! Report watchers: one task per report kind follows its objects with a `kube-runtime`
//! watcher (list, then watch from the list's resourceVersion; a list again after 410 Gone;
//! backoff on errors), reads each version with the zen-model reader of its format through the
//! pipeline, and submits only the findings the report did not hold before — acknowledged on
//! commit, after which they are tracked in the store's findings. Findings a report no longer
//! holds (fixed, or the report deleted, or missing from a list) are resolved there, once every
//! finding submitted before is committed and tracked, so a resolution never overtakes the
//! finding it resolves.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event as WatchEvent};
use tokio::sync::{oneshot, watch};
use zen_model::{Context, Event, Fingerprint, Syntax, Timestamp};
use zen_pipeline::{
    Ack, AckOutcome, Jitter, Pipeline, RetryPolicy, SourceState, SourceStates, SourceStatus,
    Submission, SubmitError,
};
use zen_sink::Findings;

use crate::kinds::ReportKind;
use crate::ledger::Ledger;

/// How the watchers behave.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The kinds to follow.
    pub kinds: Vec<&'static ReportKind>,
    /// The longest wait between tries while a kind's CRD is missing or the API server fails
    /// (doubling from a second, with jitter).
    pub retry_max: Duration,
    /// How long a submission waits for room in the pipeline's queue before it tries again
    /// (a watcher never drops what it read: it waits, and the watch waits behind it).
    pub queue_wait: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            kinds: crate::REPORT_KINDS.iter().collect(),
            retry_max: Duration::from_secs(30),
            queue_wait: Duration::from_secs(1),
        }
    }
}

/// Why the watchers could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("reading the findings of watched reports from the store: {0}")]
    Findings(zen_sink::SinkError),
    #[error("reading the findings of watched reports: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The running watchers; [`Watchers::stop`] stops them once what they submitted is tracked,
/// dropping them stops them at once.
#[derive(Debug)]
pub struct Watchers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Watchers {
    /// Starts a watcher per kind on the current runtime, each with the findings the store holds
    /// for its kind.
    pub async fn start(
        client: kube::Client,
        settings: WatchSettings,
        pipeline: Arc<Pipeline>,
        findings: Arc<dyn Findings>,
        states: SourceStates,
    ) -> Result<Watchers, WatchError> {
        let store = findings.clone();
        let open = tokio::task::spawn_blocking(move || store.open())
            .await?
            .map_err(WatchError::Findings)?;
        let mut tasks = Vec::new();
        let (stop, stopping) = watch::channel(false);
        for (i, kind) in settings.kinds.iter().enumerate() {
            let resource = kind.resource();
            let prefix = format!("{resource}/");
            let ledger =
                Ledger::restore(open.iter().filter(|(r, _)| r.starts_with(&prefix)).cloned());
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
            let watcher = Watcher {
                kind,
                metrics: Metrics::new(&resource),
                resource,
                ledger,
                pending: VecDeque::new(),
                pipeline: pipeline.clone(),
                findings: findings.clone(),
                states: states.clone(),
                queue_wait: settings.queue_wait,
                state: SourceState::Syncing,
                detail: "listing".to_owned(),
            };
            let backoff = Retry::new(settings.retry_max, i as u64);
            tasks.push(tokio::spawn(watcher.run(api, backoff, stopping.clone())));
        }
        Ok(Watchers { tasks, stop })
    }

    /// Stops every watcher once the findings it submitted are committed and tracked, so the
    /// next leader (or the next start) finds them in the store.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    /// Runs the watchers while this replica leads (`leading`, from [`crate::Leadership`]) and
    /// none while it does not, their kinds shown as on standby; returns when `leading` ends.
    pub async fn while_leading(
        client: kube::Client,
        settings: WatchSettings,
        pipeline: Arc<Pipeline>,
        findings: Arc<dyn Findings>,
        states: SourceStates,
        mut leading: watch::Receiver<bool>,
    ) {
        loop {
            for kind in &settings.kinds {
                let status = SourceStatus {
                    state: SourceState::Standby,
                    detail: "another replica holds the leader Lease".to_owned(),
                    objects: 0,
                    open_findings: 0,
                };
                states.set(&kind.resource(), status);
            }
            while !*leading.borrow_and_update() {
                if leading.changed().await.is_err() {
                    return;
                }
            }
            let started = Watchers::start(
                client.clone(),
                settings.clone(),
                pipeline.clone(),
                findings.clone(),
                states.clone(),
            )
            .await;
            let watchers = match started {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "the report watchers could not start; trying again");
                    tokio::time::sleep(settings.retry_max).await;
                    continue;
                }
            };
            let mut ended = false;
            while *leading.borrow_and_update() {
                if leading.changed().await.is_err() {
                    ended = true;
                    break;
                }
            }
            watchers.stop().await;
            if ended {
                return;
            }
        }
    }
}

/// Submitted findings of one report whose commit is awaited.
struct Pending {
    committed: oneshot::Receiver<AckOutcome>,
    report: String,
    findings: Vec<Fingerprint>,
}

/// Submissions awaited at most, before the watcher waits for the oldest.
const MAX_PENDING: usize = 1024;

/// Committed submissions are tracked (one store transaction for all of them) once this many
/// wait, and every [`SETTLE_EVERY`]: a transaction per report change was a fifth of the
/// watcher's CPU at 20 changes a second (docs/performance-history.md). A finding committed and
/// not yet tracked when the process dies comes again from its report after a restart.
const SETTLE_AT: usize = 32;
const SETTLE_EVERY: Duration = Duration::from_secs(1);

struct Watcher {
    kind: &'static ReportKind,
    resource: String,
    ledger: Ledger,
    pending: VecDeque<Pending>,
    pipeline: Arc<Pipeline>,
    findings: Arc<dyn Findings>,
    states: SourceStates,
    metrics: Metrics,
    queue_wait: Duration,
    state: SourceState,
    detail: String,
}

impl Watcher {
    async fn run(
        mut self,
        api: Api<DynamicObject>,
        backoff: Retry,
        mut stop: watch::Receiver<bool>,
    ) {
        self.publish();
        let config = watcher::Config::default();
        let mut stream = pin!(watcher::watcher(api, config).backoff(backoff));
        let mut listing = Instant::now();
        let mut settle = tokio::time::interval(SETTLE_EVERY);
        settle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `None` on the settling tick; `Some(None)` when stopped or the stream ended.
            let next = tokio::select! {
                item = stream.next() => Some(item),
                _ = stop.wait_for(|s| *s) => Some(None),
                _ = settle.tick() => None,
            };
            let Some(item) = next else {
                self.settle_committed().await;
                continue;
            };
            let Some(item) = item else {
                self.settle_all().await;
                return;
            };
            match item {
                Ok(WatchEvent::Init) => {
                    listing = Instant::now();
                    self.ledger.listing();
                    self.set(SourceState::Syncing, "listing".to_owned());
                }
                Ok(WatchEvent::InitApply(report)) => {
                    self.metrics.listed.increment(1);
                    self.report(&report).await;
                }
                Ok(WatchEvent::InitDone) => {
                    let gone = self.ledger.listed();
                    self.resolve(gone).await;
                    self.settle_all().await;
                    self.metrics.sync.record(listing.elapsed().as_secs_f64());
                    tracing::info!(resource = %self.resource, reports = self.ledger.reports(), findings = self.ledger.findings(), "report watcher synced");
                    self.set(SourceState::Synced, "watching".to_owned());
                }
                Ok(WatchEvent::Apply(report)) => {
                    self.metrics.applied.increment(1);
                    self.metrics.lag.set(lag(&report));
                    self.report(&report).await;
                }
                Ok(WatchEvent::Delete(report)) => {
                    self.metrics.deleted.increment(1);
                    let gone = self.ledger.delete(&self.key(&report));
                    self.resolve(gone).await;
                    self.publish();
                }
                Err(e) => {
                    self.metrics.restarts.increment(1);
                    let (state, detail) = explain(&e);
                    if state != self.state || detail != self.detail {
                        tracing::warn!(resource = %self.resource, error = %e, "report watcher: {detail}");
                    }
                    self.set(state, detail);
                }
            }
        }
    }

    /// `<plural>.<group>/<namespace>/<name>`: unique among every kind's reports.
    fn key(&self, report: &DynamicObject) -> String {
        format!(
            "{}/{}/{}",
            self.resource,
            report.metadata.namespace.as_deref().unwrap_or(""),
            report.metadata.name.as_deref().unwrap_or("")
        )
    }

    /// A report as it is now: its new findings submitted, its gone ones resolved.
    async fn report(&mut self, report: &DynamicObject) {
        let key = self.key(report);
        let body = match serde_json::to_vec(report) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(report = %key, error = %e, "a report could not be encoded again");
                return;
            }
        };
        let ctx = Context::received_at(Timestamp::now());
        let events = match self
            .pipeline
            .read(self.kind.format, Syntax::Json, &body, &ctx)
        {
            Ok(n) => {
                for e in &n.errors {
                    tracing::warn!(report = %key, error = %e, "a finding of a report could not be read");
                }
                n.events
            }
            Err(e) => {
                tracing::warn!(report = %key, error = %e, "a report could not be read");
                return;
            }
        };
        let change = self
            .ledger
            .apply(&key, events.iter().map(|e| e.fingerprint));
        let new: Vec<Event> = events
            .into_iter()
            .filter(|e| change.new.contains(&e.fingerprint))
            .collect();
        if !new.is_empty() {
            self.submit(key, new).await;
        }
        self.resolve(change.gone).await;
        self.publish();
    }

    /// Submits new findings acknowledged on commit; waits for room as long as it takes.
    async fn submit(&mut self, report: String, events: Vec<Event>) {
        let findings: Vec<Fingerprint> = events.iter().map(|e| e.fingerprint).collect();
        let (tx, committed) = oneshot::channel();
        let ack = Ack::new(events.len(), move |outcome| {
            let _ = tx.send(outcome);
        });
        let mut submission = Submission {
            events,
            received: Instant::now(),
            ack: Some(ack),
        };
        loop {
            match self.pipeline.submit(submission, self.queue_wait).await {
                Ok(()) => break,
                Err(SubmitError::Full(back)) => submission = back,
                Err(SubmitError::Closed(_)) => return,
            }
        }
        self.pending.push_back(Pending {
            committed,
            report,
            findings,
        });
        if self.pending.len() >= SETTLE_AT {
            self.settle_committed().await;
        }
        if self.pending.len() > MAX_PENDING {
            let oldest = self.pending.len() - MAX_PENDING / 2;
            self.settle(oldest).await;
        }
    }

    /// Tracks the findings whose commit has come, oldest first, without waiting.
    async fn settle_committed(&mut self) {
        let done = self
            .pending
            .iter_mut()
            .take_while(|p| !p.committed.is_empty())
            .count();
        self.settle(done).await;
    }

    /// Waits for every submission's commit, and tracks their findings.
    async fn settle_all(&mut self) {
        self.settle(self.pending.len()).await;
    }

    /// Waits for the commit of the `n` oldest submissions, and tracks their findings in one
    /// transaction; findings that were not stored are forgotten, so they come again.
    async fn settle(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let mut tracked: Vec<(String, Fingerprint)> = Vec::new();
        for p in self.pending.drain(..n).collect::<Vec<_>>() {
            match p.committed.await {
                Ok(outcome) if outcome.dead_lettered == 0 => {
                    tracked.extend(p.findings.into_iter().map(|fp| (p.report.clone(), fp)));
                }
                // Dead-lettered (kept for replay), or the pipeline stopped.
                _ => self.ledger.forget(&p.report, &p.findings),
            }
        }
        let findings = self.findings.clone();
        let done = tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, Fingerprint)> =
                tracked.iter().map(|(r, fp)| (r.as_str(), *fp)).collect();
            findings.track(&pairs)
        })
        .await;
        if let Some(e) = failed(done) {
            tracing::error!(resource = %self.resource, error = %e, "the findings of watched reports could not be tracked");
        }
    }

    /// Marks findings resolved, once everything submitted before them is tracked.
    async fn resolve(&mut self, gone: Vec<Fingerprint>) {
        if gone.is_empty() {
            return;
        }
        self.settle_all().await;
        let findings = self.findings.clone();
        let n = gone.len();
        let done =
            tokio::task::spawn_blocking(move || findings.resolve(&gone, Timestamp::now())).await;
        match done {
            Ok(Ok(resolved)) => self.metrics.resolved.increment(resolved as u64),
            _ => {
                if let Some(e) = failed(done.map(|r| r.map(drop))) {
                    tracing::error!(resource = %self.resource, findings = n, error = %e, "findings that left their reports could not be resolved");
                }
            }
        }
    }

    fn set(&mut self, state: SourceState, detail: String) {
        self.state = state;
        self.detail = detail;
        self.metrics.synced.set(if state == SourceState::Synced {
            1.0
        } else {
            0.0
        });
        self.publish();
    }

    fn publish(&self) {
        self.states.set(
            &self.resource,
            SourceStatus {
                state: self.state,
                detail: self.detail.clone(),
                objects: self.ledger.reports() as u64,
                open_findings: self.ledger.findings() as u64,
            },
        );
    }
}

/// The error of a blocking store call, logged and counted; `None` when it succeeded.
fn failed(done: Result<Result<(), zen_sink::SinkError>, tokio::task::JoinError>) -> Option<String> {
    let message = match done {
        Ok(Ok(())) => return None,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    metrics::counter!("zen_watcher_errors_total", "component" => "kube", "category" => "store")
        .increment(1);
    Some(message)
}

/// What a watcher error means for its source.
fn explain(e: &watcher::Error) -> (SourceState, String) {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.as_ref()),
        watcher::Error::WatchError(s) => Some(s.as_ref()),
        _ => None,
    };
    match status {
        Some(s) if s.code == 404 => (
            SourceState::Degraded,
            "the kind is not served (its CRD is not installed); trying again".to_owned(),
        ),
        Some(s) if s.code == 410 => (
            SourceState::Syncing,
            "the watch fell behind (410 Gone); listing again".to_owned(),
        ),
        Some(s) if s.code == 403 => (
            SourceState::Degraded,
            format!("forbidden: {}; trying again", s.message),
        ),
        _ => (SourceState::Degraded, format!("{e}; trying again")),
    }
}

/// Seconds since the newest change of a report the API server recorded (its managed fields'
/// times, else its creation).
fn lag(report: &DynamicObject) -> f64 {
    let meta = &report.metadata;
    let newest = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.time.as_ref().map(|t| t.0))
        .max()
        .or(meta.creation_timestamp.as_ref().map(|t| t.0));
    newest.map_or(0.0, |t| {
        Timestamp::now().duration_since(t).as_secs_f64().max(0.0)
    })
}

/// The informer metrics of one kind.
struct Metrics {
    listed: metrics::Counter,
    applied: metrics::Counter,
    deleted: metrics::Counter,
    restarts: metrics::Counter,
    resolved: metrics::Counter,
    sync: metrics::Histogram,
    lag: metrics::Gauge,
    synced: metrics::Gauge,
}

impl Metrics {
    fn new(resource: &str) -> Self {
        let events = |kind: &'static str| metrics::counter!("zen_watcher_informer_events_total", "resource" => resource.to_owned(), "type" => kind);
        Metrics {
            listed: events("listed"),
            applied: events("applied"),
            deleted: events("deleted"),
            restarts: metrics::counter!("zen_watcher_informer_restarts_total", "resource" => resource.to_owned()),
            resolved: metrics::counter!("zen_watcher_report_findings_resolved_total", "resource" => resource.to_owned()),
            sync: metrics::histogram!("zen_watcher_informer_sync_duration_seconds", "resource" => resource.to_owned()),
            lag: metrics::gauge!("zen_watcher_informer_lag_seconds", "resource" => resource.to_owned()),
            synced: metrics::gauge!("zen_watcher_informer_synced", "resource" => resource.to_owned()),
        }
    }
}

/// The watchers' backoff: doubling from a second up to the configured longest wait, with
/// jitter, back to a second after a success.
pub(crate) struct Retry {
    policy: RetryPolicy,
    attempt: u32,
    jitter: Jitter,
}

impl Retry {
    pub(crate) fn new(max: Duration, seed: u64) -> Self {
        Retry {
            policy: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: Duration::from_secs(1).min(max),
                max_backoff: max,
            },
            attempt: 1,
            jitter: Jitter::seeded(0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9)),
        }
    }
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        Some(self.policy.backoff(self.attempt, self.jitter.next()))
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {
        self.attempt = 1;
    }
}
