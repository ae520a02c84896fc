//! The WhatsApp worker: holds channels by lease, runs their sessions, sends from their queues and
//! reports what happens on the durable event stream.
//!
//! - [`run`] shares the channels out between the live WhatsApp workers: each takes free channels
//!   up to its fair share (and gives back what is over it), so a dead worker's channels are taken
//!   over once its leases expire.
//! - One task per held channel ([`run_channel`]) connects the session, forwards its events, runs
//!   a BullMQ worker on the channel's send queue at the channel's rate, renews the lease, and on
//!   shutdown finishes the send in flight, closes the session and releases the lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use balas_backend::now;
use balas_bus::{Bus, LEASE_RENEW_EVERY_MS, Lease, LeaseSubject, SEND_ATTEMPTS, SEND_BACKOFF, send_backoff_ms};
use balas_domain::{
    Channel, ChannelId, ChannelState, Command, LinkMethod, Pairing, Provider, SendFailure, SendJob, SessionCommand,
    Timestamp, WaEnvelope, WaEvent, WorkerKind,
};
use balas_storage::Store;
use bullmq::{Job, RateLimiterOptions, Worker as QueueWorker};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::sandbox::SandboxProvider;
use crate::session::{Incoming, OutboundMedia, SendError, Session, SessionEvent};
use crate::whatsapp::WhatsappProvider;

/// How often the worker looks for channels to take or give back.
const REBALANCE_EVERY: Duration = Duration::from_secs(2);
/// A channel given back to even out the fleet is left for others this long.
const GIVE_BACK_FOR: Duration = Duration::from_secs(10);
/// How long shutdown waits for the send in flight.
const FINISH_SEND_MS: u64 = 10_000;
/// A session command older than this is dropped (a typing indicator from long ago means nothing).
const COMMAND_FRESH_MS: i64 = 10_000;

/// What every channel task of one worker shares.
pub struct WaContext {
    pub bus: Bus,
    pub store: Store,
    /// This worker's name, as lease holder.
    pub holder: String,
    pub sandbox: Option<SandboxProvider>,
    pub whatsapp: WhatsappProvider,
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    commands: mpsc::Sender<SessionCommand>,
    /// The number was logged out: the task only holds the lease until someone links it again.
    parked: Arc<AtomicBool>,
}

/// Runs the worker's share of channels until `stop` turns true, then stops them all cleanly.
pub async fn run(ctx: Arc<WaContext>, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<ChannelId, Running> = HashMap::new();
    let mut given_back: HashMap<ChannelId, Instant> = HashMap::new();
    let mut tick = interval(REBALANCE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (command_tx, mut commands) = mpsc::channel(256);
    let reader = tokio::spawn(read_commands(ctx.bus.clone(), command_tx, stop.clone()));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(command) = commands.recv() => {
                if let Some(handle) = running.get(&command.channel_id) {
                    // A channel busy reconnecting misses a typing hint or two rather than
                    // holding up the others.
                    let _ = handle.commands.try_send(command);
                }
            }
            _ = tick.tick() => {
                if let Err(error) = rebalance(&ctx, &mut running, &mut given_back).await {
                    tracing::warn!(%error, "could not share out the channels; trying again");
                }
            }
        }
    }
    reader.abort();
    for handle in running.values() {
        let _ = handle.stop.send(true);
    }
    for (channel, handle) in running {
        if let Err(error) = handle.task.await {
            tracing::error!(%channel, %error, "a channel task failed while stopping");
        }
    }
}

/// Takes free channels up to this worker's fair share and gives back what is over it; then takes
/// any channel still free (a channel without a worker is worse than an uneven share), except those
/// it gave back a moment ago for another worker to take.
async fn rebalance(
    ctx: &Arc<WaContext>,
    running: &mut HashMap<ChannelId, Running>,
    given_back: &mut HashMap<ChannelId, Instant>,
) -> anyhow::Result<()> {
    running.retain(|_, handle| !handle.task.is_finished());
    given_back.retain(|_, at| at.elapsed() < GIVE_BACK_FOR);
    let channels: Vec<Channel> =
        ctx.store.all_channels().await?.into_iter().filter(|c| c.state.wants_session() && runnable(ctx, c)).collect();
    let workers = ctx.bus.live_workers(now()).await?.iter().filter(|w| w.kind == WorkerKind::Whatsapp).count();
    let share = channels.len().div_ceil(workers.max(1));
    let wanted: HashMap<ChannelId, &Channel> = channels.iter().map(|c| (c.id, c)).collect();
    let ids: Vec<ChannelId> = channels.iter().map(|c| c.id).collect();
    let unheld = ctx.bus.lease_holders(&ids).await?.iter().filter(|h| h.is_none()).count();
    // Give back channels that are gone; and, only while every channel has a worker, one channel
    // per round over the fair share (a worker joined), so that the fleet evens out without
    // everything moving at once. (While some channel has no worker, perhaps one died and still
    // counts as live for a few seconds: then nothing is given back.)
    let mut over = if unheld == 0 { running.len().saturating_sub(share).min(1) } else { 0 };
    for (id, handle) in running.iter() {
        // A parked channel that is wanted again was asked to be linked again: stop it, so that the
        // next round starts it afresh (with a new link).
        if !wanted.contains_key(id) || handle.parked.load(Ordering::Relaxed) {
            let _ = handle.stop.send(true);
        } else if over > 0 {
            tracing::info!(channel = %id, "giving a channel back so that another worker can take its share");
            let _ = handle.stop.send(true);
            given_back.insert(*id, Instant::now());
            over -= 1;
        }
    }
    for fill_share in [true, false] {
        for channel in &channels {
            if (fill_share && running.len() >= share)
                || running.contains_key(&channel.id)
                || given_back.contains_key(&channel.id)
            {
                continue;
            }
            if let Some(lease) = ctx.bus.acquire_lease(LeaseSubject::Channel(channel.id), &ctx.holder).await? {
                tracing::info!(channel = %channel.id, fence = lease.fence, "took the channel");
                let (stop, stopped) = watch::channel(false);
                let (commands, received) = mpsc::channel(64);
                let parked = Arc::new(AtomicBool::new(false));
                let task =
                    tokio::spawn(run_channel(ctx.clone(), channel.clone(), lease, stopped, received, parked.clone()));
                running.insert(channel.id, Running { stop, task, commands, parked });
            }
        }
    }
    Ok(())
}

fn runnable(ctx: &WaContext, channel: &Channel) -> bool {
    match channel.provider {
        Provider::Sandbox => ctx.sandbox.is_some(),
        Provider::Whatsapp => true,
    }
}

/// Why a connected session ended.
enum Ended {
    Stop,
    LostLease,
    Banned(Timestamp),
    LoggedOut,
    /// The connection failed; try again.
    Dropped(String),
    /// An admin asked for a new link: start afresh, with the channel as it is now.
    Relink,
}

/// Waits until `until` (or forever), renewing the lease; `Some` when it must stop early.
async fn hold(
    ctx: &WaContext,
    lease: &Lease,
    stop: &mut watch::Receiver<bool>,
    until: Option<Instant>,
) -> Option<Ended> {
    let mut renew = interval(Duration::from_millis(LEASE_RENEW_EVERY_MS));
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = async {
        match until {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = stop.changed() => return Some(Ended::Stop),
            () = &mut deadline => return None,
            _ = renew.tick() => {
                if !renew_lease(ctx, lease).await {
                    return Some(Ended::LostLease);
                }
            }
        }
    }
}

async fn renew_lease(ctx: &WaContext, lease: &Lease) -> bool {
    match ctx.bus.renew_lease(lease, &ctx.holder).await {
        Ok(held) => held,
        // Redis is away: keep going; the network refuses stale senders by their fencing token.
        Err(error) => {
            tracing::warn!(%error, lease = %lease.subject, "could not renew the lease");
            true
        }
    }
}

/// Runs one channel while this worker holds its lease.
pub async fn run_channel(
    ctx: Arc<WaContext>,
    mut channel: Channel,
    lease: Lease,
    mut stop: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<SessionCommand>,
    parked: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(500);
    let ended = loop {
        report(&ctx.bus, channel.id, WaEvent::State { state: ChannelState::Connecting, detail: None }).await;
        let connected = match (&channel.provider, &ctx.sandbox) {
            (Provider::Sandbox, Some(sandbox)) => {
                sandbox.connect(channel.phone.clone(), channel.workspace_id, lease.fence).await
            }
            (Provider::Sandbox, None) => return,
            (Provider::Whatsapp, _) => ctx.whatsapp.connect(&channel).await,
        };
        let connected = match connected {
            Ok(connected) => connected,
            Err(SendError::Replaced) => break Ended::LostLease,
            Err(error) => {
                let detail = Some(error.to_string());
                report(&ctx.bus, channel.id, WaEvent::State { state: ChannelState::Reconnecting, detail }).await;
                if let Some(ended) = hold(&ctx, &lease, &mut stop, Some(Instant::now() + backoff)).await {
                    break ended;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        let session: Arc<dyn Session> = Arc::from(connected.session);
        let (control, mut controls) = mpsc::channel(4);
        let forwarder = tokio::spawn(forward(ctx.bus.clone(), channel.id, session.clone(), connected.events, control));
        let sender = match start_sending(&ctx, &channel, session.clone()).await {
            Ok(sender) => Some(sender),
            Err(error) => {
                tracing::error!(%error, channel = %channel.id, "could not start the send queue's worker");
                None
            }
        };
        let ended = if sender.is_none() {
            Ended::Dropped("the send queue could not be opened".to_owned())
        } else {
            let mut renew = interval(Duration::from_millis(LEASE_RENEW_EVERY_MS));
            renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => break Ended::Stop,
                    _ = renew.tick() => {
                        if !renew_lease(&ctx, &lease).await {
                            break Ended::LostLease;
                        }
                    }
                    ended = controls.recv() => break ended.unwrap_or(Ended::Dropped("the session closed".to_owned())),
                    Some(command) = commands.recv() => {
                        if command.command == Command::Relink {
                            break Ended::Relink;
                        }
                        execute(session.as_ref(), command).await;
                    }
                }
            }
        };
        // Stop taking jobs and let the one in flight finish, then close the session; its event
        // stream ends and the forwarder hands on what is left.
        if let Some(sender) = sender
            && let Err(error) = sender.close(FINISH_SEND_MS).await
        {
            tracing::warn!(%error, channel = %channel.id, "the send queue's worker did not close cleanly");
        }
        session.shutdown().await;
        if tokio::time::timeout(Duration::from_secs(5), forwarder).await.is_err() {
            tracing::warn!(channel = %channel.id, "the event forwarder did not finish in time");
        }
        match ended {
            Ended::Banned(until) => {
                let wait = Duration::from_millis(until.0.saturating_sub(now().0).max(0) as u64);
                tracing::warn!(channel = %channel.id, "banned; reconnecting in {} s", wait.as_secs());
                if let Some(ended) = hold(&ctx, &lease, &mut stop, Some(Instant::now() + wait)).await {
                    break ended;
                }
            }
            Ended::Relink => {
                if let Ok(Some(fresh)) = ctx.store.channel(channel.id).await {
                    channel = fresh;
                }
            }
            Ended::Dropped(reason) => {
                let detail = Some(reason);
                report(&ctx.bus, channel.id, WaEvent::State { state: ChannelState::Reconnecting, detail }).await;
                if let Some(ended) = hold(&ctx, &lease, &mut stop, Some(Instant::now() + backoff)).await {
                    break ended;
                }
            }
            // Keep the lease (so no other worker tries) until the channel is given up; its state
            // stays "logged out" until someone links the number again.
            Ended::LoggedOut => {
                parked.store(true, Ordering::Relaxed);
                let _ = hold(&ctx, &lease, &mut stop, None).await;
                break Ended::LoggedOut;
            }
            other => break other,
        }
    };
    if matches!(ended, Ended::Stop | Ended::LoggedOut) {
        if matches!(ended, Ended::Stop) {
            // Report before releasing: the next holder's reports come after this one.
            let detail = Some("waiting for a WhatsApp worker".to_owned());
            report(&ctx.bus, channel.id, WaEvent::State { state: ChannelState::Idle, detail }).await;
        }
        if let Err(error) = ctx.bus.release_lease(&lease, &ctx.holder).await {
            tracing::warn!(%error, channel = %channel.id, "could not release the lease; it will expire");
        }
    }
    tracing::info!(channel = %channel.id, "stopped running the channel");
}

/// Reads the session commands from now on and hands them to [`run`], reconnecting while Redis
/// is away.
async fn read_commands(bus: Bus, out: mpsc::Sender<SessionCommand>, stop: watch::Receiver<bool>) {
    let mut after: Option<String> = None;
    while !*stop.borrow() {
        let reader = match bus.dedicated().await {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "cannot read session commands; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if after.is_none() {
            match reader.session_commands_tail().await {
                Ok(tail) => after = Some(tail),
                Err(error) => {
                    tracing::warn!(%error, "cannot read session commands; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        while let Some(from) = after.clone() {
            match reader.read_session_commands(&from, 100).await {
                Ok((commands, last)) => {
                    for command in commands {
                        if out.send(command).await.is_err() {
                            return;
                        }
                    }
                    if let Some(last) = last {
                        after = Some(last);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "lost the session commands' stream; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Carries out a command on the channel's session (stale ones are dropped).
async fn execute(session: &dyn Session, command: SessionCommand) {
    if now().0 - command.at.0 > COMMAND_FRESH_MS {
        return;
    }
    let done = match &command.command {
        Command::Typing { to, typing } => session.set_typing(to, *typing).await,
        Command::MarkRead { from, wa_ids } => session.mark_read(from, wa_ids).await,
        Command::Relink => Ok(()),
    };
    if let Err(error) = done {
        tracing::warn!(%error, channel = %command.channel_id, "could not carry out a session command");
    }
}

/// Appends an event to the durable stream, retrying while Redis is away: an event is never
/// dropped, and its session event is acknowledged only after this returns.
async fn report(bus: &Bus, channel_id: ChannelId, event: WaEvent) {
    let envelope = WaEnvelope { channel_id, at: now(), event };
    let mut wait = Duration::from_millis(100);
    loop {
        match bus.append_wa_event(&envelope).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "could not append an event; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Hands a session's events on to the durable stream, acknowledging each once it is there, and
/// tells the channel task when the session ended.
async fn forward(
    bus: Bus,
    channel_id: ChannelId,
    session: Arc<dyn Session>,
    mut events: mpsc::Receiver<Incoming>,
    control: mpsc::Sender<Ended>,
) {
    while let Some(Incoming { event, ack }) = events.recv().await {
        let (reported, ended) = match event {
            SessionEvent::State { state, detail } => (Some(WaEvent::State { state, detail }), None),
            SessionEvent::Message { wa_id, from, push_name, text, media, sent_at } => {
                (Some(WaEvent::Message { wa_id, from, push_name, text, media, sent_at }), None)
            }
            SessionEvent::Receipt { wa_id, receipt } => (Some(WaEvent::Receipt { wa_id, receipt }), None),
            SessionEvent::Typing { from, typing } => (Some(WaEvent::Typing { from, typing }), None),
            SessionEvent::Banned { until } => {
                let detail = Some(format!("WhatsApp banned the number until {}", until.utc_minute()));
                (Some(WaEvent::State { state: ChannelState::Banned, detail }), Some(Ended::Banned(until)))
            }
            SessionEvent::LoggedOut => {
                let detail = Some("the phone ended the link; link the number again".to_owned());
                (Some(WaEvent::State { state: ChannelState::LoggedOut, detail }), Some(Ended::LoggedOut))
            }
            SessionEvent::Replaced => (None, Some(Ended::LostLease)),
            SessionEvent::PairingQr { code, expires_at } => (Some(pairing(LinkMethod::Qr, code, expires_at)), None),
            SessionEvent::PairingCode { code, expires_at } => (Some(pairing(LinkMethod::Code, code, expires_at)), None),
            SessionEvent::Linked { phone, name } => (Some(WaEvent::Linked { phone, name }), None),
            SessionEvent::LinkExpired => {
                let detail =
                    Some("the code expired before a phone linked the number; press “Link again” for a new one".into());
                (Some(WaEvent::State { state: ChannelState::LoggedOut, detail }), Some(Ended::LoggedOut))
            }
        };
        if let Some(WaEvent::Pairing { .. }) = &reported {
            // The channel waits for a link from the first code on.
            report(&bus, channel_id, WaEvent::State { state: ChannelState::Pairing, detail: None }).await;
        }
        if let Some(event) = reported {
            report(&bus, channel_id, event).await;
        }
        if let Some(token) = ack
            && let Err(error) = session.ack(&token).await
        {
            tracing::warn!(%error, %channel_id, "could not acknowledge an event; it may come again");
        }
        // The channel task reads only the first reason; never wait on it.
        if let Some(ended) = ended {
            let _ = control.try_send(ended);
        }
    }
    let _ = control.try_send(Ended::Dropped("the session closed".to_owned()));
}

fn pairing(method: LinkMethod, code: String, expires_at: Timestamp) -> WaEvent {
    WaEvent::Pairing { pairing: Pairing { method, code, expires_at } }
}

async fn start_sending(ctx: &WaContext, channel: &Channel, session: Arc<dyn Session>) -> anyhow::Result<QueueWorker> {
    let bus = ctx.bus.clone();
    let backoff: bullmq::BackoffStrategyFn = Arc::new(|attempts_made, kind, _error, _data| {
        let delay = if kind == SEND_BACKOFF { send_backoff_ms(attempts_made) as i64 } else { 1_000 };
        Box::pin(async move { delay })
    });
    let options = ctx
        .bus
        .send_worker_options()
        .name(ctx.holder.clone())
        .concurrency(1)
        .limiter(RateLimiterOptions::new(u64::from(channel.rate.get()), Duration::from_secs(1)))
        .lock_duration(Duration::from_secs(10))
        .stalled_interval(Duration::from_secs(5))
        .max_stalled_count(10)
        .drain_delay(Duration::from_secs(1))
        .backoff_strategy(backoff);
    let queue = ctx.bus.keys().send_queue(channel.id);
    let pace = Arc::new(Pace::new(channel.rate.get()));
    let processor = move |job: Job, _cancel| {
        let bus = bus.clone();
        let session = session.clone();
        let pace = pace.clone();
        async move { process_send(&bus, session.as_ref(), &job, Some(&pace)).await }
    };
    Ok(QueueWorker::with_options(&queue, processor, options).await?)
}

/// A channel's pace: at most `per_second` sends in any sliding second. BullMQ's limiter counts in
/// fixed windows, which lets the end of one window and the start of the next come closer than a
/// second; this gate, just before each send, makes the limit hold for every second.
///
/// Each send also waits a random moment (up to a quarter of the average gap between sends), so a
/// number's sends never tick like a machine's: a clockwork rhythm is one of the signs WhatsApp's
/// spam detection is said to look for.
pub struct Pace {
    per_second: usize,
    jitter_ms: u64,
    sent: tokio::sync::Mutex<std::collections::VecDeque<Instant>>,
}

/// Kept between a send and the one `per_second` sends later, beyond the second itself, so clocks
/// read a moment apart never see more than the limit.
const PACE_MARGIN: Duration = Duration::from_millis(10);

impl Pace {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1) as usize;
        let jitter_ms = 1_000 / per_second as u64 / 4;
        let sent = tokio::sync::Mutex::new(std::collections::VecDeque::with_capacity(per_second));
        Self { per_second, jitter_ms, sent }
    }

    /// Waits until one more send keeps the limit (and a random moment more), and counts it.
    pub async fn wait(&self) {
        let mut sent = self.sent.lock().await;
        if sent.len() >= self.per_second
            && let Some(oldest) = sent.pop_front()
        {
            tokio::time::sleep_until(oldest + Duration::from_secs(1) + PACE_MARGIN).await;
        }
        if self.jitter_ms > 0 {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..=self.jitter_ms))).await;
        }
        sent.push_back(Instant::now());
    }
}

/// Sends one queued message (after `pace` allows it). Transient failures are retried by BullMQ
/// with backoff; a permanent one (or the last attempt) marks the message failed with a reason a
/// person can read.
pub async fn process_send(
    bus: &Bus,
    session: &dyn Session,
    job: &Job,
    pace: Option<&Pace>,
) -> Result<serde_json::Value, bullmq::Error> {
    let send: SendJob = serde_json::from_value(job.data().clone()).map_err(|error| {
        tracing::error!(%error, job = job.id(), "a send job that does not parse was dropped");
        bullmq::Error::Unrecoverable(format!("not a send job: {error}"))
    })?;
    if let Some(pace) = pace {
        pace.wait().await;
    }
    let sent = match send.media.clone() {
        Some(media) => {
            let file = OutboundMedia { media, caption: send.text.clone() };
            session.send_media(&send.to, &send.wa_id, &file).await
        }
        None => session.send_text(&send.to, &send.wa_id, &send.text).await,
    };
    match sent {
        Ok(()) => {
            report(bus, send.channel_id, WaEvent::Sent { message_id: send.message_id, wa_id: send.wa_id.clone() })
                .await;
            Ok(serde_json::json!({ "wa_id": send.wa_id }))
        }
        Err(SendError::Permanent(failure)) => {
            let message = failure.to_string();
            report(bus, send.channel_id, WaEvent::SendFailed { message_id: send.message_id, failure }).await;
            Err(bullmq::Error::Unrecoverable(message))
        }
        Err(SendError::Banned { until }) => hold_queue(bus, &send, until.0.saturating_sub(now().0) as u64).await,
        Err(SendError::Offline { wait_ms }) => hold_queue(bus, &send, wait_ms).await,
        // Another worker runs the channel now; give the job back to the queue for it.
        Err(SendError::Replaced) => Err(bullmq::Error::RateLimited { delay_ms: 0 }),
        Err(SendError::Transient(error)) => {
            let attempts = job.attempts_made() + 1;
            if attempts >= SEND_ATTEMPTS {
                let failure = SendFailure::GaveUp { attempts, last_error: error.clone() };
                report(bus, send.channel_id, WaEvent::SendFailed { message_id: send.message_id, failure }).await;
            }
            Err(bullmq::Error::ProcessingError(error))
        }
    }
}

/// Not the message's fault (a ban, a session that is not connected): holds the whole queue for
/// `wait_ms` (at least a second), without using up the message's attempts.
async fn hold_queue(bus: &Bus, send: &SendJob, wait_ms: u64) -> Result<serde_json::Value, bullmq::Error> {
    let delay_ms = wait_ms.max(1_000);
    if let Ok(queue) = bus.send_queue(send.channel_id).await {
        let _ = queue.rate_limit(delay_ms).await;
    }
    Err(bullmq::Error::RateLimited { delay_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pace_holds_in_every_sliding_second() {
        let pace = Pace::new(5);
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..23 {
            pace.wait().await;
            sent.push(Instant::now() - start);
        }
        for (i, at) in sent.iter().enumerate() {
            let within = sent[i..].iter().take_while(|t| **t < *at + Duration::from_secs(1)).count();
            assert!(within <= 5, "{within} sends in the second from {at:?}");
        }
        // And it does not hold back more than it must: 23 sends take four seconds, and a random
        // moment of at most 50 ms each.
        assert!(*sent.last().unwrap() < Duration::from_millis(4_100 + 23 * 50), "{:?}", sent.last());
        // The gaps are not all alike.
        let gaps: std::collections::HashSet<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() > 5, "the sends keep a fixed rhythm: {gaps:?}");
    }
}
