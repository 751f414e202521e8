//! For any text: compiling never panics. For any expressions: evaluation never panics, and
//! AND, OR and NOT mean what they say on every event.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use proptest::prelude::*;
use zen_filter::{Filter, FilterConfig, FilterRules};
use zen_model::{Context, Event, Format, Normalizer};

const ATOMS: &[&str] = &[
    r#"severity >= "high""#,
    r#"severity IN ("low", "info")"#,
    r#"category = "security""#,
    r#"namespace = "shop""#,
    r#"namespace NOT IN ("kube-system")"#,
    "namespace EXISTS",
    r#"rule_id STARTS_WITH "CVE""#,
    r#"message CONTAINS "shell""#,
    r#"title MATCHES "(?i)terminal""#,
    r#"details.output_fields.proc.name = "bash""#,
    r#"details.score > 5"#,
    r#"details.tags CONTAINS "shell""#,
    r#"labels.trivy.container NOT EXISTS"#,
    r#"resource.kind != "Pod""#,
];

fn expression() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(ATOMS).prop_map(str::to_owned);
    atom.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

fn compile(expression: &str) -> Filter {
    let config = FilterConfig {
        global: FilterRules {
            expression: Some(expression.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    Filter::compile(&config).unwrap_or_else(|e| panic!("{expression}: {e}"))
}

fn events() -> Vec<Event> {
    let ctx = Context::received_at("2026-03-02T12:00:00Z".parse().unwrap());
    let n = Normalizer::default();
    let payloads: [(Format, &[u8]); 3] = [
        (Format::Falco, br#"{"rule":"Terminal shell in container","priority":"Notice","tags":["shell"],"output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"p","proc.name":"bash"}}"#),
        (Format::Trivy, br#"{"kind":"VulnerabilityReport","metadata":{"namespace":"kube-system","labels":{"trivy-operator.container.name":"c"}},"report":{"vulnerabilities":[{"vulnerabilityID":"CVE-1","severity":"HIGH","score":7.5}]}}"#),
        (Format::Generic, br#"{"severity":"info","message":"no namespace","score":"5"}"#),
    ];
    payloads
        .iter()
        .flat_map(|(f, p)| n.normalize(*f, p, &ctx).unwrap().events)
        .collect()
}

proptest! {
    #[test]
    fn compiling_any_text_never_panics(src in "[a-z_.\"'()=!<>, 0-9A-Z\\n-]{0,60}") {
        let config = FilterConfig { global: FilterRules { expression: Some(src), ..Default::default() }, ..Default::default() };
        let _ = Filter::compile(&config);
    }

    #[test]
    fn and_or_not_are_boolean(a in expression(), b in expression()) {
        let (fa, fb) = (compile(&a), compile(&b));
        let and = compile(&format!("({a}) AND ({b})"));
        let or = compile(&format!("({a}) OR ({b})"));
        let not = compile(&format!("NOT ({a})"));
        for e in events() {
            let (ka, kb) = (fa.check(&e).is_ok(), fb.check(&e).is_ok());
            prop_assert_eq!(and.check(&e).is_ok(), ka && kb);
            prop_assert_eq!(or.check(&e).is_ok(), ka || kb);
            prop_assert_eq!(not.check(&e).is_ok(), !ka);
        }
    }
}
