//! Project automation, run as `cargo xtask <task>`. Tasks call cargo and other tools; they hold
//! no product logic.

mod collect;
mod e2e;
mod gate;
mod generate;
mod loadgen;

use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate every generated file (dashboards, docs/metrics.md, docs/formats.md).
    Gen {
        /// Change nothing; fail when a committed file is stale.
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the Grafana dashboards only.
    GenDashboards {
        /// Change nothing; fail when a committed dashboard is stale.
        #[arg(long)]
        check: bool,
    },
    /// Send realistic mixed traffic to a zen-watcher on this machine and report what happened.
    Loadgen(loadgen::LoadgenArgs),
    /// Run the criterion benchmarks (all crates, or the named ones) in release mode; or, as
    /// `cargo xtask bench e2e`, the release daemon under load, and as `cargo xtask bench collect`,
    /// the collectors beside node_exporter; both recorded in docs/benchmarks.md. As `cargo xtask
    /// bench gate`, the hot path in instructions against the committed baseline; as `cargo xtask
    /// bench compare A B`, the e2e scenarios on two daemon binaries, alternated.
    ///
    /// Extra arguments after `--` go to criterion, e.g. `cargo xtask bench -p zen-model -- falco`.
    Bench {
        /// `e2e` for the end-to-end benchmark of the daemon; `collect` for the collectors'
        /// cost beside node_exporter's; `gate` for the instruction counts' regression gate.
        #[arg(value_parser = ["e2e", "collect", "gate", "compare"])]
        which: Option<String>,
        /// `compare`: the two daemon binaries, A then B.
        builds: Vec<std::path::PathBuf>,
        #[command(flatten)]
        gate: gate::GateArgs,
        /// Benchmark only these packages.
        #[arg(short, long = "package")]
        packages: Vec<String>,
        /// `e2e`, `compare`: rounds to run (of each build), each on a fresh daemon.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Arguments passed to criterion.
        #[arg(last = true)]
        criterion: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Gen { check } => report(generate::run(generate::Set::All, check)?, check),
        Task::GenDashboards { check } => {
            report(generate::run(generate::Set::Dashboards, check)?, check)
        }
        Task::Loadgen(args) => {
            let report = loadgen::run(&args)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Task::Bench {
            which: Some(which), ..
        } if which == "collect" => collect::run(),
        Task::Bench {
            which: Some(which),
            gate,
            ..
        } if which == "gate" => gate::run(&gate),
        Task::Bench {
            which: Some(which),
            builds,
            rounds,
            ..
        } if which == "compare" => match builds.as_slice() {
            [a, b] => e2e::compare(a, b, rounds),
            _ => bail!("bench compare takes two daemon binaries, A and B"),
        },
        Task::Bench {
            which: Some(_),
            rounds,
            ..
        } => e2e::run(rounds),
        Task::Bench {
            which: None,
            packages,
            criterion,
            ..
        } => {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.arg("bench");
            if packages.is_empty() {
                // zen-bench's benchmarks count instructions under callgrind: `bench gate`.
                cmd.args(["--workspace", "--exclude", "zen-bench"]);
            }
            for p in &packages {
                cmd.args(["--package", p]);
            }
            cmd.arg("--").args(&criterion);
            let status = cmd.status().context("running cargo bench")?;
            if !status.success() {
                bail!("cargo bench failed: {status}");
            }
            Ok(())
        }
    }
}

fn report(changed: Vec<String>, check: bool) -> Result<()> {
    if changed.is_empty() {
        println!("generated files are up to date");
    } else if !check {
        for path in changed {
            println!("wrote {path}");
        }
    }
    Ok(())
}
