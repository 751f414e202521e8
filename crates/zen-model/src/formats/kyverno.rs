//! Policy reports: `wgpolicyk8s.io/v1alpha2` `PolicyReport` and `ClusterPolicyReport` as Kyverno
//! writes them, and the same body as `openreports.io` `Report` / `ClusterReport`. `scope`,
//! `summary` and `results` are top-level. A Kubernetes list of reports is read item by item.
//!
//! One event per result whose `result` is `fail`, `warn` or `error`, and per resource when the
//! result lists `resources` (older Kyverno, one report per namespace); `pass` and `skip` are
//! counted as ignored.
//!
//! | Event field | from |
//! |---|---|
//! | `rule_id` | `policy/rule` (or `policy` alone) |
//! | `title` | `policy: rule` (or `policy`) |
//! | `message` | `message`, else `policy <policy> rule <rule>: <result>` |
//! | `resource`, `namespace` | the result's resource, else the report's `scope`, else none (namespace from the report) |
//! | `detected_at` | `timestamp` `{seconds, nanos}`, else `metadata.creationTimestamp`, else time of receipt |
//! | `event_type` | `policy-violation` (`fail`, `warn`) or `policy-error` (`error`) |
//! | `category` | `compliance`, `operations` for `error` |
//! | labels | `policy.category` (the result's `category`), `policy.source`, `policy.result` |
//!
//! Severity: the result's `severity` (critical, high, medium, low, info) when it has one; else
//! `fail` → medium, `warn` → low, `error` → low.
//!
//! Fingerprint: result `source`, `policy`, `rule`, `result`, and the resource's `apiVersion`,
//! `kind`, `namespace`, `name` (not its uid, not the timestamp).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::formats::{ObjectMeta, non_empty};
use crate::reader::{Doc, Reader};
use crate::{Category, Event, Fingerprint, ResourceRef, Severity, time};

#[derive(Deserialize)]
struct Report<'a> {
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(default)]
    scope: Option<ObjectReference>,
    #[serde(default, borrow)]
    results: Option<Vec<&'a RawValue>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectReference {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct PolicyResult {
    #[serde(default)]
    source: Option<String>,
    policy: String,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    result: String,
    #[serde(default)]
    scored: Option<bool>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    #[serde(default)]
    timestamp: Option<ProtoTimestamp>,
    #[serde(default)]
    resources: Option<Vec<ObjectReference>>,
}

#[derive(Deserialize)]
struct ProtoTimestamp {
    seconds: i64,
    #[serde(default)]
    nanos: i32,
}

const KINDS: [&str; 4] = [
    "PolicyReport",
    "ClusterPolicyReport",
    "Report",
    "ClusterReport",
];

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(report) = r.parse::<Report<'_>>(&doc) else {
        return;
    };
    match report.kind.as_deref() {
        Some(k) if !KINDS.contains(&k) => {
            let problem = format!(
                "expected PolicyReport, ClusterPolicyReport, Report or ClusterReport, found {k:?}"
            );
            return r.error(&format!("{}.kind", doc.path), problem);
        }
        None if report.results.is_none() => {
            return r.error(
                &doc.path,
                "expected a policy report with `results`, found none",
            );
        }
        _ => {}
    }
    let meta = report.metadata.unwrap_or_default();
    for (i, raw) in report.results.unwrap_or_default().into_iter().enumerate() {
        let item = doc.child(raw, format_args!(".results[{i}]"));
        if let Some(result) = r.parse::<PolicyResult>(&item) {
            read_result(r, &item, &meta, report.scope.as_ref(), result);
        }
    }
}

fn read_result(
    r: &mut Reader<'_>,
    item: &Doc<'_>,
    meta: &ObjectMeta,
    scope: Option<&ObjectReference>,
    res: PolicyResult,
) {
    let (event_type, category, default_severity) = match res.result.as_str() {
        "fail" => ("policy-violation", Category::Compliance, Severity::Medium),
        "warn" => ("policy-violation", Category::Compliance, Severity::Low),
        "error" => ("policy-error", Category::Operations, Severity::Low),
        "pass" | "skip" => {
            r.out.ignored += 1;
            return;
        }
        other => {
            let problem = format!("expected one of pass, fail, warn, error, skip, found {other:?}");
            return r.error(&format!("{}.result", item.path), problem);
        }
    };
    let severity = match res.severity.as_deref().filter(|s| !s.is_empty()) {
        None => default_severity,
        Some(s) => match s.parse::<Severity>() {
            Ok(sev) => sev,
            Err(e) => return r.error(&format!("{}.severity", item.path), e.to_string()),
        },
    };
    let detected_at = match (
        &res.timestamp,
        non_empty(meta.creation_timestamp.as_deref()),
    ) {
        (Some(ts), _) => time::unix_parts(ts.seconds, ts.nanos),
        (None, Some(created)) => time::rfc3339(created),
        (None, None) => Ok(r.ctx.received_at),
    };
    let detected_at = match detected_at {
        Ok(t) => t,
        Err(problem) => return r.error(&format!("{}.timestamp", item.path), problem),
    };

    let (rule_id, title) = match non_empty(res.rule.as_deref()) {
        Some(rule) => (
            format!("{}/{rule}", res.policy),
            format!("{}: {rule}", res.policy),
        ),
        None => (res.policy.clone(), res.policy.clone()),
    };
    let message = match non_empty(res.message.as_deref()) {
        Some(m) => m.to_owned(),
        None => format!(
            "policy {} rule {}: {}",
            res.policy,
            res.rule.as_deref().unwrap_or("-"),
            res.result
        ),
    };
    let mut labels = BTreeMap::new();
    for (key, value) in [
        ("policy.category", &res.category),
        ("policy.source", &res.source),
    ] {
        if let Some(v) = non_empty(value.as_deref()) {
            labels.insert(key.to_owned(), v.to_owned());
        }
    }
    labels.insert("policy.result".to_owned(), res.result.clone());

    let mut details = Map::new();
    details.insert("policy".into(), Value::String(res.policy.clone()));
    for (key, value) in [
        ("rule", &res.rule),
        ("category", &res.category),
        ("source", &res.source),
        ("severity", &res.severity),
    ] {
        if let Some(v) = value {
            details.insert(key.into(), Value::String(v.clone()));
        }
    }
    details.insert("result".into(), Value::String(res.result.clone()));
    if let Some(scored) = res.scored {
        details.insert("scored".into(), Value::Bool(scored));
    }
    if let Some(props) = &res.properties {
        details.insert("properties".into(), Value::Object(props.clone()));
    }
    if let Some(name) = &meta.name {
        details.insert("reportName".into(), Value::String(name.clone()));
    }

    let Some(details) = r.details(&item.path, &details) else {
        return;
    };
    let resources: Vec<Option<&ObjectReference>> = match res.resources.as_deref() {
        Some(list) if !list.is_empty() => list.iter().map(Some).collect(),
        _ => vec![scope],
    };
    for resource in resources {
        let resource = resource.map(|o| ResourceRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone().unwrap_or_default(),
            name: o.name.clone().unwrap_or_default(),
            namespace: o.namespace.clone(),
        });
        let namespace = resource
            .as_ref()
            .and_then(|o| o.namespace.clone())
            .or_else(|| meta.namespace.clone());
        let fingerprint = Fingerprint::builder("kyverno")
            .opt(res.source.as_deref())
            .field(&res.policy)
            .opt(res.rule.as_deref())
            .field(&res.result)
            .opt(resource.as_ref().and_then(|o| o.api_version.as_deref()))
            .opt(resource.as_ref().map(|o| o.kind.as_str()))
            .opt(namespace.as_deref())
            .opt(resource.as_ref().map(|o| o.name.as_str()))
            .finish();
        r.out.events.push(Event {
            source: Cow::Borrowed("kyverno"),
            category,
            severity,
            event_type: Cow::Borrowed(event_type),
            rule_id: Some(rule_id.clone()),
            title: title.clone(),
            message: message.clone(),
            resource,
            namespace,
            node: None,
            detected_at,
            fingerprint,
            labels: labels.clone(),
            details: details.clone(),
        });
    }
}
