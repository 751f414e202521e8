//! What the store's tests share: events as the pipeline hands them to a sink.

#![allow(dead_code)] // each test binary uses its part

use zen_model::{Context, Event, Format, Normalizer};
use zen_sink::{Kept, Sink};

/// Writes `events` as the pipeline would, each with a sequence number of its own.
pub(crate) fn write(
    sink: &mut dyn Sink,
    source: &str,
    events: &[Event],
) -> Result<(), zen_sink::SinkError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seqs: Vec<u64> = events
        .iter()
        .map(|_| NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .collect();
    sink.write(source, &numbered(events, seqs))
}

/// `events` with the sequence numbers `seqs`, in order.
pub(crate) fn numbered(events: &[Event], seqs: impl IntoIterator<Item = u64>) -> Vec<Kept> {
    events
        .iter()
        .cloned()
        .zip(seqs)
        .map(|(event, seq)| Kept { seq, event })
        .collect()
}

pub(crate) fn events() -> Vec<Event> {
    let ctx = Context {
        received_at: "2026-03-02T12:00:00Z".parse().unwrap(),
        node: Some("w1".into()),
    };
    let n = Normalizer::default();
    let mut out = Vec::new();
    let falco = r#"{"rule":"Terminal shell in container","priority":"Critical","time":"2026-02-11T09:01:02.123456789Z","hostname":"node-1",
        "tags":["shell"],"output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart","evt.time":1770800462123456789}}"#;
    out.extend(
        n.normalize(Format::Falco, falco.as_bytes(), &ctx)
            .unwrap()
            .events,
    );
    let trivy = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../zen-model/tests/data/trivy/vulnerabilityreport.json"
    ))
    .unwrap();
    out.extend(n.normalize(Format::Trivy, &trivy, &ctx).unwrap().events);
    let bench = br#"[{"id":"4","version":"cis-1.10","tests":[{"section":"4.2","results":[{"test_number":"4.2.1","test_desc":"anonymous auth","status":"WARN"}]}]}]"#;
    out.extend(n.normalize(Format::KubeBench, bench, &ctx).unwrap().events);
    assert_eq!(out.len(), 7);
    assert!(
        out.iter().any(|e| e.labels.is_empty()) && out.iter().any(|e| !e.labels.is_empty()),
        "events with and without labels"
    );
    out
}
