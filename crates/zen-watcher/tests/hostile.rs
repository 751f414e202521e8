//! Hostile content at every ingest endpoint: for each of the seven formats, at least forty
//! malformed or hostile bodies (truncations, wrong types, deep nesting, huge strings and arrays,
//! invalid UTF-8 and lone surrogates, duplicate keys, NUL bytes, a YAML bomb, a gzip bomb, mixed
//! NDJSON, …), each sent to the real daemon over HTTP. Each is answered with a 4xx whose JSON
//! error says what is wrong and, for what could not be read, where — or, for mixed NDJSON, its
//! good lines taken and its bad ones named. Every refusal is counted by reason
//! (`zen_watcher_ingest_rejected_total`), and the daemon and what it had stored are undisturbed.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{KillOnDrop, get, root, start};
use serde_json::Value;

/// One hostile request.
struct Case {
    name: String,
    content_type: &'static str,
    gzip: bool,
    body: Vec<u8>,
}

fn case(name: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name: name.to_owned(),
        content_type: "application/json",
        gzip: false,
        body: body.into(),
    }
}

/// The valid payload each format's hostile variants are made from.
fn base(format: &str) -> &'static str {
    match format {
        "falco" => "falco/http-output.json",
        "audit" => "audit/webhook-eventlist.json",
        "trivy" => "trivy/vulnerabilityreport.json",
        "kyverno" => "kyverno/policyreport.json",
        "kube-bench" => "kube-bench/controls-and-totals.json",
        "checkov" => "checkov/single-framework.json",
        _ => "generic/array-of-objects.json",
    }
}

/// The text of `format`'s base payload.
fn payload(format: &str) -> String {
    let path = root()
        .join("crates/zen-model/tests/data")
        .join(base(format));
    std::fs::read_to_string(path).unwrap()
}

/// Every string in `v` replaced by what `f` makes of it (wrong types, huge strings, …).
fn map_strings(v: &Value, f: &dyn Fn(&str) -> Value) -> Value {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), map_strings(x, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every object below the top replaced by `with`.
fn map_objects(v: &Value, with: &Value, depth: usize) -> Value {
    match v {
        Value::Object(_) if depth > 0 => with.clone(),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), map_objects(x, with, depth + 1)))
                .collect(),
        ),
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| map_objects(x, with, depth + 1)).collect())
        }
        other => other.clone(),
    }
}

/// 1 GiB of zeros, gzip-compressed (made once, a megabyte at a time).
fn bomb() -> &'static Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A key `format`'s reader reads, in its base payload.
fn read_key(format: &str) -> &'static str {
    match format {
        "falco" => "priority",
        "audit" => "verb",
        "trivy" => "severity",
        "kyverno" => "result",
        "kube-bench" => "status",
        "checkov" => "check_id",
        _ => "severity",
    }
}

/// What is expected of a hostile body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 4xx, a JSON error saying what (and, for what could not be read, where).
    Refused,
    /// 2xx: the good items taken, each bad one named (its place contains this).
    ItemsNamed(&'static str),
    /// Taken whole, as designed: the generic reader makes a finding of any object.
    Taken,
}

/// What `format` must make of the case `name`.
fn expect(format: &str, name: &str) -> Expect {
    match (format, name) {
        (_, "trailing garbage") => Expect::ItemsNamed("column"),
        (_, "mixed NDJSON") => Expect::ItemsNamed("line 2"),
        // One document: refused whole; lists: the item with the key twice named.
        ("falco", "a key read twice over") => Expect::Refused,
        (_, "a key read twice over") => Expect::ItemsNamed("duplicate"),
        ("generic", "a comment") => Expect::ItemsNamed("line 1"),
        ("generic", n) if n.starts_with("every string") => Expect::ItemsNamed("$["),
        ("generic", "a huge array of empty objects (200,000)") => Expect::Taken,
        _ => Expect::Refused,
    }
}

/// The hostile variants of `base` (one JSON document of `format`).
fn cases(format: &str, base: &str) -> Vec<Case> {
    let doc: Value = serde_json::from_str(base).unwrap();
    let compact = serde_json::to_string(&doc).unwrap();
    let b = compact.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    // Truncations.
    for (i, at) in [1, n / 8, n / 4, n / 2, 3 * n / 4, n - 1]
        .into_iter()
        .enumerate()
    {
        out.push(case(&format!("truncated {i} at byte {at}"), &b[..at]));
    }
    // Not a document at all.
    for (name, body) in [
        ("empty", ""),
        ("white space", " \n\t \r\n "),
        ("null", "null"),
        ("true", "true"),
        ("a number", "42"),
        ("a string", "\"finding\""),
        ("an array of numbers", "[1, 2, 3]"),
        ("an array of strings", "[\"a\", \"b\"]"),
        ("an array of arrays", "[[], [[]], [[[]]]]"),
        ("unbalanced", "{{{{"),
        ("unterminated string", "{\"rule\": \"never ends"),
        ("single quotes", "{'rule': 'x', 'priority': 'Critical'}"),
        ("a comment", "// a comment\n{}"),
    ] {
        out.push(case(name, body));
    }
    // Wrong types.
    out.push(case(
        "every string a number",
        serde_json::to_vec(&map_strings(&doc, &|_| Value::from(12345))).unwrap(),
    ));
    out.push(case(
        "every string an array",
        serde_json::to_vec(&map_strings(&doc, &|s| Value::Array(vec![Value::from(s)]))).unwrap(),
    ));
    out.push(case(
        "every string an object",
        serde_json::to_vec(&map_strings(&doc, &|s| serde_json::json!({ "s": s }))).unwrap(),
    ));
    out.push(case(
        "every inner object a string",
        serde_json::to_vec(&map_objects(&doc, &Value::from("x"), 0)).unwrap(),
    ));
    out.push(case(
        "every inner object a number",
        serde_json::to_vec(&map_objects(&doc, &Value::from(-1), 0)).unwrap(),
    ));
    out.push(case(
        "the document as a string",
        serde_json::to_vec(&compact).unwrap(),
    ));
    // Syntax around a good document.
    out.push(case("trailing garbage", format!("{compact} xyz")));
    out.push(case(
        "a trailing comma",
        format!("{}, }}", &compact[..n - 1]),
    ));
    out.push(case(
        "a byte-order mark",
        [&b"\xef\xbb\xbf"[..], b].concat(),
    ));
    out.push(case("a NUL byte before", [&b"\0"[..], b].concat()));
    out.push(case(
        "a NUL byte inside a string",
        compact.replacen("\":\"", "\":\"\0", 1),
    ));
    out.push(case(
        "a control character inside a string",
        compact.replacen("\":\"", "\":\"\x01", 1),
    ));
    // Encodings.
    out.push(case("invalid UTF-8 first", [&b"\xff\xfe"[..], b].concat()));
    let at = compact.find("\":\"").map_or(0, |i| i + 3);
    out.push(case(
        "invalid UTF-8 inside a string",
        [&b[..at], b"\xc3\x28", &b[at..]].concat(),
    ));
    out.push(case(
        "a lone leading surrogate in every string",
        compact.replace("\":\"", "\":\"\\ud800"),
    ));
    out.push(case(
        "a lone trailing surrogate in every string",
        compact.replace("\":\"", "\":\"\\udc00"),
    ));
    let key = format!("\"{}\":", read_key(format));
    out.push(case(
        "a key read twice over",
        compact.replacen(&key, &format!("{key}\"twice\",{key}"), 1),
    ));
    // Sizes.
    out.push(case(
        "nested arrays 100,000 deep",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ));
    out.push(case(
        "nested objects 20,000 deep",
        format!("{}1{}", "{\"a\":".repeat(20_000), "}".repeat(20_000)),
    ));
    out.push(case(
        "a huge string (4 MiB) for the document",
        format!("\"{}\"", "x".repeat(4 << 20)),
    ));
    out.push(case(
        "a huge array (1,000,000 numbers)",
        format!("[{}1]", "1,".repeat(999_999)),
    ));
    out.push(case(
        "a huge array of empty objects (200,000)",
        format!("[{}{{}}]", "{},".repeat(199_999)),
    ));
    out.push(case(
        "a huge key (1 MiB)",
        format!("{{\"{}\": 1, \"rule\": }}", "k".repeat(1 << 20)),
    ));
    out.push(case("a number out of range", "{\"n\": 1e999999}"));
    // Beyond the body limit (8 MiB here), as it is and once decompressed.
    out.push(case("a body beyond the limit", vec![b' '; 9 << 20]));
    out.push(Case {
        gzip: true,
        ..case("a gzip bomb (1 GiB of zeros, 1 MiB sent)", bomb().clone())
    });
    let mut damaged = gzip(b);
    damaged.truncate(damaged.len() / 2);
    out.push(Case {
        gzip: true,
        ..case("a damaged gzip body", damaged)
    });
    out.push(Case {
        gzip: true,
        ..case("gzip said, plain JSON sent", b.to_vec())
    });
    out.push(Case {
        gzip: true,
        ..case(
            "a gzip bomb of nesting",
            gzip(format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20)).as_bytes()),
        )
    });
    // YAML.
    let laughs = {
        let mut y = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            y.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        y
    };
    for (name, body) in [
        ("a YAML bomb (a billion laughs)", laughs),
        (
            "YAML nested 10,000 deep",
            format!("{}x", "- ".repeat(10_000)),
        ),
        (
            "YAML with a tab for indentation",
            "items:\n\t- a: 1\n".to_owned(),
        ),
        ("YAML with an unknown tag", "!!binary zz: [\n".to_owned()),
        ("a YAML scalar", "just some words\n".to_owned()),
    ] {
        out.push(Case {
            content_type: "application/yaml",
            ..case(name, body)
        });
    }
    out.push(Case {
        content_type: "application/xml",
        ..case("a content type not read", b.to_vec())
    });
    // Mixed NDJSON: the good lines are taken, the bad ones named.
    out.push(Case {
        content_type: "application/x-ndjson",
        ..case(
            "mixed NDJSON",
            format!("{compact}\n{{not json\n{compact}\n"),
        )
    });
    out.push(case("NDJSON of nothing but garbage", "{oops\n[1,\n\"x\n"));
    out
}

/// POST `body` to `path` as `content_type` (gzip-encoded if said): the status and the body.
fn send(addr: SocketAddr, path: &str, c: &Case) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let encoding = if c.gzip {
        "Content-Encoding: gzip\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        c.content_type,
        c.body.len()
    );
    // Written beside the read: a refusal may come before the whole body is sent.
    let mut writer = s.try_clone().unwrap();
    let body = [head.as_bytes(), &c.body].concat();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let _ = sending.join();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}: no answer: {answer:?}", c.name));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

fn rejected(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("zen_watcher_ingest_rejected_total{"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn hostile_inputs_get_a_4xx_that_says_what_and_where_and_disturb_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, _logs) = start(dir.path(), &[("ZEN_BODY_LIMIT", "8388608")]);
    let _daemon = KillOnDrop(child);
    let formats = [
        "falco",
        "audit",
        "trivy",
        "kyverno",
        "kube-bench",
        "checkov",
        "generic",
    ];
    // What each format stored before anything hostile came.
    for format in formats {
        let body = payload(format);
        let (status, answer) = send(
            addr,
            &format!("/api/v1/ingest/{format}?ack=commit"),
            &case("base", body),
        );
        assert_eq!(status, 200, "{format}: the base payload: {answer}");
    }
    let observations = || get(addr, "/api/v1/observations?limit=1000").1;
    let before = observations();
    let mut tried = 0;
    let mut expected_refusals = 0.0;
    let mut failures = Vec::new();
    let mut sent = 0;
    for format in formats {
        let body = payload(format);
        let cases = cases(format, &body);
        assert!(cases.len() >= 40, "{format}: {} cases", cases.len());
        sent += cases.len();
        for c in &cases {
            let (status, answer) = send(addr, &format!("/api/v1/ingest/{format}?ack=commit"), c);
            let what = format!(
                "{format}, {}: {status} {}",
                c.name,
                &answer[..answer.len().min(600)]
            );
            let Ok(json) = serde_json::from_str::<Value>(&answer) else {
                failures.push(format!("{what}: not JSON"));
                continue;
            };
            // An answer is bounded, however many items were bad.
            if answer.len() > 64 << 10 {
                failures.push(format!("{what}: an answer of {} bytes", answer.len()));
            }
            let expected = expect(format, &c.name);
            if expected == Expect::Taken {
                if status != 200 || json["errors"].as_array().is_none_or(|e| !e.is_empty()) {
                    failures.push(format!("{what}: expected it taken whole"));
                }
                continue;
            }
            if let Expect::ItemsNamed(place) = expected {
                let named = json["errors"].as_array().is_some_and(|e| {
                    e.iter()
                        .any(|e| e.as_str().is_some_and(|e| e.contains(place)))
                });
                if status != 200 || json["accepted"].as_u64() == Some(0) || !named {
                    failures.push(format!(
                        "{what}: expected the good taken, the bad named at {place}"
                    ));
                }
                continue;
            }
            if !(400..500).contains(&status) {
                failures.push(format!("{what}: expected a 4xx"));
                continue;
            }
            expected_refusals += 1.0;
            tried += 1;
            if json["error"]["message"].as_str().is_none_or(str::is_empty) {
                failures.push(format!("{what}: says nothing"));
            }
            // What could not be read says where.
            if status == 400
                && !c.gzip
                && json["error"]["position"].as_str().is_none_or(str::is_empty)
            {
                failures.push(format!("{what}: says not where"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{sent} hostile inputs sent, {tried} refused");
    // Every refusal counted, by format and reason.
    let (_, metrics) = get(addr, "/metrics");
    let counted = rejected(&metrics);
    let total: f64 = counted.iter().map(|(_, v)| v).sum();
    assert_eq!(total, expected_refusals, "{counted:?}");
    for reason in ["unreadable", "too_large", "gzip", "unsupported"] {
        assert!(
            counted
                .iter()
                .any(|(s, _)| s.contains(&format!("reason=\"{reason}\""))),
            "no refusal counted as {reason}: {counted:?}"
        );
    }
    // Undisturbed: serving, and every Observation stored before is there as it was (the
    // good items taken meanwhile are added beside them, or counted as sightings of them).
    assert_eq!(get(addr, "/readyz").0, 200);
    let after = observations();
    let rows = |list: &str| -> Vec<Value> {
        let v: Value = serde_json::from_str(list).unwrap();
        v["items"].as_array().unwrap().clone()
    };
    let after = rows(&after);
    for row in rows(&before) {
        let now = after.iter().find(|r| r["id"] == row["id"]);
        let Some(now) = now else {
            panic!("{} is gone", row["id"]);
        };
        for field in [
            "fingerprint",
            "source",
            "severity",
            "title",
            "details",
            "firstSeen",
        ] {
            assert_eq!(now[field], row[field], "{field} of {}", row["id"]);
        }
    }
}
