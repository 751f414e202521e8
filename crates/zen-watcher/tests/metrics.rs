//! The catalog and what the daemon emits agree both ways, and the exposition is clean by
//! `promtool check metrics` — on the real binary after a short, varied load.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use zen_export::{CATALOG, Scope};

mod common;
use common::{external, full_config, get, short_load, start_with};

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

/// The daemon after a short load, with a container in a network namespace of its own to find
/// (when one can be made), and its exposition.
fn run_daemon_with_load() -> (
    tempfile::TempDir,
    std::process::Child,
    String,
    Option<common::NetnsProcess>,
) {
    let container = common::NetnsProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let config = full_config(dir.path(), container.as_ref());
    let (child, addr, logs) = start_with(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    std::thread::spawn(move || logs.for_each(drop));
    short_load(addr);
    // The slow collectors (inventory, filesystems) hand their first reading over within a
    // second or two.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let (status, text) = loop {
        let (status, text) = get(addr, "/metrics");
        let slow_read = text.contains("zen_watcher_host_info{")
            && text.contains("node_filesystem_size_bytes{")
            && (container.is_none() || text.contains("container_network_receive_bytes_total{"));
        if slow_read || std::time::Instant::now() > deadline {
            break (status, text);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status, 200);
    (dir, child, text, container)
}

#[test]
fn every_declared_metric_is_emitted_and_nothing_undeclared_is() {
    let (_dir, mut child, text, container) = run_daemon_with_load();
    child.kill().unwrap();
    let emitted = names(&text);
    let declared: BTreeSet<String> = CATALOG
        .iter()
        .filter(|m| m.scope == Scope::Daemon)
        .map(|m| m.name.to_owned())
        .collect();
    let mut missing: Vec<_> = declared.difference(&emitted).collect();
    // Sensors: a VM has none (sysinfo reads /sys/class/hwmon).
    let sensors = std::fs::read_dir("/sys/class/hwmon")
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| {
            std::fs::read_dir(d.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| f.file_name().to_string_lossy().starts_with("temp"))
        });
    if !sensors {
        eprintln!(
            "this host has no temperature sensors: zen_watcher_host_temperature_celsius not checked"
        );
        missing.retain(|m| *m != "zen_watcher_host_temperature_celsius");
    }
    if container.is_none() {
        missing.retain(|m| !m.starts_with("container_network_"));
    }
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
    // Types and help agree with the catalog (a family's members each have their own).
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let m = zen_export::catalog::find(name).unwrap();
        assert_eq!(kind, m.kind.as_str(), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "help of {name}");
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
        // From the fixture trees.
        "node_network_speed_bytes{device=\"eth0\"} 1250000000\n",
        "container_cpu_usage_seconds_total{id=\"/system.slice/docker-4f3a1c9e2b7d8f6a5c4b3a2918273645f0e1d2c3b4a5968778695a4b3c2d1e0f.scope\",name=\"4f3a1c9e2b7d\",runtime=\"docker\",pod_uid=\"\"} 7.25\n",
        "container_pressure_io_stalled_seconds_total{",
        "zen_watcher_containers{state=\"read\"} 7\n",
        "zen_watcher_host_process_resident_memory_bytes{name=\"_other\"}",
    ] {
        assert!(text.contains(series), "{series}");
    }
}

#[test]
fn promtool_finds_the_exposition_clean() {
    let Some(promtool) = external("promtool") else {
        return;
    };
    let (_dir, mut child, text, _container) = run_daemon_with_load();
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
    // node_exporter's names from /proc/meminfo, /proc/net/snmp and sockstat
    // (`node_memory_MemTotal_bytes`, `node_netstat_Tcp_CurrEstab`, `node_sockstat_TCP_inuse`)
    // are kept as they are, so its users' queries and dashboards work: promtool's camelCase lint
    // is excused for them and nothing else.
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| {
            !(["node_memory_", "node_netstat_", "node_sockstat_"]
                .iter()
                .any(|p| l.starts_with(p))
                && l.ends_with("metric names should be written in 'snake_case' not 'camelCase'"))
        })
        .collect();
    assert!(problems.is_empty(), "promtool check metrics:\n{report}");
}

#[test]
fn the_documented_freshness_follows_the_collectors_cadence() {
    use zen_collect::host::{LOAD_EVERY, SLOW_EVERY, SLOW_FILES};
    use zen_export::catalog::resolution;
    // At the default 1 s interval: one sample a second.
    assert_eq!(resolution("node_vmstat_pgfault"), format!("{SLOW_EVERY} s"));
    assert_eq!(
        resolution("node_netstat_Tcp_InSegs"),
        format!("{SLOW_EVERY} s")
    );
    assert_eq!(
        resolution("node_sockstat_TCP_inuse"),
        format!("{SLOW_EVERY} s")
    );
    assert_eq!(
        resolution("node_filefd_allocated"),
        format!("{SLOW_EVERY} s")
    );
    assert!(resolution("node_load1").starts_with(&format!("{LOAD_EVERY} s")));
    // The containers' limits and OOM count, at the same cadence.
    for name in [
        "container_spec_memory_limit_bytes",
        "container_oom_events_total",
    ] {
        assert_eq!(resolution(name), format!("{SLOW_EVERY} s"), "{name}");
    }
    assert_eq!(SLOW_FILES.len(), 7);
    assert_eq!(
        resolution("node_cpu_seconds_total"),
        "1 s (collect.interval)"
    );
    assert_eq!(resolution("zen_watcher_events_total"), "as it happens");
}
