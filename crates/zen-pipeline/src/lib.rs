//! The pipeline: bodies read into events, which are filtered, de-duplicated, batched and written
//! to a sink, on threads joined by bounded `crossbeam-channel` queues.
//!
//! ```text
//! read (the caller's thread, zen-model) ─► submit ─► [events]
//!     ─► processor (1 thread: settings from zen-config-cache, filter ⇄ dedup in the chosen order,
//!        batch) ─► [jobs] ─► sink thread (retry, backoff, dead letters)
//! ```
//!
//! [`Pipeline::read`] is the one place a body becomes events: it runs on the caller's thread
//! (an HTTP handler's, a file tail's), records the `normalize` stage and counts parse errors.
//! The events then go straight to the processor's queue.
//!
//! Every queue is bounded, so a slow sink slows the processor, which fills the queue of
//! submissions, which makes [`Pipeline::try_submit`] answer [`SubmitError::Full`] (the HTTP
//! layer's 429) — or, for [`Pipeline::submit`], first wait a while for room. The processor's
//! queue is bounded in events (`queue_capacity`), not submissions, so a request of one event and
//! one of a thousand take the room they need. The
//! processor runs filtering and de-duplication in the configured [`ProcessingOrder`]; `Auto`
//! measures which drops more and puts it first, with hysteresis, and logs each switch.
//!
//! Accounting: every event received ends written, filtered (with a reason), deduplicated, or
//! dead-lettered — [`Counts`] says how many of each, and after [`Pipeline::shutdown`] they add up.
//!
//! Stage timings go to `zen_watcher_event_processing_duration_seconds{stage, source}`
//! (`normalize`, `process`, `sink`, and `total` from the body's receipt to commit); queue depth and capacity to
//! `zen_watcher_queue_depth{queue}` and `zen_watcher_queue_capacity{queue}`.

mod ack;
mod config;
mod processor;
mod room;
mod settings;
mod sink;
mod sources;
mod stats;
mod tail;
mod timing;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded, unbounded};
use zen_dedup::Deduper;
use zen_model::{Context, Event, Format, NormalizeError, Normalized, Normalizer, Syntax};

pub use ack::{Ack, AckOutcome};
pub use config::{
    BatchSettings, CacheSettings, Jitter, PipelineConfig, ProcessingOrder, RetryPolicy,
    SettingsError,
};
pub use processor::{Output, Processor, Tracked};
pub use settings::{Rules, SourceSettings};
pub use sources::{SourceState, SourceStates, SourceStatus};
pub use stats::{Counts, Ratios};
pub use tail::{Tail, TailConfig};
pub use zen_sink::{DeadLetter, Kept, NullSink, Positions, Sink, SinkError, TailPosition};

/// Events read from one body, submitted together.
#[derive(Debug)]
pub struct Submission {
    pub events: Vec<Event>,
    /// When the body was received: the `total` stage runs from here to the commit.
    pub received: Instant,
    /// Resolved with the events' outcomes, for end-to-end acknowledgement.
    pub ack: Option<Arc<Ack>>,
}

impl Submission {
    /// Events of a body received at `received`, whose outcomes nobody awaits.
    pub fn new(events: Vec<Event>, received: Instant) -> Self {
        Submission {
            events,
            received,
            ack: None,
        }
    }

    /// Events received just now, whose outcomes nobody awaits.
    pub fn now(events: Vec<Event>) -> Self {
        Submission::new(events, Instant::now())
    }
}

/// Why a submission was not taken; it comes back with the error.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the pipeline queue is full")]
    Full(Submission),
    #[error("the pipeline is shutting down")]
    Closed(Submission),
}

/// What [`Pipeline::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    pub counts: Counts,
    /// Whether every thread finished before the deadline.
    pub drained: bool,
}

/// The processor's queue, bounded in events.
#[derive(Debug, Clone)]
struct Queue {
    chunks: Sender<Submission>,
    /// The bound of `chunks`, in events.
    room: Arc<room::Room>,
}

impl Queue {
    /// Queues events for the processor if there is room for them.
    fn offer(&self, submission: Submission) -> Result<(), TrySendError<Submission>> {
        let n = submission.events.len();
        if !self.room.try_take(n) {
            return Err(TrySendError::Full(submission));
        }
        self.chunks.try_send(submission).inspect_err(|_| {
            self.room.give_back(n);
        })
    }
}

/// Builds a [`Processor`] for running the stages synchronously (one core, no threads).
pub fn processor(config: &PipelineConfig) -> Processor {
    let (processor, _, _) = build_processor(config);
    processor
}

fn build_processor(config: &PipelineConfig) -> (Processor, Arc<stats::Stats>, settings::Settings) {
    let stats = Arc::new(stats::Stats::default());
    let rules = Rules {
        filter: config.filter.clone(),
        dedup: config.dedup.clone(),
    };
    let cache = config.cache.enabled.then_some(config.cache.ttl);
    let settings = settings::Settings::new(rules, cache);
    let batch = config.batch.enabled.then(|| config.batch.batch.clone());
    let dedup = Deduper::new(config.dedup.max_entries);
    (
        Processor::new(settings.clone(), config.order, dedup, batch, stats.clone()),
        stats,
        settings,
    )
}

/// The settings that may change while the pipeline runs (the advisor's tuner moves them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub max_batch_size: usize,
    pub max_batch_age: Duration,
}

/// What the processing thread is told besides submissions: fingerprints to forget (their
/// batch was dead-lettered) and new [`Tuning`]s.
struct Controls {
    forget: Receiver<Vec<zen_model::Fingerprint>>,
    tunes: Receiver<Tuning>,
}

/// The running pipeline; see the crate docs.
#[derive(Debug)]
pub struct Pipeline {
    /// The queue of submissions; `None` once shutting down.
    submissions: Option<Queue>,
    threads: Vec<JoinHandle<()>>,
    normalizer: Arc<Normalizer>,
    stats: Arc<stats::Stats>,
    /// `zen_watcher_errors_total{component="ingest", category="parse"}`.
    parse_errors: metrics::Counter,
    normalize_stage: std::sync::Mutex<timing::StageTimer>,
    dead_letters: Receiver<DeadLetter>,
    deadline: Arc<OnceLock<Instant>>,
    /// Bounded by the tuner: one change at a time, minutes apart.
    tunes: Sender<Tuning>,
    tuning: std::sync::Mutex<Tuning>,
    /// How long a submission may wait for room ([`Pipeline::queue_wait`]), in nanoseconds.
    queue_wait: std::sync::atomic::AtomicU64,
    /// The per-source settings the processor reads ([`Pipeline::reconfigure`]).
    settings: settings::Settings,
}

impl Pipeline {
    /// Validates the configuration and starts the threads.
    pub fn start(
        config: PipelineConfig,
        normalizer: Arc<Normalizer>,
        sink: Box<dyn Sink>,
    ) -> Result<Pipeline, zen_filter::FilterError> {
        Pipeline::start_with(config, normalizer, sink, Vec::new())
    }

    /// As [`Pipeline::start`], writing to `others` too, each on a thread of its own with its own
    /// retries and dead letters. Acknowledgements and the accounting ([`Counts`]) follow
    /// `primary`; the others count only what they created
    /// (`zen_watcher_observations_created_total{sink}`).
    pub fn start_with(
        config: PipelineConfig,
        normalizer: Arc<Normalizer>,
        primary: Box<dyn Sink>,
        others: Vec<Box<dyn Sink>>,
    ) -> Result<Pipeline, zen_filter::FilterError> {
        zen_filter::Filter::compile(&config.filter)?;
        let (processor, stats, settings) = build_processor(&config);
        let room = Arc::new(room::Room::new(config.queue_capacity));
        // Bounded by `room`, in events.
        let (chunk_tx, chunk_rx) = unbounded::<Submission>();
        let (job_tx, job_rx) = bounded::<sink::Job>(64);
        let (dead_tx, dead_rx) = bounded(config.dead_letter_capacity.max(1));
        let deadline = Arc::new(OnceLock::new());
        metrics::gauge!("zen_watcher_queue_capacity", "queue" => "submissions")
            .set(room.capacity() as f64);

        let mut threads = Vec::new();
        let flush_every = config.duplicate_flush_interval;
        let taken = room.clone();
        // Bounded by the dead letters: one message a dead-lettered batch.
        let (forget_tx, forget_rx) = unbounded();
        let (tunes_tx, tunes_rx) = unbounded();
        let tuning = Tuning {
            max_batch_size: config.batch.batch.max_size,
            max_batch_age: config.batch.batch.max_age,
        };
        let mut secondaries = Vec::new();
        for (i, other) in others.into_iter().enumerate() {
            let (tx, rx) = bounded::<sink::Job>(64);
            secondaries.push(tx);
            let runner = sink::SinkRunner::new(
                other,
                false,
                config.retry.clone(),
                dead_tx.clone(),
                unbounded().0,
                Arc::new(stats::Stats::default()),
                deadline.clone(),
            );
            threads.push(spawn(&format!("zen-sink-{}", i + 1), move || {
                runner.run(rx)
            }));
        }
        threads.push(spawn("zen-process", move || {
            let sinks = Sinks {
                primary: job_tx,
                secondaries,
            };
            process_loop(
                processor,
                &chunk_rx,
                &Controls {
                    forget: forget_rx,
                    tunes: tunes_rx,
                },
                &sinks,
                &taken,
                flush_every,
            )
        }));
        let runner = sink::SinkRunner::new(
            primary,
            true,
            config.retry.clone(),
            dead_tx,
            forget_tx,
            stats.clone(),
            deadline.clone(),
        );
        threads.push(spawn("zen-sink", move || runner.run(job_rx)));
        Ok(Pipeline {
            submissions: Some(Queue {
                chunks: chunk_tx,
                room,
            }),
            threads,
            normalizer,
            stats,
            parse_errors: metrics::counter!("zen_watcher_errors_total", "component" => "ingest", "category" => "parse"),
            normalize_stage: std::sync::Mutex::new(timing::StageTimer::new("normalize")),
            dead_letters: dead_rx,
            deadline,
            tunes: tunes_tx,
            tuning: std::sync::Mutex::new(tuning),
            queue_wait: std::sync::atomic::AtomicU64::new(0),
            settings,
        })
    }

    /// Reads a body of `format` into events: the one place where input becomes events. Records
    /// the `normalize` stage by source and counts every item that could not be read (and a body
    /// that could not be read at all) in [`Counts::parse_errors`] and
    /// `zen_watcher_errors_total{component="ingest", category="parse"}`.
    pub fn read(
        &self,
        format: Format,
        syntax: Syntax,
        body: &[u8],
        ctx: &Context,
    ) -> Result<Normalized, NormalizeError> {
        let started = Instant::now();
        let outcome = self.normalizer.normalize_text(format, syntax, body, ctx);
        let errors = match &outcome {
            Ok(n) => {
                let elapsed = started.elapsed();
                if !n.events.is_empty() {
                    self.normalize_stage
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .record_shared(format.as_str(), elapsed, n.events.len());
                }
                n.error_count() as u64
            }
            Err(_) => 1,
        };
        if errors > 0 {
            self.stats.parse_errors.fetch_add(errors, Relaxed);
            self.parse_errors.increment(errors);
        }
        outcome
    }

    /// Puts new filter and de-duplication rules in force (Kubernetes custom resources): they
    /// are compiled first, and a rule that does not compile changes nothing; the cached
    /// settings of the scopes they change are forgotten, so the next event of each source is
    /// read with them. Says which scopes changed (`None`: the global one). The dedup's capacity
    /// stays as started.
    pub fn reconfigure(
        &self,
        filter: zen_filter::FilterConfig,
        dedup: zen_dedup::DedupConfig,
    ) -> Result<Vec<Option<String>>, zen_filter::FilterError> {
        self.settings.replace(Rules { filter, dedup })
    }

    /// Queues a submission, or hands it back at once when the queue is full or closed.
    pub fn try_submit(&self, submission: Submission) -> Result<(), SubmitError> {
        self.counted(self.send(submission))
    }

    /// As [`Pipeline::try_submit`], but events that find the processor's queue full wait up to
    /// `wait` for room before they are handed back: the client is slowed to the pipeline's pace
    /// instead of refused, and its request was not read and normalised for nothing. (Payloads
    /// are tried once: their queue is of submissions, and nothing signals when it frees.)
    pub async fn submit(
        &self,
        mut submission: Submission,
        wait: std::time::Duration,
    ) -> Result<(), SubmitError> {
        let Some(queue) = &self.submissions else {
            return self.try_submit(submission);
        };
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            // Made before trying, so that room freed in between wakes it.
            let freed = queue.room.freed();
            match self.send(submission) {
                Err(TrySendError::Full(back)) if tokio::time::Instant::now() < give_up => {
                    submission = back;
                    let _ = tokio::time::timeout_at(give_up, freed).await;
                }
                sent => return self.counted(sent),
            }
        }
    }

    /// Counts what became of a submission.
    fn counted(&self, sent: Result<(), TrySendError<Submission>>) -> Result<(), SubmitError> {
        match sent {
            Ok(()) => {
                self.stats.submissions.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(s)) => {
                self.stats.rejected_full.fetch_add(1, Relaxed);
                Err(SubmitError::Full(s))
            }
            Err(TrySendError::Disconnected(s)) => Err(SubmitError::Closed(s)),
        }
    }

    /// Tries to queue a submission once, uncounted.
    fn send(&self, submission: Submission) -> Result<(), TrySendError<Submission>> {
        match &self.submissions {
            Some(queue) => queue.offer(submission),
            None => Err(TrySendError::Disconnected(submission)),
        }
    }

    /// While the primary sink fails and its writes are retried: for how long, and its last
    /// error (a full disk, a store that is down).
    pub fn sink_failing(&self) -> Option<(std::time::Duration, String)> {
        let failing = self.stats.failing.lock().unwrap_or_else(|p| p.into_inner());
        failing
            .as_ref()
            .map(|(since, error)| (since.elapsed(), error.clone()))
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        self.stats.read()
    }

    /// Sets `zen_watcher_pipeline_efficiency_ratio`, `zen_watcher_filter_effectiveness_ratio`
    /// and `zen_watcher_deduplication_ratio` from [`Counts::ratios`] (left unset before the first
    /// event). Called before each scrape.
    pub fn publish_ratios(&self) {
        if let Some(r) = self.counts().ratios() {
            metrics::gauge!("zen_watcher_pipeline_efficiency_ratio").set(r.efficiency);
            metrics::gauge!("zen_watcher_filter_effectiveness_ratio").set(r.filtered);
            metrics::gauge!("zen_watcher_deduplication_ratio").set(r.deduplicated);
        }
    }

    /// The batch size and age in force (or about to be: the processing thread takes a change
    /// at its next wake, within `max_batch_age` or the next event).
    pub fn tuning(&self) -> Tuning {
        *self
            .tuning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long a submission waits for room in a full queue before it is refused: the server's
    /// `queue_wait`, which the advisor's tuner may move (0 until set).
    pub fn queue_wait(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.queue_wait.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn set_queue_wait(&self, wait: std::time::Duration) {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.queue_wait
            .store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Batches of `t.max_batch_size` events (at least 1) and `t.max_batch_age` from now on.
    pub fn tune(&self, t: Tuning) {
        let t = Tuning {
            max_batch_size: t.max_batch_size.max(1),
            ..t
        };
        *self
            .tuning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
        // The processing thread is gone only at shutdown, when no batch matters any more.
        let _ = self.tunes.send(t);
    }

    /// Batches the sink would not take; read them to keep them (the hand-off is bounded).
    pub fn dead_letters(&self) -> &Receiver<DeadLetter> {
        &self.dead_letters
    }

    /// Stops taking submissions, processes everything queued, flushes every batch and duplicate
    /// count, and waits for the threads until `deadline`.
    pub fn shutdown(mut self, deadline: Instant) -> ShutdownReport {
        let _ = self.deadline.set(deadline);
        self.submissions = None;
        while Instant::now() < deadline && self.threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let drained = self.threads.iter().all(JoinHandle::is_finished);
        if drained {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
        ShutdownReport {
            counts: self.stats.read(),
            drained,
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    // Spawning fails only when the OS is out of threads; the daemon cannot run without them.
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("starting thread {name}: {e}"))
}

/// The sinks' queues: the primary's, and those beside it.
struct Sinks {
    primary: Sender<sink::Job>,
    secondaries: Vec<Sender<sink::Job>>,
}

impl Sinks {
    /// Queues a job for every sink; fails when the primary is gone.
    fn send(&self, job: sink::Job) -> Result<(), ()> {
        for other in &self.secondaries {
            if let Some(copy) = job.for_secondary() {
                let _ = other.send(copy);
            }
        }
        self.primary.send(job).map_err(drop)
    }
}

fn process_loop(
    mut processor: Processor,
    rx: &Receiver<Submission>,
    controls: &Controls,
    tx: &Sinks,
    room: &room::Room,
    flush_every: Duration,
) {
    let mut stage = timing::StageTimer::new("process");
    let depth = metrics::gauge!("zen_watcher_queue_depth", "queue" => "submissions");
    let mut out = Vec::new();
    let mut next_flush = Instant::now() + flush_every;
    loop {
        let wake = processor
            .next_deadline()
            .map_or(next_flush, |d| d.min(next_flush));
        let received = rx.recv_timeout(wake.saturating_duration_since(Instant::now()));
        for fingerprints in controls.forget.try_iter() {
            processor.forget(&fingerprints);
        }
        for t in controls.tunes.try_iter() {
            processor.retune(t.max_batch_size, t.max_batch_age);
        }
        let now = Instant::now();
        match received {
            Ok(Submission {
                events,
                received,
                ack,
            }) => {
                // A chunk comes from one payload: its first event names its source.
                let n = events.len();
                let waiting = room.give_back(n);
                let source = events.first().map(|e| e.source.clone());
                processor.process_acked(now, events, received, ack.as_ref(), &mut out);
                if let Some(source) = source {
                    stage.record_shared(&source, now.elapsed(), n);
                }
                depth.set(waiting as f64);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        processor.poll(now, &mut out);
        let updates = if now >= next_flush {
            next_flush = now + flush_every;
            processor.take_duplicates(now, &mut out)
        } else {
            Vec::new()
        };
        // Batches before the duplicate counts of their events.
        for job in sink::jobs(&mut out) {
            if tx.send(job).is_err() {
                return;
            }
        }
        if !updates.is_empty() && tx.send(sink::Job::Duplicates(updates)).is_err() {
            return;
        }
    }
    processor.drain(Instant::now(), &mut out);
    let updates = processor.take_duplicates(Instant::now(), &mut out);
    for job in sink::jobs(&mut out) {
        let _ = tx.send(job);
    }
    if !updates.is_empty() {
        let _ = tx.send(sink::Job::Duplicates(updates));
    }
}
