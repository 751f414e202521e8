//! `checkov -o json` output in its three top-level shapes: one framework's report
//! (`{"check_type", "results", "summary"}`), an array of those (several frameworks), or the bare
//! summary Checkov prints when nothing was scanned (no events). A Kubernetes list of reports is
//! read item by item. With `--quiet`, `results` holds only `failed_checks`: that is all we read.
//!
//! One event per record in `results.failed_checks`.
//!
//! | Event field | from |
//! |---|---|
//! | `rule_id` | `check_id` |
//! | `title` | `check_name`, else `check_id` |
//! | `message` | `<check_name>: <resource> (<file_path>:<start>-<end>)`, leaving out what the record lacks |
//! | `resource`, `namespace` | a Kubernetes `resource` `Kind.namespace.name`; none for other frameworks |
//! | `detected_at` | time of receipt (the output carries none) |
//! | labels | `checkov.framework` (`check_type`; none when the report names no `check_type`) |
//! | `details` | `check_type`, `file_path`, `repo_file_path`, `file_line_range`, `resource`, `check_class`, `guideline`, `evaluated_keys` |
//!
//! Category `compliance`, event type `iac-misconfiguration`.
//!
//! Severity: the record's `severity` when Checkov gives one (it gives none offline: without a
//! platform key every record has `null`); else `checkov.severities` from the configuration; else
//! our own table of the Kubernetes and Dockerfile checks (below); else
//! `checkov.default_severity` (medium).
//!
//! Fingerprint: `check_type`, `check_id`, `repo_file_path` (else `file_path`), `resource`. Not the
//! line range, which moves with unrelated edits.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::reader::{Doc, Reader};
use crate::{Category, Event, Fingerprint, ResourceRef, Severity};

/// How Checkov findings are rated when Checkov does not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckovConfig {
    /// Severity of a check found in no table.
    pub default_severity: Severity,
    /// Per check id, overriding the built-in table.
    pub severities: BTreeMap<String, Severity>,
}

impl Default for CheckovConfig {
    fn default() -> Self {
        CheckovConfig {
            default_severity: Severity::Medium,
            severities: BTreeMap::new(),
        }
    }
}

/// Our rating of the Kubernetes and Dockerfile checks of Checkov 3.x, by what an attacker gains:
/// host or root access is critical or high, weakened isolation medium, hygiene low.
pub const BUILTIN_SEVERITIES: &[(&str, Severity)] = {
    use Severity::*;
    &[
        ("CKV_DOCKER_1", High),
        ("CKV_DOCKER_3", Medium),
        ("CKV_DOCKER_2", Low),
        ("CKV_DOCKER_4", Low),
        ("CKV_DOCKER_5", Low),
        ("CKV_DOCKER_6", Low),
        ("CKV_DOCKER_7", Low),
        ("CKV_DOCKER_8", High),
        ("CKV_DOCKER_9", Low),
        ("CKV_DOCKER_10", Low),
        ("CKV_DOCKER_11", Low),
        ("CKV_K8S_1", High),
        ("CKV_K8S_2", Critical),
        ("CKV_K8S_3", High),
        ("CKV_K8S_4", High),
        ("CKV_K8S_5", High),
        ("CKV_K8S_6", High),
        ("CKV_K8S_7", Medium),
        ("CKV_K8S_8", Low),
        ("CKV_K8S_9", Low),
        ("CKV_K8S_10", Low),
        ("CKV_K8S_11", Low),
        ("CKV_K8S_12", Low),
        ("CKV_K8S_13", Low),
        ("CKV_K8S_14", Low),
        ("CKV_K8S_15", Low),
        ("CKV_K8S_16", Critical),
        ("CKV_K8S_17", High),
        ("CKV_K8S_18", High),
        ("CKV_K8S_19", High),
        ("CKV_K8S_20", High),
        ("CKV_K8S_21", Low),
        ("CKV_K8S_22", Medium),
        ("CKV_K8S_23", High),
        ("CKV_K8S_24", High),
        ("CKV_K8S_25", High),
        ("CKV_K8S_26", Medium),
        ("CKV_K8S_27", Critical),
        ("CKV_K8S_28", Medium),
        ("CKV_K8S_29", Medium),
        ("CKV_K8S_30", Medium),
        ("CKV_K8S_31", Medium),
        ("CKV_K8S_32", Medium),
        ("CKV_K8S_33", Medium),
        ("CKV_K8S_34", Medium),
        ("CKV_K8S_35", Medium),
        ("CKV_K8S_36", Medium),
        ("CKV_K8S_37", Medium),
        ("CKV_K8S_38", Medium),
        ("CKV_K8S_39", Critical),
        ("CKV_K8S_40", Medium),
        ("CKV_K8S_41", Medium),
        ("CKV_K8S_42", Medium),
        ("CKV_K8S_43", Low),
        ("CKV_K8S_44", Medium),
        ("CKV_K8S_45", Medium),
        ("CKV_K8S_49", High),
        ("CKV_K8S_152", High),
        ("CKV_K8S_153", High),
        ("CKV_K8S_154", High),
        ("CKV_K8S_155", High),
        ("CKV_K8S_156", High),
        ("CKV_K8S_157", High),
        ("CKV_K8S_158", High),
        ("CKV_K8S_159", High),
    ]
};

/// The built-in severity of a check id, if it has one.
pub fn builtin_severity(check_id: &str) -> Option<Severity> {
    BUILTIN_SEVERITIES
        .iter()
        .find(|(id, _)| *id == check_id)
        .map(|&(_, sev)| sev)
}

#[derive(Deserialize)]
struct Report<'a> {
    #[serde(default)]
    check_type: Option<String>,
    #[serde(default, borrow)]
    results: Option<Results<'a>>,
    #[serde(default, borrow)]
    summary: Option<&'a RawValue>,
    #[serde(default, borrow)]
    failed: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Results<'a> {
    #[serde(default, borrow)]
    failed_checks: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Record {
    check_id: String,
    #[serde(default)]
    check_name: Option<String>,
    #[serde(default)]
    check_result: Option<Map<String, Value>>,
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    repo_file_path: Option<String>,
    #[serde(default)]
    file_line_range: Option<Vec<i64>>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    check_class: Option<String>,
    #[serde(default)]
    guideline: Option<String>,
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(report) = r.parse::<Report<'_>>(&doc) else {
        return;
    };
    let Some(results) = report.results else {
        if report.summary.is_none() && report.failed.is_none() {
            r.error(
                &doc.path,
                "expected a Checkov report (`check_type` and `results`) or summary, found neither",
            );
        }
        // A bare summary: nothing was scanned.
        return;
    };
    let framework = report.check_type.unwrap_or_default();
    for (i, raw) in results
        .failed_checks
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let item = doc.child(raw, format_args!(".results.failed_checks[{i}]"));
        if let Some(record) = r.parse::<Record>(&item) {
            read_record(r, &item, &framework, record);
        }
    }
}

fn read_record(r: &mut Reader<'_>, item: &Doc<'_>, framework: &str, rec: Record) {
    let config = &r.normalizer.config().checkov;
    let severity = match rec.severity.as_deref() {
        Some(s) => match s.parse::<Severity>() {
            Ok(sev) => sev,
            Err(e) => return r.error(&format!("{}.severity", item.path), e.to_string()),
        },
        None => config
            .severities
            .get(&rec.check_id)
            .copied()
            .or_else(|| builtin_severity(&rec.check_id))
            .unwrap_or(config.default_severity),
    };
    let file = rec.repo_file_path.as_deref().or(rec.file_path.as_deref());
    let fingerprint = Fingerprint::builder("checkov")
        .field(framework)
        .field(&rec.check_id)
        .opt(file)
        .opt(rec.resource.as_deref())
        .finish();
    let resource = rec
        .resource
        .as_deref()
        .and_then(|res| kubernetes_resource(framework, res));
    let title = rec
        .check_name
        .clone()
        .unwrap_or_else(|| rec.check_id.clone());
    let lines = match rec.file_line_range.as_deref() {
        Some([start, end]) => format!(":{start}-{end}"),
        _ => String::new(),
    };
    // `title: resource (file:lines)`, leaving out what the record does not say.
    let message = match (rec.resource.as_deref(), rec.file_path.as_deref()) {
        (Some(res), Some(file)) => format!("{title}: {res} ({file}{lines})"),
        (Some(res), None) => format!("{title}: {res}"),
        (None, Some(file)) => format!("{title}: {file}{lines}"),
        (None, None) => title.clone(),
    };

    let mut details = Map::new();
    if !framework.is_empty() {
        details.insert("check_type".into(), Value::String(framework.to_owned()));
    }
    for (key, value) in [
        ("file_path", &rec.file_path),
        ("repo_file_path", &rec.repo_file_path),
        ("resource", &rec.resource),
        ("check_class", &rec.check_class),
        ("guideline", &rec.guideline),
    ] {
        if let Some(v) = value {
            details.insert(key.into(), Value::String(v.clone()));
        }
    }
    if let Some(range) = rec.file_line_range {
        details.insert(
            "file_line_range".into(),
            range.into_iter().map(Value::from).collect(),
        );
    }
    if let Some(keys) = rec
        .check_result
        .and_then(|mut c| c.remove("evaluated_keys"))
    {
        details.insert("evaluated_keys".into(), keys);
    }
    let Some(details) = r.details(&item.path, &details) else {
        return;
    };
    r.out.events.push(Event {
        source: Cow::Borrowed("checkov"),
        category: Category::Compliance,
        severity,
        event_type: Cow::Borrowed("iac-misconfiguration"),
        rule_id: Some(rec.check_id),
        title,
        message,
        namespace: resource.as_ref().and_then(|r| r.namespace.clone()),
        resource,
        node: None,
        detected_at: r.ctx.received_at,
        fingerprint,
        labels: if framework.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([("checkov.framework".to_owned(), framework.to_owned())])
        },
        details,
    });
}

/// `Deployment.payments.payments-api` → Deployment `payments-api` in `payments`, for the
/// Kubernetes-manifest frameworks. The name may hold dots; kind and namespace cannot.
fn kubernetes_resource(framework: &str, resource: &str) -> Option<ResourceRef> {
    if !matches!(framework, "kubernetes" | "helm" | "kustomize") {
        return None;
    }
    let mut parts = resource.splitn(3, '.');
    let (kind, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(ResourceRef {
        api_version: None,
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: Some(namespace.to_owned()).filter(|n| !n.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_resources_split_into_kind_namespace_and_dotted_name() {
        let r = kubernetes_resource("kubernetes", "Deployment.payments.api.v2").unwrap();
        assert_eq!(
            (r.kind.as_str(), r.namespace.as_deref(), r.name.as_str()),
            ("Deployment", Some("payments"), "api.v2")
        );
        assert_eq!(kubernetes_resource("dockerfile", "/Dockerfile.RUN"), None);
        assert_eq!(
            kubernetes_resource("kubernetes", "Deployment.default"),
            None
        );
    }
}
