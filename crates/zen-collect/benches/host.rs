//! Time per host sample on this machine's `/proc`, files kept open, buffers reused.

use criterion::{Criterion, criterion_group, criterion_main};
use zen_collect::host::{Excludes, HostReader, HostSample};
use zen_collect::{Collectors, Roots};

fn host(c: &mut Criterion) {
    let excludes = Excludes::new(Excludes::DEFAULT_DISKS, Excludes::DEFAULT_INTERFACES)
        .expect("the default patterns compile");
    let mut reader = HostReader::new(&Roots::default(), excludes, &Collectors::default());
    let mut sample = HostSample::default();
    c.bench_function("host/sample", |b| b.iter(|| reader.sample(&mut sample)));
}

criterion_group!(benches, host);
criterion_main!(benches);
