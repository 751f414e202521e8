//! The per-second history through the daemon: recorded once a second, read back by
//! `/api/v1/query`, and the same after SIGTERM and a start.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{get, post, start};

const RECEIVED: &str = "zen_watcher_events_total";

/// `text` as a query-string value.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn try_query(addr: std::net::SocketAddr, from: i64, to: i64) -> (u16, Value) {
    let path = format!(
        "/api/v1/query?series={}&from={from}&to={to}&points=1000",
        encoded(RECEIVED)
    );
    let (code, body) = get(addr, &path);
    (code, serde_json::from_str(&body).unwrap())
}

fn query(addr: std::net::SocketAddr, from: i64, to: i64) -> Value {
    let (code, answer) = try_query(addr, from, to);
    assert_eq!(code, 200, "{answer}");
    answer
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_history_records_every_second_and_keeps_it_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    let alert = r#"{"rule":"r","priority":"Warning","output_fields":{"k8s.ns.name":"shop"}}"#;
    // Events over a few seconds, until three seconds have a rate.
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        assert_eq!(post(addr, "/api/v1/ingest/falco", alert), 202);
        // Until the recorder's first second, the series is not known.
        let (_, answer) = try_query(addr, -120, 0);
        let points = answer["series"][0]["avg"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v.is_number())
            .count();
        if points >= 3 {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no three seconds recorded in 30 s: {answer}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(answer["tier_step"], 1);
    let (code, meta) = get(addr, "/api/v1/meta");
    assert_eq!(code, 200);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    let series: Vec<&str> = meta["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(series.contains(&RECEIVED), "{series:?}");
    assert_eq!(meta["tiers"][2]["retention_seconds"], 30 * 86_400);

    // The seconds recorded so far, read back after a stop and a start.
    let times = answer["times"].as_array().unwrap();
    let values = answer["series"][0]["avg"].as_array().unwrap();
    let last = times
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_number())
        .map(|(t, _)| t.as_i64().unwrap())
        .max()
        .unwrap();
    let first = times[0].as_i64().unwrap();
    let before = query(addr, first, last);
    stop(child);
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    let after = query(addr, first, last);
    assert_eq!(after["times"], before["times"]);
    assert_eq!(
        after["series"], before["series"],
        "the history changed across a restart"
    );
    stop(child);

    // Unknown series and bad parameters are refused, saying why.
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    let (code, body) = get(addr, "/api/v1/query?series=nope");
    assert_eq!(code, 400);
    assert!(body.contains("not recorded"), "{body}");
    let (code, body) = get(
        addr,
        &format!("/api/v1/query?series={}&from=yesterday", encoded(RECEIVED)),
    );
    assert_eq!(code, 400);
    assert!(body.contains("from"), "{body}");
    stop(child);
}

/// A Server-Sent Events stream of the daemon, read line by line.
fn sse(
    addr: std::net::SocketAddr,
    last_event_id: Option<i64>,
) -> std::io::Lines<std::io::BufReader<std::net::TcpStream>> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    write!(
        s,
        "GET /api/v1/stream?series={} HTTP/1.1\r\nHost: localhost\r\n{resume}\r\n",
        encoded("node_load1")
    )
    .unwrap();
    std::io::BufReader::new(s).lines()
}

/// The seconds from `from` to `to` at which node_load1 was recorded.
fn recorded(addr: std::net::SocketAddr, from: i64, to: i64) -> Vec<i64> {
    let path = format!("/api/v1/query?series=node_load1&from={from}&to={to}&points=10000");
    let answer: Value = serde_json::from_str(&get(addr, &path).1).unwrap();
    let times = answer["times"].as_array().unwrap();
    let values = answer["series"][0]["avg"].as_array().unwrap();
    times
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_number())
        .map(|(t, _)| t.as_i64().unwrap())
        .collect()
}

/// The next event's id, or `None` when the stream ends.
fn next_id(lines: &mut std::io::Lines<std::io::BufReader<std::net::TcpStream>>) -> Option<i64> {
    for line in lines {
        if let Some(id) = line.ok()?.strip_prefix("id: ") {
            return id.trim().parse().ok();
        }
    }
    None
}

#[test]
fn streams_backfill_then_tick_resume_without_a_gap_and_end_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    // Until the recorder has recorded node_load1 a few times.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(addr, "/api/v1/meta").1.contains("node_load1") {
        assert!(Instant::now() < deadline, "node_load1 never recorded");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));

    // The backfill, then each second: every recorded second, in order (a second the recorder
    // missed under load is missing from both).
    let mut stream = sse(addr, None);
    let ids: Vec<i64> = (0..5).map_while(|_| next_id(&mut stream)).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(recorded(addr, ids[0], ids[4]), ids);
    drop(stream);

    // A reconnect with the last id seen resumes with the next second recorded.
    let last = ids[4];
    let mut resumed = sse(addr, Some(last));
    let first = next_id(&mut resumed).unwrap();
    assert_eq!(recorded(addr, last + 1, first), [first]);

    // Shutdown ends the stream within 3 s, and the daemon exits.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    while next_id(&mut resumed).is_some() {}
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    let mut child = child;
    assert!(child.wait().unwrap().success());
}

/// The next event of a stream: its `event` field (`message` when none) and its data.
fn next_event(
    lines: &mut std::io::Lines<std::io::BufReader<std::net::TcpStream>>,
) -> (String, Value) {
    let mut event = "message".to_owned();
    for line in lines {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            return (event, serde_json::from_str(data).unwrap());
        }
    }
    panic!("the stream ended");
}

#[test]
fn a_stream_of_every_series_names_the_series_registered_after_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    let falco = r#"zen_watcher_events_total{source="falco"}"#;
    // Opened as the page opens it, before any event: no series of a source yet.
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/v1/stream HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut stream = std::io::BufReader::new(s).lines();
    let (kind, first) = next_event(&mut stream);
    assert_eq!(kind, "series");
    let has = |names: &Value| names.as_array().unwrap().iter().any(|n| n == falco);
    assert!(!has(&first), "{first}");
    let alert = r#"{"rule":"r","priority":"Warning","output_fields":{"k8s.ns.name":"shop"}}"#;
    assert_eq!(post(addr, "/api/v1/ingest/falco", alert), 202);
    // A new list comes before the first second that carries the new series, and every second
    // after it has a value per name.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut names = first;
    while !has(&names) {
        assert!(Instant::now() < deadline, "no list of series with {falco}");
        match next_event(&mut stream) {
            (kind, list) if kind == "series" => names = list,
            (_, tick) => assert_eq!(
                tick["values"].as_array().unwrap().len(),
                names.as_array().unwrap().len()
            ),
        }
    }
    let names = names.as_array().unwrap();
    let (kind, tick) = next_event(&mut stream);
    assert_eq!(kind, "message");
    assert_eq!(tick["values"].as_array().unwrap().len(), names.len());
    stop(child);
}

/// The raw answer to `GET path` with extra header lines: status line and headers, and body.
fn raw_get(addr: std::net::SocketAddr, path: &str, headers: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{headers}\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn the_page_export_report_and_top_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));

    // The page: its files with an ETag and a policy that allows no inline script.
    let (head, body) = raw_get(addr, "/", "");
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(body.contains("assets/app.js"), "{body}");
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_owned();
    let (head, body) = raw_get(addr, "/", &format!("If-None-Match: {etag}\r\n"));
    assert!(head.starts_with("http/1.0 304"), "{head}");
    assert!(body.is_empty());
    let (head, _) = raw_get(addr, "/assets/uPlot.iife.min.js", "");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(get(addr, "/assets/nope.js").0, 404);

    // A finding whose rule and namespace are markup, and seconds of history.
    let hostile =
        r#"{"title":"t","severity":"high","namespace":"<ns>","rule":"<script>x</script>"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert_eq!(
            post(addr, "/api/v1/ingest/generic?ack=commit", hostile),
            200
        );
        if get(addr, "/api/v1/meta").1.contains("node_load1") && recorded(addr, -60, 0).len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no three seconds recorded in 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // CSV: `timestamp,<series…>`, a row per step, names quoted as RFC 4180 asks.
    let path = format!(
        "/api/v1/export?format=csv&series=node_load1&series={}&from=-30&to=0",
        encoded(r#"zen_watcher_events_total{severity="high"}"#)
    );
    let (head, csv) = raw_get(addr, &path, "");
    assert!(head.contains("content-type: text/csv"), "{head}");
    assert!(head.contains("content-disposition: attachment"), "{head}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(r#"timestamp,node_load1,"zen_watcher_events_total{severity=""high""}""#)
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 31, "{csv}");
    assert!(rows.iter().all(|r| r.split(',').count() == 3), "{csv}");
    assert!(
        rows[0].starts_with("20") && rows[0].contains('T'),
        "{}",
        rows[0]
    );
    let (head, json) = raw_get(
        addr,
        "/api/v1/export?format=json&series=node_load1&from=-30",
        "",
    );
    assert!(head.contains("application/json"), "{head}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["series"][0]["name"], "node_load1");
    let (code, body) = get(addr, "/api/v1/export?format=xml");
    assert_eq!(code, 400);
    assert!(body.contains("csv or json"), "{body}");

    // Top rules and namespaces of the range.
    let (code, top) = get(addr, "/api/v1/top?by=namespace&from=-3600");
    assert_eq!(code, 200, "{top}");
    let top: Value = serde_json::from_str(&top).unwrap();
    assert_eq!(top["items"][0]["key"], "<ns>");
    assert_eq!(get(addr, "/api/v1/top?by=colour").0, 400);

    // The report: self-contained, every text escaped.
    let (head, report) = raw_get(addr, "/api/v1/report?from=-600", "");
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(
        report.contains("&lt;script&gt;x&lt;/script&gt;"),
        "escaped rule"
    );
    assert!(!report.contains("<script"), "no script at all");
    assert!(report.contains("<svg") && report.contains("SLO attainment"));
    assert_eq!(get(addr, "/api/v1/report?from=0&to=-60").0, 400);

    // The same report from the command line.
    let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["report", "--from", "-10m", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.starts_with("<!doctype html>") && printed.contains("&lt;ns&gt;"),
        "{printed}"
    );
    stop(child);
}
