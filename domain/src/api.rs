//! The REST API's keys: what a key may do (its scopes), and how a key is shown once made.

use serde::{Deserialize, Serialize};

use crate::{Field, FieldError, Issue, LabelName, Timestamp};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    /// Send messages (and read their status).
    SendMessages,
    /// Create, pause, resume and cancel broadcasts.
    ManageBroadcasts,
    /// Create and update contacts.
    ManageContacts,
    /// Read messages, broadcasts and contacts.
    Read,
}

impl ApiScope {
    pub const ALL: [ApiScope; 4] =
        [ApiScope::SendMessages, ApiScope::ManageBroadcasts, ApiScope::ManageContacts, ApiScope::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::SendMessages => "send_messages",
            ApiScope::ManageBroadcasts => "manage_broadcasts",
            ApiScope::ManageContacts => "manage_contacts",
            ApiScope::Read => "read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// An API key as the workspace's admins see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: LabelName,
    /// The key's first characters, to tell keys apart (`blk_AbC12…`).
    pub prefix: String,
    pub scopes: Vec<ApiScope>,
    /// Requests a minute this key may make.
    pub rate_per_minute: u32,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A key just made, with its secret: shown this once, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

impl ApiKey {
    pub const DEFAULT_RATE: u32 = 600;
    pub const MAX_RATE: u32 = 60_000;
    pub const MAX_KEYS: usize = 50;

    /// Checks what an admin asks of a new key: a name, at least one scope, a rate in range.
    pub fn check_request(
        name: &str,
        scopes: &[String],
        rate: Option<u32>,
    ) -> Result<(LabelName, Vec<ApiScope>, u32), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = LabelName::parse(name).map_err(|e| errors.push(e)).ok();
        let mut parsed = Vec::new();
        for raw in scopes {
            match ApiScope::parse(raw) {
                Some(scope) if !parsed.contains(&scope) => parsed.push(scope),
                Some(_) => {}
                None => errors.push(FieldError::new(Field::Scopes, Issue::NotAllowed)),
            }
        }
        if scopes.is_empty() {
            errors.push(FieldError::new(Field::Scopes, Issue::Required));
        }
        parsed.sort();
        let rate = rate.unwrap_or(Self::DEFAULT_RATE);
        if !(1..=Self::MAX_RATE).contains(&rate) {
            errors
                .push(FieldError::new(Field::RateLimit, Issue::OutOfRange { min: 1, max: i64::from(Self::MAX_RATE) }));
        }
        match name {
            Some(name) if errors.is_empty() => Ok((name, parsed, rate)),
            _ => Err(errors),
        }
    }

    pub fn allows(&self, scope: ApiScope) -> bool {
        self.revoked_at.is_none() && self.scopes.contains(&scope)
    }
}

/// The scopes as stored: `read,send_messages`.
pub fn scopes_text(scopes: &[ApiScope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub fn parse_scopes(text: &str) -> Vec<ApiScope> {
    text.split(',').filter_map(ApiScope::parse).collect()
}

impl Issue {
    /// The problem in plain English, for API clients (the dashboard words it in the user's
    /// language itself).
    pub fn message(&self) -> String {
        match self {
            Issue::Required => "is required".into(),
            Issue::TooShort { min } => format!("must be at least {min} characters"),
            Issue::TooLong { max } => format!("must be at most {max} characters"),
            Issue::ControlCharacters => "must not contain control characters".into(),
            Issue::InvalidEmail => "is not an email address".into(),
            Issue::NotAllowed => "is not one of the allowed values (or not of this workspace)".into(),
            Issue::Taken => "is already taken".into(),
            Issue::Unchanged => "must differ from the current value".into(),
            Issue::InvalidPhone => "is not a phone number in international form, like +6281234567890".into(),
            Issue::OutOfRange { min, max } => format!("must be between {min} and {max}"),
            Issue::FileType => "is a file type WhatsApp does not send".into(),
            Issue::FileTooLarge { max_mb } => format!("is larger than WhatsApp's {max_mb} MB"),
            Issue::InvalidKey => "must be lower-case letters, digits and _, starting with a letter".into(),
            Issue::Duplicate => "has the same entry twice".into(),
            Issue::TooMany { max } => format!("has more than {max} entries"),
            Issue::InvalidNumber => "is not a number".into(),
            Issue::InvalidDate => "is not a date (write YYYY-MM-DD)".into(),
            Issue::InvalidYesNo => "must be yes or no".into(),
            Issue::UnknownAttribute => "is not a custom attribute of this workspace".into(),
            Issue::InUse => "is still in use".into(),
            Issue::UnknownVariable => {
                "uses a {{variable}} that is neither a contact field nor a custom attribute".into()
            }
            Issue::BadPlaceholder => "has a placeholder that is not {{key}} with a lower-case key".into(),
            Issue::InPast => "is in the past".into(),
            Issue::NoRecipients => "reaches nobody (after opted-out and invalid numbers are left out)".into(),
            Issue::WrongState => "is not possible in the current state".into(),
            Issue::InvalidUrl => "is not an http(s):// URL (without credentials)".into(),
            Issue::DownloadFailed { status: 0 } => "could not be downloaded (no answer)".into(),
            Issue::DownloadFailed { status } => format!("could not be downloaded (the server answered {status})"),
            Issue::PrivateAddress => "is on this machine or a private network, which this installation does not call \
                                      (its operator can allow that with BALAS_ALLOW_PRIVATE_URLS=true)"
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_requests_are_checked() {
        let scopes = vec!["read".to_owned(), "send_messages".to_owned(), "read".to_owned()];
        let (name, parsed, rate) = ApiKey::check_request("ERP", &scopes, None).unwrap();
        assert_eq!((name.as_str(), parsed, rate), ("ERP", vec![ApiScope::SendMessages, ApiScope::Read], 600));
        let errors = ApiKey::check_request("", &["admin".to_owned()], Some(0)).unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field).collect::<Vec<_>>(), [Field::Name, Field::Scopes, Field::RateLimit]);
        assert_eq!(
            ApiKey::check_request("x", &[], None).unwrap_err()[0],
            FieldError::new(Field::Scopes, Issue::Required)
        );
        assert_eq!(parse_scopes(&scopes_text(&ApiScope::ALL)), ApiScope::ALL);
    }
}

/// What a webhook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A customer's message arrived.
    #[serde(rename = "message.received")]
    MessageReceived,
    /// An outbound message was sent, delivered, read, or failed.
    #[serde(rename = "message.status")]
    MessageStatus,
    /// A broadcast finished (every recipient sent to or skipped).
    #[serde(rename = "broadcast.finished")]
    BroadcastFinished,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 3] =
        [WebhookEvent::MessageReceived, WebhookEvent::MessageStatus, WebhookEvent::BroadcastFinished];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::MessageReceived => "message.received",
            WebhookEvent::MessageStatus => "message.status",
            WebhookEvent::BroadcastFinished => "broadcast.finished",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == raw)
    }
}

/// A URL that Balas posts events to, signed with the webhook's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: Timestamp,
}

/// A webhook just made, with its signing secret (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    Delivered,
    /// Every attempt failed; an admin may replay it.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One event sent (or being sent) to one webhook, with how its last attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: WebhookEvent,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The HTTP status the receiver answered last, if it answered.
    pub last_status: Option<u16>,
    /// The start of its last answer, or why there was none (a timeout, a refused connection).
    pub last_response: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub payload: String,
}

/// Checks a webhook's URL and events: `http(s)://…` without credentials, up to 500 characters,
/// at least one known event.
pub fn check_webhook(url: &str, events: &[String]) -> Result<(String, Vec<WebhookEvent>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let url = check_url(Field::Url, url).map_err(|e| errors.push(e)).unwrap_or_default();
    let mut parsed = Vec::new();
    for raw in events {
        match WebhookEvent::parse(raw) {
            Some(event) if !parsed.contains(&event) => parsed.push(event),
            Some(_) => {}
            None => errors.push(FieldError::new(Field::Events, Issue::NotAllowed)),
        }
    }
    if events.is_empty() {
        errors.push(FieldError::new(Field::Events, Issue::Required));
    }
    parsed.sort();
    if errors.is_empty() { Ok((url, parsed)) } else { Err(errors) }
}

/// An address Balas calls or downloads from: `http(s)://`, a host, no credentials, no spaces,
/// at most 500 characters. Trimmed.
pub fn check_url(field: Field, url: &str) -> Result<String, FieldError> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    if url.is_empty() {
        Err(FieldError::new(field, Issue::Required))
    } else if url.chars().count() > 500 {
        Err(FieldError::new(field, Issue::TooLong { max: 500 }))
    } else if !scheme_ok
        || host.is_empty()
        || host.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Err(FieldError::new(field, Issue::InvalidUrl))
    } else {
        Ok(url.to_owned())
    }
}

#[cfg(test)]
mod webhook_tests {
    use super::*;

    #[test]
    fn webhooks_are_checked() {
        let events = vec!["message.received".to_owned()];
        assert!(check_webhook("https://erp.example.com/hooks/balas", &events).is_ok());
        let bad = |url: &str| check_webhook(url, &events).unwrap_err()[0].issue;
        assert_eq!(bad("ftp://x"), Issue::InvalidUrl);
        assert_eq!(bad("https://user:pw@host/"), Issue::InvalidUrl);
        assert_eq!(bad("https:// spaced"), Issue::InvalidUrl);
        assert_eq!(bad(""), Issue::Required);
        let errors = check_webhook("https://x.example", &["order.paid".to_owned()]).unwrap_err();
        assert_eq!(errors, [FieldError::new(Field::Events, Issue::NotAllowed)]);
    }
}
