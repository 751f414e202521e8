//! Where tailed files are read up to, kept beside the Observations.

use super::*;

/// Tailed files' positions, in the store: a restart carries on where the last commit left.
impl Positions for Sqlite {
    fn load(&self, path: &Path) -> Option<TailPosition> {
        let key = path.to_string_lossy().into_owned();
        let read = self.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT device, inode, offset, line FROM tail_positions WHERE path = ?1",
                )?
                .query_row([key], |r| {
                    Ok(TailPosition {
                        device: r.get::<_, i64>(0)? as u64,
                        inode: r.get::<_, i64>(1)? as u64,
                        offset: r.get::<_, i64>(2)? as u64,
                        line: r.get::<_, i64>(3)? as u64,
                    })
                })
                .optional()?)
        });
        read.unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), error = %e, "reading a tail position");
            None
        })
    }

    fn save(&self, path: &Path, p: TailPosition) {
        let key = path.to_string_lossy().into_owned();
        let saved = self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO tail_positions (path, device, inode, offset, line)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (path) DO UPDATE SET device = excluded.device,
                    inode = excluded.inode, offset = excluded.offset, line = excluded.line",
            )?
            .execute(params![
                key,
                p.device as i64,
                p.inode as i64,
                p.offset as i64,
                p.line as i64
            ])?;
            self.commits.note();
            Ok(())
        });
        if let Err(e) = saved {
            tracing::error!(file = %path.display(), error = %e, "saving a tail position");
        }
    }
}
