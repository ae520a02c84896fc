//! The REST API for external systems (an ERP, a shop): `/api/v1`, authenticated with an API key
//! (`Authorization: Bearer blk_…`), limited to the key's scopes and rate. Errors are
//! `application/problem+json` (RFC 9457) with each invalid field named. Every POST takes an
//! `Idempotency-Key`: the same key and body answer the first answer again and do nothing more.
//! The OpenAPI document (`/api/v1/openapi.json`) is generated from the handlers and types below;
//! `/api/v1/docs` renders it for people.

use std::collections::BTreeMap;
use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use balas_backend::AppState;
use balas_backend::api::{ApiCaller, authenticate, within_rate};
use balas_domain::{
    ApiScope, AppError, Audience, Broadcast, BroadcastDraft, BroadcastRecipient, ChannelId, Contact, Field, Message,
    MissingRule, RecipientState, Timestamp,
};
use balas_storage::Idempotency;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(docs))
        .route("/api/v1/messages", post(send_message))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/broadcasts", post(create_broadcast))
        .route("/api/v1/broadcasts/{id}", get(get_broadcast))
        .route("/api/v1/broadcasts/{id}/pause", post(pause_broadcast))
        .route("/api/v1/broadcasts/{id}/resume", post(resume_broadcast))
        .route("/api/v1/broadcasts/{id}/cancel", post(cancel_broadcast))
        .route("/api/v1/broadcasts/{id}/recipients", get(broadcast_recipients))
        .route("/api/v1/contacts", post(upsert_contact))
        .route("/api/v1/contacts/{phone}", get(get_contact))
        .route("/api/v1/{*rest}", get(not_found).post(not_found).put(not_found).patch(not_found).delete(not_found))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Balas REST API",
        version = "1",
        description = "Send WhatsApp messages and broadcasts, and keep contacts, from your own systems. \
                       Authenticate with an API key an admin makes in Settings → API keys: \
                       `Authorization: Bearer blk_…`. Each key has scopes and a rate (requests a minute). \
                       Every POST takes an `Idempotency-Key` header: a repeat with the same key and body \
                       answers the first answer and does nothing again (keys are kept a day). \
                       Errors are `application/problem+json`; an invalid request names each field."
    ),
    paths(send_message, get_message, create_broadcast, get_broadcast, pause_broadcast, resume_broadcast,
          cancel_broadcast, broadcast_recipients, upsert_contact, get_contact),
    components(schemas(Problem, ProblemField)),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("blk_…").build();
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI 3 document of this API: generated from the handlers and types by utoipa, then
/// every operation gets the errors every endpoint may answer (401, 403, 429; 400 for a body or a
/// header that does not parse; 404 where a path names something), all as problem+json.
pub fn openapi() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    let problem = json!({ "$ref": "#/components/schemas/Problem" });
    let common = [
        ("400", "Malformed: the body, a header or a query parameter does not parse"),
        ("401", "No API key, or an unknown or revoked one"),
        ("403", "The key's scopes (or its creator's role) do not allow this"),
        ("429", "Over the key's rate; see the Retry-After header"),
    ];
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let names_something = path.contains('{');
            for (_, operation) in item.as_object_mut().into_iter().flatten() {
                let Some(responses) = operation["responses"].as_object_mut() else { continue };
                let mut wanted: Vec<(&str, &str)> = common.to_vec();
                if names_something {
                    wanted.push(("404", "Not found in this workspace"));
                }
                for (code, description) in wanted {
                    responses.entry(code).or_insert_with(|| json!({ "description": description }));
                }
                for (code, response) in responses.iter_mut() {
                    if code.starts_with('4') || code.starts_with('5') {
                        response["content"] = json!({ "application/problem+json": { "schema": problem.clone() } });
                    }
                }
            }
        }
    }
    doc
}

// ---- Errors -------------------------------------------------------------------------------

/// An error, as RFC 9457 describes (`application/problem+json`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What went wrong, in a sentence a developer can act on.
    detail: String,
    /// A stable name for the problem: `validation_failed`, `unauthenticated`, `forbidden`,
    /// `not_found`, `rate_limited`, `idempotency_key_reused`, `idempotency_key_in_use`,
    /// `malformed_request`, `internal`.
    code: String,
    /// Each invalid field (validation problems only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProblemField {
    /// The request's field (`text`, `to`, `channel_id`, `audience`, `send_at`, …).
    field: String,
    /// A stable name for the issue (`required`, `too_long`, `unknown_variable`, …).
    issue: String,
    message: String,
}

fn problem(status: StatusCode, code: &str, detail: String, errors: Vec<ProblemField>) -> Response {
    let body = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail,
        code: code.into(),
        errors,
    };
    let mut response = (status, serde_json::to_string(&body).expect("problems serialize")).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// The request's name of a field the checks report.
fn field_name(field: Field) -> String {
    match field {
        Field::Channel => "channel_id".into(),
        Field::Schedule => "send_at".into(),
        Field::Fallback => "missing.text".into(),
        Field::Phone => "phone".into(),
        other => serde_json::to_value(other).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
    }
}

/// An [`AppError`] as a problem; `rename` maps a field to this endpoint's name for it.
fn app_problem(error: AppError, rename: &[(Field, &str)]) -> Response {
    match error {
        AppError::Invalid { errors } => {
            let fields: Vec<ProblemField> = errors
                .iter()
                .map(|e| ProblemField {
                    field: rename
                        .iter()
                        .find(|(f, _)| *f == e.field)
                        .map_or_else(|| field_name(e.field), |(_, n)| (*n).to_owned()),
                    issue: serde_json::to_value(e.issue)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    message: e.issue.message(),
                })
                .collect();
            let detail = fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
            problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail, fields)
        }
        AppError::Unauthenticated => problem(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Send a valid API key: `Authorization: Bearer blk_…` (an admin makes one in Settings → API keys). \
             The key may be unknown or revoked."
                .into(),
            vec![],
        ),
        AppError::Forbidden => problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This API key's scopes (or its creator's role) do not allow this; an admin can make a key with the \
             scope it needs."
                .into(),
            vec![],
        ),
        AppError::NotFound => {
            problem(StatusCode::NOT_FOUND, "not_found", "No such resource in this workspace.".into(), vec![])
        }
        AppError::TooManyAttempts { retry_after_secs, .. } => {
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("This key made more requests this minute than its rate allows; retry in {retry_after_secs} s."),
                vec![],
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        AppError::Internal { reference } => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Something went wrong on the server (reference {reference}); try again."),
            vec![],
        ),
        other => {
            let status = StatusCode::from_u16(other.status()).unwrap_or(StatusCode::BAD_REQUEST);
            problem(status, "refused", other.to_string(), vec![])
        }
    }
}

/// A path's id: anything but a number from 1 names nothing here (a 404, not a plain-text 400).
fn path_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such endpoint; see /api/v1/docs for the ones there are.".into(),
        vec![],
    )
}

// ---- Authentication, idempotency ---------------------------------------------------------------

/// The key of a request, checked and counted against its rate.
async fn api_caller(state: &AppState, headers: &HeaderMap) -> Result<ApiCaller, Response> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .unwrap_or_default();
    let api = authenticate(state, secret).await.map_err(|e| app_problem(e, &[]))?;
    within_rate(state, &api.key).await.map_err(|e| app_problem(e, &[]))?;
    Ok(api)
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, serde_json::to_string(body).expect("answers serialize")).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A POST: authenticated, its body parsed as `T`, `run` once per `Idempotency-Key` and body.
async fn handle_post<T, F, Fut>(state: AppState, headers: &HeaderMap, body: &Bytes, run: F) -> Response
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(AppState, ApiCaller, T) -> Fut,
    Fut: Future<Output = Response>,
{
    let api = match api_caller(&state, headers).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let key = headers.get("idempotency-key").map(|v| v.to_str().map(str::to_owned));
    let key = match key {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= 200 => Some(key),
        Some(_) => {
            let field = ProblemField {
                field: "Idempotency-Key".into(),
                issue: "too_long".into(),
                message: "must be 1 to 200 visible ASCII characters".into(),
            };
            let detail = "The Idempotency-Key header must be 1 to 200 visible ASCII characters.".into();
            return problem(StatusCode::BAD_REQUEST, "malformed_request", detail, vec![field]);
        }
    };
    let request_hash = balas_backend::accounts::session_token_hash(&String::from_utf8_lossy(body));
    if let Some(key) = &key {
        match state.store.claim_idempotency(api.key.id, key, &request_hash, balas_backend::now()).await {
            Ok(Idempotency::New) => {}
            Ok(Idempotency::Done { status, response }) => {
                let mut answer = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), response).into_response();
                let kind = if status >= 400 { "application/problem+json" } else { "application/json" };
                answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
                answer.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return answer;
            }
            Ok(Idempotency::Mismatch) => {
                let detail =
                    "This Idempotency-Key was used with another request body; use a new key for a new request.";
                return problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", detail.into(), vec![]);
            }
            Ok(Idempotency::InProgress) => {
                let detail = "A request with this Idempotency-Key is still being answered; retry in a moment.";
                return problem(StatusCode::CONFLICT, "idempotency_key_in_use", detail.into(), vec![]);
            }
            Err(error) => return app_problem(balas_backend::from_store(error), &[]),
        }
    }
    let response = match serde_json::from_slice::<T>(body) {
        Ok(request) => run(state.clone(), api.clone(), request).await,
        Err(error) => problem(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            format!("The body is not the JSON this endpoint takes: {error}."),
            vec![],
        ),
    };
    if let Some(key) = &key {
        let status = response.status();
        // A server-side failure may go away: the key is let go so that a retry runs again.
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 4 << 20).await.unwrap_or_default();
        let keep = (!status.is_server_error()).then(|| (status.as_u16(), String::from_utf8_lossy(&bytes).into_owned()));
        let kept = keep.as_ref().map(|(s, b)| (*s, b.as_str()));
        if let Err(error) = state.store.finish_idempotency(api.key.id, key, kept).await {
            tracing::warn!(%error, "could not keep an idempotent answer");
        }
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    response
}

/// A GET: authenticated, then `run`.
async fn handle_read<F, Fut>(state: AppState, headers: &HeaderMap, run: F) -> Response
where
    F: FnOnce(AppState, ApiCaller) -> Fut,
    Fut: Future<Output = Response>,
{
    match api_caller(&state, headers).await {
        Ok(api) => run(state.clone(), api).await,
        Err(response) => response,
    }
}

// ---- Messages ---------------------------------------------------------------------------------

/// A message to send: a text, or a file by URL with an optional caption.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    /// The channel (WhatsApp number) to send from.
    #[schema(minimum = 1)]
    channel_id: i64,
    /// The customer's number, with its country code: `+6281234567890`.
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    to: String,
    /// The text (up to 4,096 characters), required without `media_url`; with it, the file's
    /// caption (up to 1,024 characters; none for audio).
    #[serde(default)]
    #[schema(max_length = 4096)]
    text: String,
    /// An `http(s)://` address Balas downloads the file from when the request is made: a JPEG or
    /// PNG photo (5 MB), an MP4 or 3GPP video (16 MB), an audio file (16 MB) or a document
    /// (100 MB). The type is the one the server declares in `Content-Type`.
    #[schema(max_length = 500, pattern = r"^https?://[^\s@/]+(/\S*)?$")]
    media_url: Option<String>,
    /// The name the customer sees for a document; by default the URL's last path segment.
    #[schema(min_length = 1, max_length = 200)]
    file_name: Option<String>,
}

/// A message and how far it got.
#[derive(Debug, Serialize, ToSchema)]
struct ApiMessage {
    id: i64,
    channel_id: i64,
    conversation_id: i64,
    direction: String,
    text: String,
    /// `queued`, `sent`, `delivered`, `read` or `failed` (outbound); `received` (inbound).
    status: String,
    /// Why it failed.
    error: Option<String>,
    /// The file it carries, if any.
    media: Option<ApiMedia>,
    /// Milliseconds since 1970 (UTC).
    created_at: i64,
    updated_at: i64,
}

/// A message's file.
#[derive(Debug, Serialize, ToSchema)]
struct ApiMedia {
    /// `image`, `video`, `audio` or `document`.
    kind: String,
    mime: String,
    file_name: Option<String>,
    /// Bytes.
    size: u64,
}

impl From<Message> for ApiMessage {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.0,
            channel_id: m.channel_id.0,
            conversation_id: m.conversation_id.0,
            direction: if m.direction == balas_domain::Direction::Inbound { "inbound" } else { "outbound" }.into(),
            text: m.body,
            status: m.status.as_str().into(),
            error: m.error,
            media: m.media.map(|media| ApiMedia {
                kind: media.kind.as_str().into(),
                mime: media.mime,
                file_name: media.file_name,
                size: media.size,
            }),
            created_at: m.created_at.0,
            updated_at: m.updated_at.0,
        }
    }
}

/// Sends a text, or a file by URL (scope `send_messages`). It is queued at once and sent at the number's pace,
/// ahead of broadcasts; follow its status with `GET /api/v1/messages/{id}`.
#[utoipa::path(post, path = "/api/v1/messages", request_body = SendMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Send the same request again safely")),
    responses((status = 202, body = ApiMessage), (status = 422, body = Problem), (status = 401, body = Problem),
               (status = 403, body = Problem), (status = 429, body = Problem)))]
async fn send_message(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    handle_post(state, &headers, &body, |state, api, request: SendMessage| async move {
        let send = balas_backend::api::SendRequest {
            channel_id: request.channel_id,
            to: &request.to,
            text: &request.text,
            media_url: request.media_url.as_deref(),
            file_name: request.file_name.as_deref(),
        };
        match balas_backend::api::send_message(&state, &api, &send).await {
            Ok(message) => json_response(StatusCode::ACCEPTED, &ApiMessage::from(message)),
            Err(error) => app_problem(
                error,
                &[
                    (Field::Phone, "to"),
                    (Field::Url, "media_url"),
                    (Field::File, "media_url"),
                    (Field::Name, "file_name"),
                ],
            ),
        }
    })
    .await
}

/// A message of the workspace (scope `read` or `send_messages`).
#[utoipa::path(get, path = "/api/v1/messages/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ApiMessage), (status = 404, body = Problem)))]
async fn get_message(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else { return app_problem(AppError::NotFound, &[]) };
    handle_read(state, &headers, |state, api| async move {
        match balas_backend::api::message(&state, &api, id).await {
            Ok(message) => json_response(StatusCode::OK, &ApiMessage::from(message)),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

// ---- Broadcasts -------------------------------------------------------------------------------

/// Who a broadcast goes to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ApiAudience {
    /// Every contact.
    All,
    /// A saved segment's contacts.
    Segment { segment_id: i64 },
    /// Contacts with any of these labels.
    Labels {
        #[schema(min_items = 1, max_items = 20)]
        labels: Vec<i64>,
    },
    /// These numbers (invalid ones are skipped and counted).
    List {
        #[schema(min_items = 1, max_items = 100000)]
        phones: Vec<String>,
    },
}

/// What to do when a variable has no value: `{"rule": "skip"}` leaves the recipient out;
/// `{"rule": "fallback", "text": "Kak"}` puts the text in its place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
enum ApiMissing {
    Skip,
    Fallback {
        #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
        text: String,
    },
}

/// A broadcast to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBroadcast {
    /// Up to 40 characters.
    #[schema(min_length = 1, max_length = 40, pattern = r"\S")]
    name: String,
    #[schema(minimum = 1)]
    channel_id: i64,
    audience: ApiAudience,
    /// Up to 4,096 characters, with variables: `{{name}}`, `{{first_name}}`, `{{phone}}`, `{{email}}`
    /// and custom attributes' keys, each with an optional fallback: `{{first_name|Kak}}`.
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    text: String,
    missing: Option<ApiMissing>,
    /// When to start (milliseconds since 1970, UTC); now when absent.
    send_at: Option<i64>,
}

/// How a broadcast's recipients stand.
#[derive(Debug, Serialize, ToSchema)]
struct ApiCounts {
    total: i64,
    pending: i64,
    queued: i64,
    sent: i64,
    delivered: i64,
    read: i64,
    failed: i64,
    skipped: i64,
    cancelled: i64,
}

/// A broadcast and its progress.
#[derive(Debug, Serialize, ToSchema)]
struct ApiBroadcast {
    id: i64,
    name: String,
    channel_id: i64,
    text: String,
    /// `scheduled`, `running`, `paused`, `cancelled` or `finished`.
    status: String,
    send_at: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    paused_reason: Option<String>,
    /// Why it is not sending now although it runs (sending hours, the daily cap).
    waiting: Option<String>,
    duplicates: i64,
    counts: ApiCounts,
}

impl From<Broadcast> for ApiBroadcast {
    fn from(b: Broadcast) -> Self {
        let c = b.counts;
        Self {
            id: b.id.0,
            name: b.name.to_string(),
            channel_id: b.channel_id.0,
            text: b.text,
            status: b.status.as_str().into(),
            send_at: b.send_at.0,
            created_at: b.created_at.0,
            started_at: b.started_at.map(|t| t.0),
            finished_at: b.finished_at.map(|t| t.0),
            paused_reason: b.paused_reason,
            waiting: b.waiting,
            duplicates: b.duplicates,
            counts: ApiCounts {
                total: c.total,
                pending: c.pending,
                queued: c.queued,
                sent: c.sent,
                delivered: c.delivered,
                read: c.read,
                failed: c.failed,
                skipped: c.skipped,
                cancelled: c.cancelled,
            },
        }
    }
}

/// Creates a broadcast (scope `manage_broadcasts`; the key's creator must be an admin). Every
/// recipient is stored at once; opted-out and invalid numbers are skipped and counted.
#[utoipa::path(post, path = "/api/v1/broadcasts", request_body = CreateBroadcast,
    params(("Idempotency-Key" = Option<String>, Header, description = "Send the same request again safely")),
    responses((status = 201, body = ApiBroadcast), (status = 422, body = Problem), (status = 403, body = Problem)))]
async fn create_broadcast(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    handle_post(state, &headers, &body, |state, api, request: CreateBroadcast| async move {
        if let Err(error) = api.require(ApiScope::ManageBroadcasts) {
            return app_problem(error, &[]);
        }
        let draft = BroadcastDraft {
            name: request.name,
            channel_id: ChannelId(request.channel_id),
            audience: match request.audience {
                ApiAudience::All => Audience::All,
                ApiAudience::Segment { segment_id } => Audience::Segment { segment_id },
                ApiAudience::Labels { labels } => {
                    Audience::Labels { labels: labels.into_iter().map(balas_domain::LabelId).collect() }
                }
                ApiAudience::List { phones } => Audience::List { phones },
            },
            text: request.text,
            missing: match request.missing {
                None | Some(ApiMissing::Skip) => MissingRule::Skip,
                Some(ApiMissing::Fallback { text }) => MissingRule::Fallback { text },
            },
            send_at: request.send_at.map(Timestamp),
        };
        match balas_backend::broadcasts::create(&state, &api.caller, &draft).await {
            Ok(broadcast) => json_response(StatusCode::CREATED, &ApiBroadcast::from(broadcast)),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

/// A broadcast with its counts (scope `read` or `manage_broadcasts`).
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ApiBroadcast), (status = 404, body = Problem)))]
async fn get_broadcast(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else { return app_problem(AppError::NotFound, &[]) };
    handle_read(state, &headers, |state, api| async move {
        if let Err(error) = balas_backend::api::require_any(&api, &[ApiScope::Read, ApiScope::ManageBroadcasts]) {
            return app_problem(error, &[]);
        }
        match balas_backend::broadcasts::detail(&state, &api.caller, id).await {
            Ok((broadcast, _)) => json_response(StatusCode::OK, &ApiBroadcast::from(broadcast)),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

#[derive(Clone, Copy)]
enum Change {
    Pause,
    Resume,
    Cancel,
}

async fn change(state: AppState, headers: HeaderMap, body: Bytes, id: String, what: Change) -> Response {
    let Some(id) = path_id(&id) else { return app_problem(AppError::NotFound, &[]) };
    // A body is optional here; an empty one counts as `{}`.
    let body = if body.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { body };
    handle_post(state, &headers, &body, |state, api, _: serde_json::Map<String, serde_json::Value>| async move {
        if let Err(error) = api.require(ApiScope::ManageBroadcasts) {
            return app_problem(error, &[]);
        }
        let done = match what {
            Change::Pause => balas_backend::broadcasts::pause(&state, &api.caller, id).await,
            Change::Resume => balas_backend::broadcasts::resume(&state, &api.caller, id).await,
            Change::Cancel => balas_backend::broadcasts::cancel(&state, &api.caller, id).await,
        };
        match done {
            Ok(broadcast) => json_response(StatusCode::OK, &ApiBroadcast::from(broadcast)),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

/// Pauses a scheduled or running broadcast at once (scope `manage_broadcasts`).
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/pause", params(("id" = i64, Path)),
    responses((status = 200, body = ApiBroadcast), (status = 422, body = Problem, description = "Not running"),
               (status = 404, body = Problem)))]
async fn pause_broadcast(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    change(state, headers, body, id, Change::Pause).await
}

/// Resumes a paused broadcast (scope `manage_broadcasts`).
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/resume", params(("id" = i64, Path)),
    responses((status = 200, body = ApiBroadcast), (status = 422, body = Problem, description = "Not paused"),
               (status = 404, body = Problem)))]
async fn resume_broadcast(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    change(state, headers, body, id, Change::Resume).await
}

/// Cancels a broadcast that is not over (scope `manage_broadcasts`): nothing more is sent.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/cancel", params(("id" = i64, Path)),
    responses((status = 200, body = ApiBroadcast), (status = 422, body = Problem, description = "Over already"),
               (status = 404, body = Problem)))]
async fn cancel_broadcast(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    change(state, headers, body, id, Change::Cancel).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecipientQuery {
    /// Only recipients in this state: `pending`, `queued`, `sent`, `delivered`, `read`, `failed`,
    /// `skipped` or `cancelled`.
    state: Option<String>,
    /// The page, from 0 (50 recipients a page).
    page: Option<u32>,
}

/// One recipient's result.
#[derive(Debug, Serialize, ToSchema)]
struct ApiRecipient {
    /// As given (an invalid number stays as it was written).
    phone: String,
    name: Option<String>,
    state: String,
    /// Why it was left out: `opted_out`, `invalid_number`, `missing:KEY`, `too_long`.
    skipped: Option<String>,
    /// Why sending failed.
    error: Option<String>,
    message_id: Option<i64>,
}

impl From<BroadcastRecipient> for ApiRecipient {
    fn from(r: BroadcastRecipient) -> Self {
        Self {
            phone: r.phone,
            name: r.name,
            state: serde_json::to_value(r.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            skipped: r.skipped.map(|s| s.code()),
            error: r.error,
            message_id: r.message_id.map(|m| m.0),
        }
    }
}

/// A page of a broadcast's recipients and how each went (scope `read` or `manage_broadcasts`).
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}/recipients", params(("id" = i64, Path), RecipientQuery),
    responses((status = 200, body = Vec<ApiRecipient>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn broadcast_recipients(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<RecipientQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(id) = path_id(&id) else { return app_problem(AppError::NotFound, &[]) };
    handle_read(state, &headers, |state, api| async move {
        if let Err(error) = balas_backend::api::require_any(&api, &[ApiScope::Read, ApiScope::ManageBroadcasts]) {
            return app_problem(error, &[]);
        }
        let Ok(Query(query)) = query else {
            return problem(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "`page` must be a number from 0.".into(),
                vec![],
            );
        };
        let only = match query.state.as_deref() {
            None | Some("") => None,
            Some(raw) => match serde_json::from_value::<RecipientState>(json!(raw)) {
                Ok(state) => Some(state),
                Err(_) => {
                    let field = ProblemField {
                        field: "state".into(),
                        issue: "not_allowed".into(),
                        message: "must be pending, queued, sent, delivered, read, failed, skipped or cancelled".into(),
                    };
                    let detail = format!("state {}", field.message);
                    return problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail, vec![field]);
                }
            },
        };
        match balas_backend::broadcasts::recipients(&state, &api.caller, id, only, query.page.unwrap_or(0)).await {
            Ok(rows) => json_response(StatusCode::OK, &rows.into_iter().map(ApiRecipient::from).collect::<Vec<_>>()),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

// ---- Contacts ---------------------------------------------------------------------------------

/// A contact to create, or update by its number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpsertContact {
    /// With its country code: `+6281234567890`.
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    phone: String,
    /// Replaces the stored name when given.
    name: Option<String>,
    /// Replaces the stored email when given.
    email: Option<String>,
    /// Custom attributes by key; an empty value clears one. Others stay as they are.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// A contact.
#[derive(Debug, Serialize, ToSchema)]
struct ApiContact {
    id: i64,
    phone: String,
    name: Option<String>,
    email: Option<String>,
    /// Opted out of broadcasts (since then, ms since 1970).
    opted_out_at: Option<i64>,
    labels: Vec<i64>,
    attributes: BTreeMap<String, String>,
    created_at: i64,
    last_message_at: Option<i64>,
}

impl From<Contact> for ApiContact {
    fn from(c: Contact) -> Self {
        Self {
            id: c.id.0,
            phone: c.phone.as_str().into(),
            name: c.name,
            email: c.email,
            opted_out_at: c.opted_out_at.map(|t| t.0),
            labels: c.labels.into_iter().map(|l| l.0).collect(),
            attributes: c.attributes,
            created_at: c.created_at.0,
            last_message_at: c.last_message_at.map(|t| t.0),
        }
    }
}

/// Creates the contact with this number (201), or updates it (200) (scope `manage_contacts`).
#[utoipa::path(post, path = "/api/v1/contacts", request_body = UpsertContact,
    params(("Idempotency-Key" = Option<String>, Header, description = "Send the same request again safely")),
    responses((status = 201, body = ApiContact, description = "Created"), (status = 200, body = ApiContact, description = "Updated"),
               (status = 422, body = Problem)))]
async fn upsert_contact(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    handle_post(state, &headers, &body, |state, api, request: UpsertContact| async move {
        let done = balas_backend::api::upsert_contact(
            &state,
            &api,
            &request.phone,
            request.name.as_deref(),
            request.email.as_deref(),
            &request.attributes,
        )
        .await;
        match done {
            Ok((contact, created)) => {
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                json_response(status, &ApiContact::from(contact))
            }
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

/// A contact by its number (scope `read` or `manage_contacts`).
#[utoipa::path(get, path = "/api/v1/contacts/{phone}", params(("phone" = String, Path, description = "With its country code")),
    responses((status = 200, body = ApiContact), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn get_contact(State(state): State<AppState>, headers: HeaderMap, Path(phone): Path<String>) -> Response {
    handle_read(state, &headers, |state, api| async move {
        match balas_backend::api::contact_by_phone(&state, &api, &phone).await {
            Ok(contact) => json_response(StatusCode::OK, &ApiContact::from(contact)),
            Err(error) => app_problem(error, &[]),
        }
    })
    .await
}

// ---- The document -------------------------------------------------------------------------------

async fn openapi_json() -> Response {
    json_response(StatusCode::OK, &openapi())
}

/// The API's reference for people, rendered here from the same document (no script, no CDN).
async fn docs() -> Html<String> {
    let doc = openapi();
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let text = |v: &serde_json::Value| escape(v.as_str().unwrap_or_default());
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Balas REST API</title><style>\
         body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2939}\
         code,pre{background:#f2f4f7;border-radius:4px;padding:.1rem .3rem}pre{padding:.75rem;overflow:auto}\
         .op{border:1px solid #e4e7ec;border-radius:8px;padding:.75rem 1rem;margin:1rem 0}\
         .m{font-weight:700;text-transform:uppercase;margin-right:.5rem;color:#0f8a5f}</style></head><body>",
    );
    out.push_str(&format!("<h1>{}</h1><p>{}</p>", text(&doc["info"]["title"]), text(&doc["info"]["description"])));
    out.push_str("<p>The machine-readable document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>");
    if let Some(paths) = doc["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                out.push_str(&format!(
                    "<div class=\"op\" id=\"{}-{}\"><p><span class=\"m\">{}</span><code>{}</code></p>",
                    escape(method),
                    escape(&path.replace('/', "-")),
                    escape(method),
                    escape(path)
                ));
                for key in ["summary", "description"] {
                    if op[key].is_string() {
                        out.push_str(&format!("<p>{}</p>", text(&op[key])));
                    }
                }
                if let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = schema.rsplit('/').next().unwrap_or_default();
                    out.push_str(&format!("<p>Body: <a href=\"#schema-{0}\">{0}</a></p>", escape(name)));
                }
                if let Some(responses) = op["responses"].as_object() {
                    out.push_str("<p>Answers: ");
                    let list: Vec<String> = responses
                        .iter()
                        .map(|(code, r)| {
                            let schema = r["content"]["application/json"]["schema"]["$ref"]
                                .as_str()
                                .or(r["content"]["application/json"]["schema"]["items"]["$ref"].as_str())
                                .map(|s| s.rsplit('/').next().unwrap_or_default().to_owned())
                                .unwrap_or_default();
                            format!("<code>{}</code> {}", escape(code), escape(&schema))
                        })
                        .collect();
                    out.push_str(&list.join(", "));
                    out.push_str("</p>");
                }
                out.push_str("</div>");
            }
        }
    }
    out.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            out.push_str(&format!(
                "<h3 id=\"schema-{0}\">{0}</h3><pre>{1}</pre>",
                escape(name),
                escape(&serde_json::to_string_pretty(schema).unwrap_or_default())
            ));
        }
    }
    out.push_str("</body></html>");
    Html(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_names_every_endpoint() {
        let doc = super::openapi();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths.len(), 10, "{paths:?}");
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        assert!(doc["components"]["schemas"]["CreateBroadcast"].is_object());
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
        let errors = &doc["paths"]["/api/v1/broadcasts/{id}"]["get"]["responses"];
        assert!(errors["404"]["content"]["application/problem+json"].is_object(), "{errors}");
        assert!(errors["429"]["content"]["application/problem+json"].is_object(), "{errors}");
    }
}
