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
    /// The first [`Normalized::MAX_ERRORS`] problems, in order.
    pub errors: Vec<NormalizeError>,
    /// Problems beyond those: counted, not kept (a hostile payload of a million bad items
    /// would otherwise make a million errors, and an answer as large).
    pub more_errors: usize,
    pub ignored: usize,
}

impl Normalized {
    /// The most problems kept.
    pub const MAX_ERRORS: usize = 100;

    /// Keeps `e`, or counts it beyond [`Normalized::MAX_ERRORS`].
    pub(crate) fn push_error(&mut self, e: NormalizeError) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.more_errors += 1;
        }
    }

    /// Every problem, kept or only counted.
    pub fn error_count(&self) -> usize {
        self.errors.len() + self.more_errors
    }
}

/// A normaliser configuration that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// The configuration key at fault, e.g. `audit.rules[2].verbs`.
    pub field: String,
    pub problem: String,
}
