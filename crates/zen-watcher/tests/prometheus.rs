//! End to end with a real Prometheus: it scrapes the daemon under a small load, and every query
//! of the committed dashboards returns data — except the few listed in `NO_DATA_HERE`, each
//! with the reason it cannot have data on this machine.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use zen_export::grafana::{queries, substitute};

mod common;
use common::{
    KillOnDrop, answers_ok, external, free_port, full_config, get, short_load, start_with,
};

/// (panel, a part of the query) that cannot return data here, and why.
const NO_DATA_HERE: &[(&str, &str, &str)] = &[
    (
        "Informer health",
        "zen_watcher_informer",
        "Kubernetes only: a standalone daemon runs no report watchers",
    ),
    (
        "Week over week",
        "offset 1w",
        "needs a week of history; this Prometheus is seconds old",
    ),
];

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(prom: SocketAddr, expr: &str) -> Value {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn has_data(answer: &Value) -> bool {
    match answer["data"]["resultType"].as_str() {
        Some("vector" | "matrix") => !answer["data"]["result"].as_array().unwrap().is_empty(),
        Some("scalar") => true,
        _ => false,
    }
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let Some(prometheus) = external("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = full_config(dir.path(), None);
    let (daemon, addr, logs) = start_with(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    let _daemon = KillOnDrop(daemon);
    std::thread::spawn(move || logs.for_each(drop));

    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: zen-watcher\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let _prometheus = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", prom_yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers_ok(prom, "/-/ready") {
        assert!(Instant::now() < deadline, "Prometheus did not get ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Load for a while, so that rates over 10 s windows and 5 m increases have samples.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        short_load(addr);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scraped = query(prom, "count_over_time(up{job=\"zen-watcher\"}[1m])");
        let n = scraped["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0");
        if n.parse::<f64>().unwrap_or(0.0) >= 8.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus scraped too little: {scraped}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // One more round, so the newest 10 s window holds fresh activity.
    short_load(addr);
    std::thread::sleep(Duration::from_secs(2));

    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dashboards"));
    let mut checked = 0;
    let mut empty = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for q in queries(&dashboard) {
            let excused = NO_DATA_HERE
                .iter()
                .any(|(panel, part, _)| q.panel == *panel && q.expr.contains(part));
            let expr = substitute(&q.expr, "5m", "10s");
            let answer = query(prom, &expr);
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
            checked += 1;
            if !excused && !has_data(&answer) {
                empty.push(format!("{}: {}: {expr}", q.dashboard, q.panel));
            }
        }
    }
    assert!(checked > 40, "only {checked} queries found");
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
}
