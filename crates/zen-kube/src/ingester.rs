//! Migration from the Go zen-watcher: its `Ingester` resources (`zen.kube-zen.io/v1alpha1`)
//! read for the parts that map onto zen-watcher's configuration — the source, its filters and
//! its de-duplication window — and the rest named, so the status can say what is not
//! supported. The mapping is `docs/kubernetes.md`'s table.

use std::time::Duration;

use serde_json::Value;
use zen_filter::FilterRules;
use zen_model::{Category, Severity};

/// What an Ingester maps to, and what of it does not map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapped {
    pub(crate) source: String,
    pub(crate) filter: Option<FilterRules>,
    pub(crate) window: Option<Duration>,
    /// The fields zen-watcher does not take, each with why.
    pub(crate) unsupported: Vec<String>,
}

/// The Go zen-watcher's severities, upper case; UNKNOWN is zen-watcher's info.
fn severity(text: &str) -> Option<Severity> {
    match text {
        "UNKNOWN" => Some(Severity::Info),
        other => other.to_ascii_lowercase().parse().ok(),
    }
}

/// The Go zen-watcher's priorities (its severity map: CRITICAL 0.9, HIGH 0.7, MEDIUM 0.5,
/// LOW 0.3) as the least severity they let through.
fn severity_of_priority(p: f64) -> Severity {
    match p {
        p if p > 0.7 => Severity::Critical,
        p if p > 0.5 => Severity::High,
        p if p > 0.3 => Severity::Medium,
        p if p > 0.0 => Severity::Low,
        _ => Severity::Info,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A Go duration string of whole units (`24h`, `90s`, `1500ms`).
fn go_duration(text: &str) -> Option<Duration> {
    let digits = text.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
    let n: u64 = digits.parse().ok()?;
    Some(match &text[digits.len()..] {
        "ns" => Duration::from_nanos(n),
        "us" | "µs" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return None,
    })
}

/// Reads an Ingester's spec; `Err` when it names no source.
pub(crate) fn map(
    spec: &Value,
    report_kind_watched: impl Fn(&str, &str) -> bool,
) -> Result<Mapped, String> {
    let source = spec["source"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("spec.source: expected the tool's name, found none")?
        .to_owned();
    let mut unsupported = Vec::new();
    let mut note = |field: &str, why: &str| unsupported.push(format!("{field} ({why})"));
    match spec["ingester"].as_str().unwrap_or("") {
        "webhook" => {
            if !spec["webhook"]["port"].is_null() || !spec["webhook"]["path"].is_null() {
                note(
                    "webhook.port/path",
                    "served at /api/v1/ingest/{source} on the daemon's port",
                );
            }
        }
        "informer" => {
            let gvr = &spec["informer"]["gvr"];
            let (group, resource) = (
                gvr["group"].as_str().unwrap_or(""),
                gvr["resource"].as_str().unwrap_or(""),
            );
            if !report_kind_watched(group, resource) {
                note(
                    "informer.gvr",
                    "zen-watcher watches Trivy and policy reports only",
                );
            }
            for field in ["namespace", "labelSelector", "fieldSelector"] {
                if !spec["informer"][field].is_null() {
                    note(
                        &format!("informer.{field}"),
                        "every report of a kind is watched",
                    );
                }
            }
        }
        other => note(&format!("ingester: {other}"), "not a zen-watcher source"),
    }
    // The canonical `processing.*` first, then the older `filters` / `deduplication`.
    let filters = [&spec["processing"]["filter"], &spec["filters"]]
        .into_iter()
        .find(|f| f.is_object());
    let filter = filters.map(|f| {
        let mut rules = FilterRules {
            enabled: f["enabled"].as_bool().unwrap_or(true),
            include_namespaces: strings(&f["includeNamespaces"]),
            exclude_namespaces: strings(&f["excludeNamespaces"]),
            kinds: strings(&f["includeKinds"]),
            event_types: strings(&f["includeEventTypes"]),
            exclude_rules: strings(&f["excludeRules"]),
            severities: strings(&f["includeSeverity"])
                .iter()
                .filter_map(|s| severity(s))
                .collect(),
            ..FilterRules::default()
        };
        let by_severity = f["minSeverity"].as_str().and_then(severity);
        let by_priority = f["minPriority"].as_f64().map(severity_of_priority);
        rules.min_severity = by_severity.max(by_priority);
        let include: Vec<Category> = strings(&f["includeCategories"])
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        let exclude: Vec<Category> = strings(&f["excludeCategories"])
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        let base = if include.is_empty() {
            Category::ALL.to_vec()
        } else {
            include
        };
        if base.len() < Category::ALL.len() || !exclude.is_empty() {
            rules.categories = base.into_iter().filter(|c| !exclude.contains(c)).collect();
        }
        for field in ["excludeKinds", "ignoreKinds", "excludeEventTypes"] {
            if !strings(&f[field]).is_empty() {
                note(&format!("filters.{field}"), "use a SourcePolicy expression");
            }
        }
        rules
    });
    let dedup = [&spec["processing"]["dedup"], &spec["deduplication"]]
        .into_iter()
        .find(|d| d.is_object());
    let mut window = None;
    if let Some(d) = dedup {
        if d["enabled"].as_bool() == Some(false) {
            note(
                "deduplication.enabled: false",
                "zen-watcher always de-duplicates",
            );
        }
        if d["strategy"].as_str().is_some_and(|s| s != "fingerprint") {
            note(
                "deduplication.strategy",
                "zen-watcher de-duplicates by fingerprint",
            );
        }
        window = d["window"]
            .as_str()
            .and_then(go_duration)
            .or_else(|| d["windowSeconds"].as_u64().map(Duration::from_secs));
        if window.is_some_and(|w| w > Duration::from_secs(86_400)) {
            note("deduplication.window", "at most 24h; 24h taken");
            window = Some(Duration::from_secs(86_400));
        }
    }
    for field in ["destinations", "optimization", "rateLimit", "ttl", "logs"] {
        let v = &spec[field];
        let given = match v {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            _ => true,
        };
        if given && field != "destinations" {
            note(field, "configured on the daemon instead");
        }
    }
    if spec["destinations"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| !d["mapping"].is_null()))
    {
        note(
            "destinations[].mapping",
            "zen-watcher's readers map each format",
        );
    }
    Ok(Mapped {
        source,
        filter,
        window,
        unsupported,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn watched(group: &str, resource: &str) -> bool {
        group == "aquasecurity.github.io" && resource == "vulnerabilityreports"
    }

    #[test]
    fn a_trivy_informer_maps_its_filters_and_window_and_names_the_rest() {
        let spec = json!({
            "source": "trivy", "ingester": "informer",
            "informer": {"gvr": {"group": "aquasecurity.github.io", "version": "v1alpha1", "resource": "vulnerabilityreports"}, "resyncPeriod": "30m"},
            "filters": {"enabled": true, "minPriority": 0.5, "minSeverity": "LOW", "excludeNamespaces": ["kube-system"], "excludeCategories": ["cost"], "excludeKinds": ["Pod"]},
            "deduplication": {"enabled": true, "window": "1h", "strategy": "fingerprint"},
            "optimization": {"order": "filter_first"},
            "destinations": [{"type": "crd", "value": "observations", "mapping": {"domain": "security"}}]
        });
        let m = map(&spec, watched).unwrap();
        assert_eq!(m.source, "trivy");
        let f = m.filter.unwrap();
        assert_eq!(
            f.min_severity,
            Some(Severity::Medium),
            "the stricter of 0.5 and LOW"
        );
        assert_eq!(f.exclude_namespaces, ["kube-system"]);
        assert_eq!(f.categories.len(), Category::ALL.len() - 1);
        assert!(!f.categories.contains(&Category::Cost));
        assert_eq!(m.window, Some(Duration::from_secs(3600)));
        let text = m.unsupported.join("; ");
        for field in [
            "filters.excludeKinds",
            "optimization",
            "destinations[].mapping",
        ] {
            assert!(text.contains(field), "{field}: {text}");
        }
        assert!(!text.contains("informer.gvr"), "{text}");
    }

    #[test]
    fn the_canonical_processing_block_wins_and_unknown_sources_are_named() {
        let spec = json!({
            "source": "cert-manager", "ingester": "informer",
            "informer": {"gvr": {"group": "cert-manager.io", "version": "v1", "resource": "certificates"}},
            "processing": {"filter": {"minSeverity": "HIGH"}, "dedup": {"windowSeconds": 90, "strategy": "key"}},
            "filters": {"minSeverity": "LOW"}
        });
        let m = map(&spec, watched).unwrap();
        assert_eq!(m.filter.unwrap().min_severity, Some(Severity::High));
        assert_eq!(m.window, Some(Duration::from_secs(90)));
        let text = m.unsupported.join("; ");
        assert!(
            text.contains("informer.gvr") && text.contains("deduplication.strategy"),
            "{text}"
        );
        assert!(
            map(&json!({"ingester": "webhook"}), watched)
                .unwrap_err()
                .contains("spec.source")
        );
    }
}
