//! Metric plumbing: `zen_watcher_event_processing_duration_seconds{stage, source}` (one
//! histogram handle per source of a stage, registered on first use) and label values whose
//! number is capped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The histograms of one stage, by source.
pub(crate) struct StageTimer {
    stage: &'static str,
    by_source: HashMap<String, metrics::Histogram>,
}

impl std::fmt::Debug for StageTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StageTimer({})", self.stage)
    }
}

impl StageTimer {
    pub(crate) fn new(stage: &'static str) -> Self {
        StageTimer {
            stage,
            by_source: HashMap::new(),
        }
    }

    /// The histogram of `source`.
    pub(crate) fn of(&mut self, source: &str) -> &metrics::Histogram {
        if !self.by_source.contains_key(source) {
            let h = metrics::histogram!(
                "zen_watcher_event_processing_duration_seconds",
                "stage" => self.stage,
                "source" => source.to_owned()
            );
            self.by_source.insert(source.to_owned(), h);
        }
        &self.by_source[source]
    }

    /// Records `elapsed` shared by `n` events of `source`: each took `elapsed / n`.
    pub(crate) fn record_shared(&mut self, source: &str, elapsed: Duration, n: usize) {
        self.of(source)
            .record_many(elapsed.as_secs_f64() / n.max(1) as f64, n);
    }
}

/// Label values that come from the data (namespaces, rules): the first `max` distinct values
/// keep their own, later ones are all `_other`, so a flood of values cannot flood Prometheus.
#[derive(Debug)]
pub(crate) struct CappedLabel {
    seen: HashSet<String>,
    max: usize,
}

impl CappedLabel {
    pub(crate) const OTHER: &'static str = "_other";

    pub(crate) fn new(max: usize) -> Self {
        CappedLabel {
            seen: HashSet::new(),
            max,
        }
    }

    /// The label value to use for `value`.
    pub(crate) fn value(&mut self, value: &str) -> String {
        if self.seen.contains(value) {
            value.to_owned()
        } else if self.seen.len() < self.max {
            self.seen.insert(value.to_owned());
            value.to_owned()
        } else {
            Self::OTHER.to_owned()
        }
    }
}
