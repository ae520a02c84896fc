//! Everything Balas keeps in Redis goes through this crate, and every key name is made here, under
//! one prefix (so that several installations, or many tests, can share a Redis without touching
//! each other's keys).

mod throttle;
mod workers;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

pub use throttle::*;
pub use workers::*;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub type BusResult<T> = Result<T, BusError>;

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
    keys: Keys,
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
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { conn, keys: Keys::new(prefix) })
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
