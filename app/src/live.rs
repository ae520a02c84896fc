//! The browser's end of `/ws`: one WebSocket per tab that reconnects by itself (with backoff)
//! and resumes after the last event it saw, so nothing is missed or shown twice.
//!
//! Components listen with [`on_live`] (the listener goes away with the component) and talk with
//! [`send_frame`]. The connection's state is a signal in the context ([`LiveStatus`]), so the frame
//! can say when it is reconnecting. Browser only: on the server nothing here runs (it is started
//! from an effect).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use balas_domain::{ClientFrame, LiveEnvelope, ServerFrame};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Connecting,
    Live,
    Reconnecting,
}

impl LiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveStatus::Connecting => "connecting",
            LiveStatus::Live => "live",
            LiveStatus::Reconnecting => "reconnecting",
        }
    }
}

/// What a listener hears.
pub enum Notice<'a> {
    Event(&'a LiveEnvelope),
    /// Events may have been missed (the first subscription, or a resume point older than the kept
    /// history): reload what is shown.
    Resync,
}

type Listener = Rc<dyn Fn(&Notice<'_>)>;

thread_local! {
    static LISTENERS: RefCell<Vec<(u64, Listener)>> = const { RefCell::new(Vec::new()) };
    static NEXT_LISTENER: Cell<u64> = const { Cell::new(0) };
    static SOCKET: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
}

/// Calls `listener` for every live event (and resync) while the calling component lives.
pub fn on_live(listener: impl Fn(&Notice<'_>) + 'static) {
    let id = NEXT_LISTENER.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    LISTENERS.with(|all| all.borrow_mut().push((id, Rc::new(listener))));
    on_cleanup(move || LISTENERS.with(|all| all.borrow_mut().retain(|(other, _)| *other != id)));
}

fn notify(notice: &Notice<'_>) {
    // Clone the list first: a listener may add or remove listeners.
    let listeners: Vec<Listener> = LISTENERS.with(|all| all.borrow().iter().map(|(_, l)| l.clone()).collect());
    for listener in listeners {
        listener(notice);
    }
}

/// Sends a frame if the socket is open (frames are hints: one lost while reconnecting is repeated
/// by its sender soon enough).
pub fn send_frame(frame: &ClientFrame) {
    let Ok(text) = serde_json::to_string(frame) else { return };
    SOCKET.with(|socket| {
        if let Some(socket) = socket.borrow().as_ref()
            && socket.ready_state() == WebSocket::OPEN
        {
            let _ = socket.send_with_str(&text);
        }
    });
}

struct Connection {
    status: RwSignal<LiveStatus>,
    /// The id of the last event seen: where a reconnect resumes.
    last: RefCell<Option<String>>,
    attempt: Cell<u32>,
    /// When the last frame arrived (ms), to notice a connection that went silent.
    heard: Cell<f64>,
}

/// Starts the live connection (once per page).
pub fn start(status: RwSignal<LiveStatus>) {
    let connection =
        Rc::new(Connection { status, last: RefCell::new(None), attempt: Cell::new(0), heard: Cell::new(now_ms()) });
    connect(connection.clone());
    // Ping now and then; a socket that stays silent well past that is dead without knowing it
    // (a network drop without a reset): close it, which reconnects.
    let watchdog = connection.clone();
    let _ = set_interval_with_handle(
        move || {
            send_frame(&ClientFrame::Ping);
            if now_ms() - watchdog.heard.get() > 45_000.0 {
                SOCKET.with(|socket| {
                    if let Some(socket) = socket.borrow().as_ref() {
                        let _ = socket.close();
                    }
                });
            }
        },
        std::time::Duration::from_secs(20),
    );
}

pub fn now_ms() -> f64 {
    web_sys::js_sys::Date::now()
}

fn connect(connection: Rc<Connection>) {
    let location = window().location();
    let scheme = if location.protocol().as_deref() == Ok("https:") { "wss:" } else { "ws:" };
    let host = location.host().unwrap_or_default();
    let Ok(socket) = WebSocket::new(&format!("{scheme}//{host}/ws")) else {
        retry(connection);
        return;
    };
    let on_open = {
        let connection = connection.clone();
        Closure::<dyn FnMut()>::new(move || {
            let after = connection.last.borrow().clone();
            send_frame(&ClientFrame::Subscribe { after });
        })
    };
    let on_message = {
        let connection = connection.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            connection.heard.set(now_ms());
            let Some(text) = event.data().as_string() else { return };
            match serde_json::from_str::<ServerFrame>(&text) {
                Ok(ServerFrame::Subscribed { gap, .. }) => {
                    let first = connection.last.borrow().is_none();
                    connection.attempt.set(0);
                    connection.status.set(LiveStatus::Live);
                    if first || gap {
                        notify(&Notice::Resync);
                    }
                }
                Ok(ServerFrame::Event { event }) => {
                    *connection.last.borrow_mut() = Some(event.id.clone());
                    notify(&Notice::Event(&event));
                }
                Ok(ServerFrame::Pong) => {}
                Ok(ServerFrame::Error { message }) => leptos::logging::warn!("live: {message}"),
                Err(error) => leptos::logging::warn!("live: a frame was not understood: {error}"),
            }
        })
    };
    let on_close = {
        let connection = connection.clone();
        Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            SOCKET.with(|socket| socket.borrow_mut().take());
            connection.status.set(LiveStatus::Reconnecting);
            retry(connection.clone());
        })
    };
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    // The handlers live as long as the socket (one set per connection; reconnects are rare).
    on_open.forget();
    on_message.forget();
    on_close.forget();
    SOCKET.with(|current| *current.borrow_mut() = Some(socket));
}

/// Connects again after a backoff: 0.5 s, 1 s, 2 s … up to 10 s, with jitter.
fn retry(connection: Rc<Connection>) {
    let attempt = connection.attempt.get();
    connection.attempt.set(attempt.saturating_add(1));
    let ceiling = (500.0 * 2f64.powi(attempt.min(5) as i32)).min(10_000.0);
    let wait = ceiling / 2.0 + web_sys::js_sys::Math::random() * ceiling / 2.0;
    set_timeout(move || connect(connection), std::time::Duration::from_millis(wait as u64));
}
