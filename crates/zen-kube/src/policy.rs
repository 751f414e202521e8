//! Configuration from custom resources: `SourcePolicy` (`zen-watcher.io/v1alpha1`), a
//! source's filter rules and de-duplication window — or, for source `*`, every source's
//! defaults — mapped onto the pipeline's configuration types. A watcher in the daemon's
//! namespace keeps the last good version of each policy; each change is checked on its own
//! (its filter compiled, its window read, one policy per source), a bad one rejected with an
//! `Accepted=False` condition naming what is wrong (with its `observedGeneration`), a Warning
//! event and `zen_watcher_config_rejected_total` while its last good version stays in force;
//! the policies in force, laid over the configuration file's, are then handed to
//! [`Pipeline::reconfigure`], which forgets the cached settings of only the sources that
//! changed. The Go zen-watcher's `Ingester` resources (every namespace) are read the same way
//! for the parts that map (`ingester.rs`), under the policies, their status naming what is not
//! supported. Every replica applies them; the leader alone writes statuses and events.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{CustomResource, Resource as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use zen_dedup::DedupConfig;
use zen_filter::{FilterConfig, FilterRules};
use zen_model::{Category, Severity, Timestamp};
use zen_pipeline::Pipeline;

/// A source's settings, from a custom resource.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "zen-watcher.io",
    version = "v1alpha1",
    kind = "SourcePolicy",
    plural = "sourcepolicies",
    shortname = "zsp",
    namespaced,
    status = "PolicyStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourcePolicySpec {
    /// The source it applies to (`falco`, `trivy`, `kyverno`, …), or `*` for every source
    /// without a policy of its own.
    #[schemars(schema_with = "source_name")]
    pub source: String,
    /// Which of the source's events are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<PolicyFilter>,
    /// How long repeats of a finding fold into its first sighting (`90s`, `5m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration")]
    pub dedup_window: Option<String>,
}

/// The filter rules of the configuration file (`filter.sources.<name>`), in Kubernetes' case.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyFilter {
    /// `false` drops every event of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// When not empty, only these severities are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<Severity>,
    /// When not empty, only namespaces matching one of these globs are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
    /// When not empty, only events about resources of these kinds are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Rule, check or vulnerability ids whose events are dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_rules: Vec<String>,
    /// An expression an event must satisfy to be kept (the filter language of
    /// `docs/ARCHITECTURE.md`, e.g. `severity >= high AND namespace STARTS_WITH "prod-"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl From<&PolicyFilter> for FilterRules {
    fn from(p: &PolicyFilter) -> Self {
        FilterRules {
            enabled: p.enabled.unwrap_or(true),
            min_severity: p.min_severity,
            severities: p.severities.clone(),
            include_namespaces: p.include_namespaces.clone(),
            exclude_namespaces: p.exclude_namespaces.clone(),
            kinds: p.kinds.clone(),
            categories: p.categories.clone(),
            event_types: p.event_types.clone(),
            exclude_rules: p.exclude_rules.clone(),
            expression: p.expression.clone(),
        }
    }
}

/// Whether the policy is in force.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PolicyCondition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition, as `metav1.Condition` has them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyCondition {
    /// `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// `Valid`, `Invalid` or `Conflict`.
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[schemars(schema_with = "date_time")]
    pub last_transition_time: String,
}

fn source_name(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "pattern": "^([a-z0-9][a-z0-9-]*|\\*)$", "maxLength": 63})
}

fn duration(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"})
}

fn date_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}

/// What is said of a version in its status (and, rejected, in an event).
#[derive(Debug)]
struct Verdict {
    accepted: bool,
    reason: &'static str,
    message: String,
}

/// A policy's rules, checked: what it puts in force.
#[derive(Debug, Clone, PartialEq)]
struct Checked {
    source: String,
    filter: Option<FilterRules>,
    window: Option<Duration>,
}

/// `90s`, `5m`, `1h`, `250ms`: a window of at most a day.
fn parse_window(text: &str) -> Result<Duration, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().map_err(|_| {
        format!("dedupWindow: expected a number and a unit (ms, s, m, h), found {text:?}")
    })?;
    let window = match &text[digits.len()..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        unit => {
            return Err(format!(
                "dedupWindow: expected a unit of ms, s, m or h, found {unit:?} in {text:?}"
            ));
        }
    };
    if window > Duration::from_secs(86_400) {
        return Err(format!("dedupWindow: expected at most 24h, found {text:?}"));
    }
    Ok(window)
}

/// Checks one policy on its own: its filter compiles, its window reads.
fn check(spec: &SourcePolicySpec) -> Result<Checked, String> {
    let filter = spec.filter.as_ref().map(FilterRules::from);
    if let Some(rules) = &filter {
        let config = FilterConfig {
            global: rules.clone(),
            sources: BTreeMap::new(),
        };
        zen_filter::Filter::compile(&config).map_err(|e| {
            let e = e.to_string();
            format!("filter.{}", e.strip_prefix("global.").unwrap_or(&e))
        })?;
    }
    let window = spec.dedup_window.as_deref().map(parse_window).transpose()?;
    Ok(Checked {
        source: spec.source.clone(),
        filter,
        window,
    })
}

/// The configuration file's rules with the policies in force laid over them.
fn merged(
    base: &(FilterConfig, DedupConfig),
    policies: &BTreeMap<String, Checked>,
) -> (FilterConfig, DedupConfig) {
    let (mut filter, mut dedup) = base.clone();
    for p in policies.values() {
        if p.source == "*" {
            if let Some(rules) = &p.filter {
                filter.global = rules.clone();
            }
            if let Some(w) = p.window {
                dedup.window = w;
            }
        } else {
            if let Some(rules) = &p.filter {
                filter.sources.insert(p.source.clone(), rules.clone());
            }
            if let Some(w) = p.window {
                dedup.source_windows.insert(p.source.clone(), w);
            }
        }
    }
    (filter, dedup)
}

/// Where policies are read and how long the start waits for them.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// The daemon's namespace: policies elsewhere are not read.
    pub namespace: String,
    /// How long the daemon waits at start for the policies to be listed.
    pub sync_timeout: Duration,
    pub retry_max: Duration,
    /// This replica, as events name their reporter.
    pub identity: String,
}

/// The running policy watcher; dropping it stops it.
#[derive(Debug)]
pub struct Policies {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Policies {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Policies {
    /// Starts following the policies and waits until they are listed and in force, or until
    /// `sync_timeout` (said in the log; the file's configuration stays in force meanwhile).
    /// `leading` says whether this replica writes statuses and events (none: it always does).
    pub async fn start(
        client: kube::Client,
        settings: PolicySettings,
        base: (FilterConfig, DedupConfig),
        pipeline: Arc<Pipeline>,
        leading: Option<watch::Receiver<bool>>,
    ) -> Policies {
        let (synced, first_sync) = oneshot::channel();
        let follower = Follower {
            api: Api::namespaced(client.clone(), &settings.namespace),
            events: Api::namespaced(client.clone(), &settings.namespace),
            ingesters: Api::all_with(client, &ingester_resource()),
            base,
            pipeline,
            leading,
            good: BTreeMap::new(),
            seen: BTreeMap::new(),
            identity: settings.identity.clone(),
            rejected: metrics::counter!("zen_watcher_config_rejected_total"),
            reload: metrics::histogram!("zen_watcher_config_reload_duration_seconds"),
        };
        let task = tokio::spawn(follower.run(settings.retry_max, synced));
        let started = Instant::now();
        match tokio::time::timeout(settings.sync_timeout, first_sync).await {
            Ok(Ok(())) => tracing::info!(
                namespace = %settings.namespace,
                waited_ms = started.elapsed().as_millis() as u64,
                "source policies listed and in force"
            ),
            _ => tracing::warn!(
                namespace = %settings.namespace,
                timeout = ?settings.sync_timeout,
                "source policies not listed in time; starting with the configuration file's, and applying them when they come"
            ),
        }
        Policies { task }
    }
}

struct Follower {
    api: Api<SourcePolicy>,
    events: Api<K8sEvent>,
    base: (FilterConfig, DedupConfig),
    pipeline: Arc<Pipeline>,
    leading: Option<watch::Receiver<bool>>,
    /// Go zen-watcher `Ingester`s, in every namespace.
    ingesters: Api<DynamicObject>,
    /// The last good version of each policy (`policy/<name>`) and Ingester
    /// (`ingester/<namespace>/<name>`); Ingesters sort first, so policies lie over them.
    good: BTreeMap<String, Checked>,
    /// Each as last seen (generation and spec), to tell a new version from a status update.
    seen: BTreeMap<String, (Option<i64>, String)>,
    identity: String,
    rejected: metrics::Counter,
    reload: metrics::Histogram,
}

impl Follower {
    async fn run(mut self, retry_max: Duration, synced: oneshot::Sender<()>) {
        let policies = watcher::watcher(self.api.clone(), watcher::Config::default())
            .backoff(crate::watch::Retry::new(retry_max, 7))
            .map(Item::Policy);
        let ingesters = watcher::watcher(self.ingesters.clone(), watcher::Config::default())
            .backoff(crate::watch::Retry::new(retry_max, 8))
            .map(Item::Ingester);
        let mut stream = pin!(futures_util::stream::select(policies, ingesters));
        let mut synced = Some(synced);
        // Listed since the last `Init`, by kind: reports missing from a list were deleted.
        let mut listed: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        // Ready once the policies are listed and the Ingesters listed or not served.
        let (mut policies_ready, mut ingesters_ready) = (false, false);
        // Verdicts on a list's versions, by kind, reported once the list is in force.
        let mut verdicts: BTreeMap<&'static str, Vec<(Versioned, Verdict)>> = BTreeMap::new();
        while let Some(item) = stream.next().await {
            let received = Instant::now();
            let (prefix, event) = match item {
                Item::Policy(Ok(e)) => ("policy/", versioned(e, Versioned::Policy)),
                Item::Ingester(Ok(e)) => ("ingester/", versioned(e, Versioned::Ingester)),
                Item::Policy(Err(e)) => {
                    tracing::warn!(error = %e, "source policies: the watch failed; trying again");
                    continue;
                }
                Item::Ingester(Err(e)) => {
                    // Most clusters have no Go zen-watcher CRD: not served is not a problem.
                    tracing::debug!(error = %e, "Ingesters: the watch failed; trying again");
                    ingesters_ready = true;
                    if policies_ready && let Some(tx) = synced.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
            };
            match event {
                WatchEvent::Init => {
                    listed.insert(prefix, Vec::new());
                    verdicts.insert(prefix, Vec::new());
                }
                WatchEvent::InitApply(v) => {
                    let key = v.key();
                    listed.entry(prefix).or_default().push(key);
                    if let Some((_, verdict)) = self.apply(&v) {
                        verdicts.entry(prefix).or_default().push((v, verdict));
                    }
                }
                WatchEvent::InitDone => {
                    if let Some(keys) = listed.remove(prefix) {
                        self.good
                            .retain(|k, _| !k.starts_with(prefix) || keys.contains(k));
                        self.seen
                            .retain(|k, _| !k.starts_with(prefix) || keys.contains(k));
                    }
                    self.put_in_force(received);
                    for (v, verdict) in verdicts.remove(prefix).unwrap_or_default() {
                        self.report(&v, verdict).await;
                    }
                    if prefix == "policy/" {
                        policies_ready = true;
                    } else {
                        ingesters_ready = true;
                    }
                    if policies_ready
                        && ingesters_ready
                        && let Some(tx) = synced.take()
                    {
                        let _ = tx.send(());
                    }
                }
                WatchEvent::Apply(v) => {
                    if let Some((changed, verdict)) = self.apply(&v) {
                        if changed {
                            self.put_in_force(received);
                        }
                        self.report(&v, verdict).await;
                    }
                }
                WatchEvent::Delete(v) => {
                    let key = v.key();
                    self.seen.remove(&key);
                    if self.good.remove(&key).is_some() {
                        tracing::info!(key, "source policy deleted");
                        self.put_in_force(received);
                    }
                }
            }
        }
    }

    /// Takes a new version: good, it replaces the last (to be put in force by the caller), else
    /// it is rejected and the last good version stays. Says whether what is to be in force
    /// changed, and the verdict to report once it is; nothing for a version already seen.
    fn apply(&mut self, v: &Versioned) -> Option<(bool, Verdict)> {
        let key = v.key();
        let seen = (v.generation(), v.spec_text());
        if self.seen.get(&key) == Some(&seen) {
            return None;
        }
        self.seen.insert(key.clone(), seen);
        let (checked, unsupported) = match v {
            Versioned::Policy(p) => (check(&p.spec), Vec::new()),
            Versioned::Ingester(o) => {
                let watched = |group: &str, resource: &str| {
                    crate::REPORT_KINDS
                        .iter()
                        .any(|k| k.group == group && k.plural == resource)
                };
                match crate::ingester::map(&o.data["spec"], watched) {
                    Ok(m) => (
                        Ok(Checked {
                            source: m.source,
                            filter: m.filter,
                            window: m.window,
                        }),
                        m.unsupported,
                    ),
                    Err(e) => (Err(e), Vec::new()),
                }
            }
        };
        // One of each kind per source (a policy lies over an Ingester of its source).
        let kind = v.prefix();
        let checked = checked.and_then(|c| {
            let other = self
                .good
                .iter()
                .find(|(k, g)| **k != key && k.starts_with(kind) && g.source == c.source);
            match other {
                Some((other, _)) => Err(format!(
                    "source {:?} already has one in force: {other}; one per source",
                    c.source
                )),
                None => Ok(c),
            }
        });
        match checked {
            Ok(c) => {
                let changed = self.good.get(&key) != Some(&c);
                self.good.insert(key.clone(), c);
                let message = if unsupported.is_empty() {
                    "in force".to_owned()
                } else {
                    format!("in force; not supported: {}", unsupported.join("; "))
                };
                Some((
                    changed,
                    Verdict {
                        accepted: true,
                        reason: "Valid",
                        message,
                    },
                ))
            }
            Err(why) => {
                self.rejected.increment(1);
                let kept = if self.good.contains_key(&key) {
                    "; its last good version stays in force"
                } else {
                    ""
                };
                tracing::warn!(key, error = %why, "source policy rejected{kept}");
                let reason = if why.contains("one per source") {
                    "Conflict"
                } else {
                    "Invalid"
                };
                Some((
                    false,
                    Verdict {
                        accepted: false,
                        reason,
                        message: format!("{why}{kept}"),
                    },
                ))
            }
        }
    }

    fn put_in_force(&self, received: Instant) {
        let (filter, dedup) = merged(&self.base, &self.good);
        match self.pipeline.reconfigure(filter, dedup) {
            Ok(changed) => {
                self.reload.record(received.elapsed().as_secs_f64());
                if !changed.is_empty() {
                    let scopes: Vec<&str> = changed
                        .iter()
                        .map(|s| s.as_deref().unwrap_or("*"))
                        .collect();
                    tracing::info!(sources = ?scopes, policies = self.good.len(), "source policies in force");
                }
            }
            // Each policy compiled on its own; together they cannot fail, but if they do,
            // nothing changes.
            Err(e) => tracing::error!(error = %e, "source policies could not be put in force"),
        }
    }

    fn leads(&self) -> bool {
        self.leading.as_ref().is_none_or(|l| *l.borrow())
    }

    /// Writes the `Accepted` condition (and, for a rejected policy, a Warning event), on the
    /// leader.
    async fn report(&self, v: &Versioned, verdict: Verdict) {
        let Verdict {
            accepted,
            reason,
            message,
        } = verdict;
        if !self.leads() {
            return;
        }
        let p = match v {
            Versioned::Policy(p) => p,
            Versioned::Ingester(o) => {
                return self.report_ingester(o, accepted, reason, message).await;
            }
        };
        let name = p.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now().to_string();
        let status = PolicyStatus {
            conditions: vec![PolicyCondition {
                type_: "Accepted".to_owned(),
                status: if accepted { "True" } else { "False" }.to_owned(),
                reason: reason.to_owned(),
                message: message.clone(),
                observed_generation: p.metadata.generation,
                last_transition_time: now,
            }],
            observed_generation: p.metadata.generation,
        };
        if p.status.as_ref() != Some(&status) {
            let mut updated = p.clone();
            updated.status = Some(status);
            if let Err(e) = self
                .api
                .replace_status(&name, &PostParams::default(), &updated)
                .await
            {
                tracing::warn!(policy = %name, error = %e, "a source policy's status could not be written");
            }
        }
        if accepted {
            return;
        }
        let event = K8sEvent {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}.")),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(Timestamp::now())),
            type_: Some("Warning".to_owned()),
            reason: Some(reason.to_owned()),
            action: Some("Validate".to_owned()),
            note: Some(message.chars().take(1024).collect()),
            regarding: Some(ObjectReference {
                api_version: Some(SourcePolicy::api_version(&()).into_owned()),
                kind: Some("SourcePolicy".to_owned()),
                name: Some(name.clone()),
                namespace: p.metadata.namespace.clone(),
                uid: p.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
            reporting_controller: Some("zen-watcher.io/zen-watcher".to_owned()),
            reporting_instance: Some(self.identity.clone()),
            ..K8sEvent::default()
        };
        if let Err(e) = self.events.create(&PostParams::default(), &event).await {
            tracing::warn!(policy = %name, error = %e, "an event about a source policy could not be written");
        }
    }
}

impl Follower {
    /// The same condition on an Ingester's status (no event: it may live in any namespace).
    async fn report_ingester(
        &self,
        o: &DynamicObject,
        accepted: bool,
        reason: &str,
        message: String,
    ) {
        let (Some(name), Some(ns)) = (o.metadata.name.as_deref(), o.metadata.namespace.as_deref())
        else {
            return;
        };
        let condition = serde_json::json!({
            "type": "ZenWatcherAccepted",
            "status": if accepted { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "observedGeneration": o.metadata.generation,
            "lastTransitionTime": Timestamp::now().to_string(),
        });
        let current = &o.data["status"]["conditions"];
        let same = current
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "ZenWatcherAccepted"))
            .is_some_and(|c| {
                c["status"] == condition["status"]
                    && c["message"] == condition["message"]
                    && c["observedGeneration"] == condition["observedGeneration"]
            });
        if same {
            return;
        }
        let mut updated = o.clone();
        let mut conditions: Vec<serde_json::Value> = current
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|c| c["type"] != "ZenWatcherAccepted")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        conditions.push(condition);
        updated.data["status"]["conditions"] = serde_json::Value::Array(conditions);
        let api = Api::<DynamicObject>::namespaced_with(
            self.ingesters.clone().into_client(),
            ns,
            &ingester_resource(),
        );
        if let Err(e) = api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            tracing::warn!(ingester = %name, namespace = %ns, error = %e, "an Ingester's status could not be written");
        }
    }
}

/// Where the Go zen-watcher's Ingesters live.
fn ingester_resource() -> kube::core::ApiResource {
    kube::core::ApiResource {
        group: "zen.kube-zen.io".to_owned(),
        version: "v1alpha1".to_owned(),
        api_version: "zen.kube-zen.io/v1alpha1".to_owned(),
        kind: "Ingester".to_owned(),
        plural: "ingesters".to_owned(),
    }
}

/// A watch event of either kind, as a [`Versioned`] one.
fn versioned<K>(e: WatchEvent<K>, to: fn(K) -> Versioned) -> WatchEvent<Versioned> {
    match e {
        WatchEvent::Init => WatchEvent::Init,
        WatchEvent::InitApply(k) => WatchEvent::InitApply(to(k)),
        WatchEvent::InitDone => WatchEvent::InitDone,
        WatchEvent::Apply(k) => WatchEvent::Apply(to(k)),
        WatchEvent::Delete(k) => WatchEvent::Delete(to(k)),
    }
}

/// An item of either watch (one at a time, never stored: their sizes do not matter).
#[allow(clippy::large_enum_variant)]
enum Item {
    Policy(Result<WatchEvent<SourcePolicy>, watcher::Error>),
    Ingester(Result<WatchEvent<DynamicObject>, watcher::Error>),
}

/// A version of a policy or an Ingester (one at a time).
#[allow(clippy::large_enum_variant)]
enum Versioned {
    Policy(SourcePolicy),
    Ingester(DynamicObject),
}

impl Versioned {
    fn prefix(&self) -> &'static str {
        match self {
            Versioned::Policy(_) => "policy/",
            Versioned::Ingester(_) => "ingester/",
        }
    }

    fn key(&self) -> String {
        match self {
            Versioned::Policy(p) => format!("policy/{}", p.metadata.name.as_deref().unwrap_or("")),
            Versioned::Ingester(o) => format!(
                "ingester/{}/{}",
                o.metadata.namespace.as_deref().unwrap_or(""),
                o.metadata.name.as_deref().unwrap_or("")
            ),
        }
    }

    fn generation(&self) -> Option<i64> {
        match self {
            Versioned::Policy(p) => p.metadata.generation,
            Versioned::Ingester(o) => o.metadata.generation,
        }
    }

    fn spec_text(&self) -> String {
        match self {
            Versioned::Policy(p) => serde_json::to_string(&p.spec).unwrap_or_default(),
            Versioned::Ingester(o) => o.data["spec"].to_string(),
        }
    }
}

/// The CustomResourceDefinition of `SourcePolicy`, as YAML.
pub fn policy_crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    use kube::core::crd::CustomResourceExt as _;
    let header =
        "# Generated by `cargo xtask gen` from crates/zen-kube/src/policy.rs: do not edit.\n";
    Ok(format!(
        "{header}{}",
        serde_yaml_ng::to_string(&SourcePolicy::crd())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_with_their_unit_and_refuse_the_rest() {
        assert_eq!(parse_window("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_window("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_window("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_window("5 minutes")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(parse_window("5d").unwrap_err().contains("found \"d\""));
        assert!(parse_window("25h").unwrap_err().contains("at most 24h"));
    }

    #[test]
    fn policies_lie_over_the_file_and_star_sets_the_defaults() {
        let base = (FilterConfig::default(), DedupConfig::default());
        let policy = |source: &str, min: Option<Severity>, window: Option<u64>| Checked {
            source: source.to_owned(),
            filter: min.map(|m| FilterRules {
                min_severity: Some(m),
                ..FilterRules::default()
            }),
            window: window.map(Duration::from_secs),
        };
        let policies = BTreeMap::from([
            ("a".to_owned(), policy("*", Some(Severity::Low), Some(30))),
            ("b".to_owned(), policy("falco", Some(Severity::High), None)),
            ("c".to_owned(), policy("trivy", None, Some(3600))),
        ]);
        let (filter, dedup) = merged(&base, &policies);
        assert_eq!(filter.global.min_severity, Some(Severity::Low));
        assert_eq!(filter.sources["falco"].min_severity, Some(Severity::High));
        assert!(!filter.sources.contains_key("trivy"));
        assert_eq!(dedup.window, Duration::from_secs(30));
        assert_eq!(dedup.window_for("trivy"), Duration::from_secs(3600));
    }
}
