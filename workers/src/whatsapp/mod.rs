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
use balas_backend::media::{Area, MediaStore};
use balas_backend::now;
use balas_domain::{Channel, LinkMethod, Media, MediaKind, PhoneNumber, ReceiptKind, SendFailure, Timestamp};
use balas_storage::Store;
use tokio::sync::{Mutex, mpsc, oneshot};
use whatsapp_rust::UploadOptions;
use whatsapp_rust::download::{Downloadable, MediaType};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::{
    Bot, BotHandle, Client, Event, EventDelivery, InboundMessage, Jid, MessageExt, MessageInfo, SendOptions, wa,
};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::wacore::types::presence::{ChatPresence, ReceiptType};
use whatsapp_rust::wacore_binary::jid::JidExt;
use whatsapp_rust::{InboundDurabilityHook, SendError as WaSendError};

use crate::session::{
    Connected, Incoming, OutboundMedia, SendError, Session, SessionEvent, media_unreadable, not_downloaded,
};
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
    media: MediaStore,
}

impl WhatsappProvider {
    pub fn new(config: WhatsappConfig, store: Store, media: MediaStore) -> Self {
        Self { config: Arc::new(config), store, media }
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
        let files = Files { store: self.media.clone(), area: Area::Workspace(channel.workspace_id) };
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
            .with_inbound_durability_hook(Hook { events: events.clone(), acks: acks.clone(), media: files.clone() })
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
        let handle = Mutex::new(Some(handle));
        let session = WaSession { own: channel.phone.clone(), client, handle, acks, events, files };
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
    media: Files,
}

/// The channel's workspace's media folder.
#[derive(Clone)]
struct Files {
    store: MediaStore,
    area: Area,
}

impl Files {
    /// Downloads a customer's file into the media folder. A file that cannot be had (WhatsApp
    /// keeps media only for a while) is told in the text instead: the message is not held back.
    async fn fetch(&self, client: &Client, file: AttachedFile<'_>, text: String) -> (Option<Media>, String) {
        let kind = file.kind;
        let stored = async {
            let bytes = client.download(file.source).await?;
            let name = self.store.put(self.area, &file.mime, &bytes).await?;
            let AttachedFile { kind, mime, file_name, .. } = file;
            anyhow::Ok(Media { kind, mime, file_name, size: bytes.len() as u64, name })
        };
        match stored.await {
            Ok(media) => (Some(media), text),
            Err(error) => {
                tracing::warn!(%error, "a customer's file could not be downloaded");
                (None, not_downloaded(kind, &text))
            }
        }
    }
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
            let Some(text) = message_text(&inbound.message) else { continue };
            let (media, text) = match attached_file(&inbound.message) {
                Some(file) => self.media.fetch(&client, file, text).await,
                None => (None, text),
            };
            let event = message_event(&inbound.info, from, text, media);
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

/// An inbound message as our event: its text (see [`message_text`]) and its file, downloaded.
pub fn message_event(info: &MessageInfo, from: PhoneNumber, text: String, media: Option<Media>) -> SessionEvent {
    SessionEvent::Message {
        wa_id: info.id.to_string(),
        from,
        push_name: Some(info.push_name.clone()).filter(|name| !name.trim().is_empty()),
        text,
        media,
        sent_at: Timestamp(info.timestamp.timestamp_millis()),
    }
}

/// The file of a message that Balas downloads (a photo, a video, audio, a document), with what
/// the message says about it.
pub struct AttachedFile<'a> {
    pub kind: MediaKind,
    pub mime: String,
    pub file_name: Option<String>,
    pub source: &'a dyn Downloadable,
}

pub fn attached_file(message: &wa::Message) -> Option<AttachedFile<'_>> {
    let base = message.get_base_message();
    let file = |kind, mime: &Option<String>, default: &str, file_name: Option<&String>, source| AttachedFile {
        kind,
        mime: mime.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| default.to_owned()),
        file_name: file_name.filter(|n| !n.trim().is_empty()).cloned(),
        source,
    };
    if let Some(m) = base.image_message.as_option() {
        Some(file(MediaKind::Image, &m.mimetype, "image/jpeg", None, m))
    } else if let Some(m) = base.video_message.as_option() {
        Some(file(MediaKind::Video, &m.mimetype, "video/mp4", None, m))
    } else if let Some(m) = base.audio_message.as_option() {
        Some(file(MediaKind::Audio, &m.mimetype, "audio/ogg", None, m))
    } else if let Some(m) = base.document_message.as_option() {
        let name = m.file_name.as_ref().or(m.title.as_ref());
        Some(file(MediaKind::Document, &m.mimetype, "application/octet-stream", name, m))
    } else {
        None
    }
}

/// The text of a message (`None` for what Balas does not show: reactions, protocol messages and
/// other content without text or media): its text, the caption of its file (perhaps empty), or
/// what it is in words (a sticker, a location, a contact card) with its caption.
pub fn message_text(message: &wa::Message) -> Option<String> {
    if let Some(text) = message.text_content() {
        return Some(text.to_owned());
    }
    let caption = message.get_caption().unwrap_or_default().trim();
    if attached_file(message).is_some() {
        return Some(caption.to_owned());
    }
    let base = message.get_base_message();
    let kind = if base.sticker_message.is_set() {
        "Sticker"
    } else if base.location_message.is_set() {
        "Location"
    } else if base.contact_message.is_set() {
        "Contact card"
    } else {
        return None;
    };
    Some(format!("[{kind}] {caption}").trim_end().to_owned())
}

/// What WhatsApp needs to know of a file uploaded to its servers, to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: Vec<u8>,
    pub file_sha256: Vec<u8>,
    pub file_enc_sha256: Vec<u8>,
    pub file_length: u64,
    pub media_key_timestamp: i64,
}

impl From<whatsapp_rust::upload::UploadResponse> for Uploaded {
    fn from(r: whatsapp_rust::upload::UploadResponse) -> Self {
        Self {
            url: r.url,
            direct_path: r.direct_path,
            media_key: r.media_key.to_vec(),
            file_sha256: r.file_sha256.to_vec(),
            file_enc_sha256: r.file_enc_sha256.to_vec(),
            file_length: r.file_length,
            media_key_timestamp: r.media_key_timestamp,
        }
    }
}

fn wa_media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
    }
}

/// A file message of the kind `media` is, pointing at the uploaded copy.
pub fn media_message(media: &Media, caption: &str, up: &Uploaded) -> wa::Message {
    let caption = Some(caption.to_owned()).filter(|c| !c.is_empty());
    // The fields every kind of file message has, then the kind's own.
    macro_rules! file_message {
        ($kind:ident { $($field:ident $(: $value:expr)?),* $(,)? }) => {
            wa::message::$kind {
                url: Some(up.url.clone()),
                direct_path: Some(up.direct_path.clone()),
                media_key: Some(up.media_key.clone()),
                file_sha256: Some(up.file_sha256.clone()),
                file_enc_sha256: Some(up.file_enc_sha256.clone()),
                file_length: Some(up.file_length),
                media_key_timestamp: Some(up.media_key_timestamp),
                mimetype: Some(media.mime.clone()),
                $($field $(: $value)?,)*
                ..Default::default()
            }
            .into()
        };
    }
    match media.kind {
        MediaKind::Image => {
            wa::Message { image_message: file_message!(ImageMessage { caption }), ..Default::default() }
        }
        MediaKind::Video => {
            wa::Message { video_message: file_message!(VideoMessage { caption }), ..Default::default() }
        }
        MediaKind::Audio => wa::Message { audio_message: file_message!(AudioMessage {}), ..Default::default() },
        MediaKind::Document => wa::Message {
            document_message: file_message!(DocumentMessage {
                caption,
                file_name: media.file_name.clone(),
                title: media.file_name.clone(),
            }),
            ..Default::default()
        },
    }
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
    files: Files,
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

    async fn send_media(&self, to: &PhoneNumber, wa_id: &str, file: &OutboundMedia) -> Result<(), SendError> {
        self.ready().await?;
        let path = self.files.store.path(self.files.area, &file.media.name);
        let bytes = tokio::fs::read(path).await.map_err(media_unreadable)?;
        let uploaded = self
            .client
            .upload(bytes, wa_media_type(file.media.kind), UploadOptions::default())
            .await
            .map_err(|e| SendError::Transient(format!("WhatsApp did not take the file: {e}")))?;
        let message = media_message(&file.media, &file.caption, &uploaded.into());
        let options = SendOptions::default().with_message_id(wa_id);
        self.client.send_message_with_options(jid_of(to), message, options).await.map(|_| ()).map_err(send_error)
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
        assert_eq!(message_text(&text).as_deref(), Some("halo"));
        assert!(attached_file(&text).is_none());
        let event = message_event(&info(pn("6281234567890"), None), from.clone(), "halo".into(), None);
        assert_eq!(
            event,
            SessionEvent::Message {
                wa_id: "3EB0ABC".into(),
                from: from.clone(),
                push_name: Some("Siti".into()),
                text: "halo".into(),
                media: None,
                sent_at: AT,
            }
        );
        // A photo's text is its caption; the file is downloaded with the type WhatsApp gave.
        let photo = wa::Message {
            image_message: wa::message::ImageMessage {
                caption: Some("the receipt".into()),
                mimetype: Some("image/png".into()),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        };
        assert_eq!(message_text(&photo).as_deref(), Some("the receipt"));
        let file = attached_file(&photo).unwrap();
        assert_eq!((file.kind, file.mime.as_str(), file.file_name), (MediaKind::Image, "image/png", None));
        // A voice note without a type is OGG (WhatsApp's own), with no caption.
        let voice = wa::Message { audio_message: wa::message::AudioMessage::default().into(), ..Default::default() };
        assert_eq!(message_text(&voice).as_deref(), Some(""));
        assert_eq!(attached_file(&voice).map(|f| (f.kind, f.mime)), Some((MediaKind::Audio, "audio/ogg".into())));
        let document = wa::Message {
            document_message: wa::message::DocumentMessage {
                file_name: Some("invoice.pdf".into()),
                mimetype: Some("application/pdf".into()),
                ..Default::default()
            }
            .into(),
            ..Default::default()
        };
        let file = attached_file(&document).unwrap();
        assert_eq!((file.kind, file.file_name.as_deref()), (MediaKind::Document, Some("invoice.pdf")));
        // What Balas does not download is described in words.
        let sticker =
            wa::Message { sticker_message: wa::message::StickerMessage::default().into(), ..Default::default() };
        assert_eq!(message_text(&sticker).as_deref(), Some("[Sticker]"));
        assert!(attached_file(&sticker).is_none());
        // Nothing to show (a protocol message, a reaction): no text, so no event.
        assert_eq!(message_text(&wa::Message::default()), None);
    }

    #[test]
    fn files_go_out_as_the_message_of_their_kind() {
        let up = Uploaded {
            url: "https://mmg.whatsapp.net/x".into(),
            direct_path: "/v/t62/x".into(),
            media_key: vec![1; 32],
            file_sha256: vec![2; 32],
            file_enc_sha256: vec![3; 32],
            file_length: 2048,
            media_key_timestamp: 1_800_000_000,
        };
        let media = Media {
            kind: MediaKind::Document,
            mime: "application/pdf".into(),
            file_name: Some("invoice.pdf".into()),
            size: 2048,
            name: balas_domain::MediaName::new([7; 16], "application/pdf"),
        };
        let message = media_message(&media, "your invoice", &up);
        let document = message.document_message.as_option().unwrap();
        assert_eq!(document.file_name.as_deref(), Some("invoice.pdf"));
        assert_eq!(document.caption.as_deref(), Some("your invoice"));
        assert_eq!(document.mimetype.as_deref(), Some("application/pdf"));
        assert_eq!((document.file_length, document.direct_path.as_deref()), (Some(2048), Some("/v/t62/x")));
        assert_eq!(document.media_key.as_deref(), Some(&[1u8; 32][..]));
        // The message a customer's phone gets reads back as the same file.
        let file = attached_file(&message).unwrap();
        assert_eq!((file.kind, file.mime.as_str()), (MediaKind::Document, "application/pdf"));
        assert_eq!(message_text(&message).as_deref(), Some("your invoice"));

        let photo = Media { kind: MediaKind::Image, mime: "image/jpeg".into(), file_name: None, ..media.clone() };
        let message = media_message(&photo, "", &up);
        let image = message.image_message.as_option().unwrap();
        assert_eq!((image.caption.as_deref(), image.mimetype.as_deref()), (None, Some("image/jpeg")));
        let voice = Media { kind: MediaKind::Audio, mime: "audio/ogg".into(), ..media };
        assert!(media_message(&voice, "", &up).audio_message.is_set());
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
