//! The boundary between Balas and a WhatsApp provider.
//!
//! A provider connects one channel's number and hands back a [`Session`] (what Balas can ask of
//! it) and a stream of [`Incoming`] events (what happens to it). Nothing above this module knows
//! which provider is behind a session: the sandbox now, the real WhatsApp client later.

use async_trait::async_trait;
use balas_domain::{ChannelState, Media, PhoneNumber, ReceiptKind, SendFailure, Timestamp};
use tokio::sync::mpsc;

/// What a provider tells about a session, in our own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The connection changed state (with the reason in words when there is a problem).
    State {
        state: ChannelState,
        detail: Option<String>,
    },
    /// Linking a number: show this QR code until it expires (real WhatsApp only).
    PairingQr {
        code: String,
        expires_at: Timestamp,
    },
    /// Linking a number: type this code on the phone (real WhatsApp only).
    PairingCode {
        code: String,
        expires_at: Timestamp,
    },
    /// The phone linked the number (real WhatsApp only).
    Linked {
        phone: PhoneNumber,
        name: Option<String>,
    },
    /// Every code expired before a phone linked the number; linking must be asked for again.
    LinkExpired,
    /// A customer's message; its file, if any, is in the workspace's media folder already.
    Message {
        wa_id: String,
        from: PhoneNumber,
        push_name: Option<String>,
        text: String,
        media: Option<Media>,
        sent_at: Timestamp,
    },
    Receipt {
        wa_id: String,
        receipt: ReceiptKind,
    },
    Typing {
        from: PhoneNumber,
        typing: bool,
    },
    /// The number was banned until then; the session has closed.
    Banned {
        until: Timestamp,
    },
    /// Another connection for the number took over; this session has closed.
    Replaced,
    /// The link was ended from the phone; the number must be linked again.
    LoggedOut,
}

/// An event and the token that acknowledges it to the provider. Acknowledge only once the event
/// is safe elsewhere (on the durable event stream): an unacknowledged event comes again after a
/// reconnect.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: SessionEvent,
    pub ack: Option<String>,
}

/// Why a send did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (a dropped connection, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help.
    #[error("{0}")]
    Permanent(SendFailure),
    /// The number is banned until then.
    #[error("the number is banned")]
    Banned { until: Timestamp },
    /// This session lost its number to another connection.
    #[error("another connection took over the number")]
    Replaced,
    /// The session cannot send for now (not linked yet, or not connected): hold the whole queue for
    /// a while instead of using up the message's attempts.
    #[error("the number is not connected to WhatsApp")]
    Offline { wait_ms: u64 },
}

/// A file of the channel's workspace (in its media folder) to send, with its caption (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMedia {
    pub media: Media,
    pub caption: String,
}

/// A connected WhatsApp session of one number.
#[async_trait]
pub trait Session: Send + Sync {
    /// The number this session speaks for.
    fn own_number(&self) -> &PhoneNumber;

    /// Sends a text with the id `wa_id` (chosen by Balas, so that sending the same message again
    /// is recognised as the same message).
    async fn send_text(&self, to: &PhoneNumber, wa_id: &str, text: &str) -> Result<(), SendError>;

    /// Sends a file, like [`Session::send_text`]. A file missing from the media folder is a
    /// permanent failure.
    async fn send_media(&self, to: &PhoneNumber, wa_id: &str, media: &OutboundMedia) -> Result<(), SendError>;

    /// Shows or hides "typing…" to `to`.
    async fn set_typing(&self, to: &PhoneNumber, typing: bool) -> Result<(), SendError>;

    /// Tells `from` that their messages `wa_ids` were read.
    async fn mark_read(&self, from: &PhoneNumber, wa_ids: &[String]) -> Result<(), SendError>;

    /// Confirms that an event is safe; see [`Incoming::ack`].
    async fn ack(&self, token: &str) -> Result<(), SendError>;

    /// Closes the connection and stops everything the session runs. Idempotent.
    async fn shutdown(&self);
}

/// A connected session and its events. The event stream ends when the session closes.
pub struct Connected {
    pub session: Box<dyn Session>,
    pub events: mpsc::Receiver<Incoming>,
}

/// A send's failure to read its file from the media folder: a file that is gone will not come
/// back (a permanent failure); anything else may pass.
pub fn media_unreadable(error: std::io::Error) -> SendError {
    if error.kind() == std::io::ErrorKind::NotFound {
        SendError::Permanent(SendFailure::GaveUp {
            attempts: 1,
            last_error: "the file is no longer in the media folder".to_owned(),
        })
    } else {
        SendError::Transient(format!("the media folder cannot be read: {error}"))
    }
}

/// The text of a message whose file could not be downloaded: what it was, and its caption.
pub fn not_downloaded(kind: balas_domain::MediaKind, caption: &str) -> String {
    format!("[{} could not be downloaded] {caption}", kind.label()).trim_end().to_owned()
}
