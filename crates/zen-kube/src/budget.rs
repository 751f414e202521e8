//! The write budget: a token bucket of `qps` tokens a second, at most `burst` saved.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Budget {
    qps: f64,
    burst: f64,
    /// Below zero when calls were reserved ahead of the tokens.
    tokens: f64,
    at: Instant,
}

impl Budget {
    pub(crate) fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Budget {
            qps: qps.max(0.01),
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes a token; says how long to wait before the call it pays for.
    pub(crate) fn reserve(&mut self) -> Duration {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + earned).min(self.burst) - 1.0;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_free_and_then_calls_are_spaced_by_the_rate() {
        let mut b = Budget::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(b.reserve(), Duration::ZERO);
        }
        // The next ones wait 0.1 s, 0.2 s, … (less the few microseconds since).
        for n in 1..=3 {
            let wait = b.reserve().as_secs_f64();
            assert!((wait - 0.1 * f64::from(n)).abs() < 0.01, "{n}: {wait}");
        }
    }
}
