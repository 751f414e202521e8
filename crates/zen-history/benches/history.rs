//! The history's budget for 300 series: recording one sample, queries over an hour and over
//! 30 days, and — printed before the benchmarks — the bytes per stored value on disk, the
//! resident memory and the time to open 30 days of history.
//!
//! The series are a deterministic mix of what the daemon records: counters of events by source
//! and outcome (noisy rates with a daily swing), latency percentiles, steady gauges, slowly moving
//! host gauges, bursty disk and network rates, and error counters that are mostly zero.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use zen_history::{History, Kind, Query, SeriesId};

const SERIES: usize = 300;
/// 2026-11-07T00:00:00Z.
const START: i64 = 1_794_009_600;
const DAYS: i64 = 30;

/// xorshift64*: fixed and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A series' kind and how its next value follows from the second and the last value.
#[derive(Clone, Copy)]
enum Shape {
    Events(f64),
    Latency(f64),
    Steady(f64),
    Drifting(f64),
    Bursty(f64),
    Errors,
}

fn shapes() -> Vec<(String, Kind, Shape)> {
    let mut out = Vec::new();
    let mut push = |n: usize, name: &str, kind, shape: &dyn Fn(usize) -> Shape| {
        for i in 0..n {
            out.push((format!("{name}{{i=\"{i}\"}}"), kind, shape(i)));
        }
    };
    push(60, "events_total", Kind::Counter, &|i| {
        Shape::Events(50.0 * (i + 1) as f64)
    });
    push(60, "latency_p", Kind::Gauge, &|i| {
        Shape::Latency(0.5 + (i % 6) as f64)
    });
    push(30, "capacity", Kind::Gauge, &|i| {
        Shape::Steady(1024.0 * (i + 1) as f64)
    });
    push(50, "host_gauge", Kind::Gauge, &|i| {
        Shape::Drifting(1e6 * (i + 1) as f64)
    });
    push(60, "io_bytes_total", Kind::Counter, &|i| {
        Shape::Bursty(4096.0 * (i + 1) as f64)
    });
    push(40, "errors_total", Kind::Counter, &|_| Shape::Errors);
    out
}

struct Source {
    rng: Rng,
    ids: Vec<(SeriesId, Shape)>,
    state: Vec<f64>,
}

impl Source {
    fn new(h: &mut History) -> Source {
        let ids: Vec<(SeriesId, Shape)> = shapes()
            .into_iter()
            .map(|(name, kind, shape)| (h.series(&name, kind).expect("series"), shape))
            .collect();
        assert_eq!(ids.len(), SERIES);
        Source {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            state: vec![0.0; ids.len()],
            ids,
        }
    }

    fn sample(&mut self, t: i64, out: &mut Vec<(SeriesId, f64)>) {
        out.clear();
        let day = (2.0 * std::f64::consts::PI * (t % 86_400) as f64 / 86_400.0).sin();
        for (i, &(id, shape)) in self.ids.iter().enumerate() {
            let r = self.rng.next();
            let s = &mut self.state[i];
            let v = match shape {
                Shape::Events(rate) => {
                    *s += (rate * (1.0 + 0.5 * day) * (0.8 + 0.4 * r)).round();
                    *s
                }
                Shape::Latency(base) => base * (1.0 + 0.3 * day) * (0.7 + 0.6 * r * r),
                Shape::Steady(v) => v,
                Shape::Drifting(v) => {
                    *s += (r - 0.5) * v * 1e-4;
                    v + *s
                }
                Shape::Bursty(v) => {
                    if r < 0.2 {
                        *s += (v * r * 50.0).round();
                    }
                    *s
                }
                Shape::Errors => {
                    if r < 0.001 {
                        *s += 1.0;
                    }
                    *s
                }
            };
            out.push((id, v));
        }
    }
}

fn fill(h: &mut History, source: &mut Source, from: i64, to: i64) {
    let mut sample = Vec::with_capacity(SERIES);
    for t in from..to {
        source.sample(t, &mut sample);
        h.record(t, &sample).expect("record");
    }
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// Bytes of the blocks on disk by tier.
fn disk_bytes(dir: &Path) -> [u64; 3] {
    let mut out = [0; 3];
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let (Some(tier), true) = (
            name.strip_prefix('t')
                .and_then(|n| n[..1].parse::<usize>().ok()),
            name.ends_with(".block"),
        ) {
            out[tier] += e.metadata().map_or(0, |m| m.len());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = START + DAYS * 86_400;
    let rss_before = rss_kib();
    let filled = Instant::now();
    let (mut h, source) = {
        let (mut h, _) = History::open(dir.path(), START).expect("open");
        let mut source = Source::new(&mut h);
        fill(&mut h, &mut source, START, end);
        (h, source)
    };
    let seconds = filled.elapsed().as_secs_f64();
    eprintln!(
        "filled {DAYS} days of {SERIES} series in {seconds:.1} s: {:.1} µs per sample on average",
        seconds * 1e6 / (DAYS * 86_400) as f64
    );
    eprintln!(
        "resident memory added by the history, open with {DAYS} days: {} KiB ({} KiB of points held)",
        rss_kib() - rss_before,
        h.bytes_held() / 1024
    );
    // Values stored per tier on disk: every series has a value each second but the counters'
    // first (no rate yet); the rollups keep three values per point.
    let bytes = disk_bytes(dir.path());
    for (tier, (b, (step, retention))) in bytes
        .iter()
        .zip([(1, 3_600), (10, 86_400), (60, DAYS * 86_400)])
        .enumerate()
    {
        let points = (retention / step) as f64 * SERIES as f64 * if tier == 0 { 1.0 } else { 3.0 };
        eprintln!(
            "tier {tier} ({step} s): {} KiB on disk, {:.2} bytes per stored value",
            b / 1024,
            *b as f64 / points
        );
    }
    h.close().expect("close");
    drop(h);
    let opened = Instant::now();
    let (mut h, recovery) = History::open(dir.path(), end).expect("reopen");
    eprintln!(
        "opened again in {:.1} ms: {} blocks, {} seconds from the journal",
        opened.elapsed().as_secs_f64() * 1e3,
        recovery.blocks,
        recovery.seconds
    );
    let mut source = Source {
        ids: source.ids.clone(),
        ..source
    };
    let twenty: Vec<SeriesId> = source.ids.iter().step_by(15).map(|(id, _)| *id).collect();
    assert_eq!(twenty.len(), 20);

    let mut t = end;
    c.bench_function("history/record one sample of 300 series", |b| {
        b.iter_batched(
            || {
                let mut sample = Vec::with_capacity(SERIES);
                source.sample(t, &mut sample);
                t += 1;
                (t - 1, sample)
            },
            |(second, sample)| h.record(second, black_box(&sample)).expect("record"),
            criterion::BatchSize::SmallInput,
        )
    });
    let now = t;
    for (name, from) in [
        ("the last hour", now - 3_600),
        ("30 days", now - DAYS * 86_400 + 60),
    ] {
        c.bench_function(
            &format!("history/query 20 series over {name} at 1,000 points"),
            |b| {
                b.iter(|| {
                    let q = Query {
                        series: &twenty,
                        from,
                        to: now - 1,
                        points: 1000,
                    };
                    black_box(h.query(&q, now).expect("query"))
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
