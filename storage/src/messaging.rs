//! Channels, contacts, conversations and messages.
//!
//! Inbound messages are stored idempotently (one row per channel and WhatsApp id), and message
//! statuses only move forward, whatever order receipts arrive in.

use balas_domain::{
    Channel, ChannelId, ChannelName, ChannelState, ContactId, ConversationId, ConversationStatus, ConversationSummary,
    Direction, LinkMethod, Media, Message, MessageId, MessageStatus, Pairing, PhoneNumber, Provider, RatePerSecond,
    SenderKind, Timestamp, UserId, WorkspaceId,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Conflict, Store, StoreError, StoreResult, on_unique};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// A new channel to store.
#[derive(Debug, Clone)]
pub struct NewChannel<'a> {
    pub workspace_id: WorkspaceId,
    pub name: &'a ChannelName,
    pub provider: Provider,
    pub phone: &'a PhoneNumber,
    pub rate: RatePerSecond,
    pub link_method: LinkMethod,
}

/// An outbound message to store as `queued`.
#[derive(Debug, Clone)]
pub struct NewOutbound<'a> {
    pub workspace_id: WorkspaceId,
    pub channel_id: ChannelId,
    pub to: &'a PhoneNumber,
    /// The text, or the caption of `media` (checked by the caller).
    pub text: &'a str,
    pub media: Option<&'a Media>,
    pub sender: SenderKind,
    pub sender_user: Option<UserId>,
    pub wa_id: &'a str,
}

/// An inbound message as the worker reported it.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub channel: &'a Channel,
    pub wa_id: &'a str,
    pub from: &'a PhoneNumber,
    pub push_name: Option<&'a str>,
    pub text: &'a str,
    pub media: Option<&'a Media>,
}

/// Which message a status update is about.
#[derive(Debug, Clone, Copy)]
pub enum MessageKey<'a> {
    Id(MessageId),
    WaId(ChannelId, &'a str),
}

/// What ingest stores from the WhatsApp workers' events: many in one transaction
/// ([`Store::store_ingested`]).
#[derive(Debug, Clone)]
pub enum Ingested<'a> {
    /// A customer's message.
    Inbound(NewInbound<'a>),
    /// An outbound message's progress (sent, a receipt, a failure).
    Status { key: MessageKey<'a>, status: MessageStatus, error: Option<&'a str> },
}

/// What became of an [`Ingested`] event.
#[derive(Debug, Clone)]
pub enum IngestedOutcome {
    /// The customer's message and its conversation, to announce: stored now, or before (a
    /// redelivered event; the dashboards keep a message once by its id).
    Inbound(Option<(Box<Message>, Box<ConversationSummary>)>),
    /// The status change, when it moved the message forward.
    Status(Option<StatusChange>),
}

/// A status that was applied (it moved the message forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub status: MessageStatus,
    pub error: Option<String>,
}

pub(crate) const CHANNEL_COLUMNS: &str = "id, workspace_id, name, provider, phone, rate_per_sec, state, state_detail, \
                                           created_at, read_receipts, linked_name, link_method, pairing";
pub(crate) const MESSAGE_COLUMNS: &str = "id, workspace_id, conversation_id, channel_id, direction, sender, \
                                          sender_user, body, wa_id, status, error, created_at, updated_at, note, media";
/// The columns [`conversation_from_row`] reads (13), from `conversations v JOIN contacts c`; a
/// macro so that queries that read more than the conversation can start with them.
macro_rules! conversation_columns {
    () => {
        "v.id, v.workspace_id, v.channel_id, v.contact_id, c.phone, c.name, v.status, v.assignee, v.unread, \
         v.last_message_at, v.last_preview, (SELECT string_agg(CAST(x.label_id AS TEXT), ',') \
         FROM conversation_labels x WHERE x.conversation_id = v.id), v.ai_paused"
    };
}
pub(crate) use conversation_columns;
pub(crate) const CONVERSATION_SELECT: &str =
    concat!("SELECT ", conversation_columns!(), " FROM conversations v JOIN contacts c ON c.id = v.contact_id");

/// The SQL rank of a stored status, matching [`MessageStatus::rank`].
const STATUS_RANK: &str = "CASE status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'failed' THEN 1 \
                           WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END";

impl Store {
    pub async fn create_channel(&self, channel: &NewChannel<'_>, now: Timestamp) -> StoreResult<Channel> {
        let sql = format!(
            "INSERT INTO channels (workspace_id, name, provider, phone, rate_per_sec, state, created_at, link_method) \
             VALUES ($1, $2, $3, $4, $5, 'idle', $6, $7) RETURNING {CHANNEL_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(channel.workspace_id.0)
            .bind(channel.name.as_str())
            .bind(channel.provider.as_str())
            .bind(channel.phone.as_str())
            .bind(i64::from(channel.rate.get()))
            .bind(now.0)
            .bind(channel.link_method.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(on_unique(Conflict::PhoneTaken))?;
        channel_from_row(&row)
    }

    /// Shows a code to link the channel's number with (or none). Returns false when nothing changed.
    pub async fn set_channel_pairing(&self, id: ChannelId, pairing: Option<&Pairing>) -> StoreResult<bool> {
        let json = pairing.map(|p| serde_json::to_string(p).expect("a pairing serializes"));
        let done =
            sqlx::query("UPDATE channels SET pairing = $2 WHERE id = $1 AND COALESCE(pairing, '') <> COALESCE($2, '')")
                .bind(id.0)
                .bind(json)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the account the phone linked (its number may differ from the one the admin typed);
    /// the pairing code is gone. Refused when another channel has that number.
    pub async fn set_channel_linked(&self, id: ChannelId, phone: &PhoneNumber, name: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE channels SET phone = $2, linked_name = $3, pairing = NULL WHERE id = $1")
            .bind(id.0)
            .bind(phone.as_str())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(on_unique(Conflict::PhoneTaken))?;
        Ok(())
    }

    /// Asks for the channel's number to be linked (again) with `method`: a worker takes it up and
    /// shows a new code. Only a channel of the workspace.
    pub async fn relink_channel(
        &self,
        workspace_id: WorkspaceId,
        id: ChannelId,
        method: LinkMethod,
    ) -> StoreResult<Channel> {
        let sql = format!(
            "UPDATE channels SET state = 'idle', state_detail = NULL, pairing = NULL, link_method = $3 \
             WHERE id = $1 AND workspace_id = $2 RETURNING {CHANNEL_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .bind(workspace_id.0)
            .bind(method.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        channel_from_row(&row)
    }

    /// The channels of one workspace, oldest first.
    pub async fn channels(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<Channel>> {
        let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE workspace_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(workspace_id.0).fetch_all(&self.pool).await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// Every channel of every workspace: what the WhatsApp workers share out between them.
    pub async fn all_channels(&self) -> StoreResult<Vec<Channel>> {
        let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// One channel by id, whatever its workspace (for the pipeline, which acts for the system).
    pub async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// Records what the channel's worker reported (and drops the pairing code unless it is still
    /// waiting for a link). Returns false when nothing changed.
    pub async fn set_channel_state(
        &self,
        id: ChannelId,
        state: ChannelState,
        detail: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            // A code to link the number with means nothing once the channel stops waiting for a link.
            "UPDATE channels SET state = $2, state_detail = $3, \
             pairing = CASE WHEN $2 = 'pairing' THEN pairing ELSE NULL END \
             WHERE id = $1 AND (state <> $2 OR COALESCE(state_detail, '') <> COALESCE($3, ''))",
        )
        .bind(id.0)
        .bind(state.as_str())
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores an outbound message as `queued` in the contact's conversation on the channel (both
    /// made when missing). The channel must belong to the workspace.
    pub async fn queue_message(
        &self,
        message: &NewOutbound<'_>,
        now: Timestamp,
    ) -> StoreResult<(Message, ConversationSummary)> {
        let (_turn, mut tx) = self.begin_write().await?;
        let queued = insert_outbound(&mut tx, message, ConversationStatus::Open, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Stores a message a customer sent, once: `None` when this WhatsApp id was stored already.
    /// The contact and the conversation are made when missing; a resolved conversation opens again.
    pub async fn store_inbound(
        &self,
        inbound: &NewInbound<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<(Message, ConversationSummary)>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let Some(stored) = insert_inbound(&mut tx, inbound, now).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// Stores the workers' events in order in one transaction: under load, ingest writes a read's
    /// worth of events with one commit (and on SQLite takes the write lock once), instead of one
    /// per event. All or nothing: on an error nothing is stored.
    pub async fn store_ingested(&self, items: &[Ingested<'_>], now: Timestamp) -> StoreResult<Vec<IngestedOutcome>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            outcomes.push(match item {
                Ingested::Inbound(inbound) => {
                    // A redelivery finds its message (and writes nothing: the contact and the
                    // conversation stay as they are).
                    let found = match message_by_wa_id(&mut tx, inbound.channel.id, inbound.wa_id).await? {
                        Some(found) => Some(found),
                        None => insert_inbound(&mut tx, inbound, now).await?,
                    };
                    IngestedOutcome::Inbound(found.map(|(m, c)| (Box::new(m), Box::new(c))))
                }
                Ingested::Status { key, status, error } => {
                    IngestedOutcome::Status(advance_message(&mut *tx, *key, *status, *error, now).await?)
                }
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Moves a message to `status` if that is progress; `None` when it is not (an old or repeated
    /// receipt) or the message is unknown.
    pub async fn advance_message(
        &self,
        key: MessageKey<'_>,
        status: MessageStatus,
        error: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<StatusChange>> {
        advance_message(&self.pool, key, status, error, now).await
    }

    /// The conversation between a channel and a phone number, if there is one.
    pub async fn conversation_with(
        &self,
        channel_id: ChannelId,
        phone: &PhoneNumber,
    ) -> StoreResult<Option<ConversationSummary>> {
        let sql = format!("{CONVERSATION_SELECT} WHERE v.channel_id = $1 AND c.phone = $2");
        let row = sqlx::query(&sql).bind(channel_id.0).bind(phone.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    /// The newest `limit` messages of a conversation before `before` (a message id), oldest first.
    pub async fn messages(
        &self,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE workspace_id = $1 AND conversation_id = $2 AND id < $3 \
             ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace_id.0)
            .bind(conversation_id.0)
            .bind(before.map_or(i64::MAX, |id| id.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut messages = rows.iter().map(message_from_row).collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// A message of a channel by its WhatsApp id, with its conversation.
    pub async fn message_by_wa_id(
        &self,
        channel_id: ChannelId,
        wa_id: &str,
    ) -> StoreResult<Option<(Message, ConversationSummary)>> {
        let mut conn = self.pool.acquire().await?;
        message_by_wa_id(&mut conn, channel_id, wa_id).await
    }

    /// One message, within a workspace.
    pub async fn message(&self, workspace_id: WorkspaceId, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(message_from_row).transpose()
    }
}

/// Stores a customer's message, its contact and conversation; `None` when its WhatsApp id is
/// stored already.
async fn insert_inbound(
    tx: &mut Transaction<'_, Any>,
    inbound: &NewInbound<'_>,
    now: Timestamp,
) -> StoreResult<Option<(Message, ConversationSummary)>> {
    let channel = inbound.channel;
    let contact = upsert_contact(tx, channel.workspace_id, inbound.from, inbound.push_name, now).await?;
    let conversation =
        upsert_conversation(tx, channel.workspace_id, channel.id, contact, ConversationStatus::Open, now).await?;
    let sql = format!(
        "INSERT INTO messages (workspace_id, conversation_id, channel_id, direction, sender, body, wa_id, status, \
         created_at, updated_at, media) VALUES ($1, $2, $3, 'inbound', 'contact', $4, $5, 'received', $6, $6, $7) \
         ON CONFLICT (channel_id, wa_id) DO NOTHING RETURNING {MESSAGE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(channel.workspace_id.0)
        .bind(conversation.0)
        .bind(channel.id.0)
        .bind(inbound.text)
        .bind(inbound.wa_id)
        .bind(now.0)
        .bind(media_json(inbound.media))
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored = message_from_row(&row)?;
    sqlx::query(
        "UPDATE conversations SET unread = unread + 1, last_message_at = $2, last_preview = $3, \
         status = CASE WHEN status = 'resolved' THEN 'open' ELSE status END WHERE id = $1",
    )
    .bind(conversation.0)
    .bind(now.0)
    .bind(preview(inbound.text, inbound.media))
    .execute(&mut **tx)
    .await?;
    let summary = conversation_by_id(&mut **tx, conversation).await?;
    Ok(Some((stored, summary)))
}

/// A message by its WhatsApp id, with its conversation.
async fn message_by_wa_id(
    conn: &mut sqlx::AnyConnection,
    channel_id: ChannelId,
    wa_id: &str,
) -> StoreResult<Option<(Message, ConversationSummary)>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND wa_id = $2");
    let Some(row) = sqlx::query(&sql).bind(channel_id.0).bind(wa_id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let message = message_from_row(&row)?;
    let conversation = conversation_by_id(&mut *conn, message.conversation_id).await?;
    Ok(Some((message, conversation)))
}

/// Moves a message to `status` if that is progress; `None` when it is not (an old or repeated
/// receipt) or the message is unknown.
async fn advance_message<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    key: MessageKey<'_>,
    status: MessageStatus,
    error: Option<&str>,
    now: Timestamp,
) -> StoreResult<Option<StatusChange>> {
    let (filter, first, second) = match key {
        MessageKey::Id(id) => ("id = $4 AND $5 = ''", id.0, ""),
        MessageKey::WaId(channel, wa_id) => ("channel_id = $4 AND wa_id = $5", channel.0, wa_id),
    };
    // `sent_at`: when it first reached the network (a receipt may come before the ack).
    let sql = format!(
        "UPDATE messages SET status = $1, error = $2, updated_at = $3, \
         sent_at = COALESCE(sent_at, CASE WHEN $1 IN ('sent', 'delivered', 'read') THEN $3 END) \
         WHERE {filter} AND direction = 'outbound' AND {STATUS_RANK} < $6 \
         RETURNING id, conversation_id, workspace_id"
    );
    let row = sqlx::query(&sql)
        .bind(status.as_str())
        .bind(error)
        .bind(now.0)
        .bind(first)
        .bind(second)
        .bind(status.rank())
        .fetch_optional(executor)
        .await?;
    row.map(|row| {
        Ok(StatusChange {
            message_id: MessageId(row.try_get(0)?),
            conversation_id: ConversationId(row.try_get(1)?),
            workspace_id: WorkspaceId(row.try_get(2)?),
            status,
            error: error.map(str::to_owned),
        })
    })
    .transpose()
}

async fn upsert_contact(
    tx: &mut Transaction<'_, Any>,
    workspace_id: WorkspaceId,
    phone: &PhoneNumber,
    name: Option<&str>,
    now: Timestamp,
) -> StoreResult<ContactId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (workspace_id, phone, name, created_at, last_message_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (workspace_id, phone) DO UPDATE SET name = COALESCE(contacts.name, excluded.name), \
         last_message_at = excluded.last_message_at RETURNING id",
    )
    .bind(workspace_id.0)
    .bind(phone.as_str())
    .bind(name)
    .bind(now.0)
    .fetch_one(&mut **tx)
    .await?;
    Ok(ContactId(id))
}

async fn upsert_conversation(
    tx: &mut Transaction<'_, Any>,
    workspace_id: WorkspaceId,
    channel_id: ChannelId,
    contact_id: ContactId,
    new_status: ConversationStatus,
    now: Timestamp,
) -> StoreResult<ConversationId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO conversations (workspace_id, channel_id, contact_id, status, unread, last_message_at, created_at) \
         VALUES ($1, $2, $3, $5, 0, $4, $4) \
         ON CONFLICT (channel_id, contact_id) DO UPDATE SET status = conversations.status RETURNING id",
    )
    .bind(workspace_id.0)
    .bind(channel_id.0)
    .bind(contact_id.0)
    .bind(now.0)
    .bind(new_status.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(ConversationId(id))
}

/// Stores an outbound message as `queued` in its conversation (made, with `new_status`, when
/// missing). `NotFound` when the channel is not the workspace's.
pub(crate) async fn insert_outbound(
    tx: &mut Transaction<'_, Any>,
    message: &NewOutbound<'_>,
    new_status: ConversationStatus,
    now: Timestamp,
) -> StoreResult<(Message, ConversationSummary)> {
    // Write first: an SQLite transaction that reads first cannot always turn into a writer
    // later (SQLITE_BUSY_SNAPSHOT), whereas one that writes first waits for its turn.
    let contact = upsert_contact(tx, message.workspace_id, message.to, None, now).await?;
    let owned: Option<i64> = sqlx::query_scalar("SELECT id FROM channels WHERE id = $1 AND workspace_id = $2")
        .bind(message.channel_id.0)
        .bind(message.workspace_id.0)
        .fetch_optional(&mut **tx)
        .await?;
    if owned.is_none() {
        return Err(StoreError::NotFound);
    }
    let conversation =
        upsert_conversation(tx, message.workspace_id, message.channel_id, contact, new_status, now).await?;
    let sql = format!(
        "INSERT INTO messages (workspace_id, conversation_id, channel_id, direction, sender, sender_user, body, \
         wa_id, status, created_at, updated_at, media) \
         VALUES ($1, $2, $3, 'outbound', $4, $5, $6, $7, 'queued', $8, $8, $9) RETURNING {MESSAGE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(message.workspace_id.0)
        .bind(conversation.0)
        .bind(message.channel_id.0)
        .bind(message.sender.as_str())
        .bind(message.sender_user.map(|u| u.0))
        .bind(message.text)
        .bind(message.wa_id)
        .bind(now.0)
        .bind(media_json(message.media))
        .fetch_one(&mut **tx)
        .await?;
    let stored = message_from_row(&row)?;
    // An agent's reply takes the conversation over from the AI.
    sqlx::query(
        "UPDATE conversations SET last_message_at = $2, last_preview = $3, \
         ai_paused = CASE WHEN $4 = 'agent' THEN 1 ELSE ai_paused END WHERE id = $1",
    )
    .bind(conversation.0)
    .bind(now.0)
    .bind(preview(message.text, message.media))
    .bind(message.sender.as_str())
    .execute(&mut **tx)
    .await?;
    let summary = conversation_by_id(&mut **tx, conversation).await?;
    Ok((stored, summary))
}

pub(crate) async fn conversation_by_id<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    id: ConversationId,
) -> StoreResult<ConversationSummary> {
    let sql = format!("{CONVERSATION_SELECT} WHERE v.id = $1");
    let row = sqlx::query(&sql).bind(id.0).fetch_one(executor).await?;
    conversation_from_row(&row)
}

/// The start of a message, as the conversation list shows it (a file's label before its caption).
pub(crate) fn preview(body: &str, media: Option<&Media>) -> String {
    const PREVIEW_CHARS: usize = 120;
    let text = match media {
        Some(media) if body.is_empty() => media.label(),
        Some(media) => format!("{} · {body}", media.label()),
        None => body.to_owned(),
    };
    text.chars().take(PREVIEW_CHARS).collect()
}

fn media_json(media: Option<&Media>) -> Option<String> {
    media.map(|media| serde_json::to_string(media).expect("Media serializes"))
}

pub(crate) fn channel_from_row(row: &AnyRow) -> StoreResult<Channel> {
    Ok(Channel {
        id: ChannelId(row.try_get(0)?),
        workspace_id: WorkspaceId(row.try_get(1)?),
        name: row.try_get(2)?,
        provider: Provider::parse(&row.try_get::<String, _>(3)?).ok_or_else(|| corrupt("channel provider"))?,
        phone: PhoneNumber::parse(&row.try_get::<String, _>(4)?).map_err(|_| corrupt("channel phone"))?,
        rate: RatePerSecond::parse(row.try_get(5)?).map_err(|_| corrupt("channel rate"))?,
        state: ChannelState::parse(&row.try_get::<String, _>(6)?).ok_or_else(|| corrupt("channel state"))?,
        state_detail: row.try_get(7)?,
        created_at: Timestamp(row.try_get(8)?),
        read_receipts: row.try_get::<i64, _>(9)? != 0,
        linked_name: row.try_get(10)?,
        link_method: LinkMethod::parse(&row.try_get::<String, _>(11)?).ok_or_else(|| corrupt("channel link method"))?,
        pairing: row
            .try_get::<Option<String>, _>(12)?
            .map(|json| serde_json::from_str(&json).map_err(|_| corrupt("channel pairing")))
            .transpose()?,
    })
}

pub(crate) fn message_from_row(row: &AnyRow) -> StoreResult<Message> {
    let direction = match row.try_get::<String, _>(4)?.as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        _ => return Err(corrupt("message direction")),
    };
    Ok(Message {
        id: MessageId(row.try_get(0)?),
        workspace_id: WorkspaceId(row.try_get(1)?),
        conversation_id: ConversationId(row.try_get(2)?),
        channel_id: ChannelId(row.try_get(3)?),
        direction,
        sender: SenderKind::parse(&row.try_get::<String, _>(5)?).ok_or_else(|| corrupt("message sender"))?,
        sender_user: row.try_get::<Option<i64>, _>(6)?.map(UserId),
        body: row.try_get(7)?,
        wa_id: row.try_get(8)?,
        status: MessageStatus::parse(&row.try_get::<String, _>(9)?).ok_or_else(|| corrupt("message status"))?,
        error: row.try_get(10)?,
        created_at: Timestamp(row.try_get(11)?),
        updated_at: Timestamp(row.try_get(12)?),
        note: row.try_get::<i64, _>(13)? != 0,
        media: row
            .try_get::<Option<String>, _>(14)?
            .map(|json| serde_json::from_str(&json).map_err(|_| corrupt("message media")))
            .transpose()?,
    })
}

pub(crate) fn conversation_from_row(row: &AnyRow) -> StoreResult<ConversationSummary> {
    Ok(ConversationSummary {
        id: ConversationId(row.try_get(0)?),
        workspace_id: WorkspaceId(row.try_get(1)?),
        channel_id: ChannelId(row.try_get(2)?),
        contact_id: ContactId(row.try_get(3)?),
        contact_phone: PhoneNumber::parse(&row.try_get::<String, _>(4)?).map_err(|_| corrupt("contact phone"))?,
        contact_name: row.try_get(5)?,
        status: ConversationStatus::parse(&row.try_get::<String, _>(6)?)
            .ok_or_else(|| corrupt("conversation status"))?,
        assignee: row.try_get::<Option<i64>, _>(7)?.map(UserId),
        unread: row.try_get(8)?,
        last_message_at: Timestamp(row.try_get(9)?),
        last_preview: row.try_get(10)?,
        labels: {
            let ids: Option<String> = row.try_get(11)?;
            let mut ids = ids
                .unwrap_or_default()
                .split(',')
                .filter(|id| !id.is_empty())
                .map(|id| id.parse().map(balas_domain::LabelId).map_err(|_| corrupt("conversation label")))
                .collect::<StoreResult<Vec<_>>>()?;
            ids.sort();
            ids
        },
        ai_paused: row.try_get::<i64, _>(12)? != 0,
    })
}
