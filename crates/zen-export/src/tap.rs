//! A tap on the recorder: the metrics the panels read ([`crate::panels::metrics`]) are counted
//! a second time as they are recorded — counters and gauges in an atomic, histograms in the
//! catalog's buckets — so the history can read them every second without rendering `/metrics`
//! (rendering costs milliseconds; reading the tap, microseconds). The few more the advisor
//! reads ([`ADVISED`]) are tapped apart, so the history's per-second visit never walks them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::catalog;
use crate::panels::{Reading, ReadingVisitor};

/// Counts per bucket of a histogram: `bounds` upper edges, then one above them all.
#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
}

#[derive(Debug, Clone)]
enum Cell {
    Counter(Arc<AtomicU64>),
    /// The value's bits.
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Buckets>),
}

#[derive(Debug)]
struct Entry {
    name: String,
    labels: Vec<(String, String)>,
    cell: Cell,
}

/// The metrics the advisor reads besides the panels': the de-duplication's evictions, the
/// configuration cache's hits and misses, and new Observations by rule.
pub(crate) const ADVISED: [&str; 4] = [
    "zen_watcher_dedup_evictions_total",
    "zen_watcher_cache_hits_total",
    "zen_watcher_cache_misses_total",
    "zen_watcher_observations_by_rule_total",
];

/// The tapped cells: by key, the group (panels' or advised) and index; then each group's.
type Cells = (HashMap<Key, (bool, usize)>, [Vec<Entry>; 2]);

/// See the module docs.
#[derive(Debug, Default)]
pub struct Tap {
    wanted: Vec<&'static str>,
    cells: Mutex<Cells>,
}

impl Tap {
    fn new(wanted: Vec<&'static str>) -> Tap {
        Tap {
            wanted,
            cells: Mutex::default(),
        }
    }

    /// The cell of `key`, made the first time; `None` for metrics nothing reads.
    fn cell(&self, key: &Key, make: impl FnOnce() -> Option<Cell>) -> Option<Cell> {
        let advised = ADVISED.contains(&key.name());
        if !advised && !self.wanted.contains(&key.name()) {
            return None;
        }
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((group, i)) = cells.0.get(key) {
            return Some(cells.1[usize::from(*group)][*i].cell.clone());
        }
        let cell = make()?;
        let group = &mut cells.1[usize::from(advised)];
        let i = group.len();
        group.push(Entry {
            name: key.name().to_owned(),
            labels: key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            cell: cell.clone(),
        });
        cells.0.insert(key.clone(), (advised, i));
        Some(cell)
    }

    /// Every reading the panels read, as `(metric, labels, reading)`.
    pub fn visit(&self, f: &mut ReadingVisitor<'_>) {
        self.visit_group(false, f);
    }

    /// Every reading of the [`ADVISED`] metrics.
    pub fn visit_advised(&self, f: &mut ReadingVisitor<'_>) {
        self.visit_group(true, f);
    }

    fn visit_group(&self, advised: bool, f: &mut ReadingVisitor<'_>) {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let mut labels: Vec<(&str, &str)> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        for e in &cells.1[usize::from(advised)] {
            labels.clear();
            labels.extend(e.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            match &e.cell {
                Cell::Counter(c) => f(
                    &e.name,
                    &labels,
                    Reading::Number(c.load(Ordering::Relaxed) as f64),
                ),
                Cell::Gauge(g) => f(
                    &e.name,
                    &labels,
                    Reading::Number(f64::from_bits(g.load(Ordering::Relaxed))),
                ),
                Cell::Histogram(h) => {
                    counts.clear();
                    counts.extend(h.counts.iter().map(|c| c.load(Ordering::Relaxed)));
                    f(&e.name, &labels, Reading::Buckets(h.bounds, &counts));
                }
            }
        }
    }
}

struct TeeCounter(Counter, Arc<AtomicU64>);

impl CounterFn for TeeCounter {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.fetch_max(value, Ordering::Relaxed);
    }
}

struct TeeGauge(Gauge, Arc<AtomicU64>);

impl TeeGauge {
    fn change(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .1
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for TeeGauge {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.change(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.change(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.store(value.to_bits(), Ordering::Relaxed);
    }
}

struct TeeHistogram(Histogram, Arc<Buckets>);

impl HistogramFn for TeeHistogram {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }
    fn record_many(&self, value: f64, count: usize) {
        self.0.record_many(value, count);
        let i = self.1.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.1.counts.get(i) {
            c.fetch_add(count as u64, Ordering::Relaxed);
        }
    }
}

/// The Prometheus recorder with the [`Tap`] on it.
#[derive(Debug)]
pub struct Tapped {
    inner: PrometheusRecorder,
    tap: Arc<Tap>,
}

impl Tapped {
    pub(crate) fn new(inner: PrometheusRecorder) -> Tapped {
        Tapped {
            inner,
            tap: Arc::new(Tap::new(crate::panels::metrics())),
        }
    }

    pub fn handle(&self) -> metrics_exporter_prometheus::PrometheusHandle {
        self.inner.handle()
    }

    pub fn tap(&self) -> Arc<Tap> {
        self.tap.clone()
    }
}

impl Recorder for Tapped {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let inner = self.inner.register_counter(key, metadata);
        match self
            .tap
            .cell(key, || Some(Cell::Counter(Arc::new(AtomicU64::new(0)))))
        {
            Some(Cell::Counter(c)) => Counter::from_arc(Arc::new(TeeCounter(inner, c))),
            _ => inner,
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let inner = self.inner.register_gauge(key, metadata);
        let zero = 0.0_f64.to_bits();
        match self
            .tap
            .cell(key, || Some(Cell::Gauge(Arc::new(AtomicU64::new(zero)))))
        {
            Some(Cell::Gauge(g)) => Gauge::from_arc(Arc::new(TeeGauge(inner, g))),
            _ => inner,
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.inner.register_histogram(key, metadata);
        let make = || {
            let bounds = catalog::find(key.name())?.buckets;
            Some(Cell::Histogram(Arc::new(Buckets {
                bounds,
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            })))
        };
        match self.tap.cell(key, make) {
            Some(Cell::Histogram(h)) => Histogram::from_arc(Arc::new(TeeHistogram(inner, h))),
            _ => inner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tap_counts_what_the_panels_read_and_nothing_else() {
        let recorder = crate::recorder().unwrap_or_else(|e| panic!("{e}"));
        let tap = recorder.tap();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("zen_watcher_events_total", "source" => "falco").increment(3);
            metrics::counter!("zen_watcher_events_total", "source" => "falco").increment(2);
            metrics::gauge!("zen_watcher_queue_depth", "queue" => "submissions").set(7.0);
            metrics::gauge!("zen_watcher_queue_depth", "queue" => "submissions").increment(1.0);
            let h = metrics::histogram!(
                "zen_watcher_event_processing_duration_seconds",
                "stage" => "total", "source" => "falco"
            );
            h.record(0.0007);
            h.record_many(100.0, 2);
            metrics::counter!("zen_watcher_http_requests_total").increment(1);
        });
        let mut seen = Vec::new();
        tap.visit(&mut |name, labels, reading| {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let value = match reading {
                Reading::Number(v) => format!("{v}"),
                Reading::Buckets(b, c) => {
                    assert_eq!(b.len() + 1, c.len());
                    format!(
                        "{:?}",
                        c.iter()
                            .enumerate()
                            .filter(|(_, n)| **n > 0)
                            .collect::<Vec<_>>()
                    )
                }
            };
            seen.push(format!("{name} {} {value}", labels.join(",")));
        });
        assert_eq!(
            seen,
            [
                "zen_watcher_events_total source=falco 5",
                "zen_watcher_queue_depth queue=submissions 8",
                // 0.7 ms is in the bucket up to 1 ms (index 3); 100 s above every bound.
                "zen_watcher_event_processing_duration_seconds stage=total,source=falco [(3, 1), (17, 2)]",
            ]
        );
        // What Prometheus sees is unchanged.
        let text = recorder.handle().render();
        assert!(
            text.contains(r#"zen_watcher_events_total{source="falco"} 5"#),
            "{text}"
        );
        assert!(text.contains("zen_watcher_http_requests_total 1"), "{text}");
    }
}
