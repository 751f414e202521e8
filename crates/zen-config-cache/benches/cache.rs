//! The cost of a hit: one thread alone, and with a second thread reading at the same time.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use zen_config_cache::{ConfigCache, Loader};

struct Fixed;

impl Loader<u64> for Fixed {
    fn load_global(&self) -> Result<u64, String> {
        Ok(0)
    }
    fn load_source(&self, source: &str) -> Result<Option<u64>, String> {
        Ok(Some(source.len() as u64))
    }
}

fn bench(c: &mut Criterion) {
    let cache = Arc::new(ConfigCache::new("bench", Duration::from_secs(3600), Fixed));
    let now = Instant::now();
    for s in zen_model::Format::ALL.map(zen_model::Format::as_str) {
        cache.get(s, now).expect("loads");
    }
    let mut group = c.benchmark_group("config-cache");
    group.bench_function("hit", |b| {
        b.iter(|| black_box(cache.get(black_box("kyverno"), now)))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(cache.get("falco", now).ok());
            }
        })
    };
    group.bench_function("hit, another thread reading", |b| {
        b.iter(|| black_box(cache.get(black_box("kyverno"), now)))
    });
    stop.store(true, Ordering::Relaxed);
    other.join().expect("reader");
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
