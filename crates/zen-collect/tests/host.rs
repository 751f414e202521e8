//! The host parsers on fixture files (a 2-CPU VM's `/proc`), on damaged input, and the reader
//! on this machine's own `/proc`.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;

use zen_collect::host::{
    CpuTimes, Excludes, HostReader, HostSample, Matches, NETSTAT_WANTED, StatCounters,
    parse_diskstats, parse_file_nr, parse_loadavg, parse_meminfo, parse_net_dev, parse_pressure,
    parse_snmp, parse_snmp6, parse_sockstat, parse_stat, parse_vmstat,
};
use zen_collect::{Collectors, Roots};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/host")
            .join(name),
    )
    .unwrap()
}

fn excludes() -> Excludes {
    Excludes::new(Excludes::DEFAULT_DISKS, Excludes::DEFAULT_INTERFACES).unwrap()
}

#[test]
fn proc_stat_gives_per_cpu_seconds_by_mode_and_the_counters() {
    let (mut cpus, mut stat) = (Vec::new(), StatCounters::default());
    parse_stat(&fixture("stat"), &mut cpus, &mut stat).unwrap();
    assert_eq!(cpus.len(), 2, "the `cpu` total line is not a CPU");
    assert_eq!(
        cpus[0].modes,
        [3306.18, 0.1, 449.43, 5166.74, 23.79, 0.0, 3.87, 0.83]
    );
    assert_eq!(cpus[0].guest, [0.07, 0.01]);
    assert_eq!(
        stat,
        StatCounters {
            interrupts: 58_512_563,
            context_switches: 116_433_214,
            forks: 402_131,
            procs_running: 3,
            procs_blocked: 1,
            boot_time: 1_795_357_660,
        }
    );
    // A second parse into the same vectors keeps them.
    parse_stat(&fixture("stat"), &mut cpus, &mut stat).unwrap();
    assert_eq!(cpus.len(), 2);
}

#[test]
fn meminfo_fields_take_node_exporter_names_and_bytes() {
    let mut fields = Vec::new();
    parse_meminfo(&fixture("meminfo"), &mut fields).unwrap();
    let got: Vec<(&str, u64, bool)> = fields
        .iter()
        .map(|f| (f.name.as_str(), f.value, f.bytes))
        .collect();
    assert_eq!(
        got,
        [
            ("MemTotal", 24_596_176 * 1024, true),
            ("MemFree", 10_000_000 * 1024, true),
            ("Active_anon", 1472 * 1024, true),
            ("HugePages_Total", 0, false),
            ("Hugepagesize", 2048 * 1024, true),
        ]
    );
}

#[test]
fn disks_leave_out_partitions_and_loops_and_convert_units() {
    let mut disks = Vec::new();
    parse_diskstats(
        &fixture("diskstats"),
        &mut Matches::new(excludes().disks),
        &mut disks,
    )
    .unwrap();
    let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(names, ["vda", "nvme0n1"]);
    let vda = &disks[0];
    assert_eq!(vda.read_bytes, 14_551_114 * 512);
    assert_eq!(vda.write_time_seconds, 3054.372);
    assert_eq!(vda.io_time_weighted_seconds, 3209.731);
}

#[test]
fn interfaces_leave_out_veth_and_keep_every_counter() {
    let mut net = Vec::new();
    parse_net_dev(
        &fixture("net-dev"),
        &mut Matches::new(excludes().interfaces),
        &mut net,
    )
    .unwrap();
    assert_eq!(net.len(), 2);
    assert_eq!(net[1].device, "eth0");
    assert_eq!(net[1].receive, [900, 10, 1, 2, 3, 4, 5, 6]);
    assert_eq!(net[1].transmit, [800, 9, 7, 8, 9, 10, 11, 12]);
}

#[test]
fn pressure_load_vmstat_and_file_handles() {
    let p = parse_pressure(&fixture("pressure-cpu")).unwrap();
    assert_eq!(p.waiting_seconds, 394.682053);
    assert_eq!(
        parse_loadavg("0.39 1.22 1.32 1/80 11875\n"),
        Some([0.39, 1.22, 1.32])
    );
    assert_eq!(parse_file_nr("305\t0\t2466165\n"), Some((305, 2_466_165)));
    let mut vm = Vec::new();
    parse_vmstat(
        "nr_free_pages 5\npgfault 10\npgmajfault 2\npswpin 1\noom_kill 0\npgsteal 9\n",
        &mut vm,
    )
    .unwrap();
    let names: Vec<&str> = vm.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pgfault", "pgmajfault", "pswpin", "oom_kill"]);
}

#[test]
fn damaged_files_are_refused_not_panicked_on() {
    let (mut cpus, mut stat) = (Vec::<CpuTimes>::new(), StatCounters::default());
    for bad in ["", "cpu0 1 2\n", "cpu0 1 2 3 4\nctxt lots\n", "intr\n"] {
        assert_eq!(parse_stat(bad, &mut cpus, &mut stat), None, "{bad:?}");
    }
    assert_eq!(parse_loadavg("0.1 x"), None);
    assert_eq!(parse_meminfo("MemTotal: many kB\n", &mut Vec::new()), None);
    assert_eq!(
        parse_diskstats(
            "8 0 sda 1 2 3\n",
            &mut Matches::new(excludes().disks),
            &mut Vec::new()
        ),
        None
    );
    assert_eq!(
        parse_net_dev(
            "h\nh\n eth0: 1 2 x\n",
            &mut Matches::new(excludes().interfaces),
            &mut Vec::new()
        ),
        None
    );
    assert_eq!(parse_pressure("full total=1\n"), None);
    assert_eq!(parse_file_nr("1 2"), None);
}

#[test]
fn the_reader_reads_this_machine_and_reports_its_readings() {
    let mut reader = HostReader::new(&Roots::default(), excludes(), &Collectors::default());
    let mut sample = HostSample::default();
    let errors = reader.sample(&mut sample);
    assert!(errors.is_empty(), "{errors:?}");
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(sample.cpus.len() >= cpus);
    let total = std::fs::read_to_string("/proc/meminfo").unwrap();
    let mem_total_kb: u64 = total
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sample.meminfo[0].value, mem_total_kb * 1024);
    let mut names = Vec::new();
    sample.visit(&mut |name, _, _| {
        if names.last().map(String::as_str) != Some(name) {
            names.push(name.to_owned());
        }
    });
    // Each metric's readings come together, never split.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert!(names.iter().any(|n| n == "node_cpu_seconds_total"));
    // Read again, into the same sample: nothing grows.
    let before = sample.clone();
    reader.sample(&mut sample);
    assert_eq!(sample.cpus.len(), before.cpus.len());
    assert_eq!(sample.meminfo.len(), before.meminfo.len());
}

#[test]
fn snmp_netstat_and_sockstat_take_node_exporters_names_and_selection() {
    let wanted = || Matches::new(regex::Regex::new(NETSTAT_WANTED).unwrap());
    let (mut snmp_wanted, mut snmp6_wanted) = (wanted(), wanted());
    let mut out = Vec::new();
    let snmp = "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 2199214\nTcp: RtoMin ActiveOpens CurrEstab InErrs\nTcp: 200 60212 2 0\n";
    let n = parse_snmp(snmp, &mut snmp_wanted, &mut out, 0).unwrap();
    let n = parse_snmp6(
        "Ip6InReceives 2\nIp6InOctets 256\nUdp6InErrors 0\n",
        &mut snmp6_wanted,
        &mut out,
        n,
    )
    .unwrap();
    out.truncate(n);
    let got: Vec<(&str, f64)> = out.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        got,
        [
            ("Ip_Forwarding", 2.0),
            ("Tcp_ActiveOpens", 60212.0),
            ("Tcp_CurrEstab", 2.0),
            ("Tcp_InErrs", 0.0),
            ("Ip6_InOctets", 256.0),
            ("Udp6_InErrors", 0.0),
        ]
    );
    assert_eq!(
        parse_snmp("Tcp: A B\nUdp: 1 2\n", &mut wanted(), &mut out, 0),
        None,
        "mismatched lines"
    );
    // The answers are kept by position: a file whose layout changes (a kernel upgrade under a
    // running daemon, in effect) is matched afresh where it changed.
    let moved = "Ip: Forwarding InReceives DefaultTTL\nIp: 2 2199214 64\nTcp: ActiveOpens RtoMin InErrs CurrEstab\nTcp: 60212 200 0 2\n";
    let n = parse_snmp(moved, &mut snmp_wanted, &mut out, 0).unwrap();
    let got: Vec<&str> = out[..n].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        got,
        [
            "Ip_Forwarding",
            "Tcp_ActiveOpens",
            "Tcp_InErrs",
            "Tcp_CurrEstab"
        ]
    );

    let mut socks = Vec::new();
    let sockstat =
        "sockets: used 8\nTCP: inuse 1 orphan 0 tw 1 alloc 1 mem 212\nFRAG: inuse 0 memory 0\n";
    let n = parse_sockstat(sockstat, 4096, &mut socks, 0).unwrap();
    socks.truncate(n);
    let names: Vec<&str> = socks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "sockets_used",
            "TCP_inuse",
            "TCP_orphan",
            "TCP_tw",
            "TCP_alloc",
            "TCP_mem",
            "TCP_mem_bytes",
            "FRAG_inuse",
            "FRAG_memory"
        ]
    );
    assert_eq!(socks[6].1, 212.0 * 4096.0);
}

#[test]
fn sysfs_gives_interface_state_and_speed_only_where_the_driver_has_one() {
    use zen_collect::netclass::{parse_speed, read_link};
    let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sys");
    let eth0 = read_link(&sys, "eth0");
    assert!(eth0.up());
    assert_eq!(eth0.mtu, Some(1500));
    assert_eq!(eth0.speed_bytes, Some(1_250_000_000), "10 Gbit/s");
    assert_eq!(eth0.carrier, Some(1));
    assert_eq!(
        (
            eth0.address.as_str(),
            eth0.duplex.as_str(),
            eth0.ifalias.as_str()
        ),
        ("52:54:00:12:34:56", "full", "uplink")
    );
    let lo = read_link(&sys, "lo");
    assert!(!lo.up(), "`unknown` is not up, as node_exporter has it");
    assert_eq!((lo.mtu, lo.speed_bytes), (Some(65536), None));
    let dummy = read_link(&sys, "dummy0");
    assert_eq!(
        (dummy.speed_bytes, dummy.carrier),
        (None, None),
        "-1 and no file"
    );
    let gone = read_link(&sys, "nonexistent");
    assert_eq!((gone.operstate.as_str(), gone.mtu), ("", None));
    assert_eq!(parse_speed("100\n"), Some(12_500_000));
    assert_eq!(parse_speed("-1"), None);
    assert_eq!(parse_speed("fast"), None);
}

#[test]
fn interface_state_is_read_again_when_the_interfaces_change() {
    let proc = tempfile::tempdir().unwrap();
    std::fs::create_dir(proc.path().join("net")).unwrap();
    let net_dev = proc.path().join("net/dev");
    let header = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n";
    let line = |dev: &str| format!("{dev}: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    std::fs::write(&net_dev, format!("{header}{}", line("eth0"))).unwrap();
    let roots = Roots {
        proc: proc.path().to_owned(),
        sys: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sys"),
        ..Roots::default()
    };
    let mut reader = HostReader::new(&roots, excludes(), &Collectors::default());
    let mut sample = HostSample::default();
    reader.sample(&mut sample);
    let devices = |s: &HostSample| s.links.iter().map(|l| l.device.clone()).collect::<Vec<_>>();
    assert_eq!(devices(&sample), ["eth0"]);
    let first = sample.links.clone();
    reader.sample(&mut sample);
    assert!(
        std::sync::Arc::ptr_eq(&first, &sample.links),
        "unchanged interfaces: sysfs not read again"
    );
    std::fs::write(
        &net_dev,
        format!("{header}{}{}", line("eth0"), line("dummy0")),
    )
    .unwrap();
    reader.sample(&mut sample);
    assert_eq!(devices(&sample), ["eth0", "dummy0"]);
    assert_eq!(sample.links[1].operstate, "down");

    // With the collector off, nothing is read.
    let off = Collectors {
        netclass: false,
        netdev: false,
        ..Collectors::default()
    };
    let mut reader = HostReader::new(&roots, excludes(), &off);
    reader.sample(&mut sample);
    assert!(sample.net.is_empty() && sample.links.is_empty());
}

#[test]
fn slow_files_are_read_at_their_cadence_and_carried_forward_between() {
    use zen_collect::host::{LOAD_EVERY, SLOW_EVERY};
    let proc = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(proc.path().join(name), text).unwrap();
    let files = |faults: u64, load: f64, stat_ctxt: u64| {
        write("vmstat", &format!("pgfault {faults}\n"));
        write("loadavg", &format!("{load} 0.5 0.25 1/100 4242\n"));
        write(
            "stat",
            &format!("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nctxt {stat_ctxt}\n"),
        );
    };
    files(100, 1.0, 7);
    let roots = Roots {
        proc: proc.path().to_owned(),
        ..Roots::default()
    };
    let mut reader = HostReader::new(&roots, excludes(), &Collectors::default());
    let mut sample = HostSample::default();
    let faults = |s: &HostSample| s.vmstat.iter().find(|(n, _)| n == "pgfault").map(|f| f.1);
    reader.sample(&mut sample);
    assert_eq!(
        (faults(&sample), sample.load[0]),
        (Some(100), 1.0),
        "all read at first"
    );
    files(200, 2.0, 9);
    // Into a sample of its own each time, as the collection's two alternate.
    let mut other = HostSample::default();
    for i in 1..=SLOW_EVERY {
        let s = if i % 2 == 1 { &mut other } else { &mut sample };
        reader.sample(s);
        assert_eq!(
            s.stat.context_switches, 9,
            "the per-second files every sample"
        );
        let load = if i >= LOAD_EVERY { 2.0 } else { 1.0 };
        assert_eq!(s.load[0], load, "sample {i}: loadavg every {LOAD_EVERY}");
        let f = if i >= SLOW_EVERY { 200 } else { 100 };
        assert_eq!(
            faults(s),
            Some(f),
            "sample {i}: vmstat every {SLOW_EVERY}, kept between"
        );
    }
}
