//! `/sandbox/api`: simulated customers' phones on the sandbox network, driven over HTTP by people
//! (the customer-phone page), tests and benchmarks. Mounted only when the sandbox is enabled.
//!
//! - `POST /sandbox/api/messages` `{from, to, text, media?}` → `{wa_id}`: a customer sends a
//!   message (`media`: `{name, file_name}` of a file uploaded with `POST /sandbox/api/media`, see
//!   `media.rs`).
//! - `GET /sandbox/api/phones/{phone}/messages`: the messages a phone received, once each.
//! - `GET /sandbox/api/phones/{phone}/ledger`: how often each message was delivered to it.
//! - `POST /sandbox/api/typing` `{from, to, typing}`.
//! - `POST /sandbox/api/read` `{reader, sender, wa_ids}`: the reader read the sender's messages.
//! - `GET /sandbox/api/phones/{phone}/events`: everything that reaches a phone, as server-sent
//!   events (resumable with `Last-Event-ID`); the customer-phone page listens to it.
//!
//! Errors are JSON `{"error": "...", "field": "..."}` with a 4xx status.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use balas_backend::{AppState, internal, sandbox};
use balas_domain::{AppError, Attachment, Field, FieldError, PhoneNumber, SandboxMessage};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/sandbox/api/messages", post(send))
        .route("/sandbox/api/typing", post(typing))
        .route("/sandbox/api/read", post(read))
        .route("/sandbox/api/phones/{phone}/messages", get(messages))
        .route("/sandbox/api/phones/{phone}/ledger", get(ledger))
        .route("/sandbox/api/phones/{phone}/events", get(events))
        .with_state(state)
}

struct ApiError(StatusCode, String, Option<&'static str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1, "field": self.2 }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, rejection.body_text(), None)
    }
}

/// The API's own error for a shared failure, naming fields as this API calls them (`names` maps
/// the shared field names to ours).
fn api_error(names: &'static [(Field, &'static str)]) -> impl Fn(AppError) -> ApiError {
    move |error| {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match &error {
            AppError::Invalid { errors } => {
                let first = errors.first();
                let field = first.and_then(|e| names.iter().find(|(f, _)| *f == e.field).map(|(_, name)| *name));
                let issue = first.map(|e| format!("{:?}", e.issue)).unwrap_or_default();
                ApiError(status, format!("{}: {issue}", field.unwrap_or("request")), field)
            }
            AppError::TooManyAttempts { retry_after_secs, .. } => ApiError(
                status,
                format!("this number sent too fast and is banned for {retry_after_secs} s more"),
                Some(names[0].1),
            ),
            other => ApiError(status, other.to_string(), None),
        }
    }
}

fn field(name: &'static str) -> impl FnOnce(FieldError) -> ApiError {
    move |error| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{name}: {:?}", error.issue), Some(name))
}

fn unavailable(error: impl std::fmt::Display) -> ApiError {
    api_error(&[])(internal(error))
}

const SEND_FIELDS: &[(Field, &str)] =
    &[(Field::Phone, "from"), (Field::Channel, "to"), (Field::Text, "text"), (Field::File, "media")];
const READ_FIELDS: &[(Field, &str)] = &[(Field::Phone, "reader"), (Field::Channel, "sender"), (Field::Text, "wa_ids")];

#[derive(Deserialize)]
struct SendBody {
    from: String,
    to: String,
    #[serde(default)]
    text: String,
    /// A file uploaded with `POST /sandbox/api/media` (then `text` is its caption).
    #[serde(default)]
    media: Option<Attachment>,
}

#[derive(Serialize, Deserialize)]
pub struct Sent {
    pub wa_id: String,
}

async fn send(
    State(state): State<AppState>,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<Json<Sent>, ApiError> {
    let Json(body) = body?;
    let wa_id = sandbox::customer_send(&state, &body.from, &body.to, &body.text, body.media.as_ref())
        .await
        .map_err(api_error(SEND_FIELDS))?;
    Ok(Json(Sent { wa_id }))
}

#[derive(Deserialize)]
struct TypingBody {
    from: String,
    to: String,
    typing: bool,
}

async fn typing(
    State(state): State<AppState>,
    body: Result<Json<TypingBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    sandbox::customer_typing(&state, &body.from, &body.to, body.typing).await.map_err(api_error(SEND_FIELDS))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ReadBody {
    reader: String,
    sender: String,
    wa_ids: Vec<String>,
}

async fn read(
    State(state): State<AppState>,
    body: Result<Json<ReadBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    sandbox::customer_read(&state, &body.reader, &body.sender, &body.wa_ids).await.map_err(api_error(READ_FIELDS))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything that reaches a phone (messages, receipts, typing, and copies of what it sent), as
/// server-sent events from the start of its inbox or after `Last-Event-ID`, then live.
async fn events(
    State(state): State<AppState>,
    Path(phone): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let phone = PhoneNumber::parse(&phone).map_err(field("phone"))?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| balas_bus::is_stream_id(id))
        .unwrap_or("0-0")
        .to_owned();
    let reader = state.bus.dedicated().await.map_err(unavailable)?;
    let stream = futures::stream::unfold((reader, phone, after), |(reader, phone, after)| async move {
        loop {
            match reader.sandbox_receive(&phone, &after, 500).await {
                Ok(entries) if entries.is_empty() => continue,
                Ok(entries) => {
                    let last = entries.last().map_or_else(|| after.clone(), |e| e.id.clone());
                    let events: Vec<Result<Event, Infallible>> = entries
                        .into_iter()
                        .map(|entry| {
                            let json = serde_json::to_string(&entry.packet).unwrap_or_default();
                            Ok(Event::default().id(entry.id).data(json))
                        })
                        .collect();
                    return Some((futures::stream::iter(events), (reader, phone, last)));
                }
                Err(error) => {
                    tracing::warn!(%error, "sandbox events: the phone's inbox cannot be read");
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(stream.flatten().fuse()).keep_alive(KeepAlive::default()))
}

async fn messages(
    State(state): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Json<Vec<SandboxMessage>>, ApiError> {
    let phone = PhoneNumber::parse(&phone).map_err(field("phone"))?;
    Ok(Json(state.bus.sandbox_messages(&phone).await.map_err(unavailable)?))
}

async fn ledger(
    State(state): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Json<HashMap<String, u64>>, ApiError> {
    let phone = PhoneNumber::parse(&phone).map_err(field("phone"))?;
    Ok(Json(state.bus.sandbox_ledger(&phone).await.map_err(unavailable)?))
}
