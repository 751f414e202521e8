//! Writes per second into the store on a real file (tmpfs-free temp dir): 10,000 Falco events in
//! transactions of 1 (no batching), 15 (the default batch) and 100; and the sink's mix under a
//! flat-out load, where writes of 1,000 events alternate with duplicate counts for some of the
//! sightings just written, 256 per transaction, as the daemon applies them.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zen_dedup::DuplicateUpdate;
use zen_model::{Context, Format, Normalizer};
use zen_sink::{Kept, Sink};

/// `n` kept events, numbered from 0.
fn events(n: usize) -> Vec<Kept> {
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"));
    let body: String = (0..n)
        .map(|i| {
            format!(
                r#"{{"rule":"Terminal shell in container","priority":"{}","time":"2026-02-11T09:01:02Z","hostname":"node-1","tags":["shell"],"output_fields":{{"container.id":"{i:012x}","k8s.ns.name":"shop-{}","k8s.pod.name":"cart-{i}","proc.cmdline":"bash -i"}}}}"#,
                ["Warning", "Error", "Critical", "Notice"][i % 4],
                i % 40
            ) + "\n"
        })
        .collect();
    Normalizer::default()
        .normalize(Format::Falco, body.as_bytes(), &ctx)
        .expect("events")
        .events
        .into_iter()
        .zip(0..)
        .map(|(event, seq)| Kept { seq, event })
        .collect()
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
                    for chunk in all.chunks(per_tx) {
                        sink.write("falco", chunk).expect("write");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    // 40 writes of 1,000 events; after each, duplicate counts for 400 of the last 2,000
    // sightings (every fifth), in seq order, 256 per transaction.
    let (writes, per_write) = (40usize, 1_000usize);
    let all = events(writes * per_write);
    let updates: Vec<Vec<DuplicateUpdate>> = (0..writes)
        .map(|i| {
            let first = i * per_write;
            (first.saturating_sub(1_000)..first + per_write)
                .step_by(5)
                .map(|seq| DuplicateUpdate {
                    fingerprint: all[seq].event.fingerprint,
                    seq: seq as u64,
                    duplicates: 3,
                    last_seen: all[seq].event.detected_at,
                })
                .collect()
        })
        .collect();
    let counted: usize = updates.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("sink mix");
    group.throughput(Throughput::Elements((all.len() + counted) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("writes of 1,000 and 400 duplicate counts each", |b| {
        b.iter_batched(
            || {
                let path = dir.path().join(format!("mix-{}.db", rand_suffix()));
                zen_store::open(&path).expect("store").1
            },
            |mut sink| {
                for (chunk, updates) in all.chunks(per_write).zip(&updates) {
                    sink.write("falco", chunk).expect("write");
                    for slice in updates.chunks(256) {
                        sink.apply_duplicates(slice).expect("duplicates");
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

criterion_group!(benches, bench);
criterion_main!(benches);
