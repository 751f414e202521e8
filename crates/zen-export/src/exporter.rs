//! The Prometheus recorder behind the `metrics` facade, configured from the catalog.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Label, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use zen_collect::collection::Sample;
use zen_collect::process::{ProcessReader, ProcessSample};

use crate::catalog::{CATALOG, Kind, Metric, Scope};
use crate::tap::{Tap, Tapped};

/// How often histograms are drained into their buckets between scrapes: every second, or every
/// [`UPKEEP_BUSY`] while values pile up. Until drained, every value recorded is kept (8 bytes;
/// `record_many` keeps as many copies as it counts), and each event is recorded by four stages.
/// Flat out at about 300,000 events/s over 2,000,000 events, the daemon's peak RSS was 170 MB
/// draining every 5 s, 101-112 MB every second and 91-99 MB every 250 ms (docs/benchmarks.md,
/// "End to end"); the draining costs the same in all. Idle, draining four times a second instead
/// of once cost 0.03 % of a core more, for nothing.
const UPKEEP_IDLE: Duration = Duration::from_secs(1);

/// See [`UPKEEP_IDLE`].
const UPKEEP_BUSY: Duration = Duration::from_millis(250);

/// A drain that took longer than this had values to drain: the next comes sooner. Flat out, a
/// drain every 250 ms (some 300,000 values) took 1.3-6 ms; idle ones take 70-320 µs.
const BUSY_DRAIN: Duration = Duration::from_millis(1);

/// How long to wait before the next drain, after one that took `took`.
fn next_upkeep(took: Duration) -> Duration {
    if took > BUSY_DRAIN {
        UPKEEP_BUSY
    } else {
        UPKEEP_IDLE
    }
}

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("histogram buckets for {name}: {message}")]
    Buckets { name: &'static str, message: String },
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
    #[error("could not start the metrics upkeep thread: {0}")]
    Thread(std::io::Error),
}

/// A recorder configured from the catalog (buckets for every histogram), with the panels'
/// [`Tap`] on it, not installed: for benchmarks that measure what recording costs.
/// [`Exporter::install`] installs one.
pub fn recorder() -> Result<Tapped, ExporterError> {
    let mut builder = PrometheusBuilder::new().upkeep_timeout(UPKEEP_IDLE);
    for m in CATALOG.iter().filter(|m| m.kind == Kind::Histogram) {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(m.name.to_owned()), m.buckets)
            .map_err(|e| ExporterError::Buckets {
                name: m.name,
                message: e.to_string(),
            })?;
    }
    Ok(Tapped::new(builder.build_recorder()))
}

/// The installed exporter: renders `/metrics`.
#[derive(Debug)]
pub struct Exporter {
    handle: PrometheusHandle,
    tap: Arc<Tap>,
    process: Mutex<ProcessReader>,
    collected: Option<Arc<Mutex<Sample>>>,
}

impl Exporter {
    /// Installs the recorder for the whole process: catalog buckets for every histogram, the
    /// catalog's help texts, every `initial` series at zero, `zen_watcher_build_info`, and a
    /// thread that drains histograms every few seconds. `proc_root` is where `/proc` is
    /// (`/host/proc` inside a container that reads its host's).
    pub fn install(proc_root: impl Into<PathBuf>) -> Result<Exporter, ExporterError> {
        let recorder = recorder()?;
        let handle = recorder.handle();
        let tap = recorder.tap();
        metrics::set_global_recorder(recorder).map_err(|_| ExporterError::AlreadyInstalled)?;
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("zen-metrics-upkeep".into())
            .spawn(move || {
                let mut wait = UPKEEP_IDLE;
                loop {
                    std::thread::sleep(wait);
                    let started = std::time::Instant::now();
                    upkeep.run_upkeep();
                    wait = next_upkeep(started.elapsed());
                }
            })
            .map_err(ExporterError::Thread)?;
        for m in CATALOG.iter().filter(|m| m.scope == Scope::Daemon) {
            describe(m);
            for values in m.initial {
                register(m, values);
            }
        }
        metrics::gauge!(
            "zen_watcher_build_info",
            "version" => env!("CARGO_PKG_VERSION"),
            "os" => std::env::consts::OS,
            "arch" => std::env::consts::ARCH,
        )
        .set(1.0);
        Ok(Exporter {
            handle,
            tap,
            process: Mutex::new(ProcessReader::new(proc_root)),
            collected: None,
        })
    }

    /// Renders the collectors' latest sample too (zen-collect's threads keep it).
    pub fn with_collection(mut self, sample: Arc<Mutex<Sample>>) -> Self {
        self.collected = Some(sample);
        self
    }

    /// The panels' readings: the tapped metrics, then the collectors' latest sample.
    pub fn readings(&self, f: &mut crate::panels::ReadingVisitor<'_>) {
        self.tap.visit(f);
        if let Some(collected) = &self.collected
            && let Ok(sample) = collected.lock()
        {
            sample.visit(&mut |name, labels, value| {
                f(name, labels, crate::panels::Reading::Number(value));
            });
        }
    }

    /// The readings of the metrics the advisor reads besides the panels' ([`crate::tap::ADVISED`]).
    pub fn advised(&self, f: &mut crate::panels::ReadingVisitor<'_>) {
        self.tap.visit_advised(f);
    }

    /// The text exposition of every metric, with the process' own figures read now.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        let sample = self
            .process
            .lock()
            .map_err(|_| "the process reader failed earlier".to_owned())
            .and_then(|mut r| r.sample().map_err(|e| e.to_string()));
        match sample {
            Ok(s) => render_process(&mut text, &s),
            // A comment is valid exposition text; the metrics are absent, as a scraper expects.
            Err(e) => {
                let _ = writeln!(text, "# process metrics unavailable: {e}");
            }
        }
        if let Some(collected) = &self.collected
            && let Ok(sample) = collected.lock()
        {
            let mut w = Readings::new(&mut text);
            sample.visit(&mut |name, labels, value| w.reading(name, labels, value));
        }
        text
    }
}

impl Exporter {
    /// Every sample of the metrics `wanted` accepts, as `/metrics` would show them now (the
    /// facade's and the collectors'; not the `process_*` ones): what the in-process evaluator
    /// reads, so that it sees what Prometheus scrapes.
    pub fn samples(&self, wanted: &dyn Fn(&str) -> bool, f: &mut zen_collect::host::Visitor<'_>) {
        let text = self.handle.render();
        let mut labels: Vec<(&str, String)> = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            if !wanted(name) {
                continue;
            }
            if let Some(value) = parse_sample(&line[name_end..], &mut labels) {
                let borrowed: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                f(name, &borrowed, value);
            }
        }
        if let Some(collected) = &self.collected
            && let Ok(sample) = collected.lock()
        {
            sample.visit(&mut |name, labels, value| {
                if wanted(name) {
                    f(name, labels, value);
                }
            });
        }
    }
}

/// The labels and value of a sample line after its name: `{k="v",…} 1.5`; `None` if malformed.
fn parse_sample<'t>(mut rest: &'t str, labels: &mut Vec<(&'t str, String)>) -> Option<f64> {
    labels.clear();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key, value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?;
    match value {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        v => v.parse().ok(),
    }
}

fn describe(m: &Metric) {
    let unit = match m.unit {
        "seconds" => Some(Unit::Seconds),
        "bytes" => Some(Unit::Bytes),
        _ => None,
    };
    match (m.kind, unit) {
        (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
        (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
        (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
        (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
        (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
        (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        // Only zen-collect's readings are untyped; they do not pass through the facade.
        (Kind::Untyped, _) => {}
    }
}

/// Registers one series of `m` at zero.
fn register(m: &Metric, values: &[&'static str]) {
    let labels: Vec<Label> = m
        .labels
        .iter()
        .zip(values)
        .map(|(k, v)| Label::new(*k, *v))
        .collect();
    match m.kind {
        Kind::Counter => metrics::counter!(m.name, labels).increment(0),
        Kind::Gauge => metrics::gauge!(m.name, labels).increment(0.0),
        Kind::Histogram => drop(metrics::histogram!(m.name, labels)),
        Kind::Untyped => {}
    }
}

fn render_process(text: &mut String, s: &ProcessSample) {
    let mut w = Readings::new(text);
    w.reading(
        "process_cpu_seconds_total",
        &[],
        s.cpu_user_seconds + s.cpu_system_seconds,
    );
    w.reading(
        "process_resident_memory_bytes",
        &[],
        s.resident_memory_bytes as f64,
    );
    w.reading(
        "process_virtual_memory_bytes",
        &[],
        s.virtual_memory_bytes as f64,
    );
    w.reading("process_open_fds", &[], s.open_fds as f64);
    w.reading("process_max_fds", &[], s.max_fds as f64);
    w.reading("process_start_time_seconds", &[], s.start_time_seconds);
    w.reading("process_threads", &[], s.threads as f64);
}

/// Writes readings (name, labels, value) in the text format: a `# HELP` and `# TYPE` from the
/// catalog before the first sample of each name. Samples of one name must come together.
struct Readings<'a> {
    text: &'a mut String,
    last: String,
}

impl<'a> Readings<'a> {
    fn new(text: &'a mut String) -> Self {
        Readings {
            text,
            last: String::new(),
        }
    }

    fn reading(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if self.last != name {
            // Not in the catalog: shown untyped, so the emission test sees it and fails.
            let (help, kind) = match crate::catalog::find(name) {
                Some(m) => match m.name.split_once("{}") {
                    Some((prefix, suffix)) => {
                        let member = &name[prefix.len()..name.len() - suffix.len()];
                        (m.help.replace("{}", member), m.kind.as_str())
                    }
                    None => (m.help.to_owned(), m.kind.as_str()),
                },
                None => ("Not in the metric catalog.".to_owned(), "untyped"),
            };
            let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            self.last.clear();
            self.last.push_str(name);
        }
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{UPKEEP_BUSY, UPKEEP_IDLE, next_upkeep, parse_sample};

    #[test]
    fn drains_come_sooner_while_values_pile_up() {
        assert_eq!(next_upkeep(Duration::from_micros(100)), UPKEEP_IDLE);
        assert_eq!(next_upkeep(Duration::from_millis(3)), UPKEEP_BUSY);
        assert!(UPKEEP_BUSY < UPKEEP_IDLE);
    }

    #[test]
    fn sample_lines_parse_with_escapes() {
        let mut labels = Vec::new();
        let v = parse_sample(r#"{a="x",b="q\"uo\\te\n"} 2.5"#, &mut labels);
        assert_eq!(v, Some(2.5));
        assert_eq!(
            labels,
            [("a", "x".to_owned()), ("b", "q\"uo\\te\n".to_owned())]
        );
        assert_eq!(parse_sample(" +Inf", &mut labels), Some(f64::INFINITY));
        assert!(labels.is_empty());
        assert_eq!(parse_sample(r#"{a="unterminated} 1"#, &mut labels), None);
        assert_eq!(parse_sample("{a=1} 1", &mut labels), None);
    }
}
