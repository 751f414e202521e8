//! Project automation, run as `cargo xtask <task>`. Tasks call cargo and other tools; they hold
//! no product logic.

mod e2e;
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
    /// Send realistic mixed traffic to a zen-watcher on this machine and report what happened.
    Loadgen(loadgen::LoadgenArgs),
    /// Run the criterion benchmarks (all crates, or the named ones) in release mode; or, as
    /// `cargo xtask bench e2e`, the release daemon under load, recorded in docs/benchmarks.md.
    ///
    /// Extra arguments after `--` go to criterion, e.g. `cargo xtask bench -p zen-model -- falco`.
    Bench {
        /// `e2e` for the end-to-end benchmark of the daemon.
        #[arg(value_parser = ["e2e"])]
        which: Option<String>,
        /// Benchmark only these packages.
        #[arg(short, long = "package")]
        packages: Vec<String>,
        /// Arguments passed to criterion.
        #[arg(last = true)]
        criterion: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Loadgen(args) => {
            let report = loadgen::run(&args)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Task::Bench { which: Some(_), .. } => e2e::run(),
        Task::Bench {
            which: None,
            packages,
            criterion,
        } => {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.arg("bench");
            if packages.is_empty() {
                cmd.arg("--workspace");
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
