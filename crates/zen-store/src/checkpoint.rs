//! The checkpointer: the WAL copied into the database beside the writer, never by a commit.

use super::*;

/// How often the WAL is checkpointed into the database. A checkpoint's copy and `fsync` slow
/// the commits beside it, more than in proportion to its size: four small ones a second left
/// acknowledgements a shorter tail than one a second (docs/benchmarks.md, "End to end"), and
/// fewer, larger ones a longer tail.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest the checkpointer sleeps while nothing is committed: the first checkpoint of a
/// burst after a quiet spell comes at most this late.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Checkpoints the WAL on a connection and thread of its own, every [`CHECKPOINT_EVERY`], in
/// `PASSIVE` mode (beside the writer, never blocking it); a last `TRUNCATE` checkpoint when the
/// writer goes. While nothing is committed after its last complete checkpoint, it skips its turns
/// and wakes less often: idle, checkpointing four times a second cost 0.06-0.07 % of a core
/// (docs/benchmarks.md, "End to end").
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Commits to the store so far, by the writer and the purge, counted for the [`Checkpointer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Commits(Arc<AtomicU64>);

impl Commits {
    pub(crate) fn note(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Checkpointer {
    pub(crate) fn start(path: &Path, commits: Commits) -> Result<Checkpointer, StoreError> {
        let conn = connect(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        // Whether the checkpoint copied the whole WAL: `(busy, frames in the WAL, frames copied)`.
        let checkpoint = move |mode: &str| {
            let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
            });
            done.unwrap_or_else(|_| {
                metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store")
                    .increment(1);
                false
            })
        };
        let thread = std::thread::Builder::new()
            .name("zen-store-checkpoint".into())
            .spawn(move || {
                // Commits the last complete checkpoint saw; read before it began, so a commit
                // that lands during a checkpoint is checkpointed again at the next turn.
                let mut seen = 0;
                let mut wait = CHECKPOINT_EVERY;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(wait)
                {
                    let now = commits.count();
                    if now == seen {
                        // Idle: wake less often, up to [`CHECKPOINT_IDLE`].
                        wait = (wait * 2).min(CHECKPOINT_IDLE);
                        continue;
                    }
                    wait = CHECKPOINT_EVERY;
                    if checkpoint("PASSIVE") {
                        seen = now;
                    }
                }
                checkpoint("TRUNCATE");
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
