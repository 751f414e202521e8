//! Report watchers through the real `kube` client against the fake API server (zen-kube-fake),
//! writing into a real pipeline and SQLite store. What the fake cannot prove is in its docs.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zen_kube::{WatchSettings, Watchers};
use zen_kube_fake::{FakeApi, Fault, Method, until};
use zen_model::Normalizer;
use zen_pipeline::{Pipeline, PipelineConfig, SourceState, SourceStates};
use zen_store::{Query, State, Store};

const TRIVY: &str = "aquasecurity.github.io/v1alpha1";
const VULNS: &str = "vulnerabilityreports";

fn vuln_report(ns: &str, name: &str, ids: &[&str]) -> Value {
    let vulns: Vec<Value> = ids
        .iter()
        .map(|id| json!({"vulnerabilityID": id, "resource": "openssl", "installedVersion": "3.0.1", "fixedVersion": "3.0.9", "severity": "HIGH", "title": format!("{id} in openssl")}))
        .collect();
    json!({
        "apiVersion": TRIVY, "kind": "VulnerabilityReport",
        "metadata": {"name": name, "namespace": ns, "labels": {
            "trivy-operator.resource.kind": "ReplicaSet",
            "trivy-operator.resource.name": name,
            "trivy-operator.resource.namespace": ns,
            "trivy-operator.container.name": "app"}},
        "report": {"updateTimestamp": "2026-12-01T10:00:00Z", "vulnerabilities": vulns}
    })
}

fn policy_report(ns: &str, name: &str, failing: &[&str]) -> Value {
    let results: Vec<Value> = failing
        .iter()
        .map(|p| {
            json!({"policy": p, "rule": "check", "result": "fail", "severity": "medium",
            "message": format!("{p} failed"), "source": "kyverno",
            "resources": [{"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": ns}]})
        })
        .collect();
    json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": name, "namespace": ns},
        "results": results
    })
}

struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<Store>,
    pipeline: Arc<Pipeline>,
    states: SourceStates,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen.db");
    let (store, sink) = zen_store::open(&path).unwrap();
    let mut config = PipelineConfig::default();
    config.batch.batch.max_age = Duration::from_millis(20);
    let pipeline =
        Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap();
    Rig {
        _dir: dir,
        path,
        store: Arc::new(store),
        pipeline: Arc::new(pipeline),
        states: SourceStates::default(),
    }
}

fn settings(kinds: &[&str]) -> WatchSettings {
    WatchSettings {
        kinds: kinds.iter().map(|k| zen_kube::find(k).unwrap()).collect(),
        retry_max: Duration::from_millis(200),
        queue_wait: Duration::from_millis(100),
    }
}

async fn start(rig: &Rig, fake: &FakeApi, kinds: &[&str]) -> Watchers {
    Watchers::start(
        fake.client().unwrap(),
        settings(kinds),
        rig.pipeline.clone(),
        rig.store.clone(),
        rig.states.clone(),
    )
    .await
    .unwrap()
}

fn listed(store: &Store, state: Option<State>) -> Vec<String> {
    let q = Query {
        state,
        limit: 1000,
        ..Query::default()
    };
    let mut ids: Vec<String> = store
        .list(&q)
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.observation.event.rule_id.unwrap_or_default())
        .collect();
    ids.sort();
    ids
}

fn synced(rig: &Rig, resource: &str) -> bool {
    rig.states
        .snapshot()
        .get(resource)
        .is_some_and(|s| s.state == SourceState::Synced)
}

fn serve_trivy(fake: &FakeApi) {
    fake.serve("aquasecurity.github.io/v1alpha1", "VulnerabilityReport");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_findings_are_stored_once_and_gone_ones_resolved() {
    let fake = FakeApi::start().await.unwrap();
    serve_trivy(&fake);
    fake.serve("wgpolicyk8s.io/v1alpha2", "PolicyReport");
    fake.put(
        VULNS,
        vuln_report("shop", "cart", &["CVE-1", "CVE-2", "CVE-3"]),
    );
    fake.put(VULNS, vuln_report("shop", "web", &["CVE-1"]));
    fake.put(
        "policyreports",
        policy_report("shop", "pol", &["require-labels"]),
    );
    let rig = rig();
    let _w = start(&rig, &fake, &["vulnerabilityreports", "policyreports"]).await;
    let resource = "vulnerabilityreports.aquasecurity.github.io";
    until("the initial list is stored", || {
        listed(&rig.store, None).len() == 5
    })
    .await;
    until("synced", || {
        synced(&rig, resource) && synced(&rig, "policyreports.wgpolicyk8s.io")
    })
    .await;
    let status = rig.states.snapshot()[resource].clone();
    assert_eq!((status.objects, status.open_findings), (2, 4));

    // A re-scan adds CVE-4 and fixes CVE-1: one new Observation, one resolved.
    fake.put(
        VULNS,
        vuln_report("shop", "cart", &["CVE-2", "CVE-3", "CVE-4"]),
    );
    until("the fix is resolved", || {
        listed(&rig.store, Some(State::Resolved)).len() == 1
    })
    .await;
    assert_eq!(listed(&rig.store, Some(State::Resolved)), ["CVE-1"]);
    until("the new finding is stored", || {
        listed(&rig.store, None).len() == 6
    })
    .await;
    // A new report's finding, with nothing resolved and nothing else coming: tracked as the
    // report's all the same (by the watcher's settling tick).
    fake.put(VULNS, vuln_report("shop", "search", &["CVE-7"]));
    until("the new report's finding is tracked", || {
        let open = zen_sink::Findings::open(rig.store.as_ref()).unwrap();
        open.iter().any(|(r, _)| r.ends_with("/shop/search"))
    })
    .await;
    fake.delete(TRIVY, VULNS, "shop", "search");
    until("and resolved with its report", || {
        listed(&rig.store, Some(State::Resolved)).len() == 2
    })
    .await;
    // The same version again (a resync) changes nothing.
    fake.put(
        VULNS,
        vuln_report("shop", "cart", &["CVE-2", "CVE-3", "CVE-4"]),
    );
    // A report deleted: its findings are resolved; the other report's CVE-1 stays open.
    fake.delete(TRIVY, VULNS, "shop", "cart");
    until("the deleted report's findings are resolved", || {
        listed(&rig.store, Some(State::Resolved)).len() == 5
    })
    .await;
    assert_eq!(
        listed(&rig.store, Some(State::Open)),
        ["CVE-1", "require-labels/check"]
    );
    assert_eq!(listed(&rig.store, None).len(), 7, "nothing written twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_and_410_gone_resume_without_duplicates() {
    let fake = FakeApi::start().await.unwrap();
    serve_trivy(&fake);
    for i in 0..20 {
        fake.put(
            VULNS,
            vuln_report("shop", &format!("r{i:02}"), &["CVE-1", "CVE-2"]),
        );
    }
    let rig = rig();
    let _w = start(&rig, &fake, &[VULNS]).await;
    let resource = "vulnerabilityreports.aquasecurity.github.io";
    until("40 findings", || listed(&rig.store, None).len() == 40).await;
    until("synced", || synced(&rig, resource)).await;
    let lists = |fake: &FakeApi| {
        fake.requests()
            .iter()
            .filter(|r| r.uri.contains(VULNS) && !r.uri.contains("watch="))
            .count()
    };
    let lists_before = lists(&fake);

    // A dropped connection: the watch resumes from its resourceVersion, no list.
    fake.drop_watches();
    fake.put(
        VULNS,
        vuln_report("shop", "r00", &["CVE-1", "CVE-2", "CVE-3"]),
    );
    until("the change after the drop", || {
        listed(&rig.store, None).len() == 41
    })
    .await;
    assert_eq!(lists(&fake), lists_before, "resumed without listing again");

    // Disconnected (every watch refused) while a report was deleted and one changed, and the
    // history compacted past it: 410 Gone, a list again, the deletion seen as a missing
    // report, nothing twice.
    fake.inject(Fault {
        method: Some(Method::GET),
        path_contains: VULNS.to_owned(),
        times: usize::MAX,
        // Not 503, which the client retries by itself before the watcher sees it.
        code: 500,
        retry_after: None,
    });
    fake.drop_watches();
    fake.delete(TRIVY, VULNS, "shop", "r01");
    fake.put(
        VULNS,
        vuln_report("shop", "r02", &["CVE-1", "CVE-2", "CVE-9"]),
    );
    fake.compact();
    until("the watcher is refused", || {
        rig.states.snapshot()[resource].state == SourceState::Degraded
    })
    .await;
    fake.clear_faults();
    until("the relist's changes", || {
        listed(&rig.store, None).len() == 42 && listed(&rig.store, Some(State::Resolved)).len() == 2
    })
    .await;
    assert!(lists(&fake) > lists_before, "listed again after 410");
    let open = listed(&rig.store, Some(State::Open)).len();
    assert_eq!(
        open, 40,
        "19 reports of two, one of three and one of three, less two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_not_installed_is_degraded_and_picked_up_once_installed() {
    let fake = FakeApi::start().await.unwrap();
    let rig = rig();
    let _w = start(&rig, &fake, &[VULNS]).await;
    let resource = "vulnerabilityreports.aquasecurity.github.io";
    until("degraded", || {
        rig.states.snapshot().get(resource).is_some_and(|s| {
            s.state == SourceState::Degraded && s.detail.contains("CRD is not installed")
        })
    })
    .await;
    serve_trivy(&fake);
    fake.put(VULNS, vuln_report("shop", "cart", &["CVE-7"]));
    until("picked up", || synced(&rig, resource)).await;
    until("stored", || listed(&rig.store, None) == ["CVE-7"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_writes_nothing_twice_and_resolves_what_left_meanwhile() {
    let fake = FakeApi::start().await.unwrap();
    serve_trivy(&fake);
    fake.put(VULNS, vuln_report("shop", "a", &["CVE-1", "CVE-2"]));
    fake.put(VULNS, vuln_report("shop", "b", &["CVE-3"]));
    let rig = rig();
    let resource = "vulnerabilityreports.aquasecurity.github.io";
    let w = start(&rig, &fake, &[VULNS]).await;
    until("stored", || listed(&rig.store, None).len() == 3).await;
    until("synced", || synced(&rig, resource)).await;
    w.stop().await;
    // While it is away: `b` deleted, `a` fixed one and gained one.
    fake.delete(TRIVY, VULNS, "shop", "b");
    fake.put(VULNS, vuln_report("shop", "a", &["CVE-2", "CVE-4"]));
    // A new process: a new pipeline (the deduper remembers nothing) on the same store.
    let Rig {
        _dir,
        path,
        store,
        pipeline,
        ..
    } = rig;
    drop(store);
    let pipeline = Arc::into_inner(pipeline).unwrap();
    pipeline.shutdown(std::time::Instant::now() + Duration::from_secs(10));
    let (store, sink) = zen_store::open(&path).unwrap();
    let pipeline = Pipeline::start(
        PipelineConfig::default(),
        Arc::new(Normalizer::default()),
        Box::new(sink),
    )
    .unwrap();
    let rig = Rig {
        _dir,
        path,
        store: Arc::new(store),
        pipeline: Arc::new(pipeline),
        states: SourceStates::default(),
    };
    let _w = start(&rig, &fake, &[VULNS]).await;
    until("synced again", || synced(&rig, resource)).await;
    until("CVE-4 stored", || listed(&rig.store, None).len() == 4).await;
    until("resolved", || {
        listed(&rig.store, Some(State::Resolved)).len() == 2
    })
    .await;
    assert_eq!(
        listed(&rig.store, Some(State::Resolved)),
        ["CVE-1", "CVE-3"]
    );
    assert_eq!(listed(&rig.store, Some(State::Open)), ["CVE-2", "CVE-4"]);
}
