//! The store of Observations: embedded SQLite (bundled, nothing to install) in WAL mode, or a
//! PostgreSQL database replicas share ([`open_postgres`]; its sink upserts each batch on
//! fingerprint and dedup window in one statement, so replicas merge the same finding into one
//! row). [`Store`] reads either; the rest of the daemon does not know which it has.
//!
//! SQLite:
//! [`open`] migrates the database to the current schema and returns two halves: the
//! [`SqliteSink`], the one writer — it is the pipeline's [`Sink`], writing each call in one
//! transaction and adding duplicate counts to the kept Observation's repeats (a narrow table
//! beside its row) instead of adding rows — and the [`Store`], which reads (filtered,
//! keyset-paginated lists; one Observation; counts by source and severity) on connections of its
//! own, alongside the writer, and purges what was last received longer ago than the retention
//! period (by zen-watcher's clock, never the finding's own time). It also keeps the audit log
//! of administrative requests.
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

/// When the finding of an Observation of [`observations!`] left its watched report; `NULL`
/// while it is in it, or when it came from elsewhere.
macro_rules! resolved_at {
    () => {
        "(SELECT k.resolved_at FROM report_findings k WHERE k.fingerprint = o.fingerprint)"
    };
}

/// Column `i` of `row` as text, borrowed.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, rusqlite::Error> {
    row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The size of a keyset page of ids (dead letters, the audit log): 100 when 0, at most 1,000.
fn page_size(limit: usize) -> usize {
    match limit {
        0 => 100,
        n => n.min(1000),
    }
}

/// Cuts a page read one row longer than `limit` back to `limit`; the next page's cursor (the
/// last id kept) when there was more.
fn cut_page<T>(items: &mut Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> Option<i64> {
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(id)
}

/// A store that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store {store} has schema version {found}, newer than this build knows ({known})")]
    TooNew {
        store: String,
        found: i64,
        known: usize,
    },
    #[error("the store's configuration: {0}")]
    Config(String),
    #[error("connecting to the store {store}: {}", pg::full(source))]
    Connect {
        store: String,
        source: ::postgres::Error,
    },
    #[error("store query: {}", pg::full(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("starting the store's checkpoint thread: {0}")]
    Thread(std::io::Error),
    #[error("store query: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("store row {id}: {problem}")]
    Corrupt { id: i64, problem: String },
}

/// The bound on the WAL, by default: 256 MiB.
pub const WAL_MAX_BYTES: u64 = 256 << 20;

/// Opens (creating and migrating as needed) the store at `path`, the WAL bounded by
/// [`WAL_MAX_BYTES`].
pub fn open(path: &Path) -> Result<(Store, SqliteSink), StoreError> {
    open_bounded(path, WAL_MAX_BYTES)
}

/// Opens (creating and migrating as needed) the store at `path`, its WAL kept under
/// `wal_max_bytes` (overshooting by what a quarter of a second's commits add, while readers let the WAL be
/// started over).
pub fn open_bounded(path: &Path, wal_max_bytes: u64) -> Result<(Store, SqliteSink), StoreError> {
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
            store: path.display().to_string(),
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
    let wal = WalBound::install(&mut conn, path, wal_max_bytes).map_err(err)?;
    let commits = Commits::default();
    let checkpointer = Checkpointer::start(path, commits.clone(), &wal)?;
    let store = Sqlite {
        path: path.to_owned(),
        readers: Mutex::new(Vec::new()),
        timings: Timings::new(),
        commits: commits.clone(),
    };
    let journal = Journal::load(&conn).map_err(err)?;
    let mut sink = SqliteSink {
        conn,
        timings: Timings::new(),
        seq_base,
        keys: Keys::default(),
        recent: Recent::default(),
        journal,
        commits,
        busy: schema::BUSY_TIMEOUT,
        wal,
        _checkpointer: checkpointer,
    };
    // Counts a previous run journaled and had not added yet: added before anything reads.
    while sink.settle_slice(usize::MAX).map_err(err)? {}
    Ok((Store(Backend::Sqlite(store)), sink))
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

/// An event's labels as stored: a JSON object.
fn labels_json(e: &Event) -> Cow<'_, str> {
    // Most events have none: no need to serialise (and allocate) an empty map.
    if e.labels.is_empty() {
        Cow::Borrowed("{}")
    } else {
        Cow::Owned(serde_json::to_string(&e.labels).unwrap_or_else(|_| "{}".to_owned()))
    }
}

fn timestamp(ns: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
}

mod audit;
mod checkpoint;
mod dead_letters;
mod findings;
mod pg;
mod positions;
mod query;
mod retention;
mod schema;
mod sink;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditEntry, StoredAuditEntry};
use checkpoint::{Checkpointer, Commits, WalBound};
pub use dead_letters::{DEAD_LETTER_EVENTS, DeadLetterCounts, StoredDeadLetter};
pub use pg::{PostgresSettings, PostgresSink, open as open_postgres};
use query::{Arg, Columns, Dialect, Sqlite, list_clause};
pub use query::{Page, Query, State, StoreCounts, Stored, Top, TopBy};
pub use retention::{PURGE_CHUNK, Retention};
use schema::{MIGRATIONS, connect};
pub use sink::SqliteSink;
use sink::{Journal, Keys, Recent, Tally};
use store::Backend;
pub use store::Store;
