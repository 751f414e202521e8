//! The history through its public face: recording, the tiers and their rollups, queries, and
//! what survives a clean stop, a kill and damaged files.

use zen_history::{Error, History, Kind, Query, SeriesId, codec::kept};

/// 2026-12-07T00:00:00Z: a block boundary of every tier.
const T0: i64 = 1_796_601_600;

fn query(
    h: &mut History,
    series: &[SeriesId],
    from: i64,
    to: i64,
    points: usize,
    now: i64,
) -> zen_history::Frame {
    h.query(
        &Query {
            series,
            from,
            to,
            points,
        },
        now,
    )
    .expect("query")
}

/// Whether two frames hold the same points (NaN equal to NaN); the first difference if not.
fn same(a: &zen_history::Frame, b: &zen_history::Frame) -> Result<(), String> {
    if (a.tier_step, a.step, &a.times) != (b.tier_step, b.step, &b.times) {
        return Err(format!(
            "steps or times differ: {} {} against {} {}",
            a.tier_step, a.step, b.tier_step, b.step
        ));
    }
    for (s, (x, y)) in a.series.iter().zip(&b.series).enumerate() {
        for (name, u, v) in [
            ("avg", &x.avg, &y.avg),
            ("min", &x.min, &y.min),
            ("max", &x.max, &y.max),
        ] {
            for (i, (p, q)) in u.iter().zip(v).enumerate() {
                if !(p == q || p.is_nan() && q.is_nan()) {
                    return Err(format!(
                        "series {s} {name} at {}: {p} against {q}",
                        a.times[i]
                    ));
                }
            }
        }
    }
    Ok(())
}

fn wave(t: i64) -> f64 {
    1000.0 + ((t % 97) as f64) * 3.25
}

#[test]
fn seconds_read_back_as_kept_with_gaps_as_nan() {
    let mut h = History::in_memory();
    let a = h.series("a", Kind::Gauge).expect("series");
    for t in T0..T0 + 30 {
        if t == T0 + 7 {
            continue; // a missed second
        }
        h.record(t, &[(a, wave(t))]).expect("record");
    }
    let f = query(&mut h, &[a], T0, T0 + 29, 1000, T0 + 30);
    assert_eq!((f.tier_step, f.step, f.times.len()), (1, 1, 30));
    assert_eq!(f.times[3], T0 + 3);
    assert_eq!(f.series[0].avg[3], kept(wave(T0 + 3)));
    assert!(f.series[0].avg[7].is_nan());
    assert_eq!(f.series[0].max[3], f.series[0].min[3]);
}

#[test]
fn seconds_must_rise() {
    let mut h = History::in_memory();
    let a = h.series("a", Kind::Gauge).expect("series");
    h.record(T0 + 5, &[(a, 1.0)]).expect("record");
    assert!(matches!(
        h.record(T0 + 5, &[(a, 1.0)]),
        Err(Error::NotAfter { second, last }) if second == T0 + 5 && last == T0 + 5
    ));
    assert!(h.record(T0 + 4, &[(a, 1.0)]).is_err());
    assert!(matches!(
        h.record(i64::MAX, &[(a, 1.0)]),
        Err(Error::OutOfRange(_))
    ));
    assert!(matches!(
        h.record(-1, &[(a, 1.0)]),
        Err(Error::OutOfRange(_))
    ));
    // Any range and any number of points: at most MAX_POINTS (+ the grid's ends) answered.
    let f = query(&mut h, &[a], i64::MIN, i64::MAX, usize::MAX, T0 + 6);
    assert!(
        f.times.len() <= zen_history::MAX_POINTS + 2,
        "{}",
        f.times.len()
    );
    assert!(matches!(
        h.series("a", Kind::Counter),
        Err(Error::KindChanged { .. })
    ));
}

#[test]
fn counters_are_kept_as_rates_and_survive_a_reset() {
    let mut h = History::in_memory();
    let c = h.series("events_total", Kind::Counter).expect("series");
    let counts = [100.0, 150.0, 250.0, 20.0, 60.0];
    for (i, v) in counts.iter().enumerate() {
        h.record(T0 + 2 * i as i64, &[(c, *v)]).expect("record");
    }
    let f = query(&mut h, &[c], T0, T0 + 8, 1000, T0 + 9);
    let rates: Vec<f64> = (0..5).map(|i| f.series[0].avg[2 * i]).collect();
    // No rate for the first sample; 50 and 100 over 2 s; the reset counts from zero.
    assert!(rates[0].is_nan());
    assert_eq!(&rates[1..], &[25.0, 50.0, 10.0, 20.0]);
}

/// The index of the point at `t`.
fn at(f: &zen_history::Frame, t: i64) -> usize {
    f.times
        .iter()
        .position(|&p| p == t)
        .expect("a point at that time")
}

#[test]
fn rollups_keep_average_minimum_and_maximum() {
    let mut h = History::in_memory();
    let a = h.series("latency", Kind::Gauge).expect("series");
    // Two hours at 1 s: ones, with a spike of 500 at T0 + 3,601.
    for t in T0..T0 + 7_200 {
        let v = if t == T0 + 3_601 { 500.0 } else { 1.0 };
        h.record(t, &[(a, v)]).expect("record");
    }
    let now = T0 + 7_200;
    // From two hours ago: the 10 s tier.
    let f = query(&mut h, &[a], T0, now - 1, 10_000, now);
    assert_eq!((f.tier_step, f.step), (10, 10));
    let spike = at(&f, T0 + 3_600);
    assert_eq!(f.series[0].max[spike], 500.0);
    assert_eq!(f.series[0].min[spike], 1.0);
    assert_eq!(f.series[0].avg[spike], kept((500.0 + 9.0) / 10.0));
    // At 12 points, each of 10 minutes: the spike is still the maximum of its point.
    let f = query(&mut h, &[a], T0, now - 1, 12, now);
    assert_eq!((f.step, f.times.len()), (600, 12));
    assert_eq!(f.series[0].max[6], 500.0);
    assert_eq!(f.series[0].max[5], 1.0);
    // From more than a day ago: the 1 minute tier.
    let f = query(&mut h, &[a], now - 2 * 86_400, now - 1, 100_000, now);
    assert_eq!(f.tier_step, 60);
    let spike = at(&f, T0 + 3_600);
    assert_eq!(f.series[0].max[spike], 500.0);
}

#[test]
fn a_range_asked_a_moment_late_is_read_from_the_tier_it_was_meant_for() {
    // A page computes "the last 24 hours" a second or two before the daemon reads them.
    let now = T0 + 100_000;
    for (range, tier) in [(3_600, 0), (86_400, 1)] {
        assert_eq!(History::tier_for(now - range, now), tier);
        assert_eq!(
            History::tier_for(now - range - zen_history::LATE, now),
            tier
        );
        assert_eq!(
            History::tier_for(now - range - zen_history::LATE - 1, now),
            tier + 1
        );
    }
}

fn fill(h: &mut History, series: &[SeriesId], from: i64, to: i64) {
    for t in from..to {
        let values: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, wave(t + i as i64)))
            .collect();
        h.record(t, &values).expect("record");
    }
}

#[test]
fn a_clean_stop_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = T0 + 7_200 + 925; // inside an open block of every tier
    let (before, seconds) = {
        let (mut h, recovery) = History::open(dir.path(), T0).expect("open");
        assert_eq!(recovery.blocks, 0);
        let s = [
            h.series("a", Kind::Gauge).expect("a"),
            h.series("b", Kind::Gauge).expect("b"),
        ];
        fill(&mut h, &s, T0, stop);
        h.close().expect("close");
        let mut frames = Vec::new();
        for (from, points) in [
            (stop - 120, 1000),
            (stop - 3_000, 1000),
            (T0, 10_000),
            (stop - 2 * 86_400, 100_000),
        ] {
            frames.push(query(&mut h, &s, from, stop - 1, points, stop));
        }
        (frames, s)
    };
    let (mut h, recovery) = History::open(dir.path(), stop).expect("reopen");
    assert!(recovery.set_aside.is_empty(), "{:?}", recovery.set_aside);
    assert!(recovery.blocks >= 3, "{recovery:?}");
    let s = [h.find("a").expect("a"), h.find("b").expect("b")];
    assert_eq!(s, seconds);
    for (frame, (from, points)) in before.iter().zip([
        (stop - 120, 1000),
        (stop - 3_000, 1000),
        (T0, 10_000),
        (stop - 2 * 86_400, 100_000),
    ]) {
        let now = query(&mut h, &s, from, stop - 1, points, stop);
        if let Err(e) = same(&now, frame) {
            panic!("from {from}: {e}");
        }
    }
    // A value from a minute before the stop, unchanged.
    let f = query(&mut h, &s, stop - 60, stop - 60, 1, stop);
    assert_eq!(f.series[1].avg[0], kept(wave(stop - 60 + 1)));
    // Recording goes on where it stopped.
    assert!(h.record(stop - 1, &[(s[0], 1.0)]).is_err());
    h.record(stop, &[(s[0], 1.0)]).expect("record");
}

#[test]
fn a_kill_loses_at_most_the_last_ten_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = T0 + 7_200 + 925;
    {
        let (mut h, _) = History::open(dir.path(), T0).expect("open");
        let a = h.series("a", Kind::Gauge).expect("a");
        fill(&mut h, &[a], T0, stop);
        // Dropped without close(), as a killed process would leave it.
    }
    let (mut h, recovery) = History::open(dir.path(), stop).expect("reopen");
    let a = h.find("a").expect("a");
    let last = h.last().expect("a last second");
    assert!(last >= stop - 1 - 10, "{last} against {stop}");
    assert!(recovery.seconds > 0);
    let f = query(&mut h, &[a], stop - 600, stop - 1, 1000, stop);
    for (i, t) in f.times.iter().enumerate() {
        if *t <= last {
            assert_eq!(f.series[0].avg[i], kept(wave(*t)), "at {t}");
        }
    }
    // The rollups' open points were rebuilt: the 10 s point of the last second continues.
    h.record(last + 1, &[(a, wave(last + 1))]).expect("record");
}

#[test]
fn damaged_files_are_set_aside_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = T0 + 1_800;
    {
        let (mut h, _) = History::open(dir.path(), T0).expect("open");
        let a = h.series("a", Kind::Gauge).expect("a");
        fill(&mut h, &[a], T0, stop);
        h.close().expect("close");
    }
    // Three 10-minute blocks of the 1 s tier: damage the first one's header and the second
    // one's data; cut the journal of the 10 s tier short.
    let first = dir.path().join(format!("t0-{T0}.block"));
    let second = dir.path().join(format!("t0-{}.block", T0 + 600));
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[20] ^= 0xff;
    std::fs::write(&first, bytes).expect("write");
    let mut bytes = std::fs::read(&second).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&second, bytes).expect("write");
    let journal = dir.path().join("t1.journal");
    let len = std::fs::metadata(&journal).expect("journal").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .expect("open");
    file.set_len(len - 5).expect("cut");

    let (mut h, recovery) = History::open(dir.path(), stop).expect("reopen");
    assert_eq!(recovery.set_aside.len(), 2, "{:?}", recovery.set_aside);
    assert!(
        recovery
            .set_aside
            .iter()
            .any(|m| m.contains(&format!("t0-{T0}.block")) && m.contains("checksum")),
        "{:?}",
        recovery.set_aside
    );
    assert!(dir.path().join(format!("t0-{T0}.block.damaged")).exists());
    assert!(dir.path().join("t1.journal.damaged").exists());
    let a = h.find("a").expect("a");
    let f = query(&mut h, &[a], T0, stop - 1, 10_000, stop);
    // The first block is gone; the second is found damaged when read, and set aside.
    assert!(f.series[0].avg[0].is_nan());
    assert!(f.series[0].avg[600..1200].iter().all(|v| v.is_nan()));
    assert_eq!(f.series[0].avg[1200], kept(wave(T0 + 1200)));
    let damage = h.take_damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert!(
        dir.path()
            .join(format!("t0-{}.block.damaged", T0 + 600))
            .exists()
    );
}

#[test]
fn blocks_past_their_retention_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, _) = History::open(dir.path(), T0).expect("open");
    let a = h.series("a", Kind::Gauge).expect("a");
    fill(&mut h, &[a], T0, T0 + 600 * 8);
    let blocks = |prefix: &str| {
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
            .count()
    };
    // Eight 10-minute blocks would be 80 minutes: the oldest went after an hour.
    assert_eq!(blocks("t0-"), 6);
    assert!(!dir.path().join(format!("t0-{T0}.block")).exists());
}

#[test]
fn series_the_catalog_lost_are_never_given_to_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut h, _) = History::open(dir.path(), T0).expect("open");
        let a = h.series("a", Kind::Gauge).expect("a");
        let b = h.series("b", Kind::Gauge).expect("b");
        fill(&mut h, &[a, b], T0, T0 + 700);
        h.close().expect("close");
    }
    // The catalog loses its last record (b's).
    let catalog = dir.path().join("series.log");
    let len = std::fs::metadata(&catalog).expect("catalog").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&catalog)
        .expect("open")
        .set_len(len - 1)
        .expect("cut");
    let (mut h, recovery) = History::open(dir.path(), T0 + 700).expect("reopen");
    assert_eq!(recovery.set_aside.len(), 1, "{:?}", recovery.set_aside);
    assert!(h.find("b").is_none());
    let c = h.series("c", Kind::Gauge).expect("c");
    let names: Vec<&str> = h.names().map(|(_, n)| n).collect();
    assert_eq!(names, ["a", "c"]);
    let f = query(&mut h, &[c], T0, T0 + 699, 1000, T0 + 700);
    assert!(f.series[0].avg.iter().all(|v| v.is_nan()), "c has b's data");
}

#[test]
fn a_journal_point_outside_its_block_is_skipped_not_believed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut h, _) = History::open(dir.path(), T0).expect("open");
        let a = h.series("a", Kind::Gauge).expect("a");
        fill(&mut h, &[a], T0, T0 + 30);
        h.close().expect("close");
    }
    // A record whose checksum holds but whose point is far past the 600 of a block, for a
    // series id past any a history holds.
    let mut payload = 1u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&T0.to_le_bytes());
    payload.extend_from_slice(&4_000_000_000u32.to_le_bytes());
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    payload.extend_from_slice(&[1, 2, 3]);
    let mut record = (payload.len() as u32).to_le_bytes().to_vec();
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    let journal = dir.path().join("t0.journal");
    let mut bytes = std::fs::read(&journal).expect("journal");
    bytes.extend_from_slice(&record);
    std::fs::write(&journal, bytes).expect("write");

    let (mut h, recovery) = History::open(dir.path(), T0 + 30).expect("reopen");
    assert_eq!(recovery.set_aside.len(), 1, "{:?}", recovery.set_aside);
    assert!(
        recovery.set_aside[0].contains("does not fit"),
        "{:?}",
        recovery.set_aside
    );
    assert_eq!(h.last(), Some(T0 + 29));
    let a = h.find("a").expect("a");
    let f = query(&mut h, &[a], T0, T0 + 29, 1000, T0 + 30);
    assert_eq!(f.series[0].avg[29], kept(wave(T0 + 29)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any values at any rising seconds, any query: no panic, and what is answered is what was
    /// kept (or a rollup of it).
    #[test]
    fn recording_and_querying_never_panic(
        steps in proptest::collection::vec((1i64..5_000, proptest::num::f64::ANY), 1..200),
        from in -100_000i64..200_000,
        span in 0i64..3_000_000,
        points in 0usize..5_000,
    ) {
        let mut h = History::in_memory();
        let a = h.series("a", Kind::Gauge).expect("a");
        let c = h.series("c", Kind::Counter).expect("c");
        let mut t = T0;
        for (dt, v) in &steps {
            t += dt;
            h.record(t, &[(a, *v), (c, v.abs())]).expect("record");
        }
        let f = h.query(&Query { series: &[a, c], from: T0 + from, to: T0 + from + span, points }, t + 1).expect("query");
        proptest::prop_assert!(f.times.len() <= points.max(1) + 2);
        for s in &f.series {
            for (lo, hi) in s.min.iter().zip(&s.max) {
                proptest::prop_assert!(lo.is_nan() && hi.is_nan() || lo <= hi);
            }
        }
    }
}
