//! The calling process, from `/proc/self`: the figures of Prometheus' `process_*` convention.
//!
//! CPU time in `/proc/self/stat` is in `USER_HZ` ticks, which Linux fixes at 100 for every
//! user-visible interface, so no `sysconf` call is needed; memory comes from `/proc/self/status`
//! in kibibytes, so the page size is not needed either.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{CollectError, Source};

/// Ticks per second of the times in `/proc/*/stat` (`USER_HZ`, 100 on every Linux).
const USER_HZ: f64 = 100.0;

/// One reading of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// User CPU time, seconds.
    pub cpu_user_seconds: f64,
    /// System CPU time, seconds.
    pub cpu_system_seconds: f64,
    /// Resident set size, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: u64,
    /// Operating-system threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`u64::MAX` when unlimited).
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// The fields of `/proc/<pid>/stat` that are wanted, by their 1-based numbers in proc(5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Field 14, in seconds.
    pub utime: f64,
    /// Field 15, in seconds.
    pub stime: f64,
    /// Field 22: seconds after boot at which the process started.
    pub starttime: f64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<f64> { Some(fields.get(n - 3)?.parse::<u64>().ok()? as f64) };
    Some(Stat {
        utime: field(14)? / USER_HZ,
        stime: field(15)? / USER_HZ,
        starttime: field(22)? / USER_HZ,
    })
}

/// The resident pages of `/proc/<pid>/statm` (its second field).
pub fn parse_statm_resident(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The `btime` line of `/proc/stat`: boot time, seconds since the Unix epoch.
pub fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `VmRSS`, `VmSize` (bytes) and `Threads` from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<(u64, u64, u64)> {
    let (mut rss, mut vsize, mut threads) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_ascii_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        };
        match key {
            "VmRSS" => rss = number().map(|kib| kib * 1024),
            "VmSize" => vsize = number().map(|kib| kib * 1024),
            "Threads" => threads = number(),
            _ => {}
        }
    }
    // Kernel threads have no VmRSS; a user process always has all three.
    Some((rss?, vsize.unwrap_or(0), threads?))
}

/// The soft `Max open files` limit of `/proc/<pid>/limits` (`u64::MAX` for `unlimited`).
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// Reads the calling process under `proc_root` (normally `/proc`).
#[derive(Debug)]
pub struct ProcessReader {
    proc_root: PathBuf,
    boot_time: Option<u64>,
    /// `self/statm`, kept open for [`ProcessReader::cpu_and_resident`], and its buffer.
    own_statm: Source,
    buf: String,
}

impl ProcessReader {
    /// A reader of `<proc_root>/self`.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        let proc_root = proc_root.into();
        ProcessReader {
            own_statm: Source::open(&proc_root, "self/statm"),
            proc_root,
            boot_time: None,
            buf: String::new(),
        }
    }

    fn read(&self, relative: &str) -> Result<(PathBuf, String), CollectError> {
        let path = self.proc_root.join(relative);
        fs::read_to_string(&path)
            .map(|text| (path.clone(), text))
            .map_err(|source| CollectError::Io { path, source })
    }

    /// `/proc/self/stat` and the memory and threads of `/proc/self/status`.
    fn stat_and_status(&self) -> Result<(Stat, (u64, u64, u64)), CollectError> {
        let bad = |path: &Path, what: &str| CollectError::Parse {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        let (path, text) = self.read("self/stat")?;
        let stat = parse_stat(&text).ok_or_else(|| bad(&path, "fewer than 22 fields"))?;
        let (path, text) = self.read("self/status")?;
        let status = parse_status(&text).ok_or_else(|| bad(&path, "no VmRSS or Threads line"))?;
        Ok((stat, status))
    }

    /// CPU seconds (user and system) and resident bytes: what a usage percentage needs.
    ///
    /// This runs on the per-second path, so as cheaply as the kernel allows: the CPU time
    /// from the process CPU clock (nanoseconds, where `self/stat` counts 10 ms ticks), the
    /// resident pages from `self/statm`, kept open (a quarter of the cost of `self/stat`, cold).
    pub fn cpu_and_resident(&mut self) -> Result<(f64, u64), CollectError> {
        let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        if !self.own_statm.read(&mut self.buf)? {
            return Err(self.own_statm.bad("not readable"));
        }
        let pages = parse_statm_resident(&self.buf)
            .ok_or_else(|| self.own_statm.bad("no resident field"))?;
        let page = rustix::param::page_size() as u64;
        Ok((cpu.tv_sec as f64 + cpu.tv_nsec as f64 / 1e9, pages * page))
    }

    /// One reading of the process.
    pub fn sample(&mut self) -> Result<ProcessSample, CollectError> {
        let bad = |path: &Path, what: &str| CollectError::Parse {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        let boot_time = match self.boot_time {
            Some(b) => b,
            None => {
                let (path, text) = self.read("stat")?;
                let b = parse_boot_time(&text).ok_or_else(|| bad(&path, "no btime line"))?;
                self.boot_time = Some(b);
                b
            }
        };
        let (stat, (rss, vsize, threads)) = self.stat_and_status()?;
        let (path, text) = self.read("self/limits")?;
        let max_fds = parse_max_fds(&text).ok_or_else(|| bad(&path, "no Max open files line"))?;
        let fd_dir = self.proc_root.join("self/fd");
        let open_fds = fs::read_dir(&fd_dir)
            .map_err(|source| CollectError::Io {
                path: fd_dir.clone(),
                source,
            })?
            .count() as u64;
        Ok(ProcessSample {
            cpu_user_seconds: stat.utime,
            cpu_system_seconds: stat.stime,
            resident_memory_bytes: rss,
            virtual_memory_bytes: vsize,
            threads,
            // As client_golang counts: the directory handle doing the counting is one of them.
            open_fds,
            max_fds,
            start_time_seconds: boot_time as f64 + stat.starttime,
        })
    }
}

/// The calling process' CPU time by thread name (`comm`; threads of one name summed), from
/// `<proc>/self/task/*/schedstat` (nanoseconds on a CPU). Each [`Threads::read`] adds what each
/// thread ran since the one before, so a name's total only grows while its threads come and
/// go; a thread that ends between two reads loses its last interval.
#[derive(Debug)]
pub struct Threads {
    task_dir: PathBuf,
    /// By thread id: its name and CPU time at the last read, in seconds.
    seen: std::collections::HashMap<u32, (String, f64)>,
    /// By name: CPU seconds so far.
    totals: std::collections::BTreeMap<String, f64>,
}

/// The first field of a `schedstat` line: nanoseconds on a CPU, in seconds.
pub fn parse_schedstat(text: &str) -> Option<f64> {
    let ns: u64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

impl Threads {
    pub fn new(proc_root: impl Into<PathBuf>) -> Threads {
        Threads {
            task_dir: proc_root.into().join("self/task"),
            seen: std::collections::HashMap::new(),
            totals: std::collections::BTreeMap::new(),
        }
    }

    /// CPU seconds by thread name since the first read, threads of one name summed.
    pub fn read(&mut self) -> Result<&std::collections::BTreeMap<String, f64>, CollectError> {
        let entries = fs::read_dir(&self.task_dir).map_err(|source| CollectError::Io {
            path: self.task_dir.clone(),
            source,
        })?;
        let mut now = std::collections::HashMap::with_capacity(self.seen.len());
        for entry in entries.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            // A thread that ended meanwhile has no files: skipped.
            let Some(cpu) = fs::read_to_string(entry.path().join("schedstat"))
                .ok()
                .and_then(|t| parse_schedstat(&t))
            else {
                continue;
            };
            let name = match self.seen.remove(&tid) {
                Some((name, before)) => {
                    *self.totals.entry(name.clone()).or_default() += (cpu - before).max(0.0);
                    name
                }
                None => {
                    let Ok(comm) = fs::read_to_string(entry.path().join("comm")) else {
                        continue;
                    };
                    let name = comm.trim_end().to_owned();
                    // All it ran, since it started after the last read (or this is the first).
                    *self.totals.entry(name.clone()).or_default() += cpu;
                    name
                }
            };
            now.insert(tid, (name, cpu));
        }
        self.seen = now;
        Ok(&self.totals)
    }
}
