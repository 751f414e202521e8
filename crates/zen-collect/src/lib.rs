//! Readings of the kernel's `/proc` and `/sys` files, as plain numbers.
//!
//! [`host`] reads the host's CPU, load, memory, paging, disks, network, pressure and file
//! handles under node_exporter's names and units, from files kept open; [`process`] samples the
//! daemon's own process (CPU seconds, resident and virtual memory, threads, open and maximum file
//! descriptors, start time) for the `process_*` metrics every Prometheus exporter carries;
//! [`limits`] finds the daemon's cgroup limits, for its CPU and memory use as percentages. Parsers are pure functions over file contents, tested on
//! fixture files; the readers around them only open files under a configurable root. This is the
//! only crate that reads `/proc` and `/sys`; it knows nothing of metrics names or formats.

pub mod host;
pub mod limits;
pub mod process;

use std::path::PathBuf;

/// A file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
}
