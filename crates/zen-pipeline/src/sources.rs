//! What sources outside the HTTP path (Kubernetes report watchers) say about themselves, for
//! `/readyz?verbose` and `/api/v1/stats`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Where a source stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Reading what there is to read at start (a watcher's initial list).
    Syncing,
    /// Caught up, following changes.
    Synced,
    /// Not working, and retrying: [`SourceStatus::detail`] says why.
    Degraded,
    /// Not running here: another replica runs it (it holds the leader Lease).
    Standby,
}

/// One source's state, what it says about it, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    pub state: SourceState,
    /// Why it is degraded, or what it is doing.
    pub detail: String,
    /// Objects it follows (reports).
    pub objects: u64,
    /// Findings of those objects still open.
    pub open_findings: u64,
}

/// The sources' states by name, shared between the sources and the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct SourceStates(Arc<Mutex<BTreeMap<String, SourceStatus>>>);

impl SourceStates {
    pub fn set(&self, name: &str, status: SourceStatus) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), status);
    }

    /// Every source's state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, SourceStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
