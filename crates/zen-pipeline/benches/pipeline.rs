//! The pipeline's throughput on one core, on a realistic mix: Falco-shaped events, 40 % of them
//! repeats of a recent finding, 30 % in a filtered namespace — into a null sink.
//!
//! - `one core/parsed events`: filter → dedup → batch → sink write, from events already parsed.
//! - `one core/raw JSON`: the same from the alerts' JSON, normalising first.
//! - `seed plan`: cache off/on × batching off/on, side by side, from parsed events.
//! - `metrics`: the parsed-events case with no recorder, with the Prometheus exporter's, and
//!   with none again.
//! - `threads`: the real threaded pipeline from payloads, wall clock (both cores).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zen_model::{Context, Event, Format, Normalizer, Syntax};
use zen_pipeline::{
    BatchSettings, CacheSettings, Kept, NullSink, Output, PipelineConfig, Sink, Submission,
};

const N: usize = 100_000;

/// One alert per line; 40 % repeat one of the last 1,000 findings; 30 % of findings in `noisy`.
fn alerts() -> Vec<Vec<u8>> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ids: Vec<u64> = Vec::with_capacity(N);
    (0..N)
        .map(|i| {
            let id = if i > 0 && next() % 100 < 40 { ids[i - 1 - (next() as usize % i.min(1000))] } else { next() };
            ids.push(id);
            let ns = if id % 10 < 3 { "noisy" } else { "shop" };
            let priority = ["Critical", "Error", "Warning", "Notice"][(id % 4) as usize];
            format!(
                r#"{{"hostname":"worker-7","output":"09:01:02.123456789: {priority} Shell spawned in a container (user=root k8s.ns={ns} container={id:x})","priority":"{priority}","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","shell"],"time":"2026-02-11T09:01:02.123456789Z","output_fields":{{"container.id":"{id:x}","evt.time":1770800462123456789,"k8s.ns.name":"{ns}","k8s.pod.name":"pod-{id:x}","proc.cmdline":"bash -i","proc.name":"bash","user.name":"root"}}}}"#
            )
            .into_bytes()
        })
        .collect()
}

fn config(cache: bool, batch: bool) -> PipelineConfig {
    let mut c = PipelineConfig {
        cache: CacheSettings {
            enabled: cache,
            ..CacheSettings::default()
        },
        batch: BatchSettings {
            enabled: batch,
            ..BatchSettings::default()
        },
        ..PipelineConfig::default()
    };
    c.filter.global.exclude_namespaces = vec!["noisy".to_owned(), "kube-*".to_owned()];
    c.filter.global.expression =
        Some(r#"severity >= "low" AND NOT rule_id STARTS_WITH "Launch Package""#.to_owned());
    c
}

/// Runs the stages on this thread into `sink`, in chunks of 100 as the normalisers hand them on.
fn run(config: &PipelineConfig, events: Vec<Event>, sink: &mut dyn Sink) -> usize {
    let mut processor = zen_pipeline::processor(config);
    let mut out = Vec::new();
    let mut written = 0;
    let mut events = events.into_iter();
    let t0 = Instant::now();
    let mut chunk_no = 0u64;
    loop {
        let chunk: Vec<Event> = events.by_ref().take(100).collect();
        if chunk.is_empty() {
            break;
        }
        let now = t0 + Duration::from_micros(chunk_no * 100);
        chunk_no += 1;
        processor.process(now, chunk, now, &mut out);
        processor.poll(now, &mut out);
        written += drain(&mut out, sink);
    }
    processor.drain(t0, &mut out);
    let updates = processor.take_duplicates(t0, &mut out);
    written += drain(&mut out, sink);
    sink.apply_duplicates(&updates).expect("null sink");
    written
}

fn drain(out: &mut Vec<Output>, sink: &mut dyn Sink) -> usize {
    let mut written = 0;
    for o in out.drain(..) {
        if let Output::Batch(b) = o {
            let kept: Vec<Kept> = b
                .items
                .into_iter()
                .map(|t| Kept {
                    seq: t.seq,
                    event: t.event,
                })
                .collect();
            sink.write(&b.source, &kept).expect("null sink");
            written += kept.len();
        }
    }
    written
}

fn parse(normalizer: &Normalizer, alerts: &[Vec<u8>], ctx: &Context) -> Vec<Event> {
    alerts
        .iter()
        .flat_map(|a| {
            normalizer
                .normalize(Format::Falco, a, ctx)
                .expect("alert")
                .events
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"));
    let alerts = alerts();
    let events = parse(&normalizer, &alerts, &ctx);
    let kept = run(&config(true, true), events.clone(), &mut NullSink);
    eprintln!(
        "mix: {N} events, {kept} written ({:.0} % filtered or duplicate)",
        100.0 - kept as f64 * 100.0 / N as f64
    );

    let mut one = c.benchmark_group("one core");
    one.throughput(Throughput::Elements(N as u64));
    one.sample_size(15);
    one.bench_function("parsed events", |b| {
        b.iter_batched(
            || events.clone(),
            |ev| black_box(run(&config(true, true), ev, &mut NullSink)),
            BatchSize::LargeInput,
        )
    });
    one.bench_function("raw JSON", |b| {
        b.iter(|| {
            black_box(run(
                &config(true, true),
                parse(&normalizer, &alerts, &ctx),
                &mut NullSink,
            ))
        })
    });
    one.finish();

    let mut seed = c.benchmark_group("seed plan");
    seed.throughput(Throughput::Elements(N as u64));
    seed.sample_size(10);
    for (cache, batch) in [(false, false), (true, false), (false, true), (true, true)] {
        let name = format!(
            "cache {} + batching {}",
            if cache { "on" } else { "off" },
            if batch { "on" } else { "off" }
        );
        let cfg = config(cache, batch);
        seed.bench_function(name, |b| {
            b.iter_batched(
                || events.clone(),
                |ev| black_box(run(&cfg, ev, &mut NullSink)),
                BatchSize::LargeInput,
            )
        });
    }
    seed.finish();

    let mut threads = c.benchmark_group("threads");
    threads.throughput(Throughput::Elements(N as u64));
    threads.sample_size(10);
    let ndjson: Vec<Vec<u8>> = alerts.chunks(100).map(|chunk| chunk.join(&b'\n')).collect();
    threads.bench_function("payloads of 100 alerts, end to end", |b| {
        b.iter_batched(
            || ndjson.clone(),
            |payloads| {
                let p = zen_pipeline::Pipeline::start(
                    config(true, true),
                    Arc::new(Normalizer::default()),
                    Box::new(NullSink),
                )
                .expect("starts");
                for body in payloads {
                    let read = p
                        .read(Format::Falco, Syntax::Json, &body, &ctx)
                        .expect("readable");
                    let mut s = Submission::now(read.events);
                    while let Err(zen_pipeline::SubmitError::Full(back)) = p.try_submit(s) {
                        s = back;
                        std::thread::yield_now();
                    }
                }
                black_box(p.shutdown(Instant::now() + Duration::from_secs(60)))
            },
            BatchSize::LargeInput,
        )
    });
    threads.finish();

    // The recorder is installed thread-locally around each run. Compare the cases each in a
    // process of its own (`cargo xtask bench -p zen-pipeline -- 'metrics/no recorder$'`, then
    // `-- 'metrics/prometheus'`): run after one another, later runs are slower for reasons of
    // heap state alone, which the third case shows.
    // The daemon's own recorder: the catalog's buckets for every histogram.
    let recorder = zen_export::recorder().expect("the catalog's buckets are valid");
    let handle = recorder.handle();
    let mut m = c.benchmark_group("metrics");
    m.throughput(Throughput::Elements(N as u64));
    m.sample_size(15);
    m.bench_function("no recorder", |b| {
        b.iter_batched(
            || events.clone(),
            |ev| black_box(run(&config(true, true), ev, &mut NullSink)),
            BatchSize::LargeInput,
        )
    });
    m.bench_function("prometheus recorder", |b| {
        b.iter_batched(
            || {
                // What the exporter does every few seconds: fold recorded samples into histograms.
                handle.run_upkeep();
                events.clone()
            },
            |ev| {
                metrics::with_local_recorder(&recorder, || {
                    black_box(run(&config(true, true), ev, &mut NullSink))
                })
            },
            BatchSize::LargeInput,
        )
    });
    m.bench_function("no recorder, again", |b| {
        b.iter_batched(
            || events.clone(),
            |ev| black_box(run(&config(true, true), ev, &mut NullSink)),
            BatchSize::LargeInput,
        )
    });
    m.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
