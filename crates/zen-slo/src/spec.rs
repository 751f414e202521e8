//! What is evaluated: SLOs with their burn-rate tiers, and threshold alert rules, all as data.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time in whole seconds, written as Prometheus writes durations (`5m`, `1h`, `3d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Window(u64);

impl Window {
    pub const fn seconds(s: u64) -> Window {
        Window(s)
    }
    pub const fn minutes(m: u64) -> Window {
        Window(m * 60)
    }
    pub const fn hours(h: u64) -> Window {
        Window(h * 3600)
    }
    pub const fn days(d: u64) -> Window {
        Window(d * 86_400)
    }
    pub const fn as_secs(self) -> u64 {
        self.0
    }
    /// In milliseconds, the evaluator's unit of time.
    pub const fn millis(self) -> i64 {
        self.0 as i64 * 1000
    }
}

impl fmt::Display for Window {
    /// The largest unit that divides the span: `90m`, not `1h30m`, which every Prometheus reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s != 0 && s.is_multiple_of(size) {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl FromStr for Window {
    type Err = String;

    /// `30s`, `5m`, `1h30m`, `7d`, `1w`: a number and a unit, repeated.
    fn from_str(text: &str) -> Result<Window, String> {
        let bad = || format!("expected a duration such as 30s, 5m, 1h or 7d, found {text:?}");
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let size = match &rest[..unit_len] {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 604_800,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(size)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(bad)?;
        }
        Ok(Window(total))
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How a label is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `label="value"`
    Equal,
    /// `label=~"regex"`, anchored at both ends as in PromQL.
    Regex,
}

/// One label matcher of a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
}

/// A metric name and label matchers: the series an expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    pub fn new(metric: &str) -> Selector {
        Selector {
            metric: metric.to_owned(),
            matchers: Vec::new(),
        }
    }

    /// Adds `label="value"`.
    pub fn eq(mut self, label: &str, value: &str) -> Selector {
        self.matchers.push(Matcher {
            label: label.to_owned(),
            op: MatchOp::Equal,
            value: value.to_owned(),
        });
        self
    }

    /// Adds `label=~"regex"`.
    pub fn re(mut self, label: &str, regex: &str) -> Selector {
        self.matchers.push(Matcher {
            label: label.to_owned(),
            op: MatchOp::Regex,
            value: regex.to_owned(),
        });
        self
    }

    /// The same matchers on another metric (a histogram's `_bucket` or `_count` series).
    pub fn renamed(&self, metric: String) -> Selector {
        Selector {
            metric,
            matchers: self.matchers.clone(),
        }
    }
}

/// What an SLO measures, as a share of bad events.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// Observations of a histogram above `threshold` (one of its declared bucket bounds) are
    /// bad; `histogram` names the histogram without `_bucket`/`_count`.
    Latency { histogram: Selector, threshold: f64 },
    /// `errors` over `total`, both counters.
    Ratio { errors: Selector, total: Selector },
}

/// How urgent an alert is; Alertmanager routes on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A page wakes someone; a ticket waits for working hours. A page inhibits the same SLO's ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierKind {
    Page,
    Ticket,
}

impl TierKind {
    /// The `tier` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TierKind::Page => "page",
            TierKind::Ticket => "ticket",
        }
    }
}

/// One multi-window burn-rate alert: it fires while the error ratio over both windows exceeds
/// `factor × (1 − objective)`, where spending `budget_percent` of the period's error budget in
/// `long` gives `factor = budget_percent / 100 × period / long` (the SRE workbook's 14.4 for
/// 2 % in 1 h of 30 days).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    pub kind: TierKind,
    pub budget_percent: f64,
    pub long: Window,
    pub short: Window,
}

impl Tier {
    /// The SRE workbook's four: page on 2 % in 1 h (5 m) and 5 % in 6 h (30 m); ticket on 10 %
    /// in 1 d (2 h) and 10 % in 3 d (6 h).
    pub const STANDARD: [Tier; 4] = [
        Tier::new(TierKind::Page, 2.0, Window::hours(1), Window::minutes(5)),
        Tier::new(TierKind::Page, 5.0, Window::hours(6), Window::minutes(30)),
        Tier::new(TierKind::Ticket, 10.0, Window::days(1), Window::hours(2)),
        Tier::new(TierKind::Ticket, 10.0, Window::days(3), Window::hours(6)),
    ];

    pub const fn new(kind: TierKind, budget_percent: f64, long: Window, short: Window) -> Tier {
        Tier {
            kind,
            budget_percent,
            long,
            short,
        }
    }

    /// The burn-rate factor for an SLO over `period`.
    pub fn factor(&self, period: Window) -> f64 {
        exact(self.budget_percent / 100.0 * period.as_secs() as f64 / self.long.as_secs() as f64)
    }

    pub fn severity(&self) -> Severity {
        match self.kind {
            TierKind::Page => Severity::Critical,
            TierKind::Ticket => Severity::Warning,
        }
    }
}

/// A service level objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Lower-case words joined by `-`; the `slo` label of everything derived from it.
    pub name: String,
    pub description: String,
    /// The share of good events promised, in percent (`99.9`).
    pub objective_percent: f64,
    /// 30 days by default; 28 and 7 days are the other usual choices.
    pub period: Window,
    pub sli: Sli,
    pub tiers: Vec<Tier>,
}

impl Slo {
    /// The error budget: the share of events allowed to be bad.
    pub fn budget(&self) -> f64 {
        exact(1.0 - self.objective_percent / 100.0)
    }

    /// The error ratio above which `tier` fires.
    pub fn threshold(&self, tier: &Tier) -> f64 {
        exact(tier.factor(self.period) * self.budget())
    }

    /// Every window the SLO's tiers read, shortest first.
    pub fn windows(&self) -> Vec<Window> {
        let mut w: Vec<Window> = self.tiers.iter().flat_map(|t| [t.long, t.short]).collect();
        w.sort();
        w.dedup();
        w
    }
}

/// A comparison of an expression's value with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<")]
    Below,
}

impl Cmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Above => ">",
            Cmp::Below => "<",
        }
    }
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Above => value > threshold,
            Cmp::Below => value < threshold,
        }
    }
}

/// An expression with one value (or none: no data), over the metrics of the catalog. Each
/// renders as PromQL that aggregates to a single series without labels, and the evaluator
/// computes the same number from the samples it is given.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `histogram_quantile(q, sum by (le) (rate(H_bucket[window] offset o)))`, no data without
    /// observations in the window.
    Quantile {
        q: f64,
        histogram: Selector,
        window: Window,
        offset: Option<Window>,
    },
    /// The share of bad events over `window`: Σ bad / Σ total (a ratio of sums, never an average
    /// of ratios), no data without any event.
    ErrorRatio { sli: Sli, window: Window },
    /// The largest value of a gauge.
    Max(Selector),
    /// The smallest value of a gauge (NaN values count only when all are).
    Min(Selector),
    /// The largest ratio of two gauges with the same labels (`queue_depth / queue_capacity`).
    MaxRatio { num: Selector, den: Selector },
    /// `a / b`, no data when `b` is not positive.
    Div(Box<Expr>, Box<Expr>),
    /// A least-squares line through the gauge over `window`, read `horizon` ahead (the largest
    /// over series).
    PredictLinear {
        gauge: Selector,
        window: Window,
        horizon: Window,
    },
    /// 1 when no series of the selector has a sample in the last five minutes.
    Absent(Selector),
    /// One value per group of series, the groups told apart by the `by` labels: a rule on it
    /// raises one alert per group that meets its condition, carrying the group's labels (one
    /// per disk, interface or container).
    Per { by: Vec<String>, vector: Vector },
}

/// A value per group of series (see [`Expr::Per`]): every leaf sums its series by the group's
/// labels, and the operators pair the groups both sides have.
#[derive(Debug, Clone, PartialEq)]
pub enum Vector {
    /// `sum by (…) (rate(counter[window]))`.
    Rate { counter: Selector, window: Window },
    /// `sum by (…) (increase(counter[window]))`.
    Increase { counter: Selector, window: Window },
    /// `sum by (…) (gauge)`.
    Gauge(Selector),
    /// `a + b`.
    Add(Box<Vector>, Box<Vector>),
    /// `a / (b > 0)`: no value for a group where `b` is not positive.
    Div(Box<Vector>, Box<Vector>),
    /// `1 - a`.
    OneMinus(Box<Vector>),
}

impl std::ops::Add for Vector {
    type Output = Vector;
    fn add(self, other: Vector) -> Vector {
        Vector::Add(Box::new(self), Box::new(other))
    }
}

impl std::ops::Div for Vector {
    type Output = Vector;
    fn div(self, other: Vector) -> Vector {
        Vector::Div(Box::new(self), Box::new(other))
    }
}

impl Vector {
    pub fn rate(counter: Selector, window: Window) -> Vector {
        Vector::Rate { counter, window }
    }
    pub fn increase(counter: Selector, window: Window) -> Vector {
        Vector::Increase { counter, window }
    }
    pub fn gauge(gauge: Selector) -> Vector {
        Vector::Gauge(gauge)
    }
    pub fn one_minus(self) -> Vector {
        Vector::OneMinus(Box::new(self))
    }

    /// The leaves' selectors, left to right.
    pub fn leaves(&self) -> Vec<&Selector> {
        match self {
            Vector::Rate { counter: s, .. }
            | Vector::Increase { counter: s, .. }
            | Vector::Gauge(s) => vec![s],
            Vector::Add(a, b) | Vector::Div(a, b) => {
                let mut out = a.leaves();
                out.extend(b.leaves());
                out
            }
            Vector::OneMinus(a) => a.leaves(),
        }
    }

    /// The longest range a leaf reads.
    pub fn reach(&self) -> Window {
        match self {
            Vector::Rate { window, .. } | Vector::Increase { window, .. } => *window,
            Vector::Gauge(_) => Window::minutes(5),
            Vector::Add(a, b) | Vector::Div(a, b) => a.reach().max(b.reach()),
            Vector::OneMinus(a) => a.reach(),
        }
    }
}

/// A threshold alert rule, with Prometheus' semantics: pending while the condition holds for
/// less than `for_`, then firing; resolved once it stops holding for `keep_firing_for`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The alert name, `ZenWatcher…`.
    pub name: String,
    pub expr: Expr,
    /// The comparison and its threshold; `None` for an expression that is itself the condition
    /// ([`Expr::Absent`]).
    pub condition: Option<(Cmp, f64)>,
    pub for_: Window,
    pub keep_firing_for: Window,
    pub severity: Severity,
    pub summary: String,
    pub description: String,
    pub runbook: String,
}

/// One factor of the health score, between 0 and 1; without data it is 1.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthTerm {
    /// `1 − ` a share of bad events.
    Good(Sli, Window),
    /// 1 up to `from` percent of the gauge's largest value, falling linearly to 0 at `to`.
    Headroom { gauge: Selector, from: f64, to: f64 },
}

/// Everything evaluated: the SLOs, the threshold rules and the health score's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub slos: Vec<Slo>,
    pub rules: Vec<Rule>,
    /// The health score is 100 × the product of these.
    pub health: Vec<HealthTerm>,
}

/// Why a spec cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("SLO {slo}: {message}")]
    Slo { slo: String, message: String },
    #[error("rule {rule}: {message}")]
    Rule { rule: String, message: String },
}

/// The burn-rate alert's name; its `slo`, `window` and `tier` labels tell them apart.
pub const BURN_ALERT: &str = "ZenWatcherErrorBudgetBurn";

/// Where the runbooks live; each alert links to its anchor.
pub const RUNBOOKS: &str = "https://github.com/zen-watcher/zen-watcher/blob/main/docs/alerting.md";

impl Spec {
    /// Checks what Prometheus and the evaluator both rely on. `buckets` gives a histogram's
    /// declared bucket bounds (from the metric catalog), `None` for a name that is not one.
    pub fn validate(&self, buckets: impl Fn(&str) -> Option<Vec<f64>>) -> Result<(), SpecError> {
        let mut names = std::collections::BTreeSet::new();
        for slo in &self.slos {
            let err = |message: String| SpecError::Slo {
                slo: slo.name.clone(),
                message,
            };
            if !names.insert(slo.name.as_str()) {
                return Err(err("the name is used twice".into()));
            }
            if slo.name.is_empty()
                || !slo
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(
                    "the name must be lower-case letters, digits and '-'".into()
                ));
            }
            if !(slo.objective_percent > 0.0 && slo.objective_percent < 100.0) {
                return Err(err(format!(
                    "the objective must be between 0 and 100 %, exclusive; found {}",
                    slo.objective_percent
                )));
            }
            if slo.tiers.is_empty() {
                return Err(err(
                    "it has no burn-rate tier, so it could never alert".into()
                ));
            }
            for t in &slo.tiers {
                if t.short >= t.long || t.long > slo.period {
                    return Err(err(format!(
                        "tier {}/{}: the short window must be shorter than the long one, and the long one no longer than the period ({})",
                        t.long, t.short, slo.period
                    )));
                }
                let threshold = slo.threshold(t);
                if threshold >= 1.0 {
                    return Err(err(format!(
                        "tier {}/{} can never fire: it needs an error ratio above {} (burn {}× a budget of {}), and a ratio is at most 1",
                        t.long,
                        t.short,
                        threshold,
                        t.factor(slo.period),
                        slo.budget()
                    )));
                }
            }
            if let Sli::Latency {
                histogram,
                threshold,
            } = &slo.sli
            {
                let declared = buckets(&histogram.metric)
                    .ok_or_else(|| err(format!("{} is not a histogram", histogram.metric)))?;
                if !declared.contains(threshold) {
                    return Err(err(format!(
                        "the latency threshold {threshold} is not a bucket bound of {} ({declared:?})",
                        histogram.metric
                    )));
                }
            }
        }
        let mut rules = std::collections::BTreeSet::new();
        for r in &self.rules {
            if !rules.insert(r.name.as_str()) || r.name == BURN_ALERT {
                return Err(SpecError::Rule {
                    rule: r.name.clone(),
                    message: "the name is used twice".into(),
                });
            }
            if let Some((_, t)) = r.condition {
                check_threshold(&r.name, t)?;
            }
            let by: &[String] = match &r.expr {
                Expr::Per { by, .. } => by,
                _ => &[],
            };
            if matches!(r.expr, Expr::Per { .. }) && (by.is_empty() || r.condition.is_none()) {
                return Err(SpecError::Rule {
                    rule: r.name.clone(),
                    message: "a per-group rule needs the labels of its groups and a threshold"
                        .into(),
                });
            }
            for text in [&r.summary, &r.description] {
                if let Some(l) = crate::compile::templated(text)
                    .into_iter()
                    .find(|l| !by.iter().any(|b| b == l))
                {
                    return Err(SpecError::Rule {
                        rule: r.name.clone(),
                        message: format!(
                            "{{{{ $labels.{l} }}}}: {l} is not a label of the rule's groups ({})",
                            by.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn check_threshold(rule: &str, t: f64) -> Result<(), SpecError> {
    if t.is_finite() {
        Ok(())
    } else {
        Err(SpecError::Rule {
            rule: rule.to_owned(),
            message: format!("the threshold must be a finite number, found {t}"),
        })
    }
}

/// `x` rounded to 12 significant digits, so that `14.4 × 0.001` is `0.0144` and not
/// `0.014400000000000001`: what the rules print and what the evaluator compares with are the same
/// number.
pub fn exact(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Labels of a rule or an alert, sorted.
pub type Labels = BTreeMap<String, String>;

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
