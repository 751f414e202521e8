//! Kubernetes mode on the real binary: `--kube` with a kubeconfig naming the fake API server
//! (zen-kube-fake; what it cannot prove is in its docs). Reports become Observations, fixed
//! findings are resolved, a kind whose CRD is missing is degraded in `/readyz?verbose` and
//! `/api/v1/stats`, and the informer metrics are exposed.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use serde_json::{Value, json};
use zen_kube_fake::until_blocking as until;

fn report(name: &str, ids: &[&str]) -> Value {
    let vulns: Vec<Value> = ids
        .iter()
        .map(|id| json!({"vulnerabilityID": id, "resource": "openssl", "installedVersion": "3.0.1", "severity": "CRITICAL"}))
        .collect();
    json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
        "metadata": {"name": name, "namespace": "shop"},
        "report": {"vulnerabilities": vulns}
    })
}

fn ids(addr: std::net::SocketAddr, query: &str) -> Vec<String> {
    let (status, body) = common::get(addr, &format!("/api/v1/observations?{query}"));
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ruleId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn reports_in_the_cluster_become_observations_and_fixed_findings_are_resolved() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(zen_kube_fake::FakeApi::start()).unwrap();
    fake.serve("aquasecurity.github.io/v1alpha1", "VulnerabilityReport");
    fake.serve("coordination.k8s.io/v1", "Lease");
    fake.serve("zen.kube-zen.io/v1alpha1", "Observation");
    fake.serve("zen-watcher.io/v1alpha1", "SourcePolicy");
    fake.serve("events.k8s.io/v1", "Event");
    // A policy in the daemon's namespace: CVE-9 is not wanted from Trivy.
    fake.put(
        "sourcepolicies",
        json!({"apiVersion": "zen-watcher.io/v1alpha1", "kind": "SourcePolicy",
            "metadata": {"name": "trivy", "namespace": "default"},
            "spec": {"source": "trivy", "filter": {"excludeRules": ["CVE-9"]}}}),
    );
    fake.put(
        "vulnerabilityreports",
        report("cart", &["CVE-1", "CVE-2", "CVE-9"]),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).unwrap();
    let config = dir.path().join("zen.yaml");
    std::fs::write(
        &config,
        "sinks: [sqlite, kubernetes]\nkube:\n  reports: [vulnerabilityreports, policyreports.wgpolicyk8s.io]\n  retry_max: 1s\n  observations:\n    namespace: zen\n    qps: 100\ncollect:\n  host: false\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (mut child, addr, logs) = common::start_with(
        &data,
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        &["--kube", "--config", config.to_str().unwrap()],
    );
    std::thread::spawn(move || logs.for_each(drop));

    until("the report's findings are stored", || {
        ids(addr, "state=open") == ["CVE-1", "CVE-2"]
    });
    fake.put("vulnerabilityreports", report("cart", &["CVE-2", "CVE-3"]));
    until("the fix is resolved", || {
        ids(addr, "state=resolved") == ["CVE-1"]
    });
    until("the new finding is stored", || {
        ids(addr, "state=open") == ["CVE-2", "CVE-3"]
    });
    // The findings as Observation resources too, in the report's namespace.
    let written = || {
        let mut ids: Vec<String> = fake
            .objects("zen.kube-zen.io/v1alpha1", "observations")
            .iter()
            .map(|o| {
                assert_eq!(o["metadata"]["namespace"], "shop", "{o}");
                o["spec"]["details"]["ruleId"].as_str().unwrap().to_owned()
            })
            .collect();
        ids.sort();
        ids
    };
    until("the Observation resources are written", || {
        written() == ["CVE-1", "CVE-2", "CVE-3"]
    });
    let (_, body) = common::get(addr, "/api/v1/observations?state=resolved");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert!(page["items"][0]["resolvedAt"].is_string(), "{page}");

    let (status, ready) = common::get(addr, "/readyz?verbose");
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready.contains("[+]source vulnerabilityreports.aquasecurity.github.io ok: watching (1 objects, 2 open findings)"),
        "{ready}"
    );
    assert!(
        ready.contains("[+]source policyreports.wgpolicyk8s.io degraded: the kind is not served"),
        "{ready}"
    );
    let (_, stats) = common::get(addr, "/api/v1/stats");
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        stats["sources"]["policyreports.wgpolicyk8s.io"]["state"],
        "degraded"
    );
    let (_, metrics) = common::get(addr, "/metrics");
    for line in [
        r#"zen_watcher_informer_synced{resource="vulnerabilityreports.aquasecurity.github.io"} 1"#,
        r#"zen_watcher_informer_synced{resource="policyreports.wgpolicyk8s.io"} 0"#,
        r#"zen_watcher_informer_events_total{resource="vulnerabilityreports.aquasecurity.github.io",type="listed"} 1"#,
        r#"zen_watcher_informer_events_total{resource="vulnerabilityreports.aquasecurity.github.io",type="applied"} 1"#,
        // CVE-1, and CVE-9, which the policy filtered out but the report held.
        r#"zen_watcher_report_findings_resolved_total{resource="vulnerabilityreports.aquasecurity.github.io"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(metrics.contains(
        "zen_watcher_informer_restarts_total{resource=\"policyreports.wgpolicyk8s.io\"}"
    ));
    // Nothing is emitted in Kubernetes mode that the catalog does not declare.
    let undeclared: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !zen_export::catalog::CATALOG.iter().any(|m| m.name == *name))
        .collect();
    assert!(
        undeclared.is_empty(),
        "emitted but not declared: {undeclared:?}"
    );
    // Every Kubernetes metric of the catalog is emitted.
    for m in zen_export::catalog::CATALOG
        .iter()
        .filter(|m| m.scope == zen_export::catalog::Scope::Kubernetes)
    {
        assert!(
            metrics.contains(&format!("\n{}", m.name)),
            "{} not in\n{metrics}",
            m.name
        );
    }
    assert!(metrics.contains("\nzen_watcher_leader 1"), "{metrics}");
    // It leads, and hands the Lease back when stopped.
    let lease = fake
        .objects("coordination.k8s.io/v1", "leases")
        .pop()
        .unwrap();
    assert_eq!(lease["metadata"]["namespace"], "default", "{lease}");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .ends_with(&format!("_{}", child.id())),
        "{lease}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let lease = fake
        .objects("coordination.k8s.io/v1", "leases")
        .pop()
        .unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
}
