//! The CRM: the contact list (search, filters, sorting, pages), contacts' details and opt-out,
//! labels, and a workspace's stop keywords. Every query is scoped to a workspace.

use std::collections::HashMap;

use balas_domain::{
    AttributeKind, AttributeOp, Contact, ContactFilter, ContactId, ContactNote, ContactSort, ConversationId, Email,
    Label, LabelColor, LabelId, LabelName, MessageText, OptOutFilter, PhoneNumber, Segment, Timestamp, UserId,
    WorkspaceId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::attributes::write_attributes;
use crate::inbox::like_escape;
use crate::{AttributeWrite, Backend, Conflict, Store, StoreError, StoreResult, on_unique};

pub(crate) const CONTACT_COLUMNS: &str = "c.id, c.workspace_id, c.phone, c.name, c.email, c.opted_out_at, c.created_at, \
                               c.last_message_at";

pub(crate) fn contact_from_row(row: &AnyRow) -> StoreResult<Contact> {
    Ok(Contact {
        id: ContactId(row.try_get(0)?),
        workspace_id: WorkspaceId(row.try_get(1)?),
        phone: PhoneNumber::parse(&row.try_get::<String, _>(2)?)
            .map_err(|_| StoreError::Corrupt("contact phone".into()))?,
        name: row.try_get(3)?,
        email: row.try_get(4)?,
        opted_out_at: row.try_get::<Option<i64>, _>(5)?.map(Timestamp),
        labels: Vec::new(),
        attributes: Default::default(),
        created_at: Timestamp(row.try_get(6)?),
        last_message_at: row.try_get::<Option<i64>, _>(7)?.map(Timestamp),
    })
}

/// A parameter of a contact query.
pub(crate) enum Param {
    Int(i64),
    Text(String),
    Real(f64),
}

/// Searches this long or longer use the trigram indexes (SQLite's FTS5 table, PostgreSQL's
/// pg_trgm); shorter ones scan.
const TRIGRAM: usize = 3;

/// The `FROM … WHERE …` of the contacts that match a filter, with only the filter's own
/// conditions (so each can use its index), and their parameters in order.
pub(crate) struct Matching {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

impl Matching {
    /// The placeholder of a new parameter.
    pub(crate) fn param(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// `kind` is that of the filter's attribute (`None`: it is not the workspace's, and nothing
    /// matches).
    fn of(
        backend: Backend,
        workspace_id: WorkspaceId,
        filter: &ContactFilter,
        now: Timestamp,
        kind: Option<AttributeKind>,
    ) -> Self {
        let mut m = Matching { sql: String::new(), params: Vec::new() };
        let workspace = m.param(Param::Int(workspace_id.0));
        let mut clauses = vec![format!("c.workspace_id = {workspace}")];
        let search = filter.search_text().unwrap_or_default();
        // On SQLite, a search of three characters or more goes through the FTS5 trigram table
        // (substrings in any case); PostgreSQL's LIKE uses its pg_trgm indexes by itself.
        let fts = |columns: &str, text: &str| format!("{{{columns}}} : \"{}\"", text.replace('"', "\"\""));
        let sqlite = backend == Backend::Sqlite;
        match (search.is_empty(), filter.search_digits()) {
            (true, _) => {}
            (false, Some(digits)) if sqlite && digits.len() >= TRIGRAM => {
                let query = m.param(Param::Text(fts("phone", &digits)));
                clauses
                    .push(format!("c.id IN (SELECT rowid FROM contacts_search WHERE contacts_search MATCH {query})"));
            }
            (false, Some(digits)) => {
                let like = m.param(Param::Text(format!("%{digits}%")));
                clauses.push(format!("c.phone LIKE {like}"));
            }
            (false, None) if sqlite && search.chars().count() >= TRIGRAM => {
                let query = m.param(Param::Text(fts("name email", &search)));
                clauses
                    .push(format!("c.id IN (SELECT rowid FROM contacts_search WHERE contacts_search MATCH {query})"));
            }
            (false, None) => {
                let like = m.param(Param::Text(format!("%{}%", like_escape(&search))));
                clauses
                    .push(format!("(LOWER(c.name) LIKE {like} ESCAPE '\\' OR LOWER(c.email) LIKE {like} ESCAPE '\\')"));
            }
        }
        if let Some(label) = filter.label {
            let label = m.param(Param::Int(label.0));
            clauses.push(format!("c.id IN (SELECT l.contact_id FROM contact_labels l WHERE l.label_id = {label})"));
        }
        if let Some(since) = filter.active_since(now) {
            let since = m.param(Param::Int(since.0));
            clauses.push(format!("c.last_message_at >= {since}"));
        }
        match filter.opt_out {
            OptOutFilter::Any => {}
            OptOutFilter::Subscribed => clauses.push("c.opted_out_at IS NULL".into()),
            OptOutFilter::OptedOut => clauses.push("c.opted_out_at IS NOT NULL".into()),
        }
        match (&filter.attribute, kind) {
            (None, _) => {}
            (Some(_), None) => clauses.push("1 = 0".into()),
            (Some(wanted), Some(kind)) => {
                let attribute = m.param(Param::Int(wanted.attribute.0));
                let number = || Param::Real(wanted.value.parse().unwrap_or(0.0));
                let test = match (wanted.op, kind) {
                    (AttributeOp::Is, AttributeKind::Text) => {
                        let like = m.param(Param::Text(format!("%{}%", like_escape(&wanted.value.to_lowercase()))));
                        format!("LOWER(a.value) LIKE {like} ESCAPE '\\'")
                    }
                    (AttributeOp::Is, AttributeKind::Number) => format!("a.number = {}", m.param(number())),
                    (AttributeOp::AtLeast, AttributeKind::Number) => format!("a.number >= {}", m.param(number())),
                    (AttributeOp::AtMost, AttributeKind::Number) => format!("a.number <= {}", m.param(number())),
                    (AttributeOp::AtLeast, _) => format!("a.value >= {}", m.param(Param::Text(wanted.value.clone()))),
                    (AttributeOp::AtMost, _) => format!("a.value <= {}", m.param(Param::Text(wanted.value.clone()))),
                    (AttributeOp::Is, _) => format!("a.value = {}", m.param(Param::Text(wanted.value.clone()))),
                    (AttributeOp::Set | AttributeOp::Unset, _) => "1 = 1".to_owned(),
                };
                // A set of ids from the attribute's index, not a lookup per contact.
                let within = if wanted.op == AttributeOp::Unset { "NOT IN" } else { "IN" };
                clauses.push(format!(
                    "c.id {within} (SELECT a.contact_id FROM contact_attributes a \
                     WHERE a.attribute_id = {attribute} AND {test})"
                ));
            }
        }
        m.sql = format!("FROM contacts c WHERE {}", clauses.join(" AND "));
        m
    }

    pub(crate) fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for param in &self.params {
            query = match param {
                Param::Int(value) => query.bind(*value),
                Param::Text(value) => query.bind(value.clone()),
                Param::Real(value) => query.bind(*value),
            };
        }
        query
    }
}

/// A change of a contact's opt-out state that happened (it was not in that state already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptChange {
    pub contact: Contact,
}

/// What [`Store::merge_contacts`] did.
#[derive(Debug)]
pub struct ContactsMerged {
    /// The contact that stays, merged.
    pub contact: Contact,
    /// The number that went away.
    pub gone: PhoneNumber,
    /// Conversations that joined the kept contact's on the same channel: (gone, joined into).
    pub joined: Vec<(ConversationId, ConversationId)>,
}

impl Store {
    /// A page (`page`, from 0, of `page_size`) of a workspace's contacts that match `filter` at
    /// `now`, and how many match in all.
    pub async fn contacts(
        &self,
        workspace_id: WorkspaceId,
        filter: &ContactFilter,
        page: u32,
        page_size: u32,
        now: Timestamp,
    ) -> StoreResult<(Vec<Contact>, i64)> {
        let matching = self.matching(workspace_id, filter, now).await?;
        let order = match filter.sort {
            ContactSort::Recent => "c.last_message_at DESC NULLS LAST, c.id DESC",
            ContactSort::Name => "c.name IS NULL, LOWER(c.name), c.id",
            ContactSort::Created => "c.created_at DESC, c.id DESC",
        };
        let next = matching.params.len();
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} {} ORDER BY {order} LIMIT ${} OFFSET ${}",
            matching.sql,
            next + 1,
            next + 2
        );
        let rows = matching
            .bind(sqlx::query(&sql))
            .bind(i64::from(page_size))
            .bind(i64::from(page) * i64::from(page_size))
            .fetch_all(&self.pool)
            .await?;
        let mut contacts = rows.iter().map(contact_from_row).collect::<StoreResult<Vec<_>>>()?;
        let total = self.count_matching(&matching).await?;
        self.attach_labels(&mut contacts).await?;
        self.attach_attributes(&mut contacts).await?;
        Ok((contacts, total))
    }

    /// How many of a workspace's contacts match `filter` at `now`.
    pub async fn count_contacts(
        &self,
        workspace_id: WorkspaceId,
        filter: &ContactFilter,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let matching = self.matching(workspace_id, filter, now).await?;
        self.count_matching(&matching).await
    }

    async fn count_matching(&self, matching: &Matching) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) {}", matching.sql);
        let row = matching.bind(sqlx::query(&sql)).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    pub(crate) async fn matching(
        &self,
        workspace_id: WorkspaceId,
        filter: &ContactFilter,
        now: Timestamp,
    ) -> StoreResult<Matching> {
        let kind = match &filter.attribute {
            None => None,
            Some(wanted) => {
                let kind: Option<String> =
                    sqlx::query_scalar("SELECT kind FROM attributes WHERE workspace_id = $1 AND id = $2")
                        .bind(workspace_id.0)
                        .bind(wanted.attribute.0)
                        .fetch_optional(&self.pool)
                        .await?;
                kind.and_then(|k| AttributeKind::parse(&k).ok())
            }
        };
        Ok(Matching::of(self.backend, workspace_id, filter, now, kind))
    }

    async fn attach_labels(&self, contacts: &mut [Contact]) -> StoreResult<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=contacts.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT contact_id, label_id FROM contact_labels WHERE contact_id IN ({}) ORDER BY label_id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for contact in contacts.iter() {
            query = query.bind(contact.id.0);
        }
        let mut labels: HashMap<i64, Vec<LabelId>> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            labels.entry(row.try_get(0)?).or_default().push(LabelId(row.try_get(1)?));
        }
        for contact in contacts.iter_mut() {
            contact.labels = labels.remove(&contact.id.0).unwrap_or_default();
        }
        Ok(())
    }

    pub async fn contact(&self, workspace_id: WorkspaceId, id: ContactId) -> StoreResult<Contact> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.workspace_id = $1 AND c.id = $2");
        let row = sqlx::query(&sql).bind(workspace_id.0).bind(id.0).fetch_optional(&self.pool).await?;
        let mut contact = [contact_from_row(&row.ok_or(StoreError::NotFound)?)?];
        self.attach_labels(&mut contact).await?;
        self.attach_attributes(&mut contact).await?;
        let [contact] = contact;
        Ok(contact)
    }

    /// The contact with this number in the workspace, if there is one.
    pub async fn contact_by_phone(
        &self,
        workspace_id: WorkspaceId,
        phone: &PhoneNumber,
    ) -> StoreResult<Option<Contact>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE workspace_id = $1 AND phone = $2")
            .bind(workspace_id.0)
            .bind(phone.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => Ok(Some(self.contact(workspace_id, ContactId(id)).await?)),
            None => Ok(None),
        }
    }

    /// Sets a contact's name, number, email and the given attribute values, together;
    /// `Conflict::PhoneTaken` when another contact of the workspace has the number.
    pub async fn edit_contact(
        &self,
        workspace_id: WorkspaceId,
        id: ContactId,
        name: Option<&str>,
        phone: &PhoneNumber,
        email: Option<&Email>,
        attributes: &[AttributeWrite],
    ) -> StoreResult<Contact> {
        let (_turn, mut tx) = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE contacts SET name = $3, email = $4, phone = $5 WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id.0)
                .bind(id.0)
                .bind(name)
                .bind(email.map(Email::as_str))
                .bind(phone.as_str())
                .execute(&mut *tx)
                .await
                .map_err(on_unique(Conflict::PhoneTaken))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        write_attributes(&mut tx, workspace_id, id, attributes).await?;
        tx.commit().await?;
        self.contact(workspace_id, id).await
    }

    /// Adds a contact with its attribute values; `Conflict::PhoneTaken` when the workspace has
    /// one with this number.
    pub async fn create_contact(
        &self,
        workspace_id: WorkspaceId,
        name: Option<&str>,
        phone: &PhoneNumber,
        email: Option<&Email>,
        attributes: &[AttributeWrite],
        now: Timestamp,
    ) -> StoreResult<Contact> {
        let (_turn, mut tx) = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO contacts (workspace_id, phone, name, email, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(workspace_id.0)
        .bind(phone.as_str())
        .bind(name)
        .bind(email.map(Email::as_str))
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(on_unique(Conflict::PhoneTaken))?;
        write_attributes(&mut tx, workspace_id, ContactId(id), attributes).await?;
        tx.commit().await?;
        self.contact(workspace_id, ContactId(id)).await
    }

    /// Deletes a contact with its conversations, messages and notes; returns its number.
    pub async fn delete_contact(&self, workspace_id: WorkspaceId, id: ContactId) -> StoreResult<PhoneNumber> {
        let phone: Option<String> =
            sqlx::query_scalar("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2 RETURNING phone")
                .bind(workspace_id.0)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        PhoneNumber::parse(&phone.ok_or(StoreError::NotFound)?).map_err(|_| StoreError::Corrupt("contact phone".into()))
    }

    /// A contact's notes, newest first.
    pub async fn contact_notes(&self, workspace_id: WorkspaceId, id: ContactId) -> StoreResult<Vec<ContactNote>> {
        let rows = sqlx::query(
            "SELECT n.id, u.name, n.body, n.created_at FROM contact_notes n LEFT JOIN users u ON u.id = n.author \
             WHERE n.workspace_id = $1 AND n.contact_id = $2 ORDER BY n.created_at DESC, n.id DESC LIMIT 200",
        )
        .bind(workspace_id.0)
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ContactNote {
                    id: row.try_get(0)?,
                    author: row.try_get(1)?,
                    body: row.try_get(2)?,
                    created_at: Timestamp(row.try_get(3)?),
                })
            })
            .collect()
    }

    /// Adds a note to a contact of the workspace.
    pub async fn add_contact_note(
        &self,
        workspace_id: WorkspaceId,
        id: ContactId,
        author: UserId,
        body: &MessageText,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO contact_notes (workspace_id, contact_id, author, body, created_at) \
             SELECT $1, c.id, $3, $4, $5 FROM contacts c WHERE c.workspace_id = $1 AND c.id = $2",
        )
        .bind(workspace_id.0)
        .bind(id.0)
        .bind(author.0)
        .bind(body.as_str())
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Opts a contact out (at `at`) or back in. `None` when it was in that state already, so that
    /// a customer who sends STOP twice is confirmed once.
    pub async fn set_opted_out(
        &self,
        workspace_id: WorkspaceId,
        id: ContactId,
        opted_out: bool,
        at: Timestamp,
    ) -> StoreResult<Option<OptChange>> {
        let sql = if opted_out {
            "UPDATE contacts SET opted_out_at = $3 WHERE workspace_id = $1 AND id = $2 AND opted_out_at IS NULL"
        } else {
            "UPDATE contacts SET opted_out_at = NULL WHERE workspace_id = $1 AND id = $2 AND opted_out_at IS NOT NULL \
             AND $3 = $3"
        };
        let done = sqlx::query(sql).bind(workspace_id.0).bind(id.0).bind(at.0).execute(&self.pool).await?;
        let contact = self.contact(workspace_id, id).await?;
        Ok((done.rows_affected() > 0).then_some(OptChange { contact }))
    }

    /// A workspace's labels by name, with how many contacts carry each.
    pub async fn labels(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<Label>> {
        let rows = sqlx::query(
            "SELECT l.id, l.name, l.color, (SELECT COUNT(*) FROM contact_labels x WHERE x.label_id = l.id) \
             FROM labels l WHERE l.workspace_id = $1 ORDER BY l.name_key",
        )
        .bind(workspace_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let corrupt = |what: &str| StoreError::Corrupt(format!("label {what}"));
                Ok(Label {
                    id: LabelId(row.try_get(0)?),
                    name: LabelName::parse(&row.try_get::<String, _>(1)?).map_err(|_| corrupt("name"))?,
                    color: LabelColor::parse(&row.try_get::<String, _>(2)?).map_err(|_| corrupt("colour"))?,
                    contacts: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Creates a label; `Conflict::LabelTaken` when the workspace has one of that name (any case).
    pub async fn create_label(
        &self,
        workspace_id: WorkspaceId,
        name: &LabelName,
        color: &LabelColor,
        now: Timestamp,
    ) -> StoreResult<LabelId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO labels (workspace_id, name, name_key, color, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(workspace_id.0)
        .bind(name.as_str())
        .bind(name.as_str().to_lowercase())
        .bind(color.as_str())
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(on_unique(Conflict::LabelTaken))?;
        Ok(LabelId(id))
    }

    /// Deletes a label (and takes it off every contact); returns its name.
    pub async fn delete_label(&self, workspace_id: WorkspaceId, id: LabelId) -> StoreResult<String> {
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM labels WHERE workspace_id = $1 AND id = $2 RETURNING name")
                .bind(workspace_id.0)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        name.ok_or(StoreError::NotFound)
    }

    /// Puts a label on (or takes it off) the workspace's contacts among `contacts`; returns how
    /// many changed. `NotFound` when the label is not the workspace's.
    pub async fn label_contacts(
        &self,
        workspace_id: WorkspaceId,
        label: LabelId,
        contacts: &[ContactId],
        on: bool,
    ) -> StoreResult<u64> {
        let (_turn, mut tx) = self.begin_write().await?;
        let owned: Option<i64> = sqlx::query_scalar("SELECT id FROM labels WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(label.0)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound);
        }
        let sql = if on {
            "INSERT INTO contact_labels (contact_id, label_id) \
             SELECT id, $3 FROM contacts WHERE workspace_id = $1 AND id = $2 ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM contact_labels WHERE label_id = $3 AND contact_id = \
             (SELECT id FROM contacts WHERE workspace_id = $1 AND id = $2)"
        };
        let mut changed = 0;
        for contact in contacts {
            let done = sqlx::query(sql).bind(workspace_id.0).bind(contact.0).bind(label.0).execute(&mut *tx).await?;
            changed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Puts a label of the workspace on one of its conversations, or takes it off; whether
    /// anything changed. `NotFound` when either is not the workspace's.
    pub async fn label_conversation(
        &self,
        workspace_id: WorkspaceId,
        conversation: ConversationId,
        label: LabelId,
        on: bool,
    ) -> StoreResult<bool> {
        let owned: Option<i64> = sqlx::query_scalar(
            "SELECT l.id FROM labels l JOIN conversations v ON v.workspace_id = l.workspace_id \
             WHERE l.workspace_id = $1 AND l.id = $2 AND v.id = $3",
        )
        .bind(workspace_id.0)
        .bind(label.0)
        .bind(conversation.0)
        .fetch_optional(&self.pool)
        .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound);
        }
        let sql = if on {
            "INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM conversation_labels WHERE conversation_id = $1 AND label_id = $2"
        };
        let done = sqlx::query(sql).bind(conversation.0).bind(label.0).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Merges contact `other` into `keep` (both of the workspace, in one transaction): `keep`'s
    /// number stays; `other`'s conversations, notes, labels and attribute values move over (a
    /// conversation on a channel where `keep` has one joins it, messages and all); `keep`'s own
    /// name, email and values win where both have one; the contact stays opted out if either
    /// was. `other` is deleted.
    pub async fn merge_contacts(
        &self,
        workspace_id: WorkspaceId,
        keep: ContactId,
        other: ContactId,
    ) -> StoreResult<ContactsMerged> {
        if keep == other {
            return Err(StoreError::NotFound);
        }
        let (_turn, mut tx) = self.begin_write().await?;
        let ws = workspace_id.0;
        let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE workspace_id = $1 AND id IN ($2, $3)")
            .bind(ws)
            .bind(keep.0)
            .bind(other.0)
            .fetch_one(&mut *tx)
            .await?;
        if owned != 2 {
            return Err(StoreError::NotFound);
        }
        // Conversations on a channel both have: the other's messages and labels join keep's.
        let pairs = sqlx::query(
            "SELECT o.id, k.id FROM conversations o JOIN conversations k ON k.channel_id = o.channel_id \
             AND k.contact_id = $2 WHERE o.contact_id = $3 AND o.workspace_id = $1",
        )
        .bind(ws)
        .bind(keep.0)
        .bind(other.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut joined = Vec::with_capacity(pairs.len());
        for pair in &pairs {
            let (from, into): (i64, i64) = (pair.try_get(0)?, pair.try_get(1)?);
            joined.push((ConversationId(from), ConversationId(into)));
            sqlx::query("UPDATE messages SET conversation_id = $2 WHERE conversation_id = $1")
                .bind(from)
                .bind(into)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO conversation_labels (conversation_id, label_id) \
                 SELECT $2, label_id FROM conversation_labels WHERE conversation_id = $1 ON CONFLICT DO NOTHING",
            )
            .bind(from)
            .bind(into)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE conversations SET unread = unread + (SELECT o.unread FROM conversations o WHERE o.id = $1), \
                 status = CASE WHEN (SELECT o.status FROM conversations o WHERE o.id = $1) = 'open' THEN 'open' \
                 ELSE status END, \
                 assignee = COALESCE(assignee, (SELECT o.assignee FROM conversations o WHERE o.id = $1)), \
                 last_message_at = (SELECT MAX(x.last_message_at) FROM conversations x WHERE x.id IN ($1, $2)), \
                 last_preview = (SELECT x.last_preview FROM conversations x WHERE x.id IN ($1, $2) \
                 ORDER BY x.last_message_at DESC LIMIT 1) WHERE id = $2",
            )
            .bind(from)
            .bind(into)
            .execute(&mut *tx)
            .await?;
            // The AI's token use stays counted (the month's cap holds), now on the joined conversation.
            sqlx::query(
                "INSERT INTO ai_usage (workspace_id, conversation_id, month, tokens) \
                 SELECT workspace_id, $2, month, tokens FROM ai_usage WHERE conversation_id = $1 \
                 ON CONFLICT (workspace_id, conversation_id, month) DO UPDATE SET tokens = ai_usage.tokens + excluded.tokens",
            )
            .bind(from)
            .bind(into)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM conversations WHERE id = $1").bind(from).execute(&mut *tx).await?;
        }
        let moves = [
            "UPDATE conversations SET contact_id = $2 WHERE workspace_id = $1 AND contact_id = $3",
            "UPDATE contact_notes SET contact_id = $2 WHERE workspace_id = $1 AND contact_id = $3",
            "INSERT INTO contact_labels (contact_id, label_id) SELECT $2, label_id FROM contact_labels \
             WHERE contact_id = $3 AND $1 = $1 ON CONFLICT DO NOTHING",
            "INSERT INTO contact_attributes (contact_id, attribute_id, value, number) \
             SELECT $2, attribute_id, value, number FROM contact_attributes WHERE contact_id = $3 AND $1 = $1 \
             ON CONFLICT DO NOTHING",
            "UPDATE contacts SET name = COALESCE(name, (SELECT o.name FROM contacts o WHERE o.id = $3)), \
             email = COALESCE(email, (SELECT o.email FROM contacts o WHERE o.id = $3)), \
             opted_out_at = COALESCE(opted_out_at, (SELECT o.opted_out_at FROM contacts o WHERE o.id = $3)), \
             created_at = (SELECT MIN(x.created_at) FROM contacts x WHERE x.id IN ($2, $3)), \
             last_message_at = (SELECT MAX(x.last_message_at) FROM contacts x WHERE x.id IN ($2, $3)) \
             WHERE workspace_id = $1 AND id = $2",
        ];
        for sql in moves {
            sqlx::query(sql).bind(ws).bind(keep.0).bind(other.0).execute(&mut *tx).await?;
        }
        let gone: String =
            sqlx::query_scalar("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2 RETURNING phone")
                .bind(ws)
                .bind(other.0)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        let gone = PhoneNumber::parse(&gone).map_err(|_| StoreError::Corrupt("contact phone".into()))?;
        Ok(ContactsMerged { contact: self.contact(workspace_id, keep).await?, gone, joined })
    }

    /// The words that stop broadcasts in a workspace (`None`: the defaults).
    pub async fn stop_keywords(&self, workspace_id: WorkspaceId) -> StoreResult<Option<Vec<String>>> {
        let json: Option<Option<String>> = sqlx::query_scalar("SELECT stop_keywords FROM workspaces WHERE id = $1")
            .bind(workspace_id.0)
            .fetch_optional(&self.pool)
            .await?;
        json.flatten()
            .map(|json| serde_json::from_str(&json).map_err(|_| StoreError::Corrupt("stop keywords".into())))
            .transpose()
    }

    pub async fn set_stop_keywords(&self, workspace_id: WorkspaceId, keywords: &[String]) -> StoreResult<()> {
        let json = serde_json::to_string(keywords).expect("strings serialize");
        sqlx::query("UPDATE workspaces SET stop_keywords = $2 WHERE id = $1")
            .bind(workspace_id.0)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A contact as an import writes it (checked already).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportContact {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub email: Option<String>,
    pub labels: Vec<LabelId>,
    /// Opts the contact out (an import never opts anyone back in).
    pub opted_out: bool,
    /// Attribute values to set (the others are left as they are).
    pub attributes: Vec<AttributeWrite>,
}

/// Contacts an import writes per statement.
const IMPORT_BATCH: usize = 500;
/// Imports of this many contacts or more vacuum and analyze PostgreSQL's contact tables.
const ANALYZE_AFTER: usize = 5_000;

impl Store {
    /// Creates or updates (by number) the workspace's contacts, in one transaction: all of them or,
    /// on a failure, none. A name or email left empty keeps the one stored. Labels are added.
    /// Calls `progress` with how many are written after each batch. Returns (created, updated).
    pub async fn import_contacts(
        &self,
        workspace_id: WorkspaceId,
        contacts: &[ImportContact],
        now: Timestamp,
        progress: &(dyn Fn(u64) + Sync),
    ) -> StoreResult<(u64, u64)> {
        let (_turn, mut tx) = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // The batches are one statement shape run again and again: a generic plan, made
            // once, serves them all (the pool plans every execution anew otherwise).
            sqlx::query("SET LOCAL plan_cache_mode = auto").execute(&mut *tx).await?;
        }
        let (mut created, mut updated) = (0u64, 0u64);
        for (n, batch) in contacts.chunks(IMPORT_BATCH).enumerate() {
            let rows: Vec<String> = (0..batch.len())
                .map(|i| {
                    let p = i * 6;
                    format!("(${}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6)
                })
                .collect();
            let sql = format!(
                "INSERT INTO contacts (workspace_id, phone, name, email, created_at, opted_out_at) VALUES {} \
                 ON CONFLICT (workspace_id, phone) DO UPDATE SET name = COALESCE(excluded.name, contacts.name), \
                 email = COALESCE(excluded.email, contacts.email), \
                 opted_out_at = COALESCE(contacts.opted_out_at, excluded.opted_out_at) RETURNING id, phone, created_at",
                rows.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for contact in batch {
                insert = insert
                    .bind(workspace_id.0)
                    .bind(contact.phone.as_str())
                    .bind(contact.name.as_deref())
                    .bind(contact.email.as_deref())
                    .bind(now.0)
                    .bind(contact.opted_out.then_some(now.0));
            }
            let mut ids: HashMap<String, i64> = HashMap::with_capacity(batch.len());
            for row in insert.fetch_all(&mut *tx).await? {
                // A contact created by this statement has this import's time; one that existed
                // has its own. (Counting the existing numbers first cost a scan per batch on
                // PostgreSQL, whose planner knows nothing yet of rows written in this transaction.)
                if row.try_get::<i64, _>(2)? == now.0 {
                    created += 1;
                } else {
                    updated += 1;
                }
                ids.insert(row.try_get(1)?, row.try_get(0)?);
            }
            let pairs: Vec<(i64, i64)> = batch
                .iter()
                .filter_map(|c| ids.get(c.phone.as_str()).map(|id| (*id, c)))
                .flat_map(|(id, c)| c.labels.iter().map(move |l| (id, l.0)))
                .collect();
            for chunk in pairs.chunks(IMPORT_BATCH) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("(${}, ${})", i * 2 + 1, i * 2 + 2)).collect();
                let sql = format!(
                    "INSERT INTO contact_labels (contact_id, label_id) VALUES {} ON CONFLICT DO NOTHING",
                    values.join(", ")
                );
                let mut labels = sqlx::query(&sql);
                for (contact, label) in chunk {
                    labels = labels.bind(*contact).bind(*label);
                }
                labels.execute(&mut *tx).await?;
            }
            let values: Vec<(i64, &AttributeWrite)> = batch
                .iter()
                .filter_map(|c| ids.get(c.phone.as_str()).map(|id| (*id, c)))
                .flat_map(|(id, c)| c.attributes.iter().filter(|w| w.value.is_some()).map(move |w| (id, w)))
                .collect();
            for chunk in values.chunks(IMPORT_BATCH) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let p = i * 4;
                        format!("(${}, ${}, ${}, CAST(${} AS DOUBLE PRECISION))", p + 1, p + 2, p + 3, p + 4)
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO contact_attributes (contact_id, attribute_id, value, number) VALUES {} \
                     ON CONFLICT (contact_id, attribute_id) DO UPDATE SET value = excluded.value, number = excluded.number",
                    rows.join(", ")
                );
                let mut insert = sqlx::query(&sql);
                for (contact, write) in chunk {
                    insert = insert
                        .bind(*contact)
                        .bind(write.attribute.0)
                        .bind(write.value.as_deref())
                        .bind(write.number_text());
                }
                insert.execute(&mut *tx).await?;
            }
            progress(((n + 1) * IMPORT_BATCH).min(contacts.len()) as u64);
        }
        tx.commit().await?;
        // A large import leaves PostgreSQL's planner statistics and visibility map behind until
        // autovacuum gets to them (searches are planned for an empty table, index-only scans go
        // to the heap); bring them up to date now. (VACUUM runs outside a transaction: simple
        // protocol.)
        if self.backend == Backend::Postgres && contacts.len() >= ANALYZE_AFTER {
            let vacuum = sqlx::raw_sql("VACUUM (ANALYZE) contacts, contact_labels, contact_attributes");
            // The contacts are in: a failure here only leaves the statistics to autovacuum.
            if let Err(error) = vacuum.execute(&self.pool).await {
                tracing::warn!(%error, "the contact tables were not vacuumed after an import");
            }
        }
        Ok((created, updated))
    }
}

impl Store {
    /// A workspace's segments by name (their counts are 0: see [`Store::count_contacts`]).
    pub async fn segments(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<Segment>> {
        let rows = sqlx::query("SELECT id, name, filter FROM segments WHERE workspace_id = $1 ORDER BY name_key")
            .bind(workspace_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let corrupt = |what: &str| StoreError::Corrupt(format!("segment {what}"));
                Ok(Segment {
                    id: row.try_get(0)?,
                    name: LabelName::parse(&row.try_get::<String, _>(1)?).map_err(|_| corrupt("name"))?,
                    filter: serde_json::from_str(&row.try_get::<String, _>(2)?).map_err(|_| corrupt("filter"))?,
                    contacts: 0,
                })
            })
            .collect()
    }

    /// Saves a filter as a segment; `Conflict::LabelTaken` when the workspace has a segment of
    /// that name (any case).
    pub async fn create_segment(
        &self,
        workspace_id: WorkspaceId,
        name: &LabelName,
        filter: &ContactFilter,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let json = serde_json::to_string(filter).expect("filters serialize");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO segments (workspace_id, name, name_key, filter, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(workspace_id.0)
        .bind(name.as_str())
        .bind(name.as_str().to_lowercase())
        .bind(json)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(on_unique(Conflict::LabelTaken))?;
        Ok(id)
    }

    pub async fn delete_segment(&self, workspace_id: WorkspaceId, id: i64) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM segments WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
