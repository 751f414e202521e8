//! The filter through its public face: real events from the normalisers, configurations as a user
//! writes them in YAML, expectations as tables.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use zen_filter::{DropReason, Filter, FilterConfig};
use zen_model::{Context, Event, Format, Normalizer};

fn events() -> Vec<Event> {
    let ctx = Context::received_at("2026-03-02T12:00:00Z".parse().unwrap());
    let n = Normalizer::default();
    let mut out = Vec::new();
    let falco = br#"{"rule":"Terminal shell in container","priority":"Critical","time":"2026-02-11T09:01:02Z","hostname":"node-1",
        "tags":["container","mitre_execution"],
        "output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart-5f6d","proc.name":"bash","proc.tty":34816}}"#;
    out.extend(n.normalize(Format::Falco, falco, &ctx).unwrap().events);
    let trivy = br#"{"kind":"VulnerabilityReport","metadata":{"namespace":"kube-system","labels":{
        "trivy-operator.resource.kind":"DaemonSet","trivy-operator.resource.name":"kube-proxy"}},
        "report":{"vulnerabilities":[{"vulnerabilityID":"CVE-2024-0001","resource":"openssl","severity":"MEDIUM","score":5.9}]}}"#;
    out.extend(n.normalize(Format::Trivy, trivy, &ctx).unwrap().events);
    let bench = br#"[{"id":"4","version":"cis-1.10","tests":[{"section":"4.2","results":[{"test_number":"4.2.1","test_desc":"anonymous auth","status":"WARN","scored":false}]}]}]"#;
    out.extend(n.normalize(Format::KubeBench, bench, &ctx).unwrap().events);
    assert_eq!(out.len(), 3);
    out
}

fn filter(yaml: &str) -> Filter {
    let config: FilterConfig = serde_yaml_ng::from_str(yaml).unwrap();
    Filter::compile(&config).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// For each expression: which of the three events (falco, trivy, kube-bench) it keeps.
#[test]
fn expressions_keep_what_they_say() {
    let cases: &[(&str, [bool; 3])] = &[
        (r#"severity >= "high""#, [true, false, false]),
        (r#"severity < "medium""#, [false, false, true]),
        (r#"severity IN ("medium", "low")"#, [false, true, true]),
        (r#"severity NOT IN ("critical")"#, [false, true, true]),
        (r#"severity = "MEDIUM""#, [false, true, false]),
        (r#"category = "compliance""#, [false, false, true]),
        (r#"category != "compliance""#, [true, true, false]),
        (
            r#"source = "falco" OR source = "trivy""#,
            [true, true, false],
        ),
        (
            r#"namespace IN ("shop", "kube-system") AND NOT namespace = "shop""#,
            [false, true, false],
        ),
        (r#"namespace != "shop""#, [false, true, true]),
        ("namespace EXISTS", [true, true, false]),
        ("namespace NOT EXISTS", [false, false, true]),
        (r#"rule_id STARTS_WITH "CVE-""#, [false, true, false]),
        (r#"title ENDS_WITH "container""#, [true, false, false]),
        (r#"message CONTAINS "anonymous""#, [false, false, true]),
        (r#"rule MATCHES "^[0-9]+\\.[0-9]+""#, [false, false, true]),
        (r#"resource.kind = "DaemonSet""#, [false, true, false]),
        (
            r#"resource.name IN ("cart-5f6d", "kube-proxy")"#,
            [true, true, false],
        ),
        (r#"node = "node-1""#, [true, false, false]),
        (
            r#"labels.benchmark.version = "cis-1.10""#,
            [false, false, true],
        ),
        (r#"labels.trivy.container EXISTS"#, [false, false, false]),
        (
            r#"details.output_fields.proc.name = "bash""#,
            [true, false, false],
        ),
        (
            r#"details.output_fields.proc.tty > 30000"#,
            [true, false, false],
        ),
        (
            r#"details.tags CONTAINS "mitre_execution""#,
            [true, false, false],
        ),
        (
            r#"details.score >= 5.9 AND details.score < 6"#,
            [false, true, false],
        ),
        (r#"details.scored = false"#, [false, false, true]),
        (r#"details.nothing.here NOT EXISTS"#, [true, true, true]),
        (
            r#"details.priority IN ("Critical", "Error")"#,
            [true, false, false],
        ),
        (
            r#"(severity = "critical" OR severity = "info") AND NOT source = "trivy""#,
            [true, false, false],
        ),
        (
            "NOT NOT namespace EXISTS\n  and severity >= 'low'",
            [true, true, false],
        ),
    ];
    let events = events();
    for (expression, want) in cases {
        let f = filter(&format!(
            "global:\n  expression: {}\n",
            serde_json::to_string(expression).unwrap()
        ));
        let got: Vec<bool> = events.iter().map(|e| f.check(e).is_ok()).collect();
        assert_eq!(got, want, "{expression}");
        for (e, kept) in events.iter().zip(want) {
            if !kept {
                assert_eq!(f.check(e), Err(DropReason::Expression));
            }
        }
    }
}

#[test]
fn bad_expressions_say_where_what_was_expected_and_what_was_found() {
    let cases = [
        (
            "severity >",
            "global.expression.line 1, column 11: expected a value (a quoted string, a number, true or false), found the end of the expression",
        ),
        (
            "severity >= \"severe\"",
            "global.expression.line 1, column 13: expected a severity (critical, high, medium, low, info), found the string \"severe\"",
        ),
        (
            "namespace > \"a\"",
            "global.expression.line 1, column 11: expected = or != for the text field `namespace` (ordering applies to severity and details), found `>`",
        ),
        (
            "nmespace = \"a\"",
            "global.expression.line 1, column 1: expected a field (source, category, severity, event_type, rule_id, title, message, namespace, node, resource.kind, resource.name, resource.namespace, resource.api_version, labels.<key>, details.<path>), found `nmespace`",
        ),
        (
            "source = \"a\" AND",
            "global.expression.line 1, column 17: expected a field (severity, namespace, details.…, …), NOT or `(`, found the end of the expression",
        ),
        (
            "(source = \"a\"",
            "global.expression.line 1, column 14: expected `)` or AND or OR, found the end of the expression",
        ),
        (
            "source = \"a\" source = \"b\"",
            "global.expression.line 1, column 14: expected AND, OR or the end of the expression, found `source`",
        ),
        (
            "message MATCHES \"(\"",
            "global.expression.line 1, column 17: expected a valid regular expression, found \"(\" (regex parse error:\n    (\n    ^\nerror: unclosed group)",
        ),
        (
            "source IN (\"a\" \"b\")",
            "global.expression.line 1, column 16: expected `,` or `)`, found the string \"b\"",
        ),
        (
            "category > \"cost\"",
            "global.expression.line 1, column 10: expected = or != for `category`, found `>`",
        ),
        (
            "source = 5",
            "global.expression.line 1, column 10: expected a quoted string to compare with `source`, found the number 5",
        ),
        (
            "source = \"open",
            "global.expression.line 1, column 10: expected a closing \", found the end of the expression",
        ),
        (
            "source\n  = \"a\" AND ! x",
            "global.expression.line 2, column 13: expected `!=`, found `!`",
        ),
        (
            "source ~ \"a\"",
            "global.expression.line 1, column 8: expected a field, a value, an operator or a parenthesis, found `~`",
        ),
    ];
    for (expression, want) in cases {
        let config = FilterConfig {
            global: zen_filter::FilterRules {
                expression: Some(expression.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = Filter::compile(&config).unwrap_err().to_string();
        assert_eq!(err, want, "{expression}");
    }
    let config: FilterConfig =
        serde_yaml_ng::from_str("sources:\n  falco:\n    include_namespaces: ['[']\n").unwrap();
    assert_eq!(
        Filter::compile(&config).unwrap_err().to_string(),
        "sources.falco.include_namespaces[0]: expected a glob, found \"[\" (unclosed character class; missing ']')"
    );
}

#[test]
fn rule_lists_drop_with_their_reason() {
    let events = events();
    let cases: &[(&str, [Result<(), DropReason>; 3])] = &[
        (
            "global:\n  min_severity: medium",
            [Ok(()), Ok(()), Err(DropReason::MinSeverity)],
        ),
        (
            "global:\n  severities: [critical, low]",
            [Ok(()), Err(DropReason::Severity), Ok(())],
        ),
        (
            "global:\n  exclude_namespaces: ['kube-*']",
            [Ok(()), Err(DropReason::Namespace), Ok(())],
        ),
        (
            "global:\n  include_namespaces: ['sh?p']",
            [Ok(()), Err(DropReason::Namespace), Ok(())],
        ),
        (
            "global:\n  kinds: [Pod]",
            [Ok(()), Err(DropReason::Kind), Err(DropReason::Kind)],
        ),
        (
            "global:\n  categories: [security]",
            [Ok(()), Ok(()), Err(DropReason::Category)],
        ),
        (
            "global:\n  event_types: [vulnerability]",
            [
                Err(DropReason::EventType),
                Ok(()),
                Err(DropReason::EventType),
            ],
        ),
        (
            "global:\n  exclude_rules: [CVE-2024-0001]",
            [Ok(()), Err(DropReason::ExcludedRule), Ok(())],
        ),
        (
            "sources:\n  kube-bench:\n    enabled: false",
            [Ok(()), Ok(()), Err(DropReason::Disabled)],
        ),
        (
            "global:\n  min_severity: low\nsources:\n  falco:\n    expression: namespace = \"prod\"",
            [Err(DropReason::Expression), Ok(()), Ok(())],
        ),
    ];
    for (yaml, want) in cases {
        let f = filter(yaml);
        let got: Vec<_> = events.iter().map(|e| f.check(e)).collect();
        assert_eq!(got, want, "{yaml}");
    }
    assert!(events.iter().all(|e| Filter::default().check(e).is_ok()));
}

#[test]
fn reasons_have_stable_label_values() {
    let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "disabled",
            "min_severity",
            "severity",
            "namespace",
            "kind",
            "category",
            "event_type",
            "excluded_rule",
            "expression"
        ]
    );
}

#[test]
fn one_compiled_filter_serves_many_threads_alike() {
    let f = std::sync::Arc::new(filter(
        "global:\n  exclude_namespaces: ['kube-*']\n  expression: 'severity >= \"medium\" OR details.scored = false'\n",
    ));
    let events = std::sync::Arc::new(events());
    let alone: Vec<_> = events.iter().map(|e| f.check(e)).collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (f, events) = (f.clone(), events.clone());
            std::thread::spawn(move || {
                (0..10_000)
                    .map(|i| f.check(&events[i % events.len()]))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        let got = t.join().unwrap();
        for (i, r) in got.iter().enumerate() {
            assert_eq!(*r, alone[i % alone.len()]);
        }
    }
}
