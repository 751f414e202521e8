//! Readings of the kernel's `/proc` and `/sys` files, as plain numbers.
//!
//! [`process`] samples the daemon's own process (CPU seconds, resident and virtual memory,
//! threads, open and maximum file descriptors, start time) for the `process_*` metrics that
//! every Prometheus exporter carries. Parsers are pure functions over file contents, tested on
//! fixture files; the readers around them only open files under a configurable root. This is the
//! only crate that reads `/proc` and `/sys`; it knows nothing of metrics names or formats.

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
