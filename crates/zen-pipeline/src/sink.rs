//! Where batches go: the loop that writes them to a [`Sink`] (zen-sink) with retries, backoff and
//! a bounded dead-letter hand-off.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use zen_dedup::DuplicateUpdate;
use zen_sink::{DeadLetter, Kept, Sink, SinkError};

use crate::config::RetryPolicy;
use crate::processor::{Output, Tracked};
use crate::stats::Stats;
use crate::timing::{CappedLabel, StageTimer};

/// Duplicate counts waiting to be applied, one per kept sighting, in sequence order.
///
/// Counts for the same sighting that arrive before it is applied (the deduper sends them every
/// second; a busy sink lags) are added together into one update. Taken in sequence order, a slice
/// names rows written close together, so one transaction touches fewer of the store's pages.
#[derive(Debug, Default)]
struct Pending(BTreeMap<u64, DuplicateUpdate>);

impl Pending {
    fn add(&mut self, updates: Vec<DuplicateUpdate>) {
        for u in updates {
            match self.0.entry(u.seq) {
                Entry::Vacant(v) => {
                    v.insert(u);
                }
                Entry::Occupied(mut o) => {
                    let o = o.get_mut();
                    o.duplicates = o.duplicates.saturating_add(u.duplicates);
                    o.last_seen = o.last_seen.max(u.last_seen);
                }
            }
        }
    }

    /// Removes and returns the `n` updates of the lowest sequence numbers.
    fn take(&mut self, n: usize) -> Vec<DuplicateUpdate> {
        std::iter::from_fn(|| self.0.pop_first().map(|(_, u)| u))
            .take(n)
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Work for the sink thread.
#[derive(Debug)]
pub(crate) enum Job {
    Output(Output),
    Duplicates(Vec<DuplicateUpdate>),
    /// A batch, and behind it counts that submitters wait for: written in one transaction.
    Counted {
        batch: zen_batch::Batch<Tracked>,
        updates: Vec<DuplicateUpdate>,
        acked: Awaiting,
    },
}

/// The processor's outputs as jobs, in order; awaited counts ride with the batch just before
/// them (every batch they may count is written by then), so they cost no commit of their own.
pub(crate) fn jobs(out: &mut Vec<Output>) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::with_capacity(out.len());
    for o in out.drain(..) {
        let Output::Duplicates { updates, acked } = o else {
            jobs.push(Job::Output(o));
            continue;
        };
        match jobs.pop() {
            Some(Job::Output(Output::Batch(batch))) => jobs.push(Job::Counted {
                batch,
                updates,
                acked,
            }),
            last => {
                jobs.extend(last);
                jobs.push(Job::Output(Output::Duplicates { updates, acked }));
            }
        }
    }
    jobs
}

impl Job {
    /// The job as a sink beside the primary gets it: the same batches and counts, with no
    /// acknowledgement waiting on it; events rejected before any sink are the primary's alone.
    pub(crate) fn for_secondary(&self) -> Option<Job> {
        match self {
            Job::Counted { batch, updates, .. } => Some(Job::Counted {
                batch: without_acks(batch),
                updates: updates.clone(),
                acked: Vec::new(),
            }),
            Job::Output(Output::Batch(b)) => Some(Job::Output(Output::Batch(without_acks(b)))),
            Job::Output(Output::Rejected { .. }) => None,
            Job::Output(Output::Duplicates { updates, .. }) | Job::Duplicates(updates) => {
                Some(Job::Duplicates(updates.clone()))
            }
        }
    }
}

/// Acknowledgements waiting on duplicate counts, and how many events of each the counts settle.
pub(crate) type Awaiting = Vec<(Arc<crate::Ack>, usize)>;

/// A copy of a batch that no acknowledgement waits on.
fn without_acks(b: &zen_batch::Batch<Tracked>) -> zen_batch::Batch<Tracked> {
    zen_batch::Batch {
        items: b
            .items
            .iter()
            .map(|t| Tracked {
                ack: None,
                ..t.clone()
            })
            .collect(),
        source: b.source.clone(),
        reason: b.reason,
        latency: b.latency,
    }
}

/// Rules that get a label value of their own in `zen_watcher_observations_by_rule_total`.
const MAX_RULES: usize = 500;

/// The most duplicate counts applied in one transaction.
const UPDATE_SLICE: usize = 256;

/// How long after a write the sink settles what it journaled, if it is idle by then.
const SETTLE_AFTER: Duration = Duration::from_secs(1);

/// The most events gathered into one write.
const MAX_WRITE: usize = 1_000;

pub(crate) struct SinkRunner {
    sink: Box<dyn Sink>,
    /// The sink acknowledgements, the pipeline's accounting, stage timings and rule counts
    /// follow; the others (`Pipeline::start_with`) count only what they created.
    primary: bool,
    retry: RetryPolicy,
    dead_letters: Sender<DeadLetter>,
    /// Fingerprints of dead-lettered first sightings, for the deduper to forget: their rows do
    /// not exist, so the next sighting must be written as new.
    forget: Sender<Vec<zen_model::Fingerprint>>,
    stats: Arc<Stats>,
    /// Set at shutdown: no retry may wait past it.
    deadline: Arc<OnceLock<Instant>>,
    jitter: crate::Jitter,
    /// Metric handles, registered on first use: per-event time in the sink, from receipt to
    /// commit, and Observations created, per source.
    /// Time to commit one write (a batch, or batches gathered together).
    write_duration: metrics::Histogram,
    sink_stage: StageTimer,
    total_stage: StageTimer,
    created: HashMap<String, metrics::Counter>,
    /// New Observations by source and rule (rules past [`MAX_RULES`] count as `_other`).
    by_rule: HashMap<(String, String), metrics::Counter>,
    rules: CappedLabel,
}

impl SinkRunner {
    pub(crate) fn new(
        sink: Box<dyn Sink>,
        primary: bool,
        retry: RetryPolicy,
        dead_letters: Sender<DeadLetter>,
        forget: Sender<Vec<zen_model::Fingerprint>>,
        stats: Arc<Stats>,
        deadline: Arc<OnceLock<Instant>>,
    ) -> Self {
        SinkRunner {
            sink,
            primary,
            retry,
            dead_letters,
            forget,
            stats,
            deadline,
            jitter: crate::Jitter::default(),
            write_duration: metrics::histogram!("zen_watcher_batch_processing_duration_seconds"),
            sink_stage: StageTimer::new("sink"),
            total_stage: StageTimer::new("total"),
            created: HashMap::new(),
            by_rule: HashMap::new(),
            rules: CappedLabel::new(MAX_RULES),
        }
    }

    pub(crate) fn run(mut self, jobs: Receiver<Job>) {
        let mut next: Option<Job> = None;
        // Duplicate counts waiting to be added. They are applied a slice at a time, only while
        // no other job waits: thousands of updates in one transaction held every write (and
        // every acknowledgement) behind them for tens of milliseconds. Their rows are already
        // written (a first sighting's batch is queued before its duplicates' counts). When an
        // acknowledgement waits on some (`Output::Duplicates`), all are applied at once.
        let mut updates = Pending::default();
        // When to settle the counts the sink journaled ([`Sink::settle`]): a while after the
        // first write since it last settled everything, and then only while no other job
        // waits. Settling at every idle moment cost a transaction per acknowledged request,
        // and wrote the same pages of repeats over and over.
        let mut settle_at: Option<Instant> = None;
        loop {
            let job = match next.take() {
                Some(job) => job,
                None if !updates.is_empty() => match jobs.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => {
                        self.apply_slice(&mut updates);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                },
                None => {
                    let got = match settle_at {
                        Some(at) => jobs.recv_deadline(at),
                        None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match got {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => {
                            // More left: go on at once, unless a job comes first.
                            settle_at = self.settle().then(Instant::now);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            // Any write may have journaled counts; with none, settling costs nothing.
            settle_at.get_or_insert_with(|| Instant::now() + SETTLE_AFTER);
            match job {
                Job::Output(Output::Batch(mut batch)) => {
                    // Batches of the same source already waiting go in the same write — one
                    // transaction — so a backed-up sink catches up with fewer commits. An idle
                    // one writes each batch as it comes. Counts awaited right behind them go in
                    // the same transaction too: an acknowledged request with duplicates costs
                    // one commit, not two.
                    let mut awaited = None;
                    while batch.items.len() < MAX_WRITE {
                        match jobs.try_recv() {
                            Ok(Job::Output(Output::Batch(more))) if more.source == batch.source => {
                                batch.items.extend(more.items);
                            }
                            Ok(Job::Counted {
                                batch: more,
                                updates: counts,
                                acked,
                            }) if more.source == batch.source => {
                                batch.items.extend(more.items);
                                updates.add(counts);
                                awaited = Some((updates.take(usize::MAX), acked));
                                break;
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write(&batch.source, batch.items, awaited, &mut updates);
                }
                Job::Output(Output::Rejected {
                    source,
                    events,
                    ack,
                    error,
                }) => {
                    if let Some(a) = &ack {
                        a.resolve(events.len(), true);
                    }
                    self.dead_letter(DeadLetter {
                        source,
                        events,
                        error,
                        attempts: 0,
                    });
                }
                Job::Output(Output::Duplicates {
                    updates: more,
                    acked,
                }) => {
                    updates.add(more);
                    self.apply_awaited(&mut updates, acked);
                }
                Job::Counted {
                    batch,
                    updates: counts,
                    acked,
                } => {
                    updates.add(counts);
                    let awaited = Some((updates.take(usize::MAX), acked));
                    self.write(&batch.source, batch.items, awaited, &mut updates);
                }
                Job::Duplicates(more) => updates.add(more),
            }
        }
        // Shutting down: what is left.
        while !updates.is_empty() {
            self.apply_slice(&mut updates);
        }
        while self.settle() {}
    }

    /// Settles a slice of the sink's journaled counts; says whether more remain. On an error
    /// (after the retries) they stay journaled, to be settled at the next start.
    fn settle(&mut self) -> bool {
        match self.attempt(|sink| sink.settle()) {
            Ok(more) => more,
            Err((e, attempts)) => {
                tracing::error!(error = %e, attempts, "journaled duplicate counts could not be settled");
                metrics::counter!("zen_watcher_errors_total", "component" => "sink", "category" => "store").increment(1);
                false
            }
        }
    }

    /// Makes every waiting count durable now — submitters wait on some — in one call (a store
    /// journals them), and tells them.
    fn apply_awaited(&mut self, updates: &mut Pending, acked: Awaiting) {
        let counts = updates.take(usize::MAX);
        let n = counts.len() as u64;
        let outcome = self.attempt(|sink| sink.write_then_count("", &[], &counts));
        let durable = self.counted(n, outcome);
        for (ack, n) in acked {
            ack.resolve(n, !durable);
        }
    }

    /// Applies the [`UPDATE_SLICE`] waiting counts of the lowest sequence numbers; says whether
    /// they were committed.
    fn apply_slice(&mut self, updates: &mut Pending) -> bool {
        let slice = updates.take(UPDATE_SLICE);
        let n = slice.len() as u64;
        let outcome = self.attempt(|sink| sink.apply_duplicates(&slice));
        self.counted(n, outcome)
    }

    /// Accounts for `n` duplicate counts the sink took, or says why it did not; whether it did.
    fn counted(&self, n: u64, outcome: Result<(), (SinkError, u32)>) -> bool {
        match outcome {
            Ok(()) => {
                self.stats.duplicate_updates.fetch_add(n, Relaxed);
                true
            }
            Err((e, attempts)) => {
                tracing::error!(error = %e, attempts, updates = n, "duplicate counts could not be applied");
                metrics::counter!("zen_watcher_errors_total", "component" => "sink", "category" => "store").increment(1);
                false
            }
        }
    }

    /// Writes a batch; with `awaited`, adds those counts in the same call (one transaction in
    /// a store) and resolves the acknowledgements waiting on them.
    fn write(
        &mut self,
        source: &str,
        items: Vec<Tracked>,
        awaited: Option<(Vec<DuplicateUpdate>, Awaiting)>,
        updates: &mut Pending,
    ) {
        let started = Instant::now();
        let mut kept = Vec::with_capacity(items.len());
        let mut tails = Vec::with_capacity(items.len());
        for t in items {
            kept.push(Kept {
                seq: t.seq,
                event: t.event,
            });
            tails.push((t.received, t.ack));
        }
        let n = kept.len() as u64;
        let counts: &[DuplicateUpdate] = awaited.as_ref().map_or(&[], |(u, _)| u);
        let outcome = self.attempt(|sink| match counts {
            [] => sink.write(source, &kept),
            counts => sink.write_then_count(source, &kept, counts),
        });
        match outcome {
            Ok(()) => {
                if let Some((counts, acked)) = awaited {
                    self.stats
                        .duplicate_updates
                        .fetch_add(counts.len() as u64, Relaxed);
                    for (ack, n) in acked {
                        ack.resolve(n, false);
                    }
                }
                let done = Instant::now();
                self.stats.written.fetch_add(n, Relaxed);
                let sink = self.sink.name();
                self.created
                    .entry(source.to_owned())
                    .or_insert_with(|| {
                        let (source, sink) = (source.to_owned(), sink.to_owned());
                        metrics::counter!("zen_watcher_observations_created_total", "source" => source, "sink" => sink)
                    })
                    .increment(n);
                if !self.primary {
                    return;
                }
                self.write_duration
                    .record(done.duration_since(started).as_secs_f64());
                self.sink_stage
                    .record_shared(source, done.duration_since(started), n as usize);
                self.count_rules(source, &kept);
                let total = self.total_stage.of(source);
                for (received, ack) in tails {
                    total.record(done.duration_since(received).as_secs_f64());
                    if let Some(a) = ack {
                        a.resolve(1, false);
                    }
                }
            }
            Err((e, attempts)) => {
                tracing::error!(error = %e, attempts, source, events = n, "batch dead-lettered");
                metrics::counter!("zen_watcher_errors_total", "component" => "sink", "category" => "store").increment(1);
                for a in tails.into_iter().filter_map(|(_, ack)| ack) {
                    a.resolve(1, true);
                }
                let _ = self
                    .forget
                    .send(kept.iter().map(|k| k.event.fingerprint).collect());
                // The counts went down with the batch: on their own, then.
                if let Some((counts, acked)) = awaited {
                    updates.add(counts);
                    self.apply_awaited(updates, acked);
                }
                self.dead_letter(DeadLetter {
                    source: source.to_owned(),
                    events: kept.into_iter().map(|k| k.event).collect(),
                    error: e.message,
                    attempts,
                });
            }
        }
    }

    /// Calls `op` until it succeeds, fails for good, runs out of attempts or of time.
    fn attempt<T>(
        &mut self,
        mut op: impl FnMut(&mut dyn Sink) -> Result<T, SinkError>,
    ) -> Result<T, (SinkError, u32)> {
        let mut attempt = 1;
        loop {
            match op(self.sink.as_mut()) {
                Ok(v) => {
                    if attempt > 1 && self.primary {
                        *self.stats.failing.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        tracing::info!(attempts = attempt, "the sink writes again");
                    }
                    return Ok(v);
                }
                Err(e) if !e.retryable || attempt >= self.retry.max_attempts.max(1) => {
                    return Err((e, attempt));
                }
                Err(e) => {
                    if self.primary {
                        let mut failing =
                            self.stats.failing.lock().unwrap_or_else(|p| p.into_inner());
                        let since = failing.as_ref().map_or_else(Instant::now, |f| f.0);
                        *failing = Some((since, e.message.clone()));
                    }
                    attempt += 1;
                    let jitter = self.jitter.next();
                    let wait = self.retry.backoff(attempt, jitter);
                    if self
                        .deadline
                        .get()
                        .is_some_and(|d| Instant::now() + wait > *d)
                    {
                        return Err((e, attempt - 1));
                    }
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "sink failed, retrying");
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Adds the written `events` of `source` to their rules' counters.
    fn count_rules(&mut self, source: &str, kept: &[Kept]) {
        let mut tally: HashMap<&str, u64> = HashMap::new();
        for k in kept {
            *tally
                .entry(k.event.rule_id.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        for (rule, n) in tally {
            let rule = self.rules.value(rule);
            self.by_rule
                .entry((source.to_owned(), rule))
                .or_insert_with_key(|(source, rule)| {
                    metrics::counter!("zen_watcher_observations_by_rule_total", "source" => source.clone(), "rule" => rule.clone())
                })
                .increment(n);
        }
    }

    fn dead_letter(&mut self, letter: DeadLetter) {
        self.stats
            .dead_lettered
            .fetch_add(letter.events.len() as u64, Relaxed);
        metrics::counter!("zen_watcher_dead_letters_total", "source" => letter.source.clone())
            .increment(letter.events.len() as u64);
        if let Err(TrySendError::Full(letter) | TrySendError::Disconnected(letter)) =
            self.dead_letters.try_send(letter)
        {
            self.stats.dead_letters_lost.fetch_add(1, Relaxed);
            tracing::error!(
                source = letter.source,
                events = letter.events.len(),
                "dead-letter hand-off full: batch dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

    use std::sync::Mutex;
    use std::time::Duration;

    use zen_batch::{Batch, FlushReason};
    use zen_model::{Context, Format, Normalizer};

    use super::*;

    /// Records the calls it gets.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Sink for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn write(&mut self, _: &str, events: &[Kept]) -> Result<(), SinkError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("write {}", events.len()));
            Ok(())
        }
        fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("counts {}", updates.len()));
            Ok(())
        }
    }

    #[test]
    fn waiting_counts_of_one_sighting_are_added_together_and_taken_in_sequence_order() {
        let at = |s: &str| s.parse::<zen_model::Timestamp>().unwrap();
        let update = |seq, duplicates, last_seen: &str| DuplicateUpdate {
            seq,
            fingerprint: zen_model::Fingerprint::builder("t").field("x").finish(),
            duplicates,
            last_seen: at(last_seen),
        };
        let mut pending = Pending::default();
        pending.add(vec![
            update(9, 1, "2026-02-11T09:00:05Z"),
            update(3, 2, "2026-02-11T09:00:01Z"),
        ]);
        pending.add(vec![
            update(9, 4, "2026-02-11T09:00:02Z"),
            update(5, 1, "2026-02-11T09:00:03Z"),
        ]);
        let taken: Vec<_> = pending
            .take(2)
            .into_iter()
            .map(|u| (u.seq, u.duplicates))
            .collect();
        assert_eq!(taken, [(3, 2), (5, 1)]);
        let rest = pending.take(10);
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].seq, rest[0].duplicates), (9, 5));
        assert_eq!(rest[0].last_seen, at("2026-02-11T09:00:05Z"), "the latest");
        assert!(pending.is_empty());
    }

    #[test]
    fn a_waiting_write_goes_before_duplicate_counts_which_are_applied_in_slices() {
        let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
        let event = Normalizer::default()
            .normalize(
                Format::Falco,
                br#"{"rule":"A","priority":"Critical"}"#,
                &ctx,
            )
            .unwrap()
            .events
            .remove(0);
        let updates: Vec<DuplicateUpdate> = (0..1000u64)
            .map(|i| DuplicateUpdate {
                seq: i,
                fingerprint: zen_model::Fingerprint::builder("t")
                    .field(&i.to_string())
                    .finish(),
                duplicates: 1,
                last_seen: event.detected_at,
            })
            .collect();
        let (jobs_tx, jobs) = crossbeam_channel::unbounded();
        jobs_tx.send(Job::Duplicates(updates)).unwrap();
        jobs_tx
            .send(Job::Output(Output::Batch(Batch {
                source: "falco".into(),
                items: vec![Tracked {
                    event,
                    received: Instant::now(),
                    ack: None,
                    seq: 0,
                }],
                reason: FlushReason::Size,
                latency: Duration::ZERO,
            })))
            .unwrap();
        drop(jobs_tx);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (dead_tx, _dead) = crossbeam_channel::bounded(1);
        let stats = Arc::new(Stats::default());
        SinkRunner::new(
            Box::new(Recorder(calls.clone())),
            true,
            RetryPolicy::default(),
            dead_tx,
            crossbeam_channel::unbounded().0,
            stats.clone(),
            Arc::new(OnceLock::new()),
        )
        .run(jobs);
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls[0], "write 1", "{calls:?}");
        let applied: usize = calls[1..]
            .iter()
            .map(|c| {
                let n: usize = c.strip_prefix("counts ").unwrap().parse().unwrap();
                assert!(n <= UPDATE_SLICE, "{calls:?}");
                n
            })
            .sum();
        assert_eq!(
            applied, 1000,
            "every count is applied by the end: {calls:?}"
        );
        assert_eq!(stats.read().duplicate_updates, 1000);
    }
}
