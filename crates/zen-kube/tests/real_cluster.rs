//! Against a real cluster, when asked: `ZEN_REAL_CLUSTER=1`, with `KUBECONFIG` (or the
//! in-cluster service account) naming a cluster where the test may install zen-watcher's CRDs
//! and create and delete a namespace of its own. What the fake API server cannot prove is
//! proven here: the API server's admission of the generated CRDs and of the resources written
//! against them, real resourceVersions, and the Lease API. No cluster runs on the project's
//! machines, so these are skipped there (loudly), even under `ZEN_REQUIRE_EXTERNAL=1`.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::crd::CustomResourceExt as _;
use serde_json::json;
use zen_kube::{Leadership, LeaseSettings, Observation, SourcePolicy};

async fn cluster() -> Option<kube::Client> {
    if std::env::var("ZEN_REAL_CLUSTER").as_deref() != Ok("1") {
        eprintln!(
            "\n*** SKIPPED: ZEN_REAL_CLUSTER=1 and a KUBECONFIG are needed to run against a real cluster ***\n"
        );
        return None;
    }
    Some(kube::Client::try_default().await.unwrap())
}

/// Installs the CRDs (server-side apply) and a namespace of the test's own.
async fn prepare(client: &kube::Client) -> String {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("zen-watcher-test").force();
    for crd in [Observation::crd(), SourcePolicy::crd()] {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .unwrap();
        for _ in 0..100 {
            let established = crds.get(&name).await.unwrap().status.is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let name = format!("zen-watcher-test-{}", std::process::id());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

async fn clean(client: &kube::Client, namespace: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(namespace, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_admits_what_the_sink_writes_and_refuses_a_bad_observation() {
    let Some(client) = cluster().await else {
        return;
    };
    let namespace = prepare(&client).await;
    let ctx = zen_model::Context::received_at("2026-12-07T10:00:00Z".parse().unwrap());
    let alert = br#"{"rule":"Terminal shell in container","priority":"Critical","time":"2026-12-07T09:59:00Z","output_fields":{}}"#;
    let event = zen_model::Normalizer::default()
        .normalize(zen_model::Format::Falco, alert, &ctx)
        .unwrap()
        .events
        .remove(0);
    let api: Api<Observation> = Api::namespaced(client.clone(), &namespace);
    let o = zen_kube::observation_for(&event, &namespace, Some(600));
    api.create(&PostParams::default(), &o).await.unwrap();
    // The same name again: AlreadyExists, as the sink counts it.
    let again = api.create(&PostParams::default(), &o).await.unwrap_err();
    assert!(matches!(again, kube::Error::Api(s) if s.code == 409));
    // A severity outside the schema: refused by admission.
    let mut bad = serde_json::to_value(&o).unwrap();
    bad["metadata"]["name"] = json!("bad-severity");
    bad["spec"]["severity"] = json!("urgent");
    let bad: kube::api::DynamicObject = serde_json::from_value(bad).unwrap();
    let untyped: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &kube::core::ApiResource::erase::<Observation>(&()),
    );
    let refused = untyped
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(matches!(refused, kube::Error::Api(s) if s.code == 422));
    clean(&client, &namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_replicas_leads_on_a_real_lease() {
    let Some(client) = cluster().await else {
        return;
    };
    let namespace = prepare(&client).await;
    let a = Leadership::start(client.clone(), LeaseSettings::new(&namespace, "a"));
    let b = Leadership::start(client.clone(), LeaseSettings::new(&namespace, "b"));
    let (la, lb) = (a.leading(), b.leading());
    for _ in 0..300 {
        if *la.borrow() || *lb.borrow() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(*la.borrow() ^ *lb.borrow(), "exactly one leads");
    a.release().await;
    b.release().await;
    clean(&client, &namespace).await;
}
