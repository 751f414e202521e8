//! Robust statistics on small slices: medians, the median absolute deviation, and a robust
//! line (the median of paired slopes, with a distribution-free interval) — on a straight line,
//! the line Prometheus' `predict_linear` fits too.

/// The median of `v` (reordered); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, m, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        return upper;
    }
    let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// The median absolute deviation of `v` around `centre`, scaled by 1.4826 so that it estimates
/// the standard deviation of normal data. `scratch` is reused.
pub fn mad(v: &[f64], centre: f64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(v.iter().map(|x| (x - centre).abs()));
    1.4826 * median(scratch)
}

/// A line through points: `value = intercept + slope × time`, with an interval for the slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Per second.
    pub slope: f64,
    pub intercept: f64,
    /// The slope's interval (about 95 %).
    pub low: f64,
    pub high: f64,
}

impl Fit {
    pub fn at(&self, t: f64) -> f64 {
        self.intercept + self.slope * t
    }
}

/// A robust line through `points` (time, value): the median of the slopes between each point
/// of the first half and its partner half the span later (a linear-time cousin of Theil–Sen,
/// unmoved by up to a quarter of the points being wild), the intercept the median of the
/// points' residuals, and the slope's interval from the order statistics of those slopes
/// (the distribution-free interval of a median). `None` with fewer than 6 points.
pub fn robust_line(points: &[(f64, f64)], scratch: &mut Vec<f64>) -> Option<Fit> {
    let n = points.len();
    if n < 6 {
        return None;
    }
    let half = n / 2;
    scratch.clear();
    for i in 0..half {
        let (t0, v0) = points[i];
        let (t1, v1) = points[i + half];
        if t1 > t0 {
            scratch.push((v1 - v0) / (t1 - t0));
        }
    }
    let m = scratch.len();
    if m < 3 {
        return None;
    }
    // Three selections rather than a sort: the median and the interval's two ranks.
    let spread = 0.98 * (m as f64).sqrt();
    let lo = ((m as f64 / 2.0 - spread).floor().max(0.0)) as usize;
    let hi = ((m as f64 / 2.0 + spread).ceil() as usize).min(m - 1);
    let (below, mid, above) = scratch.select_nth_unstable_by(m / 2, f64::total_cmp);
    let mid = *mid;
    let slope = if m % 2 == 1 {
        mid
    } else {
        (below.iter().copied().fold(f64::NEG_INFINITY, f64::max) + mid) / 2.0
    };
    let low = if lo < m / 2 {
        *below.select_nth_unstable_by(lo, f64::total_cmp).1
    } else {
        mid
    };
    let high = if hi > m / 2 {
        *above
            .select_nth_unstable_by(hi - m / 2 - 1, f64::total_cmp)
            .1
    } else {
        mid
    };
    scratch.clear();
    scratch.extend(points.iter().map(|(t, v)| v - slope * t));
    let intercept = median(scratch);
    Some(Fit {
        slope,
        intercept,
        low,
        high,
    })
}

/// Deterministic noise for tests and benchmarks: a 64-bit LCG and Box–Muller.
#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(
            seed.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
        let mut s = Vec::new();
        assert!((mad(&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0, &mut s) - 1.4826).abs() < 1e-12);
    }

    #[test]
    fn a_robust_line_ignores_wild_points() {
        let mut points: Vec<(f64, f64)> =
            (0..100).map(|i| (i as f64, 5.0 + 2.0 * i as f64)).collect();
        for i in (0..100).step_by(7) {
            points[i].1 += 1e6; // one point in seven is wild
        }
        let mut s = Vec::new();
        let fit = robust_line(&points, &mut s).unwrap_or_else(|| panic!("a fit"));
        assert!(
            (fit.slope - 2.0).abs() < 1e-9 && (fit.intercept - 5.0).abs() < 1e-9,
            "{fit:?}"
        );
        assert!(fit.low <= 2.0 && fit.high >= 2.0);
        let exact: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 1.0 + 0.5 * i as f64)).collect();
        assert!(robust_line(&exact[..5], &mut s).is_none());
    }

    #[test]
    fn noise_is_normal_enough() {
        let mut n = Noise::new(7);
        let v: Vec<f64> = (0..20_000).map(|_| n.normal()).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
