//! Broadcasts: checked and stored with their recipients, then fed to the channel's send queue by
//! the planner ([`run_planner`]) a few at a time, within the workspace's sending rules.
//!
//! Why a few at a time: a paused or cancelled broadcast must stop within a second, and a queue
//! that holds only the next couple of seconds' sends can be emptied of them at once. The
//! recipients wait in the database, which survives anything; a recipient is marked queued in the
//! same transaction that stores its message, and its job id is the message's, so a planner that
//! dies and comes back (or another server's planner) queues nothing twice.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use balas_bus::{Lease, LeaseSubject};
use balas_domain::{
    AppError, Audience, AudiencePreview, AuditAction, Broadcast, BroadcastCounts, BroadcastDraft, BroadcastId,
    BroadcastRecipient, BroadcastStatus, Channel, ChannelState, Field, FieldError, Issue, LabelName, LiveEvent,
    MessageStatus, PhoneNumber, PreviewSample, RecipientState, SendJob, SendPriority, SendSeries, SenderKind,
    SendingRules, SkipReason, Template, Timestamp, WorkspaceId, contact_variable,
};
use balas_storage::{AudienceQuery, InFlight, MessageKey, NewBroadcast, NewOutbound};
use chrono::{TimeZone, Timelike};
use tokio::sync::watch;

use crate::accounts::Caller;
use crate::messaging::{audit, new_wa_id};
use crate::{AppState, from_store, internal, now};

/// A schedule may be this far in the past (a form filled in slowly): it starts at once.
const SCHEDULE_SLACK_MS: i64 = 60_000;
/// How far ahead a broadcast may be scheduled.
const SCHEDULE_MAX_MS: i64 = 365 * 24 * 3_600_000;
/// How often the planner looks at the running broadcasts.
const PLAN_EVERY: Duration = Duration::from_millis(500);
/// Seconds of sends (at the channel's rate) the planner keeps on a queue ahead of the worker.
const AHEAD_SECONDS: u32 = 2;
/// This many failed sends in a row pause a broadcast.
pub const FAILURE_RUN: u32 = 10;
/// With no send for this long while messages wait on the queue, the planner puts their jobs
/// back (Redis may have lost them in a crash); the same job ids make this harmless otherwise.
const STALL_MS: i64 = 15_000;
/// How many recipients the wizard shows the message for.
const PREVIEW_SAMPLES: u32 = 3;

/// A draft, checked: everything [`create`] needs, or every problem with it.
struct Checked {
    name: LabelName,
    channel: Channel,
    template: Template,
    missing: balas_domain::MissingRule,
    send_at: Timestamp,
    audience: Audience,
    filter: Option<balas_domain::ContactFilter>,
    valid: Vec<PhoneNumber>,
    invalid: Vec<String>,
    duplicates: i64,
}

impl Checked {
    fn query(&self) -> AudienceQuery<'_> {
        match (&self.audience, &self.filter) {
            (Audience::All, _) => AudienceQuery::All,
            (Audience::Segment { .. }, Some(filter)) => AudienceQuery::Filter(filter),
            (Audience::Labels { labels }, _) => AudienceQuery::Labels(labels),
            _ => AudienceQuery::List { valid: &self.valid, invalid: &self.invalid },
        }
    }
}

/// Checks a draft; with `text_required` false, a draft without a text yet (the wizard's audience
/// step) is checked as if its text were `…`.
async fn check(
    state: &AppState,
    caller: &Caller,
    draft: &BroadcastDraft,
    text_required: bool,
) -> Result<Checked, AppError> {
    let workspace = caller.me.workspace_id;
    let mut errors = Vec::new();
    let name = LabelName::parse(&draft.name).map_err(|e| errors.push(e)).ok();
    let channel = state.store.channel(draft.channel_id).await.map_err(from_store)?;
    let channel = channel.filter(|c| c.workspace_id == workspace);
    if channel.is_none() {
        errors.push(FieldError::new(Field::Channel, Issue::Required));
    }
    let attributes = state.store.attributes(workspace).await.map_err(from_store)?;
    let keys: Vec<&str> = attributes.iter().map(|a| a.key.as_str()).collect();
    let text = if !text_required && draft.text.trim().is_empty() { "…" } else { draft.text.as_str() };
    let template = Template::parse(text, &keys).map_err(|e| errors.push(e)).ok();
    let missing = draft.missing.clone().checked().map_err(|e| errors.push(e)).ok();
    let now = now();
    let send_at = draft.send_at.unwrap_or(now);
    if send_at.0 < now.0 - SCHEDULE_SLACK_MS {
        errors.push(FieldError::new(Field::Schedule, Issue::InPast));
    } else if send_at.0 > now.0 + SCHEDULE_MAX_MS {
        errors.push(FieldError::new(Field::Schedule, Issue::OutOfRange { min: 0, max: 365 }));
    }
    let audience = draft.audience.clone().checked().map_err(|e| errors.push(e)).ok();
    let (mut filter, mut valid, mut invalid, mut duplicates) = (None, Vec::new(), Vec::new(), 0);
    match &audience {
        Some(Audience::Segment { segment_id }) => {
            let segments = state.store.segments(workspace).await.map_err(from_store)?;
            match segments.into_iter().find(|s| s.id == *segment_id) {
                Some(segment) => filter = Some(segment.filter),
                None => errors.push(FieldError::new(Field::Audience, Issue::NotAllowed)),
            }
        }
        Some(Audience::Labels { labels }) => {
            let known: HashSet<_> =
                state.store.labels(workspace).await.map_err(from_store)?.iter().map(|l| l.id).collect();
            if labels.iter().any(|l| !known.contains(l)) {
                errors.push(FieldError::new(Field::Audience, Issue::NotAllowed));
            }
        }
        Some(Audience::List { phones }) => {
            let mut seen = HashSet::new();
            for raw in phones.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
                let key = match PhoneNumber::parse(raw) {
                    Ok(phone) => phone.as_str().to_owned(),
                    Err(_) => raw.to_owned(),
                };
                if !seen.insert(key.clone()) {
                    duplicates += 1;
                } else if let Ok(phone) = PhoneNumber::parse(&key) {
                    valid.push(phone);
                } else {
                    invalid.push(raw.chars().take(40).collect());
                }
            }
        }
        Some(Audience::All) | None => {}
    }
    match (name, channel, template, missing, audience) {
        (Some(name), Some(channel), Some(template), Some(missing), Some(audience)) if errors.is_empty() => {
            // A list is stored by its kind only: its numbers are the recipients.
            let audience = match audience {
                Audience::List { .. } => Audience::List { phones: Vec::new() },
                other => other,
            };
            Ok(Checked { name, channel, template, missing, send_at, audience, filter, valid, invalid, duplicates })
        }
        _ => Err(AppError::Invalid { errors }),
    }
}

/// What a draft comes to: how many it reaches and leaves out, and the message as the first few
/// recipients would get it. Every problem of the draft is reported as [`create`] would, but a
/// missing text (the wizard asks for it after the audience).
pub async fn preview(state: &AppState, caller: &Caller, draft: &BroadcastDraft) -> Result<AudiencePreview, AppError> {
    caller.require_admin()?;
    let checked = check(state, caller, draft, false).await?;
    let workspace = caller.me.workspace_id;
    let (contacts, opted_out, samples) =
        state.store.audience_contacts(workspace, &checked.query(), PREVIEW_SAMPLES, now()).await.map_err(from_store)?;
    let invalid = checked.invalid.len() as i64;
    let samples = samples
        .iter()
        .map(|c| PreviewSample {
            name: c.name.clone(),
            phone: c.phone.as_str().to_owned(),
            text: checked.template.render(|k| contact_variable(c, k), &checked.missing),
        })
        .collect();
    Ok(AudiencePreview { total: contacts + invalid, opted_out, invalid, duplicates: checked.duplicates, samples })
}

/// Creates a broadcast (admins only): every recipient stored, to be sent from `send_at` on.
/// Refused with every problem, and nothing stored, when the draft is wrong or reaches nobody.
pub async fn create(state: &AppState, caller: &Caller, draft: &BroadcastDraft) -> Result<Broadcast, AppError> {
    caller.require_admin()?;
    let checked = check(state, caller, draft, true).await?;
    let workspace = caller.me.workspace_id;
    let (contacts, opted_out, _) =
        state.store.audience_contacts(workspace, &checked.query(), 0, now()).await.map_err(from_store)?;
    if contacts - opted_out <= 0 {
        return Err(AppError::invalid(FieldError::new(Field::Audience, Issue::NoRecipients)));
    }
    let new = NewBroadcast {
        workspace_id: workspace,
        channel_id: checked.channel.id,
        name: &checked.name,
        text: checked.template.as_str(),
        missing: &checked.missing,
        audience: &checked.audience,
        query: checked.query(),
        send_at: checked.send_at,
        created_by: Some(caller.me.user_id),
        duplicates: checked.duplicates,
    };
    let broadcast = state.store.create_broadcast(&new, now()).await.map_err(from_store)?;
    let detail = format!("{} recipients on {}", broadcast.counts.total, checked.channel.phone);
    audit(state, caller, AuditAction::BroadcastCreated, broadcast.name.as_str(), &detail).await?;
    announce(state, &broadcast).await;
    Ok(broadcast)
}

/// The workspace's latest broadcasts.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<Broadcast>, AppError> {
    caller.require_active()?;
    state.store.broadcasts(caller.me.workspace_id, 100).await.map_err(from_store)
}

/// A broadcast with its sends over time (in buckets that give its chart about 60 bars).
pub async fn detail(state: &AppState, caller: &Caller, id: i64) -> Result<(Broadcast, SendSeries), AppError> {
    caller.require_active()?;
    let broadcast = state.store.broadcast(caller.me.workspace_id, BroadcastId(id)).await.map_err(from_store)?;
    let span = match (broadcast.started_at, broadcast.finished_at) {
        (Some(start), Some(end)) => end.0 - start.0,
        (Some(start), None) => now().0 - start.0,
        _ => 0,
    };
    let bucket = ((span / 60).max(1_000) + 999) / 1_000 * 1_000;
    let series = state.store.send_series(&broadcast, bucket).await.map_err(from_store)?;
    Ok((broadcast, series))
}

/// A page of a broadcast's recipients, optionally in one state.
pub async fn recipients(
    state: &AppState,
    caller: &Caller,
    id: i64,
    only: Option<RecipientState>,
    page: u32,
) -> Result<Vec<BroadcastRecipient>, AppError> {
    caller.require_active()?;
    let workspace = caller.me.workspace_id;
    // Not found for another workspace's broadcast, rather than an empty page.
    state.store.broadcast(workspace, BroadcastId(id)).await.map_err(from_store)?;
    state
        .store
        .broadcast_recipients(workspace, BroadcastId(id), only, page, balas_domain::BROADCAST_RECIPIENT_PAGE)
        .await
        .map_err(from_store)
}

/// Pauses a scheduled or running broadcast (admins): its sends still on the queue are taken off
/// at once (one already being sent goes out).
pub async fn pause(state: &AppState, caller: &Caller, id: i64) -> Result<Broadcast, AppError> {
    caller.require_admin()?;
    let reason = format!("Paused by {}", caller.me.name);
    let from = [BroadcastStatus::Running, BroadcastStatus::Scheduled];
    let broadcast = change(state, caller, id, &from, BroadcastStatus::Paused, Some(&reason)).await?;
    hold_queued(state, &broadcast).await;
    audit(state, caller, AuditAction::BroadcastPaused, broadcast.name.as_str(), "").await?;
    Ok(announce_fresh(state, broadcast).await)
}

/// Resumes a paused broadcast (admins); the planner puts its held sends back on the queue.
pub async fn resume(state: &AppState, caller: &Caller, id: i64) -> Result<Broadcast, AppError> {
    caller.require_admin()?;
    let from = [BroadcastStatus::Paused];
    let broadcast = change(state, caller, id, &from, BroadcastStatus::Running, None).await?;
    audit(state, caller, AuditAction::BroadcastResumed, broadcast.name.as_str(), "").await?;
    Ok(announce_fresh(state, broadcast).await)
}

/// Cancels a broadcast that is not over (admins): nothing more is sent (but the send in flight).
pub async fn cancel(state: &AppState, caller: &Caller, id: i64) -> Result<Broadcast, AppError> {
    caller.require_admin()?;
    let from = [BroadcastStatus::Running, BroadcastStatus::Scheduled, BroadcastStatus::Paused];
    let broadcast = change(state, caller, id, &from, BroadcastStatus::Cancelled, None).await?;
    let held = hold_queued(state, &broadcast).await;
    state.store.cancel_recipients(broadcast.id, &held).await.map_err(from_store)?;
    for message in held {
        let reason = Some("the broadcast was cancelled");
        if let Ok(Some(change)) =
            state.store.advance_message(MessageKey::Id(message), MessageStatus::Failed, reason, now()).await
        {
            let _ = state.bus.publish_live(change.workspace_id, &crate::ingest::status_event(change)).await;
        }
    }
    audit(state, caller, AuditAction::BroadcastCancelled, broadcast.name.as_str(), "").await?;
    Ok(announce_fresh(state, broadcast).await)
}

/// Sends the failed recipients of a broadcast again (admins); returns how many.
pub async fn retry_failed(state: &AppState, caller: &Caller, id: i64) -> Result<u64, AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let broadcast = state.store.broadcast(workspace, BroadcastId(id)).await.map_err(from_store)?;
    if broadcast.status == BroadcastStatus::Cancelled {
        return Err(AppError::invalid(FieldError::new(Field::Status, Issue::WrongState)));
    }
    let failed = state.store.failed_broadcast_messages(broadcast.id).await.map_err(from_store)?;
    let mut retried = 0;
    for message in failed {
        let Ok(requeued) = state.store.requeue_failed(workspace, message, now()).await else { continue };
        let job = SendJob {
            workspace_id: workspace,
            channel_id: broadcast.channel_id,
            message_id: message,
            to: requeued.to,
            wa_id: requeued.message.wa_id.clone(),
            text: requeued.message.body.clone(),
            media: None,
            retry: requeued.retry,
        };
        state.bus.enqueue_send(&job, SendPriority::Bulk).await.map_err(internal)?;
        let event = LiveEvent::MessageStatus {
            message_id: message,
            conversation_id: requeued.message.conversation_id,
            status: MessageStatus::Queued,
            error: None,
        };
        let _ = state.bus.publish_live(workspace, &event).await;
        retried += 1;
    }
    if retried > 0 && broadcast.status == BroadcastStatus::Finished {
        let from = [BroadcastStatus::Finished];
        state
            .store
            .set_broadcast_status(workspace, broadcast.id, &from, BroadcastStatus::Running, None, now())
            .await
            .map_err(from_store)?;
    }
    let fresh = state.store.broadcast(workspace, broadcast.id).await.map_err(from_store)?;
    announce(state, &fresh).await;
    Ok(retried)
}

/// The workspace's sending rules.
pub async fn sending_rules(state: &AppState, caller: &Caller) -> Result<SendingRules, AppError> {
    caller.require_active()?;
    state.store.sending_rules(caller.me.workspace_id).await.map_err(from_store)
}

/// Changes the workspace's sending rules (admins): a known time zone, hours and a daily cap.
pub async fn set_sending_rules(
    state: &AppState,
    caller: &Caller,
    rules: SendingRules,
) -> Result<SendingRules, AppError> {
    caller.require_admin()?;
    let rules = SendingRules { time_zone: rules.time_zone.trim().to_owned(), ..rules };
    let mut errors = rules.clone().checked().err().unwrap_or_default();
    if !rules.time_zone.is_empty() && rules.time_zone.parse::<chrono_tz::Tz>().is_err() {
        errors.push(FieldError::new(Field::TimeZone, Issue::NotAllowed));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid { errors });
    }
    state.store.set_sending_rules(caller.me.workspace_id, &rules).await.map_err(from_store)?;
    let detail = format!(
        "{:02}:00–{:02}:00 {}, {} per number per day",
        rules.from_hour, rules.to_hour, rules.time_zone, rules.daily_cap
    );
    audit(state, caller, AuditAction::SendingRulesChanged, "", &detail).await?;
    Ok(rules)
}

async fn change(
    state: &AppState,
    caller: &Caller,
    id: i64,
    from: &[BroadcastStatus],
    to: BroadcastStatus,
    reason: Option<&str>,
) -> Result<Broadcast, AppError> {
    let workspace = caller.me.workspace_id;
    match state.store.set_broadcast_status(workspace, BroadcastId(id), from, to, reason, now()).await {
        Ok(Some(broadcast)) => Ok(broadcast),
        // It exists but is in another state (or it is not the workspace's: NotFound).
        Ok(None) => {
            state.store.broadcast(workspace, BroadcastId(id)).await.map_err(from_store)?;
            Err(AppError::invalid(FieldError::new(Field::Status, Issue::WrongState)))
        }
        Err(error) => Err(from_store(error)),
    }
}

/// Takes a broadcast's sends that have not started off the queue; returns their messages.
async fn hold_queued(state: &AppState, broadcast: &Broadcast) -> Vec<balas_domain::MessageId> {
    let in_flight = match state.store.in_flight(broadcast.id).await {
        Ok(in_flight) => in_flight,
        Err(error) => {
            tracing::warn!(%error, broadcast = %broadcast.id, "could not read the broadcast's queued sends");
            return Vec::new();
        }
    };
    let mut held = Vec::new();
    for message in in_flight {
        let job = send_job(broadcast, &message);
        match state.bus.remove_send(&job).await {
            Ok(true) => held.push(message.message_id),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not take a send off the queue"),
        }
    }
    held
}

fn send_job(broadcast: &Broadcast, message: &InFlight) -> SendJob {
    SendJob {
        workspace_id: broadcast.workspace_id,
        channel_id: broadcast.channel_id,
        message_id: message.message_id,
        to: message.to.clone(),
        wa_id: message.wa_id.clone(),
        text: message.text.clone(),
        media: None,
        retry: message.retry,
    }
}

async fn announce_fresh(state: &AppState, broadcast: Broadcast) -> Broadcast {
    let fresh = state.store.broadcast(broadcast.workspace_id, broadcast.id).await.unwrap_or(broadcast);
    announce(state, &fresh).await;
    fresh
}

async fn announce(state: &AppState, broadcast: &Broadcast) {
    let event = LiveEvent::BroadcastUpdated { broadcast: Box::new(broadcast.clone()) };
    if let Err(error) = state.bus.publish_live(broadcast.workspace_id, &event).await {
        tracing::warn!(%error, "a broadcast's progress was not announced");
    }
}

/// What the planner remembers of a broadcast it holds.
struct Held {
    lease: Lease,
    /// The jobs of its queued messages must be put back (just taken, or resumed).
    repair: bool,
    last_counts: Option<BroadcastCounts>,
    /// When a send last went out (or the planner took it), for spotting lost jobs.
    progressed_at: Timestamp,
}

/// Feeds every due broadcast to its channel's queue until `stop` turns true. Each broadcast is
/// planned by one server instance at a time (a lease); several instances share the work.
pub async fn run_planner(state: AppState, holder: String, mut stop: watch::Receiver<bool>) {
    let mut held: HashMap<BroadcastId, Held> = HashMap::new();
    let mut tick = tokio::time::interval(PLAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let due = match state.store.due_broadcasts(now()).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "planner: cannot read the due broadcasts");
                continue;
            }
        };
        let due_ids: HashSet<BroadcastId> = due.iter().map(|(_, id)| *id).collect();
        for (id, gone) in held.extract_if(|id, _| !due_ids.contains(id)) {
            let _ = state.bus.release_lease(&gone.lease, &holder).await;
            tracing::debug!(broadcast = %id, "planner: let go of a broadcast that is not running");
        }
        for (workspace, id) in due {
            match held.entry(id) {
                Entry::Vacant(slot) => match state.bus.acquire_lease(LeaseSubject::Broadcast(id), &holder).await {
                    Ok(Some(lease)) => {
                        slot.insert(Held { lease, repair: true, last_counts: None, progressed_at: now() });
                    }
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "planner: cannot take a broadcast's lease");
                        continue;
                    }
                },
                Entry::Occupied(entry) => match state.bus.renew_lease(&entry.get().lease, &holder).await {
                    Ok(true) => {}
                    Ok(false) => {
                        entry.remove();
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "planner: cannot renew a broadcast's lease");
                        continue;
                    }
                },
            }
            let entry = held.get_mut(&id).expect("held");
            if let Err(error) = plan(&state, workspace, id, entry).await {
                tracing::warn!(%error, broadcast = %id, "planner: a round failed; trying again");
            }
        }
    }
    for entry in held.values() {
        let _ = state.bus.release_lease(&entry.lease, &holder).await;
    }
}

/// One round for one running broadcast: safety checks, putting lost jobs back, topping up the
/// queue, finishing, and telling the dashboards.
async fn plan(state: &AppState, workspace: WorkspaceId, id: BroadcastId, held: &mut Held) -> anyhow::Result<()> {
    let store = &state.store;
    let broadcast = store.broadcast(workspace, id).await?;
    if broadcast.status != BroadcastStatus::Running {
        return Ok(());
    }
    let channel = store.channel(broadcast.channel_id).await?.ok_or_else(|| anyhow::anyhow!("channel gone"))?;
    // The number's safety first.
    let stop_reason = match channel.state {
        ChannelState::Banned => Some(format!(
            "WhatsApp banned the number ({}). Resume once the ban is over.",
            channel.state_detail.clone().unwrap_or_default()
        )),
        ChannelState::LoggedOut => Some("The number was logged out. Link it again, then resume.".to_owned()),
        _ => None,
    };
    let failures = store.recent_failures(id, FAILURE_RUN).await?;
    let stop_reason = stop_reason.or_else(|| {
        (failures.len() == FAILURE_RUN as usize && failures.iter().all(|f| *f)).then(|| {
            format!("The last {FAILURE_RUN} sends failed. Check the number and the failed recipients, then resume.")
        })
    });
    if let Some(reason) = stop_reason {
        let from = [BroadcastStatus::Running];
        if let Some(paused) =
            store.set_broadcast_status(workspace, id, &from, BroadcastStatus::Paused, Some(&reason), now()).await?
        {
            tracing::warn!(broadcast = %id, %reason, "paused a broadcast for the number's safety");
            hold_queued(state, &paused).await;
            announce_fresh(state, paused).await;
        }
        return Ok(());
    }
    let rules = store.sending_rules(workspace).await?;
    let (waiting, allowance) = allowance(state, &rules, &channel).await?;
    if broadcast.waiting != waiting && store.set_broadcast_waiting(id, waiting.as_deref()).await? {
        held.last_counts = None;
    }
    let counts = broadcast.counts;
    if counts.reached() + counts.failed != held.last_counts.map_or(-1, |c| c.reached() + c.failed) {
        held.progressed_at = now();
    }
    if held.repair || (counts.queued > 0 && now().0 - held.progressed_at.0 > STALL_MS) {
        for message in store.in_flight(id).await? {
            state.bus.enqueue_send(&send_job(&broadcast, &message), SendPriority::Bulk).await?;
        }
        held.repair = false;
        held.progressed_at = now();
    }
    let ahead = (channel.rate.get() * AHEAD_SECONDS).max(4);
    let room = i64::from(ahead).saturating_sub(counts.queued).min(allowance).max(0);
    let mut queued = Vec::new();
    if room > 0 && counts.pending > 0 {
        let template = Template::parse_any(&broadcast.text)?;
        for recipient in store.pending_recipients(id, room as u32).await? {
            let text = match &recipient.contact {
                Some(contact) => template.render(|k| contact_variable(contact, k), &broadcast.missing),
                None => {
                    template.render(|k| (k == "phone").then(|| recipient.phone.as_str().to_owned()), &broadcast.missing)
                }
            };
            let text = match text {
                Ok(text) => text,
                Err(reason) => {
                    store.skip_recipient(recipient.id, &reason).await?;
                    continue;
                }
            };
            if recipient.contact.as_ref().is_some_and(|c| c.opted_out_at.is_some()) {
                // Opted out since the broadcast was created.
                store.skip_recipient(recipient.id, &SkipReason::OptedOut).await?;
                continue;
            }
            let wa_id = new_wa_id();
            let outbound = NewOutbound {
                workspace_id: workspace,
                channel_id: broadcast.channel_id,
                to: &recipient.phone,
                text: &text,
                media: None,
                sender: SenderKind::Broadcast,
                sender_user: broadcast.created_by,
                wa_id: &wa_id,
            };
            let Some((message, conversation)) = store.queue_broadcast_message(recipient.id, &outbound, now()).await?
            else {
                continue;
            };
            let event =
                LiveEvent::MessageNew { message: Box::new(message.clone()), conversation: Box::new(conversation) };
            let _ = state.bus.publish_live(workspace, &event).await;
            let job = SendJob {
                workspace_id: workspace,
                channel_id: broadcast.channel_id,
                message_id: message.id,
                to: recipient.phone.clone(),
                wa_id,
                text,
                media: None,
                retry: 0,
            };
            // A failure here leaves the message queued without a job: the stall check puts it back.
            state.bus.enqueue_send(&job, SendPriority::Bulk).await?;
            queued.push(job);
        }
    }
    let mut fresh = store.broadcast(workspace, id).await?;
    if fresh.status != BroadcastStatus::Running && !queued.is_empty() {
        // Paused or cancelled while this round queued: take back what it added.
        for job in &queued {
            let _ = state.bus.remove_send(job).await;
        }
        return Ok(());
    }
    if fresh.counts.pending == 0 && fresh.counts.queued == 0 {
        let from = [BroadcastStatus::Running];
        if let Some(done) =
            store.set_broadcast_status(workspace, id, &from, BroadcastStatus::Finished, None, now()).await?
        {
            tracing::info!(broadcast = %id, "a broadcast finished");
            fresh = done;
        }
    }
    if held.last_counts != Some(fresh.counts) || fresh.status != BroadcastStatus::Running {
        held.last_counts = Some(fresh.counts);
        announce(state, &fresh).await;
    }
    Ok(())
}

/// Whether the number may send broadcasts now, and how many more today: outside the sending
/// hours or past the daily cap it waits, with the reason said.
async fn allowance(state: &AppState, rules: &SendingRules, channel: &Channel) -> anyhow::Result<(Option<String>, i64)> {
    let zone: chrono_tz::Tz = rules.time_zone.parse().unwrap_or(chrono_tz::Asia::Jakarta);
    let local = chrono::Utc::now().with_timezone(&zone);
    if !rules.allows_hour(local.hour() as u8) {
        let waiting = format!(
            "Outside the sending hours ({:02}:00–{:02}:00 {}); continues at {:02}:00.",
            rules.from_hour, rules.to_hour, rules.time_zone, rules.from_hour
        );
        return Ok((Some(waiting), 0));
    }
    let midnight = local.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists");
    let day_start = zone.from_local_datetime(&midnight).earliest().map_or(0, |t| t.timestamp_millis());
    let sent_today = state.store.bulk_sends_since(channel.id, Timestamp(day_start)).await?;
    let left = i64::from(rules.daily_cap) - sent_today;
    if left <= 0 {
        let waiting =
            format!("This number reached its daily cap of {} broadcast messages; continues tomorrow.", rules.daily_cap);
        return Ok((Some(waiting), 0));
    }
    Ok((None, left))
}
