//! Retention: what was last received longer ago than the retention period is purged, a chunk
//! at a time, by a loop of its own.

use super::*;

impl Sqlite {
    /// Deletes Observations last received (written, or seen again) before `cutoff`, and says
    /// how many. It deletes
    /// [`PURGE_CHUNK`] at a time, each in a transaction of its own, so the writer never waits
    /// long for the lock: a first purge of millions of rows in one transaction would hold every
    /// write past its busy timeout.
    pub(crate) fn purge(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let started = Instant::now();
        let purged = metrics::counter!("zen_watcher_store_purged_total");
        let result = self.with(|conn| {
            let mut total = 0;
            loop {
                let n = purge_chunk(conn, cutoff)?;
                self.commits.note();
                purged.increment(n as u64);
                total += n;
                if n < PURGE_CHUNK {
                    // Findings resolved before the cutoff: their Observations went with it.
                    conn.prepare_cached("DELETE FROM report_findings WHERE resolved_at < ?1")?
                        .execute([nanos(cutoff)])?;
                    return Ok(total);
                }
            }
        });
        self.timings.delete.record(started.elapsed().as_secs_f64());
        result
    }
}

/// The retention loop: a thread that purges, every `every`, what was last received longer than
/// `retention` ago, until dropped.
#[derive(Debug)]
pub struct Retention {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Store {
    /// Starts the retention loop; its first purge runs at once (`every` is at least a second).
    pub fn retain(
        self: &Arc<Self>,
        retention: std::time::Duration,
        every: std::time::Duration,
    ) -> std::io::Result<Retention> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let store = self.clone();
        let every = every.max(std::time::Duration::from_secs(1));
        let retention =
            jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX);
        let thread = std::thread::Builder::new()
            .name("zen-retention".to_owned())
            .spawn(move || {
                loop {
                    if let Ok(cutoff) = Timestamp::now().checked_sub(retention) {
                        match store.purge(cutoff) {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(purged = n, "retention: purged old Observations")
                            }
                            Err(e) => tracing::error!(error = %e, "retention purge failed"),
                        }
                    }
                    match stopped.recv_timeout(every) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Retention {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The most rows one purge transaction deletes.
pub const PURGE_CHUNK: usize = 5_000;

/// Deletes up to [`PURGE_CHUNK`] Observations last received before `cutoff`, with their repeats
/// and counts, in one transaction.
fn purge_chunk(conn: &Connection, cutoff: Timestamp) -> Result<usize, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (mut keys, mut tally) = (Keys::default(), Tally::default());
    let mut n = 0;
    {
        let mut delete = tx.prepare_cached(concat!(
            "DELETE FROM observations WHERE id IN (SELECT o.id FROM ",
            observations!(),
            " WHERE o.received_at < ?1 AND ",
            received_at!(),
            " < ?1 LIMIT ?2) RETURNING id, source, severity, count"
        ))?;
        let mut repeats =
            tx.prepare_cached("DELETE FROM observation_repeats WHERE id = ?1 RETURNING repeats")?;
        let mut rows = delete.query(params![nanos(cutoff), PURGE_CHUNK as i64])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let repeated: Option<i64> = repeats.query_row([id], |r| r.get(0)).optional()?;
            let key = keys.index(text(row, 1)?, row.get(2)?);
            tally.add(key, -1, -(row.get::<_, i64>(3)? + repeated.unwrap_or(0)));
            n += 1;
        }
    }
    tally.apply(&keys, &tx)?;
    tx.commit()?;
    Ok(n)
}
