//! Send queues: one BullMQ queue per channel, so that each number has its own rate limit (BullMQ's
//! limiter is per queue). Interactive replies get a higher priority than bulk sends.

use balas_domain::{ChannelId, SendJob, SendPriority};
use bullmq::options::RedisConnectionOptions;
use bullmq::types::{BackoffStrategy, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions, WorkerOptions};

use crate::{Bus, BusResult};

/// How many times a send is tried before it fails for good.
pub const SEND_ATTEMPTS: u32 = 6;
/// The first retry waits about this long; each next one about twice as long (with jitter).
pub const SEND_BACKOFF_BASE_MS: u64 = 1_000;
/// The name of our backoff strategy (exponential with full jitter), as BullMQ stores it.
pub const SEND_BACKOFF: &str = "exponential-jitter";

/// The delay before retry number `attempts_made` (1-based): exponential, capped at 5 minutes,
/// with a random part so that many failed sends do not all come back at the same moment.
pub fn send_backoff_ms(attempts_made: u32) -> u64 {
    let ceiling = SEND_BACKOFF_BASE_MS.saturating_mul(1 << attempts_made.saturating_sub(1).min(16)).min(300_000);
    ceiling / 2 + rand::random_range(0..=ceiling / 2)
}

/// The BullMQ job id of a message's send: one job per message and retry, whoever queues it and
/// how often.
pub fn send_job_id(job: &SendJob) -> String {
    match job.retry {
        0 => format!("m{}", job.message_id),
        retry => format!("m{}-r{retry}", job.message_id),
    }
}

impl Bus {
    fn bullmq_connection(&self) -> RedisConnectionOptions {
        RedisConnectionOptions::new().url(self.url.clone())
    }

    /// Options for a worker of a channel's send queue (connection and prefix); the caller adds
    /// concurrency, limiter and the rest.
    pub fn send_worker_options(&self) -> WorkerOptions {
        WorkerOptions::new().connection(self.bullmq_connection()).prefix(self.keys.bullmq_prefix())
    }

    /// The send queue of `channel`, opened once per process.
    pub async fn send_queue(&self, channel: ChannelId) -> BusResult<Queue> {
        if let Some(queue) = self.queues.lock().expect("queue map").get(&channel) {
            return Ok(queue.clone());
        }
        let options = QueueOptions::new()
            .connection(self.bullmq_connection())
            .prefix(self.keys.bullmq_prefix())
            .skip_version_check();
        let queue = Queue::with_options(&self.keys.send_queue(channel), options).await?;
        Ok(self.queues.lock().expect("queue map").entry(channel).or_insert(queue).clone())
    }

    /// Puts a message on its channel's send queue. Queuing the same message again while its job
    /// exists does nothing.
    pub async fn enqueue_send(&self, job: &SendJob, priority: SendPriority) -> BusResult<()> {
        let queue = self.send_queue(job.channel_id).await?;
        let options = JobOptions {
            job_id: Some(send_job_id(job)),
            priority: Some(priority.bullmq()),
            attempts: Some(SEND_ATTEMPTS),
            backoff: Some(BackoffStrategy::Custom(SEND_BACKOFF.to_owned())),
            remove_on_complete: Some(RemoveOnFinish::Count(1000)),
            remove_on_fail: Some(RemoveOnFinish::Count(10_000)),
            ..JobOptions::default()
        };
        queue.add("send", job).options(options).await?;
        Ok(())
    }

    /// Takes a send off its channel's queue if it has not started: true when it was removed (a
    /// job being sent, or already done, stays).
    pub async fn remove_send(&self, job: &SendJob) -> BusResult<bool> {
        let queue = self.send_queue(job.channel_id).await?;
        match queue.get_job_state(&send_job_id(job)).await? {
            bullmq::JobState::Waiting | bullmq::JobState::Prioritized | bullmq::JobState::Delayed => {
                Ok(queue.remove(&send_job_id(job)).await?)
            }
            _ => Ok(false),
        }
    }

    /// How many sends of a channel are waiting, delayed or running.
    pub async fn send_backlog(&self, channel: ChannelId) -> BusResult<u64> {
        let queue = self.send_queue(channel).await?;
        Ok(queue.count().await?)
    }
}
