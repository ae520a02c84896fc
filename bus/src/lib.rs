//! Everything Balas keeps in Redis goes through this crate, and every key name is made here, under
//! one prefix (so that several installations, or many tests, can share a Redis without touching
//! each other's keys).

mod commands;
mod lease;
mod pipeline;
mod queue;
mod sandbox;
mod throttle;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use balas_domain::{ChannelId, PhoneNumber};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use lease::*;
pub use pipeline::*;
pub use queue::*;
pub use sandbox::*;
pub use throttle::*;
pub use workers::*;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("queue: {0}")]
    Queue(#[from] bullmq::Error),
    #[error("a stored event is not valid: {0}")]
    Corrupt(String),
}

pub type BusResult<T> = Result<T, BusError>;

/// How long a blocking read waits for something to arrive before it returns empty-handed (so a
/// loop can notice a shutdown).
pub const BLOCK_FOR: Duration = Duration::from_millis(1_000);

/// Names of Redis keys. The prefix is the only variable part of a name, so two prefixes never
/// share a key.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches(':').to_owned() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Worker processes' announcements (a hash: instance → JSON).
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// When each worker was last seen (a sorted set: instance → milliseconds).
    pub fn workers_seen(&self) -> String {
        format!("{}:workers:seen", self.prefix)
    }

    /// What the WhatsApp workers report (a stream, read by the server's ingest group).
    pub fn wa_events(&self) -> String {
        format!("{}:wa:events", self.prefix)
    }

    /// Live events for the dashboards (a stream every server instance reads in full).
    pub fn live_events(&self) -> String {
        format!("{}:live", self.prefix)
    }

    /// What the server asks of the workers that hold channels' sessions (a stream every
    /// WhatsApp worker reads from the moment it starts; see [`crate::commands`]).
    pub fn session_commands(&self) -> String {
        format!("{}:wa:commands", self.prefix)
    }

    /// Who holds a lease (a string: `holder|fence`, with a time to live).
    pub fn lease(&self, subject: LeaseSubject) -> String {
        match subject {
            LeaseSubject::Channel(channel) => format!("{}:lease:channel:{}", self.prefix, channel),
            LeaseSubject::Ingest => format!("{}:lease:ingest", self.prefix),
            LeaseSubject::Broadcast(id) => format!("{}:lease:broadcast:{}", self.prefix, id),
            LeaseSubject::AiConversation(id) => format!("{}:lease:ai:{}", self.prefix, id),
        }
    }

    /// The last fencing token handed out for a lease (a counter).
    pub fn lease_fence(&self, subject: LeaseSubject) -> String {
        format!("{}:fence", self.lease(subject))
    }

    /// BullMQ's own prefix for our queues (BullMQ forbids `:` in it).
    pub fn bullmq_prefix(&self) -> String {
        format!("{}-bull", self.prefix.replace(':', "-"))
    }

    /// The name of a channel's send queue (under [`Keys::bullmq_prefix`]).
    pub fn send_queue(&self, channel: ChannelId) -> String {
        format!("send-{channel}")
    }

    /// Sandbox network: what one simulated phone receives, in order (a stream).
    pub fn sandbox_inbox(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:inbox:{}", self.prefix, phone.digits())
    }

    /// Sandbox network: how many times each message was delivered to a phone (a hash: WhatsApp id
    /// → count). A phone shows a message once whatever the count, as WhatsApp does.
    pub fn sandbox_ledger(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:ledger:{}", self.prefix, phone.digits())
    }

    /// Sandbox network: a number's sends in the last second (a sorted set), for the ban rule.
    pub fn sandbox_rate(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:rate:{}", self.prefix, phone.digits())
    }

    /// Sandbox network: set while a number is banned (expires with the ban).
    pub fn sandbox_ban(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:ban:{}", self.prefix, phone.digits())
    }

    /// Sandbox network: the fencing token of the connection that may send for a number.
    pub fn sandbox_session(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:session:{}", self.prefix, phone.digits())
    }

    /// Sandbox network: how far a channel's session has handed its inbox on (a stream id).
    pub fn sandbox_cursor(&self, phone: &PhoneNumber) -> String {
        format!("{}:sbx:cursor:{}", self.prefix, phone.digits())
    }

    /// Requests of one API key in one minute (a counter that expires with its minute).
    pub fn api_requests(&self, key_id: i64, minute: i64) -> String {
        format!("{}:api:rate:{key_id}:{minute}", self.prefix)
    }

    /// Failed logins of one subject (an account or an address), kept for the throttle window.
    pub fn login_failures(&self, subject: &LoginSubject) -> String {
        match subject {
            LoginSubject::Account(email) => format!("{}:login:account:{}", self.prefix, email),
            LoginSubject::Address(ip) => format!("{}:login:address:{}", self.prefix, ip),
        }
    }
}

/// A shared, self-reconnecting connection to Redis. Cheap to clone; open it once per process.
#[derive(Clone)]
pub struct Bus {
    conn: ConnectionManager,
    client: redis::Client,
    url: String,
    keys: Keys,
    /// Send queues opened so far, sharing one connection.
    queues: Arc<Mutex<HashMap<ChannelId, bullmq::Queue>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("prefix", &self.keys.prefix).finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects to Redis at `url`. Fails when Redis cannot be reached now; once connected, it
    /// reconnects by itself after a drop.
    pub async fn connect(url: &str, prefix: &str) -> BusResult<Self> {
        // Commands go out when written: with Nagle's algorithm on, a command written while an
        // earlier one on the shared connection is unacknowledged waits for Redis's delayed ACK.
        let info = redis::IntoConnectionInfo::into_connection_info(url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)?;
        let conn = Self::manager(&client, Duration::from_secs(5)).await?;
        Ok(Self {
            conn,
            client,
            url: url.to_owned(),
            keys: Keys::new(prefix),
            queues: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    async fn manager(client: &redis::Client, response_timeout: Duration) -> BusResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2);
        Ok(ConnectionManager::new_with_config(client.clone(), config).await?)
    }

    /// A copy of this bus on a connection of its own, for a loop that blocks on Redis (a blocking
    /// read holds its connection, and would stall every other command sharing it).
    pub async fn dedicated(&self) -> BusResult<Self> {
        let conn = Self::manager(&self.client, BLOCK_FOR + Duration::from_secs(5)).await?;
        Ok(Self { conn, ..self.clone() })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Answers when Redis does: for readiness checks.
    pub async fn ping(&self) -> BusResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}
