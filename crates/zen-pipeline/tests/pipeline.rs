//! The pipeline end to end, on its real threads, with sinks whose behaviour the tests control.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zen_dedup::DuplicateUpdate;
use zen_model::{Context, Event, Format, Normalizer, Severity, Syntax};
use zen_pipeline::{
    BatchSettings, Kept, Pipeline, PipelineConfig, ProcessingOrder, RetryPolicy, Sink, SinkError,
    Submission, SubmitError,
};

/// Falco alerts: `distinct` different findings, `n` alerts in all (so `n - distinct` repeats),
/// every third one in namespace `noisy`.
fn alerts(n: usize, distinct: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let id = i % distinct;
        let ns = if id.is_multiple_of(3) {
            "noisy"
        } else {
            "shop"
        };
        let priority = ["Critical", "Warning", "Notice"][id % 3];
        out.extend(
            format!(
                r#"{{"rule":"Terminal shell in container","priority":"{priority}","time":"2026-02-11T09:01:02Z","output_fields":{{"container.id":"c{id}","k8s.ns.name":"{ns}","k8s.pod.name":"p{id}"}}}}"#
            )
            .bytes(),
        );
        out.push(b'\n');
    }
    out
}

fn ctx() -> Context {
    Context::received_at("2026-02-11T09:01:03Z".parse().unwrap())
}

fn events(n: usize, distinct: usize) -> Vec<Event> {
    Normalizer::default()
        .normalize(Format::Falco, &alerts(n, distinct), &ctx())
        .unwrap()
        .events
}

/// Records what it is given; fails as told.
#[derive(Clone, Default)]
struct Recording {
    written: Arc<Mutex<Vec<Event>>>,
    duplicates: Arc<Mutex<Vec<DuplicateUpdate>>>,
    /// Fail this many writes (retryably) before succeeding.
    flaky: Arc<AtomicUsize>,
    /// Reject every batch of this source for good.
    refuse: Option<&'static str>,
    /// Reject this many writes for good (not retryably), then take them.
    refuse_next: Arc<AtomicUsize>,
    /// Block writes until set to 0.
    hold: Arc<AtomicU64>,
    /// Events per successful write, in order.
    write_sizes: Arc<Mutex<Vec<usize>>>,
}

impl Sink for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn write(&mut self, source: &str, events: &[Kept]) -> Result<(), SinkError> {
        while self.hold.load(Ordering::SeqCst) != 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let refuse_this = self
            .refuse_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.refuse == Some(source) || refuse_this {
            return Err(SinkError {
                message: "never".into(),
                retryable: false,
            });
        }
        if self.flaky.load(Ordering::SeqCst) > 0 {
            self.flaky.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError {
                message: "database is locked".into(),
                retryable: true,
            });
        }
        self.written
            .lock()
            .unwrap()
            .extend(events.iter().map(|k| k.event.clone()));
        self.write_sizes.lock().unwrap().push(events.len());
        Ok(())
    }
    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        self.duplicates.lock().unwrap().extend_from_slice(updates);
        Ok(())
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

fn start(config: PipelineConfig, sink: Recording) -> Pipeline {
    Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap()
}

/// A pipeline whose queue holds `capacity` events, behind a sink that holds every write until
/// its `hold` is set to 0.
fn held(capacity: usize) -> (Recording, Pipeline) {
    let sink = Recording::default();
    sink.hold.store(1, Ordering::SeqCst);
    let config = PipelineConfig {
        queue_capacity: capacity,
        ..PipelineConfig::default()
    };
    let p = start(config, sink.clone());
    (sink, p)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn payloads_come_out_filtered_deduplicated_and_counted() {
    let sink = Recording::default();
    let mut config = PipelineConfig {
        retry: quick_retries(),
        ..PipelineConfig::default()
    };
    config.filter.global.exclude_namespaces = vec!["noisy".to_owned()];
    let p = start(config, sink.clone());
    // 300 alerts of 30 findings: 270 repeats; 10 of the 30 findings are in `noisy`.
    let read = p
        .read(Format::Falco, Syntax::Json, &alerts(300, 30), &ctx())
        .unwrap();
    p.try_submit(Submission::now(read.events)).unwrap();
    let report = p.shutdown(soon());
    assert!(report.drained);
    let c = report.counts;
    assert_eq!(c.received, 300);
    assert_eq!(c.written, 20);
    assert_eq!(
        c.written + c.filtered + c.deduplicated + c.dead_lettered,
        c.received
    );
    assert_eq!(c.in_flight(), 0);
    let by: Vec<_> = c.filtered_by().collect();
    assert_eq!(by, [(zen_filter::DropReason::Namespace, c.filtered)]);
    let written = sink.written.lock().unwrap();
    assert!(
        written
            .iter()
            .all(|e| e.namespace.as_deref() == Some("shop"))
    );
    let applied: u64 = sink
        .duplicates
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.duplicates)
        .sum();
    assert_eq!(
        applied, c.deduplicated,
        "every duplicate reaches the sink as a count"
    );
}

#[test]
fn batches_are_per_source_and_most_severe_first() {
    let sink = Recording::default();
    let config = PipelineConfig {
        batch: BatchSettings::default(),
        ..PipelineConfig::default()
    };
    let p = start(config, sink.clone());
    p.try_submit(Submission::now(events(9, 9))).unwrap();
    p.shutdown(soon());
    let written = sink.written.lock().unwrap();
    let severities: Vec<Severity> = written.iter().map(|e| e.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "one batch of nine, critical first");
}

#[test]
fn a_full_queue_is_refused_at_once_and_everything_is_processed_after() {
    let (sink, p) = held(4);
    let mut refused = 0;
    let mut accepted = 0;
    for i in 0..2_000 {
        match p.try_submit(Submission::now(fifteen(i))) {
            Ok(()) => accepted += 1,
            Err(SubmitError::Full(_)) => refused += 1,
            Err(SubmitError::Closed(_)) => unreachable!(),
        }
    }
    assert!(refused > 0, "the queue filled up");
    sink.hold.store(0, Ordering::SeqCst);
    let report = p.shutdown(soon());
    assert!(report.drained);
    assert_eq!(report.counts.rejected_full, refused);
    assert_eq!(report.counts.written, accepted * 15);
}

/// Fifteen distinct alerts, none a repeat of those of another `i`.
fn fifteen(i: u128) -> Vec<Event> {
    events(15, 15)
        .into_iter()
        .map(|mut e| {
            e.fingerprint.0 += i * 1000;
            e
        })
        .collect()
}

#[tokio::test]
async fn submit_waits_for_room_then_is_refused_once() {
    let (sink, p) = held(4);
    // Fill the queue until it has refused for 200 ms: the processor, its hand-off to the held
    // sink full, has stopped taking events out.
    let mut i = 0;
    let mut full_since: Option<Instant> = None;
    loop {
        if p.try_submit(Submission::now(fifteen(i))).is_ok() {
            i += 1;
            full_since = None;
        } else if full_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(200)
        {
            break;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let accepted = i;
    let refused_before = p.counts().rejected_full;
    // Still full: refused after the wait, and counted once.
    let started = Instant::now();
    let wait = Duration::from_millis(100);
    let refused = p.submit(Submission::now(fifteen(i)), wait).await;
    assert!(matches!(refused, Err(SubmitError::Full(_))));
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert_eq!(p.counts().rejected_full, refused_before + 1);
    // Room freed within the wait: taken.
    let release = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sink.hold.store(0, Ordering::SeqCst);
    };
    let (taken, ()) = tokio::join!(
        p.submit(Submission::now(fifteen(i + 1)), Duration::from_secs(10)),
        release
    );
    taken.unwrap();
    let report = p.shutdown(soon());
    assert_eq!(report.counts.rejected_full, refused_before + 1);
    assert_eq!(report.counts.written, (accepted as u64 + 1) * 15);
}

#[test]
fn the_queue_is_bounded_in_events_not_submissions() {
    // Submissions of `size` events until the queue refuses one, behind a sink that takes nothing:
    // the events accepted are the queue's 1,000, plus what the processor holds (64 batches
    // waiting for the sink, one in hand, one open per source: under 2,000).
    let accepted_until_full = |size: u128| {
        let (sink, p) = held(1_000);
        let mut accepted = 0;
        for i in 0..10_000u128 {
            let batch = events(size as usize, size as usize)
                .into_iter()
                .enumerate()
                .map(|(j, mut e)| {
                    e.fingerprint.0 += (i << 32) + j as u128;
                    e
                })
                .collect();
            match p.try_submit(Submission::now(batch)) {
                Ok(()) => accepted += size,
                Err(SubmitError::Full(_)) => break,
                Err(SubmitError::Closed(_)) => unreachable!(),
            }
        }
        sink.hold.store(0, Ordering::SeqCst);
        assert!(p.shutdown(soon()).drained);
        accepted
    };
    let singles = accepted_until_full(1);
    let hundreds = accepted_until_full(100);
    assert!((1_000..3_000).contains(&singles), "{singles}");
    assert!((1_000..3_000).contains(&hundreds), "{hundreds}");
}

#[test]
fn sink_failures_are_retried_then_dead_lettered() {
    let sink = Recording {
        refuse: Some("kube-bench"),
        ..Recording::default()
    };
    sink.flaky.store(2, Ordering::SeqCst);
    let config = PipelineConfig {
        retry: quick_retries(),
        ..PipelineConfig::default()
    };
    let p = start(config, sink.clone());
    p.try_submit(Submission::now(events(5, 5))).unwrap();
    let bench = br#"[{"id":"4","version":"cis-1.10","tests":[{"section":"4.2","results":[{"test_number":"4.2.1","status":"FAIL","scored":true}]}]}]"#;
    let ctx = Context {
        node: Some("n1".into()),
        ..ctx()
    };
    let read = p
        .read(Format::KubeBench, Syntax::Json, bench, &ctx)
        .unwrap();
    p.try_submit(Submission::now(read.events)).unwrap();
    let dead = p.dead_letters().clone();
    let report = p.shutdown(soon());
    assert_eq!(report.counts.written, 5, "retried past two failures");
    assert_eq!(report.counts.dead_lettered, 1);
    let letter = dead.try_recv().unwrap();
    assert_eq!(
        (letter.source.as_str(), letter.events.len(), letter.attempts),
        ("kube-bench", 1, 1)
    );
}

#[test]
fn unreadable_payloads_are_counted_and_disturb_nothing() {
    let sink = Recording::default();
    let p = start(PipelineConfig::default(), sink.clone());
    assert!(
        p.read(Format::Falco, Syntax::Json, b"{\"rule\": ", &ctx())
            .is_err()
    );
    let read = p
        .read(Format::Falco, Syntax::Json, b"{\"rule\":\"r\"}", &ctx())
        .unwrap();
    p.try_submit(Submission::now(read.events)).unwrap();
    p.try_submit(Submission::now(events(3, 3))).unwrap();
    let c = p.shutdown(soon()).counts;
    assert_eq!((c.parse_errors, c.received, c.written), (2, 3, 3));
}

#[test]
fn the_books_balance_under_concurrent_producers_and_a_flaky_sink() {
    let sink = Recording {
        refuse: Some("generic"),
        ..Recording::default()
    };
    sink.flaky.store(20, Ordering::SeqCst);
    let mut config = PipelineConfig {
        queue_capacity: 8,
        retry: quick_retries(),
        ..PipelineConfig::default()
    };
    config.filter.global.exclude_namespaces = vec!["noisy".to_owned()];
    let p = Arc::new(start(config, sink.clone()));
    let submitted = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..4u128)
        .map(|t| {
            let (p, submitted) = (p.clone(), submitted.clone());
            std::thread::spawn(move || {
                let generic = Normalizer::default()
                    .normalize(
                        Format::Generic,
                        br#"{"severity":"low","rule":"g","message":"m"}"#,
                        &ctx(),
                    )
                    .unwrap()
                    .events;
                for round in 0..200u128 {
                    let mut batch = events(12, 8);
                    for e in &mut batch {
                        e.fingerprint.0 ^= (t << 100) | (round / 4) << 64;
                    }
                    batch.extend(generic.iter().cloned());
                    let n = batch.len() as u64;
                    let mut submission = Submission::now(batch);
                    loop {
                        match p.try_submit(submission) {
                            Ok(()) => break,
                            Err(SubmitError::Full(s)) => {
                                submission = s;
                                std::thread::yield_now();
                            }
                            Err(SubmitError::Closed(_)) => unreachable!(),
                        }
                    }
                    submitted.fetch_add(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    let p = Arc::into_inner(p).unwrap();
    let report = p.shutdown(soon());
    assert!(report.drained);
    let c = report.counts;
    assert_eq!(c.received, submitted.load(Ordering::SeqCst));
    assert_eq!(
        c.written + c.filtered + c.deduplicated + c.dead_lettered,
        c.received,
        "{c:?}"
    );
    assert!(
        c.written > 0 && c.filtered > 0 && c.deduplicated > 0 && c.dead_lettered > 0,
        "{c:?}"
    );
    assert_eq!(c.written, sink.written.lock().unwrap().len() as u64);
}

#[test]
fn auto_order_follows_what_drops_more() {
    let mut config = PipelineConfig {
        order: ProcessingOrder::Auto,
        ..PipelineConfig::default()
    };
    config.filter.global.exclude_namespaces = vec!["noisy".to_owned()];
    let mut processor = zen_pipeline::processor(&config);
    let now = Instant::now();
    let mut out = Vec::new();
    assert_eq!(processor.current_order(), ProcessingOrder::FilterFirst);
    // Nearly all repeats of two findings in `shop`: de-duplication drops far more.
    let repeats: Vec<Event> = events(5000, 3)
        .into_iter()
        .filter(|e| e.namespace.as_deref() == Some("shop"))
        .collect();
    processor.process(now, repeats.clone(), now, &mut out);
    processor.process(now, repeats, now, &mut out);
    assert_eq!(processor.current_order(), ProcessingOrder::DedupFirst);
    // All distinct and all filtered: filtering drops more.
    let noisy: Vec<Event> = (0..9000u128)
        .map(|i| {
            let mut e = events(1, 1).remove(0);
            e.fingerprint.0 = i + 1_000_000;
            e
        })
        .collect();
    processor.process(now, noisy, now, &mut out);
    assert_eq!(processor.current_order(), ProcessingOrder::FilterFirst);
}

#[test]
fn shutdown_gives_up_at_the_deadline_when_the_sink_hangs() {
    let sink = Recording::default();
    sink.hold.store(1, Ordering::SeqCst);
    let p = start(PipelineConfig::default(), sink.clone());
    p.try_submit(Submission::now(events(20, 20))).unwrap();
    let started = Instant::now();
    let report = p.shutdown(Instant::now() + Duration::from_millis(200));
    assert!(!report.drained);
    assert!(started.elapsed() < Duration::from_secs(2));
    sink.hold.store(0, Ordering::SeqCst);
}

#[test]
fn an_acknowledged_submission_hears_back_once_every_event_has_an_outcome() {
    let sink = Recording {
        refuse: Some("generic"),
        ..Recording::default()
    };
    let mut config = PipelineConfig {
        retry: quick_retries(),
        ..PipelineConfig::default()
    };
    config.filter.global.exclude_namespaces = vec!["noisy".to_owned()];
    // Batches would wait a minute for their age; an acknowledged submission must not.
    config.batch.batch.max_age = Duration::from_secs(60);
    let p = start(config, sink.clone());
    // 30 alerts of 9 findings (21 repeats); 3 of the 9 in `noisy`.
    let (tx, rx) = std::sync::mpsc::channel();
    let (written, duplicates) = (sink.written.clone(), sink.duplicates.clone());
    let ack = zen_pipeline::Ack::new(30, move |outcome| {
        let counted: u64 = duplicates
            .lock()
            .unwrap()
            .iter()
            .map(|u| u.duplicates)
            .sum();
        tx.send((outcome, written.lock().unwrap().len(), counted))
            .unwrap();
    });
    p.try_submit(Submission {
        ack: Some(ack),
        ..Submission::now(events(30, 9))
    })
    .unwrap();
    let (outcome, written_when_told, counted_when_told) =
        rx.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(
        outcome,
        zen_pipeline::AckOutcome {
            settled: 30,
            dead_lettered: 0
        }
    );
    assert_eq!(
        written_when_told, 6,
        "told only after the kept events were written"
    );
    // 10 of the 30 are in `noisy`; the other 20 are 6 findings and 14 repeats.
    assert_eq!(
        counted_when_told, 14,
        "and after the counts of their duplicates were applied"
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let generic = Normalizer::default()
        .normalize(
            Format::Generic,
            br#"[{"rule":"a","message":"m"},{"rule":"b","message":"m"}]"#,
            &ctx(),
        )
        .unwrap()
        .events;
    let ack = zen_pipeline::Ack::new(2, move |outcome| tx.send(outcome).unwrap());
    p.try_submit(Submission {
        ack: Some(ack),
        ..Submission::now(generic)
    })
    .unwrap();
    let outcome = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        outcome,
        zen_pipeline::AckOutcome {
            settled: 0,
            dead_lettered: 2
        }
    );
    p.shutdown(soon());
}

#[test]
fn a_backed_up_sink_gathers_waiting_batches_into_one_write() {
    let sink = Recording::default();
    sink.hold.store(1, Ordering::SeqCst);
    let p = start(PipelineConfig::default(), sink.clone());
    for round in 0..10u128 {
        let batch: Vec<Event> = events(15, 15)
            .into_iter()
            .map(|mut e| {
                e.fingerprint.0 ^= round << 64;
                e
            })
            .collect();
        p.try_submit(Submission::now(batch)).unwrap();
    }
    // Let the batches reach the sink's queue behind the held write.
    std::thread::sleep(Duration::from_millis(200));
    sink.hold.store(0, Ordering::SeqCst);
    let c = p.shutdown(soon()).counts;
    assert_eq!(c.written, 150);
    let sizes = sink.write_sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 150);
    assert!(
        sizes.len() < 10 && sizes.iter().any(|&n| n > 15),
        "batches of 15 were gathered: {sizes:?}"
    );
}

#[test]
fn a_dead_lettered_finding_seen_again_is_written_not_counted_on_nothing() {
    let sink = Recording::default();
    sink.refuse_next.store(1, Ordering::SeqCst);
    let p = start(PipelineConfig::default(), sink.clone());
    let dead = p.dead_letters().clone();
    p.try_submit(Submission::now(events(1, 1))).unwrap();
    let letter = dead.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(letter.events.len(), 1);
    // The deduper remembered the finding, but its row was never written: the next sighting (a
    // replay of the dead letter, or the source again) is new.
    p.try_submit(Submission::now(letter.events)).unwrap();
    let c = p.shutdown(soon()).counts;
    assert_eq!((c.written, c.deduplicated, c.dead_lettered), (1, 0, 1));
    assert_eq!(sink.written.lock().unwrap().len(), 1);
}

#[test]
fn a_retuned_batch_age_and_size_apply_to_open_and_later_batches() {
    let sink = Recording::default();
    let mut config = PipelineConfig::default();
    config.batch.batch.max_age = Duration::from_secs(3_600);
    config.batch.batch.max_size = 1_000;
    let p = start(config, sink.clone());
    p.try_submit(Submission::now(events(3, 3))).unwrap();
    // An hour's age and room for a thousand: nothing is written.
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.written.lock().unwrap().is_empty());
    p.tune(zen_pipeline::Tuning {
        max_batch_size: 2,
        max_batch_age: Duration::from_millis(5),
    });
    assert_eq!(p.tuning().max_batch_size, 2);
    // The change is taken at the thread's next wake: the next submission (a duplicate here,
    // folded, so only the three are written).
    p.try_submit(Submission::now(events(1, 1))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.written.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the open batch was not flushed by the new rules"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    p.shutdown(soon());
    let sizes = sink.write_sizes.lock().unwrap();
    assert_eq!(sizes.iter().sum::<usize>(), 3, "{sizes:?}");
}
