//! The fake WhatsApp server as a process, for the browser tests: WhatsApp's WebSocket on
//! `FAKEWA_PORT`, and a small control API on `FAKEWA_CONTROL_PORT` through which a test plays the
//! phone:
//!
//! - `POST /scan` `{"code": QR text, "phone": digits, "name": account name}` links the number;
//! - `POST /enter-code` `{"phone": digits, "code": the 8 characters, "name": account name}` links it
//!   by the code typed on the phone;
//! - `POST /kick` `{"phone": digits, "kick": "logged_out" | "drop"}` ends or drops its session.
//!
//! Answers 200 with `{"ok": true}`, or 400 with `{"error": "…"}`.

use std::time::Duration;

use balas_fakewa::{FakeWa, Kick};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn port(name: &str) -> anyhow::Result<u16> {
    Ok(std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"))?.parse()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fake = FakeWa::start_on(port("FAKEWA_PORT")?).await?;
    let control = TcpListener::bind(("127.0.0.1", port("FAKEWA_CONTROL_PORT")?)).await?;
    println!("fakewa: WhatsApp on {}, control on http://{}", fake.url(), control.local_addr()?);
    loop {
        let (mut socket, _) = control.accept().await?;
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // One small request per connection: read until the body announced by Content-Length.
            let body = loop {
                let Ok(Ok(read)) = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                request.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        break (path, body.to_owned());
                    }
                }
            };
            let outcome = handle(&fake, &body.0, &body.1).await;
            let (status, json) = match outcome {
                Ok(()) => ("200 OK", serde_json::json!({ "ok": true })),
                Err(error) => ("400 Bad Request", serde_json::json!({ "error": format!("{error:#}") })),
            };
            let json = json.to_string();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                json.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

async fn handle(fake: &FakeWa, path: &str, body: &str) -> anyhow::Result<()> {
    let body: serde_json::Value = serde_json::from_str(body)?;
    let field = |name: &str| body[name].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{name} is missing"));
    match path {
        "/scan" => fake.scan(&field("code")?, &field("phone")?, &field("name")?).await,
        "/enter-code" => fake.enter_code_as(&field("phone")?, &field("code")?, &field("name")?).await,
        "/kick" => {
            let kick = match field("kick")?.as_str() {
                "logged_out" => Kick::LoggedOut,
                "drop" => Kick::Drop,
                other => anyhow::bail!("unknown kick {other}"),
            };
            match fake.kick(Some(&field("phone")?), kick) {
                0 => anyhow::bail!("that phone has no session"),
                _ => Ok(()),
            }
        }
        other => anyhow::bail!("no such endpoint: {other}"),
    }
}
