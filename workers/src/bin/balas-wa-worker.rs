//! `balas-wa-worker`: the WhatsApp worker.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    balas_workers::main(balas_domain::WorkerKind::Whatsapp).await
}
