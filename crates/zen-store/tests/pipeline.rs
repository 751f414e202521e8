//! The pipeline writing into the store: the database agrees with the pipeline's accounting.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use zen_model::{Context, Format, Normalizer, Syntax};
use zen_pipeline::{Ack, Pipeline, PipelineConfig, ProcessingOrder, Submission};
use zen_store::Query;

#[test]
fn rows_and_counts_match_what_the_pipeline_says_it_did() {
    counts_match(false);
}

/// Acknowledged duplicates are journaled with the acknowledged write and settled later: once the
/// pipeline has stopped, every one is on its row.
#[test]
fn acknowledged_duplicates_are_settled_on_their_rows() {
    counts_match(true);
}

fn counts_match(acknowledged: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (store, sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    // Filtering first: filtered events never reach de-duplication, so every duplicate is of a
    // kept event.
    let mut config = PipelineConfig {
        order: ProcessingOrder::FilterFirst,
        ..PipelineConfig::default()
    };
    config.filter.global.exclude_namespaces = vec!["noisy".to_owned()];
    let p = Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap();
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
    // 500 alerts of 50 findings (450 repeats), one finding in five in `noisy`; in every round
    // after the first, one new finding beside them (`fresh`), so that repeats are counted both
    // with a write and on their own.
    for round in 0..10 {
        let fresh = (round > 0).then(|| format!(r#"{{"rule":"fresh{round}","priority":"Warning","time":"2026-02-11T09:00:00Z","output_fields":{{"k8s.ns.name":"shop"}}}}"#) + "\n");
        let body: String = (0..50)
            .map(|i| {
                let ns = if i % 5 == 0 { "noisy" } else { "shop" };
                format!(r#"{{"rule":"r{i}","priority":"Warning","time":"2026-02-11T09:0{round}:00Z","output_fields":{{"k8s.ns.name":"{ns}"}}}}"#) + "\n"
            })
            .chain(fresh.filter(|_| round % 2 == 1))
            .collect();
        let read = p
            .read(Format::Falco, Syntax::Json, body.as_bytes(), &ctx)
            .unwrap();
        let mut submission = Submission::now(read.events);
        if acknowledged {
            let (tx, rx) = std::sync::mpsc::channel();
            let n = submission.events.len();
            submission.ack = Some(Ack::new(n, move |outcome| tx.send(outcome).unwrap()));
            p.try_submit(submission).unwrap();
            let outcome = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!((outcome.settled, outcome.dead_lettered), (n, 0));
        } else {
            p.try_submit(submission).unwrap();
        }
    }
    let report = p.shutdown(Instant::now() + Duration::from_secs(30));
    assert!(report.drained);
    let c = report.counts;
    assert_eq!(c.received, 505);
    assert_eq!(
        c.written + c.filtered + c.deduplicated + c.dead_lettered,
        c.received
    );

    let rows = store
        .list(&Query {
            limit: 1000,
            ..Query::default()
        })
        .unwrap()
        .items;
    assert_eq!(rows.len() as u64, c.written);
    let occurrences: u64 = rows.iter().map(|s| s.observation.count).sum();
    assert_eq!(
        occurrences,
        c.written + c.deduplicated,
        "every duplicate is counted on its row"
    );
    assert!(
        rows.iter()
            .all(|s| s.observation.event.namespace.as_deref() == Some("shop"))
    );
    assert!(rows.iter().all(|s| {
        let o = &s.observation;
        match o
            .event
            .rule_id
            .as_deref()
            .is_some_and(|r| r.starts_with("fresh"))
        {
            true => o.count == 1,
            false => o.count == 10 && o.last_seen > o.first_seen,
        }
    }));
}

#[test]
fn a_duplicate_counted_while_its_first_sighting_waits_in_a_batch_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (store, sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    // A batch waits up to 2 s for more events; duplicate counts are handed on every 20 ms. The
    // first count goes out while the event it belongs to still waits.
    let mut config = PipelineConfig {
        duplicate_flush_interval: Duration::from_millis(20),
        ..PipelineConfig::default()
    };
    config.batch.batch.max_age = Duration::from_secs(2);
    let p = Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap();
    let ctx = Context::received_at("2026-02-11T09:01:03Z".parse().unwrap());
    let alert = |second: u32| {
        let body = format!(
            r#"{{"rule":"r","priority":"Warning","time":"2026-02-11T09:00:{second:02}Z"}}"#
        );
        Submission::now(
            p.read(Format::Falco, Syntax::Json, body.as_bytes(), &ctx)
                .unwrap()
                .events,
        )
    };
    p.try_submit(alert(1)).unwrap();
    p.try_submit(alert(2)).unwrap();
    // Long enough for several hand-offs of duplicate counts, well before the batch's age.
    std::thread::sleep(Duration::from_millis(300));
    let report = p.shutdown(Instant::now() + Duration::from_secs(30));
    assert!(report.drained);
    assert_eq!((report.counts.written, report.counts.deduplicated), (1, 1));
    let rows = store.list(&Query::default()).unwrap().items;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].observation.count, 2,
        "the duplicate is counted on its row"
    );
    assert_eq!(
        store.counts().unwrap().by_source_severity[0].3,
        2,
        "and in the kept counts"
    );
}
