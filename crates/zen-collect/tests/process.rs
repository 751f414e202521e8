#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;

use zen_collect::process::{
    ProcessReader, parse_max_fds, parse_stat, parse_statm_resident, parse_status,
};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/proc"))
}

#[test]
fn a_fixture_process_reads_exactly() {
    let sample = ProcessReader::new(fixtures()).sample().unwrap();
    assert_eq!(sample.cpu_user_seconds, 12.34);
    assert_eq!(sample.cpu_system_seconds, 5.67);
    assert_eq!(sample.start_time_seconds, 1_795_357_660.0 + 6287.54);
    assert_eq!(sample.resident_memory_bytes, 1720 * 1024);
    assert_eq!(sample.virtual_memory_bytes, 3060 * 1024);
    assert_eq!(sample.threads, 1);
    assert_eq!(sample.max_fds, 20000);
    assert_eq!(sample.open_fds, 4);
}

#[test]
fn command_names_with_spaces_and_parentheses_do_not_shift_fields() {
    let stat =
        parse_stat("7 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 250 50 0 0 20 0 1 0 300 0 0").unwrap();
    assert_eq!((stat.utime, stat.stime, stat.starttime), (2.5, 0.5, 3.0));
}

#[test]
fn damaged_files_give_none_not_a_panic() {
    for bad in [
        "",
        "7 (x",
        "7 (x) R 1",
        "7 (x) R a b c d e f g h i j k l m n o p q r s t",
    ] {
        assert_eq!(parse_stat(bad), None, "{bad:?}");
    }
    assert_eq!(parse_status("Name: x\nVmRSS: lots kB\n"), None);
    assert_eq!(parse_max_fds("Max open files  many  many files"), None);
    assert_eq!(
        parse_max_fds("Max open files            unlimited            unlimited            files"),
        Some(u64::MAX)
    );
}

#[test]
fn the_real_process_agrees_with_its_own_proc_files() {
    let sample = ProcessReader::new("/proc").sample().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(status.contains("VmRSS"));
    assert!(sample.resident_memory_bytes > 1 << 20, "{sample:?}");
    assert!(sample.threads >= 1);
    assert!(sample.open_fds >= 3 && sample.open_fds <= sample.max_fds);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Started within the last day, not in the future (allowing for tick rounding).
    assert!(sample.start_time_seconds <= now + 1.0 && sample.start_time_seconds > now - 86_400.0);
}

#[test]
fn the_per_second_reading_agrees_with_proc_self_stat_and_status() {
    // Some CPU time to measure.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    let mut reader = ProcessReader::new("/proc");
    let before = parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
    let (cpu, resident) = reader.cpu_and_resident().unwrap();
    let after = parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
    let ticks = |s: &zen_collect::process::Stat| s.utime + s.stime;
    // The clock counts nanoseconds, `stat` 10 ms ticks; the two may part by a few ticks.
    assert!(
        cpu > ticks(&before) - 0.05 && cpu < ticks(&after) + 0.05,
        "{cpu} against {} .. {}",
        ticks(&before),
        ticks(&after)
    );
    let status = ProcessReader::new("/proc").sample().unwrap();
    let rss = status.resident_memory_bytes as f64;
    assert!(
        (resident as f64 - rss).abs() < 0.1 * rss,
        "{resident} against VmRSS {rss}"
    );
    assert_eq!(
        parse_statm_resident("3060 1720 300 10 0 500 0\n"),
        Some(1720)
    );
    assert_eq!(parse_statm_resident("3060"), None);
}
