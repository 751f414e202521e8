//! The store on a real PostgreSQL (Debian's, started by the test on a loopback port): what the
//! sink writes reads back; replicas writing at once merge the same finding into one row whose
//! count is the sum; retention, dead letters, the audit log, tail positions and report
//! findings as with SQLite; an outage fails writes retryably and writing resumes by itself.
//! Without PostgreSQL the tests skip loudly (and fail under `ZEN_REQUIRE_EXTERNAL=1`).

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::time::Duration;

use zen_dedup::DuplicateUpdate;
use zen_model::{Event, Fingerprint, Severity, Timestamp};
use zen_sink::{Findings, Positions, Sink, TailPosition};
use zen_store::testing::PgServer;
use zen_store::{PostgresSettings, Query, StoreError};

mod common;
use common::{events, numbered, write};

fn settings(url: &str) -> PostgresSettings {
    PostgresSettings {
        url: url.to_owned(),
        ca_file: None,
        dedup_window: Duration::from_secs(3600),
        remembered: 100_000,
    }
}

fn open(url: &str) -> (zen_store::Store, zen_store::PostgresSink) {
    zen_store::open_postgres(&settings(url)).unwrap()
}

/// Rows and occurrences by source and severity, summed from the rows themselves.
fn counted_from_rows(url: &str) -> Vec<(String, Severity, u64, u64)> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query(
            "SELECT source, severity, COUNT(*), SUM(count)::BIGINT FROM observations
             GROUP BY source, severity ORDER BY source, severity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                Severity::ALL[r.get::<_, i16>(1) as usize],
                r.get::<_, i64>(2) as u64,
                r.get::<_, i64>(3) as u64,
            )
        })
        .collect()
}

#[test]
fn what_is_written_reads_back_exactly_filtered_and_paged() {
    let Some(pg) = PgServer::start_or_skip("postgres::what_is_written_reads_back_exactly") else {
        return;
    };
    let url = pg.database("readback");
    let (store, mut sink) = open(&url);
    assert_eq!(store.kind(), "postgres");
    let events = events();
    write(&mut sink, "falco", &events[..1]).unwrap();
    write(&mut sink, "trivy", &events[1..6]).unwrap();
    write(&mut sink, "kube-bench", &events[6..]).unwrap();
    let page = store.list(&Query::default()).unwrap();
    assert_eq!((page.items.len(), page.next), (7, None));
    let back: Vec<Event> = page
        .items
        .iter()
        .rev()
        .map(|s| s.observation.event.clone())
        .collect();
    for (b, e) in back.iter().zip(&events) {
        assert_eq!(b.details.get(), e.details.get());
        assert_eq!(b, e);
    }
    let first = store.get(page.items.last().unwrap().id).unwrap().unwrap();
    assert_eq!(first.observation.count, 1);
    assert_eq!(store.get(999_999).unwrap(), None);

    // Filters narrow as SQLite's do; the text search ignores case and its own wildcards.
    let list = |q: Query| store.list(&q).unwrap().items.len();
    let q = |f: fn(&mut Query)| {
        let mut q = Query::default();
        f(&mut q);
        q
    };
    assert_eq!(list(q(|q| q.source = Some("trivy".into()))), 5);
    assert_eq!(
        list(q(|q| q.min_severity = Some(Severity::Critical))),
        events
            .iter()
            .filter(|e| e.severity >= Severity::Critical)
            .count()
    );
    assert_eq!(
        list(q(|q| q.namespace = Some("shop".into()))),
        events
            .iter()
            .filter(|e| e.namespace.as_deref() == Some("shop"))
            .count()
    );
    assert_eq!(list(q(|q| q.text = Some("TERMINAL SHELL".into()))), 1);
    assert_eq!(list(q(|q| q.text = Some("%".into()))), 0);
    // Keyset pages of 3: every row once, newest first.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&Query {
                after,
                limit: 3,
                ..Query::default()
            })
            .unwrap();
        seen.extend(page.items.iter().map(|s| s.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let since = events.iter().map(|e| e.detected_at).min().unwrap();
    let top = store
        .top(zen_store::TopBy::Rule, since, Timestamp::MAX, 10)
        .unwrap();
    assert_eq!(top.iter().map(|t| t.observations).sum::<u64>(), 7);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&url)
    );
}

#[test]
fn replicas_merge_the_same_finding_into_one_row_whose_count_is_the_sum() {
    let Some(pg) = PgServer::start_or_skip("postgres::replicas_merge") else {
        return;
    };
    let url = pg.database("merge");
    let e = events().remove(0);
    let later: Timestamp = "2026-02-11T09:05:00Z".parse().unwrap();
    let update = |seq, duplicates| DuplicateUpdate {
        fingerprint: e.fingerprint,
        seq,
        duplicates,
        last_seen: later,
    };
    // Two replicas, each with its own deduper: both keep the finding as new.
    let (store, mut a) = open(&url);
    let (_, mut b) = open(&url);
    a.write("falco", &numbered(std::slice::from_ref(&e), [0]))
        .unwrap();
    b.write("falco", &numbered(std::slice::from_ref(&e), [40]))
        .unwrap();
    a.apply_duplicates(&[update(0, 3)]).unwrap();
    b.apply_duplicates(&[update(40, 5)]).unwrap();
    // Counts and rows in one call, some of them of the very rows it writes.
    let other = events().remove(1);
    a.write_then_count(
        "trivy",
        &numbered(std::slice::from_ref(&other), [1]),
        &[
            update(0, 1),
            DuplicateUpdate {
                fingerprint: other.fingerprint,
                seq: 1,
                duplicates: 2,
                last_seen: later,
            },
        ],
    )
    .unwrap();
    let page = store.list(&Query::default()).unwrap();
    let counts: Vec<(Fingerprint, u64)> = page
        .items
        .iter()
        .map(|s| (s.observation.event.fingerprint, s.observation.count))
        .collect();
    assert_eq!(
        counts,
        [(other.fingerprint, 3), (e.fingerprint, 1 + 1 + 3 + 5 + 1)]
    );
    let kept = &page.items[1].observation;
    assert_eq!((kept.first_seen, kept.last_seen), (e.detected_at, later));
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&url)
    );
    // A sighting the sink never wrote counts nowhere.
    a.apply_duplicates(&[update(7, 5)]).unwrap();
    assert_eq!(
        counted_from_rows(&url).iter().map(|c| c.3).sum::<u64>(),
        11 + 3
    );
}

/// `n` copies of `e`, fingerprints `from..from + n`.
fn distinct(e: &Event, from: u128, n: u128) -> Vec<Event> {
    (from..from + n)
        .map(|fp| Event {
            fingerprint: Fingerprint(fp),
            ..e.clone()
        })
        .collect()
}

#[test]
fn three_replicas_writing_at_once_stay_exact() {
    let Some(pg) = PgServer::start_or_skip("postgres::three_replicas_writing_at_once") else {
        return;
    };
    let url = pg.database("replicas");
    let template = events().remove(0);
    let (store, _) = open(&url);
    // Each replica writes 40 batches of 100: its own 2,000 findings and 2,000 every replica
    // also writes, in another order, with a duplicate count for each of its batches' rows.
    std::thread::scope(|s| {
        for r in 0..3u128 {
            let (url, template) = (&url, &template);
            s.spawn(move || {
                let (_, mut sink) = open(url);
                let mut batches: Vec<Vec<Event>> = (0..20)
                    .map(|i| distinct(template, 1_000_000 * (r + 1) + i * 100, 100))
                    .chain((0..20).map(|i| distinct(template, i * 100, 100)))
                    .collect();
                batches.rotate_left(r as usize * 7);
                let mut seq = 0;
                for batch in batches {
                    let kept = numbered(&batch, seq..);
                    let updates: Vec<DuplicateUpdate> = kept
                        .iter()
                        .map(|k| DuplicateUpdate {
                            fingerprint: k.event.fingerprint,
                            seq: k.seq,
                            duplicates: 1,
                            last_seen: k.event.detected_at,
                        })
                        .collect();
                    seq += batch.len() as u64;
                    sink.write_then_count("falco", &kept, &updates).unwrap();
                }
            });
        }
    });
    let counted = counted_from_rows(&url);
    assert_eq!(counted.len(), 1);
    let (rows, occurrences) = (counted[0].2, counted[0].3);
    assert_eq!(rows, 3 * 2_000 + 2_000, "shared findings are one row each");
    assert_eq!(
        occurrences,
        3 * 4_000 * 2,
        "every sighting and duplicate counted once"
    );
    assert_eq!(store.counts().unwrap().by_source_severity, counted);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let shared: i64 = client
        .query_one("SELECT COUNT(*) FROM observations WHERE count = 6", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        shared, 2_000,
        "the shared findings' counts are the sums of three replicas"
    );
}

#[test]
fn retention_dead_letters_audit_positions_and_findings() {
    let Some(pg) = PgServer::start_or_skip("postgres::retention_dead_letters_audit") else {
        return;
    };
    let url = pg.database("beside");
    let (store, mut sink) = open(&url);
    let all = events();
    write(&mut sink, "x", &all).unwrap();

    // Report findings: open until resolved, open again when back, purged with their rows.
    let trivy: Vec<_> = all
        .iter()
        .filter(|e| e.source == "trivy")
        .map(|e| e.fingerprint)
        .collect();
    let report = "shop/vulnerabilityreport/cart";
    store
        .track(&trivy.iter().map(|&fp| (report, fp)).collect::<Vec<_>>())
        .unwrap();
    let at: Timestamp = "2026-03-03T08:00:00Z".parse().unwrap();
    assert_eq!(store.resolve(&trivy[..2], at).unwrap(), 2);
    assert_eq!(store.resolve(&trivy[..2], at).unwrap(), 0);
    let state = |state| {
        store
            .list(&Query {
                state: Some(state),
                ..Query::default()
            })
            .unwrap()
            .items
    };
    assert_eq!(state(zen_store::State::Resolved).len(), 2);
    assert!(
        state(zen_store::State::Resolved)
            .iter()
            .all(|s| s.resolved_at == Some(at))
    );
    assert_eq!(state(zen_store::State::Open).len(), 5);
    store.track(&[(report, trivy[0])]).unwrap();
    assert_eq!(store.open().unwrap().len(), 4);

    // Retention: what was received before the cutoff goes, but what was seen again since.
    let cutoff = Timestamp::now();
    sink.apply_duplicates(&[DuplicateUpdate {
        fingerprint: all[0].fingerprint,
        seq: 0,
        duplicates: 1,
        last_seen: all[0].detected_at,
    }])
    .unwrap();
    assert_eq!(store.purge(cutoff).unwrap(), 6);
    assert_eq!(store.list(&Query::default()).unwrap().items.len(), 1);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&url)
    );
    assert_eq!(
        store.resolve(&trivy[1..2], at).unwrap(),
        0,
        "purged with its row"
    );

    // Dead letters: kept, paged, bounded, removed.
    let letter = |n: usize| zen_sink::DeadLetter {
        source: "falco".to_owned(),
        events: all.iter().cycle().take(n).cloned().collect(),
        error: "constraint failed".to_owned(),
        attempts: 2,
    };
    store.keep_dead_letter(&letter(2)).unwrap();
    store.keep_dead_letter(&letter(3)).unwrap();
    let (page, next) = store.dead_letters(None, 1).unwrap();
    assert_eq!((page.len(), page[0].letter.events.len()), (1, 3));
    let (rest, end) = store.dead_letters(next, 10).unwrap();
    assert_eq!((rest.len(), end, rest[0].letter.attempts), (1, None, 2));
    store
        .keep_dead_letter(&letter(zen_store::DEAD_LETTER_EVENTS as usize - 4))
        .unwrap();
    let counts = store.dead_letter_counts().unwrap();
    assert_eq!(
        (counts.letters, counts.events),
        (2, zen_store::DEAD_LETTER_EVENTS - 1),
        "the oldest letter went"
    );
    assert!(store.remove_dead_letter(page[0].id).unwrap());
    assert!(!store.remove_dead_letter(page[0].id).unwrap());

    // The audit log, newest first.
    for (i, status) in [200, 403, 204].into_iter().enumerate() {
        store
            .record_audit(&zen_store::AuditEntry {
                token: format!("t{i}"),
                action: "PUT /api/v1/alerts/rules".to_owned(),
                status,
            })
            .unwrap();
    }
    let (entries, next) = store.audit(None, 2).unwrap();
    let tokens: Vec<&str> = entries.iter().map(|e| e.entry.token.as_str()).collect();
    assert_eq!((tokens, entries[1].entry.status), (vec!["t2", "t1"], 403));
    assert_eq!(store.audit(next, 2).unwrap().0.len(), 1);

    // Tail positions: this host's, kept across a reopen.
    let path = std::path::Path::new("/var/log/falco/events.json");
    assert_eq!(store.load(path), None);
    let p = TailPosition {
        device: 1,
        inode: 2,
        offset: 300,
        line: 4,
    };
    store.save(path, p);
    store.save(path, TailPosition { offset: 500, ..p });
    drop((store, sink));
    let (store, _) = open(&url);
    assert_eq!(store.load(path), Some(TailPosition { offset: 500, ..p }));
}

#[test]
fn an_outage_fails_writes_retryably_and_writing_resumes_by_itself() {
    let Some(mut pg) = PgServer::start_or_skip("postgres::an_outage") else {
        return;
    };
    let url = pg.database("outage");
    let (store, mut sink) = open(&url);
    let all = events();
    sink.write("x", &numbered(&all[..2], [0, 1])).unwrap();
    pg.stop();
    let err = sink.write("x", &numbered(&all[2..4], [2, 3])).unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains("127.0.0.1"), "names the store: {err}");
    assert!(store.list(&Query::default()).is_err());
    pg.resume().unwrap();
    // The same sink and store, without a restart: they connect again.
    sink.write("x", &numbered(&all[2..4], [2, 3])).unwrap();
    sink.apply_duplicates(&[DuplicateUpdate {
        fingerprint: all[0].fingerprint,
        seq: 0,
        duplicates: 2,
        last_seen: all[0].detected_at,
    }])
    .unwrap();
    let page = store.list(&Query::default()).unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(
        page.items.iter().map(|s| s.observation.count).sum::<u64>(),
        6
    );
}

#[test]
fn a_newer_schema_is_refused_and_the_password_never_said() {
    let Some(pg) = PgServer::start_or_skip("postgres::a_newer_schema") else {
        return;
    };
    let url = pg.database("schema");
    drop(open(&url));
    drop(open(&url)); // migrating again changes nothing
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE zen_schema SET version = 99")
        .unwrap();
    match zen_store::open_postgres(&settings(&url)) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
    // A server that refuses: the error names the store, never the password.
    let secret = "hunter2-very-secret";
    let wrong = format!(
        "postgres://zen:{secret}@127.0.0.1:{}/nosuchdb?sslmode=disable",
        pg.port()
    );
    let err = zen_store::open_postgres(&settings(&wrong)).unwrap_err();
    let said = format!("{err} {err:?} {:?}", settings(&wrong));
    assert!(!said.contains(secret), "{said}");
    assert!(said.contains("nosuchdb"), "{said}");
    // A bad URL says what is wrong with it, without repeating it.
    let err = zen_store::open_postgres(&settings(&format!("postgres://zen:{secret}@[::1/x")))
        .unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
}

#[test]
fn tls_checks_the_server_certificate_against_the_ca_file() {
    let Some(mut pg) = PgServer::start_or_skip("postgres::tls") else {
        return;
    };
    let plain = pg.database("tls");
    let cert = pg.enable_tls().unwrap();
    let url = plain.replace("sslmode=disable", "sslmode=verify-full");
    // Trusted through the CA file: connected, and over TLS.
    let (store, mut sink) = zen_store::open_postgres(&PostgresSettings {
        ca_file: Some(cert.clone()),
        ..settings(&url)
    })
    .unwrap();
    write(&mut sink, "x", &events()[..1]).unwrap();
    assert_eq!(store.list(&Query::default()).unwrap().items.len(), 1);
    let mut admin = postgres::Client::connect(&plain, postgres::NoTls).unwrap();
    let over_tls: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE s.ssl AND a.application_name = 'zen-watcher'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        over_tls >= 2,
        "the store's reads and the sink's writes: {over_tls}"
    );
    // Not trusted: refused, saying why.
    let err = zen_store::open_postgres(&settings(&url))
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A CA file that is not one: said at open.
    let bogus = pg_bogus_ca();
    let err = zen_store::open_postgres(&PostgresSettings {
        ca_file: Some(bogus.path().to_owned()),
        ..settings(&url)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("no certificate"), "{err}");
}

fn pg_bogus_ca() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "not a certificate\n").unwrap();
    f
}
