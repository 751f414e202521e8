//! Checks per second: a stream of realistic size and repetition — 100,000 remembered
//! fingerprints at most, 40 % of events repeating one seen recently.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zen_dedup::Deduper;
use zen_model::{Fingerprint, Timestamp};

fn stream(n: usize) -> Vec<Fingerprint> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out: Vec<Fingerprint> = Vec::with_capacity(n);
    for i in 0..n {
        let repeat = i > 0 && next() % 100 < 40;
        let fp = if repeat {
            out[i - 1 - (next() as usize % i.min(5_000))]
        } else {
            Fingerprint(u128::from(next()) << 64 | u128::from(next()))
        };
        out.push(fp);
    }
    out
}

fn dedup(c: &mut Criterion) {
    let events = stream(1_000_000);
    let window = Duration::from_secs(60);
    let mut group = c.benchmark_group("dedup");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("check (1M events, 40% repeats, max 100k)", |b| {
        b.iter_batched_ref(
            || Deduper::new(100_000),
            |d| {
                let t0 = Instant::now();
                for (i, fp) in events.iter().enumerate() {
                    let now = t0 + Duration::from_micros(i as u64);
                    black_box(d.check(*fp, window, now, Timestamp::UNIX_EPOCH));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8));
    targets = dedup
}
criterion_main!(benches);
