//! The sandbox: a simulated WhatsApp network kept in Redis, so that every process (the workers
//! that run sandbox channels, the server that lets people and tests play customers) shares it and
//! it survives any of them restarting.
//!
//! Each simulated phone has an inbox (a stream of [`SandboxPacket`]s: messages, receipts, typing)
//! and a ledger of how many times each message was delivered to it. Like WhatsApp, the network:
//! - gives every message an id (the sender chooses it) and shows a phone a message once, however
//!   often it is delivered;
//! - answers a delivered message with a delivery receipt (every simulated phone is online), and a
//!   read with a read receipt;
//! - bans a number that sends faster than a threshold, and tells its session so;
//! - accepts sends for a number only from the connection with the newest fencing token (a second
//!   connection for the same number replaces the first).

use balas_domain::{Media, PhoneNumber, ReceiptKind, SandboxMessage, SandboxPacket, Timestamp};
use redis::AsyncCommands;
use redis::Script;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};

use crate::{BLOCK_FOR, Bus, BusError, BusResult};

/// The sandbox's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxRules {
    /// A number that sends more than this many messages within one second is banned.
    pub ban_above_per_sec: u32,
    /// How long a ban lasts.
    pub ban_ms: u64,
}

impl Default for SandboxRules {
    fn default() -> Self {
        Self { ban_above_per_sec: 20, ban_ms: 300_000 }
    }
}

/// What became of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxSent {
    /// Delivered (for the first time).
    Delivered,
    /// This message id had reached the recipient already; it is shown once.
    Duplicate,
    /// The sender is banned until then (perhaps by this very send).
    Banned { until: Timestamp },
    /// Another connection for the sender's number took over; this one may not send.
    Replaced,
}

/// A packet in a phone's inbox, with its place there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxEntry {
    pub id: String,
    pub packet: SandboxPacket,
}

const SEND: &str = r"
-- KEYS: 1 sender's ban, 2 sender's session, 3 sender's rate, 4 recipient's ledger,
--       5 recipient's inbox, 6 sender's inbox
-- ARGV: 1 fence ('' for a simulated customer), 2 now ms, 3 wa id, 4 message packet,
--       5 delivery receipt packet, 6 ban threshold, 7 ban ms, 8 banned packet,
--       9 the sender's copy ('' for none)
local ban = redis.call('PTTL', KEYS[1])
if ban > 0 then return {'banned', tonumber(ARGV[2]) + ban} end
if ARGV[1] ~= '' then
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[1]) ~= current then return {'replaced', 0} end
end
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 1000)
redis.call('ZADD', KEYS[3], now, ARGV[3])
redis.call('PEXPIRE', KEYS[3], 2000)
if redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[6]) then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[7])
  redis.call('XADD', KEYS[6], '*', 'p', ARGV[8])
  return {'banned', now + tonumber(ARGV[7])}
end
local count = redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
if count > 1 then return {'duplicate', 0} end
redis.call('XADD', KEYS[5], '*', 'p', ARGV[4])
if ARGV[9] ~= '' then redis.call('XADD', KEYS[6], '*', 'p', ARGV[9]) end
redis.call('XADD', KEYS[6], '*', 'p', ARGV[5])
return {'delivered', 0}
";

const CONNECT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) >= current then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
";

fn packet_json(packet: &SandboxPacket) -> String {
    serde_json::to_string(packet).expect("SandboxPacket serializes")
}

fn entries(ids: Vec<redis::streams::StreamId>) -> BusResult<Vec<SandboxEntry>> {
    ids.into_iter()
        .map(|entry| {
            let json: String =
                entry.get("p").ok_or_else(|| BusError::Corrupt(format!("sandbox packet {} has no body", entry.id)))?;
            let packet = serde_json::from_str(&json).map_err(|e| BusError::Corrupt(format!("sandbox packet: {e}")))?;
            Ok(SandboxEntry { id: entry.id, packet })
        })
        .collect()
}

impl Bus {
    /// Registers a connection for `phone` with fencing token `fence`; false when a connection with
    /// a newer token exists (this one is stale and must not run).
    pub async fn sandbox_connect(&self, phone: &PhoneNumber, fence: u64) -> BusResult<bool> {
        let mut conn = self.conn.clone();
        let ok: i64 =
            Script::new(CONNECT).key(self.keys.sandbox_session(phone)).arg(fence).invoke_async(&mut conn).await?;
        Ok(ok == 1)
    }

    /// Sends a message (a text, or a file of the network's media folder with `text` as its
    /// caption) from `from` to `to` with the sender's id `wa_id`. `fence` is the sending
    /// connection's token (`None` for a simulated customer, who has no session).
    #[allow(clippy::too_many_arguments)]
    pub async fn sandbox_send(
        &self,
        rules: SandboxRules,
        fence: Option<u64>,
        from: &PhoneNumber,
        to: &PhoneNumber,
        wa_id: &str,
        text: &str,
        media: Option<&Media>,
        now: Timestamp,
    ) -> BusResult<SandboxSent> {
        let message = SandboxPacket::Message {
            wa_id: wa_id.to_owned(),
            from: from.clone(),
            to: to.clone(),
            text: text.to_owned(),
            media: media.cloned(),
            at: now,
        };
        let receipt = SandboxPacket::Receipt {
            wa_id: wa_id.to_owned(),
            from: to.clone(),
            receipt: ReceiptKind::Delivered,
            at: now,
        };
        let banned = SandboxPacket::Banned { at: now };
        // A simulated customer keeps a copy of what it sent, so its phone shows the whole chat.
        let copy = fence.is_none().then(|| SandboxPacket::Sent {
            wa_id: wa_id.to_owned(),
            to: to.clone(),
            text: text.to_owned(),
            media: media.cloned(),
            at: now,
        });
        let mut conn = self.conn.clone();
        let (outcome, until): (String, i64) = Script::new(SEND)
            .key(self.keys.sandbox_ban(from))
            .key(self.keys.sandbox_session(from))
            .key(self.keys.sandbox_rate(from))
            .key(self.keys.sandbox_ledger(to))
            .key(self.keys.sandbox_inbox(to))
            .key(self.keys.sandbox_inbox(from))
            .arg(fence.map(|f| f.to_string()).unwrap_or_default())
            .arg(now.0)
            .arg(wa_id)
            .arg(packet_json(&message))
            .arg(packet_json(&receipt))
            .arg(rules.ban_above_per_sec)
            .arg(rules.ban_ms)
            .arg(packet_json(&banned))
            .arg(copy.as_ref().map(packet_json).unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "delivered" => SandboxSent::Delivered,
            "duplicate" => SandboxSent::Duplicate,
            "replaced" => SandboxSent::Replaced,
            _ => SandboxSent::Banned { until: Timestamp(until) },
        })
    }

    /// Tells `to` that `from` started or stopped typing.
    pub async fn sandbox_typing(
        &self,
        from: &PhoneNumber,
        to: &PhoneNumber,
        typing: bool,
        now: Timestamp,
    ) -> BusResult<()> {
        self.sandbox_push(to, &SandboxPacket::Typing { from: from.clone(), typing, at: now }).await
    }

    /// `reader` has read the messages `wa_ids` that `sender` sent: the sender gets read receipts.
    pub async fn sandbox_mark_read(
        &self,
        reader: &PhoneNumber,
        sender: &PhoneNumber,
        wa_ids: &[String],
        now: Timestamp,
    ) -> BusResult<()> {
        let mut pipe = redis::pipe();
        for wa_id in wa_ids {
            let packet = SandboxPacket::Receipt {
                wa_id: wa_id.clone(),
                from: reader.clone(),
                receipt: ReceiptKind::Read,
                at: now,
            };
            pipe.cmd("XADD").arg(self.keys.sandbox_inbox(sender)).arg("*").arg("p").arg(packet_json(&packet)).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn sandbox_push(&self, to: &PhoneNumber, packet: &SandboxPacket) -> BusResult<()> {
        let mut conn = self.conn.clone();
        conn.xadd::<_, _, _, _, ()>(self.keys.sandbox_inbox(to), "*", &[("p", packet_json(packet))]).await?;
        Ok(())
    }

    /// Packets that reached `phone` after `after`, waiting up to [`BLOCK_FOR`] for the first
    /// (call on a [`Bus::dedicated`] bus).
    pub async fn sandbox_receive(
        &self,
        phone: &PhoneNumber,
        after: &str,
        count: usize,
    ) -> BusResult<Vec<SandboxEntry>> {
        let options = StreamReadOptions::default().count(count).block(BLOCK_FOR.as_millis() as usize);
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[self.keys.sandbox_inbox(phone)], &[after], &options).await?;
        entries(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect())
    }

    /// Everything that reached `phone`, oldest first.
    pub async fn sandbox_inbox(&self, phone: &PhoneNumber) -> BusResult<Vec<SandboxEntry>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn.xrange_all(self.keys.sandbox_inbox(phone)).await?;
        entries(reply.ids)
    }

    /// The messages `phone` received, once each, oldest first, with how far each got.
    pub async fn sandbox_messages(&self, phone: &PhoneNumber) -> BusResult<Vec<SandboxMessage>> {
        Ok(self
            .sandbox_inbox(phone)
            .await?
            .into_iter()
            .filter_map(|entry| match entry.packet {
                SandboxPacket::Message { wa_id, from, to, text, media, at } => {
                    Some(SandboxMessage { wa_id, from, to, text, media, at, status: None })
                }
                _ => None,
            })
            .collect())
    }

    /// How many times each message was delivered to `phone` (WhatsApp id → count).
    pub async fn sandbox_ledger(&self, phone: &PhoneNumber) -> BusResult<std::collections::HashMap<String, u64>> {
        let mut conn = self.conn.clone();
        Ok(conn.hgetall(self.keys.sandbox_ledger(phone)).await?)
    }

    /// Until when `phone` is banned, if it is.
    pub async fn sandbox_banned_until(&self, phone: &PhoneNumber, now: Timestamp) -> BusResult<Option<Timestamp>> {
        let mut conn = self.conn.clone();
        let ttl: i64 = conn.pttl(self.keys.sandbox_ban(phone)).await?;
        Ok((ttl > 0).then(|| now.plus_millis(ttl)))
    }

    /// Where a channel's session stopped handing its inbox on (`0-0` at first).
    pub async fn sandbox_cursor(&self, phone: &PhoneNumber) -> BusResult<String> {
        let mut conn = self.conn.clone();
        let cursor: Option<String> = conn.get(self.keys.sandbox_cursor(phone)).await?;
        Ok(cursor.unwrap_or_else(|| "0-0".to_owned()))
    }

    pub async fn set_sandbox_cursor(&self, phone: &PhoneNumber, cursor: &str) -> BusResult<()> {
        let mut conn = self.conn.clone();
        conn.set::<_, _, ()>(self.keys.sandbox_cursor(phone), cursor).await?;
        Ok(())
    }
}

impl Bus {
    /// The fencing token of the connection that may send for `phone` now (0 when none).
    pub async fn sandbox_session_fence(&self, phone: &PhoneNumber) -> BusResult<u64> {
        let mut conn = self.conn.clone();
        let fence: Option<u64> = conn.get(self.keys.sandbox_session(phone)).await?;
        Ok(fence.unwrap_or(0))
    }
}
