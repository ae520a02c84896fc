//! `balas-bench NAME [--json] [options]`: Balas' benchmarks, each beside its peer in the same run.
//! Run them through `cargo xtask bench NAME`, which builds in release mode, starts a Redis of
//! its own and installs the Node peers.
//!
//! - `pipeline [--clients 1000] [--rate 200] [--seconds 10] [--customers 200]`: simulated
//!   customers send `rate` messages per second while `clients` dashboard WebSockets are open;
//!   per message, the time from the customer's send until every client has it (p50/p99/max).
//!   Then Socket.io fans out the same rate to the same number of clients.
//! - `queue [--jobs 20000] [--concurrency 50]`: BullMQ send-job throughput, Balas' Rust worker
//!   beside Node BullMQ 6 on the same Redis; also the full send path (enqueue, sandbox send,
//!   event appended).
//! - `ratelimit [--channels 20] [--rate 5] [--seconds 60]`: every channel kept busy at its
//!   limit; the worst count of sends in any sliding second, and the achieved share of the limit.
//! - `inbox [--probes 120] [--interval 300] [--timeout 15000] [--rate 200] [--clients 1000]
//!   [--customers 200] [--conversations 5000] [--messages 100000] [--logins 5]`: in Chromium on
//!   the release site, the time from a customer's send until the agent's inbox shows it (p50/p99/max
//!   over `probes` messages, idle, then under the pipeline benchmark's load); the time from login
//!   until the inbox is interactive with `conversations` and `messages` stored; the wasm, JS and
//!   CSS sizes.
//! - `sessions [--sessions 200] [--idle 10] [--settle 12] [--cycle-sessions 100] [--cycles 3]`:
//!   resident memory (RSS), OS threads and open descriptors of this process per idle real
//!   WhatsApp session (resumed from the database, against the local fake WhatsApp server), what
//!   is left once they are stopped, whether that grows over start/stop cycles; then the same for
//!   sandbox sessions in a fresh process.
//!
//! Figures print as a table; with `--json` the last line is one JSON object.

mod ai;
mod broadcast;
mod contacts;
mod inbox;
mod pipeline;
mod queue;
mod ratelimit;
mod sessions;
mod setup;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Command-line options: `--name value` pairs and flags.
pub struct Args {
    pub name: String,
    pairs: Vec<String>,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut all: Vec<String> = std::env::args().skip(1).collect();
        if all.is_empty() {
            bail!("usage: balas-bench pipeline|queue|ratelimit|inbox|sessions [--json] [--option value ...]");
        }
        let name = all.remove(0);
        Ok(Self { name, pairs: all })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|a| a == name)
    }

    pub fn number(&self, name: &str, default: u64) -> Result<u64> {
        match self.pairs.iter().position(|a| a == name) {
            Some(i) => self
                .pairs
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} needs a whole number")),
            None => Ok(default),
        }
    }
}

/// Percentile (0–100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs a Node peer script from `bench/peers` and returns its last stdout line as JSON.
pub async fn run_peer(script: &str, args: &[String]) -> Result<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    let output = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("run node {script} (is Node installed, and `npm ci` done in bench/peers?)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("the peer printed no JSON")?;
    if !output.status.success() {
        bail!("{script} failed: {}", output.status);
    }
    Ok(serde_json::from_str(last)?)
}

/// Prints the figures as a table, then (with `--json`) as one JSON line.
pub fn report(args: &Args, title: &str, figures: &[(&str, Value)]) {
    println!("\n{title}");
    for (key, value) in figures {
        println!("  {key:<40} {value}");
    }
    if args.flag("--json") {
        let object: serde_json::Map<String, Value> =
            figures.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        println!("{}", Value::Object(object));
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    match args.name.as_str() {
        "pipeline" => pipeline::run(&args).await,
        "queue" => queue::run(&args).await,
        "ratelimit" => ratelimit::run(&args).await,
        "inbox" => inbox::run(&args).await,
        "sessions" => sessions::run(&args).await,
        "contacts" => contacts::run(&args).await,
        "broadcast" => broadcast::run(&args).await,
        "ai" => ai::run(&args).await,
        other => bail!(
            "no benchmark named {other:?}; choose pipeline, queue, ratelimit, inbox, sessions, contacts, broadcast or ai"
        ),
    }
}
