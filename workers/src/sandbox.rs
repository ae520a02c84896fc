//! The sandbox provider: a session on the simulated network (see `balas_bus::sandbox`).

use std::time::Duration;

use async_trait::async_trait;
use balas_backend::media::{Area, MediaStore};
use balas_backend::now;
use balas_bus::{Bus, SandboxRules, SandboxSent, stream_id_cmp};
use balas_domain::{ChannelState, Media, PhoneNumber, SandboxPacket, SendFailure, WorkspaceId};
use tokio::sync::{mpsc, watch};

use crate::session::{
    Connected, Incoming, OutboundMedia, SendError, Session, SessionEvent, media_unreadable, not_downloaded,
};

/// In the sandbox, numbers ending in this are not on WhatsApp (to try failed sends).
pub const UNREGISTERED_SUFFIX: &str = "00000";

/// Connects channels to the sandbox network.
#[derive(Clone)]
pub struct SandboxProvider {
    pub bus: Bus,
    pub rules: SandboxRules,
    /// How long packets take to reach a channel.
    pub latency: Duration,
    /// Files travel between the network's folder and the workspaces' folders.
    pub media: MediaStore,
}

struct SandboxSession {
    bus: Bus,
    rules: SandboxRules,
    phone: PhoneNumber,
    fence: u64,
    media: MediaStore,
    area: Area,
    stop: watch::Sender<bool>,
}

fn transient(error: impl std::fmt::Display) -> SendError {
    SendError::Transient(format!("the sandbox network could not be reached: {error}"))
}

impl SandboxProvider {
    /// Connects `phone`, a channel of `workspace`, with fencing token `fence`. Fails with
    /// [`SendError::Replaced`] when a connection with a newer token exists.
    pub async fn connect(
        &self,
        phone: PhoneNumber,
        workspace: WorkspaceId,
        fence: u64,
    ) -> Result<Connected, SendError> {
        let area = Area::Workspace(workspace);
        if !self.bus.sandbox_connect(&phone, fence).await.map_err(transient)? {
            return Err(SendError::Replaced);
        }
        let (tx, events) = mpsc::channel(1024);
        let (stop, stopped) = watch::channel(false);
        let reader = self.bus.dedicated().await.map_err(transient)?;
        let cursor = self.bus.sandbox_cursor(&phone).await.map_err(transient)?;
        let banned = self.bus.sandbox_banned_until(&phone, now()).await.map_err(transient)?;
        let _ = tx.send(Incoming { event: connected_state(), ack: None }).await;
        if let Some(until) = banned {
            let _ = tx.send(Incoming { event: SessionEvent::Banned { until }, ack: None }).await;
        } else {
            let inbox = Inbox {
                bus: reader,
                phone: phone.clone(),
                fence,
                latency: self.latency,
                media: self.media.clone(),
                area,
            };
            tokio::spawn(inbox.read(cursor, tx, stopped));
        }
        let media = self.media.clone();
        let session = SandboxSession { bus: self.bus.clone(), rules: self.rules, phone, fence, media, area, stop };
        Ok(Connected { session: Box::new(session), events })
    }
}

fn connected_state() -> SessionEvent {
    SessionEvent::State { state: ChannelState::Connected, detail: None }
}

/// What reads a channel's inbox on the network.
struct Inbox {
    bus: Bus,
    phone: PhoneNumber,
    fence: u64,
    latency: Duration,
    media: MediaStore,
    area: Area,
}

impl Inbox {
    /// "Downloads" a customer's file: copies it from the network's folder into the workspace's.
    /// A file that cannot be had is told in the text instead.
    async fn fetch(&self, media: Media, text: String) -> (Option<Media>, String) {
        match self.media.copy(Area::Sandbox, &media.name, self.area).await {
            Ok(name) => (Some(Media { name, ..media }), text),
            Err(error) => {
                tracing::warn!(%error, "sandbox: a customer's file could not be fetched");
                (None, not_downloaded(media.kind, &text))
            }
        }
    }

    /// Hands the packets that reach the channel's number on as session events, until the
    /// session stops, is replaced, or is banned.
    async fn read(self, mut after: String, tx: mpsc::Sender<Incoming>, mut stopped: watch::Receiver<bool>) {
        let (bus, phone) = (&self.bus, &self.phone);
        loop {
            if *stopped.borrow() {
                return;
            }
            match bus.sandbox_session_fence(phone).await {
                Ok(current) if current > self.fence => {
                    let _ = tx.send(Incoming { event: SessionEvent::Replaced, ack: None }).await;
                    return;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "sandbox: cannot check the session"),
            }
            let entries = tokio::select! {
                _ = stopped.changed() => return,
                read = bus.sandbox_receive(phone, &after, 256) => read,
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "sandbox: cannot read the inbox; retrying");
                    let _ = tx
                        .send(Incoming {
                            event: SessionEvent::State {
                                state: ChannelState::Reconnecting,
                                detail: Some(format!("the sandbox network is unreachable: {error}")),
                            },
                            ack: None,
                        })
                        .await;
                    tokio::select! {
                        _ = stopped.changed() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    // Reconnected once a read works again.
                    let _ = tx.send(Incoming { event: connected_state(), ack: None }).await;
                    continue;
                }
            };
            for entry in entries {
                if stream_id_cmp(&entry.id, &after).is_le() {
                    continue;
                }
                after = entry.id.clone();
                let (at, event) = match entry.packet {
                    SandboxPacket::Message { wa_id, from, text, media, at, .. } => {
                        let (media, text) = match media {
                            Some(media) => self.fetch(media, text).await,
                            None => (None, text),
                        };
                        (at, SessionEvent::Message { wa_id, from, push_name: None, text, media, sent_at: at })
                    }
                    SandboxPacket::Receipt { wa_id, receipt, at, .. } => (at, SessionEvent::Receipt { wa_id, receipt }),
                    SandboxPacket::Typing { from, typing, at } => (at, SessionEvent::Typing { from, typing }),
                    // Only simulated customers keep copies of what they sent.
                    SandboxPacket::Sent { .. } => continue,
                    SandboxPacket::Banned { at } => {
                        let until = bus.sandbox_banned_until(phone, now()).await.ok().flatten().unwrap_or(at);
                        let _ = tx.send(Incoming { event: SessionEvent::Banned { until }, ack: Some(entry.id) }).await;
                        return;
                    }
                };
                let due = at.0 + self.latency.as_millis() as i64 - now().0;
                if due > 0 {
                    tokio::time::sleep(Duration::from_millis(due as u64)).await;
                }
                if tx.send(Incoming { event, ack: Some(entry.id) }).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl SandboxSession {
    async fn deliver(&self, to: &PhoneNumber, wa_id: &str, text: &str, media: Option<&Media>) -> Result<(), SendError> {
        if to.digits().ends_with(UNREGISTERED_SUFFIX) {
            return Err(SendError::Permanent(SendFailure::NotOnWhatsapp));
        }
        let sent = self
            .bus
            .sandbox_send(self.rules, Some(self.fence), &self.phone, to, wa_id, text, media, now())
            .await
            .map_err(transient)?;
        match sent {
            SandboxSent::Delivered | SandboxSent::Duplicate => Ok(()),
            SandboxSent::Banned { until } => Err(SendError::Banned { until }),
            SandboxSent::Replaced => Err(SendError::Replaced),
        }
    }
}

#[async_trait]
impl Session for SandboxSession {
    fn own_number(&self) -> &PhoneNumber {
        &self.phone
    }

    async fn send_text(&self, to: &PhoneNumber, wa_id: &str, text: &str) -> Result<(), SendError> {
        self.deliver(to, wa_id, text, None).await
    }

    async fn send_media(&self, to: &PhoneNumber, wa_id: &str, media: &OutboundMedia) -> Result<(), SendError> {
        // "Uploads" the file: a copy in the network's folder, which the customer's phone shows.
        let name = self.media.copy(self.area, &media.media.name, Area::Sandbox).await.map_err(media_unreadable)?;
        let file = Media { name, ..media.media.clone() };
        self.deliver(to, wa_id, &media.caption, Some(&file)).await
    }

    async fn set_typing(&self, to: &PhoneNumber, typing: bool) -> Result<(), SendError> {
        self.bus.sandbox_typing(&self.phone, to, typing, now()).await.map_err(transient)
    }

    async fn mark_read(&self, from: &PhoneNumber, wa_ids: &[String]) -> Result<(), SendError> {
        self.bus.sandbox_mark_read(&self.phone, from, wa_ids, now()).await.map_err(transient)
    }

    async fn ack(&self, token: &str) -> Result<(), SendError> {
        self.bus.set_sandbox_cursor(&self.phone, token).await.map_err(transient)
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for SandboxSession {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
