//! The reading half: filtered, keyset-paginated lists, one Observation, counts.

use super::*;

/// An Observation with its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub observation: Observation,
    /// When the finding left the report it came from (Kubernetes report watchers only).
    pub resolved_at: Option<Timestamp>,
}

/// Findings still in their reports, or gone from them (see [`Store::resolve_findings`]).
/// Observations that did not come from a watched report are always open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Resolved,
}

/// Which Observations to list. Every field narrows; `after` continues a previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub source: Option<String>,
    pub min_severity: Option<Severity>,
    pub namespace: Option<String>,
    /// Last seen at or after.
    pub since: Option<Timestamp>,
    /// Last seen before.
    pub until: Option<Timestamp>,
    /// In the title or the message, case-insensitively.
    pub text: Option<String>,
    pub state: Option<State>,
    /// The cursor of the previous page.
    pub after: Option<i64>,
    /// Page size: 100 when 0, at most 1,000.
    pub limit: usize,
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Stored>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// Stored Observations counted by source and severity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// (source, severity, rows, occurrences including duplicates)
    pub by_source_severity: Vec<(String, Severity, u64, u64)>,
}

/// `SELECT` the columns [`row`] reads, `FROM` [`observations!`].
pub(crate) const SELECT: &str = concat!(
    "SELECT o.id, o.fingerprint, o.source, o.category, o.severity, o.event_type, o.rule_id,
        o.title, o.message, o.resource_api_version, o.resource_kind, o.resource_name,
        o.resource_namespace, o.namespace, o.node, o.detected_at, o.first_seen, ",
    last_seen!(),
    ", o.count + COALESCE(r.repeats, 0), o.labels, o.details, ",
    resolved_at!(),
    " FROM ",
    observations!()
);

/// An Observation's columns as both backends store them, before they are checked.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) id: i64,
    pub(crate) fingerprint: Vec<u8>,
    pub(crate) source: String,
    pub(crate) category: String,
    pub(crate) severity: i64,
    pub(crate) event_type: String,
    pub(crate) rule_id: Option<String>,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) resource_api_version: Option<String>,
    pub(crate) resource_kind: Option<String>,
    pub(crate) resource_name: Option<String>,
    pub(crate) resource_namespace: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) node: Option<String>,
    pub(crate) detected_at: i64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    pub(crate) count: i64,
    pub(crate) labels: String,
    pub(crate) details: String,
    pub(crate) resolved_at: Option<i64>,
}

impl Columns {
    /// The Observation, or what about the row is not one.
    pub(crate) fn stored(self) -> Result<Stored, StoreError> {
        let id = self.id;
        let corrupt = |problem: String| Err(StoreError::Corrupt { id, problem });
        let Ok(fp) = <[u8; 16]>::try_from(self.fingerprint.as_slice()) else {
            return corrupt(format!("fingerprint of {} bytes", self.fingerprint.len()));
        };
        let Ok(category) = self.category.parse::<Category>() else {
            return corrupt(format!("category {:?}", self.category));
        };
        let Some(&severity) = usize::try_from(self.severity)
            .ok()
            .and_then(|rank| Severity::ALL.get(rank))
        else {
            return corrupt(format!("severity rank {}", self.severity));
        };
        let Ok(labels) = serde_json::from_str(&self.labels) else {
            return corrupt("labels are not a JSON object of strings".to_owned());
        };
        let Ok(details) = RawValue::from_string(self.details) else {
            return corrupt("details are not JSON".to_owned());
        };
        let resource = self.resource_kind.map(|kind| ResourceRef {
            api_version: self.resource_api_version,
            kind,
            name: self.resource_name.unwrap_or_default(),
            namespace: self.resource_namespace,
        });
        let event = Event {
            source: Cow::Owned(self.source),
            category,
            severity,
            event_type: Cow::Owned(self.event_type),
            rule_id: self.rule_id,
            title: self.title,
            message: self.message,
            resource,
            namespace: self.namespace,
            node: self.node,
            detected_at: timestamp(self.detected_at),
            fingerprint: Fingerprint(u128::from_be_bytes(fp)),
            labels,
            details: Details::from_stored(details),
        };
        Ok(Stored {
            id,
            observation: Observation {
                event,
                count: u64::try_from(self.count).unwrap_or(0),
                first_seen: timestamp(self.first_seen),
                last_seen: timestamp(self.last_seen),
            },
            resolved_at: self.resolved_at.map(timestamp),
        })
    }
}

pub(crate) fn row(r: &rusqlite::Row<'_>) -> Result<Result<Stored, StoreError>, rusqlite::Error> {
    let columns = Columns {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        source: r.get(2)?,
        category: r.get(3)?,
        severity: r.get(4)?,
        event_type: r.get(5)?,
        rule_id: r.get(6)?,
        title: r.get(7)?,
        message: r.get(8)?,
        resource_api_version: r.get(9)?,
        resource_kind: r.get(10)?,
        resource_name: r.get(11)?,
        resource_namespace: r.get(12)?,
        namespace: r.get(13)?,
        node: r.get(14)?,
        detected_at: r.get(15)?,
        first_seen: r.get(16)?,
        last_seen: r.get(17)?,
        count: r.get(18)?,
        labels: r.get(19)?,
        details: r.get(20)?,
        resolved_at: r.get(21)?,
    };
    Ok(columns.stored())
}

/// A value a list's filters bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// How a backend's SQL says what a list filters by.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// When an Observation was last seen (`o` is the row).
    pub(crate) last_seen: &'static str,
    /// Case-insensitive `LIKE`.
    pub(crate) like: &'static str,
    /// The finding is in its report still (or came from elsewhere); and the opposite.
    pub(crate) open: &'static str,
    pub(crate) resolved: &'static str,
}

const SQLITE: Dialect = Dialect {
    last_seen: last_seen!(),
    // SQLite's LIKE ignores the case of ASCII letters.
    like: "LIKE",
    open: concat!(resolved_at!(), " IS NULL"),
    resolved: concat!(resolved_at!(), " IS NOT NULL"),
};

/// The `WHERE`, `ORDER BY` and `LIMIT` of a page of `q` (`limit` rows and one more, to tell
/// whether there is a next page), with `?` for each argument, in order.
pub(crate) fn list_clause(q: &Query, d: &Dialect, limit: usize) -> (String, Vec<Arg>) {
    let mut sql = String::from("WHERE 1 = 1");
    let mut args = Vec::new();
    if let Some(s) = &q.source {
        sql.push_str(" AND o.source = ?");
        args.push(Arg::Text(s.clone()));
    }
    if let Some(sev) = q.min_severity {
        // Bound as a 64-bit integer (PostgreSQL keeps the rank in a smaller one).
        sql.push_str(" AND o.severity >= CAST(? AS BIGINT)");
        args.push(Arg::Int(i64::from(sev.rank())));
    }
    if let Some(ns) = &q.namespace {
        sql.push_str(" AND o.namespace = ?");
        args.push(Arg::Text(ns.clone()));
    }
    if let Some(t) = q.since {
        sql.push_str(&format!(" AND {} >= ?", d.last_seen));
        args.push(Arg::Int(nanos(t)));
    }
    if let Some(t) = q.until {
        sql.push_str(&format!(" AND {} < ?", d.last_seen));
        args.push(Arg::Int(nanos(t)));
    }
    if let Some(text) = &q.text {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let like = d.like;
        sql.push_str(&format!(
            " AND (o.title {like} ? ESCAPE '\\' OR o.message {like} ? ESCAPE '\\')"
        ));
        args.push(Arg::Text(pattern.clone()));
        args.push(Arg::Text(pattern));
    }
    match q.state {
        Some(State::Open) => sql.push_str(&format!(" AND {}", d.open)),
        Some(State::Resolved) => sql.push_str(&format!(" AND {}", d.resolved)),
        None => {}
    }
    if let Some(after) = q.after {
        sql.push_str(" AND o.id < ?");
        args.push(Arg::Int(after));
    }
    sql.push_str(" ORDER BY o.id DESC LIMIT ?");
    args.push(Arg::Int((limit + 1) as i64));
    (sql, args)
}

/// Reads of the SQLite store, on connections of their own; safe to share between threads.
#[derive(Debug)]
pub(crate) struct Sqlite {
    pub(crate) path: PathBuf,
    pub(crate) readers: Mutex<Vec<Connection>>,
    pub(crate) timings: Timings,
    pub(crate) commits: Commits,
}

impl Sqlite {
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path).map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?,
        };
        let result = f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        result
    }

    /// A page of Observations, newest first.
    pub(crate) fn list(&self, q: &Query) -> Result<Page, StoreError> {
        let started = Instant::now();
        let limit = page_size(q.limit);
        let (clause, args) = list_clause(q, &SQLITE, limit);
        let sql = format!("{SELECT} {clause}");
        let args: Vec<rusqlite::types::Value> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => t.into(),
                Arg::Int(i) => i.into(),
            })
            .collect();
        let page = self.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), row)?;
            let mut items = Vec::with_capacity(limit + 1);
            for r in rows {
                items.push(r??);
            }
            let next = cut_page(&mut items, limit, |s| s.id);
            Ok(Page { items, next })
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        page
    }

    /// One Observation by id.
    pub(crate) fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
        let started = Instant::now();
        let found = self.with(|conn| {
            let sql = format!("{SELECT} WHERE o.id = ?1");
            let found = conn.prepare_cached(&sql)?.query_row([id], row).optional()?;
            found.transpose()
        });
        self.timings.get.record(started.elapsed().as_secs_f64());
        found
    }

    /// Observations and their occurrences, by source and severity.
    pub(crate) fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source, severity, observations, occurrences FROM observation_counts
                 WHERE observations > 0 ORDER BY source, severity",
            )?;
            let rows = stmt.query_map([], |r| {
                let rank: u8 = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    rank,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (source, rank, rows, total) = r?;
                let severity = Severity::ALL
                    .get(rank as usize)
                    .copied()
                    .unwrap_or(Severity::Info);
                out.push((source, severity, rows as u64, total as u64));
            }
            Ok(StoreCounts {
                by_source_severity: out,
            })
        })
    }
}

/// What [`Store::top`] ranks Observations by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    /// The source and its rule, check or vulnerability id.
    Rule,
    /// The namespace (empty for cluster-scoped findings).
    Namespace,
}

/// One line of [`Store::top`]: the key (`source` and `rule`, or `namespace`) and how many
/// Observations have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub source: Option<String>,
    pub key: String,
    pub observations: u64,
}

impl Sqlite {
    /// The `limit` (at most 100) rules or namespaces with the most Observations last seen in
    /// `[since, until)`, most first.
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
            TopBy::Namespace => ("NULL, COALESCE(o.namespace, '')", "o.namespace"),
        };
        let sql = format!(
            concat!(
                "SELECT {select}, COUNT(*) FROM ",
                observations!(),
                " WHERE ",
                last_seen!(),
                " >= ?1 AND ",
                last_seen!(),
                " < ?2 GROUP BY {group} ORDER BY 3 DESC, 2 LIMIT ?3"
            ),
            select = select,
            group = group
        );
        let top = self.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let args = (nanos(since), nanos(until), limit.min(100) as i64);
            let rows = stmt.query_map(args, |r| {
                Ok(Top {
                    source: r.get(0)?,
                    key: r.get(1)?,
                    observations: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        top
    }
}
