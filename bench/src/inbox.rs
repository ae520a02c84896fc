//! The agent's inbox in a real browser: Chromium, driven by Playwright from
//! `end2end/bench/inbox-latency.mjs`, on the release site (`cargo xtask bench inbox` builds it and
//! points `BALAS_SITE_ROOT` at it; the server processes inherit that).
//!
//! - Live: the time from a customer's send until the message shows in the agent's conversation
//!   list, taken in the agent's page (one clock: the page sends the probe messages through the
//!   sandbox API itself), first on an idle Balas, then under the pipeline benchmark's load.
//! - Login: from submitting the login form until the inbox is interactive (first conversation row,
//!   hydrated, live socket subscribed), on a database seeded with many conversations and messages.
//! - Size: the release wasm, JS and CSS, raw and gzipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail, ensure};
use balas_domain::{Channel, PhoneNumber};
use futures::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::setup::{ADMIN_EMAIL, ADMIN_PASSWORD, Bench, Processes, log_in};
use crate::{Args, percentile, pipeline, report};

/// The customers that send the probe messages, in turn (each well under the sandbox's ban rate).
const PROBE_PHONES: usize = 4;

pub async fn run(args: &Args) -> Result<()> {
    let probes = args.number("--probes", 120)?;
    let interval = args.number("--interval", 300)?;
    let timeout = args.number("--timeout", 15_000)?;
    let rate = args.number("--rate", 200)?;
    let clients = args.number("--clients", 1000)? as usize;
    let customers = args.number("--customers", 200)? as usize;
    let conversations = args.number("--conversations", 5000)?;
    let messages = args.number("--messages", 100_000)?;
    let logins = args.number("--logins", 5)?;
    let site = PathBuf::from(
        std::env::var_os("BALAS_SITE_ROOT")
            .context("BALAS_SITE_ROOT is not set: run this benchmark with `cargo xtask bench inbox`")?,
    );

    let mut figures = vec![("benchmark", json!("inbox"))];
    sizes(&site.join("pkg"), &mut figures)?;

    // Live: a workspace with a channel for the load and one for the probes.
    let bench = Bench::start().await?;
    let load_channel = bench.channel(1, 5).await?;
    let probe_channel = bench.channel(2, 5).await?;
    let balas = start_balas(&bench, &[&load_channel, &probe_channel]).await?;
    let from: Vec<String> = (0..PROBE_PHONES).map(|i| format!("+62816{i:07}")).collect();
    let live_args = |probes: u64| -> Vec<String> {
        [
            "live",
            "--url",
            &balas.base,
            "--email",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
            "--channel",
            probe_channel.phone.as_str(),
            "--from",
            &from.join(","),
            "--probes",
            &probes.to_string(),
            "--interval",
            &interval.to_string(),
            "--timeout",
            &timeout.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    println!("idle: {probes} probe messages, one every {interval} ms…");
    let idle = browser(&live_args(probes)).await?;
    figures.push(("probe_timeout_ms", json!(timeout)));
    push_latencies(&mut figures, IDLE, &idle);

    // The same under the pipeline benchmark's load: `clients` dashboard sockets open, and `customers`
    // sending `rate` messages per second to the other channel of the same workspace (so the agent's
    // list and socket carry it too).
    let (stop_clients, clients_stopped) = tokio::sync::watch::channel(false);
    let frames = Arc::new(AtomicU64::new(0));
    let client_thread = if clients > 0 {
        println!("opening {clients} WebSockets…");
        let url = format!("{}/ws", balas.base.replace("http://", "ws://"));
        let cookie = log_in(&balas.base).await?;
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let frames = frames.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(hold_clients(url, cookie, clients, frames, ready_tx, clients_stopped))
        });
        ready.await.context("the client thread stopped")??;
        Some(thread)
    } else {
        None
    };
    println!("loaded: {customers} customers send {rate} messages/s; {probes} probe messages…");
    let phones: Vec<PhoneNumber> =
        (0..customers).map(|i| PhoneNumber::parse(&format!("+62813{i:07}"))).collect::<Result<_, _>>()?;
    let started = tokio::time::Instant::now();
    // The load runs until the browser is done (an hour at most).
    let loaded_args = live_args(probes);
    let loaded = tokio::select! {
        result = browser(&loaded_args) => result?,
        result = pipeline::send_load(&bench, &load_channel.phone, &phones, rate, (rate * 3600) as usize) => {
            result?;
            bail!("the load ended before the browser did");
        }
    };
    let loaded_for = started.elapsed().as_secs_f64();
    let _ = stop_clients.send(true);
    if let Some(thread) = client_thread {
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
    }
    balas.stop().await;
    figures.push(("load_rate_per_s", json!(rate)));
    figures.push(("load_clients", json!(clients)));
    figures.push(("load_seconds", json!(round(loaded_for))));
    if clients > 0 {
        let per_client = frames.load(Ordering::Relaxed) as f64 / clients as f64 / loaded_for;
        figures.push(("load_frames_per_client_per_s", json!(round(per_client))));
    }
    push_latencies(&mut figures, LOADED, &loaded);
    figures.push(("loaded_conversations_listed", loaded["conversations_listed"].clone()));

    // Login on a big inbox: a fresh database with the conversations and messages inserted directly.
    let bench = Bench::start().await?;
    let mut channels = Vec::new();
    for n in 1..=4 {
        channels.push(bench.channel(n, 5).await?);
    }
    println!("seeding {conversations} conversations and {messages} messages…");
    let (seeded_conversations, seeded_messages) = seed(&bench, &channels, conversations, messages).await?;
    let balas = start_balas(&bench, &channels.iter().collect::<Vec<_>>()).await?;
    println!("{logins} logins…");
    let login = browser(
        &["login", "--url", &balas.base, "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, "--runs"]
            .map(str::to_owned)
            .into_iter()
            .chain([logins.to_string()])
            .collect::<Vec<_>>(),
    )
    .await?;
    balas.stop().await;
    figures.push(("seeded_conversations", json!(seeded_conversations)));
    figures.push(("seeded_messages", json!(seeded_messages)));
    figures.push(("login_runs", json!(logins)));
    let runs = login["runs"].as_array().context("no login runs")?;
    for (key, median, max) in [
        ("inbox_document_ms", "login_to_inbox_document_p50_ms", None),
        ("first_row_ms", "login_to_first_row_p50_ms", None),
        ("hydrated_ms", "login_to_hydrated_p50_ms", None),
        ("live_ms", "login_to_live_p50_ms", None),
        ("interactive_ms", "login_to_interactive_p50_ms", Some("login_to_interactive_max_ms")),
    ] {
        let mut values: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        values.sort_by(f64::total_cmp);
        figures.push((median, json!(round(percentile(&values, 50.0)))));
        if let Some(max) = max {
            figures.push((max, json!(round(values.last().copied().unwrap_or(f64::NAN)))));
        }
    }
    report(args, "inbox: in Chromium, on the release site", &figures);
    Ok(())
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The release bundle's files, raw and gzipped (gzip's default level, as the server's compression).
fn sizes(pkg: &Path, figures: &mut Vec<(&'static str, Value)>) -> Result<()> {
    for (file, raw, gzipped) in [
        ("balas.wasm", "wasm_bytes", "wasm_gzip_bytes"),
        ("balas.js", "js_bytes", "js_gzip_bytes"),
        ("balas.css", "css_bytes", "css_gzip_bytes"),
    ] {
        let path = pkg.join(file);
        let size = std::fs::metadata(&path).with_context(|| format!("{} is missing", path.display()))?.len();
        let gzip = std::process::Command::new("gzip").arg("-c").arg(&path).output().context("run gzip")?;
        ensure!(gzip.status.success(), "gzip failed on {}", path.display());
        figures.push((raw, json!(size)));
        figures.push((gzipped, json!(gzip.stdout.len())));
    }
    Ok(())
}

/// The figures of one live phase, by name: probes sent, sends the sandbox API refused, probes
/// shown, send → visible p50, p99 and max, send → DOM change p50.
const IDLE: [&str; 7] = [
    "idle_probes_sent",
    "idle_probe_send_failures",
    "idle_probes_shown",
    "idle_send_to_visible_p50_ms",
    "idle_send_to_visible_p99_ms",
    "idle_send_to_visible_max_ms",
    "idle_send_to_dom_p50_ms",
];
const LOADED: [&str; 7] = [
    "loaded_probes_sent",
    "loaded_probe_send_failures",
    "loaded_probes_shown",
    "loaded_send_to_visible_p50_ms",
    "loaded_send_to_visible_p99_ms",
    "loaded_send_to_visible_max_ms",
    "loaded_send_to_dom_p50_ms",
];

/// Adds one live phase's figures: "visible" is the next frame after the row changed (`painted_ms`),
/// "DOM" the change itself (`dom_ms`). Percentiles are over every probe sent: one the list never
/// showed (within the script's timeout) counts as never, so a percentile that lands on it is null.
fn push_latencies(figures: &mut Vec<(&'static str, Value)>, names: [&'static str; 7], result: &Value) {
    let sent_count = result["sent"].as_u64().unwrap_or(0) as usize;
    let sorted = |key: &str| {
        let mut values: Vec<f64> =
            result[key].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        let shown = values.len();
        values.resize(sent_count.max(shown), f64::INFINITY);
        values.sort_by(f64::total_cmp);
        (values, shown)
    };
    let (painted, shown_count) = sorted("painted_ms");
    let (dom, _) = sorted("dom_ms");
    let [sent, failures, shown, p50, p99, max, dom_p50] = names;
    figures.push((sent, result["sent"].clone()));
    figures.push((failures, result["failed_sends"].clone()));
    figures.push((shown, json!(shown_count)));
    figures.push((p50, json!(round(percentile(&painted, 50.0)))));
    figures.push((p99, json!(round(percentile(&painted, 99.0)))));
    figures.push((max, json!(round(painted.last().copied().unwrap_or(f64::NAN)))));
    figures.push((dom_p50, json!(round(percentile(&dom, 50.0)))));
}

/// Runs the browser script and returns its last stdout line as JSON.
async fn browser(args: &[String]) -> Result<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("end2end");
    let output = tokio::process::Command::new("node")
        .arg(dir.join("bench").join("inbox-latency.mjs"))
        .args(args)
        .current_dir(&dir)
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .context("run node (is Node installed, and `npm ci` done in end2end?)")?;
    ensure!(output.status.success(), "inbox-latency.mjs {} failed: {}", args[0], output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("the script printed no JSON")?;
    Ok(serde_json::from_str(last)?)
}

/// Starts Balas' processes with `channels` connected, and checks that the server serves the site.
async fn start_balas(bench: &Bench, channels: &[&Channel]) -> Result<Processes> {
    let balas = bench.start_processes(channels).await?;
    let page = reqwest::get(format!("{}/pkg/balas.js", balas.base)).await?;
    ensure!(page.status().is_success(), "the server does not serve the site: is BALAS_SITE_ROOT right?");
    Ok(balas)
}

/// Opens `clients` subscribed dashboard WebSockets, as the pipeline benchmark does (says so on
/// `ready`), then reads what they get, counting frames, until `stop`.
async fn hold_clients(
    url: String,
    cookie: String,
    clients: usize,
    frames: Arc<AtomicU64>,
    ready: tokio::sync::oneshot::Sender<Result<()>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let open = |_: usize| {
        let (url, cookie) = (url.clone(), cookie.clone());
        async move {
            let mut request = url.into_client_request()?;
            request.headers_mut().insert("cookie", cookie.parse()?);
            let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
            let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
            socket.send(Message::text(json!({ "type": "subscribe", "after": null }).to_string())).await?;
            anyhow::Ok(socket)
        }
    };
    let mut sockets = Vec::with_capacity(clients);
    for chunk in 0..clients.div_ceil(50) {
        let opening = (chunk * 50..((chunk + 1) * 50).min(clients)).map(open);
        for socket in futures::future::join_all(opening).await {
            match socket {
                Ok(socket) => sockets.push(socket),
                Err(error) => {
                    let _ = ready.send(Err(error));
                    bail!("a client could not connect");
                }
            }
        }
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let (frames, mut stop) = (frames.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        frame = socket.next() => match frame {
                            Some(Ok(_)) => frames.fetch_add(1, Ordering::Relaxed),
                            _ => break,
                        },
                    };
                }
            })
        })
        .collect();
    let _ = ready.send(Ok(()));
    for reader in readers {
        reader.await?;
    }
    Ok(())
}

/// Inserts `conversations` conversations (one contact each, spread over `channels`) with
/// `messages / conversations` messages each, customer and agent in turn, one second apart and all
/// in the past; straight into the SQLite file, in one transaction. Returns the counts stored.
async fn seed(bench: &Bench, channels: &[Channel], conversations: u64, messages: u64) -> Result<(i64, i64)> {
    let per = (messages / conversations.max(1)).max(1) as i64;
    let (conversations, total) = (conversations as i64, conversations as i64 * per);
    let k = channels.len() as i64;
    let channel0 = channels[0].id.0;
    ensure!(
        channels.iter().enumerate().all(|(i, c)| c.id.0 == channel0 + i as i64),
        "the seeded channels' ids are not consecutive"
    );
    let workspace = bench.workspace.0;
    let end = balas_backend::now().0 - 60_000;
    let start = end - total * 1000;
    // Rows `i` of 0..count, for INSERT … SELECT.
    let numbers =
        |count: i64| format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count})");
    // The last message of each conversation is the customer's (so the list previews a question).
    let inbound = format!("({per} - 1 - i % {per}) % 2 = 0");
    let body = format!("'Halo, mau tanya soal pesanan ' || (i / {per}) || '-' || (i % {per}) || ', sudah dikirim?'");

    let mut db = sqlx::SqliteConnection::connect(bench.settings.database_url.expose_secret()).await?;
    let mut tx = db.begin().await?;
    let next_id = |table: &str| format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}");
    let contact0: i64 = sqlx::query_scalar(&next_id("contacts")).fetch_one(&mut *tx).await?;
    let conversation0: i64 = sqlx::query_scalar(&next_id("conversations")).fetch_one(&mut *tx).await?;
    let message0: i64 = sqlx::query_scalar(&next_id("messages")).fetch_one(&mut *tx).await?;
    let statements = [
        format!(
            "{} INSERT INTO contacts (id, workspace_id, phone, name, created_at) \
             SELECT {contact0} + i, {workspace}, printf('+62814%07d', i), 'Pelanggan ' || i, {start} FROM n",
            numbers(conversations)
        ),
        format!(
            "{} INSERT INTO conversations (id, workspace_id, channel_id, contact_id, status, unread, \
             last_message_at, created_at, last_preview, read_upto) \
             SELECT {conversation0} + i, {workspace}, {channel0} + i % {k}, {contact0} + i, 'open', 0, \
             {start} + ((i + 1) * {per} - 1) * 1000, {start} + i * {per} * 1000, \
             'Halo, mau tanya soal pesanan ' || i || '-' || ({per} - 1) || ', sudah dikirim?', \
             {message0} + (i + 1) * {per} - 1 FROM n",
            numbers(conversations)
        ),
        format!(
            "{} INSERT INTO messages (id, workspace_id, conversation_id, channel_id, direction, sender, body, \
             wa_id, status, created_at, updated_at) \
             SELECT {message0} + i, {workspace}, {conversation0} + i / {per}, {channel0} + (i / {per}) % {k}, \
             CASE WHEN {inbound} THEN 'inbound' ELSE 'outbound' END, \
             CASE WHEN {inbound} THEN 'contact' ELSE 'agent' END, {body}, 'seed-' || i, \
             CASE WHEN {inbound} THEN 'received' ELSE 'read' END, {start} + i * 1000, {start} + i * 1000 FROM n",
            numbers(total)
        ),
    ];
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = {workspace}");
    let stored_conversations: i64 = sqlx::query_scalar(&count("conversations")).fetch_one(&mut db).await?;
    let stored_messages: i64 = sqlx::query_scalar(&count("messages")).fetch_one(&mut db).await?;
    db.close().await?;
    Ok((stored_conversations, stored_messages))
}
