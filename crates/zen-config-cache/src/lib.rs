//! Configuration snapshots per source, cached: a hit is a lock-free read of an immutable map.
//!
//! A [`ConfigCache`] hands out [`Snapshot`]s — shared, immutable, versioned values — for the
//! global default and for each source. A miss asks the [`Loader`] (a file or Kubernetes loader
//! plugs in here); a source the loader does not know is cached as absent (negative caching) and
//! resolves to the global snapshot. Entries expire after a TTL; [`ConfigCache::invalidate`] and
//! [`ConfigCache::invalidate_all`] drop them at once (watch-driven invalidation). When a reload
//! fails, the previous good snapshot stays live for another TTL and the failure is counted.
//!
//! Readers never take a lock: the map is swapped whole (`arc-swap`) by writers, who serialise
//! among themselves. Hits, misses, evictions, load errors and size are counted through the
//! `metrics` facade with handles registered once (`zen_watcher_cache_hits_total{cache}`,
//! `…_misses_total`, `…_evictions_total`, `…_load_errors_total`, `zen_watcher_cache_size`).
//!
//! Knows nothing about where configuration comes from, IO or clocks: `now` is an argument.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hashbrown::HashMap;

/// One version of a configuration value.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot<V> {
    /// Increases with every load, across all keys of one cache.
    pub version: u64,
    /// The source this is the configuration of; `None` for the global default.
    pub source: Option<String>,
    pub value: V,
}

/// Why a configuration could not be loaded (and no previous one could stand in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("loading the configuration of {scope}: {reason}")]
pub struct LoadError {
    /// `global` or `source <name>`.
    pub scope: String,
    pub reason: String,
}

/// Where configuration comes from.
pub trait Loader<V>: Send + Sync {
    /// The global default.
    fn load_global(&self) -> Result<V, String>;
    /// The configuration of one source; `None` when the source has none of its own.
    fn load_source(&self, source: &str) -> Result<Option<V>, String>;
}

#[derive(Debug)]
enum Entry<V> {
    Present {
        snapshot: Arc<Snapshot<V>>,
        expires: Instant,
    },
    Absent {
        expires: Instant,
    },
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        match self {
            Entry::Present { snapshot, expires } => Entry::Present {
                snapshot: snapshot.clone(),
                expires: *expires,
            },
            Entry::Absent { expires } => Entry::Absent { expires: *expires },
        }
    }
}

#[derive(Debug)]
struct State<V> {
    global: Option<Entry<V>>,
    sources: HashMap<String, Entry<V>>,
}

impl<V> Clone for State<V> {
    fn clone(&self) -> Self {
        State {
            global: self.global.clone(),
            sources: self.sources.clone(),
        }
    }
}

impl<V> State<V> {
    fn len(&self) -> usize {
        self.sources.len() + usize::from(self.global.is_some())
    }
}

enum Found<V> {
    Hit(Arc<Snapshot<V>>),
    /// Known to have no configuration of its own.
    Absent,
    Miss,
}

fn find<V>(entry: Option<&Entry<V>>, now: Instant) -> Found<V> {
    match entry {
        Some(Entry::Present { snapshot, expires }) if now < *expires => {
            Found::Hit(snapshot.clone())
        }
        Some(Entry::Absent { expires }) if now < *expires => Found::Absent,
        _ => Found::Miss,
    }
}

struct Counters {
    hits: metrics::Counter,
    misses: metrics::Counter,
    evictions: metrics::Counter,
    load_errors: metrics::Counter,
    size: metrics::Gauge,
}

/// A cache of configuration snapshots; see the crate docs.
pub struct ConfigCache<V> {
    ttl: Duration,
    loader: Box<dyn Loader<V>>,
    state: ArcSwap<State<V>>,
    writer: Mutex<()>,
    version: AtomicU64,
    counters: Counters,
}

impl<V> fmt::Debug for ConfigCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Which configuration: the global default, or a source's own.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Global,
    Source(&'a str),
}

impl<V: Send + Sync + 'static> ConfigCache<V> {
    /// A cache named `name` (the `cache` label) whose entries live for `ttl`.
    pub fn new(name: &'static str, ttl: Duration, loader: impl Loader<V> + 'static) -> Self {
        ConfigCache {
            ttl,
            loader: Box::new(loader),
            state: ArcSwap::from_pointee(State {
                global: None,
                sources: HashMap::new(),
            }),
            writer: Mutex::new(()),
            version: AtomicU64::new(0),
            counters: Counters {
                hits: metrics::counter!("zen_watcher_cache_hits_total", "cache" => name),
                misses: metrics::counter!("zen_watcher_cache_misses_total", "cache" => name),
                evictions: metrics::counter!("zen_watcher_cache_evictions_total", "cache" => name),
                load_errors: metrics::counter!("zen_watcher_cache_load_errors_total", "cache" => name),
                size: metrics::gauge!("zen_watcher_cache_size", "cache" => name),
            },
        }
    }

    /// The configuration for `source` at `now`: its own, or the global default when it has none.
    pub fn get(&self, source: &str, now: Instant) -> Result<Arc<Snapshot<V>>, LoadError> {
        let found = find(self.state.load().sources.get(source), now);
        match found {
            Found::Hit(snapshot) => {
                self.counters.hits.increment(1);
                Ok(snapshot)
            }
            Found::Absent => self.global(now),
            Found::Miss => {
                self.counters.misses.increment(1);
                match self.load(Scope::Source(source), now)? {
                    Some(snapshot) => Ok(snapshot),
                    None => self.global(now),
                }
            }
        }
    }

    /// The global default configuration at `now`.
    pub fn global(&self, now: Instant) -> Result<Arc<Snapshot<V>>, LoadError> {
        let found = find(self.state.load().global.as_ref(), now);
        if let Found::Hit(snapshot) = found {
            self.counters.hits.increment(1);
            return Ok(snapshot);
        }
        self.counters.misses.increment(1);
        match self.load(Scope::Global, now)? {
            Some(snapshot) => Ok(snapshot),
            None => unreachable!("the global configuration is never absent"),
        }
    }

    /// Forgets the configuration of `source` (or the global one, for `None`): the next read loads.
    pub fn invalidate(&self, source: Option<&str>) {
        let writer = self.write();
        let mut state = State::clone(&self.state.load());
        let removed = match source {
            None => state.global.take().is_some(),
            Some(s) => state.sources.remove(s).is_some(),
        };
        self.publish(&writer, state, usize::from(removed));
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        let writer = self.write();
        let evicted = self.state.load().len();
        let empty = State {
            global: None,
            sources: HashMap::new(),
        };
        self.publish(&writer, empty, evicted);
    }

    /// Entries cached, present or absent, global included.
    pub fn len(&self) -> usize {
        self.state.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `state` the one readers see; the writer lock must be held.
    fn publish(&self, _writer: &MutexGuard<'_, ()>, state: State<V>, evicted: usize) {
        self.counters.evictions.increment(evicted as u64);
        self.counters.size.set(state.len() as f64);
        self.state.store(Arc::new(state));
    }

    /// Loads a scope, caches the outcome, and returns the snapshot (`None`: the source has no
    /// configuration of its own). On failure the previous snapshot, if any, stays live.
    fn load(&self, scope: Scope<'_>, now: Instant) -> Result<Option<Arc<Snapshot<V>>>, LoadError> {
        let writer = self.write();
        let mut state = State::clone(&self.state.load());
        let slot = match scope {
            Scope::Global => &mut state.global,
            Scope::Source(s) => &mut state.sources.remove(s),
        };
        // Another writer may have loaded it while this one waited for the lock.
        match find(slot.as_ref(), now) {
            Found::Hit(snapshot) => return Ok(Some(snapshot)),
            Found::Absent => return Ok(None),
            Found::Miss => {}
        }
        let stale = slot.take();
        let expires = now + self.ttl;
        let loaded = match scope {
            Scope::Global => self.loader.load_global().map(Some),
            Scope::Source(s) => self.loader.load_source(s),
        };
        let (entry, snapshot) = match (loaded, stale.as_ref()) {
            (Ok(Some(value)), _) => {
                let snapshot = Arc::new(Snapshot {
                    version: self.version.fetch_add(1, Ordering::Relaxed) + 1,
                    source: match scope {
                        Scope::Global => None,
                        Scope::Source(s) => Some(s.to_owned()),
                    },
                    value,
                });
                (
                    Entry::Present {
                        snapshot: snapshot.clone(),
                        expires,
                    },
                    Some(snapshot),
                )
            }
            (Ok(None), _) => (Entry::Absent { expires }, None),
            (Err(reason), stale) => {
                self.counters.load_errors.increment(1);
                match stale {
                    Some(Entry::Present { snapshot, .. }) => (
                        Entry::Present {
                            snapshot: snapshot.clone(),
                            expires,
                        },
                        Some(snapshot.clone()),
                    ),
                    Some(Entry::Absent { .. }) => (Entry::Absent { expires }, None),
                    None => {
                        let scope = match scope {
                            Scope::Global => "global".to_owned(),
                            Scope::Source(s) => format!("source {s}"),
                        };
                        return Err(LoadError { scope, reason });
                    }
                }
            }
        };
        match scope {
            Scope::Global => state.global = Some(entry),
            Scope::Source(s) => {
                state.sources.insert(s.to_owned(), entry);
            }
        }
        self.publish(&writer, state, usize::from(stale.is_some()));
        Ok(snapshot)
    }
}
