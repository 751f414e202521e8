//! The findings of watched reports (Kubernetes mode): which report holds each, and when each
//! left its report. An Observation whose fingerprint is resolved here is resolved.

use super::*;

impl Store {
    /// The findings still in their reports, with the report that holds each.
    pub fn open_findings(&self) -> Result<Vec<(String, Fingerprint)>, StoreError> {
        let started = Instant::now();
        let found = self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT report, fingerprint FROM report_findings WHERE resolved_at IS NULL",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let fp: Vec<u8> = r.get(1)?;
                let Ok(fp) = <[u8; 16]>::try_from(fp.as_slice()) else {
                    return Err(StoreError::Corrupt {
                        id: 0,
                        problem: format!("a report finding's fingerprint of {} bytes", fp.len()),
                    });
                };
                out.push((r.get(0)?, Fingerprint(u128::from_be_bytes(fp))));
            }
            Ok(out)
        });
        self.timings.list.record(started.elapsed().as_secs_f64());
        found
    }

    /// Records findings as held by their reports — open, also when they had been resolved —
    /// in one transaction.
    pub fn track_findings<'a>(
        &self,
        findings: impl IntoIterator<Item = (&'a str, Fingerprint)>,
    ) -> Result<(), StoreError> {
        self.write_findings(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO report_findings (fingerprint, report, resolved_at) VALUES (?1, ?2, NULL)
                 ON CONFLICT (fingerprint) DO UPDATE SET report = ?2, resolved_at = NULL",
            )?;
            for (report, fp) in findings {
                stmt.execute(params![fp.0.to_be_bytes().as_slice(), report])?;
            }
            Ok(0)
        })
        .map(drop)
    }

    /// Marks findings that left their reports as resolved at `at`, in one transaction; says how
    /// many were open.
    pub fn resolve_findings(
        &self,
        fingerprints: &[Fingerprint],
        at: Timestamp,
    ) -> Result<usize, StoreError> {
        self.write_findings(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE report_findings SET resolved_at = ?2
                 WHERE fingerprint = ?1 AND resolved_at IS NULL",
            )?;
            let mut n = 0;
            for fp in fingerprints {
                n += stmt.execute(params![fp.0.to_be_bytes().as_slice(), nanos(at)])?;
            }
            Ok(n)
        })
    }

    fn write_findings(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<usize, rusqlite::Error>,
    ) -> Result<usize, StoreError> {
        let started = Instant::now();
        let result = self.with(|conn| {
            let tx = rusqlite::Transaction::new_unchecked(
                conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let n = f(&tx)?;
            tx.commit()?;
            self.commits.note();
            Ok(n)
        });
        self.timings.update.record(started.elapsed().as_secs_f64());
        result
    }
}
