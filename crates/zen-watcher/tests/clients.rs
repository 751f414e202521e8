//! Slow and hostile clients against the real daemon on loopback: slow-loris connections are
//! closed after the header timeout while normal clients are served; beyond the connection
//! limit a connection is told 503 with `Retry-After`; a body that does not arrive gets 408; an
//! oversized header block is refused. Each waits for what it expects with a generous deadline,
//! never for a fixed time.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{KillOnDrop, start_with, try_post};

const ALERT: &str = r#"{"rule":"Terminal shell in container","priority":"Warning","output_fields":{"k8s.ns.name":"shop"}}"#;

fn daemon(dir: &std::path::Path, yaml: &str) -> (KillOnDrop, SocketAddr) {
    let config = dir.join("zen.yaml");
    std::fs::write(&config, yaml).unwrap();
    let config = config.display().to_string();
    let (child, addr, logs) = start_with(&dir.join("data"), &[], &["--config", &config]);
    std::thread::spawn(move || logs.for_each(drop));
    (KillOnDrop(child), addr)
}

/// Reads until the server closes the connection (or `deadline`); what it sent.
fn until_closed(s: &mut TcpStream, deadline: Instant) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn slow_loris_connections_are_closed_and_normal_clients_served_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = daemon(
        dir.path(),
        "connections:\n  header_timeout: 1s\n  max: 400\n",
    );
    // 300 connections that send half a request's headers, then nothing.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /api/v1/ingest/falco HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // Normal clients are served beside them.
    for _ in 0..20 {
        assert_eq!(try_post(addr, "/api/v1/ingest/falco", ALERT), Some(202));
    }
    // Every slow connection is closed by the server, without a request having been read.
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in &mut slow {
        let said = until_closed(s, deadline).expect("a slow-loris connection was left open");
        assert!(!said.contains("202"), "{said}");
    }
    assert_eq!(try_post(addr, "/api/v1/ingest/falco", ALERT), Some(202));
}

#[test]
fn beyond_the_connection_limit_a_connection_is_told_503_and_room_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = daemon(
        dir.path(),
        "connections:\n  header_timeout: 2s\n  max: 20\n",
    );
    // 20 idle connections fill the limit (the accept loop takes them in order).
    let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The next is told to come back, and closed; it is retried until the idle ones are gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut told = None;
    let mut served = false;
    while Instant::now() < deadline && !served {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            format!(
                "POST /api/v1/ingest/falco HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ALERT}",
                ALERT.len()
            )
            .as_bytes(),
        )
        .ok();
        let said = until_closed(&mut s, deadline).unwrap_or_default();
        if said.starts_with("HTTP/1.1 503") {
            told.get_or_insert(said);
        } else if said.starts_with("HTTP/1.1 202") {
            served = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let told = told.expect("no 503 beyond the connection limit");
    assert!(told.contains("Retry-After: 1"), "{told}");
    assert!(told.contains("too many connections"), "{told}");
    assert!(served, "the idle connections' room never came back");
    drop(idle);
}

#[test]
fn a_body_that_does_not_arrive_gets_408_and_huge_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = daemon(dir.path(), "connections:\n  body_timeout: 1s\n");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /api/v1/ingest/falco HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"rule\":",
    )
    .unwrap();
    let said = until_closed(&mut s, Instant::now() + Duration::from_secs(30)).unwrap();
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    // A header block far beyond what any sender needs (hyper's bound, ~400 KB) is refused
    // rather than buffered.
    let mut s = TcpStream::connect(addr).unwrap();
    let huge = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = s.write_all(huge.as_bytes());
    let said = until_closed(&mut s, Instant::now() + Duration::from_secs(30)).unwrap_or_default();
    assert!(!said.contains("200 OK"), "{said}");
    assert_eq!(try_post(addr, "/api/v1/ingest/falco", ALERT), Some(202));
}
