//! The inputs of the hot path's instruction-count benchmarks (`benches/hot_path.rs`, run under
//! callgrind by gungraun) and the regression gate's baseline (`baseline.json`, read and written
//! by `cargo xtask bench gate`). Inputs are fixed — the reference payloads of zen-model's tests,
//! replicated with numbered variations, and a seeded mix of repeats — so that the counts repeat
//! from run to run and machine to machine; no clock is read inside a measured body.

use std::path::Path;

use serde_json::{Value, json};

/// Set (to anything) for the slowed build the gate's own test uses: one benchmark does its work
/// twice, and the gate must fail.
pub const SLOW_ENV: &str = "ZEN_BENCH_SLOW";

/// The path of `fixed_random.c` built as a shared library, which the gate sets so that the
/// benchmarks run with it preloaded: `getrandom` answers the same bytes in every run, so the
/// hash maps of the crates we do not control (the Prometheus exporter's) are seeded alike.
pub const PRELOAD_ENV: &str = "ZEN_BENCH_PRELOAD";

/// Whether this is the slowed build.
pub fn slowed() -> bool {
    std::env::var_os(SLOW_ENV).is_some()
}

/// A reference payload of zen-model's tests, parsed.
///
/// # Panics
/// When the file is missing or not JSON: a broken checkout, not an input.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../zen-model/tests/data")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One Falco alert as `http_output` posts it.
pub fn falco_alert() -> Vec<u8> {
    serde_json::to_vec(&fixture("falco/http-output.json")).unwrap_or_default()
}

/// `n` Falco alerts as NDJSON, each of another container.
pub fn falco_ndjson(n: usize) -> Vec<u8> {
    let alert = fixture("falco/http-output.json");
    let mut out = Vec::new();
    for i in 0..n {
        let mut a = alert.clone();
        a["output_fields"]["container.id"] = json!(format!("{i:012x}"));
        out.extend(serde_json::to_vec(&a).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

/// An audit `EventList` of `n` items, numbered.
pub fn audit_eventlist(n: usize) -> Vec<u8> {
    let list = fixture("audit/webhook-eventlist.json");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let mut item = items[i % items.len()].clone();
            item["auditID"] = json!(format!("bench-{i}"));
            item
        })
        .collect();
    serde_json::to_vec(&json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}))
        .unwrap_or_default()
}

/// A Trivy `VulnerabilityReport` of `n` vulnerabilities, numbered.
pub fn trivy_report(n: usize) -> Vec<u8> {
    let mut report = fixture("trivy/vulnerabilityreport.json");
    let vulns = report["report"]["vulnerabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let vulns: Vec<Value> = (0..n)
        .map(|i| {
            let mut v = vulns[i % vulns.len()].clone();
            v["vulnerabilityID"] = json!(format!("CVE-2026-{i:05}"));
            v
        })
        .collect();
    report["report"]["vulnerabilities"] = Value::Array(vulns);
    serde_json::to_vec(&report).unwrap_or_default()
}

/// `n` Falco alerts, one a line, of a seeded mix: 40 % repeat one of the last 100 findings, 30 %
/// of findings in the namespace `noisy`, four priorities.
pub fn falco_mix(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ids: Vec<u64> = Vec::with_capacity(n);
    let mut out = Vec::new();
    for i in 0..n {
        let id = if i > 0 && next() % 100 < 40 {
            ids[i - 1 - (next() as usize % i.min(100))]
        } else {
            next()
        };
        ids.push(id);
        let ns = if id % 10 < 3 { "noisy" } else { "shop" };
        let priority = ["Critical", "Error", "Warning", "Notice"][(id % 4) as usize];
        out.extend(format!(
            r#"{{"hostname":"worker-7","output":"Shell spawned in a container (container={id:x})","priority":"{priority}","rule":"Terminal shell in container","source":"syscall","time":"2026-02-11T09:01:02.123456789Z","output_fields":{{"container.id":"{id:x}","k8s.ns.name":"{ns}","k8s.pod.name":"pod-{id:x}","proc.name":"bash"}}}}"#
        ).bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_the_same_every_time_and_read_as_json() {
        assert_eq!(falco_mix(50), falco_mix(50));
        assert_eq!(falco_ndjson(3).split(|&b| b == b'\n').count(), 4);
        for body in [falco_alert(), audit_eventlist(5), trivy_report(5)] {
            assert!(serde_json::from_slice::<Value>(&body).is_ok());
        }
    }
}
