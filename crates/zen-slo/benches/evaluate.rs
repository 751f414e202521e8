//! The cost of one evaluation in the daemon: every sample the shipped spec reads from a daemon
//! with seven sources (the processing histogram by stage and source, HTTP answers, errors,
//! gauges) observed, then everything evaluated, with six hours of history held. Before the
//! timings it prints how much memory three days of history take.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

use std::hint::black_box;
use std::sync::LazyLock;

use criterion::{Criterion, criterion_group, criterion_main};
use zen_export::catalog::LATENCY_BUCKETS;
use zen_model::Format;
use zen_slo::{Engine, defaults};

/// The catalog's bucket bounds as the exporter prints them, `+Inf` last.
static LATENCY: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut les: Vec<String> = LATENCY_BUCKETS.iter().map(f64::to_string).collect();
    les.push("+Inf".into());
    les
});
const STAGES: &[&str] = &["normalize", "process", "sink", "total"];
const STEP_MS: i64 = 10_000;

/// One scrape's worth of samples at tick `i`: counters grow by a few hundred events a tick.
fn tick(engine: &mut Engine, i: i64) {
    let t = i * STEP_MS;
    let n = (i * 300) as f64;
    let sources = Format::ALL.map(Format::as_str);
    let latency = &*LATENCY;
    for stage in STAGES {
        for source in sources {
            for (k, le) in latency.iter().enumerate() {
                let share = ((k + 1) as f64 / latency.len() as f64).min(1.0);
                engine.observe(
                    t,
                    "zen_watcher_event_processing_duration_seconds_bucket",
                    &[("stage", stage), ("source", source), ("le", le.as_str())],
                    (n * share).floor(),
                );
            }
            engine.observe(
                t,
                "zen_watcher_event_processing_duration_seconds_count",
                &[("stage", stage), ("source", source)],
                n,
            );
        }
    }
    for source in sources {
        engine.observe(
            t,
            "zen_watcher_events_total",
            &[("source", source), ("severity", "high")],
            n,
        );
    }
    for code in ["202", "400", "429", "500"] {
        let v = if code == "202" { n } else { (i / 10) as f64 };
        engine.observe(
            t,
            "zen_watcher_http_requests_total",
            &[("route", "/api/v1/ingest/{source}"), ("code", code)],
            v,
        );
    }
    engine.observe(
        t,
        "zen_watcher_errors_total",
        &[("component", "ingest"), ("category", "parse")],
        (i / 10) as f64,
    );
    engine.observe(t, "zen_watcher_cpu_usage_percent", &[], 3.0);
    engine.observe(
        t,
        "zen_watcher_memory_usage_percent",
        &[],
        10.0 + (i % 7) as f64,
    );
    engine.observe(t, "zen_watcher_queue_depth", &[("queue", "ingest")], 3.0);
    engine.observe(
        t,
        "zen_watcher_queue_capacity",
        &[("queue", "ingest")],
        256.0,
    );
    engine.observe(t, "zen_watcher_health_score", &[], 100.0);
    engine.observe(t, "zen_watcher_build_info", &[("version", "x")], 1.0);
    engine.evaluate(t);
}

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn bench(c: &mut Criterion) {
    let before = resident_kib();
    let mut engine = Engine::new(defaults::spec()).unwrap();
    let three_days = 3 * 86_400_000 / STEP_MS;
    for i in 0..three_days {
        tick(&mut engine, i);
    }
    println!(
        "history of 3 days at {} s: {} KiB resident",
        STEP_MS / 1000,
        resident_kib().saturating_sub(before)
    );
    let mut i = three_days;
    c.bench_function("evaluate/one tick, 3 days held", |b| {
        b.iter(|| {
            tick(&mut engine, i);
            i += 1;
            black_box(engine.health())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
