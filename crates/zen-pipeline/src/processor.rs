//! The synchronous heart of the pipeline: filter, de-duplicate and batch events, in the chosen
//! order. The pipeline runs it on its own thread; benchmarks run it directly on one core.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use zen_batch::{Batch, BatchConfig, Batcher, FlushReason, Prioritized};
use zen_dedup::{Deduper, DuplicateUpdate, Verdict};
use zen_filter::DropReason;
use zen_model::{Event, Severity};

use crate::ack::Ack;
use crate::config::ProcessingOrder;
use crate::settings::{Settings, SourceSettings};
use crate::stats::Stats;
use crate::timing::CappedLabel;
use zen_config_cache::Snapshot;

/// A kept event with the time it entered the pipeline, the acknowledgement it belongs to, and
/// the deduper's number for it ([`zen_dedup::Verdict::New`]), which its later duplicate counts
/// carry.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub event: Event,
    pub received: Instant,
    pub ack: Option<Arc<Ack>>,
    pub seq: u64,
}

impl Prioritized for Tracked {
    fn severity(&self) -> Severity {
        self.event.severity
    }
}

/// What the processor hands on towards the sink.
#[derive(Debug)]
pub enum Output {
    Batch(Batch<Tracked>),
    /// Events that could not be judged (their source's configuration failed to load, with no
    /// previous one to fall back on): straight to the dead letters, never kept unfiltered.
    Rejected {
        source: String,
        events: Vec<Event>,
        /// Resolved with the events' outcome (dead-lettered).
        ack: Option<Arc<Ack>>,
        error: String,
    },
    /// Duplicate counts whose submitters wait for them: every count folded in so far, to be
    /// committed at once; then `n` events of each `(ack, n)` are resolved. (Counts nobody waits
    /// for are handed over by [`Processor::take_duplicates`].)
    Duplicates {
        updates: Vec<DuplicateUpdate>,
        acked: Vec<(Arc<Ack>, usize)>,
    },
}

/// Which stage runs first, as decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    Filter,
    Dedup,
}

/// Events seen per decision window of the auto order, and how many each stage dropped.
const AUTO_WINDOW: u64 = 4096;
/// How much more one stage must drop than the other before the order switches.
const HYSTERESIS: f64 = 0.10;

type Source = Cow<'static, str>;

/// Namespaces that get a label value of their own in `zen_watcher_events_total`.
const MAX_NAMESPACES: usize = 200;

/// Counts gathered over one call, turned into metrics and shared stats at its end. Keys are the
/// events' own source names: borrowed constants for the built-in formats, so counting allocates
/// nothing. Events received are counted straight into [`Received`].
#[derive(Default)]
struct Tally {
    filtered: HashMap<(Source, DropReason), u64>,
    duplicates: HashMap<Source, u64>,
    rejected: u64,
}

/// `zen_watcher_events_total{source, severity, namespace}`. Counters live in `counters`, with
/// the count pending for each; `by` finds a counter's index by source and severity, then
/// namespace (looked up by `&str`: a known namespace costs no allocation). Consecutive events
/// with the same labels form a run — events mostly come in runs, so most are counted with three
/// comparisons — and a run's length is added to its pending count; counters are touched once
/// per label set per call, in [`Received::take_total`].
struct Received {
    /// foldhash (hashbrown's default) rather than SipHash: these keys are ours, and this is
    /// looked up for most events.
    by: hashbrown::HashMap<(Source, Severity), hashbrown::HashMap<String, usize>>,
    counters: Vec<(metrics::Counter, u64)>,
    /// Indices of `counters` with a pending count.
    touched: Vec<usize>,
    namespaces: CappedLabel,
    /// Source, severity, namespace (its buffer reused) and length of the current run.
    run: Option<(Source, Severity, String, u64)>,
    /// Events counted since the last [`Received::take_total`].
    total: u64,
}

impl Received {
    fn new() -> Self {
        Received {
            by: hashbrown::HashMap::new(),
            counters: Vec::new(),
            touched: Vec::new(),
            namespaces: CappedLabel::new(MAX_NAMESPACES),
            run: None,
            total: 0,
        }
    }

    fn count(&mut self, source: &Source, severity: Severity, namespace: &str) {
        self.total += 1;
        if let Some((s, sev, ns, n)) = &mut self.run
            && *sev == severity
            && ns == namespace
            && s == source
        {
            *n += 1;
            return;
        }
        let mut buffer = self.end_run().unwrap_or_default();
        buffer.clear();
        buffer.push_str(namespace);
        self.run = Some((source.clone(), severity, buffer, 1));
    }

    /// Adds the current run to its pending count; returns its namespace buffer for reuse.
    fn end_run(&mut self) -> Option<String> {
        let (source, severity, namespace, n) = self.run.take()?;
        let key = (source, severity);
        if !self.by.contains_key(&key) {
            self.by.insert(key.clone(), hashbrown::HashMap::new());
        }
        let Some(by_namespace) = self.by.get_mut(&key) else {
            return Some(namespace);
        };
        let (source, severity) = key;
        let index = match by_namespace.get(namespace.as_str()) {
            Some(&i) => i,
            None => {
                let label = self.namespaces.value(&namespace);
                let counters = &mut self.counters;
                *by_namespace.entry(label).or_insert_with_key(|label| {
                    counters.push((metrics::counter!("zen_watcher_events_total", "source" => source.to_string(), "severity" => severity.as_str(), "namespace" => label.clone()), 0));
                    counters.len() - 1
                })
            }
        };
        let pending = &mut self.counters[index].1;
        if *pending == 0 {
            self.touched.push(index);
        }
        *pending += n;
        Some(namespace)
    }

    /// Ends the run, adds the pending counts to their counters, and returns the events counted
    /// since the last call.
    fn take_total(&mut self) -> u64 {
        self.end_run();
        for i in self.touched.drain(..) {
            let (counter, pending) = &mut self.counters[i];
            counter.increment(std::mem::take(pending));
        }
        std::mem::take(&mut self.total)
    }
}

/// Counter handles by label values, registered on first use.
struct Handles {
    received: Received,
    filtered: HashMap<(Source, DropReason), metrics::Counter>,
    duplicates: HashMap<Source, metrics::Counter>,
    /// Fingerprints the deduper forgot early, and how many were counted so far.
    evictions: metrics::Counter,
    evictions_counted: u64,
}

impl Default for Handles {
    fn default() -> Self {
        Handles {
            received: Received::new(),
            filtered: HashMap::new(),
            duplicates: HashMap::new(),
            evictions: metrics::counter!("zen_watcher_dedup_evictions_total"),
            evictions_counted: 0,
        }
    }
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handles")
    }
}

/// Filter → dedup → batch (or dedup → filter → batch); see the crate docs.
#[derive(Debug)]
pub struct Processor {
    settings: Settings,
    order: ProcessingOrder,
    first: First,
    window: (u64, u64, u64),
    dedup: Deduper,
    batcher: Option<Batcher<Tracked>>,
    stats: Arc<Stats>,
    handles: Handles,
}

impl Processor {
    pub(crate) fn new(
        settings: Settings,
        order: ProcessingOrder,
        dedup: Deduper,
        batch: Option<BatchConfig>,
        stats: Arc<Stats>,
    ) -> Self {
        Processor {
            settings,
            order,
            first: if order == ProcessingOrder::DedupFirst {
                First::Dedup
            } else {
                First::Filter
            },
            window: (0, 0, 0),
            dedup,
            batcher: batch.map(Batcher::new),
            stats,
            handles: Handles::default(),
        }
    }

    /// Judges `events` received at `received`, at `now`; appends what is ready to `out`.
    pub fn process(
        &mut self,
        now: Instant,
        events: Vec<Event>,
        received: Instant,
        out: &mut Vec<Output>,
    ) {
        self.process_acked(now, events, received, None, out);
    }

    /// As [`Processor::process`], for events whose outcomes `ack` awaits.
    pub fn process_acked(
        &mut self,
        now: Instant,
        events: Vec<Event>,
        received: Instant,
        ack: Option<&Arc<Ack>>,
        out: &mut Vec<Output>,
    ) {
        let mut tally = Tally::default();
        let mut flush_sources: Vec<Source> = Vec::new();
        // Duplicates whose submitter waits: acknowledged only once their counts are committed.
        let mut duplicates_awaited = 0;
        let mut memo: Option<(Source, Arc<Snapshot<SourceSettings>>)> = None;
        for event in events {
            self.handles.received.count(
                &event.source,
                event.severity,
                event.namespace.as_deref().unwrap_or(""),
            );
            // Events of one chunk mostly share a source: with the cache on, look its settings up
            // once per chunk. With it off, every event loads them, as the seed system did.
            let cached = memo
                .as_ref()
                .filter(|(source, _)| self.settings.is_cached() && *source == event.source)
                .map(|(_, s)| s.clone());
            let looked_up = match cached {
                Some(s) => Ok(s),
                None => self.settings.get(&event.source, now),
            };
            let settings = match looked_up {
                Ok(s) => {
                    memo = Some((event.source.clone(), s.clone()));
                    s
                }
                Err(e) => {
                    tally.rejected += 1;
                    let source = event.source.to_string();
                    out.push(Output::Rejected {
                        source,
                        events: vec![event],
                        ack: ack.cloned(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let settings = &settings.value;
            // Kept (with the deduper's number), filtered (with the reason) or a duplicate.
            let mut dedup = |event: &Event| match self.dedup.check(
                event.fingerprint,
                settings.window,
                now,
                event.detected_at,
            ) {
                Verdict::New { seq } => Ok(seq),
                Verdict::Duplicate => Err(None),
            };
            let verdict = match self.first {
                First::Filter => settings
                    .filter
                    .check(&event)
                    .map_err(Some)
                    .and_then(|()| dedup(&event)),
                First::Dedup => dedup(&event).and_then(|seq| {
                    settings.filter.check(&event).map_err(Some)?;
                    Ok(seq)
                }),
            };
            self.window.0 += 1;
            match verdict {
                Err(Some(reason)) => {
                    self.window.1 += 1;
                    if let Some(a) = ack {
                        a.resolve(1, false);
                    }
                    *tally
                        .filtered
                        .entry((event.source.clone(), reason))
                        .or_default() += 1;
                }
                Err(None) => {
                    self.window.2 += 1;
                    if ack.is_some() {
                        duplicates_awaited += 1;
                    }
                    *tally.duplicates.entry(event.source.clone()).or_default() += 1;
                }
                Ok(seq) => {
                    if ack.is_some() && !flush_sources.contains(&event.source) {
                        flush_sources.push(event.source.clone());
                    }
                    let item = Tracked {
                        event,
                        received,
                        ack: ack.cloned(),
                        seq,
                    };
                    self.keep(now, item, out);
                }
            }
            if self.window.0 >= AUTO_WINDOW {
                self.decide_order();
            }
        }
        self.account(tally);
        // A submitter waits on these events: write what they left in open batches now, not
        // when the batch comes of age.
        if let (Some(_), Some(batcher)) = (ack, &mut self.batcher) {
            out.extend(
                flush_sources
                    .iter()
                    .filter_map(|s| batcher.flush_now(now, s))
                    .map(Output::Batch),
            );
        }
        // And on the counts of its duplicates: every open batch first (the rows they count),
        // then the counts, to be committed now.
        if let (Some(a), true) = (ack, duplicates_awaited > 0) {
            let updates = self.take_duplicates(now, out);
            out.push(Output::Duplicates {
                updates,
                acked: vec![(a.clone(), duplicates_awaited)],
            });
        }
    }

    /// Batches whose age is up at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(b) = &mut self.batcher {
            out.extend(b.poll(now).into_iter().map(Output::Batch));
        }
    }

    /// Batches of `max_size` events and `max_age` from now on (see [`Batcher::retune`]).
    pub fn retune(&mut self, max_size: usize, max_age: std::time::Duration) {
        if let Some(b) = &mut self.batcher {
            b.retune(max_size, max_age);
        }
    }

    /// When [`Processor::poll`] should next run, if a batch is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.batcher.as_ref().and_then(Batcher::next_deadline)
    }

    /// Duplicate counts folded in since the last call. When there are any, the open batches go
    /// to `out` first ([`FlushReason::Duplicates`]): a count sent to the sink before the event
    /// it counts would find no row, and be lost.
    pub fn take_duplicates(&mut self, now: Instant, out: &mut Vec<Output>) -> Vec<DuplicateUpdate> {
        let updates = self.dedup.drain_updates();
        if let (false, Some(b)) = (updates.is_empty(), &mut self.batcher) {
            out.extend(
                b.flush_all(now, FlushReason::Duplicates)
                    .into_iter()
                    .map(Output::Batch),
            );
        }
        updates
    }

    /// Forgets the fingerprints of first sightings that were never stored (dead-lettered), so
    /// that their next sightings are written as new rather than counted on nothing.
    pub fn forget(&mut self, fingerprints: &[zen_model::Fingerprint]) {
        for &fp in fingerprints {
            self.dedup.forget_fingerprint(fp);
        }
    }

    /// Everything still buffered, for shutdown.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(b) = &mut self.batcher {
            out.extend(b.drain(now).into_iter().map(Output::Batch));
        }
    }

    /// The counters of this processor's pipeline.
    pub fn counts(&self) -> crate::Counts {
        self.stats.read()
    }

    /// The order in force now.
    pub fn current_order(&self) -> ProcessingOrder {
        match self.first {
            First::Filter => ProcessingOrder::FilterFirst,
            First::Dedup => ProcessingOrder::DedupFirst,
        }
    }

    fn keep(&mut self, now: Instant, item: Tracked, out: &mut Vec<Output>) {
        match &mut self.batcher {
            Some(b) => {
                let source = item.event.source.clone();
                out.extend(b.push(now, &source, item).into_iter().map(Output::Batch));
            }
            None => out.push(Output::Batch(Batch {
                source: item.event.source.to_string(),
                items: vec![item],
                reason: FlushReason::Size,
                latency: std::time::Duration::ZERO,
            })),
        }
    }

    /// Runs first whichever stage drops more, once it drops clearly more.
    fn decide_order(&mut self) {
        let (seen, filtered, duplicates) = self.window;
        self.window = (0, 0, 0);
        if self.order != ProcessingOrder::Auto {
            return;
        }
        let (drop, dup) = (
            filtered as f64 / seen as f64,
            duplicates as f64 / seen as f64,
        );
        let next = match self.first {
            First::Filter if dup > drop + HYSTERESIS => First::Dedup,
            First::Dedup if drop > dup + HYSTERESIS => First::Filter,
            same => same,
        };
        if next != self.first {
            self.first = next;
            let to = match next {
                First::Filter => "filter_first",
                First::Dedup => "dedup_first",
            };
            tracing::info!(
                to,
                filtered_ratio = drop,
                duplicate_ratio = dup,
                "processing order switched"
            );
            metrics::counter!("zen_watcher_pipeline_order_switches_total", "to" => to).increment(1);
        }
    }

    fn account(&mut self, tally: Tally) {
        use std::sync::atomic::Ordering::Relaxed;
        let sum = |it: &mut dyn Iterator<Item = &u64>| it.sum::<u64>();
        let received = self.handles.received.take_total();
        self.stats.received.fetch_add(received, Relaxed);
        self.stats
            .filtered
            .fetch_add(sum(&mut tally.filtered.values()), Relaxed);
        self.stats
            .deduplicated
            .fetch_add(sum(&mut tally.duplicates.values()), Relaxed);
        self.stats.dead_lettered.fetch_add(tally.rejected, Relaxed);
        let h = &mut self.handles;
        for ((source, reason), n) in tally.filtered {
            self.stats.filtered_by_reason[crate::stats::reason_index(reason)].fetch_add(n, Relaxed);
            h.filtered
                .entry((source.clone(), reason))
                .or_insert_with(|| metrics::counter!("zen_watcher_events_filtered_total", "source" => source.into_owned(), "reason" => reason.as_str()))
                .increment(n);
        }
        for (source, n) in tally.duplicates {
            h.duplicates
                .entry(source.clone())
                .or_insert_with(|| metrics::counter!("zen_watcher_events_deduplicated_total", "source" => source.into_owned()))
                .increment(n);
        }
        let evicted = self.dedup.stats().evicted;
        if evicted > h.evictions_counted {
            h.evictions.increment(evicted - h.evictions_counted);
            h.evictions_counted = evicted;
        }
    }
}
