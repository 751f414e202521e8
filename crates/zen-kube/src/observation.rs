//! The `Observation` custom resource, compatible with the Go zen-watcher's
//! (`observations.zen.kube-zen.io`, same spec fields), so its consumers keep working; the
//! status adds how often the finding was seen. Its CRD is generated from these types
//! (`cargo xtask gen` → `deploy/kubernetes/crds/`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use kube::core::crd::CustomResourceExt as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zen_model::{Category, Event, ResourceRef, Severity};

/// A finding as a Kubernetes resource. Named from its source and fingerprint, so a retry or a
/// second replica cannot make a twin.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "zen.kube-zen.io",
    version = "v1alpha1",
    kind = "Observation",
    plural = "observations",
    shortname = "obs",
    namespaced,
    status = "ObservationStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#,
    printcolumn = r#"{"name":"Category","type":"string","jsonPath":".spec.category"}"#,
    printcolumn = r#"{"name":"Severity","type":"string","jsonPath":".spec.severity"}"#,
    printcolumn = r#"{"name":"Count","type":"integer","jsonPath":".status.count"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ObservationSpec {
    /// The tool that found it (trivy, falco, kyverno, …).
    #[schemars(schema_with = "source_schema")]
    pub source: String,
    pub category: Category,
    pub severity: Severity,
    /// What kind of finding (vulnerability, misconfiguration, runtime_alert, …).
    #[schemars(schema_with = "event_type_schema")]
    pub event_type: String,
    /// The Kubernetes object it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceRef>,
    /// The source's own fields, with zen-watcher's title, message and rule id.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schemars(schema_with = "open_object")]
    pub details: Value,
    /// When the source found it (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "date_time")]
    pub detected_at: String,
    /// Deleted this long after creation by the leader's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub ttl_seconds_after_creation: Option<i64>,
}

/// What became of it since it was created.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservationStatus {
    /// Set by its consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_date_time")]
    pub last_processed_at: Option<String>,
    /// Sightings, duplicates included (from every replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<i64>,
    /// The latest sighting's time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_date_time")]
    pub last_seen: Option<String>,
}

fn source_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 63})
}

fn event_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "pattern": "^[a-z0-9_]+$", "maxLength": 63})
}

fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn date_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}

fn optional_date_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time", "nullable": true})
}

/// Where Observation resources live, for untyped calls.
pub(crate) fn api_resource() -> kube::core::ApiResource {
    kube::core::ApiResource::erase::<Observation>(&())
}

/// The label every Observation zen-watcher writes carries (`app.kubernetes.io/managed-by`).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "zen-watcher");

/// The resource's name: `<source>-<fingerprint>` (a DNS label: 32 hex digits after at most
/// 30 characters of the source).
pub fn name_for(event: &Event) -> String {
    let source: String = sanitise(&event.source, '-').chars().take(30).collect();
    format!("{}-{}", source.trim_matches('-'), event.fingerprint)
}

/// Lowercase letters and digits kept, anything else made `sep`.
fn sanitise(text: &str, sep: char) -> String {
    text.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                sep
            }
        })
        .collect()
}

/// The resource for a kept event, in its own namespace or `default_namespace`.
pub fn observation_for(event: &Event, default_namespace: &str, ttl: Option<i64>) -> Observation {
    let mut details = match event.details.to_value() {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    let mut ours = vec![
        ("title", Value::String(event.title.clone())),
        ("message", Value::String(event.message.clone())),
    ];
    if let Some(rule) = &event.rule_id {
        ours.push(("ruleId", Value::String(rule.clone())));
    }
    if let Some(node) = &event.node {
        ours.push(("node", Value::String(node.clone())));
    }
    if !event.labels.is_empty() {
        let labels = event
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())));
        ours.push(("labels", Value::Object(labels.collect())));
    }
    for (key, value) in ours {
        details.entry(key).or_insert(value);
    }
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (
            "zen.kube-zen.io/source".to_owned(),
            sanitise(&event.source, '-'),
        ),
        (
            "zen.kube-zen.io/severity".to_owned(),
            event.severity.as_str().to_owned(),
        ),
        (
            "zen.kube-zen.io/category".to_owned(),
            event.category.as_str().to_owned(),
        ),
    ]);
    let mut observation = Observation::new(
        &name_for(event),
        ObservationSpec {
            source: sanitise(&event.source, '-'),
            category: event.category,
            severity: event.severity,
            event_type: sanitise(&event.event_type, '_'),
            resource: event.resource.clone(),
            details: Value::Object(details),
            detected_at: event.detected_at.to_string(),
            ttl_seconds_after_creation: ttl,
        },
    );
    observation.metadata = ObjectMeta {
        name: observation.metadata.name.take(),
        namespace: Some(
            event
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_namespace.to_owned()),
        ),
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    observation
}

/// The CustomResourceDefinition, as YAML.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    let header =
        "# Generated by `cargo xtask gen` from crates/zen-kube/src/observation.rs: do not edit.\n";
    Ok(format!(
        "{header}{}",
        serde_yaml_ng::to_string(&Observation::crd())?
    ))
}
