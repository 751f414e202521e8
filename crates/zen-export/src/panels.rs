//! The panels a person looks at, declared once: the web dashboard's charts (served by
//! `GET /api/v1/meta`, recorded once a second into the history) **and** the generated Grafana
//! panels of the same name, so the two cannot drift.
//!
//! A panel draws [`Line`]s; a line is one catalog metric taken one way ([`Take`]): its rate,
//! its value, a quantile of its histogram, or the ratio of two rates — summed over every label
//! but the line's `by` labels, after keeping only samples that match its `only` matchers.
//! [`Line::promql`] is the line as Prometheus computes it; [`Reducer`] computes the same, once
//! a second, from the daemon's own readings, into history series named by [`Line`]
//! (`metric:p95{stage="total"}`). The reduction is pure: readings in, values out.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The reducer's maps: looked up for every reading, every second, by short keys the daemon
/// makes itself, so a fast hash rather than one that resists chosen keys.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use crate::catalog::{self, Kind};

/// How a line takes its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// A counter's rate per second (the history stores counters as rates).
    Rate,
    /// A gauge's value.
    Value,
    /// A quantile (0–1) of a histogram's observations in each step, interpolated in its
    /// buckets as `histogram_quantile` does.
    Quantile(f64),
    /// The rate of the metric over the rate of another counter (seconds per operation).
    Per(&'static str),
}

/// One line of a panel: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub metric: &'static str,
    pub take: Take,
    /// Labels kept; the others are summed over.
    pub by: &'static [&'static str],
    /// `(label, value)` samples must have; a value starting with `!` is one they must not have.
    pub only: &'static [(&'static str, &'static str)],
    /// The legend: `{label}` is replaced by the label's value.
    pub legend: &'static str,
}

/// Where a panel sits on the page and which generated dashboard holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Pipeline,
    Slo,
    Host,
    Containers,
    Findings,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Pipeline => "pipeline",
            Section::Slo => "slo",
            Section::Host => "host",
            Section::Containers => "containers",
            Section::Findings => "findings",
        }
    }
}

/// A chart: its title, Grafana unit id (`s`, `ops`, `bytes`, `Bps`, `percentunit`, `short`),
/// threshold steps (`value`, colour) above a base colour, and lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Panel {
    pub id: &'static str,
    pub section: Section,
    pub title: &'static str,
    pub about: &'static str,
    pub unit: &'static str,
    pub base: &'static str,
    pub thresholds: &'static [(f64, &'static str)],
    pub lines: &'static [Line],
}

const fn line(
    metric: &'static str,
    take: Take,
    by: &'static [&'static str],
    legend: &'static str,
) -> Line {
    Line {
        metric,
        take,
        by,
        only: &[],
        legend,
    }
}

const fn only(l: Line, only: &'static [(&'static str, &'static str)]) -> Line {
    Line { only, ..l }
}

use Take::{Per, Quantile, Rate, Value};

const LATENCY: &str = "zen_watcher_event_processing_duration_seconds";
const EVENTS: &str = "zen_watcher_events_total";
const TOTAL: &[(&str, &str)] = &[("stage", "total")];

/// The latency objectives every latency chart draws: 50, 100 and 200 ms.
const LATENCY_STEPS: &[(f64, &str)] = &[(0.05, "yellow"), (0.1, "orange"), (0.2, "red")];

/// Every panel, in the page's order.
pub const PANELS: &[Panel] = &[
    Panel {
        id: "throughput",
        section: Section::Pipeline,
        title: "Events by outcome",
        about: "Events per second read from sources, dropped by filters, folded as duplicates, stored, and dead-lettered.",
        unit: "ops",
        base: "green",
        thresholds: &[],
        lines: &[
            line("zen_watcher_events_total", Rate, &[], "received"),
            line("zen_watcher_events_filtered_total", Rate, &[], "filtered"),
            line(
                "zen_watcher_events_deduplicated_total",
                Rate,
                &[],
                "deduplicated",
            ),
            line(
                "zen_watcher_observations_created_total",
                Rate,
                &[],
                "stored",
            ),
            line("zen_watcher_dead_letters_total", Rate, &[], "dead-lettered"),
        ],
    },
    Panel {
        id: "sources",
        section: Section::Pipeline,
        title: "Events by source",
        about: "Events per second read from each source.",
        unit: "ops",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "zen_watcher_events_total",
            Rate,
            &["source"],
            "{source}",
        )],
    },
    Panel {
        id: "latency",
        section: Section::Pipeline,
        title: "Latency, receipt to commit",
        about: "P50, P95 and P99 of the time from receipt to commit, each second. Lines: the 50, 100 and 200 ms objectives.",
        unit: "s",
        base: "green",
        thresholds: LATENCY_STEPS,
        lines: &[
            only(line(LATENCY, Quantile(0.5), &[], "P50"), TOTAL),
            only(line(LATENCY, Quantile(0.95), &[], "P95"), TOTAL),
            only(line(LATENCY, Quantile(0.99), &[], "P99"), TOTAL),
        ],
    },
    Panel {
        id: "stages",
        section: Section::Pipeline,
        title: "Latency by stage",
        about: "P50, P95 and P99 of the per-event time in each stage: normalize, process (filter, dedup, batch), sink, and total.",
        unit: "s",
        base: "green",
        thresholds: LATENCY_STEPS,
        lines: &[
            line(LATENCY, Quantile(0.5), &["stage"], "{stage} P50"),
            line(LATENCY, Quantile(0.95), &["stage"], "{stage} P95"),
            line(LATENCY, Quantile(0.99), &["stage"], "{stage} P99"),
        ],
    },
    Panel {
        id: "queue",
        section: Section::Pipeline,
        title: "Queue depth",
        about: "Events waiting in each pipeline queue, and its capacity: a full queue answers 429.",
        unit: "short",
        base: "green",
        thresholds: &[],
        lines: &[
            line("zen_watcher_queue_depth", Value, &["queue"], "{queue}"),
            line(
                "zen_watcher_queue_capacity",
                Value,
                &["queue"],
                "capacity {queue}",
            ),
        ],
    },
    Panel {
        id: "ratios",
        section: Section::Pipeline,
        title: "Filter and dedup ratios",
        about: "Share of the events read that filters dropped as noise, and that were folded into earlier Observations.",
        unit: "percentunit",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "zen_watcher_events_filtered_total",
                Per(EVENTS),
                &[],
                "filtered",
            ),
            line(
                "zen_watcher_events_deduplicated_total",
                Per(EVENTS),
                &[],
                "deduplicated",
            ),
        ],
    },
    Panel {
        id: "errors",
        section: Section::Pipeline,
        title: "Errors by component",
        about: "Errors per second, by the component that met them.",
        unit: "ops",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "zen_watcher_errors_total",
            Rate,
            &["component"],
            "{component}",
        )],
    },
    Panel {
        id: "batches",
        section: Section::Pipeline,
        title: "Batch wait and commit time",
        about: "P95 of how long a batch's first event waited before the flush, and of the sink's commit.",
        unit: "s",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "zen_watcher_batch_latency_seconds",
                Quantile(0.95),
                &[],
                "wait P95",
            ),
            line(
                "zen_watcher_batch_processing_duration_seconds",
                Quantile(0.95),
                &[],
                "commit P95",
            ),
        ],
    },
    Panel {
        id: "health",
        section: Section::Slo,
        title: "Health score over time",
        about: "The daemon's own score, 0-100, from events committed within 100 ms, ingestion without server errors, and CPU and memory headroom.",
        unit: "none",
        base: "red",
        thresholds: &[(50.0, "orange"), (90.0, "green")],
        lines: &[line("zen_watcher_health_score", Value, &[], "health")],
    },
    Panel {
        id: "budget",
        section: Section::Slo,
        title: "Error budget left",
        about: "Share of each SLO's error budget left over its window.",
        unit: "percentunit",
        base: "red",
        thresholds: &[(0.25, "orange"), (0.5, "green")],
        lines: &[line(
            "zen_watcher_slo_error_budget_remaining_ratio",
            Value,
            &["slo"],
            "{slo}",
        )],
    },
    Panel {
        id: "burn",
        section: Section::Slo,
        title: "SLO burn rates",
        about: "How fast each SLO spends its error budget, by window: 1 spends it exactly over the SLO's window.",
        unit: "short",
        base: "green",
        thresholds: &[(1.0, "orange"), (14.4, "red")],
        lines: &[line(
            "zen_watcher_slo_burn_rate",
            Value,
            &["slo", "window"],
            "{slo} {window}",
        )],
    },
    Panel {
        id: "firing",
        section: Section::Slo,
        title: "Alerts firing",
        about: "zen-watcher's own alerts firing, by severity.",
        unit: "short",
        base: "green",
        thresholds: &[(1.0, "red")],
        lines: &[line(
            "zen_watcher_alerts_firing",
            Value,
            &["severity"],
            "{severity}",
        )],
    },
    Panel {
        id: "process",
        section: Section::Host,
        title: "zen-watcher CPU and memory",
        about: "Share of its limit (its cgroup's, else the host's) the daemon uses. Line: the 90 % alert threshold.",
        unit: "percent",
        base: "green",
        thresholds: &[(90.0, "red")],
        lines: &[
            line("zen_watcher_cpu_usage_percent", Value, &[], "CPU"),
            line("zen_watcher_memory_usage_percent", Value, &[], "memory"),
        ],
    },
    Panel {
        id: "cpu",
        section: Section::Host,
        title: "Host CPU by mode",
        about: "CPUs busy in each mode (idle left out), summed over the host's CPUs.",
        unit: "short",
        base: "green",
        thresholds: &[],
        lines: &[only(
            line("node_cpu_seconds_total", Rate, &["mode"], "{mode}"),
            &[("mode", "!idle")],
        )],
    },
    Panel {
        id: "load",
        section: Section::Host,
        title: "Load and pressure",
        about: "The 1-minute load average, and the share of time some task waited on CPU, memory or IO (PSI).",
        unit: "short",
        base: "green",
        thresholds: &[],
        lines: &[
            line("node_load1", Value, &[], "load 1m"),
            line(
                "node_pressure_cpu_waiting_seconds_total",
                Rate,
                &[],
                "cpu pressure",
            ),
            line(
                "node_pressure_memory_waiting_seconds_total",
                Rate,
                &[],
                "memory pressure",
            ),
            line(
                "node_pressure_io_waiting_seconds_total",
                Rate,
                &[],
                "io pressure",
            ),
        ],
    },
    Panel {
        id: "memory",
        section: Section::Host,
        title: "Host memory and swap",
        about: "Memory the host has and can still give without swapping, and its swap.",
        unit: "bytes",
        base: "green",
        thresholds: &[],
        lines: &[
            line("node_memory_MemTotal_bytes", Value, &[], "total"),
            line("node_memory_MemAvailable_bytes", Value, &[], "available"),
            line("node_memory_SwapTotal_bytes", Value, &[], "swap"),
            line("node_memory_SwapFree_bytes", Value, &[], "swap free"),
        ],
    },
    Panel {
        id: "disk",
        section: Section::Host,
        title: "Disk throughput",
        about: "Bytes read and written per second, by device.",
        unit: "Bps",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "node_disk_read_bytes_total",
                Rate,
                &["device"],
                "read {device}",
            ),
            line(
                "node_disk_written_bytes_total",
                Rate,
                &["device"],
                "written {device}",
            ),
        ],
    },
    Panel {
        id: "iops",
        section: Section::Host,
        title: "Disk IOPS",
        about: "Reads and writes completed per second, by device.",
        unit: "iops",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "node_disk_reads_completed_total",
                Rate,
                &["device"],
                "reads {device}",
            ),
            line(
                "node_disk_writes_completed_total",
                Rate,
                &["device"],
                "writes {device}",
            ),
        ],
    },
    Panel {
        id: "disk_latency",
        section: Section::Host,
        title: "Disk latency",
        about: "Mean time per read and per write, by device.",
        unit: "s",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "node_disk_read_time_seconds_total",
                Per("node_disk_reads_completed_total"),
                &["device"],
                "read {device}",
            ),
            line(
                "node_disk_write_time_seconds_total",
                Per("node_disk_writes_completed_total"),
                &["device"],
                "write {device}",
            ),
        ],
    },
    Panel {
        id: "disk_busy",
        section: Section::Host,
        title: "Disk utilisation",
        about: "Share of time each device was busy with IO.",
        unit: "percentunit",
        base: "green",
        thresholds: &[(0.9, "red")],
        lines: &[line(
            "node_disk_io_time_seconds_total",
            Rate,
            &["device"],
            "{device}",
        )],
    },
    Panel {
        id: "network",
        section: Section::Host,
        title: "Network by interface",
        about: "Bytes received and sent per second, by interface.",
        unit: "Bps",
        base: "green",
        thresholds: &[],
        lines: &[
            line(
                "node_network_receive_bytes_total",
                Rate,
                &["device"],
                "in {device}",
            ),
            line(
                "node_network_transmit_bytes_total",
                Rate,
                &["device"],
                "out {device}",
            ),
        ],
    },
    Panel {
        id: "filesystems",
        section: Section::Host,
        title: "Filesystem space free",
        about: "Bytes each filesystem can still give to non-root users; the advisor forecasts when each runs out.",
        unit: "bytes",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "node_filesystem_avail_bytes",
            Value,
            &["mountpoint"],
            "{mountpoint}",
        )],
    },
    Panel {
        id: "container_cpu",
        section: Section::Containers,
        title: "Container CPU",
        about: "CPUs each container uses.",
        unit: "short",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "container_cpu_usage_seconds_total",
            Rate,
            &["name"],
            "{name}",
        )],
    },
    Panel {
        id: "container_memory",
        section: Section::Containers,
        title: "Container memory",
        about: "Each container's working set: what the kernel would not reclaim first.",
        unit: "bytes",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "container_memory_working_set_bytes",
            Value,
            &["name"],
            "{name}",
        )],
    },
    Panel {
        id: "severity",
        section: Section::Findings,
        title: "Events by severity",
        about: "Security events per second read from every source, by severity.",
        unit: "ops",
        base: "green",
        thresholds: &[],
        lines: &[line(
            "zen_watcher_events_total",
            Rate,
            &["severity"],
            "{severity}",
        )],
    },
];

/// The panel `id`.
pub fn find(id: &str) -> Option<&'static Panel> {
    PANELS.iter().find(|p| p.id == id)
}

/// Every metric a panel reads, once each.
pub fn metrics() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for m in PANELS.iter().flat_map(|p| p.lines).flat_map(Line::metrics) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

impl Line {
    /// The metrics the line reads: its own, and the denominator of a ratio.
    fn metrics(&self) -> impl Iterator<Item = &'static str> {
        let per = match self.take {
            Per(other) => Some(other),
            _ => None,
        };
        std::iter::once(self.metric).chain(per)
    }

    /// Whether a sample with `labels` belongs to the line.
    fn matches(&self, labels: &[(&str, &str)]) -> bool {
        self.only.iter().all(|(k, want)| {
            let have = labels.iter().find(|(l, _)| l == k).map_or("", |(_, v)| *v);
            match want.strip_prefix('!') {
                Some(not) => have != not,
                None => have == *want,
            }
        })
    }

    /// The history series of the line for a sample with `labels`, written into `out`:
    /// `metric[:pNN|/other]{labels}`, the labels being its `only` equalities and its `by` labels.
    fn series(&self, labels: &[(&str, &str)], out: &mut String) {
        // Pushed piece by piece: this runs for every reading, every second.
        out.clear();
        out.push_str(self.metric);
        match self.take {
            Quantile(q) => {
                out.push_str(":p");
                let _ = write!(out, "{}", (q * 100.0).round());
            }
            Per(other) => {
                out.push('/');
                out.push_str(other);
            }
            Rate | Value => {}
        }
        let mut first = true;
        let eq = self
            .only
            .iter()
            .filter(|(_, v)| !v.starts_with('!'))
            .map(|(k, v)| (*k, *v));
        let by = self.by.iter().map(|k| {
            let v = labels.iter().find(|(l, _)| l == k).map_or("", |(_, v)| *v);
            (*k, v)
        });
        for (k, v) in eq.chain(by) {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(v);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
    }

    /// The legend of the series `name` when it is one of this line's, else `None`.
    pub fn legend_of(&self, name: &str) -> Option<String> {
        let labels = parse_labels(name)?;
        let borrowed: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut mine = String::new();
        self.series(&borrowed, &mut mine);
        if mine != name || !self.matches(&borrowed) {
            return None;
        }
        let mut legend = self.legend.to_owned();
        for (k, v) in &borrowed {
            legend = legend.replace(&format!("{{{k}}}"), v);
        }
        Some(legend)
    }

    /// The line as PromQL, with the dashboard variables of [`crate::grafana::sel`].
    pub fn promql(&self) -> String {
        let matchers: Vec<String> = self
            .only
            .iter()
            .map(|(k, v)| match v.strip_prefix('!') {
                Some(not) => format!("{k}!=\"{not}\""),
                None => format!("{k}=\"{v}\""),
            })
            .collect();
        let matchers = matchers.join(",");
        let by = self.by.join(", ");
        let rate = |metric: &str| {
            format!(
                "sum by ({by}) (rate({}[$__rate_interval]))",
                crate::grafana::sel(metric, &matchers)
            )
        };
        match self.take {
            Rate => rate(self.metric),
            Value => format!(
                "sum by ({by}) ({})",
                crate::grafana::sel(self.metric, &matchers)
            ),
            Quantile(q) => {
                let le = if by.is_empty() {
                    "le".to_owned()
                } else {
                    format!("le, {by}")
                };
                format!(
                    "histogram_quantile({q}, sum by ({le}) (rate({}[$__rate_interval])))",
                    crate::grafana::sel(&format!("{}_bucket", self.metric), &matchers)
                )
            }
            Per(other) => format!("{} / {}", rate(self.metric), rate(other)),
        }
    }

    /// The legend as Grafana writes it: `{{label}}`.
    pub fn grafana_legend(&self) -> String {
        let mut legend = self.legend.to_owned();
        for k in self.by {
            legend = legend.replace(&format!("{{{k}}}"), &format!("{{{{{k}}}}}"));
        }
        legend
    }
}

/// The labels of a series name `metric{k="v",…}` (none without braces); `None` if malformed.
fn parse_labels(name: &str) -> Option<Vec<(&str, String)>> {
    let Some(open) = name.find('{') else {
        return Some(Vec::new());
    };
    let inner = name[open + 1..].strip_suffix('}')?;
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let end = after.find('"')?;
        out.push((key, after[..end].to_owned()));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// The series of `names` that panel `p` draws, with their legends, in the panel's line order.
pub fn members<'n>(p: &Panel, names: &[&'n str]) -> Vec<(&'n str, String)> {
    let mut out = Vec::new();
    for l in p.lines {
        for n in names.iter().filter(|n| n.starts_with(l.metric)) {
            if let Some(legend) = l.legend_of(n) {
                out.push((*n, legend));
            }
        }
    }
    out
}

/// A reading of a metric, as its recorder holds it.
#[derive(Debug, Clone, Copy)]
pub enum Reading<'a> {
    /// A counter's or gauge's value.
    Number(f64),
    /// A histogram's cumulative counts per bucket (`bounds` upper edges, then +Inf).
    Buckets(&'a [f64], &'a [u64]),
}

/// What readings are handed to: `(metric, labels, reading)`.
pub type ReadingVisitor<'a> = dyn FnMut(&str, &[(&str, &str)], Reading<'_>) + 'a;

/// How the history keeps a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A cumulative count: the history keeps its rate.
    Counter,
    /// A value as it is.
    Gauge,
}

/// One series' sum over the samples of one second, and what the second before ended with.
#[derive(Debug)]
struct Sum {
    line: usize,
    /// Whether a reading came this second.
    seen: bool,
    value: f64,
    other: f64,
    buckets: Vec<u64>,
    bounds: &'static [f64],
    /// The cumulative counts the last second ended with: `[value, other]` for a ratio, the
    /// buckets for a quantile; empty before the first.
    before: Vec<f64>,
}

/// Reduces one second's readings to the panels' series; keeps what the next second's
/// quantiles and ratios are taken against. See the module docs.
#[derive(Debug)]
pub struct Reducer {
    lines: Vec<&'static Line>,
    /// Line indices by the metric they read, and whether as the `Per` denominator.
    by_metric: Map<&'static str, Vec<(usize, bool)>>,
    /// The metric of the last reading and its lines: readings come metric by metric, so most
    /// find their lines without a lookup.
    last: (String, Vec<(usize, bool)>),
    /// Every series met, with its name; kept from second to second, so a second allocates
    /// nothing once every series is known.
    sums: Vec<(String, Sum)>,
    /// Where each series is in `sums`, by name.
    index: Map<String, usize>,
    /// By line: the place in `sums` of its one series, for lines whose series does not depend
    /// on a reading's labels (no `by`): found without making its name or hashing it.
    fixed: Vec<Option<usize>>,
    name: String,
}

impl Reducer {
    /// The place in `sums` of the series `name` of line `line`, made the first time.
    fn slot(&mut self, line: usize, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.sums.len();
        self.sums.push((
            name.to_owned(),
            Sum {
                line,
                seen: false,
                value: 0.0,
                other: 0.0,
                buckets: Vec::new(),
                bounds: &[],
                before: Vec::new(),
            },
        ));
        self.index.insert(name.to_owned(), i);
        i
    }
}

impl Default for Reducer {
    fn default() -> Self {
        let lines: Vec<&'static Line> = PANELS.iter().flat_map(|p| p.lines).collect();
        let mut by_metric: Map<&'static str, Vec<(usize, bool)>> = Map::default();
        for (i, l) in lines.iter().enumerate() {
            // Lines drawn by two panels are one series: reduce each once.
            if lines[..i].contains(l) {
                continue;
            }
            by_metric.entry(l.metric).or_default().push((i, false));
            if let Per(other) = l.take {
                by_metric.entry(other).or_default().push((i, true));
            }
        }
        let mut r = Reducer {
            fixed: vec![None; lines.len()],
            lines,
            by_metric,
            last: (String::new(), Vec::new()),
            sums: Vec::new(),
            index: Map::default(),
            name: String::new(),
        };
        for i in 0..r.lines.len() {
            let line = r.lines[i];
            if line.by.is_empty() {
                let mut name = String::new();
                line.series(&[], &mut name);
                r.fixed[i] = Some(r.slot(i, &name));
            }
        }
        r
    }
}

impl Reducer {
    /// Adds a reading of `metric{labels}` to the second being reduced.
    pub fn add(&mut self, metric: &str, labels: &[(&str, &str)], reading: Reading<'_>) {
        if self.last.0 != metric {
            self.last.0.clear();
            self.last.0.push_str(metric);
            self.last.1.clear();
            if let Some(lines) = self.by_metric.get(metric) {
                self.last.1.extend_from_slice(lines);
            }
        }
        // Taken for the loop, and put back: `slot` needs the reducer.
        let lines = std::mem::take(&mut self.last.1);
        for &(i, denominator) in &lines {
            let line = self.lines[i];
            if !line.matches(labels) {
                continue;
            }
            let slot = match self.fixed[i] {
                Some(slot) => slot,
                None => {
                    let mut name = std::mem::take(&mut self.name);
                    line.series(labels, &mut name);
                    let slot = self.slot(i, &name);
                    self.name = name;
                    slot
                }
            };
            let sum = &mut self.sums[slot].1;
            if !sum.seen {
                sum.seen = true;
                sum.value = 0.0;
                sum.other = 0.0;
                sum.buckets.iter_mut().for_each(|b| *b = 0);
            }
            match reading {
                Reading::Number(v) if denominator => sum.other += v,
                Reading::Number(v) => sum.value += v,
                Reading::Buckets(bounds, counts) => {
                    if sum.buckets.len() != counts.len() {
                        sum.buckets = vec![0; counts.len()];
                    }
                    if sum.bounds.is_empty() {
                        sum.bounds = catalog::find(metric).map_or(&[][..], |m| m.buckets);
                    }
                    debug_assert_eq!(sum.bounds, bounds);
                    for (b, c) in sum.buckets.iter_mut().zip(counts) {
                        *b += c;
                    }
                }
            }
        }
        self.last.1 = lines;
    }

    /// The second's series, each with how the history keeps it; quantiles and ratios only for
    /// series with observations in the second. A series with no reading this second is left
    /// out.
    pub fn finish(&mut self, out: &mut dyn FnMut(&str, Stored, f64)) {
        for (name, sum) in &mut self.sums {
            let name = name.as_str();
            if !std::mem::take(&mut sum.seen) {
                continue;
            }
            let line = self.lines[sum.line];
            match line.take {
                Rate => out(name, Stored::Counter, sum.value),
                Value => out(name, Stored::Gauge, sum.value),
                Per(_) => {
                    if let [v, o] = sum.before[..] {
                        let (dv, d_o) = (sum.value - v, sum.other - o);
                        if d_o > 0.0 && dv >= 0.0 {
                            out(name, Stored::Gauge, dv / d_o);
                        }
                    }
                    sum.before.clear();
                    sum.before.extend([sum.value, sum.other]);
                }
                Quantile(q) => {
                    // A histogram is tapped from zero as it is registered, and read every
                    // second: what one holds when first seen was observed since the last read.
                    if sum.before.len() != sum.buckets.len() {
                        sum.before = vec![0.0; sum.buckets.len()];
                    }
                    for (b, n) in sum.before.iter_mut().zip(&sum.buckets) {
                        *b = *n as f64 - *b;
                    }
                    // `before` holds the deltas now; then the counts, for the next second.
                    if let Some(v) = quantile(q, sum.bounds, &sum.before) {
                        out(name, Stored::Gauge, v);
                    }
                    for (b, n) in sum.before.iter_mut().zip(&sum.buckets) {
                        *b = *n as f64;
                    }
                }
            }
        }
    }
}

/// The `q` quantile of observations counted per bucket (`counts[i]` in `(bounds[i-1],
/// bounds[i]]`, the last one above every bound), interpolated linearly inside its bucket from
/// 0 as Prometheus' `histogram_quantile` does; in the last bucket, the highest bound. `None`
/// with no observations, or counts that went down (a restart).
pub fn quantile(q: f64, bounds: &[f64], counts: &[f64]) -> Option<f64> {
    if counts.iter().any(|c| *c < 0.0) || counts.len() != bounds.len() + 1 {
        return None;
    }
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut below = 0.0;
    for (i, c) in counts.iter().enumerate() {
        if below + c >= rank && *c > 0.0 {
            let Some(upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            return Some(lower + (upper - lower) * (rank - below) / c);
        }
        below += c;
    }
    bounds.last().copied()
}

/// Every panel reads catalog metrics of the right kind: checked by the tests.
pub fn check() -> Result<(), String> {
    let mut ids = Vec::new();
    for p in PANELS {
        if ids.contains(&p.id) {
            return Err(format!("panel {}: a second panel of that id", p.id));
        }
        ids.push(p.id);
        for l in p.lines {
            for m in l.metrics() {
                let metric = catalog::find(m)
                    .ok_or_else(|| format!("panel {}: {m} is not in the catalog", p.id))?;
                let ok = match (l.take, metric.kind) {
                    (Rate | Per(_), kind) => kind == Kind::Counter,
                    (Value, kind) => kind == Kind::Gauge,
                    (Quantile(_), kind) => kind == Kind::Histogram,
                };
                if !ok {
                    return Err(format!(
                        "panel {}: {m} is a {:?}, not for {:?}",
                        p.id, metric.kind, l.take
                    ));
                }
                for label in l.by.iter().chain(l.only.iter().map(|(k, _)| k)) {
                    if !metric.labels.contains(label) {
                        return Err(format!("panel {}: {m} has no label {label}", p.id));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_reads_catalog_metrics_of_the_right_kind() {
        assert_eq!(check(), Ok(()));
    }

    #[test]
    fn quantiles_interpolate_as_histogram_quantile_does() {
        let bounds = [0.1, 0.2, 0.5];
        // 10 below 0.1, 10 in (0.1, 0.2], none above.
        assert_eq!(quantile(0.5, &bounds, &[10.0, 10.0, 0.0, 0.0]), Some(0.1));
        let p75 = quantile(0.75, &bounds, &[10.0, 10.0, 0.0, 0.0]).unwrap_or(0.0);
        assert!((p75 - 0.15).abs() < 1e-12, "{p75}");
        assert_eq!(quantile(0.99, &bounds, &[0.0, 0.0, 0.0, 5.0]), Some(0.5));
        assert_eq!(quantile(0.5, &bounds, &[0.0; 4]), None);
        assert_eq!(quantile(0.5, &bounds, &[-1.0, 2.0, 0.0, 0.0]), None);
    }

    #[test]
    fn a_second_reduces_to_sums_by_label_quantiles_and_ratios_of_its_deltas() {
        let mut r = Reducer::default();
        let bounds = catalog::LATENCY_BUCKETS;
        let mut buckets = vec![0_u64; bounds.len() + 1];
        let second = |r: &mut Reducer, buckets: &[u64], cpu: f64, reads: f64| {
            for cpu_n in ["0", "1"] {
                for mode in ["user", "idle"] {
                    let labels = [("cpu", cpu_n), ("mode", mode)];
                    r.add("node_cpu_seconds_total", &labels, Reading::Number(cpu));
                }
            }
            r.add(
                "node_disk_read_time_seconds_total",
                &[("device", "sda")],
                Reading::Number(reads * 0.002),
            );
            r.add(
                "node_disk_reads_completed_total",
                &[("device", "sda")],
                Reading::Number(reads),
            );
            let labels = [("stage", "total"), ("source", "falco")];
            r.add(LATENCY, &labels, Reading::Buckets(bounds, buckets));
            let mut out = Vec::new();
            r.finish(&mut |n, s, v| out.push((n.to_owned(), s, v)));
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        };
        let first = second(&mut r, &buckets, 10.0, 100.0);
        // Counters go to the history as sums; ratios need a second before, quantiles events.
        let counter = |n: &str, v| (n.to_owned(), Stored::Counter, v);
        assert_eq!(
            first,
            [
                counter(r#"node_cpu_seconds_total{mode="user"}"#, 20.0),
                counter(r#"node_disk_reads_completed_total{device="sda"}"#, 100.0),
            ]
        );
        buckets[3] = 100; // 100 events in (0.5, 1] ms
        let next = second(&mut r, &buckets, 11.0, 150.0);
        let get = |name: &str| next.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v);
        assert_eq!(get(r#"node_cpu_seconds_total{mode="user"}"#), Some(22.0));
        let latency = get(r#"zen_watcher_event_processing_duration_seconds:p50{stage="total"}"#);
        assert!(
            latency.is_some_and(|v| (v - 0.00075).abs() < 1e-9),
            "{latency:?}"
        );
        let disk = get(
            r#"node_disk_read_time_seconds_total/node_disk_reads_completed_total{device="sda"}"#,
        );
        assert!(disk.is_some_and(|v| (v - 0.002).abs() < 1e-12), "{disk:?}");
        // No events in a second: no latency point, rather than a zero.
        let idle = second(&mut r, &buckets, 12.0, 150.0);
        assert!(idle.iter().all(|(n, _, _)| !n.contains(":p")), "{idle:?}");
    }

    #[test]
    fn members_are_found_by_name_with_their_legends() {
        let names = [
            r#"zen_watcher_events_total{source="falco"}"#,
            r#"zen_watcher_events_total{severity="high"}"#,
            "zen_watcher_events_total",
            r#"node_cpu_seconds_total{mode="user"}"#,
        ];
        let sources = find("sources").map(|p| members(p, &names));
        assert_eq!(
            sources,
            Some(vec![(names[0], "falco".to_owned())]),
            "only the by-source series"
        );
        let outcome = find("throughput").map(|p| members(p, &names));
        assert_eq!(outcome, Some(vec![(names[2], "received".to_owned())]));
        let cpu = find("cpu").map(|p| members(p, &names));
        assert_eq!(cpu, Some(vec![(names[3], "user".to_owned())]));
    }

    #[test]
    fn lines_read_as_promql() {
        let latency = find("latency").map(|p| p.lines[1].promql());
        assert_eq!(
            latency.as_deref(),
            Some(
                r#"histogram_quantile(0.95, sum by (le) (rate(zen_watcher_event_processing_duration_seconds_bucket{cluster=~"$cluster",source=~"$source",stage="total"}[$__rate_interval])))"#
            )
        );
        let cpu = find("cpu").map(|p| (p.lines[0].promql(), p.lines[0].grafana_legend()));
        assert_eq!(
            cpu,
            Some((
                r#"sum by (mode) (rate(node_cpu_seconds_total{cluster=~"$cluster",mode!="idle"}[$__rate_interval]))"#.to_owned(),
                "{{mode}}".to_owned()
            ))
        );
    }
}
