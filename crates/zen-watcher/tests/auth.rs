//! Scoped tokens on the real daemon: each token kept to its scope (401 without one, 403 outside
//! it), the command line asking the daemon with the token its command needs, and no listening
//! beyond loopback without any token unless `--insecure-no-auth` says so.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

const ALERT: &str = r#"{"rule":"Terminal shell in container","priority":"Warning","time":"2026-12-07T10:00:00Z","output":"a shell","output_fields":{}}"#;

/// A request with a bearer token; the status code.
fn call(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn each_token_keeps_to_its_scope_and_the_command_line_picks_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ingest = file("ingest", "falco:ingest-0123456789ab\n");
    let read = file("read", "# Prometheus and Grafana\nread-0123456789abcd\n");
    let admin = file("admin", "ops:admin-0123456789abc\n");
    let data = dir.path().join("data");
    let env = [
        ("ZEN_INGEST_TOKEN_FILE", ingest.as_str()),
        ("ZEN_READ_TOKEN_FILE", read.as_str()),
        ("ZEN_ADMIN_TOKEN_FILE", admin.as_str()),
    ];
    let (daemon, addr, logs) = common::start(&data, &env);
    let mut daemon = common::KillOnDrop(daemon);
    let log = std::thread::spawn(move || logs.map(Result::unwrap).collect::<Vec<_>>().join("\n"));

    let ingest_path = "/api/v1/ingest/falco?ack=commit";
    assert_eq!(
        call(addr, "POST", ingest_path, "nobody-0123456789ab", ALERT),
        401
    );
    assert_eq!(
        call(addr, "POST", ingest_path, "ingest-0123456789ab", ALERT),
        200
    );
    assert_eq!(
        call(addr, "POST", ingest_path, "read-0123456789abcd", ALERT),
        403
    );
    assert_eq!(
        call(addr, "GET", "/api/v1/stats", "ingest-0123456789ab", ""),
        403
    );
    assert_eq!(
        call(addr, "GET", "/api/v1/stats", "read-0123456789abcd", ""),
        200
    );
    assert_eq!(
        call(addr, "GET", "/metrics", "read-0123456789abcd", ""),
        200
    );
    let rules = "/api/v1/alerts/rules";
    assert_eq!(call(addr, "PUT", rules, "read-0123456789abcd", "{}"), 403);
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/dead-letters/replay",
            "read-0123456789abcd",
            ""
        ),
        403
    );
    assert_eq!(
        call(addr, "GET", "/api/v1/stats", "admin-0123456789abc", ""),
        200
    );
    assert_eq!(
        call(addr, "POST", ingest_path, "admin-0123456789abc", ALERT),
        200
    );

    // The command line: a replay needs the admin token, a report a read one; each finds its own.
    let cli = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
            .args(args)
            .args(["--listen", &addr.to_string()])
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let replay = cli(&["dead-letters", "replay"], &env);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let report = cli(&["report", "--from", "-10m"], &env[1..2]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let refused = cli(&["dead-letters", "replay"], &env[1..2]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("needs a token of scope admin"), "{said}");

    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let log = log.join().unwrap();
    for secret in [
        "ingest-0123456789ab",
        "read-0123456789abcd",
        "admin-0123456789abc",
    ] {
        assert!(!log.contains(secret), "a secret was logged");
    }
}

#[test]
fn beyond_loopback_a_token_is_needed_unless_insecure_no_auth_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("beyond loopback) without a token"), "{said}");
    assert!(
        !dir.path().join("zen-watcher.db").exists(),
        "refused before anything started"
    );

    let (daemon, addr, _logs) = common::start_with(
        dir.path(),
        &[],
        &["--listen", "0.0.0.0:0", "--insecure-no-auth"],
    );
    let _daemon = common::KillOnDrop(daemon);
    assert_eq!(common::post(addr, "/api/v1/ingest/falco", ALERT), 202);
}
