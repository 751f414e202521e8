//! The daemon's share of what it may use: CPU and memory against its cgroup's limits (v2, or
//! v1 as on hybrid hosts), or the host's CPUs and memory when no limit is set.

use std::path::{Path, PathBuf};

/// v1 memory limits at or above this are "unlimited" (the kernel writes `PAGE_COUNTER_MAX`
/// pages, rounded to the page size).
const V1_UNLIMITED: u64 = 1 << 62;

/// Where the calling process' cgroups are, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfCgroup {
    /// The unified (v2) path, from the `0::` line.
    pub unified: Option<String>,
    /// The v1 `memory` controller's path.
    pub memory: Option<String>,
    /// The v1 `cpu` controller's path (mounted as `cpu` or `cpu,cpuacct`).
    pub cpu: Option<String>,
}

/// Parses `/proc/self/cgroup`.
pub fn parse_self_cgroup(text: &str) -> SelfCgroup {
    let mut out = SelfCgroup::default();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            out.unified = Some(path.to_owned());
        }
        for c in controllers.split(',') {
            match c {
                "memory" => out.memory = Some(path.to_owned()),
                "cpu" => out.cpu = Some(path.to_owned()),
                _ => {}
            }
        }
    }
    out
}

/// A v2 `cpu.max` (`"50000 100000"`) as quota and period in microseconds; `"max …"` is none.
pub fn parse_cpu_quota(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace();
    let quota: u64 = f.next()?.parse().ok()?;
    let period: u64 = f.next()?.parse().ok()?;
    (quota > 0 && period > 0).then_some((quota, period))
}

/// Cores allowed by a v2 `cpu.max` (`"50000 100000"` is half a core; `"max …"` is none).
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    parse_cpu_quota(text).map(|(q, p)| q as f64 / p as f64)
}

/// Bytes allowed by a v2 `memory.max` or v1 `memory.limit_in_bytes` (`max` or a v1 huge value
/// is none).
pub fn parse_memory_max(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < V1_UNLIMITED).then_some(v)
}

/// What the daemon may use, and whether a cgroup said so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub cpu_cores: f64,
    pub memory_bytes: u64,
    pub cpu_from_cgroup: bool,
    pub memory_from_cgroup: bool,
}

fn read(path: PathBuf) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The calling process' cgroups, from `/proc/self/cgroup` (none when unreadable).
pub fn self_cgroup() -> SelfCgroup {
    read(PathBuf::from("/proc/self/cgroup"))
        .map(|t| parse_self_cgroup(&t))
        .unwrap_or_default()
}

/// The limits of the cgroups `own` under `cgroup_root` (normally `/sys/fs/cgroup`; v2 at the
/// root or under `unified/`, v1 per controller), else `host_cpus` and `host_memory`.
pub fn read_limits(
    own: &SelfCgroup,
    cgroup_root: &Path,
    host_cpus: f64,
    host_memory: u64,
) -> Limits {
    let under = |dir: &Path, path: &str, file: &str| {
        read(dir.join(path.trim_start_matches('/')).join(file))
    };
    let unified_dir = if cgroup_root.join("cgroup.controllers").exists() {
        Some(cgroup_root.to_owned())
    } else {
        Some(cgroup_root.join("unified")).filter(|d| d.join("cgroup.controllers").exists())
    };
    let v2 = |file: &str| {
        let dir = unified_dir.as_ref()?;
        under(dir, own.unified.as_deref()?, file)
    };
    let cpu = v2("cpu.max").and_then(|t| parse_cpu_max(&t)).or_else(|| {
        let path = own.cpu.as_deref()?;
        let dir = ["cpu", "cpu,cpuacct"]
            .iter()
            .map(|d| cgroup_root.join(d))
            .find(|d| d.exists())?;
        let quota: f64 = under(&dir, path, "cpu.cfs_quota_us")?.trim().parse().ok()?;
        let period: f64 = under(&dir, path, "cpu.cfs_period_us")?
            .trim()
            .parse()
            .ok()?;
        (quota > 0.0 && period > 0.0).then(|| quota / period)
    });
    let memory = v2("memory.max")
        .and_then(|t| parse_memory_max(&t))
        .or_else(|| {
            let path = own.memory.as_deref()?;
            parse_memory_max(&under(
                &cgroup_root.join("memory"),
                path,
                "memory.limit_in_bytes",
            )?)
        });
    Limits {
        cpu_cores: cpu.unwrap_or(host_cpus),
        memory_bytes: memory.unwrap_or(host_memory),
        cpu_from_cgroup: cpu.is_some(),
        memory_from_cgroup: memory.is_some(),
    }
}

/// CPU and memory use as percentages of `limits`: CPU from the change of the process' CPU
/// seconds over `wall_seconds`, memory from its resident size.
pub fn usage_percent(
    cpu_seconds_delta: f64,
    wall_seconds: f64,
    resident_bytes: u64,
    limits: &Limits,
) -> (f64, f64) {
    let cpu = if wall_seconds > 0.0 && limits.cpu_cores > 0.0 {
        100.0 * cpu_seconds_delta / wall_seconds / limits.cpu_cores
    } else {
        0.0
    };
    let memory = if limits.memory_bytes > 0 {
        100.0 * resident_bytes as f64 / limits.memory_bytes as f64
    } else {
        0.0
    };
    (cpu, memory)
}
