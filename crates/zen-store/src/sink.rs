//! The one writer: [`SqliteSink`] writes each call in one transaction, adds duplicate counts to
//! the kept rows' repeats, and keeps `observation_counts` in step.

use std::collections::BTreeMap;

use super::*;

/// Adds to `observation_counts`: `?3` rows and `?4` occurrences of source `?1`, severity `?2`.
pub(crate) const ADD_COUNTS: &str =
    "INSERT INTO observation_counts (source, severity, observations, occurrences)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (source, severity) DO UPDATE SET
        observations = observations + excluded.observations,
        occurrences = occurrences + excluded.occurrences";

/// The keys of `observation_counts` met so far — (source, severity) pairs — by index.
#[derive(Debug, Default)]
pub(crate) struct Keys(Vec<(String, u8)>);

impl Keys {
    pub(crate) fn index(&mut self, source: &str, severity: u8) -> usize {
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
pub(crate) struct Recent {
    /// `ring[i]` is the key index of sequence number `first + i`, or [`Recent::NONE`].
    pub(crate) first: u64,
    pub(crate) ring: VecDeque<u8>,
}

impl Recent {
    /// Not written, or under a key past the first 255.
    const NONE: u8 = u8::MAX;
    /// Sequence numbers remembered: 128 KiB.
    const LEN: usize = 1 << 17;

    pub(crate) fn note(&mut self, seq: u64, key: usize) {
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

    pub(crate) fn key(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        Some(*self.ring.get(i)?)
            .filter(|&k| k != Self::NONE)
            .map(usize::from)
    }
}

/// Rows and occurrences to add to `observation_counts`, by index in [`Keys`].
#[derive(Debug, Default)]
pub(crate) struct Tally(Vec<(i64, i64)>);

impl Tally {
    pub(crate) fn add(&mut self, key: usize, rows: i64, occurrences: i64) {
        if key >= self.0.len() {
            self.0.resize(key + 1, (0, 0));
        }
        self.0[key].0 += rows;
        self.0[key].1 += occurrences;
    }

    /// Adds the tally to `observation_counts`, inside the caller's transaction.
    pub(crate) fn apply(&self, keys: &Keys, conn: &Connection) -> Result<(), rusqlite::Error> {
        let mut add = conn.prepare_cached(ADD_COUNTS)?;
        for ((source, severity), (rows, occurrences)) in keys.0.iter().zip(&self.0) {
            if (*rows, *occurrences) != (0, 0) {
                add.execute(params![source, severity, rows, occurrences])?;
            }
        }
        Ok(())
    }
}

/// Whether an error may pass if tried again.
pub(crate) fn sink_error(e: rusqlite::Error) -> SinkError {
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

/// Duplicate counts an acknowledged write made durable in `repeat_journal` and not yet added
/// to their rows: one entry per write, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: VecDeque<Journaled>,
    /// Counts in `entries`.
    counts: usize,
}

/// One write's journaled counts.
#[derive(Debug)]
struct Journaled {
    /// Its row in `repeat_journal`.
    id: i64,
    /// When the write was committed: what the counts' repeats say they were received at.
    received_at: i64,
    counts: Vec<Count>,
}

/// A duplicate count by row id: how many more sightings, and the latest one's detection time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    id: i64,
    n: i64,
    last_seen: i64,
}

impl Count {
    /// As journaled: the three numbers, little-endian.
    const BYTES: usize = 24;

    fn encode(counts: &[Count]) -> Vec<u8> {
        let mut blob = Vec::with_capacity(counts.len() * Self::BYTES);
        for c in counts {
            for v in [c.id, c.n, c.last_seen] {
                blob.extend_from_slice(&v.to_le_bytes());
            }
        }
        blob
    }

    /// `None` when `blob` is not a whole number of counts.
    fn decode(blob: &[u8]) -> Option<Vec<Count>> {
        if !blob.len().is_multiple_of(Self::BYTES) {
            return None;
        }
        let word = |b: &[u8]| b.try_into().ok().map(i64::from_le_bytes);
        blob.chunks_exact(Self::BYTES)
            .map(|c| {
                Some(Count {
                    id: word(&c[..8])?,
                    n: word(&c[8..16])?,
                    last_seen: word(&c[16..])?,
                })
            })
            .collect()
    }
}

impl Journal {
    /// The journal as a previous run left it; a row that cannot be read is said and deleted.
    pub(crate) fn load(conn: &Connection) -> Result<Journal, rusqlite::Error> {
        let mut journal = Journal::default();
        let mut torn = Vec::new();
        let mut read =
            conn.prepare("SELECT id, received_at, counts FROM repeat_journal ORDER BY id")?;
        let rows = read.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        for row in rows {
            let (id, received_at, blob) = row?;
            match Count::decode(&blob) {
                Some(counts) => journal.push(Journaled {
                    id,
                    received_at,
                    counts,
                }),
                None => {
                    metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store").increment(1);
                    tracing::error!(
                        row = id,
                        bytes = blob.len(),
                        "repeat_journal: a row is not a whole number of counts; its counts are lost"
                    );
                    torn.push(id);
                }
            }
        }
        for id in torn {
            conn.execute("DELETE FROM repeat_journal WHERE id = ?1", [id])?;
        }
        Ok(journal)
    }

    fn push(&mut self, entry: Journaled) {
        self.counts += entry.counts.len();
        self.entries.push_back(entry);
    }
}

/// The most rows journaled counts are added to in one transaction.
const SETTLE_SLICE: usize = 256;

/// Journaled counts past which a write settles a slice straight after, so that the journal (and
/// the work left for the next start) stays bounded when the sink is never idle.
const JOURNAL_BOUND: usize = 16_384;

/// How a write's duplicate counts are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counting {
    /// Added to their rows' repeats now.
    Apply,
    /// Journaled, as one row: a write an acknowledgement waits for pays for one appended row
    /// rather than an upsert per count into `observation_repeats` (docs/benchmarks.md,
    /// "Acknowledged duplicates journaled"). [`Sink::settle`] adds them later.
    Journal,
}

/// The one writer of the store; the pipeline's sink.
#[derive(Debug)]
pub struct SqliteSink {
    pub(crate) conn: Connection,
    pub(crate) timings: Timings,
    /// Added to the pipeline's sequence numbers ([`Kept::seq`]), which start at
    /// 0 in every run, to make the row id: one more than the largest stored when the store was
    /// opened, so a restart never reuses the id of a stored row (as SQLite's own row ids, it may
    /// reuse those of rows all purged).
    pub(crate) seq_base: i64,
    pub(crate) keys: Keys,
    pub(crate) recent: Recent,
    pub(crate) journal: Journal,
    pub(crate) commits: Commits,
    pub(crate) wal: WalBound,
    /// The connection's busy timeout ([`SqliteSink::set_busy_timeout`]).
    pub(crate) busy: std::time::Duration,
    /// Dropped after `conn` (fields drop in order): the last checkpoint sees every commit.
    pub(crate) _checkpointer: Checkpointer,
}

impl SqliteSink {
    /// How long a write waits for a lock held by another connection before it fails (retryably).
    pub fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(timeout)?;
        self.busy = timeout;
        Ok(())
    }
}

/// The row id of the sighting with the pipeline's sequence number `seq`.
pub(crate) fn row_id(base: i64, seq: u64) -> i64 {
    i64::try_from(seq).map_or(i64::MAX, |s| s.saturating_add(base))
}

impl Sink for SqliteSink {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn write(&mut self, _source: &str, events: &[Kept]) -> Result<(), SinkError> {
        self.commit(events, &[], Counting::Apply)
    }

    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        self.commit(&[], updates, Counting::Apply)
    }

    /// One transaction, one commit, the counts journaled: what an acknowledged request with
    /// duplicates waits for.
    fn write_then_count(
        &mut self,
        _source: &str,
        events: &[Kept],
        updates: &[DuplicateUpdate],
    ) -> Result<(), SinkError> {
        self.commit(events, updates, Counting::Journal)?;
        // The write is committed: settling failing now must not make it look failed (a retry
        // would write its rows twice). What is not settled stays journaled, for later.
        if self.journal.counts > JOURNAL_BOUND
            && let Err(e) = self.settle_slice(SETTLE_SLICE).map_err(sink_error)
        {
            tracing::warn!(error = %e, journaled = self.journal.counts, "settling journaled counts failed; they stay journaled");
        }
        Ok(())
    }

    fn settle(&mut self) -> Result<bool, SinkError> {
        self.settle_slice(SETTLE_SLICE).map_err(sink_error)
    }
}

/// Adds `c` to its row's repeats and to `tally` under the row's key, inside the caller's
/// transaction. A sighting never written (or purged since) has no row, and nothing is counted.
fn add_repeat(
    tx: &rusqlite::Transaction<'_>,
    (keys, recent, base): (&mut Keys, &Recent, i64),
    c: Count,
    received_at: i64,
    tally: &mut Tally,
) -> Result<(), rusqlite::Error> {
    let mut update = tx.prepare_cached(
        "INSERT INTO observation_repeats (id, repeats, last_seen, received_at)
            SELECT ?3, ?1, ?2, ?4 WHERE EXISTS (SELECT 1 FROM observations WHERE id = ?3)
         ON CONFLICT (id) DO UPDATE SET
            repeats = repeats + excluded.repeats,
            last_seen = MAX(last_seen, excluded.last_seen),
            received_at = MAX(received_at, excluded.received_at)",
    )?;
    if update.execute(params![c.n, c.last_seen, c.id, received_at])? == 0 {
        return Ok(());
    }
    // Rows this run wrote lately are known by their sequence number; others are read.
    let known = u64::try_from(c.id - base)
        .ok()
        .and_then(|seq| recent.key(seq));
    let key = match known {
        Some(key) => key,
        None => tx
            .prepare_cached("SELECT source, severity FROM observations WHERE id = ?1")?
            .query_row([c.id], |row| Ok(keys.index(text(row, 0)?, row.get(1)?)))?,
    };
    tally.add(key, 0, c.n);
    Ok(())
}

impl SqliteSink {
    /// Writes `events` and makes `updates` (counts of sightings written before, or in this very
    /// transaction) durable as `counting` says, in one transaction.
    fn commit(
        &mut self,
        events: &[Kept],
        updates: &[DuplicateUpdate],
        counting: Counting,
    ) -> Result<(), SinkError> {
        let started = Instant::now();
        let journaled = match self.transaction(events, updates, counting) {
            Ok(journaled) => journaled,
            Err(e) => {
                if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
                    self.wal.make_room(&self.conn, self.busy);
                }
                return Err(sink_error(e));
            }
        };
        self.commits.note();
        self.wal.after_commit(&self.conn, self.busy);
        if let Some(j) = journaled {
            self.journal.push(j);
        }
        let took = started.elapsed().as_secs_f64();
        if !events.is_empty() {
            self.timings.create.record(took);
        }
        if counting == Counting::Apply && !updates.is_empty() {
            self.timings.update.record(took);
        }
        Ok(())
    }

    /// The transaction of [`SqliteSink::commit`], committed: the counts it journaled, if any.
    fn transaction(
        &mut self,
        events: &[Kept],
        updates: &[DuplicateUpdate],
        counting: Counting,
    ) -> rusqlite::Result<Option<Journaled>> {
        let base = self.seq_base;
        let mut tally = Tally::default();
        let received_at = nanos(Timestamp::now());
        let tx = self.conn.transaction()?;
        if !events.is_empty() {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO observations (fingerprint, source, category, severity, event_type, rule_id, title,
                        message, resource_api_version, resource_kind, resource_name, resource_namespace, namespace,
                        node, detected_at, first_seen, last_seen, count, labels, details, id, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?15, 1, ?16, ?17, ?18, ?19)",
                )
                ?;
            for Kept { seq, event: e } in events {
                let seq = *seq;
                let key = self.keys.index(e.source.as_ref(), e.severity.rank());
                tally.add(key, 1, 1);
                // Noted before the commit: the counts below may be of these rows. Should the
                // transaction fail, a noted key is never read (no count finds an unwritten row).
                self.recent.note(seq, key);
                let r = e.resource.as_ref();
                let labels = labels_json(e);
                insert.execute(params![
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
                ])?;
            }
        }
        let counts = updates.iter().map(|u| Count {
            id: row_id(base, u.seq),
            n: i64::try_from(u.duplicates).unwrap_or(i64::MAX),
            last_seen: nanos(u.last_seen),
        });
        let mut journaled = None;
        match counting {
            _ if updates.is_empty() => {}
            Counting::Apply => {
                for c in counts {
                    add_repeat(
                        &tx,
                        (&mut self.keys, &self.recent, base),
                        c,
                        received_at,
                        &mut tally,
                    )?;
                }
            }
            Counting::Journal => {
                let counts: Vec<Count> = counts.collect();
                tx.prepare_cached(
                    "INSERT INTO repeat_journal (received_at, counts) VALUES (?1, ?2)",
                )
                .and_then(|mut add| add.execute(params![received_at, Count::encode(&counts)]))?;
                journaled = Some(Journaled {
                    id: tx.last_insert_rowid(),
                    received_at,
                    counts,
                });
            }
        }
        tally.apply(&self.keys, &tx)?;
        tx.commit()?;
        Ok(journaled)
    }

    /// Adds the oldest journaled counts to about `rows` rows and deletes their journal rows,
    /// in one transaction; says whether any remain.
    pub(crate) fn settle_slice(&mut self, rows: usize) -> Result<bool, rusqlite::Error> {
        let started = Instant::now();
        // The oldest entries' counts, those of one row added together, until about `rows`
        // rows: fewer upserts, and the pages of repeats visited in order.
        let mut merged: BTreeMap<i64, (Count, i64)> = BTreeMap::new();
        let mut taken: usize = 0;
        for entry in &self.journal.entries {
            if merged.len() >= rows {
                break;
            }
            taken += 1;
            for &c in &entry.counts {
                let (sum, received_at) = merged.entry(c.id).or_insert((
                    Count {
                        n: 0,
                        last_seen: i64::MIN,
                        ..c
                    },
                    i64::MIN,
                ));
                sum.n = sum.n.saturating_add(c.n);
                sum.last_seen = sum.last_seen.max(c.last_seen);
                *received_at = (*received_at).max(entry.received_at);
            }
        }
        let Some(last) = self
            .journal
            .entries
            .get(taken.wrapping_sub(1))
            .map(|e| e.id)
        else {
            return Ok(false);
        };
        let mut tally = Tally::default();
        let tx = self.conn.transaction()?;
        for (c, received_at) in merged.into_values() {
            add_repeat(
                &tx,
                (&mut self.keys, &self.recent, self.seq_base),
                c,
                received_at,
                &mut tally,
            )?;
        }
        tally.apply(&self.keys, &tx)?;
        tx.execute("DELETE FROM repeat_journal WHERE id <= ?1", [last])?;
        tx.commit()?;
        self.commits.note();
        self.wal.after_commit(&self.conn, self.busy);
        for e in self.journal.entries.drain(..taken) {
            self.journal.counts -= e.counts.len();
        }
        self.timings.update.record(started.elapsed().as_secs_f64());
        Ok(!self.journal.entries.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_journal_as_they_were_and_a_torn_blob_is_refused() {
        let counts = [
            Count {
                id: 1,
                n: 3,
                last_seen: -5,
            },
            Count {
                id: i64::MAX,
                n: 1,
                last_seen: i64::MIN,
            },
        ];
        let blob = Count::encode(&counts);
        assert_eq!(blob.len(), 2 * Count::BYTES);
        assert_eq!(Count::decode(&blob).as_deref(), Some(&counts[..]));
        assert_eq!(Count::decode(&blob[..30]), None);
        assert_eq!(Count::decode(&[]), Some(Vec::new()));
    }
}
