//! `cargo xtask fuzz`: every fuzz target of `fuzz/` (cargo-fuzz, libFuzzer, AddressSanitizer
//! with its leak checker unless `--sanitizer none`) for a time or a number of executions each,
//! two at a time, and a table of what each did. Each target's corpus grows in the target directory
//! (`fuzz/corpus/<target>`), seeded from `fuzz/seeds/<target>` and, for the format readers,
//! the readers' own test payloads; a crash, hang (10 s on one input) or leak fails the run and
//! leaves its input under `fuzz/artifacts/<target>/` in the target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::report;

#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// How long each target runs at most, e.g. `20s`, `10m`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    time: Duration,
    /// Executions each target stops after (none: only the time).
    #[arg(long)]
    runs: Option<u64>,
    /// Targets run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// `address` (AddressSanitizer and its leak checker), or `none` for several times the
    /// executions a second on long campaigns: the workspace denies unsafe code, so what only
    /// AddressSanitizer sees is in dependencies' unsafe code, which the CI smoke and the
    /// sanitized campaigns cover.
    #[arg(long, default_value = "address", value_parser = ["address", "none"])]
    sanitizer: String,
    /// Only these targets (all when none).
    targets: Vec<String>,
}

/// `20s`, `10m`, `4h` (a bare number is seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s}: expected a number and s, m or h"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s}: expected a number and s, m or h")),
    }
}

/// What one target did.
#[derive(Debug)]
struct Outcome {
    target: String,
    executions: u64,
    seconds: u64,
    corpus: usize,
    /// None when it finished without a finding; else the end of libFuzzer's report.
    failure: Option<String>,
}

/// The readers' own test payloads, which seed each format's target.
fn format_data(target: &str) -> Option<&'static str> {
    Some(match target {
        "falco" => "falco",
        "audit" => "audit",
        "trivy" => "trivy",
        "kyverno" => "kyverno",
        "kube_bench" => "kube-bench",
        "checkov" => "checkov",
        "generic" => "generic",
        _ => return None,
    })
}

pub(crate) fn run(args: &FuzzArgs) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let available = cargo_fuzz(&root, &["list"])?;
    let all: Vec<String> = String::from_utf8_lossy(&available.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let targets: Vec<String> = if args.targets.is_empty() {
        all.clone()
    } else {
        for t in &args.targets {
            if !all.contains(t) {
                bail!("no fuzz target {t}; there are {}", all.join(", "));
            }
        }
        args.targets.clone()
    };
    let built = cargo_fuzz(&root, &["build", "--sanitizer", &args.sanitizer])?;
    if !built.status.success() {
        bail!(
            "building the fuzz targets failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let work = report::target_dir().join("fuzz");
    let queue = std::sync::Mutex::new(targets.iter());
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                while let Some(target) = queue.lock().ok().and_then(|mut q| q.next().cloned()) {
                    let outcome = one(&root, &work, &target, args);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push(outcome);
                    }
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_default();
    outcomes.sort_by(|a, b| a.target.cmp(&b.target));
    println!("\n| target | executions | seconds | executions/s | corpus | result |");
    println!("|---|---:|---:|---:|---:|---|");
    let mut failed = Vec::new();
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            o.target,
            o.executions,
            o.seconds,
            o.executions / o.seconds.max(1),
            o.corpus,
            match (&o.failure, args.sanitizer.as_str()) {
                (Some(_), _) => "FAILED",
                (None, "none") => "no crash or hang (no sanitizer)",
                (None, _) => "no crash, hang or leak",
            }
        );
        if let Some(f) = &o.failure {
            failed.push(format!("{}:\n{f}", o.target));
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed:\n{}", failed.join("\n\n"));
    }
    Ok(())
}

/// `cargo +nightly fuzz <args>` in the project, its output kept.
fn cargo_fuzz(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new("cargo")
        .arg("+nightly")
        .arg("fuzz")
        .args(args)
        .current_dir(root)
        // The nightly toolchain's own cargo, not the one running xtask.
        .env_remove("RUSTC")
        .env_remove("CARGO")
        // Thirteen binaries, each linked with link-time optimisation across every dependency,
        // took most of an hour to build; without, minutes. Coverage does not need it.
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .stdin(Stdio::null())
        .output()
        .context("running cargo +nightly fuzz (cargo install cargo-fuzz; rustup toolchain install nightly)")?;
    if String::from_utf8_lossy(&out.stderr).contains("no such command") {
        bail!("cargo-fuzz is not installed: cargo install --locked cargo-fuzz");
    }
    Ok(out)
}

/// Runs `target` as `args` say.
fn one(root: &Path, work: &Path, target: &str, args: &FuzzArgs) -> Outcome {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    let mut dirs: Vec<PathBuf> = vec![corpus.clone(), root.join("fuzz/seeds").join(target)];
    if let Some(data) = format_data(target) {
        dirs.push(root.join("crates/zen-model/tests/data").join(data));
    }
    let mut outcome = Outcome {
        target: target.to_owned(),
        executions: 0,
        seconds: 0,
        corpus: 0,
        failure: None,
    };
    if let Err(e) =
        std::fs::create_dir_all(&corpus).and_then(|()| std::fs::create_dir_all(&artifacts))
    {
        outcome.failure = Some(format!("making {}: {e}", corpus.display()));
        return outcome;
    }
    let mut cmd: Vec<String> = vec![
        "run".into(),
        "--sanitizer".into(),
        args.sanitizer.clone(),
        target.into(),
    ];
    cmd.extend(
        dirs.iter()
            .filter(|d| d.is_dir())
            .map(|d| d.display().to_string()),
    );
    cmd.extend([
        "--".into(),
        format!("-max_total_time={}", args.time.as_secs().max(1)),
        "-timeout=10".into(),
        "-rss_limit_mb=2048".into(),
        "-max_len=65536".into(),
        "-print_final_stats=1".into(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ]);
    if let Some(runs) = args.runs {
        cmd.push(format!("-runs={runs}"));
    }
    eprintln!("fuzzing {target}");
    let started = std::time::Instant::now();
    let out = cargo_fuzz(root, &cmd.iter().map(String::as_str).collect::<Vec<_>>());
    outcome.seconds = started.elapsed().as_secs();
    outcome.corpus = std::fs::read_dir(&corpus).map_or(0, Iterator::count);
    match out {
        Ok(out) => {
            let log = String::from_utf8_lossy(&out.stderr);
            outcome.executions = log
                .lines()
                .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            if !out.status.success() {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                outcome.failure = Some(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
        Err(e) => outcome.failure = Some(format!("{e:#}")),
    }
    outcome
}
