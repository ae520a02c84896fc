//! Contacts as CSV over HTTP (the Contacts page uses these; so can a script with a session).
//!
//! - `POST /api/contacts/import?map=phone,name,,labels&mode=valid_rows`: the body is the CSV file
//!   (UTF-8, header line first, at most 20 MB); `map` names the field of each column in order
//!   (empty: skip it); `mode` is `valid_rows` (import those, report the rest) or `all_or_nothing`.
//!   The answer is a stream of JSON lines: `{"kind":"progress","done":N,"total":M}` as it goes,
//!   then `{"kind":"done","report":{...}}` with every refused line and why.
//! - `GET /api/contacts/export.csv?search=&label=&opt_out=&sort=&active_days=`: the filtered list as CSV, in the
//!   columns an import reads.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use balas_backend::AppState;
use balas_backend::contacts_io::{export_contacts, import_contacts, parse_mapping};
use balas_domain::{
    AppError, AttributeFilter, AttributeId, AttributeOp, ContactFilter, ContactSort, Field, FieldError,
    IMPORT_MAX_BYTES, ImportMode, ImportReport, ImportUpdate, Issue, LabelId, OptOutFilter,
};
use serde::Deserialize;

use crate::{error, signed_in};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/contacts/import", post(import))
        .route("/api/contacts/export.csv", get(export))
        .with_state(state)
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    map: String,
    #[serde(default)]
    mode: Option<ImportMode>,
}

fn line(update: &ImportUpdate) -> String {
    format!("{}\n", serde_json::to_string(update).expect("updates serialize"))
}

async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Response {
    let caller = match signed_in(&state, &headers).await {
        Ok(caller) => caller,
        Err(e) => return error(e),
    };
    let mapping = match parse_mapping(&query.map) {
        Ok(mapping) => mapping,
        Err(reason) => {
            let report = ImportReport { nothing_imported: true, refused: Some(reason), ..ImportReport::default() };
            return (StatusCode::UNPROCESSABLE_ENTITY, line(&ImportUpdate::Done { report })).into_response();
        }
    };
    let file = match axum::body::to_bytes(body, IMPORT_MAX_BYTES as usize).await {
        Ok(file) => file,
        Err(_) => {
            let reason = format!("the file is larger than {} MB", IMPORT_MAX_BYTES >> 20);
            let report = ImportReport { nothing_imported: true, refused: Some(reason), ..ImportReport::default() };
            return (StatusCode::PAYLOAD_TOO_LARGE, line(&ImportUpdate::Done { report })).into_response();
        }
    };
    let mode = query.mode.unwrap_or_default();
    // The import goes on even if the browser leaves; the lines stream while it runs.
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let report = match import_contacts(&state, &caller, &file, &mapping, mode, &tx).await {
            Ok(report) => report,
            Err(e) => {
                let reason = match &e {
                    AppError::Internal { reference } => {
                        format!("the import failed on the server (reference {reference}); nothing was imported")
                    }
                    other => other.to_string(),
                };
                ImportReport { nothing_imported: true, refused: Some(reason), ..ImportReport::default() }
            }
        };
        let _ = tx.send(ImportUpdate::Done { report }).await;
    });
    // Fused: the compression layer polls once more after the end.
    let stream = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|update| (Ok::<_, std::convert::Infallible>(line(&update)), rx))
    }));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
}

#[derive(Deserialize)]
struct ExportQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    opt_out: Option<OptOutFilter>,
    #[serde(default)]
    sort: Option<ContactSort>,
    #[serde(default)]
    active_days: Option<u32>,
    /// The attribute filter: its id, comparison and value.
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    attribute_op: Option<String>,
    #[serde(default)]
    attribute_value: String,
}

async fn export(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<ExportQuery>) -> Response {
    let caller = match signed_in(&state, &headers).await {
        Ok(caller) => caller,
        Err(e) => return error(e),
    };
    let label = match query.label.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => None,
        Some(raw) => match raw.parse() {
            Ok(id) => Some(LabelId(id)),
            Err(_) => return error(AppError::invalid(FieldError::new(Field::Search, Issue::NotAllowed))),
        },
    };
    let attribute = match query.attribute.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(raw) => {
            let op = query.attribute_op.as_deref().map_or(Some(AttributeOp::Is), AttributeOp::parse);
            match (raw.parse(), op) {
                (Ok(id), Some(op)) => {
                    Some(AttributeFilter { attribute: AttributeId(id), op, value: query.attribute_value })
                }
                _ => return error(AppError::invalid(FieldError::new(Field::Attribute, Issue::NotAllowed))),
            }
        }
    };
    let filter = ContactFilter {
        search: query.search,
        label,
        opt_out: query.opt_out.unwrap_or_default(),
        sort: query.sort.unwrap_or_default(),
        active_days: query.active_days,
        attribute,
    };
    match export_contacts(&state, &caller, &filter).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"contacts.csv\"")),
            ],
            csv,
        )
            .into_response(),
        Err(e) => error(e),
    }
}
