//! The daemon's history: every series the dashboard shows, recorded once a second and kept in
//! three tiers — each second for the last hour, 10-second points for a day, 1-minute points for
//! 30 days — the rollups keeping the average, minimum and maximum so that a spike is never
//! averaged away. Counters are recorded as their rate per second.
//!
//! Points are compressed as they are recorded ([`codec`]: 24-bit codes, Gorilla-style XOR), in
//! blocks of a fixed stretch of time per tier (10 minutes, 2 hours, 12 hours). With a data
//! directory, each closed block is written to a file of its own and the rollup tiers are read
//! back from disk when queried, so memory holds only the last hour and the open blocks; what the
//! open blocks hold is appended to a journal per tier every 10 seconds, so a process killed at any
//! moment loses at most the last 10 seconds, and a clean stop ([`History::close`]) nothing. Every
//! file is checksummed; a damaged one is set aside (renamed `*.damaged`) and never loaded.
//!
//! It never reads the clock: every second comes in as an argument. It knows nothing of where the
//! values come from, nor of HTTP.

mod block;
pub mod codec;
mod disk;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

pub use block::Damage;
use block::{Column, Entry};
use codec::{MISSING, decode, encode};
use disk::Disk;

/// One tier of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Seconds per point.
    pub step: i64,
    /// Seconds kept.
    pub retention: i64,
    /// Seconds per block.
    block: i64,
}

/// The tiers, finest first.
pub const TIERS: [Tier; 3] = [
    Tier {
        step: 1,
        retention: 3_600,
        block: 600,
    },
    Tier {
        step: 10,
        retention: 86_400,
        block: 7_200,
    },
    Tier {
        step: 60,
        retention: 30 * 86_400,
        block: 43_200,
    },
];

/// Seconds by which a range may start before a tier's retention and still be read from it.
pub const LATE: i64 = 60;

/// How a series' recorded values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kept as recorded.
    Gauge,
    /// A monotonic count, kept as its rate per second since the previous sample (a count that
    /// went down restarted from zero).
    Counter,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Gauge => 0,
            Kind::Counter => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Gauge),
            1 => Some(Kind::Counter),
            _ => None,
        }
    }
}

/// A registered series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(u32);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("second {0} is not a time the history keeps (seconds since 1970)")]
    OutOfRange(i64),
    #[error("second {second} is not after the last one recorded, {last}")]
    NotAfter { second: i64, last: i64 },
    #[error("series `{name}` is a {was:?}, not a {asked:?}")]
    KindChanged {
        name: String,
        was: Kind,
        asked: Kind,
    },
    #[error("no more than {0} series")]
    TooManySeries(usize),
}

/// Most series a history holds.
pub const MAX_SERIES: usize = 65_536;

/// Most points a query answers per series (more are merged).
pub const MAX_POINTS: usize = 100_000;

#[derive(Debug)]
struct Series {
    name: String,
    kind: Kind,
    /// The last count seen, and its second.
    count: Option<(i64, f64)>,
}

/// A rollup point being accumulated.
#[derive(Debug, Clone, Copy)]
struct Acc {
    sum: f64,
    n: u32,
    min: f64,
    max: f64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        sum: 0.0,
        n: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// Where a closed block's columns are.
#[derive(Debug)]
enum Held {
    Memory(Vec<(u32, Column)>),
    Disk { path: PathBuf, entries: Vec<Entry> },
}

#[derive(Debug)]
struct Closed {
    start: i64,
    held: Held,
}

/// Points of a tier waiting for the journal: block start, point, and (series, codes).
type Pending = Vec<(i64, u32, Vec<(u32, [u32; 3])>)>;

#[derive(Debug)]
struct TierState {
    spec: Tier,
    streams: usize,
    open_start: Option<i64>,
    open: Vec<Option<Column>>,
    closed: VecDeque<Closed>,
    /// Rollups: the point being accumulated, and the accumulators by series.
    point: Option<i64>,
    accs: Vec<Acc>,
    pending: Pending,
}

impl TierState {
    fn new(spec: Tier, index: usize) -> TierState {
        TierState {
            spec,
            streams: if index == 0 { 1 } else { 3 },
            open_start: None,
            open: Vec::new(),
            closed: VecDeque::new(),
            point: None,
            accs: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The index of the point of time `t` in the open block (opening it).
    fn index(&mut self, t: i64) -> u32 {
        let start = *self.open_start.get_or_insert(floor(t, self.spec.block));
        ((t - start) / self.spec.step) as u32
    }

    /// Puts `codes` for `series` at point `index` of the open block.
    fn put_at(&mut self, index: u32, series: u32, codes: [u32; 3]) {
        let id = series as usize;
        if self.open.len() <= id {
            self.open.resize_with(id + 1, || None);
        }
        let streams = self.streams;
        self.open[id]
            .get_or_insert_with(|| Column::new(index, streams))
            .put(index, &codes[..streams]);
    }

    /// Puts `codes` for `series` at the point of time `t` in the open block (opening it).
    fn put(&mut self, t: i64, series: u32, codes: [u32; 3]) {
        let index = self.index(t);
        self.put_at(index, series, codes);
    }
}

fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// What opening a history found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Blocks loaded from disk.
    pub blocks: usize,
    /// Seconds of the open 1 s block read back from the journal.
    pub seconds: usize,
    /// Files set aside as damaged, with why.
    pub set_aside: Vec<String>,
}

/// A query: series, a range of seconds (both ends included), and the most points wanted (at
/// most [`MAX_POINTS`]).
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub series: &'a [SeriesId],
    pub from: i64,
    pub to: i64,
    pub points: usize,
}

/// A query's answer: the step of the tier read and of the points answered, the points' times
/// (the start of each step), and per series the average, minimum and maximum (NaN: no data).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub tier_step: i64,
    pub step: i64,
    pub times: Vec<i64>,
    pub series: Vec<Points>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    pub avg: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

/// The history of every series.
#[derive(Debug)]
pub struct History {
    series: Vec<Series>,
    by_name: HashMap<String, u32>,
    tiers: [TierState; 3],
    last: Option<i64>,
    /// The last second written to the journals.
    journaled: Option<i64>,
    disk: Option<Disk>,
    damage: Vec<String>,
}

/// Seconds between journal writes: what a killed process may lose.
pub const JOURNAL_EVERY: i64 = 10;

impl History {
    /// A history in memory only.
    pub fn in_memory() -> History {
        History {
            series: Vec::new(),
            by_name: HashMap::new(),
            tiers: [0, 1, 2].map(|i| TierState::new(TIERS[i], i)),
            last: None,
            journaled: None,
            disk: None,
            damage: Vec::new(),
        }
    }

    /// The history kept in `dir` (created if need be), as of `now`: blocks past their tier's
    /// retention are deleted, damaged files set aside, and the journals read back.
    pub fn open(dir: &Path, now: i64) -> Result<(History, Recovery), Error> {
        let (disk, loaded) = Disk::open(dir)?;
        let mut history = History::in_memory();
        let mut recovery = Recovery {
            set_aside: loaded.set_aside,
            ..Recovery::default()
        };
        for (id, kind, name) in loaded.series {
            let Some(kind) = Kind::from_byte(kind) else {
                continue;
            };
            let id = id as usize;
            if history.series.len() <= id {
                history.series.resize_with(id + 1, || Series {
                    name: String::new(),
                    kind: Kind::Gauge,
                    count: None,
                });
            }
            history.by_name.insert(name.clone(), id as u32);
            history.series[id] = Series {
                name,
                kind,
                count: None,
            };
        }
        for (tier, start, path, entries) in loaded.blocks {
            let Some(state) = history.tiers.get_mut(tier as usize) else {
                continue;
            };
            state.closed.push_back(Closed {
                start,
                held: Held::Disk { path, entries },
            });
            recovery.blocks += 1;
        }
        for state in &mut history.tiers {
            state.closed.make_contiguous().sort_by_key(|c| c.start);
        }
        for (tier, chunks) in loaded.journals.into_iter().enumerate() {
            let state = &mut history.tiers[tier];
            let points = (state.spec.block / state.spec.step) as u32;
            for (start, point, values) in chunks {
                if state.closed.iter().any(|c| c.start == start) {
                    continue; // written as a block before the journal was emptied
                }
                if start.rem_euclid(state.spec.block) != 0
                    || point >= points
                    || state.open_start.is_some_and(|s| s != start)
                {
                    recovery.set_aside.push(format!(
                        "t{tier}.journal: point {point} of a block at {start} does not fit the \
                         open block; skipped"
                    ));
                    continue;
                }
                let t = start + i64::from(point) * state.spec.step;
                for (series, codes) in values {
                    if (series as usize) < MAX_SERIES {
                        state.put(t, series, codes);
                    }
                }
                if tier == 0 {
                    recovery.seconds += 1;
                    history.last = Some(history.last.map_or(t, |l| l.max(t)));
                }
            }
        }
        // Series that blocks or journals hold but the catalog lost (a damaged tail) keep their
        // ids: new series are numbered after them, never given their data.
        let referenced = history
            .tiers
            .iter()
            .flat_map(|t| {
                let closed = t.closed.iter().filter_map(|c| match &c.held {
                    Held::Disk { entries, .. } => entries.iter().map(|e| e.series).max(),
                    Held::Memory(_) => None,
                });
                closed.chain(t.open.len().checked_sub(1).map(|n| n as u32))
            })
            .max();
        if let Some(max) = referenced
            && history.series.len() <= max as usize
        {
            history.series.resize_with(max as usize + 1, || Series {
                name: String::new(),
                kind: Kind::Gauge,
                count: None,
            });
        }
        history.disk = Some(disk);
        history.journaled = history.last;
        history.reaccumulate();
        history.expire(now);
        Ok((history, recovery))
    }

    /// Rebuilds the rollups' partial points from the 1 s block read back from the journal.
    fn reaccumulate(&mut self) {
        let Some(last) = self.last else { return };
        let [first, rest @ ..] = &mut self.tiers;
        let Some(start) = first.open_start else {
            return;
        };
        for state in rest.iter_mut() {
            let point = floor(last, state.spec.step);
            state.point = Some(point);
            state.accs = vec![Acc::EMPTY; first.open.len()];
            for (id, column) in first.open.iter().enumerate() {
                let Some(column) = column else { continue };
                let streams: Vec<&[u8]> = column.streams.iter().map(|s| s.bytes()).collect();
                let _ = Column::points(column.first, column.len(), &streams, |i, codes| {
                    let t = start + i64::from(i);
                    if t >= point && codes[0] != MISSING {
                        state.accs[id].add(decode(codes[0]));
                    }
                });
            }
        }
    }

    /// The series named `name`, registered as `kind` if it is new.
    pub fn series(&mut self, name: &str, kind: Kind) -> Result<SeriesId, Error> {
        if let Some(&id) = self.by_name.get(name) {
            let was = self.series[id as usize].kind;
            if was != kind {
                return Err(Error::KindChanged {
                    name: name.to_owned(),
                    was,
                    asked: kind,
                });
            }
            return Ok(SeriesId(id));
        }
        if self.series.len() >= MAX_SERIES {
            return Err(Error::TooManySeries(MAX_SERIES));
        }
        let id = self.series.len() as u32;
        if let Some(disk) = &mut self.disk {
            disk.add_series(id, kind.byte(), name)?;
        }
        self.series.push(Series {
            name: name.to_owned(),
            kind,
            count: None,
        });
        self.by_name.insert(name.to_owned(), id);
        Ok(SeriesId(id))
    }

    /// The series named `name`, if registered.
    pub fn find(&self, name: &str) -> Option<SeriesId> {
        self.by_name.get(name).map(|&id| SeriesId(id))
    }

    /// Every registered series' name, by id.
    pub fn names(&self) -> impl Iterator<Item = (SeriesId, &str)> {
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .map(|(i, s)| (SeriesId(i as u32), s.name.as_str()))
    }

    /// The last second recorded.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Records one sample of `values` at `second`; a series not in `values` has no point at
    /// that second. Seconds must rise.
    pub fn record(&mut self, second: i64, values: &[(SeriesId, f64)]) -> Result<(), Error> {
        if !(0..=i64::MAX / 4).contains(&second) {
            return Err(Error::OutOfRange(second));
        }
        if let Some(last) = self.last
            && second <= last
        {
            return Err(Error::NotAfter { second, last });
        }
        for tier in 1..self.tiers.len() {
            let point = floor(second, self.tiers[tier].spec.step);
            if self.tiers[tier].point.is_some_and(|p| p != point) {
                self.finalize(tier);
            }
            self.tiers[tier].point = Some(point);
        }
        self.close_before(second)?;
        let index = self.tiers[0].index(second);
        let mut journal = Vec::with_capacity(values.len());
        for &(SeriesId(id), value) in values {
            let Some(series) = self.series.get_mut(id as usize) else {
                continue;
            };
            let value = match series.kind {
                Kind::Gauge => value,
                Kind::Counter => {
                    let previous = series.count.replace((second, value));
                    match previous {
                        Some((at, was)) if value >= was => (value - was) / (second - at) as f64,
                        Some((at, _)) => value / (second - at) as f64,
                        None => continue,
                    }
                }
            };
            let code = encode(value);
            if code == MISSING {
                continue;
            }
            self.tiers[0].put_at(index, id, [code, code, code]);
            journal.push((id, [code; 3]));
            let kept = decode(code);
            for state in &mut self.tiers[1..] {
                if state.accs.len() <= id as usize {
                    state.accs.resize(id as usize + 1, Acc::EMPTY);
                }
                state.accs[id as usize].add(kept);
            }
        }
        let tier0 = &mut self.tiers[0];
        if let Some(start) = tier0.open_start {
            tier0.pending.push((start, index, journal));
        }
        self.last = Some(second);
        if self.journaled.is_none_or(|j| second - j >= JOURNAL_EVERY) {
            self.journal()?;
        }
        Ok(())
    }

    /// Ends a rollup tier's point: its average, minimum and maximum go into the open block.
    fn finalize(&mut self, tier: usize) {
        let state = &mut self.tiers[tier];
        let Some(point) = state.point.take() else {
            return;
        };
        let mut values = Vec::new();
        // The block is opened by the first point put in it, not by an empty one.
        let mut index = None;
        for id in 0..state.accs.len() {
            let acc = std::mem::replace(&mut state.accs[id], Acc::EMPTY);
            if acc.n == 0 {
                continue;
            }
            let codes = [
                encode(acc.sum / f64::from(acc.n)),
                encode(acc.min),
                encode(acc.max),
            ];
            let at = *index.get_or_insert_with(|| state.index(point));
            state.put_at(at, id as u32, codes);
            values.push((id as u32, codes));
        }
        if let (Some(start), Some(index)) = (state.open_start, index) {
            state.pending.push((start, index, values));
        }
    }

    /// Closes every open block that ends at or before `second`.
    fn close_before(&mut self, second: i64) -> Result<(), Error> {
        for tier in 0..self.tiers.len() {
            let state = &mut self.tiers[tier];
            let Some(start) = state.open_start else {
                continue;
            };
            if second < start + state.spec.block {
                continue;
            }
            let columns: Vec<(u32, Column)> = std::mem::take(&mut state.open)
                .into_iter()
                .enumerate()
                .filter_map(|(id, c)| {
                    let mut c = c?;
                    c.streams.iter_mut().for_each(codec::Encoder::shrink);
                    Some((id as u32, c))
                })
                .collect();
            state.open_start = None;
            state.pending.clear();
            let held = match &mut self.disk {
                Some(disk) => {
                    let refs: Vec<(u32, &Column)> = columns.iter().map(|(i, c)| (*i, c)).collect();
                    let bytes = block::to_bytes(tier as u8, start, &refs);
                    let (path, entries) = disk.write_block(tier, start, &bytes)?;
                    disk.empty_journal(tier)?;
                    if tier == 0 {
                        Held::Memory(columns)
                    } else {
                        Held::Disk { path, entries }
                    }
                }
                None => Held::Memory(columns),
            };
            self.tiers[tier].closed.push_back(Closed { start, held });
        }
        self.expire(second);
        Ok(())
    }

    /// Drops (and deletes) blocks past their tier's retention as of `now`.
    fn expire(&mut self, now: i64) {
        for (tier, state) in self.tiers.iter_mut().enumerate() {
            let horizon = now - state.spec.retention - state.spec.block;
            while let Some(oldest) = state.closed.front()
                && oldest.start <= horizon
            {
                if let Some(disk) = &self.disk {
                    disk.remove_block(tier, oldest.start);
                }
                state.closed.pop_front();
            }
        }
    }

    /// Appends what the open blocks gained since the last call to their journals.
    fn journal(&mut self) -> Result<(), Error> {
        if let Some(disk) = &mut self.disk {
            for (tier, state) in self.tiers.iter_mut().enumerate() {
                if !state.pending.is_empty() {
                    disk.append_journal(tier, state.streams, &state.pending)?;
                    state.pending.clear();
                }
            }
        }
        self.journaled = self.last;
        Ok(())
    }

    /// Writes what the journals lack, for a clean stop: nothing recorded is lost.
    pub fn close(&mut self) -> Result<(), Error> {
        self.journal()?;
        if let Some(disk) = &mut self.disk {
            disk.sync()?;
        }
        Ok(())
    }

    /// Files found damaged since the last call (each set aside), with why.
    pub fn take_damage(&mut self) -> Vec<String> {
        std::mem::take(&mut self.damage)
    }

    /// The tier a range starting at `from` is read from, as of `now`: the finest that still
    /// holds it. A range may start up to [`LATE`] seconds before a tier's retention: a client
    /// asks for "the last 24 hours" a moment before the daemon reads them, and every tier keeps
    /// at least a block (more than `LATE`) past its retention.
    pub fn tier_for(from: i64, now: i64) -> usize {
        TIERS
            .iter()
            .position(|t| from >= now - t.retention - LATE)
            .unwrap_or(TIERS.len() - 1)
    }

    /// The points of `query` as of `now`, from the finest tier that holds its start, merged
    /// into at most `points` steps (a multiple of the tier's step, aligned on it). The range is
    /// cut to what the tiers can hold: from the oldest retention before `now` to a day after.
    pub fn query(&mut self, query: &Query<'_>, now: i64) -> Result<Frame, Error> {
        // Seconds since 1970 (up to a time no clock will reach); the range within what any
        // tier holds, up to a day ahead.
        let now = now.clamp(0, i64::MAX / 4);
        let oldest = now - TIERS[TIERS.len() - 1].retention - TIERS[TIERS.len() - 1].block;
        let from = query.from.clamp(oldest, now + 86_400);
        let to = query.to.clamp(from, now + 86_400);
        let tier = History::tier_for(from, now);
        let step = TIERS[tier].step;
        let raw = to.saturating_sub(from) / step + 1;
        let points = query.points.clamp(1, MAX_POINTS) as i64;
        let per = raw.div_euclid(points) + i64::from(raw % points != 0);
        let out = step.saturating_mul(per.max(1));
        let first = floor(from, out);
        let n = ((floor(to, out) - first) / out + 1) as usize;
        let mut accs = vec![vec![Acc::EMPTY; n]; query.series.len()];
        let state = &self.tiers[tier];
        let mut damaged = Vec::new();
        let blocks = state
            .closed
            .iter()
            .map(|c| (c.start, Some(&c.held)))
            .chain(state.open_start.map(|s| (s, None)));
        for (start, held) in blocks {
            if start > to || start + state.spec.block <= from {
                continue;
            }
            for (q, &SeriesId(id)) in query.series.iter().enumerate() {
                let mut each = |i: u32, codes: &[u32]| {
                    let t = start + i64::from(i) * step;
                    if t < from || t > to || codes[0] == MISSING {
                        return;
                    }
                    let acc = &mut accs[q][((floor(t, out) - first) / out) as usize];
                    acc.sum += decode(codes[0]);
                    acc.n += 1;
                    acc.min = acc.min.min(decode(codes[codes.len().min(2) - 1]));
                    acc.max = acc.max.max(decode(codes[codes.len() - 1]));
                };
                let column = match held {
                    None => state.open.get(id as usize).and_then(Option::as_ref),
                    Some(Held::Memory(columns)) => columns
                        .binary_search_by_key(&id, |(i, _)| *i)
                        .ok()
                        .map(|at| &columns[at].1),
                    Some(Held::Disk { path, entries }) => {
                        let Some(entry) = entries.iter().find(|e| e.series == id) else {
                            continue;
                        };
                        let read = self
                            .disk
                            .as_ref()
                            .map(|d| d.read_series(path, entry))
                            .transpose();
                        match read {
                            Ok(Some(data)) => {
                                let streams = block::streams(entry, &data);
                                let read = streams.map_err(|e| e.to_string()).and_then(|s| {
                                    Column::points(entry.first, entry.len, &s, &mut each)
                                        .map_err(|e| e.to_string())
                                });
                                if let Err(why) = read {
                                    damaged.push((start, format!("{}: {why}", path.display())));
                                }
                            }
                            Ok(None) => {}
                            Err(e) => damaged.push((start, e.to_string())),
                        }
                        continue;
                    }
                };
                if let Some(column) = column {
                    let streams: Vec<&[u8]> = column.streams.iter().map(|s| s.bytes()).collect();
                    // Columns in memory were written here: they always decode.
                    let _ = Column::points(column.first, column.len(), &streams, &mut each);
                }
            }
        }
        for (start, why) in damaged {
            self.set_aside(tier, start, why);
        }
        let rollup = |accs: &[Acc]| Points {
            avg: accs
                .iter()
                .map(|a| {
                    if a.n == 0 {
                        f64::NAN
                    } else {
                        a.sum / f64::from(a.n)
                    }
                })
                .collect(),
            min: accs
                .iter()
                .map(|a| if a.n == 0 { f64::NAN } else { a.min })
                .collect(),
            max: accs
                .iter()
                .map(|a| if a.n == 0 { f64::NAN } else { a.max })
                .collect(),
        };
        Ok(Frame {
            tier_step: step,
            step: out,
            times: (0..n).map(|i| first + i as i64 * out).collect(),
            series: accs.iter().map(|a| rollup(a)).collect(),
        })
    }

    /// Sets a damaged block aside: renamed on disk, never read again.
    fn set_aside(&mut self, tier: usize, start: i64, why: String) {
        let state = &mut self.tiers[tier];
        state.closed.retain(|c| c.start != start);
        if let Some(disk) = &self.disk {
            disk.set_aside(tier, start);
        }
        self.damage.push(why);
    }

    /// Bytes the history holds in memory for its points (compressed columns).
    pub fn bytes_held(&self) -> usize {
        let columns =
            |cs: &mut dyn Iterator<Item = &Column>| -> usize { cs.map(Column::bytes_held).sum() };
        self.tiers
            .iter()
            .map(|t| {
                columns(&mut t.open.iter().flatten())
                    + t.closed
                        .iter()
                        .map(|c| match &c.held {
                            Held::Memory(cs) => columns(&mut cs.iter().map(|(_, c)| c)),
                            Held::Disk { entries, .. } => entries.len() * size_of::<Entry>(),
                        })
                        .sum::<usize>()
            })
            .sum()
    }
}
