//! `/sandbox/api`: simulated customers' phones on the sandbox network, driven over HTTP by people
//! (the customer-phone page), tests and benchmarks. Mounted only when the sandbox is enabled.
//!
//! - `POST /sandbox/api/messages` `{from, to, text}` → `{wa_id}`: a customer sends a message.
//! - `GET /sandbox/api/phones/{phone}/messages`: the messages a phone received, once each.
//! - `GET /sandbox/api/phones/{phone}/ledger`: how often each message was delivered to it.
//! - `POST /sandbox/api/typing` `{from, to, typing}`.
//! - `POST /sandbox/api/read` `{reader, sender, wa_ids}`: the reader read the sender's messages.
//!
//! Errors are JSON `{"error": "...", "field": "..."}` with a 4xx status.

use std::collections::HashMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use balas_backend::messaging::new_wa_id;
use balas_backend::{AppState, internal, now};
use balas_bus::SandboxSent;
use balas_domain::{FieldError, MessageText, PhoneNumber, SandboxMessage};
use serde::{Deserialize, Serialize};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/sandbox/api/messages", post(send))
        .route("/sandbox/api/typing", post(typing))
        .route("/sandbox/api/read", post(read))
        .route("/sandbox/api/phones/{phone}/messages", get(messages))
        .route("/sandbox/api/phones/{phone}/ledger", get(ledger))
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

fn field(name: &'static str) -> impl FnOnce(FieldError) -> ApiError {
    move |error| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{name}: {:?}", error.issue), Some(name))
}

fn unavailable(error: impl std::fmt::Display) -> ApiError {
    let reference = match internal(error) {
        balas_domain::AppError::Internal { reference } => reference,
        other => other.to_string(),
    };
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the sandbox network is unavailable (reference {reference})"),
        None,
    )
}

#[derive(Deserialize)]
struct SendBody {
    from: String,
    to: String,
    text: String,
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
    let from = PhoneNumber::parse(&body.from).map_err(field("from"))?;
    let to = PhoneNumber::parse(&body.to).map_err(field("to"))?;
    let text = MessageText::parse(&body.text).map_err(field("text"))?;
    let wa_id = new_wa_id();
    let rules = state.settings.sandbox_rules();
    match state.bus.sandbox_send(rules, None, &from, &to, &wa_id, text.as_str(), now()).await.map_err(unavailable)? {
        SandboxSent::Delivered | SandboxSent::Duplicate => Ok(Json(Sent { wa_id })),
        SandboxSent::Banned { until } => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{from} sent too fast and is banned until {} (ms since the epoch)", until.0),
            Some("from"),
        )),
        SandboxSent::Replaced => {
            Err(ApiError(StatusCode::CONFLICT, "this number is in use by a channel".into(), Some("from")))
        }
    }
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
    let from = PhoneNumber::parse(&body.from).map_err(field("from"))?;
    let to = PhoneNumber::parse(&body.to).map_err(field("to"))?;
    state.bus.sandbox_typing(&from, &to, body.typing, now()).await.map_err(unavailable)?;
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
    let reader = PhoneNumber::parse(&body.reader).map_err(field("reader"))?;
    let sender = PhoneNumber::parse(&body.sender).map_err(field("sender"))?;
    if body.wa_ids.is_empty()
        || body.wa_ids.len() > 1000
        || body.wa_ids.iter().any(|id| id.is_empty() || id.len() > 128)
    {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "give 1 to 1000 message ids".into(), Some("wa_ids")));
    }
    state.bus.sandbox_mark_read(&reader, &sender, &body.wa_ids, now()).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
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
