//! Trivy operator reports, with the data under the top-level `report`:
//! `VulnerabilityReport` / `ClusterVulnerabilityReport` (one event per vulnerability) and
//! `ConfigAuditReport` and its kin `ClusterConfigAuditReport`, `RbacAssessmentReport`,
//! `ClusterRbacAssessmentReport`, `InfraAssessmentReport`, `ClusterInfraAssessmentReport` (one
//! event per check with `success: false`), and `ExposedSecretReport` (one event per secret found
//! in an image). Without a `kind`, `report.vulnerabilities`, `report.checks` or `report.secrets`
//! tells which. A Kubernetes list of reports is read item by item.
//!
//! The workload a report is about comes from the `trivy-operator.resource.{kind,name,namespace}`
//! labels, else the controller owner reference, else the report itself; the container from
//! `trivy-operator.container.name`.
//!
//! | Event field | vulnerability | failed check | exposed secret |
//! |---|---|---|---|
//! | `rule_id` | `vulnerabilityID` | `checkID` | `ruleID` |
//! | `title` | `title`, else `<id> in <package>` | `title`, else `checkID` | `title`, else `ruleID` |
//! | `message` | `<id> in <package> <installed>, fixed in <fixed>` (or `no fix available`) | the `messages`, joined | `<title> in <target>` |
//! | `event_type` | `vulnerability` | `misconfiguration` | `exposed_secret` |
//! | `detected_at` | `report.updateTimestamp`, else `metadata.creationTimestamp`, else time of receipt | same | same |
//!
//! Category `security`. Severity: CRITICAL, HIGH, MEDIUM, LOW → the same; UNKNOWN and NONE → info.
//!
//! Fingerprint: vulnerability — workload kind, namespace, name, container, `vulnerabilityID`,
//! package (`resource`), `installedVersion`; check — report kind family, workload kind,
//! namespace, name, `checkID`, `scope.type`, `scope.value`; secret — workload kind, namespace,
//! name, container, `ruleID`, `target` (not the masked `match`). Never the scan time.
//!
//! [`new_findings`] compares two scans of the same workload and keeps what the new one adds.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::formats::{ObjectMeta, non_empty};
use crate::reader::{Doc, Reader};
use crate::{
    Category, Context, Event, Fingerprint, Format, NormalizeError, Normalized, Normalizer,
    ResourceRef, Severity, time,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(borrow)]
    report: Body<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(default)]
    update_timestamp: Option<String>,
    #[serde(default)]
    scanner: Option<Map<String, Value>>,
    #[serde(default)]
    registry: Option<Map<String, Value>>,
    #[serde(default)]
    artifact: Option<Map<String, Value>>,
    #[serde(default, borrow)]
    vulnerabilities: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    checks: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    secrets: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vulnerability {
    #[serde(rename = "vulnerabilityID")]
    vulnerability_id: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    installed_version: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
    severity: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    #[serde(rename = "checkID")]
    check_id: String,
    #[serde(default)]
    title: Option<String>,
    severity: String,
    success: bool,
    #[serde(default)]
    messages: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    #[serde(rename = "ruleID")]
    rule_id: String,
    #[serde(default)]
    title: Option<String>,
    severity: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct Scope {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

const VULN_KINDS: [&str; 2] = ["VulnerabilityReport", "ClusterVulnerabilityReport"];
const SECRET_KIND: &str = "ExposedSecretReport";
const CHECK_KINDS: [&str; 6] = [
    "ConfigAuditReport",
    "ClusterConfigAuditReport",
    "RbacAssessmentReport",
    "ClusterRbacAssessmentReport",
    "InfraAssessmentReport",
    "ClusterInfraAssessmentReport",
];

/// Trivy severity → severity.
pub fn severity_of(trivy: &str) -> Option<Severity> {
    match trivy.to_ascii_uppercase().as_str() {
        "CRITICAL" => Some(Severity::Critical),
        "HIGH" => Some(Severity::High),
        "MEDIUM" => Some(Severity::Medium),
        "LOW" => Some(Severity::Low),
        "UNKNOWN" | "NONE" => Some(Severity::Info),
        _ => None,
    }
}

/// What every finding of one report shares.
struct Common {
    workload: ResourceRef,
    container: Option<String>,
    detected_at: jiff::Timestamp,
    report_kind: String,
    report_name: Option<String>,
    scanner: Option<Map<String, Value>>,
    image: Option<String>,
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(report) = r.parse::<Report<'_>>(&doc) else {
        return;
    };
    let body = report.report;
    let kind = match report.kind.as_deref() {
        Some(k) if VULN_KINDS.contains(&k) || CHECK_KINDS.contains(&k) || k == SECRET_KIND => {
            k.to_owned()
        }
        Some(k) => {
            let expected = "VulnerabilityReport, ConfigAuditReport, RbacAssessmentReport, InfraAssessmentReport or their Cluster… forms, or ExposedSecretReport";
            return r.error(
                &format!("{}.kind", doc.path),
                format!("expected {expected}, found {k:?}"),
            );
        }
        None if body.vulnerabilities.is_some() => VULN_KINDS[0].to_owned(),
        None if body.checks.is_some() => CHECK_KINDS[0].to_owned(),
        None if body.secrets.is_some() => SECRET_KIND.to_owned(),
        None => {
            let problem = "expected `vulnerabilities`, `checks` or `secrets` in a report without a kind, found none";
            return r.error(&format!("{}.report", doc.path), problem);
        }
    };
    let meta = report.metadata.unwrap_or_default();
    let detected_at = match non_empty(body.update_timestamp.as_deref())
        .or(non_empty(meta.creation_timestamp.as_deref()))
    {
        Some(t) => match time::rfc3339(t) {
            Ok(t) => t,
            Err(problem) => {
                return r.error(&format!("{}.report.updateTimestamp", doc.path), problem);
            }
        },
        None => r.ctx.received_at,
    };
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let owner = meta.owner_references.as_ref().and_then(|refs| {
        refs.iter()
            .find(|o| o.controller == Some(true))
            .or(refs.first())
    });
    let workload = match (
        label("trivy-operator.resource.kind"),
        label("trivy-operator.resource.name"),
        owner,
    ) {
        (Some(kind), Some(name), _) => ResourceRef {
            api_version: None,
            kind,
            name,
            namespace: label("trivy-operator.resource.namespace").or(meta.namespace.clone()),
        },
        (_, _, Some(o)) => ResourceRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            namespace: meta.namespace.clone(),
        },
        _ => ResourceRef {
            api_version: Some("aquasecurity.github.io/v1alpha1".to_owned()),
            kind: kind.clone(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone(),
        },
    };
    let image = body.artifact.as_ref().and_then(|a| {
        let repo = a.get("repository")?.as_str()?;
        let registry = body
            .registry
            .as_ref()
            .and_then(|r| r.get("server")?.as_str());
        let tag = a
            .get("tag")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let mut image = registry.map_or_else(|| repo.to_owned(), |reg| format!("{reg}/{repo}"));
        if let Some(tag) = tag {
            image = format!("{image}:{tag}");
        }
        Some(image)
    });
    let common = Common {
        workload,
        container: label("trivy-operator.container.name"),
        detected_at,
        report_kind: kind,
        report_name: meta.name,
        scanner: body.scanner,
        image,
    };

    if VULN_KINDS.contains(&common.report_kind.as_str()) {
        let items = body.vulnerabilities.unwrap_or_default();
        for (i, raw) in items.into_iter().enumerate() {
            let item = doc.child(raw, format_args!(".report.vulnerabilities[{i}]"));
            if let Some(v) = r.parse::<Vulnerability>(&item) {
                vulnerability(r, &item, &common, v);
            }
        }
    } else if common.report_kind == SECRET_KIND {
        let items = body.secrets.unwrap_or_default();
        for (i, raw) in items.into_iter().enumerate() {
            let item = doc.child(raw, format_args!(".report.secrets[{i}]"));
            if let Some(s) = r.parse::<Secret>(&item) {
                secret(r, &item, &common, s);
            }
        }
    } else {
        let items = body.checks.unwrap_or_default();
        for (i, raw) in items.into_iter().enumerate() {
            let item = doc.child(raw, format_args!(".report.checks[{i}]"));
            if let Some(c) = r.parse::<Check>(&item) {
                check(r, &item, &common, c);
            }
        }
    }
}

fn severity_or_error(r: &mut Reader<'_>, item: &Doc<'_>, trivy: &str) -> Option<Severity> {
    let sev = severity_of(trivy);
    if sev.is_none() {
        let problem = format!(
            "expected a Trivy severity (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN), found {trivy:?}"
        );
        r.error(&format!("{}.severity", item.path), problem);
    }
    sev
}

fn vulnerability(r: &mut Reader<'_>, item: &Doc<'_>, c: &Common, v: Vulnerability) {
    let Some(severity) = severity_or_error(r, item, &v.severity) else {
        return;
    };
    let package = v.resource.as_deref().unwrap_or("(unknown package)");
    let installed = v.installed_version.as_deref().unwrap_or("");
    let fingerprint = Fingerprint::builder("trivy")
        .field("vulnerability")
        .field(&c.workload.kind)
        .opt(c.workload.namespace.as_deref())
        .field(&c.workload.name)
        .opt(c.container.as_deref())
        .field(&v.vulnerability_id)
        .opt(v.resource.as_deref())
        .opt(v.installed_version.as_deref())
        .finish();
    let fix = match non_empty(v.fixed_version.as_deref()) {
        Some(fixed) => format!("fixed in {fixed}"),
        None => "no fix available".to_owned(),
    };
    let message =
        format!("{} in {package} {installed}, {fix}", v.vulnerability_id).replace("  ", " ");
    let title = match non_empty(v.title.as_deref()) {
        Some(t) => t.to_owned(),
        None => format!("{} in {package}", v.vulnerability_id),
    };
    let mut details = v.rest;
    details.insert(
        "vulnerabilityID".into(),
        Value::String(v.vulnerability_id.clone()),
    );
    details.insert("severity".into(), Value::String(v.severity));
    for (key, value) in [
        ("resource", v.resource),
        ("installedVersion", v.installed_version),
        ("fixedVersion", v.fixed_version),
    ] {
        if let Some(value) = value {
            details.insert(key.into(), Value::String(value));
        }
    }
    let finding = Finding {
        severity,
        event_type: "vulnerability",
        rule_id: v.vulnerability_id,
        title,
        message,
        fingerprint,
        details,
    };
    push(r, item, c, finding);
}

fn check(r: &mut Reader<'_>, item: &Doc<'_>, c: &Common, ch: Check) {
    if ch.success {
        r.out.ignored += 1;
        return;
    }
    let Some(severity) = severity_or_error(r, item, &ch.severity) else {
        return;
    };
    let (scope_kind, scope_value) = ch
        .scope
        .as_ref()
        .map_or((None, None), |s| (s.kind.as_deref(), s.value.as_deref()));
    let family = c.report_kind.trim_start_matches("Cluster");
    let fingerprint = Fingerprint::builder("trivy")
        .field(family)
        .field(&c.workload.kind)
        .opt(c.workload.namespace.as_deref())
        .field(&c.workload.name)
        .field(&ch.check_id)
        .opt(scope_kind)
        .opt(scope_value)
        .finish();
    let messages = ch.messages.unwrap_or_default();
    let title = non_empty(ch.title.as_deref())
        .unwrap_or(&ch.check_id)
        .to_owned();
    let message = if messages.is_empty() {
        title.clone()
    } else {
        messages.join("; ")
    };
    let mut details = ch.rest;
    details.insert("checkID".into(), Value::String(ch.check_id.clone()));
    details.insert("severity".into(), Value::String(ch.severity));
    details.insert(
        "messages".into(),
        messages.into_iter().map(Value::String).collect(),
    );
    if let Some(kind) = scope_kind {
        let scope = Map::from_iter([
            ("type".to_owned(), Value::String(kind.to_owned())),
            (
                "value".to_owned(),
                scope_value.map_or(Value::Null, |v| Value::String(v.to_owned())),
            ),
        ]);
        details.insert("scope".into(), Value::Object(scope));
    }
    let finding = Finding {
        severity,
        event_type: "misconfiguration",
        rule_id: ch.check_id,
        title,
        message,
        fingerprint,
        details,
    };
    push(r, item, c, finding);
}

fn secret(r: &mut Reader<'_>, item: &Doc<'_>, c: &Common, s: Secret) {
    let Some(severity) = severity_or_error(r, item, &s.severity) else {
        return;
    };
    let fingerprint = Fingerprint::builder("trivy")
        .field("secret")
        .field(&c.workload.kind)
        .opt(c.workload.namespace.as_deref())
        .field(&c.workload.name)
        .opt(c.container.as_deref())
        .field(&s.rule_id)
        .opt(s.target.as_deref())
        .finish();
    let title = non_empty(s.title.as_deref())
        .unwrap_or(&s.rule_id)
        .to_owned();
    let message = match non_empty(s.target.as_deref()) {
        Some(target) => format!("{title} in {target}"),
        None => title.clone(),
    };
    let mut details = s.rest;
    details.insert("ruleID".into(), Value::String(s.rule_id.clone()));
    details.insert("severity".into(), Value::String(s.severity));
    if let Some(target) = s.target {
        details.insert("target".into(), Value::String(target));
    }
    let finding = Finding {
        severity,
        event_type: "exposed_secret",
        rule_id: s.rule_id,
        title,
        message,
        fingerprint,
        details,
    };
    push(r, item, c, finding);
}

/// One finding of a report, before what all the report's findings share is added.
struct Finding {
    severity: Severity,
    event_type: &'static str,
    rule_id: String,
    title: String,
    message: String,
    fingerprint: Fingerprint,
    details: Map<String, Value>,
}

fn push(r: &mut Reader<'_>, item: &Doc<'_>, c: &Common, finding: Finding) {
    let Finding {
        severity,
        event_type,
        rule_id,
        title,
        message,
        fingerprint,
        mut details,
    } = finding;
    details.insert("reportKind".into(), Value::String(c.report_kind.clone()));
    if let Some(name) = &c.report_name {
        details.insert("reportName".into(), Value::String(name.clone()));
    }
    if let Some(scanner) = &c.scanner {
        details.insert("scanner".into(), Value::Object(scanner.clone()));
    }
    let mut labels = BTreeMap::new();
    if let Some(container) = &c.container {
        labels.insert("trivy.container".to_owned(), container.clone());
    }
    if let Some(image) = &c.image {
        labels.insert("trivy.image".to_owned(), image.clone());
    }
    let Some(details) = r.details(&item.path, &details) else {
        return;
    };
    r.out.events.push(Event {
        source: Cow::Borrowed("trivy"),
        category: Category::Security,
        severity,
        event_type: Cow::Borrowed(event_type),
        rule_id: Some(rule_id),
        title,
        message,
        resource: Some(c.workload.clone()),
        namespace: c.workload.namespace.clone(),
        node: None,
        detected_at: c.detected_at,
        fingerprint,
        labels,
        details,
    });
}

/// The findings of `current` that `previous` did not have, for two scans of the same workload.
///
/// Both are Trivy payloads; a finding is the same when its fingerprint is. Errors in
/// `previous` make it unusable as a baseline and are returned as the error.
pub fn new_findings(
    normalizer: &Normalizer,
    previous: &[u8],
    current: &[u8],
    ctx: &Context,
) -> Result<Normalized, NormalizeError> {
    let before = normalizer.normalize(Format::Trivy, previous, ctx)?;
    if let Some(e) = before.errors.into_iter().next() {
        return Err(e);
    }
    let known: HashSet<Fingerprint> = before.events.iter().map(|e| e.fingerprint).collect();
    let mut now = normalizer.normalize(Format::Trivy, current, ctx)?;
    let total = now.events.len();
    now.events.retain(|e| !known.contains(&e.fingerprint));
    now.ignored += total - now.events.len();
    Ok(now)
}
