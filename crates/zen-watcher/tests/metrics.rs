//! The catalog and what the daemon emits agree both ways, and the exposition is clean by
//! `promtool check metrics` — on the real binary after a short, varied load.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use zen_export::{CATALOG, Scope};

mod common;
use common::{external, get, short_load, start_with};

/// The metric names of an exposition: from `# TYPE` lines, and from samples (a histogram's
/// `_bucket`, `_sum` and `_count` stand for it).
fn names(exposition: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in exposition.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next().unwrap(),
            None if line.starts_with('#') || line.is_empty() => continue,
            None => line.split(['{', ' ']).next().unwrap(),
        };
        let metric = zen_export::catalog::find(name).map_or(name, |m| m.name);
        out.insert(metric.to_owned());
    }
    out
}

fn run_daemon_with_load() -> (tempfile::TempDir, std::process::Child, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zen.yaml");
    std::fs::write(&config, "filter:\n  global:\n    min_severity: low\n").unwrap();
    let (child, addr, logs) = start_with(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    std::thread::spawn(move || logs.for_each(drop));
    short_load(addr);
    let (status, text) = get(addr, "/metrics");
    assert_eq!(status, 200);
    (dir, child, text)
}

#[test]
fn every_declared_metric_is_emitted_and_nothing_undeclared_is() {
    let (_dir, mut child, text) = run_daemon_with_load();
    child.kill().unwrap();
    let emitted = names(&text);
    let declared: BTreeSet<String> = CATALOG
        .iter()
        .filter(|m| m.scope == Scope::Daemon)
        .map(|m| m.name.to_owned())
        .collect();
    let missing: Vec<_> = declared.difference(&emitted).collect();
    let undeclared: Vec<_> = emitted
        .iter()
        .filter(|n| zen_export::catalog::find(n).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "declared but not emitted: {missing:?}\n{text}"
    );
    assert!(
        undeclared.is_empty(),
        "emitted but not declared: {undeclared:?}"
    );
    let kubernetes: Vec<_> = CATALOG
        .iter()
        .filter(|m| m.scope == Scope::Kubernetes && emitted.contains(m.name))
        .collect();
    assert!(
        kubernetes.is_empty(),
        "Kubernetes-only metrics emitted standalone: {kubernetes:?}"
    );
    // Types and help agree with the catalog.
    for m in CATALOG.iter().filter(|m| m.scope == Scope::Daemon) {
        let ty = format!("# TYPE {} {}\n", m.name, m.kind.as_str());
        assert!(text.contains(&ty), "{ty}");
        assert!(
            text.contains(&format!("# HELP {} ", m.name)),
            "help of {}",
            m.name
        );
    }
    // Every earlier request has left; only the scrape itself is in flight.
    assert!(
        text.contains("zen_watcher_http_requests_in_flight 1\n"),
        "{text}"
    );
    // The load's outcomes are all there.
    for series in [
        "zen_watcher_events_filtered_total{source=\"falco\",reason=\"min_severity\"}",
        "zen_watcher_events_deduplicated_total{source=\"trivy\"}",
        "zen_watcher_errors_total{component=\"ingest\",category=\"parse\"}",
        "zen_watcher_http_requests_total{route=\"/api/v1/ingest/{source}\",code=\"400\"}",
        "zen_watcher_event_processing_duration_seconds_bucket{stage=\"total\",source=\"audit\",le=\"0.1\"}",
    ] {
        assert!(text.contains(series), "{series}");
    }
}

#[test]
fn promtool_finds_the_exposition_clean() {
    let Some(promtool) = external("promtool") else {
        return;
    };
    let (_dir, mut child, text) = run_daemon_with_load();
    child.kill().unwrap();
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
