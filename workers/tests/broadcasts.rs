//! Broadcasts through the whole system (server, planner, queue, WhatsApp worker, sandbox network):
//! each recipient gets exactly one message with its own values; opted-out and invalid numbers are
//! skipped and counted; a bad draft is refused with every reason and nothing queued; pause,
//! resume and cancel act at once; a banned number, or a run of failed sends, pauses its broadcast
//! (and the failed ones can be sent again); roles and workspaces are kept apart; the sending rules
//! are checked.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use balas_domain::{Broadcast, BroadcastStatus, Contact, PhoneNumber, SendSeries};
use common::{Browser, Harness, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn contact(h: &Harness, admin: &Browser, name: &str, phone: &str) -> Contact {
    let (status, body) = h.call(admin, "create_contact", &[("name", name), ("phone", phone), ("email", "")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

fn draft(name: &str, channel: i64, audience: Value, text: &str) -> Value {
    json!({ "draft": { "name": name, "channel_id": channel, "audience": audience, "text": text } })
}

async fn detail(h: &Harness, browser: &Browser, id: i64) -> Broadcast {
    let (status, body) = h.call(browser, "broadcast", &[("id", &id.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (broadcast, _): (Broadcast, SendSeries) = serde_json::from_value(body).unwrap();
    broadcast
}

async fn create(h: &Harness, admin: &Browser, body: &Value) -> Broadcast {
    let (status, created) = h.call_json(admin, "create_broadcast", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    serde_json::from_value(created).unwrap()
}

/// Every message each phone received, by WhatsApp id, with how often it arrived.
async fn ledger(h: &Harness, phones: &[PhoneNumber]) -> HashMap<String, u64> {
    let mut all = HashMap::new();
    for phone in phones {
        all.extend(h.bus.sandbox_ledger(phone).await.unwrap());
    }
    all
}

/// Takes the live events that come within `window` (sends that were still going would show as
/// status events), waiting on the events themselves with that deadline.
async fn follow_for(live: &mut common::Live, window: Duration) {
    let until = tokio::time::Instant::now() + window;
    while tokio::time::timeout_at(until, live.event()).await.is_ok() {}
}

fn issues(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| (e["field"].as_str().unwrap().to_owned(), e["issue"]["kind"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_broadcast_reaches_each_recipient_once_with_its_own_values() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Promo", "+62 811 7100 001", 20).await;
    let worker = h.worker();
    let ana = contact(&h, &admin, "Ana Putri", "+6281271000001").await;
    contact(&h, &admin, "Budi", "+6281271000002").await;
    let citra = contact(&h, &admin, "Citra", "+6281271000003").await;
    let (status, body) =
        h.call(&admin, "set_opted_out", &[("id", &citra.id.0.to_string()), ("opted_out", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A number without a contact, a duplicate of Ana's (written differently) and an invalid one.
    let list = json!({ "kind": "list", "phones": ["+6281271000001", "+62 812 7100 0001", "+6281271000002",
        "+6281271000003", "+6281271000009", "0812 oops"] });
    let text = "Halo {{first_name}}! Promo {{phone}}";

    // The wizard's preview: the counts, and the message for real contacts.
    let body = json!({ "draft": { "name": "Flash", "channel_id": channel.id.0, "audience": list, "text": text,
        "missing": { "rule": "fallback", "text": "Kak" } } });
    let (status, preview) = h.call_json(&admin, "preview_broadcast", &body).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        (&preview["total"], &preview["opted_out"], &preview["invalid"], &preview["duplicates"]),
        (&json!(5), &json!(1), &json!(1), &json!(1))
    );
    assert_eq!(preview["samples"][0]["text"]["Ok"], json!("Halo Ana! Promo +6281271000001"));

    let broadcast = create(&h, &admin, &body).await;
    assert_eq!((broadcast.counts.total, broadcast.counts.skipped), (5, 2));
    assert_eq!(broadcast.duplicates, 1);
    let done = eventually(Duration::from_secs(60), "the broadcast to finish", || async {
        let b = detail(&h, &admin, broadcast.id.0).await;
        (b.status == BroadcastStatus::Finished).then_some(b)
    })
    .await;
    assert_eq!((done.counts.reached(), done.counts.skipped, done.counts.failed), (3, 2, 0), "{:?}", done.counts);

    // Each of the three got exactly one message, with its own values; the opted-out one none.
    let phones: Vec<PhoneNumber> =
        ["+6281271000001", "+6281271000002", "+6281271000009"].iter().map(|p| PhoneNumber::parse(p).unwrap()).collect();
    let arrived = ledger(&h, &phones).await;
    assert_eq!(arrived.len(), 3);
    assert!(arrived.values().all(|n| *n == 1), "{arrived:?}");
    let texts = |phone: &PhoneNumber| {
        let phone = phone.clone();
        let bus = h.bus.clone();
        async move { bus.sandbox_messages(&phone).await.unwrap().into_iter().map(|m| m.text).collect::<Vec<_>>() }
    };
    assert_eq!(texts(&ana.phone).await, ["Halo Ana! Promo +6281271000001"]);
    assert_eq!(texts(&phones[2]).await, ["Halo Kak! Promo +6281271000009"]);
    assert!(texts(&citra.phone).await.is_empty());

    // The results list says why each was left out.
    let (status, rows) =
        h.call(&admin, "broadcast_recipients", &[("id", &broadcast.id.0.to_string()), ("state", "skipped")]).await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    let reasons: Vec<&str> =
        rows.as_array().unwrap().iter().map(|r| r["skipped"]["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["opted_out", "invalid_number"]);
    // The conversation the broadcast opened for a new number waits, resolved, for an answer.
    let conversation = h.store.conversation_with(channel.id, &phones[2]).await.unwrap().unwrap();
    assert_eq!(conversation.status, balas_domain::ConversationStatus::Resolved);
    // The audit log has it.
    let (_, audit) = h.call(&admin, "audit_log", &[]).await;
    assert!(audit.to_string().contains("broadcast_created"), "{audit}");
    worker.stop().await;
}

#[tokio::test]
async fn bad_drafts_are_refused_with_every_reason_and_nothing_is_queued() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Promo", "+62 811 7200 001", 5).await;
    contact(&h, &admin, "Ana", "+6281272000001").await;
    let all = json!({ "kind": "all" });
    let refused = |body: Value| {
        let h = &h;
        let admin = &admin;
        async move {
            let (status, answer) = h.call_json(admin, "create_broadcast", &body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
            issues(&answer)
        }
    };
    let pair = |f: &str, i: &str| (f.to_owned(), i.to_owned());

    assert_eq!(
        refused(draft("X", channel.id.0, all.clone(), "Hi {{nickname}}")).await,
        [pair("text", "unknown_variable")]
    );
    assert_eq!(refused(draft("X", channel.id.0, all.clone(), "Hi {{name")).await, [pair("text", "bad_placeholder")]);
    assert_eq!(refused(draft("X", channel.id.0, all.clone(), &"x".repeat(4097))).await, [pair("text", "too_long")]);
    let mut past = draft("X", channel.id.0, all.clone(), "Hi");
    past["draft"]["send_at"] = json!(balas_backend::now().0 - 3_600_000);
    assert_eq!(refused(past).await, [pair("schedule", "in_past")]);
    // Everything wrong at once: every field named.
    let everything = json!({ "draft": { "name": "", "channel_id": 999, "audience": { "kind": "labels", "labels": [] },
        "text": "", "missing": { "rule": "fallback", "text": "" } } });
    assert_eq!(
        refused(everything).await,
        [
            pair("name", "required"),
            pair("channel", "required"),
            pair("text", "required"),
            pair("fallback", "required"),
            pair("audience", "required")
        ]
    );
    // Nobody to send to: only invalid numbers, or a label nobody has, or another workspace's segment.
    let invalid = json!({ "kind": "list", "phones": ["12", "abc"] });
    assert_eq!(refused(draft("X", channel.id.0, invalid, "Hi")).await, [pair("audience", "no_recipients")]);
    let (_, labels) = h.call(&admin, "create_label", &[("name", "Empty"), ("color", "blue")]).await;
    let label = labels[0]["id"].as_i64().unwrap();
    let nobody = json!({ "kind": "labels", "labels": [label] });
    assert_eq!(refused(draft("X", channel.id.0, nobody, "Hi")).await, [pair("audience", "no_recipients")]);
    let segment = json!({ "kind": "segment", "segment_id": 12345 });
    assert_eq!(refused(draft("X", channel.id.0, segment, "Hi")).await, [pair("audience", "not_allowed")]);
    // A malformed body is a 400 with the reason, not a crash.
    let (status, _) = h.call_json(&admin, "create_broadcast", &json!({ "draft": { "name": 5 } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing was stored or queued.
    let (_, list) = h.call(&admin, "broadcasts", &[]).await;
    assert_eq!(list, json!([]));
    assert_eq!(h.bus.send_backlog(channel.id).await.unwrap(), 0);

    // Agents see broadcasts but may not send them; another workspace sees none of them.
    let ok = create(&h, &admin, &draft("Good", channel.id.0, all.clone(), "Hi {{name}}")).await;
    let agent = h.agent(&admin, "budi@example.com").await;
    let (status, _) = h.call_json(&agent, "create_broadcast", &draft("X", channel.id.0, all.clone(), "Hi")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.call(&agent, "pause_broadcast", &[("id", &ok.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, seen) = h.call(&agent, "broadcasts", &[]).await;
    assert_eq!((status, seen.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let stranger = h.other_workspace().await;
    let (status, _) = h.call(&stranger, "broadcast", &[("id", &ok.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.call(&stranger, "broadcast_recipients", &[("id", &ok.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.call(&stranger, "cancel_broadcast", &[("id", &ok.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.call_json(&stranger, "create_broadcast", &draft("X", channel.id.0, all, "Hi")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "another workspace's channel is not a channel");

    // Sending rules: checked field by field, admins only.
    let rules = [("time_zone", "Mars/Olympus"), ("from_hour", "20"), ("to_hour", "8"), ("daily_cap", "0")];
    let (status, answer) = h.call(&admin, "set_sending_rules", &rules).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        issues(&answer),
        [pair("hours", "out_of_range"), pair("daily_cap", "out_of_range"), pair("time_zone", "not_allowed")]
    );
    let rules = [("time_zone", "Asia/Makassar"), ("from_hour", "8"), ("to_hour", "20"), ("daily_cap", "300")];
    let (status, _) = h.call(&agent, "set_sending_rules", &rules).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, saved) = h.call(&admin, "set_sending_rules", &rules).await;
    assert_eq!((status, &saved["time_zone"]), (StatusCode::OK, &json!("Asia/Makassar")));
}

#[tokio::test]
async fn pause_resume_and_cancel_act_at_once() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Slow", "+62 811 7300 001", 2).await;
    let worker = h.worker();
    let phones: Vec<PhoneNumber> =
        (1..=20).map(|i| PhoneNumber::parse(&format!("+628127300{i:04}")).unwrap()).collect();
    let numbers: Vec<&str> = phones.iter().map(PhoneNumber::as_str).collect();
    let list = json!({ "kind": "list", "phones": numbers });
    let broadcast = create(&h, &admin, &draft("Slow one", channel.id.0, list.clone(), "Tick {{phone}}")).await;
    let id = broadcast.id.0.to_string();
    eventually(Duration::from_secs(30), "the first sends", || async {
        (ledger(&h, &phones).await.len() >= 2).then_some(())
    })
    .await;

    let mut live = h.live(&admin, None).await;
    let (status, paused) = h.call(&admin, "pause_broadcast", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], json!("paused"));
    assert_eq!(paused["paused_reason"], json!("Paused by Ana Admin"));
    let at_pause = ledger(&h, &phones).await.len();
    // Follow the events for two seconds (four sends' worth at this rate): at most the one send
    // that was already under way may still arrive (the ledger only grows, so its count after the
    // window covers the whole window).
    follow_for(&mut live, Duration::from_secs(2)).await;
    let now = ledger(&h, &phones).await.len();
    assert!(now <= at_pause + 1, "{now} sent while paused (from {at_pause})");
    let (status, again) = h.call(&admin, "pause_broadcast", &[("id", &id)]).await;
    assert_eq!(
        (status, issues(&again)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec![("status".into(), "wrong_state".into())])
    );

    let (status, resumed) = h.call(&admin, "resume_broadcast", &[("id", &id)]).await;
    assert_eq!((status, &resumed["status"]), (StatusCode::OK, &json!("running")));
    let arrived = eventually(Duration::from_secs(60), "every recipient after the resume", || async {
        let all = ledger(&h, &phones).await;
        (all.len() == 20).then_some(all)
    })
    .await;
    assert!(arrived.values().all(|n| *n == 1), "{arrived:?}");
    eventually(Duration::from_secs(30), "the broadcast to finish", || async {
        (detail(&h, &admin, broadcast.id.0).await.status == BroadcastStatus::Finished).then_some(())
    })
    .await;

    // Cancel: nothing more goes out, and the rest are counted as cancelled.
    let others: Vec<PhoneNumber> =
        (1..=20).map(|i| PhoneNumber::parse(&format!("+628127301{i:04}")).unwrap()).collect();
    let numbers: Vec<&str> = others.iter().map(PhoneNumber::as_str).collect();
    let second =
        create(&h, &admin, &draft("Cancel me", channel.id.0, json!({ "kind": "list", "phones": numbers }), "Hi")).await;
    eventually(Duration::from_secs(30), "the first sends", || async {
        (!ledger(&h, &others).await.is_empty()).then_some(())
    })
    .await;
    let mut live = h.live(&admin, None).await;
    let (status, cancelled) = h.call(&admin, "cancel_broadcast", &[("id", &second.id.0.to_string())]).await;
    assert_eq!((status, &cancelled["status"]), (StatusCode::OK, &json!("cancelled")));
    let at_cancel = ledger(&h, &others).await.len();
    follow_for(&mut live, Duration::from_secs(2)).await;
    assert!(ledger(&h, &others).await.len() <= at_cancel + 1);
    let after = detail(&h, &admin, second.id.0).await;
    assert_eq!(after.counts.pending + after.counts.queued, 0, "{:?}", after.counts);
    assert!(after.counts.cancelled >= 20 - at_cancel as i64 - 1, "{:?}", after.counts);
    let (status, _) = h.call(&admin, "resume_broadcast", &[("id", &second.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a cancelled broadcast stays cancelled");
    worker.stop().await;
}

#[tokio::test]
async fn a_banned_number_pauses_its_broadcast_with_the_reason() {
    // The sandbox bans a number over 3 messages a second; this channel sends 10.
    let h = Harness::start(|s| s.sandbox_ban_above_per_sec = 3).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Reckless", "+62 811 7400 001", 10).await;
    let worker = h.worker();
    let numbers: Vec<String> = (1..=40).map(|i| format!("+628127400{i:04}")).collect();
    let broadcast =
        create(&h, &admin, &draft("Too fast", channel.id.0, json!({ "kind": "list", "phones": numbers }), "Hi")).await;
    let paused = eventually(Duration::from_secs(30), "the broadcast to pause itself", || async {
        let b = detail(&h, &admin, broadcast.id.0).await;
        (b.status == BroadcastStatus::Paused).then_some(b)
    })
    .await;
    let reason = paused.paused_reason.unwrap_or_default();
    assert!(reason.contains("banned"), "{reason}");
    assert!(paused.counts.pending > 0, "it stopped before the end: {:?}", paused.counts);
    worker.stop().await;
}

#[tokio::test]
async fn a_run_of_failures_pauses_the_broadcast_and_failed_ones_can_be_retried() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Old list", "+62 811 7500 001", 5).await;
    let worker = h.worker();
    // Sandbox numbers ending in 00000 are not on WhatsApp: every send to them fails for good.
    let (first, last) = (PhoneNumber::parse("+6281275000001").unwrap(), PhoneNumber::parse("+6281275000002").unwrap());
    let mut numbers = vec![first.as_str().to_owned()];
    numbers.extend((1..=25).map(|i| format!("+62812{i:03}00000")));
    numbers.push(last.as_str().to_owned());
    let broadcast =
        create(&h, &admin, &draft("Stale", channel.id.0, json!({ "kind": "list", "phones": numbers }), "Hi")).await;
    let id = broadcast.id.0.to_string();
    let paused = eventually(Duration::from_secs(30), "the broadcast to pause itself", || async {
        let b = detail(&h, &admin, broadcast.id.0).await;
        (b.status == BroadcastStatus::Paused).then_some(b)
    })
    .await;
    let reason = paused.paused_reason.clone().unwrap_or_default();
    assert!(reason.contains("The last 10 sends failed"), "{reason}");
    assert!(paused.counts.failed >= 10 && paused.counts.pending > 0, "{:?}", paused.counts);
    assert_eq!(h.bus.sandbox_ledger(&first).await.unwrap().len(), 1);
    let (_, failed) = h.call(&admin, "broadcast_recipients", &[("id", &id), ("state", "failed")]).await;
    assert!(failed.to_string().contains("this number is not on WhatsApp"), "{failed}");

    // A retry puts every failed one back on the queue at once, paused or not (they fail again: the
    // numbers are gone); the sends the pause held stay held. Then cancelling leaves the last
    // number without a message.
    let (status, retried) = h.call(&admin, "retry_broadcast", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    let retried = retried.as_i64().unwrap();
    assert!(retried >= paused.counts.failed, "{retried} retried of {:?}", paused.counts);
    eventually(Duration::from_secs(30), "the retried sends to fail again", || async {
        (detail(&h, &admin, broadcast.id.0).await.counts.failed >= retried).then_some(())
    })
    .await;
    let (status, _) = h.call(&admin, "cancel_broadcast", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.bus.sandbox_ledger(&last).await.unwrap().is_empty());
    let (status, answer) = h.call(&admin, "retry_broadcast", &[("id", &id)]).await;
    assert_eq!(
        (status, issues(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec![("status".into(), "wrong_state".into())])
    );
    worker.stop().await;
}
