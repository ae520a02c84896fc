//! `balas-server`: reads the settings, sets up logging, serves until Ctrl-C or SIGTERM.

use anyhow::Context;
use balas_backend::{Settings, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load().context("read the settings")?;
    init_tracing(settings.log_format);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen on {}", settings.listen))?;
    balas_server::launch(settings, listener, shutdown_signal()).await
}
