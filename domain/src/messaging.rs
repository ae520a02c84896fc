//! Channels, contacts, conversations and messages, and the typed events and jobs that carry them
//! between the processes: the WhatsApp worker's events ([`WaEnvelope`]), the send jobs
//! ([`SendJob`]), the dashboard's live events ([`LiveEnvelope`]) and the sandbox network's packets
//! ([`SandboxPacket`]).

use serde::{Deserialize, Serialize};

use crate::{
    ChannelId, ContactId, ConversationId, Field, FieldError, Issue, Media, MessageId, Timestamp, UserId, WorkspaceId,
};

/// A phone number in E.164 form (`+` and 8 to 15 digits, no leading zero), the way WhatsApp
/// identifies people. Spaces, dashes, dots and brackets are accepted on input and dropped; a leading
/// `00` counts as `+`. A number without a country code is refused rather than guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(Field::Phone, Issue::InvalidPhone);
        let text = raw.trim();
        if text.is_empty() {
            return Err(FieldError::new(Field::Phone, Issue::Required));
        }
        let rest = if let Some(rest) = text.strip_prefix('+') {
            rest
        } else if let Some(rest) = text.strip_prefix("00") {
            rest
        } else {
            text
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(invalid()),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(invalid());
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The number with its `+`, e.g. `+6281234567890`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits alone, e.g. `6281234567890` (WhatsApp's user part of a JID).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

string_newtype!(PhoneNumber);

/// The text of a message: not blank, at most 4,096 characters (WhatsApp's limit), line breaks and
/// tabs allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 4096;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.trim().is_empty() {
            return Err(FieldError::new(Field::Text, Issue::Required));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(Field::Text, Issue::TooLong { max: Self::MAX_CHARS }));
        }
        if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            return Err(FieldError::new(Field::Text, Issue::ControlCharacters));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(MessageText);

/// How many messages a channel may send per second. WhatsApp tolerates little more than a few per
/// second from an ordinary number; 80 is the Cloud API's own ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct RatePerSecond(u32);

impl RatePerSecond {
    pub const DEFAULT: Self = Self(5);
    pub const MAX: u32 = 80;

    pub fn parse(value: i64) -> Result<Self, FieldError> {
        if !(1..=i64::from(Self::MAX)).contains(&value) {
            return Err(FieldError::new(Field::RateLimit, Issue::OutOfRange { min: 1, max: i64::from(Self::MAX) }));
        }
        Ok(Self(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for RatePerSecond {
    type Error = FieldError;
    fn try_from(value: u32) -> Result<Self, FieldError> {
        Self::parse(i64::from(value))
    }
}

impl From<RatePerSecond> for u32 {
    fn from(value: RatePerSecond) -> u32 {
        value.0
    }
}

/// What connects a channel to WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// The simulated network (for trying Balas, tests and benchmarks).
    Sandbox,
    /// A real number linked through WhatsApp's multi-device protocol.
    Whatsapp,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sandbox => "sandbox",
            Provider::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sandbox" => Some(Provider::Sandbox),
            "whatsapp" => Some(Provider::Whatsapp),
            _ => None,
        }
    }
}

/// Where a channel's session is, as the worker that runs it last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// No worker has started the session yet (or none is running).
    Idle,
    Connecting,
    /// Waiting for the phone to link the number (a QR code or a pairing code is shown).
    Pairing,
    Connected,
    /// The connection dropped; the worker is trying again.
    Reconnecting,
    /// WhatsApp ended the link; someone must link the number again.
    LoggedOut,
    /// WhatsApp banned the number for sending too fast.
    Banned,
}

impl ChannelState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Idle => "idle",
            ChannelState::Connecting => "connecting",
            ChannelState::Pairing => "pairing",
            ChannelState::Connected => "connected",
            ChannelState::Reconnecting => "reconnecting",
            ChannelState::LoggedOut => "logged_out",
            ChannelState::Banned => "banned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "idle" => ChannelState::Idle,
            "connecting" => ChannelState::Connecting,
            "pairing" => ChannelState::Pairing,
            "connected" => ChannelState::Connected,
            "reconnecting" => ChannelState::Reconnecting,
            "logged_out" => ChannelState::LoggedOut,
            "banned" => ChannelState::Banned,
            _ => return None,
        })
    }

    /// Whether a worker should hold the channel: all but a logged-out number, which needs a
    /// person to link it again. (A banned number is held, and reconnected when the ban ends.)
    pub fn wants_session(self) -> bool {
        self != ChannelState::LoggedOut
    }
}

/// A WhatsApp number of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub provider: Provider,
    pub phone: PhoneNumber,
    pub rate: RatePerSecond,
    pub state: ChannelState,
    /// The last problem in words, when there is one.
    pub state_detail: Option<String>,
    /// Whether customers get read receipts when an agent opens their conversation.
    pub read_receipts: bool,
    pub created_at: Timestamp,
    /// The WhatsApp account's name, once the number is linked (real WhatsApp only).
    pub linked_name: Option<String>,
    /// How the admin links the number (real WhatsApp only).
    pub link_method: LinkMethod,
    /// The code to show while the number waits for a link.
    pub pairing: Option<Pairing>,
}

/// How a real number is linked: by scanning a QR code, or by typing a code on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    #[default]
    Qr,
    Code,
}

impl LinkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMethod::Qr => "qr",
            LinkMethod::Code => "code",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "qr" => Some(LinkMethod::Qr),
            "code" => Some(LinkMethod::Code),
            _ => None,
        }
    }
}

/// A code that links a number while it lasts: the QR code's text (WhatsApp rotates it), or the
/// 8-character code to type in WhatsApp > Linked devices > Link with phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub method: LinkMethod,
    pub code: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    Contact,
    Agent,
    Ai,
    Broadcast,
    /// Sent through the REST API (an ERP, a shop).
    Api,
    /// Balas itself (an opt-out's confirmation).
    System,
}

impl SenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderKind::Contact => "contact",
            SenderKind::Agent => "agent",
            SenderKind::Ai => "ai",
            SenderKind::Broadcast => "broadcast",
            SenderKind::Api => "api",
            SenderKind::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "contact" => SenderKind::Contact,
            "agent" => SenderKind::Agent,
            "ai" => SenderKind::Ai,
            "broadcast" => SenderKind::Broadcast,
            "api" => SenderKind::Api,
            "system" => SenderKind::System,
            _ => return None,
        })
    }

    /// Agents' and the AI's replies go ahead of bulk sends on a channel's queue.
    pub fn priority(self) -> SendPriority {
        match self {
            SenderKind::Broadcast => SendPriority::Bulk,
            _ => SendPriority::Interactive,
        }
    }
}

/// Where a message is on its way. Statuses only move forward (see [`MessageStatus::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
    /// An inbound message (it has no delivery ticks).
    Received,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Received => "received",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => MessageStatus::Queued,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            "received" => MessageStatus::Received,
            _ => return None,
        })
    }

    /// Order of progress: a status may replace another only with a higher rank. A failure can
    /// only replace `queued` or `sent` (a delivered message did not fail).
    pub fn rank(self) -> i64 {
        match self {
            MessageStatus::Queued => 0,
            MessageStatus::Sent | MessageStatus::Failed => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read => 3,
            MessageStatus::Received => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Pending,
    Resolved,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "open" => ConversationStatus::Open,
            "pending" => ConversationStatus::Pending,
            "resolved" => ConversationStatus::Resolved,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
    pub direction: Direction,
    pub sender: SenderKind,
    /// The agent who wrote it, for agent messages.
    pub sender_user: Option<UserId>,
    /// The text, or the caption of a file (may be empty then).
    pub body: String,
    /// The file it carries, if any.
    #[serde(default)]
    pub media: Option<Media>,
    /// WhatsApp's id of the message (for outbound messages, chosen by Balas before sending).
    pub wa_id: String,
    pub status: MessageStatus,
    /// Why it failed, in words, when it did.
    pub error: Option<String>,
    /// A private note: agents see it in the conversation, the customer never does.
    pub note: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub channel_id: ChannelId,
    pub contact_id: ContactId,
    pub contact_phone: PhoneNumber,
    pub contact_name: Option<String>,
    pub status: ConversationStatus,
    pub assignee: Option<UserId>,
    pub unread: i64,
    pub last_message_at: Timestamp,
    /// The start of the latest message (or note), for the conversation list.
    pub last_preview: Option<String>,
    /// The conversation's labels.
    #[serde(default)]
    pub labels: Vec<crate::LabelId>,
    /// The AI stays quiet here: an agent took the conversation over (or paused the AI) and has
    /// not handed it back.
    #[serde(default)]
    pub ai_paused: bool,
}

/// Why a send failed, in a form a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SendFailure {
    #[error("this number is not on WhatsApp")]
    NotOnWhatsapp,
    #[error("WhatsApp banned the channel's number")]
    ChannelBanned,
    #[error("the channel's number was logged out and must be linked again")]
    ChannelLoggedOut,
    #[error("the channel no longer exists")]
    ChannelGone,
    #[error("gave up after {attempts} attempts: {last_error}")]
    GaveUp { attempts: u32, last_error: String },
}

/// How urgent a send is. BullMQ serves lower priority numbers first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendPriority {
    /// Agent and AI replies: a customer is waiting.
    Interactive,
    /// Broadcasts and notifications.
    Bulk,
}

impl SendPriority {
    pub fn bullmq(self) -> u32 {
        match self {
            SendPriority::Interactive => 1,
            SendPriority::Bulk => 10,
        }
    }
}

/// One message to send, as a job on its channel's queue. The WhatsApp id is chosen when the
/// message is stored, so a job that runs twice sends the same message twice, which WhatsApp (and
/// the sandbox) keep once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub workspace_id: WorkspaceId,
    pub channel_id: ChannelId,
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub wa_id: String,
    /// The text, or the caption of `media` (may be empty then).
    pub text: String,
    /// The file to send, kept in the workspace's media folder.
    #[serde(default)]
    pub media: Option<Media>,
    /// How many times a person asked to send it again after it failed (0 at first): each retry is
    /// a new BullMQ job of the same message.
    #[serde(default)]
    pub retry: u32,
}

/// A read or delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Delivered,
    Read,
}

impl ReceiptKind {
    pub fn status(self) -> MessageStatus {
        match self {
            ReceiptKind::Delivered => MessageStatus::Delivered,
            ReceiptKind::Read => MessageStatus::Read,
        }
    }
}

/// What a WhatsApp worker reports about one channel, on the durable event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaEnvelope {
    pub channel_id: ChannelId,
    /// When the worker received it.
    pub at: Timestamp,
    pub event: WaEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaEvent {
    /// A customer wrote to the channel (a file, if any, is in the workspace's media folder already).
    Message {
        wa_id: String,
        from: PhoneNumber,
        push_name: Option<String>,
        text: String,
        #[serde(default)]
        media: Option<Media>,
        sent_at: Timestamp,
    },
    /// A message of the channel reached (or was read by) its recipient.
    Receipt { wa_id: String, receipt: ReceiptKind },
    /// A queued message left the channel.
    Sent { message_id: MessageId, wa_id: String },
    /// A queued message could not be sent and will not be tried again.
    SendFailed { message_id: MessageId, failure: SendFailure },
    /// A customer started or stopped typing.
    Typing { from: PhoneNumber, typing: bool },
    /// The session changed state.
    State { state: ChannelState, detail: Option<String> },
    /// A new code to link the number with (the channel is waiting for a link).
    Pairing { pairing: Pairing },
    /// The phone linked the number: the account's number and name.
    Linked { phone: PhoneNumber, name: Option<String> },
}

/// What the dashboard hears about, live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    MessageNew {
        message: Box<Message>,
        conversation: Box<ConversationSummary>,
    },
    MessageStatus {
        message_id: MessageId,
        conversation_id: ConversationId,
        status: MessageStatus,
        error: Option<String>,
    },
    Typing {
        conversation_id: ConversationId,
        channel_id: ChannelId,
        typing: bool,
    },
    ChannelState {
        channel_id: ChannelId,
        state: ChannelState,
        detail: Option<String>,
    },
    /// A channel changed more than its state (a pairing code, the linked number and name).
    ChannelUpdated {
        channel: Box<Channel>,
    },
    /// A conversation was assigned, changed status or was read.
    ConversationUpdated {
        conversation: Box<ConversationSummary>,
    },
    /// A conversation is gone: its contact was merged into another one that had a conversation on
    /// the same channel, and its messages are now in `into`.
    ConversationRemoved {
        conversation_id: ConversationId,
        into: ConversationId,
    },
    /// What an agent is doing in a conversation, until `until` unless told again.
    AgentActivity {
        conversation_id: ConversationId,
        user_id: UserId,
        name: String,
        activity: crate::Activity,
        until: Timestamp,
    },
    /// A broadcast changed state or made progress (at most about once a second while it runs).
    BroadcastUpdated {
        broadcast: Box<crate::Broadcast>,
    },
}

/// A live event with its place in the event log: a browser that reconnects asks for everything
/// after the last `id` it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEnvelope {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub event: LiveEvent,
}

/// What a browser may send on the live WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start (or resume after `after`, the last event id seen) receiving events.
    Subscribe {
        after: Option<String>,
    },
    /// The agent is viewing, typing in or leaving a conversation (shown to the other agents; typing
    /// is shown to the customer too).
    Activity {
        conversation_id: ConversationId,
        activity: crate::Activity,
    },
    Ping,
}

/// What the server sends on the live WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Subscribed; `missed` events follow before live ones. `gap` says the resume point was older
    /// than the kept history, so the client should reload its data.
    Subscribed {
        missed: usize,
        gap: bool,
    },
    Event {
        event: Box<LiveEnvelope>,
    },
    Pong,
    /// The frame could not be understood; the connection stays open.
    Error {
        message: String,
    },
}

/// What travels on the sandbox network between simulated phones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SandboxPacket {
    Message {
        wa_id: String,
        from: PhoneNumber,
        to: PhoneNumber,
        text: String,
        /// A file, kept in the sandbox network's own media folder (`/sandbox/media/{name}`).
        #[serde(default)]
        media: Option<Media>,
        at: Timestamp,
    },
    Receipt {
        wa_id: String,
        from: PhoneNumber,
        receipt: ReceiptKind,
        at: Timestamp,
    },
    Typing {
        from: PhoneNumber,
        typing: bool,
        at: Timestamp,
    },
    /// A copy of what a simulated customer sent, kept in its own inbox so its phone shows the
    /// whole chat (channels' sessions never get these).
    Sent {
        wa_id: String,
        to: PhoneNumber,
        text: String,
        #[serde(default)]
        media: Option<Media>,
        at: Timestamp,
    },
    /// The network banned the receiving number (it sent too fast).
    Banned {
        at: Timestamp,
    },
}

/// A sandbox channel, as a simulated customer picks whom to write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxChannel {
    pub name: String,
    pub phone: PhoneNumber,
}

/// One message in a simulated phone's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMessage {
    pub wa_id: String,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    #[serde(default)]
    pub media: Option<Media>,
    pub at: Timestamp,
    /// The receipts this message got from its recipient (for messages the phone sent).
    pub status: Option<ReceiptKind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        assert_eq!(PhoneNumber::parse(" +62 812-3456 7890 ").unwrap().as_str(), "+6281234567890");
        assert_eq!(PhoneNumber::parse("0044 (20) 7946 0958").unwrap().as_str(), "+442079460958");
        assert_eq!(PhoneNumber::parse("6281234567890").unwrap().digits(), "6281234567890");
        for bad in ["", "+0812345678", "+1234567", "+1234567890123456", "+62abc4567890", "08123456789"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(PhoneNumber::parse("").unwrap_err().issue, Issue::Required);
    }

    #[test]
    fn message_text_follows_whatsapps_limits() {
        assert!(MessageText::parse("hi\nthere\t!").is_ok());
        assert_eq!(MessageText::parse("  \n").unwrap_err().issue, Issue::Required);
        assert_eq!(MessageText::parse(&"a".repeat(4097)).unwrap_err().issue, Issue::TooLong { max: 4096 });
        assert!(MessageText::parse(&"é".repeat(4096)).is_ok());
        assert_eq!(MessageText::parse("bell\u{7}").unwrap_err().issue, Issue::ControlCharacters);
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(MessageStatus::Sent.rank() > MessageStatus::Queued.rank());
        assert!(MessageStatus::Read.rank() > MessageStatus::Delivered.rank());
        assert!(MessageStatus::Failed.rank() < MessageStatus::Delivered.rank());
        assert!(RatePerSecond::parse(0).is_err() && RatePerSecond::parse(81).is_err());
    }

    #[test]
    fn frames_round_trip_as_tagged_json() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"subscribe","after":"1-0"}"#).unwrap();
        assert_eq!(frame, ClientFrame::Subscribe { after: Some("1-0".into()) });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"subscribe","after":5}"#).is_err());
    }
}
