//! The wall clock stepped back an hour, then forward two (libfaketime under the daemon, its
//! monotonic clock left alone; skipped loudly without it, failing under
//! `ZEN_REQUIRE_EXTERNAL=1`): de-duplication windows and batch ages, which go by the monotonic
//! clock, do not move; acknowledged requests are answered at once; retention goes on purging
//! by the wall clock at receipt; SLOs, alerts and the history keep answering.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{KillOnDrop, get, post_answer, start_with};
use serde_json::Value;

fn libfaketime() -> Option<&'static str> {
    let found = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "libfaketime is missing (ZEN_REQUIRE_EXTERNAL=1): apt-get install faketime"
        );
        eprintln!("SKIPPED clock: libfaketime is missing (apt-get install faketime)");
    }
    found
}

const ALERT: &str = r#"{"rule":"Terminal shell in container","priority":"Critical","output":"a shell","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"cart"}}"#;

fn observations(addr: SocketAddr) -> Vec<Value> {
    let (status, body) = get(addr, "/api/v1/observations?limit=1000");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["items"].as_array().unwrap().clone()
}

/// Posts a probe finding (no time of its own: stamped with the daemon's clock) until the
/// daemon's clock reads `offset` seconds from the real one, give or take a minute.
fn wait_for_offset(addr: SocketAddr, offset: i64, probes: &mut u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        *probes += 1;
        let title = format!("probe {probes}");
        let body = format!(r#"{{"title":"{title}","severity":"low"}}"#);
        let (status, answer) = post_answer(
            addr,
            "/api/v1/ingest/generic?ack=commit",
            &body,
            Duration::from_secs(10),
        );
        assert_eq!(status, 200, "{answer}");
        let rows = observations(addr);
        let row = rows
            .iter()
            .find(|o| o["title"] == title.as_str())
            .unwrap_or_else(|| panic!("{title} not among {rows:?}"));
        let seen: jiff::Timestamp = row["firstSeen"].as_str().unwrap().parse().unwrap();
        let skew = seen.as_second() - jiff::Timestamp::now().as_second();
        if (skew - offset).abs() < 60 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon's clock is {skew} s off, not {offset}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The alert, acknowledged: answered within a second, whatever the wall clock says.
fn sight(addr: SocketAddr) {
    let started = Instant::now();
    let (status, answer) = post_answer(
        addr,
        "/api/v1/ingest/falco?ack=commit",
        ALERT,
        Duration::from_secs(10),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "acknowledged after {:?}",
        started.elapsed()
    );
}

/// The alert's rows and the count of the first, once it is `count` (duplicate counts are
/// added to their row a moment after they are acknowledged), or after ten seconds.
fn alert_row(addr: SocketAddr, count: u64) -> (usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<Value> = observations(addr)
            .into_iter()
            .filter(|o| o["source"] == "falco")
            .collect();
        let seen = (rows.len(), rows[0]["count"].as_u64().unwrap());
        if seen.1 >= count || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SLOs, alerts and the history answer.
fn still_answering(addr: SocketAddr) {
    for path in ["/api/v1/slos", "/api/v1/alerts", "/api/v1/meta"] {
        let (status, body) = get(addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    }
    assert_eq!(get(addr, "/readyz").0, 200);
}

#[test]
fn stepping_the_wall_clock_back_and_forward_an_hour_moves_no_window() {
    let Some(lib) = libfaketime() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "+0\n").unwrap();
    let config = dir.path().join("zen.yaml");
    std::fs::write(
        &config,
        "retention: 90m\npurge_interval: 1s\npipeline:\n  dedup_window: 10m\n  max_batch_age: 50ms\n",
    )
    .unwrap();
    let (child, addr, logs) = start_with(
        &dir.path().join("data"),
        &[
            ("LD_PRELOAD", lib),
            ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
            // The file read again at most once a second.
            ("FAKETIME_CACHE_DURATION", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
        &["--config", config.to_str().unwrap()],
    );
    let _daemon = KillOnDrop(child);
    std::thread::spawn(move || logs.for_each(drop));
    let mut probes = 0;

    sight(addr);
    assert_eq!(alert_row(addr, 1), (1, 1));
    still_answering(addr);

    // Back an hour: the same finding is a sighting of its row (the window is monotonic).
    std::fs::write(&clock, "-1h\n").unwrap();
    wait_for_offset(addr, -3600, &mut probes);
    sight(addr);
    assert_eq!(alert_row(addr, 2), (1, 2));
    // Purges ran (every second) and took nothing: by the wall clock, nothing is 90 minutes old.
    std::thread::sleep(Duration::from_secs(3));
    let back_probes = observations(addr)
        .iter()
        .filter(|o| o["source"] == "generic")
        .count();
    assert_eq!(back_probes, probes as usize);
    still_answering(addr);

    // Forward to an hour ahead: the same finding, still one row.
    std::fs::write(&clock, "+1h\n").unwrap();
    wait_for_offset(addr, 3600, &mut probes);
    sight(addr);
    assert_eq!(alert_row(addr, 3), (1, 3));
    still_answering(addr);
    // Retention by the wall clock at receipt: the probes stamped an hour back are now two hours
    // old by the daemon's clock, past the 90 minutes, and purged; the alert, last received now,
    // and the probes stamped ahead stay.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = observations(addr);
        let stamped_back = rows
            .iter()
            .filter(|o| {
                o["source"] == "generic"
                    && o["firstSeen"]
                        .as_str()
                        .unwrap()
                        .parse::<jiff::Timestamp>()
                        .unwrap()
                        < jiff::Timestamp::now() - jiff::SignedDuration::from_mins(30)
            })
            .count();
        if stamped_back == 0 {
            assert!(
                rows.iter().any(|o| o["source"] == "falco"),
                "the alert was purged"
            );
            assert!(
                rows.iter().any(|o| o["source"] == "generic"),
                "the probes stamped ahead were purged"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stamped_back} rows stamped back an hour not purged"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
