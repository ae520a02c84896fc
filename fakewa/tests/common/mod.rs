//! Drives the real whatsapp-rust client against the fake server.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use balas_fakewa::FakeWa;
use tokio::sync::mpsc;
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::*;
use whatsapp_rust::store::commands::DeviceCommand;
use whatsapp_rust::store::persistence_manager::PersistenceManager;
use whatsapp_rust::store::traits::Backend;
use whatsapp_rust_tokio_transport::TokioWebSocketTransportFactory;

/// A client under test: its run loop and the events it emits.
pub struct TestClient {
    pub handle: BotHandle,
    pub events: mpsc::UnboundedReceiver<Arc<Event>>,
}

pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A fresh in-memory store (never paired).
pub fn memory_backend() -> Arc<dyn Backend> {
    Arc::new(wacore::store::InMemoryBackend::new())
}

/// An in-memory store whose device counts as registered as `PHONE:1@s.whatsapp.net` with a push name, so it
/// logs straight in (no QR) and takes the quick reconnect path to `Event::Connected`.
pub async fn registered_backend(phone: &str) -> Arc<dyn Backend> {
    let backend = memory_backend();
    let pm = PersistenceManager::new(backend.clone()).await.expect("persistence manager");
    pm.process_command(DeviceCommand::SetId(Some(format!("{phone}:1@s.whatsapp.net").parse().expect("jid")))).await;
    pm.process_command(DeviceCommand::SetPushName("Test Shop".to_owned())).await;
    pm.flush().await.expect("flush");
    backend
}

/// Builds and spawns a bot on `backend` pointed at `server`, forwarding every event to `events`.
pub async fn start_client(server: &FakeWa, backend: Arc<dyn Backend>) -> TestClient {
    start_client_with(server, backend, None).await
}

/// Like [`start_client`], for a client that links by pairing code with `phone` instead of a QR code.
pub async fn start_pair_code_client(server: &FakeWa, phone: &str) -> TestClient {
    let options = PairCodeOptions { phone_number: phone.to_owned(), ..Default::default() };
    start_client_with(server, memory_backend(), Some(options)).await
}

async fn start_client_with(
    server: &FakeWa,
    backend: Arc<dyn Backend>,
    pair_code: Option<PairCodeOptions>,
) -> TestClient {
    let (tx, events) = mpsc::unbounded_channel();
    let mut builder = Bot::builder()
        .with_backend_arc(backend)
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(server.url()))
        .with_version((2, 3000, 1_023_000_000))
        .skip_history_sync()
        .on_event(move |event, _client| {
            let _ = tx.send(event);
            async {}
        });
    if let Some(options) = pair_code {
        builder = builder.with_pair_code(options);
    }
    let bot = builder.build().await.expect("bot builds");
    TestClient { handle: bot.spawn(), events }
}

/// Waits (at most `secs` seconds) for the first event `pick` maps to `Some`, skipping the others.
pub async fn wait_for<T>(client: &mut TestClient, secs: u64, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let event = tokio::time::timeout_at(deadline, client.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no matching event within {secs} s"))
            .expect("event channel closed");
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// Waits for the next QR code the client emits.
pub async fn next_qr(client: &mut TestClient, secs: u64) -> String {
    wait_for(client, secs, |e| match e {
        Event::PairingQrCode(qr) => Some(qr.code.clone()),
        _ => None,
    })
    .await
}

/// Waits for `Event::Connected`.
pub async fn connected(client: &mut TestClient, secs: u64) {
    wait_for(client, secs, |e| matches!(e, Event::Connected(_)).then_some(())).await
}

/// A client already registered as `phone` and connected to `server`.
pub async fn connected_client(server: &FakeWa, phone: &str) -> TestClient {
    let mut client = start_client(server, registered_backend(phone).await).await;
    connected(&mut client, 20).await;
    client
}
