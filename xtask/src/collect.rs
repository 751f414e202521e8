//! `cargo xtask bench collect`: the cost of zen-watcher's collectors beside node_exporter's,
//! in one run on this machine, written as a report (docs/benchmarks.md shows it).
//!
//! Each setting runs the release daemon (collection at 1 s, then 100 ms) and Debian's
//! `prometheus-node-exporter` side by side for a fixed window, both scraped once a second,
//! first on the host, then inside a network namespace of the benchmark's own holding 300
//! dummy interfaces, or bridges where the kernel has no `dummy` (removed afterwards). CPU comes from the kernel: the collector threads'
//! `schedstat` run time (nanoseconds), and each process' `utime + stime`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::e2e::{build_daemon, proc_figures, start};
use crate::report::{self, Chart, Environment, Figure, Report, Row, Table};

/// How long each setting is measured.
const WINDOW: Duration = Duration::from_secs(30);
const INTERFACES: usize = 300;
/// The collection intervals measured: as configured, and in seconds.
const INTERVALS: [(&str, f64); 2] = [("1s", 1.0), ("100ms", 0.1)];
const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// Run time (seconds) of `pid`'s threads whose name `keep` accepts, from
/// `/proc/<pid>/task/*/schedstat`. The kernel keeps 15 bytes of a name: `zen-collect-slow`
/// reads as `zen-collect-slo`.
fn thread_seconds(pid: u32, keep: impl Fn(&str) -> bool) -> Result<f64> {
    let mut seconds = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = task?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !keep(comm.trim_end()) {
            continue;
        }
        seconds += schedstat_seconds(&dir.join("schedstat"));
    }
    Ok(seconds)
}

/// The run time (seconds) in a `schedstat` file; 0 for a thread gone meanwhile.
fn schedstat_seconds(path: &Path) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    ns as f64 / 1e9
}

/// The host files the daemon's per-second thread reads (its containers' aside), from the
/// daemon's own view (`net/*` and `statm` under `/proc/<pid>`, so in its network namespace),
/// each with how many rounds apart it reads it (`zen_collect::host`'s cadence).
fn floor_files(pid: u32) -> Vec<(String, u64)> {
    use zen_collect::host::{LOAD_EVERY, SLOW_EVERY, SLOW_FILES};
    let global = [
        "stat",
        "loadavg",
        "meminfo",
        "vmstat",
        "diskstats",
        "pressure/cpu",
        "pressure/memory",
        "pressure/io",
        "sys/fs/file-nr",
    ];
    let own = [
        "net/dev",
        "net/snmp",
        "net/netstat",
        "net/snmp6",
        "net/sockstat",
        "net/sockstat6",
        "statm",
    ];
    let every = |f: &str| match f {
        "loadavg" => LOAD_EVERY,
        f if SLOW_FILES.contains(&f) => SLOW_EVERY,
        _ => 1,
    };
    let global = global.iter().map(|f| (format!("/proc/{f}"), every(f)));
    global
        .chain(own.iter().map(|f| (format!("/proc/{pid}/{f}"), every(f))))
        .collect()
}

/// The floor: a thread that only reads `files` to their end at their cadence, every
/// `interval`, kept open, nothing parsed or kept, until `stop`; answers its run time
/// (schedstat) and rounds.
fn floor(
    files: Vec<(String, u64)>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(f64, f64)>> {
    use std::os::unix::fs::FileExt;
    std::thread::spawn(move || {
        let open: Vec<(std::fs::File, u64)> = files
            .iter()
            .map(|(f, every)| Ok((std::fs::File::open(f).with_context(|| f.clone())?, *every)))
            .collect::<Result<_>>()?;
        let run_time = || schedstat_seconds(Path::new("/proc/thread-self/schedstat"));
        let mut page = vec![0u8; 4096];
        let before = run_time();
        let mut rounds = 0_u64;
        while !stop.load(Ordering::Relaxed) {
            for (file, every) in &open {
                if !rounds.is_multiple_of(*every) {
                    continue;
                }
                let mut at = 0;
                while let Ok(n @ 1..) = file.read_at(&mut page, at) {
                    at += n as u64;
                }
            }
            rounds += 1;
            std::thread::sleep(interval);
        }
        Ok((run_time() - before, rounds as f64))
    })
}

/// A network namespace, deleted on drop, and the kind of its interfaces.
struct Netns(String, &'static str);

impl Netns {
    /// `interfaces` dummy interfaces, or bridges where this kernel has no `dummy` module
    /// (both are counted in `/proc/net/dev` and sysfs alike).
    fn create(interfaces: usize) -> Result<Netns> {
        let name = format!("zen-bench-{}", std::process::id());
        succeed(Command::new("ip").args(["netns", "add", &name]))?;
        let mut ns = Netns(name, "dummy");
        let probe = Command::new("ip")
            .args(["-n", &ns.0, "link", "add", "zprobe", "type", "dummy"])
            .stderr(Stdio::null())
            .status()?;
        if probe.success() {
            succeed(Command::new("ip").args(["-n", &ns.0, "link", "delete", "zprobe"]))?;
        } else {
            ns.1 = "bridge";
        }
        let mut batch = String::from("link set lo up\n");
        for i in 0..interfaces {
            batch.push_str(&format!(
                "link add zd{i} type {}\nlink set zd{i} up\n",
                ns.1
            ));
        }
        let mut child = Command::new("ip")
            .args(["-n", &ns.0, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .context("ip -batch")?;
        std::io::Write::write_all(&mut child.stdin.take().context("stdin")?, batch.as_bytes())?;
        if !child.wait()?.success() {
            bail!("creating {interfaces} dummy interfaces in {} failed", ns.0);
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn succeed(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?}: {status}");
    }
    Ok(())
}

fn prefixed(prefix: &[String], program: &str) -> Command {
    let mut all: Vec<&str> = prefix.iter().map(String::as_str).collect();
    all.push(program);
    let mut cmd = Command::new(all[0]);
    cmd.args(&all[1..]);
    cmd
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One setting's figures.
struct Figures {
    /// `host`, or `namespace` (the benchmark's own, with its interfaces).
    place: &'static str,
    interfaces: String,
    interval: &'static str,
    window_seconds: f64,
    samples: f64,
    collector_seconds: f64,
    fast_thread_seconds: f64,
    /// Reading the same host files raw, no parsing, per round.
    floor_per_round: f64,
    daemon_seconds: f64,
    node_exporter_seconds: f64,
    daemon_rss_mb: f64,
    node_exporter_rss_mb: f64,
}

impl Figures {
    /// This setting's row of the report: CPU in % of one core over the window.
    fn row(&self) -> Row {
        let pct = |s: f64| 100.0 * s / self.window_seconds;
        let one = |name: &str, unit: &str, value: f64| Figure::of(name, unit, &[value]);
        Row {
            name: format!(
                "{}, every {}: {}",
                self.place, self.interval, self.interfaces
            ),
            figures: vec![
                one("collectors", "% of a core", pct(self.collector_seconds)),
                one("daemon", "% of a core", pct(self.daemon_seconds)),
                one(
                    "node_exporter",
                    "% of a core",
                    pct(self.node_exporter_seconds),
                ),
                one(
                    "node_exporter ÷ collectors",
                    "×",
                    self.node_exporter_seconds / self.collector_seconds.max(1e-9),
                ),
                one(
                    "per sample",
                    "µs",
                    1e6 * self.fast_thread_seconds / self.samples,
                ),
                one("floor per sample", "µs", 1e6 * self.floor_per_round),
                one("daemon RSS", "MB", self.daemon_rss_mb),
                one("node_exporter RSS", "MB", self.node_exporter_rss_mb),
            ],
        }
    }
}

fn measure(
    binary: &Path,
    prefix: &[String],
    (place, interfaces): (&'static str, String),
    (interval, interval_s): (&'static str, f64),
) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("zen.yaml");
    std::fs::write(&config, format!("collect:\n  interval: {interval}\n"))?;
    let prefix_str: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let (daemon, addr) = start(
        &prefix_str,
        binary,
        &dir.path().join("data"),
        &["--config", config.to_str().context("config path")?],
    )?;
    let daemon = KillOnDrop(daemon);
    let ne_port = 19_100 + (std::process::id() % 500) as u16;
    let ne_addr = format!("127.0.0.1:{ne_port}");
    let node_exporter = KillOnDrop(
        prefixed(prefix, NODE_EXPORTER)
            .arg(format!("--web.listen-address={ne_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {NODE_EXPORTER} (Debian: prometheus-node-exporter)")
            })?,
    );
    // Both scraped once a second, from inside the namespace.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (stop, prefix) = (stop.clone(), prefix.to_vec());
        let urls = [
            format!("http://{addr}/metrics"),
            format!("http://{ne_addr}/metrics"),
        ];
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let next = Instant::now() + Duration::from_secs(1);
                for url in &urls {
                    let _ = prefixed(&prefix, "curl")
                        .args(["-s", "-o", "/dev/null", url])
                        .status();
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    // Past start-up (the first discovery, filesystems and inventory).
    std::thread::sleep(Duration::from_secs(5));
    let (d, n) = (daemon.0.id(), node_exporter.0.id());
    let floor = floor(
        floor_files(d),
        Duration::from_secs_f64(interval_s),
        stop.clone(),
    );
    let read = || -> Result<[f64; 4]> {
        Ok([
            thread_seconds(d, |t| t.starts_with("zen-collect") || t == "zen-statvfs")?,
            thread_seconds(d, |t| t == "zen-collect")?,
            proc_figures(d)?.2,
            proc_figures(n)?.2,
        ])
    };
    let started = Instant::now();
    let before = read()?;
    std::thread::sleep(WINDOW);
    let after = read()?;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = scraper.join();
    let (floor_seconds, floor_rounds) = floor
        .join()
        .map_err(|_| anyhow::anyhow!("the floor thread panicked"))??;
    Ok(Figures {
        floor_per_round: floor_seconds / floor_rounds.max(1.0),
        place,
        interfaces,
        interval,
        window_seconds: seconds,
        samples: seconds / interval_s,
        collector_seconds: after[0] - before[0],
        fast_thread_seconds: after[1] - before[1],
        daemon_seconds: after[2] - before[2],
        node_exporter_seconds: after[3] - before[3],
        daemon_rss_mb: proc_figures(d)?.0,
        node_exporter_rss_mb: proc_figures(n)?.0,
    })
    .inspect(|f| {
        let row = f.row();
        let figures: Vec<String> = row
            .figures
            .iter()
            .map(|f| format!("{} {:.4} {}", f.name, f.value, f.unit))
            .collect();
        println!("{}: {}", row.name, figures.join(", "));
    })
}

pub(crate) fn run() -> Result<()> {
    let environment = Environment::here();
    let binary = build_daemon()?;
    if Command::new(NODE_EXPORTER)
        .arg("--version")
        .output()
        .is_err()
    {
        bail!(
            "{NODE_EXPORTER} is not installed (Debian: apt-get install prometheus-node-exporter)"
        );
    }
    let interfaces_here = std::fs::read_to_string("/proc/net/dev")?.lines().count() - 2;
    let mut all = Vec::new();
    for interval in INTERVALS {
        all.push(measure(
            &binary,
            &[],
            ("host", format!("{interfaces_here} interfaces")),
            interval,
        )?);
    }
    let ns = Netns::create(INTERFACES)?;
    let prefix: Vec<String> = ["ip", "netns", "exec", &ns.0].map(str::to_owned).to_vec();
    for interval in INTERVALS {
        let interfaces = format!(
            "{} interfaces ({INTERFACES} {} and lo)",
            INTERFACES + 1,
            ns.1
        );
        all.push(measure(
            &binary,
            &prefix,
            ("namespace", interfaces),
            interval,
        )?);
    }
    drop(ns);
    report::write(&Report {
        kind: "collect".to_owned(),
        command: "cargo xtask bench collect".to_owned(),
        environment,
        tables: vec![Table {
            component: "collect".to_owned(),
            name: "collectors".to_owned(),
            spread: format!("one window of {} s per setting", WINDOW.as_secs()),
            chart: Chart::PerRow,
            rows: all.iter().map(Figures::row).collect(),
        }],
    })?;
    Ok(())
}
