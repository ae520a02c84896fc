//! `balas-ai-worker`: the AI worker.

// One thread: the worker mostly waits (on the model, Redis and the database), and a second
// runtime thread only added wake-ups between the two (context switches that took CPU from the
// server beside it, measured with `cargo xtask bench ai`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    balas_workers::main(balas_domain::WorkerKind::Ai).await
}
