//! Kubernetes mode. Report watchers follow the report custom resources where they live —
//! Trivy Operator's reports and policy reports (`wgpolicyk8s.io`, `openreports.io`) — and
//! turn each new version into the findings it adds, read by zen-model's readers through the
//! pipeline (no second parser), and the findings it no longer holds, resolved in the store's
//! findings ([`zen_sink::Findings`]). A kind whose CRD is not installed is a degraded source,
//! tried again slowly, not an error.
//!
//! Everything here talks to the API server through the `kube` client; nothing here serves
//! HTTP, knows SQL or reads the host.

mod budget;
mod expiry;
mod ingester;
mod kinds;
mod lease;
mod ledger;
mod observation;
mod policy;
mod watch;
mod writer;

pub use expiry::{ExpirySettings, expire_while_leading};
pub use kinds::{REPORT_KINDS, ReportKind, find};
pub use kube::Client;
pub use lease::{Leadership, LeaseSettings};
pub use observation::{
    MANAGED_BY, Observation, ObservationSpec, ObservationStatus, crd_yaml, name_for,
    observation_for,
};
pub use policy::{
    Policies, PolicyCondition, PolicyFilter, PolicySettings, PolicyStatus, SourcePolicy,
    SourcePolicySpec, policy_crd_yaml,
};
pub use watch::{WatchError, WatchSettings, Watchers};
pub use writer::{ObservationSettings, ObservationSink};

/// A client for the cluster the daemon runs in (its service account), or the one the
/// kubeconfig (`KUBECONFIG`, `~/.kube/config`) names.
pub async fn client() -> Result<Client, kube::Error> {
    Client::try_default().await
}
