//! `GET /api/v1/report?from=…&to=…`: a performance report of a range as one self-contained HTML
//! file — inline SVG charts and inline CSS, no script, nothing fetched — that prints cleanly to
//! PDF. SLO attainment, latency percentiles, throughput, resource use, alerts and the top
//! findings of the range. Every text in it is escaped: rule names and namespaces are whatever
//! senders wrote.

use std::fmt::Write as _;
use std::sync::{Arc, PoisonError};

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use zen_export::panels::{self, Panel};
use zen_history::{Frame, Query};
use zen_store::{Top, TopBy};

use crate::history::{history_of, now, time};
use crate::{ApiError, AppState};

/// The panels the report charts, in its order.
const CHARTED: [&str; 12] = [
    "throughput",
    "latency",
    "stages",
    "queue",
    "errors",
    "health",
    "budget",
    "process",
    "cpu",
    "memory",
    "network",
    "severity",
];

/// Points per chart.
const POINTS: usize = 300;

/// Escapes text for HTML and SVG.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value in a panel's unit, for people.
fn format(unit: &str, v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    // Three significant digits, trailing zeros dropped.
    let sig = |v: f64| {
        if v == 0.0 {
            return "0".to_owned();
        }
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let scaled = |v: f64, base: f64, units: &[&str]| {
        let mut v = v;
        let mut i = 0;
        while v.abs() >= base && i + 1 < units.len() {
            v /= base;
            i += 1;
        }
        format!("{} {}", sig(v), units[i]).trim_end().to_owned()
    };
    match unit {
        "s" if v.abs() < 1e-3 && v != 0.0 => format!("{} µs", sig(v * 1e6)),
        "s" if v.abs() < 1.0 && v != 0.0 => format!("{} ms", sig(v * 1e3)),
        "s" => format!("{} s", sig(v)),
        "bytes" => scaled(v, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"]),
        "Bps" => format!(
            "{}/s",
            scaled(v, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
        ),
        "ops" => format!("{}/s", scaled(v, 1000.0, &["", "k", "M", "G"])),
        "iops" => format!("{} IO/s", scaled(v, 1000.0, &["", "k", "M", "G"])),
        "percentunit" => format!("{} %", sig(v * 100.0)),
        "percent" => format!("{} %", sig(v)),
        _ => scaled(v, 1000.0, &["", "k", "M", "G"]),
    }
}

/// A series' legend and its average, lowest and highest over the range.
struct Summary {
    legend: String,
    avg: f64,
    min: f64,
    max: f64,
}

fn summarise(legend: &str, avg: &[f64], min: &[f64], max: &[f64]) -> Summary {
    let finite = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect::<Vec<_>>()
    };
    let (a, lo, hi) = (finite(avg), finite(min), finite(max));
    Summary {
        legend: legend.to_owned(),
        avg: if a.is_empty() {
            f64::NAN
        } else {
            a.iter().sum::<f64>() / a.len() as f64
        },
        min: lo.iter().copied().fold(f64::NAN, f64::min),
        max: hi.iter().copied().fold(f64::NAN, f64::max),
    }
}

const PALETTE: [&str; 8] = [
    "#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
];

/// An SVG line chart of `frame` (one line per series, averages), the panel's thresholds dashed.
fn chart(out: &mut String, p: &Panel, legends: &[String], frame: &Frame, from: i64, to: i64) {
    const W: f64 = 680.0;
    const H: f64 = 190.0;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 10.0;
    const PW: f64 = W - LEFT - 10.0;
    const PH: f64 = H - TOP - 30.0;
    let mut hi = frame
        .series
        .iter()
        .flat_map(|s| s.avg.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if let Some((t, _)) = p.thresholds.first() {
        hi = hi
            .max(*t * 1.1)
            .min(if hi > 0.0 { hi * 3.0 } else { *t * 1.1 });
    }
    hi = nice(hi);
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * PW;
    let y = |v: f64| TOP + PH - (v / hi).clamp(0.0, 1.0) * PH;
    let _ = write!(
        out,
        r##"<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><rect x="{LEFT}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="#ccc"/>"##,
        esc(p.title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = hi * frac;
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#555">{}</text><line x1="{LEFT}" x2="{}" y1="{yy}" y2="{yy}" stroke="#eee"/>"##,
            LEFT - 4.0,
            y(v) + 3.0,
            esc(&format(p.unit, v)),
            LEFT + PW,
            yy = y(v),
        );
    }
    for (t, anchor) in [(from, "start"), (to, "end")] {
        let label = jiff::Timestamp::from_second(t)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="{anchor}" fill="#555">{}</text>"##,
            x(t),
            TOP + PH + 14.0,
            esc(&label)
        );
    }
    for (value, colour) in p.thresholds {
        if *value <= hi {
            let _ = write!(
                out,
                r#"<line x1="{LEFT}" x2="{}" y1="{yy}" y2="{yy}" stroke="{colour}" stroke-dasharray="5 4"/>"#,
                LEFT + PW,
                yy = y(*value)
            );
        }
    }
    for (i, s) in frame.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        let mut pen = false;
        for (t, v) in frame.times.iter().zip(&s.avg) {
            if v.is_finite() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(*t),
                    y(*v)
                );
                pen = true;
            } else {
                pen = false;
            }
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.3"/>"#,
                d.trim_end()
            );
        }
    }
    out.push_str("</svg><p class=\"legend\">");
    for (i, l) in legends.iter().enumerate() {
        let _ = write!(
            out,
            r#"<span><i style="background:{}"></i>{}</span> "#,
            PALETTE[i % PALETTE.len()],
            esc(l)
        );
    }
    out.push_str("</p>");
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `v` (1 for nothing above 0): the
/// top of a chart's axis.
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10_f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// A table of series summaries in `unit`.
fn summary_table(out: &mut String, unit: &str, rows: &[Summary]) {
    out.push_str("<table><thead><tr><th>Series</th><th>Average</th><th>Lowest</th><th>Highest</th></tr></thead><tbody>");
    for r in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.legend),
            esc(&format(unit, r.avg)),
            esc(&format(unit, r.min)),
            esc(&format(unit, r.max))
        );
    }
    out.push_str("</tbody></table>");
}

/// What the report is made of, gathered off the IO threads.
struct Gathered {
    charts: Vec<(&'static Panel, Vec<String>, Frame)>,
    rules: Vec<Top>,
    namespaces: Vec<Top>,
}

const STYLE: &str = "body{font:13px/1.4 system-ui,sans-serif;color:#1d1f23;max-width:60rem;margin:1.5rem auto;padding:0 1rem}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ddd}h3{font-size:.95rem;margin:1rem 0 .3rem}table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e5e5e5;overflow-wrap:break-word}.legend{font-size:11px;margin:.2rem 0 .8rem}.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}.meta{color:#555}.chart{break-inside:avoid;page-break-inside:avoid}@media print{body{margin:0;max-width:none}h2{break-after:avoid}}@page{size:A4;margin:14mm}";

/// `GET /api/v1/report?from=-86400&to=0`: see the module docs.
pub(crate) async fn report(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let now = now();
    let (mut from, mut to) = (now - 86_400, now);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*k {
            "from" => from = time(&v, "from", now)?,
            "to" => to = time(&v, "to", now)?,
            other => {
                return Err(ApiError::bad(format!(
                    "unknown parameter {other:?}: expected from, to"
                )));
            }
        }
    }
    if from >= to {
        return Err(ApiError::bad(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    let history = history_of(&s)?.clone();
    let store = s.store.clone();
    let gathered = crate::blocking(move || -> Result<Gathered, ApiError> {
        let mut charts = Vec::new();
        {
            let mut h = history.lock().unwrap_or_else(PoisonError::into_inner);
            let names: Vec<String> = h.names().map(|(_, n)| n.to_owned()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            for id in CHARTED {
                let Some(p) = panels::find(id) else { continue };
                let members = panels::members(p, &names);
                let ids: Vec<_> = members.iter().filter_map(|(n, _)| h.find(n)).collect();
                if ids.is_empty() {
                    continue;
                }
                let q = Query {
                    series: &ids,
                    from,
                    to,
                    points: POINTS,
                };
                let frame = h.query(&q, now).map_err(|e| {
                    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                })?;
                let legends = members.into_iter().map(|(_, l)| l).collect();
                charts.push((p, legends, frame));
            }
        }
        let since = zen_model::Timestamp::from_second(from).unwrap_or_default();
        // Through the end of the second `to` names.
        let until = zen_model::Timestamp::from_second(to + 1).unwrap_or_default();
        Ok(Gathered {
            charts,
            rules: store.top(TopBy::Rule, since, until, 15)?,
            namespaces: store.top(TopBy::Namespace, since, until, 15)?,
        })
    })
    .await??;
    let slos = s.alerting.as_ref().map(|a| a.slos());
    let alerts = s.alerting.as_ref().map(|a| a.alerts());
    let insights = s.insights.as_ref().map(|i| {
        let latest = i.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::to_value(latest.insights()).unwrap_or(Value::Null)
    });
    let html = render(
        from,
        to,
        now,
        &gathered,
        [slos.as_ref(), alerts.as_ref(), insights.as_ref()],
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:".to_owned(),
            ),
        ],
        html,
    )
        .into_response())
}

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The report; `slos`, `alerts` and `insights` as their routes answer them, when running.
fn render(
    from: i64,
    to: i64,
    now: i64,
    g: &Gathered,
    [slos, alerts, insights]: [Option<&Value>; 3],
) -> String {
    let mut out = String::with_capacity(64 << 10);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>zen-watcher performance report, {} to {}</title><style>{STYLE}</style></head><body>",
        esc(&when(from)),
        esc(&when(to))
    );
    let _ = write!(
        out,
        "<h1>zen-watcher performance report</h1><p class=\"meta\">{} to {} · generated {} · zen-watcher {}</p>",
        esc(&when(from)),
        esc(&when(to)),
        esc(&when(now)),
        env!("CARGO_PKG_VERSION")
    );

    out.push_str("<h2>SLO attainment</h2>");
    match slos.and_then(|v| v["slos"].as_array()) {
        Some(list) if !list.is_empty() => {
            out.push_str("<table><thead><tr><th>SLO</th><th>Objective</th><th>State</th><th>Error budget left</th><th>Burn rates</th></tr></thead><tbody>");
            for s in list {
                let left = s["error_budget_remaining"]
                    .as_f64()
                    .map_or("–".to_owned(), |v| format!("{:.1} %", v * 100.0));
                let burns: Vec<String> = s["windows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| {
                        format!(
                            "{}: {}",
                            w["window"].as_str().unwrap_or(""),
                            w["burn_rate"]
                                .as_f64()
                                .map_or("–".to_owned(), |b| format!("{b:.2}"))
                        )
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{} % over {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(s["name"].as_str().unwrap_or("")),
                    s["objective_percent"].as_f64().unwrap_or(f64::NAN),
                    esc(s["period"].as_str().unwrap_or("")),
                    esc(s["state"].as_str().unwrap_or("")),
                    esc(&left),
                    esc(&burns.join(", "))
                );
            }
            out.push_str("</tbody></table>");
        }
        _ => out.push_str("<p>SLOs are not evaluated (alerting is off).</p>"),
    }

    for (p, legends, frame) in &g.charts {
        let rows: Vec<Summary> = legends
            .iter()
            .zip(&frame.series)
            .map(|(l, s)| summarise(l, &s.avg, &s.min, &s.max))
            .collect();
        let _ = write!(out, "<div class=\"chart\"><h3>{}</h3>", esc(p.title));
        chart(&mut out, p, legends, frame, from, to);
        summary_table(&mut out, p.unit, &rows);
        out.push_str("</div>");
    }
    if g.charts.is_empty() {
        out.push_str("<p>No history was recorded in this range.</p>");
    }

    insights_section(&mut out, insights);

    out.push_str("<h2>Alerts</h2>");
    let list: Vec<&Value> = alerts
        .and_then(|v| v["alerts"].as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if list.is_empty() {
        out.push_str("<p>No alert is pending, firing or recently resolved.</p>");
    } else {
        out.push_str("<table><thead><tr><th>Alert</th><th>State</th><th>Value</th><th>Active since</th><th>Fired</th><th>Resolved</th></tr></thead><tbody>");
        for a in list {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(a["name"].as_str().unwrap_or("")),
                esc(a["state"].as_str().unwrap_or("")),
                a["value"]
                    .as_f64()
                    .map_or("–".to_owned(), |v| format!("{v:.4}")),
                esc(a["active_at"].as_str().unwrap_or("")),
                esc(a["fired_at"].as_str().unwrap_or("")),
                esc(a["resolved_at"].as_str().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table>");
    }

    out.push_str("<h2>Top findings</h2><h3>Rules</h3>");
    top_table(
        &mut out,
        &["Source", "Rule", "Observations"],
        &g.rules,
        |t| {
            vec![
                t.source.clone().unwrap_or_default(),
                key_or(t, "(none)"),
                t.observations.to_string(),
            ]
        },
    );
    out.push_str("<h3>Namespaces</h3>");
    top_table(
        &mut out,
        &["Namespace", "Observations"],
        &g.namespaces,
        |t| vec![key_or(t, "(cluster)"), t.observations.to_string()],
    );
    out.push_str("</body></html>\n");
    out
}

/// The advisor's findings at the time of the report: recommendations, forecasts, regressions
/// and bottlenecks.
fn insights_section(out: &mut String, insights: Option<&Value>) {
    out.push_str("<h2>Insights</h2>");
    let Some(v) = insights else {
        out.push_str("<p>The advisor is not running.</p>");
        return;
    };
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| esc(v.as_str().unwrap_or(""));
    let recs = list("recommendations");
    if recs.is_empty() {
        out.push_str("<p>No recommendation: nothing to change.</p>");
    } else {
        out.push_str("<h3>Recommendations</h3><table><thead><tr><th>Severity</th><th>Finding</th><th>Change</th><th>Expected effect</th><th>State</th></tr></thead><tbody>");
        for r in &recs {
            let action = match r["action"]["kind"].as_str() {
                Some("setting") => format!(
                    "{}: {}",
                    r["action"]["key"].as_str().unwrap_or(""),
                    r["action"]["value"].as_str().unwrap_or("")
                ),
                _ => r["action"]["text"].as_str().unwrap_or("").to_owned(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&r["severity"]),
                text(&r["summary"]),
                esc(&action),
                text(&r["effect"]),
                text(&r["state"])
            );
        }
        out.push_str("</tbody></table>");
    }
    let forecasts = list("forecasts");
    if !forecasts.is_empty() {
        out.push_str("<h3>Forecasts</h3><table><thead><tr><th>Resource</th><th>Runs out in</th></tr></thead><tbody>");
        for f in &forecasts {
            let g = &f["forecast"];
            let when = match g["state"].as_str() {
                Some("exhaustion") => format!(
                    "{} ({} to {})",
                    format("s", g["seconds"].as_f64().unwrap_or(f64::NAN)),
                    format("s", g["low"].as_f64().unwrap_or(f64::NAN)),
                    g["high"]
                        .as_f64()
                        .map_or("never".to_owned(), |h| format("s", h))
                ),
                Some("exhausted") => "now".to_owned(),
                Some("steady") => "not heading there".to_owned(),
                _ => "not enough data yet".to_owned(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                text(&f["resource"]),
                esc(&when)
            );
        }
        out.push_str("</tbody></table>");
    }
    let found: Vec<String> = list("regressions")
        .iter()
        .map(|r| r["message"].as_str().unwrap_or("").to_owned())
        .chain(list("bottlenecks").iter().map(|b| {
            format!(
                "{}: {}",
                b["what"].as_str().unwrap_or(""),
                b["detail"].as_str().unwrap_or("")
            )
        }))
        .collect();
    if !found.is_empty() {
        out.push_str("<h3>Regressions and bottlenecks</h3><ul>");
        for f in found {
            let _ = write!(out, "<li>{}</li>", esc(&f));
        }
        out.push_str("</ul>");
    }
}

/// The key of a top line, or `empty` for the empty key (no rule id, a cluster-scoped finding).
fn key_or(t: &Top, empty: &str) -> String {
    if t.key.is_empty() {
        empty.to_owned()
    } else {
        t.key.clone()
    }
}

fn top_table(out: &mut String, heads: &[&str], rows: &[Top], cells: impl Fn(&Top) -> Vec<String>) {
    if rows.is_empty() {
        out.push_str("<p>No Observation was last seen in this range.</p>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in heads {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in cells(r) {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_values_read_in_their_units() {
        assert_eq!(
            esc(r#"<img src=x onerror="alert('x')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(format("s", 0.0123), "12.3 ms");
        assert_eq!(format("s", 0.000_45), "450 µs");
        assert_eq!(format("bytes", 3.0 * 1024.0 * 1024.0), "3 MiB");
        assert_eq!(format("ops", 1500.0), "1.5 k/s");
        assert_eq!(format("percentunit", 0.25), "25 %");
        assert_eq!(format("none", f64::NAN), "–");
        assert_eq!(format("ops", 3.692), "3.69/s");
        assert_eq!(format("s", 0.199_005), "199 ms");
        assert_eq!(
            (nice(3.692), nice(199.0), nice(0.0), nice(0.07)),
            (5.0, 200.0, 1.0, 0.1)
        );
    }

    #[test]
    fn every_charted_panel_is_in_the_catalog() {
        for id in CHARTED {
            assert!(panels::find(id).is_some(), "{id}");
        }
    }
}
