//! `cargo xtask bench kube`: the release daemon in Kubernetes mode against the fake API server
//! (zen-kube-fake, in this process): an initial list of 10,000 VulnerabilityReports of 30
//! vulnerabilities each (300,000 findings) until every finding is stored, the daemon's peak
//! memory meanwhile; then a steady state of 20 report changes a second, each adding a finding
//! (the write budget's rate), and the daemon's CPU over 30 s, less its CPU over 30 s idle
//! just before (the Kubernetes side's share), both once the list's findings have left the
//! de-duplication window; last, a SourcePolicy changed 20
//! times, and how soon each change is in force.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use zen_kube_fake::{FakeApi, Method};

use crate::e2e::{build_daemon, get, get_text, proc_figures, start};
use crate::report::{self, Chart, Environment, Figure, Report, Row, Table, median};

const REPORTS: usize = 10_000;
const VULNERABILITIES: usize = 30;
const STEADY: Duration = Duration::from_secs(30);
const CHANGES_PER_SECOND: u32 = 20;
const POLICY_CHANGES: usize = 20;
/// The default de-duplication window, and a margin.
const AFTERMATH: Duration = Duration::from_secs(65);

struct Round {
    seconds_to_store: f64,
    findings_per_second: f64,
    peak_rss_mb: f64,
    steady_cpu_percent: f64,
    /// The daemon's CPU over as long with no report changing: its own background work
    /// (collectors, history, advisor, the watches kept open).
    idle_cpu_percent: f64,
    /// From a SourcePolicy's change to the daemon's status write saying it is in force, ms.
    policy_to_status_ms: Vec<f64>,
    /// The daemon's own mean from the watch event to the pipeline's new configuration, ms.
    reload_mean_ms: f64,
}

fn report_of(i: usize, extra: usize) -> Value {
    let vulns: Vec<Value> = (0..VULNERABILITIES + extra)
        .map(|j| json!({"vulnerabilityID": format!("CVE-2026-{j:05}"), "resource": "libssl3", "installedVersion": "3.0.7-r0", "fixedVersion": "3.0.8-r0", "severity": "HIGH", "title": "a vulnerability in libssl3"}))
        .collect();
    json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
        "metadata": {"name": format!("replicaset-app-{i:05}-main"), "namespace": format!("team-{}", i % 50),
            "labels": {"trivy-operator.resource.kind": "ReplicaSet", "trivy-operator.resource.name": format!("app-{i:05}"),
                "trivy-operator.resource.namespace": format!("team-{}", i % 50), "trivy-operator.container.name": "main"}},
        "report": {"updateTimestamp": "2026-12-07T10:00:00Z",
            "artifact": {"repository": "acme/app", "tag": "1.0"}, "scanner": {"name": "Trivy", "version": "0.58.1"},
            "vulnerabilities": vulns}
    })
}

fn stored(addr: SocketAddr) -> Result<u64> {
    let body = get(addr, "/api/v1/stats")?;
    Ok(body["store"].as_array().map_or(0, |rows| {
        rows.iter().filter_map(|r| r["observations"].as_u64()).sum()
    }))
}

/// Changes a SourcePolicy one version at a time. For each, the time from the change to the
/// daemon's status write saying it is in force, as the API server sees it: an upper bound of
/// the time to put it in force, which comes first. Also the daemon's own mean, from its
/// histogram, from the watch event to the pipeline's new configuration.
fn reloads(fake: &FakeApi, addr: SocketAddr) -> Result<(Vec<f64>, f64)> {
    let mut times = Vec::new();
    for i in 0..POLICY_CHANGES {
        let severity = if i % 2 == 0 { "high" } else { "low" };
        let changed = Instant::now();
        let stored = fake.put(
            "sourcepolicies",
            json!({"apiVersion": "zen-watcher.io/v1alpha1", "kind": "SourcePolicy",
                "metadata": {"name": "trivy", "namespace": "default"},
                "spec": {"source": "trivy", "filter": {"minSeverity": severity}}}),
        );
        let generation = stored["metadata"]["generation"].clone();
        let status_path = "/sourcepolicies/trivy/status";
        loop {
            let policies = fake.objects("zen-watcher.io/v1alpha1", "sourcepolicies");
            if policies
                .iter()
                .any(|p| p["status"]["observedGeneration"] == generation)
            {
                break;
            }
            if changed.elapsed() > Duration::from_secs(10) {
                bail!("policy generation {generation} not in force after 10 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let written = fake
            .requests()
            .iter()
            .rev()
            .find(|r| r.method == Method::PUT && r.uri.contains(status_path))
            .map(|r| r.at)
            .context("no status write")?;
        times.push(written.saturating_duration_since(changed).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = get_text(addr, "/metrics")?;
    let read = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .with_context(|| format!("{name} not exposed"))
    };
    let sum = read("zen_watcher_config_reload_duration_seconds_sum")?;
    let count = read("zen_watcher_config_reload_duration_seconds_count")?;
    Ok((times, sum / count * 1000.0))
}

fn round(binary: &Path, runtime: &tokio::runtime::Runtime, n: usize) -> Result<Round> {
    let fake = runtime.block_on(zen_kube_fake::FakeApi::start())?;
    fake.serve("aquasecurity.github.io/v1alpha1", "VulnerabilityReport");
    fake.serve("coordination.k8s.io/v1", "Lease");
    fake.serve("zen-watcher.io/v1alpha1", "SourcePolicy");
    fake.serve("events.k8s.io/v1", "Event");
    for i in 0..REPORTS {
        fake.put("vulnerabilityreports", report_of(i, 0));
    }
    let dir = std::env::temp_dir().join(format!("zen-kube-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig())?;
    let config = dir.join("zen.yaml");
    std::fs::write(&config, "kube:\n  reports: [vulnerabilityreports]\n")?;
    let kubeconfig_env = kubeconfig.display().to_string();
    let (mut daemon, addr) = start_with_env(
        binary,
        &dir.join("data"),
        &["--kube", "--config", config.to_str().context("path")?],
        &kubeconfig_env,
    )?;
    let started = Instant::now();
    let want = (REPORTS * VULNERABILITIES) as u64;
    let deadline = started + Duration::from_secs(300);
    let mut peak = 0.0_f64;
    loop {
        let (_, hwm, _) = proc_figures(daemon.id())?;
        peak = peak.max(hwm);
        if stored(addr)? >= want {
            break;
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            bail!("{} of {want} findings stored after 300 s", stored(addr)?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (_, hwm, _) = proc_figures(daemon.id())?;
    peak = peak.max(hwm);
    println!("  {want} findings stored in {seconds:.1} s, peak RSS {peak:.0} MB");

    // The list's aftermath first: its findings leave the de-duplication window (60 s by
    // default) in a burst. Then idle, as long as the steady state: what the daemon spends with
    // nothing changing.
    std::thread::sleep(AFTERMATH);
    let (_, _, idle_before) = proc_figures(daemon.id())?;
    let idle_started = Instant::now();
    std::thread::sleep(STEADY);
    let (_, _, idle_after) = proc_figures(daemon.id())?;
    let idle = (idle_after - idle_before) / idle_started.elapsed().as_secs_f64() * 100.0;

    // Steady state: a report changes 20 times a second, each time with one finding more.
    let (_, _, cpu_before) = proc_figures(daemon.id())?;
    let steady = Instant::now();
    let every = Duration::from_secs(1) / CHANGES_PER_SECOND;
    let mut k = 0;
    while steady.elapsed() < STEADY {
        k += 1;
        fake.put(
            "vulnerabilityreports",
            report_of(k % REPORTS, k / REPORTS + 1),
        );
        let next = steady + every * k as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let (_, _, cpu_after) = proc_figures(daemon.id())?;
    let cpu = (cpu_after - cpu_before) / steady.elapsed().as_secs_f64() * 100.0;
    let total = want + k as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(addr)? < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let found = stored(addr)?;
    println!(
        "  idle {idle:.2} % of a core; steady: {k} changes, {cpu:.2} % of a core; {found} of {total} stored"
    );
    let (policy_to_status_ms, reload_mean_ms) = reloads(&fake, addr)?;
    let max = policy_to_status_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "  {POLICY_CHANGES} policy changes: in force within {max:.1} ms (status written), {reload_mean_ms:.2} ms mean in the daemon"
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if found != total {
        bail!("{found} findings stored, expected {total}");
    }
    Ok(Round {
        seconds_to_store: seconds,
        findings_per_second: want as f64 / seconds,
        peak_rss_mb: peak,
        steady_cpu_percent: cpu,
        idle_cpu_percent: idle,
        policy_to_status_ms,
        reload_mean_ms,
    })
}

/// [`start`] with `KUBECONFIG` set for the daemon.
fn start_with_env(
    binary: &Path,
    data: &Path,
    args: &[&str],
    kubeconfig: &str,
) -> Result<(std::process::Child, SocketAddr)> {
    let env = format!("KUBECONFIG={kubeconfig}");
    start(&["env", &env], binary, data, args)
}

pub(crate) fn run(rounds: usize) -> Result<()> {
    let environment = Environment::here();
    let binary = build_daemon()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let rounds = (1..=rounds.max(1))
        .map(|n| {
            println!("round {n}");
            round(&binary, &runtime, n)
        })
        .collect::<Result<Vec<_>>>()?;
    let of = |read: fn(&Round) -> f64, name: &str, unit: &str| {
        Figure::of(name, unit, &rounds.iter().map(read).collect::<Vec<_>>())
    };
    let spread = format!(
        "median of {} rounds, each on a fresh daemon and fake API server, lowest–highest in brackets",
        rounds.len()
    );
    let table = |name: &str, rows| Table {
        component: "kube".to_owned(),
        name: name.to_owned(),
        spread: spread.clone(),
        chart: Chart::PerRow,
        rows,
    };
    report::write(&Report {
        kind: "kube".to_owned(),
        command: format!("cargo xtask bench kube --rounds {}", rounds.len()),
        environment,
        tables: vec![
            table(
                "initial list",
                vec![Row {
                    name: "10,000 reports, 300,000 findings".to_owned(),
                    figures: vec![
                        of(|r| r.seconds_to_store, "time to store", "s"),
                        of(|r| r.findings_per_second, "throughput", "findings/s"),
                        of(|r| r.peak_rss_mb, "peak RSS", "MB"),
                    ],
                }],
            ),
            table(
                "steady state",
                vec![Row {
                    name: "20 report changes a second".to_owned(),
                    figures: vec![
                        of(|r| r.steady_cpu_percent, "daemon CPU", "% of a core"),
                        of(|r| r.idle_cpu_percent, "daemon CPU, idle", "% of a core"),
                        of(
                            |r| r.steady_cpu_percent - r.idle_cpu_percent,
                            "Kubernetes side",
                            "% of a core",
                        ),
                    ],
                }],
            ),
            table(
                "configuration",
                vec![Row {
                    name: format!("{POLICY_CHANGES} SourcePolicy changes"),
                    figures: vec![
                        of(
                            |r| median(&r.policy_to_status_ms).unwrap_or(f64::NAN),
                            "change to status written, median",
                            "ms",
                        ),
                        of(
                            |r| r.policy_to_status_ms.iter().copied().fold(0.0, f64::max),
                            "change to status written, slowest",
                            "ms",
                        ),
                        of(|r| r.reload_mean_ms, "watch event to in force, mean", "ms"),
                    ],
                }],
            ),
        ],
    })?;
    Ok(())
}
