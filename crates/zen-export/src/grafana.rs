//! Grafana dashboards generated from the catalog: `dashboards/*.json` (`cargo xtask gen`).
//!
//! Every query is built by [`sel`], which takes the metric from the catalog (a name missing from
//! it is a programming error the tests catch) and adds the dashboard variables the metric has
//! labels for, so choosing a source never empties a panel whose metric has no `source`.
//! The JSON targets Grafana 11 (`schemaVersion` 39); keys are sorted, so output is stable.

use serde_json::{Value, json};

use crate::catalog::{self, Metric};
use crate::panels;

/// The dashboard schema version written, as Grafana 11.0 writes it.
pub const SCHEMA_VERSION: u32 = 39;

/// One generated dashboard: its file name under `dashboards/` and its JSON.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: &'static str,
    pub uid: &'static str,
    pub title: &'static str,
    pub json: Value,
}

const PERFORMANCE: (&str, &str, &str) = (
    "zen-watcher-performance.json",
    "zen-watcher-performance",
    "Zen Watcher — Performance",
);
const OBSERVATIONS: (&str, &str, &str) = (
    "zen-watcher-observations.json",
    "zen-watcher-observations",
    "Zen Watcher — Observations",
);
const HOST: (&str, &str, &str) = (
    "zen-watcher-host.json",
    "zen-watcher-host",
    "Zen Watcher — Host and containers",
);

/// Every dashboard.
pub fn dashboards() -> Vec<Dashboard> {
    vec![
        dashboard(PERFORMANCE, performance()),
        dashboard(OBSERVATIONS, observations()),
        dashboard(HOST, host()),
    ]
}

/// The selector of `series` (a catalog metric, or a histogram's `_bucket`/`_sum`/`_count`) with
/// the dashboard variables it has labels for, then `matchers`.
///
/// # Panics
/// When `series` is not in the catalog: dashboards name only catalog metrics.
pub fn sel(series: &str, matchers: &str) -> String {
    let metric: &Metric =
        catalog::find(series).unwrap_or_else(|| panic!("{series} is not in the catalog"));
    let mut parts = vec![r#"cluster=~"$cluster""#.to_owned()];
    for (label, var) in [("source", "$source"), ("namespace", "$namespace")] {
        if metric.labels.contains(&label) {
            parts.push(format!(r#"{label}=~"{var}""#));
        }
    }
    if !matchers.is_empty() {
        parts.push(matchers.to_owned());
    }
    format!("{series}{{{}}}", parts.join(","))
}

fn rate(series: &str, matchers: &str) -> String {
    format!("rate({}[$__rate_interval])", sel(series, matchers))
}

const LATENCY: &str = "zen_watcher_event_processing_duration_seconds";

/// Share of events of the `total` stage under `threshold` seconds, over `window`.
fn share_under(threshold: &str, window: &str) -> String {
    format!(
        "sum(increase({}[{window}])) / sum(increase({}[{window}]))",
        sel(
            &format!("{LATENCY}_bucket"),
            &format!(r#"stage="total",le="{threshold}""#)
        ),
        sel(&format!("{LATENCY}_count"), r#"stage="total""#)
    )
}

/// A panel before layout.
struct Panel {
    kind: &'static str,
    title: &'static str,
    description: &'static str,
    width: u32,
    unit: &'static str,
    targets: Vec<(String, String)>,
    /// `(value, colour)` steps after the first, base step (which is `null`, as Grafana requires).
    steps: Vec<(f64, &'static str)>,
    /// The colour below the first step.
    base: &'static str,
    /// Merged into the panel last.
    extra: Value,
    /// Merged into every target.
    target_extra: Value,
}

fn panel(kind: &'static str, title: &'static str, width: u32, unit: &'static str) -> Panel {
    Panel {
        kind,
        title,
        description: "",
        width,
        unit,
        targets: Vec::new(),
        steps: Vec::new(),
        base: "green",
        extra: json!({}),
        target_extra: json!({}),
    }
}

impl Panel {
    fn about(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }
    fn q(mut self, expr: impl Into<String>, legend: impl Into<String>) -> Self {
        self.targets.push((expr.into(), legend.into()));
        self
    }
    fn steps(mut self, steps: &[(f64, &'static str)]) -> Self {
        self.steps = steps.to_vec();
        self
    }
    fn base(mut self, colour: &'static str) -> Self {
        self.base = colour;
        self
    }
    fn target(mut self, extra: Value) -> Self {
        merge(&mut self.target_extra, extra);
        self
    }
    /// The series named `name` on a right axis of its own, in `unit`.
    fn right_axis(self, name: &str, unit: &str) -> Self {
        self.override_right("byName", name, unit)
    }
    /// The series whose names match the regular expression `pattern` on a right axis, in `unit`.
    fn right_axis_matching(self, pattern: &str, unit: &str) -> Self {
        self.override_right("byRegexp", pattern, unit)
    }
    fn override_right(self, matcher: &str, options: &str, unit: &str) -> Self {
        self.extra(json!({ "fieldConfig": { "overrides": [{
            "matcher": { "id": matcher, "options": options },
            "properties": [{ "id": "unit", "value": unit }, { "id": "custom.axisPlacement", "value": "right" }],
        }] } }))
    }
    fn extra(mut self, extra: Value) -> Self {
        merge(&mut self.extra, extra);
        self
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// Lays panels out row by row in the 24-column grid.
struct Layout {
    panels: Vec<Value>,
    y: u32,
    id: u32,
}

impl Layout {
    fn new() -> Self {
        Layout {
            panels: Vec::new(),
            y: 0,
            id: 0,
        }
    }

    fn next_id(&mut self) -> u32 {
        self.id += 1;
        self.id
    }

    fn row(&mut self, title: &str) {
        let id = self.next_id();
        self.panels.push(json!({
            "type": "row", "id": id, "title": title, "collapsed": false, "panels": [],
            "datasource": datasource(),
            "gridPos": { "x": 0, "y": self.y, "w": 24, "h": 1 },
        }));
        self.y += 1;
    }

    /// Panels side by side, `height` tall; wider than 24 columns wraps.
    fn line(&mut self, height: u32, panels: Vec<Panel>) {
        let mut x = 0;
        for p in panels {
            if x + p.width > 24 {
                x = 0;
                self.y += height;
            }
            let id = self.next_id();
            let targets: Vec<Value> = p
                .targets
                .iter()
                .enumerate()
                .map(|(i, (expr, legend))| {
                    let ref_id = char::from(b'A' + i as u8).to_string();
                    let mut t = json!({
                        "refId": ref_id, "expr": expr, "legendFormat": legend,
                        "datasource": datasource(), "range": true, "instant": false,
                    });
                    merge(&mut t, p.target_extra.clone());
                    t
                })
                .collect();
            let mut steps = vec![json!({ "color": p.base, "value": null })];
            steps.extend(
                p.steps
                    .iter()
                    .map(|(v, c)| json!({ "color": c, "value": v })),
            );
            let mut v = json!({
                "type": p.kind, "id": id, "title": p.title, "description": p.description,
                "datasource": datasource(),
                "gridPos": { "x": x, "y": self.y, "w": p.width, "h": height },
                "targets": targets,
                "fieldConfig": { "defaults": {
                    "unit": p.unit,
                    "thresholds": { "mode": "absolute", "steps": steps },
                }, "overrides": [] },
                "options": {},
            });
            merge(&mut v, p.extra);
            self.panels.push(v);
            x += p.width;
        }
        self.y += height;
    }
}

fn variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "name": name, "label": label, "type": "query", "datasource": datasource(),
        "query": { "query": query, "refId": name }, "definition": query,
        "includeAll": true, "allValue": ".*", "multi": true, "refresh": 2, "sort": 1,
        "current": { "text": "All", "value": "$__all" }, "hide": 0, "regex": "", "options": [],
    })
}

fn dashboard(
    (file, uid, title): (&'static str, &'static str, &'static str),
    layout: Layout,
) -> Dashboard {
    let links: Vec<Value> = [PERFORMANCE, OBSERVATIONS, HOST]
        .iter()
        .filter(|(_, other, _)| *other != uid)
        .map(|(_, other, t)| {
            json!({
                "type": "link", "title": t, "url": format!("/d/{other}"), "icon": "dashboard",
                "includeVars": true, "keepTime": true, "targetBlank": false, "asDropdown": false,
                "tags": [], "tooltip": "",
            })
        })
        .collect();
    let json = json!({
        "uid": uid, "title": title, "tags": ["zen-watcher"], "editable": true,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "graphTooltip": 1,
        "time": { "from": "now-1h", "to": "now" }, "refresh": "10s", "timezone": "browser",
        "fiscalYearStartMonth": 0, "liveNow": false, "weekStart": "",
        "description": "Generated by `cargo xtask gen` from the zen-watcher metric catalog; do not edit.",
        "annotations": { "list": [{
            "builtIn": 1, "datasource": { "type": "grafana", "uid": "-- Grafana --" },
            "enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard",
        }] },
        "links": links,
        "templating": { "list": [
            {
                "name": "datasource", "label": "Data source", "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
                "options": [], "includeAll": false, "multi": false,
            },
            variable("cluster", "Cluster", "label_values(zen_watcher_build_info, cluster)"),
            variable("namespace", "Namespace", "label_values(zen_watcher_events_total{cluster=~\"$cluster\"}, namespace)"),
            variable("source", "Source", "label_values(zen_watcher_events_total{cluster=~\"$cluster\"}, source)"),
        ] },
        "panels": layout.panels,
    });
    Dashboard {
        file,
        uid,
        title,
        json,
    }
}

fn stat(title: &'static str, unit: &'static str) -> Panel {
    panel("stat", title, 6, unit).extra(json!({ "options": {
        "colorMode": "background", "graphMode": "area", "justifyMode": "auto",
        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
    } }))
}

fn series(title: &'static str, width: u32, unit: &'static str) -> Panel {
    panel("timeseries", title, width, unit).extra(json!({
        "options": { "legend": { "displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"] },
                     "tooltip": { "mode": "multi", "sort": "desc" } },
        "fieldConfig": { "defaults": { "custom": { "lineWidth": 1, "fillOpacity": 10, "showPoints": "never" } } },
    }))
}

/// The panel `id` of [`panels::PANELS`], as the daemon's page draws it: its title, description,
/// unit, thresholds (drawn as lines) and lines.
///
/// # Panics
/// When no panel has that id: dashboards name only catalog panels.
fn shared(id: &str, width: u32) -> Panel {
    let p = panels::find(id).unwrap_or_else(|| panic!("no panel {id} in the catalog"));
    let mut g = series(p.title, width, p.unit)
        .about(p.about)
        .base(p.base)
        .steps(p.thresholds);
    for l in p.lines {
        g = g.q(l.promql(), l.grafana_legend());
    }
    if p.thresholds.is_empty() {
        g
    } else {
        threshold_lines(g)
    }
}

fn stacked(mut p: Panel) -> Panel {
    p = p.extra(json!({ "fieldConfig": { "defaults": { "custom": {
        "stacking": { "mode": "normal", "group": "A" }, "fillOpacity": 60,
    } } } }));
    p
}

/// Threshold steps drawn as lines on a time series.
fn threshold_lines(p: Panel) -> Panel {
    p.extra(json!({ "fieldConfig": { "defaults": { "custom": {
        "thresholdsStyle": { "mode": "line+area" },
    } } } }))
}

const TOTAL: &str = r#"stage="total""#;

fn performance() -> Layout {
    let mut l = Layout::new();
    let events = "zen_watcher_events_total";
    let errors = "zen_watcher_errors_total";

    l.row("Executive summary");
    l.line(5, vec![
        stat("Health score", "none")
            .about("The daemon's own score, 0-100: 100 x share of events committed within 100 ms x share of ingestion requests without a server error x CPU and memory headroom (1 up to 80 % of the limit, 0 at 100 %), over 5 minutes. Below 50 for 2 minutes raises ZenWatcherHealthFailure.")
            .q(format!("min({})", sel("zen_watcher_health_score", "")), "health")
            .base("red")
            .steps(&[(50.0, "orange"), (90.0, "green")])
            .extra(json!({ "fieldConfig": { "defaults": { "min": 0, "max": 100, "decimals": 0 } } })),
        panel("gauge", "SLO compliance", 6, "percentunit")
            .about("Share of events committed within 100 ms of receipt over the dashboard's time range (objective: 95 %).")
            .q(share_under("0.1", "$__range"), "within 100 ms")
            .base("red")
            .steps(&[(0.95, "orange"), (0.99, "green")])
            .extra(json!({ "fieldConfig": { "defaults": { "min": 0, "max": 1 } },
                "options": { "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false }, "showThresholdMarkers": true } })),
        stat("Current throughput", "ops")
            .about("Events read per second, all sources selected.")
            .q(format!("sum({})", rate(events, "")), "events/s")
            .steps(&[]),
        stat("Active alerts", "none")
            .about("zen-watcher alerts firing in Prometheus (from the generated rules).")
            .q(r#"count(ALERTS{alertstate="firing",alertname=~"ZenWatcher.*"}) or vector(0)"#, "firing")
            .steps(&[(1.0, "red")]),
    ]);

    l.row("Latency analysis");
    l.line(8, vec![
        shared("latency", 8),
        shared("stages", 8),
        panel("heatmap", "Latency heatmap", 8, "s")
            .about("Distribution of receipt-to-commit latency over time; repeated for each selected source.")
            .q(format!("sum by (le) (increase({}[$__rate_interval]))", sel(&format!("{LATENCY}_bucket"), TOTAL)), "{{le}}")
            .target(json!({ "format": "heatmap" }))
            .extra(json!({
                "repeat": "source", "repeatDirection": "h", "maxPerRow": 3,
                "options": { "calculate": false, "yAxis": { "unit": "s" }, "cellGap": 1,
                             "color": { "mode": "scheme", "scheme": "Oranges" } },
            })),
    ]);

    l.row("Throughput");
    l.line(
        8,
        vec![
            shared("throughput", 6),
            shared("sources", 6),
            shared("queue", 6),
            threshold_lines(series("Capacity utilisation", 6, "percentunit"))
                .about("Queue depth over capacity: at 100 % ingestion answers 429.")
                .q(
                    format!(
                        "max by (queue) ({}) / max by (queue) ({})",
                        sel("zen_watcher_queue_depth", ""),
                        sel("zen_watcher_queue_capacity", "")
                    ),
                    "{{queue}}",
                )
                .steps(&[(0.8, "red")])
                .extra(json!({ "fieldConfig": { "defaults": { "min": 0, "max": 1 } } })),
        ],
    );

    l.row("Resource utilisation");
    l.line(8, vec![
        threshold_lines(series("CPU", 6, "percentunit"))
            .about("Share of one core the daemon uses, and of its limit (its cgroup's, else the host's CPUs); the line is the 90 % alert threshold.")
            .q(format!("rate({}[$__rate_interval])", sel("process_cpu_seconds_total", "")), "of one core")
            .q(format!("{} / 100", sel("zen_watcher_cpu_usage_percent", "")), "of its limit")
            .steps(&[(0.9, "red")]),
        series("Memory", 6, "bytes")
            .about("Resident memory, and its share of the daemon's limit (its cgroup's, else the host's memory) on the right.")
            .q(sel("process_resident_memory_bytes", ""), "resident")
            .q(format!("{} / 100", sel("zen_watcher_memory_usage_percent", "")), "of its limit")
            .right_axis("of its limit", "percentunit"),
        series("Network in", 6, "Bps")
            .about("Ingestion body bytes received per second, by source (as sent, before decompression).")
            .q(format!("sum by (source) ({})", rate("zen_watcher_ingest_bytes_total", "")), "{{source}}"),
        series("Threads and descriptors", 6, "short")
            .q(sel("process_threads", ""), "threads")
            .q(sel("process_open_fds", ""), "open fds"),
    ]);

    l.row("Pipeline efficiency");
    l.line(8, vec![
        series("Filter effectiveness", 6, "percentunit")
            .about("Share of events dropped as noise, by the kind of rule that dropped them.")
            .q(format!("sum by (reason) ({}) / scalar(sum({}))", rate("zen_watcher_events_filtered_total", ""), rate(events, "")), "{{reason}}"),
        shared("ratios", 6),
        panel("bargauge", "Flow by stage", 6, "short")
            .about("Events over the time range: read, dropped by filters, folded as duplicates, stored, dead-lettered.")
            .q(format!("sum(increase({}[$__range]))", sel(events, "")), "received")
            .q(format!("sum(increase({}[$__range]))", sel("zen_watcher_events_filtered_total", "")), "filtered")
            .q(format!("sum(increase({}[$__range]))", sel("zen_watcher_events_deduplicated_total", "")), "deduplicated")
            .q(format!("sum(increase({}[$__range]))", sel("zen_watcher_observations_created_total", "")), "stored")
            .q(format!("sum(increase({}[$__range]))", sel("zen_watcher_dead_letters_total", "")), "dead-lettered")
            .extra(json!({ "options": { "displayMode": "gradient", "orientation": "horizontal",
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false } } })),
        series("Ratios since start", 6, "percentunit")
            .about("The daemon's own ratios since it started (stored, filtered or folded; filtered; folded), and the configuration cache's hit ratio now.")
            .q(sel("zen_watcher_pipeline_efficiency_ratio", ""), "efficiency")
            .q(sel("zen_watcher_filter_effectiveness_ratio", ""), "filtered")
            .q(sel("zen_watcher_deduplication_ratio", ""), "deduplicated")
            .q(format!("sum({}) / (sum({}) + sum({}))", rate("zen_watcher_cache_hits_total", ""), rate("zen_watcher_cache_hits_total", ""), rate("zen_watcher_cache_misses_total", "")), "cache hits"),
    ]);

    l.line(8, vec![
        series("Batches", 12, "short")
            .about("Events per batch (P50, P95) and flushes per second by reason (size, age, limit, ack, shutdown).")
            .q(format!("histogram_quantile(0.5, sum by (le) ({}))", rate("zen_watcher_batch_size_bucket", "")), "size P50")
            .q(format!("histogram_quantile(0.95, sum by (le) ({}))", rate("zen_watcher_batch_size_bucket", "")), "size P95")
            .q(format!("sum by (reason) ({})", rate("zen_watcher_batch_flushes_total", "")), "flushes/s {{reason}}"),
        shared("batches", 12),
    ]);

    l.row("System health");
    l.line(8, vec![
        panel("table", "Component status", 8, "short")
            .about("Errors per component and category over the time range; anything but 0 is red.")
            .q(format!("sum by (component, category) (increase({}[$__range]))", sel(errors, "")), "")
            .steps(&[(1.0, "red")])
            .target(json!({ "format": "table", "instant": true, "range": false }))
            .extra(json!({
                "fieldConfig": { "defaults": { "custom": { "cellOptions": { "type": "color-background" } } } },
                "transformations": [{ "id": "organize", "options": { "excludeByName": { "Time": true } } }],
            })),
        shared("errors", 8),
        series("Informer health", 8, "s")
            .about("Kubernetes only: how far behind the report watchers are, and their initial sync time (P95).")
            .q(format!("max by (resource) ({})", sel("zen_watcher_informer_lag_seconds", "")), "lag {{resource}}")
            .q(format!("histogram_quantile(0.95, sum by (le, resource) ({}))", rate("zen_watcher_informer_sync_duration_seconds_bucket", "")), "sync P95 {{resource}}"),
    ]);

    l.line(
        8,
        vec![
            shared("health", 6),
            shared("budget", 6),
            shared("burn", 6),
            shared("firing", 6),
        ],
    );

    l.row("Historical analysis");
    l.line(8, vec![
        series("7-day trend", 8, "ops")
            .about("Hourly throughput and P95 latency over the last 7 days.")
            .q(format!("sum(rate({}[1h]))", sel(events, "")), "events/s")
            .q(format!("histogram_quantile(0.95, sum by (le) (rate({}[1h])))", sel(&format!("{LATENCY}_bucket"), TOTAL)), "P95 latency")
            .right_axis("P95 latency", "s")
            .extra(json!({ "timeFrom": "7d" })),
        series("30-day trend and capacity", 8, "bytes")
            .about("Resident memory over 30 days, and where it heads in 7 days at the last 6 hours' slope.")
            .q(format!("avg_over_time({}[6h])", sel("process_resident_memory_bytes", "")), "resident")
            .q(format!("predict_linear({}[6h], 7 * 86400)", sel("process_resident_memory_bytes", "")), "in 7 days")
            .extra(json!({ "timeFrom": "30d" })),
        series("Week over week", 8, "ops")
            .about("Throughput now and at the same time a week ago.")
            .q(format!("sum({})", rate(events, "")), "this week")
            .q(format!("sum(rate({}[$__rate_interval] offset 1w))", sel(events, "")), "last week"),
    ]);
    l
}

fn observations() -> Layout {
    let mut l = Layout::new();
    let events = "zen_watcher_events_total";
    l.row("Findings");
    l.line(
        8,
        vec![
            shared("severity", 12),
            stacked(series("By source", 12, "ops")).q(
                format!("sum by (source) ({})", rate(events, "")),
                "{{source}}",
            ),
        ],
    );
    l.line(
        8,
        vec![
            series("By namespace (top 10)", 12, "ops")
                .about("Namespaces past the first 200 seen are counted as _other.")
                .q(
                    format!("topk(10, sum by (namespace) ({}))", rate(events, "")),
                    "{{namespace}}",
                ),
            series("New findings by rule (top 10)", 12, "ops")
                .about("New Observations per second by rule, check or vulnerability id.")
                .q(
                    format!(
                        "topk(10, sum by (source, rule) ({}))",
                        rate("zen_watcher_observations_by_rule_total", "")
                    ),
                    "{{source}} {{rule}}",
                ),
        ],
    );
    l.row("Over the time range");
    l.line(8, vec![
        panel("piechart", "Severity mix", 8, "short")
            .q(format!("sum by (severity) (increase({}[$__range]))", sel(events, "")), "{{severity}}")
            .extra(json!({ "options": { "pieType": "donut",
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false } } })),
        panel("bargauge", "Critical and high by namespace", 8, "short")
            .q(format!("topk(10, sum by (namespace) (increase({}[$__range])))", sel(events, r#"severity=~"critical|high""#)), "{{namespace}}")
            .steps(&[(1.0, "red")])
            .extra(json!({ "options": { "displayMode": "gradient", "orientation": "horizontal",
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false } } })),
        panel("table", "Top rules", 8, "short")
            .q(format!("topk(20, sum by (source, rule) (increase({}[$__range])))", sel("zen_watcher_observations_by_rule_total", "")), "")
            .target(json!({ "format": "table", "instant": true, "range": false }))
            .extra(json!({ "transformations": [{ "id": "organize", "options": { "excludeByName": { "Time": true } } }] })),
    ]);
    l
}

fn host() -> Layout {
    let mut l = Layout::new();
    l.row("Host");
    l.line(
        8,
        vec![shared("cpu", 8), shared("load", 8), shared("memory", 8)],
    );
    l.line(
        8,
        vec![
            shared("disk", 6),
            shared("iops", 6),
            shared("disk_latency", 6),
            shared("disk_busy", 6),
        ],
    );
    l.line(
        8,
        vec![
            shared("network", 12),
            series("Network errors and drops", 12, "pps")
                .about("Packets received with errors or dropped per second, by interface.")
                .q(
                    format!(
                        "sum by (device) ({}) + sum by (device) ({})",
                        rate("node_network_receive_errs_total", ""),
                        rate("node_network_receive_drop_total", "")
                    ),
                    "{{device}}",
                ),
        ],
    );
    l.row("Filesystems and interfaces");
    l.line(8, vec![
        shared("filesystems", 6),
        series("Filesystem space used", 6, "percentunit")
            .about("Share of each filesystem's space that non-root users can no longer use.")
            .q(format!("1 - {} / {}", sel("node_filesystem_avail_bytes", ""), sel("node_filesystem_size_bytes", "")), "{{mountpoint}}"),
        series("Inodes used", 6, "percentunit")
            .q(format!("1 - {} / {}", sel("node_filesystem_files_free", ""), sel("node_filesystem_files", "")), "{{mountpoint}}"),
        series("Interfaces up", 6, "short")
            .about("1 while an interface's operational state is up; filesystems that failed to answer (device_error) on the right.")
            .q(sel("node_network_up", ""), "{{device}}")
            .q(format!("sum({})", sel("node_filesystem_device_error", "")), "filesystems failing")
            .right_axis_matching("filesystems.*", "short"),
    ]);
    l.row("Containers");
    l.line(
        8,
        vec![
            shared("container_cpu", 8),
            shared("container_memory", 8),
            series("Container I/O", 8, "Bps")
                .q(
                    format!(
                        "topk(10, sum by (name) ({}))",
                        rate("container_fs_reads_bytes_total", "")
                    ),
                    "read {{name}}",
                )
                .q(
                    format!(
                        "topk(10, sum by (name) ({}))",
                        rate("container_fs_writes_bytes_total", "")
                    ),
                    "written {{name}}",
                ),
        ],
    );
    l.row("zen-watcher process");
    l.line(
        8,
        vec![
            shared("process", 8),
            series("Memory", 8, "bytes")
                .q(sel("process_resident_memory_bytes", ""), "resident")
                .q(sel("process_virtual_memory_bytes", ""), "virtual"),
            series("File descriptors", 8, "short")
                .q(sel("process_open_fds", ""), "open")
                .q(sel("process_max_fds", ""), "limit"),
        ],
    );
    l
}

/// A query of a dashboard: the panel it belongs to and its PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// Every query of a dashboard's JSON (as generated, or as read back from `dashboards/`).
pub fn queries(dashboard: &Value) -> Vec<Query> {
    let title = dashboard["title"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push(Query {
                    dashboard: title.to_owned(),
                    panel: p["title"].as_str().unwrap_or_default().to_owned(),
                    expr: expr.to_owned(),
                });
            }
        }
    }
    out
}

/// `expr` as Grafana would send it with every variable at "All" and the dashboard's range
/// `range` (a PromQL duration): `$__rate_interval` becomes `rate_interval`.
pub fn substitute(expr: &str, range: &str, rate_interval: &str) -> String {
    expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", range)
        .replace("$__interval", rate_interval)
        .replace("$cluster", ".*")
        .replace("$namespace", ".*")
        .replace("$source", ".*")
}
