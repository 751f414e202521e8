//! Mounted filesystems: size, free and available bytes, inodes, read-only — node_exporter's
//! `node_filesystem_*`.
//!
//! The mount table is `<proc>/1/mounts` (the host's when the daemon sees its PID 1, as
//! node_exporter reads it), else `<proc>/self/mounts`. Each mount point is `statvfs`ed under the
//! root filesystem path (`/`, or `/host/root` in a container) by a worker thread, waited for at
//! most a timeout: a hung mount (a dead NFS server) is reported with `device_error` 1 and not
//! asked again until its call returns, so it holds up neither this reader nor anything else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::CollectError;

/// One line of a mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    /// Mounted with the `ro` option.
    pub readonly: bool,
}

/// The kernel's escapes in mount tables (`\040` for a space, `\011` tab, `\012` newline,
/// `\134` backslash).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/<pid>/mounts` (`device mountpoint fstype options dump pass`); short lines
/// are skipped.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let (device, mountpoint, fstype, options) =
                (f.next()?, f.next()?, f.next()?, f.next()?);
            Some(Mount {
                device: unescape(device),
                mountpoint: unescape(mountpoint),
                fstype: fstype.to_owned(),
                readonly: options.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

/// Which mounts to leave out: node_exporter's defaults leave out kernel and pseudo filesystems
/// and container runtimes' layers.
#[derive(Debug, Clone)]
pub struct FsExcludes {
    pub mountpoints: regex::Regex,
    pub fstypes: regex::Regex,
}

impl FsExcludes {
    pub const DEFAULT_MOUNTPOINTS: &str =
        r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
    pub const DEFAULT_FSTYPES: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

    pub fn new(mountpoints: &str, fstypes: &str) -> Result<FsExcludes, regex::Error> {
        Ok(FsExcludes {
            mountpoints: regex::Regex::new(mountpoints)?,
            fstypes: regex::Regex::new(fstypes)?,
        })
    }

    /// The mounts not left out, one per mount point (the last, which hides those below it).
    pub fn select(&self, mounts: Vec<Mount>) -> Vec<Mount> {
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, m) in mounts.iter().enumerate() {
            last.insert(m.mountpoint.clone(), i);
        }
        mounts
            .into_iter()
            .enumerate()
            .filter(|(i, m)| {
                last.get(&m.mountpoint) == Some(i)
                    && !self.mountpoints.is_match(&m.mountpoint)
                    && !self.fstypes.is_match(&m.fstype)
            })
            .map(|(_, m)| m)
            .collect()
    }
}

/// Sizes of one filesystem, in bytes and inodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub size_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub files: u64,
    pub files_free: u64,
}

/// One mount's reading; `usage` is `None` when `statvfs` failed or timed out
/// (`node_filesystem_device_error` 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Filesystem {
    pub mount: Mount,
    pub usage: Option<Usage>,
}

type Request = (PathBuf, Arc<AtomicBool>);
type Answer = rustix::io::Result<Usage>;
/// What measures a mount: [`statvfs`], or a stand-in in tests.
pub type Stat = fn(&Path) -> Answer;

/// `statvfs(2)` of `path`, in bytes (fragment-sized blocks) and inodes.
pub fn statvfs(path: &Path) -> Answer {
    rustix::fs::statvfs(path).map(|s| Usage {
        size_bytes: s.f_blocks * s.f_frsize,
        free_bytes: s.f_bfree * s.f_frsize,
        avail_bytes: s.f_bavail * s.f_frsize,
        files: s.f_files,
        files_free: s.f_ffree,
    })
}

/// A thread that `statvfs`es paths sent to it.
struct Worker {
    ask: mpsc::Sender<Request>,
    answers: mpsc::Receiver<Answer>,
}

impl Worker {
    fn start(stat: Stat) -> std::io::Result<Worker> {
        let (ask, requests) = mpsc::channel::<Request>();
        let (reply, answers) = mpsc::channel();
        std::thread::Builder::new()
            .name("zen-statvfs".into())
            .spawn(move || {
                for (path, done) in requests {
                    let usage = stat(&path);
                    done.store(true, Ordering::Release);
                    if reply.send(usage).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Worker { ask, answers })
    }
}

/// Reads the mounted filesystems; see the module's description.
pub struct FilesystemReader {
    proc_root: PathBuf,
    rootfs: PathBuf,
    excludes: FsExcludes,
    timeout: Duration,
    stat: Stat,
    worker: Option<Worker>,
    /// Mount points whose call has not returned, with the flag their worker sets when it does.
    stuck: HashMap<String, Arc<AtomicBool>>,
}

impl std::fmt::Debug for FilesystemReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesystemReader")
            .field("rootfs", &self.rootfs)
            .field("stuck", &self.stuck.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl FilesystemReader {
    pub fn new(
        proc_root: &Path,
        rootfs: &Path,
        excludes: FsExcludes,
        timeout: Duration,
    ) -> FilesystemReader {
        FilesystemReader {
            proc_root: proc_root.to_owned(),
            rootfs: rootfs.to_owned(),
            excludes,
            timeout,
            stat: statvfs,
            worker: None,
            stuck: HashMap::new(),
        }
    }

    /// Measures with `stat` instead of [`statvfs`] (tests use one that hangs on a chosen
    /// mount, since a hung NFS server cannot be had here).
    pub fn with_stat(mut self, stat: Stat) -> FilesystemReader {
        self.stat = stat;
        self
    }

    /// The mount points asked about whose call has not returned.
    pub fn stuck(&self) -> Vec<&str> {
        self.stuck.keys().map(String::as_str).collect()
    }

    /// Reads every selected mount into `out`; returns what failed.
    pub fn sample(&mut self, out: &mut Vec<Filesystem>) -> Vec<CollectError> {
        let mut errors = Vec::new();
        out.clear();
        let table = ["1/mounts", "self/mounts"]
            .iter()
            .map(|f| self.proc_root.join(f))
            .find_map(|p| std::fs::read_to_string(&p).ok());
        let Some(table) = table else {
            errors.push(CollectError::Io {
                path: self.proc_root.join("self/mounts"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no mount table"),
            });
            return errors;
        };
        self.stuck.retain(|_, done| !done.load(Ordering::Acquire));
        for mount in self.excludes.select(parse_mounts(&table)) {
            let usage = self.statvfs(&mount.mountpoint, &mut errors);
            out.push(Filesystem { mount, usage });
        }
        errors
    }

    fn statvfs(&mut self, mountpoint: &str, errors: &mut Vec<CollectError>) -> Option<Usage> {
        if self.stuck.contains_key(mountpoint) {
            return None;
        }
        let path = self.rootfs.join(mountpoint.trim_start_matches('/'));
        let io = |source: std::io::Error| CollectError::Io {
            path: path.clone(),
            source,
        };
        if self.worker.is_none() {
            match Worker::start(self.stat) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    errors.push(io(e));
                    return None;
                }
            }
        }
        let worker = self.worker.as_ref()?;
        let done = Arc::new(AtomicBool::new(false));
        if worker.ask.send((path.clone(), done.clone())).is_err() {
            self.worker = None;
            return None;
        }
        match worker.answers.recv_timeout(self.timeout) {
            Ok(Ok(usage)) => Some(usage),
            Ok(Err(e)) => {
                errors.push(io(e.into()));
                None
            }
            Err(_) => {
                // The worker is blocked in the kernel: leave it there (it ends when its call
                // returns and finds nobody listening) and ask a fresh one next time.
                self.worker = None;
                self.stuck.insert(mountpoint.to_owned(), done);
                errors.push(io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "statvfs took longer than {:?}; not asked again until it returns",
                        self.timeout
                    ),
                )));
                None
            }
        }
    }
}
