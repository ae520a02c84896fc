use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The kinds of background worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// Owns WhatsApp sessions, sends from the queues, publishes what arrives.
    Whatsapp,
    /// Answers customers with the LLM.
    Ai,
}

impl WorkerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerKind::Whatsapp => "whatsapp",
            WorkerKind::Ai => "ai",
        }
    }
}

/// A running worker process, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub kind: WorkerKind,
    /// Unique per process start.
    pub instance: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_at: Timestamp,
    pub last_seen: Timestamp,
}

/// What the System page shows: whether the parts are up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    pub database: bool,
    pub redis: bool,
    pub workers: Vec<WorkerInfo>,
    pub checked_at: Timestamp,
}
