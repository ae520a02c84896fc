//! Channels and sending: what the dashboard (and later the REST API) may ask of the pipeline.

use balas_domain::{
    AppError, AuditAction, Channel, ChannelId, ChannelName, FieldError, LiveEvent, Message, MessageStatus, MessageText,
    PhoneNumber, Provider, RatePerSecond, SendJob, SenderKind,
};
use balas_storage::{Audit, MessageKey, NewChannel, NewOutbound};

use crate::accounts::Caller;
use crate::{AppState, from_store, internal, now};

/// A new WhatsApp message id, in the form WhatsApp's own clients use (`3EB0` and hex digits).
pub fn new_wa_id() -> String {
    format!("3EB0{:020X}", rand::random::<u128>() >> 48)
}

/// The channels of the caller's workspace.
pub async fn channels(state: &AppState, caller: &Caller) -> Result<Vec<Channel>, AppError> {
    caller.require_active()?;
    state.store.channels(caller.me.workspace_id).await.map_err(from_store)
}

/// Adds a channel on the sandbox network (admins only, and only when the sandbox is enabled).
pub async fn create_sandbox_channel(
    state: &AppState,
    caller: &Caller,
    name: &str,
    phone: &str,
    rate: Option<i64>,
) -> Result<Channel, AppError> {
    caller.require_admin()?;
    if !state.settings.sandbox {
        return Err(AppError::NotFound);
    }
    let mut errors = Vec::new();
    let name = ChannelName::parse(name).map_err(|e| errors.push(e)).ok();
    let phone = PhoneNumber::parse(phone).map_err(|e| errors.push(e)).ok();
    let rate = rate.map_or(Ok(RatePerSecond::DEFAULT), RatePerSecond::parse).map_err(|e| errors.push(e)).ok();
    let (Some(name), Some(phone), Some(rate)) = (name, phone, rate) else {
        return Err(AppError::Invalid { errors });
    };
    let channel = NewChannel {
        workspace_id: caller.me.workspace_id,
        name: &name,
        provider: Provider::Sandbox,
        phone: &phone,
        rate,
    };
    let created = state.store.create_channel(&channel, now()).await.map_err(from_store)?;
    let audit = Audit {
        workspace_id: caller.me.workspace_id,
        actor: Some(caller.me.user_id),
        action: AuditAction::ChannelCreated,
        subject: phone.as_str(),
        detail: name.as_str(),
        ip: None,
        at: now(),
    };
    state.store.append_audit(&audit).await.map_err(from_store)?;
    Ok(created)
}

/// Sends a text from the caller (an agent) to `to` on a channel of their workspace: stored as
/// `queued`, put on the channel's queue, and shown live to the workspace.
pub async fn send_message(
    state: &AppState,
    caller: &Caller,
    channel_id: i64,
    to: &str,
    text: &str,
) -> Result<Message, AppError> {
    caller.require_active()?;
    let mut errors: Vec<FieldError> = Vec::new();
    let to = PhoneNumber::parse(to).map_err(|e| errors.push(e)).ok();
    let text = MessageText::parse(text).map_err(|e| errors.push(e)).ok();
    let (Some(to), Some(text)) = (to, text) else {
        return Err(AppError::Invalid { errors });
    };
    queue_text(
        state,
        caller.me.workspace_id,
        ChannelId(channel_id),
        &to,
        &text,
        SenderKind::Agent,
        Some(caller.me.user_id),
    )
    .await
}

/// Stores and queues an outbound text. If the queue cannot take it, the message is marked failed
/// (never left looking queued) and the caller gets an error.
pub async fn queue_text(
    state: &AppState,
    workspace_id: balas_domain::WorkspaceId,
    channel_id: ChannelId,
    to: &PhoneNumber,
    text: &MessageText,
    sender: SenderKind,
    sender_user: Option<balas_domain::UserId>,
) -> Result<Message, AppError> {
    let wa_id = new_wa_id();
    let outbound = NewOutbound { workspace_id, channel_id, to, text, sender, sender_user, wa_id: &wa_id };
    let (message, conversation) = state.store.queue_message(&outbound, now()).await.map_err(from_store)?;
    // Announce it before queuing it, so that its status updates never arrive before it.
    let event = LiveEvent::MessageNew { message: Box::new(message.clone()), conversation: Box::new(conversation) };
    if let Err(error) = state.bus.publish_live(workspace_id, &event).await {
        tracing::warn!(%error, "a queued message was not announced live");
    }
    let job = SendJob {
        workspace_id,
        channel_id,
        message_id: message.id,
        to: to.clone(),
        wa_id,
        text: text.clone(),
        retry: 0,
    };
    if let Err(error) = state.bus.enqueue_send(&job, sender.priority()).await {
        let reason = "the send queue could not be reached; try again";
        let failed =
            state.store.advance_message(MessageKey::Id(message.id), MessageStatus::Failed, Some(reason), now()).await;
        if let Ok(Some(change)) = failed {
            let event = LiveEvent::MessageStatus {
                message_id: change.message_id,
                conversation_id: change.conversation_id,
                status: change.status,
                error: change.error,
            };
            let _ = state.bus.publish_live(workspace_id, &event).await;
        }
        return Err(internal(error));
    }
    Ok(message)
}
