//! The cache against a plain model, for any sequence of reads, invalidations, configuration
//! changes and passing time: it returns what was loaded last, and loads only when it must.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zen_config_cache::{ConfigCache, Loader};

/// Sources `a` and `b` have configuration of their own, `c` has none. Every load returns the
/// current revision of the source's configuration.
#[derive(Clone, Default)]
struct Revisions {
    revision: Arc<[AtomicU32; 3]>,
    loads: Arc<AtomicUsize>,
}

impl Loader<(String, u32)> for Revisions {
    fn load_global(&self) -> Result<(String, u32), String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(("global".to_owned(), self.revision[2].load(Ordering::SeqCst)))
    }
    fn load_source(&self, source: &str) -> Result<Option<(String, u32)>, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(match source {
            "a" => Some(("a".to_owned(), self.revision[0].load(Ordering::SeqCst))),
            "b" => Some(("b".to_owned(), self.revision[1].load(Ordering::SeqCst))),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Change(u8),
    Invalidate(u8),
    InvalidateAll,
    Wait(u16),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0u8..3).prop_map(Op::Get),
        2 => (0u8..3).prop_map(Op::Change),
        1 => (0u8..4).prop_map(Op::Invalidate),
        1 => Just(Op::InvalidateAll),
        2 => (0u16..600).prop_map(Op::Wait),
    ];
    prop::collection::vec(op, 0..200)
}

const TTL: Duration = Duration::from_millis(1000);

/// Per key (`a`, `b`, `c`, or `""` for the global default): the value last loaded and when it
/// expires.
type Model = HashMap<&'static str, (Option<(String, u32)>, Instant)>;
const NAMES: [&str; 3] = ["a", "b", "c"];

proptest! {
    #[test]
    fn reads_return_the_last_load_and_load_only_when_needed(ops in ops()) {
        let loader = Revisions::default();
        let cache = ConfigCache::new("model", TTL, loader.clone());
        let mut now = Instant::now();
        let mut model = Model::new();
        let mut loads = 0;
        for op in ops {
            match op {
                Op::Wait(ms) => now += Duration::from_millis(u64::from(ms)),
                Op::Change(i) => {
                    loader.revision[i as usize].fetch_add(1, Ordering::SeqCst);
                }
                Op::Invalidate(i) => {
                    let key = NAMES.get(i as usize).copied();
                    cache.invalidate(key);
                    model.remove(key.unwrap_or(""));
                }
                Op::InvalidateAll => {
                    cache.invalidate_all();
                    model.clear();
                }
                Op::Get(i) => {
                    let name = NAMES[i as usize];
                    let mut expect = |key: &'static str, model: &mut Model| {
                        match model.get(key) {
                            Some((v, expires)) if now < *expires => v.clone(),
                            _ => {
                                loads += 1;
                                let v = if key.is_empty() { loader.load_global().ok() } else { loader.load_source(key).unwrap() };
                                loader.loads.fetch_sub(1, Ordering::SeqCst); // the model's own call
                                model.insert(key, (v.clone(), now + TTL));
                                v
                            }
                        }
                    };
                    let want = match expect(name, &mut model) {
                        Some(v) => v,
                        None => expect("", &mut model).unwrap(),
                    };
                    let got = cache.get(name, now).unwrap();
                    prop_assert_eq!(&got.value, &want, "{} at {:?}", name, now);
                    prop_assert_eq!(loader.loads.load(Ordering::SeqCst), loads, "loads for {}", name);
                    // Versions number the loads of present values: never more than the loads.
                    prop_assert!(got.version <= loads as u64);
                }
            }
        }
    }
}
