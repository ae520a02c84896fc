//! The live hub of one server instance: one reader follows the whole live event stream and hands
//! each event, serialized once, to the WebSockets of its workspace on this instance. Several
//! instances each run their own hub, so every event reaches every socket whichever instance it is
//! on.
//!
//! Each workspace with an open socket has a channel of its own: an event wakes only its own
//! workspace's sockets (another business's traffic costs a socket nothing), and an event of a
//! workspace with no socket here is not even serialized.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
#[derive(Clone, Debug, Default)]
pub struct LiveHub {
    workspaces: Arc<Mutex<HashMap<WorkspaceId, broadcast::Sender<Arc<LiveFrame>>>>>,
}

/// How many events a slow socket may fall behind before it re-reads from Redis.
const BUFFER: usize = 4096;

impl LiveHub {
    /// Starts following the live stream from its current end, until `stop` turns true.
    pub async fn start(bus: &Bus, mut stop: watch::Receiver<bool>) -> Result<Self, balas_bus::BusError> {
        let reader = bus.dedicated().await?;
        let mut after = reader.live_tail().await?;
        let hub = Self::default();
        let hands = hub.clone();
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
                        if let Some(last) = events.last() {
                            after.clone_from(&last.id);
                        }
                        hands.hand_out(events);
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

    /// The live events of `workspace`, from now on.
    pub fn subscribe(&self, workspace: WorkspaceId) -> broadcast::Receiver<Arc<LiveFrame>> {
        let mut workspaces = self.workspaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        workspaces.entry(workspace).or_insert_with(|| broadcast::channel(BUFFER).0).subscribe()
    }

    /// Sends each event to its workspace's sockets. A workspace whose sockets have all closed
    /// loses its channel.
    fn hand_out(&self, events: Vec<LiveEnvelope>) {
        let mut workspaces = self.workspaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for envelope in events {
            let workspace = envelope.workspace_id;
            let Some(tx) = workspaces.get(&workspace) else { continue };
            if tx.send(Arc::new(LiveFrame::new(envelope))).is_err() {
                workspaces.remove(&workspace);
            }
        }
    }

    /// Workspaces with a channel on this instance (for tests).
    #[cfg(test)]
    fn open_workspaces(&self) -> usize {
        self.workspaces.lock().map(|w| w.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use balas_domain::{ConversationId, LiveEvent};
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;

    fn removed(id: &str, workspace: i64) -> LiveEnvelope {
        let event = LiveEvent::ConversationRemoved { conversation_id: ConversationId(1), into: ConversationId(2) };
        LiveEnvelope { id: id.into(), workspace_id: WorkspaceId(workspace), event }
    }

    #[test]
    fn an_event_reaches_only_its_own_workspaces_sockets() {
        let hub = LiveHub::default();
        let (mut one, mut also_one, mut two) =
            (hub.subscribe(WorkspaceId(1)), hub.subscribe(WorkspaceId(1)), hub.subscribe(WorkspaceId(2)));
        hub.hand_out(vec![removed("1-0", 1), removed("2-0", 3)]);
        for socket in [&mut one, &mut also_one] {
            let frame = socket.try_recv().expect("workspace 1's event");
            assert_eq!((frame.envelope.id.as_str(), frame.workspace()), ("1-0", WorkspaceId(1)));
            assert!(frame.json.as_str().contains("\"conversation_removed\""), "{}", frame.json.as_str());
            assert_eq!(socket.try_recv().unwrap_err(), TryRecvError::Empty, "workspace 3's event is not here");
        }
        assert_eq!(two.try_recv().unwrap_err(), TryRecvError::Empty);
        assert_eq!(hub.open_workspaces(), 2, "no channel for a workspace without sockets");
    }

    #[test]
    fn a_workspace_whose_sockets_closed_loses_its_channel() {
        let hub = LiveHub::default();
        let gone = hub.subscribe(WorkspaceId(1));
        let mut stays = hub.subscribe(WorkspaceId(2));
        drop(gone);
        hub.hand_out(vec![removed("1-0", 1), removed("2-0", 2)]);
        assert_eq!(hub.open_workspaces(), 1);
        assert_eq!(stays.try_recv().expect("still delivered").envelope.id, "2-0");
        // A socket that opens later gets a new channel and the events from then on.
        let mut back = hub.subscribe(WorkspaceId(1));
        hub.hand_out(vec![removed("3-0", 1)]);
        assert_eq!(back.try_recv().expect("delivered").envelope.id, "3-0");
    }
}
