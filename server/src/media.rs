//! Files of messages over HTTP.
//!
//! - `POST /api/media?name=FILE_NAME`: an agent uploads a file to send; the body is the file, the
//!   `Content-Type` its type. Answers the stored [`balas_domain::Media`] (JSON), or an
//!   [`AppError`] (JSON) naming what is wrong: a type WhatsApp does not send, a file over its
//!   limit for that kind (checked from `Content-Length` before reading, and while reading).
//! - `GET /media/{workspace}/{name}`: a stored file, for logged-in members of that workspace
//!   only (anyone else gets 404, as for a file that does not exist). Photos, videos and audio are
//!   served as themselves (with ranges, for seeking); anything else only as a download.
//! - With the sandbox on, the simulated phones' own: `POST /sandbox/api/media?name=` and
//!   `GET /sandbox/media/{name}`.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use balas_backend::media::{self, Area};
use balas_backend::{AppState, sandbox};
use balas_domain::{AppError, Media, MediaKind, MediaName};
use serde::Deserialize;
use tower_http::services::ServeFile;

use crate::{error, signed_in};

pub fn routes(state: AppState) -> Router {
    let mut router = Router::new().route("/api/media", post(upload)).route("/media/{workspace}/{name}", get(download));
    if state.settings.sandbox {
        router = router
            .route("/sandbox/api/media", post(network_upload))
            .route("/sandbox/media/{name}", get(network_download));
    }
    router.with_state(state)
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    name: String,
}

/// The declared type and length of an upload.
fn declared(headers: &HeaderMap) -> (String, Option<u64>) {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (mime, length)
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    let caller = match signed_in(&state, &headers).await {
        Ok(caller) => caller,
        Err(e) => return error(e),
    };
    let (mime, length) = declared(&headers);
    let area = Area::Workspace(caller.me.workspace_id);
    match media::store_upload(&state, area, &mime, &query.name, length, body.into_data_stream()).await {
        Ok(media) => (StatusCode::CREATED, Json(media)).into_response(),
        Err(e) => error(e),
    }
}

async fn download(
    State(state): State<AppState>,
    Path((workspace, name)): Path<(i64, String)>,
    request: Request,
) -> Response {
    let caller = match signed_in(&state, request.headers()).await {
        Ok(caller) => caller,
        Err(e) => return error(e),
    };
    match media::file_for(&state, &caller, workspace, &name).await {
        Ok((path, name)) => serve(path, &name, request).await,
        Err(e) => error(e),
    }
}

async fn network_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    let (mime, length) = declared(&headers);
    match sandbox::customer_upload(&state, &mime, &query.name, length, body.into_data_stream()).await {
        Ok(media) => (StatusCode::CREATED, Json::<Media>(media)).into_response(),
        Err(e) => error(e),
    }
}

async fn network_download(State(state): State<AppState>, Path(name): Path<String>, request: Request) -> Response {
    match sandbox::network_file(&state, &name) {
        Ok((path, name)) => serve(path, &name, request).await,
        Err(e) => error(e),
    }
}

/// Serves a stored file with the type its name stands for. What a browser could run or render as
/// a page of ours is only ever a download, and no file may run scripts or load anything.
async fn serve(path: std::path::PathBuf, name: &MediaName, request: Request) -> Response {
    let mime = name.served_mime();
    let inline = MediaKind::of_mime(mime).is_some_and(|kind| kind != MediaKind::Document);
    let mut response = match ServeFile::new(path).try_call(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => return error(balas_backend::internal(e)),
    };
    if response.status() == StatusCode::NOT_FOUND {
        return error(AppError::NotFound);
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    let disposition = if inline { "inline" } else { "attachment" };
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A stored file never changes (a new file gets a new name); it stays private to the browser.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    response
}
