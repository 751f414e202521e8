//! For any stream of pushes and polls: nothing is lost or duplicated, no batch is larger than
//! `max_size`, buffered events never reach `max_buffered`, and batches are in severity order.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use proptest::prelude::*;
use zen_batch::{BatchConfig, Batcher, FlushReason, Prioritized};
use zen_model::Severity;

#[derive(Debug, Clone, PartialEq)]
struct Item(Severity, usize);

impl Prioritized for Item {
    fn severity(&self) -> Severity {
        self.0
    }
}

#[derive(Debug, Clone)]
enum Step {
    Push {
        source: u8,
        severity: u8,
        after_ms: u8,
    },
    Poll {
        after_ms: u8,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0u8..5, 0u8..5, 0u8..30).prop_map(|(source, severity, after_ms)| Step::Push { source, severity, after_ms }),
        1 => (0u8..200).prop_map(|after_ms| Step::Poll { after_ms }),
    ];
    prop::collection::vec(step, 0..300)
}

proptest! {
    #[test]
    fn nothing_is_lost_and_every_bound_holds(steps in steps(), max_size in 1usize..20, max_buffered in 1usize..40) {
        let config = BatchConfig { max_size, max_age: Duration::from_millis(100), max_buffered };
        let mut b = Batcher::new(config);
        let mut now = Instant::now();
        let (mut pushed, mut batches) = (0usize, Vec::new());
        for step in steps {
            match step {
                Step::Push { source, severity, after_ms } => {
                    now += Duration::from_millis(u64::from(after_ms));
                    let item = Item(Severity::ALL[severity as usize], pushed);
                    batches.extend(b.push(now, &format!("s{source}"), item));
                    pushed += 1;
                }
                Step::Poll { after_ms } => {
                    now += Duration::from_millis(u64::from(after_ms));
                    let due = b.poll(now);
                    for batch in &due {
                        prop_assert!(batch.latency >= Duration::from_millis(100));
                    }
                    batches.extend(due);
                }
            }
            prop_assert!(b.buffered() < max_buffered);
        }
        batches.extend(b.drain(now));
        prop_assert_eq!(b.buffered(), 0);
        let mut seen: Vec<usize> = Vec::new();
        for batch in &batches {
            prop_assert!(!batch.items.is_empty() && batch.items.len() <= max_size);
            for pair in batch.items.windows(2) {
                prop_assert!(pair[0].0 > pair[1].0 || (pair[0].0 == pair[1].0 && pair[0].1 < pair[1].1));
            }
            seen.extend(batch.items.iter().map(|i| i.1));
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..pushed).collect::<Vec<_>>());
    }
}

#[test]
fn flushes_are_counted_by_reason_and_sizes_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let t0 = Instant::now();
        let mut b = Batcher::new(BatchConfig {
            max_size: 2,
            ..BatchConfig::default()
        });
        b.push(t0, "a", Item(Severity::Low, 0));
        b.push(t0, "a", Item(Severity::Low, 1));
        b.push(t0, "b", Item(Severity::Low, 2));
        b.poll(t0 + Duration::from_millis(150));
        b.push(t0, "c", Item(Severity::Low, 3));
        b.push(t0, "d", Item(Severity::Low, 4));
        assert_eq!(b.flush_all(t0, FlushReason::Duplicates).len(), 2);
        b.push(t0, "e", Item(Severity::Low, 5));
        b.drain(t0);
    });
    let mut counts = std::collections::BTreeMap::new();
    let mut sizes = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        match (name.as_str(), value) {
            ("zen_watcher_batch_flushes_total", DebugValue::Counter(n)) => {
                let reason = key
                    .key()
                    .labels()
                    .find(|l| l.key() == "reason")
                    .unwrap()
                    .value()
                    .to_owned();
                counts.insert(reason, n);
            }
            ("zen_watcher_batch_size", DebugValue::Histogram(values)) => {
                sizes = values.into_iter().map(|v| v.into_inner()).collect()
            }
            _ => {}
        }
    }
    let want: std::collections::BTreeMap<String, u64> = [
        (FlushReason::Size, 1),
        (FlushReason::Age, 1),
        (FlushReason::Limit, 0),
        (FlushReason::Shutdown, 1),
        (FlushReason::Ack, 0),
        (FlushReason::Duplicates, 2),
    ]
    .map(|(r, n)| (r.as_str().to_owned(), n))
    .into();
    assert_eq!(counts, want);
    sizes.sort_by(f64::total_cmp);
    assert_eq!(sizes, [1.0, 1.0, 1.0, 1.0, 2.0]);
}
