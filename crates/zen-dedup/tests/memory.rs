//! Memory per remembered fingerprint, measured with a counting allocator.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report
#![allow(unsafe_code)] // a counting global allocator; it only forwards to the system allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zen_dedup::Deduper;
use zen_model::{Fingerprint, Timestamp};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn at_most_64_bytes_per_entry_when_full() {
    let t0 = Instant::now();
    for max in [1_000usize, 100_000, 1_000_000] {
        let before = LIVE.load(Ordering::Relaxed);
        let mut d = Deduper::new(max);
        for i in 0..max as u128 * 2 {
            let fp = Fingerprint(i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
            d.check(fp, Duration::from_secs(60), t0, Timestamp::UNIX_EPOCH);
        }
        assert_eq!(d.len(), max);
        let per_entry = (LIVE.load(Ordering::Relaxed) - before) as f64 / max as f64;
        println!("max_entries {max}: {per_entry:.1} bytes per entry");
        assert!(per_entry <= 64.0, "{per_entry:.1} bytes per entry at {max}");
    }
}
