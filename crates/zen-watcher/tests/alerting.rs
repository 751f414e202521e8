//! Alerting with the real tools: the generated rules through `promtool check rules` and
//! `promtool test rules` (the committed tests, and a dense replay that compares every alert's
//! state at every evaluation with the in-process evaluator), the Alertmanager configuration
//! through `amtool check-config`, and the daemon's alerts through a real Alertmanager on
//! loopback and a webhook.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KillOnDrop, am_alerts, external, free_port, get, put, start_alertmanager};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(program: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_rules_and_the_prometheus_rule_groups() {
    let Some(promtool) = external("promtool") else {
        return;
    };
    let deploy = repo().join("deploy/prometheus");
    run(
        &promtool,
        &["check", "rules", "zen-watcher-rules.yaml"],
        &deploy,
    );
    // The PrometheusRule's groups, as a plain rule file.
    let dir = tempfile::tempdir().unwrap();
    let operator: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(deploy.join("prometheusrule.yaml")).unwrap(),
    )
    .unwrap();
    let plain = dir.path().join("groups.yaml");
    std::fs::write(
        &plain,
        serde_yaml_ng::to_string(&serde_json::json!({ "groups": operator["spec"]["groups"] }))
            .unwrap(),
    )
    .unwrap();
    run(&promtool, &["check", "rules", "groups.yaml"], dir.path());
}

#[test]
fn promtool_passes_the_committed_rule_tests() {
    let Some(promtool) = external("promtool") else {
        return;
    };
    let tests = repo().join("deploy/prometheus/tests");
    let mut files: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    run(&promtool, &args, &tests);
}

/// Prometheus and the daemon's evaluator, fed the same series, agree on every alert's state
/// (pending, firing, or neither) at every evaluation, and on firing alerts' labels and
/// annotations where they change.
#[test]
fn prometheus_and_the_evaluator_agree_at_every_evaluation() {
    let Some(promtool) = external("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = zen_slo::defaults::spec();
    std::fs::write(
        dir.path().join("rules.yaml"),
        zen_slo::generate::rules(&spec),
    )
    .unwrap();
    let mut files = Vec::new();
    for suite in zen_slo::scenario::suites(&spec, &zen_export::catalog::buckets) {
        let text = zen_slo::generate::promtool_tests("rules.yaml", &suite.scenarios, true);
        std::fs::write(dir.path().join(&suite.file), text).unwrap();
        files.push(suite.file);
    }
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    run(&promtool, &args, dir.path());
}

#[test]
fn amtool_accepts_the_alertmanager_configuration() {
    let Some(amtool) = external("amtool") else {
        return;
    };
    run(
        &amtool,
        &["check-config", "alertmanager.yaml"],
        &repo().join("deploy/alertmanager"),
    );
}

/// A webhook receiver: keeps each request body; answers 503 to the first `fail_first`, then 200.
fn webhook(fail_first: usize) -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(v) = serde_json::from_slice(&body)
            {
                kept.lock().unwrap().push(v);
            }
            let status = if kept.lock().unwrap().len() <= fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, bodies)
}

/// Waits up to 30 s for `f` to say yes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// A counter's value in an exposition.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn memory_alert(alerts: &[Value]) -> Option<&Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "ZenWatcherHighMemoryUsage")
}

#[test]
fn an_alert_reaches_alertmanager_and_resolves_there() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_am, am_addr)) = start_alertmanager(dir.path()) else {
        return;
    };

    let (hook, received) = webhook(0);
    let (daemon, addr) = common::start_configured(
        dir.path(),
        dir.path(),
        &format!(
            "alerting:\n  interval: 1s\n  resend_every: 2s\n  alertmanagers: [\"http://{am_addr}\"]\n  webhook: http://{hook}/hook\n"
        ),
    );
    let _daemon = KillOnDrop(daemon);

    // The shipped rules, and bad changes refused with the reason.
    let (status, body) = get(addr, "/api/v1/alerts/rules");
    assert_eq!(status, 200, "{body}");
    let rules: Value = serde_json::from_str(&body).unwrap();
    let memory = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ZenWatcherHighMemoryUsage")
        .unwrap();
    assert_eq!(
        (memory["threshold"].as_f64(), memory["for"].as_str()),
        (Some(90.0), Some("3m"))
    );
    for (bad, says) in [
        (r#"{"NoSuchRule": {"threshold": 1}}"#, "no such rule"),
        (
            r#"{"ZenWatcherAbsent": {"threshold": 1}}"#,
            "has no threshold",
        ),
        (
            r#"{"ZenWatcherHighMemoryUsage": {"treshold": 1}}"#,
            "unknown field `treshold`",
        ),
        (
            r#"{"ZenWatcherHighMemoryUsage": {"for": "soon"}}"#,
            "ZenWatcherHighMemoryUsage.for",
        ),
        ("{}", "no rule to change"),
        ("[", "expected a map"),
        ("{\"ZenWatcherHighMemoryUsage\": {\"threshold\": 1", "EOF"),
    ] {
        let (status, body) = put(addr, "/api/v1/alerts/rules", bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
    }

    // Any memory use is over a threshold of 0: the alert fires at the next evaluation.
    let (status, body) = put(
        addr,
        "/api/v1/alerts/rules",
        r#"{"ZenWatcherHighMemoryUsage": {"threshold": 0, "for": "0s"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    eventually("the alert in Alertmanager", || {
        memory_alert(&am_alerts(am_addr)).is_some_and(|a| a["status"]["state"] == "active")
    });
    let alerts = am_alerts(am_addr);
    let a = memory_alert(&alerts).unwrap();
    assert_eq!(a["labels"]["severity"], "critical");
    assert!(
        a["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .contains("#zenwatcherhighmemoryusage")
    );
    assert_eq!(a["generatorURL"], format!("http://{addr}/api/v1/alerts"));
    let (_, body) = get(addr, "/api/v1/alerts");
    let ours: Value = serde_json::from_str(&body).unwrap();
    assert!(
        ours["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "ZenWatcherHighMemoryUsage" && a["state"] == "firing"),
        "{ours}"
    );

    // Back to 90 %: resolved in the daemon, then gone from Alertmanager's active alerts.
    let (status, _) = put(
        addr,
        "/api/v1/alerts/rules",
        r#"{"ZenWatcherHighMemoryUsage": {"threshold": 90}}"#,
    );
    assert_eq!(status, 200);
    eventually("the alert resolved in Alertmanager", || {
        memory_alert(&am_alerts(am_addr)).is_none()
    });
    eventually("the webhook to hear both", || {
        let bodies = received.lock().unwrap();
        let states: Vec<&str> = bodies
            .iter()
            .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["labels"]["alertname"] == "ZenWatcherHighMemoryUsage")
            .map(|a| {
                if a["status"] == "firing" {
                    "firing"
                } else {
                    "resolved"
                }
            })
            .collect();
        states.contains(&"firing") && states.contains(&"resolved")
    });

    // The SLOs, the health score and the notification counters.
    let (status, body) = get(addr, "/api/v1/slos");
    assert_eq!(status, 200);
    let slos: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = slos["slos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ingestion-availability") && names.len() == 8,
        "{names:?}"
    );
    assert!(
        slos["health_score"]
            .as_f64()
            .is_some_and(|h| (0.0..=100.0).contains(&h))
    );
    let (_, metrics) = get(addr, "/metrics");
    assert!(
        metrics.contains("zen_watcher_health_score "),
        "no health score"
    );
    let sent = counter(
        &metrics,
        r#"zen_watcher_notifications_total{receiver="alertmanager",outcome="sent"}"#,
    );
    assert!(sent >= 2.0, "{sent}");
}

/// A receiver that is down is retried, then counted as failed; one that fails once and then
/// answers gets the alert on a retry.
#[test]
fn notifications_are_retried_then_counted_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, received) = webhook(1);
    let down = free_port();
    let (daemon, addr) = common::start_configured(
        dir.path(),
        dir.path(),
        &format!(
            "alerting:\n  interval: 1s\n  alertmanagers: [\"http://127.0.0.1:{down}\"]\n  webhook: http://{hook}/hook\n  rules:\n    ZenWatcherHighMemoryUsage: {{threshold: 0, for: 0s}}\n"
        ),
    );
    let _daemon = KillOnDrop(daemon);
    eventually("a failure counted and a webhook retry delivered", || {
        let (_, metrics) = get(addr, "/metrics");
        let failed = counter(
            &metrics,
            r#"zen_watcher_notifications_total{receiver="alertmanager",outcome="failed"}"#,
        );
        let sent = counter(
            &metrics,
            r#"zen_watcher_notifications_total{receiver="webhook",outcome="sent"}"#,
        );
        failed >= 1.0 && sent >= 1.0
    });
    let bodies = received.lock().unwrap();
    assert!(
        bodies.len() >= 2,
        "the first post was refused, so a retry came"
    );
    assert_eq!(bodies[0], bodies[1], "a retry sends the same batch");
}

#[test]
fn a_host_rule_raises_one_alert_per_interface_in_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_am, am_addr)) = start_alertmanager(dir.path()) else {
        return;
    };
    // Every interface's traffic is over a threshold of -1: one alert each, at once.
    let (daemon, addr) = common::start_configured(
        dir.path(),
        dir.path(),
        &format!(
            "alerting:\n  interval: 1s\n  alertmanagers: [\"http://{am_addr}\"]\n  rules:\n    ZenWatcherHostNetworkBandwidthHigh: {{threshold: -1, for: 0s}}\n"
        ),
    );
    let _daemon = KillOnDrop(daemon);
    // The interfaces, once the collectors' first reading is in (on a busy machine it may come
    // after the daemon listens).
    let deadline = Instant::now() + Duration::from_secs(20);
    let devices: std::collections::BTreeSet<String> = loop {
        let (_, metrics) = get(addr, "/metrics");
        let devices: std::collections::BTreeSet<String> = metrics
            .lines()
            .filter(|l| l.starts_with("node_network_receive_bytes_total{"))
            .filter_map(|l| Some(l.split("device=\"").nth(1)?.split('"').next()?.to_owned()))
            .collect();
        if !devices.is_empty() || Instant::now() > deadline {
            break devices;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!devices.is_empty(), "no interface collected in 20 s");
    let bandwidth = |alerts: &[Value]| -> std::collections::BTreeSet<String> {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "ZenWatcherHostNetworkBandwidthHigh")
            .filter_map(|a| Some(a["labels"]["device"].as_str()?.to_owned()))
            .collect()
    };
    eventually("an alert per interface in Alertmanager", || {
        devices.is_subset(&bandwidth(&am_alerts(am_addr)))
    });
    for a in am_alerts(am_addr)
        .iter()
        .filter(|a| a["labels"]["alertname"] == "ZenWatcherHostNetworkBandwidthHigh")
    {
        let device = a["labels"]["device"].as_str().unwrap();
        assert_eq!(
            a["annotations"]["summary"],
            format!("Interface {device} above 100 MB/s"),
            "the template filled in with the alert's own labels"
        );
        assert_eq!(a["labels"]["severity"], "warning");
    }
    // The daemon's own view: the same alerts, each with its device.
    let (_, body) = get(addr, "/api/v1/alerts");
    let own: Value = serde_json::from_str(&body).unwrap();
    let listed = own["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "ZenWatcherHostNetworkBandwidthHigh")
        .count();
    assert!(listed >= devices.len(), "{body}");
}
