//! Rendering `/metrics` with a realistic number of series.

use criterion::{Criterion, criterion_group, criterion_main};
use zen_export::Exporter;

fn render(c: &mut Criterion) {
    let exporter = Exporter::install("/proc").expect("the only recorder of this process");
    // 7 sources × 5 severities × 50 namespaces = 1,750 counters, plus 4 stages × 7 sources
    // histograms of 20 lines each and the catalog's own series: well over 2,000 series.
    let sources = zen_model::Format::ALL.map(zen_model::Format::as_str);
    let severities = ["critical", "high", "medium", "low", "info"];
    for source in sources {
        for severity in severities {
            for ns in 0..50 {
                metrics::counter!("zen_watcher_events_total", "source" => source, "severity" => severity, "namespace" => format!("team-{ns}")).increment(ns + 1);
            }
        }
        for stage in ["normalize", "process", "sink", "total"] {
            let h = metrics::histogram!("zen_watcher_event_processing_duration_seconds", "stage" => stage, "source" => source);
            for i in 0..1000 {
                h.record(f64::from(i) * 1e-5);
            }
        }
    }
    let text = exporter.render();
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    eprintln!("rendering {series} series, {} bytes", text.len());
    assert!(series >= 2000, "{series}");
    c.bench_function(&format!("render/{series}_series"), |b| {
        b.iter(|| exporter.render())
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
