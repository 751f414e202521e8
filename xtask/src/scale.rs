//! `cargo xtask bench postgres`: the release daemon on SQLite and on PostgreSQL side by side in
//! one run, then two and three daemons sharing the one PostgreSQL, the load generator on the
//! same two cores. PostgreSQL is Debian's, started for the run on a loopback port with its
//! defaults (fsync on: every commit durable, as with SQLite); each round gets a fresh database
//! and fresh daemons. "Settled" counts events with an outcome in every daemon (written,
//! filtered, deduplicated) from the first request until their queues are empty; PostgreSQL's
//! CPU is its processes' `utime + stime` over the events accepted.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zen_store::testing::PgServer;

use crate::e2e::{build_daemon, get, proc_figures, start};
use crate::loadgen::{self, LoadgenArgs};
use crate::report::{self, Chart, Environment, Figure, Report, Row, Table};

/// Events a scenario sends, in batches of 100 over 4 connections in all.
const EVENTS: u64 = 1_000_000;

#[derive(Debug)]
struct Scenario {
    name: &'static str,
    accepted_per_second: f64,
    settled_per_second: f64,
    p99_ms: f64,
    daemon_cpu_us: f64,
    postgres_cpu_us: f64,
}

fn settled(addr: std::net::SocketAddr) -> Result<u64> {
    let stats = get(addr, "/api/v1/stats")?;
    let p = &stats["pipeline"];
    let n = |k: &str| p[k].as_u64().unwrap_or(0);
    Ok(n("written") + n("filtered") + n("deduplicated") + n("dead_lettered"))
}

/// CPU seconds of `pid` and every process whose parent it is (PostgreSQL's backends).
fn tree_cpu(pid: u32) -> f64 {
    let mut total = proc_figures(pid).map_or(0.0, |f| f.2);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return total;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|s| {
                let (_, rest) = s.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if parent == Some(pid) {
            total += proc_figures(child).map_or(0.0, |f| f.2);
        }
    }
    total
}

/// `daemons` fresh daemons (with `args`) under one load split evenly between them.
fn scenario(
    name: &'static str,
    binary: &Path,
    daemons: usize,
    args: &[&str],
    postgres: Option<u32>,
) -> Result<Scenario> {
    let dirs: Vec<tempfile::TempDir> = (0..daemons)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut running: Vec<(Child, std::net::SocketAddr)> = dirs
        .iter()
        .map(|d| start(&[], binary, d.path(), args))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(1));
    let cpu = |running: &[(Child, std::net::SocketAddr)]| -> f64 {
        running
            .iter()
            .map(|(c, _)| proc_figures(c.id()).map_or(0.0, |f| f.2))
            .sum()
    };
    let (daemon_before, pg_before) = (cpu(&running), postgres.map_or(0.0, tree_cpu));
    let before: u64 = running
        .iter()
        .map(|(_, a)| settled(*a))
        .sum::<Result<u64>>()?;
    let started = Instant::now();
    let loads = std::thread::scope(|s| {
        let handles: Vec<_> = running
            .iter()
            .map(|(_, addr)| {
                let args = LoadgenArgs {
                    url: format!("http://{addr}"),
                    connections: (4 / daemons).max(1),
                    batch: 100,
                    rate: 0,
                    count: EVENTS / daemons as u64,
                    duration: 120,
                    ack: None,
                    token: None,
                    seed: 0,
                };
                s.spawn(move || loadgen::run(&args))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a load generator panicked"))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let accepted: u64 = loads.iter().map(|l| l.events_accepted).sum();
    let load_seconds = loads.iter().map(|l| l.seconds).fold(0.0, f64::max);
    let deadline = Instant::now() + Duration::from_secs(300);
    let settled_now = |running: &[(Child, std::net::SocketAddr)]| -> Result<u64> {
        running.iter().map(|(_, a)| settled(*a)).sum()
    };
    while settled_now(&running)? < before + accepted {
        if Instant::now() > deadline {
            bail!("{name}: the daemons did not settle in 300 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seconds = started.elapsed().as_secs_f64();
    let settled = settled_now(&running)? - before;
    let (daemon_cpu, pg_cpu) = (
        cpu(&running) - daemon_before,
        postgres.map_or(0.0, tree_cpu) - pg_before,
    );
    let mut p99s: Vec<f64> = loads.iter().map(|l| l.latency_ms.p99).collect();
    p99s.sort_by(f64::total_cmp);
    for (child, _) in &mut running {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let exit = child.wait()?;
        if !exit.success() {
            bail!("{name}: a daemon did not stop cleanly: {exit}");
        }
    }
    let per_event = |cpu: f64| cpu * 1e6 / accepted.max(1) as f64;
    let scenario = Scenario {
        name,
        accepted_per_second: accepted as f64 / load_seconds.max(1e-9),
        settled_per_second: settled as f64 / seconds,
        p99_ms: p99s.last().copied().unwrap_or(0.0),
        daemon_cpu_us: per_event(daemon_cpu),
        postgres_cpu_us: per_event(pg_cpu),
    };
    println!("{scenario:?}");
    Ok(scenario)
}

fn round(binary: &Path, pg: &PgServer, n: usize) -> Result<Vec<Scenario>> {
    let url = |daemons: usize| pg.database(&format!("bench_{}_{n}_{daemons}", std::process::id()));
    let pid = pg.pid();
    let mut out = vec![scenario("SQLite, 1 daemon", binary, 1, &[], None)?];
    for (name, daemons) in [
        ("PostgreSQL, 1 daemon", 1),
        ("PostgreSQL, 2 daemons", 2),
        ("PostgreSQL, 3 daemons", 3),
    ] {
        let config = tempfile::NamedTempFile::new()?;
        std::fs::write(
            config.path(),
            format!("store:\n  kind: postgres\n  url: {}\n", url(daemons)),
        )?;
        let path = config.path().to_str().context("a temporary path")?;
        out.push(scenario(name, binary, daemons, &["--config", path], pid)?);
    }
    Ok(out)
}

pub(crate) fn run(rounds: usize) -> Result<()> {
    let environment = Environment::here();
    let binary = build_daemon()?;
    let pg = PgServer::start(true).map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
    let rounds = (1..=rounds.max(1))
        .map(|n| {
            println!("round {n}");
            round(&binary, &pg, n)
        })
        .collect::<Result<Vec<_>>>()?;
    report::write(&Report {
        kind: "postgres".to_owned(),
        command: format!("cargo xtask bench postgres --rounds {}", rounds.len()),
        environment,
        tables: vec![table(&rounds)],
    })?;
    Ok(())
}

type Reading = (&'static str, &'static str, fn(&Scenario) -> f64);

const FIGURES: [Reading; 5] = [
    ("accepted", "events/s", |s| s.accepted_per_second),
    ("settled", "events/s", |s| s.settled_per_second),
    ("p99 of the slowest client", "ms", |s| s.p99_ms),
    ("daemons' CPU per event", "µs", |s| s.daemon_cpu_us),
    ("PostgreSQL's CPU per event", "µs", |s| s.postgres_cpu_us),
];

fn table(rounds: &[Vec<Scenario>]) -> Table {
    let names = rounds
        .first()
        .map_or(Vec::new(), |r| r.iter().map(|s| s.name).collect());
    let rows = names
        .iter()
        .enumerate()
        .map(|(i, name)| Row {
            name: (*name).to_owned(),
            figures: FIGURES
                .iter()
                .map(|&(figure, unit, read)| {
                    let values: Vec<f64> =
                        rounds.iter().filter_map(|r| r.get(i)).map(read).collect();
                    Figure::of(figure, unit, &values)
                })
                .collect(),
        })
        .collect();
    Table {
        component: "postgres".to_owned(),
        name: "batches of 100, flat out".to_owned(),
        spread: format!(
            "median of {} rounds, each on fresh daemons and a fresh database, lowest–highest in brackets",
            rounds.len()
        ),
        chart: Chart::PerRow,
        rows,
    }
}
