//! Rate limits: a token bucket for each bearer token (or client certificate) in requests a
//! second, and for each ingest source in events a second. Beyond them a request gets 429 with
//! `Retry-After` (the time until its bucket holds enough), counted as an ingestion error of
//! category `rate_limit`; a request of more events than a source's bucket holds at all, 413.
//! Nothing of a refused request is submitted. The keys are bounded: token names are configured,
//! and a source is counted only once its name is known to be one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `rate` a second, up to `burst` at once. A rate of 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub rate: u32,
    pub burst: u32,
}

/// The limits a daemon enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests a second for each token (each client certificate; everyone together on a
    /// daemon without tokens).
    pub per_token: Rate,
    /// Events a second ingested for each source.
    pub per_source: Rate,
}

/// Why a take was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Enough will be there after this long.
    Wait(Duration),
    /// More than the bucket ever holds.
    TooMany { burst: u32 },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets by key, of one rate.
#[derive(Debug)]
pub struct Buckets {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    pub fn new(rate: Rate) -> Buckets {
        Buckets {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` from `key`'s bucket at `now` (full when first used), or says why not.
    pub fn take(&self, key: &str, n: u32, now: Instant) -> Result<(), Refused> {
        let Rate { rate, burst } = self.rate;
        if rate == 0 {
            return Ok(());
        }
        let burst = burst.max(1);
        if n > burst {
            return Err(Refused::TooMany { burst });
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: f64::from(burst),
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= f64::from(n) {
            bucket.tokens -= f64::from(n);
            return Ok(());
        }
        let short = f64::from(n) - bucket.tokens;
        Err(Refused::Wait(Duration::from_secs_f64(
            short / f64::from(rate),
        )))
    }
}

/// The daemon's buckets.
#[derive(Debug)]
pub struct Limiters {
    pub tokens: Buckets,
    pub sources: Buckets,
}

impl Limiters {
    pub fn new(limits: Limits) -> Limiters {
        Limiters {
            tokens: Buckets::new(limits.per_token),
            sources: Buckets::new(limits.per_source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate_and_says_how_long_to_wait() {
        let b = Buckets::new(Rate {
            rate: 10,
            burst: 20,
        });
        let t0 = Instant::now();
        assert_eq!(b.take("falco", 20, t0), Ok(()));
        assert_eq!(
            b.take("falco", 5, t0),
            Err(Refused::Wait(Duration::from_millis(500)))
        );
        // Another key has a bucket of its own.
        assert_eq!(b.take("trivy", 20, t0), Ok(()));
        // Half a second later, five are back; never more than the burst.
        assert_eq!(b.take("falco", 5, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(b.take("falco", 20, t0 + Duration::from_secs(100)), Ok(()));
        assert_eq!(
            b.take("falco", 21, t0 + Duration::from_secs(200)),
            Err(Refused::TooMany { burst: 20 })
        );
        // A refused take leaves the bucket as it was.
        assert_eq!(b.take("falco", 1, t0 + Duration::from_secs(200)), Ok(()));
        let unlimited = Buckets::new(Rate::default());
        assert_eq!(unlimited.take("x", u32::MAX, t0), Ok(()));
    }
}
