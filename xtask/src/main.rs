//! Project automation, run as `cargo xtask <task>`. Tasks call cargo and other tools; they hold
//! no product logic.

mod collect;
mod criterion;
mod e2e;
mod fuzz;
mod gate;
mod generate;
mod kube;
mod loadgen;
mod report;
mod scale;
mod soak;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate every generated file (dashboards, docs/metrics.md, docs/formats.md, the
    /// rules and CRDs, the benchmark reports' tables and charts, the shell completions and the
    /// manual page).
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
    /// Run every fuzz target (cargo-fuzz on the nightly toolchain) for a time or a number of
    /// executions each, and print what each did.
    Fuzz(fuzz::FuzzArgs),
    /// Hold the release daemon at a steady acknowledged load for a long time (30 minutes by
    /// default) with the dashboard's stream open; keep the run in docs/bench/soak.json and say
    /// whether memory, descriptors, latency and the WAL held.
    Soak(soak::SoakArgs),
    /// Send realistic mixed traffic to a zen-watcher on this machine and report what happened.
    Loadgen(loadgen::LoadgenArgs),
    /// Run the criterion benchmarks (all crates, or the named ones) in release mode; or, as
    /// `cargo xtask bench e2e`, the release daemon under load, and as `cargo xtask bench collect`,
    /// the collectors beside node_exporter. Each writes a JSON report to target/bench-reports/;
    /// `cargo xtask bench report` renders the newest into docs/benchmarks.md and docs/bench/.
    /// As `cargo xtask bench gate`, the hot path in instructions against the committed baseline;
    /// as `cargo xtask bench compare A B`, the e2e scenarios on two builds (daemon binaries or
    /// commits), alternated.
    ///
    /// Extra arguments after `--` go to criterion, e.g. `cargo xtask bench -p zen-model -- falco`.
    Bench {
        /// `e2e` for the end-to-end benchmark of the daemon; `collect` for the collectors'
        /// cost beside node_exporter's; `kube` for Kubernetes mode against a fake API server;
        /// `postgres` for SQLite and PostgreSQL side by side, and 1–3 daemons sharing
        /// PostgreSQL; `gate` for the instruction counts' regression gate;
        /// `compare` for two builds side by side; `report` to render the reports.
        #[arg(value_parser = ["e2e", "collect", "kube", "postgres", "gate", "compare", "report"])]
        which: Option<String>,
        /// `compare`: the two builds, A then B: daemon binaries, or commits (built in a worktree).
        builds: Vec<String>,
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
        Task::Gen { check } => {
            let mut stale = generate::run(generate::Set::All, check)?;
            stale.extend(generate::run(generate::Set::Cli, check)?);
            report(stale, check)
        }
        Task::GenDashboards { check } => {
            report(generate::run(generate::Set::Dashboards, check)?, check)
        }
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Soak(args) => soak::run(&args),
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
            rounds,
            ..
        } if which == "kube" => kube::run(rounds),
        Task::Bench {
            which: Some(which),
            rounds,
            ..
        } if which == "postgres" => scale::run(rounds),
        Task::Bench {
            which: Some(which), ..
        } if which == "report" => {
            for component in report::keep_latest()? {
                println!("kept the newest report of {component}");
            }
            report(generate::run(generate::Set::Reports, false)?, false)
        }
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
            _ => bail!("bench compare takes two builds, A and B: daemon binaries or commits"),
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
        } => criterion::run(&packages, &criterion),
    }
}

fn report(changed: Vec<String>, check: bool) -> Result<()> {
    if changed.is_empty() {
        println!("generated files are up to date");
    } else if !check {
        for path in changed {
            println!("updated {path}");
        }
    }
    Ok(())
}
