//! Errors of reading payloads and of validating normaliser configuration.

use crate::Event;
use crate::formats::Format;

/// Why a payload, or one item of it, could not be read.
///
/// Always says which format, where (`line L, column C` for syntax, a JSON path such as
/// `$.items[3].verb` for shape, prefixed by `line N` when the input held several documents), and
/// what was expected against what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format}: {at}: {problem}")]
#[non_exhaustive]
pub struct NormalizeError {
    pub format: Format,
    pub at: String,
    pub problem: String,
}

impl NormalizeError {
    pub(crate) fn new(format: Format, at: impl Into<String>, problem: impl Into<String>) -> Self {
        NormalizeError {
            format,
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// The outcome of reading a payload that was at least partly readable: the good items, the bad
/// ones, and how many items were read but are not findings (passed checks, audit events that match
/// no rule, …). One bad item never costs the others.
#[derive(Debug, Default)]
pub struct Normalized {
    pub events: Vec<Event>,
    pub errors: Vec<NormalizeError>,
    pub ignored: usize,
}

/// A normaliser configuration that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// The configuration key at fault, e.g. `audit.rules[2].verbs`.
    pub field: String,
    pub problem: String,
}
