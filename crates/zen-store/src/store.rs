//! [`Store`]: the reading half of whichever store the daemon was given — SQLite or PostgreSQL —
//! behind one interface, so the server, the tails and the report watchers never know which.

use super::*;
use zen_sink::Findings;

/// The store's reads, and the writes beside the sink's (dead letters, the audit log, tail
/// positions, report findings, retention); safe to share between threads.
#[derive(Debug)]
pub struct Store(pub(crate) Backend);

#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(Sqlite),
    Postgres(pg::Postgres),
}

/// Calls the method of whichever backend the store has (they have the same ones).
macro_rules! each {
    ($store:expr, $b:ident => $call:expr) => {
        match &$store.0 {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// The backend's name: `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self.0 {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where it is: the SQLite file, or the PostgreSQL server and database (no password).
    pub fn describe(&self) -> String {
        match &self.0 {
            Backend::Sqlite(b) => b.path.display().to_string(),
            Backend::Postgres(b) => b.describe().to_owned(),
        }
    }

    /// A page of Observations, newest first.
    pub fn list(&self, q: &Query) -> Result<Page, StoreError> {
        each!(self, b => b.list(q))
    }

    /// One Observation by id.
    pub fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
        each!(self, b => b.get(id))
    }

    /// Observations and their occurrences, by source and severity.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        each!(self, b => b.counts())
    }

    /// The `limit` (at most 100) rules or namespaces with the most Observations last seen in
    /// `[since, until)`, most first.
    pub fn top(
        &self,
        by: TopBy,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Top>, StoreError> {
        each!(self, b => b.top(by, since, until, limit))
    }

    /// Deletes Observations last received (written, or seen again) before `cutoff`, a chunk
    /// of [`PURGE_CHUNK`] at a time, and says how many.
    pub fn purge(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        each!(self, b => b.purge(cutoff))
    }

    /// Keeps a dead letter; past [`DEAD_LETTER_EVENTS`] events in all, the oldest letters go.
    pub fn keep_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        each!(self, b => b.keep_dead_letter(letter))
    }

    /// A page of dead letters, newest first, after the cursor `after`; and the next cursor.
    pub fn dead_letters(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredDeadLetter>, Option<i64>), StoreError> {
        each!(self, b => b.dead_letters(after, limit))
    }

    /// Dead letters and the events in them.
    pub fn dead_letter_counts(&self) -> Result<DeadLetterCounts, StoreError> {
        each!(self, b => b.dead_letter_counts())
    }

    /// Removes a dead letter (replayed); says whether it was there.
    pub fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        each!(self, b => b.remove_dead_letter(id))
    }

    /// Records an administrative request.
    pub fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        each!(self, b => b.record_audit(entry))
    }

    /// A page of the audit log, newest first, after the cursor `after`; and the next cursor.
    pub fn audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredAuditEntry>, Option<i64>), StoreError> {
        each!(self, b => b.audit(after, limit))
    }
}

impl Positions for Store {
    fn load(&self, path: &Path) -> Option<TailPosition> {
        each!(self, b => b.load(path))
    }

    fn save(&self, path: &Path, position: TailPosition) {
        each!(self, b => b.save(path, position))
    }
}

impl Findings for Store {
    fn open(&self) -> Result<Vec<(String, Fingerprint)>, SinkError> {
        each!(self, b => b.open())
    }

    fn track(&self, findings: &[(&str, Fingerprint)]) -> Result<(), SinkError> {
        each!(self, b => b.track(findings))
    }

    fn resolve(&self, fingerprints: &[Fingerprint], at: Timestamp) -> Result<usize, SinkError> {
        each!(self, b => b.resolve(fingerprints, at))
    }
}
