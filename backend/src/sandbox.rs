//! Simulated customers on the sandbox network: what the customer-phone page and the sandbox API
//! may do. Everything here answers `NotFound` unless the sandbox is enabled.

use balas_bus::SandboxSent;
use balas_domain::{
    AppError, Attachment, Field, FieldError, Issue, Media, PhoneNumber, Provider, SandboxChannel, message_body,
};
use futures::Stream;

use crate::media::{self, Area};

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

/// A simulated customer sends a text, or a file uploaded with [`customer_upload`] and its
/// caption; returns its WhatsApp id.
pub async fn customer_send(
    state: &AppState,
    from: &str,
    to: &str,
    text: &str,
    attachment: Option<&Attachment>,
) -> Result<String, AppError> {
    enabled(state)?;
    let (from, to) = numbers((from, Field::Phone), (to, Field::Channel))?;
    let media = match attachment {
        Some(file) => Some(media::uploaded(state, Area::Sandbox, &file.name, &file.file_name).await?),
        None => None,
    };
    let text = message_body(text, media.as_ref()).map_err(AppError::invalid)?;
    let wa_id = new_wa_id();
    let rules = state.settings.sandbox_rules();
    match state
        .bus
        .sandbox_send(rules, None, &from, &to, &wa_id, &text, media.as_ref(), now())
        .await
        .map_err(internal)?
    {
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

/// A simulated customer's phone stores a file to send (in the network's own media folder).
pub async fn customer_upload<B, E>(
    state: &AppState,
    mime: &str,
    file_name: &str,
    length: Option<u64>,
    body: impl Stream<Item = Result<B, E>> + Unpin,
) -> Result<Media, AppError>
where
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    enabled(state)?;
    media::store_upload(state, Area::Sandbox, mime, file_name, length, body).await
}

/// Where a file of the network's media folder is (simulated phones show what they got).
pub fn network_file(state: &AppState, name: &str) -> Result<(std::path::PathBuf, balas_domain::MediaName), AppError> {
    enabled(state)?;
    let name = balas_domain::MediaName::parse(name).map_err(|_| AppError::NotFound)?;
    Ok((state.media.path(Area::Sandbox, &name), name))
}
