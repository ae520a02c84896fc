//! What an idle WhatsApp session costs a worker process, and what is left once it stops: resident
//! memory (`VmRSS`), OS threads and open file descriptors, read from `/proc/self`.
//!
//! Three processes, so that each figure is this process' own:
//! - this one holds the measured sessions, as a WhatsApp worker does;
//! - a helper (`sessions --fake-server`) runs the fake WhatsApp server and, before anything is
//!   measured, links every number by QR code (a session that is linking holds more than one that
//!   resumes, and the memory it frees would stay in this process' allocator);
//! - another (`sessions --sandbox-phase`) measures sandbox sessions on a fresh process.
//!
//! Steps: a baseline (store, Redis and fake server up, no session yet); `--sessions` real sessions
//! resumed from the database (they log straight in), idle for `--idle` seconds, and again
//! `--settle` seconds later; all stopped, `--settle` seconds later; `--cycles` rounds of
//! `--cycle-sessions` sessions started together and stopped; then the same for sandbox sessions in
//! their process. RSS is what the OS reports: memory the allocator keeps after a stop counts, as it
//! does for a worker (returning it would take `malloc_trim`, which needs `unsafe`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use balas_backend::media::MediaStore;
use balas_domain::{Channel, ChannelName, ChannelState, LinkMethod, PhoneNumber, Provider, RatePerSecond, WorkspaceId};
use balas_fakewa::FakeWa;
use balas_storage::{NewChannel, Store};
use balas_workers::sandbox::SandboxProvider;
use balas_workers::session::{Connected, Incoming, Session, SessionEvent};
use balas_workers::whatsapp::{WhatsappConfig, WhatsappProvider};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::setup::Bench;
use crate::{Args, report};

/// The WhatsApp Web version announced to the fake server (so the client fetches none).
const VERSION: (u32, u32, u32) = (2, 3000, 1023);
/// How long linking every number may take (each connects about 10 s after its scan).
const LINK_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a resumed or sandbox session may take to report that it is connected.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the fake server may take to see every connection closed after a stop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the helper finds the database the numbers are linked in.
const DATABASE_ENV: &str = "BALAS_BENCH_SESSIONS_DATABASE_URL";

/// The process' resident memory, threads and open file descriptors; threads by name and
/// descriptors by what they point to, to tell what was left.
#[derive(Debug, Clone)]
struct Sample {
    rss_kb: i64,
    peak_rss_kb: i64,
    threads: i64,
    fds: i64,
    thread_names: BTreeMap<String, i64>,
    fd_kinds: BTreeMap<String, i64>,
}

impl Sample {
    fn take() -> Result<Self> {
        let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
        let field = |name: &str| -> Result<i64> {
            let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} in status"))?;
            let number = line[name.len()..].split_whitespace().next().unwrap_or_default();
            number.parse().with_context(|| format!("{name} is not a number: {line}"))
        };
        let mut thread_names = BTreeMap::new();
        for task in std::fs::read_dir("/proc/self/task").context("read /proc/self/task")?.flatten() {
            // A thread that ended while the folder was read has no name any more.
            let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
            let name = name.trim().trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').to_owned();
            *thread_names.entry(name).or_insert(0) += 1;
        }
        let mut fd_kinds = BTreeMap::new();
        let fd_dir = std::fs::read_dir("/proc/self/fd").context("read /proc/self/fd")?;
        for fd in fd_dir.flatten() {
            // The listing's own descriptor is gone by the time it is looked at.
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            let kind = match target.split_once(':') {
                Some(("anon_inode", rest)) => format!("anon_inode:{rest}"),
                Some((kind, rest)) if !target.starts_with('/') && rest.starts_with('[') => kind.to_owned(),
                _ => target.rsplit('/').next().unwrap_or_default().to_owned(),
            };
            *fd_kinds.entry(kind).or_insert(0) += 1;
        }
        let fds = fd_kinds.values().sum();
        Ok(Self {
            rss_kb: field("VmRSS:")?,
            peak_rss_kb: field("VmHWM:")?,
            threads: field("Threads:")?,
            fds,
            thread_names,
            fd_kinds,
        })
    }

    fn show(&self, what: &str) {
        println!(
            "  {what:<44} RSS {:>8.1} MB, {:>3} threads, {:>4} fds",
            self.rss_kb as f64 / 1024.0,
            self.threads,
            self.fds
        );
    }
}

/// What `after` has more (or less) of than `before`, by name.
fn change(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Value {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed: serde_json::Map<String, Value> = names
        .into_iter()
        .filter_map(|name| {
            let delta = after.get(name).unwrap_or(&0) - before.get(name).unwrap_or(&0);
            (delta != 0).then(|| (name.clone(), json!(delta)))
        })
        .collect();
    Value::Object(changed)
}

/// What the last cycle left beside what there was after the first stop.
fn cycle_change(after: &Sample, cycles: &[Sample], part: fn(&Sample) -> &BTreeMap<String, i64>) -> Value {
    cycles.last().map_or(json!({}), |last| change(part(after), part(last)))
}

fn per(delta: i64, sessions: usize) -> f64 {
    // (`+ 0.0` turns a rounded -0.0 into 0.0.)
    (delta as f64 / sessions.max(1) as f64 * 10.0).round() / 10.0 + 0.0
}

fn secs(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 100.0).round() / 100.0
}

/// A connected session and the task that reads (and drops) its events, as a worker would.
struct Running {
    session: Box<dyn Session>,
    events: tokio::task::JoinHandle<()>,
}

/// Waits for the session to say it is connected, scanning the QR codes it shows on `fake` (when
/// given: a number that was never linked). Shuts the session down if it does not get there.
async fn until_connected(connected: Connected, fake: Option<(&FakeWa, &str)>, timeout: Duration) -> Result<Running> {
    let Connected { session, mut events } = connected;
    let waited = tokio::time::timeout(timeout, async {
        while let Some(Incoming { event, .. }) = events.recv().await {
            match event {
                SessionEvent::State { state: ChannelState::Connected, .. } => return Ok(()),
                SessionEvent::PairingQr { code, .. } => match fake {
                    // A failed scan (an expired code) is tried again with the next code.
                    Some((fake, phone)) => {
                        if let Err(error) = fake.scan(&code, phone, "Bench").await {
                            eprintln!("sessions: scanning a code failed: {error:#}");
                        }
                    }
                    None => bail!("a number that should be linked asked for a new link"),
                },
                SessionEvent::LoggedOut
                | SessionEvent::Replaced
                | SessionEvent::LinkExpired
                | SessionEvent::Banned { .. } => bail!("the session ended: {event:?}"),
                _ => {}
            }
        }
        bail!("the session's events ended before it connected")
    })
    .await;
    if let Err(error) = waited.unwrap_or_else(|_| Err(anyhow!("not connected within {} s", timeout.as_secs()))) {
        session.shutdown().await;
        return Err(error);
    }
    let events = tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(Running { session, events })
}

/// Stops every session (all at once) and waits for their event streams to end; returns how many
/// streams did not end within 15 s.
async fn stop_all(running: Vec<Running>) -> usize {
    let mut readers = Vec::with_capacity(running.len());
    let stops = running.into_iter().map(|Running { session, events }| {
        readers.push(events);
        async move { session.shutdown().await }
    });
    futures::future::join_all(stops.collect::<Vec<_>>()).await;
    let mut open = 0;
    for reader in readers {
        if tokio::time::timeout(Duration::from_secs(15), reader).await.is_err() {
            open += 1;
        }
    }
    open
}

/// Connects every channel at once (each in a task of its own) and waits until all are connected.
/// If any fails, the others are stopped and the first error returned.
async fn connect_real(
    provider: &WhatsappProvider,
    channels: &[Channel],
    fake: Option<&FakeWa>,
    timeout: Duration,
) -> Result<Vec<Running>> {
    let tasks: Vec<_> = channels
        .iter()
        .map(|channel| {
            let (provider, channel, fake) = (provider.clone(), channel.clone(), fake.cloned());
            tokio::spawn(async move {
                let connected =
                    provider.connect(&channel).await.map_err(|e| anyhow!("cannot connect {}: {e}", channel.phone))?;
                let scan = fake.as_ref().map(|f| (f, channel.phone.digits()));
                until_connected(connected, scan, timeout).await.with_context(|| format!("{}", channel.phone))
            })
        })
        .collect();
    gather(tasks).await
}

async fn gather(tasks: Vec<tokio::task::JoinHandle<Result<Running>>>) -> Result<Vec<Running>> {
    let mut running = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(session) => running.push(session),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        stop_all(running).await;
        return Err(error);
    }
    Ok(running)
}

/// The helper process that runs the fake WhatsApp server, seen from here.
struct FakeServer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    link_seconds: f64,
}

impl FakeServer {
    /// Starts the helper, which links every WhatsApp channel of `workspace` and then serves.
    async fn start(bench: &Bench, workspace: WorkspaceId) -> Result<Self> {
        use secrecy::ExposeSecret;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["sessions", "--fake-server", "--workspace", &workspace.0.to_string()])
            .env(DATABASE_ENV, bench.settings.database_url.expose_secret())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("start the fake WhatsApp server's process")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let ready = stdout.next_line().await?.context("the fake WhatsApp server's process stopped")?;
        let mut words = ready.split_whitespace();
        let (Some("ready"), Some(url), Some(link_seconds)) = (words.next(), words.next(), words.next()) else {
            bail!("the fake WhatsApp server's process said {ready:?}");
        };
        let (url, link_seconds) = (url.to_owned(), link_seconds.parse()?);
        Ok(Self { child, stdin, stdout, url, link_seconds })
    }

    async fn ask(&mut self, command: &str) -> Result<String> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        self.stdout.next_line().await?.context("the fake WhatsApp server's process stopped")
    }

    async fn number(&mut self, command: &str) -> Result<usize> {
        let answer = self.ask(command).await?;
        answer.parse().with_context(|| format!("{command}: {answer}"))
    }

    /// Waits until the fake server has no open connection; false if some are still open.
    async fn wait_closed(&mut self) -> Result<bool> {
        Ok(self.ask(&format!("wait 0 {}", CLOSE_TIMEOUT.as_secs())).await? == "true")
    }

    fn rss_kb(&self) -> Option<i64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
    }
}

/// The helper: starts the fake server, links every WhatsApp channel of the workspace by QR code
/// (all at once), stops them, says `ready URL SECONDS`, then answers `open`, `logged` and
/// `wait COUNT SECONDS`, one line each, until its input ends.
async fn serve_fake(args: &Args) -> Result<()> {
    let url = std::env::var(DATABASE_ENV).with_context(|| format!("{DATABASE_ENV} is not set"))?;
    let workspace = WorkspaceId(args.number("--workspace", 0)? as i64);
    let store = Store::open(&url, 8).await?;
    let fake = FakeWa::start().await?;
    let provider = WhatsappProvider::new(
        WhatsappConfig { url: Some(fake.url()), version: Some(VERSION) },
        store.clone(),
        MediaStore::new(std::env::temp_dir().join("balas-bench-media")),
    );
    let channels: Vec<Channel> =
        store.channels(workspace).await?.into_iter().filter(|c| c.provider == Provider::Whatsapp).collect();
    eprintln!("sessions: linking {} numbers by QR code (each connects about 10 s after its scan)…", channels.len());
    let started = Instant::now();
    let linked = connect_real(&provider, &channels, Some(&fake), LINK_TIMEOUT).await?;
    let link_seconds = secs(started.elapsed());
    let unended = stop_all(linked).await;
    anyhow::ensure!(unended == 0, "{unended} linking sessions' events did not end");
    anyhow::ensure!(fake.wait_for_open_connections(0, CLOSE_TIMEOUT).await, "linking sessions stayed connected");
    drop(provider);
    store.close().await;
    println!("ready {} {link_seconds}", fake.url());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["open"] => fake.open_connections().to_string(),
            ["logged"] => fake.logged_in_phones().len().to_string(),
            ["wait", count, seconds] => {
                let timeout = Duration::from_secs(seconds.parse()?);
                fake.wait_for_open_connections(count.parse()?, timeout).await.to_string()
            }
            _ => format!("unknown command {line:?}"),
        };
        println!("{answer}");
    }
    Ok(())
}

/// Sandbox sessions in a process of their own: baseline, `--sessions` connected and idle, then
/// stopped. Prints its figures as one JSON line of `[name, value]` pairs.
async fn sandbox_phase(args: &Args) -> Result<()> {
    let count = args.number("--sessions", 200)? as usize;
    let idle = Duration::from_secs(args.number("--idle", 10)?);
    let settle = Duration::from_secs(args.number("--settle", 12)?);
    let bench = Bench::start().await?;
    let provider = SandboxProvider {
        bus: bench.state.bus.clone(),
        rules: bench.settings.sandbox_rules(),
        latency: Duration::ZERO,
        media: bench.state.media.clone(),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = Sample::take()?;
    base.show("sandbox: baseline (own process)");
    let started = Instant::now();
    let tasks = (1..=count)
        .map(|n| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let phone = PhoneNumber::parse(&format!("+62816{n:07}"))?;
                let connected = provider.connect(phone, bench.workspace, 1).await.map_err(|e| anyhow!("{e}"))?;
                until_connected(connected, None, CONNECT_TIMEOUT).await
            })
        })
        .collect();
    let running = gather(tasks).await?;
    let connect_seconds = secs(started.elapsed());
    tokio::time::sleep(idle).await;
    let idle_sample = Sample::take()?;
    idle_sample.show(&format!("sandbox: {count} sessions, idle {} s", idle.as_secs()));
    let unended = stop_all(running).await;
    tokio::time::sleep(settle).await;
    let after = Sample::take()?;
    after.show(&format!("sandbox: all stopped, {} s later", settle.as_secs()));
    let figures = [
        ("sandbox_connect_seconds", json!(connect_seconds)),
        ("sandbox_baseline_rss_kb", json!(base.rss_kb)),
        ("sandbox_baseline_threads", json!(base.threads)),
        ("sandbox_baseline_fds", json!(base.fds)),
        ("sandbox_idle_rss_kb", json!(idle_sample.rss_kb)),
        ("sandbox_idle_rss_per_session_kb", json!(per(idle_sample.rss_kb - base.rss_kb, count))),
        ("sandbox_idle_threads_total", json!(idle_sample.threads)),
        ("sandbox_idle_threads_per_session", json!(per(idle_sample.threads - base.threads, count))),
        ("sandbox_idle_fds_per_session", json!(per(idle_sample.fds - base.fds, count))),
        ("sandbox_idle_fds_added", change(&base.fd_kinds, &idle_sample.fd_kinds)),
        ("sandbox_after_stop_rss_delta_kb", json!(after.rss_kb - base.rss_kb)),
        ("sandbox_after_stop_threads_delta", json!(after.threads - base.threads)),
        ("sandbox_after_stop_fds_delta", json!(after.fds - base.fds)),
        ("sandbox_after_stop_threads_left", change(&base.thread_names, &after.thread_names)),
        ("sandbox_after_stop_fds_left", change(&base.fd_kinds, &after.fd_kinds)),
        ("sandbox_event_streams_not_ended", json!(unended)),
    ];
    // In order, as `[name, value]` pairs.
    let figures = serde_json::to_string(&figures)?;
    println!("{figures}");
    Ok(())
}

/// Runs the sandbox phase in a fresh process of this binary and returns its figures.
async fn run_sandbox_phase(count: usize, idle: u64, settle: u64) -> Result<Vec<(String, Value)>> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args(["sessions", "--sandbox-phase", "--sessions", &count.to_string()])
        .args(["--idle", &idle.to_string(), "--settle", &settle.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with('[')) {
        println!("{line}");
    }
    anyhow::ensure!(output.status.success(), "the sandbox phase failed: {}", output.status);
    let last = stdout.lines().rev().find(|l| l.starts_with('[')).context("the sandbox phase printed no figures")?;
    Ok(serde_json::from_str(last)?)
}

pub async fn run(args: &Args) -> Result<()> {
    if args.flag("--fake-server") {
        return serve_fake(args).await;
    }
    if args.flag("--sandbox-phase") {
        return sandbox_phase(args).await;
    }
    let count = args.number("--sessions", 200)? as usize;
    let cycle_count = args.number("--cycle-sessions", 100)? as usize;
    let cycles = args.number("--cycles", 3)? as usize;
    let idle_secs = args.number("--idle", 10)?;
    let settle_secs = args.number("--settle", 12)?;
    let (idle, settle) = (Duration::from_secs(idle_secs), Duration::from_secs(settle_secs));
    anyhow::ensure!(cycle_count <= count, "--cycle-sessions cannot be more than --sessions");

    let bench = Bench::start().await?;
    let rate = RatePerSecond::parse(5)?;
    let mut channels = Vec::with_capacity(count);
    for n in 1..=count {
        let name = ChannelName::parse(&format!("WhatsApp {n}"))?;
        let phone = PhoneNumber::parse(&format!("+62815{n:07}"))?;
        let channel = NewChannel {
            workspace_id: bench.workspace,
            name: &name,
            provider: Provider::Whatsapp,
            phone: &phone,
            rate,
            link_method: LinkMethod::Qr,
        };
        channels.push(bench.state.store.create_channel(&channel, balas_backend::now()).await?);
    }
    let mut fake = FakeServer::start(&bench, bench.workspace).await?;
    println!("linked {count} numbers by QR code in {} s (in the fake server's process)", fake.link_seconds);
    let config = WhatsappConfig { url: Some(fake.url.clone()), version: Some(VERSION) };
    let provider = WhatsappProvider::new(config, bench.state.store.clone(), bench.state.media.clone());
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("runtime: #[tokio::main] multi-thread, {threads} worker threads (as balas-wa-worker)\n");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = Sample::take()?;
    base.show("baseline: store, Redis, fake server up");

    // The numbers resume from the database, as on a worker's start.
    let started = Instant::now();
    let running = connect_real(&provider, &channels, None, CONNECT_TIMEOUT).await?;
    let resume_seconds = secs(started.elapsed());
    println!("  {count} sessions resumed and connected in {resume_seconds} s; idle {idle_secs} s…");
    tokio::time::sleep(idle).await;
    let idle_sample = Sample::take()?;
    idle_sample.show(&format!("{count} real sessions, idle {idle_secs} s"));
    // Later again: threads that only served the connecting (Tokio's blocking pool keeps an unused
    // thread 10 s) are gone by then; what is left is what idle sessions keep.
    tokio::time::sleep(settle).await;
    let idle_late = Sample::take()?;
    idle_late.show(&format!("{count} real sessions, idle {} s", idle_secs + settle_secs));
    let logged_in = fake.number("logged").await?;
    let open_idle = fake.number("open").await?;
    let fake_rss_kb = fake.rss_kb();

    let started = Instant::now();
    let unended = stop_all(running).await;
    let stop_seconds = secs(started.elapsed());
    let closed = fake.wait_closed().await?;
    tokio::time::sleep(settle).await;
    let after = Sample::take()?;
    after.show(&format!("all stopped, {settle_secs} s later"));

    let mut cycle_samples = Vec::with_capacity(cycles);
    let mut cycle_unended = 0;
    let mut cycles_closed = true;
    for round in 1..=cycles {
        let running = connect_real(&provider, &channels[..cycle_count], None, CONNECT_TIMEOUT).await?;
        cycle_unended += stop_all(running).await;
        cycles_closed &= fake.wait_closed().await?;
        tokio::time::sleep(settle).await;
        let sample = Sample::take()?;
        sample.show(&format!("cycle {round}: {cycle_count} started and stopped"));
        cycle_samples.push(sample);
    }
    let peak_rss_kb = Sample::take()?.peak_rss_kb;
    drop(provider);

    println!();
    let sandbox = run_sandbox_phase(count, idle_secs, settle_secs).await?;

    let mut figures = vec![
        ("benchmark", json!("sessions")),
        ("sessions", json!(count)),
        ("runtime_worker_threads", json!(threads)),
        ("idle_seconds", json!(idle_secs)),
        ("settle_seconds", json!(settle_secs)),
        ("real_link_seconds", json!(fake.link_seconds)),
        ("real_resume_seconds", json!(resume_seconds)),
        ("baseline_rss_kb", json!(base.rss_kb)),
        ("baseline_threads", json!(base.threads)),
        ("baseline_fds", json!(base.fds)),
        ("real_idle_rss_kb", json!(idle_sample.rss_kb)),
        ("real_idle_rss_per_session_kb", json!(per(idle_sample.rss_kb - base.rss_kb, count))),
        ("real_idle_threads_total", json!(idle_sample.threads)),
        ("real_idle_threads_per_session", json!(per(idle_sample.threads - base.threads, count))),
        ("real_idle_fds_total", json!(idle_sample.fds)),
        ("real_idle_fds_per_session", json!(per(idle_sample.fds - base.fds, count))),
        ("real_idle_threads_added", change(&base.thread_names, &idle_sample.thread_names)),
        ("real_idle_fds_added", change(&base.fd_kinds, &idle_sample.fd_kinds)),
        ("real_idle_late_rss_kb", json!(idle_late.rss_kb)),
        ("real_idle_late_threads_total", json!(idle_late.threads)),
        ("real_idle_late_threads_added", change(&base.thread_names, &idle_late.thread_names)),
        ("real_idle_logged_in_on_fake", json!(logged_in)),
        ("real_idle_open_connections_on_fake", json!(open_idle)),
        ("fake_server_process_rss_kb", json!(fake_rss_kb)),
        ("real_stop_seconds", json!(stop_seconds)),
        ("real_after_stop_rss_delta_kb", json!(after.rss_kb - base.rss_kb)),
        ("real_after_stop_threads_delta", json!(after.threads - base.threads)),
        ("real_after_stop_fds_delta", json!(after.fds - base.fds)),
        ("real_after_stop_threads_left", change(&base.thread_names, &after.thread_names)),
        ("real_after_stop_fds_left", change(&base.fd_kinds, &after.fd_kinds)),
        ("real_after_stop_fake_connections_closed", json!(closed)),
        ("real_event_streams_not_ended", json!(unended + cycle_unended)),
        ("cycle_sessions", json!(cycle_count)),
        ("cycles_rss_kb", json!(cycle_samples.iter().map(|s| s.rss_kb).collect::<Vec<_>>())),
        ("cycles_threads", json!(cycle_samples.iter().map(|s| s.threads).collect::<Vec<_>>())),
        ("cycles_fds", json!(cycle_samples.iter().map(|s| s.fds).collect::<Vec<_>>())),
        ("cycles_threads_change_vs_after_stop", cycle_change(&after, &cycle_samples, |s| &s.thread_names)),
        ("cycles_fds_change_vs_after_stop", cycle_change(&after, &cycle_samples, |s| &s.fd_kinds)),
        ("cycles_fake_connections_closed", json!(cycles_closed)),
        ("real_peak_rss_kb", json!(peak_rss_kb)),
    ];
    figures.extend(sandbox.iter().map(|(k, v)| (k.as_str(), v.clone())));
    report(args, "sessions: memory, threads and descriptors per idle WhatsApp session", &figures);
    Ok(())
}
