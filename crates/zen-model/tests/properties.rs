//! Properties every normaliser must have, for any input:
//! - it never panics, whatever the bytes or the JSON;
//! - a fingerprint ignores timestamps, key order and other non-identity fields, and changes with
//!   every identity field its format documents;
//! - in NDJSON, each line counts alone: a good line gives what it gives as a payload of its own,
//!   a bad one an error at its line, and neither disturbs the others.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value};
use zen_model::{Context, Fingerprint, Format, NormalizeConfig, Normalizer, Syntax};

fn ctx() -> Context {
    Context {
        received_at: "2026-03-02T12:00:00Z".parse().unwrap(),
        node: Some("worker-1".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// No panics.

/// Keys the normalisers look for, so that random documents reach deep into every parser.
const KEYS: &[&str] = &[
    "rule",
    "priority",
    "time",
    "output",
    "output_fields",
    "evt.time",
    "k8s.ns.name",
    "tags",
    "source",
    "items",
    "kind",
    "auditID",
    "stage",
    "verb",
    "user",
    "username",
    "objectRef",
    "resource",
    "subresource",
    "responseStatus",
    "code",
    "requestObject",
    "spec",
    "containers",
    "securityContext",
    "privileged",
    "volumes",
    "hostPath",
    "stageTimestamp",
    "report",
    "vulnerabilities",
    "checks",
    "vulnerabilityID",
    "severity",
    "success",
    "checkID",
    "metadata",
    "labels",
    "ownerReferences",
    "results",
    "policy",
    "result",
    "timestamp",
    "seconds",
    "nanos",
    "scope",
    "resources",
    "Controls",
    "tests",
    "test_number",
    "status",
    "scored",
    "check_type",
    "failed_checks",
    "check_id",
    "file_line_range",
    "summary",
    "message",
    "namespace",
    "name",
];
const STRINGS: &[&str] = &[
    "",
    "Critical",
    "info",
    "fail",
    "FAIL",
    "WARN",
    "HIGH",
    "UNKNOWN",
    "create",
    "exec",
    "pods",
    "secrets",
    "ResponseComplete",
    "system:anonymous",
    "EventList",
    "List",
    "VulnerabilityReport",
    "ConfigAuditReport",
    "PolicyReport",
    "2026-02-11T09:01:02.123456789Z",
    "not a time",
    "kubernetes",
    "Deployment.ns.name",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn normalise_everything(input: &[u8]) {
    let n = Normalizer::default();
    for format in Format::ALL {
        let _ = n.normalize(format, input, &ctx());
        let _ = n.normalize_text(format, Syntax::Yaml, input, &ctx());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_normaliser_panics_on_arbitrary_json(doc in arb_json(), ndjson in any::<bool>()) {
        let mut text = serde_json::to_vec(&doc).unwrap();
        if ndjson {
            text.push(b'\n');
            text.extend(serde_json::to_vec(&doc).unwrap());
        }
        normalise_everything(&text);
    }

    #[test]
    fn no_normaliser_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        normalise_everything(&bytes);
    }

    #[test]
    fn no_normaliser_panics_on_damaged_fixtures(which in 0..CASES.len(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut text = serde_json::to_vec(&fixture(&CASES[which])).unwrap();
        let at = cut.index(text.len());
        text[at] = byte;
        normalise_everything(&text);
        normalise_everything(&text[..at]);
    }
}

// ---------------------------------------------------------------------------------------------
// Fingerprints.

/// A change that must not alter any fingerprint.
#[derive(Debug, Clone, Copy)]
enum Noise {
    /// An RFC 3339 time.
    Time,
    /// Seconds (or nanoseconds) since the epoch.
    Integer,
    /// Free text.
    Text,
}

struct Case {
    format: Format,
    fixture: &'static str,
    config: &'static str,
    /// JSON pointers to fields that identify the (first) finding.
    identity: &'static [&'static str],
    /// JSON pointers to fields that do not.
    noise: &'static [(&'static str, Noise)],
}

/// One audit rule that matches anything, so that changing an identity field never unmatches.
const AUDIT_CATCH_ALL: &str = "audit:\n  rules:\n    - {id: any, title: Anything, severity: low}\n";

const CASES: [Case; 7] = [
    Case {
        format: Format::Falco,
        fixture: "falco/http-output.json",
        config: "",
        identity: &[
            "/rule",
            "/source",
            "/hostname",
            "/output_fields/k8s.ns.name",
            "/output_fields/k8s.pod.name",
            "/output_fields/container.id",
            "/output_fields/proc.cmdline",
            "/output_fields/fd.name",
            "/output_fields/ka.user.name",
            "/output_fields/ka.target.resource",
            "/output_fields/ka.target.name",
        ],
        noise: &[
            ("/time", Noise::Time),
            ("/output_fields/evt.time", Noise::Integer),
            ("/output", Noise::Text),
            ("/uuid", Noise::Text),
            ("/output_fields/proc.pname", Noise::Text),
        ],
    },
    Case {
        format: Format::Audit,
        fixture: "audit/webhook-eventlist-no-kind.json",
        config: AUDIT_CATCH_ALL,
        identity: &[
            "/items/0/user/username",
            "/items/0/verb",
            "/items/0/objectRef/apiGroup",
            "/items/0/objectRef/resource",
            "/items/0/objectRef/subresource",
            "/items/0/objectRef/namespace",
            "/items/0/objectRef/name",
        ],
        noise: &[
            ("/items/0/stageTimestamp", Noise::Time),
            ("/items/0/requestReceivedTimestamp", Noise::Time),
            ("/items/0/auditID", Noise::Text),
            ("/items/0/userAgent", Noise::Text),
            ("/items/1/stageTimestamp", Noise::Time),
        ],
    },
    Case {
        format: Format::Trivy,
        fixture: "trivy/vulnerabilityreport.json",
        config: "",
        identity: &[
            "/metadata/labels/trivy-operator.resource.kind",
            "/metadata/labels/trivy-operator.resource.name",
            "/metadata/labels/trivy-operator.resource.namespace",
            "/metadata/labels/trivy-operator.container.name",
            "/report/vulnerabilities/0/vulnerabilityID",
            "/report/vulnerabilities/0/resource",
            "/report/vulnerabilities/0/installedVersion",
        ],
        noise: &[
            ("/report/updateTimestamp", Noise::Time),
            ("/metadata/creationTimestamp", Noise::Time),
            ("/metadata/resourceVersion", Noise::Text),
            ("/report/vulnerabilities/0/fixedVersion", Noise::Text),
            ("/report/vulnerabilities/0/title", Noise::Text),
        ],
    },
    Case {
        format: Format::Kyverno,
        fixture: "kyverno/policyreport.json",
        config: "",
        identity: &[
            "/results/1/source",
            "/results/1/policy",
            "/results/1/rule",
            "/scope/apiVersion",
            "/scope/kind",
            "/scope/namespace",
            "/scope/name",
        ],
        noise: &[
            ("/results/1/timestamp/seconds", Noise::Integer),
            ("/metadata/creationTimestamp", Noise::Time),
            ("/results/1/message", Noise::Text),
            ("/scope/uid", Noise::Text),
        ],
    },
    Case {
        format: Format::KubeBench,
        fixture: "kube-bench/single-controls.json",
        config: "",
        identity: &["/version", "/tests/0/results/1/test_number"],
        noise: &[
            ("/tests/0/results/1/actual_value", Noise::Text),
            ("/tests/0/results/1/test_desc", Noise::Text),
            ("/detected_version", Noise::Text),
        ],
    },
    Case {
        format: Format::Checkov,
        fixture: "checkov/single-framework.json",
        config: "",
        identity: &[
            "/check_type",
            "/results/failed_checks/0/check_id",
            "/results/failed_checks/0/repo_file_path",
            "/results/failed_checks/0/resource",
        ],
        noise: &[
            ("/results/failed_checks/0/file_abs_path", Noise::Text),
            ("/results/failed_checks/0/check_name", Noise::Text),
            ("/summary/checkov_version", Noise::Text),
        ],
    },
    Case {
        format: Format::Generic,
        fixture: "generic/single-object.json",
        config: "",
        identity: &[
            "/rule",
            "/resource/kind",
            "/resource/name",
            "/namespace",
            "/node",
        ],
        noise: &[
            ("/time", Noise::Time),
            ("/message", Noise::Text),
            ("/extra/attempts", Noise::Integer),
        ],
    },
];

fn fixture(case: &Case) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(case.fixture);
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

fn fingerprints(case: &Case, text: &[u8]) -> Vec<Fingerprint> {
    let config: NormalizeConfig = serde_yaml_ng::from_str(case.config).unwrap_or_default();
    let out = Normalizer::new(config)
        .unwrap()
        .normalize(case.format, text, &ctx())
        .unwrap();
    assert!(out.errors.is_empty(), "{}: {:?}", case.fixture, out.errors);
    assert!(!out.events.is_empty(), "{}: no events", case.fixture);
    out.events.iter().map(|e| e.fingerprint).collect()
}

/// Sets the value at a JSON pointer, creating missing objects on the way.
fn set(doc: &mut Value, pointer: &str, new: Value) {
    let mut at = doc;
    for token in pointer.split('/').skip(1) {
        at = match at {
            Value::Array(items) => &mut items[token.parse::<usize>().unwrap()],
            Value::Object(map) => map
                .entry(token.to_owned())
                .or_insert_with(|| Value::Object(Map::new())),
            other => panic!("{pointer}: cannot descend into {other}"),
        };
    }
    *at = new;
}

/// Serialises with every object's keys in an order drawn from `seed`.
fn shuffled_json(v: &Value, seed: &mut u64) -> String {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), shuffled_json(v, seed)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|v| shuffled_json(v, seed))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

fn noise_value(kind: Noise, n: u64) -> Value {
    match kind {
        Noise::Time => {
            let t = zen_model::Timestamp::from_second(1_600_000_000 + (n % 400_000_000) as i64)
                .unwrap();
            Value::String(t.to_string())
        }
        Noise::Integer => Value::from(1_600_000_000 + n % 400_000_000),
        Noise::Text => Value::String(format!("noise-{n}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn fingerprints_ignore_timestamps_key_order_and_other_fields(
        which in 0..CASES.len(),
        seed in 1u64..,
        values in prop::collection::vec(any::<u64>(), 8),
    ) {
        let case = &CASES[which];
        let original = fixture(case);
        let before = fingerprints(case, &serde_json::to_vec(&original).unwrap());
        let mut changed = original.clone();
        for ((pointer, kind), n) in case.noise.iter().zip(&values) {
            set(&mut changed, pointer, noise_value(*kind, *n));
        }
        let mut seed = seed;
        let after = fingerprints(case, shuffled_json(&changed, &mut seed).as_bytes());
        prop_assert_eq!(before, after, "{}", case.fixture);
    }

    #[test]
    fn fingerprints_change_with_every_identity_field(
        which in 0..CASES.len(),
        value in "[a-z0-9][a-z0-9.-]{0,15}",
    ) {
        let case = &CASES[which];
        let original = fixture(case);
        let before = fingerprints(case, &serde_json::to_vec(&original).unwrap());
        for pointer in case.identity {
            let mut changed = original.clone();
            let value = match original.pointer(pointer) {
                Some(Value::String(old)) if *old == value => format!("{value}-changed"),
                _ => value.clone(),
            };
            set(&mut changed, pointer, Value::String(value));
            let after = fingerprints(case, &serde_json::to_vec(&changed).unwrap());
            prop_assert_ne!(before[0], after[0], "{} {}", case.fixture, pointer);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// NDJSON.

/// A line of an NDJSON payload of Falco alerts.
#[derive(Debug, Clone)]
enum Line {
    /// An alert of its own rule, `n`.
    Good(u16),
    /// An alert cut short after this many bytes (at least one; never the whole).
    Cut(prop::sample::Index),
    /// Two alerts on one line.
    Two(u16),
    Blank,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => any::<u16>().prop_map(Line::Good),
        2 => any::<prop::sample::Index>().prop_map(Line::Cut),
        1 => any::<u16>().prop_map(Line::Two),
        1 => Just(Line::Blank),
    ]
}

fn alert(n: u16) -> String {
    let mut doc = fixture(&CASES[0]);
    set(&mut doc, "/rule", Value::String(format!("rule {n}")));
    serde_json::to_string(&doc).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn each_ndjson_line_counts_alone(
        first in any::<u16>(),
        rest in prop::collection::vec(line(), 1..12),
        crlf in any::<bool>(),
    ) {
        let n = Normalizer::default();
        let alone = |text: &str| n.normalize(Format::Falco, text.as_bytes(), &ctx()).unwrap().events;
        // The first line is good: a bad first line followed by a blank one is read as the
        // start of a pretty-printed document, which ends the input.
        let lines = std::iter::once(Line::Good(first)).chain(rest);
        let (mut payload, mut events, mut bad) = (String::new(), Vec::new(), Vec::new());
        for (i, l) in lines.enumerate() {
            let text = match l {
                Line::Good(k) => {
                    events.extend(alone(&alert(k)));
                    alert(k)
                }
                Line::Cut(at) => {
                    bad.push(format!("line {}", i + 1));
                    let whole = alert(0);
                    whole[..1 + at.index(whole.len() - 1)].to_owned()
                }
                Line::Two(k) => {
                    events.extend(alone(&alert(k)));
                    events.extend(alone(&alert(k.wrapping_add(1))));
                    format!("{} {}", alert(k), alert(k.wrapping_add(1)))
                }
                Line::Blank => String::new(),
            };
            payload.push_str(&text);
            payload.push_str(if crlf { "\r\n" } else { "\n" });
        }
        let out = n.normalize(Format::Falco, payload.as_bytes(), &ctx()).unwrap();
        prop_assert_eq!(out.events, events);
        let at: Vec<&str> = out
            .errors
            .iter()
            .map(|e| e.at.split([',', ':']).next().unwrap_or(""))
            .collect();
        prop_assert_eq!(at, bad, "{:?}", out.errors);
    }
}
