//! The daemon's alerting: zen-slo's evaluator run every few seconds on the metrics the daemon
//! records (read as `/metrics` shows them), its results published as gauges and served by the
//! API, and its alerts posted to Alertmanager's v2 API and to a JSON webhook.
//!
//! Notifications follow Prometheus: firing alerts are sent when they fire and again every
//! `resend_every`, with `endsAt` a few resends ahead so that Alertmanager resolves them itself if
//! the daemon dies; resolved ones are sent with `endsAt` at their resolution, and again while the
//! evaluator keeps them (15 minutes). Each post is retried with exponential backoff and jitter;
//! `zen_watcher_notifications_total{receiver,outcome}` counts what was sent and what failed.
//!
//! The runtime around zen-slo's pure evaluator: it owns the threads, the clock and the network.
//! It knows nothing of HTTP serving — zen-server's routes call [`Alerting`]'s methods.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zen_model::Timestamp;
use zen_slo::eval::SloState;
use zen_slo::{Alert, Engine, State};

/// Where alerts go, and how often they are evaluated and re-sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertingConfig {
    /// How often alerts are evaluated: at least 1s.
    pub interval: Duration,
    /// Alertmanager base URLs (`http://host:9093`); alerts are posted to `/api/v2/alerts`.
    pub alertmanagers: Vec<String>,
    /// A URL that receives Alertmanager-webhook-shaped JSON.
    pub webhook: Option<String>,
    pub resend_every: Duration,
    /// The daemon's own URL, for each alert's `generatorURL`.
    pub external_url: String,
}

/// A setting out of its range: which (as [`AlertingConfig`]'s fields name it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    pub field: &'static str,
    pub problem: String,
}

impl AlertingConfig {
    /// Checks the ranges the fields' docs give.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.interval < Duration::from_secs(1) {
            return Err(SettingsError {
                field: "interval",
                problem: format!("expected at least 1s, found {:?}", self.interval),
            });
        }
        if self.resend_every.is_zero() {
            return Err(SettingsError {
                field: "resend_every",
                problem: "expected more than 0s".to_owned(),
            });
        }
        Ok(())
    }
}

/// The evaluator and what it last said, shared by the evaluation thread and the API.
#[derive(Debug)]
pub struct Alerting {
    engine: Mutex<Engine>,
    /// The metric names the engine reads (its expressions do not change at run time).
    wanted: std::collections::HashSet<String>,
    evaluated_at: Mutex<Option<Timestamp>>,
}

/// A batch of alerts for the notifier; the latest replaces one not yet taken.
#[derive(Debug, Default)]
struct Outbox {
    batch: Mutex<Option<Vec<Alert>>>,
    ready: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The engine's state stays consistent between calls; a panic elsewhere must not stop alerting.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Alerting {
    /// Starts the evaluation thread (and, with a receiver configured, the notifier's).
    pub fn start(
        engine: Engine,
        exporter: Arc<zen_export::Exporter>,
        config: AlertingConfig,
    ) -> std::io::Result<Arc<Alerting>> {
        let alerting = Arc::new(Alerting {
            wanted: engine.metrics().map(str::to_owned).collect(),
            engine: Mutex::new(engine),
            evaluated_at: Mutex::new(None),
        });
        let outbox = Arc::new(Outbox::default());
        let notify = !config.alertmanagers.is_empty() || config.webhook.is_some();
        if notify {
            let outbox = outbox.clone();
            let config = config.clone();
            std::thread::Builder::new()
                .name("zen-notify".into())
                .spawn(move || notifier(&outbox, &config))?;
        }
        let a = alerting.clone();
        std::thread::Builder::new()
            .name("zen-alerting".into())
            .spawn(move || {
                let mut last_sent: Option<(Instant, Vec<(String, State)>)> = None;
                loop {
                    let now = Timestamp::now();
                    let alerts = a.evaluate(&exporter, now);
                    if notify {
                        let states: Vec<(String, State)> = alerts
                            .iter()
                            .map(|x| (format!("{}{:?}", x.name, x.labels), x.state))
                            .collect();
                        let due = last_sent.as_ref().is_none_or(|(at, before)| {
                            *before != states || at.elapsed() >= config.resend_every
                        });
                        if due && !alerts.is_empty() {
                            *lock(&outbox.batch) = Some(alerts);
                            outbox.ready.notify_one();
                            last_sent = Some((Instant::now(), states));
                        }
                    }
                    std::thread::sleep(config.interval);
                }
            })?;
        Ok(alerting)
    }

    /// One evaluation at `now`: samples in, gauges out; returns the alerts to notify (firing
    /// and resolved).
    fn evaluate(&self, exporter: &zen_export::Exporter, now: Timestamp) -> Vec<Alert> {
        let t = now.as_millisecond();
        let mut engine = lock(&self.engine);
        exporter.samples(
            &|name| self.wanted.contains(name),
            &mut |name, labels, value| engine.observe(t, name, labels, value),
        );
        engine.evaluate(t);
        *lock(&self.evaluated_at) = Some(now);
        publish(&engine);
        engine
            .alerts()
            .filter(|a| a.state != State::Pending)
            .cloned()
            .collect()
    }

    /// `GET /api/v1/slos`.
    pub fn slos(&self) -> Value {
        let engine = lock(&self.engine);
        json!({
            "evaluated_at": *lock(&self.evaluated_at),
            "health_score": engine.health(),
            "slos": engine.slos(),
        })
    }

    /// `GET /api/v1/alerts`.
    pub fn alerts(&self) -> Value {
        let engine = lock(&self.engine);
        let alerts: Vec<Value> = engine.alerts().map(alert_json).collect();
        json!({ "evaluated_at": *lock(&self.evaluated_at), "alerts": alerts })
    }

    /// `GET /api/v1/alerts/rules`.
    pub fn rules(&self) -> Value {
        json!({ "rules": lock(&self.engine).rules() })
    }

    /// `PUT /api/v1/alerts/rules`: all changes, or none with the reason.
    pub fn change_rules(
        &self,
        changes: BTreeMap<String, zen_slo::RuleChange>,
    ) -> Result<Value, zen_slo::SpecError> {
        let changes: Vec<_> = changes.into_iter().collect();
        let mut engine = lock(&self.engine);
        engine.change_rules(&changes)?;
        for (name, _) in &changes {
            tracing::info!(rule = %name, "alert rule changed");
        }
        Ok(json!({ "rules": engine.rules() }))
    }
}

fn time(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "name": a.name,
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state,
        "value": if a.value.is_finite() { Some(a.value) } else { None },
        "active_at": time(a.active_at),
        "fired_at": a.fired_at.and_then(time),
        "resolved_at": a.resolved_at.and_then(time),
    })
}

/// The health score, firing alerts by severity, and each SLO's burn rates and budget left.
fn publish(engine: &Engine) {
    metrics::gauge!("zen_watcher_health_score").set(engine.health());
    for severity in ["critical", "warning", "info"] {
        let n = engine
            .alerts()
            .filter(|a| {
                a.state == State::Firing
                    && a.labels.get("severity").map(String::as_str) == Some(severity)
            })
            .count();
        metrics::gauge!("zen_watcher_alerts_firing", "severity" => severity).set(n as f64);
    }
    for s in engine.slos() {
        for w in &s.windows {
            metrics::gauge!("zen_watcher_slo_burn_rate", "slo" => s.name.clone(), "window" => w.window.to_string())
                .set(w.burn_rate.unwrap_or(0.0));
        }
        let remaining = match s.state {
            SloState::NoData if s.error_budget_remaining.is_none() => 1.0,
            _ => s.error_budget_remaining.unwrap_or(1.0),
        };
        metrics::gauge!("zen_watcher_slo_error_budget_remaining_ratio", "slo" => s.name.clone())
            .set(remaining);
    }
}

/// Alertmanager's `POST /api/v2/alerts` body. A firing alert ends `4 × resend_every` from now
/// unless re-sent; a resolved one ended when it resolved.
pub fn alertmanager_body(alerts: &[Alert], now: Timestamp, config: &AlertingConfig) -> Value {
    let ahead = jiff::SignedDuration::try_from(config.resend_every * 4)
        .unwrap_or(jiff::SignedDuration::from_secs(240));
    let generator = format!(
        "{}/api/v1/alerts",
        config.external_url.trim_end_matches('/')
    );
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                let mut labels = a.labels.clone();
                labels.insert("alertname".into(), a.name.clone());
                let ends = match a.resolved_at.and_then(time) {
                    Some(r) if a.state == State::Resolved => r,
                    _ => now.checked_add(ahead).unwrap_or(now),
                };
                json!({
                    "labels": labels,
                    "annotations": a.annotations,
                    "startsAt": time(a.fired_at.unwrap_or(a.active_at)),
                    "endsAt": ends,
                    "generatorURL": generator,
                })
            })
            .collect(),
    )
}

/// The webhook's body: Alertmanager's webhook shape, so receivers written for it work.
pub fn webhook_body(alerts: &[Alert], now: Timestamp, config: &AlertingConfig) -> Value {
    let firing = alerts.iter().any(|a| a.state == State::Firing);
    let items: Vec<Value> = alertmanager_body(alerts, now, config)
        .as_array()
        .into_iter()
        .flatten()
        .zip(alerts)
        .map(|(item, a)| {
            let mut item = item.clone();
            item["status"] = json!(if a.state == State::Firing {
                "firing"
            } else {
                "resolved"
            });
            item
        })
        .collect();
    json!({
        "version": "4",
        "receiver": "zen-watcher",
        "status": if firing { "firing" } else { "resolved" },
        "alerts": items,
        "externalURL": config.external_url,
    })
}

/// Posts each batch to every receiver, retrying with backoff.
fn notifier(outbox: &Outbox, config: &AlertingConfig) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build(),
    );
    loop {
        let alerts = {
            let mut batch = lock(&outbox.batch);
            loop {
                if let Some(b) = batch.take() {
                    break b;
                }
                batch = outbox
                    .ready
                    .wait(batch)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let now = Timestamp::now();
        let mut targets: Vec<(&str, String, Value)> = config
            .alertmanagers
            .iter()
            .map(|base| {
                (
                    "alertmanager",
                    format!("{}/api/v2/alerts", base.trim_end_matches('/')),
                    alertmanager_body(&alerts, now, config),
                )
            })
            .collect();
        if let Some(url) = &config.webhook {
            targets.push(("webhook", url.clone(), webhook_body(&alerts, now, config)));
        }
        for (receiver, url, body) in targets {
            let outcome = match post(&agent, &url, &body) {
                Ok(()) => "sent",
                Err(e) => {
                    tracing::warn!(receiver, url, error = %e, "alert notification failed after retries");
                    "failed"
                }
            };
            metrics::counter!("zen_watcher_notifications_total", "receiver" => receiver, "outcome" => outcome)
                .increment(1);
        }
    }
}

const ATTEMPTS: u32 = 4;

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(), String> {
    let text = body.to_string();
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // 0.5, 1, 2 s, each plus up to a quarter more so that daemons do not retry in step.
            let base = Duration::from_millis(500 << (attempt - 1));
            let jitter = u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs())
                % (base.as_millis() as u64 / 4 + 1);
            std::thread::sleep(base + Duration::from_millis(jitter));
        }
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(&text)
        {
            Ok(res) if res.status().is_success() => return Ok(()),
            // A 4xx will not get better by retrying.
            Ok(res) if res.status().is_client_error() => {
                return Err(format!("{url} answered {}", res.status()));
            }
            Ok(res) => last = format!("{url} answered {}", res.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
