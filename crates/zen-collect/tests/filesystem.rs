//! Filesystems: the mount table parser, node_exporter's exclusions, sizes against coreutils'
//! `stat -f`, and a hung mount that times out without holding anything up.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zen_collect::filesystem::{FilesystemReader, FsExcludes, Mount, Usage, parse_mounts};

fn defaults() -> FsExcludes {
    FsExcludes::new(FsExcludes::DEFAULT_MOUNTPOINTS, FsExcludes::DEFAULT_FSTYPES).unwrap()
}

fn mount(device: &str, mountpoint: &str, fstype: &str, readonly: bool) -> Mount {
    Mount {
        device: device.into(),
        mountpoint: mountpoint.into(),
        fstype: fstype.into(),
        readonly,
    }
}

#[test]
fn mount_tables_are_unescaped_and_pseudo_filesystems_left_out() {
    let table = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /dev/shm tmpfs rw 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
/dev/vdb /srv/my\\040data xfs ro,noatime 0 0
/dev/vdc /home ext4 rw 0 0
/dev/vdd /home ext4 rw 0 0
short line
";
    let all = parse_mounts(table);
    assert_eq!(all.len(), 8, "the short line is skipped");
    assert_eq!(all[5], mount("/dev/vdb", "/srv/my data", "xfs", true));
    let kept = defaults().select(all);
    assert_eq!(
        kept,
        [
            mount("/dev/vda", "/", "ext4", false),
            mount("/dev/vdb", "/srv/my data", "xfs", true),
            mount("/dev/vdd", "/home", "ext4", false),
        ],
        "one per mount point: the last, which hides the others"
    );
}

#[test]
fn sizes_agree_with_coreutils_stat() {
    let mut reader = FilesystemReader::new(
        Path::new("/proc"),
        Path::new("/"),
        defaults(),
        Duration::from_secs(5),
    );
    let mut out = Vec::new();
    let errors = reader.sample(&mut out);
    assert!(errors.is_empty(), "{errors:?}");
    let root = out.iter().find(|f| f.mount.mountpoint == "/").unwrap();
    let usage = root.usage.unwrap();
    // Total blocks, free, available, block size, inodes, free inodes.
    let stat = Command::new("stat")
        .args(["-f", "-c", "%b %f %a %S %c %d", "/"])
        .output()
        .unwrap();
    let f: Vec<u64> = String::from_utf8(stat.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(usage.size_bytes, f[0] * f[3]);
    assert_eq!(usage.files, f[4]);
    let near = |ours: u64, theirs: u64| ours.abs_diff(theirs) <= theirs / 100;
    assert!(near(usage.free_bytes, f[1] * f[3]), "{usage:?} {f:?}");
    assert!(near(usage.avail_bytes, f[2] * f[3]), "{usage:?} {f:?}");
    assert!(near(usage.files_free, f[5]), "{usage:?} {f:?}");
}

static HUNG_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Answers at once, but for `/mnt/hung`, which takes two seconds (a dead NFS server).
fn hangs_on_one(path: &Path) -> rustix::io::Result<Usage> {
    if path.ends_with("mnt/hung") {
        HUNG_CALLS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(Usage {
        size_bytes: 1 << 30,
        free_bytes: 1 << 29,
        avail_bytes: 1 << 28,
        files: 1000,
        files_free: 900,
    })
}

#[test]
fn a_hung_mount_times_out_and_is_not_asked_again_until_it_answers() {
    let proc = tempfile::tempdir().unwrap();
    std::fs::create_dir(proc.path().join("1")).unwrap();
    std::fs::write(
        proc.path().join("1/mounts"),
        "/dev/vda / ext4 rw 0 0\nserver:/export /mnt/hung nfs4 rw 0 0\n/dev/vdb /srv xfs rw 0 0\n",
    )
    .unwrap();
    let mut reader = FilesystemReader::new(
        proc.path(),
        Path::new("/"),
        defaults(),
        Duration::from_millis(100),
    )
    .with_stat(hangs_on_one);
    let mut out = Vec::new();

    let started = Instant::now();
    let errors = reader.sample(&mut out);
    assert!(started.elapsed() < Duration::from_secs(1), "held up");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert!(
        message.contains("/mnt/hung") && message.contains("longer than 100ms"),
        "{message}"
    );
    let usage: Vec<_> = out.iter().map(|f| f.usage.is_some()).collect();
    assert_eq!(usage, [true, false, true], "the mounts after it are read");
    assert_eq!(reader.stuck(), ["/mnt/hung"]);

    // Still stuck: reported as failing, not asked again.
    let errors = reader.sample(&mut out);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(out[1].usage.is_none());
    assert_eq!(HUNG_CALLS.load(Ordering::SeqCst), 1);

    // Once its call returns, it is asked again.
    std::thread::sleep(Duration::from_millis(2100));
    reader.sample(&mut out);
    assert_eq!(HUNG_CALLS.load(Ordering::SeqCst), 2);
}
