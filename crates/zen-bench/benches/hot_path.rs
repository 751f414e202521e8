//! The hot path in instructions, under callgrind (gungraun): each benchmark's setup builds its
//! input outside the measurement; the measured body is the one call the daemon makes per request,
//! chunk, batch, scrape, sample or evaluation. `cargo xtask bench gate` runs them and compares
//! each count with `baseline.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use gungraun::{LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use zen_batch::{BatchConfig, Batcher, FlushReason};
use zen_dedup::Deduper;
use zen_filter::{Filter, FilterConfig, FilterRules};
use zen_model::{Context, Event, Format, Normalizer};
use zen_pipeline::{Kept, NullSink, Output, PipelineConfig, Processor, Sink};

fn context() -> Context {
    Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"))
}

fn events(body: &[u8]) -> Vec<Event> {
    Normalizer::default()
        .normalize(Format::Falco, body, &context())
        .expect("alerts")
        .events
}

// --- Normalising ---------------------------------------------------------------------------

fn normalizer_and(body: Vec<u8>) -> (Normalizer, Vec<u8>, Context) {
    (Normalizer::default(), body, context())
}

#[library_benchmark]
#[bench::falco_one(args = (zen_bench::falco_alert()), setup = normalizer_and)]
#[bench::falco_ndjson_100(args = (zen_bench::falco_ndjson(100)), setup = normalizer_and)]
fn falco((normalizer, body, ctx): (Normalizer, Vec<u8>, Context)) -> usize {
    let mut n = black_box(normalizer.normalize(Format::Falco, &body, &ctx))
        .expect("alerts")
        .events
        .len();
    // The slowed build the gate's own test runs: the same work twice.
    if zen_bench::slowed() {
        n += black_box(normalizer.normalize(Format::Falco, &body, &ctx))
            .expect("alerts")
            .events
            .len();
    }
    n
}

#[library_benchmark]
#[bench::audit_eventlist_100(args = (zen_bench::audit_eventlist(100)), setup = normalizer_and)]
fn audit((normalizer, body, ctx): (Normalizer, Vec<u8>, Context)) -> usize {
    black_box(normalizer.normalize(Format::Audit, &body, &ctx))
        .expect("events")
        .events
        .len()
}

#[library_benchmark]
#[bench::trivy_report_100(args = (zen_bench::trivy_report(100)), setup = normalizer_and)]
fn trivy((normalizer, body, ctx): (Normalizer, Vec<u8>, Context)) -> usize {
    black_box(normalizer.normalize(Format::Trivy, &body, &ctx))
        .expect("findings")
        .events
        .len()
}

library_benchmark_group!(name = normalize; benchmarks = falco, audit, trivy);

// --- Filtering, de-duplication, batching ---------------------------------------------------

fn filter_and_events(rules: FilterRules) -> (Filter, Vec<Event>) {
    let filter = Filter::compile(&FilterConfig {
        global: rules,
        ..FilterConfig::default()
    })
    .expect("compiles");
    (filter, events(&zen_bench::falco_mix(100)))
}

fn rule_lists() -> FilterRules {
    FilterRules {
        min_severity: Some(zen_model::Severity::Low),
        exclude_namespaces: vec!["kube-*".to_owned(), "noisy".to_owned()],
        exclude_rules: vec!["Launch Package Management Process in Container".to_owned()],
        ..FilterRules::default()
    }
}

fn expression() -> FilterRules {
    FilterRules {
        expression: Some(
            r#"severity >= "medium" AND namespace NOT IN ("kube-system", "noisy") AND NOT rule_id STARTS_WITH "Launch Package""#
                .to_owned(),
        ),
        ..FilterRules::default()
    }
}

#[library_benchmark]
#[bench::rule_lists_100(args = (rule_lists()), setup = filter_and_events)]
#[bench::expression_100(args = (expression()), setup = filter_and_events)]
fn filter((filter, events): (Filter, Vec<Event>)) -> usize {
    events.iter().filter(|e| filter.check(e).is_ok()).count()
}

/// A deduper already holding the mix's first 100 findings, and the next 1,000 events' checks.
fn deduper_and_events() -> (Deduper, Vec<Event>, Instant) {
    let all = events(&zen_bench::falco_mix(1_100));
    let now = Instant::now();
    let mut deduper = Deduper::new(100_000);
    for e in &all[..100] {
        deduper.check(e.fingerprint, Duration::from_secs(60), now, e.detected_at);
    }
    (deduper, all[100..].to_vec(), now)
}

#[library_benchmark]
#[bench::check_1000(setup = deduper_and_events)]
fn dedup((mut deduper, events, now): (Deduper, Vec<Event>, Instant)) -> (Deduper, Vec<Event>) {
    for e in &events {
        black_box(deduper.check(e.fingerprint, Duration::from_secs(60), now, e.detected_at));
    }
    (deduper, events)
}

fn batcher_and_events() -> (Batcher<Event>, Vec<Event>, Instant) {
    (
        Batcher::new(BatchConfig::default()),
        events(&zen_bench::falco_mix(1_000)),
        Instant::now(),
    )
}

#[library_benchmark]
#[bench::push_flush_1000(setup = batcher_and_events)]
fn batch((mut batcher, events, now): (Batcher<Event>, Vec<Event>, Instant)) -> usize {
    let sources = Format::ALL.map(Format::as_str);
    let mut flushed = 0;
    for (i, e) in events.into_iter().enumerate() {
        flushed += batcher.push(now, sources[i % sources.len()], e).len();
    }
    flushed + batcher.flush_all(now, FlushReason::Duplicates).len()
}

library_benchmark_group!(name = stages; benchmarks = filter, dedup, batch);

// --- The pipeline, and the store -----------------------------------------------------------

fn processor_and_events() -> (Processor, Vec<Event>, Instant) {
    let mut config = PipelineConfig::default();
    config.filter.global = rule_lists();
    (
        zen_pipeline::processor(&config),
        events(&zen_bench::falco_mix(1_000)),
        Instant::now(),
    )
}

/// Hands `out`'s batches to `sink`; how many events they held.
fn write(out: &mut Vec<Output>, sink: &mut dyn Sink) -> usize {
    let batches = out.drain(..).filter_map(|o| match o {
        Output::Batch(b) => Some(b),
        _ => None,
    });
    batches
        .map(|b| {
            let kept: Vec<Kept> = (b.items.into_iter())
                .map(|t| Kept {
                    seq: t.seq,
                    event: t.event,
                })
                .collect();
            sink.write(&b.source, &kept).expect("null sink");
            kept.len()
        })
        .sum()
}

#[library_benchmark]
#[bench::to_null_sink_1000(setup = processor_and_events)]
fn pipeline((mut processor, events, now): (Processor, Vec<Event>, Instant)) -> (Processor, usize) {
    let mut out = Vec::new();
    let mut written = 0;
    let mut events = events.into_iter();
    loop {
        // In chunks of 100, as requests of 100 hand them on.
        let chunk: Vec<Event> = events.by_ref().take(100).collect();
        if chunk.is_empty() {
            break;
        }
        processor.process(now, chunk, now, &mut out);
        written += write(&mut out, &mut NullSink);
    }
    processor.drain(now, &mut out);
    let updates = processor.take_duplicates(now, &mut out);
    written += write(&mut out, &mut NullSink);
    NullSink.apply_duplicates(&updates).expect("null sink");
    (processor, written)
}

type OpenStore = (tempfile::TempDir, zen_store::Store, zen_store::SqliteSink);

fn store_and_batch() -> (OpenStore, Vec<Kept>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, sink) = zen_store::open(&dir.path().join("zen.db")).expect("store");
    let kept = events(&zen_bench::falco_ndjson(100))
        .into_iter()
        .enumerate()
        .map(|(i, event)| Kept {
            seq: i as u64,
            event,
        })
        .collect();
    ((dir, store, sink), kept)
}

#[library_benchmark]
#[bench::sqlite_write_100(setup = store_and_batch)]
fn store(((dir, store, mut sink), kept): (OpenStore, Vec<Kept>)) -> OpenStore {
    sink.write("falco", &kept).expect("written");
    (dir, store, sink)
}

library_benchmark_group!(name = path; benchmarks = pipeline, store);

// --- What is looked at: /metrics, a host sample, an evaluation -----------------------------

fn collect_fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../zen-collect/tests/data"
    ))
}

/// The exporter, with 7 sources × 5 severities × 10 namespaces of events counted and the
/// processing histogram by stage and source filled; the process figures read from fixtures.
fn exporter() -> zen_export::Exporter {
    let exporter =
        zen_export::Exporter::install(collect_fixtures().join("proc")).expect("the only recorder");
    for source in Format::ALL.map(Format::as_str) {
        for severity in ["critical", "high", "medium", "low", "info"] {
            for ns in 0..10 {
                metrics::counter!("zen_watcher_events_total", "source" => source, "severity" => severity, "namespace" => format!("team-{ns}")).increment(ns + 1);
            }
        }
        for stage in ["normalize", "process", "sink", "total"] {
            let h = metrics::histogram!("zen_watcher_event_processing_duration_seconds", "stage" => stage, "source" => source);
            for i in 0..100 {
                h.record(f64::from(i) * 1e-4);
            }
        }
    }
    // The first rendering sizes what later ones reuse.
    black_box(exporter.render());
    exporter
}

#[library_benchmark]
#[bench::render(setup = exporter)]
fn metrics_page(exporter: zen_export::Exporter) -> (zen_export::Exporter, usize) {
    let n = black_box(exporter.render()).len();
    (exporter, n)
}

/// A reader of a fixture host (a 2-CPU VM's `/proc` files, three interfaces in `/sys`), after a
/// first sample.
fn host_reader() -> (
    tempfile::TempDir,
    zen_collect::host::HostReader,
    zen_collect::host::HostSample,
) {
    let proc = tempfile::tempdir().expect("temp dir");
    let host = collect_fixtures().join("host");
    for dir in ["net", "pressure"] {
        std::fs::create_dir(proc.path().join(dir)).expect("dir");
    }
    for (from, to) in [
        ("stat", "stat"),
        ("meminfo", "meminfo"),
        ("diskstats", "diskstats"),
        ("net-dev", "net/dev"),
        ("pressure-cpu", "pressure/cpu"),
    ] {
        std::fs::copy(host.join(from), proc.path().join(to)).expect("fixture");
    }
    let roots = zen_collect::Roots {
        proc: proc.path().to_owned(),
        sys: collect_fixtures().join("sys"),
        ..zen_collect::Roots::default()
    };
    let excludes = zen_collect::host::Excludes::new(
        zen_collect::host::Excludes::DEFAULT_DISKS,
        zen_collect::host::Excludes::DEFAULT_INTERFACES,
    )
    .expect("patterns");
    let mut reader =
        zen_collect::host::HostReader::new(&roots, excludes, &zen_collect::Collectors::default());
    let mut sample = zen_collect::host::HostSample::default();
    reader.sample(&mut sample);
    (proc, reader, sample)
}

type HostFixture = (
    tempfile::TempDir,
    zen_collect::host::HostReader,
    zen_collect::host::HostSample,
);

#[library_benchmark]
#[bench::sample(setup = host_reader)]
fn host((proc, mut reader, mut sample): HostFixture) -> HostFixture {
    black_box(reader.sample(&mut sample));
    (proc, reader, sample)
}

/// Samples of one step: metric, labels, value.
type Samples = Vec<(String, Vec<(String, String)>, f64)>;

/// An engine for the shipped spec that has taken every step but the last of the scenario with
/// the most series (of those that take each shipped alert through its life); and that step's
/// samples and time.
fn engine_before_last_step() -> (zen_slo::Engine, Samples, i64) {
    let spec = zen_slo::defaults::spec();
    let suites = zen_slo::scenario::suites(&spec, &zen_export::catalog::buckets);
    let scenario = suites
        .iter()
        .flat_map(|s| &s.scenarios)
        .max_by_key(|s| s.series.len())
        .expect("a scenario");
    let mut engine = zen_slo::Engine::new(spec).expect("the shipped spec");
    let step = scenario.step.millis();
    let samples = |i: usize| -> Samples {
        scenario
            .series
            .iter()
            .filter_map(|s| Some((s.metric.clone(), s.labels.clone(), (*s.values.get(i)?)?)))
            .collect()
    };
    let last = scenario.len() - 1;
    for i in 0..last {
        let t = i as i64 * step;
        for (metric, labels, v) in samples(i) {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            engine.observe(t, &metric, &labels, v);
        }
        engine.evaluate(t);
    }
    (engine, samples(last), last as i64 * step)
}

#[library_benchmark]
#[bench::observe_and_evaluate(setup = engine_before_last_step)]
fn slo((mut engine, samples, t): (zen_slo::Engine, Samples, i64)) -> zen_slo::Engine {
    for (metric, labels, v) in &samples {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        engine.observe(t, metric, &labels, *v);
    }
    engine.evaluate(t);
    engine
}

library_benchmark_group!(name = watched; benchmarks = metrics_page, host, slo);

/// The environment is cleared but for the slowed build's switch. glibc's allocator is held to
/// one behaviour: its fast bins (whose consolidation, `malloc_consolidate`, ran inside some
/// measurements and not others: the same evaluation cost 418,000 or 754,000 instructions), its
/// dynamic mmap threshold and its heap trimming otherwise follow the allocation history. That
/// history is made the same in every run by `getrandom` answering fixed bytes (the gate's
/// preloaded `fixed_random.c`): randomly seeded hash maps, of the exporter crates among others,
/// left rendering `/metrics` and the SLO step 0.1–0.3 % apart from run to run.
const MALLOC: &str = "glibc.malloc.mxfast=0:glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=33554432";

main!(
    config = LibraryBenchmarkConfig::default()
        .env("GLIBC_TUNABLES", MALLOC)
        .env("LD_PRELOAD", std::env::var(zen_bench::PRELOAD_ENV).unwrap_or_default())
        .pass_through_envs([zen_bench::SLOW_ENV]);
    library_benchmark_groups = normalize, stages, path, watched
);
