//! The in-process evaluator: samples in, SLO status, alerts and the health score out, with the
//! same numbers and the same alert states as Prometheus evaluating the generated rules.

use serde::{Deserialize, Serialize};

use crate::compile::{
    CExpr, CHealth, CSli, CVector, CounterGroup, Definition, Gauge, GaugeGroup, Instance, Program,
    Source, Track, compile, group, render, rule_definition,
};
use crate::history::{
    self, Accumulator, LOOKBACK_MS, Map, Retention, Ring, bucket_rates, parse_bound,
};
use crate::spec::{Cmp, Labels, Severity, Spec, SpecError, Window, check_threshold, exact};

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus does.
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

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
    /// The spec compiled: tracks, expressions, alert definitions (and the alerts' state).
    program: Program,
    statuses: Vec<SloStatus>,
    score: f64,
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
        Ok(Engine {
            program: compile(&spec)?,
            spec,
            retention,
            statuses: Vec::new(),
            score: 100.0,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Every metric name the engine reads; samples of others can be skipped.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.program.by_name.keys().map(String::as_str)
    }

    /// Takes one sample of the current evaluation (its time is `t`); others are ignored.
    pub fn observe(&mut self, t: i64, metric: &str, labels: &[(&str, &str)], value: f64) {
        let Some(slots) = self.program.by_name.get(metric) else {
            return;
        };
        if !value.is_finite() {
            return;
        }
        for &i in slots {
            let slot = &mut self.program.slots[i];
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
                Track::CounterBy { by, groups } => {
                    let (k, labels_of_group) = group(by, labels);
                    let g = groups.entry(k).or_insert_with(|| CounterGroup {
                        labels: labels_of_group,
                        acc: Accumulator::default(),
                        touched: false,
                        ring: Ring::new(),
                    });
                    g.acc.add(history::key(labels, ""), value, t);
                    g.touched = true;
                }
                Track::GaugeBy { by, groups } => {
                    let (k, labels_of_group) = group(by, labels);
                    groups
                        .entry(k)
                        .or_insert_with(|| GaugeGroup {
                            labels: labels_of_group,
                            series: Map::default(),
                        })
                        .series
                        .insert(history::key(labels, ""), (t, value));
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
        for d in 0..self.program.definitions.len() {
            let holds = |v: &f64, rule: &crate::spec::Rule| {
                rule.condition.is_none_or(|(op, th)| op.holds(*v, th))
            };
            match self.program.definitions[d].source {
                Source::Burn { slo, tier } => {
                    let value = self.burning(slo, tier, t);
                    self.step_one(d, value, t, 0, 0);
                }
                Source::Rule(r) => {
                    let rule = &self.spec.rules[r];
                    let (for_, keep) = (rule.for_.millis(), rule.keep_firing_for.millis());
                    match &self.program.rules[r] {
                        // Nothing read and nothing raised (no such disk, interface or
                        // container on this host): nothing to evaluate.
                        CExpr::Per(v)
                            if self.program.definitions[d].instances.is_empty()
                                && !self.has_groups(v) => {}
                        CExpr::Per(v) => {
                            let mut values = self.vector(v, t);
                            values.retain(|_, v| holds(v, rule));
                            self.step_all(d, values, t, for_, keep);
                        }
                        e => {
                            let value = self.value(e, t).filter(|v| holds(v, rule));
                            self.step_one(d, value, t, for_, keep);
                        }
                    }
                }
            }
        }
        self.score = self.health_score(t);
    }

    /// One evaluation of definition `d`'s one alert: `value` is `Some` while its condition
    /// holds.
    fn step_one(&mut self, d: usize, value: Option<f64>, t: i64, for_: i64, keep: i64) {
        let Definition {
            name,
            labels,
            annotations,
            instances,
            ..
        } = &mut self.program.definitions[d];
        if value.is_none() && instances.is_empty() {
            return;
        }
        let instance = instances.entry(0).or_default();
        let new = || (name.clone(), labels.clone(), annotations.clone());
        step(instance, new, value, t, for_, keep);
        if instance.alert.is_none() {
            instances.clear();
        }
    }

    /// One evaluation of every alert of definition `d`: `values` holds the groups whose
    /// condition holds, with their values.
    fn step_all(&mut self, d: usize, values: Map<u64, f64>, t: i64, for_: i64, keep: i64) {
        let mut groups: Vec<u64> = values.keys().copied().collect();
        let def = &self.program.definitions[d];
        groups.extend(def.instances.keys().filter(|k| !values.contains_key(k)));
        groups.sort_unstable();
        for g in groups {
            let mut instance = self.program.definitions[d]
                .instances
                .remove(&g)
                .unwrap_or_default();
            let new = || {
                let def = &self.program.definitions[d];
                let mut labels = def.labels.clone();
                let mut annotations = def.annotations.clone();
                if let Some(group) = (g != 0).then(|| self.group_labels(d, g)).flatten() {
                    labels.extend(group.clone());
                    for v in annotations.values_mut() {
                        *v = render(v, &group);
                    }
                }
                (def.name.clone(), labels, annotations)
            };
            step(&mut instance, new, values.get(&g).copied(), t, for_, keep);
            if instance.alert.is_some() {
                self.program.definitions[d].instances.insert(g, instance);
            }
        }
    }

    /// The labels of group `g` of the per-group rule behind definition `d`.
    fn group_labels(&self, d: usize, g: u64) -> Option<Labels> {
        let Source::Rule(r) = self.program.definitions[d].source else {
            return None;
        };
        let CExpr::Per(v) = &self.program.rules[r] else {
            return None;
        };
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                CVector::Rate(i, _) | CVector::Increase(i, _) | CVector::Gauge(i) => {
                    match &self.program.slots[*i].track {
                        Track::CounterBy { groups, .. } => {
                            if let Some(c) = groups.get(&g) {
                                return Some(c.labels.clone());
                            }
                        }
                        Track::GaugeBy { groups, .. } => {
                            if let Some(c) = groups.get(&g) {
                                return Some(c.labels.clone());
                            }
                        }
                        _ => unreachable_track(),
                    }
                }
                CVector::Add(a, b) | CVector::Div(a, b) => stack.extend([a.as_ref(), b.as_ref()]),
                CVector::OneMinus(a) => stack.push(a),
            }
        }
        None
    }

    /// Whether every leaf of a per-group expression has read a group.
    fn has_groups(&self, v: &CVector) -> bool {
        match v {
            CVector::Rate(i, _) | CVector::Increase(i, _) | CVector::Gauge(i) => {
                match &self.program.slots[*i].track {
                    Track::CounterBy { groups, .. } => !groups.is_empty(),
                    Track::GaugeBy { groups, .. } => !groups.is_empty(),
                    _ => unreachable_track(),
                }
            }
            CVector::Add(a, b) | CVector::Div(a, b) => self.has_groups(a) && self.has_groups(b),
            CVector::OneMinus(a) => self.has_groups(a),
        }
    }

    /// A per-group expression's value for each group that has one.
    fn vector(&self, v: &CVector, t: i64) -> Map<u64, f64> {
        let both = |a: &CVector, b: &CVector, f: &dyn Fn(f64, f64) -> Option<f64>| {
            let b = self.vector(b, t);
            self.vector(a, t)
                .into_iter()
                .filter_map(|(k, a)| Some((k, f(a, *b.get(&k)?)?)))
                .collect()
        };
        let rates = |i: usize, w: Window| -> Map<u64, f64> {
            let Track::CounterBy { groups, .. } = &self.program.slots[i].track else {
                unreachable_track()
            };
            groups
                .iter()
                .filter_map(|(k, g)| Some((*k, history::rate(&g.ring, t - w.millis(), t)?)))
                .collect()
        };
        match v {
            CVector::Rate(i, w) => rates(*i, *w),
            CVector::Increase(i, w) => rates(*i, *w)
                .into_iter()
                .map(|(k, r)| (k, r * w.as_secs() as f64))
                .collect(),
            CVector::Gauge(i) => {
                let Track::GaugeBy { groups, .. } = &self.program.slots[*i].track else {
                    unreachable_track()
                };
                groups
                    .iter()
                    .filter_map(|(k, g)| {
                        let live = g
                            .series
                            .values()
                            .filter(|(seen, _)| *seen >= t - LOOKBACK_MS && *seen <= t);
                        let (n, sum) = live.fold((0, 0.0), |(n, s), (_, v)| (n + 1, s + v));
                        (n > 0).then_some((*k, sum))
                    })
                    .collect()
            }
            CVector::Add(a, b) => both(a, b, &|a, b| Some(a + b)),
            CVector::Div(a, b) => both(a, b, &|a, b| (b > 0.0).then(|| a / b)),
            CVector::OneMinus(a) => self
                .vector(a, t)
                .into_iter()
                .map(|(k, v)| (k, 1.0 - v))
                .collect(),
        }
    }

    fn commit(&mut self, t: i64) {
        let r = self.retention;
        for slot in &mut self.program.slots {
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
                Track::CounterBy { groups, .. } => {
                    for g in groups.values_mut() {
                        if std::mem::take(&mut g.touched) {
                            g.ring.push(t, g.acc.total, &r, keep);
                        }
                        g.acc.forget_before(t - LOOKBACK_MS);
                    }
                    groups.retain(|_, g| g.ring.newest().is_some_and(|(at, _)| *at >= t - keep));
                }
                Track::GaugeBy { groups, .. } => {
                    for g in groups.values_mut() {
                        g.series.retain(|_, (seen, _)| *seen >= t - LOOKBACK_MS);
                    }
                    groups.retain(|_, g| !g.series.is_empty());
                }
            }
        }
    }

    fn counter(&self, i: usize) -> &Ring<f64> {
        match &self.program.slots[i].track {
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
        let long = self.error_ratio(self.program.slis[slo], tier.long, t)?;
        let short = self.error_ratio(self.program.slis[slo], tier.short, t)?;
        (long > threshold && short > threshold).then_some(long)
    }

    fn gauges(&self, i: usize, t: i64) -> impl Iterator<Item = (u64, f64)> {
        let series = match &self.program.slots[i].track {
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
                let Track::Buckets { ring, .. } = &self.program.slots[*buckets].track else {
                    unreachable_track()
                };
                let to = t - offset.map_or(0, |o| o.millis());
                let rates = bucket_rates(ring, to - window.millis(), to);
                history::quantile(*q, &rates)
            }
            CExpr::ErrorRatio(sli, window) => self.error_ratio(*sli, *window, t),
            CExpr::Max(i) => self.gauges(*i, t).map(|(_, v)| v).reduce(f64::max),
            CExpr::Min(i) => self.gauges(*i, t).map(|(_, v)| v).reduce(f64::min),
            CExpr::MaxRatio(num, den) => {
                let dens: Map<u64, f64> = self.gauges(*den, t).collect();
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
                let Track::Gauge { series, .. } = &self.program.slots[*gauge].track else {
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
            // The largest over groups, where one value is asked for.
            CExpr::Per(v) => self.vector(v, t).into_values().reduce(f64::max),
        }
    }

    fn slo_status(&self, i: usize, t: i64) -> SloStatus {
        let slo = &self.spec.slos[i];
        let sli = self.program.slis[i];
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
            self.program.definitions.iter().any(|d| {
                matches!(d.source, Source::Burn { slo, tier }
                    if slo == i && self.spec.slos[i].tiers[tier].kind == kind)
                    && d.instances
                        .values()
                        .any(|i| i.alert.as_ref().is_some_and(|a| a.state == State::Firing))
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
            .program
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
        self.program
            .definitions
            .iter()
            .flat_map(|d| d.instances.values().filter_map(|i| i.alert.as_ref()))
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
                .program
                .definitions
                .iter_mut()
                .find(|d| matches!(d.source, Source::Rule(i) if i == ri));
            if let Some(d) = d {
                d.labels = rule_definition(ri, r).labels;
                for a in d.instances.values_mut().filter_map(|i| i.alert.as_mut()) {
                    a.labels.extend(d.labels.clone());
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
#[cold]
fn unreachable_track() -> ! {
    // Tracks are created with the kind their expressions read; compile() never mixes them.
    panic!("a track read as another kind: a bug in zen-slo's compiler")
}

/// One evaluation of an alert, as Prometheus' alerting rule does it (2.42, with
/// `keep_firing_for`); `new` gives the alert's name, labels and annotations should it start.
fn step(
    d: &mut Instance,
    new: impl FnOnce() -> (String, Labels, Labels),
    value: Option<f64>,
    t: i64,
    for_: i64,
    keep: i64,
) {
    match value {
        Some(v) => {
            d.keep_firing_since = None;
            match &mut d.alert {
                Some(a) if a.state != State::Resolved => a.value = v,
                slot => {
                    let (name, labels, annotations) = new();
                    *slot = Some(Alert {
                        name,
                        labels,
                        annotations,
                        state: State::Pending,
                        value: v,
                        active_at: t,
                        fired_at: None,
                        resolved_at: None,
                    })
                }
            }
            if let Some(a) = &mut d.alert
                && a.state == State::Pending
                && t - a.active_at >= for_
            {
                a.state = State::Firing;
                a.fired_at = Some(t);
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
