//! Broadcasts: one message, written once with `{{variables}}`, sent to many contacts through the
//! channel's queue at bulk priority, within the workspace's sending rules.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{
    BroadcastId, ChannelId, Contact, Field, FieldError, Issue, LabelId, LabelName, MessageText, Timestamp, UserId,
    WorkspaceId,
};

/// The variables every contact has; custom attributes add their keys.
pub const BUILTIN_VARIABLES: [&str; 4] = ["name", "first_name", "phone", "email"];

/// One piece of a template: text as written, or a variable with its own fallback
/// (`{{name|Kak}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Variable { key: String, fallback: Option<String> },
}

/// A broadcast's message: up to WhatsApp's 4,096 characters with `{{key}}` placeholders, each
/// a built-in variable ([`BUILTIN_VARIABLES`]) or a custom attribute's key, optionally with a
/// fallback after a bar: `{{first_name|Kak}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template whose variables must be built-ins or one of `attributes` (keys).
    pub fn parse(raw: &str, attributes: &[&str]) -> Result<Self, FieldError> {
        let template = Self::parse_any(raw)?;
        if !template.unknown_variables(attributes).is_empty() {
            return Err(FieldError::new(Field::Text, Issue::UnknownVariable));
        }
        Ok(template)
    }

    /// Parses the shape only (placeholders closed, valid keys), whatever the variables are.
    pub fn parse_any(raw: &str) -> Result<Self, FieldError> {
        let text = MessageText::parse(raw)?.as_str().to_owned();
        let bad = || FieldError::new(Field::Text, Issue::BadPlaceholder);
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(bad)?;
            let inner = &after[..end];
            if inner.contains('{') {
                return Err(bad());
            }
            let (key, fallback) = match inner.split_once('|') {
                Some((key, fallback)) => (key.trim(), Some(fallback.trim().to_owned())),
                None => (inner.trim(), None),
            };
            let well_formed = key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !well_formed {
                return Err(bad());
            }
            parts.push(Part::Variable { key: key.to_owned(), fallback });
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err(bad());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { text, parts })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The keys of the variables used, each once, in order of name.
    pub fn variables(&self) -> BTreeSet<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Variable { key, .. } => Some(key.as_str()),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The variables that are neither built-ins nor one of `attributes`.
    pub fn unknown_variables(&self, attributes: &[&str]) -> Vec<String> {
        self.variables()
            .into_iter()
            .filter(|k| !BUILTIN_VARIABLES.contains(k) && !attributes.contains(k))
            .map(str::to_owned)
            .collect()
    }

    /// The text for one recipient: each variable's value, else its own fallback, else the
    /// broadcast's rule. `Err` names the first variable with no value when the rule is to skip,
    /// or says the result is too long for WhatsApp.
    pub fn render(&self, value: impl Fn(&str) -> Option<String>, rule: &MissingRule) -> Result<String, SkipReason> {
        let mut out = String::with_capacity(self.text.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable { key, fallback } => {
                    match (value(key).filter(|v| !v.trim().is_empty()), fallback, rule) {
                        (Some(value), _, _) => out.push_str(&value),
                        (None, Some(fallback), _) => out.push_str(fallback),
                        (None, None, MissingRule::Fallback { text }) => out.push_str(text),
                        (None, None, MissingRule::Skip) => return Err(SkipReason::Missing { key: key.clone() }),
                    }
                }
            }
        }
        if out.trim().is_empty() || out.chars().count() > MessageText::MAX_CHARS {
            return Err(SkipReason::TooLong);
        }
        Ok(out)
    }
}

impl From<Template> for String {
    fn from(value: Template) -> Self {
        value.text
    }
}

impl TryFrom<String> for Template {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, FieldError> {
        Self::parse_any(&raw)
    }
}

/// A variable's value for a contact: a built-in from its fields, else its custom attribute.
pub fn contact_variable(contact: &Contact, key: &str) -> Option<String> {
    match key {
        "name" => contact.name.clone(),
        "first_name" => contact.name.as_deref().and_then(|n| n.split_whitespace().next()).map(str::to_owned),
        "phone" => Some(contact.phone.as_str().to_owned()),
        "email" => contact.email.clone(),
        other => contact.attributes.get(other).cloned(),
    }
}

/// What to do for a recipient when a variable (without a fallback of its own) has no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum MissingRule {
    /// Leave the recipient out (counted as skipped, with the variable named).
    #[default]
    Skip,
    /// Put this text in the variable's place.
    Fallback { text: String },
}

impl MissingRule {
    pub const MAX_FALLBACK: usize = 100;

    pub fn checked(self) -> Result<Self, FieldError> {
        match self {
            MissingRule::Skip => Ok(self),
            MissingRule::Fallback { text } => crate::validate::single_line(Field::Fallback, &text, Self::MAX_FALLBACK)
                .map(|text| MissingRule::Fallback { text }),
        }
    }
}

/// Who a broadcast goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    /// Every contact of the workspace.
    All,
    /// The contacts a saved segment matches when the broadcast is created.
    Segment { segment_id: i64 },
    /// The contacts with any of these labels.
    Labels { labels: Vec<LabelId> },
    /// Phone numbers (from an uploaded file or pasted), one per entry; invalid ones are skipped
    /// and counted.
    List { phones: Vec<String> },
}

impl Audience {
    pub const MAX_LIST: usize = 100_000;
    pub const MAX_LABELS: usize = 20;

    pub fn checked(self) -> Result<Self, FieldError> {
        let issue = |issue| Err(FieldError::new(Field::Audience, issue));
        match &self {
            Audience::Labels { labels } if labels.is_empty() => issue(Issue::Required),
            Audience::Labels { labels } if labels.len() > Self::MAX_LABELS => {
                issue(Issue::TooMany { max: Self::MAX_LABELS })
            }
            Audience::List { phones } if phones.iter().all(|p| p.trim().is_empty()) => issue(Issue::Required),
            Audience::List { phones } if phones.len() > Self::MAX_LIST => issue(Issue::TooMany { max: Self::MAX_LIST }),
            _ => Ok(self),
        }
    }
}

/// Reads an uploaded or pasted list of numbers: one per line, or the first column of a CSV (a
/// header line that is not a number is left out). Empty lines are dropped.
pub fn list_phones(text: &str) -> Vec<String> {
    let mut phones: Vec<String> = text
        .lines()
        .map(|line| line.split([',', ';', '\t']).next().unwrap_or("").trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if phones.first().is_some_and(|p| !p.chars().any(|c| c.is_ascii_digit())) {
        phones.remove(0);
    }
    phones
}

/// A broadcast as the wizard or the API asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastDraft {
    pub name: String,
    pub channel_id: ChannelId,
    pub audience: Audience,
    pub text: String,
    #[serde(default)]
    pub missing: MissingRule,
    /// When to start; now when absent.
    #[serde(default)]
    pub send_at: Option<Timestamp>,
}

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastStatus {
    /// Waiting for its start time.
    Scheduled,
    Running,
    /// Stopped by a person, or by Balas for the number's safety (see `paused_reason`).
    Paused,
    Cancelled,
    /// Every recipient was sent to or skipped.
    Finished,
}

impl BroadcastStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastStatus::Scheduled => "scheduled",
            BroadcastStatus::Running => "running",
            BroadcastStatus::Paused => "paused",
            BroadcastStatus::Cancelled => "cancelled",
            BroadcastStatus::Finished => "finished",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "scheduled" => BroadcastStatus::Scheduled,
            "running" => BroadcastStatus::Running,
            "paused" => BroadcastStatus::Paused,
            "cancelled" => BroadcastStatus::Cancelled,
            "finished" => BroadcastStatus::Finished,
            _ => return None,
        })
    }

    /// Cancelled and finished broadcasts do nothing more.
    pub fn is_over(self) -> bool {
        matches!(self, BroadcastStatus::Cancelled | BroadcastStatus::Finished)
    }
}

/// How a broadcast's recipients stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastCounts {
    pub total: i64,
    /// Not yet handed to the queue.
    pub pending: i64,
    /// On the channel's queue, not sent yet.
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    /// Left out: opted out, an invalid number, a variable without a value, too long.
    pub skipped: i64,
    pub cancelled: i64,
}

impl BroadcastCounts {
    /// Recipients that reached the customer's phone or beyond (sent, delivered or read).
    pub fn reached(&self) -> i64 {
        self.sent + self.delivered + self.read
    }

    /// Recipients that need nothing more.
    pub fn done(&self) -> i64 {
        self.reached() + self.failed + self.skipped + self.cancelled
    }

    /// The share done, from 0 to 100.
    pub fn percent(&self) -> i64 {
        if self.total == 0 { 100 } else { self.done() * 100 / self.total }
    }
}

/// A broadcast with how its recipients stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub workspace_id: WorkspaceId,
    pub name: LabelName,
    pub channel_id: ChannelId,
    pub text: String,
    pub missing: MissingRule,
    pub audience: Audience,
    pub status: BroadcastStatus,
    pub send_at: Timestamp,
    pub created_at: Timestamp,
    pub created_by: Option<UserId>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Why it is paused (a person, a ban, a run of failures).
    pub paused_reason: Option<String>,
    /// Why it is not sending right now although it runs (outside sending hours, the daily cap).
    pub waiting: Option<String>,
    /// Numbers that were in the audience more than once (sent to once).
    pub duplicates: i64,
    pub counts: BroadcastCounts,
}

/// Sends per interval since a broadcast started, for its chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSeries {
    pub bucket_ms: i64,
    /// Starts at the broadcast's start.
    pub counts: Vec<i64>,
}

/// Why a recipient was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    OptedOut,
    InvalidNumber,
    Missing {
        key: String,
    },
    /// The text with its values is empty or over WhatsApp's limit.
    TooLong,
}

impl SkipReason {
    /// As stored: `opted_out`, `invalid_number`, `missing:KEY`, `too_long`.
    pub fn code(&self) -> String {
        match self {
            SkipReason::OptedOut => "opted_out".into(),
            SkipReason::InvalidNumber => "invalid_number".into(),
            SkipReason::Missing { key } => format!("missing:{key}"),
            SkipReason::TooLong => "too_long".into(),
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "opted_out" => SkipReason::OptedOut,
            "invalid_number" => SkipReason::InvalidNumber,
            "too_long" => SkipReason::TooLong,
            other => SkipReason::Missing { key: other.strip_prefix("missing:")?.to_owned() },
        })
    }
}

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Pending,
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
    Skipped,
    Cancelled,
}

/// How many recipients a page of a broadcast's results shows.
pub const BROADCAST_RECIPIENT_PAGE: u32 = 50;

/// One recipient of a broadcast, for its results list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastRecipient {
    /// As given (an invalid number stays as it was written).
    pub phone: String,
    pub name: Option<String>,
    pub state: RecipientState,
    pub skipped: Option<SkipReason>,
    /// Why sending failed.
    pub error: Option<String>,
    pub message_id: Option<crate::MessageId>,
}

/// What a draft's audience and message come to, before it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudiencePreview {
    /// Different numbers in the audience.
    pub total: i64,
    pub opted_out: i64,
    pub invalid: i64,
    pub duplicates: i64,
    /// The message as the first few recipients would get it.
    pub samples: Vec<PreviewSample>,
}

impl AudiencePreview {
    /// Recipients it will send to (a variable without a value may still leave some out).
    pub fn sendable(&self) -> i64 {
        self.total - self.opted_out - self.invalid
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewSample {
    pub name: Option<String>,
    pub phone: String,
    pub text: Result<String, SkipReason>,
}

/// When and how much a workspace's numbers may send in broadcasts (interactive replies are never
/// held back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendingRules {
    /// An IANA time zone name (`Asia/Jakarta`), for the sending hours and the day of the cap.
    pub time_zone: String,
    /// Broadcasts send from this hour (0–23) …
    pub from_hour: u8,
    /// … until this hour (1–24), in the time zone. `0` and `24` mean all day.
    pub to_hour: u8,
    /// At most this many broadcast messages per number per day.
    pub daily_cap: u32,
}

impl Default for SendingRules {
    fn default() -> Self {
        Self { time_zone: "Asia/Jakarta".into(), from_hour: 0, to_hour: 24, daily_cap: 5_000 }
    }
}

impl SendingRules {
    pub const MAX_DAILY_CAP: u32 = 100_000;

    /// Checks the hours and the cap (the time zone is checked by the server, which knows them).
    pub fn checked(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.from_hour > 23 || self.to_hour > 24 || self.to_hour == 0 || self.from_hour >= self.to_hour {
            errors.push(FieldError::new(Field::Hours, Issue::OutOfRange { min: 0, max: 24 }));
        }
        if self.daily_cap == 0 || self.daily_cap > Self::MAX_DAILY_CAP {
            let max = i64::from(Self::MAX_DAILY_CAP);
            errors.push(FieldError::new(Field::DailyCap, Issue::OutOfRange { min: 1, max }));
        }
        if self.time_zone.trim().is_empty() {
            errors.push(FieldError::new(Field::TimeZone, Issue::Required));
        }
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }

    /// Whether `hour` (0–23, local) is within the sending hours.
    pub fn allows_hour(&self, hour: u8) -> bool {
        hour >= self.from_hour && hour < self.to_hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContactId, PhoneNumber};

    fn contact(name: Option<&str>) -> Contact {
        Contact {
            id: ContactId(1),
            workspace_id: WorkspaceId(1),
            phone: PhoneNumber::parse("+6281234567890").unwrap(),
            name: name.map(str::to_owned),
            email: None,
            opted_out_at: None,
            labels: vec![],
            created_at: Timestamp(0),
            last_message_at: None,
            attributes: [("tier".to_owned(), "Gold".to_owned())].into(),
        }
    }

    #[test]
    fn templates_render_values_fallbacks_and_rules() {
        let t = Template::parse("Hi {{ first_name | Kak }}, your tier is {{tier}} ({{phone}})", &["tier"]).unwrap();
        assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["first_name", "phone", "tier"]);
        let ana = contact(Some("Ana Putri"));
        let text = t.render(|k| contact_variable(&ana, k), &MissingRule::Skip).unwrap();
        assert_eq!(text, "Hi Ana, your tier is Gold (+6281234567890)");
        let nameless = contact(None);
        let text = t.render(|k| contact_variable(&nameless, k), &MissingRule::Skip).unwrap();
        assert_eq!(text, "Hi Kak, your tier is Gold (+6281234567890)");

        let t = Template::parse("Hi {{name}}", &[]).unwrap();
        assert_eq!(
            t.render(|k| contact_variable(&nameless, k), &MissingRule::Skip),
            Err(SkipReason::Missing { key: "name".into() })
        );
        let rule = MissingRule::Fallback { text: "there".into() };
        assert_eq!(t.render(|k| contact_variable(&nameless, k), &rule).unwrap(), "Hi there");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let issue = |raw: &str| Template::parse(raw, &["tier"]).unwrap_err().issue;
        assert_eq!(issue("Hi {{nickname}}"), Issue::UnknownVariable);
        assert_eq!(issue("Hi {{name"), Issue::BadPlaceholder);
        assert_eq!(issue("Hi {{Name}}"), Issue::BadPlaceholder);
        assert_eq!(issue("Hi {{}}"), Issue::BadPlaceholder);
        assert_eq!(issue("Hi name}}"), Issue::BadPlaceholder);
        assert_eq!(issue("   "), Issue::Required);
        assert_eq!(issue(&"x".repeat(4097)), Issue::TooLong { max: 4096 });
        assert_eq!(Template::parse_any("{{x}} {{tier}}").unwrap().unknown_variables(&["tier"]), ["x"]);
    }

    #[test]
    fn a_rendered_text_over_the_limit_is_skipped() {
        let t = Template::parse(&format!("{}{{{{name}}}}", "x".repeat(4085)), &[]).unwrap();
        let long = contact(Some("Ananda Putri"));
        assert_eq!(t.render(|k| contact_variable(&long, k), &MissingRule::Skip), Err(SkipReason::TooLong));
    }

    #[test]
    fn lists_take_the_first_column_and_drop_a_header() {
        let phones = list_phones("phone,name\n+62 812 1,Ana\n\n\"0812-2\";Budi\n");
        assert_eq!(phones, ["+62 812 1", "0812-2"]);
        assert_eq!(list_phones("+62811\n+62812"), ["+62811", "+62812"]);
    }

    #[test]
    fn sending_rules_check_hours_and_cap() {
        assert!(SendingRules::default().checked().is_ok());
        let rules = SendingRules { from_hour: 20, to_hour: 8, daily_cap: 0, ..SendingRules::default() };
        let errors = rules.checked().unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field).collect::<Vec<_>>(), [Field::Hours, Field::DailyCap]);
        let office = SendingRules { from_hour: 8, to_hour: 20, ..SendingRules::default() };
        assert!(office.allows_hour(8) && office.allows_hour(19) && !office.allows_hour(20) && !office.allows_hour(3));
    }

    #[test]
    fn skip_reasons_round_trip_their_codes() {
        for reason in [
            SkipReason::OptedOut,
            SkipReason::InvalidNumber,
            SkipReason::TooLong,
            SkipReason::Missing { key: "tier".into() },
        ] {
            assert_eq!(SkipReason::from_code(&reason.code()), Some(reason));
        }
    }
}
