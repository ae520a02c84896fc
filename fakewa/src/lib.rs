//! A local fake WhatsApp server for tests and benchmarks.
//!
//! It speaks the real wire protocol to the real `whatsapp-rust` 0.7.0 client: WebSocket, the Noise
//! XX / IK / XXfallback handshake, AES-GCM transport frames and binary nodes. It covers the session
//! lifecycle only — QR and pairing-code linking, login, keep-alive, kicks and a few server pushes. Encrypted messages
//! (Signal sessions, prekey bundles) are out of scope.
//!
//! The client must be built with the `danger-skip-cert-chain-verify` feature (the fake server's
//! certificate chain is not signed by WhatsApp) and pointed at [`FakeWa::url`]:
//!
//! ```text
//! let server = FakeWa::start().await?;
//! let bot = Bot::builder()
//!     .with_backend_arc(Arc::new(wacore::store::InMemoryBackend::new()))
//!     .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(server.url()))
//!     .with_version((2, 3000, 1_023_000_000)) // no HTTP version fetch
//!     .on_event(|event, _client| async move { /* forward the event */ })
//!     .build()
//!     .await?;
//! let handle = bot.spawn();
//! // Event::PairingQrCode(qr) => server.scan(&qr.code, "5511999990000", "Shop").await?
//! //   -> Event::PairSuccess, then (about 10 s later) Event::Connected.
//! ```
//!
//! To link by pairing code instead, build the bot `.with_pair_code(PairCodeOptions { phone_number, .. })`:
//! the server answers its request with a pairing ref (recorded in [`FakeWa::pairing_code_requests`]), the
//! client emits `Event::PairingCode`, and [`FakeWa::enter_code`] plays the phone typing that code (the same
//! key exchange as WhatsApp), leading to `Event::PairSuccess` and `Event::Connected` as with a scan.
//! [`FakeWa::set_pair_code_rejection`] makes the request fail instead (`Event::PairingCodeError`).
//!
//! A store whose device already has a phone JID (`DeviceCommand::SetId`) and a push name logs straight
//! in: the server answers `<success>` and the client emits `Event::Connected` within a second.

mod noise;
mod pairing;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use wacore_binary::Node;
use wacore_binary::builder::NodeBuilder;
use wacore_libsignal::protocol::KeyPair;

use crate::noise::{Established, FrameReader, FrameWriter, ServerIdentity, Transport};

/// The server JID every server stanza comes from.
const SERVER: &str = "s.whatsapp.net";
/// How many refs one `<pair-device>` carries (WhatsApp sends six: the client shows the first for 60 s and
/// each following one for 20 s, then gives up and disconnects).
const REFS_PER_PAIR_DEVICE: usize = 6;
/// How long the client gets to answer a server request (`<pair-success>`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection being closed by the server waits for the client to hang up first.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a client gets to finish the Noise handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a pairing code is valid after the client asked for it (the client's own window).
const PAIR_CODE_VALIDITY: Duration = Duration::from_secs(180);
/// How long the phone waits for the client's `companion_finish` (two PBKDF2 runs on the client side).
const COMPANION_FINISH_TIMEOUT: Duration = Duration::from_secs(30);
/// The prekey count reported to clients: above what they want, so they don't upload.
const PREKEY_COUNT: u32 = 812;

/// A running fake WhatsApp server on `127.0.0.1`. Cheap to clone; the server stops when [`FakeWa::stop`]
/// is called or the last clone is dropped, closing the listener and every connection.
#[derive(Clone)]
pub struct FakeWa {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// How the server kicks a connected client (see [`FakeWa::kick`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kick {
    /// `<stream:error code="401"/>`: the device was unlinked. The client emits `Event::LoggedOut` and the
    /// device is revoked, so a later login of it gets `<failure reason="401"/>`.
    LoggedOut,
    /// `<failure reason="402" code=.. expire=..>`: a temporary ban of `expire_secs` seconds with ban
    /// reason `code`. The client emits `Event::TemporaryBan`.
    TempBan {
        /// The ban reason code (`TempBanReason` on the client), e.g. 101.
        code: i32,
        /// How long the ban lasts, in seconds.
        expire_secs: u64,
    },
    /// `<stream:error><conflict type="replaced"/></stream:error>`: another session took over. The client
    /// emits `Event::StreamReplaced` and does not reconnect.
    Replaced,
    /// Closes the socket without a word, as a network drop would. The client reconnects on its own.
    Drop,
}

/// How the server answers new logins of a phone (see [`FakeWa::set_rejection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `<failure reason="401"/>`: the client emits `Event::LoggedOut` (with `on_connect = true`).
    LoggedOut,
    /// `<failure reason="402" code=.. expire=..>`: the client emits `Event::TemporaryBan`.
    TempBan {
        /// The ban reason code, e.g. 101.
        code: i32,
        /// How long the ban lasts, in seconds.
        expire_secs: u64,
    },
}

/// The kind of a receipt the server pushes (see [`FakeWa::push_receipt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The message reached the contact's phone (a receipt with no `type`).
    Delivered,
    /// The contact read the message (`type="read"`).
    Read,
}

/// A typing state the server pushes on behalf of a contact (see [`FakeWa::push_chatstate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    /// The contact is typing (`<composing/>`).
    Composing,
    /// The contact stopped typing (`<paused/>`).
    Paused,
}

/// A `<receipt>` the client sent (e.g. a read receipt after `mark_as_read`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReceipt {
    /// The phone of the sending session, when it was logged in.
    pub phone: Option<String>,
    /// The `to` attribute: the chat the receipt is for.
    pub to: String,
    /// The `type` attribute (`read`, `read-self`, `played`…); `None` for a plain delivery receipt.
    pub kind: Option<String>,
    /// The message ids: the `id` attribute followed by any `<list><item id>` ids.
    pub ids: Vec<String>,
}

/// A pairing-code request (`<link_code_companion_reg stage="companion_hello">`) a client sent, as the
/// server recorded it (see [`FakeWa::pairing_code_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCodeRequest {
    /// The phone number the client asked to link with (digits, from the request's `jid`).
    pub phone: String,
    /// The `link_code_pairing_ref` the server answered with; `None` when the request was refused.
    pub pairing_ref: Option<String>,
    /// `companion_platform_id` (e.g. `1` for Chrome).
    pub platform_id: String,
    /// `companion_platform_display` (e.g. `Chrome (Linux)`), what the phone shows for the new device.
    pub platform_display: String,
    /// `should_show_push_notification`: whether the phone should be notified.
    pub push_notification: bool,
    /// Whether the request's `companion_server_auth_key_pub` is the connection's Noise static key.
    pub noise_key_matches: bool,
}

/// How the server refuses a pairing-code request (see [`FakeWa::set_pair_code_rejection`]): the `<error>` a
/// `companion_hello` is answered with. The client emits `Event::PairingCodeError` with the matching
/// `PairCodeRejection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairCodeRefusal {
    /// `400 bad-request`: what WhatsApp answers for a number it does not accept, and for per-number throttling.
    BadRequest,
    /// `403 forbidden`.
    Forbidden,
    /// `429 rate-overlimit`: too many requests.
    RateOverlimit,
    /// `452 feature-not-available`: linking by phone number is not enabled for this account.
    FeatureNotAvailable,
    /// `500 internal-server-error`.
    InternalServerError,
}

impl PairCodeRefusal {
    /// The `code` and `text` of the `<error>`.
    pub fn code_and_text(self) -> (u16, &'static str) {
        match self {
            PairCodeRefusal::BadRequest => (400, "bad-request"),
            PairCodeRefusal::Forbidden => (403, "forbidden"),
            PairCodeRefusal::RateOverlimit => (429, "rate-overlimit"),
            PairCodeRefusal::FeatureNotAvailable => (452, "feature-not-available"),
            PairCodeRefusal::InternalServerError => (500, "internal-server-error"),
        }
    }
}

struct Shared {
    addr: SocketAddr,
    identity: ServerIdentity,
    handshakes: AtomicU64,
    open: watch::Sender<usize>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, ConnEntry>,
    accounts: HashMap<String, Account>,
    revoked: HashSet<Login>,
    rejections: HashMap<String, Rejection>,
    tag_counts: HashMap<String, u64>,
    receipts: Vec<ClientReceipt>,
    pings: u64,
    pair_code_requests: Vec<PairCodeRequest>,
    pair_code_rejections: HashMap<String, PairCodeRefusal>,
    /// Accepted pairing-code requests still waiting for the phone, by pairing ref.
    code_flows: HashMap<String, CodeFlow>,
    /// `enter_code` calls waiting for the client's `companion_finish`, by pairing ref.
    finish_waiters: HashMap<String, oneshot::Sender<Node>>,
}

/// An accepted `companion_hello`: what the phone needs to answer it.
struct CodeFlow {
    conn: u64,
    phone: String,
    wrapped_companion_ephemeral_pub: [u8; 80],
    started: tokio::time::Instant,
}

/// `(phone, device id)` of a registered device.
type Login = (String, u16);

/// One handshaken connection, as the API sees it.
struct ConnEntry {
    tx: mpsc::UnboundedSender<Cmd>,
    client_static: [u8; 32],
    /// `(phone, device)` of a registered device's login.
    login: Option<Login>,
    /// Whether the connection was answered with `<success>`.
    logged_in: bool,
    /// The pairing refs currently offered to an unregistered client, and when they were sent.
    refs: Vec<String>,
    refs_sent: tokio::time::Instant,
}

/// The fake "phone" behind a number: its account signing key, device ids handed out, and LID.
struct Account {
    key: KeyPair,
    next_device: u16,
    lid: String,
}

enum Cmd {
    Send(Node),
    /// Send an IQ and deliver the client's `result`/`error` answer.
    Request(Node, oneshot::Sender<Node>),
    /// Send a final stanza (or nothing, for an abrupt drop) and close the connection.
    Close(Option<Node>),
}

impl FakeWa {
    /// Starts a server on `127.0.0.1` with an OS-chosen port. Must be called inside a Tokio runtime.
    pub async fn start() -> anyhow::Result<FakeWa> {
        Self::start_on(0).await
    }

    /// Starts a server on `127.0.0.1:port` (0: any free port).
    pub async fn start_on(port: u16) -> anyhow::Result<FakeWa> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.context("binding the fake WhatsApp server")?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            addr,
            identity: ServerIdentity::generate(),
            handshakes: AtomicU64::new(0),
            open: watch::channel(0).0,
            next_id: AtomicU64::new(1),
            shutdown: shutdown_rx,
            state: Mutex::new(State::default()),
        });
        tokio::spawn(accept_loop(shared.clone(), listener));
        Ok(FakeWa { handle: Arc::new(Handle { shared, shutdown: shutdown_tx }) })
    }

    /// The WebSocket URL to give the client's transport, `ws://127.0.0.1:PORT/ws/chat`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws/chat", self.handle.shared.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.shared.addr
    }

    /// How many client sockets are open right now (including ones still handshaking).
    pub fn open_connections(&self) -> usize {
        *self.handle.shared.open.borrow()
    }

    /// Waits until exactly `count` client sockets are open, for at most `timeout`; returns whether that
    /// happened. Handy to check that a client really hung up (e.g. `wait_for_open_connections(0, ..)`).
    pub async fn wait_for_open_connections(&self, count: usize, timeout: Duration) -> bool {
        let mut open = self.handle.shared.open.subscribe();
        tokio::time::timeout(timeout, open.wait_for(|n| *n == count)).await.is_ok_and(|r| r.is_ok())
    }

    /// How many keep-alive pings (`<iq xmlns="w:p">`) clients sent; each was answered.
    pub fn pings_received(&self) -> u64 {
        self.handle.shared.lock().pings
    }

    /// How many Noise handshakes completed since the server started.
    pub fn handshakes(&self) -> u64 {
        self.handle.shared.handshakes.load(Ordering::SeqCst)
    }

    /// Stops the server: closes the listener and every connection. Clones become inert.
    pub fn stop(&self) {
        let _ = self.handle.shutdown.send(true);
    }

    /// Plays the phone scanning a QR code the client emitted (`Event::PairingQrCode`): sends a valid
    /// `<pair-success>` for `phone` (device jid `PHONE:N@s.whatsapp.net`, business name `push_name`), waits
    /// for the client's `pair-device-sign`, then ends the stream with error 515 so the client reconnects
    /// and logs in as the new device (answered with `<success>`, after which it emits `Event::Connected`).
    ///
    /// Fails if no open connection is showing that QR code's ref, or if the client rejects the pairing.
    pub async fn scan(&self, qr_code: &str, phone: &str, push_name: &str) -> anyhow::Result<()> {
        let shared = &self.handle.shared;
        let qr = pairing::parse_qr(qr_code)?;
        if phone.is_empty() || !phone.bytes().all(|b| b.is_ascii_digit()) {
            bail!("phone must be digits only, got {phone:?}");
        }
        let (tx, account_key, device, lid) = {
            let mut state = shared.lock();
            let entry = state
                .conns
                .values()
                .find(|c| !c.logged_in && c.refs.contains(&qr.pairing_ref))
                .ok_or_else(|| anyhow!("no open connection is showing pairing ref {}", qr.pairing_ref))?;
            let index = entry.refs.iter().position(|r| *r == qr.pairing_ref).unwrap_or(0);
            if entry.refs_sent.elapsed() > ref_expiry(index) {
                bail!("pairing ref {} has expired", qr.pairing_ref);
            }
            if entry.client_static != qr.noise_pub {
                bail!("the QR code's noise key does not match the connection showing its ref");
            }
            let tx = entry.tx.clone();
            let account = state.account(phone);
            let device = account.next_device;
            account.next_device += 1;
            let (key, lid) = (account.key.clone(), account.lid.clone());
            state.revoked.remove(&(phone.to_owned(), device));
            (tx, key, device, lid)
        };
        let identity = pairing::device_identity(&qr.identity_pub, &qr.adv_secret, &account_key, u32::from(device))?;
        self.send_pair_success(&tx, phone, device, &lid, push_name, identity).await
    }

    /// Sends `<pair-success>` for `PHONE:DEVICE` to the pairing connection, checks the client's
    /// `pair-device-sign`, then restarts the stream (515) so the client logs in as the new device.
    async fn send_pair_success(
        &self,
        tx: &mpsc::UnboundedSender<Cmd>,
        phone: &str,
        device: u16,
        lid: &str,
        push_name: &str,
        identity: Vec<u8>,
    ) -> anyhow::Result<()> {
        let shared = &self.handle.shared;
        let mut success = vec![
            NodeBuilder::new("device-identity").bytes(identity).build(),
            NodeBuilder::new("platform").attr("name", "android").build(),
            NodeBuilder::new("device")
                .attr("jid", format!("{phone}:{device}@s.whatsapp.net"))
                .attr("lid", format!("{lid}:{device}@lid"))
                .build(),
        ];
        if !push_name.is_empty() {
            success.push(NodeBuilder::new("biz").attr("name", push_name).build());
        }
        let iq = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", shared.next_stanza_id())
            .attr("xmlns", "md")
            .children([NodeBuilder::new("pair-success").children(success).build()])
            .build();

        let (answer_tx, answer_rx) = oneshot::channel();
        tx.send(Cmd::Request(iq, answer_tx)).map_err(|_| anyhow!("the pairing connection closed"))?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, answer_rx)
            .await
            .context("the client did not answer <pair-success>")?
            .map_err(|_| anyhow!("the pairing connection closed before answering <pair-success>"))?;
        if attr(&answer, "type").as_deref() != Some("result") {
            let error = child(&answer, "error");
            bail!(
                "the client rejected <pair-success>: code {:?}, text {:?}",
                error.and_then(|e| attr(e, "code")),
                error.and_then(|e| attr(e, "text"))
            );
        }
        if child(&answer, "pair-device-sign").is_none() {
            bail!("the client answered <pair-success> without <pair-device-sign>");
        }
        // WhatsApp then restarts the stream; the client reconnects and logs in as the new device.
        let restart = NodeBuilder::new("stream:error").attr("code", "515").build();
        let _ = tx.send(Cmd::Close(Some(restart)));
        Ok(())
    }

    /// Every pairing-code request (`companion_hello`) clients sent, oldest first, including refused ones.
    pub fn pairing_code_requests(&self) -> Vec<PairCodeRequest> {
        self.handle.shared.lock().pair_code_requests.clone()
    }

    /// Sets (or clears, with `None`) how pairing-code requests for `phone` are answered: with this `<error>`
    /// instead of a pairing ref, as WhatsApp does for a number it does not accept. The client then emits
    /// `Event::PairingCodeError` instead of `Event::PairingCode`.
    pub fn set_pair_code_rejection(&self, phone: &str, refusal: Option<PairCodeRefusal>) {
        let mut state = self.handle.shared.lock();
        match refusal {
            Some(r) => state.pair_code_rejections.insert(phone.to_owned(), r),
            None => state.pair_code_rejections.remove(phone),
        };
    }

    /// Plays the phone of `phone` typing the pairing `code` the client shows (`Event::PairingCode`), with no
    /// business name. See [`FakeWa::enter_code_as`].
    pub async fn enter_code(&self, phone: &str, code: &str) -> anyhow::Result<()> {
        self.enter_code_as(phone, code, "").await
    }

    /// Plays the phone of `phone` (business name `push_name`, none if empty) typing the pairing `code` the
    /// client shows: sends the `primary_hello` notification for the newest open pairing-code request of
    /// `phone`, waits for the client's `companion_finish`, opens its key bundle with the code, then sends a
    /// valid `<pair-success>` as [`FakeWa::scan`] does (the client emits `Event::PairSuccess`, then
    /// `Event::Connected` after the 515 restart).
    ///
    /// Fails if `phone` has no open pairing-code request within its 180 s validity, or if the code is wrong
    /// (the bundle does not open; the client is left waiting, as with a real phone).
    pub async fn enter_code_as(&self, phone: &str, code: &str, push_name: &str) -> anyhow::Result<()> {
        let shared = &self.handle.shared;
        let code = code.trim().to_uppercase();
        if code.len() != 8 {
            bail!("a pairing code has 8 characters, got {code:?}");
        }
        let (pairing_ref, tx, wrapped, account_key) = {
            let mut state = shared.lock();
            let conns = &state.conns;
            let flow = state
                .code_flows
                .iter()
                .filter(|(_, f)| f.phone == phone && conns.get(&f.conn).is_some_and(|c| !c.logged_in))
                .max_by_key(|(_, f)| f.started)
                .map(|(r, f)| (r.clone(), f.conn, f.wrapped_companion_ephemeral_pub, f.started))
                .ok_or_else(|| anyhow!("no open connection asked for a pairing code for {phone}"))?;
            let (pairing_ref, conn, wrapped, started) = flow;
            if started.elapsed() > PAIR_CODE_VALIDITY {
                bail!("the pairing code for {phone} has expired");
            }
            let entry = &conns[&conn];
            let tx = entry.tx.clone();
            let account_key = state.account(phone).key.clone();
            (pairing_ref, tx, wrapped, account_key)
        };
        let exchange = {
            let code = code.clone();
            tokio::task::spawn_blocking(move || pairing::code_exchange(&wrapped, &code)).await??
        };

        let (finish_tx, finish_rx) = oneshot::channel();
        shared.lock().finish_waiters.insert(pairing_ref.clone(), finish_tx);
        let _waiter = FinishWaiterGuard(shared.clone(), pairing_ref.clone());
        let hello = NodeBuilder::new("notification")
            .attr("from", SERVER)
            .attr("type", "link_code_companion_reg")
            .attr("id", shared.next_stanza_id())
            .attr("t", pairing::now_secs().to_string())
            .children([NodeBuilder::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children([
                    NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .bytes(exchange.wrapped_primary_ephemeral_pub.to_vec())
                        .build(),
                    NodeBuilder::new("primary_identity_pub")
                        .bytes(account_key.public_key.public_key_bytes().to_vec())
                        .build(),
                    NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref.as_bytes().to_vec()).build(),
                ])
                .build()])
            .build();
        tx.send(Cmd::Send(hello)).map_err(|_| anyhow!("the pairing connection closed"))?;
        let finish = tokio::time::timeout(COMPANION_FINISH_TIMEOUT, finish_rx)
            .await
            .context("the client did not answer primary_hello with companion_finish")?
            .map_err(|_| anyhow!("the pairing connection closed before companion_finish"))?;
        let reg =
            child(&finish, "link_code_companion_reg").ok_or_else(|| anyhow!("companion_finish without its reg"))?;
        let bundle = child_bytes(reg, "link_code_pairing_wrapped_key_bundle")
            .ok_or_else(|| anyhow!("companion_finish without a key bundle"))?;
        let companion_identity: [u8; 32] = child_bytes(reg, "companion_identity_public")
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("companion_finish without a 32-byte companion identity"))?;
        let adv_secret = pairing::open_key_bundle(&exchange, &bundle, &account_key, &companion_identity)?;

        let (device, lid) = {
            let mut state = shared.lock();
            state.code_flows.remove(&pairing_ref);
            let account = state.account(phone);
            let device = account.next_device;
            account.next_device += 1;
            let lid = account.lid.clone();
            state.revoked.remove(&(phone.to_owned(), device));
            (device, lid)
        };
        let identity = pairing::device_identity(&companion_identity, &adv_secret, &account_key, u32::from(device))?;
        self.send_pair_success(&tx, phone, device, &lid, push_name, identity).await
    }

    /// Sends a fresh `<pair-device>` (new refs) to every connection waiting to be paired, as the server
    /// does when a pairing session is refreshed; each client immediately emits a new
    /// `Event::PairingQrCode`. Returns how many connections got one.
    pub fn refresh_pairing_refs(&self) -> usize {
        let shared = &self.handle.shared;
        let mut state = shared.lock();
        let mut sent = 0;
        for conn in state.conns.values_mut().filter(|c| c.login.is_none() && !c.logged_in) {
            conn.refs = new_refs();
            conn.refs_sent = tokio::time::Instant::now();
            if conn.tx.send(Cmd::Send(pair_device(shared.next_stanza_id(), &conn.refs))).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Kicks the logged-in connections of `phone` (every one when `None`) in the given way. Returns how
    /// many connections were kicked.
    pub fn kick(&self, phone: Option<&str>, kick: Kick) -> usize {
        let mut state = self.handle.shared.lock();
        let targets: Vec<(mpsc::UnboundedSender<Cmd>, Option<Login>)> = state
            .conns
            .values()
            .filter(|c| c.logged_in && phone.is_none_or(|p| c.login.as_ref().is_some_and(|(lp, _)| lp == p)))
            .map(|c| (c.tx.clone(), c.login.clone()))
            .collect();
        for (tx, login) in &targets {
            let node = match &kick {
                Kick::LoggedOut => {
                    if let Some(login) = login {
                        state.revoked.insert(login.clone());
                    }
                    Some(NodeBuilder::new("stream:error").attr("code", "401").build())
                }
                Kick::TempBan { code, expire_secs } => Some(temp_ban(*code, *expire_secs)),
                Kick::Replaced => Some(
                    NodeBuilder::new("stream:error")
                        .children([NodeBuilder::new("conflict").attr("type", "replaced").build()])
                        .build(),
                ),
                Kick::Drop => None,
            };
            let _ = tx.send(Cmd::Close(node));
        }
        targets.len()
    }

    /// Sets (or clears, with `None`) how new logins of `phone` are answered: with a logged-out or
    /// temporary-ban `<failure>` instead of `<success>`. Open connections are not touched.
    pub fn set_rejection(&self, phone: &str, rejection: Option<Rejection>) {
        let mut state = self.handle.shared.lock();
        match rejection {
            Some(r) => state.rejections.insert(phone.to_owned(), r),
            None => state.rejections.remove(phone),
        };
    }

    /// Pushes a delivery or read `<receipt>` from contact `from_phone` for message `ids` to the logged-in
    /// session(s) of `phone`; the client emits `Event::Receipt`. Fails if `phone` has no logged-in session.
    pub fn push_receipt(&self, phone: &str, from_phone: &str, ids: &[&str], kind: ReceiptKind) -> anyhow::Result<()> {
        let (first, rest) = ids.split_first().ok_or_else(|| anyhow!("a receipt needs at least one id"))?;
        let mut receipt = NodeBuilder::new("receipt")
            .attr("from", format!("{from_phone}@s.whatsapp.net"))
            .attr("id", *first)
            .attr("t", pairing::now_secs().to_string());
        if kind == ReceiptKind::Read {
            receipt = receipt.attr("type", "read");
        }
        if !rest.is_empty() {
            receipt = receipt.children([NodeBuilder::new("list")
                .children(rest.iter().map(|id| NodeBuilder::new("item").attr("id", *id).build()))
                .build()]);
        }
        self.send_to_phone(phone, receipt.build())
    }

    /// Pushes a `<chatstate>` (typing / stopped typing) from contact `from_phone` to the logged-in
    /// session(s) of `phone`; the client emits `Event::ChatPresence`. Fails if `phone` has no session.
    pub fn push_chatstate(&self, phone: &str, from_phone: &str, state: ChatState) -> anyhow::Result<()> {
        let tag = match state {
            ChatState::Composing => "composing",
            ChatState::Paused => "paused",
        };
        let node = NodeBuilder::new("chatstate")
            .attr("from", format!("{from_phone}@s.whatsapp.net"))
            .children([NodeBuilder::new(tag).build()])
            .build();
        self.send_to_phone(phone, node)
    }

    /// Sends an arbitrary stanza to the logged-in session(s) of `phone`, for pushes this API lacks.
    /// Fails if `phone` has no logged-in session.
    pub fn send_node(&self, phone: &str, node: Node) -> anyhow::Result<()> {
        self.send_to_phone(phone, node)
    }

    fn send_to_phone(&self, phone: &str, node: Node) -> anyhow::Result<()> {
        let state = self.handle.shared.lock();
        let mut sent = 0;
        for conn in state.conns.values().filter(|c| c.logged_in && c.login.as_ref().is_some_and(|(p, _)| p == phone)) {
            if conn.tx.send(Cmd::Send(node.clone())).is_ok() {
                sent += 1;
            }
        }
        if sent == 0 {
            bail!("phone {phone} has no logged-in session");
        }
        Ok(())
    }

    /// The phones with a logged-in (answered with `<success>`) connection right now, sorted, one entry per
    /// connection.
    pub fn logged_in_phones(&self) -> Vec<String> {
        let state = self.handle.shared.lock();
        let mut phones: Vec<String> = state
            .conns
            .values()
            .filter(|c| c.logged_in)
            .filter_map(|c| c.login.as_ref().map(|(p, _)| p.clone()))
            .collect();
        phones.sort();
        phones
    }

    /// How many stanzas with this tag (`iq`, `presence`, `chatstate`, `receipt`, `ack`…) clients sent
    /// since the server started.
    pub fn stanzas_received(&self, tag: &str) -> u64 {
        self.handle.shared.lock().tag_counts.get(tag).copied().unwrap_or(0)
    }

    /// How many `<chatstate>` stanzas (typing indicators) clients sent.
    pub fn chatstates_received(&self) -> u64 {
        self.stanzas_received("chatstate")
    }

    /// How many `<presence>` stanzas (available / unavailable) clients sent.
    pub fn presences_received(&self) -> u64 {
        self.stanzas_received("presence")
    }

    /// Every `<receipt>` clients sent, oldest first.
    pub fn receipts_received(&self) -> Vec<ClientReceipt> {
        self.handle.shared.lock().receipts.clone()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_stanza_id(&self) -> String {
        format!("fakewa-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

impl State {
    fn account(&mut self, phone: &str) -> &mut Account {
        self.accounts.entry(phone.to_owned()).or_insert_with(|| Account {
            key: KeyPair::generate(&mut rand::rng()),
            next_device: 1,
            // A LID is an opaque number; derive a stable one from the phone.
            lid: format!("{}", 100_000_000_000_000u64 + phone.parse::<u64>().unwrap_or(0) % 100_000_000_000_000),
        })
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(serve(shared.clone(), tcp));
                }
                Err(e) => {
                    tracing::warn!("fakewa: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(shared.shutdown.clone()) => return,
        }
    }
}

/// Resolves once the server is stopped (or its last handle dropped).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// Decrements the open-socket count when a connection task ends, however it ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n -= 1);
    }
}

async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    shared.open.send_modify(|n| *n += 1);
    let _open = OpenGuard(shared.clone());
    tokio::select! {
        result = serve_inner(shared.clone(), tcp) => {
            if let Err(e) = result {
                tracing::debug!("fakewa: connection ended: {e:#}");
            }
        }
        _ = stopped(shared.shutdown.clone()) => {}
    }
}

async fn serve_inner(shared: Arc<Shared>, tcp: TcpStream) -> anyhow::Result<()> {
    let ws = tokio_tungstenite::accept_async(tcp).await.context("websocket upgrade")?;
    let (mut reader, mut writer) = noise::split(ws);
    let established =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, noise::accept(&shared.identity, &mut reader, &mut writer))
            .await
            .context("handshake timed out")?
            .context("handshake")?;
    shared.handshakes.fetch_add(1, Ordering::SeqCst);
    let Established { transport, client_static, payload, pattern } = established;
    tracing::debug!("fakewa: handshake done ({pattern:?})");

    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    shared.lock().conns.insert(
        id,
        ConnEntry {
            tx,
            client_static,
            login: None,
            logged_in: false,
            refs: Vec::new(),
            refs_sent: tokio::time::Instant::now(),
        },
    );
    let mut conn = Conn { id, shared: shared.clone(), writer, transport, pending: HashMap::new(), phone: None };
    let _registered = ConnGuard(shared.clone(), id);
    conn.run(&mut reader, rx, payload).await
}

/// Drops an `enter_code` call's `companion_finish` waiter however the call ends.
struct FinishWaiterGuard(Arc<Shared>, String);

impl Drop for FinishWaiterGuard {
    fn drop(&mut self) {
        self.0.lock().finish_waiters.remove(&self.1);
    }
}

/// Forgets a connection when its task ends, however it ends (including a server stop).
struct ConnGuard(Arc<Shared>, u64);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.conns.remove(&self.1);
        state.code_flows.retain(|_, flow| flow.conn != self.1);
    }
}

/// The server's half of one handshaken connection.
struct Conn {
    id: u64,
    shared: Arc<Shared>,
    writer: FrameWriter,
    transport: Transport,
    /// Server IQs waiting for the client's answer, by id.
    pending: HashMap<String, oneshot::Sender<Node>>,
    /// The phone of a registered login.
    phone: Option<String>,
}

impl Conn {
    async fn run(
        &mut self,
        reader: &mut FrameReader,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
        payload: waproto::whatsapp::ClientPayload,
    ) -> anyhow::Result<()> {
        if !self.greet(&payload).await? {
            return self.close(reader, None).await;
        }
        loop {
            tokio::select! {
                frame = reader.next_frame() => {
                    let Some(frame) = frame? else { return Ok(()) };
                    let node = self.decode(frame)?;
                    self.on_client_node(node).await?;
                }
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Send(node)) => self.send(&node).await?,
                    Some(Cmd::Request(node, answer)) => {
                        if let Some(id) = attr(&node, "id") {
                            self.pending.insert(id, answer);
                        }
                        self.send(&node).await?;
                    }
                    Some(Cmd::Close(last)) => return self.close(reader, last).await,
                    None => return Ok(()),
                },
            }
        }
    }

    /// Answers the login: `<success>` or a `<failure>` for a registered device, `<pair-device>` for a new
    /// one. Returns whether the connection stays open.
    async fn greet(&mut self, payload: &waproto::whatsapp::ClientPayload) -> anyhow::Result<bool> {
        let Some(username) = payload.username else {
            let refs = new_refs();
            let id = self.shared.next_stanza_id();
            if let Some(entry) = self.shared.lock().conns.get_mut(&self.id) {
                entry.refs = refs.clone();
                entry.refs_sent = tokio::time::Instant::now();
            }
            self.send(&pair_device(id, &refs)).await?;
            return Ok(true);
        };
        let phone = username.to_string();
        let device = payload.device.unwrap_or(0) as u16;
        let (rejection, lid) = {
            let mut state = self.shared.lock();
            let rejection = if state.revoked.contains(&(phone.clone(), device)) {
                Some(Rejection::LoggedOut)
            } else {
                state.rejections.get(&phone).cloned()
            };
            let lid = state.account(&phone).lid.clone();
            if let Some(entry) = state.conns.get_mut(&self.id) {
                entry.login = Some((phone.clone(), device));
                entry.logged_in = rejection.is_none();
            }
            (rejection, lid)
        };
        self.phone = Some(phone);
        match rejection {
            Some(Rejection::LoggedOut) => {
                self.send(&NodeBuilder::new("failure").attr("reason", "401").attr("location", "fakewa").build())
                    .await?;
                Ok(false)
            }
            Some(Rejection::TempBan { code, expire_secs }) => {
                self.send(&temp_ban(code, expire_secs)).await?;
                Ok(false)
            }
            None => {
                let now = pairing::now_secs().to_string();
                let success = NodeBuilder::new("success")
                    .attr("t", now.clone())
                    .attr("creation", now)
                    .attr("location", "fakewa")
                    .attr("props", "1")
                    .attr("lid", format!("{lid}@lid"))
                    .build();
                self.send(&success).await?;
                Ok(true)
            }
        }
    }

    /// Sends `last` (if any), then gives the client a moment to hang up before closing the socket.
    async fn close(&mut self, reader: &mut FrameReader, last: Option<Node>) -> anyhow::Result<()> {
        if let Some(node) = last {
            self.send(&node).await?;
            let _ =
                tokio::time::timeout(CLOSE_GRACE, async { while let Ok(Some(_)) = reader.next_frame().await {} }).await;
            self.writer.close().await;
        }
        Ok(())
    }

    fn decode(&mut self, frame: Vec<u8>) -> anyhow::Result<Node> {
        let plain = self.transport.decrypt(frame).context("decrypting a client frame")?;
        let unpacked = wacore_binary::util::unpack(&plain).map_err(|e| anyhow!("unpacking a client frame: {e}"))?;
        let node =
            wacore_binary::marshal::unmarshal_ref(&unpacked).map_err(|e| anyhow!("decoding a client node: {e}"))?;
        Ok(node.to_owned())
    }

    async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        let plain = wacore_binary::marshal(node).map_err(|e| anyhow!("encoding a node: {e}"))?;
        let frame = self.transport.encrypt(&plain)?;
        self.writer.send_frame(&frame).await
    }

    async fn on_client_node(&mut self, node: Node) -> anyhow::Result<()> {
        {
            let mut state = self.shared.lock();
            *state.tag_counts.entry(node.tag.to_string()).or_default() += 1;
            if node.tag == "receipt" {
                let mut ids: Vec<String> = attr(&node, "id").into_iter().collect();
                if let Some(list) = child(&node, "list") {
                    ids.extend(list.get_children_by_tag("item").filter_map(|item| attr(item, "id")));
                }
                state.receipts.push(ClientReceipt {
                    phone: self.phone.clone(),
                    to: attr(&node, "to").unwrap_or_default(),
                    kind: attr(&node, "type"),
                    ids,
                });
            }
        }
        if node.tag != "iq" {
            return Ok(());
        }
        match attr(&node, "type").as_deref() {
            Some("result") | Some("error") => {
                if let Some(answer) = attr(&node, "id").and_then(|id| self.pending.remove(&id)) {
                    let _ = answer.send(node);
                }
                Ok(())
            }
            _ => self.answer_iq(&node).await,
        }
    }

    /// Answers a client IQ with the smallest result that keeps the client content.
    async fn answer_iq(&mut self, iq: &Node) -> anyhow::Result<()> {
        let Some(id) = attr(iq, "id") else { return Ok(()) };
        let xmlns = attr(iq, "xmlns").unwrap_or_default();
        let first = iq.children().and_then(|c| c.first());
        let first_tag = first.map(|c| c.tag.to_string()).unwrap_or_default();
        if xmlns == "md"
            && first_tag == "link_code_companion_reg"
            && let Some(reg) = first
        {
            let answer = self.link_code(&id, reg);
            return self.send(&answer).await;
        }
        let mut content: Vec<Node> = Vec::new();
        let mut after: Option<Node> = None;
        match (xmlns.as_str(), first_tag.as_str()) {
            // Prekeys left on the server: plenty, so the client does not upload.
            ("encrypt", "count") => {
                content.push(NodeBuilder::new("count").attr("value", PREKEY_COUNT.to_string()).build());
            }
            // Leaving passive mode: the server then delivers the (empty) offline queue.
            ("passive", "active") => {
                after = Some(
                    NodeBuilder::new("ib").children([NodeBuilder::new("offline").attr("count", "0").build()]).build(),
                );
            }
            // App state sync: answer every collection with "conflict, nothing more", which the client
            // treats as up to date.
            ("w:sync:app:state", "sync") => {
                let collections = first
                    .and_then(|sync| sync.children())
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| c.tag == "collection")
                    .filter_map(|c| attr(c, "name"))
                    .map(|name| {
                        NodeBuilder::new("collection")
                            .attr("name", name)
                            .attr("type", "error")
                            .children([NodeBuilder::new("error").attr("code", "409").attr("text", "conflict").build()])
                            .build()
                    });
                content.push(NodeBuilder::new("sync").children(collections).build());
            }
            ("abt", "props") => {
                content.push(NodeBuilder::new("props").attr("protocol", "1").attr("hash", "fakewa").build());
            }
            ("privacy", "privacy") => {
                let categories = ["last", "online", "profile", "status", "groupadd", "readreceipts"]
                    .map(|name| NodeBuilder::new("category").attr("name", name).attr("value", "all").build());
                content.push(NodeBuilder::new("privacy").children(categories).build());
            }
            ("blocklist", _) => content.push(NodeBuilder::new("list").build()),
            // Device lists: every queried user has just its phone (device 0).
            ("usync", "usync") => {
                let users = first
                    .and_then(|usync| child(usync, "list"))
                    .map(|list| list.get_children_by_tag("user").filter_map(|u| attr(u, "jid")).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|jid| {
                        let devices = NodeBuilder::new("devices")
                            .children([NodeBuilder::new("device-list")
                                .children([NodeBuilder::new("device").attr("id", "0").build()])
                                .build()])
                            .build();
                        NodeBuilder::new("user").attr("jid", jid).children([devices]).build()
                    });
                let list = NodeBuilder::new("list").children(users).build();
                let mut usync = NodeBuilder::new("usync");
                if let Some(sid) = first.and_then(|u| attr(u, "sid")) {
                    usync = usync.attr("sid", sid);
                }
                content.push(usync.children([list]).build());
            }
            _ => {}
        }
        if xmlns == "w:p" {
            self.shared.lock().pings += 1;
        }
        let mut result = NodeBuilder::new("iq")
            .attr("from", attr(iq, "to").unwrap_or_else(|| SERVER.to_owned()))
            .attr("type", "result")
            .attr("id", id);
        if !content.is_empty() {
            result = result.children(content);
        }
        self.send(&result.build()).await?;
        if let Some(node) = after {
            self.send(&node).await?;
        }
        Ok(())
    }
}

impl Conn {
    /// Answers a pairing-code IQ: `companion_hello` gets a fresh `link_code_pairing_ref` (or the refusal set
    /// for the phone), `companion_finish` is handed to the `enter_code` call waiting for it.
    fn link_code(&mut self, id: &str, reg: &Node) -> Node {
        let result = |content: Option<Node>| {
            let iq = NodeBuilder::new("iq").attr("from", SERVER).attr("type", "result").attr("id", id);
            match content {
                Some(c) => iq.children([c]).build(),
                None => iq.build(),
            }
        };
        let error = |code: u16, text: &str| {
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "error")
                .attr("id", id)
                .children([NodeBuilder::new("error").attr("code", code.to_string()).attr("text", text).build()])
                .build()
        };
        let phone = attr(reg, "jid").and_then(|jid| jid.split('@').next().map(str::to_owned)).unwrap_or_default();
        let mut state = self.shared.lock();
        match attr(reg, "stage").as_deref() {
            Some("companion_hello") => {
                let wrapped: Option<[u8; 80]> = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")
                    .and_then(|b| b.try_into().ok());
                let noise_key = child_bytes(reg, "companion_server_auth_key_pub");
                let client_static = state.conns.get(&self.id).map(|c| c.client_static);
                let mut request = PairCodeRequest {
                    phone: phone.clone(),
                    pairing_ref: None,
                    platform_id: child_text(reg, "companion_platform_id"),
                    platform_display: child_text(reg, "companion_platform_display"),
                    push_notification: attr(reg, "should_show_push_notification").as_deref() == Some("true"),
                    noise_key_matches: noise_key.is_some_and(|k| client_static.is_some_and(|c| k[..] == c[..])),
                };
                let refusal = state.pair_code_rejections.get(&phone).copied();
                let answer = match (refusal, wrapped) {
                    (Some(refusal), _) => {
                        let (code, text) = refusal.code_and_text();
                        error(code, text)
                    }
                    (None, Some(wrapped))
                        if !phone.is_empty()
                            && phone.bytes().all(|b| b.is_ascii_digit())
                            && request.noise_key_matches =>
                    {
                        let bytes: [u8; 24] = rand::random();
                        let pairing_ref = format!("3@{}", base64::prelude::BASE64_STANDARD.encode(bytes));
                        state.code_flows.insert(
                            pairing_ref.clone(),
                            CodeFlow {
                                conn: self.id,
                                phone: phone.clone(),
                                wrapped_companion_ephemeral_pub: wrapped,
                                started: tokio::time::Instant::now(),
                            },
                        );
                        request.pairing_ref = Some(pairing_ref.clone());
                        result(Some(
                            NodeBuilder::new("link_code_companion_reg")
                                .children([NodeBuilder::new("link_code_pairing_ref")
                                    .bytes(pairing_ref.into_bytes())
                                    .build()])
                                .build(),
                        ))
                    }
                    (None, _) => error(400, "bad-request"),
                };
                state.pair_code_requests.push(request);
                answer
            }
            Some("companion_finish") => {
                let pairing_ref =
                    child_bytes(reg, "link_code_pairing_ref").map(|b| String::from_utf8_lossy(&b).into_owned());
                match pairing_ref.and_then(|r| state.finish_waiters.remove(&r)) {
                    Some(waiter) => {
                        let _ = waiter.send(NodeBuilder::new("iq").children([reg.clone()]).build());
                        result(None)
                    }
                    None => error(400, "bad-request"),
                }
            }
            _ => error(400, "bad-request"),
        }
    }
}

/// When ref number `index` of a `<pair-device>` stops being valid, counted from when it was sent: the
/// client shows the first ref for 60 s and each later one for 20 s.
fn ref_expiry(index: usize) -> Duration {
    Duration::from_secs(60 + 20 * index as u64)
}

fn new_refs() -> Vec<String> {
    (0..REFS_PER_PAIR_DEVICE)
        .map(|_| {
            let bytes: [u8; 24] = rand::random();
            format!("2@{}", base64::prelude::BASE64_STANDARD.encode(bytes))
        })
        .collect()
}

fn pair_device(id: String, refs: &[String]) -> Node {
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "set")
        .attr("id", id)
        .attr("xmlns", "md")
        .children([NodeBuilder::new("pair-device")
            .children(refs.iter().map(|r| NodeBuilder::new("ref").bytes(r.as_bytes().to_vec()).build()))
            .build()])
        .build()
}

fn temp_ban(code: i32, expire_secs: u64) -> Node {
    NodeBuilder::new("failure")
        .attr("reason", "402")
        .attr("code", code.to_string())
        .attr("expire", expire_secs.to_string())
        .attr("location", "fakewa")
        .build()
}

fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.as_str().into_owned())
}

fn child<'a>(node: &'a Node, tag: &str) -> Option<&'a Node> {
    node.get_optional_child(tag)
}

/// The content of child `tag` as bytes (binary or string content alike).
fn child_bytes(node: &Node, tag: &str) -> Option<Vec<u8>> {
    match &child(node, tag)?.content {
        Some(wacore_binary::NodeContent::Bytes(b)) => Some(b.clone()),
        Some(wacore_binary::NodeContent::String(s)) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn child_text(node: &Node, tag: &str) -> String {
    child_bytes(node, tag).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}
