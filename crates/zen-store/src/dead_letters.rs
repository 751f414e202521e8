//! What no sink could write, kept in a bounded table to be listed and replayed.

use super::*;

/// The most dead-lettered events the store keeps; past it the oldest letters are dropped
/// (`zen_watcher_dead_letters_dropped_total`).
pub const DEAD_LETTER_EVENTS: u64 = 100_000;

/// A dead letter as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    pub id: i64,
    /// When the store took it.
    pub received_at: Timestamp,
    pub letter: DeadLetter,
}

/// Dead letters kept, and the events in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterCounts {
    pub letters: u64,
    pub events: u64,
}

impl Sqlite {
    /// Keeps a dead letter; past [`DEAD_LETTER_EVENTS`] events in all, drops the oldest letters.
    pub(crate) fn keep_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let payload = encode(letter)?;
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO dead_letters (received_at, source, error, attempts, events, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    nanos(Timestamp::now()),
                    letter.source,
                    letter.error,
                    letter.attempts,
                    letter.events.len() as i64,
                    payload
                ],
            )?;
            let mut dropped = 0;
            loop {
                let total: i64 = tx.query_row(
                    "SELECT COALESCE(SUM(events), 0) FROM dead_letters",
                    [],
                    |r| r.get(0),
                )?;
                if total as u64 <= DEAD_LETTER_EVENTS {
                    break;
                }
                let gone: Option<i64> = tx
                    .query_row(
                        "DELETE FROM dead_letters WHERE id = (SELECT MIN(id) FROM dead_letters)
                         RETURNING events",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?;
                match gone {
                    Some(n) => dropped += n as u64,
                    None => break,
                }
            }
            tx.commit()?;
            self.commits.note();
            self::dropped(dropped);
            Ok(())
        })
    }

    /// A page of dead letters, newest first: those with ids below `after`, at most `limit`
    /// (100 when 0, at most 1,000); and the cursor of the next page.
    pub(crate) fn dead_letters(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<StoredDeadLetter>, Option<i64>), StoreError> {
        let limit = page_size(limit);
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, received_at, source, error, attempts, payload FROM dead_letters
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows =
                stmt.query_map(params![after.unwrap_or(i64::MAX), limit as i64 + 1], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })?;
            let mut items = Vec::new();
            for row in rows {
                let (id, received_at, source, error, attempts, payload) = row?;
                items.push(decode(id, received_at, source, error, attempts, payload)?);
            }
            let next = cut_page(&mut items, limit, |d| d.id);
            Ok((items, next))
        })
    }

    /// How many dead letters are kept, and how many events they hold.
    pub(crate) fn dead_letter_counts(&self) -> Result<DeadLetterCounts, StoreError> {
        self.with(|conn| {
            let (letters, events): (i64, i64) = conn
                .prepare_cached("SELECT COUNT(*), COALESCE(SUM(events), 0) FROM dead_letters")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(DeadLetterCounts {
                letters: letters as u64,
                events: events as u64,
            })
        })
    }

    /// Removes a dead letter (replayed); says whether it was there.
    pub(crate) fn remove_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
                .execute([id])?;
            self.commits.note();
            Ok(n > 0)
        })
    }
}

/// A dead letter's events as stored: JSON.
pub(crate) fn encode(letter: &DeadLetter) -> Result<String, StoreError> {
    serde_json::to_string(&letter.events).map_err(|e| StoreError::Corrupt {
        id: 0,
        problem: format!("a dead letter's events could not be encoded: {e}"),
    })
}

/// A dead letter from its columns.
pub(crate) fn decode(
    id: i64,
    received_at: i64,
    source: String,
    error: String,
    attempts: i64,
    payload: String,
) -> Result<StoredDeadLetter, StoreError> {
    let events = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
        id,
        problem: format!("dead letter events: {e}"),
    })?;
    Ok(StoredDeadLetter {
        id,
        received_at: timestamp(received_at),
        letter: DeadLetter {
            source,
            events,
            error,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        },
    })
}

/// Says (and counts) that `events` dead-lettered events were dropped to keep the bound.
pub(crate) fn dropped(events: u64) {
    if events > 0 {
        metrics::counter!("zen_watcher_dead_letters_dropped_total").increment(events);
        tracing::warn!(
            dropped = events,
            "dead-letter table full: the oldest letters dropped"
        );
    }
}
