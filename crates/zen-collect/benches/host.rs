//! Time per sample on this machine, files kept open, buffers reused: the host's `/proc`, and
//! the containers discovered under `/sys/fs/cgroup`.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use zen_collect::cgroups::{ContainerReader, discover, layout};
use zen_collect::host::{Excludes, HostReader, HostSample};
use zen_collect::{Collectors, Roots};

fn host(c: &mut Criterion) {
    let excludes = Excludes::new(Excludes::DEFAULT_DISKS, Excludes::DEFAULT_INTERFACES)
        .expect("the default patterns compile");
    let mut reader = HostReader::new(&Roots::default(), excludes, &Collectors::default());
    let mut sample = HostSample::default();
    c.bench_function("host/sample", |b| b.iter(|| reader.sample(&mut sample)));
    // As the collector runs: after a pause, caches cold.
    let mut group = c.benchmark_group("host");
    group.sample_size(10);
    group.bench_function("sample after 100 ms idle", |b| {
        b.iter_custom(|iterations| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iterations {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let started = std::time::Instant::now();
                reader.sample(&mut sample);
                spent += started.elapsed();
            }
            spent
        })
    });
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
