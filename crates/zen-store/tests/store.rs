//! The store on a real SQLite file: what the sink writes, the queries read back.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use zen_dedup::DuplicateUpdate;
use zen_model::{Event, Severity, Timestamp};
use zen_sink::{Findings, Sink};
use zen_store::{Query, StoreError};

mod common;
use common::{events, numbered, write};

#[test]
fn what_is_written_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let events = events();
    write(&mut sink, "falco", &events[..1]).unwrap();
    write(&mut sink, "trivy", &events[1..6]).unwrap();
    write(&mut sink, "kube-bench", &events[6..]).unwrap();
    let page = store.list(&Query::default()).unwrap();
    assert_eq!(page.items.len(), 7);
    assert_eq!(page.next, None);
    // Newest first: ids descend, and reading back gives the events exactly (details as written).
    let mut back: Vec<Event> = page
        .items
        .iter()
        .rev()
        .map(|s| s.observation.event.clone())
        .collect();
    for (b, e) in back.iter_mut().zip(&events) {
        assert_eq!(b.details.get(), e.details.get());
        assert_eq!(*b, *e);
    }
    let first = store.get(page.items.last().unwrap().id).unwrap().unwrap();
    assert_eq!(first.observation.count, 1);
    assert!(
        first
            .observation
            .event
            .details
            .get()
            .contains("1770800462123456789")
    );
    assert_eq!(store.get(999).unwrap(), None);
}

#[test]
fn duplicates_add_to_the_kept_observation_instead_of_adding_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let e = events().remove(0);
    let later: Timestamp = "2026-02-11T09:05:00Z".parse().unwrap();
    let earlier: Timestamp = "2026-02-11T09:02:00Z".parse().unwrap();
    let update = |seq, duplicates, last_seen| DuplicateUpdate {
        fingerprint: e.fingerprint,
        seq,
        duplicates,
        last_seen,
    };
    let (store, mut sink) = zen_store::open(&path).unwrap();
    // The same fingerprint kept twice (its window ended between), as sightings 0 and 1.
    sink.write("falco", &numbered(&[e.clone(), e.clone()], [0, 1]))
        .unwrap();
    sink.apply_duplicates(&[update(0, 41, later)]).unwrap();
    sink.apply_duplicates(&[update(0, 1, earlier), update(1, 2, earlier)])
        .unwrap();
    // A sighting never written (filtered after de-duplication) changes nothing.
    sink.apply_duplicates(&[update(7, 5, later)]).unwrap();
    let counts = |store: &zen_store::Store| -> Vec<(u64, Timestamp)> {
        let page = store.list(&Query::default()).unwrap();
        let mut rows: Vec<_> = page
            .items
            .iter()
            .map(|s| (s.id, s.observation.clone()))
            .collect();
        rows.sort_by_key(|(id, _)| *id);
        rows.iter()
            .map(|(_, o)| {
                assert_eq!(o.first_seen, e.detected_at);
                (o.count, o.last_seen)
            })
            .collect()
    };
    assert_eq!(counts(&store), vec![(43, later), (3, earlier)]);
    // Time filters see when an Observation was last seen, repeats included.
    let seen = |since, until| -> Vec<u64> {
        let q = Query {
            since,
            until,
            ..Query::default()
        };
        let page = store.list(&q).unwrap();
        page.items.iter().map(|s| s.observation.count).collect()
    };
    assert_eq!(seen(Some(later), None), vec![43]);
    assert_eq!(seen(None, Some(later)), vec![3]);
    assert_eq!(seen(Some(earlier), Some(later)), vec![3]);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        vec![("falco".to_owned(), Severity::Critical, 2, 46)]
    );
    drop((store, sink));
    // After a restart the pipeline numbers its sightings from 0 again: they name the new rows,
    // never the last run's.
    let (store, mut sink) = zen_store::open(&path).unwrap();
    sink.write("falco", &numbered(std::slice::from_ref(&e), [0]))
        .unwrap();
    sink.apply_duplicates(&[update(0, 9, later), update(1, 1, later)])
        .unwrap();
    assert_eq!(counts(&store), vec![(43, later), (3, earlier), (10, later)]);
}

/// Schema version 1, as it shipped: duplicate counts found their row by fingerprint.
const SCHEMA_V1: &str = "CREATE TABLE observations (
        id INTEGER PRIMARY KEY, fingerprint BLOB NOT NULL, source TEXT NOT NULL,
        category TEXT NOT NULL, severity INTEGER NOT NULL, event_type TEXT NOT NULL, rule_id TEXT,
        title TEXT NOT NULL, message TEXT NOT NULL, resource_api_version TEXT, resource_kind TEXT,
        resource_name TEXT, resource_namespace TEXT, namespace TEXT, node TEXT,
        detected_at INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL, labels TEXT NOT NULL, details TEXT NOT NULL);
    CREATE INDEX observations_fingerprint ON observations (fingerprint, id);
    CREATE INDEX observations_last_seen ON observations (last_seen);
    CREATE INDEX observations_source ON observations (source, severity, id);
    CREATE INDEX observations_namespace ON observations (namespace, id);
    INSERT INTO observations VALUES (1, x'000102030405060708090a0b0c0d0e0f', 'falco', 'security', 4,
        'falco_alert', 'Terminal shell in container', 'Terminal shell in container', 'a shell',
        NULL, NULL, NULL, NULL, 'shop', 'node-1', 1770800462000000000, 1770800462000000000,
        1770800462000000000, 3, '{}', '{}');
    PRAGMA user_version = 1;";

#[test]
fn a_version_1_store_is_migrated_and_its_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SCHEMA_V1)
        .unwrap();
    let (store, mut sink) = zen_store::open(&path).unwrap();
    let old = store.get(1).unwrap().unwrap();
    assert_eq!(old.observation.count, 3);
    assert_eq!(old.observation.event.severity, Severity::Critical);
    // The first sighting of this run gets the next id, and its counts go to it alone.
    let first = events().remove(0);
    sink.write("falco", &numbered(std::slice::from_ref(&first), [0]))
        .unwrap();
    sink.apply_duplicates(&[DuplicateUpdate {
        fingerprint: first.fingerprint,
        seq: 0,
        duplicates: 1,
        last_seen: first.detected_at,
    }])
    .unwrap();
    let ids: Vec<(i64, u64)> = store
        .list(&Query::default())
        .unwrap()
        .items
        .iter()
        .map(|s| (s.id, s.observation.count))
        .collect();
    assert_eq!(ids, [(2, 2), (1, 3)]);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        vec![("falco".to_owned(), Severity::Critical, 2, 5)],
        "the migrated row is counted"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "observations_namespace",
            "observations_received_at",
            "observations_source"
        ]
    );
    // Its own time is months back; it counts as received at the migration, and stays.
    assert_eq!(store.purge(seconds_from_now(-3600)).unwrap(), 0);
    assert!(store.get(1).unwrap().is_some());
}

#[test]
fn lists_filter_and_page_by_keyset() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let events = events();
    for chunk in events.chunks(2) {
        write(&mut sink, "x", chunk).unwrap();
    }
    let ids = |q: Query| -> Vec<String> {
        store
            .list(&q)
            .unwrap()
            .items
            .iter()
            .map(|s| s.observation.event.rule_id.clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(
        ids(Query {
            source: Some("falco".into()),
            ..Query::default()
        }),
        ["Terminal shell in container"]
    );
    assert_eq!(
        ids(Query {
            min_severity: Some(Severity::High),
            ..Query::default()
        })
        .len(),
        3
    );
    assert_eq!(
        ids(Query {
            namespace: Some("shop".into()),
            ..Query::default()
        })
        .len(),
        6
    );
    assert_eq!(
        ids(Query {
            text: Some("OPENSSL".into()),
            ..Query::default()
        }),
        ["CVE-2024-2511"]
    );
    assert_eq!(
        ids(Query {
            text: Some("100%_".into()),
            ..Query::default()
        }),
        Vec::<String>::new()
    );
    let since: Timestamp = "2026-02-11T00:00:00Z".parse().unwrap();
    assert_eq!(
        ids(Query {
            since: Some(since),
            ..Query::default()
        })
        .len(),
        2
    );
    assert_eq!(
        ids(Query {
            until: Some(since),
            ..Query::default()
        })
        .len(),
        5
    );

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&Query {
                limit: 3,
                after,
                ..Query::default()
            })
            .unwrap();
        seen.extend(page.items.iter().map(|s| s.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let all: Vec<i64> = store
        .list(&Query::default())
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    assert_eq!(seen, all, "pages of 3 walk every row once, in order");
}

#[test]
fn retention_goes_by_when_findings_were_received_not_their_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    // Findings detected months ago (February 2026), received now: a week's retention keeps them.
    write(&mut sink, "x", &events()).unwrap();
    let week_ago = seconds_from_now(-7 * 24 * 3600);
    assert_eq!(store.purge(week_ago).unwrap(), 0);
    assert_eq!(store.list(&Query::default()).unwrap().items.len(), 7);
    // Their own time is still what `detected_at` and the time filters say.
    let until: Timestamp = "2026-02-11T00:00:00Z".parse().unwrap();
    let old = Query {
        until: Some(until),
        ..Query::default()
    };
    assert_eq!(store.list(&old).unwrap().items.len(), 5);
    assert_eq!(store.purge(after_now()).unwrap(), 7);
}

fn seconds_from_now(s: i64) -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second() + s).unwrap()
}

/// A cutoff after everything written so far.
fn after_now() -> Timestamp {
    seconds_from_now(1)
}

/// Rows and occurrences by source and severity, summed from the rows themselves and their
/// repeats; and no repeats are left of a row that is gone.
fn counted_from_rows(path: &std::path::Path) -> Vec<(String, Severity, u64, u64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM observation_repeats WHERE id NOT IN (SELECT id FROM observations)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "repeats without their row");
    let mut stmt = conn
        .prepare(
            "SELECT o.source, o.severity, COUNT(*), SUM(o.count + COALESCE(r.repeats, 0))
             FROM observations o LEFT JOIN observation_repeats r ON r.id = o.id
             GROUP BY o.source, o.severity ORDER BY o.source, o.severity",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Severity::ALL[r.get::<_, i64>(1)? as usize],
            r.get::<_, i64>(2)? as u64,
            r.get::<_, i64>(3)? as u64,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn kept_counts_agree_with_the_rows_through_writes_duplicates_purges_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let all = events();
    let (store, mut sink) = zen_store::open(&path).unwrap();
    sink.write("x", &numbered(&all, 0..7)).unwrap();
    let update = |seq: u64, duplicates| DuplicateUpdate {
        fingerprint: all[0].fingerprint,
        seq,
        duplicates,
        last_seen: "2026-03-01T00:00:00Z".parse().unwrap(),
    };
    // Sighting 9 was never written: it counts nowhere.
    sink.apply_duplicates(&[update(0, 4), update(2, 1), update(6, 10)])
        .unwrap();
    sink.apply_duplicates(&[update(2, 2), update(9, 5)])
        .unwrap();
    let kept = store.counts().unwrap().by_source_severity;
    assert_eq!(kept, counted_from_rows(&path));
    let occurrences: u64 = kept.iter().map(|c| c.3).sum();
    assert_eq!(occurrences, 7 + 4 + 1 + 10 + 2);
    // The purge takes what was received before the cutoff but the three seen again since.
    let cutoff = Timestamp::now();
    sink.apply_duplicates(&[update(0, 1), update(2, 1), update(6, 1)])
        .unwrap();
    assert_eq!(store.purge(cutoff).unwrap(), 4);
    let kept = store.counts().unwrap().by_source_severity;
    assert_eq!(kept, counted_from_rows(&path));
    assert!(
        kept.iter().all(|c| c.2 > 0),
        "emptied keys are not listed: {kept:?}"
    );
    drop((store, sink));
    let (store, mut sink) = zen_store::open(&path).unwrap();
    sink.write("x", &numbered(&all[..1], [0])).unwrap();
    sink.apply_duplicates(&[update(0, 1)]).unwrap();
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&path)
    );
    // A sighting far older than the newest: the sink no longer remembers its row's key, and
    // reads it back.
    sink.write("x", &numbered(&all[6..], [1 << 30])).unwrap();
    sink.apply_duplicates(&[update(0, 2), update(1 << 30, 1)])
        .unwrap();
    let kept = store.counts().unwrap().by_source_severity;
    assert_eq!(kept, counted_from_rows(&path));
    let occurrences: u64 = kept.iter().map(|c| c.3).sum();
    assert_eq!(occurrences, 7 + 4 + 1 + 10 + 2 + 3 - 4 + 1 + 1 + 2 + 1 + 1);
}

#[test]
fn a_large_purge_goes_in_chunks_and_takes_everything_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let (store, mut sink) = zen_store::open(&path).unwrap();
    let all = events();
    // Five findings received before the cutoff, two after: 2.5 chunks of old rows.
    let n = zen_store::PURGE_CHUNK / 2;
    let many: Vec<Event> = (0..n)
        .flat_map(|i| {
            all.iter().cloned().map(move |mut e| {
                e.fingerprint.0 ^= (i as u128) << 64;
                e
            })
        })
        .collect();
    let (old, new): (Vec<Event>, Vec<Event>) =
        many.into_iter().partition(|e| e.source.as_ref() == "trivy");
    write(&mut sink, "x", &old).unwrap();
    let cutoff = Timestamp::now();
    write(&mut sink, "x", &new).unwrap();
    assert_eq!(store.purge(cutoff).unwrap(), 5 * n);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&path)
    );
    let left: u64 = counted_from_rows(&path).iter().map(|c| c.2).sum();
    assert_eq!(left, 2 * n as u64);
    assert_eq!(store.purge(cutoff).unwrap(), 0, "nothing old is left");
}

#[test]
fn reopening_keeps_data_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    {
        let (_, mut sink) = zen_store::open(&path).unwrap();
        write(&mut sink, "x", &events()).unwrap();
    }
    let (store, _) = zen_store::open(&path).unwrap();
    assert_eq!(store.list(&Query::default()).unwrap().items.len(), 7);
    drop(store);
    rusqlite_user_version(&path, 99);
    match zen_store::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("{other:?}"),
    }
}

fn rusqlite_user_version(path: &std::path::Path, v: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", v).unwrap();
}

#[test]
fn a_locked_store_fails_retryably_and_reads_go_on_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let (store, mut sink) = zen_store::open(&path).unwrap();
    write(&mut sink, "x", &events()).unwrap();
    // Another connection holds the write lock.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let reader = std::thread::spawn(move || store.list(&Query::default()).unwrap().items.len());
    assert_eq!(
        reader.join().unwrap(),
        7,
        "readers are not blocked by a writer"
    );
    sink.set_busy_timeout(std::time::Duration::from_millis(20))
        .unwrap();
    let err = write(&mut sink, "x", &events()[..1]).unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains("locked"), "{err}");
    blocker.execute_batch("ROLLBACK").unwrap();
    write(&mut sink, "x", &events()[..1]).unwrap();
}

#[test]
fn the_wal_is_checkpointed_beside_the_writer_and_emptied_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("zen.db");
    let wal = dir.path().join("zen.db-wal");
    let (_store, mut sink) = zen_store::open(&db).unwrap();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let before = size(&db);
    let mut events = events();
    for round in 0..200 {
        for e in &mut events {
            e.fingerprint = zen_model::Fingerprint::builder("test")
                .field(&e.title)
                .field(&round.to_string())
                .finish();
        }
        write(&mut sink, "trivy", &events).unwrap();
    }
    assert!(size(&wal) > 0, "commits go to the WAL");
    // The writer never checkpoints (wal_autocheckpoint = 0); the checkpoint thread copies the
    // WAL into the database within a second or two.
    wait_until("a checkpoint", || size(&db) > before);
    drop(sink);
    assert_eq!(size(&wal), 0, "the last checkpoint truncates the WAL");
    let (store, _sink) = zen_store::open(&db).unwrap();
    assert_eq!(stored(&store), 1400);
}

#[test]
fn the_wal_is_started_over_and_cut_back_within_its_bound_under_writes_without_pause() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("zen.db");
    let wal = dir.path().join("zen.db-wal");
    let bound = 1 << 20;
    let (store, mut sink) = zen_store::open_bounded(&db, bound).unwrap();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut events = events();
    let (mut largest, mut rounds) = (0, 0);
    // Commits without a pause, so that no passive checkpoint ever catches the writer, until
    // the WAL has been written forty times the bound over (the frames' bytes, by the pages the
    // commits dirtied: at least two a commit).
    while rounds < 40 * bound / (2 * 4096) {
        for e in &mut events {
            e.fingerprint = zen_model::Fingerprint::builder("test")
                .field(&e.title)
                .field(&rounds.to_string())
                .finish();
        }
        write(&mut sink, "trivy", &events).unwrap();
        largest = largest.max(size(&wal));
        rounds += 1;
    }
    eprintln!("the WAL's largest size in {rounds} commits: {largest} bytes");
    assert!(largest > 0);
    // Started over at half the bound, the checkpointer's passive checkpoints waited for.
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes, bound {bound}"
    );
    // While the sink is open, the WAL is back under its bound.
    wait_until("the WAL under its bound", || size(&wal) <= bound);
    assert_eq!(stored(&store), 7 * rounds);
}

#[test]
fn a_purge_is_checkpointed_though_nothing_is_written_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("zen.db");
    let (store, mut sink) = zen_store::open(&db).unwrap();
    write(&mut sink, "x", &events()).unwrap();
    let modified = || std::fs::metadata(&db).unwrap().modified().unwrap();
    let created = modified();
    wait_until("the write's checkpoint", || modified() > created);
    // Idle turns skip; the purge's commit is checkpointed all the same.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let written = modified();
    assert_eq!(store.purge(after_now()).unwrap(), 7);
    wait_until("the purge's checkpoint", || modified() > written);
}

/// Observations stored, by the store's counts.
fn stored(store: &zen_store::Store) -> u64 {
    store
        .counts()
        .unwrap()
        .by_source_severity
        .iter()
        .map(|r| r.2)
        .sum()
}

/// Waits up to 10 s for `done`, and fails the test naming `what` if it never is.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn dead_letters_are_kept_listed_bounded_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let all = events();
    let letter = |n: usize| zen_sink::DeadLetter {
        source: "falco".to_owned(),
        events: all.iter().cycle().take(n).cloned().collect(),
        error: "constraint failed".to_owned(),
        attempts: 1,
    };
    store.keep_dead_letter(&letter(2)).unwrap();
    store.keep_dead_letter(&letter(3)).unwrap();
    assert_eq!(
        store.dead_letter_counts().unwrap(),
        zen_store::DeadLetterCounts {
            letters: 2,
            events: 5
        }
    );
    // Details come back with the same values; their keys may be reordered (they are read
    // through a JSON value).
    let same = |a: &zen_sink::DeadLetter, b: &zen_sink::DeadLetter| {
        let plain = |l: &zen_sink::DeadLetter| {
            let mut l = l.clone();
            for e in &mut l.events {
                e.details = zen_model::Details::of(&e.details.to_value()).unwrap();
            }
            l
        };
        assert_eq!(plain(a), plain(b));
    };
    let (page, next) = store.dead_letters(None, 1).unwrap();
    assert_eq!(page.len(), 1);
    same(&page[0].letter, &letter(3));
    let (rest, end) = store.dead_letters(next, 10).unwrap();
    assert_eq!((rest.len(), end), (1, None));
    same(&rest[0].letter, &letter(2));
    // Past the bound, the oldest go.
    let n = zen_store::DEAD_LETTER_EVENTS as usize - 4;
    store.keep_dead_letter(&letter(n)).unwrap();
    assert_eq!(
        store.dead_letter_counts().unwrap(),
        zen_store::DeadLetterCounts {
            letters: 2,
            events: 3 + n as u64
        }
    );
    assert!(store.remove_dead_letter(rest[0].id + 1).unwrap());
    assert!(!store.remove_dead_letter(rest[0].id + 1).unwrap());
    assert_eq!(store.dead_letter_counts().unwrap().letters, 1);
}

#[test]
fn rows_and_the_counts_of_their_duplicates_go_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let (store, mut sink) = zen_store::open(&path).unwrap();
    let all = events();
    sink.write("x", &numbered(&all[..1], [0])).unwrap();
    let update = |seq: u64, duplicates| DuplicateUpdate {
        fingerprint: all[0].fingerprint,
        seq,
        duplicates,
        last_seen: "2026-03-01T00:00:00Z".parse().unwrap(),
    };
    let counts = |store: &zen_store::Store| -> Vec<u64> {
        let mut counts: Vec<u64> = store
            .list(&Query::default())
            .unwrap()
            .items
            .iter()
            .map(|s| s.observation.count)
            .collect();
        counts.sort_unstable();
        counts
    };
    // A row written in this very call and one written before, both counted; the counts are
    // journaled with the row and added to the rows when the sink settles.
    sink.write_then_count(
        "x",
        &numbered(&all[1..2], [1]),
        &[update(1, 2), update(0, 3)],
    )
    .unwrap();
    assert_eq!(counts(&store), [1, 1]);
    assert_eq!(sink.settle(), Ok(false));
    assert_eq!(counts(&store), [3, 4]);
    assert_eq!(sink.settle(), Ok(false), "nothing left to settle");
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&path)
    );
    // Journaled and never settled (the process killed): added when the store is next opened,
    // once, and the row of a sighting never written counts nothing.
    sink.write_then_count("x", &[], &[update(0, 5), update(9, 4)])
        .unwrap();
    sink.write_then_count("x", &[], &[update(1, 1)]).unwrap();
    drop((store, sink));
    let (store, mut sink) = zen_store::open(&path).unwrap();
    assert_eq!(counts(&store), [4, 9]);
    assert_eq!(sink.settle(), Ok(false));
    drop((store, sink));
    let (store, _sink) = zen_store::open(&path).unwrap();
    assert_eq!(counts(&store), [4, 9]);
    assert_eq!(
        store.counts().unwrap().by_source_severity,
        counted_from_rows(&path)
    );
}

#[test]
fn top_ranks_rules_and_namespaces_of_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let events = events();
    write(&mut sink, "x", &events).unwrap();
    let (since, until) = (seconds_from_now(-86_400 * 3_650), after_now());
    let rules = store.top(zen_store::TopBy::Rule, since, until, 3).unwrap();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(
        rules
            .windows(2)
            .all(|w| w[0].observations >= w[1].observations)
    );
    let all: u64 = store
        .top(zen_store::TopBy::Rule, since, until, 100)
        .unwrap()
        .iter()
        .map(|t| t.observations)
        .sum();
    assert_eq!(
        all,
        events.len() as u64,
        "every Observation is counted once"
    );
    let namespaces = store
        .top(zen_store::TopBy::Namespace, since, until, 10)
        .unwrap();
    assert!(
        namespaces
            .iter()
            .any(|t| t.key == "shop" && t.source.is_none()),
        "{namespaces:?}"
    );
    // Nothing was last seen in a range that ended before it was written.
    let before = store
        .top(
            zen_store::TopBy::Rule,
            since,
            seconds_from_now(-86_400 * 3_000),
            10,
        )
        .unwrap();
    assert!(before.is_empty(), "{before:?}");
}

#[test]
fn findings_of_watched_reports_are_open_until_resolved_and_open_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let (store, mut sink) = zen_store::open(&path).unwrap();
    let events = events();
    write(&mut sink, "x", &events).unwrap();
    let trivy: Vec<_> = events
        .iter()
        .filter(|e| e.source == "trivy")
        .map(|e| e.fingerprint)
        .collect();
    assert_eq!(trivy.len(), 5);
    store
        .track(
            &trivy
                .iter()
                .map(|&fp| ("shop/vulnerabilityreport/cart", fp))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let listed = |state| {
        let q = Query {
            state: Some(state),
            ..Query::default()
        };
        store.list(&q).unwrap().items
    };
    assert_eq!(
        listed(zen_store::State::Open).len(),
        7,
        "tracked and untracked alike"
    );
    assert!(listed(zen_store::State::Resolved).is_empty());

    // Two leave the report; resolving them again changes nothing.
    let at: Timestamp = "2026-03-03T08:00:00Z".parse().unwrap();
    assert_eq!(store.resolve(&trivy[..2], at).unwrap(), 2);
    assert_eq!(store.resolve(&trivy[..2], at).unwrap(), 0);
    let resolved = listed(zen_store::State::Resolved);
    assert_eq!(resolved.len(), 2);
    assert!(resolved.iter().all(|s| s.resolved_at == Some(at)));
    assert!(
        resolved
            .iter()
            .all(|s| trivy[..2].contains(&s.observation.event.fingerprint))
    );
    let open = listed(zen_store::State::Open);
    assert_eq!(open.len(), 5);
    assert!(open.iter().all(|s| s.resolved_at.is_none()));
    let one = store.get(resolved[0].id).unwrap().unwrap();
    assert_eq!(one.resolved_at, Some(at));

    // What a restart reads back: the findings still open, with their report.
    drop((store, sink));
    let (store, _sink) = zen_store::open(&path).unwrap();
    let report = "shop/vulnerabilityreport/cart".to_owned();
    let still: Vec<_> = trivy[2..].iter().map(|&fp| (report.clone(), fp)).collect();
    let mut open = store.open().unwrap();
    open.sort();
    let mut expected = still.clone();
    expected.sort();
    assert_eq!(open, expected);
    // Back in a report: open again.
    store
        .track(&[("shop/vulnerabilityreport/cart", trivy[0])])
        .unwrap();
    assert_eq!(store.open().unwrap().len(), 4);
    let q = Query {
        state: Some(zen_store::State::Resolved),
        ..Query::default()
    };
    assert_eq!(store.list(&q).unwrap().items.len(), 1);
    // The purge takes resolved findings with their Observations, and keeps open ones.
    assert_eq!(store.purge(after_now()).unwrap(), 7);
    assert_eq!(store.open().unwrap().len(), 4);
    assert_eq!(store.resolve(&trivy[1..2], at).unwrap(), 0, "purged");
}

#[test]
fn the_audit_log_keeps_every_entry_newest_first_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    for (i, status) in [200, 403, 204].into_iter().enumerate() {
        store
            .record_audit(&zen_store::AuditEntry {
                token: format!("t{i}"),
                action: "PUT /api/v1/alerts/rules".to_owned(),
                status,
            })
            .unwrap();
    }
    let (page, next) = store.audit(None, 2).unwrap();
    let tokens: Vec<&str> = page.iter().map(|e| e.entry.token.as_str()).collect();
    assert_eq!(tokens, ["t2", "t1"]);
    assert_eq!(page[1].entry.status, 403);
    assert!(page[0].at >= page[1].at);
    let (rest, end) = store.audit(next, 2).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].entry.token, "t0");
    assert_eq!(end, None);
}
