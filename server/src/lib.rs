//! The Balas web server: server-rendered pages that hydrate in the browser, server functions under
//! `/api`, the REST API under `/api/v1` (API keys), live events on `/ws`, the built browser files
//! under `/pkg`, the sandbox network's customer API under `/sandbox/api` (when enabled), and
//! `/healthz` and `/readyz` for load balancers. It also runs this instance's ingest consumer,
//! broadcast planner, webhook dispatcher and live hub.

mod api_v1;
mod contacts;
mod live;
mod media;
mod realtime;
mod sandbox;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::live::LiveHub;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use balas_app::api::{SESSION_COOKIE, cookie};
use balas_app::{App, shell};
use balas_backend::{AppState, Settings, accounts, broadcasts, ingest, webhooks};
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Connects to the database and Redis, then serves on `listener` until `shutdown` completes.
/// Tests call it with a listener on port 0: the address is known before the call, so no test waits
/// for the server to come up.
pub async fn launch(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::connect(settings).await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let hub = LiveHub::start(&state.bus, stopped.clone()).await?;
    // The AI workers' group exists from the start, so customers who write while no AI worker
    // runs are answered when one starts.
    state.bus.ensure_live_group(balas_backend::ai_worker::GROUP).await?;
    // A name that survives a restart on the same address, so a restarted instance finishes the
    // events it had been given.
    let consumer = format!("{}-{}", balas_backend::hostname(), address.port());
    let ingest = tokio::spawn(ingest::run(state.clone(), consumer.clone(), stopped.clone()));
    let planner = tokio::spawn(broadcasts::run_planner(state.clone(), consumer.clone(), stopped.clone()));
    let webhooks = tokio::spawn(webhooks::run(state.clone(), consumer, stopped));
    let app = router(state.clone(), hub, address);
    tracing::info!(%address, "serving");
    // Every frame goes out when written. With Nagle's algorithm on, a small frame written while
    // the last one is unacknowledged waits for the browser's delayed ACK: up to 40 ms per event.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop.send(true);
    let _ = ingest.await;
    let _ = planner.await;
    let _ = webhooks.await;
    state.store.close().await;
    Ok(())
}

/// Every route of the server.
pub fn router(state: AppState, hub: LiveHub, address: SocketAddr) -> Router {
    let options = LeptosOptions::builder()
        .output_name("balas")
        .site_root(state.settings.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(address)
        .env(Env::PROD)
        .build();
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let gate = Gate { state: state.clone(), set_up: Arc::new(AtomicBool::new(false)) };
    let sandbox = state.settings.sandbox.then(|| sandbox::routes(state.clone()));
    let realtime = realtime::Realtime { state: state.clone(), hub };
    let media =
        media::routes(state.clone()).merge(contacts::routes(state.clone())).merge(api_v1::routes(state.clone()));
    let mut router = Router::new()
        .route("/ws", get(realtime::socket).with_state(realtime))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(state))
        .leptos_routes_with_context(
            &options,
            routes,
            move || leptos::prelude::provide_context(context_state.clone()),
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options);
    if let Some(sandbox) = sandbox {
        router = router.merge(sandbox);
    }
    router = router.merge(media);
    router
        .layer(middleware::from_fn_with_state(gate, page_gate))
        .layer(middleware::from_fn(malformed_calls_are_400))
        .layer(middleware::from_fn(same_site_calls_only))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        // The wasm bundle shrinks to about a third gzipped.
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Ready when the database and Redis both answer within two seconds.
/// An [`AppError`] as the JSON answer of a plain HTTP route, with its status.
pub(crate) fn error(error: balas_domain::AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(error)).into_response()
}

/// The logged-in caller of a plain HTTP route (who has chosen their own password).
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<accounts::Caller, balas_domain::AppError> {
    let token = cookie(headers, SESSION_COOKIE);
    let caller = accounts::require_caller(state, token.as_deref()).await?;
    caller.require_active()?;
    Ok(caller)
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (database, redis) = balas_backend::health(&state).await;
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let body = format!("{{\"database\":\"{}\",\"redis\":\"{}\"}}\n", word(database), word(redis));
    let status = if database && redis { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuses server function calls that a browser says come from another site (`Sec-Fetch-Site`),
/// on top of the session cookie's `SameSite=Lax`. Clients that are not browsers do not send the
/// header and are not affected.
async fn same_site_calls_only(request: Request, next: Next) -> Response {
    let cross_site = request.uri().path().starts_with("/api/")
        && request.headers().get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        return (StatusCode::FORBIDDEN, "cross-site requests are not accepted").into_response();
    }
    next.run(request).await
}

/// A server function call whose arguments cannot be decoded (a missing field, text where a number
/// belongs) never reaches our code: server_fn answers it with a 500 and an `AppError::Transport`
/// body. That is the caller's mistake, so it is sent as 400 with the same body.
async fn malformed_calls_are_400(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !is_api || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if matches!(serde_json::from_slice(&bytes), Ok(balas_domain::AppError::Transport { .. })) {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[derive(Clone)]
struct Gate {
    state: AppState,
    /// Once set up, always set up: saves a query per page.
    set_up: Arc<AtomicBool>,
}

/// Sends people to the right door before a page renders: `/setup` until the workspace exists,
/// `/login` without a session, the inbox when a logged-in user opens `/login`.
async fn page_gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_page = request.method() == axum::http::Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/pkg/")
        && !path.starts_with("/sandbox/api/")
        // Files answer for themselves: 401 or 404, never a login page in place of a photo.
        && !path.starts_with("/media/")
        && !path.starts_with("/sandbox/media/")
        // The customer-phone page plays a customer, who has no account (it says so itself when
        // the sandbox is off).
        && path != "/phone"
        && path != "/ws"
        && !matches!(path.as_str(), "/healthz" | "/readyz" | "/favicon.ico");
    if !is_page {
        return next.run(request).await;
    }
    if !gate.set_up.load(Ordering::Relaxed) {
        match gate.state.store.is_set_up().await {
            Ok(true) => gate.set_up.store(true, Ordering::Relaxed),
            Ok(false) if path == "/setup" => return next.run(request).await,
            Ok(false) => return Redirect::to("/setup").into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot read the setup state");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    }
    if path == "/setup" {
        return Redirect::to("/login").into_response();
    }
    let token = cookie(request.headers(), SESSION_COOKIE);
    let logged_in = match accounts::caller(&gate.state, token.as_deref()).await {
        Ok(caller) => caller.is_some(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let public = path == "/login" || path.starts_with("/invite/");
    match (logged_in, public) {
        (true, true) if path == "/login" => Redirect::to("/inbox").into_response(),
        (false, false) => Redirect::to("/login").into_response(),
        _ => next.run(request).await,
    }
}
