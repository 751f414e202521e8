//! [`PostgresSink`]: a batch, and the duplicate counts that come with it, in one statement.

use std::collections::HashMap;

use super::*;

/// The pipeline's sink into PostgreSQL: each call one statement (its own transaction, one
/// round trip) that upserts the batch's rows on (fingerprint, window), adds duplicate counts
/// to rows written before, and keeps `observation_counts` in step.
pub struct PostgresSink {
    target: Arc<Target>,
    /// Made when first needed, and again after the server closed it; with [`UPSERT`] prepared
    /// on it (parsed and planned once, not for every batch).
    client: Option<(Client, ::postgres::Statement)>,
    window: i64,
    written: Written,
    timings: Timings,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("target", &self.target)
            .field("connected", &self.client.is_some())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The row each recent sighting went to, by the pipeline's sequence number: duplicate counts
/// name a sighting by it.
#[derive(Debug)]
struct Written {
    first: u64,
    /// `rows[i]` is the (id, window) of sequence number `first + i`; id 0 when not written.
    rows: VecDeque<(i64, i64)>,
    len: usize,
}

impl Written {
    fn note(&mut self, seq: u64, row: (i64, i64)) {
        let Some(mut i) = seq.checked_sub(self.first) else {
            return;
        };
        if i >= (self.len + self.rows.len()) as u64 {
            self.rows.clear();
            self.first = seq;
            i = 0;
        }
        let i = i as usize;
        if i >= self.rows.len() {
            self.rows.resize(i + 1, (0, 0));
        }
        self.rows[i] = row;
        while self.rows.len() > self.len {
            self.rows.pop_front();
            self.first += 1;
        }
    }

    fn row(&self, seq: u64) -> Option<(i64, i64)> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.rows.get(i).copied().filter(|&(id, _)| id != 0)
    }
}

/// The statement: `input` (the batch, one row per finding, numbered in arrival order: the
/// newest first in a list, as with SQLite), `inserted` (upserted on
/// fingerprint and window; `fresh` when the row is new), `repeated` (counts added to rows
/// written before), their sum by source and severity added to `observation_counts` (in key
/// order, last, so replicas never wait on each other in a cycle), and each input row's id.
const UPSERT: &str = "WITH input AS (
    SELECT t.*, nextval('observations_id_seq') AS id FROM unnest($1::BYTEA[], $2::TEXT[], $3::TEXT[], $4::SMALLINT[], $5::TEXT[],
        $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[],
        $13::TEXT[], $14::TEXT[], $15::BIGINT[], $16::BIGINT[], $17::BIGINT[], $18::TEXT[],
        $19::TEXT[]) WITH ORDINALITY
    AS t(fingerprint, source, category, severity, event_type, rule_id, title, message,
        resource_api_version, resource_kind, resource_name, resource_namespace, namespace, node,
        detected_at, last_seen, count, labels, details, n)
),
inserted AS (
    INSERT INTO observations AS o (id, fingerprint, window_start, source, category, severity,
        event_type, rule_id, title, message, resource_api_version, resource_kind, resource_name,
        resource_namespace, namespace, node, detected_at, first_seen, last_seen, count,
        received_at, labels, details)
    SELECT id, fingerprint, $20, source, category, severity, event_type, rule_id, title, message,
        resource_api_version, resource_kind, resource_name, resource_namespace, namespace, node,
        detected_at, detected_at, last_seen, count, $21, labels, details
    FROM input ORDER BY fingerprint
    ON CONFLICT (fingerprint, window_start) DO UPDATE SET
        count = o.count + excluded.count,
        first_seen = LEAST(o.first_seen, excluded.first_seen),
        last_seen = GREATEST(o.last_seen, excluded.last_seen),
        received_at = GREATEST(o.received_at, excluded.received_at)
    RETURNING o.id, o.fingerprint, (o.xmax = 0) AS fresh
),
repeated AS (
    UPDATE observations AS o SET
        count = o.count + u.n,
        last_seen = GREATEST(o.last_seen, u.last_seen),
        received_at = GREATEST(o.received_at, $21)
    FROM unnest($22::BIGINT[], $23::BIGINT[], $24::BIGINT[]) AS u(id, n, last_seen)
    WHERE o.id = u.id
    RETURNING o.source, o.severity, u.n
),
tally AS (
    SELECT i.source, i.severity, COUNT(*) FILTER (WHERE d.fresh) AS rows, SUM(i.count) AS occurrences
    FROM inserted d JOIN input i ON i.fingerprint = d.fingerprint
    GROUP BY i.source, i.severity
    UNION ALL
    SELECT source, severity, 0, SUM(n) FROM repeated GROUP BY source, severity
),
counted AS (
    INSERT INTO observation_counts AS c (source, severity, observations, occurrences)
    SELECT source, severity, SUM(rows), SUM(occurrences) FROM tally
    GROUP BY source, severity ORDER BY source, severity
    ON CONFLICT (source, severity) DO UPDATE SET
        observations = c.observations + excluded.observations,
        occurrences = c.occurrences + excluded.occurrences
)
SELECT i.n, d.id FROM inserted d JOIN input i ON i.fingerprint = d.fingerprint";

/// One batch as the statement's arrays: a row per finding.
#[derive(Debug, Default)]
struct Batch<'a> {
    fingerprint: Vec<Vec<u8>>,
    source: Vec<&'a str>,
    category: Vec<&'a str>,
    severity: Vec<i16>,
    event_type: Vec<&'a str>,
    rule_id: Vec<Option<&'a str>>,
    title: Vec<&'a str>,
    message: Vec<&'a str>,
    resource_api_version: Vec<Option<&'a str>>,
    resource_kind: Vec<Option<&'a str>>,
    resource_name: Vec<Option<&'a str>>,
    resource_namespace: Vec<Option<&'a str>>,
    namespace: Vec<Option<&'a str>>,
    node: Vec<Option<&'a str>>,
    detected_at: Vec<i64>,
    last_seen: Vec<i64>,
    count: Vec<i64>,
    labels: Vec<Cow<'a, str>>,
    details: Vec<&'a str>,
    /// The row of each fingerprint.
    rows: HashMap<u128, usize>,
    /// The row of each sighting, by sequence number.
    seqs: Vec<(u64, usize)>,
}

impl<'a> Batch<'a> {
    fn push(&mut self, Kept { seq, event: e }: &'a Kept) {
        if let Some(&i) = self.rows.get(&e.fingerprint.0) {
            // The same finding twice in a batch (its window ended between): one row.
            self.add(i, 1, nanos(e.detected_at));
            self.seqs.push((*seq, i));
            return;
        }
        let i = self.fingerprint.len();
        self.rows.insert(e.fingerprint.0, i);
        self.seqs.push((*seq, i));
        let r = e.resource.as_ref();
        self.fingerprint
            .push(e.fingerprint.0.to_be_bytes().to_vec());
        self.source.push(e.source.as_ref());
        self.category.push(e.category.as_str());
        self.severity.push(i16::from(e.severity.rank()));
        self.event_type.push(e.event_type.as_ref());
        self.rule_id.push(e.rule_id.as_deref());
        self.title.push(&e.title);
        self.message.push(&e.message);
        self.resource_api_version
            .push(r.and_then(|r| r.api_version.as_deref()));
        self.resource_kind.push(r.map(|r| r.kind.as_str()));
        self.resource_name.push(r.map(|r| r.name.as_str()));
        self.resource_namespace
            .push(r.and_then(|r| r.namespace.as_deref()));
        self.namespace.push(e.namespace.as_deref());
        self.node.push(e.node.as_deref());
        self.detected_at.push(nanos(e.detected_at));
        self.last_seen.push(nanos(e.detected_at));
        self.count.push(1);
        self.labels.push(labels_json(e));
        self.details.push(e.details.get());
    }

    fn add(&mut self, i: usize, n: i64, last_seen: i64) {
        self.count[i] = self.count[i].saturating_add(n);
        self.last_seen[i] = self.last_seen[i].max(last_seen);
    }
}

impl PostgresSink {
    pub(crate) fn new(target: Arc<Target>, settings: &PostgresSettings) -> PostgresSink {
        let window = i64::try_from(settings.dedup_window.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        PostgresSink {
            target,
            client: None,
            window,
            written: Written {
                first: 0,
                rows: VecDeque::new(),
                len: settings.remembered.max(1024),
            },
            timings: Timings::new(),
        }
    }

    /// Writes `events` and adds `updates`, in one statement.
    fn commit(&mut self, events: &[Kept], updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        if events.is_empty() && updates.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let received_at = nanos(Timestamp::now());
        let window_start = received_at - received_at.rem_euclid(self.window);
        let mut batch = Batch::default();
        for kept in events {
            batch.push(kept);
        }
        let in_batch: HashMap<u64, usize> = batch.seqs.iter().copied().collect();
        // Counts of rows written before, by id; those of this batch's rows (or of a row this
        // batch's upsert reaches, same fingerprint and window) are folded into its input, so
        // that no row is changed twice by the statement.
        let mut repeats: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut lost = 0u64;
        for u in updates {
            let n = i64::try_from(u.duplicates).unwrap_or(i64::MAX);
            let last_seen = nanos(u.last_seen);
            if let Some(&i) = in_batch.get(&u.seq) {
                batch.add(i, n, last_seen);
                continue;
            }
            let here = batch.rows.get(&u.fingerprint.0).copied();
            match (self.written.row(u.seq), here) {
                (Some((_, window)), Some(i)) if window == window_start => {
                    batch.add(i, n, last_seen)
                }
                (Some((id, _)), _) => {
                    let r = repeats.entry(id).or_insert((0, i64::MIN));
                    r.0 = r.0.saturating_add(n);
                    r.1 = r.1.max(last_seen);
                }
                (None, _) => lost += u.duplicates,
            }
        }
        if lost > 0 {
            // Only when the deduper remembers more sightings than the sink (`remembered`).
            metrics::counter!("zen_watcher_errors_total", "component" => "store", "category" => "store").increment(1);
            tracing::warn!(
                duplicates = lost,
                "duplicate counts of sightings the PostgreSQL sink no longer remembers were not added"
            );
        }
        let mut repeats: Vec<(i64, (i64, i64))> = repeats.into_iter().collect();
        repeats.sort_unstable_by_key(|(id, _)| *id);
        let (ids, (ns, lasts)): (Vec<i64>, (Vec<i64>, Vec<i64>)) = repeats.into_iter().unzip();
        let (client, upsert) = match &mut self.client {
            Some((c, statement)) if !c.is_closed() => (c, &*statement),
            slot => {
                let fresh = self.target.connect().and_then(|mut c| {
                    let statement = c.prepare(UPSERT)?;
                    Ok((c, statement))
                });
                let (c, statement) = slot.insert(fresh.map_err(|e| sink_error(&self.target, &e))?);
                (c, &*statement)
            }
        };
        let b = &batch;
        let rows = client
            .query(
                upsert,
                &[
                    &b.fingerprint,
                    &b.source,
                    &b.category,
                    &b.severity,
                    &b.event_type,
                    &b.rule_id,
                    &b.title,
                    &b.message,
                    &b.resource_api_version,
                    &b.resource_kind,
                    &b.resource_name,
                    &b.resource_namespace,
                    &b.namespace,
                    &b.node,
                    &b.detected_at,
                    &b.last_seen,
                    &b.count,
                    &b.labels,
                    &b.details,
                    &window_start,
                    &received_at,
                    &ids,
                    &ns,
                    &lasts,
                ],
            )
            .map_err(|e| sink_error(&self.target, &e))?;
        let mut id_of = vec![0i64; batch.fingerprint.len()];
        for r in rows {
            let (Ok(n), Ok(id)) = (r.try_get::<_, i64>(0), r.try_get::<_, i64>(1)) else {
                continue; // not this statement's answer: the rows stay unnamed (counts lost)
            };
            if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| id_of.get_mut(i)) {
                *slot = id;
            }
        }
        for &(seq, i) in &batch.seqs {
            self.written.note(seq, (id_of[i], window_start));
        }
        let timing = if events.is_empty() {
            &self.timings.update
        } else {
            &self.timings.create
        };
        timing.record(started.elapsed().as_secs_f64());
        Ok(())
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn write(&mut self, _source: &str, events: &[Kept]) -> Result<(), SinkError> {
        self.commit(events, &[])
    }

    fn apply_duplicates(&mut self, updates: &[DuplicateUpdate]) -> Result<(), SinkError> {
        self.commit(&[], updates)
    }

    /// The same one statement: the commit an acknowledgement waits for holds both.
    fn write_then_count(
        &mut self,
        _source: &str,
        events: &[Kept],
        updates: &[DuplicateUpdate],
    ) -> Result<(), SinkError> {
        self.commit(events, updates)
    }
}
