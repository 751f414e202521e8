//! Self-tuning, opt-in: the settings a person allows (`advisor.auto_apply`) are moved as the
//! recommendations say, within bounds, one change at a time. A change of the batches is kept
//! only if the latency it targets improves (by a tenth at least) without the CPU spent per
//! event growing by more than a quarter; a change of `queue_wait` only if the requests refused
//! with 429 fall by half at least. Otherwise it is reverted and that setting left alone for a
//! while.
//! Every change is logged here with what was seen before and after, and can be undone.

use serde::{Deserialize, Serialize};

use crate::advice::{Action, Recommendation, State};

/// A setting the tuner may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// `pipeline.max_batch_age`, in seconds.
    BatchAge,
    /// `pipeline.max_batch_size`, in events.
    BatchSize,
    /// `queue_wait`: how long a request waits for room in a full queue before 429, in seconds.
    QueueWait,
}

impl Knob {
    /// The configuration key a recommendation names.
    pub fn key(self) -> &'static str {
        match self {
            Knob::BatchAge => "pipeline.max_batch_age",
            Knob::BatchSize => "pipeline.max_batch_size",
            Knob::QueueWait => "queue_wait",
        }
    }

    /// A recommended value (`25ms`, `2s`; `30`) in the knob's unit (seconds; events).
    pub fn parse(self, value: &str) -> Option<f64> {
        match self {
            Knob::BatchSize => value.parse::<u32>().ok().map(f64::from),
            Knob::BatchAge | Knob::QueueWait => {
                let (n, scale) = if let Some(ms) = value.strip_suffix("ms") {
                    (ms, 1e-3)
                } else {
                    (value.strip_suffix('s')?, 1.0)
                };
                n.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(|v| v * scale)
            }
        }
    }
}

/// How far a knob may be moved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    pub min: f64,
    pub max: f64,
}

/// What a change is judged by: P95 from receipt to commit, CPU seconds per event, and
/// ingestion requests refused with 429 per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Observed {
    pub p95: f64,
    pub cpu_per_event: f64,
    pub rejected: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied; judged once it has settled.
    Trying,
    Kept,
    Reverted,
    /// Reverted by a person.
    Undone,
}

/// One change the tuner made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub id: u64,
    pub at: i64,
    pub knob: Knob,
    pub from: f64,
    pub to: f64,
    /// The recommendation that asked for it.
    pub recommendation: String,
    pub outcome: Outcome,
    pub before: Observed,
    pub after: Option<Observed>,
}

/// A setting to apply now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    pub knob: Knob,
    pub value: f64,
}

/// No change of that id can be undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no change {0} to undo (see /api/v1/insights)")]
pub struct NoSuchChange(pub u64);

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Tuner {
    allowed: Vec<(Knob, Bounds)>,
    /// Seconds a change runs before it is judged.
    settle: i64,
    /// Seconds a knob is left alone after a revert.
    hold: i64,
    held: Vec<(Knob, i64)>,
    changes: Vec<Change>,
}

/// Changes kept in the log.
const LOG: usize = 100;

impl Tuner {
    pub fn new(allowed: Vec<(Knob, Bounds)>, settle: i64, hold: i64) -> Tuner {
        Tuner {
            allowed,
            settle,
            hold,
            held: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Seconds a change runs before it is judged.
    pub fn settle(&self) -> i64 {
        self.settle
    }

    /// Every change, oldest first (the last hundred).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    fn hold_off(&mut self, knob: Knob, until: i64) {
        self.held.retain(|(k, _)| *k != knob);
        self.held.push((knob, until));
    }

    /// One step at `now`: judge the change on trial once settled (a revert is a move), or else
    /// start the first change a recommendation asks for of an allowed, unheld knob. `current`
    /// gives each knob's value now.
    pub fn step(
        &mut self,
        now: i64,
        recommendations: &[Recommendation],
        current: &dyn Fn(Knob) -> f64,
        observed: Observed,
    ) -> Option<Move> {
        if let Some(c) = self.changes.last_mut()
            && c.outcome == Outcome::Trying
        {
            if now - c.at < self.settle {
                return None;
            }
            c.after = Some(observed);
            let better = match c.knob {
                Knob::QueueWait => observed.rejected <= c.before.rejected * 0.5,
                Knob::BatchAge | Knob::BatchSize => {
                    let faster = observed.p95 <= c.before.p95 * 0.9;
                    let thrifty = !(observed.cpu_per_event.is_finite()
                        && c.before.cpu_per_event > 0.0)
                        || observed.cpu_per_event <= c.before.cpu_per_event * 1.25;
                    faster && thrifty
                }
            };
            if better {
                c.outcome = Outcome::Kept;
                return None;
            }
            c.outcome = Outcome::Reverted;
            let back = Move {
                knob: c.knob,
                value: c.from,
            };
            self.hold_off(back.knob, now + self.hold);
            return Some(back);
        }
        if !observed.p95.is_finite() {
            return None;
        }
        for r in recommendations {
            if !matches!(r.state, State::New | State::Acknowledged) {
                continue;
            }
            let Action::Setting { key, value } = &r.action else {
                continue;
            };
            let Some(&(knob, bounds)) = self.allowed.iter().find(|(k, _)| k.key() == key) else {
                continue;
            };
            if self
                .held
                .iter()
                .any(|(k, until)| *k == knob && now < *until)
            {
                continue;
            }
            let Some(to) = knob.parse(value).map(|v| v.clamp(bounds.min, bounds.max)) else {
                continue;
            };
            let from = current(knob);
            if (to - from).abs() <= f64::EPSILON * from.abs().max(1.0) {
                continue;
            }
            let id = self.changes.last().map_or(1, |c| c.id + 1);
            self.changes.push(Change {
                id,
                at: now,
                knob,
                from,
                to,
                recommendation: r.id.clone(),
                outcome: Outcome::Trying,
                before: observed,
                after: None,
            });
            if self.changes.len() > LOG {
                self.changes.remove(0);
            }
            return Some(Move { knob, value: to });
        }
        None
    }

    /// Undoes change `id` (on trial or kept): the move back, and the knob left alone a while.
    pub fn undo(&mut self, id: u64, now: i64) -> Result<Move, NoSuchChange> {
        let c = self
            .changes
            .iter_mut()
            .find(|c| c.id == id && matches!(c.outcome, Outcome::Trying | Outcome::Kept))
            .ok_or(NoSuchChange(id))?;
        c.outcome = Outcome::Undone;
        let back = Move {
            knob: c.knob,
            value: c.from,
        };
        self.hold_off(back.knob, now + self.hold);
        Ok(back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advice::{Facts, recommend};

    /// A pipeline at `rate` events a second: events wait about their batch's age when batches
    /// age out (or for it to fill), a commit costs `commit` seconds plus 2 µs an event, and
    /// batches queue for the sink as an M/M/1 queue would; the CPU per event is the commits'
    /// fixed cost spread over their events.
    struct Model {
        rate: f64,
        age: f64,
        size: f64,
        commit: f64,
    }

    impl Model {
        fn per_batch(&self) -> f64 {
            (self.rate * self.age).clamp(1.0, self.size)
        }
        /// The sink's utilisation.
        fn load(&self) -> f64 {
            let commit = self.commit + 2e-6 * self.per_batch();
            self.rate * commit / self.per_batch()
        }
        fn observe(&self) -> Observed {
            let per_batch = self.per_batch();
            let fills = per_batch >= self.size;
            let wait = if fills {
                self.size / self.rate
            } else {
                self.age
            };
            let commit = self.commit + 2e-6 * per_batch;
            let load = self.load();
            Observed {
                p95: if load < 1.0 {
                    0.95 * wait + commit / (1.0 - load)
                } else {
                    10.0
                },
                cpu_per_event: (self.commit * 0.5) / per_batch + 1e-5,
                rejected: 0.0,
            }
        }
        fn facts(&self) -> Facts {
            let o = self.observe();
            Facts {
                stage_p95: vec![("total".to_owned(), o.p95)],
                latency_objective: 0.1,
                events_per_second: self.rate,
                commit_p95: Some(self.commit),
                queue_fill: Some(self.load().min(1.0)),
                max_batch_size: self.size as usize,
                max_batch_age: self.age,
                queue_capacity: 10_000,
                retention: 30.0 * 86_400.0,
                ..Facts::default()
            }
        }
        fn apply(&mut self, m: Move) {
            match m.knob {
                Knob::BatchAge => self.age = m.value,
                Knob::BatchSize => self.size = m.value,
                Knob::QueueWait => unreachable!("the model has no queue wait"),
            }
        }
        fn current(&self, k: Knob) -> f64 {
            match k {
                Knob::BatchAge => self.age,
                Knob::BatchSize => self.size,
                Knob::QueueWait => 0.0,
            }
        }
    }

    fn tuner() -> Tuner {
        Tuner::new(
            vec![
                (
                    Knob::BatchAge,
                    Bounds {
                        min: 0.005,
                        max: 1.0,
                    },
                ),
                (
                    Knob::BatchSize,
                    Bounds {
                        min: 1.0,
                        max: 1_000.0,
                    },
                ),
            ],
            60,
            600,
        )
    }

    /// Runs the tuner against the model every 10 s for `seconds`.
    fn run(t: &mut Tuner, m: &mut Model, seconds: i64) {
        for now in (0..seconds).step_by(10) {
            let recs = recommend(&m.facts(), &[]);
            let observed = m.observe();
            if let Some(mv) = t.step(now, &recs, &|k| m.current(k), observed) {
                m.apply(mv);
            }
        }
    }

    #[test]
    fn a_slow_trickle_converges_under_its_objective() {
        // Two events a second, batches of 15 aging out after 300 ms: P95 near 290 ms.
        let mut m = Model {
            rate: 2.0,
            age: 0.3,
            size: 15.0,
            commit: 0.002,
        };
        assert!(m.observe().p95 > 0.1);
        let mut t = tuner();
        run(&mut t, &mut m, 600);
        assert!(m.observe().p95 < 0.1, "{:?}", m.observe());
        assert_eq!(t.changes().len(), 1, "{:?}", t.changes());
        assert_eq!(t.changes()[0].outcome, Outcome::Kept);
        assert_eq!((t.changes()[0].from, t.changes()[0].to), (0.3, 0.025));
    }

    #[test]
    fn a_busy_sink_converges_under_its_objective_at_less_cpu() {
        // 200 events a second in batches of 5, commits of 20 ms: the sink 80 % busy, batches
        // queue for it, P95 about 125 ms.
        let mut m = Model {
            rate: 200.0,
            age: 0.1,
            size: 5.0,
            commit: 0.02,
        };
        let before = m.observe();
        assert!(before.p95 > 0.1, "{before:?}");
        let mut t = tuner();
        run(&mut t, &mut m, 3_600);
        let after = m.observe();
        assert!(after.p95 < 0.1, "{after:?}");
        assert!(
            after.cpu_per_event < before.cpu_per_event * 0.6,
            "{before:?} {after:?}"
        );
        assert!(
            t.changes().iter().all(|c| c.outcome == Outcome::Kept),
            "{:?}",
            t.changes()
        );
        assert_eq!(m.size, 10.0);
    }

    #[test]
    fn a_change_that_hurts_is_reverted_and_not_tried_again_at_once() {
        let mut m = Model {
            rate: 2.0,
            age: 0.3,
            size: 15.0,
            commit: 0.002,
        };
        let mut t = tuner();
        let recs = recommend(&m.facts(), &[]);
        let mv = t
            .step(0, &recs, &|k| m.current(k), m.observe())
            .unwrap_or_else(|| panic!("a move"));
        m.apply(mv);
        // Whatever the change, the disk got slow meanwhile: worse.
        m.commit = 0.5;
        assert_eq!(
            t.step(30, &recs, &|k| m.current(k), m.observe()),
            None,
            "not settled"
        );
        let back = t.step(60, &recs, &|k| m.current(k), m.observe());
        assert_eq!(
            back,
            Some(Move {
                knob: Knob::BatchAge,
                value: 0.3
            })
        );
        assert_eq!(t.changes()[0].outcome, Outcome::Reverted);
        m.apply(back.unwrap_or_else(|| panic!("a move")));
        assert_eq!(
            t.step(70, &recs, &|k| m.current(k), m.observe()),
            None,
            "held"
        );
        // Undoing: only a change on trial or kept.
        assert_eq!(t.undo(1, 80), Err(NoSuchChange(1)));
    }

    #[test]
    fn values_parse_in_the_knobs_units() {
        assert_eq!(Knob::BatchAge.parse("25ms"), Some(0.025));
        assert_eq!(Knob::BatchAge.parse("2s"), Some(2.0));
        assert_eq!(Knob::BatchAge.parse("2m"), None);
        assert_eq!(Knob::BatchSize.parse("30"), Some(30.0));
        assert_eq!(Knob::BatchSize.parse("-1"), None);
        assert_eq!(Knob::QueueWait.parse("250ms"), Some(0.25));
    }

    /// A full queue refusing `rejected` requests a second while it waits `wait` for room, and
    /// the advice for it.
    fn refusing(rejected: f64, wait: f64) -> (Observed, Vec<Recommendation>) {
        let observed = Observed {
            p95: 0.02,
            cpu_per_event: 1e-5,
            rejected,
        };
        let facts = Facts {
            stage_p95: vec![("total".to_owned(), 0.02)],
            latency_objective: 0.1,
            rejected_per_second: Some(rejected),
            queue_wait: wait,
            ..Facts::default()
        };
        (observed, recommend(&facts, &[]))
    }

    #[test]
    fn a_longer_queue_wait_is_kept_when_refusals_halve_and_reverted_when_not() {
        let allowed = vec![(Knob::QueueWait, Bounds { min: 0.0, max: 2.0 })];
        for (after, kept) in [(1.0, true), (15.0, false)] {
            let mut t = Tuner::new(allowed.clone(), 60, 600);
            let (before, recs) = refusing(20.0, 0.1);
            let m = t.step(0, &recs, &|_| 0.1, before).unwrap();
            assert_eq!((m.knob, m.value), (Knob::QueueWait, 0.4));
            assert_eq!(t.step(30, &recs, &|_| 0.4, before), None, "settling");
            let (seen, _) = refusing(after, 0.4);
            let back = t.step(60, &[], &|_| 0.4, seen);
            let outcome = t.changes()[0].outcome;
            if kept {
                assert_eq!((back, outcome), (None, Outcome::Kept));
            } else {
                assert_eq!(back.map(|m| m.value), Some(0.1));
                assert_eq!(outcome, Outcome::Reverted);
            }
        }
    }
}
