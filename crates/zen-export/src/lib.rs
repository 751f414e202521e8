//! The metric catalog and the Prometheus exporter.
//!
//! [`catalog::CATALOG`] declares every metric zen-watcher emits — name, type, help, unit,
//! labels, histogram buckets, where it can be seen — as Rust data. It is the one source of truth
//! for the exporter (which takes its histogram buckets and help texts from it), for the
//! generated Grafana dashboards and Prometheus rules, for the web dashboard and for
//! `docs/metrics.md`; tests check that the daemon emits exactly what is declared.
//! [`Exporter`] installs the `metrics` facade's Prometheus recorder, keeps it drained, and
//! renders the text exposition format with the `process_*` metrics and
//! `zen_watcher_build_info` added. The only crate that knows the Prometheus text format; it
//! knows nothing of where metrics are recorded.
//!
//! [`panels::PANELS`] declares the charts a person looks at, once, for the web dashboard and
//! the generated Grafana dashboards; the exporter's [`Tap`] counts what they read a second time,
//! so the daemon's history reads it without rendering.
//!
//! The exporter, and with it the collectors' readings (zen-collect), is behind the `exporter`
//! feature: the pure crates and the generators use the catalog alone and build no collector.

pub mod catalog;
#[cfg(feature = "exporter")]
mod exporter;
pub mod grafana;
pub mod panels;
#[cfg(feature = "exporter")]
mod tap;

pub use catalog::{CATALOG, Kind, Metric, Scope};
#[cfg(feature = "exporter")]
pub use exporter::{Exporter, ExporterError, recorder};
#[cfg(feature = "exporter")]
pub use tap::{Tap, Tapped};
