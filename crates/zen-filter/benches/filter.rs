//! Evaluations per second of a typical three-clause expression, and of the rule lists, on a
//! Falco event.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zen_filter::{Filter, FilterConfig, FilterRules};
use zen_model::{Context, Format, Normalizer};

fn bench(c: &mut Criterion) {
    let alert = br#"{"rule":"Terminal shell in container","priority":"Warning","time":"2026-02-11T09:01:02Z","hostname":"node-1",
        "output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart-5f6d","proc.name":"bash"}}"#;
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().expect("time"));
    let event = Normalizer::default()
        .normalize(Format::Falco, alert, &ctx)
        .expect("event")
        .events
        .remove(0);

    let cases = [
        (
            "three-clause expression",
            FilterRules {
                expression: Some(
                    r#"severity >= "medium" AND namespace NOT IN ("kube-system", "monitoring") AND NOT rule_id STARTS_WITH "Launch Package""#
                        .to_owned(),
                ),
                ..FilterRules::default()
            },
        ),
        (
            "rule lists",
            FilterRules {
                min_severity: Some(zen_model::Severity::Low),
                exclude_namespaces: vec!["kube-*".to_owned(), "monitoring".to_owned()],
                exclude_rules: vec!["Launch Package Management Process in Container".to_owned()],
                ..FilterRules::default()
            },
        ),
        (
            "expression on details",
            FilterRules { expression: Some(r#"details.output_fields.proc.name IN ("bash", "sh")"#.to_owned()), ..FilterRules::default() },
        ),
    ];
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    for (name, rules) in cases {
        let filter = Filter::compile(&FilterConfig {
            global: rules,
            ..FilterConfig::default()
        })
        .expect("compiles");
        assert!(filter.check(&event).is_ok());
        group.bench_function(name, |b| {
            b.iter(|| black_box(filter.check(black_box(&event))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
