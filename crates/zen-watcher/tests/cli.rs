//! The command line as a user runs it: the real binary, real files, real pipes.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../zen-model/tests/data")
        .join(path)
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // The program may exit before reading (a bad argument): a broken pipe is then expected.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn normalize_prints_events_as_json_lines() {
    let file = data("audit/webhook-eventlist.json");
    let out = run(
        &["normalize", "--source", "audit", file.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    assert_eq!(lines[0]["ruleId"], "pod-exec");
    assert!(
        text(&out.stderr).ends_with("14 events, 0 errors, 5 ignored\n"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn normalize_prints_one_line_per_event_when_details_came_pretty_printed() {
    let pretty = b"[\n  {\n    \"rule\": \"Shell\",\n    \"priority\": \"Warning\",\n    \"output_fields\": {\n      \"k8s.ns.name\": \"shop\",\n      \"proc.cmdline\": \"sh -c  ls\"\n    }\n  },\n  {\"rule\": \"Other\", \"priority\": \"Notice\", \"tags\": [ \"a\", \"b\" ]}\n]\n";
    let out = run(&["normalize", "-s", "falco"], Some(pretty));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        first["details"]["output_fields"]["proc.cmdline"], "sh -c  ls",
        "white space inside strings is kept"
    );
    assert!(lines[1].contains(r#""tags":["a","b"]"#), "{}", lines[1]);
}

#[test]
fn normalize_reads_yaml_from_stdin_with_a_node_and_time() {
    let yaml = std::fs::read(data("kyverno/reports.yaml")).unwrap();
    let out = run(
        &[
            "normalize",
            "-s",
            "kyverno",
            "--received-at",
            "2026-01-01T00:00:00Z",
            "-",
        ],
        Some(&yaml),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2);
    assert!(
        stdout.contains(r#""detectedAt":"2026-01-01T00:00:00Z""#),
        "{stdout}"
    );

    let bench = std::fs::read(data("kube-bench/nototals-bare-array.json")).unwrap();
    let out = run(
        &["normalize", "-s", "kube-bench", "--node", "cp-1"],
        Some(&bench),
    );
    assert!(text(&out.stdout).contains(r#""node":"cp-1""#));
}

#[test]
fn partial_payloads_succeed_and_report_each_bad_item() {
    let file = data("falco/malformed-partial.ndjson");
    let out = run(
        &["normalize", "-s", "falcosidekick", file.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: falco: line 2: expected one JSON document on this line"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: falco: line 5: $: expected an object, found a number `42`"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_payload_exits_1_with_one_line() {
    let out = run(
        &["normalize", "-s", "trivy"],
        Some(b"{\"kind\": \"VulnerabilityReport\", \"report\": {"),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: standard input is unreadable: trivy: line 1, column"),
        "{stderr}"
    );

    let out = run(&["normalize", "-s", "falco"], Some(b"{\"rule\": 1}"));
    assert_eq!(out.status.code(), Some(1), "nothing read at all");
}

#[test]
fn bad_settings_and_sources_are_named() {
    let dir = std::env::temp_dir().join(format!("zen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = dir.join("settings.yaml");
    std::fs::write(&settings, "checkov:\n  defualt_severity: low\n").unwrap();
    let out = run(
        &[
            "normalize",
            "-s",
            "checkov",
            "--settings",
            settings.to_str().unwrap(),
        ],
        Some(b"{}"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown field `defualt_severity`"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["normalize", "-s", "sysdig"], Some(b"{}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected one of falco, falcosidekick, audit"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn version_and_help_are_there() {
    // The version and the commit (which `packaging.rs` checks against git).
    let out = run(&["--version"], None);
    let version = text(&out.stdout);
    assert!(
        version.starts_with(&format!("zen-watcher {} (", env!("CARGO_PKG_VERSION")))
            && version.ends_with(")\n"),
        "{version}"
    );
    let out = run(&["--help"], None);
    let shown = text(&out.stdout);
    let listed = |command: &str, says: &str| {
        shown
            .lines()
            .any(|l| l.trim_start().starts_with(command) && l.contains(says))
    };
    assert!(listed("normalize ", "Read a payload"), "{shown}");
    assert!(listed("run ", "Run the daemon (the default)"), "{shown}");
    assert!(
        listed("dead-letters ", "What no sink could write"),
        "{shown}"
    );
    let out = run(&["normalize", "--help"], None);
    assert!(text(&out.stdout).contains("--settings <FILE>"));
}
