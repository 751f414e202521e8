//! The JSON-lines sink on real files: one Observation a line, fsynced per batch, rotated by
//! size.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use zen_model::{Context, Format, Normalizer, Observation};
use zen_sink::{Kept, Sink};
use zen_store::{JsonlSink, JsonlTarget};

fn kept(n: usize) -> Vec<Kept> {
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
    let body: String = (0..n)
        .map(|i| {
            format!("{{\"rule\":\"r{i}\",\"priority\":\"Warning\",\"output_fields\":{{\"k8s.ns.name\":\"shop\",\"note\":\"a  b\"}}}}\n")
        })
        .collect();
    Normalizer::default()
        .normalize(Format::Falco, body.as_bytes(), &ctx)
        .unwrap()
        .events
        .into_iter()
        .zip(0..)
        .map(|(event, seq)| Kept { seq, event })
        .collect()
}

fn lines(path: &std::path::Path) -> Vec<Observation> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn observations_are_appended_one_a_line_and_rotated_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("observations.jsonl");
    let target = |max_bytes| JsonlTarget::File {
        path: path.clone(),
        max_bytes,
        keep: 2,
    };
    let mut sink = JsonlSink::open(target(u64::MAX)).unwrap();
    let all = kept(12);
    sink.write("falco", &all[..3]).unwrap();
    let written = lines(&path);
    assert_eq!(written.len(), 3);
    assert_eq!(written[0].event.rule_id.as_deref(), Some("r0"));
    assert_eq!(written[0].count, 1);
    let three = std::fs::metadata(&path).unwrap().len();
    // Reopened, it appends; past 2.5 batches of three it rotates: PATH.1, then PATH.2, and no
    // more than two are kept.
    drop(sink);
    let max = three * 5 / 2;
    let mut sink = JsonlSink::open(target(max)).unwrap();
    sink.write("falco", &all[3..6]).unwrap();
    assert_eq!(lines(&path).len(), 6);
    for batch in 0..6 {
        sink.write("falco", &all[batch..batch + 3]).unwrap();
    }
    let rotated = |n: usize| dir.path().join(format!("observations.jsonl.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "only two rotated files are kept");
    for p in [path.clone(), rotated(1), rotated(2)] {
        let size = std::fs::metadata(&p).unwrap().len();
        assert!(size <= max, "{}: {size} bytes", p.display());
        assert!(!lines(&p).is_empty(), "{}", p.display());
    }
}
