//! Which worker processes are alive. Each worker writes a heartbeat every few seconds; a worker
//! that misses a few is no longer listed (and its entry is cleared), so a crash shows within
//! seconds without anyone having to clean up.

use balas_domain::{Timestamp, WorkerInfo};

use crate::{Bus, BusResult};

/// How often a worker announces itself.
pub const HEARTBEAT_EVERY_MS: i64 = 5_000;
/// After this long without a heartbeat a worker counts as gone.
pub const HEARTBEAT_EXPIRY_MS: i64 = 15_000;

impl Bus {
    /// Records that `worker` is alive now.
    pub async fn worker_heartbeat(&self, worker: &WorkerInfo) -> BusResult<()> {
        let json = serde_json::to_string(worker).expect("WorkerInfo serializes");
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset(self.keys.workers(), &worker.instance, json)
            .zadd(self.keys.workers_seen(), &worker.instance, worker.last_seen.0)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes a worker that is stopping.
    pub async fn worker_gone(&self, instance: &str) -> BusResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hdel(self.keys.workers(), instance)
            .zrem(self.keys.workers_seen(), instance)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The workers seen in the last [`HEARTBEAT_EXPIRY_MS`], oldest first. Forgets the others.
    pub async fn live_workers(&self, now: Timestamp) -> BusResult<Vec<WorkerInfo>> {
        let cutoff = now.0 - HEARTBEAT_EXPIRY_MS;
        let mut conn = self.conn.clone();
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.workers_seen())
            .arg("-inf")
            .arg(format!("({cutoff}"))
            .query_async(&mut conn)
            .await?;
        for instance in &dead {
            self.worker_gone(instance).await?;
        }
        let alive: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.workers_seen())
            .arg(cutoff)
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        if alive.is_empty() {
            return Ok(Vec::new());
        }
        let infos: Vec<Option<String>> =
            redis::cmd("HMGET").arg(self.keys.workers()).arg(&alive).query_async(&mut conn).await?;
        Ok(infos.into_iter().flatten().filter_map(|json| serde_json::from_str(&json).ok()).collect())
    }
}
