//! Writes per second into the store on a real file (tmpfs-free temp dir): 10,000 Falco events in
//! transactions of 1 (no batching), 15 (the default batch) and 100.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zen_model::{Context, Event, Format, Normalizer};
use zen_pipeline::Sink;

fn events(n: usize) -> Vec<Event> {
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"));
    let body: String = (0..n)
        .map(|i| {
            format!(
                r#"{{"rule":"Terminal shell in container","priority":"Warning","time":"2026-02-11T09:01:02Z","hostname":"node-1","tags":["shell"],"output_fields":{{"container.id":"{i:012x}","k8s.ns.name":"shop","k8s.pod.name":"cart-{i}","proc.cmdline":"bash -i"}}}}"#
            ) + "\n"
        })
        .collect();
    Normalizer::default()
        .normalize(Format::Falco, body.as_bytes(), &ctx)
        .expect("events")
        .events
}

fn bench(c: &mut Criterion) {
    let n = 10_000;
    let all = events(n);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("store write");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for per_tx in [1usize, 15, 100] {
        group.bench_function(format!("{per_tx} per transaction"), |b| {
            b.iter_batched(
                || {
                    let path = dir
                        .path()
                        .join(format!("bench-{per_tx}-{}.db", rand_suffix()));
                    zen_store::open(&path).expect("store").1
                },
                |mut sink| {
                    for (i, chunk) in all.chunks(per_tx).enumerate() {
                        let seqs: Vec<u64> =
                            (0..chunk.len()).map(|j| (i * per_tx + j) as u64).collect();
                        sink.write("falco", chunk, &seqs).expect("write");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

criterion_group!(benches, bench);
criterion_main!(benches);
