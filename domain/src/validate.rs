use serde::{Deserialize, Serialize};

/// The input field a validation problem belongs to, so that a form can show it next to that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    WorkspaceName,
    Name,
    Email,
    Password,
    CurrentPassword,
    NewPassword,
    Role,
    Locale,
    Token,
    Phone,
    Text,
    Channel,
    RateLimit,
    Search,
    Shortcut,
    Assignee,
    Status,
    /// A file to send.
    File,
    /// A label's colour.
    Color,
    /// Contacts chosen in a list.
    Contacts,
    /// A number of days.
    Days,
    /// A contact's custom attribute (its value).
    Attribute,
    /// An attribute definition's key, kind and list of options.
    AttributeKey,
    AttributeKind,
    AttributeOptions,
    /// Stop keywords.
    Keywords,
    /// Who a broadcast goes to.
    Audience,
    /// When a broadcast starts.
    Schedule,
    /// The text put in place of a variable without a value.
    Fallback,
    /// A workspace's time zone, sending hours and daily cap per number.
    TimeZone,
    Hours,
    DailyCap,
    /// An API key's scopes.
    Scopes,
    /// A webhook's URL and events.
    Url,
    Events,
    /// The AI agent's prompt and settings, and the workspace's monthly token cap.
    Prompt,
    Model,
    Temperature,
    MaxTokens,
    History,
    Languages,
    Settle,
    TokenCap,
}

/// What is wrong with a field. The UI turns it into a sentence in the user's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Issue {
    Required,
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    ControlCharacters,
    InvalidEmail,
    /// Not one of the allowed values (an unknown role or language).
    NotAllowed,
    /// Already used by someone else (an email address).
    Taken,
    /// The new password is the same as the current one.
    Unchanged,
    /// Not a phone number in international form (+ country code, 8 to 15 digits).
    InvalidPhone,
    /// A number outside the allowed range.
    OutOfRange {
        min: i64,
        max: i64,
    },
    /// A file of a type WhatsApp does not send.
    FileType,
    /// A file over WhatsApp's size limit for its kind.
    FileTooLarge {
        max_mb: u32,
    },
    /// Not a key of lower-case letters, digits and `_` that starts with a letter.
    InvalidKey,
    /// The same entry twice in a list.
    Duplicate,
    /// More entries than a list may have.
    TooMany {
        max: usize,
    },
    InvalidNumber,
    /// Not a day that exists, written YYYY-MM-DD or DD/MM/YYYY.
    InvalidDate,
    InvalidYesNo,
    /// No attribute of the workspace has this key.
    UnknownAttribute,
    /// Still used (by contacts): it cannot be removed.
    InUse,
    /// A `{{variable}}` that is neither a contact field nor a custom attribute's key.
    UnknownVariable,
    /// A `{{` without its `}}`, or a placeholder that is not a key.
    BadPlaceholder,
    /// A time that has passed already.
    InPast,
    /// Nobody to send to (after opted-out and invalid numbers are left out).
    NoRecipients,
    /// Not possible in the current state (a finished broadcast cannot be paused).
    WrongState,
    /// Not an `http(s)://` URL (or one with credentials in it).
    InvalidUrl,
    /// A file to fetch from a URL did not come: the HTTP status, or 0 when nothing answered.
    DownloadFailed {
        status: u16,
    },
    /// An address on this machine or a private network, which this installation does not call.
    PrivateAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{field:?}: {issue:?}")]
pub struct FieldError {
    pub field: Field,
    pub issue: Issue,
}

impl FieldError {
    pub fn new(field: Field, issue: Issue) -> Self {
        Self { field, issue }
    }
}

/// Trims the text and checks it is a sensible single line: not empty, not longer than `max`
/// characters, and free of control characters (which break layouts and logs).
pub(crate) fn single_line(field: Field, raw: &str, max: usize) -> Result<String, FieldError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(FieldError::new(field, Issue::Required));
    }
    if text.chars().count() > max {
        return Err(FieldError::new(field, Issue::TooLong { max }));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(field, Issue::ControlCharacters));
    }
    Ok(text.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                single_line($field, raw, Self::MAX_CHARS).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_newtype!($name);
    };
}

text_type!(
    /// The name of a workspace (the business), 1 to 80 characters.
    WorkspaceName,
    Field::WorkspaceName,
    80
);
text_type!(
    /// A channel's display name, 1 to 60 characters.
    ChannelName,
    Field::Name,
    60
);
text_type!(
    /// A person's display name, 1 to 100 characters.
    PersonName,
    Field::Name,
    100
);

/// An email address, trimmed and lower-cased. The check is deliberately simple (one `@`, a dotted
/// domain, no spaces): the only real test of an address is sending to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = single_line(Field::Email, raw, Self::MAX_CHARS)?.to_lowercase();
        let invalid = || FieldError::new(Field::Email, Issue::InvalidEmail);
        let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || !domain_ok || text.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(Email);

/// A password that meets the policy: 10 to 128 characters, no control characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;

    /// Checks the policy for a new password, reporting problems against `field`.
    pub fn parse_new(field: Field, raw: &str) -> Result<Self, FieldError> {
        let count = raw.chars().count();
        if count == 0 {
            return Err(FieldError::new(field, Issue::Required));
        }
        if count < Self::MIN_CHARS {
            return Err(FieldError::new(field, Issue::TooShort { min: Self::MIN_CHARS }));
        }
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(field, Issue::TooLong { max: Self::MAX_CHARS }));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new(field, Issue::ControlCharacters));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Siti  ").unwrap().as_str(), "Siti");
        assert_eq!(PersonName::parse("   ").unwrap_err().issue, Issue::Required);
        let long = "a".repeat(PersonName::MAX_CHARS + 1);
        assert_eq!(PersonName::parse(&long).unwrap_err().issue, Issue::TooLong { max: PersonName::MAX_CHARS });
        assert_eq!(PersonName::parse("a\u{0}b").unwrap_err().issue, Issue::ControlCharacters);
        assert_eq!(WorkspaceName::parse("x\ny").unwrap_err().field, Field::WorkspaceName);
    }

    #[test]
    fn text_that_looks_like_markup_is_kept_verbatim() {
        let name = PersonName::parse("<script>alert(1)</script>'; DROP TABLE users;--").unwrap();
        assert_eq!(name.as_str(), "<script>alert(1)</script>'; DROP TABLE users;--");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["ana", "ana@", "@example.com", "ana@example", "a b@example.com", "ana@ex..com", "ana@.com"] {
            assert_eq!(Email::parse(bad).unwrap_err().issue, Issue::InvalidEmail, "{bad}");
        }
        assert_eq!(Email::parse("").unwrap_err().issue, Issue::Required);
    }

    #[test]
    fn password_policy() {
        assert!(Password::parse_new(Field::Password, "correct horse").is_ok());
        assert_eq!(
            Password::parse_new(Field::Password, "short").unwrap_err().issue,
            Issue::TooShort { min: Password::MIN_CHARS }
        );
        assert_eq!(
            Password::parse_new(Field::NewPassword, &"x".repeat(129)).unwrap_err(),
            FieldError::new(Field::NewPassword, Issue::TooLong { max: Password::MAX_CHARS })
        );
        assert_eq!(
            format!("{:?}", Password::parse_new(Field::Password, "secret-secret").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn serde_rejects_invalid_values() {
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Email>("\"a@b.co\"").is_ok());
    }
}
