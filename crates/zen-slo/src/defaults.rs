//! The SLOs and alert rules zen-watcher ships: the performance design's targets and its alert
//! catalogue (P1 critical, P2 warning, P3 info).

use std::ops::{Add as _, Div as _};

use crate::spec::{
    Cmp, Expr, HealthTerm, RUNBOOKS, Rule, Selector, Severity, Sli, Slo, Spec, Tier, Vector, Window,
};

const PROCESSING: &str = "zen_watcher_event_processing_duration_seconds";
const CRD: &str = "zen_watcher_crd_operation_duration_seconds";
const HTTP: &str = "zen_watcher_http_requests_total";
const INGEST_ROUTE: &str = "/api/v1/ingest/{source}";

/// Time from receipt to commit, all sources together.
fn processing() -> Selector {
    Selector::new(PROCESSING).eq("stage", "total")
}

fn ingest_availability() -> Sli {
    Sli::Ratio {
        errors: Selector::new(HTTP)
            .eq("route", INGEST_ROUTE)
            .re("code", "5.."),
        total: Selector::new(HTTP).eq("route", INGEST_ROUTE),
    }
}

fn error_rate() -> Sli {
    Sli::Ratio {
        errors: Selector::new("zen_watcher_errors_total"),
        total: Selector::new("zen_watcher_events_total"),
    }
}

fn slo(name: &str, description: &str, objective_percent: f64, sli: Sli) -> Slo {
    let mut slo = Slo {
        name: name.to_owned(),
        description: description.to_owned(),
        objective_percent,
        period: Window::days(30),
        sli,
        tiers: Tier::STANDARD.to_vec(),
    };
    // A loose objective (P50: half the events may be slow) leaves no room for the fast tiers:
    // 14.4 × a budget of 0.5 is above any ratio. Keep those that can fire.
    let keep: Vec<Tier> = slo
        .tiers
        .iter()
        .copied()
        .filter(|t| slo.threshold(t) < 1.0)
        .collect();
    slo.tiers = keep;
    slo
}

fn latency(name: &str, what: &str, histogram: Selector, threshold: f64, percent: f64) -> Slo {
    slo(
        name,
        &format!("{percent} % of {what} within {} ms.", threshold * 1000.0),
        percent,
        Sli::Latency {
            histogram,
            threshold,
        },
    )
}

/// The shipped SLOs.
pub fn slos() -> Vec<Slo> {
    vec![
        latency(
            "event-processing-p50",
            "events committed",
            processing(),
            0.05,
            50.0,
        ),
        latency(
            "event-processing-p95",
            "events committed",
            processing(),
            0.1,
            95.0,
        ),
        latency(
            "event-processing-p99",
            "events committed",
            processing(),
            0.2,
            99.0,
        ),
        latency(
            "crd-create-p95",
            "Observation creations",
            Selector::new(CRD).eq("operation", "create"),
            0.1,
            95.0,
        ),
        latency(
            "crd-update-p95",
            "Observation updates",
            Selector::new(CRD).eq("operation", "update"),
            0.05,
            95.0,
        ),
        latency(
            "crd-delete-p95",
            "Observation deletions",
            Selector::new(CRD).eq("operation", "delete"),
            0.05,
            95.0,
        ),
        slo(
            "ingestion-availability",
            "99.9 % of ingestion requests answered without a server error (5xx).",
            99.9,
            ingest_availability(),
        ),
        slo(
            "error-rate",
            "Fewer errors than 5 % of the events received.",
            95.0,
            error_rate(),
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn rule(
    name: &str,
    expr: Expr,
    condition: Option<(Cmp, f64)>,
    for_: Window,
    severity: Severity,
    summary: &str,
    description: &str,
) -> Rule {
    Rule {
        name: name.to_owned(),
        expr,
        condition,
        for_,
        keep_firing_for: Window::default(),
        severity,
        summary: summary.to_owned(),
        description: description.to_owned(),
        runbook: format!("{RUNBOOKS}#{}", name.to_lowercase()),
    }
}

fn p95(offset: Option<Window>) -> Expr {
    Expr::Quantile {
        q: 0.95,
        histogram: processing(),
        window: Window::minutes(5),
        offset,
    }
}

fn gauge(name: &str) -> Selector {
    Selector::new(name)
}

/// The shipped threshold rules: the performance design's alert catalogue.
pub fn rules() -> Vec<Rule> {
    use Severity::{Critical, Info, Warning};
    let above = |t| Some((Cmp::Above, t));
    // The daemon always sees its own build_info, so only Prometheus can see this one fire.
    let absent = rule(
        "ZenWatcherAbsent",
        Expr::Absent(gauge("zen_watcher_build_info")),
        None,
        Window::minutes(5),
        Critical,
        "zen-watcher is not reporting",
        "Prometheus has no zen_watcher_build_info series: every daemon is down or not scraped.",
    );
    vec![
        rule(
            "ZenWatcherSLOViolation",
            p95(None),
            above(0.1),
            Window::minutes(5),
            Critical,
            "Event processing P95 above 100 ms",
            "The 95th percentile of receipt-to-commit time over 5 minutes has been above 100 ms for 5 minutes.",
        ),
        rule(
            "ZenWatcherHealthFailure",
            Expr::Max(gauge("zen_watcher_health_score")),
            Some((Cmp::Below, 50.0)),
            Window::minutes(2),
            Critical,
            "Health score below 50",
            "The health score (latency × availability × resource headroom) has been below 50 for 2 minutes.",
        ),
        rule(
            "ZenWatcherHighMemoryUsage",
            Expr::Max(gauge("zen_watcher_memory_usage_percent")),
            above(90.0),
            Window::minutes(3),
            Critical,
            "Memory above 90 % of the limit",
            "The daemon's resident memory has been above 90 % of its container limit (or of the host) for 3 minutes: risk of OOM.",
        ),
        rule(
            "ZenWatcherHighCPUUsage",
            Expr::Max(gauge("zen_watcher_cpu_usage_percent")),
            above(90.0),
            Window::minutes(5),
            Critical,
            "CPU above 90 % of the limit",
            "The daemon has used more than 90 % of its CPU limit (or of the host) for 5 minutes.",
        ),
        rule(
            "ZenWatcherPerformanceDegradation",
            p95(None),
            above(0.075),
            Window::minutes(10),
            Warning,
            "Event processing P95 above 75 ms",
            "The 95th percentile of receipt-to-commit time has been above 75 ms for 10 minutes.",
        ),
        rule(
            "ZenWatcherCapacityThreshold",
            Expr::MaxRatio {
                num: gauge("zen_watcher_queue_depth"),
                den: gauge("zen_watcher_queue_capacity"),
            },
            above(0.8),
            Window::minutes(15),
            Warning,
            "A pipeline queue above 80 % full",
            "A pipeline queue has been more than 80 % full for 15 minutes; when full, ingestion answers 429.",
        ),
        rule(
            "ZenWatcherHighErrorRate",
            Expr::ErrorRatio {
                sli: error_rate(),
                window: Window::minutes(5),
            },
            above(0.05),
            Window::minutes(5),
            Warning,
            "Errors above 5 % of events",
            "Errors have exceeded 5 % of the events received, over 5 minutes, for 5 minutes.",
        ),
        rule(
            "ZenWatcherPerformanceRegression",
            Expr::Div(Box::new(p95(None)), Box::new(p95(Some(Window::days(1))))),
            above(1.2),
            Window::minutes(30),
            Info,
            "Event processing P95 20 % slower than a day ago",
            "The 95th percentile of receipt-to-commit time has been more than 20 % above the same 5 minutes a day earlier, for 30 minutes.",
        ),
        rule(
            "ZenWatcherResourceExhaustionForecast",
            Expr::PredictLinear {
                gauge: gauge("zen_watcher_memory_usage_percent"),
                window: Window::hours(6),
                horizon: Window::days(7),
            },
            above(100.0),
            Window::hours(1),
            Info,
            "Memory on course to reach its limit within 7 days",
            "A straight line through the last 6 hours of memory use reaches 100 % of the limit within 7 days.",
        ),
        rule(
            "ZenWatcherResourceExhaustionSoon",
            Expr::Min(gauge("zen_watcher_forecast_exhaustion_seconds")),
            Some((Cmp::Below, 86_400.0)),
            Window::minutes(10),
            Warning,
            "A resource runs out within 24 hours",
            "The advisor forecasts that a resource (memory, the queue, a filesystem, an SLO's error budget) runs out within 24 hours at its recent pace; see /api/v1/insights for which, the trend behind it and what to change.",
        ),
        absent,
    ]
    .into_iter()
    .chain(host_rules())
    .collect()
}

/// A rule with one alert per group of `by` labels.
#[allow(clippy::too_many_arguments)]
fn per(
    name: &str,
    by: &[&str],
    vector: Vector,
    threshold: f64,
    for_: Window,
    severity: Severity,
    summary: &str,
    description: &str,
) -> Rule {
    let expr = Expr::Per {
        by: by.iter().map(|b| (*b).to_owned()).collect(),
        vector,
    };
    rule(
        name,
        expr,
        Some((Cmp::Above, threshold)),
        for_,
        severity,
        summary,
        description,
    )
}

/// The host and container alert catalogue of the performance design: one alert per host, disk,
/// interface or container, over node_exporter's and cAdvisor's metric names (which zen-watcher
/// exports), so the same rules serve those exporters' series too.
pub fn host_rules() -> Vec<Rule> {
    use Severity::{Critical, Warning};
    let five = Window::minutes(5);
    let rate = |m: &str| Vector::rate(Selector::new(m), five);
    let host = ["instance"];
    let device = ["instance", "device"];
    let container = ["instance", "id", "name"];
    vec![
        per(
            "ZenWatcherHostCpuHigh",
            &host,
            Vector::rate(
                Selector::new("node_cpu_seconds_total").re("mode", "idle|iowait"),
                five,
            )
            .div(Vector::gauge(Selector::new("zen_watcher_host_cpus")))
            .one_minus(),
            0.8,
            five,
            Warning,
            "Host CPU above 80 %",
            "The host's CPUs have been more than 80 % busy (not idle or waiting for IO), over 5 minutes, for 5 minutes.",
        ),
        per(
            "ZenWatcherHostMemoryHigh",
            &host,
            Vector::gauge(Selector::new("node_memory_MemAvailable_bytes"))
                .div(Vector::gauge(Selector::new("node_memory_MemTotal_bytes")))
                .one_minus(),
            0.85,
            five,
            Warning,
            "Host memory above 85 %",
            "Less than 15 % of the host's memory has been available (MemAvailable) for 5 minutes.",
        ),
        per(
            "ZenWatcherHostDiskIopsHigh",
            &device,
            rate("node_disk_reads_completed_total").add(rate("node_disk_writes_completed_total")),
            1000.0,
            Window::minutes(10),
            Warning,
            "Disk {{ $labels.device }} above 1,000 IOPS",
            "Disk {{ $labels.device }} has completed more than 1,000 reads and writes a second, over 5 minutes, for 10 minutes.",
        ),
        per(
            "ZenWatcherHostDiskLatencyHigh",
            &device,
            rate("node_disk_read_time_seconds_total")
                .add(rate("node_disk_write_time_seconds_total"))
                .div(
                    rate("node_disk_reads_completed_total")
                        .add(rate("node_disk_writes_completed_total")),
                ),
            0.1,
            Window::minutes(10),
            Warning,
            "Disk {{ $labels.device }} IO slower than 100 ms",
            "Reads and writes on disk {{ $labels.device }} have taken more than 100 ms on average, over 5 minutes, for 10 minutes.",
        ),
        per(
            "ZenWatcherHostNetworkErrors",
            &device,
            rate("node_network_receive_errs_total")
                .add(rate("node_network_transmit_errs_total"))
                .div(
                    rate("node_network_receive_packets_total")
                        .add(rate("node_network_transmit_packets_total")),
                ),
            0.01,
            five,
            Warning,
            "Network errors on {{ $labels.device }} above 1 %",
            "More than 1 % of the packets received and sent on {{ $labels.device }} have failed, over 5 minutes, for 5 minutes.",
        ),
        per(
            "ZenWatcherHostNetworkBandwidthHigh",
            &device,
            rate("node_network_receive_bytes_total").add(rate("node_network_transmit_bytes_total")),
            100e6,
            Window::minutes(10),
            Warning,
            "Interface {{ $labels.device }} above 100 MB/s",
            "Interface {{ $labels.device }} has carried more than 100 MB a second, received and sent, over 5 minutes, for 10 minutes.",
        ),
        per(
            "ZenWatcherContainerCpuHigh",
            &container,
            rate("container_cpu_usage_seconds_total").div(
                Vector::gauge(Selector::new("container_spec_cpu_quota"))
                    .div(Vector::gauge(Selector::new("container_spec_cpu_period"))),
            ),
            0.7,
            Window::minutes(10),
            Warning,
            "Container {{ $labels.name }} above 70 % of its CPU limit",
            "Container {{ $labels.name }} ({{ $labels.id }}) has used more than 70 % of its CPU limit, over 5 minutes, for 10 minutes.",
        ),
        per(
            "ZenWatcherContainerMemoryHigh",
            &container,
            Vector::gauge(Selector::new("container_memory_working_set_bytes")).div(Vector::gauge(
                Selector::new("container_spec_memory_limit_bytes"),
            )),
            0.75,
            five,
            Warning,
            "Container {{ $labels.name }} above 75 % of its memory limit",
            "The working set of container {{ $labels.name }} ({{ $labels.id }}) has been above 75 % of its memory limit for 5 minutes.",
        ),
        per(
            "ZenWatcherContainerOomKilled",
            &container,
            Vector::increase(Selector::new("container_oom_events_total"), five),
            0.0,
            Window::default(),
            Critical,
            "Container {{ $labels.name }} was OOM-killed",
            "The kernel killed a process of container {{ $labels.name }} ({{ $labels.id }}) for want of memory in the last 5 minutes.",
        ),
        per(
            "ZenWatcherContainerCpuThrottled",
            &container,
            rate("container_cpu_cfs_throttled_periods_total")
                .div(rate("container_cpu_cfs_periods_total")),
            0.25,
            Window::minutes(15),
            Warning,
            "Container {{ $labels.name }} CPU-throttled in over 25 % of periods",
            "Container {{ $labels.name }} ({{ $labels.id }}) has been throttled by its CPU limit in more than 25 % of its scheduling periods, over 5 minutes, for 15 minutes.",
        ),
    ]
}

/// The health score's terms: events within 100 ms, ingestion without server errors, and
/// headroom below 80 % of the CPU and memory limits, over the last 5 minutes.
pub fn health() -> Vec<HealthTerm> {
    let five = Window::minutes(5);
    let headroom = |name: &str| HealthTerm::Headroom {
        gauge: gauge(name),
        from: 80.0,
        to: 100.0,
    };
    vec![
        HealthTerm::Good(
            Sli::Latency {
                histogram: processing(),
                threshold: 0.1,
            },
            five,
        ),
        HealthTerm::Good(ingest_availability(), five),
        headroom("zen_watcher_cpu_usage_percent"),
        headroom("zen_watcher_memory_usage_percent"),
    ]
}

/// The shipped spec.
pub fn spec() -> Spec {
    Spec {
        slos: slos(),
        rules: rules(),
        health: health(),
    }
}
