//! The embedded store of Observations: SQLite (bundled, nothing to install) in WAL mode.
//!
//! [`open`] migrates the database to the current schema and returns two halves: the
//! [`SqliteSink`], the one writer — it is the pipeline's [`Sink`], writing each call in one
//! transaction and adding duplicate counts to the kept Observation's repeats (a narrow table
//! beside its row) instead of adding rows — and the [`Store`], which reads (filtered,
//! keyset-paginated lists; one Observation; counts by source and severity) on connections of its
//! own, alongside the writer, and purges what was last received longer ago than the retention
//! period (by zen-watcher's clock, never the finding's own time).
//!
//! Errors that may pass (busy, locked, disk full, read-only, IO) are marked retryable, so the
//! pipeline retries them with backoff and its queues fill behind — backpressure, never a silent
//! drop. Operation durations go to `zen_watcher_store_operation_duration_seconds{operation}`.
//!
//! [`JsonlSink`] writes Observations as JSON lines to a file (rotated by size) or to standard
//! output, beside or instead of SQLite.
//!
//! This is the only crate that knows SQL.

mod jsonl;

pub use jsonl::{JsonlSink, JsonlTarget};

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params, params_from_iter};
use serde_json::value::RawValue;
use zen_dedup::DuplicateUpdate;
use zen_model::{
    Category, Details, Event, Fingerprint, Observation, ResourceRef, Severity, Timestamp,
};
use zen_sink::{DeadLetter, Kept, Positions, Sink, SinkError, TailPosition};

/// Schema versions, applied in order; `PRAGMA user_version` says how many are in.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        fingerprint BLOB NOT NULL,
        source TEXT NOT NULL,
        category TEXT NOT NULL,
        severity INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        rule_id TEXT,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        resource_api_version TEXT,
        resource_kind TEXT,
        resource_name TEXT,
        resource_namespace TEXT,
        namespace TEXT,
        node TEXT,
        detected_at INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL,
        labels TEXT NOT NULL,
        details TEXT NOT NULL
    );
    CREATE INDEX observations_fingerprint ON observations (fingerprint, id);
    CREATE INDEX observations_last_seen ON observations (last_seen);
    CREATE INDEX observations_source ON observations (source, severity, id);
    CREATE INDEX observations_namespace ON observations (namespace, id);",
    // Duplicate counts find their row by the deduper's number of its first sighting, which
    // grows as rows are written, instead of by fingerprint: fingerprints are random, so every
    // insert into their index dirtied a page of its own. Without it the daemon settled 1.3×
    // as many events per second (docs/benchmarks.md, "End to end", seventh run).
    "ALTER TABLE observations ADD COLUMN seq INTEGER;
    DROP INDEX observations_fingerprint;
    CREATE INDEX observations_seq ON observations (seq);",
    // Rows and occurrences by source and severity, kept by every write, so that `counts` (and
    // `GET /api/v1/stats`) read a few rows instead of the whole table: summing it took 80 ms at
    // 300,000 rows, and a long read keeps the WAL from being reset behind it.
    "CREATE TABLE observation_counts (
        source TEXT NOT NULL,
        severity INTEGER NOT NULL,
        observations INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        PRIMARY KEY (source, severity)
    ) WITHOUT ROWID;
    INSERT INTO observation_counts
        SELECT source, severity, COUNT(*), SUM(count) FROM observations GROUP BY source, severity;",
    // The row id is the sighting's sequence number, so a duplicate count finds its row in the
    // table itself and no insert keeps a `seq` index: the sink's benchmark mix took about
    // 8 % less time (docs/benchmarks.md, "The store"). Sequence numbers of earlier runs are
    // never named again, so the column goes. Dropping it rewrites the table once, at the first
    // start: 1.9-2.2 s for a million rows of 500 bytes
    // (`python3 docs/scripts/sqlite-migration-cost.py`, three runs).
    "DROP INDEX observations_seq;
    ALTER TABLE observations DROP COLUMN seq;",
    // Duplicate counts go to a narrow table of their own, beside the row the first sighting
    // wrote, whose `count` and `last_seen` stay as written (and as earlier versions left them).
    // Updating those in place rewrote a 500-byte row, so a transaction of 256 counts wrote 168
    // pages to the WAL, and the checkpoint copied them again; with this table, 8
    // (`python3 docs/scripts/sqlite-repeats-cost.py`). The sink's benchmark mix took about 20 %
    // less time. Reads join the two (`observations!`).
    "CREATE TABLE observation_repeats (
        id INTEGER PRIMARY KEY,
        repeats INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
    );",
    // Retention goes by when zen-watcher received a finding or last saw it again, not by the
    // finding's own time: a report last updated ten days ago, ingested now, is fresh, and so
    // are replayed and back-filled events. `received_at` is when the row was written, and for
    // repeats when the last of them was added. Rows of earlier versions count as received at
    // the migration: nothing is purged for a time that never said when it came. (The update
    // rewrites every row once, at the first start.)
    "ALTER TABLE observations ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE observation_repeats ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
    UPDATE observations SET received_at = CAST(unixepoch('now', 'subsec') * 1e9 AS INTEGER);
    UPDATE observation_repeats SET received_at = CAST(unixepoch('now', 'subsec') * 1e9 AS INTEGER);
    DROP INDEX observations_last_seen;
    CREATE INDEX observations_received_at ON observations (received_at);",
    // What no sink could write, kept to be looked at and replayed: the events as JSON, bounded
    // in events (`DEAD_LETTER_EVENTS`), oldest dropped first.
    "CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        events INTEGER NOT NULL,
        payload TEXT NOT NULL
    );",
    // Where each tailed file is read up to, saved once what was read is committed.
    "CREATE TABLE tail_positions (
        path TEXT PRIMARY KEY,
        device INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        line INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Observations as read: each row (`o`) with its repeats, if any (`r`).
macro_rules! observations {
    () => {
        "observations o LEFT JOIN observation_repeats r ON r.id = o.id"
    };
}

/// When an Observation of [`observations!`] was last seen, repeats included.
macro_rules! last_seen {
    () => {
        "MAX(o.last_seen, COALESCE(r.last_seen, o.last_seen))"
    };
}

/// When an Observation of [`observations!`] was last received, repeats included: what
/// retention goes by.
macro_rules! received_at {
    () => {
        "MAX(o.received_at, COALESCE(r.received_at, o.received_at))"
    };
}

/// Adds to `observation_counts`: `?3` rows and `?4` occurrences of source `?1`, severity `?2`.
const ADD_COUNTS: &str =
    "INSERT INTO observation_counts (source, severity, observations, occurrences)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (source, severity) DO UPDATE SET
        observations = observations + excluded.observations,
        occurrences = occurrences + excluded.occurrences";

/// The keys of `observation_counts` met so far — (source, severity) pairs — by index.
#[derive(Debug, Default)]
struct Keys(Vec<(String, u8)>);

impl Keys {
    fn index(&mut self, source: &str, severity: u8) -> usize {
        match self
            .0
            .iter()
            .position(|(s, r)| *r == severity && s == source)
        {
            Some(k) => k,
            None => {
                self.0.push((source.to_owned(), severity));
                self.0.len() - 1
            }
        }
    }
}

/// The key index of the rows this sink wrote lately, by sequence number, so that a duplicate
/// count can be added to `observation_counts` without reading its row back (`UPDATE … RETURNING`
/// cost half as much again per update; docs/scripts/sqlite-update-cost.py). Counts name recent rows: the
/// deduper forgets a sighting after its window, or after `dedup_max_entries` newer ones. Rows it
/// does not know are read.
#[derive(Debug, Default)]
struct Recent {
    /// `ring[i]` is the key index of sequence number `first + i`, or [`Recent::NONE`].
    first: u64,
    ring: VecDeque<u8>,
}

impl Recent {
    /// Not written, or under a key past the first 255.
    const NONE: u8 = u8::MAX;
    /// Sequence numbers remembered: 128 KiB.
    const LEN: usize = 1 << 17;

    fn note(&mut self, seq: u64, key: usize) {
        let Some(mut i) = seq.checked_sub(self.first) else {
            return; // older than what is remembered
        };
        if i >= Self::LEN as u64 + self.ring.len() as u64 {
            // Far past everything remembered: start again from here.
            self.ring.clear();
            self.first = seq;
            i = 0;
        }
        let i = i as usize;
        if i >= self.ring.len() {
            self.ring.resize(i + 1, Self::NONE);
        }
        self.ring[i] = u8::try_from(key).unwrap_or(Self::NONE);
        while self.ring.len() > Self::LEN {
            self.ring.pop_front();
            self.first += 1;
        }
    }

    fn key(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        Some(*self.ring.get(i)?)
            .filter(|&k| k != Self::NONE)
            .map(usize::from)
    }
}

/// Column `i` of `row` as text, borrowed.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, rusqlite::Error> {
    row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Rows and occurrences to add to `observation_counts`, by index in [`Keys`].
#[derive(Debug, Default)]
struct Tally(Vec<(i64, i64)>);

impl Tally {
    fn add(&mut self, key: usize, rows: i64, occurrences: i64) {
        if key >= self.0.len() {
            self.0.resize(key + 1, (0, 0));
        }
        self.0[key].0 += rows;
        self.0[key].1 += occurrences;
    }

    /// Adds the tally to `observation_counts`, inside the caller's transaction.
    fn apply(&self, keys: &Keys, conn: &Connection) -> Result<(), rusqlite::Error> {
        let mut add = conn.prepare_cached(ADD_COUNTS)?;
        for ((source, severity), (rows, occurrences)) in keys.0.iter().zip(&self.0) {
            if (*rows, *occurrences) != (0, 0) {
                add.execute(params![source, severity, rows, occurrences])?;
            }
        }
        Ok(())
    }
}

/// A store that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store {path} has schema version {found}, newer than this build knows ({known})")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("starting the store's checkpoint thread: {0}")]
    Thread(std::io::Error),
    #[error("store query: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("store row {id}: {problem}")]
    Corrupt { id: i64, problem: String },
}

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode a commit survives a crash of the process; only a power loss may take the last.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens (creating and migrating as needed) the store at `path`.
pub fn open(path: &Path) -> Result<(Store, SqliteSink), StoreError> {
    let err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let mut conn = connect(path).map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    // Commits never checkpoint (copying the WAL into the database and syncing it took tens of
    // milliseconds, now and then, inside an unlucky commit); a thread of its own does it. For
    // the same reason the WAL is not cut back (`journal_size_limit`): truncating the hundreds of
    // MB a burst had left stalled the commit that restarted it for about 100 ms.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(err)?;
    // This process's sequence numbers start at 0; as row ids, they continue from the last run's.
    let seq_base: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM observations",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let commits = Commits::default();
    let checkpointer = Checkpointer::start(path, commits.clone())?;
    let store = Store {
        path: path.to_owned(),
        readers: Mutex::new(Vec::new()),
        timings: Timings::new(),
        commits: commits.clone(),
    };
    let sink = SqliteSink {
        conn,
        timings: Timings::new(),
        seq_base,
        keys: Keys::default(),
        recent: Recent::default(),
        commits,
        _checkpointer: checkpointer,
    };
    Ok((store, sink))
}

/// Durations of store operations, by operation.
struct Timings {
    create: metrics::Histogram,
    update: metrics::Histogram,
    delete: metrics::Histogram,
    list: metrics::Histogram,
    get: metrics::Histogram,
}

impl Timings {
    fn new() -> Self {
        let h = |op: &'static str| metrics::histogram!("zen_watcher_store_operation_duration_seconds", "operation" => op);
        Timings {
            create: h("create"),
            update: h("update"),
            delete: h("delete"),
            list: h("list"),
            get: h("get"),
        }
    }
}

impl std::fmt::Debug for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timings")
    }
}

fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn timestamp(ns: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Whether an error may pass if tried again.
fn sink_error(e: rusqlite::Error) -> SinkError {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
        )
    );
    metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store")
        .increment(1);
    SinkError {
        message: format!("store: {e}"),
        retryable,
    }
}

/// The one writer of the store; the pipeline's sink.
#[derive(Debug)]
pub struct SqliteSink {
    conn: Connection,
    timings: Timings,
    /// Added to the pipeline's sequence numbers ([`Kept::seq`]), which start at
    /// 0 in every run, to make the row id: one more than the largest stored when the store was
    /// opened, so a restart never reuses the id of a stored row (as SQLite's own row ids, it may
    /// reuse those of rows all purged).
    seq_base: i64,
    keys: Keys,
    recent: Recent,
    commits: Commits,
    /// Dropped after `conn` (fields drop in order): the last checkpoint sees every commit.
    _checkpointer: Checkpointer,
}

impl SqliteSink {
    /// How long a write waits for a lock held by another connection before it fails (retryably).
    pub fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        Ok(self.conn.busy_timeout(timeout)?)
    }
}

/// The row id of the sighting with the pipeline's sequence number `seq`.
fn row_id(base: i64, seq: u64) -> i64 {
    i64::try_from(seq).map_or(i64::MAX, |s| s.saturating_add(base))
}

impl Sink for SqliteSink {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn write(&mut self, _source: &str, events: &[Kept]) -> Result<(), SinkError> {
        self.commit(events, &[])
    }

    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        self.commit(&[], updates)
    }

    /// One transaction, one commit: what an acknowledged request with duplicates waits for.
    fn write_then_count(
        &mut self,
        _source: &str,
        events: &[Kept],
        updates: &[DuplicateUpdate],
    ) -> Result<(), SinkError> {
        self.commit(events, updates)
    }
}

impl SqliteSink {
    /// Writes `events` and adds `updates` (counts of sightings written before, or in this very
    /// transaction) in one transaction.
    fn commit(&mut self, events: &[Kept], updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        let started = Instant::now();
        let base = self.seq_base;
        let mut tally = Tally::default();
        let received_at = nanos(Timestamp::now());
        let tx = self.conn.transaction().map_err(sink_error)?;
        if !events.is_empty() {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO observations (fingerprint, source, category, severity, event_type, rule_id, title,
                        message, resource_api_version, resource_kind, resource_name, resource_namespace, namespace,
                        node, detected_at, first_seen, last_seen, count, labels, details, id, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?15, 1, ?16, ?17, ?18, ?19)",
                )
                .map_err(sink_error)?;
            for Kept { seq, event: e } in events {
                let seq = *seq;
                let key = self.keys.index(e.source.as_ref(), e.severity.rank());
                tally.add(key, 1, 1);
                // Noted before the commit: the counts below may be of these rows. Should the
                // transaction fail, a noted key is never read (no count finds an unwritten row).
                self.recent.note(seq, key);
                let r = e.resource.as_ref();
                // Most events have none: no need to serialise (and allocate) an empty map.
                let labels = if e.labels.is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    Cow::Owned(serde_json::to_string(&e.labels).unwrap_or_else(|_| "{}".to_owned()))
                };
                insert
                    .execute(params![
                        e.fingerprint.0.to_be_bytes(),
                        e.source.as_ref(),
                        e.category.as_str(),
                        e.severity.rank(),
                        e.event_type.as_ref(),
                        e.rule_id,
                        e.title,
                        e.message,
                        r.and_then(|r| r.api_version.as_deref()),
                        r.map(|r| r.kind.as_str()),
                        r.map(|r| r.name.as_str()),
                        r.and_then(|r| r.namespace.as_deref()),
                        e.namespace,
                        e.node,
                        nanos(e.detected_at),
                        labels,
                        e.details.get(),
                        row_id(base, seq),
                        received_at,
                    ])
                    .map_err(sink_error)?;
            }
        }
        if !updates.is_empty() {
            let mut update = tx
                .prepare_cached(
                    "INSERT INTO observation_repeats (id, repeats, last_seen, received_at)
                        SELECT ?3, ?1, ?2, ?4 WHERE EXISTS (SELECT 1 FROM observations WHERE id = ?3)
                     ON CONFLICT (id) DO UPDATE SET
                        repeats = repeats + excluded.repeats,
                        last_seen = MAX(last_seen, excluded.last_seen),
                        received_at = excluded.received_at",
                )
                .map_err(sink_error)?;
            for u in updates {
                let n = i64::try_from(u.duplicates).unwrap_or(i64::MAX);
                let id = row_id(base, u.seq);
                // No row changed: its sighting was never written, and there is nothing to count.
                if update
                    .execute(params![n, nanos(u.last_seen), id, received_at])
                    .map_err(sink_error)?
                    == 0
                {
                    continue;
                }
                let key = match self.recent.key(u.seq) {
                    Some(key) => key,
                    None => tx
                        .prepare_cached("SELECT source, severity FROM observations WHERE id = ?1")
                        .and_then(|mut read| {
                            read.query_row([id], |row| {
                                Ok(self.keys.index(text(row, 0)?, row.get(1)?))
                            })
                        })
                        .map_err(sink_error)?,
                };
                tally.add(key, 0, n);
            }
        }
        tally.apply(&self.keys, &tx).map_err(sink_error)?;
        tx.commit().map_err(sink_error)?;
        self.commits.note();
        let took = started.elapsed().as_secs_f64();
        if !events.is_empty() {
            self.timings.create.record(took);
        }
        if !updates.is_empty() {
            self.timings.update.record(took);
        }
        Ok(())
    }
}

/// An Observation with its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub observation: Observation,
}

/// Which Observations to list. Every field narrows; `after` continues a previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub source: Option<String>,
    pub min_severity: Option<Severity>,
    pub namespace: Option<String>,
    /// Last seen at or after.
    pub since: Option<Timestamp>,
    /// Last seen before.
    pub until: Option<Timestamp>,
    /// In the title or the message, case-insensitively.
    pub text: Option<String>,
    /// The cursor of the previous page.
    pub after: Option<i64>,
    /// Page size: 100 when 0, at most 1,000.
    pub limit: usize,
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Stored>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// Stored Observations counted by source and severity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// (source, severity, rows, occurrences including duplicates)
    pub by_source_severity: Vec<(String, Severity, u64, u64)>,
}

/// `SELECT` the columns [`row`] reads, `FROM` [`observations!`].
const SELECT: &str = concat!(
    "SELECT o.id, o.fingerprint, o.source, o.category, o.severity, o.event_type, o.rule_id,
        o.title, o.message, o.resource_api_version, o.resource_kind, o.resource_name,
        o.resource_namespace, o.namespace, o.node, o.detected_at, o.first_seen, ",
    last_seen!(),
    ", o.count + COALESCE(r.repeats, 0), o.labels, o.details FROM ",
    observations!()
);

fn row(r: &rusqlite::Row<'_>) -> Result<Result<Stored, StoreError>, rusqlite::Error> {
    let id: i64 = r.get(0)?;
    let corrupt = |problem: String| Err(StoreError::Corrupt { id, problem });
    let fp: Vec<u8> = r.get(1)?;
    let Ok(fp) = <[u8; 16]>::try_from(fp.as_slice()) else {
        return Ok(corrupt(format!("fingerprint of {} bytes", fp.len())));
    };
    let category: String = r.get(3)?;
    let Ok(category) = category.parse::<Category>() else {
        return Ok(corrupt(format!("category {category:?}")));
    };
    let rank: u8 = r.get(4)?;
    let Some(&severity) = Severity::ALL.get(rank as usize) else {
        return Ok(corrupt(format!("severity rank {rank}")));
    };
    let labels: String = r.get(19)?;
    let Ok(labels) = serde_json::from_str(&labels) else {
        return Ok(corrupt(
            "labels are not a JSON object of strings".to_owned(),
        ));
    };
    let details: String = r.get(20)?;
    let Ok(details) = RawValue::from_string(details) else {
        return Ok(corrupt("details are not JSON".to_owned()));
    };
    let kind: Option<String> = r.get(10)?;
    let resource = match kind {
        Some(kind) => Some(ResourceRef {
            api_version: r.get(9)?,
            kind,
            name: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            namespace: r.get(12)?,
        }),
        None => None,
    };
    let count: i64 = r.get(18)?;
    let event = Event {
        source: std::borrow::Cow::Owned(r.get(2)?),
        category,
        severity,
        event_type: std::borrow::Cow::Owned(r.get(5)?),
        rule_id: r.get(6)?,
        title: r.get(7)?,
        message: r.get(8)?,
        resource,
        namespace: r.get(13)?,
        node: r.get(14)?,
        detected_at: timestamp(r.get(15)?),
        fingerprint: Fingerprint(u128::from_be_bytes(fp)),
        labels,
        details: Details::from_stored(details),
    };
    Ok(Ok(Stored {
        id,
        observation: Observation {
            event,
            count: u64::try_from(count).unwrap_or(0),
            first_seen: timestamp(r.get(16)?),
            last_seen: timestamp(r.get(17)?),
        },
    }))
}

/// Reads of the store, on connections of their own; safe to share between threads.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    timings: Timings,
    commits: Commits,
}

impl Store {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path).map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?,
        };
        let result = f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        result
    }

    /// A page of Observations, newest first.
    pub fn list(&self, q: &Query) -> Result<Page, StoreError> {
        let started = Instant::now();
        let limit = match q.limit {
            0 => 100,
            n => n.min(1000),
        };
        let mut sql = format!("{SELECT} WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = &q.source {
            sql.push_str(" AND o.source = ?");
            args.push(s.clone().into());
        }
        if let Some(sev) = q.min_severity {
            sql.push_str(" AND o.severity >= ?");
            args.push(i64::from(sev.rank()).into());
        }
        if let Some(ns) = &q.namespace {
            sql.push_str(" AND o.namespace = ?");
            args.push(ns.clone().into());
        }
        if let Some(t) = q.since {
            sql.push_str(concat!(" AND ", last_seen!(), " >= ?"));
            args.push(nanos(t).into());
        }
        if let Some(t) = q.until {
            sql.push_str(concat!(" AND ", last_seen!(), " < ?"));
            args.push(nanos(t).into());
        }
        if let Some(text) = &q.text {
            let pattern = format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            sql.push_str(" AND (o.title LIKE ? ESCAPE '\\' OR o.message LIKE ? ESCAPE '\\')");
            args.push(pattern.clone().into());
            args.push(pattern.into());
        }
        if let Some(after) = q.after {
            sql.push_str(" AND o.id < ?");
            args.push(after.into());
        }
        sql.push_str(" ORDER BY o.id DESC LIMIT ?");
        args.push(((limit + 1) as i64).into());
        let page = self.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), row)?;
            let mut items = Vec::with_capacity(limit + 1);
            for r in rows {
                items.push(r??);
            }
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|s| s.id)
            } else {
                None
            };
            Ok(Page { items, next })
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        page
    }

    /// One Observation by id.
    pub fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
        let started = Instant::now();
        let found = self.with(|conn| {
            let sql = format!("{SELECT} WHERE o.id = ?1");
            let found = conn.prepare_cached(&sql)?.query_row([id], row).optional()?;
            found.transpose()
        });
        self.timings.get.record(started.elapsed().as_secs_f64());
        found
    }

    /// Observations and their occurrences, by source and severity.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source, severity, observations, occurrences FROM observation_counts
                 WHERE observations > 0 ORDER BY source, severity",
            )?;
            let rows = stmt.query_map([], |r| {
                let rank: u8 = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    rank,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (source, rank, rows, total) = r?;
                let severity = Severity::ALL
                    .get(rank as usize)
                    .copied()
                    .unwrap_or(Severity::Info);
                out.push((source, severity, rows as u64, total as u64));
            }
            Ok(StoreCounts {
                by_source_severity: out,
            })
        })
    }
}

mod checkpoint;
mod dead_letters;
mod positions;
mod retention;

use checkpoint::{Checkpointer, Commits};
pub use dead_letters::{DEAD_LETTER_EVENTS, DeadLetterCounts, StoredDeadLetter};
pub use retention::{PURGE_CHUNK, Retention};
