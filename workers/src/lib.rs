//! Balas' background workers. Each worker binary is a thin wrapper around [`main`].
//!
//! Every worker reads the settings, connects to Redis, announces itself every few seconds (so the
//! System page shows it live, and a crashed worker disappears from it within seconds), and leaves
//! cleanly on shutdown. The WhatsApp worker also runs its share of the channels ([`wa`]) behind
//! the session boundary ([`session`]); the AI worker's answers come in a later issue.

pub mod sandbox;
pub mod session;
pub mod wa;
pub mod whatsapp;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use balas_backend::{Settings, now, short_id};
use balas_bus::{Bus, HEARTBEAT_EVERY_MS};
use balas_domain::{WorkerInfo, WorkerKind};
use secrecy::ExposeSecret;

/// A worker process that has connected and announced itself.
pub struct Worker {
    pub bus: Bus,
    pub info: WorkerInfo,
}

impl Worker {
    /// Connects to Redis and announces the worker; when this returns, the worker is listed.
    pub async fn start(kind: WorkerKind, settings: &Settings) -> anyhow::Result<Self> {
        let bus = Bus::connect(settings.redis_url.expose_secret(), &settings.redis_prefix)
            .await
            .context("connect to Redis")?;
        let host = balas_backend::hostname();
        let started_at = now();
        let info = WorkerInfo {
            kind,
            instance: format!("{}-{host}-{}", kind.as_str(), short_id()),
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            last_seen: started_at,
        };
        bus.worker_heartbeat(&info).await.context("announce the worker")?;
        tracing::info!(instance = %info.instance, "worker started");
        Ok(Self { bus, info })
    }

    pub fn info(&self) -> &WorkerInfo {
        &self.info
    }

    /// Keeps announcing the worker until `shutdown` completes, then takes it off the list.
    pub async fn serve(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let period = Duration::from_millis(HEARTBEAT_EVERY_MS.unsigned_abs());
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = beat.tick() => {
                    self.info.last_seen = now();
                    // Redis may be briefly away; the connection reconnects and the next beat tries again.
                    if let Err(error) = self.bus.worker_heartbeat(&self.info).await {
                        tracing::warn!(%error, "heartbeat failed");
                    }
                }
            }
        }
        self.bus.worker_gone(&self.info.instance).await.context("announce the shutdown")?;
        tracing::info!(instance = %self.info.instance, "worker stopped");
        Ok(())
    }
}

/// The `main` of a worker binary: settings, logging, run until Ctrl-C or SIGTERM.
pub async fn main(kind: WorkerKind) -> anyhow::Result<()> {
    let settings = Settings::load().context("read the settings")?;
    balas_backend::init_tracing(settings.log_format);
    run(kind, &settings, balas_backend::shutdown_signal()).await
}

/// Runs a worker until `shutdown` completes, then stops it cleanly (for the WhatsApp worker:
/// sends in flight finish, sessions close, leases are released).
pub async fn run(kind: WorkerKind, settings: &Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let worker = Worker::start(kind, settings).await?;
    let work = match kind {
        WorkerKind::Whatsapp => Some(start_whatsapp(settings, worker.bus.clone(), &worker.info.instance).await?),
        WorkerKind::Ai => Some(start_ai(settings, &worker.info.instance).await?),
    };
    worker
        .serve(async move {
            shutdown.await;
            if let Some((stop, task)) = work {
                tracing::info!("stopping: finishing the work in flight and releasing leases");
                let _ = stop.send(true);
                if let Err(error) = task.await {
                    tracing::error!(%error, "the channel runner failed");
                }
            }
        })
        .await
}

/// Starts the AI worker's loop (see [`balas_backend::ai_worker`]); stop it by sending `true`.
pub async fn start_ai(
    settings: &Settings,
    instance: &str,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    let state =
        balas_backend::AppState::connect(settings.clone()).await.context("connect to the database and Redis")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    Ok((stop, tokio::spawn(balas_backend::ai_worker::run(state, instance.to_owned(), stopped))))
}

/// Starts the WhatsApp worker's channel runner; stop it by sending `true`.
pub async fn start_whatsapp(
    settings: &Settings,
    bus: Bus,
    instance: &str,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    let store = balas_storage::Store::open(settings.database_url.expose_secret(), settings.database_max_connections)
        .await
        .context("open the database")?;
    let media = balas_backend::media::MediaStore::new(&settings.media_dir);
    let sandbox = settings.sandbox.then(|| sandbox::SandboxProvider {
        bus: bus.clone(),
        rules: settings.sandbox_rules(),
        latency: Duration::from_millis(settings.sandbox_latency_ms),
        media: media.clone(),
    });
    let config = whatsapp::WhatsappConfig {
        url: Some(settings.whatsapp_url.clone()).filter(|url| !url.is_empty()),
        version: settings.whatsapp_version(),
    };
    let whatsapp = whatsapp::WhatsappProvider::new(config, store.clone(), media);
    let ctx = std::sync::Arc::new(wa::WaContext { bus, store, holder: instance.to_owned(), sandbox, whatsapp });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    Ok((stop, tokio::spawn(wa::run(ctx, stopped))))
}
