//! BullMQ send-job throughput: the Rust worker Balas uses beside Node BullMQ 6, same Redis, same
//! run; then Balas' whole send path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use balas_domain::{ChannelId, MessageId, PhoneNumber, SendJob, SendPriority, WorkspaceId};
use bullmq::options::RedisConnectionOptions;
use bullmq::types::RemoveOnFinish;
use bullmq::worker::WorkerEvent;
use bullmq::{BulkJob, JobOptions, Queue, QueueOptions, Worker, WorkerOptions};
use serde_json::json;

use crate::setup::Bench;
use crate::{Args, report, run_peer};

fn payload(n: usize) -> serde_json::Value {
    json!({
        "message_id": n, "channel_id": 1, "to": "+6281234567890", "wa_id": format!("3EB0{n:020X}"),
        "text": "Your order #12345 has shipped and will arrive tomorrow. Thank you for shopping with us!"
    })
}

/// Waits until `worker` has finished `count` jobs; returns how many of them failed.
async fn completed(worker: &Worker, count: usize) -> usize {
    let (mut done, mut failed) = (0, 0);
    while done < count {
        match worker.next_event().await {
            Some(WorkerEvent::Completed { .. }) => done += 1,
            Some(WorkerEvent::Failed { .. }) => {
                done += 1;
                failed += 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    failed
}

async fn add_all(queue: &Queue, jobs: usize) -> Result<()> {
    let options = JobOptions { remove_on_complete: Some(RemoveOnFinish::Bool(true)), ..JobOptions::default() };
    for start in (0..jobs).step_by(1000) {
        let batch =
            (start..(start + 1000).min(jobs)).map(|n| BulkJob::with_options("send", payload(n), options.clone()));
        queue.add_bulk(batch.collect()).await?;
    }
    Ok(())
}

pub async fn run(args: &Args) -> Result<()> {
    let jobs = args.number("--jobs", 20_000)? as usize;
    let concurrency = args.number("--concurrency", 50)? as usize;
    let bench = Bench::start().await?;
    let url = bench.redis_url();
    let connection = RedisConnectionOptions::new().url(url.clone());
    let prefix = format!("benchq{}", balas_backend::short_id());
    let queue =
        Queue::with_options("same-workload", QueueOptions::new().connection(connection.clone()).prefix(&prefix))
            .await?;
    let worker_options =
        || WorkerOptions::new().connection(connection.clone()).prefix(&prefix).concurrency(concurrency).autorun(false);
    let noop = |_job: bullmq::Job, _cancel| async { Ok(serde_json::Value::Null) };

    println!("1/4 Rust BullMQ: add and process {jobs} jobs together…");
    // 1. Add and process together (the peer's workload: bulk adds of 1,000, a no-op processor).
    let worker = Worker::with_options("same-workload", noop, worker_options()).await?;
    worker.run().await?;
    let started = Instant::now();
    let (added, failed) = tokio::join!(add_all(&queue, jobs), completed(&worker, jobs));
    added?;
    anyhow::ensure!(failed == 0, "{failed} jobs failed");
    let add_and_process = jobs as f64 / started.elapsed().as_secs_f64();
    worker.close(5_000).await?;

    println!("2/4 Rust BullMQ: prefill, then process…");
    // 2. Process only, from a full queue.
    let started = Instant::now();
    add_all(&queue, jobs).await?;
    let add_only = jobs as f64 / started.elapsed().as_secs_f64();
    let worker = Worker::with_options("same-workload", noop, worker_options()).await?;
    let started = Instant::now();
    worker.run().await?;
    anyhow::ensure!(completed(&worker, jobs).await == 0, "jobs failed");
    let process_only = jobs as f64 / started.elapsed().as_secs_f64();
    worker.close(5_000).await?;
    queue.obliterate(true, 10_000).await?;

    println!("3/4 Balas' send path: enqueue, sandbox send, event…");
    // 3. Balas' whole send path: each message queued as the server queues it (one job at a time,
    //    from 50 concurrent requests), sent on the sandbox network, its event appended.
    let bus = bench.state.bus.clone();
    let provider = balas_workers::sandbox::SandboxProvider {
        bus: bus.clone(),
        rules: bench.settings.sandbox_rules(),
        latency: Duration::ZERO,
        media: bench.state.media.clone(),
    };
    let channel_phone = PhoneNumber::parse("+628119999999")?;
    let session: Arc<dyn balas_workers::session::Session> = Arc::from(
        provider.connect(channel_phone, bench.workspace, 1).await.map_err(|e| anyhow::anyhow!("{e}"))?.session,
    );
    let channel = ChannelId(424_242);
    let processor = {
        let bus = bus.clone();
        let session = session.clone();
        move |job: bullmq::Job, _cancel| {
            let bus = bus.clone();
            let session = session.clone();
            async move { balas_workers::wa::process_send(&bus, session.as_ref(), &job, None).await }
        }
    };
    let options = bus.send_worker_options().concurrency(concurrency);
    let worker = Worker::with_options(&bus.keys().send_queue(channel), processor, options).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let producers = (0..50).map(|_| {
        let bus = bus.clone();
        let next = next.clone();
        async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= jobs {
                    return anyhow::Ok(());
                }
                let job = SendJob {
                    workspace_id: WorkspaceId(1),
                    channel_id: channel,
                    message_id: MessageId(n as i64 + 1),
                    to: PhoneNumber::parse(&format!("+62812{:07}1", n % 1000))?,
                    wa_id: format!("3EB0{n:020X}"),
                    text: "Your order has shipped.".to_owned(),
                    media: None,
                    retry: 0,
                };
                bus.enqueue_send(&job, SendPriority::Bulk).await?;
            }
        }
    });
    let (added, failed) = tokio::join!(futures::future::try_join_all(producers), completed(&worker, jobs));
    added?;
    anyhow::ensure!(failed == 0, "{failed} sends failed");
    let full_path = jobs as f64 / started.elapsed().as_secs_f64();
    worker.close(5_000).await?;
    session.shutdown().await;

    println!("4/4 Node BullMQ 6 with the same workload on the same Redis…");
    let peer = run_peer(
        "bullmq_queue.js",
        &[
            "--redis".into(),
            url,
            "--jobs".into(),
            jobs.to_string(),
            "--concurrency".into(),
            concurrency.to_string(),
            "--prefix".into(),
            format!("peerq{}", balas_backend::short_id()),
        ],
    )
    .await;
    let round = |v: f64| v.round();
    let mut figures = vec![
        ("benchmark", json!("queue")),
        ("jobs", json!(jobs)),
        ("concurrency", json!(concurrency)),
        ("rust_add_and_process_jobs_per_s", json!(round(add_and_process))),
        ("rust_add_only_jobs_per_s", json!(round(add_only))),
        ("rust_process_only_jobs_per_s", json!(round(process_only))),
        ("balas_full_send_path_jobs_per_s", json!(round(full_path))),
    ];
    match peer {
        Ok(peer) => {
            let node = peer["add_and_process_jobs_per_s"].as_f64().unwrap_or(f64::NAN);
            figures.push(("node_add_and_process_jobs_per_s", json!(round(node))));
            figures.push(("node_process_only_jobs_per_s", peer["process_only_jobs_per_s"].clone()));
            figures.push(("node_version", peer["peer"].clone()));
            figures.push(("add_and_process_rust_over_node", json!((add_and_process / node * 100.0).round() / 100.0)));
        }
        Err(error) => figures.push(("node_error", json!(error.to_string()))),
    }
    report(args, "queue: BullMQ send jobs, enqueue and process", &figures);
    Ok(())
}
