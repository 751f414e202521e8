//! Every metric zen-watcher emits, as data.
//!
//! Names follow Prometheus' conventions: base units in the name (`_seconds`, `_bytes`),
//! counters end in `_total`, ratios are 0–1 and end in `_ratio`. Pipeline metrics carry the
//! `zen_watcher_` prefix; process metrics follow the `process_*` convention of the official
//! client libraries.

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// node_exporter's type for `/proc/vmstat` fields: counters and gauges it does not tell
    /// apart.
    Untyped,
}

impl Kind {
    /// The name in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Untyped => "untyped",
        }
    }
}

/// Where a metric can be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Emitted by every daemon, standalone or not.
    Daemon,
    /// Emitted only by the Kubernetes operator (its watchers and custom-resource writer); a
    /// standalone daemon never shows it.
    Kubernetes,
}

/// One metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The base unit (`seconds`, `bytes`, `ratio`) or a count of what (`events`, `requests`).
    pub unit: &'static str,
    pub labels: &'static [&'static str],
    /// Upper bounds of a histogram's buckets (`+Inf` is implied); empty for other kinds.
    pub buckets: &'static [f64],
    pub scope: Scope,
    /// Label value sets registered at zero when the exporter starts, so `rate()` and `absent()`
    /// see the series before the first occurrence (an empty set for a metric without labels).
    pub initial: &'static [&'static [&'static str]],
}

impl Metric {
    /// Whether `name` is this metric: equal, or for a family (a name with `{}`, as
    /// `node_memory_{}_bytes`) with something in place of the braces.
    pub fn matches(&self, name: &str) -> bool {
        match self.name.split_once("{}") {
            None => self.name == name,
            Some((prefix, suffix)) => {
                name.len() > prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }
        }
    }
}

/// A histogram's declared bucket bounds; `None` for a name that is not a catalog histogram.
pub fn buckets(name: &str) -> Option<Vec<f64>> {
    find(name)
        .filter(|m| m.kind == Kind::Histogram && m.name == name)
        .map(|m| m.buckets.to_vec())
}

/// The catalog metric `name` (a histogram's `_bucket`, `_sum` or `_count` series finds its
/// histogram; a member of a family finds the family — exact names first, then families in
/// catalog order).
pub fn find(name: &str) -> Option<&'static Metric> {
    let exact = || CATALOG.iter().find(|m| m.name == name);
    let histogram = || {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            CATALOG
                .iter()
                .find(|m| m.name == base && m.kind == Kind::Histogram)
        })
    };
    let family = || {
        CATALOG
            .iter()
            .find(|m| m.name.contains("{}") && m.matches(name))
    };
    exact().or_else(histogram).or_else(family)
}

/// Latency buckets (seconds): fine below 10 ms, where the pipeline lives, and every SLO and
/// alert threshold (50, 75, 100 and 200 ms) as an edge, so that "share of events under the
/// threshold" is exact.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Slow operations (seconds): informer syncs take seconds to minutes.
pub const SLOW_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Batch sizes (events).
pub const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// The sources with a built-in format, whose error series are registered at start.
const SOURCES: &[&[&str]] = &[
    &["falco"],
    &["audit"],
    &["trivy"],
    &["kyverno"],
    &["kube-bench"],
    &["checkov"],
    &["generic"],
];

const NONE: &[&[&str]] = &[];
const BARE: &[&[&str]] = &[&[]];

const fn m(
    name: &'static str,
    kind: Kind,
    unit: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        help,
        unit,
        labels,
        buckets: &[],
        scope: Scope::Daemon,
        initial: NONE,
    }
}

const fn histogram(
    name: &'static str,
    unit: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    help: &'static str,
) -> Metric {
    Metric {
        buckets,
        ..m(name, Kind::Histogram, unit, labels, help)
    }
}

const fn initial(metric: Metric, sets: &'static [&'static [&'static str]]) -> Metric {
    Metric {
        initial: sets,
        ..metric
    }
}

const fn kubernetes(metric: Metric) -> Metric {
    Metric {
        scope: Scope::Kubernetes,
        ..metric
    }
}

use Kind::{Counter, Gauge, Untyped};

/// Every metric, in the order of `docs/metrics.md`.
pub const CATALOG: &[Metric] = &[
    // Flow through the pipeline.
    m(
        "zen_watcher_events_total",
        Counter,
        "events",
        &["source", "severity", "namespace"],
        "Events read from sources, before filtering and de-duplication. `namespace` is empty for cluster-scoped events and `_other` beyond the first 200 namespaces seen.",
    ),
    m(
        "zen_watcher_events_filtered_total",
        Counter,
        "events",
        &["source", "reason"],
        "Events dropped by a filter rule, by the rule kind that dropped them.",
    ),
    m(
        "zen_watcher_events_deduplicated_total",
        Counter,
        "events",
        &["source"],
        "Events folded into an earlier Observation within the de-duplication window.",
    ),
    m(
        "zen_watcher_observations_created_total",
        Counter,
        "observations",
        &["source", "sink"],
        "Observations committed by a sink.",
    ),
    m(
        "zen_watcher_observations_by_rule_total",
        Counter,
        "observations",
        &["source", "rule"],
        "New Observations by rule, check or vulnerability id; empty when the source names none, `_other` beyond the first 500 rules seen.",
    ),
    initial(
        m(
            "zen_watcher_dead_letters_total",
            Counter,
            "events",
            &["source"],
            "Events a sink could not commit after its retries, handed to the dead letters.",
        ),
        SOURCES,
    ),
    initial(
        m(
            "zen_watcher_dead_letters_dropped_total",
            Counter,
            "events",
            &[],
            "Dead-lettered events dropped from the store's bounded dead-letter table to make room for newer ones.",
        ),
        &[&[]],
    ),
    m(
        "zen_watcher_dedup_evictions_total",
        Counter,
        "fingerprints",
        &[],
        "Fingerprints the de-duplication forgot before their window ended, to stay within pipeline.dedup_max_entries: a repeat of one is stored as new.",
    ),
    m(
        "zen_watcher_thread_cpu_seconds_total",
        Counter,
        "seconds",
        &["thread"],
        "CPU time of the daemon's threads by name, from /proc/self/task (threads of one name summed; kernel names are cut at 15 characters).",
    ),
    m(
        "zen_watcher_pipeline_efficiency_ratio",
        Gauge,
        "ratio",
        &[],
        "Share of events received since start that were stored, filtered or de-duplicated (not lost to errors).",
    ),
    m(
        "zen_watcher_filter_effectiveness_ratio",
        Gauge,
        "ratio",
        &[],
        "Share of events received since start that filters dropped as noise.",
    ),
    m(
        "zen_watcher_deduplication_ratio",
        Gauge,
        "ratio",
        &[],
        "Share of events received since start that were duplicates.",
    ),
    initial(
        m(
            "zen_watcher_pipeline_order_switches_total",
            Counter,
            "switches",
            &["to"],
            "Times the adaptive pipeline changed the order of its filter and de-duplication stages.",
        ),
        &[&["filter_first"], &["dedup_first"]],
    ),
    // Latency.
    histogram(
        "zen_watcher_event_processing_duration_seconds",
        "seconds",
        &["stage", "source"],
        LATENCY_BUCKETS,
        "Time per event in each stage (normalize, process, sink), and from receipt to commit (total).",
    ),
    // Queues, batches and caches.
    m(
        "zen_watcher_queue_depth",
        Gauge,
        "events",
        &["queue"],
        "Events waiting in a pipeline queue.",
    ),
    m(
        "zen_watcher_queue_capacity",
        Gauge,
        "events",
        &["queue"],
        "Capacity of a pipeline queue, in events; a full queue answers 429.",
    ),
    histogram(
        "zen_watcher_batch_size",
        "events",
        &[],
        SIZE_BUCKETS,
        "Events per flushed batch.",
    ),
    histogram(
        "zen_watcher_batch_latency_seconds",
        "seconds",
        &[],
        LATENCY_BUCKETS,
        "How long the first event of a batch waited before the batch was flushed.",
    ),
    histogram(
        "zen_watcher_batch_processing_duration_seconds",
        "seconds",
        &[],
        LATENCY_BUCKETS,
        "Time for the sink to commit one write: a batch, or batches of one source gathered together, retries included.",
    ),
    m(
        "zen_watcher_batch_flushes_total",
        Counter,
        "batches",
        &["reason"],
        "Batches flushed, by why (size, age, limit, shutdown, ack, duplicates).",
    ),
    m(
        "zen_watcher_cache_hits_total",
        Counter,
        "lookups",
        &["cache"],
        "Configuration lookups answered from the cache.",
    ),
    m(
        "zen_watcher_cache_misses_total",
        Counter,
        "lookups",
        &["cache"],
        "Configuration lookups that had to load.",
    ),
    m(
        "zen_watcher_cache_evictions_total",
        Counter,
        "entries",
        &["cache"],
        "Configuration snapshots dropped from the cache (expired or invalidated).",
    ),
    m(
        "zen_watcher_cache_load_errors_total",
        Counter,
        "loads",
        &["cache"],
        "Configuration loads that failed (a stale snapshot is served meanwhile).",
    ),
    m(
        "zen_watcher_cache_size",
        Gauge,
        "entries",
        &["cache"],
        "Configuration snapshots held.",
    ),
    // Errors.
    initial(
        m(
            "zen_watcher_errors_total",
            Counter,
            "errors",
            &["component", "category"],
            "Errors by component and category (connection, io, parse, permission, rate_limit, store).",
        ),
        &[
            &["ingest", "connection"],
            &["ingest", "parse"],
            &["ingest", "permission"],
            &["ingest", "rate_limit"],
            &["collector", "io"],
            &["collector", "parse"],
            &["sink", "store"],
            &["store", "store"],
        ],
    ),
    // Store.
    histogram(
        "zen_watcher_store_operation_duration_seconds",
        "seconds",
        &["operation"],
        LATENCY_BUCKETS,
        "Duration of embedded-store operations (create, update, delete, list, get).",
    ),
    initial(
        m(
            "zen_watcher_store_purged_total",
            Counter,
            "observations",
            &[],
            "Observations deleted by the retention purge.",
        ),
        BARE,
    ),
    m(
        "zen_watcher_store_wal_bytes",
        Gauge,
        "bytes",
        &[],
        "Size of the embedded store's write-ahead log (bounded by store.wal_max_bytes).",
    ),
    // HTTP.
    m(
        "zen_watcher_http_requests_total",
        Counter,
        "requests",
        &["route", "code"],
        "HTTP requests answered, by route template and status code.",
    ),
    m(
        "zen_watcher_ingest_rejected_total",
        Counter,
        "requests",
        &["source", "reason"],
        "Ingestion requests refused, by format (`unknown` for a path naming none) and why: unreadable, gzip, too_large, unsupported, unknown_source, timeout, rate_limited, unavailable.",
    ),
    m(
        "zen_watcher_ingest_bytes_total",
        Counter,
        "bytes",
        &["source"],
        "Request body bytes received for ingestion, as sent (before decompression).",
    ),
    histogram(
        "zen_watcher_http_request_duration_seconds",
        "seconds",
        &["route"],
        LATENCY_BUCKETS,
        "Time to answer an HTTP request, by route template.",
    ),
    initial(
        m(
            "zen_watcher_http_requests_in_flight",
            Gauge,
            "requests",
            &[],
            "HTTP requests being answered.",
        ),
        BARE,
    ),
    // Kubernetes.
    kubernetes(histogram(
        "zen_watcher_crd_operation_duration_seconds",
        "seconds",
        &["operation"],
        LATENCY_BUCKETS,
        "Duration of Observation custom-resource operations (create, update, delete, list, get).",
    )),
    kubernetes(histogram(
        "zen_watcher_informer_sync_duration_seconds",
        "seconds",
        &["resource"],
        SLOW_BUCKETS,
        "Time for a report watcher's initial list to sync.",
    )),
    kubernetes(m(
        "zen_watcher_informer_lag_seconds",
        Gauge,
        "seconds",
        &["resource"],
        "Age of the newest change a report watcher has seen when it processed it.",
    )),
    kubernetes(m(
        "zen_watcher_informer_events_total",
        Counter,
        "events",
        &["resource", "type"],
        "Report watcher events by kind and type: `listed` (initial list), `applied`, `deleted`.",
    )),
    kubernetes(m(
        "zen_watcher_informer_restarts_total",
        Counter,
        "restarts",
        &["resource"],
        "Report watcher errors, each followed by a retry with backoff (a missing CRD, 410 Gone, a failed call).",
    )),
    kubernetes(m(
        "zen_watcher_informer_synced",
        Gauge,
        "boolean",
        &["resource"],
        "1 while a report watcher is synced and following changes; 0 while it lists or is degraded.",
    )),
    kubernetes(m(
        "zen_watcher_crd_already_exists_total",
        Counter,
        "observations",
        &[],
        "Observation resources found already written (409) by another replica or an earlier run: counted on it as sightings.",
    )),
    kubernetes(m(
        "zen_watcher_crd_expired_total",
        Counter,
        "observations",
        &[],
        "Observation resources deleted by the leader because they outlived their TTL.",
    )),
    kubernetes(m(
        "zen_watcher_config_rejected_total",
        Counter,
        "resources",
        &[],
        "SourcePolicy (or Go Ingester) versions rejected: invalid, or a second for the same source.",
    )),
    kubernetes(histogram(
        "zen_watcher_config_reload_duration_seconds",
        "seconds",
        &[],
        LATENCY_BUCKETS,
        "From a SourcePolicy's watch event to its settings in force in the pipeline.",
    )),
    kubernetes(m(
        "zen_watcher_leader",
        Gauge,
        "boolean",
        &[],
        "1 while this replica holds the leader Lease (and runs the report watchers).",
    )),
    kubernetes(m(
        "zen_watcher_report_findings_resolved_total",
        Counter,
        "findings",
        &["resource"],
        "Findings that left their report (fixed, or the report deleted), filtered ones included.",
    )),
    // Containers (cAdvisor's names) and the inventory.
    m(
        "zen_watcher_containers",
        Gauge,
        "containers",
        &["state"],
        "Cgroups found by discovery: `read`, or `skipped` beyond collect.container_limit.",
    ),
    m(
        "container_cpu_usage_seconds_total",
        Counter,
        "seconds",
        &["id", "name", "runtime", "pod_uid"],
        "Cumulative cpu time consumed in seconds.",
    ),
    m(
        "container_cpu_user_seconds_total",
        Counter,
        "seconds",
        &["id", "name", "runtime", "pod_uid"],
        "Cumulative user cpu time consumed in seconds.",
    ),
    m(
        "container_cpu_system_seconds_total",
        Counter,
        "seconds",
        &["id", "name", "runtime", "pod_uid"],
        "Cumulative system cpu time consumed in seconds.",
    ),
    m(
        "container_cpu_cfs_periods_total",
        Counter,
        "periods",
        &["id", "name", "runtime", "pod_uid"],
        "Number of elapsed enforcement period intervals.",
    ),
    m(
        "container_cpu_cfs_throttled_periods_total",
        Counter,
        "periods",
        &["id", "name", "runtime", "pod_uid"],
        "Number of throttled period intervals.",
    ),
    m(
        "container_cpu_cfs_throttled_seconds_total",
        Counter,
        "seconds",
        &["id", "name", "runtime", "pod_uid"],
        "Total time duration the container has been throttled.",
    ),
    m(
        "container_memory_usage_bytes",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Current memory usage in bytes, including all memory regardless of when it was accessed.",
    ),
    m(
        "container_memory_working_set_bytes",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Current working set in bytes (usage less inactive file pages).",
    ),
    m(
        "container_memory_rss",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Size of RSS in bytes (anonymous memory).",
    ),
    m(
        "container_memory_cache",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Number of bytes of page cache memory.",
    ),
    m(
        "container_memory_swap",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Container swap usage in bytes.",
    ),
    m(
        "container_spec_cpu_quota",
        Gauge,
        "microseconds",
        &["id", "name", "runtime", "pod_uid"],
        "CPU quota of the container per period (cpu.max or cpu.cfs_quota_us; left out when unlimited).",
    ),
    m(
        "container_spec_cpu_period",
        Gauge,
        "microseconds",
        &["id", "name", "runtime", "pod_uid"],
        "CPU period of the container's quota (left out when unlimited).",
    ),
    m(
        "container_spec_memory_limit_bytes",
        Gauge,
        "bytes",
        &["id", "name", "runtime", "pod_uid"],
        "Memory limit for the container (left out when unlimited).",
    ),
    m(
        "container_oom_events_total",
        Counter,
        "events",
        &["id", "name", "runtime", "pod_uid"],
        "Count of out of memory kills in the container.",
    ),
    m(
        "container_threads",
        Gauge,
        "threads",
        &["id", "name", "runtime", "pod_uid"],
        "Number of threads running inside the container (pids.current).",
    ),
    m(
        "container_threads_max",
        Gauge,
        "threads",
        &["id", "name", "runtime", "pod_uid"],
        "Maximum number of threads allowed inside the container (left out when unlimited).",
    ),
    m(
        "container_fs_reads_bytes_total",
        Counter,
        "bytes",
        &["id", "name", "runtime", "pod_uid", "device"],
        "Cumulative count of bytes read.",
    ),
    m(
        "container_fs_writes_bytes_total",
        Counter,
        "bytes",
        &["id", "name", "runtime", "pod_uid", "device"],
        "Cumulative count of bytes written.",
    ),
    m(
        "container_fs_reads_total",
        Counter,
        "reads",
        &["id", "name", "runtime", "pod_uid", "device"],
        "Cumulative count of reads completed.",
    ),
    m(
        "container_fs_writes_total",
        Counter,
        "writes",
        &["id", "name", "runtime", "pod_uid", "device"],
        "Cumulative count of writes completed.",
    ),
    m(
        "container_network_receive_{}_total",
        Counter,
        "bytes or packets",
        &["id", "name", "runtime", "pod_uid", "interface"],
        "What the container's own network namespace received on each interface (bytes, packets, errors, packets_dropped); none for a container on the host's network.",
    ),
    m(
        "container_network_transmit_{}_total",
        Counter,
        "bytes or packets",
        &["id", "name", "runtime", "pod_uid", "interface"],
        "What the container's own network namespace sent on each interface (bytes, packets, errors, packets_dropped).",
    ),
    m(
        "container_pressure_{}_seconds_total",
        Counter,
        "seconds",
        &["id", "name", "runtime", "pod_uid"],
        "Pressure stall time of the container's cgroup (cgroup v2): cpu, memory or io, `waiting` (some tasks) or `stalled` (all).",
    ),
    m(
        "zen_watcher_host_info",
        Gauge,
        "info",
        &["hostname", "os", "kernel", "cpu_model"],
        "What the host is (sysinfo), value is always 1.",
    ),
    m(
        "zen_watcher_host_cpus",
        Gauge,
        "cpus",
        &[],
        "Logical CPUs of the host (sysinfo).",
    ),
    m(
        "zen_watcher_host_memory_bytes",
        Gauge,
        "bytes",
        &[],
        "Total memory of the host (sysinfo).",
    ),
    m(
        "zen_watcher_host_temperature_celsius",
        Gauge,
        "celsius",
        &["sensor"],
        "Temperature of each sensor the host has (sysinfo).",
    ),
    m(
        "zen_watcher_host_processes",
        Gauge,
        "processes",
        &["name"],
        "Processes by name, the 20 names using the most memory and `_other` (collect.collectors.processes).",
    ),
    m(
        "zen_watcher_host_process_resident_memory_bytes",
        Gauge,
        "bytes",
        &["name"],
        "Resident memory of the processes of each name (collect.collectors.processes).",
    ),
    m(
        "zen_watcher_host_process_cpu_seconds",
        Gauge,
        "seconds",
        &["name"],
        "CPU time of the running processes of each name since each started; falls when one exits (collect.collectors.processes).",
    ),
    // The process.
    m(
        "zen_watcher_cpu_usage_percent",
        Gauge,
        "percent",
        &[],
        "The daemon's CPU use over the last collection interval, percent of its cgroup's CPU limit, else of the host's CPUs.",
    ),
    m(
        "zen_watcher_memory_usage_percent",
        Gauge,
        "percent",
        &[],
        "The daemon's resident memory, percent of its cgroup's memory limit, else of the host's memory.",
    ),
    m(
        "zen_watcher_build_info",
        Gauge,
        "info",
        &["version", "os", "arch"],
        "Always 1; the labels say which build is running.",
    ),
    // SLOs and alerts (zen-slo's evaluator, every `alerting.interval`).
    m(
        "zen_watcher_health_score",
        Gauge,
        "score",
        &[],
        "0-100: 100 x share of events committed within 100 ms x share of ingestion requests without a server error x CPU and memory headroom (1 up to 80 % of the limit, 0 at 100 %), over 5 minutes; no traffic counts as perfect.",
    ),
    initial(
        m(
            "zen_watcher_alerts_firing",
            Gauge,
            "alerts",
            &["severity"],
            "Alerts the daemon's evaluator has firing, by severity.",
        ),
        &[&["critical"], &["warning"], &["info"]],
    ),
    m(
        "zen_watcher_slo_burn_rate",
        Gauge,
        "ratio",
        &["slo", "window"],
        "How fast an SLO spends its error budget over a window: error ratio / budget (1 spends it exactly in the period; 0 without traffic).",
    ),
    m(
        "zen_watcher_forecast_exhaustion_seconds",
        Gauge,
        "seconds",
        &["resource"],
        "The advisor's forecast of the seconds until a resource runs out at its recent pace (`memory`, `queue`, `filesystem:<mountpoint>`, `error_budget:<slo>`): NaN without enough data, +Inf when steady.",
    ),
    m(
        "zen_watcher_anomaly_score",
        Gauge,
        "score",
        &["panel"],
        "How unusual the most unusual series of a dashboard panel is now, in robust standard deviations from its last hour; above 7 is an anomaly. NaN before an hour of data.",
    ),
    initial(
        m(
            "zen_watcher_recommendations_open",
            Gauge,
            "recommendations",
            &["kind"],
            "The advisor's recommendations new or acknowledged, by kind.",
        ),
        &[
            &["batch_age"],
            &["batch_size"],
            &["queue"],
            &["replica"],
            &["retention"],
            &["disk"],
            &["exhaustion"],
        ],
    ),
    initial(
        m(
            "zen_watcher_tuning_changes_total",
            Counter,
            "changes",
            &["knob", "outcome"],
            "Changes the advisor's tuner made to a pipeline setting (`advisor.auto_apply`), by outcome: applied, kept, reverted, undone.",
        ),
        &[
            &["batch_age", "applied"],
            &["batch_age", "kept"],
            &["batch_age", "reverted"],
            &["batch_age", "undone"],
            &["batch_size", "applied"],
            &["batch_size", "kept"],
            &["batch_size", "reverted"],
            &["batch_size", "undone"],
        ],
    ),
    m(
        "zen_watcher_slo_error_budget_remaining_ratio",
        Gauge,
        "ratio",
        &["slo"],
        "Share of an SLO's error budget left for its period, judged on the data the daemon holds (at most 3 days); 1 before any traffic.",
    ),
    initial(
        m(
            "zen_watcher_notifications_total",
            Counter,
            "notifications",
            &["receiver", "outcome"],
            "Alert notifications posted, by receiver (alertmanager, webhook) and outcome (sent, failed after retries).",
        ),
        &[
            &["alertmanager", "sent"],
            &["alertmanager", "failed"],
            &["webhook", "sent"],
            &["webhook", "failed"],
        ],
    ),
    // The host (zen-collect), under node_exporter's names and units.
    m(
        "node_cpu_seconds_total",
        Counter,
        "seconds",
        &["cpu", "mode"],
        "Seconds the CPUs spent in each mode.",
    ),
    m(
        "node_cpu_guest_seconds_total",
        Counter,
        "seconds",
        &["cpu", "mode"],
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    ),
    m(
        "node_intr_total",
        Counter,
        "interrupts",
        &[],
        "Total number of interrupts serviced.",
    ),
    m(
        "node_context_switches_total",
        Counter,
        "switches",
        &[],
        "Total number of context switches.",
    ),
    m(
        "node_forks_total",
        Counter,
        "forks",
        &[],
        "Total number of forks.",
    ),
    m(
        "node_procs_running",
        Gauge,
        "processes",
        &[],
        "Number of processes in runnable state.",
    ),
    m(
        "node_procs_blocked",
        Gauge,
        "processes",
        &[],
        "Number of processes blocked waiting for I/O to complete.",
    ),
    m(
        "node_boot_time_seconds",
        Gauge,
        "seconds",
        &[],
        "Node boot time, in unixtime.",
    ),
    m("node_load1", Gauge, "load", &[], "1m load average."),
    m("node_load5", Gauge, "load", &[], "5m load average."),
    m("node_load15", Gauge, "load", &[], "15m load average."),
    m(
        "node_memory_{}_bytes",
        Gauge,
        "bytes",
        &[],
        "Memory information field of /proc/meminfo (kB fields, in bytes).",
    ),
    m(
        "node_memory_{}",
        Gauge,
        "pages",
        &[],
        "Memory information field of /proc/meminfo without a unit (huge page counts).",
    ),
    m(
        "node_vmstat_{}",
        Untyped,
        "events",
        &[],
        "/proc/vmstat information field: paging (pgpg*), swapping (pswp*), page faults (pg*fault) and OOM kills.",
    ),
    m(
        "node_disk_reads_completed_total",
        Counter,
        "reads",
        &["device"],
        "The total number of reads completed successfully.",
    ),
    m(
        "node_disk_reads_merged_total",
        Counter,
        "reads",
        &["device"],
        "The total number of reads merged.",
    ),
    m(
        "node_disk_read_bytes_total",
        Counter,
        "bytes",
        &["device"],
        "The total number of bytes read successfully.",
    ),
    m(
        "node_disk_read_time_seconds_total",
        Counter,
        "seconds",
        &["device"],
        "The total number of seconds spent by all reads.",
    ),
    m(
        "node_disk_writes_completed_total",
        Counter,
        "writes",
        &["device"],
        "The total number of writes completed successfully.",
    ),
    m(
        "node_disk_writes_merged_total",
        Counter,
        "writes",
        &["device"],
        "The number of writes merged.",
    ),
    m(
        "node_disk_written_bytes_total",
        Counter,
        "bytes",
        &["device"],
        "The total number of bytes written successfully.",
    ),
    m(
        "node_disk_write_time_seconds_total",
        Counter,
        "seconds",
        &["device"],
        "This is the total number of seconds spent by all writes.",
    ),
    m(
        "node_disk_io_now",
        Gauge,
        "requests",
        &["device"],
        "The number of I/Os currently in progress.",
    ),
    m(
        "node_disk_io_time_seconds_total",
        Counter,
        "seconds",
        &["device"],
        "Total seconds spent doing I/Os.",
    ),
    m(
        "node_disk_io_time_weighted_seconds_total",
        Counter,
        "seconds",
        &["device"],
        "The weighted number of seconds spent doing I/Os (queue depth × time).",
    ),
    m(
        "node_network_receive_{}_total",
        Counter,
        "bytes or packets",
        &["device"],
        "Network device statistic receive_{} of /proc/net/dev (bytes, packets, errs, drop, fifo, frame, compressed, multicast).",
    ),
    m(
        "node_network_transmit_{}_total",
        Counter,
        "bytes or packets",
        &["device"],
        "Network device statistic transmit_{} of /proc/net/dev (bytes, packets, errs, drop, fifo, colls, carrier, compressed).",
    ),
    m(
        "node_pressure_cpu_waiting_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total time in seconds that processes have waited for CPU time.",
    ),
    m(
        "node_pressure_memory_waiting_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total time in seconds that processes have waited for memory.",
    ),
    m(
        "node_pressure_memory_stalled_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total time in seconds no process could make progress due to memory congestion.",
    ),
    m(
        "node_pressure_io_waiting_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total time in seconds that processes have waited due to IO congestion.",
    ),
    m(
        "node_pressure_io_stalled_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total time in seconds no process could make progress due to IO congestion.",
    ),
    m(
        "node_netstat_{}",
        Untyped,
        "events",
        &[],
        "Statistic {} of /proc/net/snmp, netstat or snmp6 (node_exporter's default selection: TCP opens, segments, resets, retransmits, established connections; UDP datagrams and errors; IP octets).",
    ),
    m(
        "node_sockstat_{}",
        Gauge,
        "sockets",
        &[],
        "Number of {} from /proc/net/sockstat or sockstat6 (`_mem_bytes`: pages times the page size).",
    ),
    m(
        "node_filefd_allocated",
        Gauge,
        "descriptors",
        &[],
        "File descriptor statistics: allocated.",
    ),
    m(
        "node_filefd_maximum",
        Gauge,
        "descriptors",
        &[],
        "File descriptor statistics: maximum.",
    ),
    m(
        "node_network_up",
        Gauge,
        "boolean",
        &["device"],
        "Value is 1 if operstate is 'up', 0 otherwise.",
    ),
    m(
        "node_network_mtu_bytes",
        Gauge,
        "bytes",
        &["device"],
        "Network device property: mtu_bytes.",
    ),
    m(
        "node_network_speed_bytes",
        Gauge,
        "bytes per second",
        &["device"],
        "Network device property: speed_bytes (left out where the driver reports none).",
    ),
    m(
        "node_network_carrier",
        Gauge,
        "boolean",
        &["device"],
        "Network device property: carrier.",
    ),
    m(
        "node_network_info",
        Gauge,
        "info",
        &[
            "address",
            "broadcast",
            "device",
            "duplex",
            "ifalias",
            "operstate",
        ],
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
    ),
    m(
        "node_filesystem_size_bytes",
        Gauge,
        "bytes",
        &["device", "fstype", "mountpoint"],
        "Filesystem size in bytes.",
    ),
    m(
        "node_filesystem_free_bytes",
        Gauge,
        "bytes",
        &["device", "fstype", "mountpoint"],
        "Filesystem free space in bytes.",
    ),
    m(
        "node_filesystem_avail_bytes",
        Gauge,
        "bytes",
        &["device", "fstype", "mountpoint"],
        "Filesystem space available to non-root users in bytes.",
    ),
    m(
        "node_filesystem_files",
        Gauge,
        "inodes",
        &["device", "fstype", "mountpoint"],
        "Filesystem total file nodes.",
    ),
    m(
        "node_filesystem_files_free",
        Gauge,
        "inodes",
        &["device", "fstype", "mountpoint"],
        "Filesystem total free file nodes.",
    ),
    m(
        "node_filesystem_readonly",
        Gauge,
        "boolean",
        &["device", "fstype", "mountpoint"],
        "Filesystem read-only status.",
    ),
    m(
        "node_filesystem_device_error",
        Gauge,
        "boolean",
        &["device", "fstype", "mountpoint"],
        "Whether an error occurred while getting statistics for the given device (or it did not answer within the timeout).",
    ),
    m(
        "process_cpu_seconds_total",
        Counter,
        "seconds",
        &[],
        "Total user and system CPU time spent in seconds.",
    ),
    m(
        "process_resident_memory_bytes",
        Gauge,
        "bytes",
        &[],
        "Resident memory size in bytes.",
    ),
    m(
        "process_virtual_memory_bytes",
        Gauge,
        "bytes",
        &[],
        "Virtual memory size in bytes.",
    ),
    m(
        "process_open_fds",
        Gauge,
        "descriptors",
        &[],
        "Number of open file descriptors.",
    ),
    m(
        "process_max_fds",
        Gauge,
        "descriptors",
        &[],
        "Maximum number of open file descriptors.",
    ),
    m(
        "process_start_time_seconds",
        Gauge,
        "seconds",
        &[],
        "Start time of the process since unix epoch in seconds.",
    ),
    m(
        "process_threads",
        Gauge,
        "threads",
        &[],
        "Number of OS threads in the process.",
    ),
];

/// How fresh a metric's value is: how often what it reports is read or computed, with the
/// default settings. A scrape between two readings sees the last one.
pub fn resolution(name: &str) -> &'static str {
    const SLOW: &[&str] = &[
        "node_vmstat_",
        "node_netstat_",
        "node_sockstat_",
        "node_filefd_",
    ];
    const LINKS: &[&str] = &[
        "node_network_up",
        "node_network_mtu_bytes",
        "node_network_speed_bytes",
        "node_network_carrier",
        "node_network_info",
    ];
    if SLOW.iter().any(|p| name.starts_with(p))
        || name.starts_with("container_spec_")
        || name == "container_oom_events_total"
        || name == "container_threads_max"
    {
        "10 s"
    } else if name.starts_with("node_load") {
        "5 s, as the kernel updates it"
    } else if LINKS.contains(&name) {
        "when the interfaces change, else 30 s"
    } else if name.starts_with("node_filesystem_") {
        "30 s (collect.filesystem_interval)"
    } else if name == "zen_watcher_containers" {
        "10 s (container discovery)"
    } else if name.starts_with("zen_watcher_host_") {
        "5 min (the inventory)"
    } else if name.starts_with("node_")
        || name.starts_with("container_")
        || name == "zen_watcher_cpu_usage_percent"
        || name == "zen_watcher_memory_usage_percent"
    {
        "1 s (collect.interval)"
    } else if name.starts_with("process_") {
        "each scrape"
    } else if name == "zen_watcher_thread_cpu_seconds_total" {
        "10 s"
    } else if [
        "zen_watcher_forecast_exhaustion_seconds",
        "zen_watcher_anomaly_score",
        "zen_watcher_recommendations_open",
    ]
    .contains(&name)
    {
        "10 s (advisor.interval)"
    } else if [
        "zen_watcher_health_score",
        "zen_watcher_alerts_firing",
        "zen_watcher_slo_burn_rate",
        "zen_watcher_slo_error_budget_remaining_ratio",
    ]
    .contains(&name)
    {
        "10 s (alerting.interval)"
    } else {
        "as it happens"
    }
}

/// The catalog as Markdown: `docs/metrics.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Metrics\n\n\
         Generated from the catalog in `crates/zen-export/src/catalog.rs` by `cargo xtask gen`; do not edit.\n\
         Counters are in base units and end in `_total`; rates and percentages are the reader's to compute.\n\
         Histograms have explicit buckets (never summaries) that include every SLO threshold.\n\
         \"Fresh\" is how often a value is read or computed with the default settings: a scrape between two\n\
         readings sees the last one, so a rate over less than that span is not a rate.\n\n\
         | Metric | Type | Unit | Labels | Seen | Fresh | Description |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for m in CATALOG {
        let labels = m
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let seen = match m.scope {
            Scope::Daemon => "always",
            Scope::Kubernetes => "on Kubernetes",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            m.name,
            m.kind.as_str(),
            m.unit,
            labels,
            seen,
            resolution(m.name),
            m.help
        ));
    }
    out.push_str("\n## Histogram buckets\n\n");
    for m in CATALOG.iter().filter(|m| m.kind == Kind::Histogram) {
        let edges: Vec<String> = m.buckets.iter().map(|b| b.to_string()).collect();
        out.push_str(&format!("- `{}`: {}, +Inf\n", m.name, edges.join(", ")));
    }
    out
}
