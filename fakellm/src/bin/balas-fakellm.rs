//! `balas-fakellm [PORT]`: the fake OpenAI-compatible provider as a process (for the end-to-end
//! tests, the benchmark and trying the AI agent on the sandbox). Prints its base URL.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let fake = balas_fakellm::FakeLlm::start(([127, 0, 0, 1], port).into()).await?;
    println!("{}", fake.url);
    std::future::pending::<()>().await;
    Ok(())
}
