//! The AI agent's side of the backend: what admins set (the provider, each channel's profile and
//! its versions), the playground, pausing the AI in one conversation, and [`converse`]: one turn
//! of the model with its tools, shared by the AI worker ([`crate::ai_worker`]) and the
//! playground.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionRequest};
use balas_domain::{
    AiChannel, AiProfile, AiProfileVersion, AiSettings, AiToolCall, AiTrial, AiUsage, AppError, AuditAction, ChannelId,
    ConversationId, ConversationSummary, Direction, Field, FieldError, Issue, LiveEvent, Message, WorkspaceId,
};
use balas_storage::StoredAiSettings;
use serde_json::{Value, json};

use crate::accounts::Caller;
use crate::messaging::audit;
use crate::{AppState, from_store, now};

/// The versions the history shows.
const VERSIONS_SHOWN: i64 = 50;
/// Model rounds in one turn (each tool call costs one).
const MAX_ROUNDS: usize = 4;

/// The month token use is counted in: `2026-11` (UTC).
pub fn month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

// ---- Admin --------------------------------------------------------------------------------------

/// The workspace's provider (without the key) and this month's use; `None` until one is saved.
pub async fn settings(state: &AppState, caller: &Caller) -> Result<(Option<AiSettings>, AiUsage), AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let stored = state.store.ai_settings(workspace).await.map_err(from_store)?;
    let usage = usage(state, workspace, stored.as_ref()).await?;
    Ok((stored.map(|s| s.settings), usage))
}

async fn usage(
    state: &AppState,
    workspace: WorkspaceId,
    stored: Option<&StoredAiSettings>,
) -> Result<AiUsage, AppError> {
    let month = month();
    let (tokens, _) = state.store.ai_usage(workspace, &month, None).await.map_err(from_store)?;
    let top = state.store.ai_top_conversations(workspace, &month, AiUsage::TOP).await.map_err(from_store)?;
    Ok(AiUsage { tokens, cap: stored.map_or(0, |s| s.settings.monthly_token_cap), top })
}

/// Saves the provider (admins). An empty `api_key` keeps the saved one.
pub async fn set_settings(
    state: &AppState,
    caller: &Caller,
    base_url: &str,
    api_key: &str,
    model: &str,
    cap: i64,
) -> Result<AiSettings, AppError> {
    caller.require_admin()?;
    let workspace = caller.me.workspace_id;
    let had_key = state.store.ai_settings(workspace).await.map_err(from_store)?.is_some();
    let url =
        AiSettings::check(base_url, api_key, had_key, model, cap).map_err(|errors| AppError::Invalid { errors })?;
    crate::outbound::check(state.settings.allow_private_urls, balas_domain::Field::Url, &url)
        .map_err(AppError::invalid)?;
    let key = Some(api_key.trim()).filter(|k| !k.is_empty());
    state.store.set_ai_settings(workspace, &url, key, model.trim(), cap, now()).await.map_err(from_store)?;
    // The key is never written to the log or the audit detail.
    audit(state, caller, AuditAction::AiSettingsChanged, &url, model.trim()).await?;
    let stored = state.store.ai_settings(workspace).await.map_err(from_store)?;
    stored.map(|s| s.settings).ok_or(AppError::NotFound)
}

/// Every channel of the workspace with its AI (admins and agents may look).
pub async fn channels(state: &AppState, caller: &Caller) -> Result<Vec<AiChannel>, AppError> {
    caller.require_active()?;
    state.store.ai_channels(caller.me.workspace_id).await.map_err(from_store)
}

async fn owned_channel(state: &AppState, caller: &Caller, channel: ChannelId) -> Result<AiChannel, AppError> {
    let found = state.store.ai_channel(caller.me.workspace_id, channel).await.map_err(from_store)?;
    found.ok_or_else(|| AppError::invalid(FieldError::new(Field::Channel, Issue::NotAllowed)))
}

/// Saves a channel's profile as a new version (admins); nothing is saved when nothing changed.
pub async fn save_profile(
    state: &AppState,
    caller: &Caller,
    channel: ChannelId,
    profile: AiProfile,
) -> Result<AiChannel, AppError> {
    caller.require_admin()?;
    let current = owned_channel(state, caller, channel).await?;
    let profile = profile.checked().map_err(|errors| AppError::Invalid { errors })?;
    if current.version > 0 && current.profile == profile {
        return Ok(current);
    }
    let note = AiProfileVersion::changes(&current.profile, &profile);
    store_version(state, caller, &current, &profile, &note).await
}

async fn store_version(
    state: &AppState,
    caller: &Caller,
    current: &AiChannel,
    profile: &AiProfile,
    note: &str,
) -> Result<AiChannel, AppError> {
    let workspace = caller.me.workspace_id;
    let version = state
        .store
        .save_ai_profile(workspace, current.channel_id, profile, note, caller.me.user_id, now())
        .await
        .map_err(from_store)?;
    let subject = format!("{} v{version}", current.channel_name);
    audit(state, caller, AuditAction::AiProfileChanged, &subject, note).await?;
    owned_channel(state, caller, current.channel_id).await
}

/// A channel's saved versions, newest first (admins).
pub async fn versions(
    state: &AppState,
    caller: &Caller,
    channel: ChannelId,
) -> Result<Vec<AiProfileVersion>, AppError> {
    caller.require_admin()?;
    owned_channel(state, caller, channel).await?;
    state.store.ai_profile_versions(caller.me.workspace_id, channel, VERSIONS_SHOWN).await.map_err(from_store)
}

/// Makes an earlier version current again, as a new version (admins).
pub async fn revert(
    state: &AppState,
    caller: &Caller,
    channel: ChannelId,
    version: i64,
) -> Result<AiChannel, AppError> {
    caller.require_admin()?;
    let current = owned_channel(state, caller, channel).await?;
    let all = state.store.ai_profile_versions(caller.me.workspace_id, channel, i64::MAX).await.map_err(from_store)?;
    let old = all.into_iter().find(|v| v.version == version).ok_or(AppError::NotFound)?;
    store_version(state, caller, &current, &old.profile, &format!("reverted to v{version}")).await
}

/// Turns a channel's AI on or off (admins). Turning it on needs a provider.
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    channel: ChannelId,
    on: bool,
) -> Result<AiChannel, AppError> {
    caller.require_admin()?;
    let current = owned_channel(state, caller, channel).await?;
    let workspace = caller.me.workspace_id;
    if on && state.store.ai_settings(workspace).await.map_err(from_store)?.is_none() {
        return Err(AppError::invalid(FieldError::new(Field::Url, Issue::Required)));
    }
    state.store.set_ai_enabled(workspace, channel, on, &AiProfile::default(), now()).await.map_err(from_store)?;
    let action = if on { AuditAction::AiEnabled } else { AuditAction::AiDisabled };
    audit(state, caller, action, &current.channel_name, "").await?;
    owned_channel(state, caller, channel).await
}

/// Pauses the AI in one conversation, or hands the conversation back to it (agents and admins).
pub async fn set_paused(
    state: &AppState,
    caller: &Caller,
    conversation: ConversationId,
    paused: bool,
) -> Result<ConversationSummary, AppError> {
    caller.require_active()?;
    let summary =
        state.store.set_ai_paused(caller.me.workspace_id, conversation, paused).await.map_err(|error| match error {
            balas_storage::StoreError::NotFound => AppError::Forbidden,
            other => from_store(other),
        })?;
    let event = LiveEvent::ConversationUpdated { conversation: Box::new(summary.clone()) };
    if let Err(error) = state.bus.publish_live(caller.me.workspace_id, &event).await {
        tracing::warn!(%error, "a change was not announced live");
    }
    Ok(summary)
}

/// Tries an (unsaved) profile on a customer's message, without sending anything or touching a
/// conversation (admins). Tools are reported, not carried out.
pub async fn try_profile(
    state: &AppState,
    caller: &Caller,
    profile: AiProfile,
    customer_text: &str,
) -> Result<AiTrial, AppError> {
    caller.require_admin()?;
    let profile = profile.checked().map_err(|errors| AppError::Invalid { errors })?;
    let text = balas_domain::MessageText::parse(customer_text).map_err(AppError::invalid)?;
    let stored = state
        .store
        .ai_settings(caller.me.workspace_id)
        .await
        .map_err(from_store)?
        .ok_or_else(|| AppError::invalid(FieldError::new(Field::Url, Issue::Required)))?;
    let history = vec![json!({ "role": "user", "content": text.as_str() })];
    match converse(state, &stored, &profile, history, &mut Tools::Trial).await {
        Ok(turn) => Ok(AiTrial {
            answer: match &turn.outcome {
                Outcome::Answer(text) => Some(text.clone()),
                Outcome::HandOver(_) => None,
            },
            tool_calls: turn.calls,
            tokens: turn.tokens,
            error: None,
        }),
        Err(failure) => Ok(AiTrial { answer: None, tool_calls: vec![], tokens: 0, error: Some(failure.to_string()) }),
    }
}

// ---- One turn of the model ----------------------------------------------------------------------

/// What the model decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answer(String),
    /// Hand the conversation to a human, for this reason.
    HandOver(String),
}

/// A turn: what it decided, the tools it called and the tokens it used.
#[derive(Debug, Clone)]
pub struct Turn {
    pub outcome: Outcome,
    pub calls: Vec<AiToolCall>,
    pub tokens: i64,
}

/// Why a turn failed (after its retries): said in the handover note.
#[derive(Debug, thiserror::Error)]
pub enum AiFailure {
    #[error("the AI provider did not answer within {:.1} s", *.0 as f64 / 1000.0)]
    Timeout(u64),
    #[error("the AI provider failed: {0}")]
    Provider(String),
    #[error("the AI gave no answer")]
    Empty,
    #[error("the AI model refuses the parameter {0}")]
    Unsupported(String),
}

/// What the tools act on: a real conversation, or nothing (the playground).
pub enum Tools<'a> {
    Conversation { summary: &'a ConversationSummary },
    Trial,
}

fn tool_definitions() -> Value {
    json!([
        { "type": "function", "function": {
            "name": "hand_over_to_human",
            "description": "Hand the conversation to a human agent: when the customer asks for a person, is upset, or you cannot help.",
            "parameters": { "type": "object", "properties": {
                "reason": { "type": "string", "description": "Why, in one sentence, for the agent." } },
                "required": ["reason"] } } },
        { "type": "function", "function": {
            "name": "add_label",
            "description": "Put one of the workspace's labels on the conversation (for example a topic).",
            "parameters": { "type": "object", "properties": {
                "label": { "type": "string", "description": "The label's name." } },
                "required": ["label"] } } },
        { "type": "function", "function": {
            "name": "get_contact_fields",
            "description": "Read the customer's contact record: name, phone, email and custom fields.",
            "parameters": { "type": "object", "properties": {} } } }
    ])
}

/// A client for the workspace's provider on the shared HTTP client (with the call timeout); 429
/// and 5xx answers are retried with backoff for up to `ai_retry_ms`.
fn client(state: &AppState, stored: &StoredAiSettings) -> Client<OpenAIConfig> {
    let config = OpenAIConfig::new().with_api_base(&stored.settings.base_url).with_api_key(&stored.api_key);
    let backoff = backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(200))
        .with_max_elapsed_time(Some(Duration::from_millis(state.settings.ai_retry_ms)))
        .build();
    // Not `with_config`: it builds an HTTP client of its own first (reading every root
    // certificate), which cost more CPU than the rest of a turn.
    Client::build(state.ai_http.clone(), config, backoff)
}

/// One turn: `history` (chat messages, oldest first) answered with `profile`, its tools carried
/// out on `tools`. A call that times out is tried once more.
pub async fn converse(
    state: &AppState,
    stored: &StoredAiSettings,
    profile: &AiProfile,
    history: Vec<Value>,
    tools: &mut Tools<'_>,
) -> Result<Turn, AiFailure> {
    // Checked when saved, but the installation may have stopped allowing it since.
    if crate::outbound::check(state.settings.allow_private_urls, balas_domain::Field::Url, &stored.settings.base_url)
        .is_err()
    {
        return Err(AiFailure::Provider(crate::outbound::REFUSED.into()));
    }
    let client = client(state, stored);
    let model = if profile.model.is_empty() { stored.settings.model.clone() } else { profile.model.clone() };
    let mut messages = vec![json!({ "role": "system", "content": profile.system_prompt() })];
    messages.extend(history);
    let (mut calls, mut tokens) = (Vec::new(), 0i64);
    let quirks_of = (stored.settings.base_url.clone(), model.clone());
    for _ in 0..MAX_ROUNDS {
        let response = loop {
            let refused = state.ai_quirks.of(&quirks_of);
            let mut request = json!({ "model": model, "messages": messages, "tools": tool_definitions() });
            let limit = if refused.max_tokens { "max_completion_tokens" } else { "max_tokens" };
            request[limit] = json!(profile.max_tokens);
            if !refused.temperature {
                request["temperature"] = json!(profile.temperature);
            }
            let request: CreateChatCompletionRequest =
                serde_json::from_value(request).map_err(|e| AiFailure::Provider(e.to_string()))?;
            match ask(&client, request, state.settings.ai_timeout_ms).await {
                // Learnt per address and model; refused without it, it is the provider's failure.
                Err(AiFailure::Unsupported(parameter)) if state.ai_quirks.learn(&quirks_of, &parameter, refused) => {
                    tracing::info!(%parameter, model = %quirks_of.1, "ai: the model refuses a parameter; asking without it");
                }
                answered => break answered?,
            }
        };
        tokens += response.usage.as_ref().map_or(0, |u| i64::from(u.total_tokens));
        let message = response.choices.into_iter().next().ok_or(AiFailure::Empty)?.message;
        let tool_calls: Vec<_> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => Some(call),
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        if tool_calls.is_empty() {
            let text = message.content.unwrap_or_default().trim().to_owned();
            if text.is_empty() {
                return Err(AiFailure::Empty);
            }
            let text: String = text.chars().take(balas_domain::MessageText::MAX_CHARS).collect();
            return Ok(Turn { outcome: Outcome::Answer(text), calls, tokens });
        }
        messages.push(json!({
            "role": "assistant",
            "content": message.content,
            "tool_calls": tool_calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": { "name": c.function.name, "arguments": c.function.arguments } })).collect::<Vec<_>>(),
        }));
        for call in tool_calls {
            let arguments: Value = serde_json::from_str(&call.function.arguments).unwrap_or(Value::Null);
            if call.function.name == "hand_over_to_human" {
                let reason = arguments["reason"].as_str().unwrap_or("the AI asked for a human").to_owned();
                calls.push(AiToolCall {
                    name: call.function.name,
                    arguments: call.function.arguments,
                    result: "handed over".into(),
                });
                return Ok(Turn { outcome: Outcome::HandOver(reason), calls, tokens });
            }
            let result = run_tool(state, tools, &call.function.name, &arguments).await;
            messages.push(json!({ "role": "tool", "tool_call_id": call.id, "content": result }));
            calls.push(AiToolCall { name: call.function.name, arguments: call.function.arguments, result });
        }
    }
    Err(AiFailure::Empty)
}

async fn ask(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
    timeout_ms: u64,
) -> Result<async_openai::types::chat::CreateChatCompletionResponse, AiFailure> {
    let mut last = AiFailure::Empty;
    for _attempt in 0..2 {
        match client.chat().create(request.clone()).await {
            Ok(response) => return Ok(response),
            Err(async_openai::error::OpenAIError::Reqwest(error)) if crate::outbound::is_refusal(&error) => {
                return Err(AiFailure::Provider(crate::outbound::describe(&error)));
            }
            Err(async_openai::error::OpenAIError::Reqwest(error)) if error.is_timeout() || error.is_connect() => {
                tracing::info!(%error, "ai: the provider did not answer; trying once more");
                last = if error.is_timeout() {
                    AiFailure::Timeout(timeout_ms)
                } else {
                    AiFailure::Provider("cannot connect".into())
                };
            }
            Err(error) => {
                let refused = match &error {
                    async_openai::error::OpenAIError::ApiError(api) => unsupported(api),
                    _ => None,
                };
                return Err(refused.map_or_else(
                    || AiFailure::Provider(error.to_string()),
                    |parameter| AiFailure::Unsupported(parameter.to_owned()),
                ));
            }
        }
    }
    Err(last)
}

/// The parameter a model refuses, as OpenAI's reasoning models refuse `max_tokens` (they take
/// `max_completion_tokens`) and any `temperature` but the default.
fn unsupported(error: &async_openai::error::ApiError) -> Option<&'static str> {
    let refused = matches!(error.code.as_deref(), Some("unsupported_parameter" | "unsupported_value"))
        || error.message.to_lowercase().contains("not supported");
    match error.param.as_deref() {
        Some("max_tokens") if refused => Some("max_tokens"),
        Some("temperature") if refused => Some("temperature"),
        _ => None,
    }
}

/// What each provider's model refused once (see [`unsupported`]), per address and model, so that
/// later turns ask the way it takes at once. Shared by every turn of the process.
#[derive(Clone, Debug, Default)]
pub struct ModelQuirks(Arc<Mutex<HashMap<(String, String), Refused>>>);

/// The parameters a model refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    /// Takes `max_completion_tokens` instead.
    pub max_tokens: bool,
    /// Only takes its default temperature.
    pub temperature: bool,
}

impl ModelQuirks {
    /// What the model (base URL, model) refused so far.
    pub fn of(&self, model: &(String, String)) -> Refused {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(model).copied().unwrap_or_default()
    }

    /// Notes that the model refuses `parameter`, refused by a request made knowing `asked`: false
    /// when that request already went without it (asking again would change nothing). A turn
    /// that another turn taught in the meantime asks again too.
    pub fn learn(&self, model: &(String, String), parameter: &str, asked: Refused) -> bool {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let refused = all.entry(model.clone()).or_default();
        let (flag, asked_without) = match parameter {
            "max_tokens" => (&mut refused.max_tokens, asked.max_tokens),
            "temperature" => (&mut refused.temperature, asked.temperature),
            _ => return false,
        };
        *flag = true;
        !asked_without
    }
}

async fn run_tool(state: &AppState, tools: &mut Tools<'_>, name: &str, arguments: &Value) -> String {
    let Tools::Conversation { summary } = tools else {
        return format!("(playground: {name} is not carried out)");
    };
    let workspace = summary.workspace_id;
    match name {
        "add_label" => {
            let wanted = arguments["label"].as_str().unwrap_or_default().trim().to_lowercase();
            let labels = match state.store.labels(workspace).await {
                Ok(labels) => labels,
                Err(error) => return format!("error: {error}"),
            };
            let Some(label) = labels.iter().find(|l| l.name.as_str().to_lowercase() == wanted) else {
                let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
                return format!("no such label; the labels are: {}", names.join(", "));
            };
            match state.store.label_conversation(workspace, summary.id, label.id, true).await {
                Ok(_) => {
                    if let Ok(Some(updated)) = state.store.conversation(workspace, summary.id).await {
                        let event = LiveEvent::ConversationUpdated { conversation: Box::new(updated) };
                        let _ = state.bus.publish_live(workspace, &event).await;
                    }
                    format!("label {} added", label.name.as_str())
                }
                Err(error) => format!("error: {error}"),
            }
        }
        "get_contact_fields" => match state.store.contact(workspace, summary.contact_id).await {
            Ok(contact) => json!({
                "name": contact.name, "phone": contact.phone.as_str(), "email": contact.email,
                "fields": contact.attributes,
            })
            .to_string(),
            Err(error) => format!("error: {error}"),
        },
        other => format!("unknown tool {other}"),
    }
}

/// A conversation's messages as chat messages: the customer's as `user`, the business's
/// (agents, AI, broadcasts) as `assistant`. Files appear as their label.
pub fn chat_history(messages: &[Message]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| !m.note)
        .map(|m| {
            let text = match &m.media {
                Some(media) if m.body.is_empty() => format!("[{}]", media.label()),
                Some(media) => format!("[{}] {}", media.label(), m.body),
                None => m.body.clone(),
            };
            let role = if m.direction == Direction::Inbound { "user" } else { "assistant" };
            json!({ "role": role, "content": text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_parameter_is_learnt_per_model_and_asked_without_once() {
        let quirks = ModelQuirks::default();
        let (o, other) = (
            ("https://api.test/v1".to_owned(), "o-mini".to_owned()),
            ("https://api.test/v1".to_owned(), "gpt".to_owned()),
        );
        let first = quirks.of(&o);
        // Two turns asked at once with `max_tokens`; both are refused, both ask again without it.
        assert!(quirks.learn(&o, "max_tokens", first));
        assert!(quirks.learn(&o, "max_tokens", first));
        let now = quirks.of(&o);
        assert_eq!(now, Refused { max_tokens: true, temperature: false });
        // Refused again although asked without it: nothing left to change.
        assert!(!quirks.learn(&o, "max_tokens", now));
        assert!(quirks.learn(&o, "temperature", now));
        assert!(!quirks.learn(&o, "top_p", now), "only the parameters it knows how to leave out");
        assert_eq!(quirks.of(&other), Refused::default(), "per model");
    }

    #[test]
    fn refusals_are_told_from_other_errors() {
        let error = |param: &str, code: Option<&str>, message: &str| async_openai::error::ApiError {
            message: message.into(),
            r#type: Some("invalid_request_error".into()),
            param: Some(param.into()),
            code: code.map(Into::into),
        };
        let openai = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.";
        assert_eq!(unsupported(&error("max_tokens", Some("unsupported_parameter"), openai)), Some("max_tokens"));
        assert_eq!(unsupported(&error("temperature", Some("unsupported_value"), "…")), Some("temperature"));
        assert_eq!(unsupported(&error("max_tokens", None, "max_tokens is not supported")), Some("max_tokens"));
        assert_eq!(unsupported(&error("max_tokens", Some("invalid_value"), "must be at most 4096")), None);
        assert_eq!(unsupported(&error("messages", Some("unsupported_parameter"), "…")), None);
    }
}
