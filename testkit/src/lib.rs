//! Real services for tests. `cargo xtask test` starts a Redis and a PostgreSQL on free ports in temp
//! folders and passes their addresses in `BALAS_TEST_REDIS_URL` and `BALAS_TEST_POSTGRES_URL`; each
//! test then gets its own PostgreSQL database, SQLite file and Redis key prefix, so tests run in
//! parallel without seeing each other.

use rand::Rng;
use sqlx::Connection;

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `cargo xtask test`, which starts Redis and PostgreSQL for them")
    })
}

/// A name no other test uses.
pub fn unique_name(stem: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{stem}_{n:016x}")
}

/// The URL of the test Redis.
pub fn redis_url() -> String {
    required_env("BALAS_TEST_REDIS_URL")
}

/// A Redis key prefix of this test's own.
pub fn redis_prefix() -> String {
    unique_name("test")
}

/// A database that lives as long as this value.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// The temp folder of a SQLite database (for other files of the same test).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(tempfile::TempDir::path)
    }
}

/// A fresh SQLite file in a temp folder.
pub fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("balas.db").display());
    TestDatabase { url, _dir: Some(dir) }
}

impl TestDatabase {
    /// Runs `sql` on this SQLite database directly (for a test that makes the database refuse a
    /// row, with a trigger, as it would a row it cannot take).
    pub async fn execute(&self, sql: &str) {
        let mut conn = sqlx::SqliteConnection::connect(&self.url).await.expect("open the test SQLite file");
        sqlx::query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
    }
}

/// A fresh, empty database on the test PostgreSQL.
pub async fn postgres() -> TestDatabase {
    let admin_url = required_env("BALAS_TEST_POSTGRES_URL");
    let name = unique_name("balas");
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("PostgreSQL URL ends with /database");
    TestDatabase { url: format!("{base}/{name}"), _dir: None }
}

/// Runs each named `async fn(Store)` of the calling test file twice, as `NAME::sqlite` and
/// `NAME::postgres`, each on a fresh database: the storage conformance suite's shape.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = $crate::sqlite();
                let store = balas_storage::Store::open(&db.url, 4).await.expect("open SQLite");
                super::$name(store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let db = $crate::postgres().await;
                let store = balas_storage::Store::open(&db.url, 4).await.expect("open PostgreSQL");
                super::$name(store).await;
            }
        }
    )*};
}
