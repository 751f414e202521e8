//! The daemon as a user runs it: the real binary on loopback, real HTTP, SIGTERM, and the
//! database read back afterwards.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{post, start, start_with, try_post};

#[test]
fn sigterm_drains_and_nothing_accepted_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = start(dir.path(), &[("ZEN_MAX_BATCH_SIZE", "7")]);

    // 40 requests of 25 alerts: 100 distinct findings, each seen 10 times; a tenth at debug level.
    let mut accepted = 0;
    for round in 0..40 {
        let body: String = (0..25)
            .map(|i| {
                let id = (round * 25 + i) % 100;
                let priority = if id % 10 == 0 { "Debug" } else { "Warning" };
                format!(r#"{{"rule":"r{id}","priority":"{priority}","output_fields":{{"k8s.ns.name":"shop"}}}}"#) + "\n"
            })
            .collect();
        assert_eq!(post(addr, "/api/v1/ingest/falco", &body), 202);
        accepted += 25;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let stopped: Value = logs
        .map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap())
        .find(|l| l["message"] == "stopped")
        .unwrap();
    let n = |k: &str| stopped[k].as_u64().unwrap();
    assert_eq!(n("received"), accepted);
    assert_eq!(
        n("written") + n("filtered") + n("deduplicated") + n("dead_lettered"),
        accepted
    );
    assert_eq!(n("written"), 100);

    let (store, _) = zen_store::open(&dir.path().join("zen-watcher.db")).unwrap();
    let rows = store
        .list(&zen_store::Query {
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .items;
    assert_eq!(rows.len(), 100, "every accepted finding is stored");
    assert!(
        rows.iter().all(|r| r.observation.count == 10),
        "and counts its nine duplicates"
    );
}

/// The nice value of each of the daemon's threads named `name`.
fn nice_of(pid: u32, name: &str) -> Vec<i64> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // Field 19 of stat, the 17th after the command name and its closing parenthesis.
        let after = stat.rsplit_once(')').unwrap().1;
        found.push(after.split_whitespace().nth(16).unwrap().parse().unwrap());
    }
    found
}

#[test]
fn the_http_threads_yield_to_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = start(dir.path(), &[]);
    std::thread::spawn(move || logs.for_each(drop));
    assert_eq!(
        post(
            addr,
            "/api/v1/ingest/falco",
            "{\"rule\":\"r\",\"priority\":\"Warning\"}"
        ),
        202
    );
    // The main thread keeps the nice value the daemon was started with (this test's, 0 unless
    // run niced), and so do the pipeline's threads; the HTTP threads are set to 3.
    let base = nice_of(child.id(), "zen-watcher");
    assert_eq!(base.len(), 1, "one main thread");
    // A thread the runtime is starting right now has its name before its start hook has run:
    // look again for a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let http = loop {
        let http = nice_of(child.id(), "tokio-rt-worker");
        if http.iter().all(|&n| n == 3) || std::time::Instant::now() > deadline {
            break http;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        !http.is_empty() && http.iter().all(|&n| n == 3),
        "HTTP threads: {http:?}"
    );
    for pipeline in ["zen-process", "zen-sink"] {
        assert_eq!(nice_of(child.id(), pipeline), base, "{pipeline}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn config_check_and_print() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "listen: 127.0.0.1:9999\npipeline:\n  max_batch_age: 250ms\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "pipeline:\n  max_batch_sise: 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown field `max_batch_sise`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["config", "print", "--config"])
        .arg(&good)
        .env("ZEN_MAX_BATCH_SIZE", "3")
        .env("ZEN_STORE_URL", "postgres://zen:hunter2-secret@db/zen")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("listen: 127.0.0.1:9999"), "{printed}");
    // The store's URL holds a password: never printed.
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("url: (redacted)"), "{printed}");
    assert!(printed.contains("max_batch_size: 3"), "{printed}");
    assert!(printed.contains("max_batch_age: 250ms"), "{printed}");
}

#[test]
fn with_ack_commit_every_acknowledged_event_survives_sigkill() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    // A lone sequential client waits out the batch age on every request; keep it short here.
    let (mut child, addr, logs) = start(
        dir.path(),
        &[("ZEN_ACK", "commit"), ("ZEN_MAX_BATCH_AGE", "5ms")],
    );
    std::thread::spawn(move || logs.for_each(drop));
    // Requests of 10 alerts over 20 rules: most sightings are duplicates, within a request and
    // across requests, and acknowledging them promises their counts too.
    let acknowledged_requests = Arc::new(AtomicUsize::new(0));
    let progress = acknowledged_requests.clone();
    let client = std::thread::spawn(move || {
        let mut acknowledged: HashMap<String, u64> = HashMap::new();
        for request in 0usize.. {
            let rules: Vec<String> = (0..10)
                .map(|i| format!("r{}", (request * 3 + i / 2) % 20))
                .collect();
            let body: String = rules
                .iter()
                .map(|r| format!(r#"{{"rule":"{r}","priority":"Warning","output_fields":{{"k8s.ns.name":"shop"}}}}"#) + "\n")
                .collect();
            match try_post(addr, "/api/v1/ingest/falco", &body) {
                Some(200) => {
                    for r in rules {
                        *acknowledged.entry(r).or_default() += 1;
                    }
                    progress.fetch_add(1, Ordering::Release);
                }
                Some(other) => panic!("answered {other}"),
                None => return acknowledged,
            }
        }
        unreachable!()
    });
    // Killed once enough is acknowledged, however slow the machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acknowledged_requests.load(Ordering::Acquire) < 30 {
        assert!(std::time::Instant::now() < deadline, "no load got through");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no draining, no goodbye.
    child.wait().unwrap();
    let acknowledged = client.join().unwrap();

    let (store, _) = zen_store::open(&dir.path().join("zen-watcher.db")).unwrap();
    let stored = counts_by_rule(&store);
    // Requests cut off by the kill may have been stored too: at least what was acknowledged.
    let short: Vec<_> = acknowledged
        .iter()
        .filter(|(rule, n)| stored.get(*rule).copied().unwrap_or(0) < **n)
        .map(|(rule, n)| {
            format!(
                "{rule}: {n} acknowledged, {} stored",
                stored.get(rule).copied().unwrap_or(0)
            )
        })
        .collect();
    let sightings: u64 = acknowledged.values().sum();
    assert!(sightings >= 300, "{sightings}");
    assert!(short.is_empty(), "sightings lost: {short:?}");
}

#[test]
fn what_the_store_refuses_is_kept_as_a_dead_letter_listed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = start(dir.path(), &[("ZEN_ACK", "commit")]);
    std::thread::spawn(move || logs.for_each(drop));
    // A store that refuses one rule for good: a constraint the sink cannot retry past.
    let db = rusqlite::Connection::open(dir.path().join("zen-watcher.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON observations WHEN NEW.rule_id = 'poison'
         BEGIN SELECT RAISE(ABORT, 'poisoned for the test'); END;",
    )
    .unwrap();
    let alert = |rule: &str| {
        format!(
            r#"{{"rule":"{rule}","priority":"Warning","output_fields":{{"k8s.ns.name":"shop"}}}}"#
        )
    };
    assert_eq!(post(addr, "/api/v1/ingest/falco", &alert("poison")), 500);
    assert_eq!(post(addr, "/api/v1/ingest/falco", &alert("fine")), 200);

    let (status, body) = common::get(addr, "/api/v1/dead-letters");
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let letter = &listed["items"][0];
    assert_eq!(letter["source"], "falco");
    assert_eq!(letter["events"][0]["ruleId"], "poison");
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("poisoned for the test"),
        "{letter}"
    );
    let stats =
        |addr| -> Value { serde_json::from_str(&common::get(addr, "/api/v1/stats").1).unwrap() };
    assert_eq!(stats(addr)["dead_letters"]["letters"], 1);

    // Mended, the letter is replayed by the command and its finding stored.
    db.execute_batch("DROP TRIGGER poison").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["dead-letters", "replay", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        (replayed["letters"].as_u64(), replayed["left"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(stats(addr)["dead_letters"]["letters"], 0);
    let (_, body) = common::get(addr, "/api/v1/observations");
    let stored: Value = serde_json::from_str(&body).unwrap();
    let mut rules: Vec<&str> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ruleId"].as_str().unwrap())
        .collect();
    rules.sort_unstable();
    assert_eq!(rules, ["fine", "poison"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn observations_also_go_to_json_lines_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = start(
        dir.path(),
        &[("ZEN_ACK", "commit"), ("ZEN_SINKS", "[sqlite, jsonl]")],
    );
    std::thread::spawn(move || logs.for_each(drop));
    let body: String = (0..20)
        .map(|i| {
            format!(
                r#"{{"rule":"r{}","priority":"Warning","output_fields":{{"k8s.ns.name":"shop"}}}}"#,
                i % 10
            ) + "\n"
        })
        .collect();
    assert_eq!(post(addr, "/api/v1/ingest/falco", &body), 200);
    // The JSON lines are written beside the store, not waited for: look until they are there.
    let path = dir.path().join("observations.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 10 || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rules: Vec<&str> = lines
        .iter()
        .map(|l| l["ruleId"].as_str().unwrap())
        .collect();
    rules.sort_unstable();
    let expected: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(rules, expected, "one line a first sighting");
    // Each sink counts what it created (the JSON lines' count may trail their writing a little).
    let counted = |sink: &str| {
        let (_, metrics) = common::get(addr, "/metrics");
        metrics.contains(&format!(
            "zen_watcher_observations_created_total{{source=\"falco\",sink=\"{sink}\"}} 10"
        ))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(counted("sqlite") && counted("jsonl")) {
        assert!(
            std::time::Instant::now() < deadline,
            "created counts per sink"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An audit log line: a RoleBinding `name` created by alice (a finding of its own).
fn audit_line(name: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{name}","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings","verb":"create","user":{{"username":"alice"}},"objectRef":{{"resource":"rolebindings","namespace":"shop","name":"{name}","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"}},"responseStatus":{{"code":201}},"stageTimestamp":"2026-02-11T09:01:02Z"}}"#
    ) + "\n"
}

/// Rule binding names stored, with their counts, once `n` are there (or after 30 s).
fn stored_names(addr: std::net::SocketAddr, n: usize) -> Vec<(String, u64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = common::get(addr, "/api/v1/observations?limit=1000");
        let page: Value = serde_json::from_str(&body).unwrap();
        let mut names: Vec<(String, u64)> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["resource"]["name"].as_str().unwrap().to_owned(),
                    o["count"].as_u64().unwrap(),
                )
            })
            .collect();
        if names.len() >= n || std::time::Instant::now() > deadline {
            names.sort();
            return names;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_tailed_file_is_followed_through_rotation_and_restarts_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let tail = format!("audit:{}", log.display());
    let names = |range: std::ops::Range<usize>| -> String {
        range.map(|i| audit_line(&format!("rb-{i:02}"))).collect()
    };
    // Lines 1-3, a bad line 4, and half of line 5.
    append(&log, &names(0..3));
    append(&log, "{\"auditID\": \n");
    let half = names(3..4);
    append(&log, &half[..40]);
    let (mut child, addr, logs) = start_with(dir.path(), &[], &["--tail", &tail]);
    // Read to the end (a pipe closed early would fail the daemon's writes).
    let warned = std::thread::spawn(move || {
        logs.map(|l| l.unwrap())
            .filter(|l| l.contains("a line could not be read"))
            .last()
    });
    assert_eq!(stored_names(addr, 3).len(), 3);
    // The rest of line 5, then more; then rotation by rename, and a new file.
    append(&log, &half[40..]);
    append(&log, &names(4..6));
    assert_eq!(stored_names(addr, 6).len(), 6);
    std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    append(&log, &names(6..8));
    assert_eq!(stored_names(addr, 8).len(), 8);
    // Stopped mid-file; lines written while it is down are read after the restart, once.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let bad = warned.join().unwrap().expect("the bad line is logged");
    assert!(status.success(), "{status}");
    let bad: Value = serde_json::from_str(&bad).unwrap();
    assert_eq!(bad["line"], 4, "{bad}");
    assert!(
        bad["file"].as_str().unwrap().ends_with("audit.log"),
        "{bad}"
    );
    append(&log, &names(8..10));
    let (mut child, addr, logs) = start_with(dir.path(), &[], &["--tail", &tail]);
    std::thread::spawn(move || logs.for_each(drop));
    let stored = stored_names(addr, 10);
    let expected: Vec<(String, u64)> = (0..10).map(|i| (format!("rb-{i:02}"), 1)).collect();
    assert_eq!(stored, expected, "every line once, none twice");
    // Rotation by truncation: read from the start again.
    std::fs::write(&log, names(10..11)).unwrap();
    assert_eq!(stored_names(addr, 11).len(), 11);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn twenty_sigkills_under_acknowledged_load_lose_nothing_acknowledged() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    let mut sent = 0u64;
    for kill in 0..20usize {
        let (mut child, addr, logs) = start(
            dir.path(),
            &[("ZEN_ACK", "commit"), ("ZEN_MAX_BATCH_AGE", "2ms")],
        );
        std::thread::spawn(move || logs.for_each(drop));
        // Requests of 10 alerts over 50 rules (duplicates within and across requests and runs),
        // from two clients, until the daemon is gone.
        let progress = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..2usize)
            .map(|c| {
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let (mut acked, mut sent) = (HashMap::<String, u64>::new(), 0u64);
                    for request in 0usize.. {
                        let rules: Vec<String> = (0..10)
                            .map(|i| format!("k{}", (kill * 31 + c * 17 + request * 3 + i) % 50))
                            .collect();
                        let body: String = rules
                            .iter()
                            .map(|r| format!(r#"{{"rule":"{r}","priority":"Warning","output_fields":{{"k8s.ns.name":"shop"}}}}"#) + "\n")
                            .collect();
                        sent += 10;
                        match try_post(addr, "/api/v1/ingest/falco", &body) {
                            Some(200) => {
                                for r in rules {
                                    *acked.entry(r).or_default() += 1;
                                }
                                progress.fetch_add(1, Ordering::Release);
                            }
                            Some(other) => panic!("answered {other}"),
                            None => return (acked, sent),
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        // Killed at a different point of the load each time.
        let at = 2 + (kill * 7) % 13;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while progress.load(Ordering::Acquire) < at {
            assert!(std::time::Instant::now() < deadline, "no load got through");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for c in clients {
            let (acked, n) = c.join().unwrap();
            sent += n;
            for (r, k) in acked {
                *acknowledged.entry(r).or_default() += k;
            }
        }
    }
    let db = dir.path().join("zen-watcher.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let (store, _) = zen_store::open(&db).unwrap();
    let stored = counts_by_rule(&store);
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(r, n)| stored.get(*r).copied().unwrap_or(0) < **n)
        .collect();
    let (acked, found): (u64, u64) = (acknowledged.values().sum(), stored.values().sum());
    // The counts add up: nothing acknowledged is missing, and nothing beyond what was sent.
    eprintln!("20 kills: {acked} sightings acknowledged, {found} stored, {sent} sent");
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert!(found <= sent, "{found} stored of {sent} sent");
    assert_eq!(
        store
            .counts()
            .unwrap()
            .by_source_severity
            .iter()
            .map(|c| c.3)
            .sum::<u64>(),
        found
    );
}

/// Every stored Observation's count, by rule, read page by page.
fn counts_by_rule(store: &zen_store::Store) -> std::collections::HashMap<String, u64> {
    let mut stored = std::collections::HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .list(&zen_store::Query {
                limit: 1000,
                after,
                ..Default::default()
            })
            .unwrap();
        for s in page.items {
            if let Some(rule) = s.observation.event.rule_id {
                *stored.entry(rule).or_default() += s.observation.count;
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return stored,
        }
    }
}
