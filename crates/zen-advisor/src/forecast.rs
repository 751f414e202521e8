//! Time to exhaustion: when a series reaches its limit at the pace of its robust trend, with
//! an interval from the trend's; "not enough data" rather than a guess.

use serde::Serialize;

use crate::Series;
use crate::stats::robust_line;

/// Where a series runs out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Limit {
    /// Exhausted when it falls to this (free bytes to 0, budget left to 0).
    FallsTo(f64),
    /// Exhausted when it rises to this (a queue to its capacity).
    RisesTo(f64),
}

/// A forecast of when a series reaches its limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Forecast {
    /// Too little history to say: `have` seconds of the `need`ed.
    NotEnoughData { have: i64, need: i64 },
    /// Not heading for the limit: flat, or moving away from it.
    Steady { slope: f64 },
    /// At the limit already.
    Exhausted,
    /// Seconds from now until the limit, at the trend's pace, with the interval from the
    /// trend's (`high` is infinite when the slower pace never reaches it).
    Exhaustion {
        seconds: f64,
        low: f64,
        high: f64,
        slope: f64,
    },
}

impl Forecast {
    /// The seconds to exhaustion, if any is forecast.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Forecast::Exhaustion { seconds, .. } => Some(*seconds),
            Forecast::Exhausted => Some(0.0),
            _ => None,
        }
    }
}

/// When `series` reaches `limit`, from its trend at `now`; `min_span` seconds of data are needed
/// (a day's daily swing is no trend). `scratch` is reused.
pub fn exhaustion(
    series: Series<'_>,
    limit: Limit,
    now: i64,
    min_span: i64,
    points: &mut Vec<(f64, f64)>,
    scratch: &mut Vec<f64>,
) -> Forecast {
    points.clear();
    points.extend(series.points().map(|(t, v)| ((t - now) as f64, v)));
    let have = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (b.0 - a.0) as i64,
        _ => 0,
    };
    if have < min_span {
        return Forecast::NotEnoughData {
            have,
            need: min_span,
        };
    }
    let Some(fit) = robust_line(points, scratch) else {
        return Forecast::NotEnoughData {
            have,
            need: min_span,
        };
    };
    // Times are relative to now: the intercept is the level now.
    let level = fit.intercept;
    let (gap, toward) = match limit {
        Limit::FallsTo(l) => (level - l, -1.0),
        Limit::RisesTo(l) => (l - level, 1.0),
    };
    if gap <= 0.0 {
        return Forecast::Exhausted;
    }
    let pace = |slope: f64| slope * toward;
    // A pace that would take longer than a hundred times the data's span is no trend.
    let noticeable = gap / (100.0 * have.max(1) as f64);
    if pace(fit.slope) <= noticeable {
        return Forecast::Steady { slope: fit.slope };
    }
    let time = |p: f64| if p > 0.0 { gap / p } else { f64::INFINITY };
    let (fast, slow) = {
        let (a, b) = (pace(fit.low), pace(fit.high));
        (a.max(b), a.min(b))
    };
    Forecast::Exhaustion {
        seconds: time(pace(fit.slope)),
        low: time(fast),
        high: time(slow),
        slope: fit.slope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Noise;

    fn run(values: &[f64], step: i64, limit: Limit, min_span: i64) -> Forecast {
        let now = values.len() as i64 * step;
        let s = Series {
            start: step,
            step,
            values,
        };
        exhaustion(s, limit, now, min_span, &mut Vec::new(), &mut Vec::new())
    }

    #[test]
    fn a_filling_disk_is_forecast_within_ten_percent_with_its_interval() {
        // A day of minutes: 100 GB free, losing 1 GB an hour, with noise and a daily swing.
        let mut noise = Noise::new(1);
        let free: Vec<f64> = (0..1440)
            .map(|m| {
                let h = f64::from(m) / 60.0;
                100e9 - 1e9 * h
                    + 0.2e9 * (h / 24.0 * std::f64::consts::TAU).sin()
                    + 0.05e9 * noise.normal()
            })
            .collect();
        let truth = (100e9 - 24e9) / 1e9 * 3600.0;
        match run(&free, 60, Limit::FallsTo(0.0), 3600) {
            Forecast::Exhaustion {
                seconds, low, high, ..
            } => {
                assert!((seconds / truth - 1.0).abs() < 0.1, "{seconds} vs {truth}");
                assert!(low <= seconds && seconds <= high, "{low} {seconds} {high}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flat_short_and_exhausted_series_say_so() {
        let mut noise = Noise::new(2);
        let flat: Vec<f64> = (0..600).map(|_| 50.0 + noise.normal()).collect();
        assert!(matches!(
            run(&flat, 1, Limit::FallsTo(0.0), 300),
            Forecast::Steady { .. }
        ));
        assert_eq!(
            run(&flat[..100], 1, Limit::FallsTo(0.0), 300),
            Forecast::NotEnoughData {
                have: 99,
                need: 300
            }
        );
        let full = vec![1000.0; 600];
        assert_eq!(
            run(&full, 1, Limit::RisesTo(1000.0), 300),
            Forecast::Exhausted
        );
        // Moving away from the limit is steady too.
        let rising: Vec<f64> = (0..600).map(f64::from).collect();
        assert!(matches!(
            run(&rising, 1, Limit::FallsTo(0.0), 300),
            Forecast::Steady { .. }
        ));
    }
}
