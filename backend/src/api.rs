//! The REST API's side of the backend: API keys (made and revoked by admins in Settings; a key
//! acts with its creator's membership, limited to its scopes and its rate), and the operations the
//! API offers that the dashboard has no function for (sending as the system, upserting a contact
//! by number).

use std::collections::BTreeMap;

use balas_domain::{
    ApiKey, ApiScope, AppError, AuditAction, ChannelId, Contact, CreatedApiKey, Field, FieldError, Issue, Message,
    PhoneNumber, SenderKind, check_url, message_body, parse_file_name,
};
use balas_storage::NewApiKey;

use crate::accounts::Caller;
use crate::media::{Area, download};
use crate::messaging::{Outbound, audit, queue_message};
use crate::secrets::{token, token_hash};
use crate::{AppState, from_store, internal, now};

/// The secret's start (it tells keys apart in the list) and its marker.
const SECRET_PREFIX: &str = "blk_";
const SHOWN_PREFIX_CHARS: usize = 10;

/// An API request's caller: the key and, through it, the member it acts as.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key: ApiKey,
    pub caller: Caller,
}

impl ApiCaller {
    /// Forbidden unless the key has `scope`.
    pub fn require(&self, scope: ApiScope) -> Result<(), AppError> {
        if self.key.allows(scope) { Ok(()) } else { Err(AppError::Forbidden) }
    }
}

/// The workspace's API keys (admins only).
pub async fn api_keys(state: &AppState, caller: &Caller) -> Result<Vec<ApiKey>, AppError> {
    caller.require_admin()?;
    state.store.api_keys(caller.me.workspace_id).await.map_err(from_store)
}

/// Makes a key (admins only); its secret is in the answer and nowhere else.
pub async fn create_api_key(
    state: &AppState,
    caller: &Caller,
    name: &str,
    scopes: &[String],
    rate_per_minute: Option<u32>,
) -> Result<CreatedApiKey, AppError> {
    caller.require_admin()?;
    let (name, scopes, rate) =
        ApiKey::check_request(name, scopes, rate_per_minute).map_err(|errors| AppError::Invalid { errors })?;
    let workspace = caller.me.workspace_id;
    let active =
        state.store.api_keys(workspace).await.map_err(from_store)?.iter().filter(|k| k.revoked_at.is_none()).count();
    if active >= ApiKey::MAX_KEYS {
        return Err(AppError::invalid(FieldError::new(Field::Name, Issue::TooMany { max: ApiKey::MAX_KEYS })));
    }
    let secret = format!("{SECRET_PREFIX}{}", token());
    let prefix: String = secret.chars().take(SHOWN_PREFIX_CHARS).collect();
    let hash = token_hash(&secret);
    let new = NewApiKey {
        workspace_id: workspace,
        name: &name,
        prefix: &prefix,
        secret_hash: &hash,
        scopes: &scopes,
        rate_per_minute: rate,
        created_by: caller.me.user_id,
    };
    let key = state.store.create_api_key(&new, now()).await.map_err(from_store)?;
    let detail = balas_domain::scopes_text(&key.scopes);
    audit(state, caller, AuditAction::ApiKeyCreated, key.name.as_str(), &detail).await?;
    Ok(CreatedApiKey { key, secret })
}

/// Revokes a key (admins only): it stops working at once.
pub async fn revoke_api_key(state: &AppState, caller: &Caller, id: i64) -> Result<ApiKey, AppError> {
    caller.require_admin()?;
    let key = state.store.revoke_api_key(caller.me.workspace_id, id, now()).await.map_err(from_store)?;
    audit(state, caller, AuditAction::ApiKeyRevoked, key.name.as_str(), &key.prefix).await?;
    Ok(key)
}

/// The caller of an API request with this secret; `Unauthenticated` for an unknown or revoked
/// key, or one whose creator left the workspace.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<ApiCaller, AppError> {
    if !secret.starts_with(SECRET_PREFIX) || secret.len() > 128 {
        return Err(AppError::Unauthenticated);
    }
    let found = state.store.api_key_user(&token_hash(secret), now()).await.map_err(from_store)?;
    let (key, me) = found.ok_or(AppError::Unauthenticated)?;
    Ok(ApiCaller { key, caller: Caller::for_api_key(me) })
}

/// Counts a request against the key's rate (a minute's window, in Redis so that every server
/// instance counts together); `TooManyAttempts` with the wait when it is over.
pub async fn within_rate(state: &AppState, key: &ApiKey) -> Result<(), AppError> {
    let now = now();
    let (count, window_left_ms) = state.bus.count_api_request(key.id, now).await.map_err(internal)?;
    if count > u64::from(key.rate_per_minute) {
        let retry_after_secs = (window_left_ms.max(1) as u64).div_ceil(1_000);
        return Err(AppError::TooManyAttempts { retry_after_secs, locked: false });
    }
    Ok(())
}

/// Sends a text, or a file fetched from a URL with a caption, from the system (an ERP's
/// notification) to `to` on a channel of the workspace, at interactive priority. Everything but
/// the file is checked before it is fetched; a refused file is not kept.
pub async fn send_message(state: &AppState, api: &ApiCaller, request: &SendRequest<'_>) -> Result<Message, AppError> {
    api.require(ApiScope::SendMessages)?;
    let mut errors = Vec::new();
    let to = PhoneNumber::parse(request.to).map_err(|e| errors.push(e)).ok();
    if request.media_url.is_none() {
        // A text alone is checked now; a caption is checked once the file's kind is known.
        if let Err(error) = message_body(request.text, None) {
            errors.push(error);
        }
    }
    let workspace = api.caller.me.workspace_id;
    let channel = state.store.channel(ChannelId(request.channel_id)).await.map_err(from_store)?;
    if channel.is_none_or(|c| c.workspace_id != workspace) {
        errors.push(FieldError::new(Field::Channel, Issue::NotAllowed));
    }
    let media_url = request.media_url.map(|url| check_url(Field::Url, url).map_err(|e| errors.push(e)).ok());
    if let Some(name) = request.file_name {
        if request.media_url.is_none() {
            errors.push(FieldError::new(Field::Name, Issue::NotAllowed));
        }
        // A file name's errors are the request's `file_name`'s, not the file's.
        if let Err(error) = parse_file_name(name) {
            errors.push(FieldError::new(Field::Name, error.issue));
        }
    }
    let (Some(to), true) = (to, errors.is_empty()) else {
        return Err(AppError::Invalid { errors });
    };
    let area = Area::Workspace(workspace);
    let media = match media_url.flatten() {
        Some(url) => Some(download(state, area, &url, request.file_name).await?),
        None => None,
    };
    let text = match message_body(request.text, media.as_ref()) {
        Ok(text) => text,
        Err(error) => {
            if let Some(media) = &media {
                let _ = tokio::fs::remove_file(state.media.path(area, &media.name)).await;
            }
            return Err(AppError::invalid(error));
        }
    };
    let outbound = Outbound {
        workspace_id: workspace,
        channel_id: ChannelId(request.channel_id),
        to: &to,
        text: &text,
        media: media.as_ref(),
        sender: SenderKind::Api,
        sender_user: None,
    };
    queue_message(state, &outbound).await
}

/// A message to send through the API: a text, or a file fetched from `media_url` with `text` as
/// its caption.
#[derive(Debug, Clone, Copy)]
pub struct SendRequest<'a> {
    pub channel_id: i64,
    pub to: &'a str,
    pub text: &'a str,
    pub media_url: Option<&'a str>,
    pub file_name: Option<&'a str>,
}

/// One of the workspace's messages.
pub async fn message(state: &AppState, api: &ApiCaller, id: i64) -> Result<Message, AppError> {
    require_any(api, &[ApiScope::Read, ApiScope::SendMessages])?;
    let found =
        state.store.message(api.caller.me.workspace_id, balas_domain::MessageId(id)).await.map_err(from_store)?;
    found.ok_or(AppError::NotFound)
}

/// A contact of the workspace by its number.
pub async fn contact_by_phone(state: &AppState, api: &ApiCaller, phone: &str) -> Result<Contact, AppError> {
    require_any(api, &[ApiScope::Read, ApiScope::ManageContacts])?;
    let phone = PhoneNumber::parse(phone)?;
    let found = state.store.contact_by_phone(api.caller.me.workspace_id, &phone).await.map_err(from_store)?;
    let contact = found.ok_or(AppError::NotFound)?;
    crate::crm::contact(state, &api.caller, contact.id).await
}

/// Creates the contact with this number, or updates it: given fields replace the stored ones,
/// absent ones stay; attributes given are set (an empty value clears one). True when it was new.
pub async fn upsert_contact(
    state: &AppState,
    api: &ApiCaller,
    phone: &str,
    name: Option<&str>,
    email: Option<&str>,
    attributes: &BTreeMap<String, String>,
) -> Result<(Contact, bool), AppError> {
    api.require(ApiScope::ManageContacts)?;
    let parsed = PhoneNumber::parse(phone)?;
    let workspace = api.caller.me.workspace_id;
    let existing = state.store.contact_by_phone(workspace, &parsed).await.map_err(from_store)?;
    match existing {
        None => {
            let contact = crate::crm::create_contact(
                state,
                &api.caller,
                name.unwrap_or_default(),
                parsed.as_str(),
                email.unwrap_or_default(),
                attributes,
            )
            .await?;
            Ok((contact, true))
        }
        Some(found) => {
            let current = crate::crm::contact(state, &api.caller, found.id).await?;
            let mut merged = current.attributes.clone();
            merged.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
            let name = name.map(str::to_owned).or(current.name.clone()).unwrap_or_default();
            let email = email.map(str::to_owned).or(current.email.clone()).unwrap_or_default();
            let contact =
                crate::crm::edit_contact(state, &api.caller, found.id, &name, parsed.as_str(), &email, &merged).await?;
            Ok((contact, false))
        }
    }
}

/// Forbidden unless the key has one of `scopes`.
pub fn require_any(api: &ApiCaller, scopes: &[ApiScope]) -> Result<(), AppError> {
    if scopes.iter().any(|s| api.key.allows(*s)) { Ok(()) } else { Err(AppError::Forbidden) }
}
