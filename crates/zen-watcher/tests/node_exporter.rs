//! The host collector against node_exporter (Debian's `prometheus-node-exporter`) on the same
//! machine: every `node_*` series zen-watcher shows exists there under the same name and labels,
//! and each value is within 1 % of node_exporter's, allowing for the change between the reads.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{KillOnDrop, external, get, start};

/// Instantaneous readings that may move by more than 1 % between two reads a few
/// milliseconds apart; they are checked for presence only. The socket counts move with the
/// test's own connections: node_exporter counts the one scraping it, our collector samples
/// between requests.
const MOVING: &[&str] = &[
    "node_netstat_Tcp_CurrEstab",
    "node_sockstat_sockets_used",
    "node_sockstat_TCP_inuse",
    "node_sockstat_TCP_alloc",
    "node_sockstat_TCP_orphan",
    "node_sockstat_TCP_tw",
    "node_procs_running",
    "node_procs_blocked",
    "node_disk_io_now",
    "node_filefd_allocated",
    "node_memory_Dirty_bytes",
    "node_memory_Writeback_bytes",
];

/// `name{labels}` → value, for the `node_*` samples of an exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("node_"))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn node_series_match_node_exporter_within_one_percent() {
    let Some(node_exporter) = external("prometheus-node-exporter") else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ne_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _ne = KillOnDrop(
        Command::new(node_exporter)
            .arg(format!("--web.listen-address={ne_addr}"))
            // node_exporter leaves `lo` out by default; zen-watcher keeps it (a standalone
            // daemon's ingestion arrives on it). Compare the same interfaces.
            .arg("--collector.netdev.device-exclude=^veth.*$")
            // Debian's build also leaves out /mnt, /media and /run; zen-watcher keeps
            // upstream's default. Compare the same mounts.
            .arg(format!(
                "--collector.filesystem.mount-points-exclude={}",
                zen_collect::filesystem::FsExcludes::DEFAULT_MOUNTPOINTS
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (daemon, addr, logs) = start(dir.path(), &[("ZEN_COLLECT_INTERVAL", "100ms")]);
    let _daemon = KillOnDrop(daemon);
    std::thread::spawn(move || logs.for_each(drop));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(ne_addr).is_err() {
        assert!(Instant::now() < deadline, "node_exporter did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300)); // a fresh sample of ours

    // A series passes if, in one of a few rounds, ours lies between two readings of
    // node_exporter (give or take 1 %): gauges like anonymous memory move between reads.
    let mut passed = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    let mut ours = BTreeMap::new();
    for _ in 0..5 {
        let before = samples(&get(ne_addr, "/metrics").1);
        ours = samples(&get(addr, "/metrics").1);
        let after = samples(&get(ne_addr, "/metrics").1);
        wrong.clear();
        for (series, value) in &ours {
            let (Some(a), Some(b)) = (before.get(series), after.get(series)) else {
                wrong.push(format!("{series}: not in node_exporter's output"));
                continue;
            };
            let name = series.split('{').next().unwrap();
            let (lo, hi) = (a.min(*b), a.max(*b));
            let slack = 0.01 * lo.abs().max(hi.abs());
            if MOVING.contains(&name) || (*value >= lo - slack && *value <= hi + slack) {
                passed.insert(series.clone());
            } else if !passed.contains(series) {
                wrong.push(format!(
                    "{series}: ours {value}, node_exporter {a} then {b}"
                ));
            }
        }
        if wrong.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    wrong.retain(|w| !passed.contains(w.split(':').next().unwrap()));
    let compared = passed.len();
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(compared >= 100, "only {compared} series compared");
    for family in [
        "node_cpu_seconds_total{",
        "node_memory_MemTotal_bytes",
        "node_memory_HugePages_Total",
        "node_load1",
        "node_context_switches_total",
        "node_vmstat_pgfault",
        "node_disk_read_bytes_total{",
        "node_network_receive_bytes_total{",
        "node_pressure_cpu_waiting_seconds_total",
        "node_filefd_maximum",
        "node_netstat_Tcp_CurrEstab",
        "node_netstat_Ip6_InOctets",
        "node_network_up{",
        "node_network_mtu_bytes{",
        "node_network_info{",
        "node_filesystem_size_bytes{",
        "node_filesystem_avail_bytes{",
        "node_filesystem_files_free{",
        "node_filesystem_readonly{",
        "node_sockstat_TCP_mem_bytes",
    ] {
        assert!(
            ours.keys().any(|k| k.starts_with(family)),
            "{family} was not compared"
        );
    }
}
