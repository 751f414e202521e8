//! The evaluator through its public face: burn-rate factors, spec validation, every shipped
//! alert's scenario against the times worked out by hand, zero traffic, flapping, run-time
//! changes and the health score.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use zen_slo::defaults;
use zen_slo::eval::{Engine, RuleChange, SloState, State};
use zen_slo::scenario::suites;
use zen_slo::spec::{Cmp, Expr, Selector, Severity, Sli, Slo, Spec, Tier, TierKind, Window};

/// Bucket bounds from the metric catalog, as the daemon and `cargo xtask gen` check them.
use zen_export::catalog::buckets;

fn factors(days: u64) -> Vec<f64> {
    Tier::STANDARD
        .iter()
        .map(|t| t.factor(Window::days(days)))
        .collect()
}

#[test]
fn burn_factors_follow_the_period() {
    assert_eq!(factors(30), [14.4, 6.0, 3.0, 1.0]);
    assert_eq!(factors(28), [13.44, 5.6, 2.8, 0.933333333333]);
    assert_eq!(factors(7), [3.36, 1.4, 0.7, 0.233333333333]);
    let slo = &defaults::slos()[6];
    assert_eq!(slo.name, "ingestion-availability");
    assert_eq!(slo.threshold(&Tier::STANDARD[0]), 0.0144);
    assert_eq!(slo.threshold(&Tier::STANDARD[1]), 0.006);
}

fn latency_slo(objective: f64, tiers: Vec<Tier>, threshold: f64) -> Slo {
    Slo {
        name: "x".into(),
        description: String::new(),
        objective_percent: objective,
        period: Window::days(30),
        sli: Sli::Latency {
            histogram: Selector::new("zen_watcher_event_processing_duration_seconds"),
            threshold,
        },
        tiers,
    }
}

fn spec_of(slos: Vec<Slo>) -> Spec {
    Spec {
        slos,
        rules: Vec::new(),
        health: Vec::new(),
    }
}

#[test]
fn the_shipped_spec_is_valid_and_a_tier_that_cannot_fire_is_rejected() {
    defaults::spec().validate(buckets).unwrap();
    // 14.4 × a budget of 0.1 is 1.44: no error ratio gets there.
    let err = spec_of(vec![latency_slo(90.0, Tier::STANDARD.to_vec(), 0.1)])
        .validate(buckets)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1h/5m can never fire") && err.contains("1.44"),
        "{err}"
    );
    // The shipped P50 SLO keeps only the tier that can.
    let p50 = &defaults::slos()[0];
    assert_eq!(p50.tiers, vec![Tier::STANDARD[3]]);

    let err = spec_of(vec![latency_slo(99.0, Tier::STANDARD.to_vec(), 0.15)])
        .validate(buckets)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0.15 is not a bucket bound"), "{err}");
    let short_longer = Tier::new(TierKind::Page, 2.0, Window::minutes(5), Window::hours(1));
    let err = spec_of(vec![latency_slo(99.0, vec![short_longer], 0.1)])
        .validate(buckets)
        .unwrap_err()
        .to_string();
    assert!(err.contains("short window must be shorter"), "{err}");
}

#[test]
fn every_shipped_alert_fires_when_worked_out_and_not_before_then_resolves() {
    let spec = defaults::spec();
    let suites = suites(&spec, &buckets);
    let mut targets = std::collections::BTreeSet::new();
    let mut burn = 0;
    for suite in &suites {
        for sc in &suite.scenarios {
            let timeline = sc.replay();
            let e = sc.expected;
            let name = &sc.name;
            for (i, step) in timeline.iter().enumerate().take(e.quiet_until) {
                assert!(
                    step.is_empty(),
                    "{name}: {step:?} at step {i}, in the steady state"
                );
            }
            assert_ne!(
                sc.target_state(&timeline, e.fires_at - 1),
                Some("firing"),
                "{name}: firing a step early"
            );
            assert_eq!(
                sc.target_state(&timeline, e.fires_at),
                Some("firing"),
                "{name}"
            );
            assert_eq!(
                sc.target_state(&timeline, e.resolves_at - 1),
                Some("firing"),
                "{name}"
            );
            assert_eq!(
                sc.target_state(&timeline, e.resolves_at),
                Some("resolved"),
                "{name}"
            );
            if sc.target == zen_slo::spec::BURN_ALERT {
                burn += 1;
            } else {
                targets.insert(sc.target.clone());
            }
        }
    }
    let tiers: usize = spec.slos.iter().map(|s| s.tiers.len()).sum();
    assert_eq!(burn, tiers, "a scenario per burn-rate tier");
    let rules: std::collections::BTreeSet<String> =
        spec.rules.iter().map(|r| r.name.clone()).collect();
    assert_eq!(targets, rules, "a scenario per threshold rule");
}

#[test]
fn the_page_fires_at_the_computed_minute() {
    // Worked out on paper for ingestion availability (budget 0.001, threshold 14.4 × 0.001):
    // at 0.5× burn (5 bad a minute in 10,000), then 20× (200 a minute) from minute 61, the 1 h
    // window exceeds 0.0144 once (5 × (60 − k) + 200 k) / 600,000 > 0.0144, i.e. k ≥ 43.
    let spec = defaults::spec();
    let suite = suites(&spec, &buckets);
    let sc = suite[0]
        .scenarios
        .iter()
        .find(|s| s.name == "ingestion-availability 1h/5m")
        .unwrap();
    assert_eq!(sc.expected.fires_at, 60 + 43);
}

/// Feeds the engine a day of a running daemon without traffic: counters flat, gauges low.
#[test]
fn a_day_of_zero_traffic_gives_no_data_and_no_nan() {
    let mut engine = Engine::new(defaults::spec()).unwrap();
    let step = 10_000;
    for i in 0..8640 {
        let t = i * step;
        for (name, labels) in [
            (
                "zen_watcher_event_processing_duration_seconds_count",
                vec![("stage", "total"), ("source", "falco")],
            ),
            (
                "zen_watcher_event_processing_duration_seconds_bucket",
                vec![("stage", "total"), ("source", "falco"), ("le", "0.1")],
            ),
            (
                "zen_watcher_event_processing_duration_seconds_bucket",
                vec![("stage", "total"), ("source", "falco"), ("le", "+Inf")],
            ),
            (
                "zen_watcher_http_requests_total",
                vec![("route", "/api/v1/ingest/{source}"), ("code", "202")],
            ),
            (
                "zen_watcher_errors_total",
                vec![("component", "ingest"), ("category", "parse")],
            ),
            ("zen_watcher_events_total", vec![("source", "falco")]),
        ] {
            engine.observe(t, name, &labels, 0.0);
        }
        engine.observe(t, "zen_watcher_cpu_usage_percent", &[], 0.5);
        engine.observe(t, "zen_watcher_memory_usage_percent", &[], 3.0);
        engine.observe(t, "zen_watcher_build_info", &[("version", "1")], 1.0);
        engine.observe(t, "zen_watcher_queue_depth", &[("queue", "ingest")], 0.0);
        engine.observe(
            t,
            "zen_watcher_queue_capacity",
            &[("queue", "ingest")],
            1024.0,
        );
        engine.evaluate(t);
        assert_eq!(engine.alerts().count(), 0, "an alert at {t}");
        assert_eq!(engine.health(), 100.0);
        for s in engine.slos() {
            assert_eq!(s.state, SloState::NoData, "{}", s.name);
            assert!(s.windows.iter().all(|w| w.error_ratio.is_none()));
            for x in [s.error_budget_remaining, s.exhaustion_seconds]
                .into_iter()
                .flatten()
            {
                assert!(x.is_finite(), "{}: {x}", s.name);
            }
        }
    }
    let json = serde_json::to_string(engine.slos()).unwrap();
    assert!(!json.contains("null,\"burn_rate\":0") && !json.to_lowercase().contains("nan"));
    // Budget untouched: no bad event in a day.
    assert_eq!(engine.slos()[6].error_budget_remaining, Some(1.0));
}

fn gauge_rule(for_: Window) -> Spec {
    let mut rules = defaults::rules();
    rules.retain(|r| r.name == "ZenWatcherHighMemoryUsage");
    rules[0].for_ = for_;
    Spec {
        slos: Vec::new(),
        rules,
        health: Vec::new(),
    }
}

#[test]
fn a_flapping_series_never_fires_a_rule_with_a_for() {
    let mut engine = Engine::new(gauge_rule(Window::minutes(3))).unwrap();
    for i in 0..2000 {
        let v = if i % 2 == 0 { 95.0 } else { 10.0 };
        let t = i * 15_000;
        engine.observe(t, "zen_watcher_memory_usage_percent", &[], v);
        engine.evaluate(t);
        assert!(
            engine.alerts().all(|a| a.state == State::Pending),
            "step {i}"
        );
    }
    // Holding for the whole `for` fires.
    for i in 2000..2014 {
        let t = i * 15_000;
        engine.observe(t, "zen_watcher_memory_usage_percent", &[], 95.0);
        engine.evaluate(t);
    }
    assert_eq!(engine.alerts().next().map(|a| a.state), Some(State::Firing));
}

#[test]
fn keep_firing_for_holds_a_firing_alert_through_a_gap() {
    let mut spec = gauge_rule(Window::default());
    spec.rules[0].keep_firing_for = Window::minutes(2);
    let mut engine = Engine::new(spec).unwrap();
    let at = |engine: &mut Engine, minute: i64, v: f64| {
        engine.observe(minute * 60_000, "zen_watcher_memory_usage_percent", &[], v);
        engine.evaluate(minute * 60_000);
        engine.alerts().next().map(|a| a.state)
    };
    assert_eq!(at(&mut engine, 0, 95.0), Some(State::Firing));
    assert_eq!(at(&mut engine, 1, 10.0), Some(State::Firing));
    assert_eq!(at(&mut engine, 2, 10.0), Some(State::Firing));
    assert_eq!(at(&mut engine, 3, 10.0), Some(State::Resolved));
}

#[test]
fn thresholds_change_at_run_time_and_bad_changes_change_nothing() {
    let mut engine = Engine::new(defaults::spec()).unwrap();
    let before = engine.rules();
    let change = |threshold: Option<f64>| RuleChange {
        threshold,
        ..RuleChange::default()
    };
    for bad in [
        vec![("NoSuchRule".to_owned(), change(Some(1.0)))],
        vec![("ZenWatcherAbsent".to_owned(), change(Some(1.0)))],
        vec![
            ("ZenWatcherHighMemoryUsage".to_owned(), change(Some(50.0))),
            ("ZenWatcherHighCPUUsage".to_owned(), change(Some(f64::NAN))),
        ],
    ] {
        assert!(engine.change_rules(&bad).is_err());
        assert_eq!(engine.rules(), before, "a rejected change left a trace");
    }
    let ok = RuleChange {
        threshold: Some(0.5),
        for_: Some(Window::seconds(0)),
        severity: Some(Severity::Info),
        ..RuleChange::default()
    };
    engine
        .change_rules(&[("ZenWatcherHighMemoryUsage".to_owned(), ok)])
        .unwrap();
    engine.observe(0, "zen_watcher_memory_usage_percent", &[], 3.0);
    engine.evaluate(0);
    let a = engine.alerts().next().unwrap();
    assert_eq!(
        (a.name.as_str(), a.state, a.labels["severity"].as_str()),
        ("ZenWatcherHighMemoryUsage", State::Firing, "info")
    );
}

#[test]
fn health_is_100_times_the_product_of_its_terms() {
    let mut engine = Engine::new(Spec {
        slos: Vec::new(),
        rules: vec![],
        health: defaults::health(),
    })
    .unwrap();
    let ingest = |code| vec![("route", "/api/v1/ingest/{source}"), ("code", code)];
    for (minute, ok, failed) in [(0, 0.0, 0.0), (1, 900.0, 100.0)] {
        let t = minute * 60_000;
        engine.observe(t, "zen_watcher_http_requests_total", &ingest("202"), ok);
        engine.observe(t, "zen_watcher_http_requests_total", &ingest("500"), failed);
        // CPU at 90 %: half-way from 80 to 100, so a factor of 0.5.
        engine.observe(t, "zen_watcher_cpu_usage_percent", &[], 90.0);
        engine.evaluate(t);
    }
    // No latency data (1), 10 % failed ingestion (0.9), CPU 0.5, no memory data (1).
    assert_eq!(engine.health(), 45.0);
}

#[test]
fn a_rule_reads_only_what_its_expression_names() {
    let spec = Spec {
        slos: Vec::new(),
        rules: vec![zen_slo::spec::Rule {
            name: "Custom".into(),
            expr: Expr::Max(Selector::new("zen_watcher_queue_depth").eq("queue", "ingest")),
            condition: Some((Cmp::Above, 5.0)),
            for_: Window::default(),
            keep_firing_for: Window::default(),
            severity: Severity::Warning,
            summary: String::new(),
            description: String::new(),
            runbook: String::new(),
        }],
        health: Vec::new(),
    };
    let mut engine = Engine::new(spec).unwrap();
    engine.observe(0, "zen_watcher_queue_depth", &[("queue", "sink")], 50.0);
    engine.observe(0, "zen_watcher_queue_depth", &[("queue", "ingest")], 1.0);
    engine.evaluate(0);
    assert_eq!(engine.alerts().count(), 0);
    assert_eq!(
        engine.metrics().collect::<Vec<_>>(),
        ["zen_watcher_queue_depth"]
    );
}

proptest::proptest! {
    /// Whatever the traffic — bursts, silences, counter resets — every figure the evaluator gives
    /// is finite, and a ratio whose bad events are part of its total is between 0 and 1. (Errors
    /// over events is not such a ratio: an error need not be an event.)
    #[test]
    fn ratios_stay_between_0_and_1(steps in proptest::collection::vec((0u32..50, 0u32..50, proptest::bool::weighted(0.02)), 1..200)) {
        let mut engine = Engine::new(defaults::spec()).unwrap();
        let (mut total, mut bad) = (0.0, 0.0);
        for (i, (events, failed, reset)) in steps.into_iter().enumerate() {
            if reset {
                (total, bad) = (0.0, 0.0);
            }
            total += f64::from(events.max(failed));
            bad += f64::from(failed.min(events.max(failed)));
            let t = i as i64 * 10_000;
            let ingest = |code| vec![("route", "/api/v1/ingest/{source}"), ("code", code)];
            engine.observe(t, "zen_watcher_http_requests_total", &ingest("202"), total - bad);
            engine.observe(t, "zen_watcher_http_requests_total", &ingest("503"), bad);
            engine.observe(t, "zen_watcher_events_total", &[("source", "falco")], total);
            engine.observe(t, "zen_watcher_errors_total", &[("component", "sink")], bad);
            engine.evaluate(t);
            proptest::prop_assert!((0.0..=100.0).contains(&engine.health()));
            for s in engine.slos() {
                for w in &s.windows {
                    if let Some(r) = w.error_ratio {
                        let most = if s.name == "error-rate" { f64::MAX } else { 1.0 };
                        proptest::prop_assert!((0.0..=most).contains(&r), "{} {}: {r}", s.name, w.window);
                    }
                }
                for x in [s.error_budget_remaining, s.exhaustion_seconds].into_iter().flatten() {
                    proptest::prop_assert!(x.is_finite());
                }
            }
        }
    }
}
