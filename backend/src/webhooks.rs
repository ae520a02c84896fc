//! Outgoing webhooks: admins register URLs for events (a message received, a message's status, a
//! broadcast finished). The dispatcher ([`run`]) reads the live events through a consumer group of
//! its own, queues one delivery per event and webhook in the database, and posts each one signed:
//!
//! `Balas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`
//!
//! A delivery that is not answered with a 2xx is tried again with backoff (1 s, 2 s, 4 s … up to an
//! hour, 8 attempts), and every attempt's answer is logged for the admins, who can replay it.

use std::time::Duration;

use balas_domain::{
    AppError, AuditAction, CreatedWebhook, DeliveryState, LiveEnvelope, LiveEvent, Timestamp, Webhook, WebhookDelivery,
    WebhookEvent, check_webhook,
};
use hmac::{Hmac, Mac};
use serde_json::json;
use tokio::sync::watch;

use crate::accounts::Caller;
use crate::messaging::audit;
use crate::{AppState, from_store, now};

/// The live events' consumer group of the dispatcher.
const GROUP: &str = "webhooks";
/// How long a live event may stay read but unacknowledged before another instance takes it
/// over (its reader stopped between reading and queuing).
const CLAIM_STALE_MS: u64 = 30_000;
/// The dispatcher reads the live events at most this often (unless a read was full): a delivery
/// is queued up to this much later, and the server reads tens of events per round trip (and
/// checks for webhooks once) instead of one by one, beside the dashboards' live path.
const READ_EVERY: Duration = Duration::from_millis(100);
/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before a delivery fails for good.
pub const MAX_ATTEMPTS: u32 = 8;
/// A claimed delivery is out of other dispatchers' reach this long.
const CLAIM_MS: i64 = 30_000;
/// How much of an answer the log keeps.
const RESPONSE_KEPT: usize = 500;

/// The delay before attempt `attempts + 1` (after `attempts` failed): `base`, twice that, four
/// times … up to an hour (with the default base of a second: 1 s, 2 s, 4 s …).
pub fn retry_delay_ms(base: u64, attempts: u32) -> i64 {
    (i64::try_from(base).unwrap_or(1_000) << attempts.saturating_sub(1).min(12)).min(3_600_000)
}

/// The signature header's value for `body` at `at` (unix seconds).
pub fn signature(secret: &str, at: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{at}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={at},v1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub async fn webhooks(state: &AppState, caller: &Caller) -> Result<Vec<Webhook>, AppError> {
    caller.require_admin()?;
    state.store.webhooks(caller.me.workspace_id).await.map_err(from_store)
}

/// Registers a webhook (admins): its signing secret is in the answer and shown only then.
pub async fn create_webhook(
    state: &AppState,
    caller: &Caller,
    url: &str,
    events: &[String],
) -> Result<CreatedWebhook, AppError> {
    caller.require_admin()?;
    let (url, events) = check_webhook(url, events).map_err(|errors| AppError::Invalid { errors })?;
    crate::outbound::check(state.settings.allow_private_urls, balas_domain::Field::Url, &url)
        .map_err(AppError::invalid)?;
    let workspace = caller.me.workspace_id;
    if state.store.webhooks(workspace).await.map_err(from_store)?.len() >= 20 {
        let error = balas_domain::FieldError::new(balas_domain::Field::Url, balas_domain::Issue::TooMany { max: 20 });
        return Err(AppError::invalid(error));
    }
    let secret = format!("whsec_{}", crate::secrets::token());
    let webhook = state
        .store
        .create_webhook(workspace, &url, &events, &secret, caller.me.user_id, now())
        .await
        .map_err(from_store)?;
    let detail = events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    audit(state, caller, AuditAction::WebhookCreated, &url, &detail).await?;
    Ok(CreatedWebhook { webhook, secret })
}

pub async fn delete_webhook(state: &AppState, caller: &Caller, id: i64) -> Result<(), AppError> {
    caller.require_admin()?;
    let url = state.store.delete_webhook(caller.me.workspace_id, id).await.map_err(from_store)?;
    audit(state, caller, AuditAction::WebhookDeleted, &url, "").await
}

/// A webhook's latest deliveries (admins).
pub async fn deliveries(state: &AppState, caller: &Caller, webhook_id: i64) -> Result<Vec<WebhookDelivery>, AppError> {
    caller.require_admin()?;
    state.store.webhook_deliveries(caller.me.workspace_id, webhook_id, 50).await.map_err(from_store)
}

/// Sends a delivery again, now (admins).
pub async fn replay(state: &AppState, caller: &Caller, delivery_id: i64) -> Result<(), AppError> {
    caller.require_admin()?;
    state.store.replay_delivery(caller.me.workspace_id, delivery_id, now()).await.map_err(from_store)
}

/// The webhook event a live event is, with its payload's `data`.
fn event_of(event: &LiveEvent) -> Option<(WebhookEvent, serde_json::Value)> {
    match event {
        LiveEvent::MessageNew { message, conversation } if message.direction == balas_domain::Direction::Inbound => {
            Some((
                WebhookEvent::MessageReceived,
                json!({
                    "message_id": message.id.0, "conversation_id": conversation.id.0, "channel_id": message.channel_id.0,
                    "from": conversation.contact_phone.as_str(), "name": conversation.contact_name,
                    "text": message.body, "media": message.media.as_ref().map(|m| json!({ "kind": m.kind, "file_name": m.file_name })),
                    "created_at": message.created_at.0,
                }),
            ))
        }
        LiveEvent::MessageStatus { message_id, conversation_id, status, error } => Some((
            WebhookEvent::MessageStatus,
            json!({ "message_id": message_id.0, "conversation_id": conversation_id.0, "status": status.as_str(), "error": error }),
        )),
        LiveEvent::BroadcastUpdated { broadcast } if broadcast.status == balas_domain::BroadcastStatus::Finished => {
            Some((
                WebhookEvent::BroadcastFinished,
                json!({ "broadcast_id": broadcast.id.0, "name": broadcast.name.as_str(), "channel_id": broadcast.channel_id.0,
                    "counts": broadcast.counts, "finished_at": broadcast.finished_at.map(|t| t.0) }),
            ))
        }
        _ => None,
    }
}

/// Queues the deliveries of a batch of live events (nothing to do, and nothing written, while no
/// workspace has a webhook).
async fn queue(state: &AppState, events: &[LiveEnvelope]) -> anyhow::Result<()> {
    if events.is_empty() || !state.store.any_webhooks().await? {
        return Ok(());
    }
    for envelope in events {
        if let Some((event, data)) = event_of(&envelope.event) {
            let payload = json!({ "id": envelope.id, "type": event.as_str(), "created_at": now().0, "data": data });
            state
                .store
                .queue_webhook_event(envelope.workspace_id, &envelope.id, event, &payload.to_string(), now())
                .await?;
        }
    }
    Ok(())
}

/// Runs the dispatcher until `stop` turns true: the live events become deliveries, and due
/// deliveries are sent.
pub async fn run(state: AppState, consumer: String, stop: watch::Receiver<bool>) {
    let reader = tokio::spawn(read_events(state.clone(), consumer, stop.clone()));
    deliver(state, stop).await;
    let _ = reader.await;
}

async fn read_events(state: AppState, consumer: String, stop: watch::Receiver<bool>) {
    crate::live_group::read(&state, GROUP, &consumer, CLAIM_STALE_MS, READ_EVERY, stop, |events, ids| {
        let state = state.clone();
        async move {
            // Acknowledged only once queued (at least once; the event id keeps it once).
            if let Err(error) = queue(&state, &events).await {
                tracing::warn!(%error, "webhooks: could not queue deliveries; trying again");
                return false;
            }
            let _ = state.bus.ack_live(GROUP, &ids).await;
            true
        }
    })
    .await;
}

async fn deliver(state: AppState, mut stop: watch::Receiver<bool>) {
    let client = match crate::outbound::client(state.settings.allow_private_urls, 0).timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks: cannot make an HTTP client; no deliveries");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let due = match state.store.claim_deliveries(now(), CLAIM_MS, 20).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "webhooks: cannot read the due deliveries");
                continue;
            }
        };
        let attempts = due.into_iter().map(|delivery| {
            let (state, client) = (state.clone(), client.clone());
            async move { attempt(&state, &client, delivery).await }
        });
        futures::future::join_all(attempts).await;
    }
}

async fn attempt(state: &AppState, client: &reqwest::Client, delivery: balas_storage::DueDelivery) {
    let at = now().0 / 1_000;
    // Checked when the webhook was made, but the installation may have stopped allowing it since.
    let refused = crate::outbound::check(state.settings.allow_private_urls, balas_domain::Field::Url, &delivery.url);
    let answer = match refused {
        Err(_) => Err(crate::outbound::REFUSED.to_owned()),
        Ok(()) => client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("user-agent", "Balas-Webhooks/1")
            .header("balas-event", &delivery.event)
            .header("balas-delivery", delivery.id.to_string())
            .header("balas-signature", signature(&delivery.secret, at, &delivery.payload))
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|error| crate::outbound::describe(&error)),
    };
    let (status, response) = match answer {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            (Some(status), body.chars().take(RESPONSE_KEPT).collect::<String>())
        }
        Err(error) => (None, format!("no answer: {error}").chars().take(RESPONSE_KEPT).collect()),
    };
    let attempts = delivery.attempts + 1;
    let (state_now, retry_at) = match status {
        Some(code) if (200..300).contains(&code) => (DeliveryState::Delivered, None),
        _ if attempts >= MAX_ATTEMPTS => (DeliveryState::Failed, None),
        _ => {
            let wait = retry_delay_ms(state.settings.webhook_retry_base_ms, attempts);
            (DeliveryState::Pending, Some(Timestamp(now().0 + wait)))
        }
    };
    if let Err(error) = state.store.record_delivery(delivery.id, status, &response, state_now, retry_at).await {
        tracing::warn!(%error, "webhooks: could not record an attempt; it will be made again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!([1, 2, 3, 4].map(|n| retry_delay_ms(1_000, n)), [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(retry_delay_ms(1_000, 30), 3_600_000);
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // Computed independently: printf '%s' '1700000000.{"id":1}' | openssl dgst -sha256 -hmac whsec_test
        let expected = "t=1700000000,v1=2f441ba4b3b2d50d28a9ab9d9fd8880376ecd1eb5d0435401553f5d8d0a5dcf8";
        assert_eq!(signature("whsec_test", 1_700_000_000, "{\"id\":1}"), expected);
        assert_ne!(signature("whsec_other", 1_700_000_000, "{\"id\":1}"), expected);
    }
}
