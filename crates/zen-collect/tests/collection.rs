//! The collector threads as the daemon runs them, on this machine.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::time::{Duration, Instant};

use zen_collect::collection::{Collection, Settings};
use zen_collect::{Collectors, Roots};

/// Run time of this process' threads named `name`, from their `schedstat`.
fn thread_seconds(name: &str) -> f64 {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat.split(' ').next().unwrap().parse::<u64>().unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

#[test]
fn slow_tasks_switched_off_leave_the_slow_thread_asleep() {
    let mut settings = Settings::new(Roots::default()).unwrap();
    settings.collectors = Collectors {
        cgroups: false,
        inventory: false,
        ..Collectors::default()
    };
    let collection = Collection::start(settings, |_| {}).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while collection.latest().lock().unwrap().filesystems.is_empty() {
        assert!(Instant::now() < deadline, "no filesystems read");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = thread_seconds("zen-collect-slo");
    std::thread::sleep(Duration::from_secs(1));
    let spent = thread_seconds("zen-collect-slo") - before;
    // Asleep until the next filesystem reading, 30 s away (a busy loop would use the second).
    assert!(
        spent < 0.05,
        "the slow thread ran {spent} s of one idle second"
    );
    drop(collection);
}
