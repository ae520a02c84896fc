//! The real WhatsApp provider: the [`Session`] trait on the `whatsapp-rust` client. This module
//! (with [`store`]) is the only code that touches the library; everything else sees our types.
//!
//! - The session's state lives in Balas' database ([`store::DbBackend`]), claimed with a fencing
//!   token each time a worker connects, so any worker resumes a linked number without a new link.
//! - Inbound messages go through the library's durability hook: the library acknowledges a
//!   message to WhatsApp only after the worker acknowledged its event (once it is on the durable
//!   event stream), so a crash in between brings the message again instead of losing it.
//! - Linking: a number without a linked device shows QR codes (or, when the admin chose it, an
//!   8-character code to type on the phone) until the phone links it.

pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use balas_backend::now;
use balas_domain::{Channel, LinkMethod, PhoneNumber, ReceiptKind, SendFailure, Timestamp};
use balas_storage::Store;
use tokio::sync::{Mutex, mpsc, oneshot};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::{
    Bot, BotHandle, Client, Event, EventDelivery, InboundMessage, Jid, MessageExt, MessageInfo, SendOptions, wa,
};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::wacore::types::presence::{ChatPresence, ReceiptType};
use whatsapp_rust::wacore_binary::jid::JidExt;
use whatsapp_rust::{InboundDurabilityHook, SendError as WaSendError};

use crate::session::{Connected, Incoming, OutboundMedia, SendError, Session, SessionEvent};
use store::DbBackend;
use whatsapp_rust::wacore::store::traits::DeviceStore;

/// How long the library waits for the worker to put an inbound message on the event stream
/// before it gives up (and WhatsApp delivers the message again later).
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a clean shutdown may take before the session is aborted.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the worker reaches WhatsApp.
#[derive(Debug, Clone, Default)]
pub struct WhatsappConfig {
    /// The WebSocket URL (WhatsApp's own when `None`; a local fake server in tests).
    pub url: Option<String>,
    /// The WhatsApp Web version to announce (fetched from WhatsApp when `None`).
    pub version: Option<(u32, u32, u32)>,
}

/// Connects channels of real numbers.
#[derive(Clone)]
pub struct WhatsappProvider {
    config: Arc<WhatsappConfig>,
    store: Store,
}

impl WhatsappProvider {
    pub fn new(config: WhatsappConfig, store: Store) -> Self {
        Self { config: Arc::new(config), store }
    }

    /// Starts the channel's session: resumes the linked device stored for it, or starts linking.
    /// Claims the session state first, so an earlier holder can no longer write it.
    pub async fn connect(&self, channel: &Channel) -> Result<Connected, SendError> {
        let backend = DbBackend::claim(self.store.clone(), channel.id)
            .await
            .map_err(|e| SendError::Transient(format!("cannot read the session from the database: {e}")))?;
        let (events, received) = mpsc::channel(1024);
        let events = Outbox::new(events);
        let acks = Arc::new(Acks::default());
        let transport = match &self.config.url {
            Some(url) => TokioWebSocketTransportFactory::new().with_url(url.clone()),
            None => TokioWebSocketTransportFactory::new(),
        };
        let handler = Handler { events: events.clone(), backend: backend.clone(), method: channel.link_method };
        let mut builder = Bot::builder()
            .with_backend(backend.clone())
            .with_transport_factory(transport)
            .with_event_delivery(EventDelivery::Ordered { capacity: 1024 })
            // Balas keeps its own history of conversations from the moment a number is linked.
            .skip_history_sync()
            .with_inbound_durability_hook(Hook { events: events.clone(), acks: acks.clone() })
            .on_event(move |event, client| {
                let handler = handler.clone();
                async move { handler.handle(&event, &client).await }
            });
        if let Some(version) = self.config.version {
            builder = builder.with_version(version);
        }
        let linked = matches!(backend.load().await, Ok(Some(device)) if device.pn.is_some());
        if !linked && channel.link_method == LinkMethod::Code {
            builder = builder.with_pair_code(PairCodeOptions {
                phone_number: channel.phone.as_str().trim_start_matches('+').to_owned(),
                ..PairCodeOptions::default()
            });
        }
        let bot = builder.build().await.map_err(|e| SendError::Transient(format!("cannot start the session: {e}")))?;
        let client = bot.client();
        let handle = bot.spawn();
        let session = WaSession { own: channel.phone.clone(), client, handle: Mutex::new(Some(handle)), acks, events };
        Ok(Connected { session: Box::new(session), events: received })
    }
}

/// Where the library's callbacks put events for the worker. Closed when the session shuts down:
/// the library may keep its callbacks (and their senders) a while after that, and the worker's
/// event stream must end all the same.
#[derive(Clone, Default)]
struct Outbox(Arc<std::sync::Mutex<Option<mpsc::Sender<Incoming>>>>);

impl Outbox {
    fn new(sender: mpsc::Sender<Incoming>) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(sender))))
    }

    /// Hands an event on; false once the session is shut.
    async fn send(&self, incoming: Incoming) -> bool {
        let sender = self.0.lock().expect("outbox lock").clone();
        match sender {
            Some(sender) => sender.send(incoming).await.is_ok(),
            None => false,
        }
    }

    fn close(&self) {
        self.0.lock().expect("outbox lock").take();
    }
}

/// Events the worker has not acknowledged yet, by token.
#[derive(Default)]
struct Acks {
    next: AtomicU64,
    waiting: std::sync::Mutex<HashMap<String, oneshot::Sender<()>>>,
}

impl Acks {
    fn expect(&self) -> (String, oneshot::Receiver<()>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let (done, wait) = oneshot::channel();
        self.waiting.lock().expect("acks lock").insert(token.clone(), done);
        (token, wait)
    }

    fn done(&self, token: &str) {
        if let Some(done) = self.waiting.lock().expect("acks lock").remove(token) {
            let _ = done.send(());
        }
    }
}

/// Hands inbound messages to the worker and lets the library acknowledge them only once the
/// worker has them on the durable stream.
struct Hook {
    events: Outbox,
    acks: Arc<Acks>,
}

#[async_trait]
impl InboundDurabilityHook for Hook {
    async fn on_messages(&self, client: Arc<Client>, batch: &[InboundMessage]) -> anyhow::Result<()> {
        let mut waits = Vec::new();
        for inbound in batch {
            let Some(from) = customer_phone(&client, &inbound.info).await else {
                if !skipped(&inbound.info) {
                    tracing::warn!(id = %inbound.info.id, "a message from an identity with no known number was skipped");
                }
                continue;
            };
            let Some(event) = message_event(&inbound.info, &inbound.message, from) else { continue };
            let (token, wait) = self.acks.expect();
            if !self.events.send(Incoming { event, ack: Some(token) }).await {
                anyhow::bail!("the session is shutting down");
            }
            waits.push(wait);
        }
        for wait in waits {
            tokio::time::timeout(HOOK_TIMEOUT, wait).await??;
        }
        Ok(())
    }
}

/// Turns the library's other events into ours.
#[derive(Clone)]
struct Handler {
    events: Outbox,
    backend: DbBackend,
    /// How the admin links this number: WhatsApp sends QR codes on a connection that links by
    /// phone code too, and those must not replace the code on the page.
    method: LinkMethod,
}

impl Handler {
    async fn handle(&self, event: &Event, client: &Arc<Client>) {
        let mapped = match event {
            Event::ChatPresence(update) if !update.source.is_group && !update.source.is_from_me => {
                let phone = match phone_of(&update.source.sender) {
                    Some(phone) => Some(phone),
                    None => lid_phone(client, &update.source.sender).await,
                };
                phone
                    .map(|from| vec![SessionEvent::Typing { from, typing: update.state == ChatPresence::Composing }])
                    .unwrap_or_default()
            }
            Event::LoggedOut(_) => {
                // The link is gone for good: a new link starts from a new device.
                if let Err(error) = self.backend.forget().await {
                    tracing::warn!(%error, "could not forget a logged-out session");
                }
                vec![SessionEvent::LoggedOut]
            }
            Event::PairingQrCode(_) | Event::PairingQrCodesExhausted(_) if self.method == LinkMethod::Code => {
                Vec::new()
            }
            other => map_event(other, now()),
        };
        for event in mapped {
            if !self.events.send(Incoming { event, ack: None }).await {
                return;
            }
        }
    }
}

/// The number behind a phone-number JID (not a LID, a group or a broadcast).
pub fn phone_of(jid: &Jid) -> Option<PhoneNumber> {
    jid.is_pn().then(|| PhoneNumber::parse(&format!("+{}", jid.user)).ok()).flatten()
}

async fn lid_phone(client: &Arc<Client>, jid: &Jid) -> Option<PhoneNumber> {
    if !jid.is_lid() {
        return None;
    }
    let entry = client.get_lid_pn_entry(jid).await.ok()??;
    PhoneNumber::parse(&format!("+{}", entry.phone_number)).ok()
}

/// Messages Balas does not take into the inbox: our own, groups', status updates and broadcast
/// lists.
fn skipped(info: &MessageInfo) -> bool {
    info.source.is_from_me || info.source.is_group || info.source.chat.is_status_broadcast()
}

/// The customer's number: from the sender when it is a phone number, else from the phone number
/// WhatsApp sent beside a LID, else from the LID-to-number map the library keeps. A customer who
/// shows up under both identities is therefore one contact.
async fn customer_phone(client: &Arc<Client>, info: &MessageInfo) -> Option<PhoneNumber> {
    if skipped(info) {
        return None;
    }
    let source = &info.source;
    if let Some(phone) = phone_of(&source.sender).or_else(|| source.sender_alt.as_ref().and_then(phone_of)) {
        return Some(phone);
    }
    lid_phone(client, &source.sender).await
}

/// An inbound message as our event (`None` for what Balas does not show: reactions, protocol
/// messages and other content without text or media).
pub fn message_event(info: &MessageInfo, message: &wa::Message, from: PhoneNumber) -> Option<SessionEvent> {
    let text = message_text(message)?;
    Some(SessionEvent::Message {
        wa_id: info.id.to_string(),
        from,
        push_name: Some(info.push_name.clone()).filter(|name| !name.trim().is_empty()),
        text,
        sent_at: Timestamp(info.timestamp.timestamp_millis()),
    })
}

/// The text of a message; media (not downloaded yet) is described in words with its caption.
pub fn message_text(message: &wa::Message) -> Option<String> {
    if let Some(text) = message.text_content() {
        return Some(text.to_owned());
    }
    let base = message.get_base_message();
    let kind = if base.image_message.is_set() {
        "Photo"
    } else if base.video_message.is_set() {
        "Video"
    } else if base.audio_message.is_set() {
        "Voice message"
    } else if base.document_message.is_set() {
        "Document"
    } else if base.sticker_message.is_set() {
        "Sticker"
    } else if base.location_message.is_set() {
        "Location"
    } else if base.contact_message.is_set() {
        "Contact card"
    } else {
        return None;
    };
    Some(match message.get_caption().filter(|c| !c.is_empty()) {
        Some(caption) => format!("[{kind}] {caption}"),
        None => format!("[{kind}]"),
    })
}

fn plus(at: Timestamp, after: Duration) -> Timestamp {
    Timestamp(at.0 + after.as_millis() as i64)
}

/// The library's connection, linking and receipt events as ours (messages and typing, which may
/// need the LID map, are mapped where the client is at hand).
pub fn map_event(event: &Event, at: Timestamp) -> Vec<SessionEvent> {
    use balas_domain::ChannelState as S;
    let state = |state: S, detail: Option<String>| vec![SessionEvent::State { state, detail }];
    match event {
        Event::Connected(_) => state(S::Connected, None),
        Event::Disconnected(_) => state(S::Reconnecting, Some("the connection to WhatsApp dropped".into())),
        Event::PairingQrCode(qr) => {
            vec![SessionEvent::PairingQr { code: qr.code.clone(), expires_at: plus(at, qr.timeout) }]
        }
        Event::PairingCode(code) => {
            vec![SessionEvent::PairingCode { code: code.code.clone(), expires_at: plus(at, code.timeout) }]
        }
        Event::PairingQrCodesExhausted(_) => vec![SessionEvent::LinkExpired],
        Event::PairingCodeError(error) => {
            state(S::Pairing, Some(format!("WhatsApp refused the pairing code request: {}", error.error)))
        }
        Event::PairSuccess(linked) => match phone_of(&linked.id.to_non_ad()) {
            Some(phone) => vec![SessionEvent::Linked {
                phone,
                name: Some(linked.business_name.clone()).filter(|n| !n.trim().is_empty()),
            }],
            None => Vec::new(),
        },
        Event::PairError(error) => state(S::Pairing, Some(format!("linking failed: {}", error.error))),
        Event::TemporaryBan(ban) => {
            vec![SessionEvent::Banned { until: Timestamp(at.0 + ban.expire.num_milliseconds()) }]
        }
        Event::StreamReplaced(_) => vec![SessionEvent::Replaced],
        Event::ConnectFailure(failure) => state(
            S::Reconnecting,
            Some(match &failure.message {
                Some(message) => format!("WhatsApp refused the connection: {message}"),
                None => format!("WhatsApp refused the connection ({:?})", failure.reason),
            }),
        ),
        Event::ClientOutdated(_) => {
            state(S::Reconnecting, Some("WhatsApp says this client version is outdated; update Balas".into()))
        }
        Event::Receipt(receipt) if !receipt.source.is_group => {
            let kind = match receipt.r#type {
                ReceiptType::Delivered => ReceiptKind::Delivered,
                ReceiptType::Read | ReceiptType::Played => ReceiptKind::Read,
                _ => return Vec::new(),
            };
            receipt
                .message_ids
                .iter()
                .map(|id| SessionEvent::Receipt { wa_id: id.to_string(), receipt: kind })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn jid_of(phone: &PhoneNumber) -> Jid {
    Jid::pn(phone.as_str().trim_start_matches('+'))
}

/// A session of a real number.
struct WaSession {
    own: PhoneNumber,
    client: Arc<Client>,
    handle: Mutex<Option<BotHandle>>,
    acks: Arc<Acks>,
    events: Outbox,
}

/// How long a send waits for the session to (re)connect before the queue is held.
const SEND_WAITS_FOR_CONNECTION: Duration = Duration::from_secs(20);

impl WaSession {
    /// Waits a little for the session to be logged in; a session that stays offline holds the
    /// queue (a number waiting for its link, or WhatsApp out of reach).
    async fn ready(&self) -> Result<(), SendError> {
        if self.client.is_logged_in() {
            return Ok(());
        }
        match self.client.wait_for_connected(SEND_WAITS_FOR_CONNECTION).await {
            Ok(()) if self.client.is_logged_in() => Ok(()),
            _ => Err(SendError::Offline { wait_ms: 30_000 }),
        }
    }
}

fn send_error(error: WaSendError) -> SendError {
    match error {
        WaSendError::InvalidRequest(reason) => SendError::Permanent(SendFailure::GaveUp {
            attempts: 1,
            last_error: format!("WhatsApp refused the message: {reason}"),
        }),
        WaSendError::NotLoggedIn => SendError::Offline { wait_ms: 30_000 },
        other => SendError::Transient(other.to_string()),
    }
}

#[async_trait]
impl Session for WaSession {
    fn own_number(&self) -> &PhoneNumber {
        &self.own
    }

    async fn send_text(&self, to: &PhoneNumber, wa_id: &str, text: &str) -> Result<(), SendError> {
        self.ready().await?;
        let message = wa::Message { conversation: Some(text.to_owned()), ..Default::default() };
        let options = SendOptions::default().with_message_id(wa_id);
        self.client.send_message_with_options(jid_of(to), message, options).await.map(|_| ()).map_err(send_error)
    }

    async fn send_media(&self, _to: &PhoneNumber, _wa_id: &str, _media: &OutboundMedia) -> Result<(), SendError> {
        Err(SendError::Permanent(SendFailure::GaveUp {
            attempts: 1,
            last_error: "sending files is not available on linked numbers yet".into(),
        }))
    }

    async fn set_typing(&self, to: &PhoneNumber, typing: bool) -> Result<(), SendError> {
        let chat = self.client.chatstate();
        let jid = jid_of(to);
        let sent = if typing { chat.send_composing(&jid).await } else { chat.send_paused(&jid).await };
        sent.map_err(|e| SendError::Transient(e.to_string()))
    }

    async fn mark_read(&self, from: &PhoneNumber, wa_ids: &[String]) -> Result<(), SendError> {
        let ids: Vec<&str> = wa_ids.iter().map(String::as_str).collect();
        self.client.mark_as_read(&jid_of(from), None, &ids).await.map_err(|e| SendError::Transient(e.to_string()))
    }

    async fn ack(&self, token: &str) -> Result<(), SendError> {
        self.acks.done(token);
        Ok(())
    }

    async fn shutdown(&self) {
        let Some(handle) = self.handle.lock().await.take() else { return };
        // Events that come while closing are dropped; an unacknowledged message comes again.
        self.events.close();
        let client = handle.client();
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, handle.shutdown()).await.is_err() {
            tracing::warn!("a WhatsApp session did not stop in time; aborting it");
            client.disconnect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use balas_domain::ChannelState;
    use whatsapp_rust::prelude::Server;
    use whatsapp_rust::wacore::types::events::{
        PairSuccess, PairingQrCode, PairingQrCodesExhausted, Receipt, StreamReplaced, TempBanReason, TemporaryBan,
    };
    use whatsapp_rust::wacore::types::message::MessageSource;

    const AT: Timestamp = Timestamp(1_800_000_000_000);

    fn pn(user: &str) -> Jid {
        Jid::pn(user)
    }

    fn info(sender: Jid, alt: Option<Jid>) -> MessageInfo {
        MessageInfo {
            source: MessageSource { chat: sender.clone(), sender, sender_alt: alt, ..MessageSource::default() },
            id: "3EB0ABC".into(),
            push_name: "Siti".into(),
            timestamp: whatsapp_rust::chrono::DateTime::from_timestamp_millis(AT.0).unwrap(),
            ..MessageInfo::default()
        }
    }

    #[test]
    fn numbers_come_from_phone_number_jids_only() {
        assert_eq!(phone_of(&pn("6281234567890")), Some(PhoneNumber::parse("+6281234567890").unwrap()));
        assert_eq!(phone_of(&Jid::new("123456789012345", Server::Lid)), None);
        assert_eq!(phone_of(&Jid::new("1203630@g", Server::Group)), None);
    }

    #[test]
    fn texts_captions_and_media_become_message_events() {
        let from = PhoneNumber::parse("+6281234567890").unwrap();
        let text = wa::Message { conversation: Some("halo".into()), ..Default::default() };
        let event = message_event(&info(pn("6281234567890"), None), &text, from.clone()).unwrap();
        assert_eq!(
            event,
            SessionEvent::Message {
                wa_id: "3EB0ABC".into(),
                from: from.clone(),
                push_name: Some("Siti".into()),
                text: "halo".into(),
                sent_at: AT,
            }
        );
        let photo = wa::Message {
            image_message: wa::message::ImageMessage { caption: Some("the receipt".into()), ..Default::default() }
                .into(),
            ..Default::default()
        };
        assert_eq!(message_text(&photo).as_deref(), Some("[Photo] the receipt"));
        let voice = wa::Message { audio_message: wa::message::AudioMessage::default().into(), ..Default::default() };
        assert_eq!(message_text(&voice).as_deref(), Some("[Voice message]"));
        // Nothing to show (a protocol message, a reaction): no event.
        assert_eq!(message_event(&info(pn("62812"), None), &wa::Message::default(), from), None);
    }

    #[test]
    fn our_own_group_and_status_messages_are_skipped() {
        let mut own = info(pn("6281234567890"), None);
        own.source.is_from_me = true;
        assert!(skipped(&own));
        let mut group = info(pn("6281234567890"), None);
        group.source.is_group = true;
        assert!(skipped(&group));
        let mut status = info(pn("6281234567890"), None);
        status.source.chat = Jid::new("status", Server::Broadcast);
        assert!(skipped(&status));
        assert!(!skipped(&info(Jid::new("123456789012345", Server::Lid), Some(pn("6281234567890")))));
    }

    #[test]
    fn linking_events_become_codes_and_the_linked_number() {
        let qr = Event::PairingQrCode(
            PairingQrCode::builder().code("2@abc,def,ghi,jkl".into()).timeout(Duration::from_secs(60)).build(),
        );
        assert_eq!(
            map_event(&qr, AT),
            [SessionEvent::PairingQr { code: "2@abc,def,ghi,jkl".into(), expires_at: Timestamp(AT.0 + 60_000) }]
        );
        let linked = Event::PairSuccess(
            PairSuccess::builder()
                .id(Jid::pn_device("6281234567890", 7))
                .lid(Jid::new("123456789012345", Server::Lid))
                .business_name("Toko Maju".into())
                .platform("android".into())
                .build(),
        );
        assert_eq!(
            map_event(&linked, AT),
            [SessionEvent::Linked {
                phone: PhoneNumber::parse("+6281234567890").unwrap(),
                name: Some("Toko Maju".into())
            }]
        );
        let exhausted = Event::PairingQrCodesExhausted(PairingQrCodesExhausted::builder().disconnected(true).build());
        assert_eq!(map_event(&exhausted, AT), [SessionEvent::LinkExpired]);
    }

    #[test]
    fn bans_replacements_and_receipts_are_mapped() {
        let ban = Event::TemporaryBan(
            TemporaryBan::builder()
                .code(TempBanReason::SentToTooManyPeople)
                .expire(whatsapp_rust::chrono::TimeDelta::seconds(3_600))
                .build(),
        );
        assert_eq!(map_event(&ban, AT), [SessionEvent::Banned { until: Timestamp(AT.0 + 3_600_000) }]);
        assert_eq!(map_event(&Event::StreamReplaced(StreamReplaced::builder().build()), AT), [SessionEvent::Replaced]);
        let receipt = |kind: ReceiptType| {
            Event::Receipt(
                Receipt::builder()
                    .source(info(pn("6281234567890"), None).source)
                    .message_ids(vec!["3EB0A".into(), "3EB0B".into()])
                    .timestamp(whatsapp_rust::chrono::Utc::now())
                    .r#type(kind)
                    .offline(false)
                    .build(),
            )
        };
        assert_eq!(
            map_event(&receipt(ReceiptType::Read), AT),
            [
                SessionEvent::Receipt { wa_id: "3EB0A".into(), receipt: ReceiptKind::Read },
                SessionEvent::Receipt { wa_id: "3EB0B".into(), receipt: ReceiptKind::Read }
            ]
        );
        assert_eq!(map_event(&receipt(ReceiptType::Delivered), AT).len(), 2);
        assert!(map_event(&receipt(ReceiptType::Retry), AT).is_empty());
        let connected =
            map_event(&Event::Connected(whatsapp_rust::wacore::types::events::Connected::builder().build()), AT);
        assert_eq!(connected, [SessionEvent::State { state: ChannelState::Connected, detail: None }]);
    }
}
