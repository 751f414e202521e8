//! # Source formats
//!
//! One module per source format. Each reads a document (or each item of it) into [`Event`]s;
//! its documentation below is its field mapping, severity table and fingerprint fields.
//!
//! What all formats share:
//!
//! - **Input**: one JSON value, NDJSON (one document a line; a bad line costs only itself), or
//!   YAML (`---`-separated documents, as `kubectl get -o yaml` prints). Every report format also
//!   reads a Kubernetes list (`{"kind": "…List", "items": [...]}`) and a top-level array, item by
//!   item.
//! - **Severity** is one of critical, high, medium, low, info (in that order); **category** one
//!   of security, compliance, performance, operations, cost.
//! - **Fingerprint**: XXH3-128 over the source name and the format's identity fields, each
//!   length-prefixed, absent and empty told apart. Never timestamps, key order or layout.
//! - **Errors** name the format, the place (`line L, column C` for syntax; a path like
//!   `$.items[3].verb` for shape, after `line N:` in multi-document input) and what was expected
//!   against what was found. Items that are read but are not findings (passed checks, audit
//!   events that match no rule) are counted as *ignored*.
//! - **Time**: the source's own time when it has one, else the time of receipt the caller gives.
//!
//! [`Event`]: crate::Event

pub mod audit;
pub mod checkov;
pub mod falco;
pub mod generic;
pub mod kube_bench;
pub mod kyverno;
pub mod trivy;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::reader::{Doc, Lists, Reader};
use crate::severity::UnknownName;

/// A source format zen-watcher can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Falco `json_output` (`http_output`) and falcosidekick webhook payloads.
    Falco,
    /// Kubernetes `audit.k8s.io/v1` events, as the audit webhook or log backend writes them.
    Audit,
    /// Trivy operator `VulnerabilityReport` and `ConfigAuditReport` (and their kin).
    Trivy,
    /// `wgpolicyk8s.io` / `openreports.io` policy reports, as Kyverno writes them.
    Kyverno,
    /// `kube-bench --json` output.
    KubeBench,
    /// `checkov -o json` output.
    Checkov,
    /// Any JSON object, mapped by configurable JSON pointers.
    Generic,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Falco,
        Format::Audit,
        Format::Trivy,
        Format::Kyverno,
        Format::KubeBench,
        Format::Checkov,
        Format::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Falco => "falco",
            Format::Audit => "audit",
            Format::Trivy => "trivy",
            Format::Kyverno => "kyverno",
            Format::KubeBench => "kube-bench",
            Format::Checkov => "checkov",
            Format::Generic => "generic",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownName;

    /// The format names, plus `falcosidekick` for `falco`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "falcosidekick" {
            return Ok(Format::Falco);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownName {
                expected: "falco, falcosidekick, audit, trivy, kyverno, kube-bench, checkov, generic",
                found: s.to_owned(),
            })
    }
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    match r.format {
        Format::Falco => r.each_item(doc, Lists::No, falco::read),
        Format::Audit => audit::read(r, doc),
        Format::Trivy => r.each_item(doc, Lists::Yes, trivy::read),
        Format::Kyverno => r.each_item(doc, Lists::Yes, kyverno::read),
        Format::KubeBench => r.each_item(doc, Lists::Yes, kube_bench::read),
        Format::Checkov => r.each_item(doc, Lists::Yes, checkov::read),
        Format::Generic => generic::read(r, doc),
    }
}

/// An optional string where empty means absent (`namespace: ""` of cluster-scoped objects).
pub(crate) fn non_empty_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// The part of Kubernetes `ObjectMeta` the report formats use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectMeta {
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Empty (as some tools write it for cluster-scoped objects) is absent.
    #[serde(default, deserialize_with = "non_empty_string")]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    pub(crate) creation_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OwnerReference {
    #[serde(default)]
    pub(crate) api_version: Option<String>,
    pub(crate) kind: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) controller: Option<bool>,
}

/// The Kind of a resource from its plural name, for the common built-in resources; other names
/// are kept as they are.
pub(crate) fn kind_of_resource(resource: &str) -> &str {
    match resource {
        "pods" => "Pod",
        "secrets" => "Secret",
        "configmaps" => "ConfigMap",
        "services" => "Service",
        "serviceaccounts" => "ServiceAccount",
        "namespaces" => "Namespace",
        "nodes" => "Node",
        "deployments" => "Deployment",
        "daemonsets" => "DaemonSet",
        "statefulsets" => "StatefulSet",
        "replicasets" => "ReplicaSet",
        "jobs" => "Job",
        "cronjobs" => "CronJob",
        "roles" => "Role",
        "rolebindings" => "RoleBinding",
        "clusterroles" => "ClusterRole",
        "clusterrolebindings" => "ClusterRoleBinding",
        "persistentvolumes" => "PersistentVolume",
        "persistentvolumeclaims" => "PersistentVolumeClaim",
        "ingresses" => "Ingress",
        "networkpolicies" => "NetworkPolicy",
        "customresourcedefinitions" => "CustomResourceDefinition",
        "mutatingwebhookconfigurations" => "MutatingWebhookConfiguration",
        "validatingwebhookconfigurations" => "ValidatingWebhookConfiguration",
        "tokenreviews" => "TokenReview",
        "subjectaccessreviews" => "SubjectAccessReview",
        "certificatesigningrequests" => "CertificateSigningRequest",
        other => other,
    }
}

/// Empty strings mean "absent" in most Kubernetes and Go-produced payloads.
pub(crate) fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}
