//! Daemons sharing one real PostgreSQL (Debian's, started by the test on a loopback port): three
//! replicas under acknowledged load with duplicates across them, one SIGKILLed and restarted
//! midway; and an outage of PostgreSQL under load. Without PostgreSQL the tests skip loudly
//! (and fail under `ZEN_REQUIRE_EXTERNAL=1`).

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::{KillOnDrop, get, post_answer, start_with, try_post};
use serde_json::Value;
use zen_store::testing::PgServer;

/// Starts a daemon on a port of its own storing into `url`; its logs go to a thread.
fn replica(dir: &std::path::Path, url: &str, env: &[(&str, &str)]) -> (KillOnDrop, SocketAddr) {
    let mut all = vec![("ZEN_STORE_URL", url)];
    all.extend_from_slice(env);
    let (child, addr, logs) = start_with(dir, &all, &[]);
    std::thread::spawn(move || logs.for_each(drop));
    (KillOnDrop(child), addr)
}

/// Falco alerts, one a line, for `rules`.
fn alerts(rules: &[String]) -> String {
    rules
        .iter()
        .map(|r| {
            format!(
                r#"{{"rule":"{r}","priority":"Warning","output_fields":{{"k8s.ns.name":"shop"}}}}"#
            ) + "\n"
        })
        .collect()
}

/// Sum of counts and rows by rule, from the database itself.
fn by_rule(url: &str) -> HashMap<String, (i64, i64)> {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    db.query(
        "SELECT rule_id, COUNT(*), SUM(count)::BIGINT FROM observations GROUP BY rule_id",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

#[test]
fn three_replicas_share_one_postgres_through_a_kill_with_every_acknowledged_event_once() {
    let Some(pg) = PgServer::start_or_skip("postgres::three_replicas_share_one_postgres") else {
        return;
    };
    let url = pg.database("replicas");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // One window for the whole test (it is the bucket replicas merge in): the test never
    // straddles a window's edge, whatever the clock says.
    let env = [
        ("ZEN_ACK", "commit"),
        ("ZEN_MAX_BATCH_AGE", "5ms"),
        ("ZEN_DEDUP_WINDOW", "36500d"),
    ];
    let (mut replicas, addrs): (Vec<KillOnDrop>, Vec<SocketAddr>) =
        (0..3).map(|i| replica(dirs[i].path(), &url, &env)).unzip();
    // Where the clients send: a restarted replica listens on a port of its own (the old one may
    // be taken meanwhile by any connection's source port).
    let addrs = Arc::new(RwLock::new(addrs));

    // Four clients, each spreading its requests over the three replicas in turn: 10 alerts of
    // 60 rules a request, so every rule comes to every replica, many times.
    let acknowledged_requests = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4usize)
        .map(|c| {
            let (addrs, progress, stop) =
                (addrs.clone(), acknowledged_requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged: HashMap<String, u64> = HashMap::new();
                let mut sent: HashMap<String, u64> = HashMap::new();
                let mut request = 0usize;
                while !stop.load(Ordering::Acquire) {
                    let rules: Vec<String> = (0..10)
                        .map(|i| format!("r{}", (request * 7 + c * 13 + i) % 60))
                        .collect();
                    let addr = addrs.read().unwrap()[(request + c) % 3];
                    request += 1;
                    for r in &rules {
                        *sent.entry(r.clone()).or_default() += 1;
                    }
                    match try_post(addr, "/api/v1/ingest/falco", &alerts(&rules)) {
                        Some(200) => {
                            for r in rules {
                                *acknowledged.entry(r).or_default() += 1;
                            }
                            progress.fetch_add(1, Ordering::Release);
                        }
                        // The replica being killed, or restarting: sent, not acknowledged.
                        None | Some(503) => std::thread::sleep(Duration::from_millis(20)),
                        Some(other) => panic!("answered {other}"),
                    }
                }
                (acknowledged, sent)
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while acknowledged_requests.load(Ordering::Acquire) < n {
            assert!(Instant::now() < deadline, "the load did not get through");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(60);
    // Replica 1 is SIGKILLed mid-load, then started again on its data directory.
    replicas[1].0.kill().unwrap();
    replicas[1].0.wait().unwrap();
    let (restarted, addr) = replica(dirs[1].path(), &url, &env);
    replicas[1] = restarted;
    addrs.write().unwrap()[1] = addr;
    let after_restart = acknowledged_requests.load(Ordering::Acquire);
    wait_for(after_restart + 60);
    stop.store(true, Ordering::Release);
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    let mut sent: HashMap<String, u64> = HashMap::new();
    for c in clients {
        let (a, s) = c.join().unwrap();
        for (r, n) in a {
            *acknowledged.entry(r).or_default() += n;
        }
        for (r, n) in s {
            *sent.entry(r).or_default() += n;
        }
    }

    // Every acknowledged sighting is in the database, once: one row per rule (duplicates merged
    // across replicas), whose count is at least what was acknowledged and at most what was sent.
    let stored = by_rule(&url);
    assert_eq!(stored.len(), 60, "{stored:?}");
    for (rule, n) in &acknowledged {
        let (rows, count) = stored[rule];
        assert_eq!(rows, 1, "{rule}: one row across replicas");
        assert!(
            count as u64 >= *n && count as u64 <= sent[rule],
            "{rule}: {n} acknowledged, {count} stored, {} sent",
            sent[rule]
        );
    }
    let acknowledged_total: u64 = acknowledged.values().sum();
    assert!(acknowledged_total >= 1200, "{acknowledged_total}");

    // Every replica's /api/v1/stats agrees with the database.
    let total: i64 = stored.values().map(|(_, c)| c).sum();
    let addrs = addrs.read().unwrap().clone();
    for addr in &addrs {
        let (status, body) = get(*addr, "/api/v1/stats");
        assert_eq!(status, 200, "{body}");
        let stats: Value = serde_json::from_str(&body).unwrap();
        let store = stats["store"].as_array().unwrap();
        let rows: u64 = store
            .iter()
            .map(|s| s["observations"].as_u64().unwrap())
            .sum();
        let occurrences: u64 = store
            .iter()
            .map(|s| s["occurrences"].as_u64().unwrap())
            .sum();
        assert_eq!((rows, occurrences), (60, total as u64), "{addr}: {body}");
    }
}

/// POSTs, waiting up to a minute: the status and the `Retry-After` header.
fn post_with_headers(addr: SocketAddr, path: &str, body: &str) -> (u16, Option<String>) {
    let (status, answer) = post_answer(addr, path, body, Duration::from_secs(60));
    let retry_after = answer.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after: ")
            .map(str::to_owned)
    });
    (status, retry_after)
}

#[test]
fn a_postgres_outage_backs_up_into_429_loses_nothing_and_writing_resumes_by_itself() {
    let Some(mut pg) = PgServer::start_or_skip("postgres::a_postgres_outage") else {
        return;
    };
    let url = pg.database("outage");
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = replica(
        dir.path(),
        &url,
        &[
            ("ZEN_QUEUE_CAPACITY", "200"),
            ("ZEN_QUEUE_WAIT", "0s"),
            ("ZEN_MAX_BATCH_AGE", "5ms"),
        ],
    );
    let mut accepted = 0usize;
    let mut next = 0usize;
    let mut batch = |n: usize| -> Vec<String> {
        let rules = (next..next + n).map(|i| format!("o{i}")).collect();
        next += n;
        rules
    };
    for _ in 0..20 {
        let rules = batch(10);
        assert_eq!(
            post_with_headers(addr, "/api/v1/ingest/falco", &alerts(&rules)).0,
            202
        );
        accepted += 10;
    }
    let stored = || -> usize { by_rule(&url).values().map(|(rows, _)| *rows as usize).sum() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored() < accepted {
        assert!(
            Instant::now() < deadline,
            "{} of {accepted} stored",
            stored()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // PostgreSQL goes away: what is accepted queues, then the queue is full: 429, Retry-After.
    pg.stop();
    let committed = {
        let rules = batch(1);
        std::thread::spawn(move || {
            post_with_headers(addr, "/api/v1/ingest/falco?ack=commit", &alerts(&rules)).0
        })
    };
    let mut refused = None;
    for _ in 0..2_000 {
        let rules = batch(10);
        match post_with_headers(addr, "/api/v1/ingest/falco", &alerts(&rules)) {
            (202, _) => accepted += 10,
            (429, retry_after) => {
                refused = Some(retry_after);
                break;
            }
            (other, _) => panic!("answered {other} during the outage"),
        }
    }
    let retry_after = refused.expect("the queue never filled: no 429 during the outage");
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.trim().parse::<u64>().is_ok()),
        "429 without a Retry-After: {retry_after:?}"
    );
    let (status, body) = get(addr, "/api/v1/stats");
    assert_eq!(status, 500, "reads fail while the store is away: {body}");

    // PostgreSQL is back: the daemon, never restarted, writes everything it accepted.
    pg.resume().unwrap();
    assert_eq!(
        committed.join().unwrap(),
        200,
        "the acknowledged request waited for the commit"
    );
    accepted += 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored() < accepted {
        assert!(
            Instant::now() < deadline,
            "{} of {accepted} stored",
            stored()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rules = batch(10);
    assert_eq!(
        post_with_headers(addr, "/api/v1/ingest/falco?ack=commit", &alerts(&rules)).0,
        200
    );
    let counts = by_rule(&url);
    assert_eq!(counts.len(), accepted + 10, "every accepted event once");
    assert!(
        counts
            .values()
            .all(|&(rows, count)| rows == 1 && count == 1)
    );
}
