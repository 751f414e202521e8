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
    // The one check skipped is the one the Dockerfile says why of.
    let dockerfile = common::root().join("Dockerfile");
    common::checkov_clean(&checkov, "dockerfile", &dockerfile, 20, &["CKV_DOCKER_2"]);
}

/// A service's bind mounts in `deploy/compose/compose.yaml`: (host path from the repository's
/// root, path in the container).
fn mounts(compose: &serde_yaml_ng::Value, service: &str) -> Vec<(std::path::PathBuf, String)> {
    let dir = common::root().join("deploy/compose");
    compose["services"][service]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let mut parts = v.as_str().unwrap().split(':');
            let (host, inside) = (parts.next()?, parts.next()?);
            host.starts_with('.')
                .then(|| (dir.join(host), inside.to_owned()))
        })
        .collect()
}

/// Lays a service's bind mounts out under `root` as the container sees them.
fn lay_out(compose: &serde_yaml_ng::Value, service: &str, root: &std::path::Path) {
    for (host, inside) in mounts(compose, service) {
        let target = root.join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&host, &target).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    }
}

fn run_ok(program: &std::path::Path, args: &[&std::ffi::OsStr]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_compose_stack_is_valid_and_mounts_the_checked_files() {
    let path = common::root().join("deploy/compose/compose.yaml");
    let compose: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("deploy/compose/compose.yaml")).unwrap();
    // Every file mounted exists; the dashboards' directory is the generated one.
    for service in ["zen-watcher", "prometheus", "alertmanager", "grafana"] {
        for (host, _) in mounts(&compose, service) {
            assert!(
                host.exists(),
                "{service} mounts {}, which is missing",
                host.display()
            );
        }
    }
    let grafana = mounts(&compose, "grafana");
    let dashboards = grafana
        .iter()
        .find(|(h, _)| h.ends_with("dashboards"))
        .unwrap();
    assert!(
        read("deploy/compose/grafana/dashboards.yaml").contains(&format!("path: {}", dashboards.1))
    );
    assert!(dashboards.0.join("zen-watcher-performance.json").is_file());

    // zen-watcher's configuration is one it accepts.
    let config = common::root().join("deploy/compose/zen-watcher.yaml");
    run_ok(
        std::path::Path::new(DAEMON),
        &["config".as_ref(), "check".as_ref(), config.as_os_str()],
    );

    if let Some(validate) = common::external("check-jsonschema") {
        let schema = ["--builtin-schema".as_ref(), "vendor.compose-spec".as_ref()];
        run_ok(&validate, &[&schema[..], &[path.as_os_str()]].concat());
        // The validator refuses what the specification does not allow.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("compose.yaml");
        std::fs::write(
            &bad,
            read("deploy/compose/compose.yaml").replace("\nservices:", "\nservics:"),
        )
        .unwrap();
        let out = Command::new(&validate)
            .args(schema)
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "a misspelt key passed");
    }
    // Prometheus's configuration and rules as the container sees them, checked by promtool.
    if let Some(promtool) = common::external("promtool") {
        let dir = tempfile::tempdir().unwrap();
        lay_out(&compose, "prometheus", dir.path());
        let config = dir.path().join("etc/prometheus/prometheus.yml");
        let out = Command::new(&promtool)
            .args(["check", "config"])
            .arg(&config)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains("zen-watcher-rules.yaml"),
            "no rules checked: {said}"
        );
    }
    if let Some(amtool) = common::external("amtool") {
        let dir = tempfile::tempdir().unwrap();
        lay_out(&compose, "alertmanager", dir.path());
        let config = dir.path().join("etc/alertmanager/alertmanager.yaml");
        run_ok(&amtool, &["check-config".as_ref(), config.as_os_str()]);
    }
}
