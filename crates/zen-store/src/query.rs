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

pub(crate) fn row(r: &rusqlite::Row<'_>) -> Result<Result<Stored, StoreError>, rusqlite::Error> {
    let id: i64 = r.get(0)?;
    let corrupt = |problem: String| Err(StoreError::Corrupt { id, problem });
    let fp: Vec<u8> = r.get(1)?;
    let Ok(fp) = <[u8; 16]>::try_from(fp.as_slice()) else {
        return Ok(corrupt(format!("fingerprint of {} bytes", fp.len())));
    };
    let category: String = r.get(3)?;
    let Ok(category) = category.parse::<Category>() else {
        return Ok(corrupt(format!("category {category:?}")));
    };
    let rank: u8 = r.get(4)?;
    let Some(&severity) = Severity::ALL.get(rank as usize) else {
        return Ok(corrupt(format!("severity rank {rank}")));
    };
    let labels: String = r.get(19)?;
    let Ok(labels) = serde_json::from_str(&labels) else {
        return Ok(corrupt(
            "labels are not a JSON object of strings".to_owned(),
        ));
    };
    let details: String = r.get(20)?;
    let Ok(details) = RawValue::from_string(details) else {
        return Ok(corrupt("details are not JSON".to_owned()));
    };
    let kind: Option<String> = r.get(10)?;
    let resource = match kind {
        Some(kind) => Some(ResourceRef {
            api_version: r.get(9)?,
            kind,
            name: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            namespace: r.get(12)?,
        }),
        None => None,
    };
    let count: i64 = r.get(18)?;
    let resolved_at: Option<i64> = r.get(21)?;
    let event = Event {
        source: std::borrow::Cow::Owned(r.get(2)?),
        category,
        severity,
        event_type: std::borrow::Cow::Owned(r.get(5)?),
        rule_id: r.get(6)?,
        title: r.get(7)?,
        message: r.get(8)?,
        resource,
        namespace: r.get(13)?,
        node: r.get(14)?,
        detected_at: timestamp(r.get(15)?),
        fingerprint: Fingerprint(u128::from_be_bytes(fp)),
        labels,
        details: Details::from_stored(details),
    };
    Ok(Ok(Stored {
        id,
        observation: Observation {
            event,
            count: u64::try_from(count).unwrap_or(0),
            first_seen: timestamp(r.get(16)?),
            last_seen: timestamp(r.get(17)?),
        },
        resolved_at: resolved_at.map(timestamp),
    }))
}

/// Reads of the store, on connections of their own; safe to share between threads.
#[derive(Debug)]
pub struct Store {
    pub(crate) path: PathBuf,
    pub(crate) readers: Mutex<Vec<Connection>>,
    pub(crate) timings: Timings,
    pub(crate) commits: Commits,
}

impl Store {
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
    pub fn list(&self, q: &Query) -> Result<Page, StoreError> {
        let started = Instant::now();
        let limit = match q.limit {
            0 => 100,
            n => n.min(1000),
        };
        let mut sql = format!("{SELECT} WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = &q.source {
            sql.push_str(" AND o.source = ?");
            args.push(s.clone().into());
        }
        if let Some(sev) = q.min_severity {
            sql.push_str(" AND o.severity >= ?");
            args.push(i64::from(sev.rank()).into());
        }
        if let Some(ns) = &q.namespace {
            sql.push_str(" AND o.namespace = ?");
            args.push(ns.clone().into());
        }
        if let Some(t) = q.since {
            sql.push_str(concat!(" AND ", last_seen!(), " >= ?"));
            args.push(nanos(t).into());
        }
        if let Some(t) = q.until {
            sql.push_str(concat!(" AND ", last_seen!(), " < ?"));
            args.push(nanos(t).into());
        }
        if let Some(text) = &q.text {
            let pattern = format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            sql.push_str(" AND (o.title LIKE ? ESCAPE '\\' OR o.message LIKE ? ESCAPE '\\')");
            args.push(pattern.clone().into());
            args.push(pattern.into());
        }
        match q.state {
            Some(State::Open) => sql.push_str(concat!(" AND ", resolved_at!(), " IS NULL")),
            Some(State::Resolved) => {
                sql.push_str(concat!(" AND ", resolved_at!(), " IS NOT NULL"));
            }
            None => {}
        }
        if let Some(after) = q.after {
            sql.push_str(" AND o.id < ?");
            args.push(after.into());
        }
        sql.push_str(" ORDER BY o.id DESC LIMIT ?");
        args.push(((limit + 1) as i64).into());
        let page = self.with(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), row)?;
            let mut items = Vec::with_capacity(limit + 1);
            for r in rows {
                items.push(r??);
            }
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|s| s.id)
            } else {
                None
            };
            Ok(Page { items, next })
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        page
    }

    /// One Observation by id.
    pub fn get(&self, id: i64) -> Result<Option<Stored>, StoreError> {
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
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
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

impl Store {
    /// The `limit` (at most 100) rules or namespaces with the most Observations last seen in
    /// `[since, until)`, most first.
    pub fn top(
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
