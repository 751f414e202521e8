//! The ways zen-watcher is installed, checked as far as this machine can: the systemd unit
//! verified and its sandbox rated by `systemd-analyze`, the container image's Dockerfile
//! scanned by Checkov and built with the command CI builds with, the shell completions and
//! the manual page fresh from the clap definitions, and `--version` naming the commit. No
//! Docker engine or systemd instance runs here: the image is not built, nor the unit started.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::process::Command;

const DAEMON: &str = env!("CARGO_BIN_EXE_zen-watcher");
/// The one release build command: the Dockerfile's, and the one `.ci/run` runs.
const RELEASE_BUILD: &str = "cargo build --release --locked -p zen-watcher";

fn says(args: &[&str]) -> String {
    let out = Command::new(DAEMON).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn completions_and_the_manual_page_are_fresh() {
    for (args, path) in [
        (&["man"][..], "deploy/man/zen-watcher.1"),
        (
            &["completions", "bash"],
            "deploy/completions/zen-watcher.bash",
        ),
        (&["completions", "zsh"], "deploy/completions/_zen-watcher"),
        (
            &["completions", "fish"],
            "deploy/completions/zen-watcher.fish",
        ),
    ] {
        assert!(
            says(args) == read(path),
            "{path} is stale: run `cargo xtask gen` and commit it"
        );
    }
    let man = read("deploy/man/zen-watcher.1");
    for subcommand in [
        "normalize",
        "config",
        "dead\\-letters",
        "report",
        "completions",
    ] {
        assert!(
            man.contains(subcommand),
            "{subcommand} missing from the manual page"
        );
    }
}

#[test]
fn the_version_names_the_commit() {
    let version = says(&["--version"]);
    let want = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(common::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = want.unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        version.trim(),
        format!("zen-watcher {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_systemd_unit_verifies_and_its_sandbox_rates_as_documented() {
    let Some(analyze) = common::external("systemd-analyze") else {
        return;
    };
    // The unit as installed, but for the binary's path: this build's.
    let unit = read("deploy/systemd/zen-watcher.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/zen-watcher\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen-watcher.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/zen-watcher", DAEMON)).unwrap();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("zen-watcher.service"), "{stderr}");

    let out = Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for zen-watcher.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level:\n{text}"));
    assert!(score <= 2.0, "exposure {score} over 2.0:\n{text}");
    // The figure the unit and the docs state is the one measured.
    let stated = format!("rates it {score:.1}");
    assert!(unit.contains(&stated), "the unit should say {stated:?}");
    assert!(
        read("docs/install.md").contains(&stated),
        "docs/install.md should say {stated:?}"
    );
}

#[test]
fn the_dockerfile_passes_checkov_and_builds_as_ci_does() {
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("RUN {RELEASE_BUILD} ")),
        "the Dockerfile should build with `{RELEASE_BUILD}`"
    );
    assert!(
        read(".ci/run").lines().any(|l| l.trim() == RELEASE_BUILD),
        ".ci/run should run `{RELEASE_BUILD}`"
    );
    let Some(checkov) = common::external("checkov") else {
        return;
    };
    let out = Command::new(checkov)
        .args([
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "-o",
            "json",
            "-f",
        ])
        .arg(common::root().join("Dockerfile"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 0, "{report:#}");
    assert!(summary["passed"].as_u64().unwrap() >= 20, "{summary}");
    // The one check skipped is the one the Dockerfile says why of.
    let skipped: Vec<&str> = report["results"]["skipped_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check_id"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["CKV_DOCKER_2"], "{report:#}");
    assert!(out.status.success());
}
