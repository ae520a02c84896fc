//! The AI agent through the whole system: the server, the WhatsApp worker on the sandbox, the AI
//! worker, real Redis and SQLite, and a fake OpenAI-compatible provider on a local port (the only
//! fake: the model itself). Customers are answered through the queue, bursts once, and the AI
//! steps aside for people: on a keyword, when the model asks, when an agent replies, on a timeout
//! or an outage, and at the monthly cap.

mod common;

use std::time::Duration;

use balas_domain::{
    ConversationId, ConversationStatus, ConversationSummary, LiveEvent, Message, PhoneNumber, SandboxPacket, SenderKind,
};
use balas_fakellm::FakeLlm;
use common::{Browser, Harness, Live, eventually, next_message, wait_connected};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A workspace with a sandbox channel whose AI answers through the fake provider; the live socket
/// is connected and the WhatsApp worker runs (the AI worker is the test's to start).
struct Setup {
    h: Harness,
    admin: Browser,
    channel: balas_domain::Channel,
    live: Live,
    llm: FakeLlm,
    wa: common::InProcessWorker,
}

async fn setup(tune: impl FnOnce(&mut balas_backend::settings::Settings)) -> Setup {
    let h = Harness::start(tune).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Toko", "+62 811 9000 001", 20).await;
    let llm = FakeLlm::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let form = [("base_url", llm.url.as_str()), ("api_key", "sk-test-secret-1234"), ("model", "fake-model")];
    let (status, body) = h.call(&admin, "set_ai_settings", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key_hint"], json!("1234"), "only the key's end is ever shown: {body}");
    assert!(!body.to_string().contains("sk-test-secret"));
    let profile = json!({
        "prompt": "You are Toko's helper.", "model": "", "temperature": 0.2, "max_tokens": 200, "history": 10,
        "active": { "kind": "always" }, "languages": [], "handover_keywords": ["human", "manusia"],
        "settle_ms": 400
    });
    let (status, body) =
        h.call_json(&admin, "save_ai_profile", &json!({ "channel": channel.id.0, "profile": profile })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = channel.id.0.to_string();
    let (status, body) = h.call(&admin, "set_ai_enabled", &[("channel", id.as_str()), ("on", "true")]).await;
    assert_eq!((status, &body["enabled"]), (StatusCode::OK, &json!(true)), "{body}");
    let mut live = h.live(&admin, None).await;
    let wa = h.worker();
    wait_connected(&mut live, &channel).await;
    Setup { h, admin, channel, live, llm, wa }
}

/// The customer's messages and the answers in a conversation (no notes), oldest first.
async fn messages(h: &Harness, admin: &Browser, conversation: ConversationId) -> Vec<Message> {
    let (status, body) = h.call(admin, "conversation", &[("id", &conversation.0.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body["messages"].clone()).unwrap()
}

/// Waits until the AI workers read the live events up to `event` and acknowledged all they read
/// (each conversation they saw was handled: answered, handed over, or left alone on purpose).
async fn ai_settled(h: &Harness, event: &str) {
    eventually(Duration::from_secs(30), "the AI workers to handle everything up to the event", || async {
        h.bus.live_group_done(balas_backend::ai_worker::GROUP, event).await.unwrap().then_some(())
    })
    .await;
}

/// The next AI message on the live socket.
async fn next_ai_message(live: &mut Live) -> Message {
    loop {
        let (_, message, _) = next_message(live).await;
        if message.sender == SenderKind::Ai && !message.note {
            return message;
        }
    }
}

/// Waits for a conversation to be handed over (pending, unassigned, AI paused) and returns the
/// note that says why.
async fn handed_over(live: &mut Live, conversation: ConversationId) -> String {
    let mut note = None;
    loop {
        match live.event().await.event {
            LiveEvent::MessageNew { message, .. } if message.note && message.conversation_id == conversation => {
                assert_eq!(message.sender, SenderKind::Ai);
                note = Some(message.body);
            }
            LiveEvent::ConversationUpdated { conversation: c } if c.id == conversation && c.ai_paused => {
                assert_eq!((c.status, c.assignee), (ConversationStatus::Pending, None));
                return note.expect("the note comes first");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn customers_are_answered_once_per_burst_and_the_ai_steps_aside_for_people() {
    let Setup { h, admin, channel, mut live, llm, wa } = setup(|_| {}).await;
    // Two AI workers share the load; each burst is still answered once.
    let (ai_a, ai_b) = (h.ai_worker(), h.ai_worker());

    // A question: answered through the queue, on the customer's phone, stored as the AI's.
    let ana = PhoneNumber::parse("+6281290000001").unwrap();
    h.customer_send(ana.as_str(), &channel.phone, "Jam buka toko?").await;
    let (_, _, conversation) = next_message(&mut live).await;
    let answer = next_ai_message(&mut live).await;
    assert_eq!((answer.body.as_str(), answer.conversation_id), ("Echo: Jam buka toko?", conversation));
    eventually(Duration::from_secs(20), "the answer on Ana's phone", || async {
        let got = h.bus.sandbox_messages(&ana).await.unwrap();
        got.iter().any(|m| m.text == "Echo: Jam buka toko?").then_some(())
    })
    .await;
    let inbox = h.bus.sandbox_inbox(&ana).await.unwrap();
    assert!(
        inbox.iter().any(|e| matches!(e.packet, SandboxPacket::Typing { typing: true, .. })),
        "the customer saw typing… while it thought"
    );
    let first = &llm.requests()[0];
    assert_eq!(first["model"], json!("fake-model"));
    assert_eq!(first["messages"][0], json!({ "role": "system", "content": "You are Toko's helper." }));
    assert_eq!(llm.authorizations()[0], "Bearer sk-test-secret-1234");
    let tools: Vec<&str> =
        first["tools"].as_array().unwrap().iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(tools, ["hand_over_to_human", "add_label", "get_contact_fields"]);

    // A burst of three: one answer with all of them.
    let served = llm.served();
    for text in ["Saya mau pesan", "2 kaos hitam", "ukuran L"] {
        h.customer_send(ana.as_str(), &channel.phone, text).await;
    }
    let mut last_customer_event = String::new();
    let answer = loop {
        let (event, message, _) = next_message(&mut live).await;
        if message.sender == SenderKind::Ai {
            break message;
        }
        last_customer_event = event;
    };
    assert_eq!(answer.body, "Echo: Saya mau pesan | 2 kaos hitam | ukuran L");
    ai_settled(&h, &last_customer_event).await;
    assert_eq!(llm.served(), served + 1, "one model call for the burst");
    let stored = messages(&h, &admin, conversation).await;
    let ai_answers = stored.iter().filter(|m| m.sender == SenderKind::Ai && !m.note).count();
    assert_eq!(ai_answers, 2, "one answer per burst, with two workers: {stored:?}");

    // "manusia" (a handover keyword): handed over at once, without asking the model.
    let requests = llm.requests().len();
    h.customer_send(ana.as_str(), &channel.phone, "Saya mau bicara dengan manusia").await;
    let note = handed_over(&mut live, conversation).await;
    assert_eq!(note, "The AI handed over: the customer wrote \"manusia\".");
    assert_eq!(llm.requests().len(), requests);

    // Paused: the AI stays quiet until an agent hands the conversation back.
    h.customer_send(ana.as_str(), &channel.phone, "Halo?").await;
    let (event, _, _) = next_message(&mut live).await;
    ai_settled(&h, &event).await;
    assert_eq!(llm.requests().len(), requests, "no model call while a human has it");
    let id = conversation.0.to_string();
    let (status, body) =
        h.call(&admin, "set_conversation_ai", &[("conversation", id.as_str()), ("paused", "false")]).await;
    assert_eq!((status, &body["ai_paused"]), (StatusCode::OK, &json!(false)), "{body}");
    h.customer_send(ana.as_str(), &channel.phone, "Masih di sana?").await;
    // It answers all the customer said since its last answer (the model sees the history).
    let answer = next_ai_message(&mut live).await;
    assert_eq!(answer.body, "Echo: Saya mau bicara dengan manusia | Halo? | Masih di sana?");

    // The model asks for a human (a tool call): handed over with its reason.
    h.customer_send(ana.as_str(), &channel.phone, "I want to complain about my order").await;
    assert_eq!(handed_over(&mut live, conversation).await, "The AI handed over: The customer is upset");

    // An agent's reply takes a conversation over: the AI does not answer there any more.
    let budi = PhoneNumber::parse("+6281290000002").unwrap();
    h.customer_send(budi.as_str(), &channel.phone, "Ada diskon?").await;
    let (_, _, budi_conversation) = next_message(&mut live).await;
    next_ai_message(&mut live).await;
    let reply = [
        ("conversation", budi_conversation.0.to_string()),
        ("text", "Halo, saya Rina".into()),
        ("note", "false".into()),
    ];
    let reply: Vec<(&str, &str)> = reply.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = h.call(&admin, "reply", &reply).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let requests = llm.requests().len();
    h.customer_send(budi.as_str(), &channel.phone, "Oke terima kasih Rina").await;
    let event = loop {
        let (event, message, _) = next_message(&mut live).await;
        if message.body == "Oke terima kasih Rina" {
            break event;
        }
    };
    ai_settled(&h, &event).await;
    assert_eq!(llm.requests().len(), requests, "the AI does not talk over the agent");
    let last = messages(&h, &admin, budi_conversation).await.pop().unwrap();
    assert_eq!(last.body, "Oke terima kasih Rina", "the customer's message is the last one");

    // An opted-out contact is never answered.
    let (status, body) =
        h.call(&admin, "create_contact", &[("name", "Citra"), ("phone", "+6281290000003"), ("email", "")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let citra = body["id"].as_i64().unwrap().to_string();
    let (status, _) = h.call(&admin, "set_opted_out", &[("id", citra.as_str()), ("opted_out", "true")]).await;
    assert_eq!(status, StatusCode::OK);
    h.customer_send("+6281290000003", &channel.phone, "Info promo?").await;
    let (event, _, _) = next_message(&mut live).await;
    ai_settled(&h, &event).await;
    assert_eq!(llm.requests().len(), requests, "opted-out contacts get no AI answer");

    ai_a.stop().await;
    ai_b.stop().await;
    wa.stop().await;
}

#[tokio::test]
async fn tools_failures_and_the_monthly_cap() {
    let Setup { h, admin, channel, mut live, llm, wa } = setup(|s| {
        s.ai_timeout_ms = 800;
        s.ai_retry_ms = 300;
    })
    .await;
    let ai = h.ai_worker();
    let (status, _) = h.call(&admin, "create_label", &[("name", "VIP"), ("color", "purple")]).await;
    assert_eq!(status, StatusCode::OK);

    // Tools: a label on the conversation; the contact's fields read.
    let (status, _) =
        h.call(&admin, "create_contact", &[("name", "Sari"), ("phone", "+6281290000011"), ("email", "")]).await;
    assert_eq!(status, StatusCode::OK);
    h.customer_send("+6281290000011", &channel.phone, "label me vip").await;
    let (_, _, conversation) = next_message(&mut live).await;
    assert_eq!(next_ai_message(&mut live).await.body, "Done: label VIP added");
    let (_, body) = h.call(&admin, "conversation", &[("id", &conversation.0.to_string())]).await;
    let summary: ConversationSummary = serde_json::from_value(body["conversation"].clone()).unwrap();
    assert_eq!(summary.labels.len(), 1, "the label is on the conversation");
    h.customer_send("+6281290000011", &channel.phone, "who am i?").await;
    assert_eq!(next_ai_message(&mut live).await.body, "You are Sari");

    // A model that does not answer in time (tried twice): handed over, saying why.
    llm.set_delay(Duration::from_millis(2_000));
    h.customer_send("+6281290000012", &channel.phone, "Halo").await;
    let (_, _, slow) = next_message(&mut live).await;
    let note = handed_over(&mut live, slow).await;
    assert!(note.contains("did not answer within"), "{note}");
    llm.set_delay(Duration::ZERO);

    // A provider that is down (500s, retried with backoff): handed over; the rest runs on.
    llm.fail_next(1_000);
    h.customer_send("+6281290000013", &channel.phone, "Halo").await;
    let (_, _, down) = next_message(&mut live).await;
    let note = handed_over(&mut live, down).await;
    assert!(note.contains("The AI could not answer (the AI provider failed"), "{note}");
    llm.fail_next(0);

    // Tokens are counted; at the cap, the AI stops and says so in the handover.
    let (status, body) = h.call(&admin, "ai_settings", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let used = body[1]["tokens"].as_i64().unwrap();
    assert!(used > 0, "{body}");
    // Where they went: the conversations the AI talked in, most first.
    let top = body[1]["top"].as_array().unwrap();
    let spent: Vec<i64> = top.iter().map(|c| c["tokens"].as_i64().unwrap()).collect();
    assert!(!spent.is_empty() && spent.iter().all(|t| *t > 0) && spent.is_sorted_by(|a, b| a >= b), "{body}");
    assert!(spent.iter().sum::<i64>() <= used, "{body}");
    assert!(top.iter().all(|c| c["channel_name"] == channel.name.as_str()), "{body}");
    let cap = used.to_string();
    let form = [("base_url", llm.url.as_str()), ("model", "fake-model"), ("monthly_token_cap", cap.as_str())];
    let (status, body) = h.call(&admin, "set_ai_settings", &form).await;
    assert_eq!(status, StatusCode::OK, "the saved key is kept: {body}");
    let requests = llm.requests().len();
    h.customer_send("+6281290000014", &channel.phone, "Halo").await;
    let (_, _, capped) = next_message(&mut live).await;
    let note = handed_over(&mut live, capped).await;
    assert!(note.contains("token cap is reached"), "{note}");
    assert_eq!(llm.requests().len(), requests, "no model call over the cap");

    ai.stop().await;
    wa.stop().await;
}

#[tokio::test]
async fn a_message_that_waited_too_long_for_the_ai_goes_to_people() {
    // Every message is "too old" once its burst settles (400 ms): what an AI worker that comes
    // back after an outage finds.
    let Setup { h, admin: _admin, channel, mut live, llm, wa } = setup(|s| s.ai_answer_within_ms = 1).await;
    h.customer_send("+6281290000031", &channel.phone, "Masih buka?").await;
    let (_, _, conversation) = next_message(&mut live).await;
    let ai = h.ai_worker();
    let note = handed_over(&mut live, conversation).await;
    assert!(note.contains("waited") && note.contains("longer than the 0 s it may answer within"), "{note}");
    assert!(llm.requests().is_empty(), "no late answer was asked for");
    ai.stop().await;
    wa.stop().await;
}

#[tokio::test]
async fn admins_edit_version_revert_and_try_prompts() {
    let Setup { h, admin, channel, llm, wa, .. } = setup(|_| {}).await;
    let id = channel.id.0;
    let save = |profile: Value| json!({ "channel": id, "profile": profile });
    let mut profile = json!({
        "prompt": "Version two.", "model": "gpt-4o-mini", "temperature": 0.5, "max_tokens": 300, "history": 8,
        "active": { "kind": "outside_hours", "from_hour": 8, "to_hour": 17 }, "languages": ["Indonesian"],
        "handover_keywords": ["agent"], "settle_ms": 2000
    });
    let (status, body) = h.call_json(&admin, "save_ai_profile", &save(profile.clone())).await;
    assert_eq!((status, &body["version"]), (StatusCode::OK, &json!(2)), "{body}");

    // Refused field by field; nothing saved.
    let bad = json!({ "prompt": "", "model": "bad model", "temperature": 3.0, "max_tokens": 1, "history": 99,
        "active": { "kind": "always" }, "languages": [], "handover_keywords": [], "settle_ms": 999999 });
    let (status, body) = h.call_json(&admin, "save_ai_profile", &save(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["prompt", "model", "temperature", "max_tokens", "history", "settle"]);

    // The history says who changed what; a revert is a new version.
    let (_, versions) = h.call(&admin, "ai_profile_versions", &[("channel", &id.to_string())]).await;
    let notes: Vec<&str> = versions.as_array().unwrap().iter().filter_map(|v| v["note"].as_str()).collect();
    assert_eq!(
        notes[0],
        "prompt, model, temperature, max tokens, history, active, languages, handover keywords, settle"
    );
    assert_eq!(versions[0]["changed_by"], json!("Ana Admin"));
    let (status, body) = h.call(&admin, "revert_ai_profile", &[("channel", &id.to_string()), ("version", "1")]).await;
    assert_eq!(
        (status, &body["version"], &body["profile"]["prompt"]),
        (StatusCode::OK, &json!(3), &json!("You are Toko's helper."))
    );
    let (_, versions) = h.call(&admin, "ai_profile_versions", &[("channel", &id.to_string())]).await;
    assert_eq!(versions[0]["note"], json!("reverted to v1"));

    // The playground: the unsaved prompt answers, tools are shown and not carried out, nothing
    // reaches WhatsApp.
    profile["prompt"] = json!("Unsaved prompt.");
    let (status, trial) = h.call_json(&admin, "try_ai_profile", &json!({ "profile": profile, "text": "Halo" })).await;
    assert_eq!((status, &trial["answer"]), (StatusCode::OK, &json!("Echo: Halo")), "{trial}");
    let sent = llm.requests().pop().unwrap();
    assert_eq!(sent["model"], json!("gpt-4o-mini"));
    assert!(
        sent["messages"][0]["content"].as_str().unwrap().starts_with("Unsaved prompt.\n\nAnswer only in indonesian")
    );
    let (_, trial) =
        h.call_json(&admin, "try_ai_profile", &json!({ "profile": profile, "text": "label me vip" })).await;
    assert_eq!(trial["tool_calls"][0]["name"], json!("add_label"));
    assert!(trial["tool_calls"][0]["result"].as_str().unwrap().contains("not carried out"), "{trial}");
    // A model that takes `max_completion_tokens` and only its default temperature (as OpenAI's
    // reasoning models do) is answered: learnt from its two refusals, then asked that way at once.
    let mut reasoning = profile.clone();
    reasoning["model"] = json!("o-mini");
    let before = llm.requests().len();
    let (status, trial) = h.call_json(&admin, "try_ai_profile", &json!({ "profile": reasoning, "text": "Halo" })).await;
    assert_eq!((status, &trial["answer"]), (StatusCode::OK, &json!("Echo: Halo")), "{trial}");
    let asked = llm.requests();
    assert_eq!(asked.len() - before, 3, "refused twice, then answered");
    let last = asked.last().unwrap();
    assert_eq!(last["max_completion_tokens"], json!(300), "{last}");
    assert!(last["max_tokens"].is_null() && last["temperature"].is_null(), "{last}");
    let (_, trial) = h.call_json(&admin, "try_ai_profile", &json!({ "profile": reasoning, "text": "Lagi" })).await;
    assert_eq!(trial["answer"], json!("Echo: Lagi"), "{trial}");
    assert_eq!(llm.requests().len(), asked.len() + 1, "asked the way it takes at once");
    // The other models are still asked with `max_tokens` and the profile's temperature.
    let (_, trial) = h.call_json(&admin, "try_ai_profile", &json!({ "profile": profile, "text": "Halo" })).await;
    assert_eq!(trial["answer"], json!("Echo: Halo"), "{trial}");
    let sent = llm.requests().pop().unwrap();
    assert_eq!((&sent["max_tokens"], &sent["temperature"]), (&json!(300), &json!(0.5)), "{sent}");

    // A provider that fails says so in the playground.
    llm.fail_next(1_000);
    let (status, trial) = h.call_json(&admin, "try_ai_profile", &json!({ "profile": profile, "text": "Halo" })).await;
    assert_eq!((status, &trial["answer"]), (StatusCode::OK, &Value::Null), "{trial}");
    assert!(trial["error"].as_str().unwrap().starts_with("the AI provider failed"), "{trial}");
    llm.fail_next(0);
    let (_, channels) = h.call(&admin, "ai_channels", &[]).await;
    assert_eq!(channels[0]["profile"]["prompt"], json!("You are Toko's helper."), "the playground saves nothing");

    // Agents may look but not change; another workspace reaches nothing.
    let agent = h.agent(&admin, "budi@example.com").await;
    assert_eq!(h.call(&agent, "ai_channels", &[]).await.0, StatusCode::OK);
    assert_eq!(h.call_json(&agent, "save_ai_profile", &save(profile.clone())).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.call(&agent, "ai_settings", &[]).await.0, StatusCode::FORBIDDEN);
    let stranger = h.other_workspace().await;
    let (status, body) = h.call_json(&stranger, "save_ai_profile", &save(profile)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], json!("channel"));
    let (status, _) = h.call(&stranger, "set_ai_enabled", &[("channel", &id.to_string()), ("on", "false")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    wa.stop().await;
}
