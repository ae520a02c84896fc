//! The CRM's rules: who may see and change contacts and labels, and what a customer's stop (or
//! start) keyword does. Every call checks the caller's session and scopes to their workspace.

use balas_domain::{
    AppError, AuditAction, CONTACT_PAGE, Contact, ContactFilter, ContactId, ContactNote, ContactPage, ContactSort,
    ContactView, DEFAULT_STOP_KEYWORDS, Field, FieldError, Issue, Label, LabelColor, LabelId, LabelName, LiveEvent,
    MessageText, OptRequest, Segment, SenderKind,
};
use balas_storage::{Audit, StoreError};

use std::collections::BTreeMap;

use balas_domain::{Email, PhoneNumber};
use balas_storage::AttributeWrite;

use crate::accounts::Caller;
use crate::attributes::{attribute_writes, checked_filter};
use crate::inbox::{announce, audit};
use crate::messaging::queue_text;
use crate::{AppState, from_store, now};

/// The most contacts one bulk action may touch.
pub const MAX_BULK: usize = 1000;

/// A page of the workspace's contacts (agents and admins).
pub async fn contacts(
    state: &AppState,
    caller: &Caller,
    filter: &ContactFilter,
    page: u32,
) -> Result<ContactPage, AppError> {
    caller.require_active()?;
    let filter = &checked_filter(state, caller.me.workspace_id, filter).await?;
    if page > 100_000 {
        return Err(AppError::invalid(FieldError::new(Field::Search, Issue::OutOfRange { min: 0, max: 100_000 })));
    }
    let (contacts, total) =
        state.store.contacts(caller.me.workspace_id, filter, page, CONTACT_PAGE, now()).await.map_err(from_store)?;
    Ok(ContactPage { contacts, total, page })
}

pub async fn contact(state: &AppState, caller: &Caller, id: ContactId) -> Result<Contact, AppError> {
    caller.require_active()?;
    state.store.contact(caller.me.workspace_id, id).await.map_err(from_store)
}

/// A contact with its notes and conversations.
pub async fn contact_view(state: &AppState, caller: &Caller, id: ContactId) -> Result<ContactView, AppError> {
    caller.require_active()?;
    let workspace = caller.me.workspace_id;
    let contact = state.store.contact(workspace, id).await.map_err(from_store)?;
    let notes = state.store.contact_notes(workspace, id).await.map_err(from_store)?;
    let conversations = state.store.contact_conversations(workspace, id).await.map_err(from_store)?;
    Ok(ContactView { contact, notes, conversations })
}

/// A contact's details as typed, checked together: every problem is reported at once.
async fn checked_details(
    state: &AppState,
    caller: &Caller,
    name: &str,
    phone: &str,
    email: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<(Option<String>, PhoneNumber, Option<Email>, Vec<AttributeWrite>), AppError> {
    let definitions = state.store.attributes(caller.me.workspace_id).await.map_err(from_store)?;
    match (balas_domain::parse_contact_fields(name, phone, email), attribute_writes(&definitions, attributes)) {
        (Ok((name, phone, email)), Ok(writes)) => Ok((name, phone, email, writes)),
        (fields, writes) => {
            let errors = fields.err().into_iter().flatten().chain(writes.err().into_iter().flatten()).collect();
            Err(AppError::Invalid { errors })
        }
    }
}

/// Adds a contact by hand (agents and admins; audited).
pub async fn create_contact(
    state: &AppState,
    caller: &Caller,
    name: &str,
    phone: &str,
    email: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<Contact, AppError> {
    caller.require_active()?;
    let (name, phone, email, writes) = checked_details(state, caller, name, phone, email, attributes).await?;
    let contact = state
        .store
        .create_contact(caller.me.workspace_id, name.as_deref(), &phone, email.as_ref(), &writes, now())
        .await
        .map_err(from_store)?;
    audit(state, caller, AuditAction::ContactEdited, contact.phone.as_str(), "created").await;
    Ok(contact)
}

/// Changes a contact's name, number, email and the given custom attributes (key → value as
/// typed; empty clears it), all checked first (agents and admins; audited).
pub async fn edit_contact(
    state: &AppState,
    caller: &Caller,
    id: ContactId,
    name: &str,
    phone: &str,
    email: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<Contact, AppError> {
    caller.require_active()?;
    let (name, phone, email, writes) = checked_details(state, caller, name, phone, email, attributes).await?;
    let contact = state
        .store
        .edit_contact(caller.me.workspace_id, id, name.as_deref(), &phone, email.as_ref(), &writes)
        .await
        .map_err(from_store)?;
    audit(state, caller, AuditAction::ContactEdited, contact.phone.as_str(), "").await;
    Ok(contact)
}

/// Adds a note to a contact (agents and admins); returns the notes, newest first.
pub async fn add_contact_note(
    state: &AppState,
    caller: &Caller,
    id: ContactId,
    body: &str,
) -> Result<Vec<ContactNote>, AppError> {
    caller.require_active()?;
    let body = MessageText::parse(body).map_err(AppError::invalid)?;
    let workspace = caller.me.workspace_id;
    state.store.add_contact_note(workspace, id, caller.me.user_id, &body, now()).await.map_err(from_store)?;
    state.store.contact_notes(workspace, id).await.map_err(from_store)
}

/// Deletes a contact with its conversations and notes (admins; audited).
pub async fn delete_contact(state: &AppState, caller: &Caller, id: ContactId) -> Result<(), AppError> {
    caller.require_admin()?;
    let phone = state.store.delete_contact(caller.me.workspace_id, id).await.map_err(from_store)?;
    audit(state, caller, AuditAction::ContactDeleted, phone.as_str(), "").await;
    Ok(())
}

/// An agent stops (or restarts) broadcasts for a contact; audited when it changed anything.
pub async fn set_opted_out(
    state: &AppState,
    caller: &Caller,
    id: ContactId,
    opted_out: bool,
) -> Result<Contact, AppError> {
    caller.require_active()?;
    let workspace = caller.me.workspace_id;
    match state.store.set_opted_out(workspace, id, opted_out, now()).await.map_err(from_store)? {
        Some(change) => {
            let action = if opted_out { AuditAction::ContactOptedOut } else { AuditAction::ContactOptedIn };
            audit(state, caller, action, change.contact.phone.as_str(), "by an agent").await;
            Ok(change.contact)
        }
        None => state.store.contact(workspace, id).await.map_err(from_store),
    }
}

pub async fn labels(state: &AppState, caller: &Caller) -> Result<Vec<Label>, AppError> {
    caller.require_active()?;
    state.store.labels(caller.me.workspace_id).await.map_err(from_store)
}

/// Adds a label (admins; audited).
pub async fn create_label(state: &AppState, caller: &Caller, name: &str, color: &str) -> Result<Vec<Label>, AppError> {
    caller.require_admin()?;
    let (name, color) = match (LabelName::parse(name), LabelColor::parse(color)) {
        (Ok(name), Ok(color)) => (name, color),
        (name, color) => return Err(AppError::Invalid { errors: name.err().into_iter().chain(color.err()).collect() }),
    };
    let workspace = caller.me.workspace_id;
    state.store.create_label(workspace, &name, &color, now()).await.map_err(from_store)?;
    audit(state, caller, AuditAction::LabelCreated, name.as_str(), color.as_str()).await;
    state.store.labels(workspace).await.map_err(from_store)
}

/// Deletes a label and takes it off every contact (admins; audited).
pub async fn delete_label(state: &AppState, caller: &Caller, id: LabelId) -> Result<Vec<Label>, AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let name = state.store.delete_label(workspace, id).await.map_err(from_store)?;
    audit(state, caller, AuditAction::LabelDeleted, &name, "").await;
    state.store.labels(workspace).await.map_err(from_store)
}

/// Puts a label on (or takes it off) up to [`MAX_BULK`] contacts; returns how many changed.
pub async fn label_contacts(
    state: &AppState,
    caller: &Caller,
    label: LabelId,
    contacts: &[i64],
    on: bool,
) -> Result<u64, AppError> {
    caller.require_active()?;
    if contacts.is_empty() || contacts.len() > MAX_BULK {
        let range = Issue::OutOfRange { min: 1, max: MAX_BULK as i64 };
        return Err(AppError::invalid(FieldError::new(Field::Contacts, range)));
    }
    let ids: Vec<ContactId> = contacts.iter().copied().map(ContactId).collect();
    state.store.label_contacts(caller.me.workspace_id, label, &ids, on).await.map_err(|error| match error {
        StoreError::NotFound => AppError::invalid(FieldError::new(Field::Name, Issue::NotAllowed)),
        other => from_store(other),
    })
}

/// Merges contact `other` into `keep`, which keeps its number (agents and admins; audited): see
/// [`balas_storage::Store::merge_contacts`].
pub async fn merge_contacts(
    state: &AppState,
    caller: &Caller,
    keep: ContactId,
    other: ContactId,
) -> Result<Contact, AppError> {
    caller.require_active()?;
    if keep == other {
        return Err(AppError::invalid(FieldError::new(Field::Contacts, Issue::Duplicate)));
    }
    let workspace = caller.me.workspace_id;
    let merged = state.store.merge_contacts(workspace, keep, other).await.map_err(from_store)?;
    audit(state, caller, AuditAction::ContactsMerged, merged.contact.phone.as_str(), merged.gone.as_str()).await;
    // Every dashboard: the conversations that joined others go, the contact's others change (its
    // name, and what joined them).
    let mut events: Vec<LiveEvent> = merged
        .joined
        .iter()
        .map(|&(conversation_id, into)| LiveEvent::ConversationRemoved { conversation_id, into })
        .collect();
    match state.store.contact_conversations(workspace, keep).await {
        Ok(conversations) => events
            .extend(conversations.into_iter().map(|c| LiveEvent::ConversationUpdated { conversation: Box::new(c) })),
        Err(error) => tracing::warn!(%error, "the merged contact's conversations were not announced"),
    }
    for event in events {
        announce(state, caller, event).await;
    }
    Ok(merged.contact)
}

/// No stop or start keyword is longer than this.
const MAX_KEYWORD_CHARS: usize = 40;
/// The most stop keywords a workspace may have.
const MAX_KEYWORDS: usize = 20;

/// The workspace's stop keywords as an admin sees them (the defaults when none were set).
pub async fn stop_keywords_of(state: &AppState, caller: &Caller) -> Result<Vec<String>, AppError> {
    caller.require_active()?;
    Ok(stop_keywords(state, caller.me.workspace_id).await)
}

/// Sets the words that stop broadcasts, one per line or comma-separated (admins; audited). Each
/// is a whole message of at most 40 characters; the start keywords cannot be stop keywords.
pub async fn set_stop_keywords(state: &AppState, caller: &Caller, raw: &str) -> Result<Vec<String>, AppError> {
    caller.require_admin()?;
    let invalid = |issue| AppError::invalid(FieldError::new(Field::Keywords, issue));
    let mut words: Vec<String> = Vec::new();
    for word in raw.split(['\n', ',']).map(|w| w.split_whitespace().collect::<Vec<_>>().join(" ")) {
        // Matched as customers' messages are: trailing punctuation does not count.
        let word = word.trim_end_matches(['.', '!', '?']).trim().to_uppercase();
        if word.is_empty() {
            continue;
        }
        if word.chars().count() > MAX_KEYWORD_CHARS {
            return Err(invalid(Issue::TooLong { max: MAX_KEYWORD_CHARS }));
        }
        if word.chars().any(char::is_control) {
            return Err(invalid(Issue::ControlCharacters));
        }
        if balas_domain::START_KEYWORDS.contains(&word.as_str()) {
            return Err(invalid(Issue::NotAllowed));
        }
        if words.contains(&word) {
            return Err(invalid(Issue::Duplicate));
        }
        words.push(word);
    }
    if words.is_empty() {
        return Err(invalid(Issue::Required));
    }
    if words.len() > MAX_KEYWORDS {
        return Err(invalid(Issue::TooMany { max: MAX_KEYWORDS }));
    }
    state.store.set_stop_keywords(caller.me.workspace_id, &words).await.map_err(from_store)?;
    audit(state, caller, AuditAction::StopKeywordsChanged, &words.join(", "), "").await;
    Ok(words)
}

/// What a workspace's customers send to stop broadcasts.
pub async fn stop_keywords(state: &AppState, workspace: balas_domain::WorkspaceId) -> Vec<String> {
    match state.store.stop_keywords(workspace).await {
        Ok(Some(words)) => words,
        Ok(None) => DEFAULT_STOP_KEYWORDS.iter().map(|w| (*w).to_owned()).collect(),
        Err(error) => {
            tracing::warn!(%error, "stop keywords could not be read; using the defaults");
            DEFAULT_STOP_KEYWORDS.iter().map(|w| (*w).to_owned()).collect()
        }
    }
}

/// A customer's message that is a stop (or start) keyword changes their subscription, once:
/// they get one confirmation, and the audit log records it. Run for each newly stored inbound
/// message.
pub async fn customer_keyword(state: &AppState, message: &balas_domain::Message, from: &balas_domain::PhoneNumber) {
    let workspace = message.workspace_id;
    // Keywords are short: most messages need no look at the workspace's list.
    if message.media.is_some() || message.body.chars().count() > MAX_KEYWORD_CHARS {
        return;
    }
    let Some(request) = OptRequest::of(&message.body, &stop_keywords(state, workspace).await) else { return };
    let Ok(Some(contact)) = state.store.contact_by_phone(workspace, from).await else { return };
    let opted_out = request == OptRequest::Stop;
    let change = match state.store.set_opted_out(workspace, contact.id, opted_out, now()).await {
        Ok(Some(change)) => change,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, "a customer's stop keyword could not be applied");
            return;
        }
    };
    let action = if opted_out { AuditAction::ContactOptedOut } else { AuditAction::ContactOptedIn };
    let entry = Audit {
        workspace_id: workspace,
        actor: None,
        action,
        subject: change.contact.phone.as_str(),
        detail: "by the customer's message",
        ip: None,
        at: now(),
    };
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(%error, "an opt-out was not written to the audit log");
    }
    let reply = if opted_out {
        "You will no longer receive broadcasts from us. Reply START to receive them again. \
         / Anda tidak akan menerima siaran lagi. Balas MULAI untuk menerimanya lagi."
    } else {
        "You will receive our broadcasts again. Reply STOP to stop them. \
         / Anda akan menerima siaran kami lagi. Balas BERHENTI untuk berhenti."
    };
    let text = MessageText::parse(reply).expect("a valid confirmation");
    let sent = queue_text(state, workspace, message.channel_id, from, &text, SenderKind::System, None).await;
    if let Err(error) = sent {
        tracing::error!(?error, "the opt-out confirmation was not queued");
    }
}

/// The workspace's segments, each with how many contacts match it now.
pub async fn segments(state: &AppState, caller: &Caller) -> Result<Vec<Segment>, AppError> {
    caller.require_active()?;
    let workspace = caller.me.workspace_id;
    let mut list = state.store.segments(workspace).await.map_err(from_store)?;
    let at = now();
    for segment in &mut list {
        segment.contacts = state.store.count_contacts(workspace, &segment.filter, at).await.map_err(from_store)?;
    }
    Ok(list)
}

/// Saves the list's filter as a segment (agents and admins); returns the segments.
pub async fn create_segment(
    state: &AppState,
    caller: &Caller,
    name: &str,
    filter: &ContactFilter,
) -> Result<Vec<Segment>, AppError> {
    caller.require_active()?;
    let name = LabelName::parse(name).map_err(AppError::invalid)?;
    let filter = checked_filter(state, caller.me.workspace_id, filter).await?;
    let filter = ContactFilter { sort: ContactSort::default(), ..filter };
    state.store.create_segment(caller.me.workspace_id, &name, &filter, now()).await.map_err(from_store)?;
    segments(state, caller).await
}

/// Deletes a segment (admins); returns the segments.
pub async fn delete_segment(state: &AppState, caller: &Caller, id: i64) -> Result<Vec<Segment>, AppError> {
    caller.require_admin()?;
    state.store.delete_segment(caller.me.workspace_id, id).await.map_err(from_store)?;
    segments(state, caller).await
}
