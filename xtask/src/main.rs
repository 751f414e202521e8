//! Project automation, run as `cargo xtask <task>`. Tasks call cargo and other tools; they hold
//! no product logic.

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
    /// Run the criterion benchmarks (all crates, or the named ones) in release mode.
    ///
    /// Extra arguments after `--` go to criterion, e.g. `cargo xtask bench -p zen-model -- falco`.
    Bench {
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
        Task::Bench {
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
