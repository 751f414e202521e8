//! The daemon's own readings against independent ones read by the test at the same time: its
//! CPU seconds against `/proc/<pid>/stat`, interface counters against
//! `/sys/class/net/*/statistics`, its usage percentages in range.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

mod common;
use common::{KillOnDrop, get, start};

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn sysfs(device: &str, counter: &str) -> f64 {
    std::fs::read_to_string(format!("/sys/class/net/{device}/statistics/{counter}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn own_cpu_and_interface_counters_agree_with_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, addr, logs) = start(dir.path(), &[("ZEN_COLLECT_INTERVAL", "100ms")]);
    let pid = daemon.id();
    let _daemon = KillOnDrop(daemon);
    std::thread::spawn(move || logs.for_each(drop));
    std::thread::sleep(Duration::from_millis(300));

    let first = samples(&get(addr, "/metrics").1);
    let devices: Vec<String> = first
        .keys()
        .filter_map(|k| k.strip_prefix("node_network_receive_bytes_total{device=\""))
        .map(|k| k.trim_end_matches("\"}").to_owned())
        .collect();
    assert!(!devices.is_empty());

    // The collector samples every 100 ms, so a scrape 150 ms after `sys_before` is usually
    // newer than it, and older than `sys_after` — but on a loaded machine a sample can come
    // late: a reading that falls outside is taken again (the scrapes themselves move `lo`).
    let mut attempts = 0;
    let ours = loop {
        attempts += 1;
        let cpu_before = cpu_seconds(pid);
        let sys_before: Vec<(f64, f64)> = devices
            .iter()
            .map(|d| (sysfs(d, "rx_bytes"), sysfs(d, "tx_packets")))
            .collect();
        std::thread::sleep(Duration::from_millis(150));
        let ours = samples(&get(addr, "/metrics").1);
        let cpu_after = cpu_seconds(pid);
        let sys_after: Vec<(f64, f64)> = devices
            .iter()
            .map(|d| (sysfs(d, "rx_bytes"), sysfs(d, "tx_packets")))
            .collect();
        // Ticks are hundredths of a second, summed in floating point two ways.
        let cpu = ours["process_cpu_seconds_total"];
        let mut wrong = Vec::new();
        if cpu < cpu_before - 1e-9 || cpu > cpu_after + 1e-9 {
            wrong.push(format!(
                "process_cpu_seconds_total {cpu}, /proc says {cpu_before} then {cpu_after}"
            ));
        }
        for (i, d) in devices.iter().enumerate() {
            let rx = ours[&format!("node_network_receive_bytes_total{{device=\"{d}\"}}")];
            let tx = ours[&format!("node_network_transmit_packets_total{{device=\"{d}\"}}")];
            if rx < sys_before[i].0 || rx > sys_after[i].0 {
                wrong.push(format!(
                    "{d} rx_bytes {rx}: {:?} {:?}",
                    sys_before[i], sys_after[i]
                ));
            }
            if tx < sys_before[i].1 || tx > sys_after[i].1 {
                wrong.push(format!(
                    "{d} tx_packets {tx}: {:?} {:?}",
                    sys_before[i], sys_after[i]
                ));
            }
        }
        // The process's CPU is read at the scrape: never out of its interval.
        assert!(
            !wrong.iter().any(|w| w.starts_with("process_")),
            "{wrong:?}"
        );
        if wrong.is_empty() {
            break ours;
        }
        assert!(attempts < 40, "after {attempts} readings: {wrong:?}");
    };
    let cpu_pct = ours["zen_watcher_cpu_usage_percent"];
    let mem_pct = ours["zen_watcher_memory_usage_percent"];
    assert!((0.0..=100.0).contains(&cpu_pct), "{cpu_pct}");
    assert!(mem_pct > 0.0 && mem_pct < 100.0, "{mem_pct}");
    // The share is of the cgroup's limit (the daemon is in the test's cgroup), else of the
    // host's memory; RSS moves a little between the two readings.
    let rss = ours["process_resident_memory_bytes"];
    let total = ours["node_memory_MemTotal_bytes"] as u64;
    let limits = zen_collect::limits::read_limits(
        &zen_collect::limits::self_cgroup(),
        std::path::Path::new("/sys/fs/cgroup"),
        1.0,
        total,
    );
    let expected = 100.0 * rss / limits.memory_bytes as f64;
    assert!((mem_pct - expected).abs() < 0.5, "{mem_pct} vs {expected}");
}

#[test]
fn memory_total_and_cpus_agree_with_sysinfo_and_interface_mtu_with_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, addr, logs) = start(dir.path(), &[]);
    let _daemon = KillOnDrop(daemon);
    std::thread::spawn(move || logs.for_each(drop));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ours = loop {
        let ours = samples(&get(addr, "/metrics").1);
        if ours.contains_key("zen_watcher_host_cpus") || std::time::Instant::now() > deadline {
            break ours;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut system = sysinfo::System::new().unwrap();
    system.refresh_memory();
    system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    assert_eq!(
        ours["node_memory_MemTotal_bytes"] as u64,
        system.total_memory(),
        "/proc/meminfo as we read it, and sysinfo"
    );
    assert_eq!(
        ours["zen_watcher_host_memory_bytes"] as u64,
        system.total_memory()
    );
    assert_eq!(ours["zen_watcher_host_cpus"] as usize, system.cpus().len());
    let per_cpu = ours
        .keys()
        .filter(|k| k.starts_with("node_cpu_seconds_total{") && k.contains("mode=\"idle\""))
        .count();
    assert_eq!(per_cpu, system.cpus().len());
    for (series, mtu) in ours.range("node_network_mtu_bytes{".to_owned()..) {
        let Some(device) = series.strip_prefix("node_network_mtu_bytes{device=\"") else {
            break;
        };
        let device = device.trim_end_matches("\"}");
        let sysfs = std::fs::read_to_string(format!("/sys/class/net/{device}/mtu")).unwrap();
        assert_eq!(*mtu, sysfs.trim().parse::<f64>().unwrap(), "{device}");
    }
}
