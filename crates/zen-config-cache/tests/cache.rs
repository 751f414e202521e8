//! The cache through its public face, with a loader whose answers the test controls.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use zen_config_cache::{ConfigCache, Loader};

/// What the loader says for a key: a value, "none of its own", or a failure.
type Answer = Result<Option<String>, String>;

/// Answers from a table the test can change; counts calls.
#[derive(Clone, Default)]
struct Table {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    calls: Arc<AtomicUsize>,
}

impl Table {
    fn set(&self, key: &str, answer: Result<Option<&str>, &str>) {
        let answer = answer.map(|v| v.map(str::to_owned)).map_err(str::to_owned);
        self.answers.lock().unwrap().insert(key.to_owned(), answer);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Loader<String> for Table {
    fn load_global(&self) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers
            .lock()
            .unwrap()
            .get("")
            .cloned()
            .unwrap_or(Ok(Some("global".to_owned())))
            .map(|v| v.unwrap_or_default())
    }
    fn load_source(&self, source: &str) -> Result<Option<String>, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers
            .lock()
            .unwrap()
            .get(source)
            .cloned()
            .unwrap_or(Ok(None))
    }
}

const TTL: Duration = Duration::from_secs(30);

#[test]
fn hits_within_the_ttl_and_reloads_after_with_a_new_version() {
    let table = Table::default();
    table.set("falco", Ok(Some("falco v1")));
    let cache = ConfigCache::new("test", TTL, table.clone());
    let t0 = Instant::now();
    let first = cache.get("falco", t0).unwrap();
    assert_eq!(
        (first.value.as_str(), first.source.as_deref()),
        ("falco v1", Some("falco"))
    );
    let again = cache.get("falco", t0 + Duration::from_secs(29)).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "a hit hands out the same shared snapshot"
    );
    assert_eq!(table.calls(), 1);

    table.set("falco", Ok(Some("falco v2")));
    let later = cache.get("falco", t0 + TTL).unwrap();
    assert_eq!(later.value, "falco v2");
    assert!(later.version > first.version);
    assert_eq!(table.calls(), 2);
}

#[test]
fn unknown_sources_are_cached_as_absent_and_get_the_global_default() {
    let table = Table::default();
    let cache = ConfigCache::new("test", TTL, table.clone());
    let t0 = Instant::now();
    for i in 0..100 {
        let snapshot = cache
            .get("no-such-source", t0 + Duration::from_millis(i))
            .unwrap();
        assert_eq!(
            (snapshot.value.as_str(), snapshot.source.as_deref()),
            ("global", None)
        );
    }
    assert_eq!(
        table.calls(),
        2,
        "one load for the source, one for the global default"
    );
    assert_eq!(cache.len(), 2);
}

#[test]
fn invalidation_forces_a_reload() {
    let table = Table::default();
    table.set("trivy", Ok(Some("a")));
    let cache = ConfigCache::new("test", TTL, table.clone());
    let t0 = Instant::now();
    let v1 = cache.get("trivy", t0).unwrap().version;
    table.set("trivy", Ok(Some("b")));
    cache.invalidate(Some("trivy"));
    let after = cache.get("trivy", t0).unwrap();
    assert_eq!(after.value, "b");
    assert!(after.version > v1);

    let g1 = cache.global(t0).unwrap().version;
    cache.invalidate(None);
    assert!(cache.global(t0).unwrap().version > g1);

    cache.invalidate_all();
    assert!(cache.is_empty());
    cache.get("trivy", t0).unwrap();
    assert_eq!(table.calls(), 5);
}

#[test]
fn a_failed_reload_keeps_the_previous_good_configuration() {
    let table = Table::default();
    table.set("kyverno", Ok(Some("good")));
    let cache = ConfigCache::new("test", TTL, table.clone());
    let t0 = Instant::now();
    let good = cache.get("kyverno", t0).unwrap();
    table.set(
        "kyverno",
        Err("line 3, column 7: expected a value, found `AND`"),
    );
    let still = cache.get("kyverno", t0 + TTL).unwrap();
    assert!(Arc::ptr_eq(&good, &still));
    // ... for another TTL, without asking the loader again.
    cache
        .get("kyverno", t0 + TTL + Duration::from_secs(1))
        .unwrap();
    assert_eq!(table.calls(), 2);

    table.set("checkov", Err("unreadable"));
    let err = cache.get("checkov", t0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loading the configuration of source checkov: unreadable"
    );
    table.set("", Err("no global"));
    let fresh = ConfigCache::new("test", TTL, table.clone());
    assert_eq!(fresh.global(t0).unwrap_err().scope, "global");
}

#[test]
fn hits_misses_evictions_errors_and_size_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let table = Table::default();
        table.set("falco", Ok(Some("f")));
        let cache = ConfigCache::new("sources", TTL, table.clone());
        let t0 = Instant::now();
        cache.get("falco", t0).unwrap(); // miss
        cache.get("falco", t0).unwrap(); // hit
        cache.get("falco", t0).unwrap(); // hit
        cache.get("other", t0).unwrap(); // miss (absent), then global: miss
        cache.invalidate(Some("falco")); // eviction
        table.set("falco", Err("broken"));
        cache.get("falco", t0).unwrap_err(); // miss, load error
    });
    let mut seen = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let label = key
            .key()
            .labels()
            .find(|l| l.key() == "cache")
            .unwrap()
            .value()
            .to_owned();
        assert_eq!(label, "sources");
        let v = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => unreachable!(),
        };
        seen.insert(key.key().name().to_owned(), v);
    }
    assert_eq!(seen["zen_watcher_cache_hits_total"], 2.0);
    assert_eq!(seen["zen_watcher_cache_misses_total"], 4.0);
    assert_eq!(seen["zen_watcher_cache_evictions_total"], 1.0);
    assert_eq!(seen["zen_watcher_cache_load_errors_total"], 1.0);
    assert_eq!(seen["zen_watcher_cache_size"], 2.0);
}

#[test]
fn readers_see_versions_only_grow_while_a_writer_invalidates() {
    let table = Table::default();
    table.set("falco", Ok(Some("f")));
    let cache = Arc::new(ConfigCache::new("test", TTL, table.clone()));
    let t0 = Instant::now();
    // Loaded once before any thread starts, so every invalidation below finds an entry to
    // drop, however the threads are scheduled.
    cache.get("falco", t0).unwrap();
    assert_eq!(table.calls(), 1);
    // The writer starts once every reader has, and stops them when it is done; each reader
    // then reads once more, so at least one read follows an invalidation whatever the
    // scheduling (the load that follows is the second call).
    let start = Arc::new(std::sync::Barrier::new(4));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, start, done) = (cache.clone(), start.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                start.wait();
                let read = |last: &mut u64| {
                    let v = cache.get("falco", t0).unwrap().version;
                    assert!(v >= *last, "version went back from {last} to {v}");
                    *last = v;
                };
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    read(&mut last);
                }
                read(&mut last);
            })
        })
        .collect();
    start.wait();
    for _ in 0..200 {
        cache.invalidate(Some("falco"));
        std::thread::yield_now();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(table.calls() >= 2);
}
