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
//! | `details`     | `priority`, `source`, `output`, `tags`, `uuid`, `output_fields` (numbers exact: `evt.time` stays a 19-digit integer) |
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

use serde::Deserialize;
use serde_json::{Map, Value};

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
    tags: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    output_fields: Option<Map<String, Value>>,
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
    let fields = alert.output_fields.unwrap_or_default();
    let field = |name: &str| match fields.get(name) {
        Some(Value::String(s)) if s != "<NA>" => Some(Cow::Borrowed(s.as_str())),
        Some(Value::Null) | Some(Value::String(_)) | None => None,
        Some(other) => Some(Cow::Owned(other.to_string())),
    };

    let detected_at = match (&alert.time, fields.get("evt.time")) {
        (Some(t), _) => time::rfc3339(t).map_err(|p| (".time", p)),
        (None, Some(Value::Number(ns))) => match ns.as_i64() {
            Some(ns) => time::unix_nanos(i128::from(ns)),
            None => Err(format!(
                "expected nanoseconds since the epoch as an integer, found {ns}"
            )),
        }
        .map_err(|p| (".output_fields.evt.time", p)),
        (None, _) => Ok(r.ctx.received_at),
    };
    let detected_at = match detected_at {
        Ok(t) => t,
        Err((field, problem)) => return r.error(&format!("{}{field}", doc.path), problem),
    };

    let namespace = field("k8s.ns.name")
        .or_else(|| field("ka.target.namespace"))
        .map(Cow::into_owned);
    let pod = field("k8s.pod.name");
    let (target_resource, target_name) = (field("ka.target.resource"), field("ka.target.name"));
    let source = alert.source.as_deref().unwrap_or("syscall");
    let fingerprint = Fingerprint::builder("falco")
        .field(&alert.rule)
        .field(source)
        .opt(alert.hostname.as_deref())
        .opt(namespace.as_deref())
        .opt(pod.as_deref())
        .opt(field("container.id").as_deref())
        .opt(field("proc.cmdline").as_deref())
        .opt(field("fd.name").as_deref())
        .opt(field("ka.user.name").as_deref())
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

    let mut details = Map::new();
    details.insert(
        "priority".into(),
        Value::String(alert.priority.into_owned()),
    );
    details.insert("source".into(), Value::String(source.to_owned()));
    if let Some(output) = alert.output {
        details.insert("output".into(), Value::String(output.into_owned()));
    }
    if let Some(tags) = alert.tags {
        let tags = tags
            .into_iter()
            .map(|t| Value::String(t.into_owned()))
            .collect();
        details.insert("tags".into(), Value::Array(tags));
    }
    if let Some(uuid) = alert.uuid {
        details.insert("uuid".into(), Value::String(uuid.into_owned()));
    }
    details.insert("output_fields".into(), Value::Object(fields));

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
        details: Value::Object(details),
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
