//! Data-driven tests of every normaliser: each file under `tests/data/<format>/` is normalised and
//! the result compared with `<file>.expected`. A `<file>.config.yaml` beside it gives normaliser
//! settings. Files named `malformed-*` must give at least one error (and never a panic).
//!
//! Run with `UPDATE_EXPECT=1` to rewrite the expectations, then review the diff.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use zen_model::{Context, Format, NormalizeConfig, Normalizer, Syntax};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn is_input(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.ends_with(".expected") || name.ends_with(".config.yaml"))
}

fn context() -> Context {
    Context {
        received_at: "2026-03-02T12:00:00Z".parse().unwrap(),
        node: Some("worker-1".to_owned()),
    }
}

fn normalizer_for(input: &Path) -> Normalizer {
    let config_path = PathBuf::from(format!("{}.config.yaml", input.display()));
    let config: NormalizeConfig = match fs::read(&config_path) {
        Ok(text) => serde_yaml_ng::from_slice(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", config_path.display())),
        Err(_) => NormalizeConfig::default(),
    };
    Normalizer::new(config).unwrap_or_else(|e| panic!("{}: {e}", config_path.display()))
}

/// What a user of `zen-watcher normalize` would see, in a form easy to review.
fn render(format: Format, input: &Path) -> (String, usize) {
    let bytes = fs::read(input).unwrap();
    let syntax = match input.extension().and_then(|e| e.to_str()) {
        Some("yaml") => Syntax::Yaml,
        _ => Syntax::Json,
    };
    let mut out = String::new();
    match normalizer_for(input).normalize_text(format, syntax, &bytes, &context()) {
        Err(e) => {
            writeln!(out, "unreadable: {e}").unwrap();
            (out, 1)
        }
        Ok(n) => {
            writeln!(
                out,
                "events: {}, errors: {}, ignored: {}",
                n.events.len(),
                n.errors.len(),
                n.ignored
            )
            .unwrap();
            for e in &n.errors {
                writeln!(out, "error: {e}").unwrap();
            }
            for ev in &n.events {
                let value = serde_json::to_value(ev).unwrap();
                writeln!(out, "{}", serde_json::to_string_pretty(&value).unwrap()).unwrap();
            }
            (out, n.errors.len())
        }
    }
}

#[test]
fn every_fixture_normalises_as_expected() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut seen = 0;
    for format in Format::ALL {
        let dir = data_dir().join(format.as_str());
        let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| is_input(p))
            .collect();
        inputs.sort();
        let malformed = inputs
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("malformed-")
            })
            .count();
        assert!(
            malformed >= 5,
            "{format}: only {malformed} malformed fixtures, want at least 5"
        );
        assert!(
            inputs.len() - malformed >= 3,
            "{format}: want at least 3 well-formed fixtures"
        );

        for input in inputs {
            seen += 1;
            let (actual, errors) = render(format, &input);
            let name = input.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("malformed-") && errors == 0 {
                failures.push(format!("{format}/{name}: malformed input gave no error"));
            }
            let expected_path = PathBuf::from(format!("{}.expected", input.display()));
            if update {
                fs::write(&expected_path, &actual).unwrap();
                continue;
            }
            let expected = fs::read_to_string(&expected_path).unwrap_or_default();
            if expected != actual {
                failures.push(format!(
                    "{format}/{name}: output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
                    expected_path.display()
                ));
            }
        }
    }
    assert!(seen > 0);
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed (UPDATE_EXPECT=1 rewrites the expectations):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
