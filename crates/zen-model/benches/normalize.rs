//! Normalisation speed per format, on realistic payloads built from the test fixtures: one Falco
//! alert per request as `http_output` sends it; an audit `EventList` of 400 items (the API
//! server's default batch); reports of a few hundred findings. Each format is measured in events
//! per second and in bytes per second of input.

use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use zen_model::{Context, Format, Normalizer};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_slice(&fs::read(path).expect("fixture")).expect("fixture JSON")
}

/// `n` copies of `items`, each made distinct by `vary`.
fn replicate(items: &[Value], n: usize, vary: impl Fn(&mut Value, usize)) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut item = items[i % items.len()].clone();
            vary(&mut item, i);
            item
        })
        .collect()
}

fn payloads() -> Vec<(Format, &'static str, Vec<u8>)> {
    let falco = fixture("falco/http-output.json");
    let falco_stream: Vec<u8> = replicate(std::slice::from_ref(&falco), 1000, |alert, i| {
        alert["output_fields"]["container.id"] = json!(format!("{i:012x}"));
    })
    .iter()
    .flat_map(|alert| {
        let mut line = serde_json::to_vec(alert).expect("serialise");
        line.push(b'\n');
        line
    })
    .collect();

    let audit = fixture("audit/webhook-eventlist.json");
    let items = replicate(audit["items"].as_array().expect("items"), 400, |item, i| {
        item["auditID"] = json!(format!("bench-{i}"));
    });
    let audit = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});

    let mut trivy = fixture("trivy/vulnerabilityreport.json");
    let vulns = replicate(
        trivy["report"]["vulnerabilities"]
            .as_array()
            .expect("vulns"),
        300,
        |v, i| {
            v["vulnerabilityID"] = json!(format!("CVE-2026-{i:05}"));
        },
    );
    trivy["report"]["vulnerabilities"] = Value::Array(vulns);

    let mut kyverno = fixture("kyverno/policyreport.json");
    let results = replicate(
        kyverno["results"].as_array().expect("results"),
        120,
        |r, i| {
            r["policy"] = json!(format!("policy-{i}"));
        },
    );
    kyverno["results"] = Value::Array(results);

    let mut bench = fixture("kube-bench/controls-and-totals.json");
    let group = bench["Controls"][0]["tests"][1].clone();
    let checks = replicate(group["results"].as_array().expect("checks"), 120, |c, i| {
        c["test_number"] = json!(format!("4.2.{i}"));
    });
    bench["Controls"][0]["tests"][1]["results"] = Value::Array(checks);

    let mut checkov = fixture("checkov/single-framework.json");
    let failed = replicate(
        checkov["results"]["failed_checks"]
            .as_array()
            .expect("failed"),
        200,
        |r, i| {
            r["resource"] = json!(format!("Deployment.shop.app-{i}"));
        },
    );
    checkov["results"]["failed_checks"] = Value::Array(failed);

    let generic = fixture("generic/array-of-objects.json");
    let generic = Value::Array(replicate(
        generic.as_array().expect("array"),
        1000,
        |o, i| {
            o["rule"] = json!(format!("rule-{}", i % 50));
        },
    ));

    let bytes = |v: &Value| serde_json::to_vec(v).expect("serialise");
    vec![
        (Format::Falco, "one alert", bytes(&falco)),
        (Format::Falco, "NDJSON of 1000", falco_stream),
        (Format::Audit, "EventList of 400", bytes(&audit)),
        (Format::Trivy, "VulnerabilityReport of 300", bytes(&trivy)),
        (
            Format::Kyverno,
            "PolicyReport of 120 results",
            bytes(&kyverno),
        ),
        (Format::KubeBench, "123 checks", bytes(&bench)),
        (Format::Checkov, "200 failed checks", bytes(&checkov)),
        (Format::Generic, "array of 1000", bytes(&generic)),
    ]
}

fn normalize(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    let ctx = Context {
        received_at: "2026-03-02T12:00:00Z".parse().expect("time"),
        node: Some("worker-1".to_owned()),
    };
    for (format, shape, payload) in payloads() {
        let out = normalizer
            .normalize(format, &payload, &ctx)
            .expect("readable");
        assert!(out.errors.is_empty(), "{format}: {:?}", out.errors);
        let events = out.events.len() as u64;
        let name = format!(
            "{format} ({shape}, {} bytes, {events} events)",
            payload.len()
        );
        for (unit, throughput) in [
            ("events", Throughput::Elements(events)),
            ("bytes", Throughput::Bytes(payload.len() as u64)),
        ] {
            let mut group = c.benchmark_group(format!("normalize/{unit}"));
            group.throughput(throughput);
            group.bench_function(&name, |b| {
                b.iter(|| {
                    normalizer
                        .normalize(format, black_box(&payload), &ctx)
                        .expect("readable")
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = normalize
}
criterion_main!(benches);
