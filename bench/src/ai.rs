//! The AI agent under load: does a slow model slow anything else down? The pipeline benchmark's
//! load (customers → every dashboard) runs twice in one run: first alone (`idle_p99_ms`), then
//! while the AI worker answers a steady stream of other customers through a fake provider that
//! takes 5 s per answer, so that about 500 model calls are in flight (`loaded_p99_ms`). Also: the
//! AI worker's memory with those calls in flight, and whether every question was answered.
//!
//! `--control` runs phase 2 without the AI: the same customers' questions, each answered after
//! `--model-ms` by the benchmark itself through the same queue (as the AI's answers are). Its p99
//! against the AI run's tells what the AI worker costs apart from the messages it adds.
//!
//! `--elsewhere` puts the AI's channels and customers in another workspace on the same
//! installation (another business): the dashboards then do not receive the AI's conversations,
//! and the run tells what another tenant's AI costs this one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use balas_backend::messaging::{Outbound, queue_message};
use balas_domain::{AiProfile, ChannelId, PhoneNumber, SenderKind, WorkspaceId};
use serde_json::json;

use crate::broadcast::rss_mb;
use crate::pipeline::measure;
use crate::setup::{Bench, log_in};
use crate::{Args, percentile, report};

pub async fn run(args: &Args) -> Result<()> {
    let clients = args.number("--clients", 100)? as usize;
    let rate = args.number("--rate", 100)?;
    let seconds = args.number("--seconds", 20)?;
    let model_ms = args.number("--model-ms", 5_000)?;
    let in_flight = args.number("--in-flight", 500)?;
    // Questions a second that keep `in_flight` calls going at `model_ms` each.
    let ai_rate = (in_flight * 1000).div_ceil(model_ms.max(1));

    // `--postgres`: on the throwaway PostgreSQL `cargo xtask bench ai` starts, instead of SQLite.
    let database = if args.flag("--postgres") {
        let url = std::env::var("BALAS_BENCH_POSTGRES_URL").unwrap_or_default();
        anyhow::ensure!(!url.is_empty(), "BALAS_BENCH_POSTGRES_URL is not set: run `cargo xtask bench ai --postgres`");
        Some(url)
    } else {
        None
    };
    let on_postgres = database.is_some();
    let control = args.flag("--control");
    let elsewhere = args.flag("--elsewhere");
    let bench = Bench::start_on(database).await?;
    let pipeline = bench.channel(1, 5).await?;
    let ai_workspace = if elsewhere { bench.other_workspace("Elsewhere").await? } else { bench.workspace };
    // The AI's answers go out through the WhatsApp worker too: two numbers at their highest rate.
    let ai_channels = [bench.channel_in(ai_workspace, 2, 80).await?, bench.channel_in(ai_workspace, 3, 80).await?];
    let llm = balas_fakellm::FakeLlm::start(([127, 0, 0, 1], 0).into()).await?;
    llm.set_delay(Duration::from_millis(model_ms));
    let store = &bench.state.store;
    store.set_ai_settings(ai_workspace, &llm.url, Some("sk-bench"), "fake-model", 0, balas_backend::now()).await?;
    let profile = AiProfile { settle_ms: 0, history: 4, handover_keywords: vec![], ..AiProfile::default() };
    for channel in &ai_channels {
        store.set_ai_enabled(ai_workspace, channel.id, !control, &profile, balas_backend::now()).await?;
    }
    println!("starting the server and the WhatsApp worker…");
    let processes = bench.start_processes(&[&pipeline, &ai_channels[0], &ai_channels[1]]).await?;
    let base = processes.base.clone();
    let cookie = log_in(&base).await?;
    let (server_pid, _) = processes.pids();

    println!("1. the pipeline alone: {clients} dashboards, {rate} messages/s for {seconds} s");
    let (idle, _) = measure(&bench, &base, &cookie, &pipeline.phone, clients, rate, seconds, 200).await?;

    let mut ai_worker = if control {
        println!("2. the same, with {ai_rate} questions/s each answered after {model_ms} ms, without the AI (control)");
        None
    } else {
        println!("2. the same, with the AI worker answering {ai_rate} questions/s at {model_ms} ms each");
        Some(bench.process("balas-ai-worker", 0)?)
    };
    let ai_pid = ai_worker.as_ref().and_then(tokio::process::Child::id);
    let ai_idle_mb = wait_for_rss(ai_pid).await;
    // The control's answers: (when, channel, customer), answered by `answering` below.
    let (answer_tx, answers) = tokio::sync::mpsc::unbounded_channel();
    let answered_in_control = Arc::new(AtomicU64::new(0));
    let asked_in_control = Arc::new(AtomicU64::new(0));
    let answering =
        tokio::spawn(control_answers(bench.state.clone(), ai_workspace, answers, answered_in_control.clone()));
    let (stop_questions, questions) = tokio::sync::watch::channel(false);
    let asking = {
        let (bus, rules) = (bench.state.bus.clone(), bench.settings.sandbox_rules());
        let to: Vec<PhoneNumber> = ai_channels.iter().map(|c| c.phone.clone()).collect();
        let ids: Vec<ChannelId> = ai_channels.iter().map(|c| c.id).collect();
        let answer_after = Duration::from_millis(model_ms);
        let asked_counter = asked_in_control.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / ai_rate.max(1)));
            let mut asked = 0u64;
            while !*questions.borrow() {
                tick.tick().await;
                // A new customer each time: every question is its own conversation.
                let Ok(from) = PhoneNumber::parse(&format!("+62814{asked:07}")) else { break };
                let wa_id = balas_backend::messaging::new_wa_id();
                let text = format!("question {asked}: is this in stock?");
                let now = balas_backend::now();
                if bus
                    .sandbox_send(rules, None, &from, &to[asked as usize % 2], &wa_id, &text, None, now)
                    .await
                    .is_err()
                {
                    break;
                }
                if control {
                    let due = tokio::time::Instant::now() + answer_after;
                    let _ = answer_tx.send((due, ids[asked as usize % 2], from));
                    asked_counter.fetch_add(1, Ordering::Relaxed);
                }
                asked += 1;
            }
            asked
        })
    };
    // Until the calls in flight reach their steady level (or the time that should take, twice).
    let ramp = tokio::time::Instant::now() + Duration::from_millis(model_ms * 2 + 5_000);
    // Questions asked and not answered yet: the model calls in flight, or the control's waiting answers.
    let waiting = {
        let (llm, answered, asked) = (llm.clone(), answered_in_control.clone(), asked_in_control.clone());
        move || {
            if control {
                asked.load(Ordering::Relaxed).saturating_sub(answered.load(Ordering::Relaxed))
            } else {
                llm.in_flight()
            }
        }
    };
    while waiting() < in_flight * 9 / 10 && tokio::time::Instant::now() < ramp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (samples_stop, samples_stopped) = tokio::sync::watch::channel(false);
    let sampler = {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let (mut peak_mb, mut peak_flight, mut flights) = (0f64, 0u64, Vec::new());
            while !*samples_stopped.borrow() {
                peak_mb = peak_mb.max(rss_mb(ai_pid).unwrap_or(0.0));
                let flight = waiting();
                peak_flight = peak_flight.max(flight);
                flights.push(flight as f64);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            flights.sort_by(f64::total_cmp);
            (peak_mb, peak_flight, percentile(&flights, 50.0))
        })
    };
    let server_before = rss_mb(server_pid);
    let (loaded, _) = measure(&bench, &base, &cookie, &pipeline.phone, clients, rate, seconds, 200).await?;
    let _ = samples_stop.send(true);
    let (ai_peak_mb, peak_in_flight, median_in_flight) = sampler.await?;
    let _ = stop_questions.send(true);
    let asked = asking.await?;
    println!("waiting for the last answers…");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(model_ms * 3 + 30_000);
    let answered = || if control { answered_in_control.load(Ordering::Relaxed) } else { llm.served() };
    while answered() < asked && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answered = answered();
    let server_after = rss_mb(server_pid);
    if let Some(worker) = ai_worker.as_mut() {
        let _ = worker.kill().await;
    }
    answering.abort();
    processes.stop().await;

    let round = |v: f64| (v * 100.0).round() / 100.0;
    let (idle_p99, loaded_p99) = (percentile(&idle, 99.0), percentile(&loaded, 99.0));
    let total = (rate * seconds) as usize;
    let figures = vec![
        ("benchmark", json!("ai")),
        ("database", json!(if on_postgres { "postgres" } else { "sqlite" })),
        ("phase_2", json!(if control { "control: answered by the benchmark, no AI" } else { "the AI worker" })),
        ("ai_workspace", json!(if elsewhere { "another workspace" } else { "the dashboards' workspace" })),
        ("clients", json!(clients)),
        ("pipeline_rate_per_s", json!(rate)),
        ("seconds", json!(seconds)),
        ("model_ms", json!(model_ms)),
        ("ai_questions_per_s", json!(ai_rate)),
        ("idle_messages_reaching_every_client", json!(format!("{} of {total}", idle.len()))),
        ("loaded_messages_reaching_every_client", json!(format!("{} of {total}", loaded.len()))),
        ("idle_p50_ms", json!(round(percentile(&idle, 50.0)))),
        ("idle_p99_ms", json!(round(idle_p99))),
        ("loaded_p50_ms", json!(round(percentile(&loaded, 50.0)))),
        ("loaded_p99_ms", json!(round(loaded_p99))),
        ("loaded_over_idle_p99", json!(round(loaded_p99 / idle_p99))),
        ("ai_calls_in_flight_median", json!(median_in_flight)),
        ("ai_calls_in_flight_peak", json!(peak_in_flight)),
        ("ai_worker_idle_mb", json!(ai_idle_mb.map(round))),
        ("ai_worker_peak_mb", json!(round(ai_peak_mb))),
        ("server_mb_before_after", json!([server_before.map(round), server_after.map(round)])),
        ("ai_questions", json!(asked)),
        ("ai_answers", json!(answered)),
    ];
    report(args, "ai: the pipeline's dashboard latency, alone and with ~500 slow model calls in flight", &figures);
    Ok(())
}

/// The control's answers: each `(due, channel, customer)` is answered at `due`, through the
/// queue as the AI's answers are (sender "AI"), counted in `answered`.
async fn control_answers(
    state: balas_backend::AppState,
    workspace: WorkspaceId,
    mut due: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, ChannelId, PhoneNumber)>,
    answered: Arc<AtomicU64>,
) {
    while let Some((at, channel_id, to)) = due.recv().await {
        tokio::time::sleep_until(at).await;
        let (state, answered) = (state.clone(), answered.clone());
        tokio::spawn(async move {
            let outbound = Outbound {
                workspace_id: workspace,
                channel_id,
                to: &to,
                text: "Echo: yes, it is in stock",
                media: None,
                sender: SenderKind::Ai,
                sender_user: None,
            };
            if queue_message(&state, &outbound).await.is_ok() {
                answered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// The process's memory once it has started (up to 5 s); none without a process (`--control`).
async fn wait_for_rss(pid: Option<u32>) -> Option<f64> {
    pid?;
    for _ in 0..20 {
        if let Some(mb) = rss_mb(pid).filter(|mb| *mb > 0.0) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return rss_mb(pid).or(Some(mb));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}
