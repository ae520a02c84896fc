//! Server-side services: settings, the shared state, and the account rules (setup, login, sessions,
//! team management). Server functions and, later, the REST API are thin layers over these.

pub mod accounts;
pub mod ai;
pub mod ai_worker;
pub mod api;
pub mod attributes;
pub mod broadcasts;
pub mod contacts_io;
pub mod crm;
pub mod inbox;
pub mod ingest;
mod live_group;
pub mod media;
pub mod messaging;
pub mod outbound;
pub mod sandbox;
mod secrets;
pub mod settings;
pub mod webhooks;

use std::sync::Arc;

use balas_bus::Bus;
use balas_domain::{AppError, Timestamp};
use balas_storage::{Conflict, Store, StoreError};
use secrecy::ExposeSecret;

pub use settings::{LogFormat, Settings};

/// What every request handler shares: the database, Redis and the settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub settings: Arc<Settings>,
    /// Where the files of messages are.
    pub media: media::MediaStore,
    /// The AI provider's HTTP client, shared by every call (its connections and TLS set-up are
    /// reused), with the call timeout `ai_timeout_ms`.
    pub ai_http: reqwest::Client,
    /// The client that fetches files by URL (see [`outbound`]).
    pub fetch_http: reqwest::Client,
    /// The parameters each AI model refused, learnt on the way.
    pub ai_quirks: ai::ModelQuirks,
}

impl AppState {
    /// Opens the database (running migrations) and connects to Redis.
    pub async fn connect(settings: Settings) -> Result<Self, StartError> {
        let store = Store::open(settings.database_url.expose_secret(), settings.database_max_connections)
            .await
            .map_err(StartError::Database)?;
        let bus = Bus::connect(settings.redis_url.expose_secret(), &settings.redis_prefix)
            .await
            .map_err(StartError::Redis)?;
        let media = media::MediaStore::new(&settings.media_dir);
        let ai_http = outbound::client(settings.allow_private_urls, 3)
            .timeout(std::time::Duration::from_millis(settings.ai_timeout_ms))
            .build()
            .map_err(StartError::Http)?;
        let fetch_http = media::fetch_client(settings.allow_private_urls).map_err(StartError::Http)?;
        Ok(Self {
            store,
            bus,
            settings: Arc::new(settings),
            media,
            ai_http,
            fetch_http,
            ai_quirks: ai::ModelQuirks::default(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(StoreError),
    #[error("cannot connect to Redis: {0}")]
    Redis(balas_bus::BusError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// The current time.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

/// Whether the database and Redis answer, each within two seconds.
pub async fn health(state: &AppState) -> (bool, bool) {
    let limit = std::time::Duration::from_secs(2);
    let (database, redis) =
        tokio::join!(tokio::time::timeout(limit, state.store.ping()), tokio::time::timeout(limit, state.bus.ping()));
    (matches!(database, Ok(Ok(()))), matches!(redis, Ok(Ok(()))))
}

/// This machine's name (for worker and consumer names).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A short random id (10 hex digits), for error references and worker instance names.
pub fn short_id() -> String {
    secrets::reference()
}

/// Sets up logging for a binary: `RUST_LOG` when given, else Balas at info level, in the format
/// the settings ask for.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Completes on Ctrl-C or SIGTERM: the signal every binary stops on.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Logs an unexpected failure with a short reference and returns an error that shows only the
/// reference, so a user can quote it and an operator can find it.
pub fn internal(error: impl std::fmt::Display) -> AppError {
    let reference = secrets::reference();
    tracing::error!(%reference, %error, "internal error");
    AppError::Internal { reference }
}

/// Turns a storage failure into what the caller may know.
pub fn from_store(error: StoreError) -> AppError {
    match error {
        StoreError::NotFound => AppError::NotFound,
        StoreError::Conflict(Conflict::AlreadySetUp) => AppError::AlreadySetUp,
        StoreError::Conflict(Conflict::LastAdmin) => AppError::LastAdmin,
        StoreError::Conflict(Conflict::EmailTaken) => {
            AppError::invalid(balas_domain::FieldError::new(balas_domain::Field::Email, balas_domain::Issue::Taken))
        }
        StoreError::Conflict(Conflict::ShortcutTaken) => {
            AppError::invalid(balas_domain::FieldError::new(balas_domain::Field::Shortcut, balas_domain::Issue::Taken))
        }
        StoreError::Conflict(Conflict::LabelTaken) => {
            AppError::invalid(balas_domain::FieldError::new(balas_domain::Field::Name, balas_domain::Issue::Taken))
        }
        StoreError::Conflict(Conflict::AttributeKeyTaken) => AppError::invalid(balas_domain::FieldError::new(
            balas_domain::Field::AttributeKey,
            balas_domain::Issue::Taken,
        )),
        StoreError::Conflict(Conflict::OptionInUse) => AppError::invalid(balas_domain::FieldError::new(
            balas_domain::Field::AttributeOptions,
            balas_domain::Issue::InUse,
        )),
        StoreError::Conflict(Conflict::PhoneTaken) => {
            AppError::invalid(balas_domain::FieldError::new(balas_domain::Field::Phone, balas_domain::Issue::Taken))
        }
        other => internal(other),
    }
}
