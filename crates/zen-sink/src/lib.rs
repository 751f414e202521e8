//! The contract between the pipeline and the places kept events are written to: the [`Sink`]
//! trait, the [`Kept`] event it is handed (an event with the deduper's number for it, the two
//! together by type), [`SinkError`], the [`DeadLetter`] of what no attempt could write, and the
//! [`Positions`] a store keeps for tailed files and the [`Findings`] of watched reports.
//!
//! The pipeline (zen-pipeline) calls sinks; stores (zen-store) and writers implement them. This
//! crate sits below both, so a store knows nothing of the pipeline's threads, queues or runtime.
//! It does no IO.

use zen_dedup::DuplicateUpdate;
use zen_model::Event;

/// An event the pipeline keeps, with the deduper's number for its first sighting
/// ([`zen_dedup::Verdict::New`]): the duplicate counts of that finding name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub seq: u64,
    pub event: Event,
}

/// Events no sink would take, after every attempt: kept apart (zen-store's dead-letter table)
/// to be looked at and replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub source: String,
    pub events: Vec<Event>,
    /// What the sink said, the last time.
    pub error: String,
    pub attempts: u32,
}

/// Why a sink could not take a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// Worth trying again (a locked or full store), or not (data it will never accept).
    pub retryable: bool,
}

/// A destination for events: the embedded store, Kubernetes, a file.
pub trait Sink: Send {
    /// The `sink` label of `zen_watcher_observations_created_total`.
    fn name(&self) -> &str;
    /// Writes kept events of one source, all or nothing.
    fn write(&mut self, source: &str, events: &[Kept]) -> Result<(), SinkError>;
    /// Adds duplicate counts to kept events, found by [`DuplicateUpdate::seq`]. An update whose
    /// event was never written (filtered after de-duplication, dead-lettered) changes nothing.
    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError>;
    /// Writes kept events, then adds duplicate counts (some maybe of these very events): what
    /// an acknowledged request with duplicates waits for, so both are durable when it returns.
    /// A store does both in one transaction, and may journal the counts and add them to their
    /// rows later ([`Sink::settle`]); by default, one call and then the other.
    fn write_then_count(
        &mut self,
        source: &str,
        events: &[Kept],
        updates: &[DuplicateUpdate],
    ) -> Result<(), SinkError> {
        self.write(source, events)?;
        self.apply_duplicates(updates)
    }
    /// Adds a slice of the counts [`Sink::write_then_count`] journaled to their rows; says
    /// whether any remain. Called while no other work waits, and at shutdown.
    fn settle(&mut self) -> Result<bool, SinkError> {
        Ok(false)
    }
}

/// Where a tailed file is read up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailPosition {
    pub device: u64,
    pub inode: u64,
    /// Bytes read and committed.
    pub offset: u64,
    /// Lines read and committed: the number of the next line is one more.
    pub line: u64,
}

/// Keeps tailed files' positions across restarts (zen-store: beside the Observations).
pub trait Positions: Send + Sync {
    fn load(&self, path: &std::path::Path) -> Option<TailPosition>;
    fn save(&self, path: &std::path::Path, position: TailPosition);
}

/// The findings of watched reports (Kubernetes mode): which report holds each, and when each
/// left it (zen-store: beside the Observations). A finding is tracked once its Observation is
/// committed, so what a restart reads back was written.
pub trait Findings: Send + Sync {
    /// The findings still in their reports, with the report that holds each.
    fn open(&self) -> Result<Vec<(String, zen_model::Fingerprint)>, SinkError>;
    /// Records findings as held by their reports (open again if they had been resolved).
    fn track(&self, findings: &[(&str, zen_model::Fingerprint)]) -> Result<(), SinkError>;
    /// Marks findings that left their reports as resolved at `at`; says how many were open.
    fn resolve(
        &self,
        fingerprints: &[zen_model::Fingerprint],
        at: zen_model::Timestamp,
    ) -> Result<usize, SinkError>;
}

/// Takes everything and keeps nothing: for benchmarks and dry runs.
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> &str {
        "null"
    }
    fn write(&mut self, _: &str, _: &[Kept]) -> Result<(), SinkError> {
        Ok(())
    }
    fn apply_duplicates(&mut self, _: &[DuplicateUpdate]) -> Result<(), SinkError> {
        Ok(())
    }
}
