//! A fake OpenAI-compatible server: `POST /v1/chat/completions` answers from a script, so that the
//! AI agent can be tested end to end (real HTTP, real `async-openai`) without a provider.
//!
//! What it answers depends on the customer's newest message (the last `user` message):
//!
//! - `complain`: calls `hand_over_to_human` with the reason "The customer is upset".
//! - `label me <name>`: calls `add_label` with `<name>`; after the tool's result, answers
//!   "Done: <result>".
//! - `who am i`: calls `get_contact_fields`; after the result, answers "You are <name>".
//! - anything else: "Echo: " and every `user` message since the last `assistant` one, joined by
//!   " | " (so a burst answered at once shows all of it).
//!
//! A model whose name starts with `o-` acts as OpenAI's reasoning models do: a request with
//! `max_tokens` (they take `max_completion_tokens`) or a `temperature` other than 1 is refused
//! with a 400 that names the parameter, as OpenAI words it.
//!
//! Knobs (in process through [`FakeLlm`], or over HTTP on `/control`): a delay before each answer,
//! and a number of next requests to fail with 500. Every request is kept for tests to inspect.
//! Usage: `prompt_tokens` is the request's characters / 4, `completion_tokens` the answer's / 4.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Knobs {
    delay_ms: u64,
    fail_next: u32,
    requests: Vec<Value>,
    authorizations: Vec<String>,
    served: u64,
    in_flight: u64,
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeLlm {
    /// The base URL to configure: `http://127.0.0.1:PORT/v1`.
    pub url: String,
    knobs: Arc<Mutex<Knobs>>,
}

impl FakeLlm {
    /// Serves on `addr` (port 0 for any) in this process.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let knobs = Arc::new(Mutex::new(Knobs::default()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(complete))
            .route("/control", get(control_get).post(control_set))
            .with_state(knobs.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, knobs })
    }

    /// Waits this long before every answer from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.knobs.lock().unwrap().delay_ms = delay.as_millis() as u64;
    }

    /// Answers the next `n` requests with a 500.
    pub fn fail_next(&self, n: u32) {
        self.knobs.lock().unwrap().fail_next = n;
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.knobs.lock().unwrap().requests.clone()
    }

    /// The `Authorization` headers received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.knobs.lock().unwrap().authorizations.clone()
    }

    /// How many requests it is answering now (waiting out the delay).
    pub fn in_flight(&self) -> u64 {
        self.knobs.lock().unwrap().in_flight
    }

    /// How many answers (not failures) it gave.
    pub fn served(&self) -> u64 {
        self.knobs.lock().unwrap().served
    }
}

async fn control_get(State(knobs): State<Arc<Mutex<Knobs>>>) -> Json<Value> {
    let k = knobs.lock().unwrap();
    Json(json!({ "delay_ms": k.delay_ms, "fail_next": k.fail_next, "requests": k.requests.len(), "served": k.served }))
}

async fn control_set(State(knobs): State<Arc<Mutex<Knobs>>>, Json(body): Json<Value>) -> StatusCode {
    let mut k = knobs.lock().unwrap();
    if let Some(delay) = body["delay_ms"].as_u64() {
        k.delay_ms = delay;
    }
    if let Some(fail) = body["fail_next"].as_u64() {
        k.fail_next = fail as u32;
    }
    StatusCode::NO_CONTENT
}

/// OpenAI's error for a parameter its reasoning models refuse, for models named `o-…`.
fn reasoning_model_refusal(request: &Value) -> Option<Value> {
    if !request["model"].as_str().is_some_and(|m| m.starts_with("o-")) {
        return None;
    }
    let (param, code, message) = if request.get("max_tokens").is_some_and(|v| !v.is_null()) {
        (
            "max_tokens",
            "unsupported_parameter",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
                .to_owned(),
        )
    } else if let Some(t) = request["temperature"].as_f64().filter(|t| (t - 1.0).abs() > f64::EPSILON) {
        (
            "temperature",
            "unsupported_value",
            format!(
                "Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."
            ),
        )
    } else {
        return None;
    };
    Some(json!({ "error": { "message": message, "type": "invalid_request_error", "param": param, "code": code } }))
}

async fn complete(State(knobs): State<Arc<Mutex<Knobs>>>, headers: HeaderMap, Json(request): Json<Value>) -> Response {
    let (delay, fail) = {
        let mut k = knobs.lock().unwrap();
        k.requests.push(request.clone());
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        k.authorizations.push(auth);
        let fail = k.fail_next > 0;
        if fail {
            k.fail_next -= 1;
        }
        k.in_flight += 1;
        (k.delay_ms, fail)
    };
    if let Some(refusal) = reasoning_model_refusal(&request) {
        knobs.lock().unwrap().in_flight -= 1;
        return (StatusCode::BAD_REQUEST, Json(refusal)).into_response();
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    knobs.lock().unwrap().in_flight -= 1;
    if fail {
        let error =
            json!({ "error": { "message": "the fake provider is down", "type": "server_error", "code": null } });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    }
    knobs.lock().unwrap().served += 1;
    let message = answer(&request);
    let completion_chars = message.to_string().len() as u64;
    let prompt_chars = request["messages"].to_string().len() as u64;
    let (prompt, completion) = (prompt_chars / 4, completion_chars / 4);
    Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"],
        "choices": [{ "index": 0, "message": message,
                      "finish_reason": if message.get("tool_calls").is_some() { "tool_calls" } else { "stop" } }],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion }
    }))
    .into_response()
}

fn tool_call(name: &str, arguments: Value) -> Value {
    json!({ "role": "assistant", "content": null, "tool_calls": [{
        "id": format!("call_{name}"), "type": "function",
        "function": { "name": name, "arguments": arguments.to_string() } }] })
}

fn text(content: String) -> Value {
    json!({ "role": "assistant", "content": content })
}

/// The scripted answer to a request.
fn answer(request: &Value) -> Value {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    // After a tool ran: answer with its result.
    if let Some(last) = messages.last()
        && last["role"] == "tool"
    {
        let result = last["content"].as_str().unwrap_or_default();
        let called = messages.iter().rev().find_map(|m| m["tool_calls"][0]["function"]["name"].as_str());
        return match called {
            Some("get_contact_fields") => {
                let fields: Value = serde_json::from_str(result).unwrap_or(Value::Null);
                text(format!("You are {}", fields["name"].as_str().unwrap_or("unknown")))
            }
            _ => text(format!("Done: {result}")),
        };
    }
    let since_assistant: Vec<&str> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] != "assistant")
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let newest = since_assistant.last().copied().unwrap_or_default().to_lowercase();
    if newest.contains("complain") {
        return tool_call("hand_over_to_human", json!({ "reason": "The customer is upset" }));
    }
    if let Some(name) = newest.strip_prefix("label me ") {
        return tool_call("add_label", json!({ "label": name.trim() }));
    }
    if newest.contains("who am i") {
        return tool_call("get_contact_fields", json!({}));
    }
    text(format!("Echo: {}", since_assistant.join(" | ")))
}
