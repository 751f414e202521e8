//! Configuration from `SourcePolicy` resources through the real `kube` client against the fake
//! API server (zen-kube-fake), into a real pipeline and store: in force once listed, changed
//! by a watch event, a bad version rejected with its status and an event while the last good
//! one stays, one policy per source.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zen_kube::{Policies, PolicySettings};
use zen_kube_fake::{FakeApi, until};
use zen_model::{Context, Format, Normalizer, Syntax};
use zen_pipeline::{Ack, Pipeline, PipelineConfig, Submission};

const API: &str = "zen-watcher.io/v1alpha1";

fn policy(name: &str, source: &str, filter: Value) -> Value {
    json!({"apiVersion": API, "kind": "SourcePolicy",
        "metadata": {"name": name, "namespace": "zen"},
        "spec": {"source": source, "filter": filter}})
}

/// Submits a critical and a low Falco alert (named by `round`); says how many the pipeline kept.
async fn kept(pipeline: &Arc<Pipeline>, round: usize) -> u64 {
    let pipeline = pipeline.clone();
    tokio::task::spawn_blocking(move || kept_blocking(&pipeline, round))
        .await
        .unwrap()
}

/// Submits rounds from `first` on until the pipeline keeps `want` of a round (a change seen).
async fn kept_eventually(pipeline: &Arc<Pipeline>, first: usize, want: u64, what: &str) {
    for round in first..first + 500 {
        if kept(pipeline, round).await == want {
            return;
        }
    }
    panic!("{what} never came");
}

fn kept_blocking(pipeline: &Pipeline, round: usize) -> u64 {
    let body: String = ["Critical", "Notice"]
        .iter()
        .map(|p| {
            json!({"rule": format!("r{round}-{p}"), "priority": p, "time": "2026-12-07T10:00:00Z", "output_fields": {}})
                .to_string()
                + "\n"
        })
        .collect();
    let ctx = Context::received_at("2026-12-07T10:00:01Z".parse().unwrap());
    let events = pipeline
        .read(Format::Falco, Syntax::Json, body.as_bytes(), &ctx)
        .unwrap()
        .events;
    let before = pipeline.counts().written;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut s = Submission::now(events);
    s.ack = Some(Ack::new(2, move |o| tx.send(o).unwrap()));
    pipeline.try_submit(s).unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    pipeline.counts().written - before
}

/// A pipeline on SQLite, started with the fake's policies (the start returns once they are listed).
async fn in_force(fake: &FakeApi) -> (tempfile::TempDir, Arc<Pipeline>, Policies) {
    let dir = tempfile::tempdir().unwrap();
    let (_, sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let mut config = PipelineConfig::default();
    config.batch.batch.max_age = Duration::from_millis(10);
    let base = (config.filter.clone(), config.dedup.clone());
    let pipeline =
        Arc::new(Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap());
    let settings = PolicySettings {
        namespace: "zen".to_owned(),
        sync_timeout: Duration::from_secs(30),
        retry_max: Duration::from_millis(200),
        identity: "test".to_owned(),
    };
    let policies = Policies::start(
        fake.client().unwrap(),
        settings,
        base,
        pipeline.clone(),
        None,
    )
    .await;
    (dir, pipeline, policies)
}

fn condition(fake: &FakeApi, name: &str) -> Value {
    fake.objects(API, "sourcepolicies")
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .map(|p| p["status"]["conditions"][0].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_in_force_once_listed_changed_by_watch_and_bad_ones_rejected() {
    let fake = FakeApi::start().await.unwrap();
    fake.serve("zen-watcher.io/v1alpha1", "SourcePolicy");
    fake.serve("events.k8s.io/v1", "Event");
    fake.put(
        "sourcepolicies",
        policy("falco", "falco", json!({"minSeverity": "high"})),
    );
    let (_dir, pipeline, _policies) = in_force(&fake).await;
    // In force when the start returns: the low alert is dropped.
    assert_eq!(kept(&pipeline, 0).await, 1);
    until("accepted", || condition(&fake, "falco")["status"] == "True").await;

    // Off for falco: a watch event, then nothing is kept.
    fake.put(
        "sourcepolicies",
        policy("falco", "falco", json!({"enabled": false})),
    );
    kept_eventually(&pipeline, 1, 0, "the change").await;

    // A bad version: rejected with a status naming the problem at its generation, an event,
    // and the last good version (disabled) in force.
    fake.put(
        "sourcepolicies",
        policy("falco", "falco", json!({"expression": "severity >>> high"})),
    );
    until("rejected", || {
        condition(&fake, "falco")["status"] == "False"
    })
    .await;
    let c = condition(&fake, "falco");
    assert_eq!(c["reason"], "Invalid", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("filter.expression"),
        "{c}"
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("last good version stays in force"),
        "{c}"
    );
    assert_eq!(c["observedGeneration"], 3, "{c}");
    let events = fake.objects("events.k8s.io/v1", "events");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "Warning" && e["regarding"]["name"] == "falco"),
        "{events:?}"
    );
    assert_eq!(kept(&pipeline, 900).await, 0);

    // A second policy for the same source: a conflict, rejected.
    fake.put(
        "sourcepolicies",
        policy("falco-too", "falco", json!({"minSeverity": "low"})),
    );
    until("conflict", || {
        condition(&fake, "falco-too")["reason"] == "Conflict"
    })
    .await;

    // Deleted: the file's configuration again; both alerts kept.
    fake.delete(API, "sourcepolicies", "zen", "falco");
    kept_eventually(&pipeline, 1000, 2, "the deletion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_ingesters_map_what_they_can_say_what_they_cannot_and_policies_lie_over_them() {
    let fake = FakeApi::start().await.unwrap();
    fake.serve("zen-watcher.io/v1alpha1", "SourcePolicy");
    fake.serve("zen.kube-zen.io/v1alpha1", "Ingester");
    fake.put(
        "ingesters",
        json!({"apiVersion": "zen.kube-zen.io/v1alpha1", "kind": "Ingester",
            "metadata": {"name": "falco-webhook", "namespace": "security"},
            "spec": {"source": "falco", "ingester": "webhook",
                "filters": {"minSeverity": "HIGH", "excludeKinds": ["Pod"]},
                "deduplication": {"window": "10m"},
                "destinations": [{"type": "crd", "value": "observations"}]}}),
    );
    let (_dir, pipeline, _policies) = in_force(&fake).await;
    // The Ingester's minSeverity is in force: the low alert is dropped.
    assert_eq!(kept(&pipeline, 0).await, 1);
    let status = || {
        fake.objects("zen.kube-zen.io/v1alpha1", "ingesters")[0]["status"]["conditions"][0].clone()
    };
    until("its status", || status()["status"] == "True").await;
    let message = status()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("not supported: filters.excludeKinds"),
        "{message}"
    );
    // A SourcePolicy for the same source lies over it.
    fake.put(
        "sourcepolicies",
        policy("falco", "falco", json!({"minSeverity": "info"})),
    );
    kept_eventually(&pipeline, 1, 2, "the policy").await;
}
