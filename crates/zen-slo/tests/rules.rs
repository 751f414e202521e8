//! The generated Prometheus rules: every expression parses, numbers are written exactly, and
//! every (name, label set) is unique.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeSet;

use serde_json::Value;
use zen_slo::{defaults, generate};

fn rules() -> Vec<Value> {
    let text = generate::rules(&defaults::spec());
    let file: Value = serde_yaml_ng::from_str(&text).unwrap();
    file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn every_expression_parses() {
    for r in rules() {
        let expr = r["expr"].as_str().unwrap();
        promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
}

#[test]
fn numbers_are_written_exactly() {
    let text = generate::rules(&defaults::spec());
    let number = regex::Regex::new(r"\d+\.\d+").unwrap();
    for m in number.find_iter(&text) {
        let digits = m.as_str();
        assert!(
            !digits.contains("00000") && !digits.contains("99999"),
            "float artefact {digits}"
        );
    }
    assert!(text.contains("> 0.0144 and"), "the 1h page of 99.9 %");
}

#[test]
fn every_name_and_label_set_is_unique() {
    let mut seen = BTreeSet::new();
    for r in rules() {
        let name = r["record"].as_str().or(r["alert"].as_str()).unwrap();
        let labels = serde_json::to_string(&r["labels"]).unwrap();
        assert!(
            seen.insert((name.to_owned(), labels.clone())),
            "{name} {labels}"
        );
    }
}

#[test]
fn the_prometheus_rule_holds_the_same_groups() {
    let spec = defaults::spec();
    let plain: Value = serde_yaml_ng::from_str(&generate::rules(&spec)).unwrap();
    let operator: Value = serde_yaml_ng::from_str(&generate::prometheus_rule(&spec)).unwrap();
    assert_eq!(operator["kind"], "PrometheusRule");
    assert_eq!(operator["spec"]["groups"], plain["groups"]);
}
