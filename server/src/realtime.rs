//! `/ws`: the dashboard's live events over a typed WebSocket.
//!
//! The browser must be logged in (the session cookie is checked before the upgrade). It sends
//! `{"type":"subscribe","after":LAST_ID}` (or `null` for "from now"); the server answers
//! `subscribed`, then every event of the workspace it missed after `LAST_ID`, in order, then live
//! events as they happen. Frames that do not parse get an `error` frame; the connection stays.
//!
//! Once subscribed, the browser may report what its agent does in a conversation
//! (`{"type":"activity","conversation_id":7,"activity":"typing"}`, at most 4 a second): the other
//! agents of the workspace hear it, and typing is passed on to the customer. A conversation of
//! another workspace is refused with an `error` frame.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::live::{LiveFrame, LiveHub};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use balas_app::api::{SESSION_COOKIE, cookie};
use balas_backend::AppState;
use balas_backend::accounts::{self, Caller};
use balas_backend::inbox;
use balas_bus::{is_stream_id, stream_id_cmp};
use balas_domain::{ClientFrame, LiveEnvelope, ServerFrame};
use futures::SinkExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// The largest frame a browser may send (ours are tiny).
const MAX_FRAME: usize = 4 * 1024;
/// What a socket reads at a time (browsers send only small frames).
const READ_BUFFER: usize = 1024;
/// How long a new socket may take to subscribe.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(30);
/// Missed events are read from Redis in pages of this many.
const PAGE: usize = 1000;
/// A socket may report an agent's activity this often at most.
const ACTIVITY_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Realtime {
    pub state: AppState,
    pub hub: LiveHub,
}

pub async fn socket(
    State(realtime): State<Realtime>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A page of another site must not open a socket with our visitor's cookie.
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return (StatusCode::FORBIDDEN, "cross-site connections are not accepted").into_response();
    }
    let token = cookie(&headers, SESSION_COOKIE);
    let caller = match accounts::require_caller(&realtime.state, token.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => {
            return (StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED), error.to_string())
                .into_response();
        }
    };
    if caller.require_active().is_err() {
        return (StatusCode::FORBIDDEN, "choose your own password first").into_response();
    }
    // Who is asking comes first: an anonymous caller learns nothing else.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // A small read buffer: tungstenite zeroes the whole buffer on every read attempt, and a
    // socket tries to read each time it sends (the default 128 KiB made that most of the CPU).
    upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(realtime, caller, socket))
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(frame).expect("ServerFrame serializes")))
}

async fn serve(realtime: Realtime, caller: Caller, mut socket: WebSocket) {
    let workspace = caller.me.workspace_id;
    // Subscribe to the hub first, so nothing published while the backlog is read is missed.
    let mut live = realtime.hub.subscribe(workspace);
    let after = match tokio::time::timeout(SUBSCRIBE_WITHIN, wait_for_subscribe(&mut socket)).await {
        Ok(Some(after)) => after,
        _ => return,
    };
    let mut last = match &after {
        Some(after) => after.clone(),
        None => match realtime.state.bus.live_tail().await {
            Ok(tail) => tail,
            Err(error) => {
                tracing::warn!(%error, "ws: cannot read the live stream");
                let _ = socket
                    .send(text(&ServerFrame::Error { message: "live events are unavailable; retry".into() }))
                    .await;
                return;
            }
        },
    };
    let (missed, gap) = match backlog(&realtime, &caller, &last).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "ws: cannot read missed events");
            let _ =
                socket.send(text(&ServerFrame::Error { message: "live events are unavailable; retry".into() })).await;
            return;
        }
    };
    if socket.send(text(&ServerFrame::Subscribed { missed: missed.len(), gap })).await.is_err() {
        return;
    }
    for envelope in missed {
        last.clone_from(&envelope.id);
        if socket.feed(Message::Text(LiveFrame::new(envelope).json)).await.is_err() {
            return;
        }
    }
    if socket.flush().await.is_err() {
        return;
    }
    let mut last_activity: Option<Instant> = None;
    loop {
        tokio::select! {
            event = live.recv() => match event {
                Ok(frame) => {
                    // Send this event and every other one already waiting, then flush once: under
                    // load a socket writes many frames per system call instead of one.
                    let mut next = Some(frame);
                    let mut lagged = false;
                    while let Some(frame) = next.take() {
                        if frame.workspace() == workspace && stream_id_cmp(&frame.envelope.id, &last).is_gt() {
                            last.clone_from(&frame.envelope.id);
                            if socket.feed(Message::Text(frame.json.clone())).await.is_err() {
                                return;
                            }
                        }
                        match live.try_recv() {
                            Ok(frame) => next = Some(frame),
                            Err(TryRecvError::Lagged(_)) => lagged = true,
                            Err(_) => {}
                        }
                    }
                    if socket.flush().await.is_err() {
                        return;
                    }
                    if lagged && !catch_up(&realtime, &caller, &mut socket, &mut last).await {
                        return;
                    }
                }
                // This socket fell behind the hub: catch up from Redis, then carry on live.
                Err(RecvError::Lagged(_)) => {
                    if !catch_up(&realtime, &caller, &mut socket, &mut last).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(body))) => {
                    let reply = match serde_json::from_str::<ClientFrame>(body.as_str()) {
                        Ok(ClientFrame::Ping) => Some(ServerFrame::Pong),
                        Ok(ClientFrame::Subscribe { .. }) => {
                            Some(ServerFrame::Error { message: "already subscribed".into() })
                        }
                        Ok(ClientFrame::Activity { conversation_id, activity }) => {
                            if last_activity.is_some_and(|at| at.elapsed() < ACTIVITY_EVERY) {
                                Some(ServerFrame::Error { message: "activity frames come too fast; at most 4 a second".into() })
                            } else {
                                last_activity = Some(Instant::now());
                                inbox::activity(&realtime.state, &caller, conversation_id, activity)
                                    .await
                                    .err()
                                    .map(|error| ServerFrame::Error { message: format!("activity refused: {error}") })
                            }
                        }
                        Err(error) => Some(ServerFrame::Error { message: format!("frame not understood: {error}") }),
                    };
                    if let Some(reply) = reply
                        && socket.send(text(&reply)).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = ServerFrame::Error { message: "send text frames with JSON".into() };
                    if socket.send(text(&reply)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// Sends what the socket missed after `last` (read from Redis); false when the socket is gone.
async fn catch_up(realtime: &Realtime, caller: &Caller, socket: &mut WebSocket, last: &mut String) -> bool {
    let Ok((missed, _)) = backlog(realtime, caller, last).await else { return false };
    for envelope in missed {
        last.clone_from(&envelope.id);
        if socket.feed(Message::Text(LiveFrame::new(envelope).json)).await.is_err() {
            return false;
        }
    }
    socket.flush().await.is_ok()
}

/// Waits for the subscribe frame, answering anything else with an error frame. `None` when the
/// socket closed first; `Some(after)` with the resume point.
async fn wait_for_subscribe(socket: &mut WebSocket) -> Option<Option<String>> {
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(body) = message else { continue };
        let reply = match serde_json::from_str::<ClientFrame>(body.as_str()) {
            Ok(ClientFrame::Subscribe { after: None }) => return Some(None),
            Ok(ClientFrame::Subscribe { after: Some(after) }) if is_stream_id(&after) => return Some(Some(after)),
            Ok(ClientFrame::Subscribe { .. }) => {
                ServerFrame::Error { message: "`after` must be an event id like 1700000000000-0".into() }
            }
            Ok(ClientFrame::Ping) => ServerFrame::Pong,
            Ok(ClientFrame::Activity { .. }) => ServerFrame::Error { message: "subscribe first".into() },
            Err(error) => ServerFrame::Error { message: format!("frame not understood: {error}") },
        };
        socket.send(text(&reply)).await.ok()?;
    }
    None
}

/// Every event of the caller's workspace after `after`, in order, and whether some were trimmed.
async fn backlog(
    realtime: &Realtime,
    caller: &Caller,
    after: &str,
) -> Result<(VecDeque<LiveEnvelope>, bool), balas_bus::BusError> {
    let mut events = VecDeque::new();
    let mut from = after.to_owned();
    let mut gap = false;
    loop {
        let (page, trimmed) = realtime.state.bus.live_since(caller.me.workspace_id, &from, PAGE).await?;
        gap |= trimmed;
        let Some(last) = page.last_read.clone() else { break };
        from = last;
        events.extend(page.events);
        if !page.more {
            break;
        }
    }
    Ok((events, gap))
}
