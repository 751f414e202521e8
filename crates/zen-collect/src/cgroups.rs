//! Containers, from their cgroups, under cAdvisor's metric names.
//!
//! [`discover`] walks the hierarchy — pure v2 (`cgroup.controllers` at the root), or v1 and
//! hybrid hosts, one tree per controller, merged by path — breadth first, so slices come before
//! what they hold, and stops at a limit. [`identify`] names each cgroup from its path (docker,
//! containerd, cri-o and podman scopes, systemd units, kubepods with the pod UID).
//! [`ContainerReader`] keeps each container's files open and re-reads them every sample; the
//! parsers are pure functions over file contents, tested on v2 and v1 fixtures.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::host::{Matches, NetDev, Pressure, parse_net_dev, parse_pressure};
use crate::limits::{parse_cpu_quota, parse_memory_max};
use crate::{CollectError, Source};

/// What a cgroup's path says it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `docker`, `containerd`, `cri-o`, `podman`, `systemd`, `kubepods`, or empty for a plain
    /// cgroup.
    pub runtime: &'static str,
    /// The container's short id (12 characters, as `docker ps`), the systemd unit, the pod
    /// (`pod<uid>`), or the cgroup's last component.
    pub name: String,
    /// The full container id, where the path has one.
    pub container_id: Option<String>,
    /// The Kubernetes pod's UID, dashed (`kubepods-…-pod<uid with underscores>.slice` is
    /// rewritten), for the pod and its containers.
    pub pod_uid: Option<String>,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A scope or directory name's container id and runtime: `docker-<id>.scope`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`, or a bare id.
fn container_in(component: &str) -> Option<(&'static str, &str)> {
    let base = component.strip_suffix(".scope").unwrap_or(component);
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = base.strip_prefix(prefix).filter(|id| is_container_id(id)) {
            return Some((runtime, id));
        }
    }
    is_container_id(base).then_some(("", base))
}

/// The pod UID in a kubepods component: `pod<uid>` (cgroupfs driver) or
/// `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd driver).
fn pod_in(component: &str) -> Option<String> {
    let base = component.strip_suffix(".slice").unwrap_or(component);
    let (before, uid) = base.rsplit_once("pod")?;
    let uid_like = uid.len() == 36
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    ((before.is_empty() || before.ends_with('-')) && uid_like).then(|| uid.replace('_', "-"))
}

/// Names a cgroup by its path (`/kubepods/burstable/pod<uid>/<id>`,
/// `/system.slice/docker-<id>.scope`, `/system.slice/nginx.service`, …).
pub fn identify(path: &str) -> Identity {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let last = components.last().copied().unwrap_or("/");
    let kube = components
        .first()
        .is_some_and(|c| c.starts_with("kubepods"));
    let pod_uid = if kube {
        components.iter().find_map(|c| pod_in(c))
    } else {
        None
    };
    if let Some((runtime, id)) = container_in(last) {
        let parent = components.iter().rev().nth(1).copied().unwrap_or("");
        let runtime = match runtime {
            "" if parent == "docker" => "docker",
            "" if kube => "kubepods",
            "" => "",
            r => r,
        };
        return Identity {
            runtime,
            name: id[..12].to_owned(),
            container_id: Some(id.to_owned()),
            pod_uid,
        };
    }
    if let Some(uid) = pod_uid.as_ref().filter(|_| pod_in(last).is_some()) {
        return Identity {
            runtime: "kubepods",
            name: format!("pod{uid}"),
            container_id: None,
            pod_uid: Some(uid.clone()),
        };
    }
    let unit = [".service", ".scope", ".slice", ".socket", ".mount"]
        .iter()
        .any(|s| last.ends_with(s));
    Identity {
        runtime: if unit {
            "systemd"
        } else if kube {
            "kubepods"
        } else {
            ""
        },
        name: last.to_owned(),
        container_id: None,
        pod_uid,
    }
}

/// The v1 controllers read, with the directory names they are mounted under.
const V1_CONTROLLERS: [(Controller, &[&str]); 5] = [
    (Controller::Cpu, &["cpu", "cpu,cpuacct", "cpuacct,cpu"]),
    (
        Controller::Cpuacct,
        &["cpuacct", "cpu,cpuacct", "cpuacct,cpu"],
    ),
    (Controller::Memory, &["memory"]),
    (Controller::Blkio, &["blkio"]),
    (Controller::Pids, &["pids"]),
];

/// A v1 controller, by what it is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Memory,
    Blkio,
    Pids,
}

/// How the host's cgroups are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One unified tree.
    V2(PathBuf),
    /// A tree per controller (the unified tree of a hybrid host holds no controllers).
    V1(Vec<(Controller, PathBuf)>),
}

/// How the cgroups under `root` (normally `/sys/fs/cgroup`) are mounted.
pub fn layout(root: &Path) -> Layout {
    if root.join("cgroup.controllers").is_file() {
        return Layout::V2(root.to_owned());
    }
    let mut found = Vec::new();
    for (controller, dirs) in V1_CONTROLLERS {
        if let Some(dir) = dirs.iter().map(|d| root.join(d)).find(|d| d.is_dir()) {
            found.push((controller, dir));
        }
    }
    Layout::V1(found)
}

/// The cgroups under `layout`, as paths from its root (`/system.slice/x.service`), breadth
/// first, at most `limit`; and how many more there were (the whole tree is walked to count
/// them: a directory read per cgroup, every discovery interval).
pub fn discover(layout: &Layout, limit: usize) -> (Vec<String>, usize) {
    let roots: Vec<&Path> = match layout {
        Layout::V2(root) => vec![root.as_path()],
        Layout::V1(dirs) => {
            let mut seen = BTreeSet::new();
            dirs.iter()
                .filter(|(_, d)| seen.insert(d.clone()))
                .map(|(_, d)| d.as_path())
                .collect()
        }
    };
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut more = 0;
    let mut queue: VecDeque<String> = VecDeque::from([String::new()]);
    while let Some(path) = queue.pop_front() {
        let mut children = BTreeSet::new();
        for root in &roots {
            let Ok(entries) = std::fs::read_dir(root.join(path.trim_start_matches('/'))) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    children.insert(format!("{path}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        for child in children {
            if !seen.insert(child.clone()) {
                continue;
            }
            if found.len() < limit {
                found.push(child.clone());
            } else {
                more += 1;
            }
            queue.push_back(child);
        }
    }
    (found, more)
}

/// I/O of one container on one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIo {
    /// The device's name where `/proc/diskstats` has it, else `major:minor`.
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// One container's reading, in base units; what its cgroup does not offer stays `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    /// The cgroup path (cAdvisor's `id` label).
    pub id: String,
    pub identity: Identity,
    pub cpu_usage_seconds: Option<f64>,
    pub cpu_user_seconds: Option<f64>,
    pub cpu_system_seconds: Option<f64>,
    pub cfs_periods: Option<u64>,
    pub cfs_throttled_periods: Option<u64>,
    pub cfs_throttled_seconds: Option<f64>,
    /// The CPU limit as CFS quota and period, in microseconds (cAdvisor's
    /// `container_spec_cpu_quota` and `_period`); `None` when unlimited.
    pub cpu_quota: Option<(u64, u64)>,
    pub memory_usage_bytes: Option<u64>,
    /// Usage less inactive file pages (what the kernel would not reclaim first), as cAdvisor.
    pub memory_working_set_bytes: Option<u64>,
    pub memory_rss_bytes: Option<u64>,
    pub memory_cache_bytes: Option<u64>,
    pub memory_swap_bytes: Option<u64>,
    /// `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
    pub oom_events: Option<u64>,
    pub io: Vec<DeviceIo>,
    pub threads: Option<u64>,
    pub threads_max: Option<u64>,
    /// cpu, memory, io.
    pub pressure: [Option<Pressure>; 3],
    /// The interfaces of the container's own network namespace (none when it shares the
    /// host's), from `/proc/<pid>/net/dev` of a process in it; loopback, veth and docker
    /// bridges left out, as cAdvisor leaves them.
    pub network: Vec<NetDev>,
}

/// Interfaces cAdvisor leaves out of a container's network figures.
const IGNORED_INTERFACES: &str = "^(lo|veth|docker)";

/// `key value` lines (`cpu.stat`, `memory.stat`, `memory.events`, `memory.oom_control`,
/// `cpuacct.stat`): the value of `key`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A single number, or `max` (none).
pub fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Parses v2 `io.stat` (`8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`).
pub fn parse_io_stat(text: &str, out: &mut Vec<DeviceIo>) {
    out.clear();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(device) = f.next() else { continue };
        let mut d = DeviceIo {
            device: device.to_owned(),
            ..DeviceIo::default()
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => d.read_bytes = v,
                "wbytes" => d.write_bytes = v,
                "rios" => d.reads = v,
                "wios" => d.writes = v,
                _ => {}
            }
        }
        out.push(d);
    }
}

/// Adds a v1 `blkio.throttle.io_service_bytes` (`bytes`) or `io_serviced` file
/// (`8:0 Read 4096` lines) into `out`.
pub fn parse_blkio(text: &str, bytes: bool, out: &mut Vec<DeviceIo>) {
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(device), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        let d = match out.iter().position(|d| d.device == device) {
            Some(i) => &mut out[i],
            None => {
                out.push(DeviceIo {
                    device: device.to_owned(),
                    ..DeviceIo::default()
                });
                out.last_mut().expect("just pushed")
            }
        };
        match (op, bytes) {
            ("Read", true) => d.read_bytes = v,
            ("Write", true) => d.write_bytes = v,
            ("Read", false) => d.reads = v,
            ("Write", false) => d.writes = v,
            _ => {}
        }
    }
}

/// Ticks per second of `cpuacct.stat` (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// The files of one container, by what they are parsed as.
#[derive(Debug)]
struct Files {
    container: Container,
    v2: bool,
    /// v2: cpu.stat, cpu.max; v1: cpuacct.usage, cpuacct.stat, cpu.stat, cpu.cfs_quota_us,
    /// cpu.cfs_period_us.
    cpu: Vec<Source>,
    /// v2: memory.current, memory.stat, memory.swap.current, memory.max, memory.events;
    /// v1: memory.usage_in_bytes, memory.stat, memory.limit_in_bytes, memory.oom_control.
    memory: Vec<Source>,
    /// v2: io.stat; v1: blkio.throttle.io_service_bytes, blkio.throttle.io_serviced.
    io: Vec<Source>,
    /// pids.current, pids.max.
    pids: Vec<Source>,
    /// v2 only: cpu.pressure, memory.pressure, io.pressure.
    pressure: Vec<Source>,
    /// The cgroup's `cgroup.procs`: where a process of the container is found.
    procs: Option<PathBuf>,
    /// `<proc>/<pid>/net/dev` of a process in the container, when it has its own network
    /// namespace, and `<proc>/<pid>`; found again at the next discovery once that process is
    /// gone (an open `net/dev` keeps reading its namespace after the process ends, and keeps
    /// the namespace alive: it is closed then).
    net: Option<(Source, PathBuf)>,
    net_names: Matches,
    /// Samples read: the limits (`cpu.max`, `memory.max`, `pids.max` and their v1 twins) and
    /// the OOM count are read every [`crate::host::SLOW_EVERY`]th, the first included.
    samples: u64,
}

/// Opens `names` under `dir`; none under a controller that is not mounted (they read as
/// files the kernel does not offer).
fn open_all(dir: Option<&Path>, names: &[&str]) -> Vec<Source> {
    let root = dir.unwrap_or(Path::new(""));
    names
        .iter()
        .map(|n| Source::open_if(dir.is_some(), root, n))
        .collect()
}

impl Files {
    fn open(layout: &Layout, path: &str) -> Files {
        let relative = path.trim_start_matches('/');
        let container = Container {
            id: path.to_owned(),
            identity: identify(path),
            ..Container::default()
        };
        match layout {
            Layout::V2(root) => {
                let dir = root.join(relative);
                Files {
                    container,
                    v2: true,
                    cpu: open_all(Some(&dir), &["cpu.stat", "cpu.max"]),
                    memory: open_all(
                        Some(&dir),
                        &[
                            "memory.current",
                            "memory.stat",
                            "memory.swap.current",
                            "memory.max",
                            "memory.events",
                        ],
                    ),
                    io: open_all(Some(&dir), &["io.stat"]),
                    pids: open_all(Some(&dir), &["pids.current", "pids.max"]),
                    pressure: open_all(
                        Some(&dir),
                        &["cpu.pressure", "memory.pressure", "io.pressure"],
                    ),
                    procs: Some(dir.join("cgroup.procs")),
                    net: None,
                    net_names: ignored_interfaces(),
                    samples: 0,
                }
            }
            Layout::V1(dirs) => {
                let dir = |c: Controller| {
                    dirs.iter()
                        .find(|(d, _)| *d == c)
                        .map(|(_, root)| root.join(relative))
                };
                let mut cpu = open_all(
                    dir(Controller::Cpuacct).as_deref(),
                    &["cpuacct.usage", "cpuacct.stat"],
                );
                cpu.extend(open_all(
                    dir(Controller::Cpu).as_deref(),
                    &["cpu.stat", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
                ));
                Files {
                    container,
                    v2: false,
                    cpu,
                    memory: open_all(
                        dir(Controller::Memory).as_deref(),
                        &[
                            "memory.usage_in_bytes",
                            "memory.stat",
                            "memory.limit_in_bytes",
                            "memory.oom_control",
                        ],
                    ),
                    io: open_all(
                        dir(Controller::Blkio).as_deref(),
                        &[
                            "blkio.throttle.io_service_bytes",
                            "blkio.throttle.io_serviced",
                        ],
                    ),
                    pids: open_all(
                        dir(Controller::Pids).as_deref(),
                        &["pids.current", "pids.max"],
                    ),
                    pressure: Vec::new(),
                    procs: dir(Controller::Cpu)
                        .or_else(|| dir(Controller::Memory))
                        .map(|d| d.join("cgroup.procs")),
                    net: None,
                    net_names: ignored_interfaces(),
                    samples: 0,
                }
            }
        }
    }

    /// Re-reads every file; `false` when the cgroup is gone.
    fn read(&mut self, buf: &mut String, errors: &mut Vec<CollectError>) -> bool {
        // The limits and the OOM count at their own cadence, carried forward in between.
        let slow = self.samples.is_multiple_of(crate::host::SLOW_EVERY);
        self.samples += 1;
        let mut gone = false;
        let mut get = |src: &mut Source, buf: &mut String| -> bool {
            match src.read(buf) {
                Ok(found) => found,
                // A removed cgroup's open files answer ENODEV.
                Err(CollectError::Io { source, .. })
                    if source.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error()) =>
                {
                    gone = true;
                    false
                }
                Err(e) => {
                    errors.push(e);
                    false
                }
            }
        };
        let c = &mut self.container;
        if self.v2 {
            if get(&mut self.cpu[0], buf) {
                let us = |k| keyed(buf, k).map(|v| v as f64 / 1e6);
                c.cpu_usage_seconds = us("usage_usec");
                c.cpu_user_seconds = us("user_usec");
                c.cpu_system_seconds = us("system_usec");
                c.cfs_periods = keyed(buf, "nr_periods");
                c.cfs_throttled_periods = keyed(buf, "nr_throttled");
                c.cfs_throttled_seconds = us("throttled_usec");
            }
            if slow {
                c.cpu_quota = get(&mut self.cpu[1], buf)
                    .then(|| parse_cpu_quota(buf))
                    .flatten();
            }
            let m = &mut self.memory;
            c.memory_usage_bytes = get(&mut m[0], buf).then(|| single(buf)).flatten();
            let mut inactive = None;
            if get(&mut m[1], buf) {
                c.memory_rss_bytes = keyed(buf, "anon");
                c.memory_cache_bytes = keyed(buf, "file");
                inactive = keyed(buf, "inactive_file");
            }
            c.memory_swap_bytes = get(&mut m[2], buf).then(|| single(buf)).flatten();
            if slow {
                c.memory_limit_bytes = get(&mut m[3], buf).then(|| single(buf)).flatten();
                c.oom_events = get(&mut m[4], buf)
                    .then(|| keyed(buf, "oom_kill"))
                    .flatten();
            }
            c.memory_working_set_bytes = working_set(c.memory_usage_bytes, inactive);
            if get(&mut self.io[0], buf) {
                parse_io_stat(buf, &mut c.io);
            } else {
                c.io.clear();
            }
            for (src, slot) in self.pressure.iter_mut().zip(c.pressure.iter_mut()) {
                *slot = get(src, buf).then(|| parse_pressure(buf)).flatten();
            }
        } else {
            c.cpu_usage_seconds = get(&mut self.cpu[0], buf)
                .then(|| single(buf))
                .flatten()
                .map(|ns| ns as f64 / 1e9);
            if get(&mut self.cpu[1], buf) {
                let ticks = |k| keyed(buf, k).map(|v| v as f64 / USER_HZ);
                c.cpu_user_seconds = ticks("user");
                c.cpu_system_seconds = ticks("system");
            }
            if get(&mut self.cpu[2], buf) {
                c.cfs_periods = keyed(buf, "nr_periods");
                c.cfs_throttled_periods = keyed(buf, "nr_throttled");
                c.cfs_throttled_seconds = keyed(buf, "throttled_time").map(|ns| ns as f64 / 1e9);
            }
            // -1 is no quota; a quota without a readable period is no limit either.
            if slow {
                let quota = get(&mut self.cpu[3], buf)
                    .then(|| buf.trim().parse::<i64>().ok())
                    .flatten();
                let period = get(&mut self.cpu[4], buf).then(|| single(buf)).flatten();
                c.cpu_quota = match (quota, period) {
                    (Some(q), Some(p)) if q > 0 && p > 0 => Some((q as u64, p)),
                    _ => None,
                };
            }
            let m = &mut self.memory;
            c.memory_usage_bytes = get(&mut m[0], buf).then(|| single(buf)).flatten();
            let mut inactive = None;
            if get(&mut m[1], buf) {
                // The hierarchical totals, as cAdvisor reads them.
                c.memory_rss_bytes = keyed(buf, "total_rss");
                c.memory_cache_bytes = keyed(buf, "total_cache");
                c.memory_swap_bytes = keyed(buf, "total_swap");
                inactive = keyed(buf, "total_inactive_file");
            }
            if slow {
                c.memory_limit_bytes = get(&mut m[2], buf).then(|| parse_memory_max(buf)).flatten();
                c.oom_events = get(&mut m[3], buf)
                    .then(|| keyed(buf, "oom_kill"))
                    .flatten();
            }
            c.memory_working_set_bytes = working_set(c.memory_usage_bytes, inactive);
            c.io.clear();
            for (i, src) in self.io.iter_mut().enumerate() {
                if get(src, buf) {
                    parse_blkio(buf, i == 0, &mut c.io);
                }
            }
        }
        c.threads = get(&mut self.pids[0], buf).then(|| single(buf)).flatten();
        if slow {
            c.threads_max = get(&mut self.pids[1], buf).then(|| single(buf)).flatten();
        }
        // The process read through may be gone: then none until the next discovery finds
        // another, and no error (containers' processes come and go).
        let net = self
            .net
            .as_mut()
            .filter(|(_, process)| process.exists())
            .map(|(n, _)| n.read(buf));
        if !matches!(net, Some(Ok(true)))
            || parse_net_dev(buf, &mut self.net_names, &mut c.network).is_none()
        {
            self.net = None;
            c.network.clear();
        }
        !gone
    }

    /// Looks for the container's own network namespace when none is read: through the first
    /// process of `cgroup.procs`, if its namespace is not `host`'s.
    fn find_network(&mut self, proc_root: &Path, host: Option<&Path>) {
        if self.net.is_some() {
            return;
        }
        let Some(text) = self
            .procs
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return;
        };
        let Some(pid) = text.lines().next().map(str::trim).filter(|p| !p.is_empty()) else {
            return;
        };
        let ns = std::fs::read_link(proc_root.join(pid).join("ns/net")).ok();
        if ns.is_some() && ns.as_deref() != host {
            self.net = Some((
                Source::open(proc_root, &format!("{pid}/net/dev")),
                proc_root.join(pid),
            ));
        }
    }
}

fn ignored_interfaces() -> Matches {
    // A constant pattern, compiled by every test that reads a container: it cannot fail.
    static IGNORED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(IGNORED_INTERFACES).expect("a constant pattern")
    });
    Matches::new(IGNORED.clone())
}

fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)))
}

/// Reads the discovered containers each sample, their files kept open.
#[derive(Debug)]
pub struct ContainerReader {
    layout: Layout,
    files: Vec<Files>,
    /// `major:minor` → device name, from `<proc>/diskstats` at each [`ContainerReader::watch`].
    devices: HashMap<String, String>,
    proc_root: PathBuf,
    /// The host's network namespace (of PID 1, or of this process when that is not
    /// readable): containers in it have no network figures of their own.
    host_netns: Option<PathBuf>,
    buf: String,
}

impl ContainerReader {
    pub fn new(layout: Layout, proc_root: &Path) -> ContainerReader {
        let host_netns = std::fs::read_link(proc_root.join("1/ns/net"))
            .or_else(|_| std::fs::read_link(proc_root.join("self/ns/net")))
            .ok();
        ContainerReader {
            layout,
            files: Vec::new(),
            devices: HashMap::new(),
            proc_root: proc_root.to_owned(),
            host_netns,
            buf: String::with_capacity(4096),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Reads `paths` from now on: files of containers already watched stay open, new ones are
    /// opened, and those no longer listed are closed.
    pub fn watch(&mut self, paths: &[String]) {
        let mut old: HashMap<String, Files> = self
            .files
            .drain(..)
            .map(|f| (f.container.id.clone(), f))
            .collect();
        self.files = paths
            .iter()
            .map(|p| {
                old.remove(p)
                    .unwrap_or_else(|| Files::open(&self.layout, p))
            })
            .collect();
        for f in &mut self.files {
            f.find_network(&self.proc_root, self.host_netns.as_deref());
        }
        self.devices = std::fs::read_to_string(self.proc_root.join("diskstats"))
            .map(|t| parse_device_names(&t))
            .unwrap_or_default();
    }

    /// Reads every watched container into `out`; containers gone since discovery are left out
    /// and forgotten.
    pub fn sample(&mut self, out: &mut Vec<Container>) -> Vec<CollectError> {
        let mut errors = Vec::new();
        let buf = &mut self.buf;
        self.files.retain_mut(|f| f.read(buf, &mut errors));
        out.clear();
        for f in &self.files {
            let mut c = f.container.clone();
            for d in &mut c.io {
                if let Some(name) = self.devices.get(&d.device) {
                    d.device.clone_from(name);
                }
            }
            out.push(c);
        }
        errors
    }
}

/// `major:minor` → name, from `/proc/diskstats`.
pub fn parse_device_names(diskstats: &str) -> HashMap<String, String> {
    diskstats
        .lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let (major, minor, name) = (f.next()?, f.next()?, f.next()?);
            Some((format!("{major}:{minor}"), name.to_owned()))
        })
        .collect()
}
