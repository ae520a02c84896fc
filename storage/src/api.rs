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
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
        )
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
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $3, response = $4 WHERE api_key_id = $1 AND key = $2",
                )
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

/// A delivery claimed for an attempt, with where and how to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub event: String,
    pub payload: String,
    pub attempts: u32,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event, state, attempts, last_status, last_response, \
                                next_attempt_at, created_at, payload";

fn delivery_from_row(row: &AnyRow) -> StoreResult<balas_domain::WebhookDelivery> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("delivery {what}"));
    Ok(balas_domain::WebhookDelivery {
        id: row.try_get(0)?,
        webhook_id: row.try_get(1)?,
        event: balas_domain::WebhookEvent::parse(&row.try_get::<String, _>(2)?).ok_or_else(|| corrupt("event"))?,
        state: balas_domain::DeliveryState::parse(&row.try_get::<String, _>(3)?).ok_or_else(|| corrupt("state"))?,
        attempts: u32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0),
        last_status: row.try_get::<Option<i64>, _>(5)?.and_then(|s| u16::try_from(s).ok()),
        last_response: row.try_get(6)?,
        next_attempt_at: row.try_get::<Option<i64>, _>(7)?.map(Timestamp),
        created_at: Timestamp(row.try_get(8)?),
        payload: row.try_get(9)?,
    })
}

fn webhook_from_row(row: &AnyRow) -> StoreResult<balas_domain::Webhook> {
    Ok(balas_domain::Webhook {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        events: row.try_get::<String, _>(2)?.split(',').filter_map(balas_domain::WebhookEvent::parse).collect(),
        created_at: Timestamp(row.try_get(3)?),
    })
}

impl Store {
    pub async fn create_webhook(
        &self,
        workspace_id: WorkspaceId,
        url: &str,
        events: &[balas_domain::WebhookEvent],
        secret: &str,
        created_by: UserId,
        now: Timestamp,
    ) -> StoreResult<balas_domain::Webhook> {
        let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let row = sqlx::query(
            "INSERT INTO webhooks (workspace_id, url, events, secret, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, url, events, created_at",
        )
        .bind(workspace_id.0)
        .bind(url)
        .bind(events.join(","))
        .bind(secret)
        .bind(now.0)
        .bind(created_by.0)
        .fetch_one(&self.pool)
        .await?;
        webhook_from_row(&row)
    }

    pub async fn webhooks(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<balas_domain::Webhook>> {
        let rows = sqlx::query("SELECT id, url, events, created_at FROM webhooks WHERE workspace_id = $1 ORDER BY id")
            .bind(workspace_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// Deletes a webhook of the workspace (and its deliveries); returns its URL.
    pub async fn delete_webhook(&self, workspace_id: WorkspaceId, id: i64) -> StoreResult<String> {
        let url: Option<String> =
            sqlx::query_scalar("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2 RETURNING url")
                .bind(workspace_id.0)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        url.ok_or(StoreError::NotFound)
    }

    /// Queues an event for every webhook of the workspace that wants it (once per event id);
    /// returns how many deliveries were added.
    pub async fn queue_webhook_event(
        &self,
        workspace_id: WorkspaceId,
        event_id: &str,
        event: balas_domain::WebhookEvent,
        payload: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, workspace_id, event_id, event, payload, state, attempts, \
             next_attempt_at, created_at) \
             SELECT id, workspace_id, $2, $3, $4, 'pending', 0, $5, $5 FROM webhooks \
             WHERE workspace_id = $1 AND (',' || events || ',') LIKE $6 \
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(workspace_id.0)
        .bind(event_id)
        .bind(event.as_str())
        .bind(payload)
        .bind(now.0)
        .bind(format!("%,{},%", event.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether any webhook exists (the dispatcher skips its work when none does).
    pub async fn any_webhooks(&self) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhooks LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(found.is_some())
    }

    /// Claims up to `limit` deliveries due at `now` for an attempt: each is put out of reach of
    /// other claimers for `lease_ms` (the attempt records its outcome before then).
    pub async fn claim_deliveries(&self, now: Timestamp, lease_ms: i64, limit: u32) -> StoreResult<Vec<DueDelivery>> {
        // Read first (the dispatcher asks four times a second; most times nothing is due), then
        // claim each one that is still due, so that two dispatchers never take the same one.
        let rows = sqlx::query(
            "SELECT d.id, w.url, w.secret, d.event, d.payload, d.attempts FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at, d.id LIMIT $2",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let claimed = sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1 AND state = 'pending' \
                 AND next_attempt_at <= $3",
            )
            .bind(id)
            .bind(now.0 + lease_ms)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            due.push(DueDelivery {
                id,
                url: row.try_get(1)?,
                secret: row.try_get(2)?,
                event: row.try_get(3)?,
                payload: row.try_get(4)?,
                attempts: u32::try_from(row.try_get::<i64, _>(5)?).unwrap_or(0),
            });
        }
        Ok(due)
    }

    /// Records an attempt: its answer (status, start of the body or the error), and what comes
    /// next: delivered, another try at `retry_at`, or failed for good.
    pub async fn record_delivery(
        &self,
        id: i64,
        status: Option<u16>,
        response: &str,
        state: balas_domain::DeliveryState,
        retry_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, last_response = $3, state = $4, \
             next_attempt_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(status.map(i64::from))
        .bind(response)
        .bind(state.as_str())
        .bind(retry_at.map(|t| t.0))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A webhook's latest deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        workspace_id: WorkspaceId,
        webhook_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<balas_domain::WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = $1 AND webhook_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace_id.0)
            .bind(webhook_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Sends a delivery of the workspace again (at `now`, with a fresh count of attempts).
    pub async fn replay_delivery(&self, workspace_id: WorkspaceId, id: i64, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3 \
             WHERE workspace_id = $1 AND id = $2 AND state <> 'pending'",
        )
        .bind(workspace_id.0)
        .bind(id)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
