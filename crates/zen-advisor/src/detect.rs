//! Regressions and anomalies, each judged against the series' own history with robust
//! statistics (medians and the median absolute deviation), so that one wild second neither
//! raises an alarm nor hides one.

use serde::Serialize;

use crate::Series;
use crate::stats::{mad, median};

/// A lasting change in a series' level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// When it changed (the time of the first point of the new level).
    pub at: i64,
    /// The median level before and after.
    pub before: f64,
    pub after: f64,
    /// `after / before − 1`: +0.38 is 38 % up.
    pub ratio: f64,
}

/// How regressions are found: the last `window` points against the `baseline` points before
/// them; a change counts when the medians differ by at least `min_ratio` of the baseline's and
/// by at least `sigmas` standard errors (from the baseline's spread).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regression {
    pub window: usize,
    pub baseline: usize,
    pub min_ratio: f64,
    pub sigmas: f64,
}

impl Default for Regression {
    fn default() -> Self {
        Regression {
            window: 30,
            baseline: 240,
            min_ratio: 0.15,
            sigmas: 6.0,
        }
    }
}

impl Regression {
    /// The change at the end of `series`, if there is one. `scratch` is reused.
    pub fn find(&self, series: Series<'_>, scratch: &mut Vec<f64>) -> Option<Change> {
        let points: Vec<(i64, f64)> = series.points().collect();
        let need = self.window + self.baseline;
        if points.len() < need {
            return None;
        }
        let tail = &points[points.len() - need..];
        let (base, recent) = tail.split_at(self.baseline);
        let base_values: Vec<f64> = base.iter().map(|p| p.1).collect();
        scratch.clear();
        scratch.extend_from_slice(&base_values);
        let before = median(scratch);
        let spread = mad(&base_values, before, scratch);
        scratch.clear();
        scratch.extend(recent.iter().map(|p| p.1));
        let after = median(scratch);
        let shift = after - before;
        // The standard error of a median is about 1.25 σ/√n.
        let error = 1.25 * spread * (1.0 / self.window as f64 + 1.0 / self.baseline as f64).sqrt();
        let relative = if before.abs() > f64::EPSILON {
            shift / before.abs()
        } else {
            f64::INFINITY * shift.signum()
        };
        if relative.abs() < self.min_ratio || shift.abs() < self.sigmas * error {
            return None;
        }
        // Where the new level starts: the split of the tail that best separates the two levels.
        let mid = (before + after) / 2.0;
        let mut best = (f64::NEG_INFINITY, recent[0].0);
        let mut score = 0.0;
        for p in tail.iter().rev() {
            score += if (p.1 - mid) * shift.signum() > 0.0 {
                1.0
            } else {
                -1.0
            };
            if score > best.0 {
                best = (score, p.0);
            }
        }
        Some(Change {
            at: best.1,
            before,
            after,
            ratio: relative,
        })
    }
}

/// How unusual a series is now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Anomaly {
    /// The last point's distance from the median of the history before it, in robust standard
    /// deviations.
    pub score: f64,
    /// The share of the last `recent` points whose score is above the threshold.
    pub rate: f64,
}

/// Scores above this are anomalies: rare enough in noise that a stationary series raises
/// fewer than one a week, at one point a second.
pub const ANOMALY: f64 = 7.0;

/// The anomaly of `series`: its last `recent` points against the points before them.
pub fn anomaly(series: Series<'_>, recent: usize, scratch: &mut Vec<f64>) -> Option<Anomaly> {
    let values: Vec<f64> = series.points().map(|p| p.1).collect();
    if values.len() < recent + 30 {
        return None;
    }
    let (base, last) = values.split_at(values.len() - recent);
    scratch.clear();
    scratch.extend_from_slice(base);
    let centre = median(scratch);
    // A floor on the spread: a series that never moved would make any change infinite.
    let spread = mad(base, centre, scratch)
        .max(centre.abs() * 1e-3)
        .max(1e-12);
    let score = |v: f64| (v - centre).abs() / spread;
    let over = last.iter().filter(|v| score(**v) > ANOMALY).count();
    Some(Anomaly {
        score: last.last().map_or(0.0, |v| score(*v)),
        rate: over as f64 / last.len().max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Noise;

    fn series(values: &[f64]) -> Series<'_> {
        Series {
            start: 0,
            step: 1,
            values,
        }
    }

    #[test]
    fn a_twenty_percent_step_is_found_within_sixty_samples_at_its_time() {
        let mut noise = Noise::new(3);
        let mut v: Vec<f64> = (0..600)
            .map(|_| 0.050 * (1.0 + 0.05 * noise.normal()))
            .collect();
        let step_at = v.len() as i64;
        let r = Regression::default();
        assert_eq!(r.find(series(&v), &mut Vec::new()), None, "no change yet");
        for n in 1..=60 {
            v.push(0.060 * (1.0 + 0.05 * noise.normal()));
            if let Some(c) = r.find(series(&v), &mut Vec::new()) {
                assert!(n <= 60);
                assert!((c.ratio - 0.2).abs() < 0.05, "{c:?}");
                assert!(
                    (c.at - step_at).abs() <= 5,
                    "found at {} for {step_at}",
                    c.at
                );
                return;
            }
        }
        panic!("a 20 % step not found within 60 samples");
    }

    #[test]
    fn a_spike_is_an_anomaly_and_noise_is_not() {
        let mut noise = Noise::new(4);
        let mut v: Vec<f64> = (0..400).map(|_| 100.0 + 5.0 * noise.normal()).collect();
        let quiet = anomaly(series(&v), 60, &mut Vec::new()).unwrap_or_else(|| panic!("scored"));
        assert!(quiet.score < ANOMALY && quiet.rate == 0.0, "{quiet:?}");
        v.push(300.0);
        let spike = anomaly(series(&v), 60, &mut Vec::new()).unwrap_or_else(|| panic!("scored"));
        assert!(spike.score > ANOMALY && spike.rate > 0.0, "{spike:?}");
        // A spike is no regression.
        assert_eq!(
            Regression::default().find(series(&v), &mut Vec::new()),
            None
        );
    }
}
