//! One advisor pass over 300 series of the last hour at 10 s (360 points each: trends and
//! anomaly scores), 20 of them watched for regressions, 10 resources forecast over a day at a
//! minute. Target: ≤ 5 ms a pass (`cargo xtask bench -p zen-advisor`).

use criterion::{Criterion, criterion_group, criterion_main};
use zen_advisor::advice::Input;
use zen_advisor::stats::Noise;
use zen_advisor::{Advisor, Facts, Limit, Resource, Series};

fn pass(c: &mut Criterion) {
    let mut noise = Noise::new(11);
    let hour: Vec<Vec<f64>> = (0..300)
        .map(|i| {
            (0..360)
                .map(|t| 100.0 + f64::from(i) + 0.01 * f64::from(t) + 3.0 * noise.normal())
                .collect()
        })
        .collect();
    let day: Vec<Vec<f64>> = (0..10)
        .map(|i| {
            (0..1440)
                .map(|m| 1e9 - f64::from(m) * 1e5 * f64::from(i + 1) + 1e6 * noise.normal())
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..300).map(|i| format!("series_{i}")).collect();
    let now = 86_400;
    let recent: Vec<(&str, Series<'_>)> = names
        .iter()
        .zip(&hour)
        .map(|(n, v)| {
            (
                n.as_str(),
                Series {
                    start: now - 3_600,
                    step: 10,
                    values: v,
                },
            )
        })
        .collect();
    let watched = recent[..20].to_vec();
    // A day earlier, 10 % lower.
    let earlier: Vec<Vec<f64>> = hour
        .iter()
        .map(|v| v.iter().map(|x| x / 1.1).collect())
        .collect();
    let day_before: Vec<Series<'_>> = earlier
        .iter()
        .map(|v| Series {
            start: now - 86_400 - 3_600,
            step: 10,
            values: v,
        })
        .collect();
    let resources: Vec<Resource<'_>> = day
        .iter()
        .zip(&names)
        .map(|(v, n)| Resource {
            name: n,
            series: Series {
                start: 0,
                step: 60,
                values: v,
            },
            limit: Limit::FallsTo(0.0),
        })
        .collect();
    let facts = Facts {
        latency_objective: 0.1,
        max_batch_size: 15,
        max_batch_age: 0.1,
        queue_capacity: 10_000,
        retention: 30.0 * 86_400.0,
        ..Facts::default()
    };
    let input = Input {
        now,
        recent: &recent,
        day_before: &day_before,
        week_before: &[],
        events: &[],
        watched: &watched,
        resources: &resources,
        facts: &facts,
    };
    let mut advisor = Advisor::default();
    c.bench_function("advisor/pass over 300 series", |b| {
        b.iter(|| advisor.pass(&input));
    });
}

criterion_group!(benches, pass);
criterion_main!(benches);
