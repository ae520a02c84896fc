//! The shared inbox: listing and filtering conversations, assignment, status, what agents have
//! read, private notes, retries and canned responses. Every query is scoped to a workspace.

use balas_domain::{
    Agent, Assignment, CannedResponse, ContactId, ConversationId, ConversationStatus, ConversationSummary, InboxFilter,
    Message, MessageId, MessageText, PhoneNumber, Shortcut, Timestamp, UserId, WorkspaceId,
};
use sqlx::Row;

use crate::messaging::{
    CONVERSATION_SELECT, MESSAGE_COLUMNS, conversation_by_id, conversation_from_row, message_from_row,
};
use crate::{Conflict, Store, StoreError, StoreResult, on_unique};

/// Where a page of the conversation list starts: after this conversation (newest activity first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub last_message_at: Timestamp,
    pub id: ConversationId,
}

/// What opening a conversation changed: the conversation, and the customer's messages that now
/// get a read receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    pub conversation: ConversationSummary,
    pub phone: PhoneNumber,
    pub wa_ids: Vec<String>,
    /// Whether the unread count went down (so other agents should hear about it).
    pub was_unread: bool,
}

/// A failed message queued again, with its retry number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub message: Message,
    pub retry: u32,
    pub to: PhoneNumber,
}

/// `NotFound` when a write changed nothing (the row is not in the workspace).
fn changed(done: &sqlx::any::AnyQueryResult) -> StoreResult<()> {
    if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// `text` for a LIKE pattern, with its wildcards escaped (`\` is the escape character).
pub(crate) fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl Store {
    /// A page of a workspace's conversations that match `filter`, newest activity first, and
    /// whether more follow.
    pub async fn conversations(
        &self,
        workspace_id: WorkspaceId,
        me: UserId,
        filter: &InboxFilter,
        after: Option<ListCursor>,
        limit: u32,
    ) -> StoreResult<(Vec<ConversationSummary>, bool)> {
        let search = filter.search.trim();
        let (name_pattern, phone_pattern) = match (search.is_empty(), filter.search_digits()) {
            (true, _) => (None, None),
            (false, Some(digits)) => (None, Some(format!("%{digits}%"))),
            (false, None) => (Some(format!("%{}%", like_escape(&search.to_lowercase()))), None),
        };
        let assignment = match filter.assignment {
            Assignment::Mine => "AND v.assignee = $3",
            Assignment::Unassigned => "AND v.assignee IS NULL AND $3 = $3",
            Assignment::All => "AND $3 = $3",
        };
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE v.workspace_id = $1 AND ($2 = '' OR v.status = $2) {assignment} \
             AND ($4 = 0 OR v.channel_id = $4) \
             AND ($5 = '' OR LOWER(c.name) LIKE $5 ESCAPE '\\') AND ($6 = '' OR c.phone LIKE $6) \
             AND (v.last_message_at < $7 OR (v.last_message_at = $7 AND v.id < $8)) \
             AND ($10 = 0 OR v.id IN (SELECT x.conversation_id FROM conversation_labels x WHERE x.label_id = $10)) \
             ORDER BY v.last_message_at DESC, v.id DESC LIMIT $9"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace_id.0)
            .bind(filter.status.map_or("", |s| s.as_str()))
            .bind(me.0)
            .bind(filter.channel.map_or(0, |c| c.0))
            .bind(name_pattern.unwrap_or_default())
            .bind(phone_pattern.unwrap_or_default())
            .bind(after.map_or(i64::MAX, |a| a.last_message_at.0))
            .bind(after.map_or(i64::MAX, |a| a.id.0))
            .bind(i64::from(limit) + 1)
            .bind(filter.label.map_or(0, |l| l.0))
            .fetch_all(&self.pool)
            .await?;
        let mut list = rows.iter().map(conversation_from_row).collect::<StoreResult<Vec<_>>>()?;
        let more = list.len() > limit as usize;
        list.truncate(limit as usize);
        Ok((list, more))
    }

    /// Unread customer messages over all of a workspace's conversations.
    pub async fn total_unread(&self, workspace_id: WorkspaceId) -> StoreResult<i64> {
        let total: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(unread) AS BIGINT) FROM conversations WHERE workspace_id = $1")
                .bind(workspace_id.0)
                .fetch_one(&self.pool)
                .await?;
        Ok(total.unwrap_or(0))
    }

    /// One conversation of a workspace (`None` for another workspace's, as for a missing one).
    pub async fn conversation(
        &self,
        workspace_id: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>> {
        let sql = format!("{CONVERSATION_SELECT} WHERE v.workspace_id = $1 AND v.id = $2");
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    /// Every conversation of a contact (on any channel), newest activity first.
    pub async fn contact_conversations(
        &self,
        workspace_id: WorkspaceId,
        contact_id: ContactId,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE v.workspace_id = $1 AND v.contact_id = $2 \
             ORDER BY v.last_message_at DESC, v.id DESC LIMIT 50"
        );
        let rows = sqlx::query(&sql).bind(workspace_id.0).bind(contact_id.0).fetch_all(&self.pool).await?;
        rows.iter().map(conversation_from_row).collect()
    }

    /// Assigns a conversation to a member of its workspace (or to nobody). `NotFound` when the
    /// conversation or the member is not in the workspace.
    pub async fn assign(
        &self,
        workspace_id: WorkspaceId,
        id: ConversationId,
        assignee: Option<UserId>,
    ) -> StoreResult<ConversationSummary> {
        let done = sqlx::query(
            // An agent who takes the conversation takes it over from the AI.
            "UPDATE conversations SET assignee = $3, ai_paused = CASE WHEN $3 IS NULL THEN ai_paused ELSE 1 END \
             WHERE workspace_id = $1 AND id = $2 AND ($3 IS NULL OR EXISTS \
             (SELECT 1 FROM memberships m WHERE m.workspace_id = $1 AND m.user_id = $3))",
        )
        .bind(workspace_id.0)
        .bind(id.0)
        .bind(assignee.map(|u| u.0))
        .execute(&self.pool)
        .await?;
        changed(&done)?;
        conversation_by_id(&self.pool, id).await
    }

    pub async fn set_conversation_status(
        &self,
        workspace_id: WorkspaceId,
        id: ConversationId,
        status: ConversationStatus,
    ) -> StoreResult<ConversationSummary> {
        let done = sqlx::query("UPDATE conversations SET status = $3 WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(id.0)
            .bind(status.as_str())
            .execute(&self.pool)
            .await?;
        changed(&done)?;
        conversation_by_id(&self.pool, id).await
    }

    /// Marks a conversation read by the team: no unread messages, and the customer's messages
    /// not seen before are returned once (for read receipts), however often it is opened.
    pub async fn mark_conversation_read(
        &self,
        workspace_id: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Option<ReadMark>> {
        let (_turn, mut tx) = self.begin_write().await?;
        // Write first (see `queue_message`): this also takes the row for the rest of the transaction.
        let before: Option<i64> = sqlx::query_scalar(
            "UPDATE conversations SET unread = 0 WHERE workspace_id = $1 AND id = $2 RETURNING read_upto",
        )
        .bind(workspace_id.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(read_upto) = before else {
            tx.rollback().await?;
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT id, wa_id FROM messages WHERE conversation_id = $1 AND direction = 'inbound' AND id > $2 \
             ORDER BY id LIMIT 1000",
        )
        .bind(id.0)
        .bind(read_upto)
        .fetch_all(&mut *tx)
        .await?;
        let mut wa_ids = Vec::with_capacity(rows.len());
        let mut newest = read_upto;
        for row in &rows {
            newest = newest.max(row.try_get(0)?);
            wa_ids.push(row.try_get::<String, _>(1)?);
        }
        if newest > read_upto {
            sqlx::query("UPDATE conversations SET read_upto = $2 WHERE id = $1")
                .bind(id.0)
                .bind(newest)
                .execute(&mut *tx)
                .await?;
        }
        let conversation = conversation_by_id(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(Some(ReadMark {
            phone: conversation.contact_phone.clone(),
            conversation,
            was_unread: !wa_ids.is_empty(),
            wa_ids,
        }))
    }

    /// Adds a private note by an agent to a conversation of their workspace.
    pub async fn add_note(
        &self,
        workspace_id: WorkspaceId,
        id: ConversationId,
        author: UserId,
        text: &MessageText,
        note_id: &str,
        now: Timestamp,
    ) -> StoreResult<(Message, ConversationSummary)> {
        let sql = format!(
            "INSERT INTO messages (workspace_id, conversation_id, channel_id, direction, sender, sender_user, body, \
             wa_id, status, note, created_at, updated_at) \
             SELECT $1, v.id, v.channel_id, 'outbound', 'agent', $3, $4, $5, 'received', 1, $6, $6 \
             FROM conversations v WHERE v.workspace_id = $1 AND v.id = $2 RETURNING {MESSAGE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(workspace_id.0)
            .bind(id.0)
            .bind(author.0)
            .bind(text.as_str())
            .bind(note_id)
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let message = message_from_row(&row)?;
        let conversation = conversation_by_id(&self.pool, id).await?;
        Ok((message, conversation))
    }

    /// Puts a failed outbound message back to `queued` for another try. `NotFound` unless it is a
    /// failed message of the workspace.
    pub async fn requeue_failed(
        &self,
        workspace_id: WorkspaceId,
        id: MessageId,
        now: Timestamp,
    ) -> StoreResult<Requeued> {
        let sql = format!(
            "UPDATE messages SET status = 'queued', error = NULL, retry = retry + 1, updated_at = $3 \
             WHERE workspace_id = $1 AND id = $2 AND status = 'failed' AND direction = 'outbound' AND note = 0 \
             RETURNING {MESSAGE_COLUMNS}, retry"
        );
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).bind(now.0).fetch_optional(&self.pool).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        let message = message_from_row(&row)?;
        let retry = u32::try_from(row.try_get::<i64, _>(15)?).unwrap_or(u32::MAX);
        let conversation = conversation_by_id(&self.pool, message.conversation_id).await?;
        Ok(Requeued { message, retry, to: conversation.contact_phone })
    }

    /// The members of a workspace, by name.
    pub async fn agents(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<Agent>> {
        let rows = sqlx::query(
            "SELECT u.id, u.name FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.workspace_id = $1 \
             ORDER BY u.name, u.id",
        )
        .bind(workspace_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(Agent { id: UserId(row.try_get(0)?), name: row.try_get(1)? })).collect()
    }

    pub async fn set_read_receipts(
        &self,
        workspace_id: WorkspaceId,
        channel: balas_domain::ChannelId,
        on: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE channels SET read_receipts = $3 WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(channel.0)
            .bind(i64::from(on))
            .execute(&self.pool)
            .await?;
        changed(&done)
    }

    pub async fn canned_responses(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<CannedResponse>> {
        let rows =
            sqlx::query("SELECT id, shortcut, body FROM canned_responses WHERE workspace_id = $1 ORDER BY shortcut")
                .bind(workspace_id.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(CannedResponse {
                    id: row.try_get(0)?,
                    shortcut: Shortcut::parse(&row.try_get::<String, _>(1)?)
                        .map_err(|_| StoreError::Corrupt("canned response shortcut".into()))?,
                    body: row.try_get(2)?,
                })
            })
            .collect()
    }

    pub async fn create_canned_response(
        &self,
        workspace_id: WorkspaceId,
        shortcut: &Shortcut,
        body: &MessageText,
        now: Timestamp,
    ) -> StoreResult<CannedResponse> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO canned_responses (workspace_id, shortcut, body, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(workspace_id.0)
        .bind(shortcut.as_str())
        .bind(body.as_str())
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(on_unique(Conflict::ShortcutTaken))?;
        Ok(CannedResponse { id, shortcut: shortcut.clone(), body: body.as_str().to_owned() })
    }

    pub async fn delete_canned_response(&self, workspace_id: WorkspaceId, id: i64) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM canned_responses WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(id)
            .execute(&self.pool)
            .await?;
        changed(&done)
    }
}
