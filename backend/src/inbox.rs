//! The shared inbox: what agents may see and do with their workspace's conversations. Every call
//! checks the caller's session and scopes to their workspace; a conversation of another workspace
//! is answered exactly like one that does not exist (403, nothing about it leaks).

use balas_domain::{
    Activity, Agent, AppError, Attachment, AuditAction, CHAT_PAGE, CannedResponse, ChannelId, Command, ConversationId,
    ConversationStatus, ConversationSummary, ConversationView, Field, FieldError, INBOX_PAGE, InboxFilter, InboxPage,
    Issue, LabelId, LiveEvent, Message, MessageId, MessagePage, MessageText, SendJob, SenderKind, SessionCommand,
    Shortcut, Timestamp, UserId, message_body,
};
use balas_storage::{Audit, ListCursor, ReadMark, StoreError};

use crate::accounts::Caller;
use crate::media::{self, Area};
use crate::messaging::{Outbound, new_wa_id, queue_message};
use crate::{AppState, from_store, internal, now};

/// A conversation of the caller's workspace, or `Forbidden` (for another workspace's and for one
/// that does not exist alike).
async fn owned(state: &AppState, caller: &Caller, id: ConversationId) -> Result<ConversationSummary, AppError> {
    caller.require_active()?;
    state.store.conversation(caller.me.workspace_id, id).await.map_err(from_store)?.ok_or(AppError::Forbidden)
}

fn scoped(error: StoreError) -> AppError {
    match error {
        StoreError::NotFound => AppError::Forbidden,
        other => from_store(other),
    }
}

/// Publishes a live event to the caller's workspace; a failure is logged (the change is stored,
/// and browsers that miss it reload what they show when they reconnect).
pub(crate) async fn announce(state: &AppState, caller: &Caller, event: LiveEvent) {
    if let Err(error) = state.bus.publish_live(caller.me.workspace_id, &event).await {
        tracing::warn!(%error, "a change was not announced live");
    }
}

pub(crate) async fn command(state: &AppState, channel_id: ChannelId, command: Command) {
    let command = SessionCommand { channel_id, at: now(), command };
    if let Err(error) = state.bus.send_session_command(&command).await {
        tracing::warn!(%error, "a session command was not sent");
    }
}

/// A page of the caller's workspace's conversations that match `filter`, newest first.
pub async fn inbox(
    state: &AppState,
    caller: &Caller,
    filter: &InboxFilter,
    after: Option<(i64, i64)>,
) -> Result<InboxPage, AppError> {
    caller.require_active()?;
    filter.search_text().map_err(AppError::invalid)?;
    let after = after.map(|(at, id)| ListCursor { last_message_at: Timestamp(at), id: ConversationId(id) });
    let workspace = caller.me.workspace_id;
    let (conversations, more) =
        state.store.conversations(workspace, caller.me.user_id, filter, after, INBOX_PAGE).await.map_err(from_store)?;
    let total_unread = state.store.total_unread(workspace).await.map_err(from_store)?;
    Ok(InboxPage { conversations, more, total_unread })
}

/// Opens a conversation: its latest messages, its channel and the contact's other conversations.
/// Opening marks it read (as [`mark_read`] does).
pub async fn open(state: &AppState, caller: &Caller, id: ConversationId) -> Result<ConversationView, AppError> {
    let read = read(state, caller, id).await?;
    let channel =
        state.store.channel(read.conversation.channel_id).await.map_err(from_store)?.ok_or(AppError::Forbidden)?;
    let conversation = after_read(state, caller, read, channel.read_receipts).await;
    let workspace = caller.me.workspace_id;
    let mut messages = state.store.messages(workspace, id, None, CHAT_PAGE + 1).await.map_err(from_store)?;
    let more = messages.len() > CHAT_PAGE as usize;
    if more {
        messages.remove(0);
    }
    let other_conversations = state
        .store
        .contact_conversations(workspace, conversation.contact_id)
        .await
        .map_err(from_store)?
        .into_iter()
        .filter(|c| c.id != id)
        .collect();
    Ok(ConversationView { conversation, channel, messages, more, other_conversations })
}

/// Messages of a conversation older than `before`.
pub async fn older_messages(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    before: MessageId,
) -> Result<MessagePage, AppError> {
    owned(state, caller, id).await?;
    let mut messages =
        state.store.messages(caller.me.workspace_id, id, Some(before), CHAT_PAGE + 1).await.map_err(from_store)?;
    let more = messages.len() > CHAT_PAGE as usize;
    if more {
        messages.remove(0);
    }
    Ok(MessagePage { messages, more })
}

/// Marks a conversation read by the team and, when its channel sends read receipts, tells the
/// customer. The other agents are told when its unread count changed.
pub async fn mark_read(state: &AppState, caller: &Caller, id: ConversationId) -> Result<(), AppError> {
    let read = read(state, caller, id).await?;
    // The channel is looked up only when there is something to send receipts for.
    let receipts = !read.wa_ids.is_empty()
        && state
            .store
            .channel(read.conversation.channel_id)
            .await
            .map_err(from_store)?
            .is_some_and(|c| c.read_receipts);
    after_read(state, caller, read, receipts).await;
    Ok(())
}

/// Marks a conversation of the caller's workspace read (`Forbidden` for any other).
async fn read(state: &AppState, caller: &Caller, id: ConversationId) -> Result<ReadMark, AppError> {
    caller.require_active()?;
    state.store.mark_conversation_read(caller.me.workspace_id, id).await.map_err(from_store)?.ok_or(AppError::Forbidden)
}

/// Sends the read receipts (with `receipts`) and tells the other agents; returns the conversation.
async fn after_read(state: &AppState, caller: &Caller, read: ReadMark, receipts: bool) -> ConversationSummary {
    if receipts && !read.wa_ids.is_empty() {
        command(state, read.conversation.channel_id, Command::MarkRead { from: read.phone, wa_ids: read.wa_ids }).await;
    }
    if read.was_unread {
        announce(state, caller, LiveEvent::ConversationUpdated { conversation: Box::new(read.conversation.clone()) })
            .await;
    }
    read.conversation
}

/// An agent's reply to the customer of a conversation: a text, or a file they uploaded (with a
/// caption).
pub async fn reply(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    text: &str,
    attachment: Option<&Attachment>,
) -> Result<Message, AppError> {
    let conversation = owned(state, caller, id).await?;
    let area = Area::Workspace(caller.me.workspace_id);
    let media = match attachment {
        Some(file) => Some(media::uploaded(state, area, &file.name, &file.file_name).await?),
        None => None,
    };
    let text = message_body(text, media.as_ref()).map_err(AppError::invalid)?;
    let outbound = Outbound {
        workspace_id: caller.me.workspace_id,
        channel_id: conversation.channel_id,
        to: &conversation.contact_phone,
        text: &text,
        media: media.as_ref(),
        sender: SenderKind::Agent,
        sender_user: Some(caller.me.user_id),
    };
    queue_message(state, &outbound).await
}

/// A private note: shown to the workspace's agents, never sent to the customer.
pub async fn add_note(state: &AppState, caller: &Caller, id: ConversationId, text: &str) -> Result<Message, AppError> {
    owned(state, caller, id).await?;
    let text = MessageText::parse(text).map_err(AppError::invalid)?;
    let note_id = format!("note-{}", new_wa_id());
    let (message, conversation) = state
        .store
        .add_note(caller.me.workspace_id, id, caller.me.user_id, &text, &note_id, now())
        .await
        .map_err(scoped)?;
    let event = LiveEvent::MessageNew { message: Box::new(message.clone()), conversation: Box::new(conversation) };
    announce(state, caller, event).await;
    Ok(message)
}

/// Assigns a conversation to a member of the workspace, or to nobody.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    assignee: Option<i64>,
) -> Result<ConversationSummary, AppError> {
    owned(state, caller, id).await?;
    let assignee = assignee.map(UserId);
    let conversation = state.store.assign(caller.me.workspace_id, id, assignee).await.map_err(|error| match error {
        StoreError::NotFound => AppError::invalid(FieldError::new(Field::Assignee, Issue::NotAllowed)),
        other => from_store(other),
    })?;
    announce(state, caller, LiveEvent::ConversationUpdated { conversation: Box::new(conversation.clone()) }).await;
    Ok(conversation)
}

pub async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    status: &str,
) -> Result<ConversationSummary, AppError> {
    owned(state, caller, id).await?;
    let status = ConversationStatus::parse(status)
        .ok_or_else(|| AppError::invalid(FieldError::new(Field::Status, Issue::NotAllowed)))?;
    let conversation = state.store.set_conversation_status(caller.me.workspace_id, id, status).await.map_err(scoped)?;
    announce(state, caller, LiveEvent::ConversationUpdated { conversation: Box::new(conversation.clone()) }).await;
    Ok(conversation)
}

/// Puts a label on a conversation or takes it off (agents and admins); every dashboard sees it.
pub async fn label_conversation(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    label: LabelId,
    on: bool,
) -> Result<ConversationSummary, AppError> {
    owned(state, caller, id).await?;
    let workspace = caller.me.workspace_id;
    state.store.label_conversation(workspace, id, label, on).await.map_err(|error| match error {
        StoreError::NotFound => AppError::invalid(FieldError::new(Field::Name, Issue::NotAllowed)),
        other => from_store(other),
    })?;
    let conversation = state.store.conversation(workspace, id).await.map_err(from_store)?.ok_or(AppError::NotFound)?;
    announce(state, caller, LiveEvent::ConversationUpdated { conversation: Box::new(conversation.clone()) }).await;
    Ok(conversation)
}

/// Sends a failed message again (as a new job of the same message, so the customer gets it once).
pub async fn retry(state: &AppState, caller: &Caller, id: MessageId) -> Result<Message, AppError> {
    caller.require_active()?;
    let workspace_id = caller.me.workspace_id;
    let requeued = state.store.requeue_failed(workspace_id, id, now()).await.map_err(scoped)?;
    let message = requeued.message;
    let event = LiveEvent::MessageStatus {
        message_id: message.id,
        conversation_id: message.conversation_id,
        status: message.status,
        error: None,
    };
    announce(state, caller, event).await;
    let job = SendJob {
        workspace_id,
        channel_id: message.channel_id,
        message_id: message.id,
        to: requeued.to,
        wa_id: message.wa_id.clone(),
        text: message.body.clone(),
        media: message.media.clone(),
        retry: requeued.retry,
    };
    state.bus.enqueue_send(&job, SenderKind::Agent.priority()).await.map_err(internal)?;
    Ok(message)
}

/// What an agent does in a conversation, told to the other agents; typing also shows "typing…"
/// to the customer.
pub async fn activity(
    state: &AppState,
    caller: &Caller,
    id: ConversationId,
    activity: Activity,
) -> Result<(), AppError> {
    let conversation = owned(state, caller, id).await?;
    let event = LiveEvent::AgentActivity {
        conversation_id: id,
        user_id: caller.me.user_id,
        name: caller.me.name.clone(),
        activity,
        until: now().plus_millis(activity.lasts_ms()),
    };
    announce(state, caller, event).await;
    if activity != Activity::Viewing {
        let typing = activity == Activity::Typing;
        command(state, conversation.channel_id, Command::Typing { to: conversation.contact_phone, typing }).await;
    }
    Ok(())
}

/// The members of the caller's workspace (to assign to, and to name who wrote what).
pub async fn agents(state: &AppState, caller: &Caller) -> Result<Vec<Agent>, AppError> {
    caller.require_active()?;
    state.store.agents(caller.me.workspace_id).await.map_err(from_store)
}

pub async fn canned_responses(state: &AppState, caller: &Caller) -> Result<Vec<CannedResponse>, AppError> {
    caller.require_active()?;
    state.store.canned_responses(caller.me.workspace_id).await.map_err(from_store)
}

pub(crate) async fn audit(state: &AppState, caller: &Caller, action: AuditAction, subject: &str, detail: &str) {
    let entry = Audit {
        workspace_id: caller.me.workspace_id,
        actor: Some(caller.me.user_id),
        action,
        subject,
        detail,
        ip: None,
        at: now(),
    };
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(%error, "an admin action was not written to the audit log");
    }
}

/// Adds a canned response (admins).
pub async fn create_canned_response(
    state: &AppState,
    caller: &Caller,
    shortcut: &str,
    body: &str,
) -> Result<CannedResponse, AppError> {
    caller.require_admin()?;
    let mut errors = Vec::new();
    let shortcut = Shortcut::parse(shortcut).map_err(|e| errors.push(e)).ok();
    let body = MessageText::parse(body).map_err(|e| errors.push(e)).ok();
    let (Some(shortcut), Some(body)) = (shortcut, body) else {
        return Err(AppError::Invalid { errors });
    };
    let created = state
        .store
        .create_canned_response(caller.me.workspace_id, &shortcut, &body, now())
        .await
        .map_err(from_store)?;
    audit(state, caller, AuditAction::CannedResponseCreated, shortcut.as_str(), "").await;
    Ok(created)
}

pub async fn delete_canned_response(state: &AppState, caller: &Caller, id: i64) -> Result<(), AppError> {
    caller.require_admin()?;
    state.store.delete_canned_response(caller.me.workspace_id, id).await.map_err(from_store)?;
    audit(state, caller, AuditAction::CannedResponseDeleted, &id.to_string(), "").await;
    Ok(())
}

/// Turns read receipts of a channel on or off (admins).
pub async fn set_read_receipts(state: &AppState, caller: &Caller, channel: i64, on: bool) -> Result<(), AppError> {
    caller.require_admin()?;
    state.store.set_read_receipts(caller.me.workspace_id, ChannelId(channel), on).await.map_err(from_store)?;
    let detail = if on { "on" } else { "off" };
    audit(state, caller, AuditAction::ReadReceiptsChanged, &channel.to_string(), detail).await;
    Ok(())
}

pub async fn unread_total(state: &AppState, caller: &Caller) -> Result<i64, AppError> {
    caller.require_active()?;
    state.store.total_unread(caller.me.workspace_id).await.map_err(from_store)
}
