//! Broadcasts at scale: 10,000 recipients over 20 sandbox numbers at 5 messages a second each,
//! through the whole system (wizard's server function → planner → queues → worker → sandbox),
//! with the server and the worker as processes of their own. Figures: the time to the last send
//! against the ideal (recipients per number ÷ rate), the worst sliding second of any number, and
//! the peak memory of server and worker; then the same workload on Node BullMQ with its limiter.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use balas_domain::{BroadcastStatus, PhoneNumber};
use serde_json::json;

use crate::setup::{Bench, log_in};
use crate::{Args, report, run_peer};

/// A process's resident memory now, in MB.
pub fn rss_mb(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The most sends within any 1,000 ms of one sorted list of times.
fn worst_second(times: &[i64]) -> usize {
    let mut worst = 0;
    let mut start = 0;
    for (i, t) in times.iter().enumerate() {
        while times[start] <= t - 1000 {
            start += 1;
        }
        worst = worst.max(i - start + 1);
    }
    worst
}

pub async fn run(args: &Args) -> Result<()> {
    let numbers = args.number("--numbers", 20)? as usize;
    let per_number = args.number("--per-number", 500)? as usize;
    let rate = args.number("--rate", 5)? as u32;
    let bench = Bench::start().await?;
    let mut channels = Vec::with_capacity(numbers);
    for n in 1..=numbers {
        channels.push(bench.channel(n, rate).await?);
    }
    let recipients = |n: usize| -> Vec<String> { (0..per_number).map(|i| format!("+62813{n:02}{i:05}1")).collect() };
    println!("starting the server and the worker…");
    let processes = bench.start_processes(&channels.iter().collect::<Vec<_>>()).await?;
    let cookie = log_in(&processes.base).await?;
    let http = reqwest::Client::new();
    let (server_pid, worker_pid) = processes.pids();
    let idle = (rss_mb(server_pid), rss_mb(worker_pid));
    println!("creating {numbers} broadcasts of {per_number} recipients at {rate}/s per number…");
    let started = balas_backend::now();
    for (n, channel) in channels.iter().enumerate() {
        let body = json!({ "draft": {
            "name": format!("Bench {n}"), "channel_id": channel.id.0,
            "audience": { "kind": "list", "phones": recipients(n) },
            "text": "Flash sale today only, {{phone}}: 20% off everything." } });
        let response = http
            .post(format!("{}/api/create_broadcast", processes.base))
            .header(reqwest::header::COOKIE, &cookie)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "create_broadcast: {}", response.text().await?);
    }
    let created_ms = balas_backend::now().0 - started.0;
    let (mut peak_server, mut peak_worker) = (0f64, 0f64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        peak_server = peak_server.max(rss_mb(server_pid).unwrap_or(0.0));
        peak_worker = peak_worker.max(rss_mb(worker_pid).unwrap_or(0.0));
        let broadcasts = bench.state.store.broadcasts(bench.workspace, 100).await?;
        if broadcasts.iter().all(|b| b.status == BroadcastStatus::Finished) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the broadcasts did not finish within 10 minutes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    processes.stop().await;

    println!("reading what every phone received…");
    let mut by_sender: HashMap<String, Vec<i64>> = HashMap::new();
    let (mut received, mut doubled, mut missing) = (0usize, 0usize, 0usize);
    let mut last = 0i64;
    for n in 0..numbers {
        for phone in recipients(n) {
            let phone = PhoneNumber::parse(&phone)?;
            let messages = bench.state.bus.sandbox_messages(&phone).await?;
            match messages.len() {
                0 => missing += 1,
                1 => {}
                more => doubled += more - 1,
            }
            for message in messages {
                received += 1;
                last = last.max(message.at.0);
                by_sender.entry(message.from.as_str().to_owned()).or_default().push(message.at.0);
            }
        }
    }
    let mut worst = 0;
    for times in by_sender.values_mut() {
        times.sort_unstable();
        worst = worst.max(worst_second(times));
    }
    let total_seconds = (last - started.0) as f64 / 1000.0;
    let ideal = per_number as f64 / f64::from(rate);

    println!("the same workload on Node BullMQ 6 (a queue per number with its limiter)…");
    let peer = run_peer(
        "bullmq_broadcast.js",
        &[
            "--redis".into(),
            bench.redis_url(),
            "--numbers".into(),
            numbers.to_string(),
            "--per-number".into(),
            per_number.to_string(),
            "--rate".into(),
            rate.to_string(),
            "--prefix".into(),
            format!("peerbc{}", balas_backend::short_id()),
        ],
    )
    .await;
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    let mut figures = vec![
        ("benchmark", json!("broadcast")),
        ("numbers", json!(numbers)),
        ("recipients", json!(numbers * per_number)),
        ("rate_per_number", json!(rate)),
        ("ideal_seconds", json!(round1(ideal))),
        ("total_seconds", json!(round1(total_seconds))),
        ("percent_of_ideal_pace", json!(round1(ideal / total_seconds * 100.0))),
        ("create_all_broadcasts_ms", json!(created_ms)),
        ("worst_sliding_second", json!(worst)),
        ("received", json!(received)),
        ("recipients_without_message", json!(missing)),
        ("repeated_messages", json!(doubled)),
        ("server_idle_rss_mb", json!(idle.0.map(round1))),
        ("server_peak_rss_mb", json!(round1(peak_server))),
        ("worker_idle_rss_mb", json!(idle.1.map(round1))),
        ("worker_peak_rss_mb", json!(round1(peak_worker))),
    ];
    match peer {
        Ok(peer) => {
            figures.push(("node_bullmq_total_seconds", peer["total_seconds"].clone()));
            figures.push(("node_bullmq_worst_sliding_second", peer["worst_sliding_second"].clone()));
            figures.push(("node_bullmq_rss_mb", json!(peer["rss_mb"].as_f64().map(round1))));
        }
        Err(error) => println!("  (the Node peer did not run: {error:#})"),
    }
    report(args, "broadcast: 20 numbers × 500 recipients through the whole system", &figures);
    anyhow::ensure!(missing == 0, "{missing} recipients got no message");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_worst_second_counts_a_sliding_window() {
        assert_eq!(super::worst_second(&[0, 200, 400, 999, 1000, 1001]), 4);
        assert_eq!(super::worst_second(&[]), 0);
    }
}
