//! The AI agent's tables: the workspace's provider, each channel's profile and its versions, the
//! tokens used, and a conversation's handover to people.

use balas_domain::{
    AiChannel, AiConversationUsage, AiProfile, AiProfileVersion, AiSettings, ChannelId, ConversationId,
    ConversationStatus, ConversationSummary, Message, PhoneNumber, Timestamp, UserId, WorkspaceId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::messaging::{
    MESSAGE_COLUMNS, NewOutbound, conversation_by_id, conversation_columns, conversation_from_row, insert_outbound,
    message_from_row,
};
use crate::{Store, StoreError, StoreResult};

/// A workspace's provider settings with the key (only the AI worker and the playground read it).
#[derive(Debug, Clone)]
pub struct StoredAiSettings {
    pub settings: AiSettings,
    pub api_key: String,
}

fn profile_json(profile: &AiProfile) -> String {
    serde_json::to_string(profile).expect("AiProfile serializes")
}

fn parse_profile(json: &str) -> StoreResult<AiProfile> {
    serde_json::from_str(json).map_err(|_| StoreError::Corrupt("AI profile".into()))
}

/// A channel's AI from the five columns of [`AI_CHANNEL_SELECT`], starting at column `at`.
fn ai_channel_from_row(row: &AnyRow, at: usize) -> StoreResult<AiChannel> {
    let profile: Option<String> = row.try_get(at + 4)?;
    Ok(AiChannel {
        channel_id: ChannelId(row.try_get(at)?),
        channel_name: row.try_get(at + 1)?,
        enabled: row.try_get::<Option<i64>, _>(at + 2)?.unwrap_or(0) != 0,
        version: row.try_get::<Option<i64>, _>(at + 3)?.unwrap_or(0),
        profile: profile.as_deref().map(parse_profile).transpose()?.unwrap_or_default(),
    })
}

/// The provider from the four columns `base_url, api_key, model, monthly_token_cap` starting at
/// column `at`; `None` when the workspace has none (a left join that found nothing).
fn ai_settings_from_row(row: &AnyRow, at: usize) -> StoreResult<Option<StoredAiSettings>> {
    let Some(api_key) = row.try_get::<Option<String>, _>(at + 1)? else { return Ok(None) };
    let hint = api_key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<String>();
    Ok(Some(StoredAiSettings {
        settings: AiSettings {
            base_url: row.try_get(at)?,
            key_hint: Some(hint),
            model: row.try_get(at + 2)?,
            monthly_token_cap: row.try_get(at + 3)?,
        },
        api_key,
    }))
}

/// What the AI worker needs to know before a turn, read with one query (see
/// [`Store::ai_turn_context`]).
#[derive(Debug, Clone)]
pub struct AiTurnContext {
    pub conversation: ConversationSummary,
    pub channel: AiChannel,
    pub contact_opted_out: bool,
    /// The workspace's provider, if it set one.
    pub settings: Option<StoredAiSettings>,
    /// The workspace's time zone, if it set its sending rules.
    pub time_zone: Option<String>,
    /// Tokens the workspace used this month; counted only when it has a cap (0 otherwise).
    pub tokens_used: i64,
}

const AI_CHANNEL_SELECT: &str = "SELECT c.id, c.name, p.enabled, p.version, p.profile FROM channels c \
                                 LEFT JOIN ai_profiles p ON p.channel_id = c.id";

async fn add_ai_usage<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    workspace_id: WorkspaceId,
    conversation: ConversationId,
    month: &str,
    tokens: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO ai_usage (workspace_id, conversation_id, month, tokens) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, conversation_id, month) DO UPDATE SET tokens = ai_usage.tokens + excluded.tokens",
    )
    .bind(workspace_id.0)
    .bind(conversation.0)
    .bind(month)
    .bind(tokens)
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    pub async fn ai_settings(&self, workspace_id: WorkspaceId) -> StoreResult<Option<StoredAiSettings>> {
        let row =
            sqlx::query("SELECT base_url, api_key, model, monthly_token_cap FROM ai_settings WHERE workspace_id = $1")
                .bind(workspace_id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(|row| ai_settings_from_row(row, 0)).transpose()?.flatten())
    }

    /// A conversation of the workspace with its channel's AI, its contact's opt-out, the
    /// workspace's provider, time zone and (when it has a cap) the tokens it used in `month`: what a
    /// turn of the AI worker reads, in one round trip instead of seven.
    pub async fn ai_turn_context(
        &self,
        workspace_id: WorkspaceId,
        conversation: ConversationId,
        month: &str,
    ) -> StoreResult<Option<AiTurnContext>> {
        const SQL: &str = concat!(
            "SELECT ",
            conversation_columns!(),
            ", c.opted_out_at, ch.id, ch.name, p.enabled, p.version, p.profile, \
             s.base_url, s.api_key, s.model, s.monthly_token_cap, r.time_zone, \
             CASE WHEN s.monthly_token_cap > 0 THEN (SELECT CAST(COALESCE(SUM(u.tokens), 0) AS BIGINT) \
             FROM ai_usage u WHERE u.workspace_id = v.workspace_id AND u.month = $3) ELSE 0 END \
             FROM conversations v JOIN contacts c ON c.id = v.contact_id JOIN channels ch ON ch.id = v.channel_id \
             LEFT JOIN ai_profiles p ON p.channel_id = ch.id LEFT JOIN ai_settings s ON s.workspace_id = v.workspace_id \
             LEFT JOIN sending_rules r ON r.workspace_id = v.workspace_id \
             WHERE v.workspace_id = $1 AND v.id = $2"
        );
        let row =
            sqlx::query(SQL).bind(workspace_id.0).bind(conversation.0).bind(month).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AiTurnContext {
            conversation: conversation_from_row(&row)?,
            contact_opted_out: row.try_get::<Option<i64>, _>(13)?.is_some(),
            channel: ai_channel_from_row(&row, 14)?,
            settings: ai_settings_from_row(&row, 19)?,
            time_zone: row.try_get(23)?,
            tokens_used: row.try_get(24)?,
        }))
    }

    /// Saves the provider; `api_key` `None` keeps the saved key.
    pub async fn set_ai_settings(
        &self,
        workspace_id: WorkspaceId,
        base_url: &str,
        api_key: Option<&str>,
        model: &str,
        cap: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ai_settings (workspace_id, base_url, api_key, model, monthly_token_cap, updated_at) \
             VALUES ($1, $2, COALESCE($3, ''), $4, $5, $6) ON CONFLICT (workspace_id) DO UPDATE SET \
             base_url = excluded.base_url, api_key = COALESCE($3, ai_settings.api_key), model = excluded.model, \
             monthly_token_cap = excluded.monthly_token_cap, updated_at = excluded.updated_at",
        )
        .bind(workspace_id.0)
        .bind(base_url)
        .bind(api_key)
        .bind(model)
        .bind(cap)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every channel of the workspace with its AI (the default profile where none was saved).
    pub async fn ai_channels(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<AiChannel>> {
        let sql = format!("{AI_CHANNEL_SELECT} WHERE c.workspace_id = $1 ORDER BY c.id");
        let rows = sqlx::query(&sql).bind(workspace_id.0).fetch_all(&self.pool).await?;
        rows.iter().map(|row| ai_channel_from_row(row, 0)).collect()
    }

    /// A channel's AI, if the channel is the workspace's.
    pub async fn ai_channel(&self, workspace_id: WorkspaceId, channel: ChannelId) -> StoreResult<Option<AiChannel>> {
        let sql = format!("{AI_CHANNEL_SELECT} WHERE c.workspace_id = $1 AND c.id = $2");
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(channel.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(|row| ai_channel_from_row(row, 0)).transpose()
    }

    /// Saves a new version of a channel's profile (the channel must be the workspace's); returns
    /// its number.
    pub async fn save_ai_profile(
        &self,
        workspace_id: WorkspaceId,
        channel: ChannelId,
        profile: &AiProfile,
        note: &str,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let (_turn, mut tx) = self.begin_write().await?;
        let owned = sqlx::query("SELECT 1 FROM channels WHERE id = $1 AND workspace_id = $2")
            .bind(channel.0)
            .bind(workspace_id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound);
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM ai_profile_versions WHERE channel_id = $1")
                .bind(channel.0)
                .fetch_one(&mut *tx)
                .await?;
        let version = current.unwrap_or(0) + 1;
        let json = profile_json(profile);
        sqlx::query(
            "INSERT INTO ai_profile_versions (channel_id, workspace_id, version, profile, note, changed_by, \
             changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(channel.0)
        .bind(workspace_id.0)
        .bind(version)
        .bind(&json)
        .bind(note)
        .bind(by.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ai_profiles (channel_id, workspace_id, enabled, version, profile, updated_at) \
             VALUES ($1, $2, 0, $3, $4, $5) ON CONFLICT (channel_id) DO UPDATE SET version = excluded.version, \
             profile = excluded.profile, updated_at = excluded.updated_at",
        )
        .bind(channel.0)
        .bind(workspace_id.0)
        .bind(version)
        .bind(&json)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Turns a channel's AI on or off (a channel without a saved profile gets `default`).
    pub async fn set_ai_enabled(
        &self,
        workspace_id: WorkspaceId,
        channel: ChannelId,
        enabled: bool,
        default: &AiProfile,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO ai_profiles (channel_id, workspace_id, enabled, version, profile, updated_at) \
             SELECT c.id, c.workspace_id, $3, 0, $4, $5 FROM channels c WHERE c.id = $1 AND c.workspace_id = $2 \
             ON CONFLICT (channel_id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(channel.0)
        .bind(workspace_id.0)
        .bind(i64::from(enabled))
        .bind(profile_json(default))
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// A channel's saved versions, newest first (at most `limit`).
    pub async fn ai_profile_versions(
        &self,
        workspace_id: WorkspaceId,
        channel: ChannelId,
        limit: i64,
    ) -> StoreResult<Vec<AiProfileVersion>> {
        let rows = sqlx::query(
            "SELECT v.version, v.profile, v.note, u.name, v.changed_at FROM ai_profile_versions v \
             LEFT JOIN users u ON u.id = v.changed_by WHERE v.workspace_id = $1 AND v.channel_id = $2 \
             ORDER BY v.version DESC LIMIT $3",
        )
        .bind(workspace_id.0)
        .bind(channel.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AiProfileVersion {
                    version: row.try_get(0)?,
                    profile: parse_profile(&row.try_get::<String, _>(1)?)?,
                    note: row.try_get(2)?,
                    changed_by: row.try_get(3)?,
                    changed_at: Timestamp(row.try_get(4)?),
                })
            })
            .collect()
    }

    /// Adds `tokens` to a conversation's use this `month` (`2026-11`).
    pub async fn add_ai_usage(
        &self,
        workspace_id: WorkspaceId,
        conversation: ConversationId,
        month: &str,
        tokens: i64,
    ) -> StoreResult<()> {
        add_ai_usage(&self.pool, workspace_id, conversation, month, tokens).await
    }

    /// Stores the AI's answer in `conversation` as queued and counts the turn's `tokens` this
    /// `month`, in one write; unless an agent stepped in while the model was thinking (the AI is
    /// paused there now): then only the tokens are counted, and the answer is dropped (`None`).
    /// One write instead of three round trips: on SQLite every write takes the one write lock.
    pub async fn queue_ai_answer(
        &self,
        conversation: ConversationId,
        answer: &NewOutbound<'_>,
        month: &str,
        tokens: i64,
        now: Timestamp,
    ) -> StoreResult<Option<(Message, ConversationSummary)>> {
        let (_turn, mut tx) = self.begin_write().await?;
        if tokens > 0 {
            add_ai_usage(&mut *tx, answer.workspace_id, conversation, month, tokens).await?;
        }
        let paused: Option<i64> =
            sqlx::query_scalar("SELECT ai_paused FROM conversations WHERE id = $1 AND workspace_id = $2")
                .bind(conversation.0)
                .bind(answer.workspace_id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let queued = match paused {
            Some(0) => Some(insert_outbound(&mut tx, answer, ConversationStatus::Open, now).await?),
            _ => None,
        };
        tx.commit().await?;
        Ok(queued)
    }

    /// Tokens the workspace used in `month`, and those of `conversation` (when given).
    pub async fn ai_usage(
        &self,
        workspace_id: WorkspaceId,
        month: &str,
        conversation: Option<ConversationId>,
    ) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(
            // SUM of a BIGINT is a NUMERIC on PostgreSQL: cast back.
            "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN conversation_id = $3 THEN tokens ELSE 0 END), 0) AS BIGINT) \
             FROM ai_usage WHERE workspace_id = $1 AND month = $2",
        )
        .bind(workspace_id.0)
        .bind(month)
        .bind(conversation.map_or(0, |c| c.0))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The `limit` conversations of the workspace that used the most tokens in `month`, most first.
    pub async fn ai_top_conversations(
        &self,
        workspace_id: WorkspaceId,
        month: &str,
        limit: usize,
    ) -> StoreResult<Vec<AiConversationUsage>> {
        let rows = sqlx::query(
            "SELECT u.conversation_id, ct.phone, ct.name, ch.name, u.tokens FROM ai_usage u \
             JOIN conversations c ON c.id = u.conversation_id \
             JOIN contacts ct ON ct.id = c.contact_id \
             JOIN channels ch ON ch.id = c.channel_id \
             WHERE u.workspace_id = $1 AND u.month = $2 AND u.tokens > 0 \
             ORDER BY u.tokens DESC, u.conversation_id LIMIT $3",
        )
        .bind(workspace_id.0)
        .bind(month)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AiConversationUsage {
                    conversation_id: ConversationId(row.try_get(0)?),
                    contact_phone: PhoneNumber::parse(&row.try_get::<String, _>(1)?)
                        .map_err(|_| StoreError::Corrupt("contact phone".into()))?,
                    contact_name: row.try_get(2)?,
                    channel_name: row.try_get(3)?,
                    tokens: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Pauses or resumes the AI in a conversation of the workspace.
    pub async fn set_ai_paused(
        &self,
        workspace_id: WorkspaceId,
        conversation: ConversationId,
        paused: bool,
    ) -> StoreResult<ConversationSummary> {
        let done = sqlx::query("UPDATE conversations SET ai_paused = $3 WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(conversation.0)
            .bind(i64::from(paused))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        conversation_by_id(&self.pool, conversation).await
    }

    /// Hands a conversation to people: pending, unassigned, the AI paused, and a private note
    /// (from the AI) saying why; in one transaction.
    pub async fn hand_over(
        &self,
        conversation: ConversationId,
        note: &str,
        note_id: &str,
        now: Timestamp,
    ) -> StoreResult<(Message, ConversationSummary)> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query(
            "UPDATE conversations SET status = 'pending', assignee = NULL, ai_paused = 1, last_message_at = $2 \
             WHERE id = $1",
        )
        .bind(conversation.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "INSERT INTO messages (workspace_id, conversation_id, channel_id, direction, sender, body, wa_id, \
             status, note, created_at, updated_at) SELECT v.workspace_id, v.id, v.channel_id, 'outbound', 'ai', \
             $2, $3, 'received', 1, $4, $4 FROM conversations v WHERE v.id = $1 RETURNING {MESSAGE_COLUMNS}"
        );
        let row =
            sqlx::query(&sql).bind(conversation.0).bind(note).bind(note_id).bind(now.0).fetch_one(&mut *tx).await?;
        let message = message_from_row(&row)?;
        let summary = conversation_by_id(&mut *tx, conversation).await?;
        tx.commit().await?;
        Ok((message, summary))
    }

    /// The latest `limit` messages of a conversation (notes too: a handover note ends what the AI
    /// answers), oldest first.
    pub async fn recent_messages(&self, conversation: ConversationId, limit: i64) -> StoreResult<Vec<Message>> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(&sql).bind(conversation.0).bind(limit).fetch_all(&self.pool).await?;
        let mut messages = rows.iter().map(message_from_row).collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }
}
