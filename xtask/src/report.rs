//! Benchmark reports: what `cargo xtask bench`, `bench e2e` and `bench collect` measured, as
//! JSON in `target/bench-reports/` (the machine, the commit, each figure with its unit and
//! spread), and their rendering: `cargo xtask bench report` copies the newest report of each
//! component to `docs/bench/reports/` and renders those copies into the tables of
//! `docs/benchmarks.md` and an SVG chart per scenario in `docs/bench/`. The copies are committed,
//! so `cargo xtask gen --check` (and its test) fails when the rendering is stale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One run of a benchmark command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Report {
    /// `criterion`, `e2e` or `collect`.
    pub(crate) kind: String,
    /// The command that produced it.
    pub(crate) command: String,
    pub(crate) environment: Environment,
    pub(crate) tables: Vec<Table>,
}

/// Where a report was produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Environment {
    pub(crate) cpu_model: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) commit: String,
    /// Whether the working tree held changes the commit does not, outside `docs/`.
    pub(crate) modified: bool,
    /// UTC, RFC 3339.
    pub(crate) date: String,
    pub(crate) rustc: String,
}

/// A table of figures: rows (scenarios or benchmarks) by figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Table {
    /// The section of docs/benchmarks.md it belongs to: a crate's name, `e2e` or `collect`.
    pub(crate) component: String,
    pub(crate) name: String,
    /// What `low` and `high` of its figures are.
    pub(crate) spread: String,
    pub(crate) chart: Chart,
    pub(crate) rows: Vec<Row>,
}

/// How a table is drawn.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Chart {
    /// A chart per row (a scenario), a panel per unit, a bar per figure.
    PerRow,
    /// One chart, a panel per figure, a bar per row (the benchmarks of a group side by side).
    PerTable,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) figures: Vec<Figure>,
}

/// One measured figure and its spread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Figure {
    pub(crate) name: String,
    /// `ns` (shown in the fitting unit), `events/s`, `MiB/s`, `ms`, `µs`, `MB`, `%`…
    pub(crate) unit: String,
    /// The median of the runs, or criterion's estimate.
    pub(crate) value: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// Runs (rounds) behind it; criterion's samples for criterion.
    pub(crate) samples: usize,
}

impl Figure {
    /// The median of `values` with their lowest and highest.
    pub(crate) fn of(name: &str, unit: &str, values: &[f64]) -> Figure {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Figure {
            name: name.to_owned(),
            unit: unit.to_owned(),
            value: median(values).unwrap_or(f64::NAN),
            low: if values.is_empty() { f64::NAN } else { low },
            high: if values.is_empty() { f64::NAN } else { high },
            samples: values.len(),
        }
    }
}

/// The median of `values`, if any.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Environment {
    /// This machine and working tree, now.
    pub(crate) fn here() -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or("unknown", |(_, m)| m.trim())
            .to_owned();
        Environment {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            commit: output("git", &["rev-parse", "HEAD"]),
            modified: !output(
                "git",
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ".",
                    ":!docs",
                ],
            )
            .is_empty(),
            date: output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
            rustc: output("rustc", &["--version"]),
        }
    }
}

/// The target directory cargo builds in.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), Into::into)
}

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn reports_dir() -> PathBuf {
    target_dir().join("bench-reports")
}

/// Where the reports rendered in docs/benchmarks.md are kept, one per component.
const KEPT: &str = "docs/bench/reports";

/// Writes `report` to `target/bench-reports/<kind>-<date>.json`; its path.
pub(crate) fn write(report: &Report) -> Result<PathBuf> {
    let dir = reports_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp: String = report
        .environment
        .date
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let path = dir.join(format!("{}-{stamp}.json", report.kind));
    std::fs::write(&path, serde_json::to_string_pretty(report)? + "\n")?;
    println!("report written to {}", path.display());
    Ok(path)
}

fn read(path: &Path) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a benchmark report", path.display()))
}

/// The reports in `dir` (`*.json`), by file name.
fn reports_in(dir: &Path) -> Result<Vec<Report>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read(p)).collect()
}

/// `cargo xtask bench report`: keeps, per component, the newest of the reports in
/// `target/bench-reports/` and the kept one (but those of runs filtered with `-- FILTER`, whose
/// tables are partial); answers the components replaced.
pub(crate) fn keep_latest() -> Result<Vec<String>> {
    let kept_dir = root().join(KEPT);
    let mut kept: BTreeMap<String, Report> = reports_in(&kept_dir)?
        .into_iter()
        .filter_map(|r| Some((r.tables.first()?.component.clone(), r)))
        .collect();
    let mut replaced = Vec::new();
    for report in reports_in(&reports_dir())? {
        // A run of some benchmarks only (`-- FILTER`) would leave its tables partial.
        if report.command.contains(" -- ") {
            continue;
        }
        for (component, tables) in by_component(&report.tables) {
            if kept
                .get(&component)
                .is_some_and(|k| k.environment.date > report.environment.date)
            {
                continue;
            }
            let one = Report {
                tables,
                ..report.clone()
            };
            kept.insert(component.clone(), one);
            if !replaced.contains(&component) {
                replaced.push(component);
            }
        }
    }
    std::fs::create_dir_all(&kept_dir)?;
    for component in &replaced {
        let path = kept_dir.join(format!("{component}.json"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&kept[component])? + "\n",
        )?;
    }
    Ok(replaced)
}

fn by_component(tables: &[Table]) -> BTreeMap<String, Vec<Table>> {
    let mut out: BTreeMap<String, Vec<Table>> = BTreeMap::new();
    for t in tables {
        out.entry(t.component.clone()).or_default().push(t.clone());
    }
    out
}

/// The files the kept reports render to: the SVG charts, and docs/benchmarks.md with each
/// `<!-- bench-report COMPONENT -->` region filled.
pub(crate) fn rendered() -> Result<Vec<(String, String)>> {
    let reports = reports_in(&root().join(KEPT))?;
    let mut out = Vec::new();
    let mut regions = BTreeMap::new();
    for report in &reports {
        let Some(component) = report.tables.first().map(|t| t.component.clone()) else {
            continue;
        };
        let (markdown, charts) = render(report);
        regions.insert(component, markdown);
        out.extend(charts);
    }
    regions.insert("targets".to_owned(), targets(&reports));
    let path = "docs/benchmarks.md";
    let doc = std::fs::read_to_string(root().join(path))?;
    out.push((path.to_owned(), fill(path, &doc, &regions)?));
    Ok(out)
}

const OPEN: &str = "<!-- bench-report ";
const CLOSE: &str = "<!-- /bench-report -->";

/// `doc` (the file `name`) with every report region replaced by its component's rendering.
pub(crate) fn fill(name: &str, doc: &str, regions: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(at) = rest.find(OPEN) {
        let line_end = rest[at..].find('\n').map_or(rest.len(), |n| at + n + 1);
        let component = rest[at + OPEN.len()..line_end]
            .trim_end()
            .trim_end_matches("-->")
            .trim();
        let Some(close) = rest[line_end..].find(CLOSE) else {
            bail!("{name}: the region of `{component}` has no `{CLOSE}`");
        };
        out.push_str(&rest[..line_end]);
        match regions.get(component) {
            Some(markdown) => out.push_str(markdown),
            None => out.push_str(&format!(
                "No report of `{component}` is kept in {KEPT}/ yet.\n"
            )),
        }
        rest = &rest[line_end + close..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A target: the figure it bounds (in a component's table, the first row whose name starts
/// with `row`), and the bound in the figure's unit.
struct Target {
    component: &'static str,
    table: &'static str,
    row: &'static str,
    figure: &'static str,
    unit: &'static str,
    bound: Bound,
}

#[derive(Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// The targets the issues set, with the figures that answer them.
const TARGETS: [Target; 25] = {
    use Bound::{AtLeast, AtMost};
    const EVENTS: (&str, &str) = ("throughput", "events/s");
    const TIME: (&str, &str) = ("time", "ns");
    const CPU: (&str, &str) = ("collectors", "% of a core");
    const fn t(
        component: &'static str,
        table: &'static str,
        row: &'static str,
        (figure, unit): (&'static str, &'static str),
        bound: Bound,
    ) -> Target {
        Target {
            component,
            table,
            row,
            figure,
            unit,
            bound,
        }
    }
    [
        t(
            "e2e",
            "scenarios",
            "batches of 100",
            ("settled", "events/s"),
            AtLeast(300_000.0),
        ),
        t(
            "e2e",
            "scenarios",
            "single events",
            ("accepted", "events/s"),
            AtLeast(40_000.0),
        ),
        t(
            "e2e",
            "scenarios",
            "10,000 events/s",
            ("p99", "ms"),
            AtMost(5.0),
        ),
        t("e2e", "memory", "daemon", ("idle RSS", "MB"), AtMost(15.0)),
        t("e2e", "memory", "daemon", ("peak RSS", "MB"), AtMost(100.0)),
        t(
            "zen-model",
            "normalize/events",
            "falco (one alert",
            EVENTS,
            AtLeast(500_000.0),
        ),
        t(
            "zen-model",
            "normalize/events",
            "falco (NDJSON",
            EVENTS,
            AtLeast(500_000.0),
        ),
        t("zen-dedup", "dedup", "check", EVENTS, AtLeast(10_000_000.0)),
        t(
            "zen-filter",
            "filter",
            "three-clause",
            EVENTS,
            AtLeast(10_000_000.0),
        ),
        t(
            "zen-config-cache",
            "config-cache",
            "hit",
            TIME,
            AtMost(50.0),
        ),
        t(
            "zen-config-cache",
            "config-cache",
            "hit, another",
            TIME,
            AtMost(50.0),
        ),
        t(
            "zen-pipeline",
            "one core",
            "parsed events",
            EVENTS,
            AtLeast(1_000_000.0),
        ),
        t(
            "zen-pipeline",
            "one core",
            "raw JSON",
            EVENTS,
            AtLeast(400_000.0),
        ),
        t("zen-export", "render", "", TIME, AtMost(5_000_000.0)),
        t(
            "zen-history",
            "history",
            "record one sample",
            TIME,
            AtMost(30_000.0),
        ),
        t(
            "zen-history",
            "history",
            "query 20 series over 30 days",
            TIME,
            AtMost(50e6),
        ),
        t(
            "zen-advisor",
            "advisor",
            "pass over 300 series",
            TIME,
            AtMost(5e6),
        ),
        t(
            "postgres",
            "batches of 100, flat out",
            "PostgreSQL, 1 daemon",
            ("settled", "events/s"),
            AtLeast(100_000.0),
        ),
        t(
            "kube",
            "initial list",
            "10,000 reports",
            ("time to store", "s"),
            AtMost(30.0),
        ),
        t(
            "kube",
            "initial list",
            "10,000 reports",
            ("peak RSS", "MB"),
            AtMost(200.0),
        ),
        t(
            "kube",
            "steady state",
            "20 report changes",
            ("Kubernetes side", "% of a core"),
            AtMost(2.0),
        ),
        t(
            "kube",
            "configuration",
            "20 SourcePolicy changes",
            ("change to status written, slowest", "ms"),
            AtMost(100.0),
        ),
        t("collect", "collectors", "host, every 1s", CPU, AtMost(0.02)),
        t(
            "collect",
            "collectors",
            "host, every 1s",
            ("node_exporter ÷ collectors", "×"),
            AtLeast(20.0),
        ),
        t(
            "collect",
            "collectors",
            "namespace, every 1s",
            CPU,
            AtMost(0.1),
        ),
    ]
};

/// The targets' table: each target, the figure that answers it, and whether it is met.
fn targets(reports: &[Report]) -> String {
    let mut md = String::from(
        "| component | table | row | figure | target | now | met |\n|---|---|---|---|---:|---:|---|\n",
    );
    for target in &TARGETS {
        let found = reports
            .iter()
            .flat_map(|r| &r.tables)
            .filter(|t| t.component == target.component && t.name.starts_with(target.table))
            .flat_map(|t| &t.rows)
            .find(|r| r.name.starts_with(target.row))
            .and_then(|r| {
                let f = r
                    .figures
                    .iter()
                    .find(|f| f.name == target.figure && f.unit == target.unit)?;
                Some((r, f))
            });
        let (row, now, met) = match found {
            Some((row, f)) => {
                let met = match target.bound {
                    Bound::AtLeast(b) => f.value >= b,
                    Bound::AtMost(b) => f.value <= b,
                };
                (row.name.as_str(), cell(f), if met { "✓" } else { "✗" })
            }
            None => (target.row, "no report".to_owned(), "—"),
        };
        let (sign, bound) = match target.bound {
            Bound::AtLeast(b) => ("≥", b),
            Bound::AtMost(b) => ("≤", b),
        };
        let (divisor, suffix) = scale(target.unit, bound);
        let bound = match bound / divisor {
            b if b >= 1000.0 => number(b),
            b => b.to_string(),
        };
        let suffix = match suffix {
            "" => format!(" {}", target.unit),
            time => time.to_owned(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {row} | {} | {sign} {bound}{suffix} | {now} | {met} |",
            target.component, target.table, target.figure,
        );
    }
    md
}

fn slug(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_owned()
}

/// A report's Markdown, and its charts (path from the root, SVG).
fn render(report: &Report) -> (String, Vec<(String, String)>) {
    let env = &report.environment;
    let short: String = env.commit.chars().take(8).collect();
    let mut md = format!(
        "Run of {} at `{short}`{} by `{}`: {}, {} cores, Linux {}, {}.\n",
        env.date.get(..10).unwrap_or(&env.date),
        if env.modified { " (with changes)" } else { "" },
        report.command,
        env.cpu_model,
        env.cores,
        env.kernel,
        env.rustc,
    );
    let mut charts = Vec::new();
    for table in &report.tables {
        let _ = write!(md, "\n**{}** ({}):\n\n", table.name, table.spread);
        md.push_str(&markdown_table(table));
        let base = format!("{}-{}", table.component, slug(&table.name));
        let drawn: Vec<(String, String)> = match table.chart {
            Chart::PerTable => vec![(base, svg(&table.name, &table_panels(table)))],
            Chart::PerRow => table
                .rows
                .iter()
                .map(|row| {
                    (
                        format!("{base}-{}", slug(&row.name)),
                        svg(&row.name, &row_panels(row)),
                    )
                })
                .collect(),
        };
        md.push('\n');
        for (name, svg) in drawn {
            let _ = writeln!(md, "![{name}](bench/{name}.svg)");
            charts.push((format!("docs/bench/{name}.svg"), svg));
        }
    }
    (md, charts)
}

/// The columns of a table: each distinct figure name and unit, in order of appearance.
fn columns(table: &Table) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for f in table.rows.iter().flat_map(|r| &r.figures) {
        let key = (f.name.clone(), f.unit.clone());
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

fn markdown_table(table: &Table) -> String {
    let columns = columns(table);
    let mut md = String::from("| |");
    for (name, unit) in &columns {
        match unit.as_str() {
            "ns" => md += &format!(" {name} |"),
            _ => md += &format!(" {name}, {unit} |"),
        }
    }
    md += "\n|---|";
    md += &"---:|".repeat(columns.len());
    md.push('\n');
    for row in &table.rows {
        md += &format!("| {} |", row.name);
        for (name, unit) in &columns {
            let cell = row
                .figures
                .iter()
                .find(|f| &f.name == name && &f.unit == unit)
                .map_or("—".to_owned(), cell);
            md += &format!(" {cell} |");
        }
        md.push('\n');
    }
    md
}

/// `value (low–high)`, or the value alone when there is no spread.
fn cell(f: &Figure) -> String {
    let (scale, suffix) = scale(f.unit.as_str(), f.value);
    let v = |x: f64| number(x / scale);
    if f.low == f.high || !f.low.is_finite() || !f.high.is_finite() {
        format!("{}{suffix}", v(f.value))
    } else {
        format!("{}{suffix} ({}–{})", v(f.value), v(f.low), v(f.high))
    }
}

/// How a value of `unit` is shown: its divisor and suffix (times in ns get the fitting unit).
fn scale(unit: &str, value: f64) -> (f64, &'static str) {
    match unit {
        "ns" if value >= 1e9 => (1e9, " s"),
        "ns" if value >= 1e6 => (1e6, " ms"),
        "ns" if value >= 1e3 => (1e3, " µs"),
        "ns" => (1.0, " ns"),
        _ => (1.0, ""),
    }
}

/// Three significant digits, thousands separated: 647,000; 7.13; 0.0934.
pub(crate) fn number(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    if x.abs() >= 1000.0 {
        let digits = x.abs().log10().floor() as i32 + 1;
        let unit = 10f64.powi(digits - 3);
        let rounded = ((x / unit).round() * unit) as i64;
        let plain = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && (plain.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if x == 0.0 {
        "0".to_owned()
    } else {
        let digits = x.abs().log10().floor() as i32 + 1;
        let decimals = (3 - digits).max(0) as usize;
        format!("{x:.decimals$}")
    }
}

/// A chart's panel: bars on one scale.
struct Panel {
    title: String,
    bars: Vec<(String, Figure)>,
}

/// A row's chart: a panel per unit, a bar per figure.
fn row_panels(row: &Row) -> Vec<Panel> {
    let mut panels: Vec<Panel> = Vec::new();
    for f in &row.figures {
        match panels.iter_mut().find(|p| p.title == f.unit) {
            Some(p) => p.bars.push((f.name.clone(), f.clone())),
            None => panels.push(Panel {
                title: f.unit.clone(),
                bars: vec![(f.name.clone(), f.clone())],
            }),
        }
    }
    panels
}

/// A table's chart: a panel per figure, a bar per row.
fn table_panels(table: &Table) -> Vec<Panel> {
    columns(table)
        .into_iter()
        .map(|(name, unit)| Panel {
            title: if unit == "ns" {
                name.clone()
            } else {
                format!("{name}, {unit}")
            },
            bars: table
                .rows
                .iter()
                .filter_map(|r| {
                    let f = r
                        .figures
                        .iter()
                        .find(|f| f.name == name && f.unit == unit)?;
                    Some((r.name.clone(), f.clone()))
                })
                .collect(),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Horizontal bars, one panel under another, each bar with its spread as a whisker and its
/// value beside it.
fn svg(title: &str, panels: &[Panel]) -> String {
    // Sans-serif at 12 px is at most about 7 px a character: the labels' column fits the longest,
    // the bars take 320 px, the values what is left.
    const CHAR: f64 = 7.0;
    const BARS: f64 = 320.0;
    const BAR: f64 = 16.0;
    const STEP: f64 = 22.0;
    let widest = |texts: Vec<String>| {
        texts.iter().map(|t| t.chars().count()).max().unwrap_or(0) as f64 * CHAR + 16.0
    };
    let bars: Vec<&(String, Figure)> = panels.iter().flat_map(|p| &p.bars).collect();
    let left = widest(bars.iter().map(|(l, _)| l.clone()).collect()).max(120.0);
    let values = widest(bars.iter().map(|(_, f)| cell(f)).collect());
    let width = (left + BARS + values).max(widest(vec![title.to_owned()]) * 1.2);
    let mut body = String::new();
    let mut y = 34.0;
    for panel in panels {
        let _ = writeln!(
            body,
            r#"<text x="8" y="{:.0}" font-weight="bold">{}</text>"#,
            y + 4.0,
            escape(&panel.title)
        );
        y += 14.0;
        let top = panel
            .bars
            .iter()
            .map(|(_, f)| f.high.max(f.value))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let x = |v: f64| {
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            left + if top > 0.0 { BARS * v / top } else { 0.0 }
        };
        for (label, f) in &panel.bars {
            let mid = y + BAR / 2.0;
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 8.0,
                mid + 4.0,
                escape(label)
            );
            let _ = writeln!(
                body,
                r##"<rect x="{left:.0}" y="{y:.1}" width="{:.1}" height="{BAR:.0}" fill="#4e79a7"/>"##,
                x(f.value) - left
            );
            if f.low.is_finite() && f.high.is_finite() && f.low != f.high {
                let (l, h) = (x(f.low), x(f.high));
                let _ = writeln!(
                    body,
                    r##"<path d="M{l:.1} {mid:.1}H{h:.1}M{l:.1} {:.1}V{:.1}M{h:.1} {:.1}V{:.1}" stroke="#222" fill="none"/>"##,
                    mid - 4.0,
                    mid + 4.0,
                    mid - 4.0,
                    mid + 4.0
                );
            }
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x(f.high.max(f.value)) + 6.0,
                mid + 4.0,
                escape(&cell(f))
            );
            y += STEP;
        }
        y += 12.0;
    }
    document(width, y, title, &body)
}

/// An SVG document of `width` by `height` on white, `title` atop, `body` under it.
pub(crate) fn document(width: f64, height: f64, title: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="12">"#,
            "\n<title>{t}</title>\n",
            r##"<rect width="100%" height="100%" fill="#fff"/>"##,
            "\n",
            r#"<text x="8" y="18" font-size="14" font-weight="bold">{t}</text>"#,
            "\n{body}</svg>\n"
        ),
        w = width,
        h = height,
        t = escape(title),
        body = body
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, unit: &str, value: f64, low: f64, high: f64) -> Figure {
        Figure {
            name: name.to_owned(),
            unit: unit.to_owned(),
            value,
            low,
            high,
            samples: 3,
        }
    }

    fn table(chart: Chart) -> Table {
        Table {
            component: "e2e".to_owned(),
            name: "scenarios".to_owned(),
            spread: "median of 3 rounds, lowest–highest".to_owned(),
            chart,
            rows: vec![
                Row {
                    name: "flat out".to_owned(),
                    figures: vec![
                        figure("accepted", "events/s", 312_345.0, 290_000.0, 330_000.0),
                        figure("p99", "ms", 7.126, 6.5, 9.0),
                    ],
                },
                Row {
                    name: "ack <commit>".to_owned(),
                    figures: vec![figure("p99", "ms", 4.0, 4.0, 4.0)],
                },
            ],
        }
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(number(647_312.0), "647,000");
        assert_eq!(number(1_234_567.0), "1,230,000");
        assert_eq!(number(7.126), "7.13");
        assert_eq!(number(0.09344), "0.0934");
        assert_eq!(number(312.4), "312");
        assert_eq!(number(0.0), "0");
        assert_eq!(
            cell(&figure("t", "ns", 1550.0, 1540.0, 1560.0)),
            "1.55 µs (1.54–1.56)"
        );
    }

    #[test]
    fn a_table_has_a_column_per_figure_and_a_dash_where_a_row_lacks_one() {
        let md = markdown_table(&table(Chart::PerRow));
        assert_eq!(
            md,
            "| | accepted, events/s | p99, ms |\n|---|---:|---:|\n\
             | flat out | 312,000 (290,000–330,000) | 7.13 (6.50–9.00) |\n\
             | ack <commit> | — | 4.00 |\n"
        );
    }

    #[test]
    fn charts_are_drawn_per_row_or_per_table() {
        let per_row = render(&Report {
            kind: "e2e".to_owned(),
            command: "cargo xtask bench e2e".to_owned(),
            environment: Environment {
                cpu_model: "CPU".to_owned(),
                cores: 2,
                kernel: "6.1".to_owned(),
                commit: "0123456789abcdef".to_owned(),
                modified: false,
                date: "2026-12-07T05:00:00Z".to_owned(),
                rustc: "rustc 1.91".to_owned(),
            },
            tables: vec![table(Chart::PerRow)],
        });
        assert!(
            per_row
                .0
                .starts_with("Run of 2026-12-07 at `01234567` by `cargo xtask bench e2e`")
        );
        let names: Vec<&str> = per_row.1.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "docs/bench/e2e-scenarios-flat-out.svg",
                "docs/bench/e2e-scenarios-ack-commit.svg"
            ]
        );
        let svg = &per_row.1[0].1;
        // A panel per unit; the label escaped; the whisker drawn where there is a spread.
        assert!(
            svg.contains(">events/s</text>") && svg.contains(">ms</text>"),
            "{svg}"
        );
        assert_eq!(svg.matches("<path").count(), 2, "{svg}");
        assert!(per_row.1[1].1.contains("ack &lt;commit&gt;"));
        let per_table = table_panels(&table(Chart::PerTable));
        let titles: Vec<&str> = per_table.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["accepted, events/s", "p99, ms"]);
        assert_eq!(per_table[1].bars.len(), 2);
    }

    #[test]
    fn regions_are_filled_and_the_rest_kept() {
        let doc = "# B\n\n<!-- bench-report e2e -->\nold\n<!-- /bench-report -->\n\ntext\n\
                   <!-- bench-report zen-model -->\n<!-- /bench-report -->\n";
        let regions = BTreeMap::from([("e2e".to_owned(), "new\n".to_owned())]);
        let filled = fill("doc.md", doc, &regions).expect("filled");
        assert_eq!(
            filled,
            "# B\n\n<!-- bench-report e2e -->\nnew\n<!-- /bench-report -->\n\ntext\n\
             <!-- bench-report zen-model -->\nNo report of `zen-model` is kept in docs/bench/reports/ yet.\n<!-- /bench-report -->\n"
        );
        assert!(
            fill(
                "doc.md",
                "<!-- bench-report e2e -->\nnever closed\n",
                &regions
            )
            .is_err()
        );
    }
}
