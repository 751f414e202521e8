//! The data directory on a small filesystem of its own (a tmpfs the test mounts; it needs root,
//! and skips loudly without it — failing under `ZEN_REQUIRE_EXTERNAL=1`): once the disk is full,
//! writes fail and are retried, the queue backs up into 429s, `/readyz` says the store is
//! failing and the logs and metrics say why; once space is freed, writing resumes by itself,
//! nothing accepted is lost and the database is intact.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{KillOnDrop, get, post_answer, start_with};

/// A tmpfs of `size` mounted at a temporary directory, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = rustix::process::geteuid().is_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "mounting a tmpfs needs root (ZEN_REQUIRE_EXTERNAL=1)"
            );
            eprintln!("SKIPPED disk_full: mounting a tmpfs needs root");
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// The filesystem's room and the data directory's files, for a failure's report.
fn usage(fs: &std::path::Path, data: &std::path::Path) -> String {
    let df = Command::new("df")
        .args(["-B1", "--output=size,used,avail"])
        .arg(fs)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', " "))
        .unwrap_or_default();
    let files: Vec<String> = std::fs::read_dir(data)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    format!("{} {len}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    format!("df: {df}; files: {files:?}")
}

fn alerts(from: usize, n: usize) -> String {
    // Long outputs fill the disk sooner.
    let filler = "x".repeat(2000);
    (from..from + n)
        .map(|i| {
            format!(r#"{{"rule":"d{i}","priority":"Warning","output":"{filler}","output_fields":{{"k8s.ns.name":"shop"}}}}"#) + "\n"
        })
        .collect()
}

#[test]
fn a_full_disk_backs_up_says_so_and_writing_resumes_when_space_is_freed() {
    let Some(fs) = Tmpfs::mount("48m") else {
        return;
    };
    let data = fs.0.path().join("data");
    // Room held back, to be freed later: a file of 24 MiB, half the disk. Freed, it must hold
    // what was accepted and not yet written, and the WAL's copy into the database (SQLite can
    // only start a WAL over once all of it is in the database).
    let reserve = fs.0.path().join("reserve");
    std::fs::write(&reserve, vec![7u8; 24 << 20]).unwrap();
    let (child, addr, mut logs) = start_with(
        &data,
        &[
            ("ZEN_QUEUE_CAPACITY", "200"),
            ("ZEN_QUEUE_WAIT", "0s"),
            ("ZEN_MAX_BATCH_AGE", "5ms"),
        ],
        &[],
    );
    let _daemon = KillOnDrop(child);
    let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let logged = logged.clone();
        std::thread::spawn(move || {
            for line in logs.by_ref().map_while(Result::ok) {
                logged.lock().unwrap().push_str(&line);
            }
        });
    }
    // Until the disk is full for good: every 202 counted, 429s (the queue backed up) waited
    // out, until `/readyz` says the store is failing. A 429 alone is not enough: a write that
    // fails for the full disk gives the WAL's space back first, so writing may go on for a
    // while after the first one.
    let (mut accepted, mut next, mut refused) = (0usize, 0usize, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the disk never filled ({accepted} accepted, refused: {refused})"
        );
        let (status, answer) = post_answer(
            addr,
            "/api/v1/ingest/falco",
            &alerts(next, 50),
            Duration::from_secs(30),
        );
        next += 50;
        match status {
            202 => accepted += 50,
            429 => {
                assert!(
                    answer.to_ascii_lowercase().contains("retry-after"),
                    "{answer}"
                );
                refused = true;
                if get(addr, "/readyz").0 == 503 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("answered {other}: {answer}"),
        }
    }
    // Not ready, saying why; the logs and metrics too.
    let (status, body) = get(addr, "/readyz?verbose");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("[-]store failed") && body.contains("full"),
        "{body}"
    );
    let (_, metrics) = get(addr, "/metrics");
    let errors: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("zen_watcher_errors_total{") && l.contains(r#"component="store""#)
        })
        .collect();
    let counted = errors
        .iter()
        .any(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0));
    assert!(counted, "no store errors counted: {errors:?}");
    assert!(
        logged.lock().unwrap().contains("full"),
        "the logs do not say the disk is full"
    );

    // The WAL's bound followed the room left (a quarter of it): the disk filled with the
    // database, not the WAL.
    eprintln!("full: {accepted} accepted; {}", usage(fs.0.path(), &data));
    let wal = std::fs::metadata(data.join("zen-watcher.db-wal")).map_or(0, |m| m.len());
    assert!(wal <= 8 << 20, "the WAL holds {wal} bytes of the full disk");
    // Space freed: writing resumes by itself, and everything accepted is stored.
    std::fs::remove_file(&reserve).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, stats) = get(addr, "/api/v1/stats");
        let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
        let stored: u64 = stats["store"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["observations"].as_u64().unwrap())
            .sum();
        if stored as usize >= accepted {
            assert_eq!(stored as usize, accepted, "{stats}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {accepted} stored after space was freed; {}",
            usage(fs.0.path(), &data)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(addr, "/readyz?verbose");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[+]store ok"), "{body}");
    assert_eq!(
        post_answer(
            addr,
            "/api/v1/ingest/falco?ack=commit",
            &alerts(next, 10),
            Duration::from_secs(30)
        )
        .0,
        200
    );
    let conn = rusqlite::Connection::open(data.join("zen-watcher.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
