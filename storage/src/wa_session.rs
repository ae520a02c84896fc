//! The state of linked WhatsApp sessions (keys, device data, app state): a key/value store per
//! channel, split into named spaces, that the WhatsApp worker's adapter maps the client library's
//! storage onto.
//!
//! Writes are fenced: a worker that takes a session [claims](Store::claim_wa_session) it and gets
//! a token, and every write carries the token. A claim by another worker makes the old token
//! stale, and a write with a stale token is refused as a whole ([`Conflict::SessionTaken`]), so a
//! worker that lost the session without noticing (a long pause, a partition) cannot corrupt it.

use balas_domain::ChannelId;
use sqlx::{Any, Row, Transaction};

use crate::{Conflict, Store, StoreError, StoreResult};

/// One change to a session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWrite {
    Put {
        space: &'static str,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        space: &'static str,
        key: String,
    },
    /// Deletes every entry of the space.
    Clear {
        space: &'static str,
    },
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Refuses the transaction unless `fence` is still the session's token. A write, so that the
/// transaction holds the lock from its first statement (SQLite would otherwise refuse to upgrade a
/// read transaction that another writer overtook, and PostgreSQL holds the row against a claim).
async fn hold_fence(tx: &mut Transaction<'_, Any>, channel: ChannelId, fence: i64) -> StoreResult<()> {
    let held = sqlx::query("UPDATE wa_session_fences SET fence = fence WHERE channel_id = $1 AND fence = $2")
        .bind(channel.0)
        .bind(fence)
        .execute(&mut **tx)
        .await?;
    if held.rows_affected() == 0 {
        return Err(StoreError::Conflict(Conflict::SessionTaken));
    }
    Ok(())
}

impl Store {
    /// Takes the channel's session for a new holder and returns the token its writes must carry;
    /// every token handed out before is stale from now on.
    pub async fn claim_wa_session(&self, channel: ChannelId) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO wa_session_fences (channel_id, fence) VALUES ($1, 1) \
             ON CONFLICT (channel_id) DO UPDATE SET fence = wa_session_fences.fence + 1 RETURNING fence",
        )
        .bind(channel.0)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::Database(error),
        })?;
        Ok(row.try_get(0)?)
    }

    /// Applies `writes` in order, all or nothing, if `fence` is still the session's token.
    pub async fn write_wa_session(&self, channel: ChannelId, fence: i64, writes: &[SessionWrite]) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        hold_fence(&mut tx, channel, fence).await?;
        for write in writes {
            match write {
                SessionWrite::Put { space, key, value } => {
                    sqlx::query(
                        "INSERT INTO wa_session_entries (channel_id, space, key, value) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (channel_id, space, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(channel.0)
                    .bind(*space)
                    .bind(key.as_str())
                    .bind(value.as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
                SessionWrite::Delete { space, key } => {
                    sqlx::query("DELETE FROM wa_session_entries WHERE channel_id = $1 AND space = $2 AND key = $3")
                        .bind(channel.0)
                        .bind(*space)
                        .bind(key.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                SessionWrite::Clear { space } => {
                    sqlx::query("DELETE FROM wa_session_entries WHERE channel_id = $1 AND space = $2")
                        .bind(channel.0)
                        .bind(*space)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets everything of the channel's session (the number was logged out and must be linked
    /// again), if `fence` is still its token.
    pub async fn forget_wa_session(&self, channel: ChannelId, fence: i64) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        hold_fence(&mut tx, channel, fence).await?;
        sqlx::query("DELETE FROM wa_session_entries WHERE channel_id = $1").bind(channel.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One entry, if present.
    pub async fn wa_session_entry(&self, channel: ChannelId, space: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM wa_session_entries WHERE channel_id = $1 AND space = $2 AND key = $3")
            .bind(channel.0)
            .bind(space)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// The entries of a space whose keys start with `prefix` (all of them for an empty prefix),
    /// ordered by the keys' bytes (whatever the database's collation).
    pub async fn wa_session_entries(
        &self,
        channel: ChannelId,
        space: &str,
        prefix: &str,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT key, value FROM wa_session_entries WHERE channel_id = $1 AND space = $2 \
             AND key LIKE $3 ESCAPE '\\'",
        )
        .bind(channel.0)
        .bind(space)
        .bind(like_prefix(prefix))
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows
            .iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<Vec<u8>, _>(1)?)))
            // SQLite's LIKE ignores ASCII case: keep exact prefixes only.
            .filter(|entry| entry.as_ref().map_or(true, |(key, _)| key.starts_with(prefix)))
            .collect::<StoreResult<Vec<_>>>()?;
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// How many entries the channel's session has (0: never linked, or forgotten).
    pub async fn wa_session_size(&self, channel: ChannelId) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM wa_session_entries WHERE channel_id = $1")
            .bind(channel.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_prefixes_match_their_characters_literally() {
        assert_eq!(like_prefix("a_b%c\\d"), "a\\_b\\%c\\\\d%");
        assert_eq!(like_prefix(""), "%");
    }
}
