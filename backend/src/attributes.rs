//! Custom attributes: admins define them; every value written to a contact (by an agent, an
//! import or the API) is checked against the definition first.

use std::collections::BTreeMap;

use balas_domain::{
    AppError, Attribute, AttributeFilter, AttributeId, AttributeKey, AttributeKind, AuditAction, ContactFilter, Field,
    FieldError, LabelName, WorkspaceId,
};
use balas_storage::AttributeWrite;

use crate::accounts::Caller;
use crate::inbox::audit;
use crate::{AppState, from_store, now};

/// The most attributes a workspace may define.
pub const MAX_ATTRIBUTES: usize = 50;

pub async fn attributes(state: &AppState, caller: &Caller) -> Result<Vec<Attribute>, AppError> {
    caller.require_active()?;
    state.store.attributes(caller.me.workspace_id).await.map_err(from_store)
}

/// Defines an attribute (admins; audited). An empty key is made from the name.
pub async fn create_attribute(
    state: &AppState,
    caller: &Caller,
    name: &str,
    key: &str,
    kind: &str,
    options: &str,
) -> Result<Vec<Attribute>, AppError> {
    caller.require_admin()?;
    let key = if key.trim().is_empty() { AttributeKey::suggest(name) } else { key.trim().to_owned() };
    let name = LabelName::parse(name);
    let key = AttributeKey::parse(&key);
    let kind = AttributeKind::parse(kind);
    let options = kind.as_ref().map(|kind| Attribute::parse_options(*kind, options));
    let (name, key, kind, options) = match (name, key, kind, options) {
        (Ok(name), Ok(key), Ok(kind), Ok(Ok(options))) => (name, key, kind, options),
        (name, key, kind, options) => {
            let options = options.ok().and_then(Result::err);
            let errors = name.err().into_iter().chain(key.err()).chain(kind.err()).chain(options).collect();
            return Err(AppError::Invalid { errors });
        }
    };
    let workspace = caller.me.workspace_id;
    if state.store.attributes(workspace).await.map_err(from_store)?.len() >= MAX_ATTRIBUTES {
        let issue = balas_domain::Issue::TooMany { max: MAX_ATTRIBUTES };
        return Err(AppError::invalid(FieldError::new(Field::AttributeKey, issue)));
    }
    state.store.create_attribute(workspace, &key, &name, kind, &options, now()).await.map_err(from_store)?;
    audit(state, caller, AuditAction::AttributeCreated, key.as_str(), kind.as_str()).await;
    state.store.attributes(workspace).await.map_err(from_store)
}

/// Renames an attribute, or changes a list's options (admins; audited). An option a contact
/// still has cannot be dropped.
pub async fn update_attribute(
    state: &AppState,
    caller: &Caller,
    id: AttributeId,
    name: &str,
    options: &str,
) -> Result<Vec<Attribute>, AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let definitions = state.store.attributes(workspace).await.map_err(from_store)?;
    let definition = definitions.iter().find(|d| d.id == id).ok_or(AppError::NotFound)?;
    let (name, options) = match (LabelName::parse(name), Attribute::parse_options(definition.kind, options)) {
        (Ok(name), Ok(options)) => (name, options),
        (name, options) => {
            return Err(AppError::Invalid { errors: name.err().into_iter().chain(options.err()).collect() });
        }
    };
    state.store.update_attribute(workspace, id, &name, &options).await.map_err(from_store)?;
    audit(state, caller, AuditAction::AttributeChanged, definition.key.as_str(), name.as_str()).await;
    state.store.attributes(workspace).await.map_err(from_store)
}

/// Deletes an attribute and every contact's value of it (admins; audited).
pub async fn delete_attribute(state: &AppState, caller: &Caller, id: AttributeId) -> Result<Vec<Attribute>, AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let key = state.store.delete_attribute(workspace, id).await.map_err(from_store)?;
    audit(state, caller, AuditAction::AttributeDeleted, &key, "").await;
    state.store.attributes(workspace).await.map_err(from_store)
}

/// Values as a person wrote them (key → text; empty clears) checked against the definitions.
pub fn attribute_writes(
    definitions: &[Attribute],
    raw: &BTreeMap<String, String>,
) -> Result<Vec<AttributeWrite>, Vec<FieldError>> {
    let values = balas_domain::check_attributes(definitions, raw).map_err(|problems| {
        problems.into_iter().map(|(_, issue)| FieldError::new(Field::Attribute, issue)).collect::<Vec<_>>()
    })?;
    Ok(values
        .into_iter()
        .map(|(id, value)| {
            let definition = definitions.iter().find(|d| d.id == id).expect("checked against these definitions");
            AttributeWrite::of(definition, value)
        })
        .collect())
}

/// A contact filter with its attribute comparison checked against the workspace's definition
/// and its value in stored form.
pub async fn checked_filter(
    state: &AppState,
    workspace: WorkspaceId,
    filter: &ContactFilter,
) -> Result<ContactFilter, AppError> {
    filter.check().map_err(AppError::invalid)?;
    let Some(wanted) = &filter.attribute else { return Ok(filter.clone()) };
    let definitions = state.store.attributes(workspace).await.map_err(from_store)?;
    let definition = definitions
        .iter()
        .find(|d| d.id == wanted.attribute)
        .ok_or(AppError::invalid(FieldError::new(Field::Attribute, balas_domain::Issue::UnknownAttribute)))?;
    let attribute: AttributeFilter = wanted.checked(definition).map_err(AppError::invalid)?;
    Ok(ContactFilter { attribute: Some(attribute), ..filter.clone() })
}
