//! `cargo xtask bench`: the criterion benchmarks, one package at a time (so each result is
//! known to be its crate's), and their report: criterion's estimate of the time per iteration
//! (the slope, or the mean where there is none) with its confidence interval, and the throughput
//! that follows from the group's declared elements or bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::report::{self, Chart, Environment, Figure, Report, Row, Table};

/// Runs the benchmarks of `packages` (all but the gate's, when none are named), with
/// `criterion_args` after `--`, and writes their report.
pub(crate) fn run(packages: &[String], criterion_args: &[String]) -> Result<()> {
    let packages = match packages {
        [] => bench_packages()?,
        named => named.to_vec(),
    };
    let environment = Environment::here();
    let mut tables = Vec::new();
    for package in &packages {
        let started = SystemTime::now();
        let status = Command::new(env!("CARGO"))
            // Each package's own features, as the workspace build would unify them (zen-export's
            // benchmark needs its exporter).
            .args(["bench", "--all-features", "--package", package, "--"])
            .args(criterion_args)
            .status()
            .context("running cargo bench")?;
        if !status.success() {
            bail!("cargo bench --package {package} failed: {status}");
        }
        tables.extend(tables_since(
            &report::target_dir().join("criterion"),
            package,
            started,
        )?);
    }
    let mut command = String::from("cargo xtask bench");
    for p in &packages {
        command += &format!(" -p {p}");
    }
    if !criterion_args.is_empty() {
        command += &format!(" -- {}", criterion_args.join(" "));
    }
    report::write(&Report {
        kind: "criterion".to_owned(),
        command,
        environment,
        tables,
    })?;
    Ok(())
}

/// The packages with criterion benchmarks: `crates/*/benches`, but zen-bench's, which count
/// instructions under callgrind (`cargo xtask bench gate`).
fn bench_packages() -> Result<Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut out: Vec<String> = std::fs::read_dir(&crates)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("benches").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != "zen-bench")
        .collect();
    out.sort();
    Ok(out)
}

/// Every `new/benchmark.json` under `dir`, recursively.
fn results(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            results(&path, out);
        } else if path.ends_with("new/benchmark.json") {
            out.push(path);
        }
    }
}

/// One benchmark's result: its table and row names, and when criterion wrote it.
struct Measured {
    table: String,
    row: Row,
    written: SystemTime,
}

/// The tables of the results criterion wrote under `dir` since `since`, for `package`.
fn tables_since(dir: &Path, package: &str, since: SystemTime) -> Result<Vec<Table>> {
    let mut paths = Vec::new();
    results(dir, &mut paths);
    let mut found = Vec::new();
    for path in paths {
        let written = std::fs::metadata(&path)?.modified()?;
        if written < since {
            continue;
        }
        let new = path.parent().context("new/")?;
        let read = |name: &str| -> Result<Value> {
            let p = new.join(name);
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        };
        found.push(result(
            &read("benchmark.json")?,
            &read("estimates.json")?,
            written,
        )?);
    }
    found.sort_by_key(|r| r.written);
    let mut tables: Vec<Table> = Vec::new();
    for r in found {
        match tables.iter_mut().find(|t| t.name == r.table) {
            Some(t) => t.rows.push(r.row),
            None => tables.push(Table {
                component: package.to_owned(),
                name: r.table,
                spread: "criterion's estimate and its 95 % confidence interval".to_owned(),
                chart: Chart::PerTable,
                rows: vec![r.row],
            }),
        }
    }
    Ok(tables)
}

/// A benchmark's row from criterion's `benchmark.json` and `estimates.json`.
fn result(benchmark: &Value, estimates: &Value, written: SystemTime) -> Result<Measured> {
    let group = benchmark["group_id"]
        .as_str()
        .context("benchmark.json without group_id")?;
    // `c.bench_function("host/sample")` is a group of its own: its table is what precedes the
    // last `/`, so that such benchmarks sit together.
    let (table, name) = match (benchmark["function_id"].as_str(), group.rsplit_once('/')) {
        (Some(function), _) => (group.to_owned(), function.to_owned()),
        (None, Some((table, name))) => (table.to_owned(), name.to_owned()),
        (None, None) => (group.to_owned(), group.to_owned()),
    };
    let name = match benchmark["value_str"].as_str() {
        Some(value) => format!("{name} / {value}"),
        None => name,
    };
    let typical = match &estimates["slope"] {
        Value::Null => &estimates["mean"],
        slope => slope,
    };
    let ns = |v: &Value| v.as_f64().context("estimates.json: not a number");
    let time = ns(&typical["point_estimate"])?;
    let (lower, upper) = (
        ns(&typical["confidence_interval"]["lower_bound"])?,
        ns(&typical["confidence_interval"]["upper_bound"])?,
    );
    let mut figures = vec![Figure {
        name: "time".to_owned(),
        unit: "ns".to_owned(),
        value: time,
        low: lower,
        high: upper,
        samples: 0,
    }];
    let per_second = |n: f64, unit: &str, divisor: f64| Figure {
        name: "throughput".to_owned(),
        unit: unit.to_owned(),
        value: n * 1e9 / time / divisor,
        low: n * 1e9 / upper / divisor,
        high: n * 1e9 / lower / divisor,
        samples: 0,
    };
    let throughput = &benchmark["throughput"];
    let number = |key: &str| throughput[key].as_u64().map(|n| n as f64);
    if let Some(n) = number("Elements") {
        figures.push(per_second(n, "events/s", 1.0));
    }
    if let Some(n) = number("Bytes").or_else(|| number("BytesDecimal")) {
        figures.push(per_second(n, "MiB/s", 1_048_576.0));
    }
    let both = &throughput["ElementsAndBytes"];
    if let (Some(e), Some(b)) = (both["elements"].as_u64(), both["bytes"].as_u64()) {
        figures.push(per_second(e as f64, "events/s", 1.0));
        figures.push(per_second(b as f64, "MiB/s", 1_048_576.0));
    }
    Ok(Measured {
        table,
        row: Row { name, figures },
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_gives_its_time_and_throughput() {
        let benchmark = serde_json::json!({
            "group_id": "normalize/events", "function_id": "falco one alert", "value_str": null,
            "throughput": {"Elements": 100}
        });
        let estimates = serde_json::json!({
            "mean": {"confidence_interval": {"confidence_level": 0.95, "lower_bound": 900.0,
                     "upper_bound": 1100.0}, "point_estimate": 1000.0, "standard_error": 1.0},
            "slope": null
        });
        let r = result(&benchmark, &estimates, SystemTime::UNIX_EPOCH).expect("a result");
        assert_eq!(
            (r.table.as_str(), r.row.name.as_str()),
            ("normalize/events", "falco one alert")
        );
        let throughput = &r.row.figures[1];
        // 100 events per microsecond: 100 million a second, slower at the interval's upper bound.
        assert_eq!(throughput.unit, "events/s");
        assert!((throughput.value - 1e8).abs() < 1.0);
        assert!((throughput.low - 1e11 / 1100.0).abs() < 1.0);

        let alone = serde_json::json!({"group_id": "host/sample", "function_id": null});
        let r = result(&alone, &estimates, SystemTime::UNIX_EPOCH).expect("a result");
        assert_eq!((r.table.as_str(), r.row.name.as_str()), ("host", "sample"));
        assert_eq!(r.row.figures.len(), 1);
    }
}
