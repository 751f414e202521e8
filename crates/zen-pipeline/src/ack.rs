//! End-to-end acknowledgement: a submitter learns when every event it submitted has an outcome.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the events of one acknowledged submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// Written by the sink, filtered, or folded into a kept duplicate.
    pub settled: usize,
    /// Handed to the dead letters: not stored.
    pub dead_lettered: usize,
}

type Done = Box<dyn FnOnce(AckOutcome) + Send>;

/// Shared by the events of one submission; calls its callback, once, when the last of them has
/// an outcome. Runtime-agnostic: the callback may wake an async task or a thread.
pub struct Ack {
    remaining: AtomicUsize,
    settled: AtomicUsize,
    dead: AtomicUsize,
    done: Mutex<Option<Done>>,
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Ack {
    /// An acknowledgement for `events` events; `done` is called when all have an outcome
    /// (at once for none).
    pub fn new(
        events: usize,
        done: impl FnOnce(AckOutcome) + Send + 'static,
    ) -> std::sync::Arc<Ack> {
        let ack = std::sync::Arc::new(Ack {
            remaining: AtomicUsize::new(events),
            settled: AtomicUsize::new(0),
            dead: AtomicUsize::new(0),
            done: Mutex::new(Some(Box::new(done))),
        });
        if events == 0 {
            ack.finish();
        }
        ack
    }

    /// Records the outcome of `n` events.
    pub(crate) fn resolve(&self, n: usize, dead_lettered: bool) {
        let counter = if dead_lettered {
            &self.dead
        } else {
            &self.settled
        };
        counter.fetch_add(n, Ordering::AcqRel);
        if self.remaining.fetch_sub(n, Ordering::AcqRel) == n {
            self.finish();
        }
    }

    fn finish(&self) {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done {
            done(AckOutcome {
                settled: self.settled.load(Ordering::Acquire),
                dead_lettered: self.dead.load(Ordering::Acquire),
            });
        }
    }
}
