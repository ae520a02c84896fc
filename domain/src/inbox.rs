//! The shared inbox: what agents see and do with conversations, and what they tell each other live.

use serde::{Deserialize, Serialize};

use crate::{
    Channel, ChannelId, ConversationId, ConversationStatus, ConversationSummary, Field, FieldError, Issue, Message,
    MessageId, PhoneNumber, Timestamp, UserId,
};

/// Whose conversations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    Mine,
    Unassigned,
    #[default]
    All,
}

impl Assignment {
    pub fn as_str(self) -> &'static str {
        match self {
            Assignment::Mine => "mine",
            Assignment::Unassigned => "unassigned",
            Assignment::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "mine" => Assignment::Mine,
            "unassigned" => Assignment::Unassigned,
            "all" => Assignment::All,
            _ => return None,
        })
    }
}

/// The longest search text the inbox accepts.
pub const MAX_SEARCH: usize = 100;
/// How many conversations one page of the list holds.
pub const INBOX_PAGE: u32 = 50;
/// How many messages one page of a chat holds.
pub const CHAT_PAGE: u32 = 40;

/// Which conversations the inbox lists. The server filters in SQL; the browser applies
/// [`InboxFilter::matches`] to conversations that change live, so both agree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboxFilter {
    pub status: Option<ConversationStatus>,
    pub assignment: Assignment,
    pub channel: Option<ChannelId>,
    /// Part of the contact's name (any case) or phone number.
    pub search: String,
    /// Only conversations with this label.
    #[serde(default)]
    pub label: Option<crate::LabelId>,
}

impl InboxFilter {
    /// The search text, trimmed; refused when longer than [`MAX_SEARCH`].
    pub fn search_text(&self) -> Result<&str, FieldError> {
        let text = self.search.trim();
        if text.chars().count() > MAX_SEARCH {
            return Err(FieldError { field: Field::Search, issue: Issue::TooLong { max: MAX_SEARCH } });
        }
        Ok(text)
    }

    /// The digits of a search that looks like (part of) a phone number.
    pub fn search_digits(&self) -> Option<String> {
        let text = self.search.trim();
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let phone_like = text.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
        (phone_like && !digits.is_empty()).then_some(digits)
    }

    pub fn matches(&self, conversation: &ConversationSummary, me: UserId) -> bool {
        if self.status.is_some_and(|s| s != conversation.status) {
            return false;
        }
        if self.channel.is_some_and(|c| c != conversation.channel_id) {
            return false;
        }
        if self.label.is_some_and(|l| !conversation.labels.contains(&l)) {
            return false;
        }
        let assigned = match self.assignment {
            Assignment::Mine => conversation.assignee == Some(me),
            Assignment::Unassigned => conversation.assignee.is_none(),
            Assignment::All => true,
        };
        if !assigned {
            return false;
        }
        let search = self.search.trim();
        if search.is_empty() {
            return true;
        }
        if let Some(digits) = self.search_digits() {
            return conversation.contact_phone.digits().contains(&digits);
        }
        let needle = search.to_lowercase();
        conversation.contact_name.as_deref().is_some_and(|name| name.to_lowercase().contains(&needle))
    }
}

/// One page of the conversation list, newest activity first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    pub conversations: Vec<ConversationSummary>,
    /// Whether older conversations follow (ask with the last one as `before`).
    pub more: bool,
    /// Unread customer messages in every conversation of the workspace (whatever the filter).
    pub total_unread: i64,
}

/// A member of the workspace, as other members see them (to assign, and to name authors).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Agent {
    pub id: UserId,
    pub name: String,
}

/// An open conversation: its latest messages, its channel and the contact's other conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation: ConversationSummary,
    pub channel: Channel,
    /// The latest page of messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether older messages exist (ask with the first message's id as `before`).
    pub more: bool,
    pub other_conversations: Vec<ConversationSummary>,
}

/// Older messages of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub more: bool,
}

/// A reply an agent inserts by typing `/` and its shortcut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedResponse {
    pub id: i64,
    pub shortcut: Shortcut,
    pub body: String,
}

/// A canned response's shortcut: 1 to 32 lowercase letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shortcut(String);

impl Shortcut {
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim().trim_start_matches('/').to_lowercase();
        let error = |issue| FieldError { field: Field::Shortcut, issue };
        if text.is_empty() {
            return Err(error(Issue::Required));
        }
        if text.chars().count() > Self::MAX {
            return Err(error(Issue::TooLong { max: Self::MAX }));
        }
        if !text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
            return Err(error(Issue::NotAllowed));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(Shortcut);

/// What an agent is doing in a conversation, told to the other agents (collision warnings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Has the conversation open.
    Viewing,
    /// Is writing a reply (or a note).
    Typing,
    /// Stopped typing, still viewing.
    Idle,
    /// Closed the conversation.
    Left,
}

impl Activity {
    /// How long the activity holds unless it is told again (the browser repeats it before then).
    pub fn lasts_ms(self) -> i64 {
        match self {
            Activity::Viewing | Activity::Idle => 30_000,
            Activity::Typing => 6_000,
            Activity::Left => 0,
        }
    }
}

/// What the server asks of the worker that holds a channel's session (not durable: a command for
/// a channel that no worker holds right now is dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCommand {
    pub channel_id: ChannelId,
    pub at: Timestamp,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Show or hide "typing…" to a customer.
    Typing { to: PhoneNumber, typing: bool },
    /// Send read receipts for a customer's messages.
    MarkRead { from: PhoneNumber, wa_ids: Vec<String> },
    /// An admin asked for the number to be linked again (perhaps another way): start its session
    /// afresh.
    Relink,
}

/// A message id and the conversation it belongs to (for retrying a failed send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContactId, WorkspaceId};

    fn conversation(name: Option<&str>, phone: &str, assignee: Option<i64>) -> ConversationSummary {
        ConversationSummary {
            id: ConversationId(1),
            workspace_id: WorkspaceId(1),
            channel_id: ChannelId(7),
            contact_id: ContactId(1),
            contact_phone: PhoneNumber::parse(phone).unwrap(),
            contact_name: name.map(str::to_owned),
            status: ConversationStatus::Open,
            assignee: assignee.map(UserId),
            unread: 0,
            last_message_at: Timestamp(0),
            last_preview: None,
            labels: vec![],
            ai_paused: false,
        }
    }

    #[test]
    fn filters_match_like_the_server() {
        let me = UserId(3);
        let siti = conversation(Some("Siti Rahma"), "+6281234567890", Some(3));
        let filter = |search: &str, assignment| InboxFilter { search: search.into(), assignment, ..Default::default() };
        assert!(filter("siti", Assignment::Mine).matches(&siti, me));
        assert!(filter("RAHMA", Assignment::All).matches(&siti, me));
        assert!(!filter("0812 345", Assignment::All).matches(&siti, me));
        assert!(filter("812 345", Assignment::All).matches(&siti, me));
        assert!(!filter("siti", Assignment::Unassigned).matches(&siti, me));
        assert!(!filter("", Assignment::Mine).matches(&siti, UserId(4)));
        let resolved = InboxFilter { status: Some(ConversationStatus::Resolved), ..Default::default() };
        assert!(!resolved.matches(&siti, me));
        let other_channel = InboxFilter { channel: Some(ChannelId(8)), ..Default::default() };
        let labelled = InboxFilter { label: Some(crate::LabelId(3)), ..Default::default() };
        assert!(!labelled.matches(&conversation(None, "+6281234567890", None), UserId(1)));
        let mut tagged = conversation(None, "+6281234567890", None);
        tagged.labels = vec![crate::LabelId(3)];
        assert!(labelled.matches(&tagged, UserId(1)));
        assert!(!other_channel.matches(&siti, me));
        assert!(filter(&"x".repeat(101), Assignment::All).search_text().is_err());
    }

    #[test]
    fn shortcuts_are_simple_words() {
        assert_eq!(Shortcut::parse(" /Thanks ").unwrap().as_str(), "thanks");
        assert_eq!(Shortcut::parse("").unwrap_err().issue, Issue::Required);
        assert_eq!(Shortcut::parse("a b").unwrap_err().issue, Issue::NotAllowed);
        assert!(Shortcut::parse(&"a".repeat(33)).is_err());
    }
}
