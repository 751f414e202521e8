//! Building an engine: a [`Spec`] compiled into the tracks its expressions read (one per
//! distinct selector and kind, kept as far back as the longest expression reading it needs) and
//! the alert definitions it evaluates. Evaluating them is [`crate::eval`]'s job.

use crate::eval::Alert;
use crate::history::{Accumulator, Compiled, Map, Ring};
use std::collections::BTreeMap;

use crate::spec::{
    BURN_ALERT, Expr, HealthTerm, Labels, Rule, Selector, Sli, Spec, SpecError, Vector, Window,
    labels,
};

/// What is kept of one selector's samples: counters and histogram buckets summed over their
/// series, gauges per series.
#[derive(Debug)]
pub(crate) enum Track {
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
        series: Map<u64, Gauge>,
        history: bool,
    },
    /// A counter summed per group of series (the `by` labels' values).
    CounterBy {
        by: Vec<String>,
        groups: Map<u64, CounterGroup>,
    },
    /// A gauge's series per group; the group's value is their sum.
    GaugeBy {
        by: Vec<String>,
        groups: Map<u64, GaugeGroup>,
    },
}

/// One group of a counter read per group.
#[derive(Debug)]
pub(crate) struct CounterGroup {
    pub(crate) labels: Labels,
    pub(crate) acc: Accumulator,
    pub(crate) touched: bool,
    pub(crate) ring: Ring<f64>,
}

/// One group of a gauge read per group: each series' latest sample.
#[derive(Debug)]
pub(crate) struct GaugeGroup {
    pub(crate) labels: Labels,
    pub(crate) series: Map<u64, (i64, f64)>,
}

/// A sample's group among those told apart by `by`: its key, and the labels it carries (the
/// `by` labels that are not empty, as PromQL's `sum by` keeps them).
pub(crate) fn group(by: &[String], labels: &[(&str, &str)]) -> (u64, Labels) {
    let kept: Labels = by
        .iter()
        .filter_map(|b| {
            let v = labels.iter().find(|(k, _)| k == b).map_or("", |(_, v)| v);
            (!v.is_empty()).then(|| (b.clone(), v.to_owned()))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (crate::history::key(&pairs, ""), kept)
}

/// One gauge series: its latest sample and, when a forecast reads it, its history.
#[derive(Debug)]
pub(crate) struct Gauge {
    pub(crate) latest: (i64, f64),
    pub(crate) ring: Ring<f64>,
}

/// How an expression reads a selector; one track per selector and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Counter,
    Buckets,
    Gauge,
    GaugeHistory,
    CounterBy,
    GaugeBy,
}

/// A selector and the track of what it matched.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) sel: Compiled,
    pub(crate) track: Track,
    /// How far back the expressions reading it look.
    pub(crate) reach: Window,
}

/// An SLI with its selectors resolved to tracks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CSli {
    Latency { count: usize, good: usize },
    Ratio { errors: usize, total: usize },
}

#[derive(Debug, Clone)]
pub(crate) enum CExpr {
    Quantile {
        q: f64,
        buckets: usize,
        window: Window,
        offset: Option<Window>,
    },
    ErrorRatio(CSli, Window),
    Max(usize),
    Min(usize),
    MaxRatio(usize, usize),
    Div(Box<CExpr>, Box<CExpr>),
    Predict {
        gauge: usize,
        window: Window,
        horizon: Window,
    },
    Absent(usize),
    Per(CVector),
}

/// A [`Vector`] with its leaves resolved to tracks.
#[derive(Debug, Clone)]
pub(crate) enum CVector {
    Rate(usize, Window),
    Increase(usize, Window),
    Gauge(usize),
    Add(Box<CVector>, Box<CVector>),
    Div(Box<CVector>, Box<CVector>),
    OneMinus(Box<CVector>),
}

#[derive(Debug)]
pub(crate) enum CHealth {
    Good(CSli, Window),
    Headroom { gauge: usize, from: f64, to: f64 },
}

/// Where an alert comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    Burn { slo: usize, tier: usize },
    Rule(usize),
}

#[derive(Debug)]
pub(crate) struct Definition {
    pub(crate) source: Source,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) annotations: Labels,
    /// The alerts it raised, by group (one, keyed 0, for an expression with a single value).
    pub(crate) instances: BTreeMap<u64, Instance>,
}

/// One alert of a definition and the state of its `keep_firing_for`.
#[derive(Debug, Default)]
pub(crate) struct Instance {
    pub(crate) alert: Option<Alert>,
    pub(crate) keep_firing_since: Option<i64>,
}

/// `text` with each `{{ $labels.name }}` replaced by the label's value, as Prometheus'
/// templates do for these (the only template the spec's annotations use).
pub(crate) fn render(text: &str, labels: &Labels) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find("}}") else {
            rest = &rest[at..];
            break;
        };
        let inner = rest[at + 2..at + end].trim();
        match inner.strip_prefix("$labels.") {
            Some(name) => out.push_str(labels.get(name).map_or("", String::as_str)),
            None => out.push_str(&rest[at..at + end + 2]),
        }
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The `$labels.name` a text's templates read.
pub(crate) fn templated(text: &str) -> Vec<&str> {
    text.split("{{")
        .skip(1)
        .filter_map(|t| t.split("}}").next()?.trim().strip_prefix("$labels."))
        .collect()
}

/// The tracks an engine reads, built while compiling the spec.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub(crate) slots: Vec<Slot>,
    pub(crate) index: Map<(Kind, String), usize>,
}

impl Builder {
    /// The track of `sel`, read up to `reach` back.
    fn track(&mut self, kind: Kind, sel: &Selector, reach: Window) -> Result<usize, SpecError> {
        self.track_by(kind, sel, reach, &[])
    }

    /// The track of `sel`, per group of the `by` labels for the grouped kinds.
    fn track_by(
        &mut self,
        kind: Kind,
        sel: &Selector,
        reach: Window,
        by: &[String],
    ) -> Result<usize, SpecError> {
        let mut name = crate::promql::selector(sel, &[]);
        if !by.is_empty() {
            name = format!("{name} by ({})", by.join(", "));
        }
        let key = (kind, name);
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
                series: Map::default(),
                history: kind == Kind::GaugeHistory,
            },
            Kind::CounterBy => Track::CounterBy {
                by: by.to_vec(),
                groups: Map::default(),
            },
            Kind::GaugeBy => Track::GaugeBy {
                by: by.to_vec(),
                groups: Map::default(),
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
            Expr::Min(s) => CExpr::Min(self.track(Kind::Gauge, s, Window::default())?),
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
            Expr::Per { by, vector } => CExpr::Per(self.vector(vector, by)?),
        })
    }

    fn vector(&mut self, v: &Vector, by: &[String]) -> Result<CVector, SpecError> {
        Ok(match v {
            Vector::Rate { counter, window } => CVector::Rate(
                self.track_by(Kind::CounterBy, counter, *window, by)?,
                *window,
            ),
            Vector::Increase { counter, window } => CVector::Increase(
                self.track_by(Kind::CounterBy, counter, *window, by)?,
                *window,
            ),
            Vector::Gauge(g) => {
                CVector::Gauge(self.track_by(Kind::GaugeBy, g, Window::default(), by)?)
            }
            Vector::Add(a, b) => {
                CVector::Add(Box::new(self.vector(a, by)?), Box::new(self.vector(b, by)?))
            }
            Vector::Div(a, b) => {
                CVector::Div(Box::new(self.vector(a, by)?), Box::new(self.vector(b, by)?))
            }
            Vector::OneMinus(a) => CVector::OneMinus(Box::new(self.vector(a, by)?)),
        })
    }
}

/// The longest span an expression reads back.
pub(crate) fn reach(e: &Expr) -> Window {
    match e {
        Expr::Quantile { window, offset, .. } => {
            Window::seconds(window.as_secs() + offset.map_or(0, |o| o.as_secs()))
        }
        Expr::ErrorRatio { window, .. } | Expr::PredictLinear { window, .. } => *window,
        Expr::Div(a, b) => reach(a).max(reach(b)),
        Expr::Max(_) | Expr::Min(_) | Expr::MaxRatio { .. } | Expr::Absent(_) => Window::minutes(5),
        Expr::Per { vector, .. } => vector.reach(),
    }
}

/// An engine's program: the spec's SLIs, rules and health terms resolved to the tracks they
/// read, and one alert definition per burn-rate tier and rule.
#[derive(Debug)]
pub(crate) struct Program {
    pub(crate) slots: Vec<Slot>,
    pub(crate) by_name: Map<String, Vec<usize>>,
    pub(crate) slis: Vec<CSli>,
    pub(crate) rules: Vec<CExpr>,
    pub(crate) health: Vec<CHealth>,
    pub(crate) definitions: Vec<Definition>,
}

/// Compiles `spec`; an error names the rule or selector that cannot be read.
pub(crate) fn compile(spec: &Spec) -> Result<Program, SpecError> {
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
    let mut by_name: Map<String, Vec<usize>> = Map::default();
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
                instances: BTreeMap::new(),
            });
        }
    }
    for (ri, r) in spec.rules.iter().enumerate() {
        definitions.push(rule_definition(ri, r));
    }
    Ok(Program {
        slots: b.slots,
        by_name,
        slis,
        rules,
        health,
        definitions,
    })
}

pub(crate) fn rule_definition(ri: usize, r: &Rule) -> Definition {
    Definition {
        source: Source::Rule(ri),
        name: r.name.clone(),
        labels: labels(&[("severity", r.severity.as_str())]),
        annotations: labels(&[
            ("summary", &r.summary),
            ("description", &r.description),
            ("runbook_url", &r.runbook),
        ]),
        instances: BTreeMap::new(),
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
