//! The daemon's configuration: defaults, then a YAML file, then `ZEN_*` environment variables,
//! then command-line flags, each overriding the one before. Unknown keys are errors that name
//! them; durations are human (`100ms`, `5m`, `7d`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zen_model::NormalizeConfig;

/// A duration written for people: `100ms`, `30s`, `5m`, `1h 30m`, `7d` (days of 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Human(pub(crate) Duration);

impl Human {
    pub(crate) fn parse(text: &str) -> Result<Human, String> {
        let span: jiff::Span = text.trim().parse().map_err(|e| {
            format!("expected a duration such as 100ms, 5m or 7d, found {text:?} ({e})")
        })?;
        let signed = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| format!("expected a duration, found {text:?} ({e})"))?;
        Duration::try_from(signed)
            .map(Human)
            .map_err(|_| format!("expected a positive duration, found {text:?}"))
    }
}

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = jiff::SignedDuration::try_from(self.0).unwrap_or(jiff::SignedDuration::MAX);
        write!(f, "{d:#}")
    }
}

impl<'de> Deserialize<'de> for Human {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Human::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Human {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// When ingestion answers: once events are queued, or once they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AckMode {
    Enqueue,
    Commit,
}

/// A file followed as a source: `FORMAT:PATH` (`audit:/var/log/kubernetes/audit.log`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TailSpec(pub(crate) zen_pipeline::TailConfig);

impl std::str::FromStr for TailSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TailSpec)
    }
}

impl Serialize for TailSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}:{}", self.0.format, self.0.path.display()))
    }
}

impl<'de> Deserialize<'de> for TailSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A place Observations are written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SinkKind {
    /// The store (`store`: SQLite, or PostgreSQL), which the API reads; `sqlite`, its first
    /// name, is read as well.
    #[serde(rename = "store", alias = "sqlite")]
    Store,
    /// JSON lines (`jsonl`).
    Jsonl,
    /// `Observation` custom resources (Kubernetes mode; `kube.observations`).
    Kubernetes,
}

/// The JSON-lines sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct JsonlSection {
    /// The file; `-` is standard output. Default: `observations.jsonl` in the data directory.
    pub(crate) path: Option<PathBuf>,
    /// A file is rotated past this many bytes.
    pub(crate) max_bytes: u64,
    /// Rotated files kept (`PATH.1` … `PATH.<keep>`).
    pub(crate) keep: usize,
}

impl Default for JsonlSection {
    fn default() -> Self {
        JsonlSection {
            path: None,
            max_bytes: 100 << 20,
            keep: 5,
        }
    }
}

/// Where Observations are kept: the embedded SQLite file in the data directory, or a
/// PostgreSQL database that replicas share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreKind {
    Sqlite,
    Postgres,
}

/// The store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// `sqlite` (the default) or `postgres` (the default when a URL is given).
    pub(crate) kind: Option<StoreKind>,
    /// PostgreSQL: `postgres://user:password@host:port/database?sslmode=require` (or libpq's
    /// `key=value` form); `sslmode` other than `disable` uses TLS, the server's certificate
    /// checked against the system's roots and `ca_file`.
    pub(crate) url: Option<String>,
    /// A file holding the URL (a mounted Secret), read at start; instead of `url`.
    pub(crate) url_file: Option<PathBuf>,
    /// PEM certificates trusted for the PostgreSQL server, besides the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// SQLite: the bound on the WAL, in bytes (default 256 MiB, at least 1 MiB).
    pub(crate) wal_max_bytes: Option<u64>,
}

impl StoreSection {
    /// The store's kind, as given or as the URL implies.
    pub(crate) fn kind(&self) -> StoreKind {
        self.kind.unwrap_or(if self.url.is_some() {
            StoreKind::Postgres
        } else {
            StoreKind::Sqlite
        })
    }

    /// SQLite: the bound on the WAL, as given or the default.
    pub(crate) fn wal_max_bytes(&self) -> u64 {
        self.wal_max_bytes.unwrap_or(zen_store::WAL_MAX_BYTES)
    }
}

/// A rate: `rate` a second, up to `burst` at once (default: the rate); 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RateSection {
    pub(crate) rate: u32,
    pub(crate) burst: Option<u32>,
}

impl RateSection {
    fn rate(self) -> zen_server::limits::Rate {
        zen_server::limits::Rate {
            rate: self.rate,
            burst: self.burst.unwrap_or(self.rate),
        }
    }
}

/// Rate limits, each a token bucket; beyond them 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LimitsSection {
    /// Requests a second for each token (or client certificate).
    pub(crate) per_token: RateSection,
    /// Events a second ingested for each source (format).
    pub(crate) per_source: RateSection,
}

impl LimitsSection {
    pub(crate) fn limits(self) -> zen_server::limits::Limits {
        zen_server::limits::Limits {
            per_token: self.per_token.rate(),
            per_source: self.per_source.rate(),
        }
    }
}

/// Bounds on the listener's connections, which hostile clients meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ConnectionsSection {
    /// Open connections at most; beyond, 503 with `Retry-After` (over TLS, closed).
    pub(crate) max: usize,
    /// Time to send a request's headers (and the TLS handshake): slow-loris connections close.
    pub(crate) header_timeout: Human,
    /// Time to send a request's body: 408 beyond it.
    pub(crate) body_timeout: Human,
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        let d = zen_server::listen::Connections::default();
        ConnectionsSection {
            max: d.max,
            header_timeout: Human(d.header_timeout),
            body_timeout: Human(d.body_timeout),
        }
    }
}

/// HTTPS on the listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// The certificate chain (PEM), reloaded when it changes; with `key_file`.
    pub(crate) cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub(crate) key_file: Option<PathBuf>,
    /// CAs (PEM) client certificates are verified against: a request with a verified client
    /// certificate (and no bearer token) gets `client_scope`, named by the certificate's subject.
    pub(crate) client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate.
    pub(crate) require_client_cert: bool,
    /// What a verified client certificate may do: `ingest` (the webhooks, as the API server's
    /// audit webhook needs), `read` or `admin`.
    pub(crate) client_scope: String,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            require_client_cert: false,
            client_scope: "ingest".to_owned(),
        }
    }
}

impl TlsSection {
    /// The listener's TLS settings; none without a certificate.
    pub(crate) fn settings(&self) -> Result<Option<zen_server::tls::TlsSettings>> {
        let (cert_file, key_file) = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (None, None) => {
                if self.client_ca_file.is_some() || self.require_client_cert {
                    bail!("tls: client certificates need cert_file and key_file");
                }
                return Ok(None);
            }
            _ => bail!("tls: expected cert_file and key_file together, found one of them"),
        };
        if self.require_client_cert && self.client_ca_file.is_none() {
            bail!("tls.require_client_cert: needs client_ca_file");
        }
        let client_scope = match self.client_scope.as_str() {
            "ingest" => zen_server::auth::Scope::Ingest,
            "read" => zen_server::auth::Scope::Read,
            "admin" => zen_server::auth::Scope::Admin,
            other => bail!("tls.client_scope: expected ingest, read or admin, found {other:?}"),
        };
        Ok(Some(zen_server::tls::TlsSettings {
            cert_file,
            key_file,
            client_ca_file: self.client_ca_file.clone(),
            require_client_cert: self.require_client_cert,
            client_scope,
        }))
    }
}

/// Scoped bearer tokens, each file holding one a line: `NAME:SECRET`, or the secret alone
/// (named `<scope>-<line>`), at least 16 characters. `ingest`: the webhooks; `read`: the API,
/// the dashboard's data and `/metrics`; `admin`: everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TokensSection {
    pub(crate) ingest_file: Option<PathBuf>,
    pub(crate) read_file: Option<PathBuf>,
    pub(crate) admin_file: Option<PathBuf>,
}

/// Everything the daemon can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DaemonConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    /// Where Observations are kept.
    pub(crate) store: StoreSection,
    pub(crate) log_format: LogFormat,
    /// A bearer token of scope `admin` (named `token`); with none of `tokens` either, the
    /// daemon is open, and listens beyond loopback only with `insecure_no_auth`.
    pub(crate) token: Option<String>,
    /// A file holding the token (a mounted Secret), read at start; instead of `token`.
    pub(crate) token_file: Option<PathBuf>,
    /// Scoped tokens, from files.
    pub(crate) tokens: TokensSection,
    /// Listen beyond loopback without any token (`--insecure-no-auth`).
    pub(crate) insecure_no_auth: bool,
    /// HTTPS (`--tls-cert`, `--tls-key`), and client certificates.
    pub(crate) tls: TlsSection,
    /// Rate limits per token and per source.
    pub(crate) limits: LimitsSection,
    /// Bounds on connections.
    pub(crate) connections: ConnectionsSection,
    /// Every token, read at load: `token` and the files of `tokens`.
    #[serde(skip)]
    pub(crate) resolved_tokens: zen_server::auth::Tokens,
    pub(crate) body_limit: usize,
    /// The nice value of the threads that answer HTTP (0–19; 0: the pipeline's own). Work
    /// already accepted goes first: when the cores are short, requests are taken in more slowly
    /// instead of being read in full and then refused with 429 (docs/benchmarks.md, "End to end").
    pub(crate) intake_nice: i32,
    /// How long a request's events wait for room when the pipeline's queue is full, before the
    /// request is refused with 429 (0: refused at once). Waiting slows a client to the
    /// pipeline's pace, and what it sent is kept rather than read for nothing.
    pub(crate) queue_wait: Human,
    /// The default of `?ack=`: `enqueue` (202 once queued) or `commit` (200 once stored).
    pub(crate) ack: AckMode,
    /// Observations last received (written, or seen again) longer ago are purged; their own
    /// time does not count.
    pub(crate) retention: Human,
    pub(crate) purge_interval: Human,
    /// How long SIGTERM waits for the queues to drain.
    pub(crate) grace_period: Human,
    /// Where Observations go, in order: the first is the one acknowledgements wait for (and the
    /// pipeline's accounting counts); the others are written beside it.
    pub(crate) sinks: Vec<SinkKind>,
    pub(crate) jsonl: JsonlSection,
    /// Files followed as sources (`--tail FORMAT:PATH`, repeatable).
    pub(crate) tail: Vec<TailSpec>,
    pub(crate) pipeline: PipelineSection,
    pub(crate) filter: zen_filter::FilterConfig,
    pub(crate) sources: NormalizeConfig,
    pub(crate) collect: CollectSection,
    pub(crate) alerting: AlertingSection,
    pub(crate) advisor: AdvisorSection,
    pub(crate) kube: KubeSection,
}

/// Kubernetes mode: the report watchers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KubeSection {
    /// On (`--kube`), off, or — unset — on when the daemon runs in a cluster.
    pub(crate) enabled: Option<bool>,
    /// The report kinds watched, as `plural.group` (or the plural alone); every kind by default.
    pub(crate) reports: Vec<String>,
    /// The longest wait between tries while a kind's CRD is missing or the API server fails.
    pub(crate) retry_max: Human,
    /// Run the report watchers only on the replica that holds the `zen-watcher` Lease.
    pub(crate) leader_election: bool,
    /// The Lease's namespace; by default the daemon's own (its service account's, or the
    /// kubeconfig context's).
    pub(crate) lease_namespace: Option<String>,
    /// The `kubernetes` sink's `Observation` resources.
    pub(crate) observations: ObservationsSection,
    /// Read sources' filters and dedup windows from `SourcePolicy` resources in the daemon's
    /// namespace, laid over this file's.
    pub(crate) policies: bool,
    /// How long the start waits for the policies to be listed.
    pub(crate) policy_sync_timeout: Human,
}

/// How `Observation` resources are written (the `kubernetes` sink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ObservationsSection {
    /// Where findings without a namespace go; by default the daemon's own.
    pub(crate) namespace: Option<String>,
    /// Calls to the API server a second, on average.
    pub(crate) qps: f64,
    /// Calls at once after a quiet spell.
    pub(crate) burst: u32,
    /// `ttlSecondsAfterCreation` of each resource (none: kept until deleted), and the TTL of
    /// those written without one.
    pub(crate) ttl: Option<Human>,
    /// How often the leader deletes what outlived its TTL.
    pub(crate) expire_every: Human,
}

impl Default for ObservationsSection {
    fn default() -> Self {
        let d = zen_kube::ObservationSettings::new("");
        ObservationsSection {
            namespace: None,
            qps: d.qps,
            burst: d.burst,
            ttl: None,
            expire_every: Human(Duration::from_secs(60)),
        }
    }
}

impl ObservationsSection {
    pub(crate) fn settings(&self, own_namespace: &str) -> zen_kube::ObservationSettings {
        zen_kube::ObservationSettings {
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| own_namespace.to_owned()),
            qps: self.qps,
            burst: self.burst,
            ttl: self.ttl.map(|t| t.0),
        }
    }

    pub(crate) fn expiry(&self) -> zen_kube::ExpirySettings {
        zen_kube::ExpirySettings {
            default_ttl: self.ttl.map(|t| t.0),
            every: self.expire_every.0,
            qps: self.qps,
            burst: self.burst,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.expire_every.0 < Duration::from_secs(1) {
            bail!(
                "kube.observations.expire_every: expected at least 1s, found {}",
                self.expire_every
            );
        }
        if !(self.qps > 0.0 && self.qps <= 10_000.0) {
            bail!(
                "kube.observations.qps: expected more than 0 and at most 10000, found {}",
                self.qps
            );
        }
        if self.burst == 0 {
            bail!("kube.observations.burst: expected at least 1, found 0");
        }
        if self.ttl.is_some_and(|t| t.0 < Duration::from_secs(1)) {
            bail!("kube.observations.ttl: expected at least 1s");
        }
        Ok(())
    }
}

impl Default for KubeSection {
    fn default() -> Self {
        KubeSection {
            enabled: None,
            reports: Vec::new(),
            retry_max: Human(Duration::from_secs(30)),
            leader_election: true,
            lease_namespace: None,
            observations: ObservationsSection::default(),
            policies: true,
            policy_sync_timeout: Human(Duration::from_secs(10)),
        }
    }
}

impl KubeSection {
    /// Whether Kubernetes mode is on: as configured, else when running in a cluster.
    pub(crate) fn active(&self) -> bool {
        self.enabled
            .unwrap_or_else(|| std::env::var_os("KUBERNETES_SERVICE_HOST").is_some())
    }

    pub(crate) fn settings(&self, queue_wait: Duration) -> Result<zen_kube::WatchSettings> {
        let kinds = if self.reports.is_empty() {
            zen_kube::REPORT_KINDS.iter().collect()
        } else {
            self.reports
                .iter()
                .map(|name| {
                    zen_kube::find(name).with_context(|| {
                        let known: Vec<String> = zen_kube::REPORT_KINDS
                            .iter()
                            .map(|k| k.resource())
                            .collect();
                        format!(
                            "kube.reports: unknown report kind {name:?}; expected one of {}",
                            known.join(", ")
                        )
                    })
                })
                .collect::<Result<_>>()?
        };
        self.observations.validate()?;
        if self.retry_max.0 < Duration::from_secs(1) {
            bail!(
                "kube.retry_max: expected at least 1s, found {}",
                self.retry_max
            );
        }
        Ok(zen_kube::WatchSettings {
            kinds,
            retry_max: self.retry_max.0,
            queue_wait: queue_wait.max(Duration::from_millis(100)),
        })
    }
}

/// The advisor, and what it may change by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AdvisorSection {
    /// How often it looks: at least 1s.
    pub(crate) interval: Human,
    /// How much history a forecast needs before it says anything.
    pub(crate) forecast_after: Human,
    /// The settings it may move as its recommendations say (`batch_age`, `batch_size`,
    /// `queue_wait`); none by default.
    pub(crate) auto_apply: Vec<zen_advisor::Knob>,
    /// How long a change runs before it is judged (kept or reverted).
    pub(crate) settle: Human,
    /// How long a setting is left alone after a change was reverted or undone.
    pub(crate) hold: Human,
    /// The bounds it moves `pipeline.max_batch_age` within.
    pub(crate) batch_age: [Human; 2],
    /// The bounds it moves `pipeline.max_batch_size` within.
    pub(crate) batch_size: [usize; 2],
    /// The bounds it moves `queue_wait` within.
    pub(crate) queue_wait: [Human; 2],
}

impl Default for AdvisorSection {
    fn default() -> Self {
        AdvisorSection {
            interval: Human(Duration::from_secs(10)),
            forecast_after: Human(Duration::from_secs(1_800)),
            auto_apply: Vec::new(),
            settle: Human(Duration::from_secs(120)),
            hold: Human(Duration::from_secs(1_800)),
            batch_age: [
                Human(Duration::from_millis(5)),
                Human(Duration::from_secs(1)),
            ],
            batch_size: [1, 1_000],
            queue_wait: [Human(Duration::ZERO), Human(Duration::from_secs(2))],
        }
    }
}

impl AdvisorSection {
    /// The tuner, with the allowed knobs and their bounds.
    pub(crate) fn tuner(&self) -> zen_advisor::Tuner {
        let bounds = |k| match k {
            zen_advisor::Knob::BatchAge => zen_advisor::Bounds {
                min: self.batch_age[0].0.as_secs_f64(),
                max: self.batch_age[1].0.as_secs_f64(),
            },
            zen_advisor::Knob::BatchSize => zen_advisor::Bounds {
                min: self.batch_size[0] as f64,
                max: self.batch_size[1] as f64,
            },
            zen_advisor::Knob::QueueWait => zen_advisor::Bounds {
                min: self.queue_wait[0].0.as_secs_f64(),
                max: self.queue_wait[1].0.as_secs_f64(),
            },
        };
        zen_advisor::Tuner::new(
            self.auto_apply.iter().map(|k| (*k, bounds(*k))).collect(),
            self.settle.0.as_secs() as i64,
            self.hold.0.as_secs() as i64,
        )
    }

    fn validate(&self) -> Result<()> {
        if self.interval.0 < Duration::from_secs(1) {
            bail!(
                "advisor.interval: expected at least 1s, found {}",
                self.interval
            );
        }
        if self.batch_age[0].0 > self.batch_age[1].0 || self.batch_size[0] > self.batch_size[1] {
            bail!("advisor.batch_age, advisor.batch_size: expected [lowest, highest]");
        }
        if self.queue_wait[0].0 > self.queue_wait[1].0
            || self.queue_wait[1].0 > Duration::from_secs(10)
        {
            bail!("advisor.queue_wait: expected [lowest, highest], at most 10s");
        }
        if self.batch_size[0] == 0 {
            bail!("advisor.batch_size: expected at least 1 as the lowest");
        }
        Ok(())
    }
}

/// SLO evaluation and alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AlertingSection {
    /// Evaluate SLOs and alert rules in the daemon (the generated Prometheus rules do the same
    /// in Prometheus either way).
    pub(crate) enabled: bool,
    /// How often: at least 1s.
    pub(crate) interval: Human,
    /// Alertmanager base URLs (`http://alertmanager:9093`).
    pub(crate) alertmanagers: Vec<String>,
    /// A URL that receives each batch of alerts as JSON (Alertmanager's webhook shape).
    pub(crate) webhook: Option<String>,
    /// Firing alerts are sent again this often.
    pub(crate) resend_every: Human,
    /// The daemon's URL as receivers should link to it; default `http://<listen>`.
    pub(crate) external_url: Option<String>,
    /// Changes to the shipped rules, by name: `threshold`, `for`, `keep_firing_for`, `severity`.
    pub(crate) rules: BTreeMap<String, zen_slo::RuleChange>,
}

impl Default for AlertingSection {
    fn default() -> Self {
        AlertingSection {
            enabled: true,
            interval: Human(Duration::from_secs(10)),
            alertmanagers: Vec::new(),
            webhook: None,
            resend_every: Human(Duration::from_secs(60)),
            external_url: None,
            rules: BTreeMap::new(),
        }
    }
}

impl AlertingSection {
    /// Where alerts go and how often, `external_url` standing in for an unset `external_url`.
    pub(crate) fn settings(&self, external_url: String) -> zen_alerting::AlertingConfig {
        zen_alerting::AlertingConfig {
            interval: self.interval.0,
            alertmanagers: self.alertmanagers.clone(),
            webhook: self.webhook.clone(),
            resend_every: self.resend_every.0,
            external_url: self.external_url.clone().unwrap_or(external_url),
        }
    }

    /// The evaluator, with the shipped spec checked against the metric catalog and the
    /// configured rule changes applied.
    pub(crate) fn engine(&self) -> Result<zen_slo::Engine> {
        let spec = zen_slo::defaults::spec();
        spec.validate(zen_export::catalog::buckets)
            .context("the shipped SLOs")?;
        let mut engine = zen_slo::Engine::new(spec).context("the shipped SLOs")?;
        let changes: Vec<_> = self.rules.clone().into_iter().collect();
        engine.change_rules(&changes).context("alerting.rules")?;
        Ok(engine)
    }
}

/// The host and container collectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CollectSection {
    /// Collect at all (`node_*`, `container_*` and the daemon's own usage); the collectors
    /// one by one are under `collectors`.
    pub(crate) host: bool,
    /// How often the per-second readers run; at least 100ms.
    pub(crate) interval: Human,
    /// Where the host's `/proc` is (`/host/proc` in a container).
    pub(crate) proc_root: PathBuf,
    /// Where the host's `/sys` is (`/host/sys` in a container).
    pub(crate) sys_root: PathBuf,
    /// Where the host's root filesystem is, for filesystem sizes (`/host/root` in a container).
    pub(crate) rootfs: PathBuf,
    /// Where the cgroup hierarchy is: containers, and the daemon's own limits.
    pub(crate) cgroup_root: PathBuf,
    /// Block devices left out (a regular expression; partitions, loop and RAM devices).
    pub(crate) exclude_disks: String,
    /// Interfaces left out (a regular expression; container veth pairs).
    pub(crate) exclude_interfaces: String,
    /// Mount points left out of filesystem sizes (a regular expression).
    pub(crate) exclude_mountpoints: String,
    /// Filesystem types left out (a regular expression; kernel and pseudo filesystems).
    pub(crate) exclude_fstypes: String,
    /// How often filesystems are measured: 10s to 60s.
    pub(crate) filesystem_interval: Human,
    /// How long one filesystem may take to answer before it is reported as failing.
    pub(crate) filesystem_timeout: Human,
    /// Containers read at most; more are counted as skipped.
    pub(crate) container_limit: usize,
    /// Each collector on or off (`netstat: false`; `processes: true` for the top processes).
    pub(crate) collectors: zen_collect::Collectors,
}

impl Default for CollectSection {
    fn default() -> Self {
        use zen_collect::filesystem::FsExcludes;
        use zen_collect::host::Excludes;
        let roots = zen_collect::Roots::default();
        CollectSection {
            host: true,
            interval: Human(Duration::from_secs(1)),
            proc_root: roots.proc,
            sys_root: roots.sys,
            rootfs: roots.rootfs,
            cgroup_root: roots.cgroup,
            exclude_disks: Excludes::DEFAULT_DISKS.to_owned(),
            exclude_interfaces: Excludes::DEFAULT_INTERFACES.to_owned(),
            exclude_mountpoints: FsExcludes::DEFAULT_MOUNTPOINTS.to_owned(),
            exclude_fstypes: FsExcludes::DEFAULT_FSTYPES.to_owned(),
            filesystem_interval: Human(Duration::from_secs(30)),
            filesystem_timeout: Human(Duration::from_secs(5)),
            container_limit: 1000,
            collectors: zen_collect::Collectors::default(),
        }
    }
}

impl CollectSection {
    /// The collectors' settings, patterns compiled and ranges checked.
    pub(crate) fn settings(&self) -> Result<zen_collect::collection::Settings> {
        let mut s = zen_collect::collection::Settings::new(zen_collect::Roots {
            proc: self.proc_root.clone(),
            sys: self.sys_root.clone(),
            rootfs: self.rootfs.clone(),
            cgroup: self.cgroup_root.clone(),
        })
        .context("collect: the default patterns")?;
        s.excludes =
            zen_collect::host::Excludes::new(&self.exclude_disks, &self.exclude_interfaces)
                .context("collect.exclude_disks / collect.exclude_interfaces")?;
        s.fs_excludes = zen_collect::filesystem::FsExcludes::new(
            &self.exclude_mountpoints,
            &self.exclude_fstypes,
        )
        .context("collect.exclude_mountpoints / collect.exclude_fstypes")?;
        s.interval = self.interval.0;
        s.filesystem_interval = self.filesystem_interval.0;
        s.filesystem_timeout = self.filesystem_timeout.0;
        s.container_limit = self.container_limit;
        s.collectors = self.collectors;
        s.validate().map_err(|e| anyhow::anyhow!("collect.{e}"))?;
        Ok(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PipelineSection {
    pub(crate) queue_capacity: usize,
    pub(crate) order: zen_pipeline::ProcessingOrder,
    pub(crate) cache_enabled: bool,
    pub(crate) cache_ttl: Human,
    pub(crate) batch_enabled: bool,
    pub(crate) max_batch_size: usize,
    pub(crate) max_batch_age: Human,
    pub(crate) dedup_window: Human,
    pub(crate) dedup_windows: BTreeMap<String, Human>,
    pub(crate) dedup_max_entries: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        let p = zen_pipeline::PipelineConfig::default();
        PipelineSection {
            // Events, whatever the requests' sizes: as many as 100 requests of 100 events. Past
            // that, a request waits for room (`queue_wait`), then is refused with 429: memory
            // stays bounded. With requests waiting, a larger queue only held more: flat out over
            // 2,000,000 events, 25,000 peaked at 98.6-100.3 MB and settled 306,000-316,000
            // events/s, 10,000 at 76.9-82.6 MB and 333,000-335,000 (docs/benchmarks.md).
            queue_capacity: 10_000,
            order: zen_pipeline::ProcessingOrder::Auto,
            cache_enabled: p.cache.enabled,
            cache_ttl: Human(p.cache.ttl),
            batch_enabled: p.batch.enabled,
            max_batch_size: p.batch.batch.max_size,
            max_batch_age: Human(p.batch.batch.max_age),
            dedup_window: Human(p.dedup.window),
            dedup_windows: BTreeMap::new(),
            dedup_max_entries: p.dedup.max_entries,
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("zen-data"),
            store: StoreSection::default(),
            log_format: LogFormat::Text,
            token: None,
            token_file: None,
            tokens: TokensSection::default(),
            insecure_no_auth: false,
            tls: TlsSection::default(),
            limits: LimitsSection::default(),
            connections: ConnectionsSection::default(),
            resolved_tokens: zen_server::auth::Tokens::default(),
            body_limit: 16 << 20,
            // About half the pipeline threads' share of a busy core: flat out, batches of 100
            // settled 276,000-285,000 events/s against 197,000-201,000 at 0, single events
            // unchanged within the noise; the ack=commit p99 perhaps most of a millisecond worse
            // (a median of 5.75 ms against 4.96 over eleven runs, each side spread over 3-27 ms);
            // 5 and 10 cost single events or the tail more (docs/benchmarks.md, "End to end").
            intake_nice: 3,
            queue_wait: Human(Duration::from_millis(100)),
            ack: AckMode::Enqueue,
            retention: Human(Duration::from_secs(7 * 24 * 3600)),
            purge_interval: Human(Duration::from_secs(3600)),
            grace_period: Human(Duration::from_secs(30)),
            sinks: vec![SinkKind::Store],
            jsonl: JsonlSection::default(),
            tail: Vec::new(),
            pipeline: PipelineSection::default(),
            filter: zen_filter::FilterConfig::default(),
            sources: NormalizeConfig::default(),
            collect: CollectSection::default(),
            alerting: AlertingSection::default(),
            advisor: AdvisorSection::default(),
            kube: KubeSection::default(),
        }
    }
}

/// How an environment variable's text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Kept as written: tokens, paths, addresses, durations, names.
    Text,
    /// Read as YAML: numbers and booleans.
    Typed,
}

/// The environment variables read, the configuration key each sets, and how it is read.
const ENVIRONMENT: &[(&str, &str, Kind)] = &[
    ("ZEN_LISTEN", "listen", Kind::Text),
    ("ZEN_DATA_DIR", "data_dir", Kind::Text),
    ("ZEN_STORE_KIND", "store.kind", Kind::Text),
    ("ZEN_STORE_URL", "store.url", Kind::Text),
    ("ZEN_STORE_URL_FILE", "store.url_file", Kind::Text),
    ("ZEN_STORE_CA_FILE", "store.ca_file", Kind::Text),
    (
        "ZEN_STORE_WAL_MAX_BYTES",
        "store.wal_max_bytes",
        Kind::Typed,
    ),
    ("ZEN_LOG_FORMAT", "log_format", Kind::Text),
    ("ZEN_TOKEN", "token", Kind::Text),
    ("ZEN_TOKEN_FILE", "token_file", Kind::Text),
    ("ZEN_INGEST_TOKEN_FILE", "tokens.ingest_file", Kind::Text),
    ("ZEN_READ_TOKEN_FILE", "tokens.read_file", Kind::Text),
    ("ZEN_ADMIN_TOKEN_FILE", "tokens.admin_file", Kind::Text),
    ("ZEN_INSECURE_NO_AUTH", "insecure_no_auth", Kind::Typed),
    ("ZEN_TLS_CERT_FILE", "tls.cert_file", Kind::Text),
    ("ZEN_TLS_KEY_FILE", "tls.key_file", Kind::Text),
    ("ZEN_TLS_CLIENT_CA_FILE", "tls.client_ca_file", Kind::Text),
    ("ZEN_BODY_LIMIT", "body_limit", Kind::Typed),
    ("ZEN_INTAKE_NICE", "intake_nice", Kind::Typed),
    ("ZEN_QUEUE_WAIT", "queue_wait", Kind::Text),
    ("ZEN_ACK", "ack", Kind::Text),
    ("ZEN_RETENTION", "retention", Kind::Text),
    ("ZEN_GRACE_PERIOD", "grace_period", Kind::Text),
    ("ZEN_SINKS", "sinks", Kind::Typed),
    ("ZEN_JSONL_PATH", "jsonl.path", Kind::Text),
    ("ZEN_QUEUE_CAPACITY", "pipeline.queue_capacity", Kind::Typed),
    ("ZEN_COLLECT_HOST", "collect.host", Kind::Typed),
    ("ZEN_COLLECT_INTERVAL", "collect.interval", Kind::Text),
    ("ZEN_PROC_ROOT", "collect.proc_root", Kind::Text),
    ("ZEN_SYS_ROOT", "collect.sys_root", Kind::Text),
    ("ZEN_ROOTFS", "collect.rootfs", Kind::Text),
    ("ZEN_CACHE_ENABLED", "pipeline.cache_enabled", Kind::Typed),
    ("ZEN_CACHE_TTL", "pipeline.cache_ttl", Kind::Text),
    ("ZEN_BATCH_ENABLED", "pipeline.batch_enabled", Kind::Typed),
    ("ZEN_MAX_BATCH_SIZE", "pipeline.max_batch_size", Kind::Typed),
    ("ZEN_MAX_BATCH_AGE", "pipeline.max_batch_age", Kind::Text),
    ("ZEN_DEDUP_WINDOW", "pipeline.dedup_window", Kind::Text),
    ("ZEN_ALERTING_ENABLED", "alerting.enabled", Kind::Typed),
    ("ZEN_ALERTING_INTERVAL", "alerting.interval", Kind::Text),
    ("ZEN_WEBHOOK_URL", "alerting.webhook", Kind::Text),
    ("ZEN_KUBE", "kube.enabled", Kind::Typed),
];

/// Variables of the `ZEN_` family that are not configuration (the test harness's).
const NOT_CONFIGURATION: &[&str] = &["ZEN_REQUIRE_EXTERNAL"];

/// Sets `key` (dotted) in a YAML tree to `value`: as written for text, read as YAML for
/// numbers and booleans (a token `12345` stays a string; `ZEN_MAX_BATCH_SIZE=20` is a number).
fn set(tree: &mut serde_yaml_ng::Value, key: &str, value: &str, kind: Kind) {
    let text = || serde_yaml_ng::Value::String(value.to_owned());
    let value = match kind {
        Kind::Text => text(),
        Kind::Typed => serde_yaml_ng::from_str(value).unwrap_or_else(|_| text()),
    };
    let mut at = tree;
    for part in key.split('.') {
        if !at.is_mapping() {
            *at = serde_yaml_ng::Value::Mapping(Default::default());
        }
        let map = at
            .as_mapping_mut()
            .unwrap_or_else(|| unreachable!("made a mapping above"));
        at = map.entry(part.into()).or_insert(serde_yaml_ng::Value::Null);
    }
    *at = value;
}

/// Reads the configuration: the file (if any), then `env` (name → value), then `overrides`
/// (dotted key → value, from flags).
pub(crate) fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(&str, String)],
) -> Result<(DaemonConfig, Vec<String>)> {
    let mut tree = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("reading {}", path.display()))?;
            if tree.is_null() {
                serde_yaml_ng::Value::Mapping(Default::default())
            } else {
                tree
            }
        }
        None => serde_yaml_ng::Value::Mapping(Default::default()),
    };
    let mut warnings = Vec::new();
    for (name, value) in env {
        if !name.starts_with("ZEN_") || NOT_CONFIGURATION.contains(&name.as_str()) {
            continue;
        }
        match ENVIRONMENT.iter().find(|(n, _, _)| *n == name) {
            Some((_, key, kind)) => set(&mut tree, key, &value, *kind),
            None => warnings.push(format!("ignoring unknown environment variable {name}")),
        }
    }
    // Flags set text: addresses, paths, names.
    for (key, value) in overrides {
        set(&mut tree, key, value, Kind::Text);
    }
    let mut config: DaemonConfig =
        serde_yaml_ng::from_value(tree).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(path) = &config.token_file {
        if config.token.is_some() {
            bail!("token and token_file: expected one of them, found both");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("token_file: reading {}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            bail!("token_file: {} is empty", path.display());
        }
        config.token = Some(token.to_owned());
    }
    if let Some(path) = &config.store.url_file {
        if config.store.url.is_some() {
            bail!("store.url and store.url_file: expected one of them, found both");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("store.url_file: reading {}", path.display()))?;
        let url = text.trim();
        if url.is_empty() {
            bail!("store.url_file: {} is empty", path.display());
        }
        config.store.url = Some(url.to_owned());
    }
    config.resolved_tokens = read_tokens(&config)?;
    validate(&config)?;
    Ok((config, warnings))
}

/// `token` (scope admin) and the files of `tokens`.
fn read_tokens(c: &DaemonConfig) -> Result<zen_server::auth::Tokens> {
    use zen_server::auth::{Scope, Token, Tokens, parse_tokens};
    let mut all: Vec<Token> = c
        .token
        .iter()
        .map(|t| Token::new("token", Scope::Admin, t.clone()))
        .collect();
    let files = [
        (Scope::Ingest, &c.tokens.ingest_file),
        (Scope::Read, &c.tokens.read_file),
        (Scope::Admin, &c.tokens.admin_file),
    ];
    for (scope, file) in files {
        let Some(path) = file else { continue };
        let key = format!("tokens.{scope}_file");
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{key}: reading {}", path.display()))?;
        let tokens = parse_tokens(scope, &text)
            .map_err(|e| anyhow::anyhow!("{key}: {}: {e}", path.display()))?;
        if tokens.is_empty() {
            bail!("{key}: {} holds no token", path.display());
        }
        all.extend(tokens);
    }
    Tokens::new(all).map_err(|e| anyhow::anyhow!("tokens: {e}"))
}

/// What serde cannot check; each range by the crate that owns the setting.
fn validate(c: &DaemonConfig) -> Result<()> {
    zen_filter::Filter::compile(&c.filter).context("filter")?;
    zen_model::Normalizer::new(c.sources.clone()).context("sources")?;
    c.pipeline().validate().map_err(|e| {
        // The pipeline's field as this file's `pipeline` section names it.
        let key = match e.field {
            "batch.max_size" => "max_batch_size",
            field => field,
        };
        anyhow::anyhow!("pipeline.{key}: {}", e.problem)
    })?;
    c.server().validate()?;
    c.tls.settings()?;
    c.collect.settings()?;
    c.alerting.engine()?;
    c.advisor.validate()?;
    c.kube.settings(c.queue_wait.0)?;
    if c.sinks.contains(&SinkKind::Kubernetes) && c.kube.enabled == Some(false) {
        bail!("sinks: kubernetes needs Kubernetes mode, and kube.enabled is false");
    }
    c.alerting
        .settings(String::new())
        .validate()
        .map_err(|e| anyhow::anyhow!("alerting.{e}"))?;
    // The intake threads are the binary's own: it starts them.
    if !(0..=19).contains(&c.intake_nice) {
        bail!("intake_nice: expected 0 to 19, found {}", c.intake_nice);
    }
    match (c.store.kind(), &c.store.url) {
        (StoreKind::Postgres, None) => {
            bail!("store: kind postgres needs url (or url_file, or ZEN_STORE_URL)")
        }
        (StoreKind::Sqlite, Some(_)) => {
            bail!("store: a url is for kind postgres; kind is sqlite (the file in data_dir)")
        }
        _ => {}
    }
    if c.store.wal_max_bytes() < 1 << 20 {
        bail!(
            "store.wal_max_bytes: expected at least 1048576 (1 MiB), found {}",
            c.store.wal_max_bytes()
        );
    }
    if c.sinks.is_empty() {
        bail!("sinks: expected at least one of store, jsonl, kubernetes, found none");
    }
    if c.sinks
        .iter()
        .enumerate()
        .any(|(i, s)| c.sinks[..i].contains(s))
    {
        bail!("sinks: each sink at most once, found {:?}", c.sinks);
    }
    Ok(())
}

impl DaemonConfig {
    /// The HTTP side's settings.
    pub(crate) fn server(&self) -> zen_server::ServerConfig {
        zen_server::ServerConfig {
            tokens: self.resolved_tokens.clone(),
            client_certs: self.tls.client_ca_file.is_some(),
            limits: self.limits.limits(),
            connections: zen_server::listen::Connections {
                max: self.connections.max,
                header_timeout: self.connections.header_timeout.0,
                body_timeout: self.connections.body_timeout.0,
            },
            body_limit: self.body_limit,
            ack_commit: self.ack == AckMode::Commit,
            queue_wait: self.queue_wait.0,
            ..zen_server::ServerConfig::default()
        }
    }

    /// Where the JSON-lines sink writes.
    pub(crate) fn jsonl_target(&self) -> zen_store::JsonlTarget {
        let path = self
            .jsonl
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("observations.jsonl"));
        if path.as_os_str() == "-" {
            return zen_store::JsonlTarget::Stdout;
        }
        zen_store::JsonlTarget::File {
            path,
            max_bytes: self.jsonl.max_bytes,
            keep: self.jsonl.keep,
        }
    }

    /// The PostgreSQL store's settings, when that is the store.
    pub(crate) fn postgres(&self) -> Option<zen_store::PostgresSettings> {
        let url = self.store.url.clone()?;
        (self.store.kind() == StoreKind::Postgres).then(|| zen_store::PostgresSettings {
            url,
            ca_file: self.store.ca_file.clone(),
            dedup_window: self.pipeline.dedup_window.0,
            remembered: self.pipeline.dedup_max_entries,
        })
    }

    pub(crate) fn pipeline(&self) -> zen_pipeline::PipelineConfig {
        let p = &self.pipeline;
        zen_pipeline::PipelineConfig {
            queue_capacity: p.queue_capacity,
            order: p.order,
            cache: zen_pipeline::CacheSettings {
                enabled: p.cache_enabled,
                ttl: p.cache_ttl.0,
            },
            batch: zen_pipeline::BatchSettings {
                enabled: p.batch_enabled,
                batch: zen_batch::BatchConfig {
                    max_size: p.max_batch_size,
                    max_age: p.max_batch_age.0,
                    ..zen_batch::BatchConfig::default()
                },
            },
            dedup: zen_dedup::DedupConfig {
                window: p.dedup_window.0,
                source_windows: p
                    .dedup_windows
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0))
                    .collect(),
                max_entries: p.dedup_max_entries,
            },
            filter: self.filter.clone(),
            // A store error that may pass (locked, disk full, read-only) is retried until it
            // does: the queues fill behind it and ingestion answers 429 — backpressure, not
            // loss. Only errors that cannot pass, and the shutdown deadline, dead-letter.
            retry: zen_pipeline::RetryPolicy {
                max_attempts: u32::MAX,
                ..zen_pipeline::RetryPolicy::default()
            },
            ..zen_pipeline::PipelineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn scoped_tokens_are_read_from_their_files_with_the_line_at_fault() {
        use zen_server::auth::Scope;
        let dir = tempfile::tempdir().unwrap();
        let ingest = dir.path().join("ingest");
        let admin = dir.path().join("admin");
        std::fs::write(
            &ingest,
            "# webhooks\nfalco:0123456789abcdef\nfedcba9876543210\n",
        )
        .unwrap();
        std::fs::write(&admin, "ops:aaaaaaaaaaaaaaaaaaaa\n").unwrap();
        let (i, a) = (ingest.to_str().unwrap(), admin.to_str().unwrap());
        let (c, _) = load(
            None,
            env(&[
                ("ZEN_INGEST_TOKEN_FILE", i),
                ("ZEN_ADMIN_TOKEN_FILE", a),
                ("ZEN_TOKEN", "legacy"),
            ]),
            &[],
        )
        .unwrap();
        let t = &c.resolved_tokens;
        assert_eq!(t.find(b"0123456789abcdef").unwrap().name, "falco");
        assert_eq!(t.find(b"fedcba9876543210").unwrap().name, "ingest-3");
        assert_eq!(t.find(b"aaaaaaaaaaaaaaaaaaaa").unwrap().scope, Scope::Admin);
        assert_eq!(t.find(b"legacy").unwrap().scope, Scope::Admin);
        assert_eq!(c.server().tokens, c.resolved_tokens);
        // Never printed.
        let printed = serde_yaml_ng::to_string(&c).unwrap();
        assert!(!printed.contains("0123456789abcdef"), "{printed}");

        std::fs::write(&admin, "ops:short\n").unwrap();
        let e = load(None, env(&[("ZEN_ADMIN_TOKEN_FILE", a)]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("tokens.admin_file: ")
                && e.contains("line 1")
                && e.contains("at least 16"),
            "{e}"
        );
        std::fs::write(&admin, "0123456789abcdef\n").unwrap();
        let e = load(
            None,
            env(&[("ZEN_ADMIN_TOKEN_FILE", a), ("ZEN_INGEST_TOKEN_FILE", i)]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("same secret"), "{e}");
        std::fs::write(&admin, "# nothing\n").unwrap();
        let e = load(None, env(&[("ZEN_ADMIN_TOKEN_FILE", a)]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no token"), "{e}");
    }

    #[test]
    fn the_token_is_read_from_its_file_and_never_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let file = path.to_str().unwrap();
        let (c, _) = load(None, env(&[("ZEN_TOKEN_FILE", file)]), &[]).unwrap();
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        let both = load(
            None,
            env(&[("ZEN_TOKEN_FILE", file), ("ZEN_TOKEN", "x")]),
            &[],
        );
        assert!(both.unwrap_err().to_string().contains("found both"));
        std::fs::write(&path, "\n").unwrap();
        let empty = load(None, env(&[("ZEN_TOKEN_FILE", file)]), &[]);
        assert!(empty.unwrap_err().to_string().contains("is empty"));
    }

    #[test]
    fn durations_are_human() {
        assert_eq!(Human::parse("100ms").unwrap().0, Duration::from_millis(100));
        assert_eq!(Human::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(
            Human::parse("7d").unwrap().0,
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(Human::parse("1h 30m").unwrap().to_string(), "1h 30m");
        assert!(Human::parse("-5s").unwrap_err().contains("positive"));
        assert!(
            Human::parse("soon")
                .unwrap_err()
                .starts_with("expected a duration such as 100ms, 5m or 7d, found \"soon\"")
        );
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zen.yaml");
        std::fs::write(&file, "listen: 127.0.0.1:9000\npipeline:\n  max_batch_size: 50\n  max_batch_age: 250ms\nretention: 3d\n").unwrap();
        let (c, warnings) = load(
            Some(&file),
            env(&[
                ("ZEN_MAX_BATCH_SIZE", "20"),
                ("ZEN_CACHE_ENABLED", "false"),
                ("ZEN_REQUIRE_EXTERNAL", "1"),
                ("ZEN_NOPE", "x"),
                ("HOME", "/"),
            ]),
            &[("listen", "127.0.0.1:9100".to_owned())],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9100".parse().unwrap(), "flags win");
        assert_eq!(c.pipeline.max_batch_size, 20, "environment beats the file");
        assert_eq!(
            c.pipeline.max_batch_age.0,
            Duration::from_millis(250),
            "the file beats defaults"
        );
        assert!(!c.pipeline.cache_enabled);
        assert_eq!(c.retention.0, Duration::from_secs(3 * 86400));
        assert_eq!(c.grace_period.0, Duration::from_secs(30), "defaults stand");
        assert_eq!(warnings, ["ignoring unknown environment variable ZEN_NOPE"]);
        assert_eq!(c.pipeline().batch.batch.max_size, 20);
        assert_eq!(
            c.pipeline().retry.max_attempts,
            u32::MAX,
            "store errors back up, never drop"
        );
    }

    #[test]
    fn the_store_tls_and_limits_sections() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        let with = |yaml: &str, env: &[(&str, &str)]| {
            std::fs::write(&file, yaml).unwrap();
            let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            load(Some(&file), env.collect::<Vec<_>>(), &[])
        };
        // SQLite unless a URL says otherwise; the URL from the environment or a file.
        let (c, _) = with("", &[]).unwrap();
        assert_eq!(c.store.kind(), StoreKind::Sqlite);
        assert!(c.postgres().is_none());
        let url = "postgres://zen:s3cret@db:5432/zen?sslmode=require";
        let (c, _) = with("", &[("ZEN_STORE_URL", url)]).unwrap();
        let pg = c.postgres().unwrap();
        assert_eq!(
            (pg.url.as_str(), pg.dedup_window),
            (url, Duration::from_secs(60))
        );
        let secret = dir.path().join("url");
        std::fs::write(&secret, format!("{url}\n")).unwrap();
        let (c, _) = with(&format!("store:\n  url_file: {}\n", secret.display()), &[]).unwrap();
        assert_eq!(c.postgres().unwrap().url, url);
        let err = |yaml: &str, env: &[(&str, &str)]| format!("{:#}", with(yaml, env).unwrap_err());
        assert!(err("store:\n  kind: postgres\n", &[]).contains("needs url"));
        assert!(
            err("store:\n  kind: sqlite\n", &[("ZEN_STORE_URL", url)]).contains("kind is sqlite")
        );
        let both = format!("store:\n  url: {url}\n  url_file: {}\n", secret.display());
        assert!(err(&both, &[]).contains("found both"));
        // The WAL's bound: 256 MiB unless given, at least 1 MiB.
        let (c, _) = with("", &[]).unwrap();
        assert_eq!(c.store.wal_max_bytes(), 256 << 20);
        let (c, _) = with("", &[("ZEN_STORE_WAL_MAX_BYTES", "67108864")]).unwrap();
        assert_eq!(c.store.wal_max_bytes(), 64 << 20);
        assert!(err("store:\n  wal_max_bytes: 4096\n", &[]).contains("at least 1048576"));
        // TLS: the pair together; client certificates need it; a scope by name.
        assert!(err("tls:\n  cert_file: a.crt\n", &[]).contains("together"));
        assert!(err("tls:\n  client_ca_file: ca.crt\n", &[]).contains("cert_file and key_file"));
        let scoped = "tls:\n  cert_file: a\n  key_file: b\n  client_scope: root\n";
        assert!(err(scoped, &[]).contains("expected ingest, read or admin"));
        let required = "tls:\n  cert_file: a\n  key_file: b\n  require_client_cert: true\n";
        assert!(err(required, &[]).contains("needs client_ca_file"));
        // Limits: the burst is the rate unless given.
        let (c, _) = with(
            "limits:\n  per_source: {rate: 500}\n  per_token: {rate: 10, burst: 40}\n",
            &[],
        )
        .unwrap();
        let l = c.server().limits;
        assert_eq!((l.per_source.rate, l.per_source.burst), (500, 500));
        assert_eq!((l.per_token.rate, l.per_token.burst), (10, 40));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let check = |yaml: &str| {
            let file = dir.path().join("c.yaml");
            std::fs::write(&file, yaml).unwrap();
            format!("{:#}", load(Some(&file), Vec::new(), &[]).unwrap_err())
        };
        assert!(
            check("lisen: 1.2.3.4:5\n").contains("unknown field `lisen`"),
            "{}",
            check("lisen: 1.2.3.4:5\n")
        );
        assert!(
            check("pipeline:\n  max_batch_sise: 3\n").contains("unknown field `max_batch_sise`")
        );
        assert!(check("grace_period: soon\n").contains("expected a duration such as 100ms"));
        let rule = check("alerting:\n  rules:\n    ZenWatcherNope: {threshold: 1}\n");
        assert!(
            rule.contains("alerting.rules") && rule.contains("rule ZenWatcherNope: no such rule"),
            "{rule}"
        );
        assert!(
            check("alerting:\n  interval: 100ms\n")
                .contains("alerting.interval: expected at least 1s")
        );
        let knob = check("advisor:\n  auto_apply: [batch_colour]\n");
        assert!(knob.contains("unknown variant `batch_colour`"), "{knob}");
        assert!(check("advisor:\n  batch_age: [1s, 5ms]\n").contains("expected [lowest, highest]"));
        assert!(check("advisor:\n  interval: 10ms\n").contains("advisor.interval"));
        assert!(
            check("filter:\n  global:\n    expression: 'severity >'\n")
                .contains("line 1, column 11: expected a value")
        );
        assert!(
            check("pipeline:\n  max_batch_size: 0\n")
                .contains("pipeline.max_batch_size: expected at least 1")
        );
        assert!(check("intake_nice: 20\n").contains("intake_nice: expected 0 to 19, found 20"));
        assert!(check("queue_wait: 1m\n").contains("queue_wait: expected at most 10s, found 60s"));
        assert!(check("sinks: []\n").contains("sinks: expected at least one"));
        assert!(check("sinks: [jsonl, jsonl]\n").contains("sinks: each sink at most once"));
        assert!(check("sinks: [kafka]\n").contains("unknown variant `kafka`"));
        assert!(
            check("collect:\n  collectors:\n    netstats: false\n")
                .contains("unknown field `netstats`")
        );
        assert!(
            check("collect:\n  filesystem_interval: 5s\n")
                .contains("collect.filesystem_interval: expected 10s to 60s, found 5s")
        );
        assert!(
            check("kube:\n  reports: [vulnerabilityreports, podreports]\n").contains(
                "kube.reports: unknown report kind \"podreports\"; expected one of vulnerabilityreports.aquasecurity.github.io"
            )
        );
        assert!(
            check("kube:\n  retry_max: 100ms\n")
                .contains("kube.retry_max: expected at least 1s, found 100ms")
        );
        assert!(
            check("collect:\n  exclude_fstypes: '('\n")
                .contains("collect.exclude_mountpoints / collect.exclude_fstypes")
        );
        let err = format!(
            "{:#}",
            load(None, env(&[("ZEN_LISTEN", "not an address")]), &[]).unwrap_err()
        );
        assert!(err.contains("invalid socket address"), "{err}");
    }

    #[test]
    fn text_settings_stay_text_whatever_they_look_like() {
        let (c, _) = load(
            None,
            env(&[("ZEN_TOKEN", "12345"), ("ZEN_DATA_DIR", "true")]),
            &[("data_dir", "2024".to_owned())],
        )
        .unwrap();
        assert_eq!(c.token.as_deref(), Some("12345"));
        assert_eq!(c.data_dir, PathBuf::from("2024"));
    }

    #[test]
    fn the_printed_configuration_reads_back_the_same() {
        let c = DaemonConfig::default();
        let text = serde_yaml_ng::to_string(&c).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.yaml");
        std::fs::write(&file, text).unwrap();
        assert_eq!(load(Some(&file), Vec::new(), &[]).unwrap().0, c);
    }
}
