//! Typed, layered settings: defaults, then a TOML file (`balas.toml`, or the file named by
//! `BALAS_CONFIG`), then `BALAS_*` environment variables (`BALAS_DATABASE_URL`, `BALAS_LISTEN`, …).

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Address the web server listens on.
    pub listen: SocketAddr,
    /// The address people use to reach Balas (`https://balas.example.com`). Used for invite links and
    /// to decide whether cookies are `Secure`. When empty, links are relative to the page.
    pub public_url: String,
    /// `sqlite://path/to/balas.db` (the default) or `postgres://user:pass@host/db`.
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// `redis://127.0.0.1:6379`; may carry a password.
    #[serde(serialize_with = "expose")]
    pub redis_url: SecretString,
    /// Every Redis key Balas writes starts with this, so installations can share a Redis.
    pub redis_prefix: String,
    /// How long a login lasts.
    pub session_hours: u32,
    /// How long an invite link stays usable.
    pub invite_hours: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// The folder with the built browser files (`pkg/balas.js`, `pkg/balas.wasm`, `pkg/balas.css`).
    pub site_root: PathBuf,
    /// The folder for the files of messages (one folder per workspace inside). Server and
    /// WhatsApp workers must see the same folder.
    pub media_dir: PathBuf,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// Enables the simulated WhatsApp network: sandbox channels and the customer-phone API.
    pub sandbox: bool,
    /// Sandbox: how long a packet takes to reach a channel.
    pub sandbox_latency_ms: u64,
    /// Webhooks: the wait before the first retry of a failed delivery (it doubles each time).
    pub webhook_retry_base_ms: u64,
    /// AI: how long one call to the model may take before it is given up (and tried again once).
    pub ai_timeout_ms: u64,
    /// AI: how long to keep retrying a provider that answers 429 or 5xx, with backoff.
    pub ai_retry_ms: u64,
    /// AI: a customer's message that waited longer than this for the AI (its worker was down, say)
    /// goes to people with a note saying so, instead of getting a late answer.
    pub ai_answer_within_ms: u64,
    /// Sandbox: a number that sends more than this many messages in one second is banned.
    pub sandbox_ban_above_per_sec: u32,
    /// Sandbox: how long a ban lasts.
    pub sandbox_ban_secs: u64,
    /// Real WhatsApp: the WebSocket to connect to (empty: WhatsApp's own). For tests against a
    /// local fake server.
    pub whatsapp_url: String,
    /// Real WhatsApp: the WhatsApp Web version to announce, as `2.3000.1023` (empty: ask
    /// WhatsApp for the current one).
    pub whatsapp_version: String,
    /// Let webhooks, files fetched by URL and the AI provider reach this machine and private
    /// networks (`localhost`, `10.x`, `192.168.x`, …). Off by default: otherwise a workspace could
    /// make the server call its neighbours. Turn it on for a provider or an ERP on your own network.
    pub allow_private_urls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: String::new(),
            database_url: SecretString::from("sqlite://data/balas.db"),
            database_max_connections: 8,
            redis_url: SecretString::from("redis://127.0.0.1:6379"),
            redis_prefix: "balas".to_owned(),
            session_hours: 24 * 14,
            invite_hours: 24 * 7,
            trust_forwarded_for: false,
            site_root: PathBuf::from("target/site"),
            media_dir: PathBuf::from("data/media"),
            log_format: LogFormat::Text,
            sandbox: false,
            sandbox_latency_ms: 0,
            webhook_retry_base_ms: 1_000,
            ai_timeout_ms: 30_000,
            ai_retry_ms: 15_000,
            ai_answer_within_ms: 600_000,
            sandbox_ban_above_per_sec: 20,
            sandbox_ban_secs: 300,
            whatsapp_url: String::new(),
            whatsapp_version: String::new(),
            allow_private_urls: false,
        }
    }
}

impl Settings {
    /// Reads the layers: defaults, the TOML file, then `BALAS_*` variables.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var("BALAS_CONFIG").unwrap_or_else(|_| "balas.toml".to_owned());
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("BALAS_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)
    }

    /// The sandbox network's rules.
    pub fn sandbox_rules(&self) -> balas_bus::SandboxRules {
        balas_bus::SandboxRules {
            ban_above_per_sec: self.sandbox_ban_above_per_sec.max(1),
            ban_ms: self.sandbox_ban_secs.max(1).saturating_mul(1000),
        }
    }

    /// The real WhatsApp version to announce, when set (and valid).
    pub fn whatsapp_version(&self) -> Option<(u32, u32, u32)> {
        let mut parts = self.whatsapp_version.split('.').map(|p| p.trim().parse::<u32>().ok());
        match (parts.next()??, parts.next()??, parts.next()??, parts.next()) {
            (a, b, c, None) => Some((a, b, c)),
            _ => None,
        }
    }

    /// Cookies get `Secure` when Balas is served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secrets_never_show_in_debug() {
        let settings = Settings {
            database_url: SecretString::from("postgres://balas:hunter2@db/balas"),
            redis_url: SecretString::from("redis://:s3cret@redis:6379"),
            ..Settings::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret"), "{printed}");
        assert!(settings.database_url.expose_secret().contains("hunter2"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns its own error type
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("balas.toml", "redis_prefix = \"from-file\"\nsession_hours = 5")?;
            jail.set_env("BALAS_SESSION_HOURS", "7");
            jail.set_env("BALAS_LISTEN", "0.0.0.0:8080");
            let settings = Settings::load().expect("settings");
            assert_eq!(settings.redis_prefix, "from-file");
            assert_eq!(settings.session_hours, 7);
            assert_eq!(settings.listen.port(), 8080);
            Ok(())
        });
    }
}
