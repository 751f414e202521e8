//! The Kubernetes sink through the real `kube` client against the fake API server
//! (zen-kube-fake): Observation resources named from their findings, written once, their
//! sightings counted, within the write budget, honouring `Retry-After`.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zen_kube::{ObservationSettings, ObservationSink};
use zen_kube_fake::{FakeApi, Fault, Method, until_blocking as until};
use zen_model::{Context, Event, Format, Normalizer, Syntax};
use zen_pipeline::{Ack, Pipeline, PipelineConfig, Submission};

const API: &str = "zen.kube-zen.io/v1alpha1";

struct Rig {
    runtime: tokio::runtime::Runtime,
    fake: FakeApi,
    pipeline: Pipeline,
    _dir: tempfile::TempDir,
}

fn rig(settings: impl FnOnce(&mut ObservationSettings)) -> Rig {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeApi::start()).unwrap();
    fake.serve("zen.kube-zen.io/v1alpha1", "Observation");
    let client = {
        let _entered = runtime.enter();
        fake.client().unwrap()
    };
    let mut s = ObservationSettings::new("zen");
    settings(&mut s);
    let sink = ObservationSink::new(client, runtime.handle().clone(), s);
    let dir = tempfile::tempdir().unwrap();
    let (_, sqlite) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let mut config = PipelineConfig::default();
    config.batch.batch.max_age = Duration::from_millis(10);
    let pipeline = Pipeline::start_with(
        config,
        Arc::new(Normalizer::default()),
        Box::new(sqlite),
        vec![Box::new(sink)],
    )
    .unwrap();
    Rig {
        runtime,
        fake,
        pipeline,
        _dir: dir,
    }
}

fn alerts(pipeline: &Pipeline, rules: &[(&str, Option<&str>)]) -> Vec<Event> {
    let body: String = rules
        .iter()
        .map(|(rule, ns)| {
            let fields = match ns {
                Some(ns) => json!({"k8s.ns.name": ns, "k8s.pod.name": "web"}),
                None => json!({}),
            };
            json!({"rule": rule, "priority": "Critical", "time": "2026-12-07T10:00:00Z",
                "output": format!("{rule} happened"), "output_fields": fields})
            .to_string()
                + "\n"
        })
        .collect();
    let ctx = Context::received_at("2026-12-07T10:00:01Z".parse().unwrap());
    pipeline
        .read(Format::Falco, Syntax::Json, body.as_bytes(), &ctx)
        .unwrap()
        .events
}

/// Submits events and waits until the primary sink has them.
fn submit(pipeline: &Pipeline, events: Vec<Event>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let n = events.len();
    let mut submission = Submission::now(events);
    submission.ack = Some(Ack::new(n, move |o| tx.send(o).unwrap()));
    pipeline.try_submit(submission).unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
}

fn count(o: &Value) -> i64 {
    o["status"]["count"].as_i64().unwrap_or(1)
}

#[test]
fn findings_become_resources_once_and_their_sightings_are_counted() {
    let rig = rig(|_| {});
    let events = alerts(
        &rig.pipeline,
        &[
            ("Shell in container", Some("shop")),
            ("Read sensitive file", Some("shop")),
            ("Write below etc", None),
        ],
    );
    // Another replica already wrote the third, seen twice there.
    let third = zen_kube::observation_for(&events[2], "zen", None);
    let mut existing = serde_json::to_value(&third).unwrap();
    existing["status"] = json!({"count": 2});
    rig.fake.put("observations", existing);
    submit(&rig.pipeline, events.clone());
    // The first again, four times.
    for _ in 0..4 {
        submit(&rig.pipeline, events[..1].to_vec());
    }
    let by_name = |name: &str| {
        rig.fake
            .objects(API, "observations")
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
    };
    let first = zen_kube::name_for(&events[0]);
    until("every sighting is counted", || {
        rig.fake.objects(API, "observations").len() == 3
            && by_name(&first).is_some_and(|o| count(&o) == 5)
            && by_name(&third.metadata.name.clone().unwrap()).is_some_and(|o| count(&o) == 3)
    });
    let o = by_name(&first).unwrap();
    assert_eq!(o["metadata"]["namespace"], "shop");
    assert!(
        first.starts_with("falco-") && first.len() == "falco-".len() + 32,
        "{first}"
    );
    assert_eq!(
        o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "zen-watcher"
    );
    let spec = &o["spec"];
    assert_eq!(
        (
            &spec["source"],
            &spec["category"],
            &spec["severity"],
            &spec["eventType"]
        ),
        (
            &json!("falco"),
            &json!("security"),
            &json!("critical"),
            &json!("runtime_alert")
        ),
        "{o}"
    );
    assert_eq!(spec["details"]["title"], "Shell in container");
    assert_eq!(spec["detectedAt"], "2026-12-07T10:00:00Z");
    assert!(o["status"]["lastSeen"].is_string(), "{o}");
    assert_eq!(
        third.metadata.namespace.as_deref(),
        Some("zen"),
        "no namespace: the default"
    );
    // One create each (the third's refused with 409), nothing twice.
    let creates = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST)
        .count();
    assert_eq!(creates, 3);
    drop(rig.runtime);
}

#[test]
fn writes_keep_to_the_budget_and_honour_retry_after() {
    let rig = rig(|s| {
        s.qps = 10.0;
        s.burst = 5;
    });
    rig.fake.inject(Fault {
        method: Some(Method::POST),
        path_contains: "observations".to_owned(),
        times: 1,
        code: 429,
        retry_after: Some(1),
    });
    let names: Vec<String> = (0..30).map(|i| format!("rule {i}")).collect();
    let rules: Vec<(&str, Option<&str>)> =
        names.iter().map(|n| (n.as_str(), Some("shop"))).collect();
    let events = alerts(&rig.pipeline, &rules);
    submit(&rig.pipeline, events);
    until("all written", || {
        rig.fake.objects(API, "observations").len() == 30
    });
    let posts: Vec<Instant> = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST)
        .map(|r| r.at)
        .collect();
    assert_eq!(posts.len(), 31, "30 and the retry of the refused one");
    assert!(
        posts[1] - posts[0] >= Duration::from_secs(1),
        "Retry-After: 1 honoured ({:?})",
        posts[1] - posts[0]
    );
    // In any second, at most the burst and a second's worth (and one for rounding).
    for (i, start) in posts.iter().enumerate() {
        let within = posts[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_secs(1))
            .count();
        assert!(within <= 5 + 10 + 1, "{within} writes within a second");
    }
    drop(rig.runtime);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_deletes_what_outlived_its_ttl_and_nothing_else() {
    let fake = FakeApi::start().await.unwrap();
    fake.serve("zen.kube-zen.io/v1alpha1", "Observation");
    let ago = |s: i64| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(s))
            .unwrap()
            .to_string()
    };
    let put = |name: &str, created: String, ttl: Option<i64>, managed: bool| {
        let labels = if managed {
            json!({"app.kubernetes.io/managed-by": "zen-watcher"})
        } else {
            json!({"app.kubernetes.io/managed-by": "someone-else"})
        };
        let mut spec = json!({"source": "falco", "category": "security", "severity": "low", "eventType": "runtime_alert"});
        if let Some(ttl) = ttl {
            spec["ttlSecondsAfterCreation"] = json!(ttl);
        }
        fake.put(
            "observations",
            json!({"apiVersion": API, "kind": "Observation",
                "metadata": {"name": name, "namespace": "shop", "labels": labels, "creationTimestamp": created},
                "spec": spec}),
        );
    };
    put("old-with-ttl", ago(7200), Some(3600), true);
    put("young-with-ttl", ago(600), Some(3600), true);
    put("old-default-ttl", ago(7200), None, true);
    put("old-not-ours", ago(7200), Some(60), false);
    let client = fake.client().unwrap();
    let (leading, follower) = tokio::sync::watch::channel(false);
    let settings = zen_kube::ExpirySettings {
        default_ttl: Some(Duration::from_secs(3600)),
        every: Duration::from_millis(100),
        qps: 100.0,
        burst: 10,
    };
    let task = tokio::spawn(zen_kube::expire_while_leading(client, settings, follower));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fake.requests().is_empty(), "a follower looks at nothing");
    leading.send_replace(true);
    let names = || {
        let mut n: Vec<String> = fake
            .objects(API, "observations")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    for _ in 0..1500 {
        if names().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names(), ["old-not-ours", "young-with-ttl"]);
    drop(leading);
    task.await.unwrap();
}
