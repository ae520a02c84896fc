//! Customers as a workspace manages them: contacts with labels and an opt-out state, the filters
//! of the Contacts page, and the keywords a customer sends to stop (or restart) broadcasts.

use serde::{Deserialize, Serialize};

use crate::{ContactId, Email, Field, FieldError, Issue, PhoneNumber, Timestamp, WorkspaceId};

/// A label of a workspace, for contacts (and conversations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelId(pub i64);

/// A label's name: 1 to 40 characters on one line, unique in its workspace (any case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelName(String);

impl LabelName {
    pub const MAX_CHARS: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        crate::validate::single_line(Field::Name, raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(LabelName);

/// The colours a label may have (each has a light and a dark shade in the stylesheet).
pub const LABEL_COLORS: [&str; 9] = ["gray", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"];

/// A label's colour, one of [`LABEL_COLORS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelColor(String);

impl LabelColor {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        LABEL_COLORS
            .contains(&raw)
            .then(|| Self(raw.to_owned()))
            .ok_or(FieldError::new(Field::Color, Issue::NotAllowed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(LabelColor);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: LabelId,
    pub name: LabelName,
    pub color: LabelColor,
    /// How many contacts carry it.
    pub contacts: i64,
}

/// A customer of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The customer asked for no broadcasts (since then).
    pub opted_out_at: Option<Timestamp>,
    pub labels: Vec<LabelId>,
    pub created_at: Timestamp,
    /// The customer's latest message or ours, in any conversation.
    pub last_message_at: Option<Timestamp>,
    /// Custom attribute values by key.
    #[serde(default)]
    pub attributes: crate::AttributeValues,
}

impl Contact {
    pub fn opted_out(&self) -> bool {
        self.opted_out_at.is_some()
    }
}

/// Which contacts, by their opt-out state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutFilter {
    #[default]
    Any,
    /// Those who may get broadcasts.
    Subscribed,
    OptedOut,
}

/// The order of the contact list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactSort {
    /// Most recent conversation first (contacts who never wrote last).
    #[default]
    Recent,
    Name,
    /// Newest contact first.
    Created,
}

/// The Contacts page's filters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactFilter {
    /// Part of the name or email (any case), or of the phone number.
    #[serde(default)]
    pub search: String,
    #[serde(default)]
    pub label: Option<LabelId>,
    #[serde(default)]
    pub opt_out: OptOutFilter,
    #[serde(default)]
    pub sort: ContactSort,
    /// Only contacts with a message (either way) in the last this many days.
    #[serde(default)]
    pub active_days: Option<u32>,
    /// Only contacts whose custom attribute compares so.
    #[serde(default)]
    pub attribute: Option<crate::AttributeFilter>,
}

impl ContactFilter {
    /// The search, trimmed and in lower case; refused when longer than 100 characters.
    pub fn search_text(&self) -> Result<String, FieldError> {
        let text = self.search.trim();
        if text.chars().count() > 100 {
            return Err(FieldError::new(Field::Search, Issue::TooLong { max: 100 }));
        }
        if text.chars().any(char::is_control) {
            return Err(FieldError::new(Field::Search, Issue::ControlCharacters));
        }
        Ok(text.to_lowercase())
    }

    /// Checks everything a person can get wrong in a filter: the search's length and the days.
    pub fn check(&self) -> Result<(), FieldError> {
        self.search_text()?;
        if let Some(days) = self.active_days
            && !(1..=3650).contains(&days)
        {
            return Err(FieldError::new(Field::Days, Issue::OutOfRange { min: 1, max: 3650 }));
        }
        Ok(())
    }

    /// The earliest last message a contact may have to match, at `now`.
    pub fn active_since(&self, now: Timestamp) -> Option<Timestamp> {
        self.active_days.map(|days| Timestamp(now.0 - i64::from(days) * 86_400_000))
    }

    /// The digits of a search that looks like (part of) a phone number. A number written the
    /// local way (`0812…`) finds the international one (`+62812…`): leading zeros are dropped.
    pub fn search_digits(&self) -> Option<String> {
        let text = self.search.trim();
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let phone_like = text.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
        let digits = digits.trim_start_matches('0');
        (phone_like && !digits.is_empty()).then(|| digits.to_owned())
    }
}

/// A saved filter of contacts (broadcasts pick their audience from these), with how many contacts
/// match it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub id: i64,
    pub name: LabelName,
    pub filter: ContactFilter,
    pub contacts: i64,
}

/// How many contacts a page of the list shows.
pub const CONTACT_PAGE: u32 = 50;

/// One page of the contact list, with how many match in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub total: i64,
    /// The page shown (0 first).
    pub page: u32,
}

/// A note an agent wrote about a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactNote {
    pub id: i64,
    /// The author's name (gone when they left the workspace).
    pub author: Option<String>,
    pub body: String,
    pub created_at: Timestamp,
}

/// A contact with everything the detail page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub contact: Contact,
    /// Newest first.
    pub notes: Vec<ContactNote>,
    /// Newest activity first.
    pub conversations: Vec<crate::ConversationSummary>,
}

/// A contact's details as an agent edits them: a name (may be empty), a number, an email (may be
/// empty). Every problem is reported at once.
pub fn parse_contact_fields(
    name: &str,
    phone: &str,
    email: &str,
) -> Result<(Option<String>, PhoneNumber, Option<Email>), Vec<FieldError>> {
    let name = match name.trim() {
        "" => Ok(None),
        name => crate::validate::single_line(Field::Name, name, 100).map(Some),
    };
    let phone = PhoneNumber::parse(phone);
    let email = match email.trim() {
        "" => Ok(None),
        raw => Email::parse(raw).map(Some),
    };
    match (name, phone, email) {
        (Ok(name), Ok(phone), Ok(email)) => Ok((name, phone, email)),
        (name, phone, email) => Err(name.err().into_iter().chain(phone.err()).chain(email.err()).collect()),
    }
}

/// What a customer's message asks of their subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptRequest {
    Stop,
    Start,
}

/// The stop keywords when a workspace has set none: English and Indonesian.
pub const DEFAULT_STOP_KEYWORDS: [&str; 4] = ["STOP", "BERHENTI", "UNSUBSCRIBE", "STOP ALL"];
/// Keywords that subscribe an opted-out customer again.
pub const START_KEYWORDS: [&str; 3] = ["START", "MULAI", "SUBSCRIBE"];

impl OptRequest {
    /// Whether a message is a stop (or start) keyword: the whole message, in any case, with
    /// spaces and trailing punctuation ignored ("stop!" is, "please don't stop" is not).
    pub fn of(text: &str, stop_keywords: &[String]) -> Option<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let normal = words.join(" ").trim_end_matches(['.', '!', '?']).to_uppercase();
        if normal.is_empty() {
            return None;
        }
        if stop_keywords.iter().any(|k| k.trim().to_uppercase() == normal) {
            Some(OptRequest::Stop)
        } else if START_KEYWORDS.contains(&normal.as_str()) {
            Some(OptRequest::Start)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_keywords_are_whole_messages_in_any_case() {
        let keywords: Vec<String> = DEFAULT_STOP_KEYWORDS.iter().map(|k| k.to_string()).collect();
        assert_eq!(OptRequest::of("stop", &keywords), Some(OptRequest::Stop));
        assert_eq!(OptRequest::of("  Berhenti! ", &keywords), Some(OptRequest::Stop));
        assert_eq!(OptRequest::of("stop   all", &keywords), Some(OptRequest::Stop));
        assert_eq!(OptRequest::of("please don't stop", &keywords), None);
        assert_eq!(OptRequest::of("mulai", &keywords), Some(OptRequest::Start));
        assert_eq!(OptRequest::of("", &keywords), None);
        assert_eq!(OptRequest::of("halt", &["HALT".into()]), Some(OptRequest::Stop));
    }

    #[test]
    fn labels_and_contact_fields_are_checked() {
        assert!(LabelName::parse("VIP").is_ok());
        assert_eq!(LabelName::parse(&"x".repeat(41)).unwrap_err().issue, Issue::TooLong { max: 40 });
        assert!(LabelColor::parse("teal").is_ok());
        assert_eq!(LabelColor::parse("#ff0000").unwrap_err().field, Field::Color);
        assert_eq!(parse_contact_fields(" Sari ", "+62 812 3456 7890", "").unwrap().0.as_deref(), Some("Sari"));
        let control = ContactFilter { search: "abc\0".into(), ..ContactFilter::default() };
        assert_eq!(control.check().unwrap_err().issue, Issue::ControlCharacters);
        let errors = parse_contact_fields(&"n".repeat(101), "0812", "not-an-email").unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field).collect::<Vec<_>>(), [Field::Name, Field::Phone, Field::Email]);
    }
}

/// What a CSV column holds, as the person importing maps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportField {
    Phone,
    Name,
    Email,
    /// Label names, separated by `;` (or `,`), each an existing label.
    Labels,
    /// yes/no, true/false, 1/0, ya/tidak: "yes" opts the contact out.
    OptedOut,
}

impl ImportField {
    pub const ALL: [ImportField; 5] =
        [ImportField::Phone, ImportField::Name, ImportField::Email, ImportField::Labels, ImportField::OptedOut];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportField::Phone => "phone",
            ImportField::Name => "name",
            ImportField::Email => "email",
            ImportField::Labels => "labels",
            ImportField::OptedOut => "opted_out",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }

    /// The field a column header most likely means (English and Indonesian names).
    pub fn guess(header: &str) -> Option<Self> {
        let h = header.trim().to_lowercase().replace(['_', '-'], " ");
        let any = |words: &[&str]| words.iter().any(|w| h == *w || h.split_whitespace().any(|part| part == *w));
        if any(&["phone", "nomor", "number", "whatsapp", "hp", "telepon", "mobile", "wa"]) {
            Some(ImportField::Phone)
        } else if any(&["email", "e mail", "surel"]) {
            Some(ImportField::Email)
        } else if any(&["labels", "label", "tags", "tag"]) {
            Some(ImportField::Labels)
        } else if any(&["opted out", "optout", "unsubscribed", "berhenti", "opt out"]) {
            Some(ImportField::OptedOut)
        } else if any(&["name", "nama", "full name", "customer"]) {
            Some(ImportField::Name)
        } else {
            None
        }
    }
}

/// What a CSV column is imported into: a contact's field or one of the workspace's custom
/// attributes (written `attr:KEY` in a mapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportColumn {
    Field(ImportField),
    Attribute(crate::AttributeKey),
}

impl ImportColumn {
    /// How a mapping writes it.
    pub fn token(&self) -> String {
        match self {
            ImportColumn::Field(field) => field.as_str().to_owned(),
            ImportColumn::Attribute(key) => format!("attr:{key}"),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().strip_prefix("attr:") {
            Some(key) => crate::AttributeKey::parse(key).ok().map(ImportColumn::Attribute),
            None => ImportField::parse(raw.trim()).map(ImportColumn::Field),
        }
    }

    /// The column a header most likely means: an attribute by its key, a field (see
    /// [`ImportField::guess`]), or an attribute by its name (any case).
    pub fn guess(header: &str, attributes: &[crate::Attribute]) -> Option<Self> {
        let wanted = header.trim().to_lowercase();
        let by = |matches: &dyn Fn(&crate::Attribute) -> bool| {
            attributes.iter().find(|a| matches(a)).map(|a| ImportColumn::Attribute(a.key.clone()))
        };
        // A key is exact; a contact's own field comes before an attribute's display name (an
        // attribute called "Email" does not take the email column).
        by(&|a| a.key.as_str() == wanted)
            .or_else(|| ImportField::guess(header).map(ImportColumn::Field))
            .or_else(|| by(&|a| a.name.as_str().to_lowercase() == wanted))
    }
}

/// What to do when some rows are wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Import the valid rows and report the others.
    #[default]
    ValidRows,
    /// Import nothing unless every row is valid.
    AllOrNothing,
}

/// The largest CSV file an import takes, and the most rows.
pub const IMPORT_MAX_BYTES: u64 = 20 * 1024 * 1024;
pub const IMPORT_MAX_ROWS: usize = 200_000;

/// A row an import refused: its line in the file (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

/// How an import went.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: Vec<RejectedRow>,
    /// Nothing was imported (all-or-nothing, and some row was wrong; or the file was refused).
    pub nothing_imported: bool,
    /// Why the whole file was refused, when it was.
    pub refused: Option<String>,
}

/// One line of an import's answer, as it goes: progress, then the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImportUpdate {
    Progress { done: u64, total: u64 },
    Done { report: ImportReport },
}
