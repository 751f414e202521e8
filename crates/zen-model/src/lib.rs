//! The event model of zen-watcher and the normalisers of every source format it reads.
//!
//! A payload from a source (a Falco alert, an audit `EventList`, a Trivy or Kyverno report,
//! kube-bench or Checkov output, any JSON) goes into [`Normalizer::normalize`] and comes out as
//! [`Event`]s: classified by [`Severity`] and [`Category`], identified by a stable
//! [`Fingerprint`], with the source's own fields kept as JSON details. The store keeps them as
//! [`Observation`]s, which count duplicates.
//!
//! Reading is forgiving where sources differ (optional keys, missing `kind`s, Kubernetes lists,
//! NDJSON, YAML) and exact where it matters: every problem is a [`NormalizeError`] that names the
//! format, the place and what was expected, and one bad item never costs the others.
//!
//! This crate does no IO and never reads the clock: the time of receipt comes in the
//! [`Context`]. It knows nothing about HTTP, storage, metrics or Kubernetes clients.
//!
//! ```
//! use zen_model::{Context, Format, Normalizer, Severity};
//!
//! let alert = br#"{"rule":"Terminal shell in container","priority":"Critical",
//!     "time":"2023-05-25T13:44:05.478445995Z","output_fields":{"k8s.ns.name":"default"}}"#;
//! let ctx = Context::received_at("2023-05-25T13:44:06Z".parse().unwrap());
//! let out = Normalizer::default().normalize(Format::Falco, alert, &ctx).unwrap();
//! assert_eq!(out.events[0].severity, Severity::Critical);
//! assert_eq!(out.events[0].namespace.as_deref(), Some("default"));
//! ```

mod error;
mod event;
mod fingerprint;
pub mod formats;
mod reader;
mod severity;
mod time;

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, NormalizeError, Normalized};
pub use event::{BadDetails, Details, Event, MAX_NESTING, Observation, ResourceRef};
pub use fingerprint::{BadFingerprint, Fingerprint, FingerprintBuilder};
pub use formats::Format;
pub use jiff::Timestamp;
pub use severity::{Category, Severity, UnknownName};

use formats::{audit::AuditConfig, checkov::CheckovConfig, generic::GenericMapping};

/// What the caller knows about a payload that the payload itself may not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// When the payload was received: the detection time of findings that carry none.
    pub received_at: Timestamp,
    /// The node the payload came from, when the uploader says (kube-bench output names none).
    pub node: Option<String>,
}

impl Context {
    pub fn received_at(received_at: Timestamp) -> Self {
        Context {
            received_at,
            node: None,
        }
    }
}

/// Per-format settings of the normalisers, as read from a configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeConfig {
    pub audit: AuditConfig,
    pub checkov: CheckovConfig,
    pub generic: GenericMapping,
}

/// The text syntax of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// One JSON value, or several separated by white space (NDJSON).
    Json,
    /// One or several YAML documents, as `kubectl get -o yaml` prints them.
    Yaml,
}

impl Syntax {
    /// JSON when the first non-blank byte opens an object or an array, else YAML.
    pub fn detect(input: &[u8]) -> Syntax {
        match input.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => Syntax::Json,
            _ => Syntax::Yaml,
        }
    }
}

/// White space as JSON has it: space, tab, line feed, carriage return.
fn json_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Turns payloads into [`Event`]s, with a validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    config: NormalizeConfig,
}

impl Normalizer {
    /// Validates `config` and builds a normaliser from it.
    pub fn new(config: NormalizeConfig) -> Result<Self, ConfigError> {
        config.audit.validate()?;
        config.generic.validate()?;
        Ok(Normalizer { config })
    }

    pub fn config(&self) -> &NormalizeConfig {
        &self.config
    }

    /// Reads a JSON payload (one value, or NDJSON) of `format`.
    ///
    /// Fails only when nothing at all can be read; otherwise the good events and the per-item
    /// errors both come back.
    pub fn normalize(
        &self,
        format: Format,
        input: &[u8],
        ctx: &Context,
    ) -> Result<Normalized, NormalizeError> {
        let reader = |errors| reader::Reader {
            format,
            normalizer: self,
            ctx,
            out: Normalized {
                errors,
                ..Normalized::default()
            },
        };
        // Most payloads are one document, or NDJSON with one document a line: read them as
        // such, each document in one pass. Only when that meets a problem (a syntax error, a
        // document over several lines, a bad item) is the input split into documents, which
        // says precisely where the problem is and keeps every good document.
        if let Ok(all) = std::str::from_utf8(input) {
            // JSON's white space only (not a form feed, which `trim_ascii` would take): the
            // split into documents, which explains a failure, must agree (found by fuzzing).
            let text = all.trim_matches(json_space);
            if text.contains('\n') {
                let mut attempt = reader(Vec::new());
                // Numbered as in the input, as the split into documents numbers them.
                let lines = all.split('\n').enumerate();
                for (i, line) in lines.filter(|(_, l)| !l.trim_matches(json_space).is_empty()) {
                    let doc = reader::Doc {
                        text: line.trim_matches(json_space),
                        path: format!("line {}: $", i + 1),
                    };
                    formats::read(&mut attempt, doc);
                    if !attempt.out.errors.is_empty() {
                        break;
                    }
                }
                if attempt.out.errors.is_empty() {
                    return Ok(attempt.out);
                }
            }
            if !text.is_empty() {
                let mut attempt = reader(Vec::new());
                let doc = reader::Doc {
                    text,
                    path: "$".to_owned(),
                };
                formats::read(&mut attempt, doc);
                if attempt.out.errors.is_empty() {
                    return Ok(attempt.out);
                }
            }
        }
        self.normalize_documents(format, input, ctx)
    }

    /// Reads a JSON payload as [`Normalizer::normalize`] does when its one-pass read meets a
    /// problem: split into documents first, each read on its own. For a payload the one-pass
    /// read takes without a problem, this gives the same events (the fuzzers check it).
    pub fn normalize_documents(
        &self,
        format: Format,
        input: &[u8],
        ctx: &Context,
    ) -> Result<Normalized, NormalizeError> {
        let (docs, errors) = reader::documents(format, input)?;
        let mut reader = reader::Reader {
            format,
            normalizer: self,
            ctx,
            out: errors,
        };
        for doc in docs {
            formats::read(&mut reader, doc);
        }
        Ok(reader.out)
    }

    /// Reads a payload in the given syntax: YAML is converted to JSON first.
    pub fn normalize_text(
        &self,
        format: Format,
        syntax: Syntax,
        input: &[u8],
        ctx: &Context,
    ) -> Result<Normalized, NormalizeError> {
        match syntax {
            Syntax::Json => self.normalize(format, input, ctx),
            Syntax::Yaml => {
                let yaml = reader::yaml_to_json(format, input)?;
                let mut out = self.normalize(format, &yaml.json, ctx).map_err(|mut e| {
                    e.at = yaml.place(&e.at);
                    e
                })?;
                for e in &mut out.errors {
                    e.at = yaml.place(&e.at);
                }
                Ok(out)
            }
        }
    }
}
