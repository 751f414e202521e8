//! Time to exhaustion: when a series reaches its limit at the pace of its robust trend, with
//! an interval from the trend's; with two days of history, when its daily pattern on top of
//! that trend first reaches it (a robust additive decomposition); "not enough data" rather than a guess.

use serde::Serialize;

use crate::Series;
use crate::stats::{median, robust_line};

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
    if have >= 2 * DAY
        && series.step > 0
        && DAY % series.step == 0
        && let Some(f) = seasonal(series, limit, now)
    {
        return f;
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

const DAY: i64 = 86_400;

/// How far ahead the daily forecast looks: beyond, it says steady.
const HORIZON: i64 = 30 * DAY;

/// The daily forecast: a robust additive decomposition — the trend from the median of the
/// day-on-day differences (which a daily pattern cancels out of), the day's shape from the
/// median of the detrended values at each time of day (and the few minutes either side) —
/// projected until it first reaches `limit`; the interval is where the projection two robust
/// residual deviations either side reaches it. `None` with fewer than two days, or too many
/// gaps, to fit.
pub fn seasonal(series: Series<'_>, limit: Limit, now: i64) -> Option<Forecast> {
    let period = (DAY / series.step) as usize;
    let values = series.values;
    let n = values.len();
    let known = values.iter().filter(|v| v.is_finite()).count();
    if n < 2 * period || known < n * 3 / 4 {
        return None;
    }
    let step = series.step as f64;
    let mut scratch: Vec<f64> = (period..n)
        .filter(|i| values[*i].is_finite() && values[i - period].is_finite())
        .map(|i| (values[i] - values[i - period]) / (period as f64 * step))
        .collect();
    let slope = median(&mut scratch);
    if !slope.is_finite() {
        return None;
    }
    // Detrended to the end of the series.
    let end = series.start + (n as i64 - 1) * series.step;
    let detrended: Vec<f64> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v - slope * (series.start + i as i64 * series.step - end) as f64)
        .collect();
    let near = (300 / series.step).max(0) as usize; // five minutes either side
    let profile: Vec<f64> = (0..period)
        .map(|k| {
            scratch.clear();
            for day in (k..n).step_by(period) {
                let lo = day.saturating_sub(near);
                let hi = (day + near).min(n - 1);
                scratch.extend(detrended[lo..=hi].iter().filter(|v| v.is_finite()));
            }
            median(&mut scratch)
        })
        .collect();
    scratch.clear();
    scratch.extend(
        detrended
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| (v - profile[i % period]).abs()),
    );
    let sigma = 1.4826 * median(&mut scratch);
    let at =
        |h: usize, shift: f64| profile[(n - 1 + h) % period] + slope * (h as f64 * step) + shift;
    let reached = |v: f64| match limit {
        Limit::FallsTo(l) => v <= l,
        Limit::RisesTo(l) => v >= l,
    };
    if reached(at(0, 0.0)) {
        return Some(Forecast::Exhausted);
    }
    let toward = match limit {
        Limit::FallsTo(_) => -1.0,
        Limit::RisesTo(_) => 1.0,
    };
    let steps = (HORIZON / series.step) as usize;
    let first_reach = |shift: f64| (1..=steps).find(|h| reached(at(*h, shift)));
    let seconds = |h: usize| (end + h as i64 * series.step - now).max(0) as f64;
    Some(match first_reach(0.0) {
        None => Forecast::Steady { slope },
        Some(h) => Forecast::Exhaustion {
            seconds: seconds(h),
            low: first_reach(2.0 * sigma * toward).map_or(0.0, seconds),
            high: first_reach(-2.0 * sigma * toward).map_or(f64::INFINITY, seconds),
            slope,
        },
    })
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
    fn a_disk_that_fills_by_day_is_forecast_at_the_peak_that_fills_it() {
        // Three days at a minute: 96.75 GB free at night, 60 GB less at each afternoon's peak
        // of writes (cleaned each night), and 6 GB a day less for good. The first afternoon to
        // reach 0 free is the seventh day's (3 GB short of it the day before, 3 GB past it).
        let mut noise = Noise::new(9);
        let at = |m: f64| {
            let day = m / 1440.0;
            let hour = (m % 1440.0) / 60.0;
            let swing = 60e9 * (-((hour - 15.0) / 3.0).powi(2)).exp();
            96.75e9 - 6e9 * day - swing
        };
        let free: Vec<f64> = (0..3 * 1440)
            .map(|m| at(f64::from(m)) + 0.3e9 * noise.normal())
            .collect();
        let truth = (0..30 * 1440)
            .map(f64::from)
            .find(|m| at(*m) <= 0.0)
            .unwrap_or(0.0)
            * 60.0;
        let now = free.len() as i64 * 60;
        let s = Series {
            start: 60,
            step: 60,
            values: &free,
        };
        match exhaustion(
            s,
            Limit::FallsTo(0.0),
            now,
            3_600,
            &mut Vec::new(),
            &mut Vec::new(),
        ) {
            Forecast::Exhaustion {
                seconds, low, high, ..
            } => {
                let truth = truth - now as f64;
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
