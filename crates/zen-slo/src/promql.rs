//! The spec as PromQL. Every expression aggregates to one series without labels (or, for a
//! per-group one, to one series per group, with the group's labels), and none can
//! produce NaN or infinity: a ratio's denominator is filtered with `> 0`, so that no traffic gives
//! no sample (no data) instead of `0 / 0`.

use std::fmt::Write as _;

use crate::spec::{Expr, MatchOp, Selector, Sli, Slo, Tier, Vector, Window, exact};

/// A number as the rules print it: exact to 12 significant digits, no float artefacts.
pub fn number(x: f64) -> String {
    format!("{}", exact(x))
}

pub(crate) fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', r#"\""#)
}

/// `metric{label="value",label=~"regex"}`, with `extra` matchers after the selector's own.
pub fn selector(s: &Selector, extra: &[(&str, &str)]) -> String {
    let mut out = s.metric.clone();
    let n = s.matchers.len() + extra.len();
    if n == 0 {
        return out;
    }
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    for m in &s.matchers {
        sep(&mut out);
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::Regex => "=~",
        };
        let _ = write!(out, "{}{op}\"{}\"", m.label, escape(&m.value));
    }
    for (k, v) in extra {
        sep(&mut out);
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
    out
}

fn range(s: &Selector, extra: &[(&str, &str)], window: Window, offset: Option<Window>) -> String {
    let mut out = format!("{}[{window}]", selector(s, extra));
    if let Some(o) = offset {
        let _ = write!(out, " offset {o}");
    }
    out
}

fn sum_rate(
    s: &Selector,
    extra: &[(&str, &str)],
    window: Window,
    offset: Option<Window>,
) -> String {
    format!("sum(rate({}))", range(s, extra, window, offset))
}

fn histogram_series(h: &Selector, suffix: &str) -> Selector {
    h.renamed(format!("{}{suffix}", h.metric))
}

/// The share of bad events over `window`.
pub fn error_ratio(sli: &Sli, window: Window) -> String {
    match sli {
        Sli::Latency {
            histogram,
            threshold,
        } => {
            let count = sum_rate(&histogram_series(histogram, "_count"), &[], window, None);
            let le = number(*threshold);
            let good = sum_rate(
                &histogram_series(histogram, "_bucket"),
                &[("le", &le)],
                window,
                None,
            );
            format!("({count} - {good}) / ({count} > 0)")
        }
        // No error series yet (nothing failed since start) is zero errors, not no data.
        Sli::Ratio { errors, total } => format!(
            "(sum(rate({})) or vector(0)) / ({} > 0)",
            range(errors, &[], window, None),
            sum_rate(total, &[], window, None)
        ),
    }
}

/// The expression's PromQL.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Quantile {
            q,
            histogram,
            window,
            offset,
        } => {
            let buckets = range(
                &histogram_series(histogram, "_bucket"),
                &[],
                *window,
                *offset,
            );
            let count = sum_rate(
                &histogram_series(histogram, "_count"),
                &[],
                *window,
                *offset,
            );
            format!(
                "histogram_quantile({}, sum by (le) (rate({buckets})) and on () ({count} > 0))",
                number(*q)
            )
        }
        Expr::ErrorRatio { sli, window } => error_ratio(sli, *window),
        Expr::Max(s) => format!("max({})", selector(s, &[])),
        Expr::Min(s) => format!("min({})", selector(s, &[])),
        Expr::MaxRatio { num, den } => {
            format!("max({} / ({} > 0))", selector(num, &[]), selector(den, &[]))
        }
        Expr::Div(a, b) => format!("({}) / (({}) > 0)", expr(a), expr(b)),
        Expr::PredictLinear {
            gauge,
            window,
            horizon,
        } => format!(
            "max(predict_linear({}[{window}], {}))",
            selector(gauge, &[]),
            horizon.as_secs()
        ),
        Expr::Absent(s) => format!("absent({})", selector(s, &[])),
        Expr::Per { by, vector: v } => self::vector(v, &by.join(", ")),
    }
}

/// A per-group expression: each leaf summed `by` the group's labels; a binary operator's
/// sides in parentheses when they are themselves binary.
fn vector(v: &Vector, by: &str) -> String {
    let side = |v: &Vector| match v {
        Vector::Add(..) | Vector::Div(..) | Vector::OneMinus(_) => format!("({})", vector(v, by)),
        _ => vector(v, by),
    };
    match v {
        Vector::Rate { counter, window } => {
            format!(
                "sum by ({by}) (rate({}))",
                range(counter, &[], *window, None)
            )
        }
        Vector::Increase { counter, window } => format!(
            "sum by ({by}) (increase({}))",
            range(counter, &[], *window, None)
        ),
        Vector::Gauge(g) => format!("sum by ({by}) ({})", selector(g, &[])),
        Vector::Add(a, b) => format!("{} + {}", side(a), side(b)),
        Vector::Div(a, b) => format!("{} / ({} > 0)", side(a), side(b)),
        Vector::OneMinus(a) => format!("1 - {}", side(a)),
    }
}

/// The recording rule that holds an SLO's error ratio over `window`.
pub fn recorded(window: Window) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}

/// The burn-rate alert's condition: both windows above the tier's threshold.
pub fn burn(slo: &Slo, tier: &Tier) -> String {
    let t = number(slo.threshold(tier));
    let sel = |w: Window| format!("{}{{slo=\"{}\"}}", recorded(w), escape(&slo.name));
    format!(
        "{} > {t} and ignoring (window) {} > {t}",
        sel(tier.long),
        sel(tier.short)
    )
}
