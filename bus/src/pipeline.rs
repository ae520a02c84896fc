//! The two event logs of the message pipeline.
//!
//! - `wa:events`: what the WhatsApp workers report ([`WaEnvelope`]). The server's ingest reads it
//!   through a consumer group: each event is handled by one ingest consumer, acknowledged once
//!   stored, and taken over from a consumer that crashed (XAUTOCLAIM).
//! - `live`: what the dashboards hear ([`LiveEnvelope`]). Every server instance reads all of it
//!   and hands each event to its own WebSockets; an event's stream id is the id a browser resumes
//!   from.

use balas_domain::{LiveEnvelope, LiveEvent, WaEnvelope, WorkspaceId};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, RedisError};

use crate::{BLOCK_FOR, Bus, BusError, BusResult};

/// About how many worker events are kept (acknowledged or not) before the oldest are trimmed.
const WA_EVENTS_KEPT: usize = 1_000_000;
/// About how many live events are kept for browsers that reconnect.
const LIVE_EVENTS_KEPT: usize = 100_000;

/// A worker event read from the stream, with the id to acknowledge it by. An entry that does not
/// parse is returned as an error so that the reader can log it and acknowledge it (a poison entry
/// must not block the stream).
#[derive(Debug)]
pub struct WaDelivery {
    pub id: String,
    pub event: Result<WaEnvelope, String>,
}

fn wa_delivery(entry: &StreamId) -> WaDelivery {
    let event = match entry.get::<String>("e") {
        Some(json) => serde_json::from_str(&json).map_err(|e| format!("{e}: {json}")),
        None => Err("no `e` field".to_owned()),
    };
    WaDelivery { id: entry.id.clone(), event }
}

/// The events of stream entries, and all their ids to acknowledge (entries that do not parse
/// are among the ids, not the events).
fn live_entries(entries: &[StreamId]) -> (Vec<LiveEnvelope>, Vec<String>) {
    let ids = entries.iter().map(|e| e.id.clone()).collect();
    let events = entries
        .iter()
        .filter_map(|entry| live_envelope(entry).map_err(|error| tracing::warn!(%error, "skipping a live event")).ok())
        .collect();
    (events, ids)
}

fn live_envelope(entry: &StreamId) -> BusResult<LiveEnvelope> {
    let corrupt = |what: &str| BusError::Corrupt(format!("live event {}: {what}", entry.id));
    let workspace: i64 = entry.get("w").ok_or_else(|| corrupt("no workspace"))?;
    let json: String = entry.get("e").ok_or_else(|| corrupt("no event"))?;
    let event: LiveEvent = serde_json::from_str(&json).map_err(|e| corrupt(&e.to_string()))?;
    Ok(LiveEnvelope { id: entry.id.clone(), workspace_id: WorkspaceId(workspace), event })
}

/// A page of one workspace's live events.
#[derive(Debug, Default)]
pub struct LivePage {
    pub events: Vec<LiveEnvelope>,
    /// The last id read from the log (of any workspace): where the next page starts.
    pub last_read: Option<String>,
    /// Whether the log may hold more after this page.
    pub more: bool,
}

fn is_busy_group(error: &RedisError) -> bool {
    error.code() == Some("BUSYGROUP")
}

/// Compares two stream ids (`ms-seq`) in stream order.
pub fn stream_id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse::<u64>().unwrap_or(0), seq.parse::<u64>().unwrap_or(0))
    };
    parse(a).cmp(&parse(b))
}

/// Whether `id` is a well-formed stream id (`ms-seq` or `ms`).
pub fn is_stream_id(id: &str) -> bool {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    !ms.is_empty()
        && ms.len() <= 20
        && ms.bytes().all(|b| b.is_ascii_digit())
        && seq.bytes().all(|b| b.is_ascii_digit())
        && !seq.is_empty()
        && seq.len() <= 20
}

impl Bus {
    /// Appends a worker event to the durable stream. Returns its id once Redis has it.
    pub async fn append_wa_event(&self, event: &WaEnvelope) -> BusResult<String> {
        let json = serde_json::to_string(event).expect("WaEnvelope serializes");
        let mut conn = self.conn.clone();
        let id: String = redis::cmd("XADD")
            .arg(self.keys.wa_events())
            .arg("MAXLEN")
            .arg("~")
            .arg(WA_EVENTS_KEPT)
            .arg("*")
            .arg("e")
            .arg(json)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    /// Creates the consumer group `group` on the worker events (from the beginning of the stream,
    /// so events appended before the first reader started are not skipped). Idempotent.
    pub async fn ensure_wa_group(&self, group: &str) -> BusResult<()> {
        let mut conn = self.conn.clone();
        match conn.xgroup_create_mkstream::<_, _, _, ()>(self.keys.wa_events(), group, "0").await {
            Ok(()) => Ok(()),
            Err(error) if is_busy_group(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads up to `count` worker events for `consumer`: with `pending`, those it was given before
    /// and has not acknowledged (after a restart under the same name); otherwise new ones, waiting
    /// up to [`BLOCK_FOR`]. Call on a [`Bus::dedicated`] bus.
    pub async fn read_wa_events(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        pending: bool,
    ) -> BusResult<Vec<WaDelivery>> {
        let mut options = StreamReadOptions::default().group(group, consumer).count(count);
        if !pending {
            options = options.block(BLOCK_FOR.as_millis() as usize);
        }
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[self.keys.wa_events()], &[if pending { "0" } else { ">" }], &options).await?;
        Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).map(|entry| wa_delivery(&entry)).collect())
    }

    /// Takes over events that another consumer was given more than `min_idle_ms` ago and never
    /// acknowledged (it crashed or hangs).
    pub async fn claim_stale_wa_events(
        &self,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> BusResult<Vec<WaDelivery>> {
        let reply = self.autoclaim(&self.keys.wa_events(), group, consumer, min_idle_ms, count).await?;
        Ok(reply.claimed.iter().map(wa_delivery).collect())
    }

    pub async fn ack_wa_events(&self, group: &str, ids: &[String]) -> BusResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        conn.xack::<_, _, _, ()>(self.keys.wa_events(), group, ids).await?;
        Ok(())
    }

    /// How many worker events `group` was given and has not acknowledged yet.
    pub async fn wa_group_pending(&self, group: &str) -> BusResult<usize> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamPendingReply = conn.xpending(self.keys.wa_events(), group).await?;
        Ok(reply.count())
    }

    /// Publishes a live event for the dashboards of `workspace_id`; returns its id.
    pub async fn publish_live(&self, workspace_id: WorkspaceId, event: &LiveEvent) -> BusResult<String> {
        let mut conn = self.conn.clone();
        Ok(self.live_xadd(workspace_id, event).query_async(&mut conn).await?)
    }

    /// Publishes events in order in one round trip (ingest announces a read's worth at once).
    pub async fn publish_live_many(&self, events: &[(WorkspaceId, LiveEvent)]) -> BusResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (workspace_id, event) in events {
            pipe.add_command(self.live_xadd(*workspace_id, event)).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    fn live_xadd(&self, workspace_id: WorkspaceId, event: &LiveEvent) -> redis::Cmd {
        let json = serde_json::to_string(event).expect("LiveEvent serializes");
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.live_events())
            .arg("MAXLEN")
            .arg("~")
            .arg(LIVE_EVENTS_KEPT)
            .arg("*")
            .arg("w")
            .arg(workspace_id.0)
            .arg("e")
            .arg(json);
        cmd
    }

    /// The id of the newest live event, or `0-0` when there is none: where a reader that wants
    /// only what comes next starts.
    pub async fn live_tail(&self) -> BusResult<String> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn.xrevrange_count(self.keys.live_events(), "+", "-", 1).await?;
        Ok(reply.ids.first().map_or_else(|| "0-0".to_owned(), |e| e.id.clone()))
    }

    /// Live events after `after`, waiting up to [`BLOCK_FOR`] when there are none yet. Entries
    /// that do not parse are skipped (and logged). Call on a [`Bus::dedicated`] bus.
    pub async fn read_live(&self, after: &str, count: usize) -> BusResult<Vec<LiveEnvelope>> {
        let options = StreamReadOptions::default().count(count).block(BLOCK_FOR.as_millis() as usize);
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> = conn.xread_options(&[self.keys.live_events()], &[after], &options).await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .filter_map(|entry| {
                live_envelope(&entry).map_err(|error| tracing::warn!(%error, "skipping a live event")).ok()
            })
            .collect())
    }

    /// Creates the consumer group `group` on the live events, starting with events from now on.
    /// Idempotent.
    pub async fn ensure_live_group(&self, group: &str) -> BusResult<()> {
        let mut conn = self.conn.clone();
        match conn.xgroup_create_mkstream::<_, _, _, ()>(self.keys.live_events(), group, "$").await {
            Ok(()) => Ok(()),
            Err(error) if is_busy_group(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads up to `count` live events for `consumer` of `group`: with `pending`, those it was
    /// given before and has not acknowledged; otherwise new ones, waiting up to [`BLOCK_FOR`].
    /// Returns the ids to acknowledge too (entries that do not parse are in those, not in the
    /// events). Call on a [`Bus::dedicated`] bus.
    pub async fn read_live_group(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        pending: bool,
    ) -> BusResult<(Vec<LiveEnvelope>, Vec<String>)> {
        let mut options = StreamReadOptions::default().group(group, consumer).count(count);
        if !pending {
            options = options.block(BLOCK_FOR.as_millis() as usize);
        }
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[self.keys.live_events()], &[if pending { "0" } else { ">" }], &options).await?;
        let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        Ok(live_entries(&entries))
    }

    /// Takes over up to `count` live events that another consumer of `group` was given more than
    /// `min_idle_ms` ago and never acknowledged (it stopped), for `consumer`; like
    /// [`Bus::read_live_group`].
    pub async fn claim_stale_live(
        &self,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> BusResult<(Vec<LiveEnvelope>, Vec<String>)> {
        let reply = self.autoclaim(&self.keys.live_events(), group, consumer, min_idle_ms, count).await?;
        Ok(live_entries(&reply.claimed))
    }

    /// `XAUTOCLAIM` on `stream`: up to `count` entries of `group` idle for `min_idle_ms`, now
    /// `consumer`'s.
    async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> BusResult<StreamAutoClaimReply> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?)
    }

    /// Whether `group` was given every live event up to `id` and acknowledged all it was given
    /// (false when there is no such group).
    pub async fn live_group_done(&self, group: &str, id: &str) -> BusResult<bool> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(self.keys.live_events()).await?;
        Ok(reply
            .groups
            .iter()
            .any(|g| g.name == group && g.pending == 0 && stream_id_cmp(&g.last_delivered_id, id).is_ge()))
    }

    pub async fn ack_live(&self, group: &str, ids: &[String]) -> BusResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        conn.xack::<_, _, _, ()>(self.keys.live_events(), group, ids).await?;
        Ok(())
    }

    /// One page of live events after `after` (exclusive): those of `workspace_id`, oldest first.
    /// The second value is true when events after `after` were already trimmed away, so the
    /// caller has missed some and should reload instead.
    pub async fn live_since(
        &self,
        workspace_id: WorkspaceId,
        after: &str,
        limit: usize,
    ) -> BusResult<(LivePage, bool)> {
        let mut conn = self.conn.clone();
        let first: StreamRangeReply = conn.xrange_count(self.keys.live_events(), "-", "+", 1).await?;
        let gap = after != "0-0"
            && after != "0"
            && first.ids.first().is_some_and(|oldest| stream_id_cmp(&oldest.id, after).is_gt());
        let reply: StreamRangeReply =
            conn.xrange_count(self.keys.live_events(), format!("({after}"), "+", limit).await?;
        let page = LivePage {
            last_read: reply.ids.last().map(|entry| entry.id.clone()),
            more: reply.ids.len() >= limit,
            events: reply
                .ids
                .iter()
                .filter_map(|entry| live_envelope(entry).ok())
                .filter(|envelope| envelope.workspace_id == workspace_id)
                .collect(),
        };
        Ok((page, gap))
    }
}
