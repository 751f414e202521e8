//! Stage timings reach Prometheus as histograms whose buckets include every SLO threshold.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use zen_model::{Context, Format, Normalizer};
use zen_pipeline::{NullSink, PROCESSING_DURATION_BUCKETS, Pipeline, PipelineConfig, Submission};

#[test]
fn processing_durations_are_histograms_with_the_slo_thresholds_as_buckets() {
    let name = "zen_watcher_event_processing_duration_seconds";
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(name.to_owned()), &PROCESSING_DURATION_BUCKETS)
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let p = Pipeline::start(
        PipelineConfig::default(),
        Arc::new(Normalizer::default()),
        Box::new(NullSink),
    )
    .unwrap();
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
    let body = br#"{"rule":"A","priority":"Critical"}"#.to_vec();
    p.try_submit(Submission::Payload {
        format: Format::Falco,
        body,
        ctx,
    })
    .unwrap();
    assert!(p.shutdown(Instant::now() + Duration::from_secs(10)).drained);

    let text = handle.render();
    assert!(text.contains(&format!("# TYPE {name} histogram")), "{text}");
    for stage in ["normalize", "process", "sink", "total"] {
        for le in ["0.05", "0.075", "0.1", "0.2", "+Inf"] {
            let line = format!("{name}_bucket{{stage=\"{stage}\",le=\"{le}\"}}");
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
    }
}
