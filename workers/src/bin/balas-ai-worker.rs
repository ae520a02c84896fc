//! `balas-ai-worker`: the AI worker.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    balas_workers::main(balas_domain::WorkerKind::Ai).await
}
