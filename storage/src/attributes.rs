//! Custom attributes: a workspace's definitions and its contacts' values. Every query is scoped
//! to a workspace; values arrive checked (`balas_domain::Attribute::value`).

use std::collections::HashMap;

use balas_domain::{
    Attribute, AttributeId, AttributeKey, AttributeKind, Contact, ContactId, LabelName, Timestamp, WorkspaceId,
};
use sqlx::Row;

use crate::{Conflict, Store, StoreError, StoreResult, on_unique};

/// A value to store on a contact: its attribute and the value in stored form (`None` clears it).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeWrite {
    pub attribute: AttributeId,
    pub value: Option<String>,
    /// The value as a number, for number attributes.
    pub number: Option<f64>,
}

impl AttributeWrite {
    /// The number as text for `CAST(… AS DOUBLE PRECISION)`: sqlx 0.8's `Any` driver binds a
    /// missing `f64` as a `float4` NULL, which PostgreSQL refuses.
    pub(crate) fn number_text(&self) -> Option<String> {
        self.number.map(|n| n.to_string())
    }

    /// The write of a checked value of `definition`.
    pub fn of(definition: &Attribute, value: Option<String>) -> Self {
        let number = value.as_deref().and_then(|v| definition.number(v));
        Self { attribute: definition.id, value, number }
    }
}

impl Store {
    /// A workspace's attribute definitions, in the order they were created.
    pub async fn attributes(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<Attribute>> {
        let rows =
            sqlx::query("SELECT id, key, name, kind, options FROM attributes WHERE workspace_id = $1 ORDER BY id")
                .bind(workspace_id.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let corrupt = |what: &str| StoreError::Corrupt(format!("attribute {what}"));
                Ok(Attribute {
                    id: AttributeId(row.try_get(0)?),
                    key: AttributeKey::parse(&row.try_get::<String, _>(1)?).map_err(|_| corrupt("key"))?,
                    name: LabelName::parse(&row.try_get::<String, _>(2)?).map_err(|_| corrupt("name"))?,
                    kind: AttributeKind::parse(&row.try_get::<String, _>(3)?).map_err(|_| corrupt("kind"))?,
                    options: serde_json::from_str(&row.try_get::<String, _>(4)?).map_err(|_| corrupt("options"))?,
                })
            })
            .collect()
    }

    /// Defines an attribute; `Conflict::AttributeKeyTaken` when the workspace has one with its key.
    pub async fn create_attribute(
        &self,
        workspace_id: WorkspaceId,
        key: &AttributeKey,
        name: &LabelName,
        kind: AttributeKind,
        options: &[String],
        now: Timestamp,
    ) -> StoreResult<AttributeId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attributes (workspace_id, key, name, kind, options, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(workspace_id.0)
        .bind(key.as_str())
        .bind(name.as_str())
        .bind(kind.as_str())
        .bind(serde_json::to_string(options).expect("strings serialize"))
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(on_unique(Conflict::AttributeKeyTaken))?;
        Ok(AttributeId(id))
    }

    /// Renames an attribute and sets a list's options; `Conflict::OptionInUse` when a contact
    /// still has an option the new list drops.
    pub async fn update_attribute(
        &self,
        workspace_id: WorkspaceId,
        id: AttributeId,
        name: &LabelName,
        options: &[String],
    ) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM attributes WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let kind = kind.ok_or(StoreError::NotFound)?;
        if kind == AttributeKind::OneOf.as_str() {
            let used: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT value FROM contact_attributes WHERE attribute_id = $1")
                    .bind(id.0)
                    .fetch_all(&mut *tx)
                    .await?;
            if used.iter().any(|value| !options.contains(value)) {
                return Err(StoreError::Conflict(Conflict::OptionInUse));
            }
        }
        sqlx::query("UPDATE attributes SET name = $3, options = $4 WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id.0)
            .bind(id.0)
            .bind(name.as_str())
            .bind(serde_json::to_string(options).expect("strings serialize"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an attribute with every contact's value of it; returns its key.
    pub async fn delete_attribute(&self, workspace_id: WorkspaceId, id: AttributeId) -> StoreResult<String> {
        let key: Option<String> =
            sqlx::query_scalar("DELETE FROM attributes WHERE workspace_id = $1 AND id = $2 RETURNING key")
                .bind(workspace_id.0)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        key.ok_or(StoreError::NotFound)
    }

    /// Fills the contacts' attribute values (by key).
    pub(crate) async fn attach_attributes(&self, contacts: &mut [Contact]) -> StoreResult<()> {
        if contacts.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=contacts.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT v.contact_id, a.key, v.value FROM contact_attributes v JOIN attributes a ON a.id = v.attribute_id \
             WHERE v.contact_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for contact in contacts.iter() {
            query = query.bind(contact.id.0);
        }
        let mut values: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            values.entry(row.try_get(0)?).or_default().push((row.try_get(1)?, row.try_get(2)?));
        }
        for contact in contacts.iter_mut() {
            contact.attributes = values.remove(&contact.id.0).unwrap_or_default().into_iter().collect();
        }
        Ok(())
    }
}

/// Sets (or clears) attribute values of a contact of the workspace, in the caller's transaction.
/// Attributes of other workspaces are left alone.
pub(crate) async fn write_attributes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workspace_id: WorkspaceId,
    contact: ContactId,
    writes: &[AttributeWrite],
) -> StoreResult<()> {
    for write in writes {
        match &write.value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO contact_attributes (contact_id, attribute_id, value, number) \
                     SELECT $2, a.id, $4, CAST($5 AS DOUBLE PRECISION) FROM attributes a WHERE a.workspace_id = $1 AND a.id = $3 \
                     ON CONFLICT (contact_id, attribute_id) DO UPDATE SET value = excluded.value, number = excluded.number",
                )
                .bind(workspace_id.0)
                .bind(contact.0)
                .bind(write.attribute.0)
                .bind(value.as_str())
                .bind(write.number_text())
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM contact_attributes WHERE contact_id = $2 AND attribute_id = \
                     (SELECT id FROM attributes WHERE workspace_id = $1 AND id = $3)",
                )
                .bind(workspace_id.0)
                .bind(contact.0)
                .bind(write.attribute.0)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}
