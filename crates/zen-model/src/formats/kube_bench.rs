//! `kube-bench --json` output: the default `{"Controls": [...], "Totals": {...}}`, the bare array
//! of controls that `--nototals` prints, a single controls object, or a Kubernetes list of any of
//! these. One event per check whose `status` is `FAIL` or `WARN`; `PASS` and `INFO` are counted as
//! ignored.
//!
//! kube-bench output names no node: the uploader says which (the [`Context`](crate::Context)'s
//! `node`), and it becomes the event's `node` and a `Node` resource.
//!
//! | Event field | from |
//! |---|---|
//! | `rule_id` | `test_number` |
//! | `title` | `test_desc` |
//! | `message` | `[STATUS] test_number test_desc`, plus `: reason` when there is one |
//! | `detected_at` | time of receipt (the output carries none) |
//! | labels | `benchmark.version` (e.g. `cis-1.10`), `benchmark.node_type` |
//! | `details` | control `id`, `text`, section, `audit`, `remediation`, `actual_value`, `expected_result`, `scored`, `type`, `reason` |
//!
//! Category `compliance`, event type `benchmark-check`. Severity: `FAIL` of a scored check →
//! high; `FAIL` unscored → medium; `WARN` → low.
//!
//! Fingerprint: node, benchmark `version`, `test_number`, `status`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::reader::{Doc, Reader};
use crate::{Category, Event, Fingerprint, ResourceRef, Severity};

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(rename = "Controls", default, borrow)]
    controls: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    tests: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Controls<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    node_type: Option<String>,
    #[serde(default, borrow)]
    tests: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Group<'a> {
    #[serde(default)]
    section: Option<String>,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default, borrow)]
    results: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Check {
    test_number: String,
    #[serde(default)]
    test_desc: Option<String>,
    status: String,
    #[serde(default)]
    scored: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(output) = r.parse::<Output<'_>>(&doc) else {
        return;
    };
    match (output.controls, output.tests) {
        (Some(controls), _) => {
            for (i, raw) in controls.into_iter().enumerate() {
                controls_doc(r, doc.child(raw, format_args!(".Controls[{i}]")));
            }
        }
        (None, Some(_)) => controls_doc(r, doc),
        (None, None) => r.error(
            &doc.path,
            "expected kube-bench output (`Controls`, or a control with `tests`), found neither",
        ),
    }
}

fn controls_doc(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(controls) = r.parse::<Controls<'_>>(&doc) else {
        return;
    };
    for (g, raw) in controls.tests.iter().flatten().enumerate() {
        let group_doc = doc.child(raw, format_args!(".tests[{g}]"));
        let Some(group) = r.parse::<Group<'_>>(&group_doc) else {
            continue;
        };
        for (c, raw) in group.results.iter().flatten().enumerate() {
            let check_doc = group_doc.child(raw, format_args!(".results[{c}]"));
            if let Some(check) = r.parse::<Check>(&check_doc) {
                read_check(r, &check_doc, &controls, &group, check);
            }
        }
    }
}

fn read_check(
    r: &mut Reader<'_>,
    doc: &Doc<'_>,
    controls: &Controls<'_>,
    group: &Group<'_>,
    check: Check,
) {
    let scored = check.scored.unwrap_or(false);
    let severity = match check.status.as_str() {
        "FAIL" if scored => Severity::High,
        "FAIL" => Severity::Medium,
        "WARN" => Severity::Low,
        "PASS" | "INFO" => {
            r.out.ignored += 1;
            return;
        }
        other => {
            let problem = format!("expected one of PASS, FAIL, WARN, INFO, found {other:?}");
            return r.error(&format!("{}.status", doc.path), problem);
        }
    };
    let node = r.ctx.node.clone();
    let fingerprint = Fingerprint::builder("kube-bench")
        .opt(node.as_deref())
        .opt(controls.version.as_deref())
        .field(&check.test_number)
        .field(&check.status)
        .finish();
    let title = check
        .test_desc
        .clone()
        .unwrap_or_else(|| check.test_number.clone());
    let reason = check.reason.as_deref().filter(|s| !s.is_empty());
    let message = match reason {
        Some(reason) => format!("[{}] {} {title}: {reason}", check.status, check.test_number),
        None => format!("[{}] {} {title}", check.status, check.test_number),
    };
    let mut labels = BTreeMap::new();
    for (key, value) in [
        ("benchmark.version", &controls.version),
        ("benchmark.node_type", &controls.node_type),
    ] {
        if let Some(v) = value {
            labels.insert(key.to_owned(), v.clone());
        }
    }
    let mut details = check.rest;
    details.insert("status".into(), Value::String(check.status));
    details.insert("scored".into(), Value::Bool(scored));
    if let Some(reason) = check.reason {
        details.insert("reason".into(), Value::String(reason));
    }
    for (key, value) in [
        ("control_id", &controls.id),
        ("control_text", &controls.text),
        ("section", &group.section),
        ("section_desc", &group.desc),
    ] {
        if let Some(v) = value {
            details.insert(key.into(), Value::String(v.clone()));
        }
    }
    let Some(details) = r.details(&doc.path, &details) else {
        return;
    };
    r.out.events.push(Event {
        source: Cow::Borrowed("kube-bench"),
        category: Category::Compliance,
        severity,
        event_type: Cow::Borrowed("benchmark-check"),
        rule_id: Some(check.test_number),
        title,
        message,
        resource: node.as_ref().map(|n| ResourceRef {
            api_version: Some("v1".to_owned()),
            kind: "Node".to_owned(),
            name: n.clone(),
            namespace: None,
        }),
        namespace: None,
        node,
        detected_at: r.ctx.received_at,
        fingerprint,
        labels,
        details,
    });
}
