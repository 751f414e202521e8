//! The in-process evaluator: samples in, SLO status, alerts and the health score out, with the
//! same numbers and the same alert states as Prometheus evaluating the generated rules.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::history::{
    self, Accumulator, Compiled, LOOKBACK_MS, Retention, Ring, bucket_rates, parse_bound,
};
use crate::spec::{
    BURN_ALERT, Cmp, Expr, HealthTerm, Labels, Rule, Selector, Severity, Sli, Spec, SpecError,
    Window, check_threshold, exact, labels,
};

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus does.
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Debug)]
enum Track {
    Counter {
        acc: Accumulator,
        touched: bool,
        ring: Ring<f64>,
    },
    Buckets {
        acc: Vec<(f64, Accumulator)>,
        touched: bool,
        ring: Ring<Vec<(f64, f64)>>,
    },
    Gauge {
        series: HashMap<u64, Gauge>,
        history: bool,
    },
}

#[derive(Debug)]
struct Gauge {
    latest: (i64, f64),
    ring: Ring<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counter,
    Buckets,
    Gauge,
    GaugeHistory,
}

#[derive(Debug)]
struct Slot {
    sel: Compiled,
    track: Track,
    /// How far back the expressions reading it look.
    reach: Window,
}

/// An SLI with its selectors resolved to tracks.
#[derive(Debug, Clone, Copy)]
enum CSli {
    Latency { count: usize, good: usize },
    Ratio { errors: usize, total: usize },
}

#[derive(Debug, Clone)]
enum CExpr {
    Quantile {
        q: f64,
        buckets: usize,
        window: Window,
        offset: Option<Window>,
    },
    ErrorRatio(CSli, Window),
    Max(usize),
    MaxRatio(usize, usize),
    Div(Box<CExpr>, Box<CExpr>),
    Predict {
        gauge: usize,
        window: Window,
        horizon: Window,
    },
    Absent(usize),
}

#[derive(Debug)]
enum CHealth {
    Good(CSli, Window),
    Headroom { gauge: usize, from: f64, to: f64 },
}

/// Where an alert comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Burn { slo: usize, tier: usize },
    Rule(usize),
}

/// An alert's state, as Prometheus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Firing,
    /// Stopped firing; kept fifteen minutes so that notifications say so.
    Resolved,
}

/// One alert: what Prometheus would show in `ALERTS` and send to Alertmanager.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub name: String,
    /// Every label but `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    pub state: State,
    pub value: f64,
    /// Milliseconds, in the evaluator's time.
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

#[derive(Debug)]
struct Definition {
    source: Source,
    name: String,
    labels: Labels,
    annotations: Labels,
    alert: Option<Alert>,
    keep_firing_since: Option<i64>,
}

/// An SLO's error ratio and burn rate over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowStatus {
    pub window: Window,
    /// `None`: no events in the window.
    pub error_ratio: Option<f64>,
    pub burn_rate: Option<f64>,
}

/// What the SLO's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloState {
    Ok,
    /// A ticket tier is firing.
    Ticket,
    /// A page tier is firing.
    Page,
    /// No event in any of its windows.
    NoData,
}

/// An SLO as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    pub name: String,
    pub description: String,
    pub objective_percent: f64,
    pub period: Window,
    /// The share of events allowed to be bad.
    pub error_budget: f64,
    pub windows: Vec<WindowStatus>,
    /// The share of the period's budget left, judged on the data held: the error ratio since the
    /// oldest sample, over the budget, scaled by how much of the period that covers.
    pub error_budget_remaining: Option<f64>,
    /// How far back the data held reaches (at most the longest window read).
    pub data_held_seconds: u64,
    /// When the remaining budget runs out at the burn rate of the last hour.
    pub exhaustion_seconds: Option<f64>,
    pub state: SloState,
}

/// A run-time change to a threshold rule; what is absent stays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// A threshold rule as shown and changed at run time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleView {
    pub name: String,
    pub expr: String,
    pub op: Option<Cmp>,
    pub threshold: Option<f64>,
    #[serde(rename = "for")]
    pub for_: Window,
    pub keep_firing_for: Window,
    pub severity: Severity,
    pub summary: String,
}

/// Samples in, evaluations out. Time is an argument, in milliseconds.
#[derive(Debug)]
pub struct Engine {
    spec: Spec,
    retention: Retention,
    slots: Vec<Slot>,
    by_name: HashMap<String, Vec<usize>>,
    slis: Vec<CSli>,
    rules: Vec<CExpr>,
    health: Vec<CHealth>,
    definitions: Vec<Definition>,
    statuses: Vec<SloStatus>,
    score: f64,
}

/// The tracks an engine reads, built while compiling the spec.
#[derive(Debug, Default)]
struct Builder {
    slots: Vec<Slot>,
    index: HashMap<(Kind, String), usize>,
}

impl Builder {
    /// The track of `sel`, read up to `reach` back.
    fn track(&mut self, kind: Kind, sel: &Selector, reach: Window) -> Result<usize, SpecError> {
        let key = (kind, crate::promql::selector(sel, &[]));
        if let Some(&i) = self.index.get(&key) {
            self.slots[i].reach = self.slots[i].reach.max(reach);
            return Ok(i);
        }
        let compiled = Compiled::new(sel).map_err(|e| SpecError::Rule {
            rule: key.1.clone(),
            message: format!("bad regular expression: {e}"),
        })?;
        let track = match kind {
            Kind::Counter => Track::Counter {
                acc: Accumulator::default(),
                touched: false,
                ring: Ring::new(),
            },
            Kind::Buckets => Track::Buckets {
                acc: Vec::new(),
                touched: false,
                ring: Ring::new(),
            },
            Kind::Gauge | Kind::GaugeHistory => Track::Gauge {
                series: HashMap::new(),
                history: kind == Kind::GaugeHistory,
            },
        };
        self.slots.push(Slot {
            sel: compiled,
            track,
            reach,
        });
        self.index.insert(key, self.slots.len() - 1);
        Ok(self.slots.len() - 1)
    }

    fn sli(&mut self, sli: &Sli, reach: Window) -> Result<CSli, SpecError> {
        Ok(match sli {
            Sli::Latency {
                histogram,
                threshold,
            } => CSli::Latency {
                count: self.track(
                    Kind::Counter,
                    &histogram.renamed(format!("{}_count", histogram.metric)),
                    reach,
                )?,
                good: self.track(
                    Kind::Counter,
                    &histogram
                        .renamed(format!("{}_bucket", histogram.metric))
                        .eq("le", &crate::promql::number(*threshold)),
                    reach,
                )?,
            },
            Sli::Ratio { errors, total } => CSli::Ratio {
                errors: self.track(Kind::Counter, errors, reach)?,
                total: self.track(Kind::Counter, total, reach)?,
            },
        })
    }

    fn expr(&mut self, e: &Expr) -> Result<CExpr, SpecError> {
        Ok(match e {
            Expr::Quantile {
                q,
                histogram,
                window,
                offset,
            } => CExpr::Quantile {
                q: *q,
                buckets: self.track(
                    Kind::Buckets,
                    &histogram.renamed(format!("{}_bucket", histogram.metric)),
                    reach(e),
                )?,
                window: *window,
                offset: *offset,
            },
            Expr::ErrorRatio { sli, window } => CExpr::ErrorRatio(self.sli(sli, *window)?, *window),
            Expr::Max(s) => CExpr::Max(self.track(Kind::Gauge, s, Window::default())?),
            Expr::MaxRatio { num, den } => CExpr::MaxRatio(
                self.track(Kind::Gauge, num, Window::default())?,
                self.track(Kind::Gauge, den, Window::default())?,
            ),
            Expr::Div(a, b) => CExpr::Div(Box::new(self.expr(a)?), Box::new(self.expr(b)?)),
            Expr::PredictLinear {
                gauge,
                window,
                horizon,
            } => CExpr::Predict {
                gauge: self.track(Kind::GaugeHistory, gauge, *window)?,
                window: *window,
                horizon: *horizon,
            },
            Expr::Absent(s) => CExpr::Absent(self.track(Kind::Gauge, s, Window::default())?),
        })
    }
}

/// The longest span an expression reads back.
fn reach(e: &Expr) -> Window {
    match e {
        Expr::Quantile { window, offset, .. } => {
            Window::seconds(window.as_secs() + offset.map_or(0, |o| o.as_secs()))
        }
        Expr::ErrorRatio { window, .. } | Expr::PredictLinear { window, .. } => *window,
        Expr::Div(a, b) => reach(a).max(reach(b)),
        Expr::Max(_) | Expr::MaxRatio { .. } | Expr::Absent(_) => Window::minutes(5),
    }
}

impl Engine {
    /// An engine for `spec`: every sample kept for 35 minutes (the short windows, up to 30 m,
    /// read them all), then one a minute (a counter's increase over an hour or more is as
    /// exact from those), each series for as long as the longest window reading it needs.
    pub fn new(spec: Spec) -> Result<Engine, SpecError> {
        let retention = Retention {
            fine_ms: Window::minutes(35).millis(),
            coarse_step_ms: 60_000,
        };
        Engine::with_retention(spec, retention)
    }

    /// An engine that keeps samples as `retention` says.
    pub fn with_retention(spec: Spec, retention: Retention) -> Result<Engine, SpecError> {
        let mut b = Builder::default();
        let slis = spec
            .slos
            .iter()
            .map(|s| b.sli(&s.sli, s.windows().into_iter().max().unwrap_or_default()))
            .collect::<Result<_, _>>()?;
        let rules = spec
            .rules
            .iter()
            .map(|r| b.expr(&r.expr))
            .collect::<Result<_, _>>()?;
        let health = spec
            .health
            .iter()
            .map(|h| {
                Ok(match h {
                    HealthTerm::Good(sli, w) => CHealth::Good(b.sli(sli, *w)?, *w),
                    HealthTerm::Headroom { gauge, from, to } => CHealth::Headroom {
                        gauge: b.track(Kind::Gauge, gauge, Window::default())?,
                        from: *from,
                        to: *to,
                    },
                })
            })
            .collect::<Result<_, SpecError>>()?;
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in b.slots.iter().enumerate() {
            by_name
                .entry(s.sel.metric().to_owned())
                .or_default()
                .push(i);
        }
        let mut definitions = Vec::new();
        for (si, slo) in spec.slos.iter().enumerate() {
            for (ti, tier) in slo.tiers.iter().enumerate() {
                definitions.push(Definition {
                    source: Source::Burn { slo: si, tier: ti },
                    name: BURN_ALERT.to_owned(),
                    labels: burn_labels(slo, tier),
                    annotations: burn_annotations(slo, tier),
                    alert: None,
                    keep_firing_since: None,
                });
            }
        }
        for (ri, r) in spec.rules.iter().enumerate() {
            definitions.push(rule_definition(ri, r));
        }
        Ok(Engine {
            spec,
            retention,
            slots: b.slots,
            by_name,
            slis,
            rules,
            health,
            definitions,
            statuses: Vec::new(),
            score: 100.0,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Every metric name the engine reads; samples of others can be skipped.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Takes one sample of the current evaluation (its time is `t`); others are ignored.
    pub fn observe(&mut self, t: i64, metric: &str, labels: &[(&str, &str)], value: f64) {
        let Some(slots) = self.by_name.get(metric) else {
            return;
        };
        if !value.is_finite() {
            return;
        }
        for &i in slots {
            let slot = &mut self.slots[i];
            if !slot.sel.matches(labels) {
                continue;
            }
            match &mut slot.track {
                Track::Counter { acc, touched, .. } => {
                    acc.add(history::key(labels, ""), value, t);
                    *touched = true;
                }
                Track::Buckets { acc, touched, .. } => {
                    let Some(le) = labels
                        .iter()
                        .find(|(k, _)| *k == "le")
                        .and_then(|(_, v)| parse_bound(v))
                    else {
                        continue;
                    };
                    let at = acc.partition_point(|(b, _)| *b < le);
                    if acc.get(at).is_none_or(|(b, _)| *b != le) {
                        acc.insert(at, (le, Accumulator::default()));
                    }
                    acc[at].1.add(history::key(labels, "le"), value, t);
                    *touched = true;
                }
                Track::Gauge { series, history } => {
                    let g = series.entry(history::key(labels, "")).or_insert(Gauge {
                        latest: (t, value),
                        ring: Ring::new(),
                    });
                    g.latest = (t, value);
                    if *history {
                        g.ring.push(t, value, &self.retention, keep(slot.reach));
                    }
                }
            }
        }
    }

    /// Closes the samples observed for time `t` and evaluates everything at `t`.
    pub fn evaluate(&mut self, t: i64) {
        self.commit(t);
        self.statuses = (0..self.spec.slos.len())
            .map(|i| self.slo_status(i, t))
            .collect();
        for d in 0..self.definitions.len() {
            let value = match self.definitions[d].source {
                Source::Burn { slo, tier } => self.burning(slo, tier, t),
                Source::Rule(r) => {
                    match (self.value(&self.rules[r], t), self.spec.rules[r].condition) {
                        (Some(v), Some((op, th))) => op.holds(v, th).then_some(v),
                        (v, None) => v,
                        (None, Some(_)) => None,
                    }
                }
            };
            let (for_, keep) = match self.definitions[d].source {
                Source::Burn { .. } => (0, 0),
                Source::Rule(r) => {
                    let rule = &self.spec.rules[r];
                    (rule.for_.millis(), rule.keep_firing_for.millis())
                }
            };
            step(&mut self.definitions[d], value, t, for_, keep);
        }
        self.score = self.health_score(t);
    }

    fn commit(&mut self, t: i64) {
        let r = self.retention;
        for slot in &mut self.slots {
            let keep = keep(slot.reach);
            match &mut slot.track {
                Track::Counter { acc, touched, ring } => {
                    if std::mem::take(touched) {
                        ring.push(t, acc.total, &r, keep);
                    }
                    acc.forget_before(t - LOOKBACK_MS);
                }
                Track::Buckets { acc, touched, ring } => {
                    if std::mem::take(touched) {
                        ring.push(
                            t,
                            acc.iter().map(|(le, a)| (*le, a.total)).collect(),
                            &r,
                            keep,
                        );
                    }
                    for (_, a) in acc.iter_mut() {
                        a.forget_before(t - LOOKBACK_MS);
                    }
                }
                Track::Gauge { series, .. } => {
                    series.retain(|_, g| g.latest.0 >= t - keep.max(LOOKBACK_MS));
                }
            }
        }
    }

    fn counter(&self, i: usize) -> &Ring<f64> {
        match &self.slots[i].track {
            Track::Counter { ring, .. } => ring,
            _ => unreachable_track(),
        }
    }

    /// Rates of an SLI's bad and total events over `[from, to]`.
    fn sli_rates(&self, sli: CSli, from: i64, to: i64) -> Option<(f64, f64)> {
        let rate = |i| history::rate(self.counter(i), from, to);
        match sli {
            CSli::Latency { count, good } => {
                let total = rate(count)?;
                Some((total - rate(good)?, total))
            }
            CSli::Ratio { errors, total } => Some((rate(errors).unwrap_or(0.0), rate(total)?)),
        }
    }

    /// The share of bad events over `window` ending at `t`; `None` without events.
    fn error_ratio(&self, sli: CSli, window: Window, t: i64) -> Option<f64> {
        let (bad, total) = self.sli_rates(sli, t - window.millis(), t)?;
        (total > 0.0).then(|| bad / total)
    }

    fn burning(&self, slo: usize, tier: usize, t: i64) -> Option<f64> {
        let s = &self.spec.slos[slo];
        let tier = &s.tiers[tier];
        let threshold = s.threshold(tier);
        let long = self.error_ratio(self.slis[slo], tier.long, t)?;
        let short = self.error_ratio(self.slis[slo], tier.short, t)?;
        (long > threshold && short > threshold).then_some(long)
    }

    fn gauges(&self, i: usize, t: i64) -> impl Iterator<Item = (u64, f64)> {
        let series = match &self.slots[i].track {
            Track::Gauge { series, .. } => series,
            _ => unreachable_track(),
        };
        series
            .iter()
            .filter(move |(_, g)| g.latest.0 >= t - LOOKBACK_MS && g.latest.0 <= t)
            .map(|(k, g)| (*k, g.latest.1))
    }

    fn value(&self, e: &CExpr, t: i64) -> Option<f64> {
        match e {
            CExpr::Quantile {
                q,
                buckets,
                window,
                offset,
            } => {
                let Track::Buckets { ring, .. } = &self.slots[*buckets].track else {
                    unreachable_track()
                };
                let to = t - offset.map_or(0, |o| o.millis());
                let rates = bucket_rates(ring, to - window.millis(), to);
                history::quantile(*q, &rates)
            }
            CExpr::ErrorRatio(sli, window) => self.error_ratio(*sli, *window, t),
            CExpr::Max(i) => self.gauges(*i, t).map(|(_, v)| v).reduce(f64::max),
            CExpr::MaxRatio(num, den) => {
                let dens: HashMap<u64, f64> = self.gauges(*den, t).collect();
                self.gauges(*num, t)
                    .filter_map(|(k, n)| dens.get(&k).filter(|d| **d > 0.0).map(|d| n / d))
                    .reduce(f64::max)
            }
            CExpr::Div(a, b) => {
                let b = self.value(b, t).filter(|b| *b > 0.0)?;
                Some(self.value(a, t)? / b)
            }
            CExpr::Predict {
                gauge,
                window,
                horizon,
            } => {
                let Track::Gauge { series, .. } = &self.slots[*gauge].track else {
                    unreachable_track()
                };
                series
                    .values()
                    .filter_map(|g| {
                        let samples: Vec<(i64, f64)> =
                            g.ring.range(t - window.millis(), t).copied().collect();
                        history::predict_linear(&samples, t, horizon.as_secs() as f64)
                    })
                    .reduce(f64::max)
            }
            CExpr::Absent(i) => self.gauges(*i, t).next().is_none().then_some(1.0),
        }
    }

    fn slo_status(&self, i: usize, t: i64) -> SloStatus {
        let slo = &self.spec.slos[i];
        let sli = self.slis[i];
        let budget = slo.budget();
        let windows: Vec<WindowStatus> = slo
            .windows()
            .into_iter()
            .map(|w| {
                let ratio = self.error_ratio(sli, w, t);
                WindowStatus {
                    window: w,
                    error_ratio: ratio,
                    burn_rate: ratio.map(|r| r / budget),
                }
            })
            .collect();
        let total = match sli {
            CSli::Latency { count, .. } => count,
            CSli::Ratio { total, .. } => total,
        };
        let oldest = self.counter(total).oldest().map_or(t, |(o, _)| *o);
        let held = t - oldest;
        // Over the data held, no extrapolation: what happened, not a guess at the edges.
        let remaining = (held > 0)
            .then(|| self.sli_increase(sli, oldest, t))
            .flatten()
            .map(|(bad, total)| {
                let ratio = if total > 0.0 { bad / total } else { 0.0 };
                1.0 - ratio / budget * (held as f64 / slo.period.millis() as f64)
            });
        let hour = self.error_ratio(sli, Window::hours(1), t);
        let exhaustion = match (remaining, hour) {
            (Some(r), Some(h)) if r > 0.0 && h > 0.0 => {
                Some(r * slo.period.as_secs() as f64 / (h / budget))
            }
            _ => None,
        };
        let firing = |kind| {
            self.definitions.iter().any(|d| {
                matches!(d.source, Source::Burn { slo, tier }
                    if slo == i && self.spec.slos[i].tiers[tier].kind == kind)
                    && d.alert.as_ref().is_some_and(|a| a.state == State::Firing)
            })
        };
        let state = if firing(crate::spec::TierKind::Page) {
            SloState::Page
        } else if firing(crate::spec::TierKind::Ticket) {
            SloState::Ticket
        } else if windows.iter().all(|w| w.error_ratio.is_none()) {
            SloState::NoData
        } else {
            SloState::Ok
        };
        SloStatus {
            name: slo.name.clone(),
            description: slo.description.clone(),
            objective_percent: slo.objective_percent,
            period: slo.period,
            error_budget: budget,
            windows,
            error_budget_remaining: remaining,
            data_held_seconds: (held / 1000) as u64,
            exhaustion_seconds: exhaustion,
            state,
        }
    }

    /// Bad and total events between two sample times, without extrapolation.
    fn sli_increase(&self, sli: CSli, from: i64, to: i64) -> Option<(f64, f64)> {
        let inc = |i: usize| {
            let ring = self.counter(i);
            let mut it = ring.range(from, to);
            let first = it.next()?.1;
            Some(it.last().map_or(0.0, |l| l.1 - first))
        };
        match sli {
            CSli::Latency { count, good } => {
                let total = inc(count)?;
                Some((total - inc(good).unwrap_or(total), total))
            }
            CSli::Ratio { errors, total } => Some((inc(errors).unwrap_or(0.0), inc(total)?)),
        }
    }

    fn health_score(&self, t: i64) -> f64 {
        let product: f64 = self
            .health
            .iter()
            .map(|h| match h {
                CHealth::Good(sli, w) => self
                    .error_ratio(*sli, *w, t)
                    .map_or(1.0, |r| 1.0 - r.clamp(0.0, 1.0)),
                CHealth::Headroom { gauge, from, to } => self
                    .gauges(*gauge, t)
                    .map(|(_, v)| v)
                    .reduce(f64::max)
                    .map_or(1.0, |v| 1.0 - ((v - from) / (to - from)).clamp(0.0, 1.0)),
            })
            .product();
        (product * 1000.0).round() / 10.0
    }

    /// The SLOs as of the last evaluation.
    pub fn slos(&self) -> &[SloStatus] {
        &self.statuses
    }

    /// Pending, firing and recently resolved alerts as of the last evaluation.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.definitions.iter().filter_map(|d| d.alert.as_ref())
    }

    /// The health score, 0–100: 100 × the product of the spec's terms (see [`HealthTerm`]).
    pub fn health(&self) -> f64 {
        self.score
    }

    /// The threshold rules as they stand.
    pub fn rules(&self) -> Vec<RuleView> {
        self.spec
            .rules
            .iter()
            .map(|r| RuleView {
                name: r.name.clone(),
                expr: crate::promql::expr(&r.expr),
                op: r.condition.map(|c| c.0),
                threshold: r.condition.map(|c| c.1),
                for_: r.for_,
                keep_firing_for: r.keep_firing_for,
                severity: r.severity,
                summary: r.summary.clone(),
            })
            .collect()
    }

    /// Changes rules at run time: all of `changes` or, on an error, none.
    pub fn change_rules(&mut self, changes: &[(String, RuleChange)]) -> Result<(), SpecError> {
        let mut rules = self.spec.rules.clone();
        for (name, c) in changes {
            let err = |message: &str| SpecError::Rule {
                rule: name.clone(),
                message: message.to_owned(),
            };
            let r = rules
                .iter_mut()
                .find(|r| &r.name == name)
                .ok_or_else(|| err("no such rule"))?;
            if let Some(t) = c.threshold {
                check_threshold(name, t)?;
                let cond = r
                    .condition
                    .as_mut()
                    .ok_or_else(|| err("the rule has no threshold"))?;
                cond.1 = exact(t);
            }
            if let Some(f) = c.for_ {
                r.for_ = f;
            }
            if let Some(k) = c.keep_firing_for {
                r.keep_firing_for = k;
            }
            if let Some(s) = c.severity {
                r.severity = s;
            }
        }
        for (ri, r) in rules.iter().enumerate() {
            let d = self
                .definitions
                .iter_mut()
                .find(|d| matches!(d.source, Source::Rule(i) if i == ri));
            if let Some(d) = d {
                d.labels = rule_definition(ri, r).labels;
                if let Some(a) = &mut d.alert {
                    a.labels = d.labels.clone();
                }
            }
        }
        self.spec.rules = rules;
        Ok(())
    }
}

/// How long a series read `reach` back is kept: two evaluations' slack beyond it.
fn keep(reach: Window) -> i64 {
    reach.millis() + 120_000
}

fn rule_definition(ri: usize, r: &Rule) -> Definition {
    Definition {
        source: Source::Rule(ri),
        name: r.name.clone(),
        labels: labels(&[("severity", r.severity.as_str())]),
        annotations: labels(&[
            ("summary", &r.summary),
            ("description", &r.description),
            ("runbook_url", &r.runbook),
        ]),
        alert: None,
        keep_firing_since: None,
    }
}

/// A burn-rate alert's labels: which SLO, which long window, how urgent.
pub(crate) fn burn_labels(slo: &crate::spec::Slo, tier: &crate::spec::Tier) -> Labels {
    labels(&[
        ("slo", &slo.name),
        ("window", &tier.long.to_string()),
        ("severity", tier.severity().as_str()),
        ("tier", tier.kind.as_str()),
    ])
}

/// What a burn-rate alert says.
pub(crate) fn burn_annotations(slo: &crate::spec::Slo, tier: &crate::spec::Tier) -> Labels {
    use crate::promql::number;
    labels(&[
        (
            "summary",
            &format!("SLO {} is burning its error budget", slo.name),
        ),
        (
            "description",
            &format!(
                "{} The error ratio over {} and over {} is above {} ({}× the budget of {}): at this rate {} % of the {} budget is gone in {}.",
                slo.description,
                tier.long,
                tier.short,
                number(slo.threshold(tier)),
                number(tier.factor(slo.period)),
                number(slo.budget()),
                number(tier.budget_percent),
                slo.period,
                tier.long
            ),
        ),
        (
            "runbook_url",
            &format!("{}#{}", crate::spec::RUNBOOKS, BURN_ALERT.to_lowercase()),
        ),
    ])
}

#[cold]
fn unreachable_track() -> ! {
    // Tracks are created with the kind their expressions read; compile() never mixes them.
    panic!("a track read as another kind: a bug in zen-slo's compiler")
}

/// One evaluation of an alert, as Prometheus' alerting rule does it (2.42, with
/// `keep_firing_for`).
fn step(d: &mut Definition, value: Option<f64>, t: i64, for_: i64, keep: i64) {
    match value {
        Some(v) => {
            d.keep_firing_since = None;
            match &mut d.alert {
                Some(a) if a.state != State::Resolved => a.value = v,
                slot => {
                    *slot = Some(Alert {
                        name: d.name.clone(),
                        labels: d.labels.clone(),
                        annotations: d.annotations.clone(),
                        state: State::Pending,
                        value: v,
                        active_at: t,
                        fired_at: None,
                        resolved_at: None,
                    })
                }
            }
            if let Some(a) = &mut d.alert {
                if a.state == State::Pending && t - a.active_at >= for_ {
                    a.state = State::Firing;
                    a.fired_at = Some(t);
                }
            }
        }
        None => match &mut d.alert {
            Some(a) if a.state == State::Pending => d.alert = None,
            Some(a) if a.state == State::Firing => {
                let since = *d.keep_firing_since.get_or_insert(t);
                if keep == 0 || t - since >= keep {
                    a.state = State::Resolved;
                    a.resolved_at = Some(t);
                    d.keep_firing_since = None;
                }
            }
            Some(a) if a.resolved_at.is_some_and(|r| t - r > RESOLVED_RETENTION_MS) => {
                d.alert = None
            }
            Some(_) => {}
            None => {}
        },
    }
}
