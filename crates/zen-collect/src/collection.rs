//! All collectors on threads of their own, the latest [`Sample`] shared.
//!
//! The `zen-collect` thread reads the host's files and the containers' every interval; the
//! `zen-collect-slow` thread discovers containers (every [`Settings::discovery_interval`]),
//! `statvfs`es filesystems (every [`Settings::filesystem_interval`], each with a timeout) and
//! reads the inventory, and hands its results to the first through a mutex it only ever
//! holds to swap a value. Nothing slow or blocking is on the per-second path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::cgroups::{Container, ContainerReader, discover, layout};
use crate::filesystem::{Filesystem, FilesystemReader, FsExcludes};
use crate::host::{Excludes, HostReader, HostSample, Visitor};
use crate::inventory::{Inventory, InventoryReader};
use crate::limits::{read_limits, self_cgroup, usage_percent};
use crate::process::ProcessReader;
use crate::{CollectError, Collectors, Roots};

/// What to collect, where from, and how often.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The per-second path's period; at least 100 ms.
    pub interval: Duration,
    pub roots: Roots,
    pub collectors: Collectors,
    pub excludes: Excludes,
    pub fs_excludes: FsExcludes,
    /// 10 s to 60 s.
    pub filesystem_interval: Duration,
    /// How long one `statvfs` may take before its mount is reported as failing.
    pub filesystem_timeout: Duration,
    /// Containers read at most (the rest are counted, not read).
    pub container_limit: usize,
    pub discovery_interval: Duration,
    pub inventory_interval: Duration,
}

/// A setting out of its range: the field, and what was expected against what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    pub field: &'static str,
    pub problem: String,
}

impl Settings {
    /// Checks the ranges the fields' docs give.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |field, problem: String| Err(SettingsError { field, problem });
        if self.interval < Duration::from_millis(100) {
            return bad(
                "interval",
                format!("expected at least 100ms, found {:?}", self.interval),
            );
        }
        let fs = self.filesystem_interval;
        if fs < Duration::from_secs(10) || fs > Duration::from_secs(60) {
            return bad(
                "filesystem_interval",
                format!("expected 10s to 60s, found {fs:?}"),
            );
        }
        if self.filesystem_timeout.is_zero() {
            return bad("filesystem_timeout", "expected more than 0s".to_owned());
        }
        Ok(())
    }

    /// The defaults for a host whose files are under `roots`.
    pub fn new(roots: Roots) -> Result<Settings, regex::Error> {
        Ok(Settings {
            interval: Duration::from_secs(1),
            roots,
            collectors: Collectors::default(),
            excludes: Excludes::new(Excludes::DEFAULT_DISKS, Excludes::DEFAULT_INTERFACES)?,
            fs_excludes: FsExcludes::new(
                FsExcludes::DEFAULT_MOUNTPOINTS,
                FsExcludes::DEFAULT_FSTYPES,
            )?,
            filesystem_interval: Duration::from_secs(30),
            filesystem_timeout: Duration::from_secs(5),
            container_limit: 1000,
            discovery_interval: Duration::from_secs(10),
            inventory_interval: Duration::from_secs(300),
        })
    }
}

/// The latest reading of everything.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub host: HostSample,
    pub containers: Vec<Container>,
    /// Cgroups found beyond the limit and not read.
    pub containers_skipped: usize,
    pub filesystems: Arc<Vec<Filesystem>>,
    pub inventory: Option<Arc<Inventory>>,
    /// The daemon's own CPU and memory use, percent of its limits (see [`crate::limits`]),
    /// from the second sample on.
    pub usage: Option<(f64, f64)>,
    /// The daemon's threads' CPU seconds by name ([`crate::process::Threads`]), read with the
    /// slow files (every [`crate::host::SLOW_EVERY`]th sample).
    pub threads: Arc<Vec<(String, f64)>>,
}

/// What the slow thread hands over.
#[derive(Debug, Default)]
struct Slow {
    /// New container paths to watch, and how many were skipped.
    containers: Option<(Vec<String>, usize)>,
    filesystems: Option<Arc<Vec<Filesystem>>>,
    inventory: Option<Arc<Inventory>>,
}

/// The collector threads; dropping it stops them.
#[derive(Debug)]
pub struct Collection {
    latest: Arc<Mutex<Sample>>,
    stops: Vec<mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Waits `interval` or until told to stop; `true` to go on.
fn pause(stopped: &mpsc::Receiver<()>, interval: Duration) -> bool {
    matches!(
        stopped.recv_timeout(interval),
        Err(mpsc::RecvTimeoutError::Timeout)
    )
}

impl Collection {
    /// Starts the threads; the first samples are taken at once. `report` hears each round's
    /// errors (from either thread).
    pub fn start(
        settings: Settings,
        report: impl Fn(&[CollectError]) + Send + Sync + 'static,
    ) -> std::io::Result<Collection> {
        let report = Arc::new(report);
        let latest = Arc::new(Mutex::new(Sample::default()));
        let slow = Arc::new(Mutex::new(Slow::default()));
        let mut collection = Collection {
            latest: latest.clone(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        let on = settings.collectors;
        if on.cgroups || on.filesystem || on.inventory {
            let (stop, stopped) = mpsc::channel();
            let (settings, slow, report) = (settings.clone(), slow.clone(), report.clone());
            collection.threads.push(
                std::thread::Builder::new()
                    .name("zen-collect-slow".into())
                    .spawn(move || slow_loop(&settings, &slow, &stopped, &*report))?,
            );
            collection.stops.push(stop);
        }
        let (stop, stopped) = mpsc::channel();
        collection.threads.push(
            std::thread::Builder::new()
                .name("zen-collect".into())
                .spawn(move || fast_loop(&settings, &slow, &latest, &stopped, &*report))?,
        );
        collection.stops.push(stop);
        Ok(collection)
    }

    /// The latest sample.
    pub fn latest(&self) -> Arc<Mutex<Sample>> {
        self.latest.clone()
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.stops.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn slow_loop(
    settings: &Settings,
    slow: &Mutex<Slow>,
    stopped: &mpsc::Receiver<()>,
    report: &dyn Fn(&[CollectError]),
) {
    let on = settings.collectors;
    let layout = layout(&settings.roots.cgroup);
    let mut filesystems = on.filesystem.then(|| {
        FilesystemReader::new(
            &settings.roots.proc,
            &settings.roots.rootfs,
            settings.fs_excludes.clone(),
            settings.filesystem_timeout,
        )
    });
    let mut inventory = None;
    if on.inventory {
        match InventoryReader::new(on.processes) {
            Ok(reader) => inventory = Some(reader),
            Err(e) => report(&[e]),
        }
    }
    // When each task runs next; `None` for a task switched off (or whose reader could not
    // start), which then never holds the loop awake.
    let start = Instant::now();
    let mut due = [
        on.cgroups.then_some(start),
        filesystems.is_some().then_some(start),
        inventory.is_some().then_some(start),
    ];
    loop {
        let now = Instant::now();
        let ready = |d: Option<Instant>| d.is_some_and(|d| now >= d);
        if ready(due[0]) {
            let found = discover(&layout, settings.container_limit);
            if let Ok(mut s) = slow.lock() {
                s.containers = Some(found);
            }
            due[0] = Some(now + settings.discovery_interval);
        }
        if let Some(reader) = filesystems.as_mut().filter(|_| ready(due[1])) {
            let mut out = Vec::new();
            let errors = reader.sample(&mut out);
            if !errors.is_empty() {
                report(&errors);
            }
            if let Ok(mut s) = slow.lock() {
                s.filesystems = Some(Arc::new(out));
            }
            due[1] = Some(now + settings.filesystem_interval);
        }
        if let Some(reader) = inventory.as_mut().filter(|_| ready(due[2])) {
            let read = Arc::new(reader.read());
            if let Ok(mut s) = slow.lock() {
                s.inventory = Some(read);
            }
            due[2] = Some(now + settings.inventory_interval);
        }
        let Some(next) = due.iter().flatten().min() else {
            return;
        };
        if !pause(stopped, next.saturating_duration_since(Instant::now())) {
            return;
        }
    }
}

fn fast_loop(
    settings: &Settings,
    slow: &Mutex<Slow>,
    latest: &Mutex<Sample>,
    stopped: &mpsc::Receiver<()>,
    report: &dyn Fn(&[CollectError]),
) {
    let interval = settings.interval.max(Duration::from_millis(100));
    let on = settings.collectors;
    let mut host = HostReader::new(&settings.roots, settings.excludes.clone(), &on);
    let mut containers = ContainerReader::new(layout(&settings.roots.cgroup), &settings.roots.proc);
    let mut next = Sample::default();
    let mut own = ProcessReader::new("/proc");
    let mut threads = crate::process::Threads::new("/proc");
    let mut thread_totals: Arc<Vec<(String, f64)>> = Arc::default();
    let mut samples: u64 = 0;
    let mut limits = None;
    let cgroup_root: PathBuf = settings.roots.cgroup.clone();
    // The first percentage is the mean since the process started (at no CPU time).
    let mut previous: Option<(Instant, f64)> = own.sample().ok().and_then(|p| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        let age = Duration::from_secs_f64((now - p.start_time_seconds).max(0.0));
        Some((Instant::now().checked_sub(age)?, 0.0))
    });
    loop {
        let mut errors = host.sample(&mut next.host);
        if samples.is_multiple_of(crate::host::SLOW_EVERY) {
            match threads.read() {
                Ok(t) => thread_totals = Arc::new(t.iter().map(|(n, v)| (n.clone(), *v)).collect()),
                Err(e) => errors.push(e),
            }
        }
        samples += 1;
        next.threads = thread_totals.clone();
        if let Ok(mut s) = slow.lock() {
            if let Some((paths, skipped)) = s.containers.take() {
                containers.watch(&paths);
                next.containers_skipped = skipped;
            }
            if let Some(f) = &s.filesystems {
                next.filesystems = f.clone();
            }
            next.inventory.clone_from(&s.inventory);
        }
        if on.cgroups {
            errors.extend(containers.sample(&mut next.containers));
        }
        let limits = *limits.get_or_insert_with(|| {
            let memory = next
                .host
                .meminfo
                .iter()
                .find(|f| f.name == "MemTotal")
                .map_or(0, |f| f.value);
            read_limits(
                &self_cgroup(),
                &cgroup_root,
                next.host.cpus.len() as f64,
                memory,
            )
        });
        match own.cpu_and_resident() {
            Ok((cpu, resident)) => {
                let now = Instant::now();
                next.usage = previous.map(|(then, before)| {
                    let wall = now.duration_since(then).as_secs_f64();
                    usage_percent(cpu - before, wall, resident, &limits)
                });
                previous = Some((now, cpu));
            }
            Err(e) => errors.push(e),
        }
        if !errors.is_empty() {
            report(&errors);
        }
        if let Ok(mut l) = latest.lock() {
            std::mem::swap(&mut *l, &mut next);
        }
        if !pause(stopped, interval) {
            return;
        }
    }
}

impl Sample {
    /// Every reading as (metric name, labels, value), all of one metric before the next.
    pub fn visit(&self, out: &mut Visitor<'_>) {
        self.host.visit(out);
        if let Some((cpu, memory)) = self.usage {
            out("zen_watcher_cpu_usage_percent", &[], cpu);
            out("zen_watcher_memory_usage_percent", &[], memory);
        }
        for (name, seconds) in self.threads.iter() {
            out(
                "zen_watcher_thread_cpu_seconds_total",
                &[("thread", name)],
                *seconds,
            );
        }
        visit_filesystems(&self.filesystems, out);
        visit_containers(&self.containers, self.containers_skipped, out);
        if let Some(i) = &self.inventory {
            visit_inventory(i, out);
        }
    }
}

fn visit_filesystems(filesystems: &[Filesystem], out: &mut Visitor<'_>) {
    type Field = (&'static str, fn(&crate::filesystem::Usage) -> u64);
    let fields: [Field; 5] = [
        ("node_filesystem_size_bytes", |u| u.size_bytes),
        ("node_filesystem_free_bytes", |u| u.free_bytes),
        ("node_filesystem_avail_bytes", |u| u.avail_bytes),
        ("node_filesystem_files", |u| u.files),
        ("node_filesystem_files_free", |u| u.files_free),
    ];
    let emit = |out: &mut Visitor<'_>, name: &str, f: &Filesystem, v: f64| {
        let m = &f.mount;
        let labels = [
            ("device", m.device.as_str()),
            ("fstype", m.fstype.as_str()),
            ("mountpoint", m.mountpoint.as_str()),
        ];
        out(name, &labels, v);
    };
    for (name, get) in fields {
        for f in filesystems {
            if let Some(u) = &f.usage {
                emit(out, name, f, get(u) as f64);
            }
        }
    }
    for f in filesystems {
        emit(
            out,
            "node_filesystem_readonly",
            f,
            f64::from(u8::from(f.mount.readonly)),
        );
    }
    for f in filesystems {
        emit(
            out,
            "node_filesystem_device_error",
            f,
            f64::from(u8::from(f.usage.is_none())),
        );
    }
}

fn visit_containers(containers: &[Container], skipped: usize, out: &mut Visitor<'_>) {
    out(
        "zen_watcher_containers",
        &[("state", "read")],
        containers.len() as f64,
    );
    out(
        "zen_watcher_containers",
        &[("state", "skipped")],
        skipped as f64,
    );
    fn labels(c: &Container) -> [(&'static str, &str); 4] {
        [
            ("id", c.id.as_str()),
            ("name", c.identity.name.as_str()),
            ("runtime", c.identity.runtime),
            ("pod_uid", c.identity.pod_uid.as_deref().unwrap_or("")),
        ]
    }
    type Field = (&'static str, fn(&Container) -> Option<f64>);
    let fields: [Field; 17] = [
        ("container_cpu_usage_seconds_total", |c| c.cpu_usage_seconds),
        ("container_cpu_user_seconds_total", |c| c.cpu_user_seconds),
        ("container_cpu_system_seconds_total", |c| {
            c.cpu_system_seconds
        }),
        ("container_cpu_cfs_periods_total", |c| {
            c.cfs_periods.map(|v| v as f64)
        }),
        ("container_cpu_cfs_throttled_periods_total", |c| {
            c.cfs_throttled_periods.map(|v| v as f64)
        }),
        ("container_cpu_cfs_throttled_seconds_total", |c| {
            c.cfs_throttled_seconds
        }),
        ("container_memory_usage_bytes", |c| {
            c.memory_usage_bytes.map(|v| v as f64)
        }),
        ("container_memory_working_set_bytes", |c| {
            c.memory_working_set_bytes.map(|v| v as f64)
        }),
        ("container_memory_rss", |c| {
            c.memory_rss_bytes.map(|v| v as f64)
        }),
        ("container_memory_cache", |c| {
            c.memory_cache_bytes.map(|v| v as f64)
        }),
        ("container_memory_swap", |c| {
            c.memory_swap_bytes.map(|v| v as f64)
        }),
        ("container_spec_cpu_quota", |c| {
            c.cpu_quota.map(|q| q.0 as f64)
        }),
        ("container_spec_cpu_period", |c| {
            c.cpu_quota.map(|q| q.1 as f64)
        }),
        ("container_spec_memory_limit_bytes", |c| {
            c.memory_limit_bytes.map(|v| v as f64)
        }),
        ("container_oom_events_total", |c| {
            c.oom_events.map(|v| v as f64)
        }),
        ("container_threads", |c| c.threads.map(|v| v as f64)),
        ("container_threads_max", |c| c.threads_max.map(|v| v as f64)),
    ];
    for (name, get) in fields {
        for c in containers {
            if let Some(v) = get(c) {
                out(name, &labels(c), v);
            }
        }
    }
    type IoField = (&'static str, fn(&crate::cgroups::DeviceIo) -> u64);
    let io_fields: [IoField; 4] = [
        ("container_fs_reads_bytes_total", |d| d.read_bytes),
        ("container_fs_writes_bytes_total", |d| d.write_bytes),
        ("container_fs_reads_total", |d| d.reads),
        ("container_fs_writes_total", |d| d.writes),
    ];
    for (name, get) in io_fields {
        for c in containers {
            let [a, b, d, e] = labels(c);
            for io in &c.io {
                out(name, &[a, b, d, e, ("device", &io.device)], get(io) as f64);
            }
        }
    }
    // cAdvisor's names for the columns of net/dev it exports: bytes, packets, errs, drop.
    let net_fields = [
        ("bytes", 0),
        ("packets", 1),
        ("errors", 2),
        ("packets_dropped", 3),
    ];
    for (direction, receive) in [("receive", true), ("transmit", false)] {
        for (what, column) in net_fields {
            let name = format!("container_network_{direction}_{what}_total");
            for c in containers {
                let [a, b, d, e] = labels(c);
                for n in &c.network {
                    let v = if receive { n.receive } else { n.transmit }[column];
                    out(&name, &[a, b, d, e, ("interface", &n.device)], v as f64);
                }
            }
        }
    }
    for (r, resource) in ["cpu", "memory", "io"].iter().enumerate() {
        for (kind, stalled) in [("waiting", false), ("stalled", true)] {
            let name = format!("container_pressure_{resource}_{kind}_seconds_total");
            for c in containers {
                let Some(p) = c.pressure[r] else { continue };
                let v = if stalled {
                    p.stalled_seconds
                } else {
                    Some(p.waiting_seconds)
                };
                if let Some(v) = v {
                    out(&name, &labels(c), v);
                }
            }
        }
    }
}

fn visit_inventory(i: &Inventory, out: &mut Visitor<'_>) {
    out(
        "zen_watcher_host_info",
        &[
            ("hostname", &i.hostname),
            ("os", &i.os),
            ("kernel", &i.kernel),
            ("cpu_model", &i.cpu_model),
        ],
        1.0,
    );
    out("zen_watcher_host_cpus", &[], i.cpus as f64);
    out("zen_watcher_host_memory_bytes", &[], i.memory_bytes as f64);
    for (sensor, celsius) in &i.temperatures {
        out(
            "zen_watcher_host_temperature_celsius",
            &[("sensor", sensor)],
            *celsius,
        );
    }
    for p in &i.processes {
        out(
            "zen_watcher_host_processes",
            &[("name", &p.name)],
            p.count as f64,
        );
    }
    for p in &i.processes {
        out(
            "zen_watcher_host_process_resident_memory_bytes",
            &[("name", &p.name)],
            p.resident_bytes as f64,
        );
    }
    for p in &i.processes {
        out(
            "zen_watcher_host_process_cpu_seconds",
            &[("name", &p.name)],
            p.cpu_seconds,
        );
    }
}
