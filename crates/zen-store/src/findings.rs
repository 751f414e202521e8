//! The findings of watched reports (Kubernetes mode): which report holds each, and when each
//! left its report. An Observation whose fingerprint is resolved here is resolved.

use zen_sink::Findings;

use super::*;

impl Findings for Sqlite {
    fn open(&self) -> Result<Vec<(String, Fingerprint)>, SinkError> {
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
        found.map_err(findings_error)
    }

    fn track(&self, findings: &[(&str, Fingerprint)]) -> Result<(), SinkError> {
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

    fn resolve(&self, fingerprints: &[Fingerprint], at: Timestamp) -> Result<usize, SinkError> {
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
}

impl Sqlite {
    /// Runs `f` in a write transaction of its own (taking the lock at once, so it waits its
    /// turn behind the sink instead of failing to upgrade).
    fn write_findings(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<usize, rusqlite::Error>,
    ) -> Result<usize, SinkError> {
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
        result.map_err(findings_error)
    }
}

fn findings_error(e: StoreError) -> SinkError {
    match e {
        StoreError::Query(e) => sink::sink_error(e),
        other => SinkError {
            message: other.to_string(),
            retryable: false,
        },
    }
}
