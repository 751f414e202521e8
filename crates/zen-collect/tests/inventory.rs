//! The inventory on this machine, against the kernel's own files, and the bounded process list.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use zen_collect::inventory::{InventoryReader, ProcessUse, TOP_PROCESSES, top};

fn kernel(file: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{file}"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn the_inventory_names_this_host_and_bounds_its_processes() {
    let i = InventoryReader::new(true).unwrap().read();
    assert_eq!(i.hostname, kernel("hostname"));
    assert_eq!(i.kernel, kernel("osrelease"));
    assert!(!i.os.is_empty() && !i.cpu_model.is_empty(), "{i:?}");
    assert_eq!(i.cpus, std::thread::available_parallelism().unwrap().get());
    assert!(i.memory_bytes > 0);
    assert!(!i.processes.is_empty() && i.processes.len() <= TOP_PROCESSES + 1);
    let total: u64 = i.processes.iter().map(|p| p.count).sum();
    let pids = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count() as u64;
    assert!(
        total.abs_diff(pids) <= 5,
        "{total} processes counted, /proc has {pids}"
    );
    let none = InventoryReader::new(false).unwrap().read();
    assert!(none.processes.is_empty(), "processes are opt-in");
}

#[test]
fn the_rest_of_the_processes_are_summed_as_other() {
    let p = |name: &str, resident_bytes: u64| ProcessUse {
        name: name.into(),
        count: 1,
        resident_bytes,
        cpu_seconds: 1.5,
    };
    let got = top(vec![p("a", 10), p("b", 30), p("c", 20), p("d", 5)], 2);
    let names: Vec<_> = got
        .iter()
        .map(|p| (p.name.as_str(), p.resident_bytes))
        .collect();
    assert_eq!(names, [("b", 30), ("c", 20), ("_other", 15)]);
    assert_eq!((got[2].count, got[2].cpu_seconds), (2, 3.0));
    assert_eq!(top(vec![p("a", 1)], 2).len(), 1, "no `_other` when all fit");
}
