//! Broadcasts and their recipients, and a workspace's sending rules. A recipient is `pending`
//! until the planner queues its message (in the same transaction that stores the message, so a
//! crash never queues one twice), then the message's own status tells how it went.

use std::collections::HashMap;

use balas_domain::{
    Audience, Broadcast, BroadcastCounts, BroadcastId, BroadcastRecipient, BroadcastStatus, ChannelId, Contact,
    ContactFilter, ConversationStatus, ConversationSummary, LabelId, LabelName, Message, MessageId, MissingRule,
    PhoneNumber, RecipientState, SendSeries, SendingRules, SkipReason, Timestamp, UserId, WorkspaceId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::crm::{CONTACT_COLUMNS, Matching, Param, contact_from_row};
use crate::messaging::insert_outbound;
use crate::{NewOutbound, Store, StoreError, StoreResult};

/// Who to store as recipients, resolved by the caller (a segment is its filter by then; a list's
/// numbers are checked and de-duplicated).
#[derive(Debug, Clone)]
pub enum AudienceQuery<'a> {
    All,
    Filter(&'a ContactFilter),
    Labels(&'a [LabelId]),
    List { valid: &'a [PhoneNumber], invalid: &'a [String] },
}

/// A broadcast to store with its recipients.
#[derive(Debug, Clone)]
pub struct NewBroadcast<'a> {
    pub workspace_id: WorkspaceId,
    pub channel_id: ChannelId,
    pub name: &'a LabelName,
    pub text: &'a str,
    pub missing: &'a MissingRule,
    /// As described to people (a list keeps only its kind).
    pub audience: &'a Audience,
    pub query: AudienceQuery<'a>,
    pub send_at: Timestamp,
    pub created_by: Option<UserId>,
    pub duplicates: i64,
}

/// A recipient the planner is about to queue, with its contact when it is one.
#[derive(Debug, Clone)]
pub struct PendingRecipient {
    pub id: i64,
    pub phone: PhoneNumber,
    pub contact: Option<Contact>,
}

/// A queued broadcast message that has not left yet (for putting its job back on the queue).
#[derive(Debug, Clone)]
pub struct InFlight {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub wa_id: String,
    pub text: String,
    pub retry: u32,
}

const BROADCAST_COLUMNS: &str = "id, workspace_id, channel_id, name, body, missing, audience, status, send_at, \
                                 created_at, created_by, started_at, finished_at, paused_reason, waiting, duplicates";

fn broadcast_from_row(row: &AnyRow) -> StoreResult<Broadcast> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("broadcast {what}"));
    Ok(Broadcast {
        id: BroadcastId(row.try_get(0)?),
        workspace_id: WorkspaceId(row.try_get(1)?),
        channel_id: ChannelId(row.try_get(2)?),
        name: LabelName::parse(&row.try_get::<String, _>(3)?).map_err(|_| corrupt("name"))?,
        text: row.try_get(4)?,
        missing: serde_json::from_str(&row.try_get::<String, _>(5)?).map_err(|_| corrupt("rule"))?,
        audience: serde_json::from_str(&row.try_get::<String, _>(6)?).map_err(|_| corrupt("audience"))?,
        status: BroadcastStatus::parse(&row.try_get::<String, _>(7)?).ok_or_else(|| corrupt("status"))?,
        send_at: Timestamp(row.try_get(8)?),
        created_at: Timestamp(row.try_get(9)?),
        created_by: row.try_get::<Option<i64>, _>(10)?.map(UserId),
        started_at: row.try_get::<Option<i64>, _>(11)?.map(Timestamp),
        finished_at: row.try_get::<Option<i64>, _>(12)?.map(Timestamp),
        paused_reason: row.try_get(13)?,
        waiting: row.try_get(14)?,
        duplicates: row.try_get(15)?,
        counts: BroadcastCounts::default(),
    })
}

/// A recipient's state from its own state and its message's status.
fn recipient_state(state: &str, status: Option<&str>) -> RecipientState {
    match (state, status) {
        ("pending", _) => RecipientState::Pending,
        ("skipped", _) => RecipientState::Skipped,
        ("cancelled", _) => RecipientState::Cancelled,
        (_, Some("queued")) => RecipientState::Queued,
        (_, Some("sent")) => RecipientState::Sent,
        (_, Some("delivered")) => RecipientState::Delivered,
        (_, Some("read")) => RecipientState::Read,
        // Failed, or the message was deleted with its conversation.
        _ => RecipientState::Failed,
    }
}

fn count_into(counts: &mut BroadcastCounts, state: RecipientState, n: i64) {
    counts.total += n;
    *match state {
        RecipientState::Pending => &mut counts.pending,
        RecipientState::Queued => &mut counts.queued,
        RecipientState::Sent => &mut counts.sent,
        RecipientState::Delivered => &mut counts.delivered,
        RecipientState::Read => &mut counts.read,
        RecipientState::Failed => &mut counts.failed,
        RecipientState::Skipped => &mut counts.skipped,
        RecipientState::Cancelled => &mut counts.cancelled,
    } += n;
}

/// Rows of a list audience per statement.
const LIST_BATCH: usize = 400;

impl Store {
    /// Stores a broadcast and its recipients in one transaction: one row per different number,
    /// opted-out contacts and invalid numbers as skipped. Returns it with its counts.
    pub async fn create_broadcast(&self, new: &NewBroadcast<'_>, now: Timestamp) -> StoreResult<Broadcast> {
        let (_turn, mut tx) = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO broadcasts (workspace_id, channel_id, name, body, missing, audience, status, send_at, \
             created_at, created_by, duplicates, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {BROADCAST_COLUMNS}"
        );
        let status = if new.send_at > now { BroadcastStatus::Scheduled } else { BroadcastStatus::Running };
        let row = sqlx::query(&sql)
            .bind(new.workspace_id.0)
            .bind(new.channel_id.0)
            .bind(new.name.as_str())
            .bind(new.text)
            .bind(serde_json::to_string(new.missing).expect("a rule serializes"))
            .bind(serde_json::to_string(new.audience).expect("an audience serializes"))
            .bind(status.as_str())
            .bind(new.send_at.0)
            .bind(now.0)
            .bind(new.created_by.map(|u| u.0))
            .bind(new.duplicates)
            .bind((status == BroadcastStatus::Running).then_some(now.0))
            .fetch_one(&mut *tx)
            .await?;
        let mut broadcast = broadcast_from_row(&row)?;
        let id = broadcast.id.0;
        let insert = "INSERT INTO broadcast_recipients (broadcast_id, workspace_id, contact_id, phone, state, \
                      skip_reason)";
        let from_contacts = "SELECT $1, c.workspace_id, c.id, c.phone, \
                             CASE WHEN c.opted_out_at IS NULL THEN 'pending' ELSE 'skipped' END, \
                             CASE WHEN c.opted_out_at IS NULL THEN NULL ELSE 'opted_out' END";
        match &new.query {
            AudienceQuery::All | AudienceQuery::Filter(_) => {
                let filter = match &new.query {
                    AudienceQuery::Filter(filter) => (*filter).clone(),
                    _ => ContactFilter::default(),
                };
                let mut matching = self.matching(new.workspace_id, &filter, now).await?;
                // The broadcast's id goes first, as `$1`: renumber the filter's parameters.
                let renumbered = renumber(&matching.sql, matching.params.len(), 1);
                matching.params.insert(0, Param::Int(id));
                let sql = format!("{insert} {from_contacts} {renumbered}");
                matching.bind(sqlx::query(&sql)).execute(&mut *tx).await?;
            }
            AudienceQuery::Labels(labels) => {
                let placeholders: Vec<String> = (0..labels.len()).map(|n| format!("${}", n + 3)).collect();
                let sql = format!(
                    "{insert} {from_contacts} FROM contacts c WHERE c.workspace_id = $2 AND c.id IN \
                     (SELECT x.contact_id FROM contact_labels x JOIN labels l ON l.id = x.label_id \
                     WHERE l.workspace_id = $2 AND x.label_id IN ({}))",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(id).bind(new.workspace_id.0);
                for label in labels.iter() {
                    query = query.bind(label.0);
                }
                query.execute(&mut *tx).await?;
            }
            AudienceQuery::List { valid, invalid } => {
                for chunk in valid.chunks(LIST_BATCH) {
                    // A UNION rather than VALUES: SQLite cannot name a VALUES list's columns.
                    let rows: Vec<String> =
                        (0..chunk.len()).map(|n| format!("SELECT CAST(${} AS TEXT) AS phone", n + 3)).collect();
                    let sql = format!(
                        "{insert} SELECT $1, $2, c.id, l.phone, \
                         CASE WHEN c.opted_out_at IS NULL THEN 'pending' ELSE 'skipped' END, \
                         CASE WHEN c.opted_out_at IS NULL THEN NULL ELSE 'opted_out' END \
                         FROM ({}) l LEFT JOIN contacts c ON c.workspace_id = $2 AND c.phone = l.phone \
                         WHERE 1 = 1 ON CONFLICT (broadcast_id, phone) DO NOTHING",
                        rows.join(" UNION ALL ")
                    );
                    let mut query = sqlx::query(&sql).bind(id).bind(new.workspace_id.0);
                    for phone in chunk {
                        query = query.bind(phone.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
                for chunk in invalid.chunks(LIST_BATCH) {
                    let rows: Vec<String> = (0..chunk.len())
                        .map(|n| format!("($1, $2, ${}, 'skipped', 'invalid_number')", n + 3))
                        .collect();
                    let sql = format!(
                        "INSERT INTO broadcast_recipients (broadcast_id, workspace_id, phone, state, skip_reason) \
                         VALUES {} ON CONFLICT (broadcast_id, phone) DO NOTHING",
                        rows.join(", ")
                    );
                    let mut query = sqlx::query(&sql).bind(id).bind(new.workspace_id.0);
                    for phone in chunk {
                        query = query.bind(phone.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        broadcast.counts = self.broadcast_counts(&[broadcast.id]).await?.remove(&broadcast.id).unwrap_or_default();
        Ok(broadcast)
    }

    /// How many different contacts an audience has, and how many of them opted out (for the
    /// wizard, before anything is stored), with the first few that would receive it.
    pub async fn audience_contacts(
        &self,
        workspace_id: WorkspaceId,
        query: &AudienceQuery<'_>,
        samples: u32,
        now: Timestamp,
    ) -> StoreResult<(i64, i64, Vec<Contact>)> {
        let (sql, params) = match query {
            AudienceQuery::All | AudienceQuery::Filter(_) => {
                let filter = match query {
                    AudienceQuery::Filter(filter) => (*filter).clone(),
                    _ => ContactFilter::default(),
                };
                let matching = self.matching(workspace_id, &filter, now).await?;
                (matching.sql, matching.params)
            }
            AudienceQuery::Labels(labels) => {
                let placeholders: Vec<String> = (0..labels.len()).map(|n| format!("${}", n + 2)).collect();
                let sql = format!(
                    "FROM contacts c WHERE c.workspace_id = $1 AND c.id IN \
                     (SELECT x.contact_id FROM contact_labels x JOIN labels l ON l.id = x.label_id \
                     WHERE l.workspace_id = $1 AND x.label_id IN ({}))",
                    placeholders.join(", ")
                );
                let mut params = vec![Param::Int(workspace_id.0)];
                params.extend(labels.iter().map(|l| Param::Int(l.0)));
                (sql, params)
            }
            AudienceQuery::List { valid, .. } => {
                // Only the known numbers can be opted out or shown with a name.
                let mut total_opted = 0;
                let mut shown = Vec::new();
                for chunk in valid.chunks(LIST_BATCH) {
                    let placeholders: Vec<String> = (0..chunk.len()).map(|n| format!("${}", n + 2)).collect();
                    let sql = format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.workspace_id = $1 AND c.phone IN ({}) ORDER BY c.id",
                        placeholders.join(", ")
                    );
                    let mut q = sqlx::query(&sql).bind(workspace_id.0);
                    for phone in chunk {
                        q = q.bind(phone.as_str());
                    }
                    for row in q.fetch_all(&self.pool).await? {
                        let contact = contact_from_row(&row)?;
                        if contact.opted_out_at.is_some() {
                            total_opted += 1;
                        } else if shown.len() < samples as usize {
                            shown.push(contact);
                        }
                    }
                }
                self.attach_attributes(&mut shown).await?;
                return Ok((valid.len() as i64, total_opted, shown));
            }
        };
        let matching = Matching { sql, params };
        let counts = format!("SELECT COUNT(*), COUNT(c.opted_out_at) {}", matching.sql);
        let row = matching.bind(sqlx::query(&counts)).fetch_one(&self.pool).await?;
        let (total, opted_out): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let next = matching.params.len() + 1;
        let first =
            format!("SELECT {CONTACT_COLUMNS} {} AND c.opted_out_at IS NULL ORDER BY c.id LIMIT ${next}", matching.sql);
        let rows = matching.bind(sqlx::query(&first)).bind(i64::from(samples)).fetch_all(&self.pool).await?;
        let mut shown = rows.iter().map(contact_from_row).collect::<StoreResult<Vec<_>>>()?;
        self.attach_attributes(&mut shown).await?;
        Ok((total, opted_out, shown))
    }

    /// A workspace's broadcast, with its counts.
    pub async fn broadcast(&self, workspace_id: WorkspaceId, id: BroadcastId) -> StoreResult<Broadcast> {
        let sql = format!("SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).fetch_optional(&self.pool).await?;
        let mut broadcast = broadcast_from_row(&row.ok_or(StoreError::NotFound)?)?;
        broadcast.counts = self.broadcast_counts(&[id]).await?.remove(&id).unwrap_or_default();
        Ok(broadcast)
    }

    /// A workspace's latest broadcasts (newest first), with their counts.
    pub async fn broadcasts(&self, workspace_id: WorkspaceId, limit: u32) -> StoreResult<Vec<Broadcast>> {
        let sql = format!(
            "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC \
             LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(workspace_id.0).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        let mut broadcasts = rows.iter().map(broadcast_from_row).collect::<StoreResult<Vec<_>>>()?;
        let ids: Vec<BroadcastId> = broadcasts.iter().map(|b| b.id).collect();
        let mut counts = self.broadcast_counts(&ids).await?;
        for broadcast in &mut broadcasts {
            broadcast.counts = counts.remove(&broadcast.id).unwrap_or_default();
        }
        Ok(broadcasts)
    }

    async fn broadcast_counts(&self, ids: &[BroadcastId]) -> StoreResult<HashMap<BroadcastId, BroadcastCounts>> {
        let mut counts: HashMap<BroadcastId, BroadcastCounts> = HashMap::new();
        if ids.is_empty() {
            return Ok(counts);
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT r.broadcast_id, r.state, m.status, COUNT(*) FROM broadcast_recipients r \
             LEFT JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id IN ({}) \
             GROUP BY r.broadcast_id, r.state, m.status",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.0);
        }
        for row in query.fetch_all(&self.pool).await? {
            let id = BroadcastId(row.try_get(0)?);
            let state = recipient_state(&row.try_get::<String, _>(1)?, row.try_get::<Option<String>, _>(2)?.as_deref());
            count_into(counts.entry(id).or_default(), state, row.try_get(3)?);
        }
        Ok(counts)
    }

    /// Broadcasts the planner has work for at `now`: running ones, and scheduled ones whose time
    /// has come (these are started).
    pub async fn due_broadcasts(&self, now: Timestamp) -> StoreResult<Vec<(WorkspaceId, BroadcastId)>> {
        // Read first: the planner asks twice a second, and a write (even of nothing) would take
        // SQLite's write lock from the message pipeline each time.
        let starting: Option<i64> =
            sqlx::query_scalar("SELECT id FROM broadcasts WHERE status = 'scheduled' AND send_at <= $1 LIMIT 1")
                .bind(now.0)
                .fetch_optional(&self.pool)
                .await?;
        if starting.is_some() {
            sqlx::query(
                "UPDATE broadcasts SET status = 'running', started_at = COALESCE(started_at, $1) \
                 WHERE status = 'scheduled' AND send_at <= $1",
            )
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        }
        let rows = sqlx::query("SELECT workspace_id, id FROM broadcasts WHERE status = 'running' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((WorkspaceId(r.try_get(0)?), BroadcastId(r.try_get(1)?)))).collect()
    }

    /// Moves a broadcast from one of `from` to `to`, with a reason (or none). `None` when it is
    /// not in one of those states (or not the workspace's).
    pub async fn set_broadcast_status(
        &self,
        workspace_id: WorkspaceId,
        id: BroadcastId,
        from: &[BroadcastStatus],
        to: BroadcastStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<Broadcast>> {
        let placeholders: Vec<String> = (0..from.len()).map(|n| format!("${}", n + 6)).collect();
        let sql = format!(
            "UPDATE broadcasts SET status = $3, paused_reason = $4, waiting = NULL, \
             started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, $5) ELSE started_at END, \
             finished_at = CASE WHEN $3 IN ('finished', 'cancelled') THEN $5 ELSE NULL END \
             WHERE workspace_id = $1 AND id = $2 AND status IN ({}) RETURNING id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).bind(to.as_str()).bind(reason).bind(now.0);
        for status in from {
            query = query.bind(status.as_str());
        }
        if query.fetch_optional(&self.pool).await?.is_none() {
            return Ok(None);
        }
        self.broadcast(workspace_id, id).await.map(Some)
    }

    /// Says why a running broadcast is not sending now (or clears it); true when it changed.
    pub async fn set_broadcast_waiting(&self, id: BroadcastId, waiting: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE broadcasts SET waiting = $2 WHERE id = $1 AND status = 'running' \
             AND COALESCE(waiting, '') <> COALESCE($2, '')",
        )
        .bind(id.0)
        .bind(waiting)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The next `limit` pending recipients, with their contacts' fields and attributes.
    pub async fn pending_recipients(&self, id: BroadcastId, limit: u32) -> StoreResult<Vec<PendingRecipient>> {
        let rows = sqlx::query(
            "SELECT id, phone, contact_id FROM broadcast_recipients WHERE broadcast_id = $1 AND state = 'pending' \
             ORDER BY id LIMIT $2",
        )
        .bind(id.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut pending = Vec::with_capacity(rows.len());
        let mut contact_ids = Vec::new();
        for row in &rows {
            let phone = PhoneNumber::parse(&row.try_get::<String, _>(1)?)
                .map_err(|_| StoreError::Corrupt("recipient phone".into()))?;
            let contact_id: Option<i64> = row.try_get(2)?;
            contact_ids.extend(contact_id);
            pending.push((row.try_get::<i64, _>(0)?, phone, contact_id));
        }
        let mut contacts: HashMap<i64, Contact> = HashMap::new();
        if !contact_ids.is_empty() {
            let placeholders: Vec<String> = (1..=contact_ids.len()).map(|n| format!("${n}")).collect();
            let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id IN ({})", placeholders.join(", "));
            let mut query = sqlx::query(&sql);
            for id in &contact_ids {
                query = query.bind(*id);
            }
            let mut found =
                query.fetch_all(&self.pool).await?.iter().map(contact_from_row).collect::<StoreResult<Vec<_>>>()?;
            self.attach_attributes(&mut found).await?;
            contacts = found.into_iter().map(|c| (c.id.0, c)).collect();
        }
        Ok(pending
            .into_iter()
            .map(|(id, phone, contact)| PendingRecipient {
                id,
                phone,
                contact: contact.and_then(|c| contacts.remove(&c)),
            })
            .collect())
    }

    /// Stores a recipient's message as queued and marks the recipient queued, in one transaction.
    /// A new conversation starts resolved (a broadcast is not work for an agent until the customer
    /// answers). `None` when the recipient was not pending any more (cancelled meanwhile).
    pub async fn queue_broadcast_message(
        &self,
        recipient: i64,
        message: &NewOutbound<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<(Message, ConversationSummary)>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE broadcast_recipients SET state = 'queued' WHERE id = $1 AND state = 'pending' \
             AND workspace_id = $2",
        )
        .bind(recipient)
        .bind(message.workspace_id.0)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let (stored, conversation) = insert_outbound(&mut tx, message, ConversationStatus::Resolved, now).await?;
        sqlx::query("UPDATE broadcast_recipients SET message_id = $2 WHERE id = $1")
            .bind(recipient)
            .bind(stored.id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((stored, conversation)))
    }

    /// Leaves a pending recipient out, with the reason.
    pub async fn skip_recipient(&self, recipient: i64, reason: &SkipReason) -> StoreResult<()> {
        sqlx::query(
            "UPDATE broadcast_recipients SET state = 'skipped', skip_reason = $2 WHERE id = $1 AND state = 'pending'",
        )
        .bind(recipient)
        .bind(reason.code())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cancels every pending recipient of a broadcast, and these queued ones (whose jobs were
    /// taken off the queue); returns how many.
    pub async fn cancel_recipients(&self, id: BroadcastId, messages: &[MessageId]) -> StoreResult<u64> {
        let (_turn, mut tx) = self.begin_write().await?;
        let mut done = sqlx::query(
            "UPDATE broadcast_recipients SET state = 'cancelled' WHERE broadcast_id = $1 AND state = 'pending'",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for message in messages {
            done += sqlx::query(
                "UPDATE broadcast_recipients SET state = 'cancelled' WHERE broadcast_id = $1 AND message_id = $2",
            )
            .bind(id.0)
            .bind(message.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The broadcast's queued messages that have not left yet, oldest first.
    pub async fn in_flight(&self, id: BroadcastId) -> StoreResult<Vec<InFlight>> {
        let rows = sqlx::query(
            "SELECT m.id, r.phone, m.wa_id, m.body, m.retry FROM broadcast_recipients r \
             JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = $1 AND r.state = 'queued' AND m.status = 'queued' ORDER BY m.id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InFlight {
                    message_id: MessageId(row.try_get(0)?),
                    to: PhoneNumber::parse(&row.try_get::<String, _>(1)?)
                        .map_err(|_| StoreError::Corrupt("recipient phone".into()))?,
                    wa_id: row.try_get(2)?,
                    text: row.try_get(3)?,
                    retry: u32::try_from(row.try_get::<i64, _>(4)?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// The broadcast's failed messages (for a retry).
    pub async fn failed_broadcast_messages(&self, id: BroadcastId) -> StoreResult<Vec<MessageId>> {
        let rows = sqlx::query(
            "SELECT m.id FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = $1 AND r.state = 'queued' AND m.status = 'failed' ORDER BY m.id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(MessageId(r.try_get(0)?))).collect()
    }

    /// How the broadcast's last `n` finished sends went: true for each that failed, newest first.
    pub async fn recent_failures(&self, id: BroadcastId, n: u32) -> StoreResult<Vec<bool>> {
        let rows = sqlx::query(
            "SELECT m.status FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = $1 AND m.status IN ('sent', 'delivered', 'read', 'failed') \
             ORDER BY m.updated_at DESC, m.id DESC LIMIT $2",
        )
        .bind(id.0)
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)? == "failed")).collect()
    }

    /// How many broadcast messages a channel has queued since `since` (its daily cap).
    pub async fn bulk_sends_since(&self, channel: ChannelId, since: Timestamp) -> StoreResult<i64> {
        let count = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE channel_id = $1 AND sender = 'broadcast' AND created_at >= $2",
        )
        .bind(channel.0)
        .bind(since.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    /// Sends per `bucket_ms` since the broadcast started.
    pub async fn send_series(&self, broadcast: &Broadcast, bucket_ms: i64) -> StoreResult<SendSeries> {
        let Some(start) = broadcast.started_at else {
            return Ok(SendSeries { bucket_ms, counts: Vec::new() });
        };
        let rows = sqlx::query(
            "SELECT (m.sent_at - $2) / $3, COUNT(*) FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = $1 AND m.sent_at IS NOT NULL GROUP BY (m.sent_at - $2) / $3",
        )
        .bind(broadcast.id.0)
        .bind(start.0)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::new();
        for row in rows {
            let bucket = usize::try_from(row.try_get::<i64, _>(0)?.max(0)).unwrap_or(0);
            if bucket >= 10_000 {
                continue;
            }
            if counts.len() <= bucket {
                counts.resize(bucket + 1, 0);
            }
            counts[bucket] += row.try_get::<i64, _>(1)?;
        }
        Ok(SendSeries { bucket_ms, counts })
    }

    /// A page of a broadcast's recipients, optionally in one state, in the audience's order.
    pub async fn broadcast_recipients(
        &self,
        workspace_id: WorkspaceId,
        id: BroadcastId,
        state: Option<RecipientState>,
        page: u32,
        page_size: u32,
    ) -> StoreResult<Vec<BroadcastRecipient>> {
        // Each state as a condition on the recipient and its message.
        let condition = match state {
            None => "1 = 1",
            Some(RecipientState::Pending) => "r.state = 'pending'",
            Some(RecipientState::Skipped) => "r.state = 'skipped'",
            Some(RecipientState::Cancelled) => "r.state = 'cancelled'",
            Some(RecipientState::Queued) => "r.state = 'queued' AND m.status = 'queued'",
            Some(RecipientState::Sent) => "r.state = 'queued' AND m.status = 'sent'",
            Some(RecipientState::Delivered) => "r.state = 'queued' AND m.status = 'delivered'",
            Some(RecipientState::Read) => "r.state = 'queued' AND m.status = 'read'",
            Some(RecipientState::Failed) => "r.state = 'queued' AND (m.status IS NULL OR m.status = 'failed')",
        };
        let sql = format!(
            "SELECT r.phone, c.name, r.state, m.status, r.skip_reason, m.error, r.message_id \
             FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id \
             LEFT JOIN contacts c ON c.id = r.contact_id \
             WHERE r.workspace_id = $1 AND r.broadcast_id = $2 AND {condition} ORDER BY r.id LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace_id.0)
            .bind(id.0)
            .bind(i64::from(page_size))
            .bind(i64::from(page) * i64::from(page_size))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: Option<String> = row.try_get(3)?;
                Ok(BroadcastRecipient {
                    phone: row.try_get(0)?,
                    name: row.try_get(1)?,
                    state: recipient_state(&row.try_get::<String, _>(2)?, status.as_deref()),
                    skipped: row.try_get::<Option<String>, _>(4)?.as_deref().and_then(SkipReason::from_code),
                    error: row.try_get(5)?,
                    message_id: row.try_get::<Option<i64>, _>(6)?.map(MessageId),
                })
            })
            .collect()
    }

    /// A workspace's sending rules (the defaults until an admin sets them).
    pub async fn sending_rules(&self, workspace_id: WorkspaceId) -> StoreResult<SendingRules> {
        let row =
            sqlx::query("SELECT time_zone, from_hour, to_hour, daily_cap FROM sending_rules WHERE workspace_id = $1")
                .bind(workspace_id.0)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(SendingRules::default()) };
        let corrupt = || StoreError::Corrupt("sending rules".into());
        Ok(SendingRules {
            time_zone: row.try_get(0)?,
            from_hour: u8::try_from(row.try_get::<i64, _>(1)?).map_err(|_| corrupt())?,
            to_hour: u8::try_from(row.try_get::<i64, _>(2)?).map_err(|_| corrupt())?,
            daily_cap: u32::try_from(row.try_get::<i64, _>(3)?).map_err(|_| corrupt())?,
        })
    }

    pub async fn set_sending_rules(&self, workspace_id: WorkspaceId, rules: &SendingRules) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sending_rules (workspace_id, time_zone, from_hour, to_hour, daily_cap) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id) DO UPDATE SET time_zone = excluded.time_zone, \
             from_hour = excluded.from_hour, to_hour = excluded.to_hour, daily_cap = excluded.daily_cap",
        )
        .bind(workspace_id.0)
        .bind(&rules.time_zone)
        .bind(i64::from(rules.from_hour))
        .bind(i64::from(rules.to_hour))
        .bind(i64::from(rules.daily_cap))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// `sql` with its parameters `$1…$count` moved up by `by` (from the highest down, so `$1` never
/// turns into a `$12` that is renumbered again).
fn renumber(sql: &str, count: usize, by: usize) -> String {
    let mut out = sql.to_owned();
    for n in (1..=count).rev() {
        out = replace_param(&out, n, n + by);
    }
    out
}

/// Replaces the placeholder `$from` (not `$from0`…) with `$to`.
fn replace_param(sql: &str, from: usize, to: usize) -> String {
    let needle = format!("${from}");
    let mut out = String::with_capacity(sql.len() + 4);
    let mut rest = sql;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(&format!("${to}"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_are_renumbered_whole() {
        assert_eq!(renumber("a = $1 AND b = $10 AND c = $2", 10, 1), "a = $2 AND b = $11 AND c = $3");
    }
}
