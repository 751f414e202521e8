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

/// How long a `RESTART` or `TRUNCATE` checkpoint waits for the writer's transaction and for
/// readers of the WAL, before giving up until its next turn. It holds the writer back while it
/// waits for readers, so it is short; and after one gave up, the next waits this long.
const BOUND_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Checkpoints the WAL on a connection and thread of its own, every [`CHECKPOINT_EVERY`], in
/// `PASSIVE` mode (beside the writer, never blocking it); a last `TRUNCATE` checkpoint when the
/// writer goes. While nothing is committed after its last complete checkpoint, it skips its turns
/// and wakes less often: idle, checkpointing four times a second cost 0.06-0.07 % of a core
/// (docs/benchmarks.md, "End to end"). After a complete checkpoint, a WAL file past its bound
/// (grown while readers kept [`WalBound`] from starting it over) is cut back (`TRUNCATE`). The
/// file's size is `zen_watcher_store_wal_bytes`.
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
    pub(crate) fn start(
        path: &Path,
        commits: Commits,
        bound: &WalBound,
    ) -> Result<Checkpointer, StoreError> {
        let err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = connect(path).map_err(err)?;
        conn.busy_timeout(BOUND_WAIT).map_err(err)?;
        let wal = wal_path(path);
        let (limit, turn) = (bound.limit.clone(), bound.turn.clone());
        let wal_bytes = metrics::gauge!("zen_watcher_store_wal_bytes");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let checkpoint = move |mode: &str| {
            let _turn = turn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            checkpoint(&conn, mode)
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
                        if file_size(&wal) > limit.load(Ordering::Relaxed) {
                            checkpoint("TRUNCATE");
                        }
                    }
                    wal_bytes.set(file_size(&wal) as f64);
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

/// Runs a `wal_checkpoint` in `mode` on `conn`: whether it copied the whole WAL (and, in
/// `RESTART` and `TRUNCATE` modes, started it over). A failure is counted, and is a no.
fn checkpoint(conn: &Connection, mode: &str) -> bool {
    // The pragma answers `(busy, frames in the WAL, frames copied)`.
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
    })
    .unwrap_or_else(|_| {
        metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store")
            .increment(1);
        false
    })
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The WAL's bound with `room` bytes free on its filesystem: `max_bytes`, or a quarter of the
/// room if that is less (but at least [`MIN_LIMIT`]), so that a filling disk fills with the
/// database rather than the WAL, and the WAL a full disk leaves can be copied into the
/// database once some space is freed.
pub(crate) fn effective_limit(max_bytes: u64, room: u64) -> u64 {
    max_bytes.min((room / 4).max(MIN_LIMIT))
}

/// The least the WAL's bound becomes on a filling disk.
const MIN_LIMIT: u64 = 1 << 20;

/// How often the writer looks at the room on the WAL's filesystem (`statvfs`), at most.
const ROOM_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Keeps the WAL under its bound, on the writer's side. A passive checkpoint never catches a
/// writer that commits without pause, so the WAL is never started over and grows (by tens of MB
/// a second flat out). The writer learns the WAL's size at each commit (SQLite's WAL hook); once
/// it holds half the bound, the writer starts it over between two transactions with a `RESTART`
/// checkpoint (copying what the checkpointer has not yet: at most a quarter of a second's
/// commits), or a `TRUNCATE` if its file has grown past the bound. Readers of the WAL's older
/// frames (for up to [`BOUND_WAIT`]) can keep it from being started over: then the writer
/// tries again once the WAL has grown by an eighth of the bound. A passive checkpoint under way
/// is waited for.
///
/// The bound is `store.wal_max_bytes`, or a quarter of the room left on the filesystem when
/// that is less ([`effective_limit`], looked at every [`ROOM_EVERY`]): a filling disk fills
/// with the database, and the WAL a full disk leaves is small enough to be copied into the
/// database once some space is freed ([`WalBound::make_room`]).
#[derive(Debug)]
pub(crate) struct WalBound {
    /// Pages in the WAL after the last commit, as the hook said.
    pages: Arc<AtomicU64>,
    frame: u64,
    /// The bound in force ([`effective_limit`]); the checkpointer reads it.
    limit: Arc<AtomicU64>,
    max_bytes: u64,
    wal: PathBuf,
    /// The WAL's directory, and when to look at its filesystem's room next.
    dir: PathBuf,
    next_room: Instant,
    /// After a try that gave up: no other before the WAL holds this many pages.
    retry_at: u64,
    /// Held by whoever checkpoints, the checkpointer or the writer: SQLite runs one checkpoint
    /// at a time and refuses another at once, so without it the writer's `RESTART`s failed
    /// for as long as a passive checkpoint took (hundreds of them in a row, on a busy machine).
    turn: Arc<Mutex<()>>,
}

impl WalBound {
    /// Installs the WAL hook on the writer's connection to the database at `path`.
    pub(crate) fn install(
        conn: &mut Connection,
        path: &Path,
        max_bytes: u64,
    ) -> rusqlite::Result<WalBound> {
        // A frame is a page and a 24-byte header.
        let frame = conn
            .pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))?
            .unsigned_abs()
            + 24;
        let pages = Arc::new(AtomicU64::new(0));
        let seen = pages.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                seen.store(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                Ok(())
            },
        ))?;
        Ok(WalBound {
            pages,
            frame,
            limit: Arc::new(AtomicU64::new(max_bytes)),
            max_bytes,
            wal: wal_path(path),
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            next_room: Instant::now(),
            retry_at: 0,
            turn: Arc::default(),
        })
    }

    /// After a commit on `conn` (whose busy timeout is `busy`): the WAL started over if it holds
    /// half its bound.
    pub(crate) fn after_commit(&mut self, conn: &Connection, busy: std::time::Duration) {
        let now = Instant::now();
        if now >= self.next_room {
            self.next_room = now + ROOM_EVERY;
            let room = rustix::fs::statvfs(&self.dir)
                .map_or(u64::MAX, |s| s.f_bavail.saturating_mul(s.f_frsize));
            self.limit
                .store(effective_limit(self.max_bytes, room), Ordering::Relaxed);
        }
        let limit = self.limit.load(Ordering::Relaxed);
        let pages = self.pages.load(Ordering::Relaxed);
        if pages * self.frame < limit / 2 || pages < self.retry_at {
            return;
        }
        let mode = if file_size(&self.wal) > limit {
            "TRUNCATE"
        } else {
            "RESTART"
        };
        // Setting a busy timeout cannot fail on an open connection.
        let _ = conn.busy_timeout(BOUND_WAIT);
        let started_over = self.exclusive(|| checkpoint(conn, mode));
        let _ = conn.busy_timeout(busy);
        if started_over {
            self.pages.store(0, Ordering::Relaxed);
            self.retry_at = 0;
        } else {
            // Readers kept it (having held the writer up to BOUND_WAIT): again once the WAL has
            // grown by an eighth of the bound, so that it overshoots by little and readers that
            // stay do not hold up every commit.
            self.retry_at = pages + limit / 8 / self.frame;
        }
    }

    /// `run`, the checkpointer's passive checkpoint finished first.
    fn exclusive(&self, run: impl FnOnce() -> bool) -> bool {
        let _turn = self
            .turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        run()
    }

    /// After a write failed for a full disk, on the writer's `conn` (whose busy timeout is
    /// `busy`): the WAL copied into the database and cut back (`TRUNCATE`), giving its space
    /// back. Without it, a full disk stays full: the writer's retries grow the WAL into whatever
    /// is freed, and the checkpoint that would let the WAL start over has no room to grow the
    /// database. It fails as long as there is no room for the copy, and is tried again at the
    /// next failure.
    pub(crate) fn make_room(&mut self, conn: &Connection, busy: std::time::Duration) {
        // Setting a busy timeout cannot fail on an open connection.
        let _ = conn.busy_timeout(BOUND_WAIT);
        if self.exclusive(|| checkpoint(conn, "TRUNCATE")) {
            self.pages.store(0, Ordering::Relaxed);
        }
        let _ = conn.busy_timeout(busy);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_a_quarter_of_the_room_when_that_is_less_and_never_under_a_mib() {
        assert_eq!(effective_limit(256 << 20, u64::MAX), 256 << 20);
        assert_eq!(effective_limit(256 << 20, 1 << 40), 256 << 20);
        assert_eq!(effective_limit(256 << 20, 400 << 20), 100 << 20);
        assert_eq!(effective_limit(256 << 20, 0), MIN_LIMIT);
        assert_eq!(effective_limit(256 << 20, 2 << 20), MIN_LIMIT);
    }
}
