//! `cargo xtask gen`: every generated file of the repository, from its one source — Grafana
//! dashboards and `docs/metrics.md` from the metric catalog (zen-export), `docs/formats.md` from
//! the format modules' documentation (zen-model), the custom resource definitions from their
//! Rust types (zen-kube), the benchmark reports' tables and charts from
//! the reports kept in `docs/bench/reports/` (xtask's `report`). `--check` fails when a committed file differs;
//! a test runs the same check, so a stale file cannot land.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use zen_model::Severity;
use zen_model::formats::checkov::BUILTIN_SEVERITIES;

/// Which files to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Set {
    All,
    Dashboards,
    /// The benchmark reports' tables in docs/benchmarks.md and their charts.
    Reports,
    /// The shell completions and the manual page, from the daemon's own `completions` and
    /// `man` (its clap definitions); zen-watcher's packaging test checks they are fresh.
    Cli,
}

/// What the daemon prints of itself: `cargo run -p zen-watcher -- ARGS`.
fn daemon_says(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "zen-watcher", "--"])
        .args(args)
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!(
            "zen-watcher {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every generated file: its path from the root, and its contents.
fn files(set: Set) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if set == Set::Reports {
        out.extend(crate::report::rendered()?);
        out.extend(crate::soak::rendered()?);
        return Ok(out);
    }
    if set == Set::Cli {
        let mut out = vec![(
            "deploy/man/zen-watcher.1".to_owned(),
            daemon_says(&["man"])?,
        )];
        for (shell, file) in [
            ("bash", "zen-watcher.bash"),
            ("zsh", "_zen-watcher"),
            ("fish", "zen-watcher.fish"),
        ] {
            out.push((
                format!("deploy/completions/{file}"),
                daemon_says(&["completions", shell])?,
            ));
        }
        return Ok(out);
    }
    for d in zen_export::grafana::dashboards() {
        let mut text = serde_json::to_string_pretty(&d.json)?;
        text.push('\n');
        out.push((format!("dashboards/{}", d.file), text));
    }
    if set == Set::All {
        out.push((
            "docs/metrics.md".to_owned(),
            zen_export::catalog::markdown(),
        ));
        out.push(("docs/formats.md".to_owned(), formats_md()));
        out.extend(alerting()?);
        out.push((
            "deploy/kubernetes/crds/observations.zen.kube-zen.io.yaml".to_owned(),
            zen_kube::crd_yaml()?,
        ));
        out.push((
            "deploy/kubernetes/crds/sourcepolicies.zen-watcher.io.yaml".to_owned(),
            zen_kube::policy_crd_yaml()?,
        ));
        out.extend(crate::report::rendered()?);
        out.extend(crate::soak::rendered()?);
    }
    Ok(out)
}

/// Prometheus rules, their promtool tests and the Alertmanager configuration, from zen-slo's
/// shipped spec.
fn alerting() -> Result<Vec<(String, String)>> {
    use zen_slo::generate;
    let spec = zen_slo::defaults::spec();
    spec.validate(zen_export::catalog::buckets)?;
    let mut out = vec![
        (
            "deploy/prometheus/zen-watcher-rules.yaml".to_owned(),
            generate::rules(&spec),
        ),
        (
            "deploy/prometheus/prometheusrule.yaml".to_owned(),
            generate::prometheus_rule(&spec),
        ),
        // The same, in the Kubernetes manifests (kustomize reads nothing outside its directory).
        (
            "deploy/kubernetes/prometheusrule.yaml".to_owned(),
            generate::prometheus_rule(&spec),
        ),
        (
            "deploy/alertmanager/alertmanager.yaml".to_owned(),
            generate::alertmanager(),
        ),
    ];
    for suite in zen_slo::scenario::suites(&spec, &zen_export::catalog::buckets) {
        out.push((
            format!("deploy/prometheus/tests/{}", suite.file),
            generate::promtool_tests("../zen-watcher-rules.yaml", &suite.scenarios, false),
        ));
    }
    Ok(out)
}

/// Writes the files, or with `check` only compares them; returns the stale ones' paths.
pub(crate) fn run(set: Set, check: bool) -> Result<Vec<String>> {
    let root = root();
    let mut stale = Vec::new();
    let files = files(set)?;
    if set != Set::Dashboards && set != Set::Cli {
        // Charts no report renders any more.
        let charts = root.join("docs/bench");
        for entry in fs::read_dir(&charts).into_iter().flatten().flatten() {
            let path = format!("docs/bench/{}", entry.file_name().to_string_lossy());
            if path.ends_with(".svg") && !files.iter().any(|(p, _)| *p == path) {
                if !check {
                    fs::remove_file(entry.path()).with_context(|| format!("removing {path}"))?;
                }
                stale.push(format!("{path} (rendered by no report: removed)"));
            }
        }
    }
    for (path, want) in files {
        let full = root.join(&path);
        let have = fs::read_to_string(&full).unwrap_or_default();
        if have == want {
            continue;
        }
        stale.push(path);
        if !check {
            if let Some(dir) = full.parent() {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            fs::write(&full, want).with_context(|| format!("writing {}", full.display()))?;
        }
    }
    if check && !stale.is_empty() {
        bail!(
            "stale generated files: {}; run `cargo xtask gen` and commit them",
            stale.join(", ")
        );
    }
    Ok(stale)
}

const MODULES: [(&str, &str); 8] = [
    (
        "",
        include_str!("../../crates/zen-model/src/formats/mod.rs"),
    ),
    (
        "falco",
        include_str!("../../crates/zen-model/src/formats/falco.rs"),
    ),
    (
        "audit",
        include_str!("../../crates/zen-model/src/formats/audit.rs"),
    ),
    (
        "trivy",
        include_str!("../../crates/zen-model/src/formats/trivy.rs"),
    ),
    (
        "kyverno",
        include_str!("../../crates/zen-model/src/formats/kyverno.rs"),
    ),
    (
        "kube-bench",
        include_str!("../../crates/zen-model/src/formats/kube_bench.rs"),
    ),
    (
        "checkov",
        include_str!("../../crates/zen-model/src/formats/checkov.rs"),
    ),
    (
        "generic",
        include_str!("../../crates/zen-model/src/formats/generic.rs"),
    ),
];

/// The `//!` lines of a source file, as Markdown; intra-doc links become code spans.
fn module_doc(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines().take_while(|l| l.starts_with("//!")) {
        let text = line
            .trim_start_matches("//!")
            .strip_prefix(' ')
            .unwrap_or(line.trim_start_matches("//!"));
        if text.starts_with("[`") && text.contains("]: ") {
            continue; // a link definition
        }
        out.push_str(
            &text
                .replace("[`", "`")
                .replace("`]", "`")
                .replace("(crate::Context)", ""),
        );
        out.push('\n');
    }
    out
}

/// `docs/formats.md`, from the format modules' own documentation.
fn formats_md() -> String {
    let mut out = String::from(
        "<!-- Generated from crates/zen-model/src/formats/*.rs by `cargo xtask gen`. Do not edit. -->\n\n",
    );
    for (name, source) in MODULES {
        if !name.is_empty() {
            out.push_str(&format!("\n## {name}\n\n"));
        }
        out.push_str(&module_doc(source));
        if name == "checkov" {
            out.push_str("\n### Built-in Checkov severities\n\n| severity | checks |\n|---|---|\n");
            for sev in Severity::ALL.into_iter().rev() {
                let ids: Vec<String> = BUILTIN_SEVERITIES
                    .iter()
                    .filter(|(_, s)| *s == sev)
                    .map(|(id, _)| format!("`{id}`"))
                    .collect();
                if !ids.is_empty() {
                    out.push_str(&format!("| {sev} | {} |\n", ids.join(", ")));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_generated_files_are_up_to_date() {
        if let Err(e) = super::run(super::Set::All, true) {
            panic!("{e:#}");
        }
    }
}
