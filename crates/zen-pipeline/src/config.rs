//! Typed configuration of the pipeline. Field names follow the environment variables of the
//! original design, which the binary maps onto them: `ZEN_CACHE_ENABLED` → `cache.enabled`,
//! `ZEN_CACHE_TTL` → `cache.ttl`, `ZEN_BATCH_ENABLED` → `batch.enabled`, `ZEN_MAX_BATCH_SIZE` →
//! `batch.max_size`, `ZEN_MAX_BATCH_AGE` → `batch.max_age`.

use std::time::Duration;

use zen_batch::BatchConfig;
use zen_dedup::DedupConfig;
use zen_filter::FilterConfig;

/// In which order filtering and de-duplication run (`filter_first`, `dedup_first`, `auto` in a
/// configuration file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingOrder {
    FilterFirst,
    DedupFirst,
    /// Whichever drops more of the traffic goes first, switching with hysteresis.
    Auto,
}

/// The per-source configuration cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Off: every event loads (compiles) its source's configuration afresh.
    pub enabled: bool,
    pub ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            ttl: Duration::from_secs(300),
        }
    }
}

/// Batching towards the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSettings {
    /// Off: every event is written on its own.
    pub enabled: bool,
    pub batch: BatchConfig,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            enabled: true,
            batch: BatchConfig::default(),
        }
    }
}

/// How the sink is retried before a batch is handed to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (2, 3, …): doubling from the initial backoff, capped,
    /// with up to half of it taken off at random (`jitter` in 0..1) so retries spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(2).min(20));
        let capped = doubled.min(self.max_backoff);
        capped.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// Numbers in 0..1 from a xorshift generator, for backoff jitter ([`RetryPolicy::backoff`]).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        Jitter(0x9E37_79B9_7F4A_7C15)
    }
}

impl Jitter {
    /// Seeded, so that retriers started together spread out.
    pub fn seeded(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    #[allow(clippy::should_implement_trait)] // never ends: not an iterator
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Everything the pipeline needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Events waiting to be processed; without room for a submission's events, `try_submit`
    /// says so (HTTP 429). An empty queue takes a submission of any size.
    pub queue_capacity: usize,
    pub order: ProcessingOrder,
    pub cache: CacheSettings,
    pub batch: BatchSettings,
    pub dedup: DedupConfig,
    pub filter: FilterConfig,
    pub retry: RetryPolicy,
    /// How often duplicate counts are handed to the sink.
    pub duplicate_flush_interval: Duration,
    /// Dead-letter batches held for a consumer; beyond that they are counted and logged.
    pub dead_letter_capacity: usize,
}

/// A setting out of its range: which (as [`PipelineConfig`]'s fields name it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    pub field: &'static str,
    pub problem: String,
}

impl PipelineConfig {
    /// Checks the ranges the fields' docs give.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let at_least_one = |field, found: usize| match found {
            0 => Err(SettingsError {
                field,
                problem: "expected at least 1, found 0".to_owned(),
            }),
            _ => Ok(()),
        };
        at_least_one("queue_capacity", self.queue_capacity)?;
        at_least_one("batch.max_size", self.batch.batch.max_size)?;
        at_least_one("dead_letter_capacity", self.dead_letter_capacity)?;
        if self.retry.max_attempts == 0 {
            return Err(SettingsError {
                field: "retry.max_attempts",
                problem: "expected at least 1, found 0".to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 10_000,
            order: ProcessingOrder::Auto,
            cache: CacheSettings::default(),
            batch: BatchSettings::default(),
            dedup: DedupConfig::default(),
            filter: FilterConfig::default(),
            retry: RetryPolicy::default(),
            duplicate_flush_interval: Duration::from_secs(1),
            dead_letter_capacity: 1_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down() {
        let p = RetryPolicy::default();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            [2, 3, 4, 5].map(|a| ms(p.backoff(a, 0.0))),
            [50, 100, 200, 400]
        );
        assert_eq!(ms(p.backoff(30, 0.0)), 2000);
        assert_eq!(ms(p.backoff(2, 1.0)), 25);
    }

    #[test]
    fn validate_names_the_setting_out_of_range() {
        assert_eq!(PipelineConfig::default().validate(), Ok(()));
        let mut c = PipelineConfig::default();
        c.batch.batch.max_size = 0;
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("batch.max_size: expected at least 1, found 0".to_owned())
        );
        let c = PipelineConfig {
            queue_capacity: 0,
            ..PipelineConfig::default()
        };
        assert_eq!(c.validate().map_err(|e| e.field), Err("queue_capacity"));
    }
}
