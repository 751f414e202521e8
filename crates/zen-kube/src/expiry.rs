//! Expiry: Observation resources older than their TTL (`spec.ttlSecondsAfterCreation`, else
//! the configured default) are deleted — by the leader only, within a budget of their own, each
//! delete naming the uid it read, so a resource made again meanwhile is not taken.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Preconditions};
use tokio::sync::watch;
use zen_model::Timestamp;

use crate::budget::Budget;
use crate::observation::MANAGED_BY;

/// When Observation resources expire, and how often and how fast they are looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpirySettings {
    /// For resources written without a TTL of their own (none: kept).
    pub default_ttl: Option<Duration>,
    /// How often the leader looks.
    pub every: Duration,
    pub qps: f64,
    pub burst: u32,
}

/// Deletes expired Observation resources while `leading` says this replica leads; returns when
/// `leading` ends.
pub async fn expire_while_leading(
    client: kube::Client,
    settings: ExpirySettings,
    mut leading: watch::Receiver<bool>,
) {
    let api = Api::<DynamicObject>::all_with(client.clone(), &crate::observation::api_resource());
    let mut budget = Budget::new(settings.qps, settings.burst);
    let expired = metrics::counter!("zen_watcher_crd_expired_total");
    let timings = Timings {
        list: metrics::histogram!("zen_watcher_crd_operation_duration_seconds", "operation" => "list"),
        delete: metrics::histogram!("zen_watcher_crd_operation_duration_seconds", "operation" => "delete"),
    };
    loop {
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return;
            }
        }
        match expire_once(&client, &api, &settings, &mut budget, &timings).await {
            Ok(n) if n > 0 => {
                expired.increment(n);
                tracing::info!(deleted = n, "expired Observation resources deleted");
            }
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("zen_watcher_errors_total", "component" => "kube", "category" => "connection").increment(1);
                tracing::warn!(error = %e, "expired Observation resources could not be looked for");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(settings.every) => {}
            changed = leading.changed() => if changed.is_err() { return },
        }
    }
}

/// `zen_watcher_crd_operation_duration_seconds` of the expiry's calls.
struct Timings {
    list: metrics::Histogram,
    delete: metrics::Histogram,
}

/// One pass over every managed resource, a page at a time; says how many were deleted.
async fn expire_once(
    client: &kube::Client,
    api: &Api<DynamicObject>,
    settings: &ExpirySettings,
    budget: &mut Budget,
    timings: &Timings,
) -> Result<u64, kube::Error> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let mut params = ListParams::default().labels(&selector).limit(500);
    let mut deleted = 0;
    loop {
        tokio::time::sleep(budget.reserve()).await;
        let started = std::time::Instant::now();
        let page = api.list(&params).await;
        timings.list.record(started.elapsed().as_secs_f64());
        let page = page?;
        let now = Timestamp::now();
        for o in &page.items {
            let meta = &o.metadata;
            let ttl = o.data["spec"]["ttlSecondsAfterCreation"]
                .as_u64()
                .map(Duration::from_secs)
                .or(settings.default_ttl);
            let (Some(ttl), Some(created), Some(name), Some(ns)) = (
                ttl,
                meta.creation_timestamp.as_ref(),
                meta.name.as_deref(),
                meta.namespace.as_deref(),
            ) else {
                continue;
            };
            let ttl = jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
            if created.0.checked_add(ttl).is_ok_and(|at| at > now) {
                continue;
            }
            tokio::time::sleep(budget.reserve()).await;
            let namespaced = Api::<DynamicObject>::namespaced_with(
                client.clone(),
                ns,
                &crate::observation::api_resource(),
            );
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: meta.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let started = std::time::Instant::now();
            let done = namespaced.delete(name, &dp).await;
            timings.delete.record(started.elapsed().as_secs_f64());
            match done {
                Ok(_) => deleted += 1,
                // Gone already, or made again since it was read.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(deleted),
        }
    }
}
