//! Drops events already seen within a window, and counts how often they came.
//!
//! A [`Deduper`] remembers each fingerprint for a window from its first sighting (60 s by
//! default, per source if configured). A repeat inside the window is a [`Verdict::Duplicate`]: it
//! bumps the kept fingerprint's count and last-seen time, which [`Deduper::drain_updates`] hands
//! over so the stored Observation says how often it happened. After the window the fingerprint is
//! new again. Memory is bounded: at most `max_entries` fingerprints (100,000 by default), the
//! oldest evicted first, every eviction counted.
//!
//! Layout: the entries live in a ring in insertion order — so the oldest is always at the front —
//! indexed by a hash table of 4-byte ring positions: 50–53 bytes per entry in all, measured by
//! `tests/memory.rs`.
//!
//! Knows nothing about IO, clocks or metrics backends: time comes in as an argument and the
//! counts are plain numbers in [`DedupStats`].

use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};
use zen_model::{Fingerprint, Timestamp};

/// How long fingerprints are remembered, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupConfig {
    /// The window of sources without one of their own.
    pub window: Duration,
    /// Windows by source name.
    pub source_windows: BTreeMap<String, Duration>,
    /// The most fingerprints remembered at once.
    pub max_entries: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window: Duration::from_secs(60),
            source_windows: BTreeMap::new(),
            max_entries: 100_000,
        }
    }
}

impl DedupConfig {
    /// The window for events of `source`.
    pub fn window_for(&self, source: &str) -> Duration {
        self.source_windows
            .get(source)
            .copied()
            .unwrap_or(self.window)
    }
}

/// What [`Deduper::check`] says of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen within its window: keep it. `seq` numbers the fingerprints this deduper took in
    /// (0, 1, 2 …); the [`DuplicateUpdate`]s of this sighting carry the same number, so a sink
    /// can find what it wrote for it without looking the fingerprint up.
    New { seq: u64 },
    /// Seen within its window: fold it into the kept one.
    Duplicate,
}

/// Duplicates folded into a kept fingerprint since the last hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateUpdate {
    pub fingerprint: Fingerprint,
    /// The `seq` of the kept sighting ([`Verdict::New`]).
    pub seq: u64,
    /// How many duplicates arrived.
    pub duplicates: u64,
    /// The latest detection time among them.
    pub last_seen: Timestamp,
}

/// What the deduper did, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub checked: u64,
    pub duplicates: u64,
    /// Fingerprints forgotten because their window ended.
    pub expired: u64,
    /// Fingerprints forgotten early to stay within `max_entries`.
    pub evicted: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    fingerprint: [u64; 2],
    /// Nanoseconds since the deduper's epoch when the window ends.
    expires: u64,
    /// The latest detection time of a pending duplicate, in ns since the Unix epoch.
    last_seen: i64,
    /// Duplicates not yet handed over.
    pending: u32,
    live: bool,
}

impl Slot {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint(u128::from(self.fingerprint[0]) | (u128::from(self.fingerprint[1]) << 64))
    }

    fn update(&self, seq: u64) -> DuplicateUpdate {
        DuplicateUpdate {
            fingerprint: self.fingerprint(),
            seq,
            duplicates: u64::from(self.pending),
            last_seen: Timestamp::from_nanosecond(i128::from(self.last_seen))
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
}

/// The ring position of the slot whose sequence number is `seq` (modulo 2³²), `head` being the
/// front's.
fn pos(seq: u32, head: u64) -> usize {
    seq.wrapping_sub(head as u32) as usize
}

fn split(fp: Fingerprint) -> [u64; 2] {
    [fp.0 as u64, (fp.0 >> 64) as u64]
}

/// Windowed de-duplication with bounded memory; see the crate docs.
#[derive(Debug)]
pub struct Deduper {
    max_entries: usize,
    /// Entries in insertion order; `slots[0]` has sequence number `head` (slots taken in before
    /// it: `Verdict::New`'s `seq`).
    slots: VecDeque<Slot>,
    head: u64,
    /// Sequence numbers of the live slots, hashed by fingerprint, modulo 2³² (the ring never
    /// holds more than 2³¹ slots, so they are unambiguous).
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    live: usize,
    epoch: Option<Instant>,
    /// Sequence numbers of slots with pending duplicates.
    dirty: Vec<u32>,
    /// Updates of slots forgotten before they were handed over.
    ready: Vec<DuplicateUpdate>,
    stats: DedupStats,
}

impl Deduper {
    /// A deduper that keeps at most `max_entries` fingerprints (at least one).
    pub fn new(max_entries: usize) -> Self {
        Deduper {
            max_entries: max_entries.clamp(1, u32::MAX as usize / 2),
            slots: VecDeque::new(),
            head: 0,
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            live: 0,
            epoch: None,
            dirty: Vec::new(),
            ready: Vec::new(),
            stats: DedupStats::default(),
        }
    }

    /// Whether `fingerprint` was seen within `window`, at `now` (a monotonic time); an event
    /// detected at `detected_at`.
    pub fn check(
        &mut self,
        fingerprint: Fingerprint,
        window: Duration,
        now: Instant,
        detected_at: Timestamp,
    ) -> Verdict {
        let now = self.nanos(now);
        self.stats.checked += 1;
        let (key, hash, found) = self.find(fingerprint);
        if let Some(seq) = found {
            let slot = &mut self.slots[pos(seq, self.head)];
            if now < slot.expires {
                if slot.pending == 0 {
                    self.dirty.push(seq);
                    slot.last_seen = i64::MIN;
                }
                slot.pending = slot.pending.saturating_add(1);
                let detected = i64::try_from(detected_at.as_nanosecond()).unwrap_or(i64::MAX);
                slot.last_seen = slot.last_seen.max(detected);
                self.stats.duplicates += 1;
                return Verdict::Duplicate;
            }
            self.forget(seq, hash);
            self.stats.expired += 1;
        }
        self.make_room(now);
        let global = self.head + self.slots.len() as u64;
        let seq = global as u32;
        if self.slots.len() == self.slots.capacity() {
            // Grow by doubling, but never past the bound.
            let more = self
                .slots
                .capacity()
                .max(16)
                .min(self.max_entries - self.slots.len())
                .max(1);
            self.slots.reserve_exact(more);
        }
        self.slots.push_back(Slot {
            fingerprint: key,
            expires: now.saturating_add(u64::try_from(window.as_nanos()).unwrap_or(u64::MAX)),
            last_seen: i64::MIN,
            pending: 0,
            live: true,
        });
        let (slots, head, hasher) = (&self.slots, self.head, &self.hasher);
        self.index.insert_unique(hash, seq, |&s| {
            hasher.hash_one(slots[pos(s, head)].fingerprint)
        });
        self.live += 1;
        Verdict::New { seq: global }
    }

    /// Forgets `fingerprint` before its window ends — its first sighting was never stored (the
    /// sink dead-lettered it), so the next sighting must be taken in as new. Its pending
    /// duplicates are still handed over. Says whether it was remembered.
    pub fn forget_fingerprint(&mut self, fingerprint: Fingerprint) -> bool {
        let (_, hash, found) = self.find(fingerprint);
        if let Some(seq) = found {
            self.forget(seq, hash);
        }
        found.is_some()
    }

    /// Forgets fingerprints whose window has ended by `now`, oldest first, and says how many.
    /// `check` does this as it goes; call it to free memory when events stop coming.
    pub fn purge(&mut self, now: Instant) -> usize {
        let now = self.nanos(now);
        let before = self.stats.expired;
        while let Some(front) = self.slots.front() {
            if front.live && front.expires > now {
                break;
            }
            self.pop_front(now);
        }
        (self.stats.expired - before) as usize
    }

    /// The duplicates folded in since the last call, per fingerprint.
    pub fn drain_updates(&mut self) -> Vec<DuplicateUpdate> {
        let mut updates = std::mem::take(&mut self.ready);
        for seq in self.dirty.drain(..) {
            let pos = pos(seq, self.head);
            if let Some(slot) = self.slots.get_mut(pos).filter(|s| s.live && s.pending > 0) {
                updates.push(slot.update(self.head + pos as u64));
                slot.pending = 0;
            }
        }
        updates
    }

    /// How many fingerprints are remembered.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    /// Heap bytes held, for accounting.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.index.capacity() * std::mem::size_of::<u32>()
            + self.index.capacity().next_power_of_two() // one control byte per bucket, roughly
            + self.dirty.capacity() * std::mem::size_of::<u32>()
    }

    fn nanos(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Drops expired and dead slots from the front, then the oldest while full.
    /// The fingerprint's key and hash, and the sequence number of its live slot, if any.
    fn find(&self, fingerprint: Fingerprint) -> ([u64; 2], u64, Option<u32>) {
        let key = split(fingerprint);
        let hash = self.hasher.hash_one(key);
        let (slots, head) = (&self.slots, self.head);
        let found = self
            .index
            .find(hash, |&seq| slots[pos(seq, head)].fingerprint == key)
            .copied();
        (key, hash, found)
    }

    fn make_room(&mut self, now: u64) {
        while let Some(front) = self.slots.front() {
            let full = self.slots.len() >= self.max_entries;
            if front.live && front.expires > now && !full {
                break;
            }
            self.pop_front(now);
        }
    }

    fn pop_front(&mut self, now: u64) {
        let Some(front) = self.slots.front().copied() else {
            return;
        };
        if front.live {
            let hash = self.hasher.hash_one(front.fingerprint);
            self.forget(self.head as u32, hash);
            if front.expires > now {
                self.stats.evicted += 1;
            } else {
                self.stats.expired += 1;
            }
        }
        self.slots.pop_front();
        self.head += 1;
    }

    /// Removes a live slot from the index and keeps its pending update.
    fn forget(&mut self, seq: u32, hash: u64) {
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == seq) {
            entry.remove();
        }
        let pos = pos(seq, self.head);
        let slot = &mut self.slots[pos];
        if slot.pending > 0 {
            self.ready.push(slot.update(self.head + pos as u64));
            slot.pending = 0;
        }
        slot.live = false;
        self.live -= 1;
    }
}

impl Default for Deduper {
    fn default() -> Self {
        Deduper::new(DedupConfig::default().max_entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_770_000_000 + s).unwrap()
    }

    #[test]
    fn a_repeat_inside_the_window_is_a_duplicate_and_counted() {
        let t0 = Instant::now();
        let mut d = Deduper::new(10);
        let fp = Fingerprint(42);
        assert_eq!(d.check(fp, MIN, t0, at(0)), Verdict::New { seq: 0 });
        assert_eq!(
            d.check(Fingerprint(7), MIN, t0, at(0)),
            Verdict::New { seq: 1 }
        );
        assert_eq!(
            d.check(fp, MIN, t0 + Duration::from_secs(10), at(10)),
            Verdict::Duplicate
        );
        assert_eq!(
            d.check(fp, MIN, t0 + Duration::from_secs(20), at(5)),
            Verdict::Duplicate
        );
        assert_eq!(
            d.drain_updates(),
            vec![DuplicateUpdate {
                fingerprint: fp,
                seq: 0,
                duplicates: 2,
                last_seen: at(10)
            }]
        );
        assert!(d.drain_updates().is_empty(), "handed over once");
        // The window runs from the first sighting: at 60 s it is new again.
        assert_eq!(
            d.check(fp, MIN, t0 + MIN, at(60)),
            Verdict::New { seq: 2 },
            "a new sighting, with a number of its own"
        );
        assert_eq!(
            d.stats(),
            DedupStats {
                checked: 5,
                duplicates: 2,
                expired: 2,
                evicted: 0
            }
        );
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn the_oldest_is_evicted_when_full_and_its_pending_count_is_not_lost() {
        let t0 = Instant::now();
        let mut d = Deduper::new(2);
        d.check(Fingerprint(1), MIN, t0, at(0));
        d.check(Fingerprint(1), MIN, t0, at(1));
        d.check(Fingerprint(2), MIN, t0, at(0));
        d.check(Fingerprint(3), MIN, t0, at(0));
        assert_eq!(d.len(), 2);
        assert_eq!(d.stats().evicted, 1);
        assert_eq!(
            d.check(Fingerprint(1), MIN, t0, at(2)),
            Verdict::New { seq: 3 },
            "1 was evicted"
        );
        let updates = d.drain_updates();
        assert_eq!(
            updates,
            vec![DuplicateUpdate {
                fingerprint: Fingerprint(1),
                seq: 0,
                duplicates: 1,
                last_seen: at(1)
            }]
        );
    }

    #[test]
    fn windows_differ_per_source() {
        let config = DedupConfig {
            source_windows: BTreeMap::from([("trivy".to_owned(), Duration::from_secs(3600))]),
            ..DedupConfig::default()
        };
        assert_eq!(config.window_for("trivy"), Duration::from_secs(3600));
        assert_eq!(config.window_for("falco"), MIN);
        let t0 = Instant::now();
        let mut d = Deduper::new(10);
        d.check(Fingerprint(1), config.window_for("falco"), t0, at(0));
        d.check(Fingerprint(2), config.window_for("trivy"), t0, at(0));
        let later = t0 + Duration::from_secs(120);
        assert_eq!(
            d.check(Fingerprint(1), config.window_for("falco"), later, at(120)),
            Verdict::New { seq: 2 }
        );
        assert_eq!(
            d.check(Fingerprint(2), config.window_for("trivy"), later, at(120)),
            Verdict::Duplicate
        );
    }

    #[test]
    fn purge_frees_expired_entries() {
        let t0 = Instant::now();
        let mut d = Deduper::new(100);
        for i in 0..50 {
            d.check(
                Fingerprint(i),
                MIN,
                t0 + Duration::from_secs(i as u64),
                at(0),
            );
        }
        assert_eq!(d.purge(t0 + Duration::from_secs(70)), 11);
        assert_eq!(d.len(), 39);
        assert_eq!(d.purge(t0 + Duration::from_secs(1000)), 39);
        assert!(d.is_empty());
    }

    #[test]
    fn a_forgotten_fingerprint_is_new_again_and_its_counts_are_kept() {
        let mut d = Deduper::new(10);
        let t0 = Instant::now();
        let fp = Fingerprint(42);
        let at = Timestamp::UNIX_EPOCH;
        let window = Duration::from_secs(60);
        assert_eq!(d.check(fp, window, t0, at), Verdict::New { seq: 0 });
        assert_eq!(d.check(fp, window, t0, at), Verdict::Duplicate);
        assert!(d.forget_fingerprint(fp));
        assert!(!d.forget_fingerprint(fp), "already forgotten");
        assert_eq!(d.check(fp, window, t0, at), Verdict::New { seq: 1 });
        let updates = d.drain_updates();
        assert_eq!(updates.len(), 1);
        assert_eq!((updates[0].seq, updates[0].duplicates), (0, 1));
        assert_eq!(d.len(), 1);
    }
}
