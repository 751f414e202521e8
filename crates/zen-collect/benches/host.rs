//! Time per sample on this machine, files kept open, buffers reused: the host's `/proc` hot
//! (back to back) and cold (after a pause, as the collector runs), each collector alone cold,
//! and the containers discovered under `/sys/fs/cgroup`.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use zen_collect::cgroups::{ContainerReader, discover, layout};
use zen_collect::host::{Excludes, HostReader, HostSample};
use zen_collect::{Collectors, Roots};

fn reader(on: &Collectors) -> HostReader {
    let excludes = Excludes::new(Excludes::DEFAULT_DISKS, Excludes::DEFAULT_INTERFACES)
        .expect("the default patterns compile");
    HostReader::new(&Roots::default(), excludes, on)
}

/// Times samples taken each after a 100 ms sleep, caches cold.
fn cold(b: &mut Bencher<'_>, reader: &mut HostReader, sample: &mut HostSample) {
    b.iter_custom(|iterations| {
        let mut spent = Duration::ZERO;
        for _ in 0..iterations {
            std::thread::sleep(Duration::from_millis(100));
            let started = Instant::now();
            reader.sample(sample);
            spent += started.elapsed();
        }
        spent
    })
}

fn host(c: &mut Criterion) {
    let mut all = reader(&Collectors::default());
    let mut sample = HostSample::default();
    c.bench_function("host/sample", |b| b.iter(|| all.sample(&mut sample)));
    let mut group = c.benchmark_group("host");
    group.sample_size(10);
    group.bench_function("sample after 100 ms idle", |b| {
        cold(b, &mut all, &mut sample)
    });
    group.finish();

    // Each /proc collector alone, cold; `none` is the floor (no file read).
    let none = Collectors {
        stat: false,
        loadavg: false,
        meminfo: false,
        vmstat: false,
        diskstats: false,
        netdev: false,
        netclass: false,
        pressure: false,
        filefd: false,
        netstat: false,
        sockstat: false,
        ..Collectors::default()
    };
    let alone: [(&str, Collectors); 12] = [
        ("none", none),
        ("stat", Collectors { stat: true, ..none }),
        (
            "loadavg",
            Collectors {
                loadavg: true,
                ..none
            },
        ),
        (
            "meminfo",
            Collectors {
                meminfo: true,
                ..none
            },
        ),
        (
            "vmstat",
            Collectors {
                vmstat: true,
                ..none
            },
        ),
        (
            "diskstats",
            Collectors {
                diskstats: true,
                ..none
            },
        ),
        (
            "netdev",
            Collectors {
                netdev: true,
                ..none
            },
        ),
        (
            "pressure",
            Collectors {
                pressure: true,
                ..none
            },
        ),
        (
            "filefd",
            Collectors {
                filefd: true,
                ..none
            },
        ),
        (
            "netstat",
            Collectors {
                netstat: true,
                ..none
            },
        ),
        (
            "sockstat",
            Collectors {
                sockstat: true,
                ..none
            },
        ),
        (
            "netclass",
            Collectors {
                netdev: true,
                netclass: true,
                ..none
            },
        ),
    ];
    let mut group = c.benchmark_group("host cold, one collector");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, on) in alone {
        let mut one = reader(&on);
        group.bench_function(name, |b| cold(b, &mut one, &mut sample));
    }
    group.finish();
}

fn containers(c: &mut Criterion) {
    let layout = layout(Path::new("/sys/fs/cgroup"));
    let (paths, _) = discover(&layout, 1000);
    let mut reader = ContainerReader::new(layout, Path::new("/proc"));
    reader.watch(&paths);
    let mut out = Vec::new();
    c.bench_function(
        &format!("containers/sample ({} cgroups)", paths.len()),
        |b| b.iter(|| reader.sample(&mut out)),
    );
}

criterion_group!(benches, host, containers);
criterion_main!(benches);
