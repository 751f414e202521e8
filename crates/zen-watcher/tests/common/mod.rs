//! Helpers for tests that run the real daemon: start it on an ephemeral loopback port, speak
//! HTTP/1.1 to it by hand, and find the external programs a test needs.

#![allow(dead_code)] // each test file uses its own subset
#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub(crate) fn post(addr: SocketAddr, path: &str, body: &str) -> u16 {
    post_answer(addr, path, body, Duration::from_secs(10)).0
}

/// POSTs NDJSON, waiting up to `wait` for the answer: its status and the whole answer, headers
/// included.
pub(crate) fn post_answer(
    addr: SocketAddr,
    path: &str,
    body: &str,
    wait: Duration,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    (answer.split(' ').nth(1).unwrap().parse().unwrap(), answer)
}

/// `GET path` in HTTP/1.0, so that no answer comes chunked: the status and body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
}

/// Sends a whole HTTP/1.0 request; the answer's status and body.
fn exchange(addr: SocketAddr, request: &str) -> (u16, String) {
    try_exchange(addr, request).unwrap()
}

/// `GET path` answers 200 — false also when the connection fails (a server still starting).
pub(crate) fn answers_ok(addr: SocketAddr, path: &str) -> bool {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    try_exchange(addr, &request).is_ok_and(|(status, _)| status == 200)
}

fn try_exchange(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {answer:?}")))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A loopback port nothing listens on (as of now).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `PUT path` with a JSON body, in HTTP/1.0: the status and body.
pub(crate) fn put(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    exchange(
        addr,
        &format!(
            "PUT {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The repository's root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The path of the external program `name`, or `None` after saying loudly that the test is
/// skipped. With `ZEN_REQUIRE_EXTERNAL=1` (as CI sets) a missing program fails the test.
pub(crate) fn external(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "{name} is required (ZEN_REQUIRE_EXTERNAL=1) but not on PATH; .ci/run installs it"
        );
        eprintln!("\n*** SKIPPED: {name} is not installed; this test proves nothing here ***\n");
    }
    found
}

/// Runs Checkov's `framework` checks on `file` (a program found by [`external`]): asserts that
/// none fails, that at least `passed` pass, and that exactly the checks `skipped` are skipped
/// (the ones the file says why of).
pub(crate) fn checkov_clean(
    checkov: &Path,
    framework: &str,
    file: &Path,
    passed: u64,
    skipped: &[&str],
) {
    let out = Command::new(checkov)
        .args(["--framework", framework])
        .args(["--skip-download", "--compact", "-o", "json", "-f"])
        .arg(file)
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 0, "{report:#}");
    assert!(summary["passed"].as_u64().unwrap() >= passed, "{summary}");
    let mut found: Vec<&str> = report["results"]["skipped_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check_id"].as_str().unwrap())
        .collect();
    found.sort_unstable();
    assert_eq!(found, skipped, "{report:#}");
    assert!(out.status.success());
}

/// The daemon's JSON log lines, read as they come.
pub(crate) type Logs = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// Starts the daemon on an ephemeral loopback port; returns it, its address and its logs (read
/// them, or drop them to a thread, so it never blocks on a full pipe).
pub(crate) fn start(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, SocketAddr, Logs) {
    start_with(dir, env, &[])
}

/// As [`start`], with more command-line arguments (a `--listen` of theirs replaces loopback).
pub(crate) fn start_with(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (std::process::Child, SocketAddr, Logs) {
    let listen: &[&str] = if args.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(listen)
        .args(["--log-format", "json", "--data-dir"])
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line: Value = serde_json::from_str(&logs.next().unwrap().unwrap()).unwrap();
        if let Some(listen) = line["listen"].as_str() {
            break listen.parse().unwrap();
        }
    };
    (child, addr, logs)
}

/// Like `post`, but `None` when the daemon is gone.
pub(crate) fn try_post(addr: SocketAddr, path: &str, body: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

/// Every built-in format's good fixtures (twice, so duplicates are folded), a filtered event,
/// an unreadable payload, and each read route once.
pub(crate) fn short_load(addr: SocketAddr) {
    let data = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../zen-model/tests/data"
    ));
    for format in zen_model::Format::ALL.map(|f| f.as_str()) {
        let mut files: Vec<_> = std::fs::read_dir(data.join(format))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                (name.ends_with(".json") || name.ends_with(".ndjson"))
                    && !name.starts_with("malformed")
                    && !data
                        .join(format)
                        .join(format!("{name}.config.yaml"))
                        .exists()
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{format}");
        for file in files.iter().take(3) {
            let body = std::fs::read_to_string(file).unwrap();
            for _ in 0..2 {
                let status = post(addr, &format!("/api/v1/ingest/{format}?ack=commit"), &body);
                assert!(
                    status == 200 || status == 400,
                    "{}: {status}",
                    file.display()
                );
            }
        }
    }
    let low = r#"{"rule":"Noise","priority":"Debug","output_fields":{"k8s.ns.name":"shop"}}"#;
    assert_eq!(post(addr, "/api/v1/ingest/falco?ack=commit", low), 200);
    assert_eq!(post(addr, "/api/v1/ingest/falco", "{bad"), 400);
    // Ids are sequence numbers, which sightings filtered after de-duplication also take: the
    // one to fetch is one listed.
    let (status, page) = get(addr, "/api/v1/observations?limit=5");
    assert_eq!(status, 200, "/api/v1/observations?limit=5");
    let page: Value = serde_json::from_str(&page).unwrap();
    let id = &page["items"][0]["id"];
    for path in [
        &format!("/api/v1/observations/{id}"),
        "/api/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert_eq!(get(addr, path).0, 200, "{path}");
    }
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

/// A real Alertmanager on a free loopback port, with its data in `dir`, once ready; `None`
/// (said loudly) when it is not installed.
pub(crate) fn start_alertmanager(dir: &Path) -> Option<(KillOnDrop, SocketAddr)> {
    let alertmanager = external("prometheus-alertmanager")?;
    let port = free_port();
    std::fs::write(
        dir.join("am.yaml"),
        "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n- name: none\n",
    )
    .unwrap();
    let am = KillOnDrop(
        Command::new(alertmanager)
            .arg(format!("--config.file={}", dir.join("am.yaml").display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !answers_ok(addr, "/-/ready") {
        assert!(
            std::time::Instant::now() < until,
            "Alertmanager did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some((am, addr))
}

/// The alerts Alertmanager holds (none while it cannot answer).
pub(crate) fn am_alerts(am: SocketAddr) -> Vec<Value> {
    let (status, body) = get(am, "/api/v2/alerts");
    if status != 200 {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `dir/zen.yaml` for tests that read everything the daemon emits: every filter outcome
/// reachable (minimum severity `low`), and the collectors pointed at zen-collect's fixture trees
/// for what this VM lacks — a NIC with a speed (`sys_root`) and cgroups with containers in them
/// (`cgroup_root`, a copy; this host's v1 CPU hierarchy is empty), the docker one's process `net`
/// when given — with the top processes on.
pub(crate) fn full_config(dir: &Path, net: Option<&NetnsProcess>) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zen-collect/tests/data");
    // The fixture containers, the docker one's process a real one when there is one with a
    // network namespace of its own.
    let cgroups = dir.join("cgroups");
    copy_tree(&data.join("containers-v2"), &cgroups);
    if let Some(p) = net {
        for e in std::fs::read_dir(cgroups.join("system.slice"))
            .unwrap()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("docker-") {
                std::fs::write(e.path().join("cgroup.procs"), format!("{}\n", p.pid())).unwrap();
            }
        }
    }
    let config = dir.join("zen.yaml");
    std::fs::write(
        &config,
        format!(
            "filter:\n  global:\n    min_severity: low\nalerting:\n  interval: 1s\ncollect:\n  sys_root: {}\n  cgroup_root: {}\n  collectors:\n    processes: true\n",
            data.join("sys").display(),
            cgroups.display()
        ),
    )
    .unwrap();
    config
}

/// The filesystem a prepared history fills.
pub(crate) const FS: &str = r#"node_filesystem_avail_bytes{mountpoint="/zen-test"}"#;
pub(crate) const P95: &str = r#"zen_watcher_event_processing_duration_seconds:p95{stage="total"}"#;

/// A series to write: its name, its kind, its value at second `i`.
pub(crate) type Written<'a> = (&'a str, zen_history::Kind, &'a dyn Fn(i64) -> f64);

/// Writes a history under `dir/history` of `seconds`, a second apart, ending `now`.
pub(crate) fn write_history(dir: &Path, now: i64, seconds: i64, series: &[Written<'_>]) {
    let start_at = now - seconds;
    let (mut h, _) = zen_history::History::open(&dir.join("history"), start_at).unwrap();
    let ids: Vec<_> = series
        .iter()
        .map(|(name, kind, _)| h.series(name, *kind).unwrap())
        .collect();
    for i in 0..seconds {
        let values: Vec<_> = ids
            .iter()
            .zip(series)
            .map(|(id, (_, _, f))| (*id, f(i)))
            .collect();
        h.record(start_at + i, &values).unwrap();
    }
    h.close().unwrap();
}

/// A wobble of ±0.5, the same for the same second.
pub(crate) fn wobble(i: i64) -> f64 {
    ((i * 7_919) % 101) as f64 / 100.0 - 0.5
}

/// Writes a history (see [`write_history`]) of `seconds` ending `now`: the filesystem [`FS`]
/// with 500 GB free losing 2 MB a second (about three days left at two hours); P95 at 150 ms,
/// 180 ms for the last 10 minutes; two events a second.
pub(crate) fn filling_history(dir: &Path, now: i64, seconds: i64) {
    use zen_history::Kind::{Counter, Gauge};
    write_history(
        dir,
        now,
        seconds,
        &[
            (FS, Gauge, &|i| 500e9 - 2e6 * i as f64 + 1e6 * wobble(i)),
            (P95, Gauge, &|i| {
                let level = if i >= seconds - 600 { 0.180 } else { 0.150 };
                level * (1.0 + 0.02 * wobble(i))
            }),
            ("zen_watcher_events_total", Counter, &|i| 2.0 * i as f64),
        ],
    );
}

/// Writes `yaml` to `config_dir/zen.yaml` and starts the daemon on `data` with it, its logs
/// drained by a thread.
pub(crate) fn start_configured(
    config_dir: &Path,
    data: &Path,
    yaml: &str,
) -> (std::process::Child, SocketAddr) {
    let config = config_dir.join("zen.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (child, addr, logs) = start_with(data, &[], &["--config", config.to_str().unwrap()]);
    std::thread::spawn(move || logs.for_each(drop));
    (child, addr)
}

/// Findings posted to `/api/v1/ingest/generic` one at a time, `every` apart (`body` makes the
/// `i`th), from a thread of its own until dropped.
pub(crate) struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(
        addr: SocketAddr,
        every: Duration,
        body: impl Fn(u64) -> String + Send + 'static,
    ) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0_u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    try_post(addr, "/api/v1/ingest/generic", &body(i));
                    std::thread::sleep(every);
                }
            })
        };
        Load {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A process in a network namespace of its own, with a veth pair (`eth0`, `eth1`), until
/// dropped; `None` where it cannot be made (not root, no `unshare` or `ip`), which fails under
/// `ZEN_REQUIRE_EXTERNAL=1`.
pub(crate) struct NetnsProcess(std::process::Child);

impl NetnsProcess {
    pub(crate) fn start() -> Option<NetnsProcess> {
        let child = Command::new("unshare")
            .args(["-n", "sh", "-c"])
            .arg("ip link add eth0 type veth peer name eth1 && exec sleep 120")
            .spawn()
            .ok();
        let ready = |c: &std::process::Child| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", c.id()));
                if dev.is_ok_and(|d| d.contains("eth0:")) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        };
        match child {
            Some(c) if ready(&c) => Some(NetnsProcess(c)),
            other => {
                if let Some(mut c) = other {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                assert!(
                    std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                    "a network namespace of its own needs root, unshare and ip"
                );
                eprintln!("\n*** SKIPPED: cannot make a network namespace ***\n");
                None
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for NetnsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copies the directory tree `from` to `to`.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&e.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
