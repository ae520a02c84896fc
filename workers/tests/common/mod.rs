//! A whole Balas for pipeline tests: the server (in this process), WhatsApp workers (in this
//! process or as real child processes, to kill -9), the sandbox network, a real Redis and a real
//! SQLite file, and helpers to play admins, browsers and customers.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use balas_backend::Settings;
use balas_bus::Bus;
use balas_domain::{Channel, LiveEnvelope, PhoneNumber, ServerFrame, WorkerKind};
use balas_storage::Store;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN_EMAIL: &str = "ana@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// Waits until `check` gives a value, checking every 25 ms, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Harness {
    pub settings: Settings,
    pub bus: Bus,
    pub store: Store,
    pub server: Option<Server>,
    pub http: reqwest::Client,
    _db: balas_testkit::TestDatabase,
}

/// A logged-in browser: its session cookie.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
}

impl Harness {
    /// Starts the server with the sandbox on; `tune` may change the settings first.
    pub async fn start(tune: impl FnOnce(&mut Settings)) -> Self {
        let db = balas_testkit::sqlite();
        let mut settings = Settings {
            database_url: SecretString::from(db.url.clone()),
            redis_url: SecretString::from(balas_testkit::redis_url()),
            redis_prefix: balas_testkit::redis_prefix(),
            sandbox: true,
            // The fake AI provider, file servers and webhook receivers run on this machine.
            allow_private_urls: true,
            media_dir: db.dir().expect("a SQLite test database has a folder").join("media"),
            ..Settings::default()
        };
        tune(&mut settings);
        let bus = Bus::connect(settings.redis_url.expose_secret(), &settings.redis_prefix).await.unwrap();
        let store = Store::open(settings.database_url.expose_secret(), 4).await.unwrap();
        // Answers as the server sent them (a test that wants a browser's gzip asks for it).
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_gzip().build().unwrap();
        let mut harness = Self { settings, bus, store, server: None, http, _db: db };
        harness.start_server().await;
        harness
    }

    pub async fn start_server(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(balas_server::launch(self.settings.clone(), listener, async {
            let _ = stopped.await;
        }));
        self.server = Some(Server { base, stop: Some(stop), task });
    }

    /// Starts another server instance on the same database and Redis (as behind a load balancer);
    /// it runs until the test ends.
    pub async fn another_server(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(balas_server::launch(self.settings.clone(), listener, std::future::pending()));
        base
    }

    /// Stops the server the hard way: its tasks die mid-work, as in a crash (nothing is flushed,
    /// nothing acknowledged that was not acknowledged already).
    pub fn crash_server(&mut self) {
        let server = self.server.take().expect("a running server");
        server.task.abort();
    }

    pub async fn stop_server(&mut self) {
        let mut server = self.server.take().expect("a running server");
        let _ = server.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), server.task).await.expect("server stops").unwrap().unwrap();
    }

    pub fn base(&self) -> &str {
        &self.server.as_ref().expect("a running server").base
    }

    /// Calls a server function with form fields as `browser`; returns the status and JSON body.
    pub async fn call(&self, browser: &Browser, name: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/{name}", self.base()))
            .header(reqwest::header::COOKIE, &browser.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Calls a server function that takes JSON (its arguments as one object) as `browser`.
    pub async fn call_json(&self, browser: &Browser, name: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/{name}", self.base()))
            .header(reqwest::header::COOKIE, &browser.cookie)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sets the installation up and logs its admin in.
    pub async fn admin(&self) -> Browser {
        let form = [
            ("workspace_name", "Toko Maju"),
            ("name", "Ana Admin"),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ];
        let response = self.http.post(format!("{}/api/setup", self.base())).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
        self.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Browser {
        let form = [("email", email), ("password", password)];
        let response = self.http.post(format!("{}/api/login", self.base())).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("balas_session="))
            .expect("a session cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Browser { cookie }
    }

    /// A second workspace with its own admin, logged in.
    /// An agent of the admin's workspace, added and logged in with a password of their own.
    pub async fn agent(&self, admin: &Browser, email: &str) -> Browser {
        let member = [
            ("name", "Budi Agent"),
            ("email", email),
            ("role", "agent"),
            ("onboarding", "initial_password"),
            ("initial_password", "initial-pass-1"),
        ];
        let (status, body) = self.call(admin, "add_member", &member).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let agent = self.log_in(email, "initial-pass-1").await;
        let change = [("current_password", "initial-pass-1"), ("new_password", "budi-own-password")];
        let (status, body) = self.call(&agent, "change_password", &change).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        agent
    }

    pub async fn other_workspace(&self) -> Browser {
        let email = balas_domain::Email::parse("olga@other.example").unwrap();
        let name = balas_domain::PersonName::parse("Olga Other").unwrap();
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0qKq9w5WnWwF7cQfJYv0cHcI3Jb9gq3l1gSg7S1Qm0Q";
        let member = balas_storage::NewMember {
            email: &email,
            name: &name,
            role: balas_domain::Role::Admin,
            password_hash: Some(hash),
            must_change_password: false,
        };
        let workspace = balas_domain::WorkspaceName::parse("Other Shop").unwrap();
        self.store.create_workspace(&workspace, &member, balas_backend::now()).await.unwrap();
        // Log in through the store: the hash above is not of a known password.
        let token = format!("test-token-{}", balas_backend::short_id());
        let record = self.store.login_record(&email).await.unwrap().unwrap();
        let hash = balas_backend::accounts::session_token_hash(&token);
        let now = balas_backend::now();
        self.store
            .create_session(&balas_storage::NewSession {
                token_hash: &hash,
                user_id: record.user_id,
                workspace_id: record.workspace_id,
                created_at: now,
                expires_at: now.plus_millis(3_600_000),
                user_agent: "test",
                ip: "127.0.0.1",
            })
            .await
            .unwrap();
        Browser { cookie: format!("balas_session={token}") }
    }

    pub async fn create_channel(&self, admin: &Browser, name: &str, phone: &str, rate: u32) -> Channel {
        let rate = rate.to_string();
        let (status, body) =
            self.call(admin, "create_sandbox_channel", &[("name", name), ("phone", phone), ("rate", &rate)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// A simulated customer sends a message; returns its WhatsApp id.
    pub async fn customer_send(&self, from: &str, to: &PhoneNumber, text: &str) -> String {
        let body = serde_json::json!({ "from": from, "to": to.as_str(), "text": text });
        let response =
            self.http.post(format!("{}/sandbox/api/messages", self.base())).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["wa_id"].as_str().unwrap().to_owned()
    }

    /// Opens the live WebSocket as `browser` and subscribes after `after`.
    pub async fn live(&self, browser: &Browser, after: Option<&str>) -> Live {
        self.live_on(self.base(), browser, after).await
    }

    /// Like [`Harness::live`], on the server at `base`.
    pub async fn live_on(&self, base: &str, browser: &Browser, after: Option<&str>) -> Live {
        let url = format!("{}/ws", base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("cookie", browser.cookie.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("the WebSocket opens");
        let subscribe = serde_json::json!({ "type": "subscribe", "after": after });
        socket.send(WsMessage::text(subscribe.to_string())).await.unwrap();
        let mut live = Live { socket };
        match live.frame().await {
            ServerFrame::Subscribed { .. } => live,
            other => panic!("expected subscribed, got {other:?}"),
        }
    }

    pub fn worker_settings(&self) -> Settings {
        self.settings.clone()
    }

    /// Runs a WhatsApp worker in this process until the returned sender is used.
    pub fn worker(&self) -> InProcessWorker {
        self.worker_of(WorkerKind::Whatsapp)
    }

    /// Runs an AI worker in this process.
    pub fn ai_worker(&self) -> InProcessWorker {
        self.worker_of(WorkerKind::Ai)
    }

    fn worker_of(&self, kind: WorkerKind) -> InProcessWorker {
        let settings = self.worker_settings();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            balas_workers::run(kind, &settings, async {
                let _ = stopped.await;
            })
            .await
        });
        InProcessWorker { stop: Some(stop), task }
    }

    /// Runs a WhatsApp worker as a child process (which a test may kill -9).
    pub fn worker_process(&self) -> tokio::process::Child {
        let s = &self.settings;
        tokio::process::Command::new(env!("CARGO_BIN_EXE_balas-wa-worker"))
            .env("BALAS_DATABASE_URL", s.database_url.expose_secret())
            .env("BALAS_REDIS_URL", s.redis_url.expose_secret())
            .env("BALAS_REDIS_PREFIX", &s.redis_prefix)
            .env("BALAS_SANDBOX", s.sandbox.to_string())
            .env("BALAS_ALLOW_PRIVATE_URLS", s.allow_private_urls.to_string())
            .env("BALAS_MEDIA_DIR", &s.media_dir)
            .env("BALAS_SANDBOX_BAN_ABOVE_PER_SEC", s.sandbox_ban_above_per_sec.to_string())
            .env("BALAS_SANDBOX_LATENCY_MS", s.sandbox_latency_ms.to_string())
            .env("BALAS_CONFIG", "/nonexistent/balas.toml")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("start balas-wa-worker")
    }
}

pub struct InProcessWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessWorker {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), &mut self.task).await.expect("worker stops").unwrap().unwrap();
    }
}

/// A browser's live connection.
pub struct Live {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Live {
    /// The next frame (within 20 s).
    pub async fn frame(&mut self) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a frame within 20 s")
                .expect("the socket is open")
                .expect("a readable frame");
            if let WsMessage::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}"));
            }
        }
    }

    /// The next event.
    pub async fn event(&mut self) -> LiveEnvelope {
        loop {
            if let ServerFrame::Event { event } = self.frame().await {
                return *event;
            }
        }
    }

    /// Whether any frame arrives within `window` (used to check that nothing comes).
    pub async fn quiet_for(&mut self, window: Duration) -> Option<ServerFrame> {
        match tokio::time::timeout(window, self.socket.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Some(Ok(_))) | Err(_) => None,
            Ok(other) => panic!("socket ended: {other:?}"),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(WsMessage::text(text.to_owned())).await.unwrap();
    }
}

impl Harness {
    /// The server's state, for queuing many messages without HTTP.
    pub async fn app_state(&self) -> balas_backend::AppState {
        balas_backend::AppState::connect(self.settings.clone()).await.unwrap()
    }

    /// Runs `sql` on the test's SQLite file directly (see [`balas_testkit::TestDatabase::execute`]).
    pub async fn execute_sql(&self, sql: &str) {
        self._db.execute(sql).await;
    }

    /// Runs the server as a child process on `port` (which a test may kill -9). The binary is
    /// built next to this package's worker binary by `cargo xtask test`.
    pub fn server_process(&self, port: u16) -> tokio::process::Child {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_balas-wa-worker")).with_file_name("balas-server");
        assert!(binary.exists(), "{} is missing: build it with `cargo build -p balas-server`", binary.display());
        let s = &self.settings;
        tokio::process::Command::new(binary)
            .env("BALAS_LISTEN", format!("127.0.0.1:{port}"))
            .env("BALAS_DATABASE_URL", s.database_url.expose_secret())
            .env("BALAS_REDIS_URL", s.redis_url.expose_secret())
            .env("BALAS_REDIS_PREFIX", &s.redis_prefix)
            .env("BALAS_SANDBOX", s.sandbox.to_string())
            .env("BALAS_ALLOW_PRIVATE_URLS", s.allow_private_urls.to_string())
            .env("BALAS_MEDIA_DIR", &s.media_dir)
            .env("BALAS_CONFIG", "/nonexistent/balas.toml")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("start balas-server")
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills a child process the hard way (SIGKILL) and waits until it is gone.
pub async fn kill_9(child: &mut tokio::process::Child) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// Waits for the channel to report itself connected.
pub async fn wait_connected(live: &mut Live, channel: &Channel) {
    loop {
        let event = live.event().await;
        if let balas_domain::LiveEvent::ChannelState {
            channel_id, state: balas_domain::ChannelState::Connected, ..
        } = event.event
            && channel_id == channel.id
        {
            return;
        }
    }
}

/// The next new message on the live socket, with its event id and conversation.
pub async fn next_message(live: &mut Live) -> (String, balas_domain::Message, balas_domain::ConversationId) {
    loop {
        let envelope = live.event().await;
        if let balas_domain::LiveEvent::MessageNew { message, conversation } = envelope.event {
            return (envelope.id, *message, conversation.id);
        }
    }
}

/// A tiny but real PNG (1×1, transparent).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
