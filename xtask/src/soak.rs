//! `cargo xtask soak`: the release daemon under steady acknowledged load for a long time, to show
//! what a benchmark of seconds cannot — memory that creeps, descriptors that leak, a latency that
//! drifts, a WAL that grows. The load generator sends `--rate` events a second (`?ack=commit`,
//! with its usual share of duplicates and noise) in one-minute rounds, each with its own random
//! stream so findings keep being new; the dashboard's stream (`/api/v1/stream`) stays open and
//! `/metrics` is scraped every ten seconds, as Prometheus would. Every second the WAL file's size
//! is read; every ten, the daemon's resident memory, open descriptors and CPU time.
//!
//! The run is written to `docs/bench/soak.json`; `cargo xtask gen` renders it into
//! `docs/bench/soak.svg` and the `soak` region of `docs/reliability.md`, with the verdicts:
//! resident memory's slope after the warm-up under 1 MB per 10 minutes (least squares), no more
//! descriptors in the last third of the run than in the first after the warm-up (medians), every minute's acknowledged p99 within
//! 5 ms, the WAL within its bound, and every accepted event given an outcome.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::e2e;
use crate::fuzz::parse_duration;
use crate::loadgen::{self, LoadgenArgs};
use crate::report::{Environment, root};

/// Where the last soak is kept, and what it renders to.
const KEPT: &str = "docs/bench/soak.json";
const CHART: &str = "docs/bench/soak.svg";
const DOC: &str = "docs/reliability.md";

/// The bounds the verdicts hold the run to.
const RSS_SLOPE_MB_PER_10_MIN: f64 = 1.0;
const ACK_P99_MS: f64 = 5.0;

#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long to load the daemon, e.g. `30m`.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// Events a second, sent acknowledged on commit in requests of 100.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// The start left out of the slopes (memory and descriptors settle as caches fill): a
    /// sixth of the run when not given.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
}

/// A soak run, as kept in `docs/bench/soak.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Soak {
    command: String,
    environment: Environment,
    rate: u64,
    warmup_seconds: u64,
    wal_bound_mb: f64,
    /// Every ten seconds.
    samples: Vec<Sample>,
    /// Every round of the load generator (a minute).
    rounds: Vec<Round>,
    events_accepted: u64,
    /// Events with an outcome (written, filtered, deduplicated, dead-lettered) once the
    /// daemon's queues were empty.
    events_settled: u64,
    /// Events the dashboard's stream sent (one a second).
    stream_events: u64,
    clean_stop: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Sample {
    /// Seconds since the load started.
    t: f64,
    rss_mb: f64,
    fds: u64,
    /// The WAL's largest size over the ten seconds (read every second).
    wal_mb: f64,
    cpu_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Round {
    /// Seconds since the load started, at the round's end.
    t: f64,
    events_per_second: f64,
    events_accepted: u64,
    requests_rejected: u64,
    requests_failed: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// The WAL bound the daemon runs with (its default).
fn wal_bound_mb() -> f64 {
    zen_store::WAL_MAX_BYTES as f64 / (1024.0 * 1024.0)
}

pub(crate) fn run(args: &SoakArgs) -> Result<()> {
    let environment = Environment::here();
    let binary = e2e::build_daemon()?;
    let data = tempfile::Builder::new().prefix("zen-soak-").tempdir()?;
    let (mut daemon, addr) = e2e::start(&[], &binary, data.path(), &[])?;
    let pid = daemon.id();
    let warmup = args.warmup.unwrap_or(args.duration / 6);
    let stop = Arc::new(AtomicBool::new(false));
    let stream_events = Arc::new(AtomicU64::new(0));
    let stream = {
        let (stop, count) = (stop.clone(), stream_events.clone());
        std::thread::spawn(move || dashboard_stream(addr, &stop, &count))
    };
    let started = Instant::now();
    let sampler = {
        let (stop, wal) = (stop.clone(), data.path().join("zen-watcher.db-wal"));
        std::thread::spawn(move || sample(pid, addr, &wal, started, &stop))
    };
    let mut rounds = Vec::new();
    let mut accepted = 0;
    let mut n = 0;
    while started.elapsed() < args.duration {
        let seconds = (args.duration - started.elapsed()).as_secs().clamp(1, 60);
        let load = loadgen::run(&LoadgenArgs {
            url: format!("http://{addr}"),
            connections: 4,
            batch: 100,
            rate: args.rate,
            count: args.rate * seconds,
            duration: seconds + 30,
            ack: Some("commit".to_owned()),
            token: None,
            seed: n,
        })?;
        n += 1;
        accepted += load.events_accepted;
        let round = Round {
            t: started.elapsed().as_secs_f64(),
            events_per_second: load.events_per_second,
            events_accepted: load.events_accepted,
            requests_rejected: load.requests_rejected,
            requests_failed: load.requests_failed,
            p50_ms: load.latency_ms.p50,
            p99_ms: load.latency_ms.p99,
            max_ms: load.latency_ms.max,
        };
        println!(
            "{:>5.0} s: {:.0} events/s, ack p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            round.t, round.events_per_second, round.p50_ms, round.p99_ms, round.max_ms
        );
        rounds.push(round);
    }
    stop.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the sampler panicked"))??;
    stream
        .join()
        .map_err(|_| anyhow::anyhow!("the stream reader panicked"))??;
    // Every accepted event has an outcome once the queues are empty.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut settled = e2e::settled(addr)?;
    while settled < accepted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        settled = e2e::settled(addr)?;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let clean_stop = term.success() && daemon.wait()?.success();
    let soak = Soak {
        command: format!(
            "cargo xtask soak --duration {}m --rate {} --warmup {}s",
            args.duration.as_secs() / 60,
            args.rate,
            warmup.as_secs()
        ),
        environment,
        rate: args.rate,
        warmup_seconds: warmup.as_secs(),
        wal_bound_mb: wal_bound_mb(),
        samples,
        rounds,
        events_accepted: accepted,
        events_settled: settled,
        stream_events: stream_events.load(Ordering::Relaxed),
        clean_stop,
    };
    let path = root().join(KEPT);
    std::fs::write(&path, serde_json::to_string_pretty(&soak)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("written to {KEPT}; `cargo xtask gen` renders it");
    let verdicts = verdicts(&soak);
    println!("{}", markdown(&soak, &verdicts));
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("the soak missed: {}", failed.join(", "));
    }
    Ok(())
}

/// Reads the dashboard's stream until told to stop, counting its events.
fn dashboard_stream(addr: SocketAddr, stop: &AtomicBool, count: &AtomicU64) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET /api/v1/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
        )?;
        let mut lines = BufReader::new(s);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) if line.starts_with("id:") => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Samples the daemon every second until told to stop; a sample every ten.
fn sample(
    pid: u32,
    addr: SocketAddr,
    wal: &Path,
    started: Instant,
    stop: &AtomicBool,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut wal_peak = 0u64;
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        tick += 1;
        wal_peak = wal_peak.max(std::fs::metadata(wal).map_or(0, |m| m.len()));
        if !tick.is_multiple_of(10) {
            continue;
        }
        // Scraped as Prometheus would; what it says is not needed here.
        e2e::get_text(addr, "/metrics")?;
        let (rss_mb, _, cpu_seconds) = e2e::proc_figures(pid)?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
        samples.push(Sample {
            t: started.elapsed().as_secs_f64(),
            rss_mb,
            fds,
            wal_mb: wal_peak as f64 / 1e6,
            cpu_seconds,
        });
        wal_peak = 0;
    }
    Ok(samples)
}

/// The least-squares slope of `points`, per unit of the first coordinate.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// One line of the verdicts: the figure, what it was held to, and whether it held.
#[derive(Debug, PartialEq)]
struct Verdict {
    name: String,
    value: String,
    bound: String,
    ok: bool,
}

fn verdicts(s: &Soak) -> Vec<Verdict> {
    let warm = s.warmup_seconds as f64;
    let after: Vec<&Sample> = s.samples.iter().filter(|x| x.t >= warm).collect();
    let rss: Vec<(f64, f64)> = after.iter().map(|x| (x.t / 600.0, x.rss_mb)).collect();
    let rss_slope = slope(&rss);
    // Connections come and go between samples: the median of the first third after the
    // warm-up against that of the last.
    let third = (after.len() / 3).max(1);
    let fds = |xs: &[&Sample]| {
        crate::report::median(&xs.iter().map(|x| x.fds as f64).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    let fds_start = fds(&after[..third.min(after.len())]);
    let fds_end = fds(&after[after.len().saturating_sub(third)..]);
    let fds_max = after.iter().map(|x| x.fds).max().unwrap_or(0);
    let p99s: Vec<f64> = s.rounds.iter().map(|r| r.p99_ms).collect();
    let p99_max = p99s.iter().copied().fold(0.0, f64::max);
    let p99_median = crate::report::median(&p99s).unwrap_or(0.0);
    let wal_max = s.samples.iter().map(|x| x.wal_mb).fold(0.0, f64::max);
    let rejected: u64 = s.rounds.iter().map(|r| r.requests_rejected).sum();
    let failed: u64 = s.rounds.iter().map(|r| r.requests_failed).sum();
    let rate: Vec<f64> = s.rounds.iter().map(|r| r.events_per_second).collect();
    vec![
        Verdict {
            name: "resident memory's slope after the warm-up".to_owned(),
            value: rss_slope.map_or("—".to_owned(), |v| format!("{v:+.2} MB per 10 min")),
            bound: format!("under {RSS_SLOPE_MB_PER_10_MIN} MB per 10 min"),
            ok: rss_slope.is_some_and(|v| v < RSS_SLOPE_MB_PER_10_MIN),
        },
        Verdict {
            name: "open descriptors after the warm-up".to_owned(),
            value: format!(
                "{fds_start:.0} → {fds_end:.0} (medians of the first and last thirds; largest {fds_max})"
            ),
            bound: "no more at the end".to_owned(),
            ok: !after.is_empty() && fds_end <= fds_start,
        },
        Verdict {
            name: "acknowledged p99, each minute".to_owned(),
            value: format!("median {p99_median:.2} ms, largest {p99_max:.2} ms"),
            bound: format!("at most {ACK_P99_MS} ms"),
            ok: !p99s.is_empty() && p99_max <= ACK_P99_MS,
        },
        Verdict {
            name: "events a second, each minute".to_owned(),
            value: format!(
                "{:.0}–{:.0}",
                rate.iter().copied().fold(f64::INFINITY, f64::min),
                rate.iter().copied().fold(0.0, f64::max)
            ),
            bound: format!("{} (± 5 %)", s.rate),
            ok: !rate.is_empty()
                && rate
                    .iter()
                    .all(|r| (r - s.rate as f64).abs() <= s.rate as f64 * 0.05),
        },
        Verdict {
            name: "the WAL's largest size".to_owned(),
            value: format!("{wal_max:.1} MB"),
            bound: format!("within {:.0} MiB", s.wal_bound_mb),
            ok: wal_max <= s.wal_bound_mb * 1.048_576,
        },
        Verdict {
            name: "requests refused or failed".to_owned(),
            value: format!("{rejected} refused, {failed} failed"),
            bound: "none".to_owned(),
            ok: rejected == 0 && failed == 0,
        },
        Verdict {
            name: "accepted events given an outcome".to_owned(),
            value: format!("{} of {}", s.events_settled, s.events_accepted),
            bound: "all".to_owned(),
            ok: s.events_settled == s.events_accepted,
        },
        Verdict {
            name: "the dashboard's stream".to_owned(),
            value: format!("{} seconds sent", s.stream_events),
            bound: "one a second".to_owned(),
            ok: s.stream_events as f64 >= s.samples.last().map_or(0.0, |x| x.t) * 0.98,
        },
        Verdict {
            name: "the stop".to_owned(),
            value: if s.clean_stop { "clean" } else { "not clean" }.to_owned(),
            bound: "clean (SIGTERM)".to_owned(),
            ok: s.clean_stop,
        },
    ]
}

/// The verdicts as a Markdown table, with what the run was.
fn markdown(s: &Soak, verdicts: &[Verdict]) -> String {
    let e = &s.environment;
    let mut out = format!(
        "`{}` — {} on {} cores ({}), {}, commit {}{}. \
         {} minutes, {} samples, warm-up {} s.\n\n\
         ![The soak: memory, acknowledged p99, WAL and descriptors over time](bench/soak.svg)\n\n\
         | figure | measured | held to | |\n|---|---|---|---|\n",
        s.command,
        e.date,
        e.cores,
        e.cpu_model,
        e.kernel,
        e.commit,
        if e.modified { " (modified)" } else { "" },
        (s.samples.last().map_or(0.0, |x| x.t) / 60.0).round(),
        s.samples.len(),
        s.warmup_seconds,
    );
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            v.name,
            v.value,
            v.bound,
            if v.ok { "ok" } else { "**missed**" }
        );
    }
    out
}

/// A line chart per series, one under another, time across.
fn chart(s: &Soak) -> String {
    const LEFT: f64 = 64.0;
    const WIDTH: f64 = 560.0;
    const HEIGHT: f64 = 90.0;
    const GAP: f64 = 46.0;
    let minutes = |t: f64| t / 60.0;
    let series: Vec<(&str, Vec<(f64, f64)>)> = vec![
        (
            "resident memory, MB",
            s.samples.iter().map(|x| (minutes(x.t), x.rss_mb)).collect(),
        ),
        (
            "acknowledged p99 of each minute, ms",
            s.rounds.iter().map(|r| (minutes(r.t), r.p99_ms)).collect(),
        ),
        (
            "largest WAL of each ten seconds, MB",
            s.samples.iter().map(|x| (minutes(x.t), x.wal_mb)).collect(),
        ),
        (
            "open descriptors",
            s.samples
                .iter()
                .map(|x| (minutes(x.t), x.fds as f64))
                .collect(),
        ),
    ];
    let end = s
        .samples
        .last()
        .map_or(1.0, |x| minutes(x.t))
        .max(f64::MIN_POSITIVE);
    let warm = minutes(s.warmup_seconds as f64);
    let mut body = String::new();
    let mut y = 30.0;
    for (title, points) in &series {
        let top = points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
        let top = if top > 0.0 { top } else { 1.0 };
        let top_y = y + 16.0;
        let px = |t: f64| LEFT + WIDTH * t / end;
        let py = |v: f64| top_y + HEIGHT - HEIGHT * v / top;
        let _ = writeln!(
            body,
            r#"<text x="8" y="{:.0}" font-weight="bold">{title}</text>"#,
            y + 8.0
        );
        let _ = writeln!(
            body,
            r##"<rect x="{LEFT:.0}" y="{top_y:.0}" width="{:.1}" height="{HEIGHT:.0}" fill="#eee"/>"##,
            px(warm) - LEFT
        );
        let _ = writeln!(
            body,
            r##"<path d="M{LEFT:.0} {top_y:.0}V{:.0}H{:.0}" stroke="#222" fill="none"/>"##,
            top_y + HEIGHT,
            LEFT + WIDTH
        );
        for v in [top, 0.0] {
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                py(v) + 4.0,
                crate::report::number(v)
            );
        }
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", px(*t), py(*v)))
            .collect();
        let _ = writeln!(
            body,
            r##"<polyline points="{}" stroke="#4e79a7" stroke-width="1.5" fill="none"/>"##,
            path.join(" ")
        );
        y = top_y + HEIGHT + GAP;
    }
    let _ = writeln!(
        body,
        r#"<text x="{LEFT:.0}" y="{:.0}">0</text><text x="{:.0}" y="{:.0}" text-anchor="end">{end:.0} min (grey: warm-up)</text>"#,
        y - GAP + 18.0,
        LEFT + WIDTH,
        y - GAP + 18.0
    );
    crate::report::document(
        LEFT + WIDTH + 16.0,
        y - GAP + 30.0,
        &format!("Soak: {} events/s acknowledged on commit", s.rate),
        &body,
    )
}

/// What the kept soak renders to: its chart and the `soak` region of docs/reliability.md
/// (nothing when no soak is kept).
pub(crate) fn rendered() -> Result<Vec<(String, String)>> {
    let path = root().join(KEPT);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let soak: Soak =
        serde_json::from_str(&text).with_context(|| format!("{KEPT}: not a soak run"))?;
    let doc = std::fs::read_to_string(root().join(DOC))?;
    let regions = [("soak".to_owned(), markdown(&soak, &verdicts(&soak)))].into();
    Ok(vec![
        (CHART.to_owned(), chart(&soak)),
        (DOC.to_owned(), crate::report::fill(DOC, &doc, &regions)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_the_least_squares_one() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        let flat = slope(&[(0.0, 10.0), (1.0, 11.0), (2.0, 10.0), (3.0, 11.0)]).unwrap_or(9.0);
        assert!((flat - 0.2).abs() < 1e-9, "{flat}");
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    fn soak(rss: &[f64], fds: &[u64], p99: &[f64]) -> Soak {
        Soak {
            command: "cargo xtask soak".to_owned(),
            environment: Environment::here(),
            rate: 10_000,
            warmup_seconds: 25,
            wal_bound_mb: 256.0,
            samples: rss
                .iter()
                .zip(fds)
                .enumerate()
                .map(|(i, (&rss_mb, &fds))| Sample {
                    t: 10.0 * (i + 1) as f64,
                    rss_mb,
                    fds,
                    wal_mb: 3.0,
                    cpu_seconds: i as f64,
                })
                .collect(),
            rounds: p99
                .iter()
                .enumerate()
                .map(|(i, &p99_ms)| Round {
                    t: 60.0 * (i + 1) as f64,
                    events_per_second: 10_010.0,
                    events_accepted: 600_000,
                    requests_rejected: 0,
                    requests_failed: 0,
                    p50_ms: 1.0,
                    p99_ms,
                    max_ms: 9.0,
                })
                .collect(),
            events_accepted: 600_000 * p99.len() as u64,
            events_settled: 600_000 * p99.len() as u64,
            stream_events: 10 * rss.len() as u64,
            clean_stop: true,
        }
    }

    fn missed(s: &Soak) -> Vec<String> {
        verdicts(s)
            .into_iter()
            .filter(|v| !v.ok)
            .map(|v| v.name)
            .collect()
    }

    #[test]
    fn a_steady_run_holds_and_a_creeping_one_does_not() {
        // Memory grows in the warm-up (left out), then holds; descriptors come and go.
        let steady = soak(
            &[10.0, 40.0, 60.0, 60.2, 60.0, 60.1],
            &[20, 30, 31, 33, 31, 31],
            &[2.0, 3.0],
        );
        assert_eq!(missed(&steady), Vec::<String>::new());
        // 0.2 MB every ten seconds is 12 MB per 10 minutes; a descriptor kept per sample.
        let creeping = soak(
            &[60.0, 60.2, 60.4, 60.6, 60.8],
            &[30, 31, 32, 33, 34],
            &[2.0, 6.0],
        );
        assert_eq!(
            missed(&creeping),
            [
                "resident memory's slope after the warm-up",
                "open descriptors after the warm-up",
                "acknowledged p99, each minute"
            ]
        );
        let mut lossy = steady.clone();
        lossy.events_settled -= 1;
        lossy.clean_stop = false;
        assert_eq!(
            missed(&lossy),
            ["accepted events given an outcome", "the stop"]
        );
    }

    #[test]
    fn the_chart_draws_each_series_and_the_table_each_verdict() {
        let s = soak(&[10.0, 40.0, 60.0], &[20, 30, 31], &[2.0, 3.0]);
        let svg = chart(&s);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        let md = markdown(&s, &verdicts(&s));
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 1 + 9);
    }
}
