//! The audit log: administrative requests, allowed or refused, kept for good (they are few).

use super::*;

/// One administrative request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The name of the token it came with (`(none)` when the daemon has no tokens).
    pub token: String,
    /// Method and path, e.g. `PUT /api/v1/alerts/rules`.
    pub action: String,
    /// The status it was answered with (403 when refused).
    pub status: u16,
}

/// An audit entry as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub entry: AuditEntry,
}

impl Sqlite {
    /// Keeps an audit entry, stamped now.
    pub(crate) fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO audit (at, token, action, status) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                nanos(Timestamp::now()),
                entry.token,
                entry.action,
                entry.status
            ])?;
            self.commits.note();
            Ok(())
        })
    }

    /// A page of the audit log, newest first: entries with ids below `after`, at most `limit`
    /// (100 when 0, at most 1,000); and the cursor of the next page.
    pub(crate) fn audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredAuditEntry>, Option<i64>), StoreError> {
        let limit = page_size(limit);
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, token, action, status FROM audit
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows =
                stmt.query_map(params![after.unwrap_or(i64::MAX), limit as i64 + 1], |r| {
                    Ok(StoredAuditEntry {
                        id: r.get(0)?,
                        at: timestamp(r.get(1)?),
                        entry: AuditEntry {
                            token: r.get(2)?,
                            action: r.get(3)?,
                            status: r.get(4)?,
                        },
                    })
                })?;
            let mut items = rows.collect::<Result<Vec<_>, _>>()?;
            let next = cut_page(&mut items, limit, |e| e.id);
            Ok((items, next))
        })
    }
}
