//! Leases on channels: exactly one worker runs a channel's session at a time.
//!
//! A lease is a Redis key holding `holder|fence` with a time to live. The holder renews it well
//! before it expires; a holder that dies stops renewing, and the channel is free again once the
//! time is up. Each new lease gets a larger fencing token, which the session hands to the
//! network (or the session store) with every write, so a holder that lost its lease without
//! noticing (a long pause) is refused rather than trusted.

use balas_domain::{BroadcastId, ChannelId, ConversationId};
use redis::Script;

use crate::{Bus, BusResult};

/// How long a lease lasts without renewal; a dead worker's channels are free after this.
pub const LEASE_TTL_MS: u64 = 10_000;
/// How often a holder renews its leases.
pub const LEASE_RENEW_EVERY_MS: u64 = 3_000;

/// What a lease is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseSubject {
    /// Running a channel's session.
    Channel(ChannelId),
    /// Reading the worker event stream (one server instance at a time, so that events are stored
    /// and announced in the order they happened).
    Ingest,
    /// Planning a broadcast (one server instance at a time queues its recipients).
    Broadcast(BroadcastId),
    /// Answering a conversation with the AI (one AI worker at a time).
    AiConversation(ConversationId),
}

impl std::fmt::Display for LeaseSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseSubject::Channel(id) => write!(f, "channel {id}"),
            LeaseSubject::Ingest => f.write_str("ingest"),
            LeaseSubject::Broadcast(id) => write!(f, "broadcast {id}"),
            LeaseSubject::AiConversation(id) => write!(f, "AI conversation {id}"),
        }
    }
}

/// A lease held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub subject: LeaseSubject,
    pub fence: u64,
}

const ACQUIRE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local holder, fence = string.match(current, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(fence)
  end
  return false
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return fence
";

/// Renews every lease of KEYS whose value is still the matching ARGV (after the TTL, ARGV[1]);
/// answers 1 or 0 per lease.
const RENEW: &str = r"
local renewed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    renewed[i] = 1
  else
    renewed[i] = 0
  end
end
return renewed
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl Bus {
    /// Takes the lease on `subject` for `holder` if it is free (or already `holder`'s).
    pub async fn acquire_lease(&self, subject: LeaseSubject, holder: &str) -> BusResult<Option<Lease>> {
        let mut conn = self.conn.clone();
        let fence: Option<u64> = Script::new(ACQUIRE)
            .key(self.keys.lease(subject))
            .key(self.keys.lease_fence(subject))
            .arg(holder)
            .arg(LEASE_TTL_MS)
            .invoke_async(&mut conn)
            .await?;
        Ok(fence.map(|fence| Lease { subject, fence }))
    }

    /// Extends a lease; false when it was lost (expired, or taken by another holder).
    pub async fn renew_lease(&self, lease: &Lease, holder: &str) -> BusResult<bool> {
        Ok(self.renew_leases(std::slice::from_ref(lease), holder).await?.first() == Some(&true))
    }

    /// Extends many leases of `holder` in one round trip; per lease, in order, false when it was
    /// lost.
    pub async fn renew_leases(&self, leases: &[Lease], holder: &str) -> BusResult<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let script = Script::new(RENEW);
        let mut invocation = script.prepare_invoke();
        invocation.arg(LEASE_TTL_MS);
        for lease in leases {
            invocation.key(self.keys.lease(lease.subject)).arg(format!("{holder}|{}", lease.fence));
        }
        let mut conn = self.conn.clone();
        let renewed: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(renewed.into_iter().map(|r| r == 1).collect())
    }

    /// Gives a lease up at once, so another process can take it without waiting.
    pub async fn release_lease(&self, lease: &Lease, holder: &str) -> BusResult<()> {
        let mut conn = self.conn.clone();
        Script::new(RELEASE)
            .key(self.keys.lease(lease.subject))
            .arg(format!("{holder}|{}", lease.fence))
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Who holds each of `channels` now, in the same order.
    pub async fn lease_holders(&self, channels: &[ChannelId]) -> BusResult<Vec<Option<String>>> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = channels.iter().map(|c| self.keys.lease(LeaseSubject::Channel(*c))).collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| v.rsplit_once('|').map(|(holder, _)| holder.to_owned())))
            .collect())
    }

    /// Who holds the lease on `channel` now, if anyone.
    pub async fn lease_holder(&self, channel: ChannelId) -> BusResult<Option<String>> {
        let mut conn = self.conn.clone();
        let value: Option<String> =
            redis::cmd("GET").arg(self.keys.lease(LeaseSubject::Channel(channel))).query_async(&mut conn).await?;
        Ok(value.and_then(|v| v.rsplit_once('|').map(|(holder, _)| holder.to_owned())))
    }
}
