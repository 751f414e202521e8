//! `cargo xtask bench e2e`: the release daemon under load on this machine, load generator
//! included, measured from outside (its own counters, `/proc`) and recorded. The scenarios run in
//! several rounds, each on a fresh daemon and data directory, and the median round is recorded
//! with the lowest and highest beside it: on two shared cores one round can be 20 % off another.
//! The flat-out scenarios last several seconds each, so that they measure the daemon in its
//! steady state (its queue full, its histograms and WAL at their working size) rather than a
//! burst of a second, which its queues absorb and whose last batch waits for its age.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::loadgen::{self, LoadgenArgs};
use crate::report::{self, Chart, Environment, Figure, Report, Row, Table, median};

#[derive(Debug)]
struct Scenario {
    name: String,
    load: loadgen::Report,
    /// Events with an outcome (written, filtered, deduplicated) per second, from the first
    /// request until the daemon's queues were empty.
    committed_per_second: f64,
    cpu_seconds: f64,
    rss_mb_after: f64,
    /// The WAL file's largest size, sampled every 20 ms from the first request until the
    /// daemon's queues were empty.
    wal_mb_peak: f64,
}

/// One round: a fresh daemon through every scenario.
#[derive(Debug)]
struct Round {
    idle_rss_mb: f64,
    peak_rss_mb: f64,
    scenarios: Vec<Scenario>,
}

/// The body of a GET on the daemon.
pub(crate) fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned())
}

/// The JSON body of a GET on the daemon.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Result<Value> {
    Ok(serde_json::from_str(&get_text(addr, path)?)?)
}

/// Resident and peak resident memory (MB) and CPU seconds of a process, from `/proc`.
pub(crate) fn proc_figures(pid: u32) -> Result<(f64, f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    Ok((kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0, cpu))
}

/// Starts the daemon (after `prefix`, e.g. `ip netns exec NAME`) with `args` added, and waits
/// for the address it listens on.
pub(crate) fn start(
    prefix: &[&str],
    binary: &Path,
    data: &Path,
    args: &[&str],
) -> Result<(Child, SocketAddr)> {
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let mut child = cmd
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn,zen_watcher=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut lines = BufReader::new(child.stderr.take().context("daemon stderr")?).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!("the daemon exited before listening")
        };
        let line: Value = serde_json::from_str(&line?).unwrap_or_default();
        if let Some(listen) = line["listen"].as_str() {
            break listen.parse()?;
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, addr))
}

/// Builds the release daemon; its path.
pub(crate) fn build_daemon() -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "zen-watcher"])
        .status()?;
    if !status.success() {
        bail!("building the daemon failed");
    }
    Ok(report::target_dir().join("release/zen-watcher"))
}

/// Events with an outcome (written, filtered, deduplicated, dead-lettered) so far.
pub(crate) fn settled(addr: SocketAddr) -> Result<u64> {
    let stats = get(addr, "/api/v1/stats")?;
    let p = &stats["pipeline"];
    let n = |k: &str| p[k].as_u64().unwrap_or(0);
    Ok(n("written") + n("filtered") + n("deduplicated") + n("dead_lettered"))
}

/// One scenario on the daemon whose data directory is `data`.
fn scenario(
    name: &str,
    daemon: &Child,
    addr: SocketAddr,
    data: &Path,
    args: LoadgenArgs,
) -> Result<Scenario> {
    let pid = daemon.id();
    let (_, _, cpu_before) = proc_figures(pid)?;
    let before = settled(addr)?;
    let wal = data.join("zen-watcher.db-wal");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let peak = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        let measured = measure(name, pid, addr, before, cpu_before, &args);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = peak.join().unwrap_or(0);
        measured.map(|s| Scenario {
            wal_mb_peak: peak as f64 / 1e6,
            ..s
        })
    })
}

/// The load of `args`, and what it took, measured until the daemon's queues were empty.
fn measure(
    name: &str,
    pid: u32,
    addr: SocketAddr,
    before: u64,
    cpu_before: f64,
    args: &LoadgenArgs,
) -> Result<Scenario> {
    let started = Instant::now();
    let load = loadgen::run(args)?;
    // Wait until everything accepted has an outcome.
    let deadline = Instant::now() + Duration::from_secs(120);
    let target = before + load.events_accepted;
    while settled(addr)? < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let committed = settled(addr)? - before;
    let seconds = started.elapsed().as_secs_f64();
    let (rss, _, cpu_after) = proc_figures(pid)?;
    println!("{name}: {}", serde_json::to_string(&load)?);
    Ok(Scenario {
        name: name.to_owned(),
        committed_per_second: committed as f64 / seconds,
        cpu_seconds: cpu_after - cpu_before,
        rss_mb_after: rss,
        wal_mb_peak: 0.0,
        load,
    })
}

pub(crate) fn run(rounds: usize) -> Result<()> {
    let environment = Environment::here();
    let binary = build_daemon()?;
    let rounds = (1..=rounds.max(1))
        .map(|n| {
            println!("round {n}");
            round(&binary, n)
        })
        .collect::<Result<Vec<_>>>()?;
    report::write(&Report {
        kind: "e2e".to_owned(),
        command: format!("cargo xtask bench e2e --rounds {}", rounds.len()),
        environment,
        tables: tables(&rounds),
    })?;
    Ok(())
}

/// The report's tables: per scenario, the median of the rounds with their lowest and highest;
/// the daemon's memory idle and at its peak.
fn tables(rounds: &[Round]) -> Vec<Table> {
    let spread = format!(
        "median of {} rounds, each on a fresh daemon, lowest–highest in brackets",
        rounds.len()
    );
    let of = |values: &dyn Fn(&Round) -> Vec<f64>, name: &str, unit: &str| {
        Figure::of(
            name,
            unit,
            &rounds.iter().flat_map(values).collect::<Vec<_>>(),
        )
    };
    let scenarios = rounds.first().map_or(&[][..], |r| &r.scenarios[..]);
    let rows = scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| Row {
            name: s.name.clone(),
            figures: FIGURES
                .iter()
                .map(|&(name, unit, read)| {
                    of(
                        &|r: &Round| r.scenarios.get(i).map(read).into_iter().collect(),
                        name,
                        unit,
                    )
                })
                .collect(),
        })
        .collect();
    let memory = Row {
        name: "daemon".to_owned(),
        figures: vec![
            of(&|r: &Round| vec![r.idle_rss_mb], "idle RSS", "MB"),
            of(&|r: &Round| vec![r.peak_rss_mb], "peak RSS", "MB"),
        ],
    };
    let table = |name: &str, rows| Table {
        component: "e2e".to_owned(),
        name: name.to_owned(),
        spread: spread.clone(),
        chart: Chart::PerRow,
        rows,
    };
    vec![table("scenarios", rows), table("memory", vec![memory])]
}

fn round(binary: &Path, n: usize) -> Result<Round> {
    let data = std::env::temp_dir().join(format!("zen-e2e-{}-{n}", std::process::id()));
    let (mut daemon, addr) = start(&[], binary, &data, &[])?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _, _) = proc_figures(daemon.id())?;
    let url = format!("http://{addr}");
    let base = LoadgenArgs {
        url,
        connections: 4,
        batch: 100,
        rate: 0,
        count: 2_000_000,
        duration: 60,
        ack: None,
        token: None,
        seed: 0,
    };
    let scenarios = vec![
        scenario(
            "batches of 100, flat out",
            &daemon,
            addr,
            &data,
            base.clone(),
        )?,
        scenario(
            "single events, flat out",
            &daemon,
            addr,
            &data,
            LoadgenArgs {
                batch: 1,
                connections: 8,
                count: 200_000,
                ..base.clone()
            },
        )?,
        scenario(
            "10,000 events/s in batches of 100, ack=commit",
            &daemon,
            addr,
            &data,
            LoadgenArgs {
                rate: 10_000,
                count: 100_000,
                ack: Some("commit".to_owned()),
                ..base.clone()
            },
        )?,
    ];
    let (_, peak_rss, _) = proc_figures(daemon.id())?;
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()?;
    let exit = daemon.wait()?;
    let _ = std::fs::remove_dir_all(&data);
    if !exit.success() {
        bail!("the daemon did not stop cleanly: {exit}");
    }
    Ok(Round {
        idle_rss_mb: idle_rss,
        peak_rss_mb: peak_rss,
        scenarios,
    })
}

/// `cargo xtask bench compare A B`: the e2e scenarios on two builds (daemon binaries, or
/// commits), alternated (A, B, A, B, …) `rounds` times each in one run, as every side-by-side
/// figure in docs/benchmarks.md is taken; prints each figure's medians and the ratio B ÷ A with
/// the lowest and highest of the rounds' ratios.
pub(crate) fn compare(a: &str, b: &str, rounds: usize) -> Result<()> {
    let binaries = [daemon_of(a)?, daemon_of(b)?];
    let mut runs: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for n in 0..rounds.max(1) {
        for (i, binary) in binaries.iter().enumerate() {
            eprintln!("round {} of {}: {}", n + 1, rounds, binary.display());
            runs[i].push(round(binary, 2 * n + i)?);
        }
    }
    print!("{}", comparison(&runs[0], &runs[1]));
    Ok(())
}

/// A build to compare: a daemon binary as it is, or a commit's daemon, built in a worktree of
/// its own (with that commit's cargo configuration) and kept by commit in `target/compare/`.
fn daemon_of(build: &str) -> Result<PathBuf> {
    if Path::new(build).is_file() {
        return Ok(build.into());
    }
    let commit = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{build}^{{commit}}"),
        ])
        .output()?;
    if !commit.status.success() {
        bail!("{build}: neither a daemon binary nor a commit");
    }
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_owned();
    let dir = report::target_dir().join("compare");
    let binary = dir.join(format!("zen-watcher-{commit}"));
    if binary.is_file() {
        return Ok(binary);
    }
    let tree = dir.join(format!("src-{commit}"));
    let git = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let status = Command::new("git").args(args).status()?;
        if !status.success() {
            bail!("git {args:?}: {status}");
        }
        Ok(())
    };
    if !tree.exists() {
        git(&[
            "worktree".as_ref(),
            "add".as_ref(),
            "--detach".as_ref(),
            tree.as_ref(),
            commit.as_ref(),
        ])?;
    }
    eprintln!("building {build} ({commit}) in {}", tree.display());
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--package", "zen-watcher"])
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()?;
    if !status.success() {
        bail!("building {build} ({commit}) failed: {status}");
    }
    std::fs::copy(dir.join("target/release/zen-watcher"), &binary)?;
    git(&[
        "worktree".as_ref(),
        "remove".as_ref(),
        "--force".as_ref(),
        tree.as_ref(),
    ])?;
    Ok(binary)
}

/// A scenario's figure: its name, unit, and how to read it.
type Reading = (&'static str, &'static str, fn(&Scenario) -> f64);

/// The figures of a scenario, reported and compared.
const FIGURES: [Reading; 9] = [
    ("accepted", "events/s", |s| s.load.events_per_second),
    ("settled", "events/s", |s| s.committed_per_second),
    ("requests", "requests/s", |s| {
        s.load.requests as f64 / s.load.seconds
    }),
    ("p50", "ms", |s| s.load.latency_ms.p50),
    ("p90", "ms", |s| s.load.latency_ms.p90),
    ("p99", "ms", |s| s.load.latency_ms.p99),
    ("daemon CPU per event", "µs", cpu_per_event),
    ("RSS after", "MB", |s| s.rss_mb_after),
    ("largest WAL", "MB", |s| s.wal_mb_peak),
];

/// The daemon's CPU time over the events accepted, in microseconds.
fn cpu_per_event(s: &Scenario) -> f64 {
    s.cpu_seconds * 1e6 / s.load.events_accepted.max(1) as f64
}

fn of_median(values: &[f64]) -> String {
    median(values).map_or("—".to_owned(), |m| format!("{m:.2}"))
}

/// The Markdown table of A's and B's medians and the ratios.
fn comparison(a: &[Round], b: &[Round]) -> String {
    let mut out = String::from(
        "| scenario | figure | A (median) | B (median) | B ÷ A (median, lowest–highest) |\n|---|---|---:|---:|---|\n",
    );
    let Some(first) = a.first() else {
        return out;
    };
    for (i, scenario) in first.scenarios.iter().enumerate() {
        for (name, unit, read) in FIGURES {
            let of = |rounds: &[Round]| -> Vec<f64> {
                rounds
                    .iter()
                    .filter_map(|r| r.scenarios.get(i))
                    .map(read)
                    .collect()
            };
            let (va, vb) = (of(a), of(b));
            let ratios: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| y / x).collect();
            out += &format!(
                "| {} | {name}, {unit} | {} | {} | {} |\n",
                scenario.name,
                of_median(&va),
                of_median(&vb),
                spread(&ratios, 3),
            );
        }
    }
    out
}

/// `median (lowest–highest)`, or the one value alone.
fn spread(values: &[f64], decimals: usize) -> String {
    let Some(median) = median(values) else {
        return "—".to_owned();
    };
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() == 1 {
        format!("{median:.decimals$}")
    } else {
        format!("{median:.decimals$} ({lowest:.decimals$}–{highest:.decimals$})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_with_the_lowest_and_highest() {
        assert_eq!(spread(&[3.0, 1.0, 2.0], 0), "2 (1–3)");
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0], 1), "2.5 (1.0–4.0)");
        assert_eq!(spread(&[5.25], 2), "5.25");
        assert_eq!(spread(&[], 0), "—");
    }
}

#[cfg(test)]
mod compare_tests {
    use super::*;
    use crate::loadgen::Latency;

    fn round(events_per_second: f64, p99: f64, cpu_seconds: f64) -> Round {
        let load = loadgen::Report {
            requests: 10,
            events_sent: 1000,
            events_accepted: 1000,
            requests_rejected: 0,
            requests_failed: 0,
            seconds: 1.0,
            events_per_second,
            latency_ms: Latency {
                p50: 1.0,
                p90: 2.0,
                p99,
                max: 9.0,
            },
        };
        Round {
            idle_rss_mb: 10.0,
            peak_rss_mb: 20.0,
            scenarios: vec![Scenario {
                name: "flat out".to_owned(),
                load,
                committed_per_second: events_per_second,
                cpu_seconds,
                rss_mb_after: 12.0,
                wal_mb_peak: 100.0,
            }],
        }
    }

    #[test]
    fn medians_and_ratios_of_alternated_rounds() {
        let a = [
            round(100.0, 4.0, 0.010),
            round(200.0, 6.0, 0.012),
            round(150.0, 5.0, 0.011),
        ];
        let b = [
            round(110.0, 4.0, 0.010),
            round(180.0, 9.0, 0.012),
            round(165.0, 5.0, 0.011),
        ];
        let table = comparison(&a, &b);
        // Ratios 1.1, 0.9, 1.1: median 1.1, from 0.9 to 1.1.
        assert!(
            table.contains(
                "| flat out | accepted, events/s | 150.00 | 165.00 | 1.100 (0.900–1.100) |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| flat out | p99, ms | 5.00 | 5.00 | 1.000 (1.000–1.500) |"),
            "{table}"
        );
        // 0.011 s over 1,000 events: 11 µs each.
        assert!(
            table.contains("| daemon CPU per event, µs | 11.00 | 11.00 |"),
            "{table}"
        );
    }
}
