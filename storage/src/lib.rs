//! Every SQL statement of Balas lives in this crate.
//!
//! One [`Store`] serves SQLite (the default: one file, nothing to run) and PostgreSQL (for several
//! server machines). It is built on sqlx's `Any` driver, so each statement is written once in the
//! subset of SQL that both databases speak: numbered parameters (`$1`), `RETURNING`, 64-bit integers
//! for ids, times (Unix milliseconds) and flags. The schema itself differs a little per database, so
//! migrations live in `migrations/sqlite` and `migrations/postgres`; they run when the store opens.
//! The conformance suite in `tests/` runs every behaviour against both.

mod accounts;
mod ai;
mod api;
mod attributes;
mod broadcasts;
mod crm;
mod inbox;
mod messaging;
mod wa_session;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use accounts::*;
pub use ai::*;
pub use api::*;
pub use attributes::*;
pub use broadcasts::*;
pub use crm::*;
pub use inbox::*;
pub use messaging::*;
pub use wa_session::*;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("the database URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database answered and refused (a constraint, a value it cannot take), as
    /// opposed to not answering: trying again will not help.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt(_) | StoreError::Conflict(_) | StoreError::Database(sqlx::Error::Database(_))
        )
    }
}

/// Why a write was refused although the database is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The first-run setup has already been done.
    AlreadySetUp,
    /// Another user has this email address.
    EmailTaken,
    /// The change would leave the workspace without an admin.
    LastAdmin,
    /// Another channel already uses this phone number.
    PhoneTaken,
    /// Another canned response of the workspace has this shortcut.
    ShortcutTaken,
    /// Another worker took the WhatsApp session since this one claimed it.
    SessionTaken,
    /// The workspace has a label of this name.
    LabelTaken,
    /// The workspace has an attribute with this key.
    AttributeKeyTaken,
    /// A contact still has an option a list attribute would drop.
    OptionInUse,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A pool of connections to the system of record. Cheap to clone; open it once per process.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Whose turn it is to write: in this process, and (SQLite, through a lock on this file beside
    /// the database) among the processes (see [`Store::begin_write`]).
    write_turn: std::sync::Arc<tokio::sync::Mutex<Option<std::fs::File>>>,
}

/// A turn to write (SQLite only), held until dropped.
pub(crate) struct WriteTurn {
    held: Option<tokio::sync::OwnedMutexGuard<Option<std::fs::File>>>,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        if let Some(file) = self.held.as_ref().and_then(|held| held.as_ref()) {
            let _ = file.unlock();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// How often each process copies SQLite's write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A log longer than this (in pages: about 64 MB) is started over.
const RESTART_LOG_AFTER: i64 = 16_384;
/// How long starting the log over waits for readers (writers wait as long).
const RESTART_WAITS_FOR: Duration = Duration::from_millis(100);
/// How long a writer that bypasses the write turns waits for SQLite's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies the write-ahead log into the database every [`CHECKPOINT_EVERY`], off the writers'
/// path, until the store is closed or its last clone is dropped.
///
/// SQLite's own automatic checkpoint runs inside the `COMMIT` that takes the log past 1,000 pages
/// (a few times a second under load): that commit then copies megabytes and waits for two
/// `fsync`s, so its message reached the dashboards milliseconds late, and (holding its turn) so did
/// every writer behind it. A passive checkpoint runs beside the writers, never blocking them; when
/// two processes' checkpoints meet, one finds nothing left to do.
///
/// But under a steady stream of writes a passive checkpoint never catches up with the last one,
/// and the log only starts over (from its first page) after a checkpoint that did: it would grow
/// without end. So once it is past [`RESTART_LOG_AFTER`] pages, the checkpoint takes a turn to
/// write (so that writers wait a moment, once in a while: every twenty seconds or so at hundreds
/// of messages a second) and starts the log over.
fn checkpoint_in_background(store: &Store) {
    let (pool, turns) = (store.pool.clone(), std::sync::Arc::downgrade(&store.write_turn));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if pool.is_closed() {
                return;
            }
            let Some(turns) = turns.upgrade() else { return };
            let passive = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool);
            let restart = match passive.await {
                Ok((_, log, _)) if log > RESTART_LOG_AFTER => match take_turn(turns).await {
                    Ok(_turn) => restart_log(&pool).await,
                    Err(error) => Err(match error {
                        StoreError::Database(error) => error,
                        other => sqlx::Error::Protocol(other.to_string()),
                    }),
                },
                Ok(_) => Ok(()),
                Err(error) => Err(error),
            };
            match restart {
                // Another process's checkpoint is running: it does the work.
                Err(sqlx::Error::Database(error)) if error.message().contains("locked") => {}
                Err(error) => {
                    tracing::warn!(%error, "could not copy the write-ahead log into the database; trying again");
                }
                Ok(()) => {}
            }
        }
    });
}

/// Copies the whole log into the database and starts it over, waiting at most
/// [`RESTART_WAITS_FOR`] for readers still in it (a long export, say): the caller holds a turn to
/// write, so writers wait meanwhile. When the readers take longer, SQLite answers "locked" and the
/// next checkpoint tries again.
async fn restart_log(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.execute(format!("PRAGMA busy_timeout = {}", RESTART_WAITS_FOR.as_millis()).as_str()).await?;
    let restarted = sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&mut *conn).await.map(drop);
    conn.execute(format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()).as_str()).await?;
    restarted
}

/// Waits for a turn to write (see [`Store::begin_write`]): in the process on `turns`, among
/// processes on the file lock it holds (when there is one).
async fn take_turn(turns: std::sync::Arc<tokio::sync::Mutex<Option<std::fs::File>>>) -> StoreResult<WriteTurn> {
    let held = turns.lock_owned().await;
    match held.as_ref().map(std::fs::File::try_lock) {
        None | Some(Ok(())) => Ok(WriteTurn { held: Some(held) }),
        // Another process writes: wait for the file lock off the runtime's threads. The turn is
        // made there, so that if this caller gave up meanwhile, dropping the unclaimed turn still
        // releases the lock.
        Some(Err(_)) => tokio::task::spawn_blocking(move || {
            held.as_ref().map(std::fs::File::lock).transpose()?;
            Ok(WriteTurn { held: Some(held) })
        })
        .await
        .map_err(std::io::Error::other)
        .flatten()
        .map_err(|e| StoreError::Database(sqlx::Error::Io(e))),
    }
}

/// Waits for an exclusive lock on `path` (made when missing); held until the file is dropped.
fn lock_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    file.lock()?;
    Ok(file)
}

impl Store {
    /// Opens the database at `url` (creating an SQLite file when it is missing) and brings its schema
    /// up to date.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let (mut migration_lock, mut write_lock) = (None, None);
        let url = match backend {
            Backend::Sqlite => {
                // Create the folder and the file on first start.
                let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
                if !path.as_os_str().is_empty() && !path.to_string_lossy().contains(":memory:") {
                    let beside = |suffix: &str| {
                        path.with_file_name(format!(
                            "{}.{suffix}",
                            path.file_name().unwrap_or_default().to_string_lossy()
                        ))
                    };
                    migration_lock = Some(beside("migrating"));
                    let file =
                        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(beside("writing"));
                    write_lock = Some(file.map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?);
                }
                if url.contains("mode=") {
                    url.to_owned()
                } else {
                    format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers work while one writer writes; the busy timeout makes a
                        // second writer wait instead of failing; foreign keys are off by default.
                        // No checkpoint in a commit: see [`checkpoint_in_background`].
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA wal_autocheckpoint = 0",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        conn.execute(format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()).as_str()).await?;
                    } else {
                        // Plan every execution for its own parameters: the same statement finds
                        // 3 contacts for one search and 25,000 for another, and a generic plan
                        // (which PostgreSQL picks after five runs) estimated a 25,000-contact
                        // attribute filter at 3 rows and took 30 ms instead of 1 ms. Planning
                        // these queries costs well under a millisecond.
                        conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let on_file = write_lock.is_some();
        let write_turn = std::sync::Arc::new(tokio::sync::Mutex::new(write_lock));
        let store = Self { pool, backend, write_turn };
        // Processes that start together on a new SQLite file (the server and the workers) would
        // race to migrate it: PostgreSQL migrations hold an advisory lock, SQLite ones hold
        // nothing, so they take turns through a lock on a file beside the database.
        let _turn = match migration_lock {
            Some(path) => Some(
                tokio::task::spawn_blocking(move || lock_file(&path))
                    .await
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e))))?
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?,
            ),
            None => None,
        };
        store.migrate().await?;
        if on_file {
            checkpoint_in_background(&store);
        }
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// A transaction that writes, with a turn to write on SQLite (hold the turn until the
    /// transaction ends: `let (_turn, mut tx) = …`).
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that
    /// read first (preparing a statement on contacts reads the FTS5 table's configuration) cannot
    /// take the lock later once another connection has written, and fails with "database is
    /// locked". Writers first wait for their turn: in the process on a mutex, among processes on
    /// a file lock (the kernel wakes the next one as soon as it is released). SQLite's own busy
    /// timeout waits by sleeping and polling (1, 2, 5, 10 ms…): with the AI worker's answers
    /// racing the server's ingest for the lock, those sleeps were what a dashboard waited for
    /// (strace under `cargo xtask bench ai`: ~320 sleeps/s in the AI worker, ~24/s in the server).
    pub(crate) async fn begin_write(&self) -> StoreResult<(WriteTurn, sqlx::Transaction<'static, sqlx::Any>)> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = take_turn(self.write_turn.clone()).await?;
                (turn, self.pool.begin_with("BEGIN IMMEDIATE").await?)
            }
            Backend::Postgres => (WriteTurn { held: None }, self.pool.begin().await?),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers when the database does: for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a unique-key violation to a [`Conflict`], anything else to a database error.
fn on_unique(conflict: Conflict) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        _ => StoreError::Database(error),
    }
}
