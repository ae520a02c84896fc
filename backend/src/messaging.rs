//! Channels and sending: what the dashboard (and later the REST API) may ask of the pipeline.

use balas_domain::{
    AppError, AuditAction, Channel, ChannelId, ChannelName, ChannelState, Command, ConversationSummary, Field,
    FieldError, Issue, LinkMethod, LiveEvent, Message, MessageStatus, MessageText, PhoneNumber, Provider,
    RatePerSecond, SendJob, SenderKind,
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
    add_channel(state, caller, Provider::Sandbox, name, phone, rate, LinkMethod::Qr).await
}

/// Adds a real WhatsApp number (admins only). A worker takes it up at once and shows a QR code to
/// scan, or a code to type on the phone (for `LinkMethod::Code`, which is why the number is asked
/// for: WhatsApp sends the code's notification to that phone).
pub async fn link_whatsapp_number(
    state: &AppState,
    caller: &Caller,
    name: &str,
    phone: &str,
    rate: Option<i64>,
    method: LinkMethod,
) -> Result<Channel, AppError> {
    caller.require_admin()?;
    add_channel(state, caller, Provider::Whatsapp, name, phone, rate, method).await
}

async fn add_channel(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    name: &str,
    phone: &str,
    rate: Option<i64>,
    link_method: LinkMethod,
) -> Result<Channel, AppError> {
    let mut errors = Vec::new();
    let name = ChannelName::parse(name).map_err(|e| errors.push(e)).ok();
    let phone = PhoneNumber::parse(phone).map_err(|e| errors.push(e)).ok();
    let rate = rate.map_or(Ok(RatePerSecond::DEFAULT), RatePerSecond::parse).map_err(|e| errors.push(e)).ok();
    let (Some(name), Some(phone), Some(rate)) = (name, phone, rate) else {
        return Err(AppError::Invalid { errors });
    };
    let channel =
        NewChannel { workspace_id: caller.me.workspace_id, name: &name, provider, phone: &phone, rate, link_method };
    let created = state.store.create_channel(&channel, now()).await.map_err(from_store)?;
    audit(state, caller, AuditAction::ChannelCreated, phone.as_str(), name.as_str()).await?;
    Ok(created)
}

/// Links a real number again (after a logout, or when its code expired), by QR code or by phone
/// code: the channel goes back to the workers, which show a new code. Admins only.
pub async fn relink_channel(
    state: &AppState,
    caller: &Caller,
    channel_id: i64,
    method: LinkMethod,
) -> Result<Channel, AppError> {
    caller.require_admin()?;
    let id = ChannelId(channel_id);
    let current = state.store.channel(id).await.map_err(from_store)?;
    let Some(current) = current.filter(|c| c.workspace_id == caller.me.workspace_id) else {
        return Err(AppError::NotFound);
    };
    if current.provider != Provider::Whatsapp {
        return Err(AppError::invalid(FieldError::new(Field::Channel, Issue::NotAllowed)));
    }
    if current.state == ChannelState::Connected {
        return Err(AppError::invalid(FieldError::new(Field::Channel, Issue::NotAllowed)));
    }
    let channel = state.store.relink_channel(caller.me.workspace_id, id, method).await.map_err(from_store)?;
    audit(state, caller, AuditAction::ChannelRelinked, channel.phone.as_str(), method.as_str()).await?;
    let event = LiveEvent::ChannelUpdated { channel: Box::new(channel.clone()) };
    state.bus.publish_live(caller.me.workspace_id, &event).await.map_err(internal)?;
    // A worker still running the number (waiting for a link) starts it afresh; a worker that
    // parked it after a logout, or none, takes it up from its state.
    crate::inbox::command(state, id, Command::Relink).await;
    Ok(channel)
}

/// Appends to the audit log as the caller.
pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    action: AuditAction,
    subject: &str,
    detail: &str,
) -> Result<(), AppError> {
    let audit = Audit {
        workspace_id: caller.me.workspace_id,
        actor: Some(caller.me.user_id),
        action,
        subject,
        detail,
        ip: None,
        at: now(),
    };
    state.store.append_audit(&audit).await.map_err(from_store)
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
    let outbound = Outbound { workspace_id, channel_id, to, text: text.as_str(), media: None, sender, sender_user };
    queue_message(state, &outbound).await
}

/// An outbound message to queue: a text, or a file of the workspace's media folder with a
/// caption (checked already, see [`balas_domain::message_body`]).
pub struct Outbound<'a> {
    pub workspace_id: balas_domain::WorkspaceId,
    pub channel_id: ChannelId,
    pub to: &'a PhoneNumber,
    pub text: &'a str,
    pub media: Option<&'a balas_domain::Media>,
    pub sender: SenderKind,
    pub sender_user: Option<balas_domain::UserId>,
}

/// Stores and queues an outbound message, like [`queue_text`].
pub async fn queue_message(state: &AppState, message: &Outbound<'_>) -> Result<Message, AppError> {
    let Outbound { workspace_id, channel_id, to, text, media, sender, sender_user } = *message;
    let wa_id = new_wa_id();
    let outbound = NewOutbound { workspace_id, channel_id, to, text, media, sender, sender_user, wa_id: &wa_id };
    let (message, conversation) = state.store.queue_message(&outbound, now()).await.map_err(from_store)?;
    send_queued(state, &outbound, message, conversation).await
}

/// Announces a message just stored as queued and puts it on the send queue. If the queue cannot
/// take it, the message is marked failed (never left looking queued) and the caller gets an error.
pub(crate) async fn send_queued(
    state: &AppState,
    outbound: &NewOutbound<'_>,
    message: Message,
    conversation: ConversationSummary,
) -> Result<Message, AppError> {
    let workspace_id = outbound.workspace_id;
    // Announce it before queuing it, so that its status updates never arrive before it.
    let event = LiveEvent::MessageNew { message: Box::new(message.clone()), conversation: Box::new(conversation) };
    if let Err(error) = state.bus.publish_live(workspace_id, &event).await {
        tracing::warn!(%error, "a queued message was not announced live");
    }
    let job = SendJob {
        workspace_id,
        channel_id: outbound.channel_id,
        message_id: message.id,
        to: outbound.to.clone(),
        wa_id: outbound.wa_id.to_owned(),
        text: outbound.text.to_owned(),
        media: outbound.media.cloned(),
        retry: 0,
    };
    if let Err(error) = state.bus.enqueue_send(&job, outbound.sender.priority()).await {
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
