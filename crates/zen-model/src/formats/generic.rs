//! Any JSON: an object, an array of objects, NDJSON, a Kubernetes list, or objects that hold
//! their findings in an array (`items` pointer). Each object becomes one event through a mapping
//! of JSON pointers (RFC 6901), each a list tried in order — the first that is present wins.
//!
//! | Event field | default pointers |
//! |---|---|
//! | `severity` | `/severity`, `/level`, `/priority` |
//! | `rule_id` | `/rule`, `/ruleId`, `/rule_id`, `/check_id` |
//! | `title` | `/title`, `/summary` (else the rule id, else the message) |
//! | `message` | `/message`, `/msg`, `/description`, `/output` (else the title) |
//! | `namespace` | `/namespace`, `/resource/namespace`, `/metadata/namespace` |
//! | `resource` | kind `/resource/kind`, name `/resource/name`, apiVersion `/resource/apiVersion` |
//! | `node` | `/node`, `/host`, `/hostname` |
//! | `detected_at` | `/time`, `/timestamp`, `/@timestamp`, `/detectedAt`: RFC 3339, or a number since the epoch in s, ms, µs or ns (told by its size); else time of receipt |
//! | `details` | the whole object |
//!
//! `source` (default `generic`), `category` (default `security`) and `event_type` (default
//! `generic`) are fixed by the mapping.
//!
//! Severity: the mapping's `severity_map` first (exact, then in any case); then the names
//! critical, crit, fatal, emergency, emerg, alert → critical; high, error, err, severe, major →
//! high; medium, moderate, warning, warn → medium; low, notice, minor → low; info,
//! informational, information, debug, trace, none, unknown, negligible → info; a number is read
//! as a CVSS-like score (≥ 9 critical, ≥ 7 high, ≥ 4 medium, > 0 low, 0 info); absent →
//! `default_severity` (medium). Anything else is an error for that item.
//!
//! Fingerprint: the source name and, by default, the rule id, resource kind, name, namespace and
//! node — plus title and message when there is no rule id. A `fingerprint` list of pointers
//! replaces the default.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;
use crate::reader::{Doc, Lists, Reader};
use crate::{Category, Details, Event, Fingerprint, ResourceRef, Severity, time};

/// JSON pointers tried in order; the first present (and not null) wins. Written as one string or
/// a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OneOrMany", into = "Vec<String>")]
pub struct Pointers(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Pointers {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(s) => Pointers(vec![s]),
            OneOrMany::Many(v) => Pointers(v),
        }
    }
}

impl From<Pointers> for Vec<String> {
    fn from(p: Pointers) -> Self {
        p.0
    }
}

impl Pointers {
    fn of(list: &[&str]) -> Self {
        Pointers(list.iter().map(|s| (*s).to_owned()).collect())
    }

    fn find<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .filter_map(|p| item.pointer(p))
            .find(|v| !v.is_null())
    }
}

/// How objects of a generic source become events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenericMapping {
    pub source: String,
    pub category: Category,
    pub event_type: String,
    /// A pointer to an array of findings inside each object; absent: the object is the finding.
    pub items: Option<String>,
    pub severity: Pointers,
    pub rule: Pointers,
    pub title: Pointers,
    pub message: Pointers,
    pub namespace: Pointers,
    pub resource_kind: Pointers,
    pub resource_name: Pointers,
    pub resource_api_version: Pointers,
    pub node: Pointers,
    pub time: Pointers,
    pub default_severity: Severity,
    /// The source's severity names, mapped before the built-in names.
    pub severity_map: BTreeMap<String, Severity>,
    /// Pointers whose values identify a finding; empty: the default identity.
    pub fingerprint: Vec<String>,
}

impl Default for GenericMapping {
    fn default() -> Self {
        GenericMapping {
            source: "generic".to_owned(),
            category: Category::Security,
            event_type: "generic".to_owned(),
            items: None,
            severity: Pointers::of(&["/severity", "/level", "/priority"]),
            rule: Pointers::of(&["/rule", "/ruleId", "/rule_id", "/check_id"]),
            title: Pointers::of(&["/title", "/summary"]),
            message: Pointers::of(&["/message", "/msg", "/description", "/output"]),
            namespace: Pointers::of(&["/namespace", "/resource/namespace", "/metadata/namespace"]),
            resource_kind: Pointers::of(&["/resource/kind"]),
            resource_name: Pointers::of(&["/resource/name"]),
            resource_api_version: Pointers::of(&["/resource/apiVersion"]),
            node: Pointers::of(&["/node", "/host", "/hostname"]),
            time: Pointers::of(&["/time", "/timestamp", "/@timestamp", "/detectedAt"]),
            default_severity: Severity::Medium,
            severity_map: BTreeMap::new(),
            fingerprint: Vec::new(),
        }
    }
}

impl GenericMapping {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fields: [(&str, &Pointers); 10] = [
            ("severity", &self.severity),
            ("rule", &self.rule),
            ("title", &self.title),
            ("message", &self.message),
            ("namespace", &self.namespace),
            ("resource_kind", &self.resource_kind),
            ("resource_name", &self.resource_name),
            ("resource_api_version", &self.resource_api_version),
            ("node", &self.node),
            ("time", &self.time),
        ];
        let lists = fields
            .iter()
            .flat_map(|(name, p)| {
                p.0.iter()
                    .enumerate()
                    .map(move |(i, p)| (format!("generic.{name}[{i}]"), p))
            })
            .chain(
                self.fingerprint
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("generic.fingerprint[{i}]"), p)),
            )
            .chain(self.items.iter().map(|p| ("generic.items".to_owned(), p)));
        for (field, pointer) in lists {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                let problem = format!(
                    "expected a JSON pointer (empty, or starting with `/`), found {pointer:?}"
                );
                return Err(ConfigError { field, problem });
            }
        }
        if self.source.is_empty() {
            let problem = "expected a source name, found an empty one".to_owned();
            return Err(ConfigError {
                field: "generic.source".into(),
                problem,
            });
        }
        Ok(())
    }
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let mapping = &r.normalizer.config().generic;
    match &mapping.items {
        None => r.each_item(doc, Lists::Yes, read_item),
        Some(pointer) => r.each_item(doc, Lists::Yes, |r, doc| {
            let Some(Unique(container)) = r.parse::<Unique>(&doc) else {
                return;
            };
            match container.pointer(pointer) {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("{}{}[{i}]", doc.path, path_of_pointer(pointer));
                        if let Some(details) = r.details(&path, item) {
                            map_item(r, &path, item, details);
                        }
                    }
                }
                found => {
                    let found = found.map_or("nothing".to_owned(), describe_value);
                    let at = format!("{}{}", doc.path, path_of_pointer(pointer));
                    r.error(&at, format!("expected an array of findings, found {found}"));
                }
            }
        }),
    }
}

/// A JSON value whose objects name each key once. A key given twice is refused rather than the
/// last one winning, as the typed readers refuse a field given twice: a finding whose `severity`
/// says `low` and then `critical` must not be read either way.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{key}`"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn read_item(r: &mut Reader<'_>, doc: Doc<'_>) {
    if let Some(Unique(item)) = r.parse::<Unique>(&doc) {
        match Details::from_json(doc.text) {
            Ok(details) => map_item(r, &doc.path, &item, details),
            Err(e) => r.error(&doc.path, e.to_string()),
        }
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean `{b}`"),
        Value::Number(n) => format!("a number `{n}`"),
        Value::String(s) => format!("a string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A scalar as text; objects and arrays as their JSON.
fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// A severity name or score of a generic source.
pub fn severity_of(value: &Value, map: &BTreeMap<String, Severity>) -> Result<Severity, String> {
    use Severity::*;
    match value {
        Value::String(s) => {
            if let Some(sev) = map.get(s).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(s))
                    .map(|(_, v)| v)
            }) {
                return Ok(*sev);
            }
            const NAMES: [(&[&str], Severity); 5] = [
                (
                    &["critical", "crit", "fatal", "emergency", "emerg", "alert"],
                    Critical,
                ),
                (&["high", "error", "err", "severe", "major"], High),
                (&["medium", "moderate", "warning", "warn"], Medium),
                (&["low", "notice", "minor"], Low),
                (
                    &[
                        "info",
                        "informational",
                        "information",
                        "debug",
                        "trace",
                        "none",
                        "unknown",
                        "negligible",
                    ],
                    Info,
                ),
            ];
            NAMES
                .iter()
                .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(s.trim())))
                .map(|&(_, sev)| sev)
                .ok_or_else(|| format!("expected a severity name (critical, high, medium, low, info, or one in severity_map), found {s:?}"))
        }
        Value::Number(n) => match n.as_f64() {
            Some(x) if (9.0..=10.0).contains(&x) => Ok(Critical),
            Some(x) if (7.0..9.0).contains(&x) => Ok(High),
            Some(x) if (4.0..7.0).contains(&x) => Ok(Medium),
            Some(x) if x > 0.0 && x < 4.0 => Ok(Low),
            Some(0.0) => Ok(Info),
            _ => Err(format!("expected a severity score from 0 to 10, found {n}")),
        },
        other => Err(format!(
            "expected a severity name or score, found {}",
            describe_value(other)
        )),
    }
}

fn map_item(r: &mut Reader<'_>, path: &str, item: &Value, details: Details) {
    let m = &r.normalizer.config().generic;
    if !item.is_object() {
        return r.error(
            path,
            format!("expected an object, found {}", describe_value(item)),
        );
    }
    let severity = match m.severity.find(item) {
        None => m.default_severity,
        Some(v) => match severity_of(v, &m.severity_map) {
            Ok(sev) => sev,
            Err(problem) => return r.error(&located(path, &m.severity, item), problem),
        },
    };
    let detected_at = match m.time.find(item) {
        None => Ok(r.ctx.received_at),
        Some(Value::String(s)) => time::rfc3339(s),
        Some(Value::Number(n)) => time::unix_any(n),
        Some(other) => Err(format!(
            "expected an RFC 3339 time or a number since the epoch, found {}",
            describe_value(other)
        )),
    };
    let detected_at = match detected_at {
        Ok(t) => t,
        Err(problem) => return r.error(&located(path, &m.time, item), problem),
    };

    let get = |p: &Pointers| p.find(item).map(text);
    let rule = get(&m.rule);
    let namespace = get(&m.namespace);
    let node = get(&m.node);
    let kind = get(&m.resource_kind);
    let name = get(&m.resource_name);
    let message_found = get(&m.message);
    let title = get(&m.title)
        .or_else(|| rule.clone())
        .or_else(|| {
            message_found
                .as_ref()
                .map(|m| Cow::Owned(m.chars().take(120).collect()))
        })
        .unwrap_or(Cow::Borrowed("generic event"));
    let message = message_found.clone().unwrap_or_else(|| title.clone());

    let mut fp = Fingerprint::builder("generic");
    fp.field(&m.source);
    if m.fingerprint.is_empty() {
        fp.opt(rule.as_deref())
            .opt(kind.as_deref())
            .opt(name.as_deref())
            .opt(namespace.as_deref())
            .opt(node.as_deref());
        if rule.is_none() {
            fp.field(&title).opt(message_found.as_deref());
        }
    } else {
        for p in &m.fingerprint {
            fp.opt(item.pointer(p).map(text).as_deref());
        }
    }
    let resource = match (&kind, &name) {
        (Some(kind), Some(name)) => Some(ResourceRef {
            api_version: get(&m.resource_api_version).map(Cow::into_owned),
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: namespace.as_deref().map(str::to_owned),
        }),
        _ => None,
    };
    r.out.events.push(Event {
        source: Cow::Owned(m.source.clone()),
        category: m.category,
        severity,
        event_type: Cow::Owned(m.event_type.clone()),
        rule_id: rule.map(Cow::into_owned),
        title: title.into_owned(),
        message: message.into_owned(),
        resource,
        namespace: namespace.map(Cow::into_owned),
        node: node.map(Cow::into_owned),
        detected_at,
        fingerprint: fp.finish(),
        labels: BTreeMap::new(),
        details,
    });
}

/// The path of the pointer that matched, for errors.
fn located(path: &str, pointers: &Pointers, item: &Value) -> String {
    match pointers
        .0
        .iter()
        .find(|p| item.pointer(p).is_some_and(|v| !v.is_null()))
    {
        Some(p) => format!("{path}{}", path_of_pointer(p)),
        None => path.to_owned(),
    }
}

/// `/findings/0/check` → `.findings[0].check`, to match the other paths in errors.
fn path_of_pointer(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|seg| {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                format!("[{seg}]")
            } else {
                format!(".{seg}")
            }
        })
        .collect()
}
