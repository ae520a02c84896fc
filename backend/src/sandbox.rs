//! Simulated customers on the sandbox network: what the customer-phone page and the sandbox API
//! may do. Everything here answers `NotFound` unless the sandbox is enabled.

use balas_bus::SandboxSent;
use balas_domain::{AppError, Field, FieldError, Issue, MessageText, PhoneNumber, Provider, SandboxChannel};

use crate::messaging::new_wa_id;
use crate::{AppState, from_store, internal, now};

fn enabled(state: &AppState) -> Result<(), AppError> {
    if state.settings.sandbox { Ok(()) } else { Err(AppError::NotFound) }
}

/// Parses two numbers, reporting both problems at once.
fn numbers(first: (&str, Field), second: (&str, Field)) -> Result<(PhoneNumber, PhoneNumber), AppError> {
    let parse = |(raw, field): (&str, Field)| PhoneNumber::parse(raw).map_err(|e| FieldError::new(field, e.issue));
    match (parse(first), parse(second)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(AppError::Invalid { errors: a.err().into_iter().chain(b.err()).collect() }),
    }
}

/// Every sandbox channel, by name.
pub async fn channels(state: &AppState) -> Result<Vec<SandboxChannel>, AppError> {
    enabled(state)?;
    let mut list: Vec<SandboxChannel> = state
        .store
        .all_channels()
        .await
        .map_err(from_store)?
        .into_iter()
        .filter(|c| c.provider == Provider::Sandbox)
        .map(|c| SandboxChannel { name: c.name, phone: c.phone })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// A simulated customer sends a text; returns its WhatsApp id.
pub async fn customer_send(state: &AppState, from: &str, to: &str, text: &str) -> Result<String, AppError> {
    enabled(state)?;
    let (from, to) = numbers((from, Field::Phone), (to, Field::Channel))?;
    let text = MessageText::parse(text).map_err(AppError::invalid)?;
    let wa_id = new_wa_id();
    let rules = state.settings.sandbox_rules();
    match state.bus.sandbox_send(rules, None, &from, &to, &wa_id, text.as_str(), now()).await.map_err(internal)? {
        SandboxSent::Delivered | SandboxSent::Duplicate => Ok(wa_id),
        SandboxSent::Banned { until } => Err(AppError::TooManyAttempts {
            retry_after_secs: u64::try_from(until.0.saturating_sub(now().0) / 1000).unwrap_or(0),
            locked: false,
        }),
        // The number belongs to a channel: a customer cannot use it.
        SandboxSent::Replaced => Err(AppError::invalid(FieldError::new(Field::Phone, Issue::Taken))),
    }
}

pub async fn customer_typing(state: &AppState, from: &str, to: &str, typing: bool) -> Result<(), AppError> {
    enabled(state)?;
    let (from, to) = numbers((from, Field::Phone), (to, Field::Channel))?;
    state.bus.sandbox_typing(&from, &to, typing, now()).await.map_err(internal)
}

/// `reader` read the messages `wa_ids` that `sender` sent them: the sender gets read receipts.
pub async fn customer_read(state: &AppState, reader: &str, sender: &str, wa_ids: &[String]) -> Result<(), AppError> {
    enabled(state)?;
    let (reader, sender) = numbers((reader, Field::Phone), (sender, Field::Channel))?;
    if wa_ids.is_empty() || wa_ids.len() > 1000 || wa_ids.iter().any(|id| id.is_empty() || id.len() > 128) {
        return Err(AppError::invalid(FieldError::new(Field::Text, Issue::OutOfRange { min: 1, max: 1000 })));
    }
    state.bus.sandbox_mark_read(&reader, &sender, wa_ids, now()).await.map_err(internal)
}
