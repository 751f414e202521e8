//! `cargo xtask bench gate`: the hot path's benchmarks in instructions (crates/zen-bench, under
//! callgrind through gungraun) against the committed baseline; fails when any rises more than
//! [`TOLERANCE_PERCENT`]. `--bless` writes the baseline; `--runs N` runs them N times and reports the
//! spread (they must repeat).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::report::target_dir;

/// The rise in instructions, in percent, past which the gate fails.
pub(crate) const TOLERANCE_PERCENT: u64 = 3;

/// `crates/zen-bench/baseline.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// The commit the counts were taken at.
    pub(crate) commit: String,
    /// Instructions by benchmark (`group::function.id`).
    pub(crate) instructions: BTreeMap<String, u64>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GateArgs {
    /// Write the counts as the new baseline (say why in the commit).
    #[arg(long)]
    bless: bool,
    /// Only the benchmarks matching this gungraun pattern (`hot_path::normalize::*`).
    #[arg(long)]
    filter: Option<String>,
    /// Run them this many times and report the spread, too.
    #[arg(long, default_value_t = 1)]
    runs: usize,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

fn baseline_path() -> PathBuf {
    root().join("crates/zen-bench/baseline.json")
}

pub(crate) fn run(args: &GateArgs) -> Result<()> {
    let mut runs = Vec::new();
    for i in 0..args.runs.max(1) {
        if args.runs > 1 {
            eprintln!("run {} of {}", i + 1, args.runs);
        }
        runs.push(measure(args.filter.as_deref())?);
    }
    if runs.len() > 1 {
        print!("{}", spread_table(&runs));
    }
    let new = runs.swap_remove(0);
    if args.bless {
        let commit = git(&["rev-parse", "HEAD"])?;
        let baseline = Baseline {
            commit,
            instructions: new,
        };
        let text = serde_json::to_string_pretty(&baseline)? + "\n";
        std::fs::write(baseline_path(), text).context("writing the baseline")?;
        println!("wrote {}", baseline_path().display());
        return Ok(());
    }
    let text = std::fs::read_to_string(baseline_path()).context("reading the baseline")?;
    let baseline: Baseline = serde_json::from_str(&text).context("the baseline")?;
    let (table, failures) = compare(&baseline, &new, args.filter.is_some());
    println!("baseline from {}\n{table}", baseline.commit);
    if !failures.is_empty() {
        bail!(
            "instructions rose more than {TOLERANCE_PERCENT} % (or a benchmark is new or gone): \
             {}. If that is meant, `cargo xtask bench gate --bless` and say why in the commit",
            failures.join(", ")
        );
    }
    Ok(())
}

/// Runs the benchmarks once; instructions by name.
fn measure(filter: Option<&str>) -> Result<BTreeMap<String, u64>> {
    let out = target_dir().join("gungraun/zen-bench/hot_path");
    // Summaries of an earlier run must not stand in for benchmarks that did not run.
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.env(PRELOAD_ENV, fixed_random()?);
    cmd.current_dir(root()).args([
        "bench",
        "--package",
        "zen-bench",
        "--bench",
        "hot_path",
        "--",
    ]);
    cmd.args(filter);
    cmd.arg("--save-summary=json");
    let status = cmd
        .status()
        .context("running cargo bench (is valgrind installed?)")?;
    if !status.success() {
        bail!("the benchmarks failed: {status}");
    }
    let mut counts = BTreeMap::new();
    for summary in summaries(&out)? {
        let text = std::fs::read_to_string(&summary)?;
        let (name, ir) = instructions(&text).with_context(|| summary.display().to_string())?;
        counts.insert(name, ir);
    }
    if counts.is_empty() {
        bail!("no benchmark ran (filter {filter:?})");
    }
    Ok(counts)
}

/// The variable zen-bench reads the preload library's path from (`zen_bench::PRELOAD_ENV`).
const PRELOAD_ENV: &str = "ZEN_BENCH_PRELOAD";

/// `crates/zen-bench/fixed_random.c` built as a shared library (with the C compiler the Rust
/// toolchain links with); its path.
fn fixed_random() -> Result<PathBuf> {
    let source = root().join("crates/zen-bench/fixed_random.c");
    let library = target_dir().join("zen-bench/libfixed_random.so");
    if let Some(dir) = library.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .context("running cc to build fixed_random.c")?;
    if !status.success() {
        bail!("building {} failed: {status}", source.display());
    }
    Ok(library)
}

/// Every `summary.json` under `dir`.
fn summaries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "summary.json") {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// A gungraun summary's benchmark name (`group::function.id`) and callgrind's instruction
/// count for it, all threads.
fn instructions(summary: &str) -> Result<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(summary)?;
    let path = v["module_path"].as_str().context("no module_path")?;
    let id = v["id"].as_str().context("no id")?;
    let name = format!("{}.{id}", path.trim_start_matches("hot_path::"));
    let profiles = v["profiles"].as_array().context("no profiles")?;
    let ir = profiles
        .iter()
        .find(|p| p["tool"] == "Callgrind")
        .and_then(|p| p["data"]["total"]["metrics"]["Ir"]["values"]["new"].as_u64())
        .context("no callgrind instruction count")?;
    Ok((name, ir))
}

/// The table of old, new and the change; and what fails. With `partial`, benchmarks of the
/// baseline that did not run are left out rather than called gone.
fn compare(
    baseline: &Baseline,
    new: &BTreeMap<String, u64>,
    partial: bool,
) -> (String, Vec<String>) {
    let mut table = String::from("| benchmark | baseline | now | change |\n|---|---:|---:|---:|\n");
    let mut failures = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        baseline.instructions.keys().chain(new.keys()).collect();
    for name in names {
        let (old, now) = (baseline.instructions.get(name), new.get(name));
        let change = match (old, now) {
            (Some(&o), Some(&n)) => {
                let change = n as f64 / o as f64 - 1.0;
                if u128::from(n) * 100 > u128::from(o) * u128::from(100 + TOLERANCE_PERCENT) {
                    failures.push(format!("{name} {:+.2} %", change * 100.0));
                }
                format!("{:+.2} %", change * 100.0)
            }
            (None, Some(_)) => {
                failures.push(format!("{name} is not in the baseline"));
                "new".to_owned()
            }
            (Some(_), None) if partial => continue,
            (Some(_), None) => {
                failures.push(format!("{name} no longer runs"));
                "gone".to_owned()
            }
            (None, None) => continue,
        };
        let cell = |v: Option<&u64>| v.map_or("—".to_owned(), u64::to_string);
        table += &format!("| {name} | {} | {} | {change} |\n", cell(old), cell(now));
    }
    (table, failures)
}

/// Each benchmark's counts over the runs, and the spread: (max − min) ÷ min.
fn spread_table(runs: &[BTreeMap<String, u64>]) -> String {
    let mut table = String::from("| benchmark | runs | spread |\n|---|---|---:|\n");
    for name in runs[0].keys() {
        let counts: Vec<u64> = runs.iter().filter_map(|r| r.get(name).copied()).collect();
        let (min, max) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        let list: Vec<String> = counts.iter().map(u64::to_string).collect();
        let spread = (max - min) as f64 / min.max(1) as f64 * 100.0;
        table += &format!("| {name} | {} | {spread:.3} % |\n", list.join(" / "));
    }
    table
}

fn git(args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(root())
        .args(args)
        .output()
        .context("running git")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn a_rise_past_the_tolerance_a_new_and_a_gone_benchmark_fail() {
        let baseline = Baseline {
            commit: "abc".to_owned(),
            instructions: counts(&[("a", 1000), ("b", 1000), ("gone", 5)]),
        };
        let new = counts(&[("a", 1030), ("b", 1031), ("new", 7)]);
        let (table, failures) = compare(&baseline, &new, false);
        assert_eq!(
            failures,
            [
                "b +3.10 %",
                "gone no longer runs",
                "new is not in the baseline"
            ]
        );
        assert!(table.contains("| a | 1000 | 1030 | +3.00 % |"), "{table}");
        // Run with a filter, benchmarks that did not run are not called gone.
        let (_, failures) = compare(&baseline, &counts(&[("a", 900)]), true);
        assert!(failures.is_empty(), "{failures:?}");
    }

    #[test]
    fn a_summary_gives_its_name_and_instructions() {
        let summary = r#"{"module_path": "hot_path::normalize::falco", "id": "falco_one",
            "profiles": [{"tool": "Callgrind", "data": {"total": {"metrics":
            {"Ir": {"values": {"new": 51425}}}}}}]}"#;
        assert_eq!(
            instructions(summary).unwrap(),
            ("normalize::falco.falco_one".to_owned(), 51425)
        );
        assert!(instructions(r#"{"module_path": "x", "id": "y", "profiles": []}"#).is_err());
    }

    /// The gate against a build whose `falco_one` does its work twice (`ZEN_BENCH_SLOW`): it
    /// must fail. Needs valgrind and gungraun-runner (`.ci/run` installs both).
    #[test]
    fn the_gate_fails_on_a_slowed_build() {
        let have = |cmd: &str, arg: &str| Command::new(cmd).arg(arg).output().is_ok();
        if !have("valgrind", "--version") || !have("gungraun-runner", "--version") {
            let msg = "valgrind or gungraun-runner missing";
            assert!(std::env::var_os("ZEN_REQUIRE_EXTERNAL").is_none(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return;
        }
        let filter = "hot_path::normalize::falco*";
        let slowed = Command::new(env!("CARGO"))
            .current_dir(root())
            .env("ZEN_BENCH_SLOW", "1")
            .args([
                "run",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "bench",
                "gate",
            ])
            .args(["--filter", filter])
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&slowed.stdout),
            String::from_utf8_lossy(&slowed.stderr),
        );
        assert!(
            !slowed.status.success(),
            "the gate passed a build doing twice the work:\n{out}"
        );
        // Failed for the slowed benchmark's rise, not for something else.
        assert!(err.contains("normalize::falco.falco_one +"), "{out}\n{err}");
    }
}
