//! The pipeline's own accounting: every event received ends written, filtered, deduplicated or
//! dead-lettered, and these counters say how many of each.

use std::sync::atomic::{AtomicU64, Ordering};

use zen_filter::DropReason;

/// Where a drop reason is counted.
pub(crate) fn reason_index(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

/// Counters shared by the pipeline's threads.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) submissions: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) parse_errors: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) filtered_by_reason: [AtomicU64; DropReason::ALL.len()],
    pub(crate) deduplicated: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dead_letters_lost: AtomicU64,
    pub(crate) duplicate_updates: AtomicU64,
    /// Since when the primary sink has been failing (retrying), and what it said last; none
    /// while it writes.
    pub(crate) failing: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

/// See [`Counts::ratios`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    pub efficiency: f64,
    pub filtered: f64,
    pub deduplicated: f64,
}

/// A reading of the pipeline's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Submissions accepted into the queue.
    pub submissions: u64,
    /// Submissions refused because the queue was full.
    pub rejected_full: u64,
    /// Items of payloads that could not be read (and payloads that could not be read at all).
    pub parse_errors: u64,
    /// Events that entered processing.
    pub received: u64,
    /// Events the sink committed.
    pub written: u64,
    pub filtered: u64,
    /// `filtered`, by reason, in the order of `DropReason::ALL`.
    pub filtered_by_reason: [u64; DropReason::ALL.len()],
    pub deduplicated: u64,
    /// Events handed to the dead letters (including those lost because nobody took them).
    pub dead_lettered: u64,
    /// Dead-letter batches dropped because the hand-off was full.
    pub dead_letters_lost: u64,
    /// Duplicate-count updates the sink applied.
    pub duplicate_updates: u64,
}

impl Counts {
    /// Shares of the events received since start: not lost to errors (`1 − dead-lettered /
    /// received`), filtered, and de-duplicated. `None` before the first event, rather than
    /// dividing by zero.
    pub fn ratios(&self) -> Option<Ratios> {
        if self.received == 0 {
            return None;
        }
        let of = |n: u64| n as f64 / self.received as f64;
        Some(Ratios {
            efficiency: 1.0 - of(self.dead_lettered),
            filtered: of(self.filtered),
            deduplicated: of(self.deduplicated),
        })
    }

    /// Filtered events by reason, leaving out reasons that dropped none.
    pub fn filtered_by(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .zip(self.filtered_by_reason)
            .filter(|(_, n)| *n > 0)
    }

    /// Events received but not yet written, filtered, deduplicated or dead-lettered.
    pub fn in_flight(&self) -> u64 {
        self.received
            .saturating_sub(self.written + self.filtered + self.deduplicated + self.dead_lettered)
    }
}

impl Stats {
    pub(crate) fn read(&self) -> Counts {
        let r = |c: &AtomicU64| c.load(Ordering::Acquire);
        Counts {
            submissions: r(&self.submissions),
            rejected_full: r(&self.rejected_full),
            parse_errors: r(&self.parse_errors),
            received: r(&self.received),
            written: r(&self.written),
            filtered: r(&self.filtered),
            filtered_by_reason: std::array::from_fn(|i| r(&self.filtered_by_reason[i])),
            deduplicated: r(&self.deduplicated),
            dead_lettered: r(&self.dead_lettered),
            dead_letters_lost: r(&self.dead_letters_lost),
            duplicate_updates: r(&self.duplicate_updates),
        }
    }
}
