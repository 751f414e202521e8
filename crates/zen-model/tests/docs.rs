//! `docs/formats.md` is generated from the format modules' own documentation, so the two cannot
//! disagree. This test fails when the committed file is stale; `UPDATE_EXPECT=1` rewrites it.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::fs;
use std::path::Path;

use zen_model::Severity;
use zen_model::formats::checkov::BUILTIN_SEVERITIES;

const MODULES: [(&str, &str); 8] = [
    ("", include_str!("../src/formats/mod.rs")),
    ("falco", include_str!("../src/formats/falco.rs")),
    ("audit", include_str!("../src/formats/audit.rs")),
    ("trivy", include_str!("../src/formats/trivy.rs")),
    ("kyverno", include_str!("../src/formats/kyverno.rs")),
    ("kube-bench", include_str!("../src/formats/kube_bench.rs")),
    ("checkov", include_str!("../src/formats/checkov.rs")),
    ("generic", include_str!("../src/formats/generic.rs")),
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

fn render() -> String {
    let mut out = String::from(
        "<!-- Generated from crates/zen-model/src/formats/*.rs by `UPDATE_EXPECT=1 cargo test -p zen-model --test docs`. Do not edit. -->\n\n",
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

#[test]
fn formats_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/formats.md");
    let want = render();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(&path, &want).unwrap();
        return;
    }
    let have = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/formats.md is stale: run `UPDATE_EXPECT=1 cargo test -p zen-model --test docs` and commit"
    );
}
