//! The AI worker's loop (`balas-ai-worker`): it reads the live events through its own consumer
//! group, waits for a customer's burst of messages to settle, and answers the conversation with
//! the channel's AI profile; or hands it to people.
//!
//! - **At least once, answered once.** A stream entry is acknowledged only when its conversation
//!   was handled. A redelivered (or taken-over) entry finds its messages answered already: a
//!   conversation is answered only while its newest messages are the customer's.
//! - **Several AI workers share the load.** The group spreads the entries; a lease per
//!   conversation makes one worker answer it at a time, and a worker that got only part of a
//!   burst answers all of it (it reads the unanswered messages from the database).
//! - **Slow models block nothing else.** Every conversation is its own task; the stream is read
//!   by another.
//! - **Never over a human.** Not when the conversation is paused for the AI (an agent replied,
//!   took it, or paused it), not for an opted-out contact, not outside the profile's hours, and
//!   not when an agent stepped in while the model was thinking.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use balas_bus::{LEASE_RENEW_EVERY_MS, Lease, LeaseSubject};
use balas_domain::{
    ChannelId, Command, ConversationId, ConversationSummary, Direction, LiveEnvelope, LiveEvent, SenderKind,
    SendingRules, WorkspaceId,
};
use chrono::Timelike;
use tokio::sync::{mpsc, watch};

use balas_storage::{AiTurnContext, NewOutbound};

use crate::ai::{Outcome, Tools, Turn, chat_history, converse, month};
use crate::messaging::{new_wa_id, send_queued};
use crate::{AppState, now};

/// The AI workers' consumer group on the live events.
pub const GROUP: &str = "ai";
/// An entry read but not acknowledged this long belongs to a stopped worker, and is taken over.
/// Longer than any turn (timeouts and retries included).
const CLAIM_STALE_MS: u64 = 180_000;
/// Events handled are acknowledged together, this long after the first of them: one round trip
/// for tens of events. One that was handled but not yet acknowledged when the worker stopped is
/// read again, and skipped (its conversation was answered, or is not the AI's).
const ACK_EVERY: Duration = Duration::from_millis(100);

/// Customer messages waiting for their burst to settle.
struct Waiting {
    workspace: WorkspaceId,
    due: Instant,
    ids: Vec<String>,
}

/// How a conversation's turn ended.
enum Handled {
    Done,
    /// Another worker is answering it: try again shortly.
    Busy,
    /// The customer's burst has not settled yet (a message came in through another worker).
    Later(Duration),
}

/// Runs until `stop` turns true.
pub async fn run(state: AppState, consumer: String, mut stop: watch::Receiver<bool>) {
    let (batches, mut read) = mpsc::channel::<(Vec<LiveEnvelope>, Vec<String>)>(16);
    let reader = tokio::spawn(read_events(state.clone(), consumer.clone(), batches, stop.clone()));
    let (done_tx, mut done) = mpsc::unbounded_channel::<(ConversationId, Waiting, Result<Handled, String>)>();
    let mut waiting: HashMap<ConversationId, Waiting> = HashMap::new();
    let mut in_flight: HashSet<ConversationId> = HashSet::new();
    let mut acks = Acks::default();
    let held = Held::default();
    let renewer = tokio::spawn(held.clone().renew(state.clone(), consumer.clone(), stop.clone()));
    loop {
        // A turn starts when its burst has settled, not on a polling tick: no wake-ups while
        // nothing is due, and turns start one by one as they come due rather than in bunches.
        let next_due = waiting.iter().filter(|(id, _)| !in_flight.contains(id)).map(|(_, w)| w.due).min();
        tokio::select! {
            _ = stop.changed() => break,
            batch = read.recv() => {
                let Some((events, ids)) = batch else { break };
                acks.add(schedule(&state, &mut waiting, events, ids).await);
            }
            () = until(acks.due) => acks.send(&state).await,
            finished = done.recv() => {
                let Some((conversation, turn, result)) = finished else { continue };
                in_flight.remove(&conversation);
                match result {
                    Ok(Handled::Done) => acks.add(turn.ids),
                    Ok(Handled::Busy) => requeue(&mut waiting, conversation, turn, Duration::from_secs(1)),
                    Ok(Handled::Later(after)) => requeue(&mut waiting, conversation, turn, after),
                    Err(error) => {
                        tracing::warn!(%error, %conversation, "ai: a turn failed; trying again");
                        requeue(&mut waiting, conversation, turn, Duration::from_secs(5));
                    }
                }
            }
            () = until(next_due) => {
                let now = Instant::now();
                let due: Vec<ConversationId> = waiting
                    .iter()
                    .filter(|(id, w)| w.due <= now && !in_flight.contains(id))
                    .map(|(id, _)| *id)
                    .collect();
                for conversation in due {
                    let Some(turn) = waiting.remove(&conversation) else { continue };
                    in_flight.insert(conversation);
                    let (state, holder, held, done_tx) = (state.clone(), consumer.clone(), held.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let result = handle(&state, &holder, &held, turn.workspace, conversation).await;
                        let _ = done_tx.send((conversation, turn, result.map_err(|e| e.to_string())));
                    });
                }
            }
        }
    }
    acks.send(&state).await;
    let _ = reader.await;
    let _ = renewer.await;
}

/// Event ids to acknowledge, and when.
#[derive(Default)]
struct Acks {
    ids: Vec<String>,
    due: Option<Instant>,
}

impl Acks {
    fn add(&mut self, ids: Vec<String>) {
        if !ids.is_empty() {
            self.ids.extend(ids);
            self.due.get_or_insert_with(|| Instant::now() + ACK_EVERY);
        }
    }

    async fn send(&mut self, state: &AppState) {
        self.due = None;
        let ids = std::mem::take(&mut self.ids);
        if let Err(error) = state.bus.ack_live(GROUP, &ids).await {
            tracing::warn!(%error, "ai: could not acknowledge events; they will be seen again (and skipped)");
        }
    }
}

/// Completes at `due`; never without one.
async fn until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

fn requeue(
    waiting: &mut HashMap<ConversationId, Waiting>,
    conversation: ConversationId,
    turn: Waiting,
    after: Duration,
) {
    let entry = waiting.entry(conversation).or_insert(Waiting {
        workspace: turn.workspace,
        due: Instant::now() + after,
        ids: Vec::new(),
    });
    entry.ids.extend(turn.ids);
}

/// Puts a customer's messages on their conversation's wait; returns the ids to acknowledge
/// (everything else).
async fn schedule(
    state: &AppState,
    waiting: &mut HashMap<ConversationId, Waiting>,
    events: Vec<LiveEnvelope>,
    ids: Vec<String>,
) -> Vec<String> {
    let mut acks: Vec<String> = ids.iter().filter(|id| !events.iter().any(|e| &e.id == *id)).cloned().collect();
    // Each channel's profile is read once per batch (a busy channel's messages come many at a time).
    let mut settles: HashMap<(WorkspaceId, ChannelId), Option<u32>> = HashMap::new();
    for envelope in events {
        let LiveEvent::MessageNew { message, .. } = &envelope.event else {
            acks.push(envelope.id);
            continue;
        };
        if message.direction != Direction::Inbound || message.sender != SenderKind::Contact || message.note {
            acks.push(envelope.id);
            continue;
        }
        let key = (envelope.workspace_id, message.channel_id);
        let settle = match settles.get(&key) {
            Some(settle) => *settle,
            None => match state.store.ai_channel(key.0, key.1).await {
                Ok(ai) => *settles.entry(key).or_insert(ai.filter(|ai| ai.enabled).map(|ai| ai.profile.settle_ms)),
                Err(error) => {
                    // Not acknowledged: a later claim brings it back.
                    tracing::warn!(%error, "ai: cannot read a channel's AI profile");
                    continue;
                }
            },
        };
        let Some(settle) = settle else {
            acks.push(envelope.id);
            continue;
        };
        let entry = waiting.entry(message.conversation_id).or_insert(Waiting {
            workspace: envelope.workspace_id,
            due: Instant::now(),
            ids: Vec::new(),
        });
        entry.due = Instant::now() + Duration::from_millis(u64::from(settle));
        entry.ids.push(envelope.id);
    }
    acks
}

async fn read_events(
    state: AppState,
    consumer: String,
    batches: mpsc::Sender<(Vec<LiveEnvelope>, Vec<String>)>,
    stop: watch::Receiver<bool>,
) {
    crate::live_group::read(&state, GROUP, &consumer, CLAIM_STALE_MS, Duration::ZERO, stop, |events, ids| {
        let batches = batches.clone();
        // The scheduler acknowledges; a scheduler that stopped means this worker is stopping.
        async move { batches.send((events, ids)).await.is_ok() }
    })
    .await;
}

/// The conversations' leases this worker holds: one task renews them all together (one round
/// trip every few seconds, not one per turn in flight).
#[derive(Clone, Default)]
struct Held(Arc<Mutex<HashMap<ConversationId, Lease>>>);

impl Held {
    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Lease>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Renews every lease held, until `stop` turns true. A lease that was lost (this worker was
    /// away too long) is forgotten; its turn finishes, and another worker's answer check keeps
    /// the conversation answered once.
    async fn renew(self, state: AppState, holder: String, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(LEASE_RENEW_EVERY_MS)) => {}
            }
            let (conversations, leases): (Vec<ConversationId>, Vec<Lease>) =
                self.leases().iter().map(|(id, lease)| (*id, lease.clone())).unzip();
            match state.bus.renew_leases(&leases, &holder).await {
                Ok(renewed) => {
                    let mut held = self.leases();
                    for (conversation, lease) in
                        conversations.iter().zip(&leases).zip(renewed).filter(|(_, ok)| !ok).map(|(c, _)| c)
                    {
                        tracing::warn!(%conversation, "ai: lost a conversation's lease");
                        if held.get(conversation) == Some(lease) {
                            held.remove(conversation);
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "ai: could not renew the conversations' leases"),
            }
        }
    }
}

/// One conversation's turn, under its lease.
async fn handle(
    state: &AppState,
    holder: &str,
    held: &Held,
    workspace: WorkspaceId,
    conversation: ConversationId,
) -> anyhow::Result<Handled> {
    let subject = LeaseSubject::AiConversation(conversation);
    let Some(lease) = state.bus.acquire_lease(subject, holder).await? else {
        return Ok(Handled::Busy);
    };
    held.leases().insert(conversation, lease.clone());
    let result = turn(state, workspace, conversation).await;
    held.leases().remove(&conversation);
    release(state, &lease, holder).await;
    result
}

async fn release(state: &AppState, lease: &Lease, holder: &str) {
    if let Err(error) = state.bus.release_lease(lease, holder).await {
        tracing::warn!(%error, "ai: could not release a conversation's lease (it expires)");
    }
}

/// Whether the AI may answer this conversation now, from what is stored.
fn may_answer(context: &AiTurnContext) -> Option<&balas_domain::AiProfile> {
    if context.conversation.ai_paused || !context.channel.enabled || context.contact_opted_out {
        return None;
    }
    let profile = &context.channel.profile;
    if profile.active == balas_domain::AiActive::Always {
        return Some(profile);
    }
    let zone = context.time_zone.clone().unwrap_or_else(|| SendingRules::default().time_zone);
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Asia::Jakarta);
    let hour = chrono::Utc::now().with_timezone(&zone).hour() as u8;
    profile.active.answers_at(hour).then_some(profile)
}

async fn turn(state: &AppState, workspace: WorkspaceId, conversation: ConversationId) -> anyhow::Result<Handled> {
    let Some(context) = state.store.ai_turn_context(workspace, conversation, &month()).await? else {
        return Ok(Handled::Done);
    };
    let Some(profile) = may_answer(&context) else { return Ok(Handled::Done) };
    let messages = state.store.recent_messages(conversation, i64::from(profile.history)).await?;
    // Answered already (by the AI, an agent or a broadcast) or handed over (a note) unless the
    // newest are the customer's.
    let unanswered: Vec<_> = messages.iter().rev().take_while(|m| m.direction == Direction::Inbound).collect();
    let Some(newest) = unanswered.first() else { return Ok(Handled::Done) };
    // The burst settles from its newest message, whichever worker read it.
    let age = u64::try_from(now().0 - newest.created_at.0).unwrap_or(0);
    if age < u64::from(profile.settle_ms) {
        return Ok(Handled::Later(Duration::from_millis(u64::from(profile.settle_ms) - age)));
    }
    // A late answer (after an outage, the customer may have given up or written elsewhere) is
    // worse than a person who knows the customer waited.
    let within = state.settings.ai_answer_within_ms;
    if age > within {
        let note = format!(
            "The AI handed over without answering: the customer's message waited {} for it (the AI was not \
             running or could not keep up), longer than the {} it may answer within.",
            duration_text(age),
            duration_text(within)
        );
        return hand_over(state, &context.conversation, &note).await.map(|()| Handled::Done);
    }
    answer(state, &context, profile, &messages, &unanswered).await.map(|()| Handled::Done)
}

/// `45 s`, `12 min`, `3 h 5 min`.
fn duration_text(ms: u64) -> String {
    let (seconds, minutes) = (ms / 1_000, ms / 60_000);
    match minutes {
        0 => format!("{seconds} s"),
        1..60 => format!("{minutes} min"),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

async fn answer(
    state: &AppState,
    context: &AiTurnContext,
    profile: &balas_domain::AiProfile,
    messages: &[balas_domain::Message],
    unanswered: &[&balas_domain::Message],
) -> anyhow::Result<()> {
    let summary = &context.conversation;
    let (workspace, conversation) = (summary.workspace_id, summary.id);
    if let Some(keyword) = unanswered.iter().find_map(|m| profile.keyword_in(&m.body)) {
        let note = format!("The AI handed over: the customer wrote \"{keyword}\".");
        return hand_over(state, summary, &note).await;
    }
    let Some(stored) = &context.settings else { return Ok(()) };
    let (cap, used) = (stored.settings.monthly_token_cap, context.tokens_used);
    if cap > 0 && used >= cap {
        let note = format!(
            "The AI handed over: this month's token cap is reached ({used} of {cap} tokens). An admin can raise it \
             on the AI agent page."
        );
        return hand_over(state, summary, &note).await;
    }
    typing(state, summary, true).await;
    let result = converse(state, stored, profile, chat_history(messages), &mut Tools::Conversation { summary }).await;
    typing(state, summary, false).await;
    let (tokens, note) = match result {
        Ok(Turn { outcome: Outcome::Answer(text), tokens, .. }) => {
            // Counted, checked (an agent who stepped in while the model was thinking has the last
            // word) and stored in one write.
            let wa_id = new_wa_id();
            let answer = NewOutbound {
                workspace_id: workspace,
                channel_id: summary.channel_id,
                to: &summary.contact_phone,
                text: &text,
                media: None,
                sender: SenderKind::Ai,
                sender_user: None,
                wa_id: &wa_id,
            };
            if let Some((message, conversation)) =
                state.store.queue_ai_answer(conversation, &answer, &month(), tokens, now()).await?
            {
                send_queued(state, &answer, message, conversation).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            return Ok(());
        }
        Ok(Turn { outcome: Outcome::HandOver(reason), tokens, .. }) => {
            (tokens, format!("The AI handed over: {}", reason.trim()))
        }
        Err(failure) => {
            tracing::warn!(%failure, %conversation, "ai: no answer; handing over");
            (0, format!("The AI could not answer ({failure}), so it handed over."))
        }
    };
    if tokens > 0 {
        state.store.add_ai_usage(workspace, conversation, &month(), tokens).await?;
    }
    // An agent who stepped in while the model was thinking has the last word.
    let Some(fresh) = state.store.conversation(workspace, conversation).await? else { return Ok(()) };
    if fresh.ai_paused {
        return Ok(());
    }
    hand_over(state, &fresh, &note).await
}

async fn typing(state: &AppState, summary: &ConversationSummary, on: bool) {
    let command = Command::Typing { to: summary.contact_phone.clone(), typing: on };
    crate::inbox::command(state, summary.channel_id, command).await;
}

/// Pending, unassigned, the AI paused, and a note saying why; every dashboard sees it at once.
async fn hand_over(state: &AppState, summary: &ConversationSummary, note: &str) -> anyhow::Result<()> {
    let note_id = format!("note-{}", new_wa_id());
    let (message, conversation) = state.store.hand_over(summary.id, note, &note_id, now()).await?;
    let events = [
        LiveEvent::MessageNew { message: Box::new(message), conversation: Box::new(conversation.clone()) },
        LiveEvent::ConversationUpdated { conversation: Box::new(conversation) },
    ];
    for event in events {
        if let Err(error) = state.bus.publish_live(summary.workspace_id, &event).await {
            tracing::warn!(%error, "ai: a handover was not announced live");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_are_written_for_people() {
        assert_eq!(super::duration_text(45_900), "45 s");
        assert_eq!(super::duration_text(600_000), "10 min");
        assert_eq!(super::duration_text(3 * 3_600_000 + 5 * 60_000 + 999), "3 h 5 min");
    }
}
