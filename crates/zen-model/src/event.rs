//! What a normaliser produces ([`Event`]) and what the store keeps ([`Observation`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Category, Fingerprint, Severity};

/// The deepest nesting of arrays and objects zen-watcher keeps, in every format: one level
/// less than serde_json reads back into a value, so whatever is stored can be read again, shown
/// and filtered on. Deeper items are refused at intake with [`BadDetails::TooDeep`].
pub const MAX_NESTING: usize = 127;

/// Details zen-watcher does not keep, because they could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDetails {
    /// Arrays and objects nested deeper than [`MAX_NESTING`] levels.
    #[error("nested more than {MAX_NESTING} levels deep")]
    TooDeep,
    /// A string escape `\uD800`–`\uDFFF` without the other half of its pair.
    #[error(
        "a lone UTF-16 surrogate escape `\\u{0}` (one half of a pair, without the other): not a character; JSON text must be valid Unicode"
    )]
    LoneSurrogate(String),
}

/// Source-specific fields, kept as the JSON text they were written as: never re-encoded, so
/// numbers stay exact (Falco's 19-digit `evt.time` included), and cheap to store and serve.
///
/// The text is compact — no white space outside strings, so one Observation prints on one
/// line whatever layout the source used — and nests at most [`MAX_NESTING`] levels.
///
/// Serialised as that JSON. Deserialised from any format through a JSON value (so it also works
/// flattened and from YAML); integers within 64 bits stay exact on that path too.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Details(Box<RawValue>);

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Details::of(&value).map_err(serde::de::Error::custom)
    }
}

impl Details {
    /// JSON `null`: no details.
    pub fn null() -> Self {
        Details(
            RawValue::from_string("null".to_owned())
                .unwrap_or_else(|_| unreachable!("null is JSON")),
        )
    }

    /// Encodes a value as details, compact; raw JSON inside it is kept to the byte but for
    /// white space between tokens.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, BadDetails> {
        match serde_json::value::to_raw_value(value) {
            Ok(raw) => Details::compacted(raw),
            Err(_) => Ok(Details::null()),
        }
    }

    /// Details from JSON text already known to be valid (a document as read).
    pub(crate) fn from_json(text: &str) -> Result<Self, BadDetails> {
        match RawValue::from_string(text.to_owned()) {
            Ok(raw) => Details::compacted(raw),
            Err(_) => Ok(Details::null()),
        }
    }

    /// Details as stored: the text a [`Details`] wrote, taken as it is.
    pub fn from_stored(raw: Box<RawValue>) -> Self {
        Details(raw)
    }

    fn compacted(raw: Box<RawValue>) -> Result<Self, BadDetails> {
        match compact(raw.get())? {
            None => Ok(Details(raw)),
            Some(text) => Ok(RawValue::from_string(text).map_or_else(|_| Details::null(), Details)),
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// The details parsed into a value, for inspection.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.get()).unwrap_or(serde_json::Value::Null)
    }
}

/// Checks that valid JSON `text` nests at most [`MAX_NESTING`] levels, and returns it without
/// white space between tokens when it has any (`None` when it is compact already). One pass;
/// string contents are skipped a stretch at a time.
fn compact(text: &str) -> Result<Option<String>, BadDetails> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut spaced = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(BadDetails::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b' ' | b'\n' | b'\r' | b'\t' => spaced = true,
            _ => {}
        }
        i += 1;
    }
    if !spaced {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1)?,
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.push_str(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[start..]);
    Ok(Some(out))
}

/// The index of the quote that closes the string whose contents start at `from`; a lone
/// surrogate escape in it is an error.
fn string_end(bytes: &[u8], mut from: usize) -> Result<usize, BadDetails> {
    loop {
        match memchr::memchr2(b'"', b'\\', &bytes[from.min(bytes.len())..]) {
            None => return Ok(bytes.len()),
            Some(n) if bytes[from + n] == b'\\' => {
                let escape = from + n;
                from = escape + 2;
                if bytes.get(escape + 1) == Some(&b'u') {
                    from = escape + 6;
                    match surrogate(bytes, escape) {
                        Some(0xD800..=0xDBFF)
                            if matches!(surrogate(bytes, escape + 6), Some(0xDC00..=0xDFFF)) =>
                        {
                            from = escape + 12;
                        }
                        Some(0xD800..=0xDFFF) => {
                            let hex = bytes.get(escape + 2..escape + 6).unwrap_or_default();
                            return Err(BadDetails::LoneSurrogate(
                                String::from_utf8_lossy(hex).into_owned(),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Some(n) => return Ok(from + n),
        }
    }
}

/// The code unit of the `\uXXXX` escape at `at`, if there is one.
fn surrogate(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if &escape[..2] != b"\\u" {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&escape[2..]).ok()?, 16).ok()
}

impl Default for Details {
    fn default() -> Self {
        Details::null()
    }
}

impl PartialEq for Details {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// The Kubernetes object (or other resource) a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    /// Empty when the source names none (an audited `create` by `generateName` that failed);
    /// then left out when serialised.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One finding as read from a source, normalised.
///
/// `source`, `event_type` and most strings are owned; the two that are almost always one of a few
/// constants are `Cow<'static, str>` so that the common case allocates nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The source name: the format (`falco`, `audit`, …) or a configured generic source name.
    pub source: Cow<'static, str>,
    pub category: Category,
    pub severity: Severity,
    /// The kind of finding, e.g. `runtime-alert`, `vulnerability`, `policy-violation`.
    pub event_type: Cow<'static, str>,
    /// The rule, check or vulnerability id, when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub title: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The node or host the finding was seen on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub detected_at: Timestamp,
    pub fingerprint: Fingerprint,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Source-specific fields, as JSON text.
    #[serde(default, skip_serializing_if = "Details::is_null")]
    pub details: Details,
}

/// An [`Event`] as stored: duplicates of the same fingerprint within the de-duplication window
/// are folded into one Observation, which counts them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    #[serde(flatten)]
    pub event: Event,
    /// How many times this finding was seen; at least 1.
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Observation {
    /// The Observation of a first sighting.
    pub fn new(event: Event) -> Self {
        let at = event.detected_at;
        Observation {
            event,
            count: 1,
            first_seen: at,
            last_seen: at,
        }
    }

    /// Folds in `n` more sightings, the latest detected at `at` (which may be out of order).
    pub fn record_duplicates(&mut self, n: u64, at: Timestamp) {
        self.count = self.count.saturating_add(n);
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str) -> Event {
        Event {
            source: "falco".into(),
            category: Category::Security,
            severity: Severity::High,
            event_type: "runtime-alert".into(),
            rule_id: Some("Terminal shell in container".into()),
            title: "Terminal shell in container".into(),
            message: "A shell was spawned".into(),
            resource: Some(ResourceRef {
                api_version: Some("v1".into()),
                kind: "Pod".into(),
                name: "web".into(),
                namespace: Some("default".into()),
            }),
            namespace: Some("default".into()),
            node: Some("node-1".into()),
            detected_at: at.parse().unwrap(),
            fingerprint: Fingerprint(7),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            details: Details::of(&serde_json::json!({"evt.time": 1685022245478445995u64})).unwrap(),
        }
    }

    #[test]
    fn duplicates_widen_the_seen_interval_and_count() {
        let mut obs = Observation::new(event("2026-01-01T00:00:10Z"));
        obs.record_duplicates(2, "2026-01-01T00:00:30Z".parse().unwrap());
        obs.record_duplicates(1, "2026-01-01T00:00:05Z".parse().unwrap());
        assert_eq!(obs.count, 4);
        assert_eq!(obs.first_seen.to_string(), "2026-01-01T00:00:05Z");
        assert_eq!(obs.last_seen.to_string(), "2026-01-01T00:00:30Z");
    }

    #[test]
    fn observation_serialises_flat_and_round_trips_exactly() {
        let obs = Observation::new(event("2026-01-01T00:00:10.123456789Z"));
        let text = serde_json::to_string(&obs).unwrap();
        assert!(text.contains(r#""detectedAt":"2026-01-01T00:00:10.123456789Z""#));
        assert!(text.contains(r#""fingerprint":"00000000000000000000000000000007""#));
        assert!(text.contains(r#""evt.time":1685022245478445995"#));
        assert!(text.contains(r#""count":1"#));
        let back: Observation = serde_json::from_str(&text).unwrap();
        assert_eq!(back, obs);
        assert_eq!(
            back.event.details.to_value()["evt.time"].as_u64(),
            Some(1685022245478445995)
        );
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn details_are_compact_with_strings_kept_to_the_byte() {
        let pretty = "{\n  \"a b\": [ 1,\t2 ],\r\n  \"q\": \"x \\\" { [ y\\\\\"\n}";
        let raw = RawValue::from_string(pretty.to_owned()).unwrap();
        let details = Details::of(&raw).unwrap();
        assert_eq!(details.get(), r#"{"a b":[1,2],"q":"x \" { [ y\\"}"#);
        let compact = r#"{"a":"b c"}"#;
        assert_eq!(Details::from_json(compact).unwrap().get(), compact);
    }

    #[test]
    fn details_nest_at_most_the_limit_and_brackets_in_strings_do_not_count() {
        let at_limit = nested(MAX_NESTING);
        let details = Details::from_json(&at_limit).unwrap();
        assert_ne!(details.to_value(), serde_json::Value::Null, "read back");
        assert_eq!(
            Details::from_json(&nested(MAX_NESTING + 1)),
            Err(BadDetails::TooDeep)
        );
        let in_string = format!("[\"{}\"]", "[".repeat(500));
        assert!(Details::from_json(&in_string).is_ok());
        assert_eq!(
            BadDetails::TooDeep.to_string(),
            "nested more than 127 levels deep",
            "the words serde_json's own limit is reported in too"
        );
    }
}
