//! A Balas for benchmarks: settings on a temp SQLite file and the Redis that `cargo xtask bench`
//! started, a workspace with sandbox channels, and the server and worker run in this process.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use balas_backend::{AppState, Settings, now};
use balas_domain::{
    Channel, ChannelId, ChannelName, ChannelState, Email, LiveEvent, PersonName, PhoneNumber, Provider, RatePerSecond,
    Role, WorkspaceName,
};
use balas_storage::{NewChannel, NewMember};
use secrecy::{ExposeSecret, SecretString};

/// Balas' server and WhatsApp worker, running as processes of their own.
pub struct Processes {
    pub base: String,
    server: tokio::process::Child,
    worker: tokio::process::Child,
}

impl Processes {
    /// The process ids of the server and the worker.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (self.server.id(), self.worker.id())
    }

    pub async fn stop(mut self) {
        let _ = self.worker.kill().await;
        let _ = self.server.kill().await;
    }
}

pub struct Bench {
    pub settings: Settings,
    pub state: AppState,
    pub workspace: balas_domain::WorkspaceId,
    _dir: tempfile::TempDir,
}

pub const ADMIN_EMAIL: &str = "bench@example.com";
pub const ADMIN_PASSWORD: &str = "bench-password-1";

impl Bench {
    pub async fn start() -> Result<Self> {
        Self::start_on(None).await
    }

    /// Like [`Bench::start`], on the database at `database_url` (a fresh SQLite file when `None`).
    pub async fn start_on(database_url: Option<String>) -> Result<Self> {
        let redis_url = std::env::var("BALAS_BENCH_REDIS_URL")
            .context("BALAS_BENCH_REDIS_URL is not set: run benchmarks with `cargo xtask bench NAME`")?;
        let dir = tempfile::tempdir()?;
        let database_url =
            database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
        let settings = Settings {
            database_url: SecretString::from(database_url),
            redis_url: SecretString::from(redis_url),
            redis_prefix: format!("bench{}", balas_backend::short_id()),
            sandbox: true,
            // Benchmarks measure Balas, not the ban rule (the rate-limit benchmark checks the pace).
            sandbox_ban_above_per_sec: 1_000_000,
            media_dir: dir.path().join("media"),
            // The fake AI provider runs on this machine.
            allow_private_urls: true,
            ..Settings::default()
        };
        let state = AppState::connect(settings.clone()).await?;
        let password = balas_backend::accounts::hash_for_tools(ADMIN_PASSWORD).await?;
        let email = Email::parse(ADMIN_EMAIL)?;
        let name = PersonName::parse("Bench Admin")?;
        let admin = NewMember {
            email: &email,
            name: &name,
            role: Role::Admin,
            password_hash: Some(&password),
            must_change_password: false,
        };
        let (workspace, _) = state.store.set_up(&WorkspaceName::parse("Bench")?, &admin, None, now()).await?;
        Ok(Self { settings, state, workspace, _dir: dir })
    }

    pub async fn channel(&self, n: usize, rate: u32) -> Result<Channel> {
        self.channel_in(self.workspace, n, rate).await
    }

    /// Another workspace on this installation (another business), with its own admin.
    pub async fn other_workspace(&self, name: &str) -> Result<balas_domain::WorkspaceId> {
        let email = Email::parse(&format!("admin@{}.example.com", name.to_lowercase()))?;
        let person = PersonName::parse(&format!("{name} Admin"))?;
        let admin = NewMember {
            email: &email,
            name: &person,
            role: Role::Admin,
            password_hash: None,
            must_change_password: false,
        };
        let (workspace, _) = self.state.store.create_workspace(&WorkspaceName::parse(name)?, &admin, now()).await?;
        Ok(workspace)
    }

    /// Sandbox channel `n` (number +62811000000n) of `workspace`, sending `rate` messages a second.
    pub async fn channel_in(&self, workspace: balas_domain::WorkspaceId, n: usize, rate: u32) -> Result<Channel> {
        let name = ChannelName::parse(&format!("Bench {n}"))?;
        let phone = PhoneNumber::parse(&format!("+62811{n:07}"))?;
        let channel = NewChannel {
            workspace_id: workspace,
            name: &name,
            provider: Provider::Sandbox,
            phone: &phone,
            rate: RatePerSecond::parse(i64::from(rate))?,
            link_method: balas_domain::LinkMethod::Qr,
        };
        Ok(self.state.store.create_channel(&channel, now()).await?)
    }

    /// Runs a WhatsApp worker in this process until the sender is used.
    pub fn worker(&self) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let settings = self.settings.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            balas_workers::run(balas_domain::WorkerKind::Whatsapp, &settings, async {
                let _ = stopped.await;
            })
            .await
        });
        (stop, task)
    }

    /// Runs a release binary built next to this one (`balas-server`, `balas-wa-worker`) as a child
    /// process on these settings, so that it has its own runtime, as the peers' servers do.
    pub fn process(&self, binary: &str, port: u16) -> Result<tokio::process::Child> {
        let path = std::env::current_exe()?.with_file_name(binary);
        anyhow::ensure!(path.exists(), "{} is missing: run benchmarks with `cargo xtask bench`", path.display());
        let s = &self.settings;
        Ok(tokio::process::Command::new(path)
            .env("BALAS_LISTEN", format!("127.0.0.1:{port}"))
            .env("BALAS_DATABASE_URL", s.database_url.expose_secret())
            .env("BALAS_REDIS_URL", s.redis_url.expose_secret())
            .env("BALAS_REDIS_PREFIX", &s.redis_prefix)
            .env("BALAS_SANDBOX", "true")
            .env("BALAS_ALLOW_PRIVATE_URLS", s.allow_private_urls.to_string())
            .env("BALAS_SANDBOX_BAN_ABOVE_PER_SEC", s.sandbox_ban_above_per_sec.to_string())
            .env("BALAS_CONFIG", "/nonexistent/balas.toml")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()?)
    }

    /// Starts the server and the WhatsApp worker as processes, and waits (up to 30 s) until every
    /// one of `channels` is reported connected on the live stream. The server listens before its
    /// ingest publishes anything, so it serves by then.
    pub async fn start_processes(&self, channels: &[&Channel]) -> Result<Processes> {
        let reader = self.state.bus.dedicated().await?;
        let mut after = reader.live_tail().await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let server = self.process("balas-server", port)?;
        let worker = self.process("balas-wa-worker", 0)?;
        let mut waiting: HashSet<ChannelId> = channels.iter().map(|c| c.id).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !waiting.is_empty() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the sandbox channels did not connect within 30 s");
            // Waits up to a second for the next events.
            for envelope in reader.read_live(&after, 100).await? {
                after = envelope.id;
                if let LiveEvent::ChannelState { channel_id, state: ChannelState::Connected, .. } = envelope.event {
                    waiting.remove(&channel_id);
                }
            }
        }
        let ready = reqwest::get(format!("{base}/readyz")).await?;
        anyhow::ensure!(ready.status().is_success(), "the server is not ready: {}", ready.status());
        Ok(Processes { base, server, worker })
    }

    pub fn redis_url(&self) -> String {
        self.settings.redis_url.expose_secret().to_owned()
    }
}

/// The admin's session cookie, from the login API.
pub async fn log_in(base: &str) -> Result<String> {
    let login = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await?;
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("balas_session="))
        .context("login gave no session cookie")?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}
