//! The daemon's limits from cgroup fixtures (pure v2, and v1 as on hybrid hosts), and usage as
//! percentages of them.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;

use zen_collect::limits::{
    Limits, SelfCgroup, parse_cpu_max, parse_memory_max, parse_self_cgroup, read_limits,
    usage_percent,
};

fn root(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn proc_self_cgroup_in_v2_and_hybrid_form() {
    assert_eq!(
        parse_self_cgroup("0::/kubepods.slice/pod1\n"),
        SelfCgroup {
            unified: Some("/kubepods.slice/pod1".into()),
            ..Default::default()
        }
    );
    let hybrid = "9:name=systemd:/\n4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n";
    assert_eq!(
        parse_self_cgroup(hybrid),
        SelfCgroup {
            unified: Some("/".into()),
            memory: Some("/docker/abc".into()),
            cpu: Some("/docker/abc".into()),
        }
    );
}

#[test]
fn limit_files() {
    assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
    assert_eq!(parse_cpu_max("max 100000\n"), None);
    assert_eq!(parse_memory_max("268435456\n"), Some(268_435_456));
    assert_eq!(parse_memory_max("max\n"), None);
    assert_eq!(
        parse_memory_max("9223372036854771712\n"),
        None,
        "v1's unlimited"
    );
}

#[test]
fn v2_limits_are_read_under_the_own_cgroup() {
    let own = parse_self_cgroup("0::/kubepods.slice/pod1\n");
    let l = read_limits(&own, &root("cgroup-v2"), 8.0, 1 << 34);
    assert_eq!(
        l,
        Limits {
            cpu_cores: 0.5,
            memory_bytes: 268_435_456,
            cpu_from_cgroup: true,
            memory_from_cgroup: true,
        }
    );
}

#[test]
fn v1_limits_are_read_per_controller() {
    let own = parse_self_cgroup("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n");
    let l = read_limits(&own, &root("cgroup-v1"), 8.0, 1 << 34);
    assert_eq!((l.cpu_cores, l.memory_bytes), (2.0, 536_870_912));
}

#[test]
fn without_limits_the_host_counts() {
    let own = parse_self_cgroup("0::/elsewhere\n");
    let l = read_limits(&own, &root("cgroup-v2"), 8.0, 1 << 34);
    assert_eq!(
        (l.cpu_cores, l.memory_bytes, l.cpu_from_cgroup),
        (8.0, 1 << 34, false)
    );
    // Half a core used for a second against a limit of two cores is 25 %; 1 GiB of 4 GiB, 25 %.
    let limits = Limits {
        cpu_cores: 2.0,
        memory_bytes: 4 << 30,
        cpu_from_cgroup: true,
        memory_from_cgroup: true,
    };
    assert_eq!(usage_percent(0.5, 1.0, 1 << 30, &limits), (25.0, 25.0));
    assert_eq!(
        usage_percent(0.5, 0.0, 0, &limits),
        (0.0, 0.0),
        "no time passed: no NaN"
    );
}

#[test]
fn a_busy_thread_is_found_by_its_name_with_its_cpu_time() {
    let mut threads = zen_collect::process::Threads::new("/proc");
    let before = threads
        .read()
        .unwrap()
        .get("zen-test-spin")
        .copied()
        .unwrap_or(0.0);
    // The thread spins until its own CPU clock says 200 ms, then waits to be read.
    let (spun, read) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (spun_tx, spun_rx) = spun;
    let (read_tx, read_rx) = read;
    let spin = std::thread::Builder::new()
        .name("zen-test-spin".into())
        .spawn(move || {
            let cpu = || {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
                t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
            };
            let start = cpu();
            while cpu() - start < 0.2 {
                std::hint::black_box(start);
            }
            spun_tx.send(()).unwrap();
            read_rx.recv().unwrap();
        })
        .unwrap();
    spun_rx.recv().unwrap();
    let after = threads.read().unwrap()["zen-test-spin"];
    read_tx.send(()).unwrap();
    spin.join().unwrap();
    // 200 ms of its own CPU time, and what little it ran before and after spinning.
    assert!(after - before >= 0.2, "{before} → {after}");
    assert!(after - before < 0.3, "{before} → {after}");
    let again = threads.read().unwrap()["zen-test-spin"];
    assert!(
        again >= after,
        "a name's total never falls when its thread ends"
    );
    assert_eq!(
        zen_collect::process::parse_schedstat("123456789 5 6\n"),
        Some(0.123456789)
    );
}
