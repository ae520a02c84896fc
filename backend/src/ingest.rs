//! Ingest: turns what the WhatsApp workers report into stored rows and live events.
//!
//! Every server instance runs a consumer of the `ingest` group on the worker event stream; the one
//! that holds the ingest lease reads, so events are stored and announced in order, and another
//! takes over within the lease time. An event is acknowledged only after it is stored and
//! announced, so a crash loses nothing: the restarted consumer reads its own unacknowledged
//! events again, and events left by a consumer that never came back are claimed after
//! [`CLAIM_AFTER_MS`]. Storing is idempotent
//! (a WhatsApp id is stored once; statuses only move forward), so handling an event twice is
//! harmless.

use std::collections::HashMap;
use std::time::Duration;

use balas_bus::{Bus, LEASE_RENEW_EVERY_MS, Lease, LeaseSubject, WaDelivery};
use balas_domain::{Channel, ChannelId, LiveEvent, MessageStatus, WaEnvelope, WaEvent};
use balas_storage::{Conflict, Ingested, IngestedOutcome, MessageKey, NewInbound, StatusChange, Store, StoreError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{AppState, now};

/// The consumer group of the server instances.
pub const INGEST_GROUP: &str = "ingest";
/// Events a consumer was given this long ago and never acknowledged are taken over.
pub const CLAIM_AFTER_MS: u64 = 10_000;
const BATCH: usize = 256;

/// Reads and handles worker events as `consumer` until `stop` turns true. Only the instance that
/// holds the ingest lease reads (so that events are stored and announced in the order they
/// happened); the others stand by and take over within the lease time when it stops or dies.
pub async fn run(state: AppState, consumer: String, mut stop: watch::Receiver<bool>) {
    let bus = state.bus.clone();
    let mut ingest = Ingest::new(state);
    let reader = loop {
        match bus.dedicated().await {
            Ok(reader) => break reader,
            Err(error) => {
                tracing::warn!(%error, "ingest: cannot connect to Redis; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut lease: Option<Lease> = None;
    let mut renewed = Instant::now();
    // Start with what this consumer was given before a restart and did not finish.
    let mut own_pending = true;
    let mut last_claim = Instant::now();
    let mut failures = 0u32;
    // The group is made before the first read, and again after a failed one (a Redis that
    // restarted empty answers NOGROUP): not before every read, a round trip per batch.
    let mut group_made = false;
    while !*stop.borrow() {
        match &lease {
            None => match reader.acquire_lease(LeaseSubject::Ingest, &consumer).await {
                Ok(Some(taken)) => {
                    tracing::info!(%consumer, fence = taken.fence, "ingest: this instance reads the worker events");
                    lease = Some(taken);
                    renewed = Instant::now();
                    own_pending = true;
                    // A consumer that stopped may have left events: look for them at once.
                    last_claim = Instant::now() - Duration::from_millis(CLAIM_AFTER_MS);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(STAND_BY_CHECK) => {}
                    }
                    continue;
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "ingest: cannot reach Redis; retrying");
                    backoff(failures, &mut stop).await;
                    continue;
                }
            },
            Some(held) if renewed.elapsed() >= Duration::from_millis(LEASE_RENEW_EVERY_MS) => {
                match reader.renew_lease(held, &consumer).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        tracing::warn!(%consumer, "ingest: another instance took over reading the worker events");
                        lease = None;
                        continue;
                    }
                    // Redis is away: the read below fails too, and we try again.
                    Err(error) => tracing::warn!(%error, "ingest: could not renew the lease"),
                }
            }
            Some(_) => {}
        }
        let read = async {
            if !group_made {
                reader.ensure_wa_group(INGEST_GROUP).await?;
                group_made = true;
            }
            if last_claim.elapsed() >= Duration::from_millis(CLAIM_AFTER_MS / 2) {
                last_claim = Instant::now();
                let claimed = reader.claim_stale_wa_events(INGEST_GROUP, &consumer, CLAIM_AFTER_MS, BATCH).await?;
                if !claimed.is_empty() {
                    tracing::info!(count = claimed.len(), "ingest: took over events a stopped consumer left");
                    return Ok::<_, balas_bus::BusError>(claimed);
                }
            }
            reader.read_wa_events(INGEST_GROUP, &consumer, BATCH, own_pending).await
        };
        let deliveries = tokio::select! {
            _ = stop.changed() => break,
            read = read => read,
        };
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(error) => {
                failures += 1;
                group_made = false;
                tracing::warn!(%error, "ingest: cannot read the worker events; retrying");
                backoff(failures, &mut stop).await;
                continue;
            }
        };
        if own_pending && deliveries.is_empty() {
            own_pending = false;
            continue;
        }
        match ingest.handle_batch(&deliveries).await {
            Ok(()) => failures = 0,
            Err(error) => {
                // Not acknowledged: read our pending events again once things work.
                failures += 1;
                tracing::warn!(%error, "ingest: could not store events; they will be tried again");
                own_pending = true;
                backoff(failures, &mut stop).await;
            }
        }
    }
    // Hand over at once to another instance, if there is one.
    if let Some(held) = lease
        && let Err(error) = reader.release_lease(&held, &consumer).await
    {
        tracing::warn!(%error, "ingest: could not release the lease; it will expire");
    }
}

/// How often a standing-by instance checks whether the ingest lease is free.
const STAND_BY_CHECK: Duration = Duration::from_secs(1);

async fn backoff(failures: u32, stop: &mut watch::Receiver<bool>) {
    let wait = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)));
    tokio::select! {
        _ = stop.changed() => {}
        () = tokio::time::sleep(wait) => {}
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Bus(#[from] balas_bus::BusError),
}

impl IngestError {
    /// Whether the database answered and refused the event (as opposed to being unreachable).
    fn is_refusal(&self) -> bool {
        matches!(self, IngestError::Store(error) if error.is_refusal())
    }
}

/// Handles worker events; used by [`run`] and by tests that feed events directly.
pub struct Ingest {
    pub store: Store,
    pub bus: Bus,
    /// For what an event sets off (a stop keyword's confirmation).
    state: AppState,
    /// Channels by id (a channel never changes workspace).
    channels: HashMap<ChannelId, Channel>,
    /// How often each event has failed, so that one that can never be stored does not hold up
    /// the stream forever.
    failures: HashMap<String, u32>,
}

/// An event the database refused this many times is logged and dropped. (When the database or
/// Redis cannot be reached, events wait however long it takes.)
const GIVE_UP_AFTER: u32 = 5;

impl Ingest {
    pub fn new(state: AppState) -> Self {
        let (store, bus) = (state.store.clone(), state.bus.clone());
        Self { store, bus, state, channels: HashMap::new(), failures: HashMap::new() }
    }

    /// Handles events in order, acknowledging each handled one; stops at the first that cannot be
    /// stored (leaving it and the rest unacknowledged). Runs of customer messages and statuses
    /// (nearly everything under load) are stored in one transaction and announced in one round
    /// trip; a run that fails is handled again one event at a time, so that an event the database
    /// refuses is found and, after [`GIVE_UP_AFTER`] tries, dropped.
    pub async fn handle_batch(&mut self, deliveries: &[WaDelivery]) -> Result<(), IngestError> {
        let mut done = Vec::with_capacity(deliveries.len());
        let mut outcome = Ok(());
        let mut rest = deliveries;
        'events: while !rest.is_empty() {
            let run = rest.iter().take_while(|d| d.event.as_ref().is_ok_and(|e| batches(&e.event))).count();
            if run > 1 {
                let envelopes: Vec<&WaEnvelope> = rest[..run].iter().filter_map(|d| d.event.as_ref().ok()).collect();
                match self.handle_together(&envelopes).await {
                    Ok(()) => {
                        for delivery in &rest[..run] {
                            self.failures.remove(&delivery.id);
                            done.push(delivery.id.clone());
                        }
                        rest = &rest[run..];
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "ingest: storing {run} events together failed; one by one now")
                    }
                }
            }
            let (one_by_one, after) = rest.split_at(run.max(1));
            for delivery in one_by_one {
                if let Err(error) = self.handle_one(delivery).await {
                    outcome = Err(error);
                    break 'events;
                }
                done.push(delivery.id.clone());
            }
            rest = after;
        }
        self.bus.ack_wa_events(INGEST_GROUP, &done).await?;
        outcome
    }

    /// One event; an error means stop here (it is neither handled nor given up on).
    async fn handle_one(&mut self, delivery: &WaDelivery) -> Result<(), IngestError> {
        let envelope = match &delivery.event {
            Ok(envelope) => envelope,
            Err(problem) => {
                tracing::error!(id = %delivery.id, %problem, "ingest: dropping an event that does not parse");
                return Ok(());
            }
        };
        match self.handle(envelope).await {
            Ok(()) => {
                self.failures.remove(&delivery.id);
                Ok(())
            }
            Err(error) => {
                let failures = self.failures.entry(delivery.id.clone()).or_default();
                *failures += 1;
                if !error.is_refusal() || *failures < GIVE_UP_AFTER {
                    return Err(error);
                }
                tracing::error!(id = %delivery.id, %error, ?envelope, "ingest: dropping an event that failed {GIVE_UP_AFTER} times");
                self.failures.remove(&delivery.id);
                Ok(())
            }
        }
    }

    /// Customer messages and statuses (events that [`batches`]) stored in one transaction, then
    /// announced in one round trip, then the stop keywords among the messages acted on.
    async fn handle_together(&mut self, run: &[&WaEnvelope]) -> Result<(), IngestError> {
        let mut channels = Vec::with_capacity(run.len());
        for &envelope in run {
            match self.channel(envelope.channel_id).await? {
                Some(channel) => channels.push((channel, envelope)),
                None => {
                    tracing::warn!(channel = %envelope.channel_id, "ingest: event for a channel that no longer exists")
                }
            }
        }
        let reasons: Vec<Option<String>> = channels
            .iter()
            .map(|(_, e)| match &e.event {
                WaEvent::SendFailed { failure, .. } => Some(failure.to_string()),
                _ => None,
            })
            .collect();
        let mut items = Vec::with_capacity(channels.len());
        for ((channel, envelope), reason) in channels.iter().zip(&reasons) {
            let (status, key) = match &envelope.event {
                WaEvent::Message { wa_id, from, push_name, text, media, .. } => {
                    let push_name = push_name.as_deref();
                    items.push(Ingested::Inbound(NewInbound {
                        channel,
                        wa_id,
                        from,
                        push_name,
                        text,
                        media: media.as_ref(),
                    }));
                    continue;
                }
                WaEvent::Receipt { wa_id, receipt } => (receipt.status(), MessageKey::WaId(channel.id, wa_id)),
                WaEvent::Sent { wa_id, .. } => (MessageStatus::Sent, MessageKey::WaId(channel.id, wa_id)),
                WaEvent::SendFailed { message_id, .. } => (MessageStatus::Failed, MessageKey::Id(*message_id)),
                _ => unreachable!("only events that batch are stored together"),
            };
            items.push(Ingested::Status { key, status, error: reason.as_deref() });
        }
        let outcomes = self.store.store_ingested(&items, now()).await?;
        let mut events = Vec::with_capacity(outcomes.len());
        let mut keywords = Vec::new();
        for ((outcome, item), (channel, _)) in outcomes.into_iter().zip(&items).zip(&channels) {
            match (outcome, item) {
                (IngestedOutcome::Inbound(Some((message, conversation))), Ingested::Inbound(inbound)) => {
                    keywords.push((message.clone(), inbound.from.clone()));
                    let event = LiveEvent::MessageNew { message, conversation };
                    events.push((channel.workspace_id, event));
                }
                (IngestedOutcome::Status(Some(change)), _) => events.push((channel.workspace_id, status_event(change))),
                _ => {}
            }
        }
        self.bus.publish_live_many(&events).await?;
        // Also for a redelivered message: the change (and its confirmation) happens once.
        for (message, from) in keywords {
            crate::crm::customer_keyword(&self.state, &message, &from).await;
        }
        Ok(())
    }

    /// Reads a channel that changed (forgetting the cached copy) and announces it whole.
    async fn channel_updated(&mut self, id: ChannelId) -> Result<Option<LiveEvent>, IngestError> {
        self.channels.remove(&id);
        Ok(self.channel(id).await?.map(|channel| LiveEvent::ChannelUpdated { channel: Box::new(channel) }))
    }

    async fn channel(&mut self, id: ChannelId) -> Result<Option<Channel>, IngestError> {
        if let Some(channel) = self.channels.get(&id) {
            return Ok(Some(channel.clone()));
        }
        let channel = self.store.channel(id).await?;
        if let Some(channel) = &channel {
            self.channels.insert(id, channel.clone());
        }
        Ok(channel)
    }

    /// Stores one event and announces what changed.
    pub async fn handle(&mut self, envelope: &WaEnvelope) -> Result<(), IngestError> {
        if batches(&envelope.event) {
            return self.handle_together(&[envelope]).await;
        }
        let Some(channel) = self.channel(envelope.channel_id).await? else {
            tracing::warn!(channel = %envelope.channel_id, "ingest: event for a channel that no longer exists");
            return Ok(());
        };
        let workspace = channel.workspace_id;
        let live = match &envelope.event {
            WaEvent::Typing { from, typing } => self
                .store
                .conversation_with(channel.id, from)
                .await?
                .map(|c| LiveEvent::Typing { conversation_id: c.id, channel_id: channel.id, typing: *typing }),
            WaEvent::Pairing { pairing } => {
                self.store.set_channel_pairing(channel.id, Some(pairing)).await?;
                self.channel_updated(channel.id).await?
            }
            WaEvent::Linked { phone, name } => {
                match self.store.set_channel_linked(channel.id, phone, name.as_deref()).await {
                    Err(StoreError::Conflict(Conflict::PhoneTaken)) => {
                        let detail = format!("The phone linked {phone}, which another channel already uses");
                        self.store.set_channel_state(channel.id, channel.state, Some(&detail)).await?;
                    }
                    done => done?,
                }
                self.channel_updated(channel.id).await?
            }
            WaEvent::State { state, detail } => {
                let changed = self.store.set_channel_state(channel.id, *state, detail.as_deref()).await?;
                changed.then(|| LiveEvent::ChannelState {
                    channel_id: channel.id,
                    state: *state,
                    detail: detail.clone(),
                })
            }
            WaEvent::Message { .. } | WaEvent::Receipt { .. } | WaEvent::Sent { .. } | WaEvent::SendFailed { .. } => {
                unreachable!("stored by handle_together")
            }
        };
        if let Some(event) = live {
            self.bus.publish_live(workspace, &event).await?;
        }
        Ok(())
    }
}

/// Whether an event is stored with others in one transaction ([`Ingest::handle_together`]): customer
/// messages and outbound messages' progress, which are nearly all events under load.
fn batches(event: &WaEvent) -> bool {
    matches!(
        event,
        WaEvent::Message { .. } | WaEvent::Receipt { .. } | WaEvent::Sent { .. } | WaEvent::SendFailed { .. }
    )
}

pub(crate) fn status_event(change: StatusChange) -> LiveEvent {
    LiveEvent::MessageStatus {
        message_id: change.message_id,
        conversation_id: change.conversation_id,
        status: change.status,
        error: change.error,
    }
}
