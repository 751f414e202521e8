//! The deduper against a plain model, and its bounds, for any sequence of events.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zen_dedup::{Deduper, Verdict};
use zen_model::{Fingerprint, Timestamp};

/// (fingerprint, milliseconds since the previous event, window in ms)
fn events() -> impl Strategy<Value = Vec<(u8, u16, u16)>> {
    prop::collection::vec(
        (
            0u8..24,
            0u16..400,
            prop::sample::select(vec![50u16, 300, 1000]),
        ),
        1..400,
    )
}

fn fp(n: u8) -> Fingerprint {
    // Spread over all 128 bits, as real fingerprints are.
    Fingerprint(u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_repeat_inside_the_window_is_a_duplicate_and_after_it_new(events in events()) {
        let t0 = Instant::now();
        let mut d = Deduper::new(1_000);
        let mut model: HashMap<u8, u64> = HashMap::new(); // fingerprint -> window end (ms)
        let (mut now, mut kept) = (0u64, 0u64);
        for (n, step, window) in events {
            now += u64::from(step);
            let expect = match model.get(&n) {
                Some(&end) if now < end => Verdict::Duplicate,
                _ => {
                    model.insert(n, now + u64::from(window));
                    kept += 1;
                    Verdict::New { seq: kept - 1 }
                }
            };
            let at = t0 + Duration::from_millis(now);
            let got = d.check(fp(n), Duration::from_millis(u64::from(window)), at, Timestamp::UNIX_EPOCH);
            prop_assert_eq!(got, expect, "fingerprint {} at {} ms", n, now);
        }
    }

    #[test]
    fn never_more_than_the_maximum_and_every_duplicate_is_handed_over(
        events in events(),
        max in 1usize..16,
        drain_every in 1usize..50,
    ) {
        let t0 = Instant::now();
        let mut d = Deduper::new(max);
        let (mut now, mut handed_over) = (0u64, 0u64);
        // The fingerprint of each kept sighting, by its number: every update must name its own.
        let mut kept: Vec<u8> = Vec::new();
        let mut hand_over = |updates: Vec<zen_dedup::DuplicateUpdate>, kept: &[u8]| {
            for u in &updates {
                let n = kept.get(u.seq as usize).copied();
                prop_assert_eq!(n.map(fp), Some(u.fingerprint), "update of seq {}", u.seq);
            }
            handed_over += updates.iter().map(|u| u.duplicates).sum::<u64>();
            Ok(())
        };
        for (i, (n, step, window)) in events.iter().enumerate() {
            now += u64::from(*step);
            let at = t0 + Duration::from_millis(now);
            let detected = Timestamp::from_second(i as i64).unwrap();
            if let Verdict::New { seq } = d.check(fp(*n), Duration::from_millis(u64::from(*window)), at, detected) {
                prop_assert_eq!(seq, kept.len() as u64);
                kept.push(*n);
            }
            prop_assert!(d.len() <= max, "{} entries, max {}", d.len(), max);
            if i % drain_every == 0 {
                hand_over(d.drain_updates(), &kept)?;
            }
        }
        d.purge(t0 + Duration::from_secs(3600));
        hand_over(d.drain_updates(), &kept)?;
        let new = kept.len() as u64;
        let stats = d.stats();
        prop_assert_eq!(handed_over, stats.duplicates);
        prop_assert_eq!(new + stats.duplicates, stats.checked);
        prop_assert!(d.is_empty());
    }
}
