//! Gathers events into per-source batches so the sink writes many at a time.
//!
//! A [`Batcher`] keeps one open batch per source. A batch is flushed when it reaches
//! `max_size` events ([`FlushReason::Size`], 15 by default), when its first event is `max_age`
//! old ([`FlushReason::Age`], 100 ms by default, found by [`Batcher::poll`]), when all buffered
//! events together reach `max_buffered` and it is the oldest batch ([`FlushReason::Limit`]), or
//! at shutdown by [`Batcher::drain`] ([`FlushReason::Shutdown`]), or when a submitter waits for
//! its events ([`Batcher::flush_now`], [`FlushReason::Ack`]). Within a batch the most severe
//! events come first; among equals, arrival order is kept.
//!
//! Every flush is counted by reason (`zen_watcher_batch_flushes_total{reason}`), and its size and
//! latency — how long its first event waited — are recorded (`zen_watcher_batch_size`,
//! `zen_watcher_batch_latency_seconds`) through the `metrics` facade, once per batch.
//!
//! Knows nothing about IO or clocks: `now` is an argument.

use std::time::{Duration, Instant};

use zen_model::{Event, Observation, Severity};

/// When batches are flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// Events in a batch that make it flush (at least 1).
    pub max_size: usize,
    /// Age of a batch's first event that makes it flush.
    pub max_age: Duration,
    /// Events buffered in all batches together that make the oldest flush (at least 1).
    pub max_buffered: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_size: 15,
            max_age: Duration::from_millis(100),
            max_buffered: 10_000,
        }
    }
}

/// Why a batch was flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushReason {
    Size,
    Age,
    Limit,
    Shutdown,
    /// Asked for at once: a submitter waits for its events to be stored.
    Ack,
    /// Asked for before duplicate counts are handed on: the events they count must be stored
    /// first.
    Duplicates,
}

impl FlushReason {
    pub const ALL: [FlushReason; 6] = [
        FlushReason::Size,
        FlushReason::Age,
        FlushReason::Limit,
        FlushReason::Shutdown,
        FlushReason::Ack,
        FlushReason::Duplicates,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Size => "size",
            FlushReason::Age => "age",
            FlushReason::Limit => "limit",
            FlushReason::Shutdown => "shutdown",
            FlushReason::Ack => "ack",
            FlushReason::Duplicates => "duplicates",
        }
    }
}

/// What can be batched: anything with a severity.
pub trait Prioritized {
    fn severity(&self) -> Severity;
}

impl Prioritized for Event {
    fn severity(&self) -> Severity {
        self.severity
    }
}

impl Prioritized for Observation {
    fn severity(&self) -> Severity {
        self.event.severity
    }
}

/// Events of one source, most severe first.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    pub source: String,
    pub items: Vec<T>,
    pub reason: FlushReason,
    /// How long the first event waited.
    pub latency: Duration,
}

#[derive(Debug)]
struct Open<T> {
    source: String,
    items: Vec<T>,
    opened: Instant,
}

/// Metric handles, registered once so that a flush costs no registry lookup.
struct Recorders {
    flushes: [metrics::Counter; FlushReason::ALL.len()],
    size: metrics::Histogram,
    latency: metrics::Histogram,
}

impl Recorders {
    fn new() -> Self {
        Recorders {
            flushes: FlushReason::ALL.map(
                |r| metrics::counter!("zen_watcher_batch_flushes_total", "reason" => r.as_str()),
            ),
            size: metrics::histogram!("zen_watcher_batch_size"),
            latency: metrics::histogram!("zen_watcher_batch_latency_seconds"),
        }
    }
}

impl std::fmt::Debug for Recorders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorders")
    }
}

/// Per-source batching; see the crate docs.
#[derive(Debug)]
pub struct Batcher<T> {
    config: BatchConfig,
    /// By source, in the order they were opened: a handful, searched in a line — no hashing,
    /// and every walk over them (age, flush all) in one order.
    open: Vec<Open<T>>,
    buffered: usize,
    recorders: Recorders,
}

impl<T: Prioritized> Batcher<T> {
    pub fn new(config: BatchConfig) -> Self {
        let config = BatchConfig {
            max_size: config.max_size.max(1),
            max_buffered: config.max_buffered.max(1),
            ..config
        };
        Batcher {
            config,
            open: Vec::new(),
            buffered: 0,
            recorders: Recorders::new(),
        }
    }

    /// Adds an event of `source` at `now`, and returns the batches this flushes: its own when
    /// it is full, and the oldest when all buffered events reach the bound.
    pub fn push(&mut self, now: Instant, source: &str, item: T) -> Vec<Batch<T>> {
        let mut flushed = Vec::new();
        let i = match self.open.iter().position(|o| o.source == source) {
            Some(i) => i,
            None => {
                self.open.push(Open {
                    source: source.to_owned(),
                    items: Vec::with_capacity(self.config.max_size),
                    opened: now,
                });
                self.open.len() - 1
            }
        };
        let open = &mut self.open[i];
        open.items.push(item);
        self.buffered += 1;
        if open.items.len() >= self.config.max_size {
            flushed.push(self.take(now, i, FlushReason::Size));
        }
        while self.buffered >= self.config.max_buffered {
            let Some(oldest) = (0..self.open.len()).min_by_key(|&i| self.open[i].opened) else {
                break;
            };
            flushed.push(self.take(now, oldest, FlushReason::Limit));
        }
        flushed
    }

    /// The batches whose first event is `max_age` old at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Batch<T>> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.open.len() {
            if now.saturating_duration_since(self.open[i].opened) >= self.config.max_age {
                due.push(self.take(now, i, FlushReason::Age));
            } else {
                i += 1;
            }
        }
        due
    }

    /// When the next batch comes of age, if any is open: how long a caller may sleep.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .iter()
            .map(|o| o.opened + self.config.max_age)
            .min()
    }

    /// The open batch of `source` at once, if there is one (for a submitter waiting on it).
    pub fn flush_now(&mut self, now: Instant, source: &str) -> Option<Batch<T>> {
        let i = self.open.iter().position(|o| o.source == source)?;
        Some(self.take(now, i, FlushReason::Ack))
    }

    /// Every open batch at once, for `reason`, oldest first.
    pub fn flush_all(&mut self, now: Instant, reason: FlushReason) -> Vec<Batch<T>> {
        (0..self.open.len())
            .map(|_| self.take(now, 0, reason))
            .collect()
    }

    /// Everything left, for shutdown.
    pub fn drain(&mut self, now: Instant) -> Vec<Batch<T>> {
        self.flush_all(now, FlushReason::Shutdown)
    }

    /// Events waiting in all batches.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Batches of `max_size` events (at least 1) and `max_age` from now on: open batches keep
    /// their events and flush by the new rules at the next push or poll.
    pub fn retune(&mut self, max_size: usize, max_age: Duration) {
        self.config.max_size = max_size.max(1);
        self.config.max_age = max_age;
    }

    /// Closes the open batch at `i`.
    fn take(&mut self, now: Instant, i: usize, reason: FlushReason) -> Batch<T> {
        let open = self.open.remove(i);
        let mut items = open.items;
        self.buffered -= items.len();
        // Stable: arrival order among equals.
        items.sort_by_key(|item| std::cmp::Reverse(item.severity()));
        let latency = now.saturating_duration_since(open.opened);
        self.recorders.flushes[reason as usize].increment(1);
        self.recorders.size.record(items.len() as f64);
        self.recorders.latency.record(latency.as_secs_f64());
        Batch {
            source: open.source,
            items,
            reason,
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Item(Severity, u32);

    impl Prioritized for Item {
        fn severity(&self) -> Severity {
            self.0
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_batch_flushes_most_severe_first_keeping_arrival_order_among_equals() {
        let t0 = Instant::now();
        let mut b = Batcher::new(BatchConfig {
            max_size: 4,
            ..BatchConfig::default()
        });
        let sev = [
            Severity::Low,
            Severity::Critical,
            Severity::Low,
            Severity::High,
        ];
        let mut out = Vec::new();
        for (i, s) in sev.into_iter().enumerate() {
            out.extend(b.push(t0 + ms(i as u64), "falco", Item(s, i as u32)));
        }
        assert_eq!(out.len(), 1);
        let batch = &out[0];
        assert_eq!(batch.reason, FlushReason::Size);
        assert_eq!(batch.latency, ms(3));
        let order: Vec<u32> = batch.items.iter().map(|i| i.1).collect();
        assert_eq!(order, [1, 3, 0, 2]);
        assert_eq!(b.buffered(), 0);
    }

    #[test]
    fn batches_come_of_age_per_source() {
        let t0 = Instant::now();
        let mut b = Batcher::new(BatchConfig::default());
        assert!(b.push(t0, "falco", Item(Severity::Low, 0)).is_empty());
        assert!(
            b.push(t0 + ms(60), "trivy", Item(Severity::Low, 1))
                .is_empty()
        );
        assert_eq!(b.next_deadline(), Some(t0 + ms(100)));
        assert!(b.poll(t0 + ms(99)).is_empty());
        let due = b.poll(t0 + ms(100));
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].source.as_str(), due[0].reason),
            ("falco", FlushReason::Age)
        );
        assert_eq!(b.next_deadline(), Some(t0 + ms(160)));
        let rest = b.drain(t0 + ms(120));
        assert_eq!(
            (rest[0].source.as_str(), rest[0].reason, rest[0].latency),
            ("trivy", FlushReason::Shutdown, ms(60))
        );
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn the_bound_on_buffered_events_flushes_the_oldest_batch() {
        let t0 = Instant::now();
        let mut b = Batcher::new(BatchConfig {
            max_size: 10,
            max_buffered: 3,
            ..BatchConfig::default()
        });
        b.push(t0, "a", Item(Severity::Low, 0));
        b.push(t0 + ms(1), "b", Item(Severity::Low, 1));
        let out = b.push(t0 + ms(2), "b", Item(Severity::Low, 2));
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].source.as_str(), out[0].reason),
            ("a", FlushReason::Limit)
        );
        assert_eq!(b.buffered(), 2);
    }
}
