//! The PostgreSQL store, shared by replicas: the same concepts as SQLite's (Observations with
//! their counts, `observation_counts`, dead letters, tail positions, report findings, the audit
//! log), in a schema of its own.
//!
//! Replicas write at once, each with its own deduper, so a row is keyed by the finding's
//! fingerprint and the dedup window it was first received in (`window_start`, the configured
//! window's bucket of zen-watcher's clock): the same finding from two replicas in one window is
//! one row, by an upsert whose count is the sum. Ids come from an identity column, so they are
//! one sequence for every replica and keyset pages stay stable. A batch is one statement — one
//! round trip, its own transaction — and so is every other write.
//!
//! Connections are made from a `postgres://` URL (or `key=value` string) with rustls when
//! `sslmode` is not `disable`; the server's certificate is checked against the system's roots
//! and an optional CA file. The password is never logged: a store is named by
//! [`Target::describe`].

mod sink;

pub use sink::PostgresSink;

use std::str::FromStr;
use std::sync::Mutex;

use ::postgres::types::ToSql;
use ::postgres::{Client, NoTls};
use zen_sink::Findings;

use super::*;

/// Where the PostgreSQL store is and how the daemon uses it.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database?sslmode=…`, or libpq's `key=value` form.
    pub url: String,
    /// PEM certificates trusted besides the system's, for the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// The dedup window: replicas merge the same finding's first sightings in one bucket of it.
    pub dedup_window: std::time::Duration,
    /// Duplicate counts name a sighting by its sequence number; the sink remembers this many
    /// (at least the deduper's `max_entries`, so every count finds its row).
    pub remembered: usize,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .field("dedup_window", &self.dedup_window)
            .field("remembered", &self.remembered)
            .finish()
    }
}

/// A PostgreSQL server to connect to, TLS included.
pub(crate) struct Target {
    config: ::postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    describe: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Target {
    fn new(settings: &PostgresSettings) -> Result<Target, StoreError> {
        // rustls always checks the server's certificate and name: libpq's verify-ca and
        // verify-full are what `require` does here.
        let url = settings
            .url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config = ::postgres::Config::from_str(&url).map_err(|e| {
            // The parser's message names the option, never the value.
            StoreError::Config(format!("the PostgreSQL URL: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // A server that stops answering (a host gone, a cable pulled) fails the write, which is
        // retried, rather than holding it for the kernel's retransmission time (~15 min).
        config.tcp_user_timeout(std::time::Duration::from_secs(30));
        config.keepalives_idle(std::time::Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("zen-watcher");
        }
        let describe = describe(&config);
        let tls = match config.get_ssl_mode() {
            ::postgres::config::SslMode::Disable => None,
            _ => Some(tls(settings.ca_file.as_deref())?),
        };
        Ok(Target {
            config,
            tls,
            describe,
        })
    }

    pub(crate) fn connect(&self) -> Result<Client, ::postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }

    /// `user@host:port/database`: the store as logs and errors name it, without the password.
    pub(crate) fn describe(&self) -> &str {
        &self.describe
    }
}

fn describe(config: &::postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(::postgres::config::Host::Tcp(h)) => h.clone(),
        Some(::postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// rustls with the system's roots and those of `ca_file`.
fn tls(ca_file: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is left out, as every TLS client does.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| StoreError::Config(format!("the CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(StoreError::Config(format!(
                "the CA file {}: no certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| StoreError::Config(format!("the CA file {}: {e}", path.display())))?;
        }
    }
    // ring, as kube's client in this workspace; rustls' post-quantum key exchange would need
    // aws-lc-rs, a second crypto library and a C build.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Whether a PostgreSQL error may pass if tried again: the connection (lost, refused, the
/// server shutting down or starting), resources (disk full, out of memory, too many
/// connections), and a transaction that lost a conflict (deadlock, serialisation, lock timeout).
/// Data the server refuses is not.
pub(crate) fn retryable(e: &::postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection or the client, not the data.
        return true;
    };
    let code = code.code();
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57014" | "25006" | "58030"
        )
}

/// A PostgreSQL error as the pipeline sees it, counted.
pub(crate) fn sink_error(target: &Target, e: &::postgres::Error) -> SinkError {
    metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store")
        .increment(1);
    SinkError {
        message: format!("store {}: {}", target.describe(), full(e)),
        retryable: retryable(e),
    }
}

/// The error with its cause (the server's message, or the IO error).
pub(crate) fn full(e: &::postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Schema versions, applied in order under an advisory lock (replicas start together); the
/// table `zen_schema` says how many are in.
const MIGRATIONS: &[&str] = &[
    // v1: Observations keyed by fingerprint and window (replicas' upserts merge on it; the
    // sink numbers a batch's rows in arrival order, and writes them in key order), their
    // counts by source and severity kept by every write, dead letters, tail positions by host
    // and path, report findings and the audit log. Times are nanoseconds since the epoch. The
    // columns a duplicate count changes (count, last_seen, received_at) are in no index and
    // pages keep room, so the update is HOT (no index entry written); retention finds its
    // candidates by window, which never changes: a row is received in or after its window.
    "CREATE TABLE observations (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        fingerprint BYTEA NOT NULL,
        window_start BIGINT NOT NULL,
        source TEXT NOT NULL,
        category TEXT NOT NULL,
        severity SMALLINT NOT NULL,
        event_type TEXT NOT NULL,
        rule_id TEXT,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        resource_api_version TEXT,
        resource_kind TEXT,
        resource_name TEXT,
        resource_namespace TEXT,
        namespace TEXT,
        node TEXT,
        detected_at BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        count BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        labels TEXT NOT NULL,
        details TEXT NOT NULL,
        UNIQUE (fingerprint, window_start)
    ) WITH (fillfactor = 85);
    CREATE INDEX observations_window_start ON observations (window_start);
    CREATE INDEX observations_source ON observations (source, severity, id);
    CREATE INDEX observations_namespace ON observations (namespace, id);
    CREATE TABLE observation_counts (
        source TEXT NOT NULL,
        severity SMALLINT NOT NULL,
        observations BIGINT NOT NULL,
        occurrences BIGINT NOT NULL,
        PRIMARY KEY (source, severity)
    );
    CREATE TABLE dead_letters (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_at BIGINT NOT NULL,
        source TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        events BIGINT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE tail_positions (
        host TEXT NOT NULL,
        path TEXT NOT NULL,
        device BIGINT NOT NULL,
        inode BIGINT NOT NULL,
        byte_offset BIGINT NOT NULL,
        line BIGINT NOT NULL,
        PRIMARY KEY (host, path)
    );
    CREATE TABLE report_findings (
        fingerprint BYTEA PRIMARY KEY,
        report TEXT NOT NULL,
        resolved_at BIGINT
    );
    CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        token TEXT NOT NULL,
        action TEXT NOT NULL,
        status INTEGER NOT NULL
    );",
];

/// A key for `pg_advisory_xact_lock`: replicas migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7a65_6e2d_7761_7463; // "zen-watc"

fn migrate(target: &Target, client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS zen_schema (version INTEGER NOT NULL);"
    ))?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM zen_schema", &[])?
        .map(|r| r.try_get(0))
        .transpose()?;
    let version = match found {
        Some(v) => usize::try_from(v).unwrap_or(0),
        None => {
            tx.execute("INSERT INTO zen_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if version > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            store: target.describe().to_owned(),
            found: version as i64,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql)?;
        tx.execute("UPDATE zen_schema SET version = $1", &[&((i + 1) as i32)])?;
    }
    tx.commit()?;
    Ok(())
}

/// Opens the PostgreSQL store, migrating it as needed (one replica at a time).
pub fn open(settings: &PostgresSettings) -> Result<(Store, PostgresSink), StoreError> {
    let target = Arc::new(Target::new(settings)?);
    let connect_err = |source| StoreError::Connect {
        store: target.describe().to_owned(),
        source,
    };
    let mut client = target.connect().map_err(connect_err)?;
    migrate(&target, &mut client)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let store = Postgres {
        target: target.clone(),
        pool: Mutex::new(vec![client]),
        timings: Timings::new(),
        host,
    };
    let sink = PostgresSink::new(target, settings);
    Ok((Store(Backend::Postgres(store)), sink))
}

/// Reads, and the writes beside the sink's, on a small pool of connections.
pub(crate) struct Postgres {
    target: Arc<Target>,
    pool: Mutex<Vec<Client>>,
    timings: Timings,
    /// Tail positions are this host's files.
    host: String,
}

impl Postgres {
    pub(crate) fn describe(&self) -> &str {
        self.target.describe()
    }
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Parameters of one statement.
type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// What lists filter by, in PostgreSQL's words.
const POSTGRES: Dialect = Dialect {
    last_seen: "o.last_seen",
    like: "ILIKE",
    open: "NOT EXISTS (SELECT 1 FROM report_findings k
        WHERE k.fingerprint = o.fingerprint AND k.resolved_at IS NOT NULL)",
    resolved: "EXISTS (SELECT 1 FROM report_findings k
        WHERE k.fingerprint = o.fingerprint AND k.resolved_at IS NOT NULL)",
};

/// The columns [`columns`] reads.
const SELECT: &str = "SELECT o.id, o.fingerprint, o.source, o.category, o.severity, o.event_type,
    o.rule_id, o.title, o.message, o.resource_api_version, o.resource_kind, o.resource_name,
    o.resource_namespace, o.namespace, o.node, o.detected_at, o.first_seen, o.last_seen, o.count,
    o.labels, o.details,
    (SELECT k.resolved_at FROM report_findings k WHERE k.fingerprint = o.fingerprint)
    FROM observations o";

fn columns(r: &::postgres::Row) -> Result<Stored, StoreError> {
    Columns {
        id: r.try_get(0)?,
        fingerprint: r.try_get(1)?,
        source: r.try_get(2)?,
        category: r.try_get(3)?,
        severity: i64::from(r.try_get::<_, i16>(4)?),
        event_type: r.try_get(5)?,
        rule_id: r.try_get(6)?,
        title: r.try_get(7)?,
        message: r.try_get(8)?,
        resource_api_version: r.try_get(9)?,
        resource_kind: r.try_get(10)?,
        resource_name: r.try_get(11)?,
        resource_namespace: r.try_get(12)?,
        namespace: r.try_get(13)?,
        node: r.try_get(14)?,
        detected_at: r.try_get(15)?,
        first_seen: r.try_get(16)?,
        last_seen: r.try_get(17)?,
        count: r.try_get(18)?,
        labels: r.try_get(19)?,
        details: r.try_get(20)?,
        resolved_at: r.try_get(21)?,
    }
    .stored()
}

impl Postgres {
    /// Runs `f` on a pooled connection (made when none is free); a connection the server
    /// closed is dropped, not pooled again.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => self
                .target
                .connect()
                .map_err(|source| StoreError::Connect {
                    store: self.target.describe().to_owned(),
                    source,
                })?,
        };
        let result = f(&mut client);
        if !client.is_closed() {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(client);
        }
        result
    }

    pub(crate) fn list(&self, q: &Query) -> Result<Page, StoreError> {
        let started = Instant::now();
        let limit = page_size(q.limit);
        let (clause, args) = list_clause(q, &POSTGRES, limit);
        // `?` numbered as PostgreSQL wants them: `$1`, `$2`, …
        let mut sql = format!("{SELECT} ");
        let mut n = 0;
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push_str(part);
        }
        let args: Args = args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    Arg::Text(t) => Box::new(t),
                    Arg::Int(i) => Box::new(i),
                }
            })
            .collect();
        let page = self.with(|client| {
            let rows = client.query(sql.as_str(), &refs(&args))?;
            let mut items = rows.iter().map(columns).collect::<Result<Vec<_>, _>>()?;
            let next = cut_page(&mut items, limit, |s| s.id);
            Ok(Page { items, next })
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        page
    }

    pub(crate) fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
        let started = Instant::now();
        let found = self.with(|client| {
            let sql = format!("{SELECT} WHERE o.id = $1");
            client
                .query_opt(sql.as_str(), &[&id])?
                .map(|r| columns(&r))
                .transpose()
        });
        self.timings.get.record(started.elapsed().as_secs_f64());
        found
    }

    pub(crate) fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with(|client| {
            let rows = client.query(
                "SELECT source, severity, observations, occurrences FROM observation_counts
                 WHERE observations > 0 ORDER BY source, severity",
                &[],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let rank: i16 = r.try_get(1)?;
                let severity = usize::try_from(rank)
                    .ok()
                    .and_then(|i| Severity::ALL.get(i).copied())
                    .unwrap_or(Severity::Info);
                out.push((
                    r.try_get::<_, String>(0)?,
                    severity,
                    r.try_get::<_, i64>(2)?.max(0) as u64,
                    r.try_get::<_, i64>(3)?.max(0) as u64,
                ));
            }
            Ok(StoreCounts {
                by_source_severity: out,
            })
        })
    }

    pub(crate) fn top(
        &self,
        by: TopBy,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Top>, StoreError> {
        let started = Instant::now();
        let (select, group) = match by {
            TopBy::Rule => ("o.source, COALESCE(o.rule_id, '')", "o.source, o.rule_id"),
            TopBy::Namespace => ("NULL::TEXT, COALESCE(o.namespace, '')", "o.namespace"),
        };
        let sql = format!(
            "SELECT {select}, COUNT(*) FROM observations o
             WHERE o.last_seen >= $1 AND o.last_seen < $2
             GROUP BY {group} ORDER BY 3 DESC, 2 LIMIT $3"
        );
        let top = self.with(|client| {
            let rows = client.query(
                sql.as_str(),
                &[&nanos(since), &nanos(until), &(limit.min(100) as i64)],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(Top {
                        source: r.try_get(0)?,
                        key: r.try_get(1)?,
                        observations: r.try_get::<_, i64>(2)?.max(0) as u64,
                    })
                })
                .collect()
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        top
    }

    pub(crate) fn purge(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let started = Instant::now();
        let purged = metrics::counter!("zen_watcher_store_purged_total");
        let result = self.with(|client| {
            let mut total = 0;
            loop {
                // Rows another replica is purging (or counting) now are skipped, not waited for.
                let n: i64 = client
                    .query_one(
                        "WITH gone AS (
                            DELETE FROM observations WHERE id IN (
                                SELECT id FROM observations
                                WHERE window_start < $1 AND received_at < $1
                                LIMIT $2 FOR UPDATE SKIP LOCKED)
                            RETURNING source, severity, count),
                        counted AS (
                            INSERT INTO observation_counts AS c
                                (source, severity, observations, occurrences)
                            SELECT source, severity, -COUNT(*), -SUM(count) FROM gone
                            GROUP BY source, severity ORDER BY source, severity
                            ON CONFLICT (source, severity) DO UPDATE SET
                                observations = c.observations + excluded.observations,
                                occurrences = c.occurrences + excluded.occurrences)
                        SELECT COUNT(*) FROM gone",
                        &[&nanos(cutoff), &(PURGE_CHUNK as i64)],
                    )?
                    .try_get(0)?;
                let n = n.max(0) as usize;
                purged.increment(n as u64);
                total += n;
                if n < PURGE_CHUNK {
                    client.execute(
                        "DELETE FROM report_findings WHERE resolved_at < $1",
                        &[&nanos(cutoff)],
                    )?;
                    return Ok(total);
                }
            }
        });
        self.timings.delete.record(started.elapsed().as_secs_f64());
        result
    }

    pub(crate) fn keep_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let payload = dead_letters::encode(letter)?;
        self.with(|client| {
            let mut tx = client.transaction()?;
            tx.execute(
                "INSERT INTO dead_letters (received_at, source, error, attempts, events, payload)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &nanos(Timestamp::now()),
                    &letter.source,
                    &letter.error,
                    &i64::from(letter.attempts),
                    &(letter.events.len() as i64),
                    &payload,
                ],
            )?;
            // The newest letters whose events add up to the bound stay.
            let dropped: i64 = tx
                .query_one(
                    "WITH gone AS (
                        DELETE FROM dead_letters WHERE id IN (
                            SELECT id FROM (
                                SELECT id, (SUM(events) OVER (ORDER BY id DESC))::BIGINT AS kept
                                FROM dead_letters) t
                            WHERE kept > $1)
                        RETURNING events)
                    SELECT COALESCE(SUM(events), 0)::BIGINT FROM gone",
                    &[&(DEAD_LETTER_EVENTS as i64)],
                )?
                .try_get(0)?;
            tx.commit()?;
            dead_letters::dropped(dropped.max(0) as u64);
            Ok(())
        })
    }

    pub(crate) fn dead_letters(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredDeadLetter>, Option<i64>), StoreError> {
        let limit = page_size(limit);
        self.with(|client| {
            let rows = client.query(
                "SELECT id, received_at, source, error, attempts, payload FROM dead_letters
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[&after.unwrap_or(i64::MAX), &(limit as i64 + 1)],
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                items.push(dead_letters::decode(
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                )?);
            }
            let next = cut_page(&mut items, limit, |d| d.id);
            Ok((items, next))
        })
    }

    pub(crate) fn dead_letter_counts(&self) -> Result<DeadLetterCounts, StoreError> {
        self.with(|client| {
            let r = client.query_one(
                "SELECT COUNT(*), COALESCE(SUM(events), 0)::BIGINT FROM dead_letters",
                &[],
            )?;
            Ok(DeadLetterCounts {
                letters: r.try_get::<_, i64>(0)?.max(0) as u64,
                events: r.try_get::<_, i64>(1)?.max(0) as u64,
            })
        })
    }

    pub(crate) fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|client| {
            Ok(client.execute("DELETE FROM dead_letters WHERE id = $1", &[&id])? > 0)
        })
    }

    pub(crate) fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.with(|client| {
            client.execute(
                "INSERT INTO audit (at, token, action, status) VALUES ($1, $2, $3, $4)",
                &[
                    &nanos(Timestamp::now()),
                    &entry.token,
                    &entry.action,
                    &i32::from(entry.status),
                ],
            )?;
            Ok(())
        })
    }

    pub(crate) fn audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredAuditEntry>, Option<i64>), StoreError> {
        let limit = page_size(limit);
        self.with(|client| {
            let rows = client.query(
                "SELECT id, at, token, action, status FROM audit
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[&after.unwrap_or(i64::MAX), &(limit as i64 + 1)],
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                items.push(StoredAuditEntry {
                    id: r.try_get(0)?,
                    at: timestamp(r.try_get(1)?),
                    entry: AuditEntry {
                        token: r.try_get(2)?,
                        action: r.try_get(3)?,
                        status: u16::try_from(r.try_get::<_, i32>(4)?).unwrap_or(0),
                    },
                });
            }
            let next = cut_page(&mut items, limit, |e| e.id);
            Ok((items, next))
        })
    }

    /// Runs a write of report findings, timed, its error as the watchers see it.
    fn write_findings(
        &self,
        f: impl FnOnce(&mut Client) -> Result<usize, ::postgres::Error>,
    ) -> Result<usize, SinkError> {
        let started = Instant::now();
        let result = self.with(|client| Ok(f(client)?));
        self.timings.update.record(started.elapsed().as_secs_f64());
        result.map_err(|e| self.sink_error(e))
    }

    fn sink_error(&self, e: StoreError) -> SinkError {
        match e {
            StoreError::Postgres(e) | StoreError::Connect { source: e, .. } => {
                sink_error(&self.target, &e)
            }
            other => SinkError {
                message: other.to_string(),
                retryable: false,
            },
        }
    }
}

impl Positions for Postgres {
    fn load(&self, path: &Path) -> Option<TailPosition> {
        let key = path.to_string_lossy().into_owned();
        let read = self.with(|client| {
            let Some(r) = client.query_opt(
                "SELECT device, inode, byte_offset, line FROM tail_positions
                 WHERE host = $1 AND path = $2",
                &[&self.host, &key],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(TailPosition {
                device: r.try_get::<_, i64>(0)? as u64,
                inode: r.try_get::<_, i64>(1)? as u64,
                offset: r.try_get::<_, i64>(2)? as u64,
                line: r.try_get::<_, i64>(3)? as u64,
            }))
        });
        read.unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), error = %e, "reading a tail position");
            None
        })
    }

    fn save(&self, path: &Path, p: TailPosition) {
        let key = path.to_string_lossy().into_owned();
        let saved = self.with(|client| {
            client.execute(
                "INSERT INTO tail_positions (host, path, device, inode, byte_offset, line)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (host, path) DO UPDATE SET device = excluded.device,
                    inode = excluded.inode, byte_offset = excluded.byte_offset,
                    line = excluded.line",
                &[
                    &self.host,
                    &key,
                    &(p.device as i64),
                    &(p.inode as i64),
                    &(p.offset as i64),
                    &(p.line as i64),
                ],
            )?;
            Ok(())
        });
        if let Err(e) = saved {
            tracing::error!(file = %path.display(), error = %e, "saving a tail position");
        }
    }
}

fn fingerprint_bytes(fp: &Fingerprint) -> Vec<u8> {
    fp.0.to_be_bytes().to_vec()
}

impl Findings for Postgres {
    fn open(&self) -> Result<Vec<(String, Fingerprint)>, SinkError> {
        let started = Instant::now();
        let found = self.with(|client| {
            let rows = client.query(
                "SELECT report, fingerprint FROM report_findings WHERE resolved_at IS NULL",
                &[],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let fp: &[u8] = r.try_get(1)?;
                let Ok(fp) = <[u8; 16]>::try_from(fp) else {
                    return Err(StoreError::Corrupt {
                        id: 0,
                        problem: format!("a report finding's fingerprint of {} bytes", fp.len()),
                    });
                };
                out.push((r.try_get(0)?, Fingerprint(u128::from_be_bytes(fp))));
            }
            Ok(out)
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        found.map_err(|e| self.sink_error(e))
    }

    fn track(&self, findings: &[(&str, Fingerprint)]) -> Result<(), SinkError> {
        let fps: Vec<Vec<u8>> = findings
            .iter()
            .map(|(_, fp)| fingerprint_bytes(fp))
            .collect();
        let reports: Vec<&str> = findings.iter().map(|(r, _)| *r).collect();
        self.write_findings(|client| {
            client.execute(
                "INSERT INTO report_findings (fingerprint, report, resolved_at)
                 SELECT DISTINCT ON (f) f, r, NULL::BIGINT FROM unnest($1::BYTEA[], $2::TEXT[]) AS t(f, r)
                 ORDER BY f
                 ON CONFLICT (fingerprint) DO UPDATE SET report = excluded.report, resolved_at = NULL",
                &[&fps, &reports],
            )?;
            Ok(0)
        })
        .map(drop)
    }

    fn resolve(&self, fingerprints: &[Fingerprint], at: Timestamp) -> Result<usize, SinkError> {
        let fps: Vec<Vec<u8>> = fingerprints.iter().map(fingerprint_bytes).collect();
        self.write_findings(|client| {
            let n = client.execute(
                "UPDATE report_findings SET resolved_at = $2
                 WHERE fingerprint = ANY($1) AND resolved_at IS NULL",
                &[&fps, &nanos(at)],
            )?;
            Ok(n as usize)
        })
    }
}
