//! The live hub of one server instance: one reader follows the whole live event stream and hands
//! each event, serialized once, to every WebSocket of this instance. Several instances each run
//! their own hub, so every event reaches every socket whichever instance it is on.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use balas_bus::Bus;
use balas_domain::{LiveEnvelope, ServerFrame, WorkspaceId};
use tokio::sync::{broadcast, watch};

/// A live event ready to send: the envelope (to filter on) and its `ServerFrame` JSON, made once
/// for all sockets (cloning the bytes is a reference count, not a copy).
#[derive(Debug)]
pub struct LiveFrame {
    pub envelope: LiveEnvelope,
    pub json: Utf8Bytes,
}

impl LiveFrame {
    pub fn new(envelope: LiveEnvelope) -> Self {
        let frame = ServerFrame::Event { event: Box::new(envelope) };
        let json = Utf8Bytes::from(serde_json::to_string(&frame).expect("ServerFrame serializes"));
        let ServerFrame::Event { event } = frame else { unreachable!() };
        Self { envelope: *event, json }
    }

    pub fn workspace(&self) -> WorkspaceId {
        self.envelope.workspace_id
    }
}

/// Hands live events to this instance's sockets.
#[derive(Clone, Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveFrame>>,
}

/// How many events a slow socket may fall behind before it re-reads from Redis.
const BUFFER: usize = 4096;

impl LiveHub {
    /// Starts following the live stream from its current end, until `stop` turns true.
    pub async fn start(bus: &Bus, mut stop: watch::Receiver<bool>) -> Result<Self, balas_bus::BusError> {
        let (tx, _) = broadcast::channel(BUFFER);
        let reader = bus.dedicated().await?;
        let mut after = reader.live_tail().await?;
        let hub = Self { tx: tx.clone() };
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let read = tokio::select! {
                    _ = stop.changed() => return,
                    read = reader.read_live(&after, 1024) => read,
                };
                match read {
                    Ok(events) => {
                        failures = 0;
                        for envelope in events {
                            after.clone_from(&envelope.id);
                            // No receiver is fine: no socket is open on this instance.
                            let _ = tx.send(Arc::new(LiveFrame::new(envelope)));
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, "live hub: cannot read the live stream; retrying");
                        let wait = Duration::from_millis(100u64.saturating_mul(1 << failures.min(5)));
                        tokio::select! {
                            _ = stop.changed() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        });
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveFrame>> {
        self.tx.subscribe()
    }
}
