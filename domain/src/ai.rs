//! The AI agent: a workspace's provider settings, each channel's AI profile (its prompt and how it
//! answers), the profile's saved versions, and the token use the monthly cap is checked against.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ConversationId, Field, FieldError, Issue, PhoneNumber, Timestamp, check_url};

/// When a channel's AI answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AiActive {
    Always,
    /// Only outside business hours, `from_hour` (0–23) to `to_hour` (1–24) in the workspace's
    /// time zone (the one of its sending rules).
    OutsideHours {
        from_hour: u8,
        to_hour: u8,
    },
}

impl AiActive {
    /// Whether the AI answers at `hour` (0–23, local).
    pub fn answers_at(self, hour: u8) -> bool {
        match self {
            AiActive::Always => true,
            AiActive::OutsideHours { from_hour, to_hour } => hour < from_hour || hour >= to_hour,
        }
    }
}

/// How a channel's AI answers: what an admin edits on the AI agent page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiProfile {
    /// The system prompt: who the AI is, what it knows, how it speaks.
    pub prompt: String,
    /// The model; empty for the workspace's default.
    #[serde(default)]
    pub model: String,
    /// 0.0–2.0.
    pub temperature: f32,
    /// The longest answer, in tokens.
    pub max_tokens: u32,
    /// How many recent messages of the conversation it reads.
    pub history: u32,
    pub active: AiActive,
    /// The languages it answers in (`Indonesian`, `English`); empty: the customer's.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Words that hand the conversation to a human at once (`agent`, `manusia`), matched
    /// case-insensitively in the customer's messages.
    #[serde(default)]
    pub handover_keywords: Vec<String>,
    /// How long it waits after a customer's last message before it answers (their burst).
    pub settle_ms: u32,
}

impl Default for AiProfile {
    fn default() -> Self {
        Self {
            prompt: "You are the friendly customer-service assistant of our shop. Answer briefly and \
                     politely. If you cannot help, or the customer asks for a person, hand over to a human."
                .into(),
            model: String::new(),
            temperature: 0.3,
            max_tokens: 400,
            history: 12,
            active: AiActive::Always,
            languages: vec![],
            handover_keywords: vec!["human".into(), "agent".into(), "manusia".into()],
            settle_ms: 3_000,
        }
    }
}

impl AiProfile {
    pub const MAX_PROMPT: usize = 8_000;
    pub const MAX_SETTLE_MS: u32 = 60_000;

    /// Checks every field; the trimmed, de-duplicated profile, or every error.
    pub fn checked(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.prompt = self.prompt.trim().to_owned();
        if self.prompt.is_empty() {
            errors.push(FieldError::new(Field::Prompt, Issue::Required));
        } else if self.prompt.chars().count() > Self::MAX_PROMPT {
            errors.push(FieldError::new(Field::Prompt, Issue::TooLong { max: Self::MAX_PROMPT }));
        }
        self.model = self.model.trim().to_owned();
        if let Err(error) = check_model(&self.model, false) {
            errors.push(error);
        }
        if !(0.0..=2.0).contains(&self.temperature) || self.temperature.is_nan() {
            errors.push(FieldError::new(Field::Temperature, Issue::OutOfRange { min: 0, max: 2 }));
        }
        if !(16..=8_192).contains(&self.max_tokens) {
            errors.push(FieldError::new(Field::MaxTokens, Issue::OutOfRange { min: 16, max: 8_192 }));
        }
        if !(1..=50).contains(&self.history) {
            errors.push(FieldError::new(Field::History, Issue::OutOfRange { min: 1, max: 50 }));
        }
        if let AiActive::OutsideHours { from_hour, to_hour } = self.active
            && (from_hour > 23 || to_hour > 24 || from_hour >= to_hour)
        {
            errors.push(FieldError::new(Field::Hours, Issue::OutOfRange { min: 0, max: 24 }));
        }
        if self.settle_ms > Self::MAX_SETTLE_MS {
            errors.push(FieldError::new(Field::Settle, Issue::OutOfRange { min: 0, max: 60 }));
        }
        match words(&self.languages, Field::Languages) {
            Ok(list) => self.languages = list,
            Err(error) => errors.push(error),
        }
        match words(&self.handover_keywords, Field::Keywords) {
            Ok(list) => self.handover_keywords = list,
            Err(error) => errors.push(error),
        }
        if errors.is_empty() { Ok(self) } else { Err(errors) }
    }

    /// The handover keyword found in `text`, if any (whole words, any case).
    pub fn keyword_in(&self, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        self.handover_keywords.iter().map(String::as_str).find(|k| {
            let k_words: Vec<&str> = k.split_whitespace().collect();
            !k_words.is_empty() && words.windows(k_words.len()).any(|w| w == k_words.as_slice())
        })
    }

    /// The system prompt as the model gets it: the admin's, then the languages to answer in.
    pub fn system_prompt(&self) -> String {
        match self.languages.as_slice() {
            [] => self.prompt.clone(),
            languages => format!(
                "{}\n\nAnswer only in {}. Use the customer's language when it is one of these.",
                self.prompt,
                languages.join(" or ")
            ),
        }
    }
}

/// A short list of words or phrases, lower-cased, trimmed and de-duplicated: at most 20, of at
/// most 40 characters each.
fn words(list: &[String], field: Field) -> Result<Vec<String>, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for word in list {
        let word = word.trim().to_lowercase();
        if word.is_empty() || out.contains(&word) {
            continue;
        }
        if word.chars().count() > 40 {
            return Err(FieldError::new(field, Issue::TooLong { max: 40 }));
        }
        if word.chars().any(char::is_control) {
            return Err(FieldError::new(field, Issue::ControlCharacters));
        }
        out.push(word);
    }
    if out.len() > 20 {
        return Err(FieldError::new(field, Issue::TooMany { max: 20 }));
    }
    Ok(out)
}

/// A model name: up to 100 characters of letters, digits and `-_.:/@`; `required` or empty.
pub fn check_model(model: &str, required: bool) -> Result<(), FieldError> {
    if model.is_empty() {
        return if required { Err(FieldError::new(Field::Model, Issue::Required)) } else { Ok(()) };
    }
    if model.chars().count() > 100 {
        return Err(FieldError::new(Field::Model, Issue::TooLong { max: 100 }));
    }
    if !model.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c)) {
        return Err(FieldError::new(Field::Model, Issue::NotAllowed));
    }
    Ok(())
}

/// A workspace's provider, as admins see it: the key itself is never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiSettings {
    /// The API's base URL (`https://api.openai.com/v1`, or any compatible server).
    pub base_url: String,
    /// Whether a key is saved, and its last four characters.
    pub key_hint: Option<String>,
    /// The default model.
    pub model: String,
    /// Tokens the workspace's AI may use a month (0: no cap).
    pub monthly_token_cap: i64,
}

impl AiSettings {
    /// Checks what an admin saves. `key` is the new key (empty: keep the saved one; `had_key`
    /// tells whether there is one to keep).
    pub fn check(base_url: &str, key: &str, had_key: bool, model: &str, cap: i64) -> Result<String, Vec<FieldError>> {
        let mut errors = Vec::new();
        let url = check_url(Field::Url, base_url).map_err(|e| errors.push(e)).unwrap_or_default();
        let key = key.trim();
        if key.is_empty() && !had_key {
            errors.push(FieldError::new(Field::Token, Issue::Required));
        } else if key.chars().count() > 500 {
            errors.push(FieldError::new(Field::Token, Issue::TooLong { max: 500 }));
        } else if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            errors.push(FieldError::new(Field::Token, Issue::ControlCharacters));
        }
        if let Err(error) = check_model(model.trim(), true) {
            errors.push(error);
        }
        if !(0..=1_000_000_000_000).contains(&cap) {
            errors.push(FieldError::new(Field::TokenCap, Issue::OutOfRange { min: 0, max: 1_000_000_000_000 }));
        }
        if errors.is_empty() { Ok(url.trim_end_matches('/').to_owned()) } else { Err(errors) }
    }
}

/// A channel's AI: whether it answers, and its current profile and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiChannel {
    pub channel_id: ChannelId,
    pub channel_name: String,
    pub enabled: bool,
    /// 0 until the profile is first saved (then the default profile is shown).
    pub version: i64,
    pub profile: AiProfile,
}

/// A saved version of a channel's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiProfileVersion {
    pub version: i64,
    pub profile: AiProfile,
    /// What changed, in short (`prompt, temperature`), or `reverted to 3`.
    pub note: String,
    pub changed_by: Option<String>,
    pub changed_at: Timestamp,
}

impl AiProfileVersion {
    /// The fields that differ between two profiles, as a short note.
    pub fn changes(before: &AiProfile, after: &AiProfile) -> String {
        let mut changed = Vec::new();
        let mut check = |name: &'static str, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check("prompt", before.prompt != after.prompt);
        check("model", before.model != after.model);
        check("temperature", before.temperature != after.temperature);
        check("max tokens", before.max_tokens != after.max_tokens);
        check("history", before.history != after.history);
        check("active", before.active != after.active);
        check("languages", before.languages != after.languages);
        check("handover keywords", before.handover_keywords != after.handover_keywords);
        check("settle", before.settle_ms != after.settle_ms);
        if changed.is_empty() { "no change".into() } else { changed.join(", ") }
    }
}

/// The workspace's token use this month, against its cap, and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiUsage {
    pub tokens: i64,
    /// 0: no cap.
    pub cap: i64,
    /// The conversations that used the most tokens this month, most first (at most
    /// [`AiUsage::TOP`]).
    #[serde(default)]
    pub top: Vec<AiConversationUsage>,
}

impl AiUsage {
    /// How many conversations [`AiUsage::top`] lists.
    pub const TOP: usize = 5;

    pub fn reached(&self) -> bool {
        self.cap > 0 && self.tokens >= self.cap
    }
}

/// One conversation's token use this month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiConversationUsage {
    pub conversation_id: ConversationId,
    pub contact_phone: PhoneNumber,
    pub contact_name: Option<String>,
    pub channel_name: String,
    pub tokens: i64,
}

/// What the AI did when tried in the playground: its answer, and the tools it called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiTrial {
    pub answer: Option<String>,
    pub tool_calls: Vec<AiToolCall>,
    pub tokens: i64,
    /// Why there is no answer, when the provider failed (the conversation would be handed over).
    #[serde(default)]
    pub error: Option<String>,
}

/// A tool the model called, with its arguments (JSON) and what Balas did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiToolCall {
    pub name: String,
    pub arguments: String,
    pub result: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_checked_field_by_field() {
        let profile = AiProfile {
            languages: vec![" Indonesian ".into(), "indonesian".into(), "".into()],
            handover_keywords: vec!["Talk to Human".into()],
            ..AiProfile::default()
        }
        .checked()
        .unwrap();
        assert_eq!(profile.languages, ["indonesian"]);
        assert_eq!(profile.keyword_in("Can I TALK to human, please?"), Some("talk to human"));
        assert_eq!(profile.keyword_in("humane talk"), None);
        assert!(
            profile
                .system_prompt()
                .ends_with("Answer only in indonesian. Use the customer's language when it is one of these.")
        );
        let bad = AiProfile {
            prompt: " ".into(),
            model: "gpt 4".into(),
            temperature: 2.5,
            max_tokens: 1,
            history: 0,
            active: AiActive::OutsideHours { from_hour: 17, to_hour: 8 },
            settle_ms: 61_000,
            ..AiProfile::default()
        };
        let fields: Vec<Field> = bad.checked().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                Field::Prompt,
                Field::Model,
                Field::Temperature,
                Field::MaxTokens,
                Field::History,
                Field::Hours,
                Field::Settle
            ]
        );
    }

    #[test]
    fn outside_hours_means_before_or_after_them() {
        let active = AiActive::OutsideHours { from_hour: 8, to_hour: 17 };
        assert!(active.answers_at(7) && active.answers_at(17) && active.answers_at(23));
        assert!(!active.answers_at(8) && !active.answers_at(16));
        assert!(AiActive::Always.answers_at(12));
    }

    #[test]
    fn settings_need_a_url_a_key_once_and_a_model() {
        assert_eq!(
            AiSettings::check("https://x.test/v1/", "sk-1", false, "gpt-4o-mini", 0),
            Ok("https://x.test/v1".into())
        );
        assert!(AiSettings::check("https://x.test/v1", "", true, "m", 10).is_ok(), "the saved key is kept");
        let fields: Vec<Field> =
            AiSettings::check("x", "", false, "", -1).unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, [Field::Url, Field::Token, Field::Model, Field::TokenCap]);
        let usage = |tokens, cap| AiUsage { tokens, cap, top: vec![] };
        assert!(usage(10, 10).reached() && !usage(10, 0).reached() && !usage(9, 10).reached());
    }
}
