//! SLOs and alerting, as data and pure functions: no IO, and time is an argument.
//!
//! One [`Spec`](spec::Spec) — SLOs with multi-window burn-rate tiers, threshold alert rules and
//! the health score's terms — drives both the in-process [`Engine`](eval::Engine) and the
//! Prometheus rules generated from it ([`generate`]). The evaluator computes what the rules
//! compute, with Prometheus' semantics (extrapolated `rate()`, `histogram_quantile()`'s
//! interpolation, pending → firing → resolved with `for` and `keep_firing_for`), so the daemon's
//! alerts and Prometheus' agree; [`scenario`] replays the same input series through both and a
//! test compares every alert's state at every evaluation. Without traffic an SLI has no value —
//! never NaN or infinity — in the evaluator and in the rules alike.

mod compile;
pub mod defaults;
pub mod eval;
pub mod generate;
mod history;
pub mod promql;
pub mod scenario;
pub mod spec;

pub use eval::{Alert, Engine, RuleChange, SloStatus, State};
pub use history::Retention;
pub use spec::{Spec, SpecError, Window};
