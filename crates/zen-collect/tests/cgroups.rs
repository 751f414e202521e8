//! Containers: names from cgroup paths, discovery and readings on cgroup v2 and v1 fixture
//! trees, and a real v1 cgroup of this machine's with a process in it.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zen_collect::cgroups::{
    Container, ContainerReader, Identity, Layout, discover, identify, layout, parse_blkio,
    parse_io_stat,
};

const DOCKER: &str = "4f3a1c9e2b7d8f6a5c4b3a2918273645f0e1d2c3b4a5968778695a4b3c2d1e0f";
const KUBE: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9";
const POD: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn id(runtime: &'static str, name: &str, container: Option<&str>, pod: Option<&str>) -> Identity {
    Identity {
        runtime,
        name: name.to_owned(),
        container_id: container.map(str::to_owned),
        pod_uid: pod.map(str::to_owned),
    }
}

#[test]
fn paths_name_docker_containerd_crio_podman_systemd_and_kubepods() {
    let pod_ = POD.replace('-', "_");
    let short = &DOCKER[..12];
    let cases = [
        (
            format!("/docker/{DOCKER}"),
            id("docker", short, Some(DOCKER), None),
        ),
        (
            format!("/system.slice/docker-{DOCKER}.scope"),
            id("docker", short, Some(DOCKER), None),
        ),
        (
            format!("/system.slice/crio-{DOCKER}.scope"),
            id("cri-o", short, Some(DOCKER), None),
        ),
        (
            format!("/machine.slice/libpod-{DOCKER}.scope"),
            id("podman", short, Some(DOCKER), None),
        ),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod_}.slice/cri-containerd-{KUBE}.scope"
            ),
            id("containerd", &KUBE[..12], Some(KUBE), Some(POD)),
        ),
        (
            format!("/kubepods/burstable/pod{POD}/{KUBE}"),
            id("kubepods", &KUBE[..12], Some(KUBE), Some(POD)),
        ),
        (
            format!("/kubepods.slice/kubepods-pod{pod_}.slice"),
            id("kubepods", &format!("pod{POD}"), None, Some(POD)),
        ),
        (
            format!("/kubepods/besteffort/pod{POD}"),
            id("kubepods", &format!("pod{POD}"), None, Some(POD)),
        ),
        (
            "/kubepods/burstable".to_owned(),
            id("kubepods", "burstable", None, None),
        ),
        (
            "/system.slice/nginx.service".to_owned(),
            id("systemd", "nginx.service", None, None),
        ),
        (
            "/user.slice/user-1000.slice".to_owned(),
            id("systemd", "user-1000.slice", None, None),
        ),
        ("/process_api".to_owned(), id("", "process_api", None, None)),
        // Not a pod: `pod` inside a word, or a UID of the wrong length.
        (
            "/system.slice/ipod-sync.service".to_owned(),
            id("systemd", "ipod-sync.service", None, None),
        ),
        (
            "/kubepods/podabc".to_owned(),
            id("kubepods", "podabc", None, None),
        ),
        // Not a container id: too short.
        ("/docker/abc123".to_owned(), id("", "abc123", None, None)),
    ];
    for (path, want) in cases {
        assert_eq!(identify(&path), want, "{path}");
    }
}

#[test]
fn discovery_walks_breadth_first_and_stops_at_the_limit() {
    let v2 = layout(&data("containers-v2"));
    assert!(matches!(v2, Layout::V2(_)));
    let (all, more) = discover(&v2, 1000);
    assert_eq!(more, 0);
    let pod = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        POD.replace('-', "_")
    );
    assert_eq!(
        all,
        [
            "/kubepods.slice".to_owned(),
            "/system.slice".to_owned(),
            "/kubepods.slice/kubepods-burstable.slice".to_owned(),
            format!("/system.slice/docker-{DOCKER}.scope"),
            "/system.slice/nginx.service".to_owned(),
            pod.clone(),
            format!("{pod}/cri-containerd-{KUBE}.scope"),
        ]
    );
    let (some, more) = discover(&v2, 3);
    assert_eq!(some, all[..3]);
    assert_eq!(more, 4, "the rest are counted, not read");
    let (none, more) = discover(&v2, 0);
    assert_eq!((none.len(), more), (0, 7));

    // v1: one tree per controller, merged by path.
    let v1 = layout(&data("containers-v1"));
    let Layout::V1(dirs) = &v1 else {
        panic!("{v1:?}")
    };
    assert_eq!(dirs.len(), 5, "cpu and cpuacct share cpu,cpuacct: {dirs:?}");
    let (all, more) = discover(&v1, 1000);
    assert_eq!(more, 0);
    assert_eq!(
        all,
        [
            "/docker".to_owned(),
            "/kubepods".to_owned(),
            format!("/docker/{DOCKER}"),
            "/kubepods/burstable".to_owned(),
            format!("/kubepods/burstable/pod{POD}"),
            format!("/kubepods/burstable/pod{POD}/{KUBE}"),
        ]
    );
}

fn read(root: &str, paths: &[String]) -> Vec<Container> {
    let root = data(root);
    let mut reader = ContainerReader::new(layout(&root), &data("containers-proc"));
    reader.watch(paths);
    let mut out = Vec::new();
    let errors = reader.sample(&mut out);
    assert!(errors.is_empty(), "{errors:?}");
    out
}

#[test]
fn cgroup_v2_files_give_cadvisors_figures() {
    let docker = format!("/system.slice/docker-{DOCKER}.scope");
    let got = read(
        "containers-v2",
        &[docker.clone(), "/system.slice/nginx.service".to_owned()],
    );
    let c = &got[0];
    assert_eq!(c.id, docker);
    assert_eq!(c.identity.runtime, "docker");
    assert_eq!(c.cpu_usage_seconds, Some(7.25));
    assert_eq!(c.cpu_user_seconds, Some(4.833333));
    assert_eq!(c.cpu_system_seconds, Some(2.416667));
    assert_eq!(c.cfs_periods, Some(1200));
    assert_eq!(c.cfs_throttled_periods, Some(37));
    assert_eq!(c.cfs_throttled_seconds, Some(0.845));
    assert_eq!(
        c.cpu_quota,
        Some((150_000, 100_000)),
        "a limit of 1.5 cores"
    );
    assert_eq!(c.memory_usage_bytes, Some(104_857_600));
    assert_eq!(c.memory_working_set_bytes, Some(104_857_600 - 20_971_520));
    assert_eq!(c.memory_rss_bytes, Some(62_914_560));
    assert_eq!(c.memory_cache_bytes, Some(41_943_040));
    assert_eq!(c.memory_swap_bytes, Some(4096));
    assert_eq!(c.memory_limit_bytes, Some(268_435_456));
    assert_eq!(c.oom_events, Some(1));
    assert_eq!(c.threads, Some(12));
    assert_eq!(c.threads_max, Some(4096));
    assert_eq!(c.io.len(), 2);
    assert_eq!(
        (
            c.io[0].device.as_str(),
            c.io[0].read_bytes,
            c.io[0].write_bytes
        ),
        ("sda", 1_048_576, 4_194_304),
        "devices named from diskstats"
    );
    assert_eq!((c.io[0].reads, c.io[0].writes), (256, 1024));
    assert_eq!(c.io[1].device, "dm-0");
    let psi = c
        .pressure
        .map(|p| p.map(|p| (p.waiting_seconds, p.stalled_seconds)));
    assert_eq!(
        psi,
        [
            Some((1.5, Some(0.25))),
            Some((0.042, Some(0.021))),
            Some((3.0, Some(2.0)))
        ]
    );

    // Its own network namespace (through a process of cgroup.procs), loopback left out.
    assert_eq!(c.network.len(), 1, "{:?}", c.network);
    let eth0 = &c.network[0];
    assert_eq!(eth0.device, "eth0");
    assert_eq!(eth0.receive[..4], [1_048_576, 2048, 3, 5]);
    assert_eq!(eth0.transmit[..4], [524_288, 1024, 1, 2]);

    // Unlimited is no limit; files a cgroup lacks are none; the host's network is not the
    // container's.
    let nginx = &got[1];
    assert_eq!(nginx.identity.name, "nginx.service");
    assert_eq!(nginx.memory_limit_bytes, None);
    assert_eq!(nginx.cpu_quota, None, "max is no limit");
    assert!(nginx.network.is_empty(), "in PID 1's namespace");
    assert_eq!(nginx.threads_max, None);
    assert!(nginx.io.is_empty());
    assert_eq!(nginx.pressure, [None; 3]);
}

#[test]
fn cgroup_v1_files_give_the_same_figures() {
    let docker = format!("/docker/{DOCKER}");
    let kube = format!("/kubepods/burstable/pod{POD}/{KUBE}");
    let got = read("containers-v1", &[docker, kube]);
    let c = &got[0];
    assert_eq!(c.identity.runtime, "docker");
    assert_eq!(c.cpu_usage_seconds, Some(5.5));
    assert_eq!(c.cpu_user_seconds, Some(4.2));
    assert_eq!(c.cpu_system_seconds, Some(1.3));
    assert_eq!(c.cfs_periods, Some(500));
    assert_eq!(c.cfs_throttled_periods, Some(20));
    assert_eq!(c.cfs_throttled_seconds, Some(1.5));
    assert_eq!(c.cpu_quota, Some((50_000, 100_000)));
    assert_eq!(c.memory_usage_bytes, Some(73_400_320));
    assert_eq!(c.memory_working_set_bytes, Some(73_400_320 - 10_485_760));
    assert_eq!(c.memory_rss_bytes, Some(52_428_800));
    assert_eq!(c.memory_cache_bytes, Some(20_971_520));
    assert_eq!(c.memory_limit_bytes, Some(134_217_728));
    assert_eq!(c.oom_events, Some(3));
    assert_eq!(c.threads, Some(7));
    assert_eq!(c.threads_max, None);
    assert_eq!(c.io.len(), 1);
    let io = &c.io[0];
    assert_eq!(
        (
            io.device.as_str(),
            io.read_bytes,
            io.write_bytes,
            io.reads,
            io.writes
        ),
        ("sda", 2_097_152, 1_048_576, 64, 32),
    );
    assert_eq!(c.pressure, [None; 3], "v1 has no per-cgroup PSI");
    let k = &got[1];
    assert_eq!(k.identity.pod_uid.as_deref(), Some(POD));
    assert_eq!(k.memory_limit_bytes, None, "v1's huge value is no limit");
    assert_eq!(k.cpu_quota, None, "a quota of -1 is no limit");
}

#[test]
fn io_parsers_keep_devices_apart_and_skip_totals() {
    let mut io = Vec::new();
    parse_io_stat(
        "8:0 rbytes=1 wbytes=2 rios=3 wios=4\n8:16 rbytes=5\n",
        &mut io,
    );
    assert_eq!(io.len(), 2);
    assert_eq!(
        (io[1].device.as_str(), io[1].read_bytes, io[1].writes),
        ("8:16", 5, 0)
    );
    let mut io = Vec::new();
    parse_blkio(
        "8:0 Read 10\n8:16 Write 20\n8:0 Total 10\nTotal 30\n",
        true,
        &mut io,
    );
    parse_blkio("8:0 Read 1\n8:16 Write 2\ngarbage\n", false, &mut io);
    assert_eq!(io.len(), 2);
    assert_eq!((io[0].read_bytes, io[0].reads), (10, 1));
    assert_eq!((io[1].write_bytes, io[1].writes), (20, 2));
}

/// A cgroup of this machine's own (v1 `cpu`, `cpuacct`, `memory`, `pids`), removed on drop.
struct RealCgroup {
    dirs: Vec<PathBuf>,
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A cgroup named `name` under the v1 controllers of this machine; `None` (skipped, or a
/// failure under `ZEN_REQUIRE_EXTERNAL`) where that cannot be made.
fn real_cgroup(name: &str) -> Option<(RealCgroup, &'static Path)> {
    let root = Path::new("/sys/fs/cgroup");
    let Layout::V1(_) = layout(root) else {
        eprintln!("SKIPPED: this host's cgroups are not v1/hybrid; the v2 fixtures cover v2");
        return None;
    };
    let mut cgroup = RealCgroup { dirs: Vec::new() };
    for controller in ["cpu", "cpuacct", "memory", "pids"] {
        let dir = root.join(controller).join(name);
        if let Err(e) = std::fs::create_dir(&dir) {
            let msg = format!(
                "cannot create {}: {e} (tests must run as root)",
                dir.display()
            );
            assert!(std::env::var_os("ZEN_REQUIRE_EXTERNAL").is_none(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        cgroup.dirs.push(dir);
    }
    Some((cgroup, root))
}

#[test]
fn a_real_cgroup_with_a_busy_process_is_read_and_forgotten_when_removed() {
    let name = format!("zen-collect-test-{}", std::process::id());
    let Some((cgroup, root)) = real_cgroup(&name) else {
        return;
    };
    // A shell that joins the cgroup, then spins for a while.
    let mut busy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for c in cpu cpuacct memory pids; do echo $$ > {}/$c/{name}/cgroup.procs; done; \
             end=$(($(date +%s) + 1)); while [ $(date +%s) -le $end ]; do :; done",
            root.display()
        ))
        .spawn()
        .unwrap();
    let path = format!("/{name}");
    let mut reader = ContainerReader::new(layout(root), Path::new("/proc"));
    reader.watch(std::slice::from_ref(&path));
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(reader.sample(&mut out).is_empty());
        if out[0].cpu_usage_seconds.unwrap() > 0.2 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = &out[0];
    assert_eq!(c.id, path);
    assert!(c.cpu_usage_seconds.unwrap() > 0.2, "{c:?}");
    let (user, system) = (c.cpu_user_seconds.unwrap(), c.cpu_system_seconds.unwrap());
    assert!(user + system > 0.1, "{c:?}");
    assert!(c.memory_usage_bytes.unwrap() > 0, "{c:?}");
    assert!(c.threads.unwrap() >= 1, "{c:?}");
    assert_eq!(c.cfs_periods, Some(0), "no quota, so no periods");
    busy.wait().unwrap();
    // Removed under the reader: its open files now fail, and it is dropped without an error.
    drop(cgroup);
    assert!(reader.sample(&mut out).is_empty());
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_real_container_with_its_own_network_and_a_cpu_limit_is_read() {
    let name = format!("zen-collect-net-{}", std::process::id());
    let Some((_cgroup, root)) = real_cgroup(&name) else {
        return;
    };
    let has = |program: &str, version: &str| {
        Command::new(program)
            .arg(version)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("unshare", "--version") || !has("ip", "-V") {
        assert!(
            std::env::var_os("ZEN_REQUIRE_EXTERNAL").is_none(),
            "unshare and ip (util-linux, iproute2) are needed"
        );
        eprintln!("SKIPPED: unshare or ip missing");
        return;
    }
    std::fs::write(
        root.join("cpu").join(&name).join("cpu.cfs_quota_us"),
        "50000",
    )
    .unwrap();
    // A shell in a network namespace of its own, with an interface pair, that joins the cgroup.
    let mut inside = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg(format!(
            "ip link add eth0 type veth peer name eth1 && \
             for c in cpu cpuacct memory pids; do echo $$ > {}/$c/{name}/cgroup.procs; done; \
             exec sleep 20",
            root.display()
        ))
        .spawn()
        .unwrap();
    let path = format!("/{name}");
    let mut reader = ContainerReader::new(layout(root), Path::new("/proc"));
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Each discovery looks for the namespace again, as the daemon's does.
    while Instant::now() < deadline {
        reader.watch(std::slice::from_ref(&path));
        assert!(reader.sample(&mut out).is_empty());
        if out[0].network.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = &out[0];
    let mut names: Vec<&str> = c.network.iter().map(|n| n.device.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["eth0", "eth1"], "loopback left out: {c:?}");
    assert_eq!(c.cpu_quota, Some((50_000, 100_000)), "half a core");
    let _ = inside.kill();
    let _ = inside.wait();
    // The process is gone: no network figures, and no error, until another is found.
    assert!(reader.sample(&mut out).is_empty());
    assert!(out.iter().all(|c| c.network.is_empty()), "{out:?}");
}

#[test]
fn limits_are_read_at_their_cadence_and_usage_every_sample() {
    use zen_collect::host::SLOW_EVERY;
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let dir = root.path().join("c1");
    std::fs::create_dir(&dir).unwrap();
    let write = |current: u64, max: u64| {
        std::fs::write(dir.join("memory.current"), format!("{current}\n")).unwrap();
        std::fs::write(dir.join("memory.max"), format!("{max}\n")).unwrap();
    };
    write(10, 1000);
    let mut reader = ContainerReader::new(layout(root.path()), &data("containers-proc"));
    reader.watch(&["/c1".to_owned()]);
    let mut out = Vec::new();
    reader.sample(&mut out);
    assert_eq!(
        (out[0].memory_usage_bytes, out[0].memory_limit_bytes),
        (Some(10), Some(1000))
    );
    write(20, 2000);
    for i in 1..=SLOW_EVERY {
        reader.sample(&mut out);
        let limit = if i == SLOW_EVERY { 2000 } else { 1000 };
        assert_eq!(
            (out[0].memory_usage_bytes, out[0].memory_limit_bytes),
            (Some(20), Some(limit)),
            "sample {i}"
        );
    }
}
