//! The host, from `/proc`, under node_exporter's metric names and units.
//!
//! [`HostReader`] keeps its files open and re-reads them into one reused buffer; the parsers
//! are pure functions that update a [`HostSample`] in place (a field, disk or interface already
//! known keeps its entry, so a steady host allocates nothing per sample). [`HostSample::visit`]
//! reports every reading as (metric name, labels, value), one metric after another.
//!
//! Read: `/proc/stat` (CPU time by mode per CPU, interrupts, context switches, forks, processes
//! running and blocked, boot time), `/proc/loadavg`, all of `/proc/meminfo`, page faults, paging,
//! swapping and OOM kills from `/proc/vmstat`, `/proc/diskstats`, `/proc/net/dev`,
//! `/proc/pressure/{cpu,memory,io}` (PSI, where the kernel has it), `/proc/sys/fs/file-nr`, TCP,
//! UDP and IP counters of `/proc/net/{snmp,netstat,snmp6}` and socket counts of
//! `/proc/net/sockstat{,6}`.
//!
//! Every sample reads the files a per-second chart draws; `loadavg` (which the kernel updates
//! every 5 s) is read every [`LOAD_EVERY`]th sample and the counters nothing reads at 1 s
//! ([`SLOW_FILES`]) every [`SLOW_EVERY`]th, their last values carried forward in between: they
//! were two thirds of the time spent reading files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::netclass::{Link, REFRESH, dump_links, read_link, refresh};
use crate::{CollectError, Collectors, Roots, Source};

/// Ticks per second of `/proc/stat` times (`USER_HZ`, 100 on every Linux).
const USER_HZ: f64 = 100.0;

/// The CPU modes of `/proc/stat`, in its column order (node_exporter's `mode` label values).
pub const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// One CPU's times, seconds, by [`CPU_MODES`]; then guest and guest_nice.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub modes: [f64; 8],
    pub guest: [f64; 2],
}

/// The rest of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatCounters {
    pub interrupts: u64,
    pub context_switches: u64,
    pub forks: u64,
    pub procs_running: u64,
    pub procs_blocked: u64,
    pub boot_time: u64,
}

/// A field of `/proc/meminfo`: its name, value, and whether it is in kB (then in bytes here).
#[derive(Debug, Clone, PartialEq)]
pub struct MemField {
    /// node_exporter's form: `Active(anon)` becomes `Active_anon`.
    pub name: String,
    pub value: u64,
    pub bytes: bool,
}

/// One block device of `/proc/diskstats`, in base units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    pub device: String,
    pub reads_completed: u64,
    pub reads_merged: u64,
    pub read_bytes: u64,
    pub read_time_seconds: f64,
    pub writes_completed: u64,
    pub writes_merged: u64,
    pub written_bytes: u64,
    pub write_time_seconds: f64,
    pub io_now: u64,
    pub io_time_seconds: f64,
    pub io_time_weighted_seconds: f64,
}

/// One interface of `/proc/net/dev`: receive and transmit counters, by [`NET_RECEIVE`] and
/// [`NET_TRANSMIT`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetDev {
    pub device: String,
    pub receive: [u64; 8],
    pub transmit: [u64; 8],
}

/// The receive columns of `/proc/net/dev` (node_exporter's `node_network_receive_<x>_total`).
pub const NET_RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
/// The transmit columns (`node_network_transmit_<x>_total`).
pub const NET_TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// Pressure stall totals of one resource, seconds: tasks waiting (`some`) and, for memory and
/// IO, all stalled (`full`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    pub waiting_seconds: f64,
    pub stalled_seconds: Option<f64>,
}

/// The `/proc/vmstat` fields node_exporter reports by default: paging, swapping, page faults
/// and OOM kills.
pub fn vmstat_wanted(field: &str) -> bool {
    field == "oom_kill"
        || field.starts_with("pgpg")
        || field.starts_with("pswp")
        || (field.starts_with("pg") && field.ends_with("fault"))
}

/// One reading of the host. Parts the kernel does not offer (PSI, say) stay empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSample {
    pub cpus: Vec<CpuTimes>,
    pub stat: StatCounters,
    pub load: [f64; 3],
    pub meminfo: Vec<MemField>,
    pub vmstat: Vec<(String, u64)>,
    pub disks: Vec<Disk>,
    pub net: Vec<NetDev>,
    /// cpu, memory, io — `None` where unreadable.
    pub pressure: [Option<Pressure>; 3],
    /// Allocated file handles and the system maximum.
    pub filefd: Option<(u64, u64)>,
    /// `Tcp_CurrEstab`, … of `/proc/net/{snmp,netstat,snmp6}`, those [`NETSTAT_WANTED`].
    pub netstat: Vec<(String, f64)>,
    /// `sockets_used`, `TCP_inuse`, `TCP_mem_bytes`, … of `/proc/net/sockstat{,6}`.
    pub sockstat: Vec<(String, f64)>,
    /// Interface state from sysfs, read when the interfaces change (see [`crate::netclass`]).
    pub links: Arc<Vec<Link>>,
}

/// The `/proc/net/{snmp,netstat,snmp6}` fields node_exporter reports by default.
pub const NETSTAT_WANTED: &str = r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// Sets entry `n` of `list` to (`name`, `value`), reusing its name's allocation.
fn put(list: &mut Vec<(String, f64)>, n: usize, name: &str, value: f64) {
    if n == list.len() {
        list.push((String::new(), 0.0));
    }
    set_name(&mut list[n].0, name);
    list[n].1 = value;
}

/// A pattern's answer for each name in a file (a counter to keep, a device to leave out),
/// kept by the name's position, so that a file whose layout is unchanged (every sample but the
/// first) costs one string comparison per name instead of a pattern match.
#[derive(Debug, Clone)]
pub struct Matches {
    pattern: regex::Regex,
    seen: Vec<(String, bool)>,
}

impl Matches {
    pub fn new(pattern: regex::Regex) -> Matches {
        Matches {
            pattern,
            seen: Vec::new(),
        }
    }

    /// Whether name number `i` of the file, `name`, matches.
    fn check(&mut self, i: usize, name: &str) -> bool {
        if i == self.seen.len() {
            self.seen.push((String::new(), false));
        }
        let (seen, wanted) = &mut self.seen[i];
        if seen != name {
            set_name(seen, name);
            *wanted = self.pattern.is_match(name);
        }
        *wanted
    }
}

/// Appends the wanted fields of `/proc/net/snmp` or `/proc/net/netstat` (a header line of
/// names, then a line of values, per protocol) to `out` from entry `n`; returns the next entry.
pub fn parse_snmp(
    text: &str,
    wanted: &mut Matches,
    out: &mut Vec<(String, f64)>,
    mut n: usize,
) -> Option<usize> {
    let mut lines = text.lines();
    let mut name = String::new();
    let mut i = 0;
    while let (Some(header), Some(values)) = (lines.next(), lines.next()) {
        let (proto, names) = header.split_once(':')?;
        let (proto2, values) = values.split_once(':')?;
        if proto != proto2 {
            return None;
        }
        for (field, value) in names
            .split_ascii_whitespace()
            .zip(values.split_ascii_whitespace())
        {
            name.clear();
            name.push_str(proto);
            name.push('_');
            name.push_str(field);
            if wanted.check(i, &name) {
                put(out, n, &name, value.parse::<i64>().ok()? as f64);
                n += 1;
            }
            i += 1;
        }
    }
    Some(n)
}

/// Appends the wanted fields of `/proc/net/snmp6` (`Ip6InOctets 256` lines) to `out` from
/// entry `n`; returns the next entry.
pub fn parse_snmp6(
    text: &str,
    wanted: &mut Matches,
    out: &mut Vec<(String, f64)>,
    mut n: usize,
) -> Option<usize> {
    let mut name = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let proto = ["UdpLite6", "Icmp6", "Udp6", "Ip6"]
            .into_iter()
            .find(|p| key.starts_with(p))?;
        name.clear();
        name.push_str(proto);
        name.push('_');
        name.push_str(&key[proto.len()..]);
        if wanted.check(i, &name) {
            put(out, n, &name, value.parse::<i64>().ok()? as f64);
            n += 1;
        }
    }
    Some(n)
}

/// Appends `/proc/net/sockstat` or `sockstat6` to `out` from entry `n` (`mem`, in pages, also
/// as `_mem_bytes`); returns the next entry.
pub fn parse_sockstat(
    text: &str,
    page_size: u64,
    out: &mut Vec<(String, f64)>,
    mut n: usize,
) -> Option<usize> {
    let mut name = String::new();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_ascii_whitespace();
        while let (Some(field), Some(value)) = (f.next(), f.next()) {
            let value: u64 = value.parse().ok()?;
            name.clear();
            name.push_str(proto);
            name.push('_');
            name.push_str(field);
            put(out, n, &name, value as f64);
            n += 1;
            if field == "mem" {
                name.push_str("_bytes");
                put(out, n, &name, (value * page_size) as f64);
                n += 1;
            }
        }
    }
    Some(n)
}

/// Sets `slot` to `name` without allocating when it already holds it.
fn set_name(slot: &mut String, name: &str) {
    if slot != name {
        slot.clear();
        slot.push_str(name);
    }
}

/// The first `N` items of `items` (defaults after its end) and how many there were: a line's
/// fields without allocating.
fn first<const N: usize, T: Copy + Default>(items: impl Iterator<Item = T>) -> ([T; N], usize) {
    let mut out = [T::default(); N];
    let mut len = 0;
    for (slot, item) in out.iter_mut().zip(items) {
        *slot = item;
        len += 1;
    }
    (out, len)
}

fn num(field: Option<&str>) -> Option<u64> {
    field?.parse().ok()
}

/// Parses `/proc/stat` into `cpus` (per CPU, not the `cpu` total line) and `stat`.
pub fn parse_stat(text: &str, cpus: &mut Vec<CpuTimes>, stat: &mut StatCounters) -> Option<()> {
    let mut n = 0;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(key) = f.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            if id.is_empty() {
                continue;
            }
            let (values, len) = first::<10, f64>(
                f.filter_map(|v| v.parse::<u64>().ok())
                    .map(|v| v as f64 / USER_HZ),
            );
            if len < 4 {
                return None;
            }
            let mut t = CpuTimes::default();
            t.modes.copy_from_slice(&values[..8]);
            t.guest.copy_from_slice(&values[8..]);
            // The kernel counts guest time in user and nice too; node_exporter leaves it there.
            if n < cpus.len() {
                cpus[n] = t;
            } else {
                cpus.push(t);
            }
            n += 1;
            continue;
        }
        let value = num(f.next());
        match key {
            "intr" => stat.interrupts = value?,
            "ctxt" => stat.context_switches = value?,
            "processes" => stat.forks = value?,
            "procs_running" => stat.procs_running = value?,
            "procs_blocked" => stat.procs_blocked = value?,
            "btime" => stat.boot_time = value?,
            _ => {}
        }
    }
    cpus.truncate(n);
    (n > 0).then_some(())
}

/// Parses `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_ascii_whitespace().map(|v| v.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// Parses `/proc/meminfo` into `fields`, every line.
pub fn parse_meminfo(text: &str, fields: &mut Vec<MemField>) -> Option<()> {
    let mut n = 0;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_ascii_whitespace();
        let value: u64 = num(f.next())?;
        let bytes = f.next() == Some("kB");
        if n == fields.len() {
            fields.push(MemField {
                name: String::new(),
                value: 0,
                bytes,
            });
        }
        let slot = &mut fields[n];
        if !same_mem_name(&slot.name, key) {
            slot.name = key.replace('(', "_").replace(')', "");
        }
        slot.value = if bytes { value * 1024 } else { value };
        slot.bytes = bytes;
        n += 1;
    }
    fields.truncate(n);
    (n > 0).then_some(())
}

/// Whether `name` is `key` in node_exporter's form (`Active(anon)` as `Active_anon`).
fn same_mem_name(name: &str, key: &str) -> bool {
    let mut k = key
        .bytes()
        .filter(|&b| b != b')')
        .map(|b| if b == b'(' { b'_' } else { b });
    name.bytes().all(|b| k.next() == Some(b)) && k.next().is_none()
}

/// Parses `/proc/vmstat` into `fields`, those [`vmstat_wanted`].
pub fn parse_vmstat(text: &str, fields: &mut Vec<(String, u64)>) -> Option<()> {
    let mut n = 0;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(key) = f.next() else { continue };
        if !vmstat_wanted(key) {
            continue;
        }
        let value = num(f.next())?;
        if n == fields.len() {
            fields.push((String::new(), 0));
        }
        set_name(&mut fields[n].0, key);
        fields[n].1 = value;
        n += 1;
    }
    fields.truncate(n);
    Some(())
}

/// Parses `/proc/diskstats` into `disks`, leaving out devices `exclude` matches. Sectors are 512
/// bytes and times milliseconds, whatever the device.
pub fn parse_diskstats(text: &str, exclude: &mut Matches, disks: &mut Vec<Disk>) -> Option<()> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let (f, len) = first::<14, &str>(line.split_ascii_whitespace());
        if len < 14 {
            if len == 0 {
                continue;
            }
            return None;
        }
        if exclude.check(i, f[2]) {
            continue;
        }
        let v = |i: usize| f[i].parse::<u64>().ok();
        let ms = |i: usize| v(i).map(|x| x as f64 / 1000.0);
        if n == disks.len() {
            disks.push(Disk::default());
        }
        let d = &mut disks[n];
        set_name(&mut d.device, f[2]);
        d.reads_completed = v(3)?;
        d.reads_merged = v(4)?;
        d.read_bytes = v(5)? * 512;
        d.read_time_seconds = ms(6)?;
        d.writes_completed = v(7)?;
        d.writes_merged = v(8)?;
        d.written_bytes = v(9)? * 512;
        d.write_time_seconds = ms(10)?;
        d.io_now = v(11)?;
        d.io_time_seconds = ms(12)?;
        d.io_time_weighted_seconds = ms(13)?;
        n += 1;
    }
    disks.truncate(n);
    Some(())
}

/// Parses `/proc/net/dev` into `net`, leaving out interfaces `exclude` matches.
pub fn parse_net_dev(text: &str, exclude: &mut Matches, net: &mut Vec<NetDev>) -> Option<()> {
    let mut n = 0;
    for (i, line) in text.lines().skip(2).enumerate() {
        let (name, rest) = line.split_once(':')?;
        let name = name.trim();
        if exclude.check(i, name) {
            continue;
        }
        let (parsed, len) =
            first::<16, Option<u64>>(rest.split_ascii_whitespace().map(|v| v.parse().ok()));
        if len < 16 {
            return None;
        }
        let mut values = [0u64; 16];
        for (slot, v) in values.iter_mut().zip(parsed) {
            *slot = v?;
        }
        if n == net.len() {
            net.push(NetDev::default());
        }
        let d = &mut net[n];
        set_name(&mut d.device, name);
        d.receive.copy_from_slice(&values[..8]);
        d.transmit.copy_from_slice(&values[8..16]);
        n += 1;
    }
    net.truncate(n);
    Some(())
}

/// Parses a `/proc/pressure/*` file: the `total=` microseconds of `some` and `full`.
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let total = |line: &str| -> Option<f64> {
        let us: u64 = line.split_once("total=")?.1.trim().parse().ok()?;
        Some(us as f64 / 1e6)
    };
    let mut p = Pressure::default();
    let mut some = false;
    for line in text.lines() {
        if line.starts_with("some ") {
            p.waiting_seconds = total(line)?;
            some = true;
        } else if line.starts_with("full ") {
            p.stalled_seconds = Some(total(line)?);
        }
    }
    some.then_some(p)
}

/// Parses `/proc/sys/fs/file-nr`: allocated handles (less the free ones) and the maximum.
pub fn parse_file_nr(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace().map(|v| v.parse::<u64>().ok());
    let (allocated, _free, max) = (f.next()??, f.next()??, f.next()??);
    Some((allocated, max))
}

/// Hears readings: metric name, labels (name, value), value.
pub type Visitor<'a> = dyn FnMut(&str, &[(&str, &str)], f64) + 'a;

impl HostSample {
    /// Every reading as (metric name, labels, value), all of one metric before the next.
    pub fn visit(&self, out: &mut Visitor<'_>) {
        let mut name = String::new();
        for (m, mode) in CPU_MODES.iter().enumerate() {
            for (i, c) in self.cpus.iter().enumerate() {
                out(
                    "node_cpu_seconds_total",
                    &[("cpu", &i.to_string()), ("mode", mode)],
                    c.modes[m],
                );
            }
        }
        for (g, mode) in ["user", "nice"].iter().enumerate() {
            for (i, c) in self.cpus.iter().enumerate() {
                out(
                    "node_cpu_guest_seconds_total",
                    &[("cpu", &i.to_string()), ("mode", mode)],
                    c.guest[g],
                );
            }
        }
        let s = &self.stat;
        if !self.cpus.is_empty() {
            out("node_intr_total", &[], s.interrupts as f64);
            out(
                "node_context_switches_total",
                &[],
                s.context_switches as f64,
            );
            out("node_forks_total", &[], s.forks as f64);
            out("node_procs_running", &[], s.procs_running as f64);
            out("node_procs_blocked", &[], s.procs_blocked as f64);
            out("node_boot_time_seconds", &[], s.boot_time as f64);
            for (suffix, v) in ["1", "5", "15"].iter().zip(self.load) {
                name.clear();
                name.push_str("node_load");
                name.push_str(suffix);
                out(&name, &[], v);
            }
        }
        for f in &self.meminfo {
            name.clear();
            name.push_str("node_memory_");
            name.push_str(&f.name);
            if f.bytes {
                name.push_str("_bytes");
            }
            out(&name, &[], f.value as f64);
        }
        for (field, v) in &self.vmstat {
            name.clear();
            name.push_str("node_vmstat_");
            name.push_str(field);
            out(&name, &[], *v as f64);
        }
        type DiskField = (&'static str, fn(&Disk) -> f64);
        let disk_fields: [DiskField; 11] = [
            ("node_disk_reads_completed_total", |d| {
                d.reads_completed as f64
            }),
            ("node_disk_reads_merged_total", |d| d.reads_merged as f64),
            ("node_disk_read_bytes_total", |d| d.read_bytes as f64),
            ("node_disk_read_time_seconds_total", |d| d.read_time_seconds),
            ("node_disk_writes_completed_total", |d| {
                d.writes_completed as f64
            }),
            ("node_disk_writes_merged_total", |d| d.writes_merged as f64),
            ("node_disk_written_bytes_total", |d| d.written_bytes as f64),
            ("node_disk_write_time_seconds_total", |d| {
                d.write_time_seconds
            }),
            ("node_disk_io_now", |d| d.io_now as f64),
            ("node_disk_io_time_seconds_total", |d| d.io_time_seconds),
            ("node_disk_io_time_weighted_seconds_total", |d| {
                d.io_time_weighted_seconds
            }),
        ];
        for (metric, get) in disk_fields {
            for d in &self.disks {
                out(metric, &[("device", &d.device)], get(d));
            }
        }
        for (direction, columns, pick) in [
            (
                "receive",
                NET_RECEIVE,
                (|d: &NetDev| d.receive) as fn(&NetDev) -> [u64; 8],
            ),
            ("transmit", NET_TRANSMIT, |d: &NetDev| d.transmit),
        ] {
            for (c, column) in columns.iter().enumerate() {
                name.clear();
                name.push_str("node_network_");
                name.push_str(direction);
                name.push('_');
                name.push_str(column);
                name.push_str("_total");
                for d in &self.net {
                    out(&name, &[("device", &d.device)], pick(d)[c] as f64);
                }
            }
        }
        for (resource, p) in ["cpu", "memory", "io"].iter().zip(&self.pressure) {
            let Some(p) = p else { continue };
            name.clear();
            name.push_str("node_pressure_");
            name.push_str(resource);
            name.push_str("_waiting_seconds_total");
            out(&name, &[], p.waiting_seconds);
            // The kernel reports `full` for CPU too (always 0 outside cgroups); node_exporter
            // leaves it out, and so do we.
            if let (Some(stalled), false) = (p.stalled_seconds, *resource == "cpu") {
                name.clear();
                name.push_str("node_pressure_");
                name.push_str(resource);
                name.push_str("_stalled_seconds_total");
                out(&name, &[], stalled);
            }
        }
        for (prefix, list) in [
            ("node_netstat_", &self.netstat),
            ("node_sockstat_", &self.sockstat),
        ] {
            for (field, v) in list.iter() {
                name.clear();
                name.push_str(prefix);
                name.push_str(field);
                out(&name, &[], *v);
            }
        }
        if let Some((allocated, max)) = self.filefd {
            out("node_filefd_allocated", &[], allocated as f64);
            out("node_filefd_maximum", &[], max as f64);
        }
        for l in self.links.iter() {
            out(
                "node_network_up",
                &[("device", &l.device)],
                f64::from(u8::from(l.up())),
            );
        }
        type LinkField = (&'static str, fn(&Link) -> Option<u64>);
        let link_fields: [LinkField; 3] = [
            ("node_network_mtu_bytes", |l| l.mtu),
            ("node_network_speed_bytes", |l| l.speed_bytes),
            ("node_network_carrier", |l| l.carrier),
        ];
        for (metric, get) in link_fields {
            for l in self.links.iter() {
                if let Some(v) = get(l) {
                    out(metric, &[("device", &l.device)], v as f64);
                }
            }
        }
        for l in self.links.iter() {
            out(
                "node_network_info",
                &[
                    ("address", &l.address),
                    ("broadcast", &l.broadcast),
                    ("device", &l.device),
                    ("duplex", &l.duplex),
                    ("ifalias", &l.ifalias),
                    ("operstate", &l.operstate),
                ],
                1.0,
            );
        }
    }
}

/// Which devices and interfaces to leave out (their label values would be unbounded or
/// meaningless: partitions, loop and RAM devices; container veth pairs).
#[derive(Debug, Clone)]
pub struct Excludes {
    pub disks: regex::Regex,
    pub interfaces: regex::Regex,
}

impl Excludes {
    /// node_exporter's default for disks; container veth pairs for interfaces.
    pub const DEFAULT_DISKS: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
    pub const DEFAULT_INTERFACES: &str = r"^veth.*$";

    /// Both patterns, checked.
    pub fn new(disks: &str, interfaces: &str) -> Result<Excludes, regex::Error> {
        Ok(Excludes {
            disks: regex::Regex::new(disks)?,
            interfaces: regex::Regex::new(interfaces)?,
        })
    }
}

/// Reads the host under a `/proc` root into a [`HostSample`].
#[derive(Debug)]
pub struct HostReader {
    stat: Source,
    loadavg: Source,
    meminfo: Source,
    vmstat: Source,
    diskstats: Source,
    net_dev: Source,
    pressure: [Source; 3],
    file_nr: Source,
    /// `net/snmp`, `net/netstat`, `net/snmp6`.
    snmp: [Source; 3],
    /// `net/sockstat`, `net/sockstat6`.
    sockstat: [Source; 2],
    /// Per file of `snmp`.
    netstat_wanted: [Matches; 3],
    page_size: u64,
    /// Per line of `diskstats` and of `net/dev`.
    disks_excluded: Matches,
    interfaces_excluded: Matches,
    buf: String,
    /// Where `class/net` is, when the netclass collector runs.
    sys_root: Option<PathBuf>,
    links: Arc<Vec<Link>>,
    links_read: Option<Instant>,
    /// Whether `<proc>/net` is the daemon's own network namespace (`self/net`, as on a real
    /// `/proc`), which rtnetlink describes; not so for a tree of fixture files.
    own_namespace: bool,
    /// Samples taken; the files of [`SLOW_FILES`] are read every [`SLOW_EVERY`]th, `loadavg`
    /// every [`LOAD_EVERY`]th (the first sample reads them all), and what they gave is
    /// carried forward in between.
    samples: u64,
    kept: Kept,
}

/// Files read at their own cadence: counters nothing reads at 1 s (`vmstat`, `net/snmp`,
/// `net/netstat`, `net/snmp6`, `net/sockstat{,6}`) and `sys/fs/file-nr`, every this many
/// samples (10 s at the default 1 s).
pub const SLOW_EVERY: u64 = 10;
/// `loadavg`, which the kernel updates every 5 s, every this many samples.
pub const LOAD_EVERY: u64 = 5;
/// See [`SLOW_EVERY`].
pub const SLOW_FILES: [&str; 7] = [
    "vmstat",
    "net/snmp",
    "net/netstat",
    "net/snmp6",
    "net/sockstat",
    "net/sockstat6",
    "sys/fs/file-nr",
];

/// What the files read at their own cadence gave last.
#[derive(Debug, Default)]
struct Kept {
    load: [f64; 3],
    vmstat: Vec<(String, u64)>,
    filefd: Option<(u64, u64)>,
    netstat: Vec<(String, f64)>,
    sockstat: Vec<(String, f64)>,
}

impl HostReader {
    /// Opens the files of the enabled collectors under `roots.proc` (normally `/proc`;
    /// `/host/proc` in a container). Files the kernel does not have are left out of every
    /// sample.
    pub fn new(roots: &Roots, excludes: Excludes, on: &Collectors) -> HostReader {
        let proc_root = roots.proc.as_path();
        let open = |enabled: bool, file: &str| Source::open_if(enabled, proc_root, file);
        #[allow(clippy::unwrap_used)] // a constant pattern, compiled in a test
        let wanted = regex::Regex::new(NETSTAT_WANTED).unwrap();
        HostReader {
            stat: open(on.stat, "stat"),
            loadavg: open(on.loadavg, "loadavg"),
            meminfo: open(on.meminfo, "meminfo"),
            vmstat: open(on.vmstat, "vmstat"),
            diskstats: open(on.diskstats, "diskstats"),
            net_dev: open(on.netdev, "net/dev"),
            pressure: ["cpu", "memory", "io"].map(|r| open(on.pressure, &format!("pressure/{r}"))),
            file_nr: open(on.filefd, "sys/fs/file-nr"),
            snmp: ["net/snmp", "net/netstat", "net/snmp6"].map(|f| open(on.netstat, f)),
            sockstat: ["net/sockstat", "net/sockstat6"].map(|f| open(on.sockstat, f)),
            netstat_wanted: [(); 3].map(|()| Matches::new(wanted.clone())),
            page_size: rustix::param::page_size() as u64,
            disks_excluded: Matches::new(excludes.disks),
            interfaces_excluded: Matches::new(excludes.interfaces),
            buf: String::with_capacity(16 << 10),
            sys_root: on.netclass.then(|| roots.sys.clone()),
            links: Arc::default(),
            links_read: None,
            own_namespace: std::fs::read_link(proc_root.join("net"))
                .is_ok_and(|target| target == Path::new("self/net")),
            samples: 0,
            kept: Kept::default(),
        }
    }

    /// The interfaces' state: read from sysfs when the interfaces in `net` differ from those
    /// last read; when [`REFRESH`] has passed, from one rtnetlink dump where `net` is the
    /// daemon's own namespace (else from sysfs again).
    fn links(&mut self, net: &[NetDev], errors: &mut Vec<CollectError>) -> Arc<Vec<Link>> {
        let Some(sys_root) = &self.sys_root else {
            return Arc::default();
        };
        let same = self.links.len() == net.len()
            && self
                .links
                .iter()
                .zip(net)
                .all(|(l, d)| l.device == d.device);
        let fresh = self.links_read.is_some_and(|t| t.elapsed() < REFRESH);
        if same && fresh {
            return self.links.clone();
        }
        let dumped = if same && self.own_namespace {
            dump_links()
                .map_err(|source| {
                    errors.push(CollectError::Io {
                        path: "rtnetlink interface dump".into(),
                        source,
                    })
                })
                .ok()
        } else {
            None
        };
        self.links = Arc::new(match dumped {
            Some(now) => refresh(&self.links, now, sys_root),
            None => net.iter().map(|d| read_link(sys_root, &d.device)).collect(),
        });
        self.links_read = Some(Instant::now());
        self.links.clone()
    }

    /// Reads every file into `sample`. A file that fails leaves its part empty and its error in
    /// the answer; the others are read all the same.
    pub fn sample(&mut self, sample: &mut HostSample) -> Vec<CollectError> {
        let mut errors = Vec::new();
        let load_due = self.samples.is_multiple_of(LOAD_EVERY);
        let slow_due = self.samples.is_multiple_of(SLOW_EVERY);
        self.samples += 1;
        let buf = &mut self.buf;
        let mut part = |src: &mut Source,
                        errors: &mut Vec<CollectError>,
                        parse: &mut dyn FnMut(&str) -> Option<()>,
                        what: &str| {
            match src.read(buf) {
                Ok(true) => {
                    if parse(buf).is_none() {
                        errors.push(src.bad(what));
                        return false;
                    }
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    errors.push(e);
                    false
                }
            }
        };
        let s = sample;
        if !part(
            &mut self.stat,
            &mut errors,
            &mut |t| parse_stat(t, &mut s.cpus, &mut s.stat),
            "no cpu lines, or a bad counter",
        ) {
            s.cpus.clear();
        }
        if load_due {
            if !part(
                &mut self.loadavg,
                &mut errors,
                &mut |t| parse_loadavg(t).map(|l| s.load = l),
                "not three load averages",
            ) {
                s.load = [0.0; 3];
            }
            self.kept.load = s.load;
        } else {
            s.load = self.kept.load;
        }
        if !part(
            &mut self.meminfo,
            &mut errors,
            &mut |t| parse_meminfo(t, &mut s.meminfo),
            "a line without a number",
        ) {
            s.meminfo.clear();
        }
        if !slow_due {
            s.vmstat.clone_from(&self.kept.vmstat);
        } else if !part(
            &mut self.vmstat,
            &mut errors,
            &mut |t| parse_vmstat(t, &mut s.vmstat),
            "a line without a number",
        ) {
            s.vmstat.clear();
        }
        if !part(
            &mut self.diskstats,
            &mut errors,
            &mut |t| parse_diskstats(t, &mut self.disks_excluded, &mut s.disks),
            "fewer than 14 fields",
        ) {
            s.disks.clear();
        }
        if !part(
            &mut self.net_dev,
            &mut errors,
            &mut |t| parse_net_dev(t, &mut self.interfaces_excluded, &mut s.net),
            "fewer than 16 counters",
        ) {
            s.net.clear();
        }
        for (src, slot) in self.pressure.iter_mut().zip(s.pressure.iter_mut()) {
            let mut found = None;
            part(
                src,
                &mut errors,
                &mut |t| parse_pressure(t).map(|p| found = Some(p)),
                "no `some` line",
            );
            *slot = found;
        }
        if !slow_due {
            s.filefd = self.kept.filefd;
            s.netstat.clone_from(&self.kept.netstat);
            s.sockstat.clone_from(&self.kept.sockstat);
            s.links = self.links(&s.net, &mut errors);
            return errors;
        }
        let mut filefd = None;
        part(
            &mut self.file_nr,
            &mut errors,
            &mut |t| parse_file_nr(t).map(|f| filefd = Some(f)),
            "not three numbers",
        );
        s.filefd = filefd;
        let mut n = 0;
        for (i, (src, wanted)) in self
            .snmp
            .iter_mut()
            .zip(&mut self.netstat_wanted)
            .enumerate()
        {
            part(
                src,
                &mut errors,
                &mut |t| {
                    n = if i == 2 {
                        parse_snmp6(t, wanted, &mut s.netstat, n)?
                    } else {
                        parse_snmp(t, wanted, &mut s.netstat, n)?
                    };
                    Some(())
                },
                "not name and value lines",
            );
        }
        s.netstat.truncate(n);
        let mut n = 0;
        let page_size = self.page_size;
        for src in &mut self.sockstat {
            part(
                src,
                &mut errors,
                &mut |t| {
                    n = parse_sockstat(t, page_size, &mut s.sockstat, n)?;
                    Some(())
                },
                "not name and value pairs",
            );
        }
        s.sockstat.truncate(n);
        self.kept.vmstat.clone_from(&s.vmstat);
        self.kept.filefd = s.filefd;
        self.kept.netstat.clone_from(&s.netstat);
        self.kept.sockstat.clone_from(&s.sockstat);
        s.links = self.links(&s.net, &mut errors);
        errors
    }
}
