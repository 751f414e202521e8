//! The advisor: what is wrong, why, what to change, and when it will break — computed from the
//! daemon's own history. Trends (a robust slope with its interval, and the change against a
//! day and a week before), forecasts of time to exhaustion ([`forecast`]), regressions and
//! anomalies ([`detect`]), bottlenecks, and recommendations with the evidence behind each and a
//! state a person moves ([`advice`]).
//!
//! Pure: series, facts and the time come in as arguments; nothing here reads a clock, a file or
//! the network. The daemon (zen-server) feeds it from zen-history every few seconds.

pub mod advice;
pub mod detect;
pub mod forecast;
pub mod stats;
pub mod tune;

pub use advice::{Advisor, Facts, Insights, Recommendation, Resource, State};
pub use detect::{ANOMALY, Anomaly, Change, Regression, anomaly};
pub use forecast::{Forecast, Limit, exhaustion};
pub use tune::{Bounds, Knob, Observed, Tuner};

use serde::Serialize;

/// Values at `start`, `start + step`, …; NaN where there is none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Series<'a> {
    pub start: i64,
    pub step: i64,
    pub values: &'a [f64],
}

impl<'a> Series<'a> {
    /// The points that have a value, as (time, value).
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + 'a {
        let (start, step) = (self.start, self.step);
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(move |(i, v)| (start + i as i64 * step, *v))
    }
}

/// Where a series is heading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// Per hour, with its interval (about 95 %).
    pub per_hour: f64,
    pub low: f64,
    pub high: f64,
    /// The median over the range.
    pub level: f64,
}

/// The robust trend of `series` (see [`stats::robust_line`]); `None` with too few points.
pub fn trend(
    series: Series<'_>,
    points: &mut Vec<(f64, f64)>,
    scratch: &mut Vec<f64>,
) -> Option<Trend> {
    points.clear();
    points.extend(series.points().map(|(t, v)| ((t - series.start) as f64, v)));
    let fit = stats::robust_line(points, scratch)?;
    scratch.clear();
    scratch.extend(points.iter().map(|p| p.1));
    Some(Trend {
        per_hour: fit.slope * 3_600.0,
        low: fit.low * 3_600.0,
        high: fit.high * 3_600.0,
        level: stats::median(scratch),
    })
}

/// `now / before − 1` of the medians of two ranges of a series (the same range a day or a
/// week earlier); `None` when either has no point or the earlier one is zero.
pub fn change(now: Series<'_>, before: Series<'_>, scratch: &mut Vec<f64>) -> Option<f64> {
    scratch.clear();
    scratch.extend(now.points().map(|p| p.1));
    let a = stats::median(scratch);
    scratch.clear();
    scratch.extend(before.points().map(|p| p.1));
    let b = stats::median(scratch);
    (a.is_finite() && b.is_finite() && b.abs() > f64::EPSILON).then(|| a / b - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_is_per_hour_and_a_change_is_against_the_earlier_range() {
        let now: Vec<f64> = (0..360).map(|i| 100.0 + 0.01 * f64::from(i)).collect();
        let s = Series {
            start: 0,
            step: 10,
            values: &now,
        };
        let t = trend(s, &mut Vec::new(), &mut Vec::new()).unwrap_or_else(|| panic!("a trend"));
        // 0.01 every 10 s is 3.6 an hour.
        assert!(
            (t.per_hour - 3.6).abs() < 1e-9 && t.low <= t.per_hour && t.high >= t.per_hour,
            "{t:?}"
        );
        let before: Vec<f64> = now.iter().map(|v| v / 1.25).collect();
        let e = Series {
            start: -86_400,
            step: 10,
            values: &before,
        };
        let up = change(s, e, &mut Vec::new()).unwrap_or(f64::NAN);
        assert!((up - 0.25).abs() < 1e-9, "{up}");
        let nothing = [f64::NAN; 4];
        assert_eq!(
            change(
                s,
                Series {
                    values: &nothing,
                    ..e
                },
                &mut Vec::new()
            ),
            None
        );
    }
}
