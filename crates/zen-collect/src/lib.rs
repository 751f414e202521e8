//! Readings of the kernel's `/proc` and `/sys` files, as plain numbers.
//!
//! [`host`] reads the host's CPU, load, memory, paging, disks, network, pressure and file
//! handles under node_exporter's names and units, from files kept open, and [`netclass`] the
//! interfaces' state from sysfs; [`filesystem`] `statvfs`es mounts with a timeout;
//! [`cgroups`] discovers containers and reads them under cAdvisor's names; [`inventory`] asks
//! `sysinfo` what the host is; [`process`] samples the daemon's own process for the `process_*`
//! metrics; [`limits`] finds the daemon's cgroup limits. [`collection`] runs them all on
//! threads of their own — the per-second readers on one, the slow and possibly blocking ones
//! (discovery, filesystems, inventory) on another — and shares the latest [`collection::Sample`].
//! Parsers are pure functions over file contents, tested on fixture files; the readers around
//! them only open files under configurable roots. This is the only crate that reads `/proc`
//! and `/sys`; it knows nothing of metric formats.

pub mod cgroups;
pub mod collection;
pub mod filesystem;
pub mod host;
pub mod inventory;
pub mod limits;
pub mod netclass;
pub mod process;

use std::fs::File;
use std::path::{Path, PathBuf};

/// Which collectors run (node_exporter's collector names where it has them; all but
/// `processes` on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Collectors {
    /// `/proc/stat`: CPU time, interrupts, context switches, forks, processes.
    pub stat: bool,
    pub loadavg: bool,
    pub meminfo: bool,
    /// Page faults, paging, swapping, OOM kills.
    pub vmstat: bool,
    pub diskstats: bool,
    /// `/proc/net/dev` counters.
    pub netdev: bool,
    /// Interface up, MTU, speed and carrier from sysfs (needs `netdev`).
    pub netclass: bool,
    pub pressure: bool,
    pub filefd: bool,
    /// TCP, UDP and IP counters of `/proc/net/{snmp,netstat,snmp6}`.
    pub netstat: bool,
    pub sockstat: bool,
    pub filesystem: bool,
    /// Containers, from cgroups.
    pub cgroups: bool,
    /// Host name, OS, kernel, CPU model, temperatures.
    pub inventory: bool,
    /// The processes using the most memory (through the inventory; off by default).
    pub processes: bool,
}

impl Default for Collectors {
    fn default() -> Self {
        Collectors {
            stat: true,
            loadavg: true,
            meminfo: true,
            vmstat: true,
            diskstats: true,
            netdev: true,
            netclass: true,
            pressure: true,
            filefd: true,
            netstat: true,
            sockstat: true,
            filesystem: true,
            cgroups: true,
            inventory: true,
            processes: false,
        }
    }
}

/// Where the host's files are: `/proc`, `/sys`, `/` and `/sys/fs/cgroup` normally; in a
/// container, wherever the host's are mounted (`/host/proc`, `/host/sys`, `/host/root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub rootfs: PathBuf,
    pub cgroup: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            cgroup: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// A file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("host inventory: {0}")]
    Inventory(String),
}

/// A kept-open file under the root, re-read from its start each time.
#[derive(Debug)]
pub(crate) struct Source {
    path: PathBuf,
    file: Option<File>,
    /// The file's length at the last read: what the next read asks for, and a little more.
    last_len: usize,
}

impl Source {
    pub(crate) fn open(root: &Path, relative: &str) -> Source {
        Source::open_if(true, root, relative)
    }

    /// Opens the file when `enabled`; otherwise it reads as one the kernel does not offer.
    pub(crate) fn open_if(enabled: bool, root: &Path, relative: &str) -> Source {
        let path = root.join(relative);
        let file = enabled.then(|| File::open(&path).ok()).flatten();
        Source {
            path,
            file,
            last_len: 0,
        }
    }

    /// The file's current text in `buf`; `Ok(false)` when the kernel does not offer it.
    ///
    /// Positioned reads from offset 0 until the end: two system calls for most files (nothing
    /// to seek, no size asked) — on the per-second path each costs more than the parsing.
    /// Each read asks for the file's last length and a little more, not the buffer's whole
    /// capacity: a sysctl file (`/proc/sys/...`) allocates and zeroes in the kernel as much as
    /// is asked for: `sys/fs/file-nr` cost 33 µs a read, cold, asking 64 KiB, and 11 µs asking 64
    /// bytes (a C loop of `pread`s after 0.5 s sleeps, `CLOCK_THREAD_CPUTIME_ID` around each).
    pub(crate) fn read(&mut self, buf: &mut String) -> Result<bool, CollectError> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let mut bytes = std::mem::take(buf).into_bytes();
        bytes.clear();
        let io = |source: std::io::Error| CollectError::Io {
            path: self.path.clone(),
            source,
        };
        let mut ask = self.last_len + 256;
        loop {
            let offset = bytes.len();
            bytes.resize(offset + ask, 0);
            let n = rustix::io::pread(file, &mut bytes[offset..], offset as u64)
                .map_err(|e| io(e.into()))?;
            bytes.truncate(offset + n);
            if n == 0 {
                break;
            }
            ask = 4096;
        }
        self.last_len = bytes.len();
        *buf = String::from_utf8(bytes).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.utf8_error(),
            ))
        })?;
        Ok(true)
    }

    pub(crate) fn bad(&self, what: &str) -> CollectError {
        CollectError::Parse {
            path: self.path.clone(),
            what: what.to_owned(),
        }
    }
}
