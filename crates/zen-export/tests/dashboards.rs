//! The generated dashboards are well formed for Grafana and every query is valid PromQL over
//! catalog metrics.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeSet;

use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use zen_export::grafana::{SCHEMA_VERSION, dashboards, queries, substitute};

/// Series Prometheus makes itself, which dashboards may read besides the catalog's.
const PROMETHEUS_OWN: &[&str] = &["ALERTS"];

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = ();
    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
        let vs = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        self.0.insert(vs.name.clone().unwrap_or_default());
        Ok(true)
    }
}

fn panels(d: &Value) -> &Vec<Value> {
    d["panels"].as_array().unwrap()
}

#[test]
fn generation_is_deterministic_and_uids_are_fixed() {
    let (a, b) = (dashboards(), dashboards());
    let uids: BTreeSet<_> = a.iter().map(|d| d.uid).collect();
    assert_eq!(uids.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.json, y.json);
        assert_eq!(x.json["uid"], x.uid);
        assert_eq!(x.json["schemaVersion"], SCHEMA_VERSION);
        assert_eq!(x.json["refresh"], "10s");
        assert_eq!(x.json["time"]["from"], "now-1h");
    }
}

#[test]
fn panels_fit_the_grid_without_overlap_and_have_unique_ids() {
    for d in dashboards() {
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
        for p in panels(&d.json) {
            let title = p["title"].as_str().unwrap().to_owned();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{}: id of {title}",
                d.title
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(
                w > 0 && h > 0 && x + w <= 24,
                "{}: {title} leaves the grid",
                d.title
            );
            for (bx, by, bw, bh, other) in &boxes {
                let apart = x + w <= *bx || bx + bw <= x || y + h <= *by || by + bh <= y;
                assert!(apart, "{}: {title} overlaps {other}", d.title);
            }
            boxes.push((x, y, w, h, title));
        }
    }
}

#[test]
fn every_panel_and_target_uses_the_datasource_variable_and_thresholds_start_at_null() {
    let wanted = serde_json::json!({ "type": "prometheus", "uid": "${datasource}" });
    for d in dashboards() {
        let vars: Vec<_> = d.json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            vars,
            ["datasource", "cluster", "namespace", "source"],
            "{}",
            d.title
        );
        for p in panels(&d.json) {
            assert_eq!(p["datasource"], wanted, "{}: {}", d.title, p["title"]);
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(t["datasource"], wanted, "{}: {}", d.title, p["title"]);
            }
            if p["type"] != "row" {
                let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                    .as_array()
                    .unwrap();
                assert!(steps[0]["value"].is_null(), "{}: {}", d.title, p["title"]);
                assert!(steps[1..].iter().all(|s| s["value"].is_number()));
            }
        }
    }
}

#[test]
fn every_dashboard_links_to_the_others() {
    let all = dashboards();
    for d in &all {
        let urls: BTreeSet<_> = d.json["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["url"].as_str().unwrap().to_owned())
            .collect();
        let others: BTreeSet<_> = all
            .iter()
            .filter(|o| o.uid != d.uid)
            .map(|o| format!("/d/{}", o.uid))
            .collect();
        assert_eq!(urls, others, "{}", d.title);
    }
}

#[test]
fn every_query_parses_as_promql_and_names_only_catalog_metrics() {
    let mut used = BTreeSet::new();
    for d in dashboards() {
        let qs = queries(&d.json);
        assert!(!qs.is_empty());
        for q in qs {
            let expr = substitute(&q.expr, "1h", "1m");
            let ast = parser::parse(&expr)
                .unwrap_or_else(|e| panic!("{}: {}: {expr}: {e}", q.dashboard, q.panel));
            let mut names = Names(BTreeSet::new());
            walk_expr(&mut names, &ast).unwrap();
            assert!(!names.0.is_empty(), "{}: reads no metric", q.panel);
            for name in names.0 {
                assert!(
                    zen_export::catalog::find(&name).is_some()
                        || PROMETHEUS_OWN.contains(&name.as_str()),
                    "{}: {}: {name} is not in the catalog",
                    q.dashboard,
                    q.panel
                );
                used.insert(name);
            }
        }
        // Variables read catalog metrics too.
        for v in d.json["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["definition"].as_str() {
                let metric = q
                    .trim_start_matches("label_values(")
                    .split(['{', ',', ')'])
                    .next()
                    .unwrap();
                assert!(zen_export::catalog::find(metric).is_some(), "{q}");
            }
        }
    }
    // The seed's headline metrics are all on a dashboard.
    for name in [
        "zen_watcher_events_total",
        "zen_watcher_event_processing_duration_seconds_bucket",
        "zen_watcher_errors_total",
        "zen_watcher_queue_depth",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(name), "{name} is on no dashboard");
    }
}

#[test]
fn the_performance_dashboard_has_the_seven_rows_of_the_design() {
    let perf = dashboards()
        .into_iter()
        .find(|d| d.uid == "zen-watcher-performance")
        .unwrap();
    let rows: Vec<_> = panels(&perf.json)
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        rows,
        [
            "Executive summary",
            "Latency analysis",
            "Throughput",
            "Resource utilisation",
            "Pipeline efficiency",
            "System health",
            "Historical analysis"
        ]
    );
    let json = perf.json.to_string();
    for threshold in ["\"value\":0.05", "\"value\":0.1", "\"value\":0.2"] {
        assert!(json.contains(threshold), "latency threshold {threshold}");
    }
}

#[test]
fn every_page_panel_is_on_one_dashboard_as_the_page_draws_it() {
    let all = dashboards();
    for p in zen_export::panels::PANELS {
        let found: Vec<&Value> = all
            .iter()
            .flat_map(|d| panels(&d.json))
            .filter(|g| g["title"] == p.title)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "panel {:?} on {} dashboards",
            p.title,
            found.len()
        );
        let g = found[0];
        assert_eq!(g["fieldConfig"]["defaults"]["unit"], p.unit, "{}", p.title);
        assert_eq!(g["description"], p.about, "{}", p.title);
        let exprs: Vec<&str> = g["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap())
            .collect();
        let lines: Vec<String> = p.lines.iter().map(|l| l.promql()).collect();
        assert_eq!(exprs, lines, "{}", p.title);
        let steps: Vec<f64> = g["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .map(|s| s["value"].as_f64().unwrap())
            .collect();
        let want: Vec<f64> = p.thresholds.iter().map(|(v, _)| *v).collect();
        assert_eq!(steps, want, "{}", p.title);
    }
}
