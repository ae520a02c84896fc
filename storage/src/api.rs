//! API keys (kept as hashes) and the answers to `Idempotency-Key`s.

use balas_domain::{ApiKey, LabelName, Me, Timestamp, UserId, WorkspaceId, parse_scopes, scopes_text};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::me_from_columns;
use crate::{Store, StoreError, StoreResult};

const KEY_COLUMNS: &str = "k.id, k.name, k.prefix, k.scopes, k.rate_per_minute, k.created_at, u.name, \
                           k.last_used_at, k.revoked_at";

fn key_from_row(row: &AnyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: row.try_get(0)?,
        name: LabelName::parse(&row.try_get::<String, _>(1)?).map_err(|_| StoreError::Corrupt("key name".into()))?,
        prefix: row.try_get(2)?,
        scopes: parse_scopes(&row.try_get::<String, _>(3)?),
        rate_per_minute: u32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(1),
        created_at: Timestamp(row.try_get(5)?),
        created_by: row.try_get(6)?,
        last_used_at: row.try_get::<Option<i64>, _>(7)?.map(Timestamp),
        revoked_at: row.try_get::<Option<i64>, _>(8)?.map(Timestamp),
    })
}

/// A new key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub workspace_id: WorkspaceId,
    pub name: &'a LabelName,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a [balas_domain::ApiScope],
    pub rate_per_minute: u32,
    pub created_by: UserId,
}

/// What became of a request's `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First seen: answer it, then [`Store::finish_idempotency`].
    New,
    /// Answered before: the status and body to send again.
    Done { status: u16, response: String },
    /// Answered, or being answered, for another request body.
    Mismatch,
    /// The first request with this key is still being answered.
    InProgress,
}

impl Store {
    pub async fn create_api_key(&self, key: &NewApiKey<'_>, now: Timestamp) -> StoreResult<ApiKey> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (workspace_id, name, prefix, secret_hash, scopes, rate_per_minute, created_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(key.workspace_id.0)
        .bind(key.name.as_str())
        .bind(key.prefix)
        .bind(key.secret_hash)
        .bind(scopes_text(key.scopes))
        .bind(i64::from(key.rate_per_minute))
        .bind(now.0)
        .bind(key.created_by.0)
        .fetch_one(&self.pool)
        .await?;
        self.api_keys(key.workspace_id).await?.into_iter().find(|k| k.id == id).ok_or(StoreError::NotFound)
    }

    /// A workspace's keys, newest first (revoked ones too).
    pub async fn api_keys(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k LEFT JOIN users u ON u.id = k.created_by \
             WHERE k.workspace_id = $1 ORDER BY k.created_at DESC, k.id DESC"
        );
        let rows = sqlx::query(&sql).bind(workspace_id.0).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key of the workspace; `NotFound` for another's, or one revoked already.
    pub async fn revoke_api_key(&self, workspace_id: WorkspaceId, id: i64, now: Timestamp) -> StoreResult<ApiKey> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(workspace_id.0)
        .bind(id)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.api_keys(workspace_id).await?.into_iter().find(|k| k.id == id).ok_or(StoreError::NotFound)
    }

    /// The key with this secret's hash, and its creator as a member of the key's workspace: `None`
    /// for an unknown key, a revoked one, or one whose creator left the workspace. Notes the use
    /// (at most once a minute, so that busy keys do not write on every request).
    pub async fn api_key_user(&self, secret_hash: &str, now: Timestamp) -> StoreResult<Option<(ApiKey, Me)>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS}, u.id, u.name, u.email, m.role, u.language, w.id, w.name, u.must_change_password \
             FROM api_keys k JOIN users u ON u.id = k.created_by \
             JOIN memberships m ON m.user_id = k.created_by AND m.workspace_id = k.workspace_id \
             JOIN workspaces w ON w.id = k.workspace_id \
             WHERE k.secret_hash = $1 AND k.revoked_at IS NULL"
        );
        let Some(row) = sqlx::query(&sql).bind(secret_hash).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let key = key_from_row(&row)?;
        let me = me_from_columns(&row, 9)?;
        if key.last_used_at.is_none_or(|at| now.0 - at.0 > 60_000) {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(key.id)
                .bind(now.0)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some((key, me)))
    }

    /// Claims an `Idempotency-Key` of an API key for a request whose body hashes to
    /// `request_hash`. Keys older than a day are forgotten first.
    pub async fn claim_idempotency(
        &self,
        api_key: i64,
        key: &str,
        request_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Idempotency> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now.0 - 24 * 3_600_000)
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (api_key_id, key, request_hash, status, created_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (api_key_id, key) DO NOTHING",
        )
        .bind(api_key)
        .bind(key)
        .bind(request_hash)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Idempotency::New);
        }
        let row = sqlx::query("SELECT request_hash, status, response FROM idempotency_keys WHERE api_key_id = $1 AND key = $2")
            .bind(api_key)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(Idempotency::InProgress) };
        let (hash, status): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok(if hash != request_hash {
            Idempotency::Mismatch
        } else if status == 0 {
            Idempotency::InProgress
        } else {
            Idempotency::Done { status: u16::try_from(status).unwrap_or(500), response: row.try_get(2)? }
        })
    }

    /// Keeps the answer to a claimed key (or, with `None`, lets the key go: the request failed in
    /// a way that a retry may fix).
    pub async fn finish_idempotency(&self, api_key: i64, key: &str, answer: Option<(u16, &str)>) -> StoreResult<()> {
        match answer {
            Some((status, response)) => {
                sqlx::query("UPDATE idempotency_keys SET status = $3, response = $4 WHERE api_key_id = $1 AND key = $2")
                    .bind(api_key)
                    .bind(key)
                    .bind(i64::from(status))
                    .bind(response)
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2")
                    .bind(api_key)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }
}
