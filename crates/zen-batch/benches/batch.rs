//! Batching cost per event: 100,000 events of 7 sources pushed through a batcher with the default
//! configuration (15 per batch), batches flushed by size and polled for age.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zen_batch::{BatchConfig, Batcher};
use zen_model::{Context, Format, Normalizer};

fn batch(c: &mut Criterion) {
    let alert = br#"{"rule":"Terminal shell in container","priority":"Warning","time":"2026-02-11T09:01:02Z","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart"}}"#;
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"));
    let event = Normalizer::default()
        .normalize(Format::Falco, alert, &ctx)
        .expect("event")
        .events
        .remove(0);
    let n = 100_000;
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("push 100k events of 7 sources", |b| {
        b.iter_batched(
            || vec![event.clone(); n],
            |events| {
                let t0 = Instant::now();
                let mut batcher = Batcher::new(BatchConfig::default());
                let mut flushed = 0;
                for (i, ev) in events.into_iter().enumerate() {
                    let now = t0 + Duration::from_micros(i as u64);
                    flushed += batcher
                        .push(now, Format::ALL[i % Format::ALL.len()].as_str(), ev)
                        .len();
                    if i % 1024 == 0 {
                        flushed += batcher.poll(now).len();
                    }
                }
                flushed += batcher.drain(t0).len();
                black_box(flushed)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8));
    targets = batch
}
criterion_main!(benches);
