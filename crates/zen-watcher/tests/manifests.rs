//! The Kubernetes manifests (`deploy/kubernetes/`) as a user applies them: rendered by
//! kustomize (`kubectl kustomize`), validated against the Kubernetes schemas of the oldest
//! supported version and the newest (`kubernetes-validate --strict`), scanned by Checkov (the
//! checks zen-watcher's users run on their own manifests), and the Observation resources —
//! the example and those the sink writes for every source format — validated against the
//! generated CRD's schema. The RBAC is held to the report kinds the code watches.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

/// The base rendered by kustomize, or `None` (said loudly) without a kubectl.
fn rendered() -> Option<String> {
    let kubectl = common::external("kubectl")?;
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(common::root().join("deploy/kubernetes"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_base_renders_a_hardened_least_privilege_install() {
    let Some(text) = rendered() else { return };
    let docs = documents(&text);
    let mut kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ]
    );
    for d in &docs {
        if d["kind"] != "Namespace"
            && d["kind"] != "CustomResourceDefinition"
            && !d["kind"].as_str().unwrap().starts_with("Cluster")
        {
            assert_eq!(d["metadata"]["namespace"], "zen-watcher", "{d:?}");
        }
    }
    let deployment = find(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());

    // The configuration it mounts is one the daemon accepts (the token file aside).
    let config = find(&docs, "ConfigMap")[0]["data"]["zen.yaml"]
        .as_str()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let file = dir.path().join("zen.yaml");
    std::fs::write(
        &file,
        config.replace("/etc/zen-watcher/token/token", token.to_str().unwrap()),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_zen-watcher"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // RBAC: list and watch exactly the kinds the watchers follow; create, get, list and
    // delete Observations and get and update their status; Leases in its namespace. Nothing
    // else.
    let role = find(&docs, "ClusterRole")[0];
    let mut granted: Vec<(String, String, String)> = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in rule["apiGroups"].as_sequence().unwrap() {
            for resource in rule["resources"].as_sequence().unwrap() {
                let verbs: Vec<&str> = rule["verbs"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                granted.push((
                    group.as_str().unwrap().to_owned(),
                    resource.as_str().unwrap().to_owned(),
                    verbs.join(","),
                ));
            }
        }
    }
    let mut wanted: Vec<(String, String, String)> = zen_kube::REPORT_KINDS
        .iter()
        .map(|k| {
            (
                k.group.to_owned(),
                k.plural.to_owned(),
                "list,watch".to_owned(),
            )
        })
        .collect();
    wanted.push((
        "zen.kube-zen.io".into(),
        "observations".into(),
        "create,get,list,delete".into(),
    ));
    wanted.push((
        "zen.kube-zen.io".into(),
        "observations/status".into(),
        "get,update".into(),
    ));
    wanted.push((
        "zen.kube-zen.io".into(),
        "ingesters".into(),
        "list,watch".into(),
    ));
    wanted.push((
        "zen.kube-zen.io".into(),
        "ingesters/status".into(),
        "update".into(),
    ));
    granted.sort();
    wanted.sort();
    assert_eq!(granted, wanted);
    let own = find(&docs, "Role")[0];
    let rules: Vec<String> = own["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            r#"{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["get","create","update"]}"#,
            r#"{"apiGroups":["zen-watcher.io"],"resources":["sourcepolicies"],"verbs":["list","watch"]}"#,
            r#"{"apiGroups":["zen-watcher.io"],"resources":["sourcepolicies/status"],"verbs":["update"]}"#,
            r#"{"apiGroups":["events.k8s.io"],"resources":["events"],"verbs":["create"]}"#,
        ]
    );

    // Valid for the oldest Kubernetes supported (1.33) and the newest the validator knows.
    let Some(validate) = common::external("kubernetes-validate") else {
        return;
    };
    let path = dir.path().join("rendered.yaml");
    std::fs::write(&path, &text).unwrap();
    for version in ["1.33.0", "1.37.0"] {
        let out = Command::new(&validate)
            .args(["--strict", "-k", version])
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{version}:\n{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every resource passed but the Prometheus Operator's two, which it has no schema for
        // (the rules inside are the ones promtool checks).
        assert_eq!(
            said.matches(" passed for resource ").count(),
            docs.len() - 2,
            "{said}"
        );
    }
}

#[test]
fn checkov_finds_nothing_in_the_manifests() {
    let Some(text) = rendered() else { return };
    let Some(checkov) = common::external("checkov") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zen-watcher.yaml");
    std::fs::write(&path, text).unwrap();
    // The checks skipped are the two the Deployment says why of.
    common::checkov_clean(
        &checkov,
        "kubernetes",
        &path,
        100,
        &["CKV_K8S_38", "CKV_K8S_43"],
    );
}

#[test]
fn observations_validate_against_the_generated_crd_and_bad_ones_do_not() {
    let Some(python) = common::external("python3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // What the sink writes, for a finding of every format's fixtures.
    let data = common::root().join("crates/zen-model/tests/data");
    let ctx = zen_model::Context::received_at("2026-12-07T10:00:00Z".parse().unwrap());
    let normalizer = zen_model::Normalizer::default();
    let mut written = String::new();
    for (format, file) in [
        (zen_model::Format::Trivy, "trivy/vulnerabilityreport.json"),
        (zen_model::Format::Trivy, "trivy/exposedsecretreport.json"),
        (zen_model::Format::Kyverno, "kyverno/policyreport.json"),
        (zen_model::Format::Audit, "audit/webhook-eventlist.json"),
        (zen_model::Format::Falco, "falco/http-output.json"),
        (
            zen_model::Format::KubeBench,
            "kube-bench/controls-and-totals.json",
        ),
        (zen_model::Format::Checkov, "checkov/single-framework.json"),
    ] {
        let body = std::fs::read(data.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let events = normalizer.normalize(format, &body, &ctx).unwrap().events;
        assert!(!events.is_empty(), "{file}");
        let o = zen_kube::observation_for(&events[0], "zen-watcher", Some(3600));
        written.push_str("---\n");
        written.push_str(&serde_yaml_ng::to_string(&o).unwrap());
    }
    let ours = dir.path().join("written.yaml");
    std::fs::write(&ours, &written).unwrap();
    // And wrong ones, each by one field.
    let example =
        std::fs::read_to_string(common::root().join("deploy/kubernetes/examples/observation.yaml"))
            .unwrap();
    let bad = [
        (
            "severity: critical\n  eventType",
            "severity: urgent\n  eventType",
        ),
        ("source: trivy\n  category", "source: Trivy!\n  category"),
        (
            "eventType: vulnerability",
            "eventType: vulnerability\n  colour: red",
        ),
        ("  category: security\n  severity", "  severity"),
    ];
    let mut wrong = String::new();
    for (i, (from, to)) in bad.iter().enumerate() {
        assert!(example.contains(from), "{from}");
        wrong.push_str("---\n");
        wrong.push_str(
            &example
                .replace(from, to)
                .replace("name: trivy-", &format!("name: bad{i}-")),
        );
    }
    let wrong_path = dir.path().join("wrong.yaml");
    std::fs::write(&wrong_path, &wrong).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/against_crd.py");
    let crd = common::root().join("deploy/kubernetes/crds/observations.zen.kube-zen.io.yaml");
    let run = |files: &[&Path]| {
        let out = Command::new(&python)
            .arg(&script)
            .arg(&crd)
            .args(files)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.code().is_some(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    };
    let example_path = common::root().join("deploy/kubernetes/examples/observation.yaml");
    let (ok, said) = run(&[&example_path, &ours]);
    assert!(ok, "{said}");
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok ")).count(),
        8,
        "{said}"
    );
    let (ok, said) = run(&[&wrong_path]);
    assert!(!ok);
    assert_eq!(
        said.lines().filter(|l| l.starts_with("invalid ")).count(),
        4,
        "{said}"
    );
    // The SourcePolicy example against its CRD.
    let crd = common::root().join("deploy/kubernetes/crds/sourcepolicies.zen-watcher.io.yaml");
    let example = common::root().join("deploy/kubernetes/examples/sourcepolicy.yaml");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&crd)
        .arg(&example)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{said}"
    );
    // And its filters compile as the daemon compiles them.
    let text = std::fs::read_to_string(&example).unwrap();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let policy: zen_kube::SourcePolicy = serde::Deserialize::deserialize(doc).unwrap();
        let rules = zen_filter::FilterRules::from(policy.spec.filter.as_ref().unwrap());
        let config = zen_filter::FilterConfig {
            global: rules,
            ..zen_filter::FilterConfig::default()
        };
        zen_filter::Filter::compile(&config).unwrap();
    }
}
