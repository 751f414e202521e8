//! `zen-watcher run`: the store, the pipeline and the HTTP server wired together, until SIGTERM
//! or SIGINT; then stop accepting, drain, commit and exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use zen_model::Normalizer;
use zen_pipeline::Pipeline;
use zen_server::AppState;

use crate::config::{DaemonConfig, LogFormat, SinkKind};

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

pub(crate) fn run(config: DaemonConfig, warnings: Vec<String>) -> Result<()> {
    init_logging(config.log_format);
    for w in warnings {
        tracing::warn!("{w}");
    }
    // Client certificates required at the handshake authenticate every request too.
    let authenticated = !config.resolved_tokens.is_empty() || config.tls.require_client_cert;
    if !authenticated && !config.listen.ip().is_loopback() {
        anyhow::ensure!(
            config.insecure_no_auth,
            "listening on {} (beyond loopback) without a token: set ZEN_TOKEN_FILE or the \
             ZEN_{{INGEST,READ,ADMIN}}_TOKEN_FILE files (tokens.*_file), require client certificates \
             (tls.require_client_cert), or say --insecure-no-auth",
            config.listen
        );
        tracing::warn!(address = %config.listen, "listening beyond loopback without a token (--insecure-no-auth)");
    }
    raise_open_files();
    let tls = config
        .tls
        .settings()?
        .map(zen_server::tls::Acceptor::new)
        .transpose()?;
    // First, so that what the store and pipeline register at start is recorded.
    let mut exporter = zen_export::Exporter::install("/proc").context("metrics")?;
    let collection = if config.collect.host {
        let collection = zen_collect::collection::Collection::start(
            config.collect.settings()?,
            report_collect_errors,
        )
        .context("starting the collectors")?;
        exporter = exporter.with_collection(collection.latest());
        Some(collection)
    } else {
        None
    };
    let exporter = Arc::new(exporter);
    let engine = if config.alerting.enabled {
        Some(config.alerting.engine()?)
    } else {
        None
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let db = config.data_dir.join("zen-watcher.db");
    let (store, sink): (_, Box<dyn zen_pipeline::Sink>) = match config.postgres() {
        Some(settings) => {
            let (store, sink) = zen_store::open_postgres(&settings)?;
            (store, Box::new(sink))
        }
        None => {
            let (store, sink) = zen_store::open_bounded(&db, config.store.wal_max_bytes())?;
            (store, Box::new(sink))
        }
    };
    let store = Arc::new(store);
    let _retention = store
        .retain(config.retention.0, config.purge_interval.0)
        .context("starting the retention loop")?;
    let normalizer = Arc::new(Normalizer::new(config.sources.clone()).context("sources")?);
    let nice = config.intake_nice;
    // Said once: the blocking pool starts threads as it needs them.
    let warned = std::sync::Once::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            // This thread only (Linux keeps a nice value per thread); raising one's own nice
            // value needs no privilege.
            if nice > 0
                && let Err(e) = rustix::process::setpriority_process(None, nice) {
                    warned.call_once(|| {
                        tracing::warn!(error = %e, nice, "the HTTP threads' nice value could not be set");
                    });
                }
        })
        .build()
        .context("starting the runtime")?;
    // Kubernetes mode: one client for the watchers, the Lease and the Observation writer.
    let kube_client = if config.kube.active() {
        Some(
            runtime
                .block_on(zen_kube::client())
                .context("Kubernetes mode: finding the API server (in-cluster, or KUBECONFIG)")?,
        )
    } else {
        None
    };
    // The sinks in the configured order: the first is the one acknowledgements wait for.
    let mut stored = Some(sink);
    let mut sinks: Vec<Box<dyn zen_pipeline::Sink>> = Vec::new();
    for kind in &config.sinks {
        match kind {
            SinkKind::Store => sinks.extend(stored.take()),
            SinkKind::Kubernetes => {
                let Some(client) = &kube_client else {
                    bail!("sinks: kubernetes needs Kubernetes mode (--kube, or kube.enabled)");
                };
                let settings = config
                    .kube
                    .observations
                    .settings(client.default_namespace());
                sinks.push(Box::new(zen_kube::ObservationSink::new(
                    client.clone(),
                    runtime.handle().clone(),
                    settings,
                )));
            }
            SinkKind::Jsonl => {
                let target = config.jsonl_target();
                let jsonl = zen_store::JsonlSink::open(target.clone())
                    .with_context(|| format!("opening the JSON-lines sink {target:?}"))?;
                sinks.push(Box::new(jsonl));
            }
        }
    }
    let mut sinks = sinks.into_iter();
    let Some(primary) = sinks.next() else {
        bail!("sinks: expected at least one");
    };
    let pipeline = Arc::new(
        Pipeline::start_with(config.pipeline(), normalizer, primary, sinks.collect())
            .context("filter")?,
    );
    // What no sink could write goes to the store's dead-letter table, until the pipeline stops.
    let keeper = {
        let (letters, store) = (pipeline.dead_letters().clone(), store.clone());
        std::thread::Builder::new()
            .name("zen-dead-letters".to_owned())
            .spawn(move || {
                for letter in letters {
                    if let Err(e) = store.keep_dead_letter(&letter) {
                        metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store").increment(1);
                        tracing::error!(error = %e, source = letter.source, events = letter.events.len(), "a dead letter could not be kept");
                    }
                }
            })
            .context("starting the dead-letter keeper")?
    };
    let history = open_history(&config.data_dir.join("history"));
    let recorder = history
        .clone()
        .map(|h| zen_server::history::Recorder::start(h, exporter.clone()))
        .transpose()
        .context("starting the history recorder")?;
    let insights: Option<zen_server::insights::SharedInsights> = history.as_ref().map(|_| {
        let latest = if config.advisor.auto_apply.is_empty() {
            zen_server::insights::Latest::default()
        } else {
            zen_server::insights::Latest::tuning(config.advisor.tuner())
        };
        Arc::new(std::sync::Mutex::new(latest))
    });
    let advising = match (&history, &insights) {
        (Some(h), Some(latest)) => Some(
            zen_server::insights::Advising::start(
                h.clone(),
                pipeline.clone(),
                exporter.clone(),
                zen_server::insights::Settings {
                    interval: config.advisor.interval.0,
                    forecast_after: config.advisor.forecast_after.0,
                    queue_capacity: config.pipeline.queue_capacity,
                    retention: config.retention.0,
                    data_dir: config.data_dir.clone(),
                    kubernetes: false,
                    latency_objective: std::time::Duration::from_millis(100),
                    dedup_max_entries: config.pipeline.dedup_max_entries,
                    dedup_window: config.pipeline.dedup_window.0,
                    cache_ttl: config.pipeline.cache_ttl.0,
                    collect_interval: config.collect.interval.0,
                },
                latest.clone(),
            )
            .context("starting the advisor")?,
        ),
        _ => None,
    };
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState {
        pipeline: pipeline.clone(),
        store: store.clone(),
        config: Arc::new(config.server()),
        limiters: Arc::new(zen_server::limits::Limiters::new(config.limits.limits())),
        draining: draining.clone(),
        exporter: Some(exporter.clone()),
        alerting: None,
        history,
        insights,
        sources: zen_pipeline::SourceStates::default(),
    };

    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        let mut state = state;
        if let Some(engine) = engine {
            let settings = config.alerting.settings(format!("http://{addr}"));
            state.alerting = Some(
                zen_alerting::Alerting::start(engine, exporter, settings)
                    .context("starting the alert evaluator")?,
            );
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(listen = %addr, "zen-watcher listening on {scheme}://{addr}");
        tracing::info!(store = %store.describe(), "keeping Observations in {}", store.describe());
        let _tails = config
            .tail
            .iter()
            .map(|t| {
                tracing::info!(file = %t.0.path.display(), format = %t.0.format, "following a file");
                zen_pipeline::Tail::start(t.0.clone(), pipeline.clone(), store.clone())
            })
            .collect::<std::io::Result<Vec<_>>>()
            .context("starting a file tail")?;
        let kube = match kube_client {
            Some(client) => Some(
                Kube::start(
                    client,
                    &config,
                    &pipeline,
                    &store,
                    &state.sources,
                )
                .await?,
            ),
            None => None,
        };
        let shutdown = {
            let draining = draining.clone();
            async move {
                wait_for_signal().await;
                draining.store(true, Ordering::Release);
                tracing::info!("stopping: no new requests; draining the pipeline");
            }
        };
        let served = zen_server::serve(listener, state, tls, shutdown).await;
        // Before the pipeline drains: what the watchers submitted is tracked, and the Lease
        // handed back to the next replica.
        if let Some(kube) = kube {
            kube.stop().await;
        }
        served.context("serving HTTP")
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));

    // Its last seconds written (and its hold on the pipeline let go) before the drain.
    drop(advising);
    drop(recorder);
    let grace = config.grace_period.0;
    let Some(pipeline) = Arc::into_inner(pipeline) else {
        bail!("the pipeline is still in use after the server stopped");
    };
    let report = pipeline.shutdown(Instant::now() + grace);
    if report.drained {
        let _ = keeper.join();
    }
    let c = report.counts;
    tracing::info!(
        received = c.received,
        written = c.written,
        filtered = c.filtered,
        deduplicated = c.deduplicated,
        dead_lettered = c.dead_lettered,
        drained = report.drained,
        "stopped"
    );
    drop(collection);
    if !report.drained {
        bail!(
            "the pipeline did not drain within the grace period of {}",
            crate::config::Human(grace)
        );
    }
    Ok(())
}

/// Raises the soft limit of open files to the hard one: every connection is a descriptor, and
/// the default soft limit (often 1,024) would be met before `connections.max`.
fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "the limit of open files could not be raised");
        }
    }
}

/// Kubernetes mode: the report watchers, on their own or while this replica leads.
struct Kube {
    duties: Duties,
    /// The expiry of Observation resources, with the `kubernetes` sink.
    expiry: Option<tokio::task::JoinHandle<()>>,
    /// The `SourcePolicy` watcher, until the daemon stops.
    _policies: Option<zen_kube::Policies>,
}

/// What runs the watchers and the expiry: this replica alone, or whichever holds the Lease.
enum Duties {
    /// With the sender that keeps the expiry's "leading" true.
    Alone(zen_kube::Watchers, tokio::sync::watch::Sender<bool>),
    Leading(zen_kube::Leadership, tokio::task::JoinHandle<()>),
}

impl Kube {
    async fn start(
        client: zen_kube::Client,
        daemon: &DaemonConfig,
        pipeline: &Arc<Pipeline>,
        store: &Arc<zen_store::Store>,
        sources: &zen_pipeline::SourceStates,
    ) -> Result<Kube> {
        let config = &daemon.kube;
        let observations = daemon.sinks.contains(&SinkKind::Kubernetes);
        let settings = config.settings(daemon.queue_wait.0)?;
        // The pod's name (its hostname), and the process, as client-go names a candidate.
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "zen-watcher".to_owned());
        let identity = format!("{host}_{}", std::process::id());
        let leadership = config.leader_election.then(|| {
            let namespace = config
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            tracing::info!(
                namespace,
                identity,
                "Kubernetes mode: taking part in leader election"
            );
            zen_kube::Leadership::start(
                client.clone(),
                zen_kube::LeaseSettings::new(&namespace, &identity),
            )
        });
        // Before anything is served: the policies in force (or the wait for them given up).
        let policies = if config.policies {
            let pipeline_config = daemon.pipeline();
            let settings = zen_kube::PolicySettings {
                namespace: client.default_namespace().to_owned(),
                sync_timeout: config.policy_sync_timeout.0,
                retry_max: config.retry_max.0,
                identity: identity.clone(),
            };
            Some(
                zen_kube::Policies::start(
                    client.clone(),
                    settings,
                    (pipeline_config.filter, pipeline_config.dedup),
                    pipeline.clone(),
                    leadership.as_ref().map(zen_kube::Leadership::leading),
                )
                .await,
            )
        } else {
            None
        };
        tracing::info!(
            kinds = settings.kinds.len(),
            "Kubernetes mode: watching report kinds"
        );
        let (duties, leading) = match leadership {
            None => {
                let watchers = zen_kube::Watchers::start(
                    client.clone(),
                    settings,
                    pipeline.clone(),
                    store.clone(),
                    sources.clone(),
                )
                .await
                .context("starting the report watchers")?;
                let (always, leading) = tokio::sync::watch::channel(true);
                (Duties::Alone(watchers, always), leading)
            }
            Some(leadership) => {
                let leading = leadership.leading();
                let task = tokio::spawn(zen_kube::Watchers::while_leading(
                    client.clone(),
                    settings,
                    pipeline.clone(),
                    store.clone(),
                    sources.clone(),
                    leadership.leading(),
                ));
                (Duties::Leading(leadership, task), leading)
            }
        };
        let expiry = observations.then(|| {
            tokio::spawn(zen_kube::expire_while_leading(
                client,
                config.observations.expiry(),
                leading,
            ))
        });
        Ok(Kube {
            duties,
            expiry,
            _policies: policies,
        })
    }

    async fn stop(self) {
        match self.duties {
            Duties::Alone(watchers, always) => {
                watchers.stop().await;
                drop(always);
            }
            Duties::Leading(leadership, task) => {
                // Not leading any more, so the watchers stop (their submissions tracked) and
                // the tasks end.
                leadership.release().await;
                let _ = task.await;
            }
        }
        if let Some(expiry) = self.expiry {
            let _ = expiry.await;
        }
    }
}

/// The history kept in `dir`, or none (said in the log) when it cannot be opened: the daemon
/// runs without it rather than not at all. Damaged files are set aside and logged.
fn open_history(dir: &std::path::Path) -> Option<zen_server::history::Shared> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match zen_history::History::open(dir, now) {
        Ok((history, recovery)) => {
            for why in &recovery.set_aside {
                tracing::error!(damage = why, "history: a damaged file was set aside");
            }
            tracing::info!(
                dir = %dir.display(),
                blocks = recovery.blocks,
                journaled_seconds = recovery.seconds,
                "history opened"
            );
            Some(Arc::new(std::sync::Mutex::new(history)))
        }
        Err(e) => {
            tracing::error!(error = %e, "the history cannot be kept; running without it");
            None
        }
    }
}

/// Logs and counts what the collectors could not read.
fn report_collect_errors(errors: &[zen_collect::CollectError]) {
    for e in errors {
        let category = match e {
            zen_collect::CollectError::Io { .. } | zen_collect::CollectError::Inventory(_) => "io",
            zen_collect::CollectError::Parse { .. } => "parse",
        };
        metrics::counter!("zen_watcher_errors_total", "component" => "collector", "category" => category)
            .increment(1);
        tracing::warn!(error = %e, "collector");
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
