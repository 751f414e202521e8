//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! a replica takes the Lease when it is free or its holder has not renewed it for its duration
//! (measured on this replica's own monotonic clock from when it saw the record change, so clock
//! skew between nodes does not matter), renews it every `renew_every`, and stops leading when it
//! could not renew for `renew_deadline` — shorter than the duration, so the next holder never
//! overlaps it. Every write is a replace with the `resourceVersion` read, so two replicas
//! racing for it cannot both win (409 Conflict for the loser).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use zen_model::Timestamp;
use zen_pipeline::Jitter;

/// Which Lease, who this replica is, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica (the pod's name), as written in `holderIdentity`.
    pub identity: String,
    /// How long a Lease not renewed stays its holder's (`leaseDurationSeconds`).
    pub duration: Duration,
    /// How often the holder renews it, and others look at it.
    pub renew_every: Duration,
    /// How long the holder goes on leading while renewals fail: less than `duration`.
    pub renew_deadline: Duration,
}

impl LeaseSettings {
    /// The defaults of client-go's leader election (15 s, 2 s, 10 s) for `identity` in
    /// `namespace`.
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseSettings {
            namespace: namespace.to_owned(),
            name: "zen-watcher".to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

/// This replica's part in the election, running until [`Leadership::release`] or drop.
#[derive(Debug)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    release: Option<oneshot::Sender<oneshot::Sender<()>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Leadership {
    /// Starts taking part on the current runtime.
    pub fn start(client: kube::Client, settings: LeaseSettings) -> Leadership {
        let (tx, leading) = watch::channel(false);
        let (release, released) = oneshot::channel();
        let elector = Elector {
            api: Api::namespaced(client, &settings.namespace),
            jitter: Jitter::seeded(
                settings
                    .identity
                    .bytes()
                    .fold(0xcbf2_9ce4_8422_2325, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    }),
            ),
            settings,
            observed: None,
            renewed: None,
            leading: tx,
            gauge: metrics::gauge!("zen_watcher_leader"),
        };
        Leadership {
            leading,
            release: Some(release),
            task: tokio::spawn(elector.run(released)),
        }
    }

    /// Whether this replica leads now, and each change.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops taking part; when leading, hands the Lease back at once (its holder emptied), so
    /// another replica takes over without waiting for it to expire.
    pub async fn release(mut self) {
        let (done, finished) = oneshot::channel();
        if let Some(release) = self.release.take()
            && release.send(done).is_ok()
        {
            let _ = finished.await;
        }
    }
}

/// What says whether a Lease is being renewed: its holder and renew time.
type Record = (Option<String>, Option<Timestamp>);

struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The record last seen, and when it was first seen.
    observed: Option<(Record, Instant)>,
    /// When this replica last renewed the Lease.
    renewed: Option<Instant>,
    leading: watch::Sender<bool>,
    jitter: Jitter,
    gauge: metrics::Gauge,
}

impl Elector {
    async fn run(mut self, mut released: oneshot::Receiver<oneshot::Sender<()>>) {
        loop {
            let was = *self.leading.borrow();
            let now = match self.try_once().await {
                Ok(true) => {
                    self.renewed = Some(Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(lease = %self.settings.name, error = %e, "the leader Lease could not be read or written");
                    was && self
                        .renewed
                        .is_some_and(|t| t.elapsed() < self.settings.renew_deadline)
                }
            };
            if now != was {
                if now {
                    tracing::info!(identity = %self.settings.identity, lease = %self.settings.name, "leading: this replica holds the Lease");
                } else {
                    tracing::warn!(identity = %self.settings.identity, lease = %self.settings.name, "not leading any more");
                }
                self.leading.send_replace(now);
                self.gauge.set(if now { 1.0 } else { 0.0 });
            }
            let every = self.settings.renew_every;
            let wait = if now {
                every
            } else {
                every.mul_f64(1.0 + 0.2 * self.jitter.next())
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                done = &mut released => {
                    if *self.leading.borrow() {
                        self.give_back().await;
                    }
                    self.leading.send_replace(false);
                    self.gauge.set(0.0);
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Takes or renews the Lease; says whether this replica holds it.
    async fn try_once(&mut self) -> Result<bool, kube::Error> {
        let s = &self.settings;
        let wall = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&s.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, wall, 0)),
            };
            return won(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.as_ref().map(|t| t.0),
        );
        let now = Instant::now();
        let since = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                self.observed = Some((record, now));
                now
            }
        };
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let mine = holder == s.identity;
        let duration = spec
            .lease_duration_seconds
            .map_or(s.duration, |d| Duration::from_secs(d.max(1) as u64));
        let free = holder.is_empty() || now.duration_since(since) >= duration;
        if !mine && !free {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine { spec.acquire_time } else { None };
        lease.spec = Some(self.spec(acquired, wall, transitions));
        let name = s.name.clone();
        won(self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await)
    }

    /// The Lease held by this replica, renewed at `wall`.
    fn spec(&self, acquired: Option<MicroTime>, wall: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(self.settings.duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(wall))),
            renew_time: Some(MicroTime(wall)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Empties the holder, so that another replica takes the Lease at once.
    async fn give_back(&mut self) {
        let s = &self.settings;
        let released = match self.api.get_opt(&s.name).await {
            Ok(Some(mut lease)) => {
                let mut spec = lease.spec.clone().unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
                    return;
                }
                spec.holder_identity = None;
                lease.spec = Some(spec);
                self.api
                    .replace(&s.name, &PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match released {
            Ok(()) => tracing::info!(lease = %s.name, "the Lease was handed back"),
            Err(e) => {
                tracing::warn!(lease = %s.name, error = %e, "the Lease could not be handed back; it expires by itself");
            }
        }
    }
}

/// A write that won the Lease, one another replica won first (409), or an error.
fn won(written: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match written {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
