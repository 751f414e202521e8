//! The public API beyond single payloads: Trivy re-scan diffs, configuration validation, and
//! input syntax detection.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::fs;
use std::path::Path;

use serde_json::Value;
use zen_model::formats::trivy;
use zen_model::{Context, Format, NormalizeConfig, Normalizer, Syntax};

fn ctx() -> Context {
    Context::received_at("2026-03-02T12:00:00Z".parse().unwrap())
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_trivy_rescan_yields_only_new_findings() {
    let previous = fixture("trivy/vulnerabilityreport.json");
    let mut current = previous.clone();
    let vulns = current["report"]["vulnerabilities"].as_array_mut().unwrap();
    vulns.remove(0); // fixed since
    vulns[0]["fixedVersion"] = "2.5.0-1+deb12u2".into(); // same finding, new fix: not new
    let mut added = vulns[1].clone();
    added["vulnerabilityID"] = "CVE-2026-1234".into();
    vulns.push(added);
    let mut upgraded = vulns[2].clone();
    upgraded["installedVersion"] = "2.6.2".into(); // still vulnerable after an upgrade: a new finding
    vulns.push(upgraded);
    current["report"]["updateTimestamp"] = "2026-02-12T08:00:00Z".into();

    let n = Normalizer::default();
    let prev = serde_json::to_vec(&previous).unwrap();
    let cur = serde_json::to_vec(&current).unwrap();
    let out = trivy::new_findings(&n, &prev, &cur, &ctx()).unwrap();
    let new: Vec<_> = out
        .events
        .iter()
        .map(|e| {
            (
                e.rule_id.as_deref().unwrap(),
                e.details.to_value()["installedVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            ("CVE-2026-1234", "3.0.13-1~deb12u1".to_owned()),
            ("CVE-2011-3374", "2.6.2".to_owned())
        ]
    );
    assert_eq!(
        out.ignored, 4,
        "the unchanged findings are counted as ignored"
    );

    let same = trivy::new_findings(&n, &prev, &prev, &ctx()).unwrap();
    assert!(same.events.is_empty());

    let err =
        trivy::new_findings(&n, b"{\"kind\": \"VulnerabilityReport\"}", &cur, &ctx()).unwrap_err();
    assert_eq!(err.to_string(), "trivy: $: missing field `report`");
}

fn config_error(yaml: &str) -> String {
    match serde_yaml_ng::from_str::<NormalizeConfig>(yaml) {
        Err(e) => e.to_string(),
        Ok(config) => Normalizer::new(config).unwrap_err().to_string(),
    }
}

#[test]
fn bad_configuration_is_rejected_with_the_key_and_the_reason() {
    assert_eq!(
        config_error("generic:\n  rule: rule\n"),
        r#"generic.rule[0]: expected a JSON pointer (empty, or starting with `/`), found "rule""#
    );
    assert_eq!(
        config_error("audit:\n  stages: [Done]\n"),
        r#"audit.stages[0]: expected one of RequestReceived, ResponseStarted, ResponseComplete, Panic, found "Done""#
    );
    assert_eq!(
        config_error(
            "audit:\n  rules:\n    - {id: a, title: A, severity: low}\n    - {id: a, title: B, severity: high}\n"
        ),
        r#"audit.rules[1].id: rule id "a" is used twice"#
    );
    assert_eq!(
        config_error(
            "audit:\n  rules:\n    - {id: a, title: A, severity: low, response_codes: {min: 500, max: 400}}\n"
        ),
        "audit.rules[0].response_codes: expected min <= max, found min 500 and max 400"
    );
    assert!(
        config_error("checkov:\n  default_severity: extreme\n")
            .contains("unknown variant `extreme`")
    );
    let unknown = config_error("generic:\n  sevrity: /level\n");
    assert!(
        unknown.starts_with("generic: unknown field `sevrity`, expected one of"),
        "{unknown}"
    );
}

#[test]
fn the_default_configuration_is_valid_and_round_trips() {
    let config = NormalizeConfig::default();
    let yaml = serde_yaml_ng::to_string(&config).unwrap();
    let back: NormalizeConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(back, config);
    Normalizer::new(back).unwrap();
}

#[test]
fn syntax_is_detected_from_the_first_byte() {
    assert_eq!(Syntax::detect(b"  \n{\"a\":1}"), Syntax::Json);
    assert_eq!(Syntax::detect(b"[1]"), Syntax::Json);
    assert_eq!(
        Syntax::detect(b"apiVersion: v1\nkind: List\n"),
        Syntax::Yaml
    );
    assert_eq!(Syntax::detect(b"---\n"), Syntax::Yaml);
    assert_eq!(Syntax::detect(b"# comment\n"), Syntax::Yaml);
}

#[test]
fn format_names_parse_including_falcosidekick() {
    for format in Format::ALL {
        assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
    }
    assert_eq!("falcosidekick".parse::<Format>().unwrap(), Format::Falco);
    let err = "sysdig".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("falco, falcosidekick, audit, trivy, kyverno, kube-bench, checkov, generic"),
        "{err}"
    );
}

#[test]
fn problems_past_a_hundred_are_counted_not_kept() {
    let n = Normalizer::default();
    // A thousand bad items beside one good one; then a thousand bad NDJSON lines.
    let items = format!(
        "[{}{{\"rule\":\"r\",\"priority\":\"Critical\"}}]",
        "1,".repeat(1000)
    );
    let out = n
        .normalize(Format::Falco, items.as_bytes(), &ctx())
        .unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!((out.errors.len(), out.more_errors), (100, 900));
    assert_eq!(out.error_count(), 1000);
    assert!(
        out.errors[99].to_string().contains("$[99]"),
        "{}",
        out.errors[99]
    );
    let lines = format!(
        "{}{{\"rule\":\"r\",\"priority\":\"Critical\"}}\n",
        "{oops\n".repeat(1000)
    );
    let out = n
        .normalize(Format::Falco, lines.as_bytes(), &ctx())
        .unwrap();
    assert_eq!((out.events.len(), out.error_count()), (1, 1000));
    assert_eq!(out.errors.len(), 100);
}

#[test]
fn the_generic_reader_refuses_a_key_given_twice() {
    let n = Normalizer::default();
    let twice = br#"[{"title":"a","severity":"low","severity":"critical"},{"title":"b","severity":"high"}]"#;
    let out = n.normalize(Format::Generic, twice, &ctx()).unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0].to_string().contains("$[0]")
            && out.errors[0]
                .to_string()
                .contains("duplicate key `severity`"),
        "{}",
        out.errors[0]
    );
}

#[test]
fn a_form_feed_is_not_white_space_to_either_reading() {
    // Found by the fuzzers: the one-pass read trimmed a form feed as white space, the split
    // into documents (as JSON) did not, and the two disagreed.
    let n = Normalizer::default();
    let alert = b"\x0c{\"rule\":\"r\",\"priority\":\"Critical\"}";
    let one = n.normalize(Format::Falco, alert, &ctx());
    let split = n.normalize_documents(Format::Falco, alert, &ctx());
    assert!(one.is_err() && split.is_err(), "{one:?} {split:?}");
}
