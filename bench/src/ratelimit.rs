//! Many channels kept busy at their limit: does any channel ever exceed it in a sliding second,
//! and how close to the limit does each get?

use std::time::Duration;

use anyhow::Result;
use balas_backend::messaging::queue_text;
use balas_domain::{MessageText, PhoneNumber, SenderKind};
use serde_json::json;

use crate::setup::Bench;
use crate::{Args, report};

pub async fn run(args: &Args) -> Result<()> {
    let count = args.number("--channels", 20)? as usize;
    let rate = args.number("--rate", 5)? as u32;
    let seconds = args.number("--seconds", 60)?;
    let bench = Bench::start().await?;
    let mut channels = Vec::with_capacity(count);
    for n in 1..=count {
        channels.push(bench.channel(n, rate).await?);
    }
    // Enough work that no queue runs dry during the measured time.
    let per_channel = u64::from(rate) * (seconds + 5);
    println!("queuing {} messages on {count} channels…", per_channel * count as u64);
    let text = MessageText::parse("Flash sale today only: 20% off everything.")?;
    for (c, channel) in channels.iter().enumerate() {
        let to = PhoneNumber::parse(&format!("+62814{c:07}1"))?;
        for _ in 0..per_channel {
            queue_text(&bench.state, bench.workspace, channel.id, &to, &text, SenderKind::Broadcast, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    println!("sending for {seconds} s at {rate}/s per channel…");
    let (stop, worker) = bench.worker();
    tokio::time::sleep(Duration::from_secs(seconds + 3)).await;
    let _ = stop.send(());
    let _ = worker.await;

    let mut worst = 0usize;
    let mut shares = Vec::with_capacity(count);
    let mut sent_total = 0usize;
    for c in 0..count {
        let to = PhoneNumber::parse(&format!("+62814{c:07}1"))?;
        let mut times: Vec<i64> = bench.state.bus.sandbox_messages(&to).await?.iter().map(|m| m.at.0).collect();
        times.sort_unstable();
        sent_total += times.len();
        let channel_worst = (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| **t < times[i] + 1000).count())
            .max()
            .unwrap_or(0);
        worst = worst.max(channel_worst);
        // The share of the limit reached over the measured time, from the first send.
        let first = times.first().copied().unwrap_or(0);
        let window = (seconds * 1000) as i64;
        let in_window = times.iter().filter(|t| **t < first + window).count();
        shares.push(in_window as f64 / (f64::from(rate) * seconds as f64));
    }
    let min_share = shares.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_share = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    let percent = |v: f64| (v * 1000.0).round() / 10.0;
    report(
        args,
        "ratelimit: channels kept busy at their limit",
        &[
            ("benchmark", json!("ratelimit")),
            ("channels", json!(count)),
            ("limit_per_s", json!(rate)),
            ("seconds", json!(seconds)),
            ("messages_sent", json!(sent_total)),
            ("worst_sliding_second", json!(worst)),
            ("achieved_percent_of_limit_min", json!(percent(min_share))),
            ("achieved_percent_of_limit_mean", json!(percent(mean_share))),
        ],
    );
    Ok(())
}
