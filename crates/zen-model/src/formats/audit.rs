//! Kubernetes audit events (`audit.k8s.io/v1`): the `EventList` the API server's audit webhook
//! posts (with or without `kind`/`apiVersion`, on the list and on its items), a single `Event` or
//! NDJSON of events as the log backend writes them, or an array of events.
//!
//! Only `auditID`, `stage` and `verb` are required of an item. An item becomes an event when its
//! stage is one of the configured stages (default: `ResponseStarted`, `ResponseComplete`,
//! `Panic`) and it matches a rule; the first matching rule in order gives the event's rule id,
//! title, severity and category, and every matching rule is listed in `details.matchedRules`.
//! Items that match nothing are counted as ignored.
//!
//! Default rules, in order:
//!
//! | id | matches | severity |
//! |----|---------|----------|
//! | `privileged-pod` | allowed `create` of a pod with a privileged container | critical |
//! | `hostpath-pod` | allowed `create` of a pod with a hostPath volume | high |
//! | `pod-exec` | allowed `pods/exec`, `pods/attach`, `pods/portforward` (any verb: WebSocket exec is a `get`) | high |
//! | `rbac-binding-change` | allowed create/update/patch/delete of (cluster)rolebindings | high |
//! | `secret-read` | allowed get/list/watch of secrets by a user not named `system:…` | medium |
//! | `secret-change` | allowed create/update/patch/delete of secrets by a user not named `system:…` (Falco: K8s Secret Created/Deleted) | low |
//! | `configmap-change` | allowed create/update/patch of configmaps by a user not named `system:…` (Falco's Configmap With Private Credentials looks into the data; this rule does not) | low |
//! | `namespace-delete` | allowed delete of a namespace (Falco: K8s Namespace Deleted) | high |
//! | `rbac-role-change` | allowed create/update/patch/delete of (cluster)roles by a user not named `system:…` (Falco: K8s Role/Clusterrole Created/Deleted) | medium |
//! | `serviceaccount-change` | allowed create/delete of serviceaccounts by a user not named `system:…` (Falco: K8s Serviceaccount Created/Deleted) | low |
//! | `anonymous-request` | a request by `system:anonymous` or `system:unauthenticated`, except health and discovery paths | medium |
//! | `unauthenticated-request` | a 401 answer | medium |
//! | `forbidden-request` | a 403 answer | medium |
//!
//! Mapping: `namespace` and `resource` from `objectRef` (the Kind derived from the plural for
//! built-in resources); `detected_at` from `stageTimestamp`, else `requestReceivedTimestamp`,
//! else the time of receipt; labels `audit.user` and `audit.verb`; the rest in `details`.
//!
//! Fingerprint: rule id, `user.username`, `verb`, and `objectRef` `apiGroup`, `resource`,
//! `subresource`, `namespace`, `name`. Not `auditID` or `stage`, so the stages of one request and
//! repeats of the same action fold into one Observation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ConfigError;
use crate::formats::{kind_of_resource, non_empty};
use crate::reader::{Doc, Lists, Reader};
use crate::{Category, Event, Fingerprint, ResourceRef, Severity, time};

/// Which audit events become findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Stages considered; others are ignored.
    pub stages: Vec<String>,
    /// Rules in priority order: the first match names the event.
    pub rules: Vec<AuditRule>,
}

/// One audit rule. Every list that is given must match (an empty list matches anything);
/// `users` and `groups` together match when either does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    #[serde(default = "security")]
    pub category: Category,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    /// API groups; `""` is the core group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Subresources; `""` means the resource itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subresources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Users whose name starts with one of these never match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_user_prefixes: Vec<String>,
    /// Request URIs starting with one of these never match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_paths: Vec<String>,
    /// Inclusive range of response codes; the rule never matches an event without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_codes: Option<CodeRange>,
    /// A property the pod in `requestObject` must have (needs level `Request` or higher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<PodSpecCheck>,
}

fn security() -> Category {
    Category::Security
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRange {
    pub min: u16,
    pub max: u16,
}

const ALLOWED: Option<CodeRange> = Some(CodeRange { min: 100, max: 399 });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodSpecCheck {
    /// A container, init container or ephemeral container with `securityContext.privileged`.
    Privileged,
    /// A `hostPath` volume.
    HostPath,
    /// `hostNetwork`, `hostPID` or `hostIPC`.
    HostNamespaces,
}

const STAGES: [&str; 4] = [
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

impl Default for AuditConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rule = |id: &str, title: &str, severity| AuditRule {
            id: id.to_owned(),
            title: title.to_owned(),
            severity,
            category: Category::Security,
            verbs: vec![],
            api_groups: vec![],
            resources: vec![],
            subresources: vec![],
            users: vec![],
            groups: vec![],
            exclude_user_prefixes: vec![],
            exclude_paths: vec![],
            response_codes: None,
            pod_spec: None,
        };
        let pod_create = |id, title, severity, check| AuditRule {
            verbs: s(&["create"]),
            api_groups: s(&[""]),
            resources: s(&["pods"]),
            subresources: s(&[""]),
            response_codes: ALLOWED,
            pod_spec: Some(check),
            ..rule(id, title, severity)
        };
        AuditConfig {
            stages: s(&STAGES[1..]),
            rules: vec![
                pod_create(
                    "privileged-pod",
                    "Privileged pod created",
                    Severity::Critical,
                    PodSpecCheck::Privileged,
                ),
                pod_create(
                    "hostpath-pod",
                    "Pod with a hostPath volume created",
                    Severity::High,
                    PodSpecCheck::HostPath,
                ),
                AuditRule {
                    api_groups: s(&[""]),
                    resources: s(&["pods"]),
                    subresources: s(&["exec", "attach", "portforward"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "pod-exec",
                        "Exec, attach or port-forward into a pod",
                        Severity::High,
                    )
                },
                AuditRule {
                    verbs: s(&["create", "update", "patch", "delete"]),
                    api_groups: s(&["rbac.authorization.k8s.io"]),
                    resources: s(&["rolebindings", "clusterrolebindings"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "rbac-binding-change",
                        "RBAC binding created or changed",
                        Severity::High,
                    )
                },
                AuditRule {
                    verbs: s(&["get", "list", "watch"]),
                    api_groups: s(&[""]),
                    resources: s(&["secrets"]),
                    exclude_user_prefixes: s(&["system:"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "secret-read",
                        "Secret read by a non-system user",
                        Severity::Medium,
                    )
                },
                AuditRule {
                    verbs: s(&["create", "update", "patch", "delete"]),
                    api_groups: s(&[""]),
                    resources: s(&["secrets"]),
                    exclude_user_prefixes: s(&["system:"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "secret-change",
                        "Secret created, changed or deleted by a non-system user",
                        Severity::Low,
                    )
                },
                AuditRule {
                    verbs: s(&["create", "update", "patch"]),
                    api_groups: s(&[""]),
                    resources: s(&["configmaps"]),
                    exclude_user_prefixes: s(&["system:"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "configmap-change",
                        "ConfigMap created or changed by a non-system user",
                        Severity::Low,
                    )
                },
                AuditRule {
                    verbs: s(&["delete"]),
                    api_groups: s(&[""]),
                    resources: s(&["namespaces"]),
                    response_codes: ALLOWED,
                    ..rule("namespace-delete", "Namespace deleted", Severity::High)
                },
                AuditRule {
                    verbs: s(&["create", "update", "patch", "delete"]),
                    api_groups: s(&["rbac.authorization.k8s.io"]),
                    resources: s(&["roles", "clusterroles"]),
                    exclude_user_prefixes: s(&["system:"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "rbac-role-change",
                        "RBAC role created or changed by a non-system user",
                        Severity::Medium,
                    )
                },
                AuditRule {
                    verbs: s(&["create", "delete"]),
                    api_groups: s(&[""]),
                    resources: s(&["serviceaccounts"]),
                    exclude_user_prefixes: s(&["system:"]),
                    response_codes: ALLOWED,
                    ..rule(
                        "serviceaccount-change",
                        "ServiceAccount created or deleted by a non-system user",
                        Severity::Low,
                    )
                },
                AuditRule {
                    users: s(&["system:anonymous"]),
                    groups: s(&["system:unauthenticated"]),
                    exclude_paths: s(&[
                        "/healthz",
                        "/livez",
                        "/readyz",
                        "/version",
                        "/.well-known/openid-configuration",
                        "/openid/v1/jwks",
                    ]),
                    ..rule("anonymous-request", "Anonymous request", Severity::Medium)
                },
                AuditRule {
                    response_codes: Some(CodeRange { min: 401, max: 401 }),
                    ..rule(
                        "unauthenticated-request",
                        "Request failed authentication",
                        Severity::Medium,
                    )
                },
                AuditRule {
                    response_codes: Some(CodeRange { min: 403, max: 403 }),
                    ..rule(
                        "forbidden-request",
                        "Request forbidden by authorization",
                        Severity::Medium,
                    )
                },
            ],
        }
    }
}

impl AuditConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: String, problem: String| Err(ConfigError { field, problem });
        for (i, stage) in self.stages.iter().enumerate() {
            if !STAGES.contains(&stage.as_str()) {
                return err(
                    format!("audit.stages[{i}]"),
                    format!("expected one of {}, found {stage:?}", STAGES.join(", ")),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.id.is_empty() {
                return err(
                    format!("audit.rules[{i}].id"),
                    "expected a rule id, found an empty one".into(),
                );
            }
            if !seen.insert(rule.id.as_str()) {
                return err(
                    format!("audit.rules[{i}].id"),
                    format!("rule id {:?} is used twice", rule.id),
                );
            }
            if let Some(CodeRange { min, max }) = rule.response_codes
                && min > max
            {
                return err(
                    format!("audit.rules[{i}].response_codes"),
                    format!("expected min <= max, found min {min} and max {max}"),
                );
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent<'a> {
    #[serde(default, borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(rename = "auditID", borrow)]
    audit_id: Cow<'a, str>,
    #[serde(borrow)]
    stage: Cow<'a, str>,
    #[serde(borrow)]
    verb: Cow<'a, str>,
    #[serde(rename = "requestURI", default, borrow)]
    request_uri: Option<Cow<'a, str>>,
    #[serde(default)]
    user: Option<UserInfo>,
    #[serde(default)]
    impersonated_user: Option<UserInfo>,
    #[serde(rename = "sourceIPs", default)]
    source_ips: Option<Vec<String>>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<Status>,
    #[serde(default, borrow)]
    request_object: Option<&'a RawValue>,
    #[serde(default)]
    response_object: Option<NamedObject>,
    #[serde(default, borrow)]
    request_received_timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stage_timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Default, Serialize, Deserialize)]
struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    /// Empty for cluster-scoped objects, as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::formats::non_empty_string"
    )]
    namespace: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::formats::non_empty_string"
    )]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subresource: Option<String>,
}

/// The name in an object's `metadata`: what a create with `generateName` was given.
#[derive(Deserialize)]
struct NamedObject {
    #[serde(default)]
    metadata: Option<crate::formats::ObjectMeta>,
}

#[derive(Serialize, Deserialize)]
struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

pub(crate) fn read(r: &mut Reader<'_>, doc: Doc<'_>) {
    // An EventList is read through `items` whether or not it says its kind; anything else that
    // is an object is one Event, and an array holds Events.
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(default, borrow)]
        items: Option<&'a RawValue>,
    }
    if doc.lead() == b'{' {
        let Some(peek) = r.parse::<Peek<'_>>(&doc) else {
            return;
        };
        let Some(items) = peek.items else {
            return read_event(r, doc);
        };
        let items = doc.child(items, format_args!(".items"));
        if items.lead() != b'[' {
            let found = crate::reader::describe(items.text);
            return r.error(
                &items.path,
                format!("expected an array of audit events, found {found}"),
            );
        }
        return r.each_item(items, Lists::No, read_event);
    }
    r.each_item(doc, Lists::No, read_event);
}

fn read_event(r: &mut Reader<'_>, doc: Doc<'_>) {
    let Some(ev) = r.parse::<AuditEvent<'_>>(&doc) else {
        return;
    };
    let config = &r.normalizer.config().audit;
    if !config.stages.iter().any(|s| *s == ev.stage) {
        r.out.ignored += 1;
        return;
    }
    let mut matched = config.rules.iter().filter(|rule| matches(rule, &ev));
    let Some(rule) = matched.next() else {
        r.out.ignored += 1;
        return;
    };
    let matched_rules: Vec<&str> = std::iter::once(rule)
        .chain(matched)
        .map(|r| r.id.as_str())
        .collect();

    let detected_at = match non_empty(ev.stage_timestamp.as_deref())
        .or(non_empty(ev.request_received_timestamp.as_deref()))
    {
        Some(t) => match time::rfc3339(t) {
            Ok(t) => t,
            Err(problem) => {
                let field = if ev.stage_timestamp.is_some() {
                    "stageTimestamp"
                } else {
                    "requestReceivedTimestamp"
                };
                return r.error(&format!("{}.{field}", doc.path), problem);
            }
        },
        None => r.ctx.received_at,
    };

    let user = ev.user.unwrap_or_default();
    let mut obj = ev.object_ref.unwrap_or_default();
    // A create by `generateName` names its object only in the response.
    if obj.name.is_none() {
        obj.name = ev
            .response_object
            .and_then(|o| o.metadata?.name)
            .filter(|n| !n.is_empty());
    }
    let username = non_empty(user.username.as_deref());
    let fingerprint = Fingerprint::builder("audit")
        .field(&rule.id)
        .opt(username)
        .field(&ev.verb)
        .opt(obj.api_group.as_deref())
        .opt(obj.resource.as_deref())
        .opt(obj.subresource.as_deref())
        .opt(obj.namespace.as_deref())
        .opt(obj.name.as_deref())
        .finish();

    let resource = obj.resource.as_deref().map(|res| ResourceRef {
        api_version: obj.api_version.as_deref().map(|v| {
            match non_empty(obj.api_group.as_deref()) {
                Some(group) => format!("{group}/{v}"),
                None => v.to_owned(),
            }
        }),
        kind: kind_of_resource(res).to_owned(),
        name: obj.name.clone().unwrap_or_default(),
        namespace: obj.namespace.clone(),
    });
    let code = ev.response_status.as_ref().and_then(|s| s.code);
    let message = describe_request(username, &ev.verb, &obj, ev.request_uri.as_deref(), code);

    let mut labels = BTreeMap::new();
    if let Some(u) = username {
        labels.insert("audit.user".to_owned(), u.to_owned());
    }
    labels.insert("audit.verb".to_owned(), ev.verb.to_string());

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AuditDetails<'e> {
        #[serde(rename = "auditID")]
        audit_id: &'e str,
        stage: &'e str,
        #[serde(skip_serializing_if = "Option::is_none")]
        level: Option<&'e str>,
        #[serde(rename = "requestURI", skip_serializing_if = "Option::is_none")]
        request_uri: Option<&'e str>,
        user: &'e UserInfo,
        #[serde(skip_serializing_if = "Option::is_none")]
        impersonated_user: Option<&'e UserInfo>,
        #[serde(rename = "sourceIPs", skip_serializing_if = "Option::is_none")]
        source_ips: Option<&'e [String]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_agent: Option<&'e str>,
        object_ref: &'e ObjectRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        response_status: Option<&'e Status>,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<&'e BTreeMap<String, String>>,
        matched_rules: &'e [&'e str],
    }
    let Some(details) = r.details(
        &doc.path,
        &AuditDetails {
            audit_id: &ev.audit_id,
            stage: &ev.stage,
            level: ev.level.as_deref(),
            request_uri: ev.request_uri.as_deref(),
            user: &user,
            impersonated_user: ev.impersonated_user.as_ref(),
            source_ips: ev.source_ips.as_deref(),
            user_agent: ev.user_agent.as_deref(),
            object_ref: &obj,
            response_status: ev.response_status.as_ref(),
            annotations: ev.annotations.as_ref(),
            matched_rules: &matched_rules,
        },
    ) else {
        return;
    };

    r.out.events.push(Event {
        source: Cow::Borrowed("audit"),
        category: rule.category,
        severity: rule.severity,
        event_type: Cow::Borrowed("audit-event"),
        rule_id: Some(rule.id.clone()),
        title: rule.title.clone(),
        message,
        namespace: obj.namespace.clone(),
        resource,
        node: None,
        detected_at,
        fingerprint,
        labels,
        details,
    });
}

fn describe_request(
    user: Option<&str>,
    verb: &str,
    obj: &ObjectRef,
    uri: Option<&str>,
    code: Option<i64>,
) -> String {
    let who = user.unwrap_or("(unknown user)");
    let what = match (&obj.resource, &obj.subresource) {
        (Some(res), Some(sub)) if !sub.is_empty() => format!("{res}/{sub}"),
        (Some(res), _) => res.clone(),
        (None, _) => uri.unwrap_or("(no URI)").to_owned(),
    };
    let target = match (&obj.namespace, &obj.name) {
        (Some(ns), Some(name)) => format!(" {ns}/{name}"),
        (None, Some(name)) => format!(" {name}"),
        (Some(ns), None) => format!(" in {ns}"),
        (None, None) => String::new(),
    };
    match code {
        Some(code) => format!("{who} {verb} {what}{target} ({code})"),
        None => format!("{who} {verb} {what}{target}"),
    }
}

fn matches(rule: &AuditRule, ev: &AuditEvent<'_>) -> bool {
    let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    let obj = ev.object_ref.as_ref();
    let field =
        |f: fn(&ObjectRef) -> &Option<String>| obj.and_then(|o| f(o).as_deref()).unwrap_or("");
    let user = ev.user.as_ref();
    let username = user.and_then(|u| u.username.as_deref()).unwrap_or("");
    let groups = user.and_then(|u| u.groups.as_deref()).unwrap_or(&[]);
    let code = ev.response_status.as_ref().and_then(|s| s.code);

    if !any(&rule.verbs, &ev.verb) {
        return false;
    }
    if !rule.resources.is_empty()
        && (obj.is_none() || !any(&rule.resources, field(|o| &o.resource)))
    {
        return false;
    }
    if !any(&rule.api_groups, field(|o| &o.api_group))
        || !any(&rule.subresources, field(|o| &o.subresource))
    {
        return false;
    }
    let principal = rule.users.is_empty() && rule.groups.is_empty()
        || rule.users.iter().any(|u| u == username)
        || rule.groups.iter().any(|g| groups.contains(g));
    if !principal
        || rule
            .exclude_user_prefixes
            .iter()
            .any(|p| username.starts_with(p.as_str()))
    {
        return false;
    }
    let uri = ev.request_uri.as_deref().unwrap_or("");
    if rule
        .exclude_paths
        .iter()
        .any(|p| uri.starts_with(p.as_str()))
    {
        return false;
    }
    if let Some(range) = rule.response_codes {
        match code {
            Some(c) if (i64::from(range.min)..=i64::from(range.max)).contains(&c) => {}
            _ => return false,
        }
    }
    match rule.pod_spec {
        None => true,
        Some(check) => ev.request_object.is_some_and(|raw| pod_has(raw, check)),
    }
}

/// Whether the pod in a request object has a property. A request object that is not a pod
/// (a patch, say) has none.
fn pod_has(raw: &RawValue, check: PodSpecCheck) -> bool {
    #[derive(Deserialize)]
    struct Pod {
        #[serde(default)]
        spec: Option<PodSpec>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PodSpec {
        #[serde(default)]
        containers: Vec<Container>,
        #[serde(default)]
        init_containers: Vec<Container>,
        #[serde(default)]
        ephemeral_containers: Vec<Container>,
        #[serde(default)]
        volumes: Vec<Volume>,
        #[serde(default, rename = "hostNetwork")]
        host_network: Option<bool>,
        #[serde(default, rename = "hostPID")]
        host_pid: Option<bool>,
        #[serde(default, rename = "hostIPC")]
        host_ipc: Option<bool>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Container {
        #[serde(default)]
        security_context: Option<SecurityContext>,
    }
    #[derive(Deserialize)]
    struct SecurityContext {
        #[serde(default)]
        privileged: Option<bool>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Volume {
        #[serde(default)]
        host_path: Option<serde::de::IgnoredAny>,
    }
    let Ok(Pod { spec: Some(spec) }) = serde_json::from_str::<Pod>(raw.get()) else {
        return false;
    };
    match check {
        PodSpecCheck::Privileged => spec
            .containers
            .iter()
            .chain(&spec.init_containers)
            .chain(&spec.ephemeral_containers)
            .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true)),
        PodSpecCheck::HostPath => spec.volumes.iter().any(|v| v.host_path.is_some()),
        PodSpecCheck::HostNamespaces => {
            [spec.host_network, spec.host_pid, spec.host_ipc].contains(&Some(true))
        }
    }
}
