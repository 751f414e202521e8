//! Input series that drive each alert through its life — quiet, pending, firing, resolved — with
//! the times worked out by hand (aligned windows, so a window's ratio is a plain sum), and a
//! replay through the in-process evaluator. The same scenarios become `promtool test rules`
//! files, so Prometheus checks the generated rules against the evaluator, step by step.

use serde_json::{Value, json};

use crate::eval::{Engine, State};
use crate::history::Retention;
use crate::spec::{
    BURN_ALERT, Cmp, Expr, Labels, MatchOp, Rule, Selector, Sli, Slo, Spec, Tier, TierKind, Vector,
    Window,
};

/// One input series: a value per step, `None` for no sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: String,
    pub labels: Vec<(String, String)>,
    pub values: Vec<Option<f64>>,
}

/// An alert at one step, as `ALERTS` and Alertmanager see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// `pending`, `firing` or `resolved`.
    pub state: &'static str,
}

/// An alert's expected life, in steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Nothing at all is pending or firing before this step.
    pub quiet_until: usize,
    pub fires_at: usize,
    pub resolves_at: usize,
}

/// One alert's scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The alert the scenario is about...
    pub target: String,
    /// ...and its labels that tell it from others of the same name.
    pub target_labels: Labels,
    pub step: Window,
    pub series: Vec<Series>,
    pub expected: Expected,
    spec: Spec,
}

/// The scenarios of one `promtool` test file (one step for all).
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file's name, without directory.
    pub file: String,
    pub scenarios: Vec<Scenario>,
}

const EVENTS_PER_STEP: f64 = 10_000.0;

fn series(metric: &str, labels: &[(String, String)], values: Vec<Option<f64>>) -> Series {
    Series {
        metric: metric.to_owned(),
        labels: labels.to_vec(),
        values,
    }
}

/// Running totals of per-step increments.
fn counter(increments: &[f64]) -> Vec<Option<f64>> {
    let mut v = 0.0;
    increments
        .iter()
        .enumerate()
        .map(|(i, inc)| {
            if i > 0 {
                v += inc;
            }
            Some(v)
        })
        .collect()
}

/// A label value that `regex` matches (or not, with `matching` false): one of a few usual
/// values, or the regex's first alternative when it is a plain word.
fn example(regex: &str, matching: bool) -> String {
    let re = regex::Regex::new(&format!("^(?:{regex})$")).ok();
    let word = regex
        .split('|')
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    ["500", "503", "202", "200", "error", "ok"]
        .into_iter()
        .chain(word)
        .find(|c| re.as_ref().is_some_and(|r| r.is_match(c)) == matching)
        .unwrap_or("x")
        .to_owned()
}

/// Labels of a series the selector matches.
fn labels_of(s: &Selector) -> Vec<(String, String)> {
    s.matchers
        .iter()
        .map(|m| {
            let v = match m.op {
                MatchOp::Equal => m.value.clone(),
                MatchOp::Regex => example(&m.value, true),
            };
            (m.label.clone(), v)
        })
        .collect()
}

fn build_info() -> Series {
    series(
        "zen_watcher_build_info",
        &[("version".into(), "test".into())],
        Vec::new(),
    )
}

/// The series of an SLI with `bad[i]` bad events out of `EVENTS_PER_STEP` at step `i`.
fn sli_series(sli: &Sli, bad: &[f64]) -> Vec<Series> {
    let good: Vec<f64> = bad.iter().map(|b| EVENTS_PER_STEP - b).collect();
    let total = vec![EVENTS_PER_STEP; bad.len()];
    match sli {
        Sli::Latency {
            histogram,
            threshold,
        } => {
            let labels = labels_of(histogram);
            let mut le = labels.clone();
            le.push(("le".into(), crate::promql::number(*threshold)));
            vec![
                series(
                    &format!("{}_count", histogram.metric),
                    &labels,
                    counter(&total),
                ),
                series(&format!("{}_bucket", histogram.metric), &le, counter(&good)),
            ]
        }
        Sli::Ratio { errors, total: all } => {
            let bad_labels = labels_of(errors);
            let mut out = vec![series(&errors.metric, &bad_labels, counter(bad))];
            if errors.metric == all.metric {
                // The errors are part of the total: add the good ones beside them.
                let mut good_labels = labels_of(all);
                for m in errors.matchers.iter().filter(|m| m.op == MatchOp::Regex) {
                    good_labels.retain(|(k, _)| *k != m.label);
                    good_labels.push((m.label.clone(), example(&m.value, false)));
                }
                out.push(series(&all.metric, &good_labels, counter(&good)));
            } else {
                out.push(series(&all.metric, &labels_of(all), counter(&total)));
            }
            out
        }
    }
}

/// The share of bad events over the `w` steps ending at step `i`, summed as an aligned window.
fn window_ratio(bad: &[f64], i: usize, w: usize) -> Option<f64> {
    (i >= w).then(|| bad[i + 1 - w..=i].iter().sum::<f64>() / (EVENTS_PER_STEP * w as f64))
}

fn burn(spec: &Spec, slo: &Slo, tier: &Tier) -> Scenario {
    let step = match tier.kind {
        TierKind::Page => Window::minutes(1),
        TierKind::Ticket => Window::minutes(5),
    };
    let steps = |w: Window| (w.as_secs() / step.as_secs()) as usize;
    let (long, short) = (steps(tier.long), steps(tier.short));
    let budget = slo.budget();
    let low = crate::spec::exact(0.5 * budget * EVENTS_PER_STEP);
    let high = crate::spec::exact((20.0 * budget).min(1.0) * EVENTS_PER_STEP);
    let threshold = slo.threshold(tier);
    let start = long;
    let burning = |bad: &[f64], i| {
        window_ratio(bad, i, long).is_some_and(|r| r > threshold)
            && window_ratio(bad, i, short).is_some_and(|r| r > threshold)
    };
    // Work out the firing step on a long run at 20× burn, then stop the burn five steps later.
    let mut bad = vec![low; start + 1];
    bad.resize(start + 1 + 2 * long, high);
    let fires_at = (start..bad.len())
        .find(|&i| burning(&bad, i))
        .unwrap_or(bad.len());
    let stop = fires_at + 5;
    bad.truncate(stop + 1);
    bad.resize(stop + 1 + 2 * long, low);
    let resolves_at = (stop..bad.len())
        .find(|&i| !burning(&bad, i))
        .unwrap_or(bad.len());
    bad.truncate(resolves_at + 3);
    let mut series = sli_series(&slo.sli, &bad);
    series.push(build_info());
    Scenario {
        name: format!("{} {}/{}", slo.name, tier.long, tier.short),
        target: BURN_ALERT.to_owned(),
        target_labels: [
            ("slo", slo.name.as_str()),
            ("window", &tier.long.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        step,
        series,
        expected: Expected {
            quiet_until: start + 1,
            fires_at,
            resolves_at,
        },
        spec: spec.clone(),
    }
    .filled()
}

/// Cumulative histogram series (every bound, `+Inf` and `_count`) for events put, at each step,
/// into buckets given by their upper bound.
fn histogram(h: &Selector, bounds: &[f64], per_step: &[Vec<(f64, f64)>]) -> Vec<Series> {
    let labels = labels_of(h);
    let mut all: Vec<f64> = bounds.to_vec();
    all.push(f64::INFINITY);
    let mut out: Vec<Series> = all
        .iter()
        .map(|&b| {
            let mut l = labels.clone();
            let le = if b.is_infinite() {
                "+Inf".to_owned()
            } else {
                crate::promql::number(b)
            };
            l.push(("le".into(), le));
            let inc: Vec<f64> = per_step
                .iter()
                .map(|events| {
                    events
                        .iter()
                        .filter(|(at, _)| *at <= b)
                        .map(|(_, n)| n)
                        .sum()
                })
                .collect();
            series(&format!("{}_bucket", h.metric), &l, counter(&inc))
        })
        .collect();
    let count: Vec<f64> = per_step
        .iter()
        .map(|e| e.iter().map(|(_, n)| n).sum())
        .collect();
    out.push(series(
        &format!("{}_count", h.metric),
        &labels,
        counter(&count),
    ));
    out
}

/// A rule's scenario: `build` gives the series for a condition that starts holding after step
/// `on` and stops after step `off`, and the step the condition first holds.
fn threshold(
    spec: &Spec,
    rule: &Rule,
    buckets: &dyn Fn(&str) -> Option<Vec<f64>>,
) -> Option<Scenario> {
    if let Expr::Per { by, vector } = &rule.expr {
        return per_group(spec, rule, by, vector);
    }
    let step = Window::minutes(match &rule.expr {
        Expr::Div(..) | Expr::PredictLinear { .. } => 5,
        _ => 1,
    });
    let for_steps = (rule.for_.as_secs() / step.as_secs()) as usize;
    let (op, th) = rule.condition.unwrap_or((Cmp::Above, 0.0));
    let on = 10;
    let (series, holds_from, off, resolves_at): (Vec<Series>, usize, usize, usize) = match &rule
        .expr
    {
        Expr::Max(gauge) | Expr::Min(gauge) => {
            let (ok, bad) = match op {
                Cmp::Above => (th - 40.0, th + 5.0),
                Cmp::Below => (th + 40.0, th - 30.0),
            };
            let off = on + for_steps + 5;
            let values = (0..off + 5)
                .map(|i| Some(if i > on && i <= off { bad } else { ok }))
                .collect();
            (
                vec![series(&gauge.metric, &labels_of(gauge), values)],
                on + 1,
                off,
                off + 1,
            )
        }
        Expr::MaxRatio { num, den } => {
            let capacity = 1000.0;
            let off = on + for_steps + 5;
            let depth = (0..off + 5)
                .map(|i| {
                    Some(if i > on && i <= off {
                        (th + 0.1) * capacity
                    } else {
                        (th - 0.5) * capacity
                    })
                })
                .collect();
            let labels = vec![("queue".to_owned(), "ingest".to_owned())];
            (
                vec![
                    series(&num.metric, &labels, depth),
                    series(&den.metric, &labels, vec![Some(capacity); off + 5]),
                ],
                on + 1,
                off,
                off + 1,
            )
        }
        Expr::ErrorRatio { sli, window } => {
            let w = (window.as_secs() / step.as_secs()) as usize;
            let (low, high) = (th / 5.0, th * 2.0);
            let mut share = vec![low; on + 1];
            share.resize(on + 1 + w + for_steps + 5, high);
            let off = share.len() - 1;
            share.resize(off + 1 + 3 * w, low);
            let bad: Vec<f64> = share
                .iter()
                .map(|s| (s * EVENTS_PER_STEP).round())
                .collect();
            let holds = |i| window_ratio(&bad, i, w).is_some_and(|r| r > th);
            let from = (on..off).find(|&i| holds(i))?;
            let resolves = (off..bad.len()).find(|&i| !holds(i))?;
            (sli_series(sli, &bad), from, off, resolves)
        }
        Expr::Quantile {
            q,
            histogram: h,
            window,
            offset: None,
        } => {
            let bounds = buckets(&h.metric)?;
            let fast = *bounds.iter().rev().find(|b| **b <= th / 2.0)?;
            let slow = *bounds.iter().find(|b| **b > th)?;
            let w = (window.as_secs() / step.as_secs()) as usize;
            let off = on + w + for_steps + 5;
            let slow_share = 2.0 * (1.0 - q);
            let per_step: Vec<Vec<(f64, f64)>> = (0..off + 3 * w)
                .map(|i| {
                    let s = if i > on && i <= off { slow_share } else { 0.0 };
                    vec![(fast, 1000.0 * (1.0 - s)), (slow, 1000.0 * s)]
                })
                .collect();
            let shares: Vec<f64> = per_step.iter().map(|e| e[1].1).collect();
            let over = |i: usize| {
                i >= w && shares[i + 1 - w..=i].iter().sum::<f64>() / (1000.0 * w as f64) > 1.0 - q
            };
            let from = (on..off).find(|&i| over(i))?;
            let resolves = (off..per_step.len()).find(|&i| !over(i))?;
            (histogram(h, &bounds, &per_step), from, off, resolves)
        }
        Expr::Div(a, _) => {
            let Expr::Quantile {
                histogram: h,
                offset: None,
                ..
            } = a.as_ref()
            else {
                return None;
            };
            let bounds = buckets(&h.metric)?;
            // A day of events in one bucket, then an hour in the next one up: the quantile
            // doubles against the same time a day before.
            let on = (86_400 / step.as_secs()) as usize + 12;
            let off = on + for_steps + 5;
            let before = bounds[bounds.len() / 2 - 3];
            let after = bounds[bounds.len() / 2 - 2];
            let per_step: Vec<Vec<(f64, f64)>> = (0..off + 5)
                .map(|i| vec![(if i > on && i <= off { after } else { before }, 1000.0)])
                .collect();
            (histogram(h, &bounds, &per_step), on + 1, off, off + 1)
        }
        Expr::PredictLinear { gauge, window, .. } => {
            // Flat for a window, then rising one point a step for two hours, then flat again
            // until the rise has left the window.
            let w = (window.as_secs() / step.as_secs()) as usize;
            let rise = 24;
            let values: Vec<Option<f64>> = (0..w + rise + w + 2)
                .map(|i| Some(40.0 + i.saturating_sub(w).min(rise) as f64))
                .collect();
            let n = values.len();
            let mut sc = Scenario {
                name: rule.name.clone(),
                target: rule.name.clone(),
                target_labels: Labels::new(),
                step,
                series: vec![
                    series(&gauge.metric, &labels_of(gauge), values),
                    build_info(),
                ],
                expected: Expected {
                    quiet_until: w + 1,
                    fires_at: 0,
                    resolves_at: 0,
                },
                spec: spec.clone(),
            }
            .filled();
            // The line's slope is least squares over the window: worked out by the replay, checked
            // against Prometheus by promtool; the test checks it fires after the rise begins.
            let timeline = sc.replay();
            let state = |i: usize, s: &str| {
                timeline[i]
                    .iter()
                    .any(|a| a.name == rule.name && a.state == s)
            };
            sc.expected.fires_at = (0..n).find(|&i| state(i, "firing"))?;
            sc.expected.resolves_at = (sc.expected.fires_at..n).find(|&i| state(i, "resolved"))?;
            return Some(sc);
        }
        Expr::Absent(sel) => {
            let off = 30;
            let values = (0..off + 10)
                .map(|i| (i <= on || i > off).then_some(1.0))
                .collect();
            let lookback = 5;
            let sc = Scenario {
                name: rule.name.clone(),
                target: rule.name.clone(),
                target_labels: Labels::new(),
                step,
                series: vec![series(
                    &sel.metric,
                    &[("version".into(), "test".into())],
                    values,
                )],
                expected: Expected {
                    quiet_until: on + lookback + 1,
                    fires_at: on + lookback + 1 + for_steps,
                    resolves_at: off + 1,
                },
                spec: spec.clone(),
            };
            return Some(sc);
        }
        Expr::Quantile {
            offset: Some(_), ..
        }
        | Expr::Per { .. } => return None,
    };
    let mut all = series;
    all.push(build_info());
    Some(
        Scenario {
            name: rule.name.clone(),
            target: rule.name.clone(),
            target_labels: Labels::new(),
            step,
            series: all,
            expected: Expected {
                quiet_until: holds_from,
                fires_at: holds_from + for_steps,
                resolves_at: resolves_at.max(off + 1),
            },
            spec: spec.clone(),
        }
        .filled(),
    )
}

/// A per-group expression's steady value when leaf `i` is `levels[i]`: a counter's rate per
/// second, a gauge's value.
fn steady(v: &Vector, levels: &mut impl Iterator<Item = f64>) -> Option<f64> {
    Some(match v {
        Vector::Rate { .. } | Vector::Gauge(_) => levels.next()?,
        Vector::Increase { window, .. } => levels.next()? * window.as_secs() as f64,
        Vector::Add(a, b) => {
            let (a, b) = (steady(a, levels), steady(b, levels));
            a? + b?
        }
        Vector::Div(a, b) => {
            let (a, b) = (steady(a, levels), steady(b, levels));
            let b = b.filter(|b| *b > 0.0);
            a? / b?
        }
        Vector::OneMinus(a) => 1.0 - steady(a, levels)?,
    })
}

/// Whether each leaf, left to right, is a counter.
fn counter_leaves(v: &Vector, out: &mut Vec<bool>) {
    match v {
        Vector::Rate { .. } | Vector::Increase { .. } => out.push(true),
        Vector::Gauge(_) => out.push(false),
        Vector::Add(a, b) | Vector::Div(a, b) => {
            counter_leaves(a, out);
            counter_leaves(b, out);
        }
        Vector::OneMinus(a) => counter_leaves(a, out),
    }
}

/// A per-group rule's scenario: two groups, every leaf at one per second (or one), but one leaf
/// scaled so that the condition does not hold; in the second group, for a while, scaled so that
/// it does. The first group never alerts; the second fires and resolves, at steps worked out
/// by the replay and checked against Prometheus by promtool.
fn per_group(spec: &Spec, rule: &Rule, by: &[String], vector: &Vector) -> Option<Scenario> {
    const SCALES: [f64; 11] = [1.0, 0.0, 0.01, 0.1, 0.5, 2.0, 10.0, 100.0, 1e4, 1e6, 1e9];
    let step = Window::minutes(1);
    let leaves = vector.leaves();
    let (op, th) = rule.condition?;
    let holds = |leaf: usize, k: f64| {
        let mut levels = (0..leaves.len()).map(|i| if i == leaf { k } else { 1.0 });
        steady(vector, &mut levels).is_some_and(|v| op.holds(v, th))
    };
    let (leaf, ok, bad) = (0..leaves.len()).find_map(|leaf| {
        let ok = SCALES.into_iter().find(|k| !holds(leaf, *k))?;
        let bad = SCALES.into_iter().find(|k| holds(leaf, *k))?;
        Some((leaf, ok, bad))
    })?;
    let w = (vector.reach().as_secs() / step.as_secs()) as usize;
    let for_steps = (rule.for_.as_secs() / step.as_secs()) as usize;
    let on = 10;
    let off = on + w + for_steps + 5;
    let n = off + 3 * w + 5;
    let mut counter_leaf = Vec::new();
    counter_leaves(vector, &mut counter_leaf);
    let mut series_out = Vec::new();
    for (name, burst) in [("one", false), ("two", true)] {
        for (i, sel) in leaves.iter().enumerate() {
            let mut labels = labels_of(sel);
            labels.extend(by.iter().map(|b| (b.clone(), name.to_owned())));
            let level: Vec<f64> = (0..n)
                .map(|t| match i == leaf {
                    false => 1.0,
                    true if burst && t > on && t <= off => bad,
                    true => ok,
                })
                .collect();
            let values = if counter_leaf[i] {
                let per_step: Vec<f64> = level.iter().map(|l| l * step.as_secs() as f64).collect();
                counter(&per_step)
            } else {
                level.into_iter().map(Some).collect()
            };
            series_out.push(series(&sel.metric, &labels, values));
        }
    }
    let mut names: Vec<(&String, &Vec<(String, String)>)> =
        series_out.iter().map(|s| (&s.metric, &s.labels)).collect();
    names.sort();
    names.dedup();
    if names.len() != series_out.len() {
        // Two leaves read the same series: a scenario would need them to differ.
        return None;
    }
    series_out.push(build_info());
    let mut sc = Scenario {
        name: rule.name.clone(),
        target: rule.name.clone(),
        target_labels: by.iter().map(|b| (b.clone(), "two".to_owned())).collect(),
        step,
        series: series_out,
        expected: Expected {
            quiet_until: on + 1,
            fires_at: 0,
            resolves_at: 0,
        },
        spec: spec.clone(),
    }
    .filled();
    let timeline = sc.replay();
    let at = |from: usize, state: &str| {
        (from..n).find(|&i| sc.target_state(&timeline, i) == Some(state))
    };
    let fires_at = at(0, "firing")?;
    let resolves_at = at(fires_at, "resolved")?;
    sc.expected.fires_at = fires_at;
    sc.expected.resolves_at = resolves_at;
    Some(sc)
}

/// Every scenario of `spec`, by test file: burn-rate pages (1-minute steps), tickets (5-minute
/// steps), threshold rules, and the day-long trend rules (5-minute steps).
pub fn suites(spec: &Spec, buckets: &dyn Fn(&str) -> Option<Vec<f64>>) -> Vec<Suite> {
    let mut page = Vec::new();
    let mut ticket = Vec::new();
    for slo in &spec.slos {
        for tier in &slo.tiers {
            let sc = burn(spec, slo, tier);
            match tier.kind {
                TierKind::Page => page.push(sc),
                TierKind::Ticket => ticket.push(sc),
            }
        }
    }
    let (mut quick, mut slow) = (Vec::new(), Vec::new());
    for rule in &spec.rules {
        if let Some(sc) = threshold(spec, rule, buckets) {
            if sc.step == Window::minutes(1) {
                quick.push(sc);
            } else {
                slow.push(sc);
            }
        }
    }
    [
        ("burn-page.yaml", page),
        ("burn-ticket.yaml", ticket),
        ("thresholds.yaml", quick),
        ("trends.yaml", slow),
    ]
    .into_iter()
    .filter(|(_, s)| !s.is_empty())
    .map(|(file, scenarios)| Suite {
        file: file.to_owned(),
        scenarios,
    })
    .collect()
}

/// `a+bxn` runs (n + 1 values) where values step evenly, `_` where there is no sample.
fn notation(values: &[Option<f64>]) -> String {
    let num = crate::promql::number;
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let Some(a) = values[i] else {
            out.push("_".into());
            i += 1;
            continue;
        };
        let Some(Some(b)) = values.get(i + 1) else {
            out.push(num(a));
            i += 1;
            continue;
        };
        let d = b - a;
        let mut n = 1;
        while let Some(Some(v)) = values.get(i + n + 1) {
            if *v - values[i + n].unwrap_or(f64::NAN) != d {
                break;
            }
            n += 1;
        }
        let sign = if d < 0.0 { "-" } else { "+" };
        out.push(format!("{}{sign}{}x{n}", num(a), num(d.abs())));
        i += n + 1;
    }
    out.join(" ")
}

impl Scenario {
    /// The build-info series sampled at every step of the scenario.
    fn filled(mut self) -> Scenario {
        let n = self
            .series
            .iter()
            .map(|s| s.values.len())
            .max()
            .unwrap_or(0);
        for s in &mut self.series {
            if s.metric == "zen_watcher_build_info" && s.values.is_empty() {
                s.values = vec![Some(1.0); n];
            }
        }
        self
    }

    /// How many steps the scenario lasts.
    pub fn len(&self) -> usize {
        self.series
            .iter()
            .map(|s| s.values.len())
            .max()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every alert at every step, as the in-process evaluator sees them. Every sample is kept at
    /// full resolution, as in promtool's storage.
    pub fn replay(&self) -> Vec<Vec<Snapshot>> {
        let retention = Retention {
            fine_ms: i64::MAX / 4,
            coarse_step_ms: i64::MAX / 4,
        };
        let Ok(mut engine) = Engine::with_retention(self.spec.clone(), retention) else {
            return Vec::new();
        };
        (0..self.len())
            .map(|i| {
                let t = i as i64 * self.step.millis();
                for s in &self.series {
                    if let Some(Some(v)) = s.values.get(i) {
                        let labels: Vec<(&str, &str)> = s
                            .labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        engine.observe(t, &s.metric, &labels, *v);
                    }
                }
                engine.evaluate(t);
                let mut now: Vec<Snapshot> = engine
                    .alerts()
                    .map(|a| Snapshot {
                        name: a.name.clone(),
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        state: match a.state {
                            State::Pending => "pending",
                            State::Firing => "firing",
                            State::Resolved => "resolved",
                        },
                    })
                    .collect();
                now.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
                now
            })
            .collect()
    }

    /// The target alert's state at a step of a replay: `None` when absent.
    pub fn target_state(&self, timeline: &[Vec<Snapshot>], i: usize) -> Option<&'static str> {
        timeline[i]
            .iter()
            .find(|a| {
                a.name == self.target
                    && self
                        .target_labels
                        .iter()
                        .all(|(k, v)| a.labels.get(k) == Some(v))
            })
            .map(|a| a.state)
    }

    /// When `ALERTS` is checked: every step (`dense`), or each step where any alert changes and
    /// the one before, and once an hour.
    pub(crate) fn check_times(&self, timeline: &[Vec<Snapshot>], dense: bool) -> Vec<usize> {
        let hour = (3600 / self.step.as_secs()) as usize;
        let active = |i: usize| -> Vec<&Snapshot> {
            timeline[i]
                .iter()
                .filter(|a| a.state != "resolved")
                .collect()
        };
        (0..timeline.len())
            .filter(|&i| {
                dense || i % hour == 0 || i + 1 == timeline.len() || {
                    let changes = |j: usize| j > 0 && active(j) != active(j - 1);
                    changes(i) || changes(i + 1)
                }
            })
            .collect()
    }

    /// When the target alert's firing alerts are checked with their annotations: the step
    /// before it fires, when it fires, the step before it resolves, when it resolves.
    pub(crate) fn alert_checks(&self, timeline: &[Vec<Snapshot>]) -> Vec<usize> {
        let e = self.expected;
        let mut t: Vec<usize> = [
            e.fires_at.saturating_sub(1),
            e.fires_at,
            e.resolves_at.saturating_sub(1),
            e.resolves_at,
        ]
        .into_iter()
        .filter(|&i| i < timeline.len())
        .collect();
        t.dedup();
        t
    }

    /// The series as promtool reads them.
    pub(crate) fn input_series(&self) -> Vec<Value> {
        self.series
            .iter()
            .map(|s| {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", crate::promql::escape(v)))
                    .collect();
                json!({
                    "series": format!("{}{{{}}}", s.metric, labels.join(",")),
                    "values": notation(&s.values),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_is_runs_of_even_steps() {
        let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(notation(&v(&[0.0, 5.0, 10.0, 15.0])), "0+5x3");
        assert_eq!(
            notation(&v(&[0.0, 5.0, 10.0, 210.0, 410.0])),
            "0+5x2 210+200x1"
        );
        assert_eq!(notation(&v(&[7.0])), "7");
        assert_eq!(notation(&[Some(1.0), None, None, Some(2.0)]), "1 _ _ 2");
        assert_eq!(notation(&v(&[3.0, 1.0])), "3-2x1");
    }
}
