//! The pipeline: payloads in, events normalised, filtered, de-duplicated, batched and written to
//! a sink, on threads joined by bounded `crossbeam-channel` queues.
//!
//! ```text
//! try_submit ─► payloads ─► [payloads] ─► normalisers (N threads, zen-model) ─┐
//!           └─► events (normalised by the caller) ──────────────────────────┴► [chunks]
//!     ─► processor (1 thread: settings from zen-config-cache, filter ⇄ dedup in the chosen order,
//!        batch) ─► [jobs] ─► sink thread (retry, backoff, dead letters)
//! ```
//!
//! Events normalised by the caller (the HTTP handlers do it on their own threads) go straight to
//! the processor's queue: a thread hand-off fewer, each a wake-up on the request's path.
//!
//! Every queue is bounded, so a slow sink slows the processor, which fills the queues of
//! submissions, which makes [`Pipeline::try_submit`] answer [`SubmitError::Full`] (the HTTP
//! layer's 429) — or, for [`Pipeline::submit`], first wait a while for room. The processor's queue is bounded in events (`queue_capacity`), not
//! submissions, so a request of one event and one of a thousand take the room they need;
//! payloads wait for a normaliser in a queue of [`PAYLOADS_WAITING`]. The
//! processor runs filtering and de-duplication in the configured [`ProcessingOrder`]; `Auto`
//! measures which drops more and puts it first, with hysteresis, and logs each switch.
//!
//! Accounting: every event received ends written, filtered (with a reason), deduplicated, or
//! dead-lettered — [`Counts`] says how many of each, and after [`Pipeline::shutdown`] they add up.
//!
//! Stage timings go to `zen_watcher_event_processing_duration_seconds{stage, source}`
//! (`normalize`, `process`, `sink`, and `total` from receipt to commit); queue depth and capacity to
//! `zen_watcher_queue_depth{queue}` and `zen_watcher_queue_capacity{queue}`.

mod ack;
mod config;
mod processor;
mod room;
mod settings;
mod sink;
mod stats;
mod timing;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded, unbounded};
use zen_dedup::Deduper;
use zen_model::{Context, Event, Format, Normalizer};

pub use ack::{Ack, AckOutcome};
pub use config::{BatchSettings, CacheSettings, PipelineConfig, ProcessingOrder, RetryPolicy};
pub use processor::{Output, Processor, Tracked};
pub use settings::{SettingsLoader, SourceSettings};
pub use sink::{DeadLetter, NullSink, Sink, SinkError};
pub use stats::{Counts, Ratios};
pub use timing::record_normalize;

/// Work submitted to the pipeline.
#[derive(Debug)]
pub enum Submission {
    /// A payload to normalise.
    Payload {
        format: Format,
        body: Vec<u8>,
        ctx: Context,
    },
    /// Events already normalised.
    Events(Vec<Event>),
    /// Events already normalised, whose outcomes `Ack` awaits (end-to-end acknowledgement).
    AckedEvents(Vec<Event>, Arc<Ack>),
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

/// Where submissions go: payloads to the normalisers, events straight to the processor.
#[derive(Debug, Clone)]
struct Queues {
    payloads: Sender<(Payload, Instant)>,
    chunks: Sender<Chunk>,
    /// The bound of `chunks`, in events.
    room: Arc<room::Room>,
}

impl Queues {
    /// Queues events for the processor if there is room for them.
    fn offer(&self, chunk: Chunk) -> Result<(), TrySendError<Submission>> {
        let n = chunk.0.len();
        if !self.room.try_take(n) {
            return Err(TrySendError::Full(back(chunk)));
        }
        refused(self.chunks.try_send(chunk), back).inspect_err(|_| {
            self.room.give_back(n);
        })
    }
}

/// Payloads waiting for a normaliser (each up to the body limit), beside the events in the
/// processor's queue.
pub const PAYLOADS_WAITING: usize = 256;

/// A payload waiting for a normaliser.
#[derive(Debug)]
struct Payload {
    format: Format,
    body: Vec<u8>,
    ctx: Context,
}

/// Builds a [`Processor`] for running the stages synchronously (one core, no threads).
pub fn processor(config: &PipelineConfig) -> Processor {
    let (processor, _) = build_processor(config);
    processor
}

fn build_processor(config: &PipelineConfig) -> (Processor, Arc<stats::Stats>) {
    let stats = Arc::new(stats::Stats::default());
    let loader = SettingsLoader {
        filter: config.filter.clone(),
        dedup: config.dedup.clone(),
    };
    let cache = config.cache.enabled.then_some(config.cache.ttl);
    let settings = settings::Settings::new(loader, cache);
    let batch = config.batch.enabled.then(|| config.batch.batch.clone());
    let dedup = Deduper::new(config.dedup.max_entries);
    (
        Processor::new(settings, config.order, dedup, batch, stats.clone()),
        stats,
    )
}

/// The running pipeline; see the crate docs.
#[derive(Debug)]
pub struct Pipeline {
    /// Both queues of submissions; `None` once shutting down.
    submissions: Option<Queues>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<stats::Stats>,
    dead_letters: Receiver<DeadLetter>,
    deadline: Arc<OnceLock<Instant>>,
}

impl Pipeline {
    /// Validates the configuration and starts the threads.
    pub fn start(
        config: PipelineConfig,
        normalizer: Arc<Normalizer>,
        sink: Box<dyn Sink>,
    ) -> Result<Pipeline, zen_filter::FilterError> {
        zen_filter::Filter::compile(&config.filter)?;
        let (processor, stats) = build_processor(&config);
        let room = Arc::new(room::Room::new(config.queue_capacity));
        let (payload_tx, payload_rx) = bounded::<(Payload, Instant)>(PAYLOADS_WAITING);
        // Bounded by `room`, in events.
        let (chunk_tx, chunk_rx) = unbounded::<Chunk>();
        let (job_tx, job_rx) = bounded::<sink::Job>(64);
        let (dead_tx, dead_rx) = bounded(config.dead_letter_capacity.max(1));
        let deadline = Arc::new(OnceLock::new());
        metrics::gauge!("zen_watcher_queue_capacity", "queue" => "submissions")
            .set(room.capacity() as f64);

        let mut threads = Vec::new();
        for i in 0..config.normalizers.max(1) {
            let (rx, tx, room, normalizer, stats) = (
                payload_rx.clone(),
                chunk_tx.clone(),
                room.clone(),
                normalizer.clone(),
                stats.clone(),
            );
            threads.push(spawn(&format!("zen-normalize-{i}"), move || {
                normalize_loop(&rx, &tx, &room, &normalizer, &stats)
            }));
        }
        let flush_every = config.duplicate_flush_interval;
        let taken = room.clone();
        threads.push(spawn("zen-process", move || {
            process_loop(processor, &chunk_rx, &job_tx, &taken, flush_every)
        }));
        let runner = sink::SinkRunner::new(
            sink,
            config.retry.clone(),
            dead_tx,
            stats.clone(),
            deadline.clone(),
        );
        threads.push(spawn("zen-sink", move || runner.run(job_rx)));
        Ok(Pipeline {
            submissions: Some(Queues {
                payloads: payload_tx,
                chunks: chunk_tx,
                room,
            }),
            threads,
            stats,
            dead_letters: dead_rx,
            deadline,
        })
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
        let Some(queues) = &self.submissions else {
            return self.try_submit(submission);
        };
        if matches!(submission, Submission::Payload { .. }) {
            return self.try_submit(submission);
        }
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            // Made before trying, so that room freed in between wakes it.
            let freed = queues.room.freed();
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
        let Some(queues) = &self.submissions else {
            return Err(TrySendError::Disconnected(submission));
        };
        let now = Instant::now();
        match submission {
            Submission::Payload { format, body, ctx } => refused(
                queues
                    .payloads
                    .try_send((Payload { format, body, ctx }, now)),
                |(p, _)| Submission::Payload {
                    format: p.format,
                    body: p.body,
                    ctx: p.ctx,
                },
            ),
            Submission::Events(events) => queues.offer((events, now, None)),
            Submission::AckedEvents(events, ack) => queues.offer((events, now, Some(ack))),
        }
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

/// Events on their way to the processor.
type Chunk = (Vec<Event>, Instant, Option<Arc<Ack>>);

/// A send the queue refused, holding the submission again.
fn refused<T>(
    sent: Result<(), TrySendError<T>>,
    back: impl FnOnce(T) -> Submission,
) -> Result<(), TrySendError<Submission>> {
    sent.map_err(|e| match e {
        TrySendError::Full(t) => TrySendError::Full(back(t)),
        TrySendError::Disconnected(t) => TrySendError::Disconnected(back(t)),
    })
}

/// A refused chunk as the submission it was.
fn back((events, _, ack): Chunk) -> Submission {
    match ack {
        Some(ack) => Submission::AckedEvents(events, ack),
        None => Submission::Events(events),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    // Spawning fails only when the OS is out of threads; the daemon cannot run without them.
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("starting thread {name}: {e}"))
}

fn normalize_loop(
    rx: &Receiver<(Payload, Instant)>,
    tx: &Sender<Chunk>,
    room: &room::Room,
    normalizer: &Normalizer,
    stats: &stats::Stats,
) {
    let mut stage = timing::StageTimer::new("normalize");
    for (Payload { format, body, ctx }, received) in rx {
        let started = Instant::now();
        let events = match normalizer.normalize(format, &body, &ctx) {
            Ok(out) => {
                stats
                    .parse_errors
                    .fetch_add(out.errors.len() as u64, Relaxed);
                if !out.errors.is_empty() {
                    metrics::counter!("zen_watcher_errors_total", "component" => "normalizer", "category" => "parse")
                        .increment(out.errors.len() as u64);
                }
                stage.record_shared(format.as_str(), started.elapsed(), out.events.len());
                out.events
            }
            Err(_) => {
                stats.parse_errors.fetch_add(1, Relaxed);
                metrics::counter!("zen_watcher_errors_total", "component" => "normalizer", "category" => "parse").increment(1);
                continue;
            }
        };
        if events.is_empty() {
            continue;
        }
        room.take(events.len());
        if tx.send((events, received, None)).is_err() {
            return;
        }
    }
}

fn process_loop(
    mut processor: Processor,
    rx: &Receiver<Chunk>,
    tx: &Sender<sink::Job>,
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
        let now = Instant::now();
        match received {
            Ok((events, received, ack)) => {
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
        for o in out.drain(..) {
            if tx.send(sink::Job::Output(o)).is_err() {
                return;
            }
        }
        if !updates.is_empty() && tx.send(sink::Job::Duplicates(updates)).is_err() {
            return;
        }
    }
    processor.drain(Instant::now(), &mut out);
    let updates = processor.take_duplicates(Instant::now(), &mut out);
    for o in out.drain(..) {
        let _ = tx.send(sink::Job::Output(o));
    }
    if !updates.is_empty() {
        let _ = tx.send(sink::Job::Duplicates(updates));
    }
}
