//! Customer → every dashboard: how long until all connected browsers have a new message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use balas_domain::PhoneNumber;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::setup::{Bench, log_in};
use crate::{Args, percentile, report, run_peer};

fn micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

/// Reads `bench <index> <sent micros>` out of a message event without a full JSON parse (the
/// benchmark's clients should cost as little as possible: they share the machine with Balas).
fn bench_stamp(frame: &str) -> Option<(u32, u64)> {
    let start = frame.find("\"body\":\"bench ")? + "\"body\":\"bench ".len();
    let rest = &frame[start..];
    let end = rest.find('"')?;
    let (index, sent) = rest[..end].split_once(' ')?;
    Some((index.parse().ok()?, sent.parse().ok()?))
}

/// The customers `phones` (in turn) send `total` messages to the channel `to`, `rate` per second,
/// each reading `bench <index> <sent micros>` (what [`run_clients`] times). The inbox benchmark
/// runs it as its background load.
pub async fn send_load(bench: &Bench, to: &PhoneNumber, phones: &[PhoneNumber], rate: u64, total: usize) -> Result<()> {
    let rules = bench.settings.sandbox_rules();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for index in 0..total {
        tick.tick().await;
        let wa_id = balas_backend::messaging::new_wa_id();
        let text = format!("bench {index} {}", micros());
        let from = &phones[index % phones.len()];
        bench.state.bus.sandbox_send(rules, None, from, to, &wa_id, &text, None, balas_backend::now()).await?;
    }
    Ok(())
}

/// Opens `clients` subscribed WebSockets (then says so on `ready`), and records for each client
/// every benchmark message it gets: (index, latency in µs). Stops when a client has all `total`
/// or after `listen_for`.
async fn run_clients(
    url: String,
    cookie: String,
    clients: usize,
    total: usize,
    listen_for: Duration,
    ready: tokio::sync::oneshot::Sender<Result<()>>,
) -> Result<Vec<Vec<(u32, u32)>>> {
    let mut sockets = Vec::with_capacity(clients);
    for chunk in 0..clients.div_ceil(50) {
        let opening = (chunk * 50..((chunk + 1) * 50).min(clients)).map(|_| {
            let url = url.clone();
            let cookie = cookie.clone();
            async move {
                let mut request = url.into_client_request()?;
                request.headers_mut().insert("cookie", cookie.parse()?);
                // Small reads, as a browser does (tungstenite zeroes its whole read buffer per read).
                let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
                let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
                socket.send(Message::text(json!({ "type": "subscribe", "after": null }).to_string())).await?;
                let first = socket.next().await.context("closed")??;
                anyhow::ensure!(first.to_text()?.contains("subscribed"), "not subscribed: {first}");
                anyhow::Ok(socket)
            }
        });
        for socket in futures::future::join_all(opening).await {
            match socket {
                Ok(socket) => sockets.push(socket),
                Err(error) => {
                    let _ = ready.send(Err(error));
                    anyhow::bail!("a client could not connect");
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + listen_for;
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut seen: Vec<(u32, u32)> = Vec::with_capacity(total);
                while seen.len() < total {
                    match tokio::time::timeout_at(deadline, socket.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            if let Some((index, sent)) = bench_stamp(text.as_str()) {
                                seen.push((index, micros().saturating_sub(sent) as u32));
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break,
                    }
                }
                seen
            })
        })
        .collect();
    let _ = ready.send(Ok(()));
    let mut results = Vec::with_capacity(clients);
    for reader in readers {
        results.push(reader.await?);
    }
    Ok(results)
}

/// What [`measure`] found: per message that reached every client, when the last one got it
/// (ms, sorted); and every single delivery's latency (ms, sorted).
pub type Latencies = (Vec<f64>, Vec<f64>);

/// `clients` dashboards subscribe as the admin (cookie) on the server at `base`, then `customers`
/// send `rate` messages a second for `seconds` to the channel `to`; returns the latencies.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    bench: &Bench,
    base: &str,
    cookie: &str,
    to: &PhoneNumber,
    clients: usize,
    rate: u64,
    seconds: u64,
    customers: usize,
) -> Result<Latencies> {
    let total = (rate * seconds) as usize;
    // The clients run on one thread of their own, as the Socket.io peer's clients share one Node
    // event loop: the server keeps the rest of the machine.
    println!("opening {clients} WebSockets…");
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let listen_for = Duration::from_secs(seconds + 30);
    let cookie = cookie.to_owned();
    let client_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(run_clients(url, cookie, clients, total, listen_for, ready_tx))
    });
    ready.await.context("the client thread stopped")??;
    println!("{customers} customers send {rate} messages/s for {seconds} s…");
    let phones: Vec<PhoneNumber> =
        (0..customers).map(|i| PhoneNumber::parse(&format!("+62813{i:07}"))).collect::<Result<_, _>>()?;
    send_load(bench, to, &phones, rate, total).await?;
    let results = tokio::task::spawn_blocking(move || client_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
    // Per message: how many clients had it, and when the last of them got it.
    let mut reached = vec![0usize; total];
    let mut slowest = vec![0u32; total];
    let mut deliveries = Vec::with_capacity(clients * total);
    for seen in &results {
        for &(index, latency) in seen {
            let index = index as usize;
            if index < total {
                reached[index] += 1;
                slowest[index] = slowest[index].max(latency);
                deliveries.push(f64::from(latency) / 1000.0);
            }
        }
    }
    let mut everyone: Vec<f64> =
        (0..total).filter(|&i| reached[i] == clients).map(|i| f64::from(slowest[i]) / 1000.0).collect();
    everyone.sort_by(f64::total_cmp);
    deliveries.sort_by(f64::total_cmp);
    Ok((everyone, deliveries))
}

pub async fn run(args: &Args) -> Result<()> {
    let clients = args.number("--clients", 1000)? as usize;
    let rate = args.number("--rate", 200)?;
    let seconds = args.number("--seconds", 10)?;
    let customers = args.number("--customers", 200)? as usize;
    let total = (rate * seconds) as usize;

    let bench = Bench::start().await?;
    let channel = bench.channel(1, 5).await?;
    // The server and the worker run as processes of their own, as Socket.io's server does below.
    let balas = bench.start_processes(&[&channel]).await?;
    let base = balas.base.clone();
    let cookie = log_in(&base).await?;

    let (everyone, deliveries) =
        measure(&bench, &base, &cookie, &channel.phone, clients, rate, seconds, customers).await?;
    balas.stop().await;
    let complete = everyone.len();

    println!("running the Socket.io peer with the same load…");
    let peer = run_peer(
        "socketio_fanout.js",
        &[
            "--clients".into(),
            clients.to_string(),
            "--rate".into(),
            rate.to_string(),
            "--seconds".into(),
            seconds.to_string(),
        ],
    )
    .await;
    let p99 = percentile(&everyone, 99.0);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let mut figures = vec![
        ("benchmark", json!("pipeline")),
        ("clients", json!(clients)),
        ("rate_per_s", json!(rate)),
        ("seconds", json!(seconds)),
        ("messages", json!(total)),
        ("messages_reaching_every_client", json!(complete)),
        ("p50_ms", json!(round(percentile(&everyone, 50.0)))),
        ("p99_ms", json!(round(p99))),
        ("max_ms", json!(round(everyone.last().copied().unwrap_or(f64::NAN)))),
        ("per_delivery_p99_ms", json!(round(percentile(&deliveries, 99.0)))),
    ];
    match peer {
        Ok(peer) => {
            let peer_p99 = peer["p99_ms"].as_f64().unwrap_or(f64::NAN);
            figures.push(("socketio_p50_ms", peer["p50_ms"].clone()));
            figures.push(("socketio_p99_ms", peer["p99_ms"].clone()));
            figures.push(("socketio_max_ms", peer["max_ms"].clone()));
            figures.push(("socketio_messages_reaching_every_client", peer["complete"].clone()));
            figures.push(("socketio_p99_over_balas_p99", json!(round(peer_p99 / p99))));
        }
        Err(error) => figures.push(("socketio_error", json!(error.to_string()))),
    }
    report(args, "pipeline: customer's send → every dashboard client has the message", &figures);
    Ok(())
}
