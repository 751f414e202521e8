//! Leader election and the watchers it runs, through the real `kube` client against the fake
//! API server (zen-kube-fake). Waits poll for a state with a deadline; nothing asserts a time.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zen_kube::{Leadership, LeaseSettings, WatchSettings, Watchers};
use zen_kube_fake::{FakeApi, until};
use zen_model::Normalizer;
use zen_pipeline::{Pipeline, PipelineConfig, SourceState, SourceStates};
use zen_store::Query;

fn settings(identity: &str) -> LeaseSettings {
    LeaseSettings {
        duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(100),
        renew_deadline: Duration::from_secs(1),
        ..LeaseSettings::new("zen", identity)
    }
}

fn fake_with_leases(fake: &FakeApi) {
    fake.serve("coordination.k8s.io/v1", "Lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_hands_over_and_steps_down_when_the_lease_is_taken() {
    let fake = FakeApi::start().await.unwrap();
    fake_with_leases(&fake);
    let a = Leadership::start(fake.client().unwrap(), settings("a"));
    let b = Leadership::start(fake.client().unwrap(), settings("b"));
    let (la, lb) = (a.leading(), b.leading());
    until("one leads", || *la.borrow() || *lb.borrow()).await;
    // For a while (many renewals), never both.
    for _ in 0..50 {
        assert!(!(*la.borrow() && *lb.borrow()), "two leaders");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (leader, other, other_leads) = if *la.borrow() { (a, b, lb) } else { (b, a, la) };
    // Handed back on release: the other takes it without waiting for it to expire.
    leader.release().await;
    until("the other leads", || *other_leads.borrow()).await;
    let lease = fake
        .objects("coordination.k8s.io/v1", "leases")
        .pop()
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");

    // Taken by another holder (written behind its back): it stops leading at its next look.
    let mut stolen = lease.clone();
    stolen["spec"]["holderIdentity"] = json!("intruder");
    stolen["spec"]["renewTime"] = json!(jiff::Timestamp::now().to_string());
    fake.put("leases", stolen);
    until("it steps down", || !*other_leads.borrow()).await;
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leaders_lease_expires_and_the_next_leader_writes_nothing_twice() {
    let fake = FakeApi::start().await.unwrap();
    fake_with_leases(&fake);
    fake.serve("aquasecurity.github.io/v1alpha1", "VulnerabilityReport");
    let report = |name: &str, ids: &[&str]| {
        let vulns: Vec<_> = ids
            .iter()
            .map(|id| json!({"vulnerabilityID": id, "resource": "zlib", "installedVersion": "1", "severity": "LOW"}))
            .collect();
        json!({"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
            "metadata": {"name": name, "namespace": "shop"}, "report": {"vulnerabilities": vulns}})
    };
    for i in 0..10 {
        fake.put(
            "vulnerabilityreports",
            report(&format!("r{i}"), &["CVE-1", "CVE-2"]),
        );
    }
    // One store shared by both replicas (as PostgreSQL will be), and its pipeline.
    let dir = tempfile::tempdir().unwrap();
    let (store, sink) = zen_store::open(&dir.path().join("zen.db")).unwrap();
    let store = Arc::new(store);
    let mut config = PipelineConfig::default();
    config.batch.batch.max_age = Duration::from_millis(20);
    let pipeline =
        Arc::new(Pipeline::start(config, Arc::new(Normalizer::default()), Box::new(sink)).unwrap());
    let watch = WatchSettings {
        kinds: vec![zen_kube::find("vulnerabilityreports").unwrap()],
        retry_max: Duration::from_millis(200),
        queue_wait: Duration::from_millis(100),
    };
    let replica = |identity: &str, states: &SourceStates| {
        let leadership = Leadership::start(fake.client().unwrap(), settings(identity));
        let task = tokio::spawn(Watchers::while_leading(
            fake.client().unwrap(),
            watch.clone(),
            pipeline.clone(),
            store.clone(),
            states.clone(),
            leadership.leading(),
        ));
        (leadership, task)
    };
    let (sa, sb) = (SourceStates::default(), SourceStates::default());
    let (a, ta) = replica("a", &sa);
    let (b, tb) = replica("b", &sb);
    let rows = |store: &zen_store::Store| {
        let q = Query {
            limit: 1000,
            ..Query::default()
        };
        store.list(&q).unwrap().items.len()
    };
    until("the leader stores the findings", || rows(&store) == 20).await;
    let state = |s: &SourceStates| {
        s.snapshot()
            .get("vulnerabilityreports.aquasecurity.github.io")
            .map(|s| s.state)
    };
    until("one runs, the other stands by", || {
        matches!(
            (state(&sa), state(&sb)),
            (Some(SourceState::Synced), Some(SourceState::Standby))
                | (Some(SourceState::Standby), Some(SourceState::Synced))
        )
    })
    .await;
    let ((leader, task), next, _survivor) = if state(&sa) == Some(SourceState::Synced) {
        ((a, ta), sb, (b, tb))
    } else {
        ((b, tb), sa, (a, ta))
    };
    // The leader crashes: no hand-back, its watchers gone at once; its Lease expires.
    // Meanwhile a report changes.
    task.abort();
    drop(leader);
    fake.put("vulnerabilityreports", report("r0", &["CVE-2", "CVE-3"]));
    until("the next leader syncs", || {
        state(&next) == Some(SourceState::Synced)
    })
    .await;
    until("the change is stored", || rows(&store) == 21).await;
    let q = Query {
        state: Some(zen_store::State::Resolved),
        ..Query::default()
    };
    until("the fix is resolved", || {
        store.list(&q).unwrap().items.len() == 1
    })
    .await;
    assert_eq!(rows(&store), 21, "nothing written twice by the next leader");
}
