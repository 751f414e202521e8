//! The synchronous heart of the pipeline: filter, de-duplicate and batch events, in the chosen
//! order. The pipeline runs it on its own thread; benchmarks run it directly on one core.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use zen_batch::{Batch, BatchConfig, Batcher, FlushReason, Prioritized};
use zen_dedup::{Deduper, DuplicateUpdate, Verdict};
use zen_filter::DropReason;
use zen_model::{Event, Severity};

use crate::config::ProcessingOrder;
use crate::settings::Settings;
use crate::stats::Stats;

/// An event with the time it entered the pipeline.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub event: Event,
    pub received: Instant,
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
        events: Vec<Tracked>,
        error: String,
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

/// Counts gathered over one call, turned into metrics and shared stats at its end.
#[derive(Default)]
struct Tally {
    received: HashMap<(String, Severity), u64>,
    filtered: HashMap<(String, DropReason), u64>,
    duplicates: HashMap<String, u64>,
    rejected: u64,
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
        let mut tally = Tally::default();
        for event in events {
            *tally
                .received
                .entry((event.source.to_string(), event.severity))
                .or_default() += 1;
            let settings = match self.settings.get(&event.source, now) {
                Ok(s) => s,
                Err(e) => {
                    tally.rejected += 1;
                    let source = event.source.to_string();
                    out.push(Output::Rejected {
                        source,
                        events: vec![Tracked { event, received }],
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let settings = &settings.value;
            let verdict = match self.first {
                First::Filter => settings.filter.check(&event).map_err(Some).and_then(|()| {
                    let v = self.dedup.check(
                        event.fingerprint,
                        settings.window,
                        now,
                        event.detected_at,
                    );
                    if v == Verdict::Duplicate {
                        Err(None)
                    } else {
                        Ok(())
                    }
                }),
                First::Dedup => {
                    match self.dedup.check(
                        event.fingerprint,
                        settings.window,
                        now,
                        event.detected_at,
                    ) {
                        Verdict::Duplicate => Err(None),
                        Verdict::New => settings.filter.check(&event).map_err(Some),
                    }
                }
            };
            self.window.0 += 1;
            match verdict {
                Err(Some(reason)) => {
                    self.window.1 += 1;
                    *tally
                        .filtered
                        .entry((event.source.to_string(), reason))
                        .or_default() += 1;
                }
                Err(None) => {
                    self.window.2 += 1;
                    *tally
                        .duplicates
                        .entry(event.source.to_string())
                        .or_default() += 1;
                }
                Ok(()) => self.keep(now, Tracked { event, received }, out),
            }
            if self.window.0 >= AUTO_WINDOW {
                self.decide_order();
            }
        }
        self.account(tally);
    }

    /// Batches whose age is up at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(b) = &mut self.batcher {
            out.extend(b.poll(now).into_iter().map(Output::Batch));
        }
    }

    /// When [`Processor::poll`] should next run, if a batch is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.batcher.as_ref().and_then(Batcher::next_deadline)
    }

    /// Duplicate counts folded in since the last call.
    pub fn take_duplicates(&mut self) -> Vec<DuplicateUpdate> {
        self.dedup.drain_updates()
    }

    /// Everything still buffered, for shutdown.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(b) = &mut self.batcher {
            out.extend(b.drain(now).into_iter().map(Output::Batch));
        }
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

    fn account(&self, tally: Tally) {
        use std::sync::atomic::Ordering::Relaxed;
        let sum = |it: &mut dyn Iterator<Item = &u64>| it.sum::<u64>();
        self.stats
            .received
            .fetch_add(sum(&mut tally.received.values()), Relaxed);
        self.stats
            .filtered
            .fetch_add(sum(&mut tally.filtered.values()), Relaxed);
        self.stats
            .deduplicated
            .fetch_add(sum(&mut tally.duplicates.values()), Relaxed);
        self.stats.dead_lettered.fetch_add(tally.rejected, Relaxed);
        for ((source, severity), n) in tally.received {
            metrics::counter!("zen_watcher_events_total", "source" => source, "severity" => severity.as_str()).increment(n);
        }
        for ((source, reason), n) in tally.filtered {
            metrics::counter!("zen_watcher_events_filtered_total", "source" => source, "reason" => reason.as_str()).increment(n);
        }
        for (source, n) in tally.duplicates {
            metrics::counter!("zen_watcher_events_deduplicated_total", "source" => source)
                .increment(n);
        }
    }
}
