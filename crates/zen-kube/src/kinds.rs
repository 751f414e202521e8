//! The report kinds zen-watcher follows, where they live, and which reader reads them.

use kube::core::ApiResource;
use zen_model::Format;

/// A kind of report custom resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// The zen-model reader of its objects.
    pub format: Format,
}

impl ReportKind {
    /// `plural.group`, as `kubectl` and the `resource` label of the informer metrics name it.
    pub fn resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    pub(crate) fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }
}

const fn trivy(kind: &'static str, plural: &'static str, namespaced: bool) -> ReportKind {
    ReportKind {
        group: "aquasecurity.github.io",
        version: "v1alpha1",
        kind,
        plural,
        namespaced,
        format: Format::Trivy,
    }
}

const fn policy(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> ReportKind {
    ReportKind {
        group,
        version,
        kind,
        plural,
        namespaced,
        format: Format::Kyverno,
    }
}

/// Every kind the watchers follow: Trivy Operator's reports, and policy reports in both the
/// `wgpolicyk8s.io` group and the `openreports.io` group newer Kyverno releases write.
pub const REPORT_KINDS: &[ReportKind] = &[
    trivy("VulnerabilityReport", "vulnerabilityreports", true),
    trivy(
        "ClusterVulnerabilityReport",
        "clustervulnerabilityreports",
        false,
    ),
    trivy("ConfigAuditReport", "configauditreports", true),
    trivy(
        "ClusterConfigAuditReport",
        "clusterconfigauditreports",
        false,
    ),
    trivy("ExposedSecretReport", "exposedsecretreports", true),
    trivy("RbacAssessmentReport", "rbacassessmentreports", true),
    trivy(
        "ClusterRbacAssessmentReport",
        "clusterrbacassessmentreports",
        false,
    ),
    trivy("InfraAssessmentReport", "infraassessmentreports", true),
    trivy(
        "ClusterInfraAssessmentReport",
        "clusterinfraassessmentreports",
        false,
    ),
    policy(
        "wgpolicyk8s.io",
        "v1alpha2",
        "PolicyReport",
        "policyreports",
        true,
    ),
    policy(
        "wgpolicyk8s.io",
        "v1alpha2",
        "ClusterPolicyReport",
        "clusterpolicyreports",
        false,
    ),
    policy("openreports.io", "v1alpha1", "Report", "reports", true),
    policy(
        "openreports.io",
        "v1alpha1",
        "ClusterReport",
        "clusterreports",
        false,
    ),
];

/// The kind named `plural.group` (or just `plural`, when only one group has it).
pub fn find(name: &str) -> Option<&'static ReportKind> {
    REPORT_KINDS
        .iter()
        .find(|k| k.resource() == name)
        .or_else(|| {
            let mut by_plural = REPORT_KINDS.iter().filter(|k| k.plural == name);
            match (by_plural.next(), by_plural.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            }
        })
}
