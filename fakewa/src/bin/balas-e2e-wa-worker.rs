//! The WhatsApp worker for the browser tests: the shipped worker's code, built with the client's
//! certificate check off so that it accepts the local fake WhatsApp server. Never shipped: only
//! this test crate enables that feature (see Cargo.toml).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    balas_workers::main(balas_domain::WorkerKind::Whatsapp).await
}
