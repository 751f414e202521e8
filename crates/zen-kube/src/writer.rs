//! The Kubernetes sink: kept events written as `Observation` resources, within a write budget.
//!
//! A resource is named from its finding's source and fingerprint, so a retried batch or a
//! second replica cannot make a twin: `409 AlreadyExists` for a name this process did not
//! create is another sighting of the same finding, counted. Sightings (duplicates, and those
//! 409s) are added to `status.count` (absent: 1) by read and replace — the replace names the
//! `resourceVersion` read, so counts from several replicas add up — aggregated per resource
//! and written while the sink has nothing else to do, never one call per duplicate. Every call
//! waits for a token of the budget (`qps`, `burst`): the sink thread waits, its queue fills, and
//! the pipeline pushes back. `429`, `503` and `504` are retried by the `kube` client itself,
//! honouring `Retry-After`; other failures of a batch are retryable for the pipeline's own
//! backoff, except a finding the API server refuses (an invalid object, a namespace gone),
//! which is logged, counted and skipped — the primary sink keeps it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use zen_dedup::DuplicateUpdate;
use zen_model::Timestamp;
use zen_sink::{Kept, Sink, SinkError};

use crate::budget::Budget;
use crate::observation::{Observation, ObservationStatus, name_for, observation_for};

/// Where and how fast Observations are written.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationSettings {
    /// For findings without a namespace of their own.
    pub namespace: String,
    /// Calls a second, on average.
    pub qps: f64,
    /// Calls at once after a quiet spell.
    pub burst: u32,
    /// `ttlSecondsAfterCreation` of every Observation written (none: kept until deleted).
    pub ttl: Option<Duration>,
}

impl ObservationSettings {
    /// client-go's controller defaults (20 calls a second, bursts of 30): a fair share of a
    /// shared API server.
    pub fn new(namespace: &str) -> Self {
        ObservationSettings {
            namespace: namespace.to_owned(),
            qps: 20.0,
            burst: 30,
            ttl: None,
        }
    }
}

/// Names remembered: those this process created, and the resource of each sequence number.
const REMEMBERED: usize = 131_072;

/// The sink; see the module's documentation.
pub struct ObservationSink {
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    settings: ObservationSettings,
    budget: Budget,
    /// Resources this process created (a retried batch meets them again).
    created: Recent<(String, String)>,
    /// The resource of each kept event, by the deduper's number.
    by_seq: HashMap<u64, (String, String)>,
    seqs: VecDeque<u64>,
    /// Sightings to add to each resource's count, and the latest one's time.
    pending: BTreeMap<(String, String), (i64, Timestamp)>,
    metrics: Metrics,
}

impl std::fmt::Debug for ObservationSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservationSink")
            .field("settings", &self.settings)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ObservationSink {
    /// A sink that calls the API server on `runtime` (from the sink's own thread).
    pub fn new(
        client: kube::Client,
        runtime: tokio::runtime::Handle,
        settings: ObservationSettings,
    ) -> Self {
        ObservationSink {
            client,
            runtime,
            budget: Budget::new(settings.qps, settings.burst),
            settings,
            created: Recent::default(),
            by_seq: HashMap::new(),
            seqs: VecDeque::new(),
            pending: BTreeMap::new(),
            metrics: Metrics::new(),
        }
    }

    fn api(&self, namespace: &str) -> Api<Observation> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn remember(&mut self, seq: u64, key: (String, String)) {
        if self.seqs.len() == REMEMBERED
            && let Some(old) = self.seqs.pop_front()
        {
            self.by_seq.remove(&old);
        }
        self.seqs.push_back(seq);
        self.by_seq.insert(seq, key);
    }

    fn add_sightings(&mut self, key: (String, String), n: i64, seen: Timestamp) {
        let entry = self.pending.entry(key).or_insert((0, seen));
        entry.0 += n;
        entry.1 = entry.1.max(seen);
    }

    /// Adds one resource's pending sightings to its count: read, then replace the status
    /// naming the version read; tried again when another writer came between.
    fn update_count(
        &mut self,
        key: &(String, String),
        n: i64,
        seen: Timestamp,
    ) -> Result<(), kube::Error> {
        let api = self.api(&key.0);
        for _ in 0..5 {
            std::thread::sleep(self.budget.reserve());
            let started = Instant::now();
            let read = self.runtime.block_on(api.get_status(&key.1));
            self.metrics.get.record(started.elapsed().as_secs_f64());
            let mut current = match read {
                Ok(o) => o,
                // Deleted meanwhile (expired, or by hand): nothing to count on.
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            };
            let status = current
                .status
                .get_or_insert_with(ObservationStatus::default);
            status.count = Some(status.count.unwrap_or(1) + n);
            let last = status
                .last_seen
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map_or(seen, |t| t.max(seen));
            status.last_seen = Some(last.to_string());
            std::thread::sleep(self.budget.reserve());
            let started = Instant::now();
            let written =
                self.runtime
                    .block_on(api.replace_status(&key.1, &PostParams::default(), &current));
            self.metrics.update.record(started.elapsed().as_secs_f64());
            match written {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Sink for ObservationSink {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn write(&mut self, _source: &str, events: &[Kept]) -> Result<(), SinkError> {
        let ttl = self.settings.ttl.map(|t| t.as_secs().max(1) as i64);
        for kept in events {
            let observation = observation_for(&kept.event, &self.settings.namespace, ttl);
            let key = (
                observation.metadata.namespace.clone().unwrap_or_default(),
                name_for(&kept.event),
            );
            self.remember(kept.seq, key.clone());
            if self.created.contains(&key) {
                continue;
            }
            std::thread::sleep(self.budget.reserve());
            let started = Instant::now();
            let api = self.api(&key.0);
            let made = self
                .runtime
                .block_on(api.create(&PostParams::default(), &observation));
            self.metrics.create.record(started.elapsed().as_secs_f64());
            match made {
                Ok(_) => self.created.insert(key),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    // The same finding, written by another replica or an earlier run.
                    self.metrics.existing.increment(1);
                    self.add_sightings(key, 1, kept.event.detected_at);
                }
                Err(kube::Error::Api(s)) if matches!(s.code, 400 | 403 | 404 | 422) => {
                    metrics::counter!("zen_watcher_errors_total", "component" => "kube", "category" => "rejected").increment(1);
                    tracing::error!(namespace = %key.0, name = %key.1, code = s.code, error = %s.message, "the API server refused an Observation; it stays in the store only");
                }
                Err(e) => {
                    return Err(SinkError {
                        message: format!(
                            "kubernetes: creating Observation {}/{}: {e}",
                            key.0, key.1
                        ),
                        retryable: true,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        for u in updates {
            if let Some(key) = self.by_seq.get(&u.seq).cloned() {
                self.add_sightings(key, u.duplicates as i64, u.last_seen);
            }
        }
        Ok(())
    }

    /// Writes one resource's aggregated sightings; says whether more wait.
    fn settle(&mut self) -> Result<bool, SinkError> {
        let Some((key, (n, seen))) = self.pending.pop_first() else {
            return Ok(false);
        };
        if let Err(e) = self.update_count(&key, n, seen) {
            // Kept for the next turn.
            self.add_sightings(key.clone(), n, seen);
            return Err(SinkError {
                message: format!(
                    "kubernetes: counting on Observation {}/{}: {e}",
                    key.0, key.1
                ),
                retryable: true,
            });
        }
        Ok(!self.pending.is_empty())
    }
}

/// A set that forgets its oldest members beyond [`REMEMBERED`].
#[derive(Debug, Default)]
struct Recent<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Recent<T> {
    fn contains(&self, t: &T) -> bool {
        self.set.contains(t)
    }

    fn insert(&mut self, t: T) {
        if self.set.insert(t.clone()) {
            if self.order.len() == REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
            self.order.push_back(t);
        }
    }
}

struct Metrics {
    create: metrics::Histogram,
    get: metrics::Histogram,
    update: metrics::Histogram,
    existing: metrics::Counter,
}

impl Metrics {
    fn new() -> Self {
        let h = |op: &'static str| metrics::histogram!("zen_watcher_crd_operation_duration_seconds", "operation" => op);
        Metrics {
            create: h("create"),
            get: h("get"),
            update: h("update"),
            existing: metrics::counter!("zen_watcher_crd_already_exists_total"),
        }
    }
}
