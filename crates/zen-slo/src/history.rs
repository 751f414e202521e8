//! The samples the evaluator keeps, and PromQL's functions over them with Prometheus 2's
//! semantics: ranges `[t − w, t]` closed at both ends, a five-minute look-back for instant values,
//! `rate()` extrapolated as Prometheus extrapolates it, `histogram_quantile()`'s linear
//! interpolation, and `predict_linear()`'s least squares.
//!
//! Counters are kept as one sum per selector: each series adds what it grew since it was last
//! seen (its value after a reset; nothing when first seen, as `rate()` ignores a series' history
//! before its first sample). Recent samples are kept at the evaluation interval, older ones one a
//! minute, for as long as the longest window that reads them needs.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

/// A hash map of fixed seeds: what an engine holds costs the same work in every run, as the
/// instruction-count benchmarks need (std's maps are seeded at random).
pub(crate) type Map<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

use regex::Regex;

use crate::spec::{MatchOp, Selector};

/// How long an instant selector looks back for a sample (Prometheus' default).
pub(crate) const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// At what resolution samples are kept; each series is kept as long as the longest window that
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Every sample is kept this long at most (milliseconds).
    pub fine_ms: i64,
    /// After that, one sample per this step is kept (milliseconds).
    pub coarse_step_ms: i64,
}

/// Samples of one value over time, at two resolutions.
#[derive(Debug, Clone)]
pub(crate) struct Ring<V> {
    fine: VecDeque<(i64, V)>,
    coarse: VecDeque<(i64, V)>,
}

impl<V: Clone> Ring<V> {
    pub(crate) fn new() -> Ring<V> {
        Ring {
            fine: VecDeque::new(),
            coarse: VecDeque::new(),
        }
    }

    /// Adds a sample; forgets those older than `keep_ms`.
    pub(crate) fn push(&mut self, t: i64, v: V, r: &Retention, keep_ms: i64) {
        let fine_ms = r.fine_ms.min(keep_ms);
        if self
            .coarse
            .back()
            .is_none_or(|(c, _)| t - c >= r.coarse_step_ms)
        {
            self.coarse.push_back((t, v.clone()));
        }
        self.fine.push_back((t, v));
        while self.fine.front().is_some_and(|(f, _)| *f < t - fine_ms) {
            self.fine.pop_front();
        }
        while self.coarse.front().is_some_and(|(c, _)| *c < t - keep_ms) {
            self.coarse.pop_front();
        }
    }

    /// The samples with `from ≤ t ≤ to`, oldest first: minute samples older than the oldest
    /// fine one, then the fine ones.
    pub(crate) fn range(&self, from: i64, to: i64) -> impl Iterator<Item = &(i64, V)> {
        let split = self.fine.front().map_or(i64::MAX, |f| f.0);
        let c0 = self.coarse.partition_point(|(t, _)| *t < from);
        let c1 = self.coarse.partition_point(|(t, _)| *t < split.min(to + 1));
        let f0 = self.fine.partition_point(|(t, _)| *t < from);
        let f1 = self.fine.partition_point(|(t, _)| *t <= to);
        self.coarse
            .range(c0..c1.max(c0))
            .chain(self.fine.range(f0..f1.max(f0)))
    }

    /// The newest sample held.
    pub(crate) fn newest(&self) -> Option<&(i64, V)> {
        self.fine.back().or(self.coarse.back())
    }

    /// The oldest sample held.
    pub(crate) fn oldest(&self) -> Option<&(i64, V)> {
        match (self.coarse.front(), self.fine.front()) {
            (Some(c), Some(f)) => Some(if c.0 <= f.0 { c } else { f }),
            (c, f) => c.or(f),
        }
    }
}

/// A selector compiled for matching samples.
#[derive(Debug)]
pub(crate) struct Compiled {
    metric: String,
    matchers: Vec<(String, Test)>,
}

#[derive(Debug)]
enum Test {
    Equal(String),
    /// `le` compared as a number, so `0.1` matches however the exporter prints it.
    Bound(f64),
    Regex(Regex),
}

impl Compiled {
    pub(crate) fn new(s: &Selector) -> Result<Compiled, regex::Error> {
        let matchers = s
            .matchers
            .iter()
            .map(|m| {
                let test = match m.op {
                    MatchOp::Regex => Test::Regex(Regex::new(&format!("^(?:{})$", m.value))?),
                    MatchOp::Equal if m.label == "le" => match parse_bound(&m.value) {
                        Some(b) => Test::Bound(b),
                        None => Test::Equal(m.value.clone()),
                    },
                    MatchOp::Equal => Test::Equal(m.value.clone()),
                };
                Ok((m.label.clone(), test))
            })
            .collect::<Result<_, regex::Error>>()?;
        Ok(Compiled {
            metric: s.metric.clone(),
            matchers,
        })
    }

    pub(crate) fn metric(&self) -> &str {
        &self.metric
    }

    /// Whether the labels match (a missing label is the empty string, as in PromQL).
    pub(crate) fn matches(&self, labels: &[(&str, &str)]) -> bool {
        self.matchers.iter().all(|(label, test)| {
            let value = labels
                .iter()
                .find(|(k, _)| k == label)
                .map_or("", |(_, v)| v);
            match test {
                Test::Equal(want) => value == want,
                Test::Bound(want) => parse_bound(value) == Some(*want),
                Test::Regex(re) => re.is_match(value),
            }
        })
    }
}

/// A bucket bound: a number or `+Inf`.
pub(crate) fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        _ => text.parse().ok(),
    }
}

/// A series' identity: its labels but `skip`, in any order.
pub(crate) fn key(labels: &[(&str, &str)], skip: &str) -> u64 {
    let mut pairs: Vec<&(&str, &str)> = labels.iter().filter(|(k, _)| *k != skip).collect();
    pairs.sort_unstable();
    let mut h = DefaultHasher::new();
    pairs.hash(&mut h);
    h.finish()
}

/// A sum of counters that only grows (resets and new series accounted for).
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    last: Map<u64, (f64, i64)>,
    pub(crate) total: f64,
}

impl Accumulator {
    pub(crate) fn add(&mut self, key: u64, value: f64, t: i64) {
        match self.last.insert(key, (value, t)) {
            Some((before, _)) if value >= before => self.total += value - before,
            Some(_) => self.total += value,
            None => {}
        }
    }

    /// Forgets series not seen for a look-back, so that one that comes back counts as new.
    pub(crate) fn forget_before(&mut self, t: i64) {
        self.last.retain(|_, (_, seen)| *seen >= t);
    }
}

/// How much a counter grew over `[from, to]`, extrapolated to the window's edges as Prometheus'
/// `rate()` does; `None` with fewer than two samples.
pub(crate) fn extrapolated_increase(
    first: (i64, f64),
    last: (i64, f64),
    samples: usize,
    from: i64,
    to: i64,
) -> Option<f64> {
    if samples < 2 || last.0 <= first.0 {
        return None;
    }
    let result = last.1 - first.1;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let mut to_start = (first.0 - from) as f64 / 1000.0;
    let to_end = (to - last.0) as f64 / 1000.0;
    let average = sampled / (samples - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (interval / sampled))
}

/// `rate(counter[to − from])` over a ring of a counter's samples.
pub(crate) fn rate(ring: &Ring<f64>, from: i64, to: i64) -> Option<f64> {
    let mut it = ring.range(from, to);
    let first = *it.next()?;
    let (n, last) = it.fold((1, first), |(n, _), s| (n + 1, *s));
    extrapolated_increase(first, last, n, from, to).map(|inc| inc / ((to - from) as f64 / 1000.0))
}

/// `rate()` of every bucket of a histogram, by upper bound.
pub(crate) fn bucket_rates(ring: &Ring<Vec<(f64, f64)>>, from: i64, to: i64) -> Vec<(f64, f64)> {
    let mut it = ring.range(from, to);
    let Some(first) = it.next() else {
        return Vec::new();
    };
    let (n, last) = it.fold((1, first), |(n, _), s| (n + 1, s));
    let seconds = (to - from) as f64 / 1000.0;
    last.1
        .iter()
        .filter_map(|&(le, v)| {
            let before = first.1.iter().find(|(b, _)| *b == le)?.1;
            let inc = extrapolated_increase((first.0, before), (last.0, v), n, from, to)?;
            Some((le, inc / seconds))
        })
        .collect()
}

/// `histogram_quantile(q, …)` over per-bucket rates sorted by bound, as Prometheus 2 computes it;
/// `None` where it would give NaN (no `+Inf` bucket, fewer than two buckets, no observations).
pub(crate) fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if buckets.len() < 2 || buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    // Counts must not fall from one bucket to the next (they can, by float error in rates).
    let mut counts: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    let mut max = f64::NEG_INFINITY;
    for &(le, c) in buckets {
        max = max.max(c);
        counts.push((le, max));
    }
    let observations = counts[counts.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return None;
    }
    let mut rank = q * observations;
    let b = counts[..counts.len() - 1].partition_point(|(_, c)| *c < rank);
    if b == counts.len() - 1 {
        return Some(counts[counts.len() - 2].0);
    }
    if b == 0 && counts[0].0 <= 0.0 {
        return Some(counts[0].0);
    }
    let (mut start, end, mut count) = (0.0, counts[b].0, counts[b].1);
    if b > 0 {
        start = counts[b - 1].0;
        count -= counts[b - 1].1;
        rank -= counts[b - 1].1;
    }
    Some(start + (end - start) * (rank / count))
}

/// `predict_linear()`: the least-squares line through the samples, read `horizon_s` seconds
/// after `at`.
pub(crate) fn predict_linear(samples: &[(i64, f64)], at: i64, horizon_s: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0].1;
    if samples.iter().all(|(_, v)| *v == first) {
        return Some(first);
    }
    let n = samples.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in samples {
        let x = (t - at) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    let v = slope * horizon_s + intercept;
    v.is_finite().then_some(v)
}
