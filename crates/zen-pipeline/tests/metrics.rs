//! What the running pipeline records, read from a real recorder installed for this process.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use zen_model::{Context, Format, Normalizer, Syntax};
use zen_pipeline::{NullSink, Pipeline, PipelineConfig, Submission};

#[test]
fn stages_queues_and_outcomes_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let mut config = PipelineConfig::default();
    config.filter.global.min_severity = Some(zen_model::Severity::Medium);
    let p = Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(NullSink)).unwrap();
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
    let body = br#"{"rule":"A","priority":"Critical","output_fields":{"k8s.ns.name":"a"}}
{"rule":"A","priority":"Critical","output_fields":{"k8s.ns.name":"a"}}
{"rule":"B","priority":"Notice"}
{"rule": 1}"#;
    let read = p.read(Format::Falco, Syntax::Json, body, &ctx).unwrap();
    p.try_submit(Submission::now(read.events)).unwrap();
    let report = p.shutdown(Instant::now() + Duration::from_secs(10));
    assert!(report.drained);

    let mut seen: BTreeMap<String, f64> = BTreeMap::new();
    let mut histograms: BTreeMap<String, usize> = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                seen.insert(name, n as f64);
            }
            DebugValue::Gauge(g) => {
                seen.insert(name, g.into_inner());
            }
            DebugValue::Histogram(v) => {
                histograms.insert(name, v.len());
            }
        }
    }
    let get = |k: &str| {
        seen.get(k)
            .copied()
            .unwrap_or_else(|| panic!("{k} missing from {seen:#?}"))
    };
    assert_eq!(
        get("zen_watcher_events_total{source=falco,severity=critical,namespace=a}"),
        2.0
    );
    assert_eq!(
        get("zen_watcher_events_total{source=falco,severity=low,namespace=}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_events_filtered_total{source=falco,reason=min_severity}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_events_deduplicated_total{source=falco}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_observations_created_total{source=falco,sink=null}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_observations_by_rule_total{source=falco,rule=A}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_errors_total{component=ingest,category=parse}"),
        1.0
    );
    assert_eq!(
        get("zen_watcher_queue_capacity{queue=submissions}"),
        10_000.0
    );
    assert!(seen.contains_key("zen_watcher_queue_depth{queue=submissions}"));
    assert!(seen.contains_key("zen_watcher_batch_flushes_total{reason=shutdown}"));
    for stage in ["normalize", "process", "sink", "total"] {
        let k =
            format!("zen_watcher_event_processing_duration_seconds{{stage={stage},source=falco}}");
        assert!(
            histograms.get(&k).is_some_and(|n| *n > 0),
            "{k} not recorded: {histograms:#?}"
        );
    }
}
