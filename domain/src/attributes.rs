//! Custom attributes: the fields a workspace adds to its contacts (a birthday, a city, a customer
//! tier), each of a kind that every write is checked against, and the filter on one of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Field, FieldError, Issue, LabelName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttributeId(pub i64);

/// What an attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// One line, up to [`Attribute::MAX_TEXT`] characters.
    Text,
    /// A decimal number.
    Number,
    /// A calendar day, kept as `YYYY-MM-DD`.
    Date,
    /// Kept as `yes` or `no`.
    YesNo,
    /// One of the attribute's options.
    OneOf,
}

impl AttributeKind {
    pub const ALL: [AttributeKind; 5] =
        [AttributeKind::Text, AttributeKind::Number, AttributeKind::Date, AttributeKind::YesNo, AttributeKind::OneOf];

    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Text => "text",
            AttributeKind::Number => "number",
            AttributeKind::Date => "date",
            AttributeKind::YesNo => "yes_no",
            AttributeKind::OneOf => "one_of",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw.trim())
            .ok_or(FieldError::new(Field::AttributeKind, Issue::NotAllowed))
    }

    /// Whether values of this kind are ordered (a filter may ask for at least or at most).
    pub fn ordered(self) -> bool {
        matches!(self, AttributeKind::Number | AttributeKind::Date)
    }
}

/// An attribute's key: how imports, exports, the API and message variables (`{{city}}`) name it.
/// 1 to 32 of `a-z`, `0-9` and `_`, starting with a letter; it never changes once created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttributeKey(String);

/// Keys that name a contact's own fields, which an attribute may not take.
const RESERVED_KEYS: [&str; 8] =
    ["phone", "name", "email", "labels", "opted_out", "created_at", "last_message_at", "id"];

impl AttributeKey {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let key = raw.trim();
        let error = |issue| Err(FieldError::new(Field::AttributeKey, issue));
        if key.is_empty() {
            return error(Issue::Required);
        }
        if key.len() > Self::MAX_CHARS {
            return error(Issue::TooLong { max: Self::MAX_CHARS });
        }
        let well_formed = key.starts_with(|c: char| c.is_ascii_lowercase())
            && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return error(Issue::InvalidKey);
        }
        if RESERVED_KEYS.contains(&key) {
            return error(Issue::Taken);
        }
        Ok(Self(key.to_owned()))
    }

    /// The key a display name suggests: "Customer tier" → `customer_tier`.
    pub fn suggest(name: &str) -> String {
        let mut key = String::new();
        for c in name.trim().to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                key.push(c);
            } else if !key.is_empty() && !key.ends_with('_') {
                key.push('_');
            }
        }
        let key = key.trim_matches('_').trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
        key.chars().take(Self::MAX_CHARS).collect::<String>().trim_end_matches('_').to_owned()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(AttributeKey);

/// A workspace's definition of an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub id: AttributeId,
    pub key: AttributeKey,
    /// What people read: "Customer tier".
    pub name: LabelName,
    pub kind: AttributeKind,
    /// The choices of a one-of-a-list attribute (empty for the other kinds).
    pub options: Vec<String>,
}

impl Attribute {
    /// The longest text value.
    pub const MAX_TEXT: usize = 200;
    /// The most options a list may have, and the longest option.
    pub const MAX_OPTIONS: usize = 50;
    pub const MAX_OPTION_CHARS: usize = 40;

    /// A list's options from what an admin typed (one per line, or comma-separated): each on one
    /// line, unique in any case; at least one and at most [`Attribute::MAX_OPTIONS`]. Other kinds
    /// take none.
    pub fn parse_options(kind: AttributeKind, raw: &str) -> Result<Vec<String>, FieldError> {
        let error = |issue| Err(FieldError::new(Field::AttributeOptions, issue));
        let mut options: Vec<String> = Vec::new();
        for option in raw.split(['\n', ',']).map(str::trim).filter(|o| !o.is_empty()) {
            let option = crate::validate::single_line(Field::AttributeOptions, option, Self::MAX_OPTION_CHARS)?;
            if options.iter().any(|o| o.to_lowercase() == option.to_lowercase()) {
                return error(Issue::Duplicate);
            }
            options.push(option);
        }
        match kind {
            AttributeKind::OneOf if options.is_empty() => error(Issue::Required),
            AttributeKind::OneOf if options.len() > Self::MAX_OPTIONS => {
                error(Issue::TooMany { max: Self::MAX_OPTIONS })
            }
            AttributeKind::OneOf => Ok(options),
            _ => Ok(Vec::new()),
        }
    }

    /// A value as a person wrote it, checked and in its stored form; `None` for an empty value
    /// (which clears the attribute).
    pub fn value(&self, raw: &str) -> Result<Option<String>, Issue> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let value = match self.kind {
            AttributeKind::Text => {
                crate::validate::single_line(Field::Attribute, raw, Self::MAX_TEXT).map_err(|e| e.issue)?
            }
            AttributeKind::Number => format_number(parse_number(raw).ok_or(Issue::InvalidNumber)?),
            AttributeKind::Date => parse_date(raw).ok_or(Issue::InvalidDate)?,
            AttributeKind::YesNo => if parse_yes_no(raw).ok_or(Issue::InvalidYesNo)? { "yes" } else { "no" }.to_owned(),
            AttributeKind::OneOf => {
                let wanted = raw.to_lowercase();
                self.options.iter().find(|o| o.to_lowercase() == wanted).ok_or(Issue::NotAllowed)?.clone()
            }
        };
        Ok(Some(value))
    }

    /// A stored value as a number, for a number attribute (kept beside the text to compare).
    pub fn number(&self, value: &str) -> Option<f64> {
        (self.kind == AttributeKind::Number).then(|| parse_number(value)).flatten()
    }
}

/// A contact's attribute values, by key, in their stored form.
pub type AttributeValues = BTreeMap<String, String>;

/// A checked value for an attribute (`None` clears it).
pub type CheckedValue = (AttributeId, Option<String>);
/// An attribute's key and what is wrong with the value given for it.
pub type AttributeProblem = (String, Issue);

/// Checks a contact's attribute values as a person wrote them (key → text) against the
/// workspace's definitions. An empty value clears the attribute. Every problem is reported, as
/// `Field::Attribute` with the key beside it.
pub fn check_attributes(
    definitions: &[Attribute],
    raw: &BTreeMap<String, String>,
) -> Result<Vec<CheckedValue>, Vec<AttributeProblem>> {
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for (key, raw) in raw {
        match definitions.iter().find(|d| d.key.as_str() == key) {
            None => problems.push((key.clone(), Issue::UnknownAttribute)),
            Some(definition) => match definition.value(raw) {
                Ok(value) => values.push((definition.id, value)),
                Err(issue) => problems.push((key.clone(), issue)),
            },
        }
    }
    if problems.is_empty() { Ok(values) } else { Err(problems) }
}

/// yes/no, true/false, 1/0, y/n, ya/tidak, in any case.
pub fn parse_yes_no(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "ya" => Some(true),
        "no" | "n" | "false" | "0" | "tidak" => Some(false),
        _ => None,
    }
}

/// A decimal number with a `.` (or a `,`, the Indonesian way) before its fraction; no
/// thousands separators, at most 15 significant digits' worth.
fn parse_number(raw: &str) -> Option<f64> {
    let text = raw.trim().replace(',', ".");
    let plain = text.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
    let number: f64 = if plain && text.matches('.').count() <= 1 { text.parse().ok()? } else { return None };
    (number.is_finite() && number.abs() < 1e15).then_some(number)
}

fn format_number(number: f64) -> String {
    let text = format!("{number}");
    if text == "-0" { "0".to_owned() } else { text }
}

/// A calendar day written `YYYY-MM-DD` or `DD/MM/YYYY` (the way Indonesia writes it), as
/// `YYYY-MM-DD`; the day must exist.
pub fn parse_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let parts: Vec<&str> = raw.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else { return None };
    let (year, month, day) = if a.len() == 4 {
        (*a, *b, *c)
    } else if c.len() == 4 {
        (*c, *b, *a)
    } else {
        return None;
    };
    let digits = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.chars().all(|c| c.is_ascii_digit())).then(|| s.parse::<u32>().ok())?
    };
    let (year, month, day) = (digits(year, 4)?, digits(month, 2)?, digits(day, 2)?);
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1000..=9999).contains(&year) && (1..=days_in_month).contains(&day))
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// How a filter compares an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeOp {
    /// Equal (for text: contains, in any case).
    #[default]
    Is,
    /// At least (numbers and dates).
    AtLeast,
    /// At most (numbers and dates).
    AtMost,
    /// Has a value.
    Set,
    /// Has no value.
    Unset,
}

impl AttributeOp {
    pub const ALL: [AttributeOp; 5] =
        [AttributeOp::Is, AttributeOp::AtLeast, AttributeOp::AtMost, AttributeOp::Set, AttributeOp::Unset];

    pub fn as_str(self) -> &'static str {
        match self {
            AttributeOp::Is => "is",
            AttributeOp::AtLeast => "at_least",
            AttributeOp::AtMost => "at_most",
            AttributeOp::Set => "set",
            AttributeOp::Unset => "unset",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }

    /// Whether the comparison needs a value.
    pub fn takes_value(self) -> bool {
        !matches!(self, AttributeOp::Set | AttributeOp::Unset)
    }
}

/// The contacts whose attribute compares so with a value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttributeFilter {
    pub attribute: AttributeId,
    #[serde(default)]
    pub op: AttributeOp,
    /// The value to compare with, in its stored form once checked.
    #[serde(default)]
    pub value: String,
}

impl AttributeFilter {
    /// The filter with its value in stored form, checked against the attribute's definition.
    pub fn checked(&self, definition: &Attribute) -> Result<AttributeFilter, FieldError> {
        let error = |issue| FieldError::new(Field::Attribute, issue);
        if matches!(self.op, AttributeOp::AtLeast | AttributeOp::AtMost) && !definition.kind.ordered() {
            return Err(error(Issue::NotAllowed));
        }
        let value = if !self.op.takes_value() {
            String::new()
        } else if definition.kind == AttributeKind::Text {
            crate::validate::single_line(Field::Attribute, &self.value, Attribute::MAX_TEXT)?.to_lowercase()
        } else {
            definition.value(&self.value).map_err(error)?.ok_or(error(Issue::Required))?
        };
        Ok(AttributeFilter { attribute: definition.id, op: self.op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(kind: AttributeKind, options: &[&str]) -> Attribute {
        Attribute {
            id: AttributeId(1),
            key: AttributeKey::parse("x").unwrap(),
            name: LabelName::parse("X").unwrap(),
            kind,
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn keys_are_lower_case_words() {
        assert!(AttributeKey::parse("customer_tier").is_ok());
        assert_eq!(AttributeKey::parse("Tier").unwrap_err().issue, Issue::InvalidKey);
        assert_eq!(AttributeKey::parse("1st").unwrap_err().issue, Issue::InvalidKey);
        assert_eq!(AttributeKey::parse("phone").unwrap_err().issue, Issue::Taken);
        assert_eq!(AttributeKey::parse(&"k".repeat(33)).unwrap_err().issue, Issue::TooLong { max: 32 });
        assert_eq!(AttributeKey::suggest("Customer tier (2026)"), "customer_tier_2026");
        assert_eq!(AttributeKey::suggest("  Kota / City "), "kota_city");
    }

    #[test]
    fn values_are_checked_by_kind() {
        let number = attribute(AttributeKind::Number, &[]);
        assert_eq!(number.value(" 12,50 "), Ok(Some("12.5".into())));
        assert_eq!(number.value("-3"), Ok(Some("-3".into())));
        assert_eq!(number.value("1.000.000"), Err(Issue::InvalidNumber));
        assert_eq!(number.value("12 kg"), Err(Issue::InvalidNumber));
        assert_eq!(number.value(""), Ok(None));
        let date = attribute(AttributeKind::Date, &[]);
        assert_eq!(date.value("2024-02-29"), Ok(Some("2024-02-29".into())));
        assert_eq!(date.value("7/3/1990"), Ok(Some("1990-03-07".into())));
        assert_eq!(date.value("2023-02-29"), Err(Issue::InvalidDate));
        assert_eq!(date.value("03/1990"), Err(Issue::InvalidDate));
        let yes_no = attribute(AttributeKind::YesNo, &[]);
        assert_eq!(yes_no.value("Ya"), Ok(Some("yes".into())));
        assert_eq!(yes_no.value("maybe"), Err(Issue::InvalidYesNo));
        let tier = attribute(AttributeKind::OneOf, &["Gold", "Silver"]);
        assert_eq!(tier.value("gold"), Ok(Some("Gold".into())));
        assert_eq!(tier.value("Bronze"), Err(Issue::NotAllowed));
        let text = attribute(AttributeKind::Text, &[]);
        assert_eq!(text.value(&"t".repeat(201)), Err(Issue::TooLong { max: 200 }));
    }

    #[test]
    fn import_headers_prefer_keys_then_fields_then_names() {
        use crate::{ImportColumn, ImportField};
        let mut work_email = attribute(AttributeKind::Text, &[]);
        work_email.key = AttributeKey::parse("email_kantor").unwrap();
        work_email.name = LabelName::parse("Email").unwrap();
        let mut city = attribute(AttributeKind::Text, &[]);
        city.key = AttributeKey::parse("city").unwrap();
        city.name = LabelName::parse("Kota").unwrap();
        let known = [work_email, city];
        assert_eq!(ImportColumn::guess("Email", &known), Some(ImportColumn::Field(ImportField::Email)));
        let key = |k: &str| Some(ImportColumn::Attribute(AttributeKey::parse(k).unwrap()));
        assert_eq!(ImportColumn::guess("email_kantor", &known), key("email_kantor"));
        assert_eq!(ImportColumn::guess("KOTA", &known), key("city"));
        assert_eq!(ImportColumn::guess("shoe", &known), None);
    }

    #[test]
    fn options_and_filters_are_checked() {
        assert_eq!(Attribute::parse_options(AttributeKind::OneOf, "Gold\nSilver, Bronze").unwrap().len(), 3);
        assert_eq!(Attribute::parse_options(AttributeKind::OneOf, "Gold\ngold").unwrap_err().issue, Issue::Duplicate);
        assert_eq!(Attribute::parse_options(AttributeKind::OneOf, " ").unwrap_err().issue, Issue::Required);
        assert_eq!(Attribute::parse_options(AttributeKind::Text, "ignored"), Ok(vec![]));
        let text = attribute(AttributeKind::Text, &[]);
        let at_least = AttributeFilter { attribute: AttributeId(1), op: AttributeOp::AtLeast, value: "a".into() };
        assert_eq!(at_least.checked(&text).unwrap_err().issue, Issue::NotAllowed);
        let date = attribute(AttributeKind::Date, &[]);
        let since = AttributeFilter { value: "1/2/2020".into(), ..at_least };
        assert_eq!(since.checked(&date).unwrap().value, "2020-02-01");
        let mut raw = BTreeMap::new();
        raw.insert("x".to_owned(), "soon".to_owned());
        raw.insert("nope".to_owned(), "1".to_owned());
        let problems = check_attributes(&[date], &raw).unwrap_err();
        assert_eq!(problems, [("nope".to_owned(), Issue::UnknownAttribute), ("x".to_owned(), Issue::InvalidDate)]);
    }
}
