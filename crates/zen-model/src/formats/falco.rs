//! Falco alerts: `json_output` as Falco's `http_output` posts it, and the falcosidekick webhook
//! payload (the same keys plus `uuid`, with sidekick's custom fields merged into
//! `output_fields`). An array or NDJSON of alerts is read item by item.
//!
//! | Event field   | from |
//! |---------------|------|
//! | `rule_id`, `title` | `rule` (required) |
//! | `severity`    | `priority` (required), see below |
//! | `message`     | `message`, else `output` without its `time: Priority ` prefix, else `rule` |
//! | `detected_at` | `time` (RFC 3339), else `output_fields["evt.time"]` (ns), else time of receipt |
//! | `node`        | `hostname` |
//! | `namespace`   | `output_fields["k8s.ns.name"]`, else `["ka.target.namespace"]` (k8s_audit source) |
//! | `resource`    | Pod `output_fields["k8s.pod.name"]` in that namespace, else `ka.target.resource`/`ka.target.name` |
//! | `details`     | `priority`, `source`, `tags`, `uuid`, `output_fields` (as written: `evt.time` stays a 19-digit integer) |
//!
//! Category `security`, event type `runtime-alert`.
//!
//! Priority (any letter case) → severity: Emergency, Alert, Critical → critical; Error → high;
//! Warning (or `warn`) → medium; Notice → low; Informational (or `info`), Debug → info.
//!
//! Fingerprint: `rule`, `source` (absent counts as `syscall`, as falcosidekick defaults it),
//! `hostname`, and from `output_fields`: `k8s.ns.name`, `k8s.pod.name`, `container.id`,
//! `proc.cmdline`, `fd.name`, and for the k8s_audit source `ka.user.name`, `ka.target.resource`,
//! `ka.target.name`. Not the time, the output text or the uuid.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::formats::kind_of_resource;
use crate::reader::{Doc, Reader};
use crate::{Category, Event, Fingerprint, ResourceRef, Severity, time};

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    rule: Cow<'a, str>,
    #[serde(borrow)]
    priority: Cow<'a, str>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    output: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    hostname: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    uuid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tags: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_fields: Option<&'a RawValue>,
}

/// The `output_fields` the mapping and the fingerprint use; the rest stays in the raw text.
#[derive(Default, Deserialize)]
struct Fields<'a> {
    #[serde(rename = "evt.time", default, borrow)]
    evt_time: Option<Scalar<'a>>,
    #[serde(rename = "k8s.ns.name", default, borrow)]
    namespace: Option<Scalar<'a>>,
    #[serde(rename = "k8s.pod.name", default, borrow)]
    pod: Option<Scalar<'a>>,
    #[serde(rename = "container.id", default, borrow)]
    container: Option<Scalar<'a>>,
    #[serde(rename = "proc.cmdline", default, borrow)]
    cmdline: Option<Scalar<'a>>,
    #[serde(rename = "fd.name", default, borrow)]
    fd: Option<Scalar<'a>>,
    #[serde(rename = "ka.user.name", default, borrow)]
    audit_user: Option<Scalar<'a>>,
    #[serde(rename = "ka.target.namespace", default, borrow)]
    audit_namespace: Option<Scalar<'a>>,
    #[serde(rename = "ka.target.resource", default, borrow)]
    audit_resource: Option<Scalar<'a>>,
    #[serde(rename = "ka.target.name", default, borrow)]
    audit_name: Option<Scalar<'a>>,
}

/// An `output_fields` value: Falco writes strings, integers, booleans and null.
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Int(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A field's value as text; null and Falco's `<NA>` are absent.
fn text<'s>(field: &'s Option<Scalar<'_>>) -> Option<Cow<'s, str>> {
    match field.as_ref()? {
        Scalar::Text(s) if s != "<NA>" => Some(Cow::Borrowed(s)),
        Scalar::Text(_) | Scalar::Null => None,
        Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
        Scalar::Float(f) => Some(Cow::Owned(f.to_string())),
        Scalar::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
    }
}

#[derive(Serialize)]
struct FalcoDetails<'a> {
    priority: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_fields: Option<&'a RawValue>,
}

/// Falco priority → severity.
pub fn severity_of_priority(priority: &str) -> Option<Severity> {
    const TABLE: [(&str, Severity); 10] = [
        ("emergency", Severity::Critical),
        ("alert", Severity::Critical),
        ("critical", Severity::Critical),
        ("error", Severity::High),
        ("warning", Severity::Medium),
        ("warn", Severity::Medium),
        ("notice", Severity::Low),
        ("informational", Severity::Info),
        ("info", Severity::Info),
        ("debug", Severity::Info),
    ];
    TABLE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(priority))
        .map(|&(_, sev)| sev)
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(alert) = r.parse::<Alert<'_>>(&doc) else {
        return;
    };
    let Some(severity) = severity_of_priority(&alert.priority) else {
        let problem = format!(
            "expected a Falco priority (Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug), found {:?}",
            alert.priority
        );
        return r.error(&format!("{}.priority", doc.path), problem);
    };
    let fields = match alert.output_fields {
        Some(raw) if raw.get() != "null" => {
            let fields_doc = doc.child(raw, format_args!(".output_fields"));
            match r.parse::<Fields<'_>>(&fields_doc) {
                Some(fields) => fields,
                None => return,
            }
        }
        _ => Fields::default(),
    };

    let detected_at = match (&alert.time, &fields.evt_time) {
        (Some(t), _) => time::rfc3339(t).map_err(|p| (".time", p)),
        (None, Some(Scalar::Int(ns))) => {
            time::unix_nanos(*ns).map_err(|p| (".output_fields.evt.time", p))
        }
        (None, Some(Scalar::Float(ns))) => {
            let problem =
                format!("expected nanoseconds since the epoch as an integer, found {ns:e}");
            Err((".output_fields.evt.time", problem))
        }
        (None, _) => Ok(r.ctx.received_at),
    };
    let detected_at = match detected_at {
        Ok(t) => t,
        Err((field, problem)) => return r.error(&format!("{}{field}", doc.path), problem),
    };

    let namespace = text(&fields.namespace)
        .or_else(|| text(&fields.audit_namespace))
        .map(Cow::into_owned);
    let pod = text(&fields.pod);
    let (target_resource, target_name) = (text(&fields.audit_resource), text(&fields.audit_name));
    let source = alert.source.as_deref().unwrap_or("syscall");
    let fingerprint = Fingerprint::builder("falco")
        .field(&alert.rule)
        .field(source)
        .opt(alert.hostname.as_deref())
        .opt(namespace.as_deref())
        .opt(pod.as_deref())
        .opt(text(&fields.container).as_deref())
        .opt(text(&fields.cmdline).as_deref())
        .opt(text(&fields.fd).as_deref())
        .opt(text(&fields.audit_user).as_deref())
        .opt(target_resource.as_deref())
        .opt(target_name.as_deref())
        .finish();
    let resource = match (pod, target_resource, target_name) {
        (Some(pod), _, _) => Some(ResourceRef {
            api_version: Some("v1".to_owned()),
            kind: "Pod".to_owned(),
            name: pod.into_owned(),
            namespace: namespace.clone(),
        }),
        (None, Some(res), Some(name)) => Some(ResourceRef {
            api_version: None,
            kind: kind_of_resource(&res).to_owned(),
            name: name.into_owned(),
            namespace: namespace.clone(),
        }),
        _ => None,
    };

    let message = match (&alert.message, &alert.output) {
        (Some(m), _) => m.to_string(),
        (None, Some(out)) => strip_output_prefix(out, &alert.priority).to_owned(),
        (None, None) => alert.rule.to_string(),
    };
    let Some(details) = r.details(
        &doc.path,
        &FalcoDetails {
            priority: &alert.priority,
            source,
            tags: alert.tags.filter(|t| t.get() != "null"),
            uuid: alert.uuid.as_deref(),
            output_fields: alert.output_fields,
        },
    ) else {
        return;
    };

    let rule = alert.rule.into_owned();
    r.out.events.push(Event {
        source: Cow::Borrowed("falco"),
        category: Category::Security,
        severity,
        event_type: Cow::Borrowed("runtime-alert"),
        rule_id: Some(rule.clone()),
        title: rule,
        message,
        resource,
        namespace,
        node: alert.hostname.map(Cow::into_owned),
        detected_at,
        fingerprint,
        labels: Default::default(),
        details,
    });
}

/// `13:44:05.478445995: Critical A shell was spawned …` → `A shell was spawned …`.
fn strip_output_prefix<'o>(output: &'o str, priority: &str) -> &'o str {
    let Some((time, rest)) = output.split_once(": ") else {
        return output;
    };
    let looks_like_time = time.starts_with(|c: char| c.is_ascii_digit()) && !time.contains(' ');
    if !looks_like_time {
        return output;
    }
    match rest.get(..priority.len()) {
        Some(p) if p.eq_ignore_ascii_case(priority) && rest[priority.len()..].starts_with(' ') => {
            &rest[priority.len() + 1..]
        }
        _ => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_prefix_is_stripped_only_when_it_is_one() {
        assert_eq!(
            strip_output_prefix(
                "13:44:05.478445995: Critical A shell (user=root)",
                "Critical"
            ),
            "A shell (user=root)"
        );
        assert_eq!(
            strip_output_prefix(
                "2023-05-25T13:44:05.478445995+0000: Warning x: y",
                "warning"
            ),
            "x: y"
        );
        assert_eq!(
            strip_output_prefix("Something: else", "Notice"),
            "Something: else"
        );
        assert_eq!(strip_output_prefix("no prefix", "Notice"), "no prefix");
    }
}
