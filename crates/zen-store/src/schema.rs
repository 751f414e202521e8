//! The schema: migrations applied in order, and how a connection is opened.

use std::path::Path;

use rusqlite::Connection;

/// Schema versions, applied in order; `PRAGMA user_version` says how many are in.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // v9: duplicate counts an acknowledged write made durable, one row per write, until they
    // are added to their rows' repeats (the sink's `settle`, and at every open).
    "CREATE TABLE repeat_journal (
        id INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        counts BLOB NOT NULL
    );",
    // v10: the findings of watched reports (Kubernetes mode), by fingerprint: the report that
    // holds each, and when it left its report (resolved). Written once the finding's
    // Observation is committed; read back at start, so a restart resolves what left while the
    // daemon was away and writes nothing twice.
    "CREATE TABLE report_findings (
        fingerprint BLOB PRIMARY KEY,
        report TEXT NOT NULL,
        resolved_at INTEGER
    ) WITHOUT ROWID;",
    // v11: the audit log of administrative requests (every change but ingestion), allowed or
    // refused: who (the token's name), what (method and path), the answer's status, when.
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        token TEXT NOT NULL,
        action TEXT NOT NULL,
        status INTEGER NOT NULL
    );",
];

/// How long a connection waits for a lock another holds, unless told otherwise.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode a commit survives a crash of the process; only a power loss may take the last.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}
