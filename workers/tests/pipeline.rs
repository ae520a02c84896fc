//! The message pipeline end to end on the sandbox network, a real Redis and a real SQLite file:
//! a customer's message reaches the database once and the right dashboards live; an agent's
//! reply reaches the phone once with its statuses in order; a browser that reconnects gets what
//! it missed; bad input is refused without harm; a channel never sends faster than its limit.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use balas_bus::stream_id_cmp;
use balas_domain::{Direction, LiveEvent, Message, MessageStatus, PhoneNumber, ServerFrame, WaEnvelope, WaEvent};
use common::{Harness, eventually, next_message, wait_connected};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

#[tokio::test]
async fn a_customer_message_is_stored_once_and_reaches_only_its_workspace() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 1000 001", 5).await;
    let mut mine = h.live(&admin, None).await;
    let mut theirs = h.live(&other, None).await;
    let worker = h.worker();
    wait_connected(&mut mine, &channel).await;

    let wa_id = h.customer_send("+6281234567001", &channel.phone, "Halo, stok ada?").await;
    let (_, message, conversation) = next_message(&mut mine).await;
    assert_eq!((message.wa_id.as_str(), message.body.as_str()), (wa_id.as_str(), "Halo, stok ada?"));
    assert_eq!((message.direction, message.status), (Direction::Inbound, MessageStatus::Received));
    assert_eq!(message.workspace_id, channel.workspace_id);

    // The worker reports the same message again (a redelivery): still one row.
    let again = WaEnvelope {
        channel_id: channel.id,
        at: balas_backend::now(),
        event: WaEvent::Message {
            media: None,
            wa_id: wa_id.clone(),
            from: PhoneNumber::parse("+6281234567001").unwrap(),
            push_name: None,
            text: "Halo, stok ada?".into(),
            sent_at: balas_backend::now(),
        },
    };
    h.bus.append_wa_event(&again).await.unwrap();
    // And an entry that is not an event at all (a bug, a foreign writer): dropped, not a blocker.
    let client = redis::Client::open(h.settings.redis_url.expose_secret()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("XADD")
        .arg(h.bus.keys().wa_events())
        .arg("*")
        .arg("e")
        .arg("{not an event")
        .query_async::<String>(&mut conn)
        .await
        .unwrap();
    let marker = h.customer_send("+6281234567001", &channel.phone, "marker").await;
    loop {
        let (_, next, _) = next_message(&mut mine).await;
        if next.wa_id == marker {
            break;
        }
    }
    let stored = h.store.messages(channel.workspace_id, conversation, None, 50).await.unwrap();
    let bodies: Vec<_> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["Halo, stok ada?", "marker"], "one row per WhatsApp id");

    // The customer types: the dashboard sees it in that conversation.
    let typing = serde_json::json!({ "from": "+6281234567001", "to": channel.phone.as_str(), "typing": true });
    let response = h.http.post(format!("{}/sandbox/api/typing", h.base())).json(&typing).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    loop {
        if let LiveEvent::Typing { conversation_id, typing, .. } = mine.event().await.event {
            assert_eq!((conversation_id, typing), (conversation, true));
            break;
        }
    }

    // The other workspace heard none of it: its first message event is its own.
    let their_channel = h.create_channel(&other, "Theirs", "+62 811 1000 002", 5).await;
    h.customer_send("+6281234567009", &their_channel.phone, "for the other shop").await;
    loop {
        let envelope = theirs.event().await;
        assert_eq!(envelope.workspace_id, their_channel.workspace_id, "leaked: {envelope:?}");
        if let LiveEvent::MessageNew { message, .. } = envelope.event {
            assert_eq!(message.body, "for the other shop");
            break;
        }
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_reply_reaches_the_phone_once_with_its_statuses_in_order() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Support", "+62 811 2000 001", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;

    let customer = "+6281234567002";
    let channel_id = channel.id.0.to_string();
    let (status, body) = h
        .call(
            &admin,
            "send_message",
            &[("channel_id", &channel_id), ("to", customer), ("text", "Pesanan dikirim hari ini")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent: Message = serde_json::from_value(body).unwrap();
    assert_eq!(sent.status, MessageStatus::Queued);

    // Live: the new message, then sent and delivered, in that order.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&MessageStatus::Delivered) {
        let envelope = live.event().await;
        match envelope.event {
            LiveEvent::MessageNew { message, .. } if message.id == sent.id => statuses.push(message.status),
            LiveEvent::MessageStatus { message_id, status, .. } if message_id == sent.id => statuses.push(status),
            _ => {}
        }
    }
    // The customer's phone has it, once, and reads it.
    let inbox: Vec<Value> = h
        .http
        .get(format!("{}/sandbox/api/phones/{customer}/messages", h.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["wa_id"], sent.wa_id.as_str());
    assert_eq!(inbox[0]["text"], "Pesanan dikirim hari ini");
    let read = serde_json::json!({ "reader": customer, "sender": channel.phone.as_str(), "wa_ids": [sent.wa_id] });
    let response = h.http.post(format!("{}/sandbox/api/read", h.base())).json(&read).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    while statuses.last() != Some(&MessageStatus::Read) {
        if let LiveEvent::MessageStatus { message_id, status, .. } = live.event().await.event
            && message_id == sent.id
        {
            statuses.push(status);
        }
    }
    assert!(statuses.windows(2).all(|w| w[0].rank() < w[1].rank()), "statuses went backwards: {statuses:?}");
    assert_eq!(statuses.first(), Some(&MessageStatus::Queued));
    assert!(statuses.contains(&MessageStatus::Delivered), "{statuses:?}");
    let stored = h.store.message(channel.workspace_id, sent.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Read);
    let ledger = h.bus.sandbox_ledger(&PhoneNumber::parse(customer).unwrap()).await.unwrap();
    assert_eq!(ledger, HashMap::from([(sent.wa_id.clone(), 1)]), "delivered exactly once");

    // A number that is not on WhatsApp: the message fails with a reason a person can read.
    let (status, body) =
        h.call(&admin, "send_message", &[("channel_id", &channel_id), ("to", "+6281200000"), ("text", "Halo")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doomed: Message = serde_json::from_value(body).unwrap();
    loop {
        if let LiveEvent::MessageStatus { message_id, status, error, .. } = live.event().await.event
            && message_id == doomed.id
        {
            assert_eq!(status, MessageStatus::Failed);
            assert_eq!(error.as_deref(), Some("this number is not on WhatsApp"));
            break;
        }
    }
    // A worker that stops cleanly gives its channel back at once (no waiting for the lease).
    assert!(h.bus.lease_holder(channel.id).await.unwrap().is_some());
    worker.stop().await;
    assert_eq!(h.bus.lease_holder(channel.id).await.unwrap(), None);
}

#[tokio::test]
async fn every_server_instance_delivers_every_event_to_its_own_sockets() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 2500 001", 5).await;
    let second = h.another_server().await;
    let mut on_first = h.live(&admin, None).await;
    let mut on_second = h.live_on(&second, &admin, None).await;
    let worker = h.worker();
    wait_connected(&mut on_first, &channel).await;
    wait_connected(&mut on_second, &channel).await;
    for text in ["one", "two", "three"] {
        h.customer_send("+6281234567025", &channel.phone, text).await;
    }
    for live in [&mut on_first, &mut on_second] {
        let mut bodies = Vec::new();
        while bodies.len() < 3 {
            bodies.push(next_message(live).await.1.body);
        }
        assert_eq!(bodies, ["one", "two", "three"]);
    }
    // Stored once, although two ingest consumers were running.
    let customer = PhoneNumber::parse("+6281234567025").unwrap();
    let conversation = h.store.conversation_with(channel.id, &customer).await.unwrap().unwrap();
    assert_eq!(h.store.messages(channel.workspace_id, conversation.id, None, 10).await.unwrap().len(), 3);
    worker.stop().await;
}

#[tokio::test]
async fn a_browser_that_reconnects_gets_every_missed_event_in_order() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 001", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;

    h.customer_send("+6281234567003", &channel.phone, "first").await;
    let (last_seen, first, conversation) = next_message(&mut live).await;
    assert_eq!(first.body, "first");
    drop(live); // the network drops

    for i in 1..=5 {
        h.customer_send("+6281234567003", &channel.phone, &format!("missed {i}")).await;
    }
    eventually(Duration::from_secs(20), "the missed messages to be stored", || async {
        let stored = h.store.messages(channel.workspace_id, conversation, None, 50).await.unwrap();
        (stored.len() == 6).then_some(())
    })
    .await;

    let mut live = h.live(&admin, Some(&last_seen)).await;
    let mut previous = last_seen.clone();
    for i in 1..=5 {
        let (id, message, _) = next_message(&mut live).await;
        assert!(stream_id_cmp(&id, &previous).is_gt(), "events out of order");
        assert_eq!(message.body, format!("missed {i}"));
        previous = id;
    }
    // Then live again.
    h.customer_send("+6281234567003", &channel.phone, "live again").await;
    assert_eq!(next_message(&mut live).await.1.body, "live again");
    worker.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_queues_nothing() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 4000 001", 5).await;
    let id = channel.id.0.to_string();
    let fields = |body: &Value| -> Vec<(String, String)> {
        assert_eq!(body["error"], "invalid", "{body}");
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["issue"]["kind"].as_str().unwrap().to_owned()))
            .collect()
    };

    let (status, body) = h.call(&admin, "send_message", &[("channel_id", &id), ("to", "12"), ("text", " ")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), [("phone".into(), "invalid_phone".into()), ("text".into(), "required".into())]);
    let long = "x".repeat(4097);
    let (status, body) =
        h.call(&admin, "send_message", &[("channel_id", &id), ("to", "+6281234567004"), ("text", &long)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), [("text".into(), "too_long".into())]);
    let (status, body) =
        h.call(&admin, "send_message", &[("channel_id", "999"), ("to", "+6281234567004"), ("text", "hi")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // Another workspace's channel is as good as unknown.
    let (status, body) =
        h.call(&other, "send_message", &[("channel_id", &id), ("to", "+6281234567004"), ("text", "hi")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) =
        h.call(&admin, "send_message", &[("channel_id", "abc"), ("to", "+6281234567004"), ("text", "hi")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Only admins add channels, with valid fields, and a number only once.
    let (status, body) =
        h.call(&admin, "create_sandbox_channel", &[("name", ""), ("phone", "+62 811 4000 001"), ("rate", "500")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), [("name".into(), "required".into()), ("rate_limit".into(), "out_of_range".into())]);
    let (status, body) =
        h.call(&admin, "create_sandbox_channel", &[("name", "Again"), ("phone", "+62 811 4000 001")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), [("phone".into(), "taken".into())]);

    // Nothing was queued or stored.
    assert_eq!(h.bus.send_backlog(channel.id).await.unwrap(), 0);
    let customer = PhoneNumber::parse("+6281234567004").unwrap();
    assert!(h.store.conversation_with(channel.id, &customer).await.unwrap().is_none());

    // The sandbox API names the field it cannot use.
    let response = h
        .http
        .post(format!("{}/sandbox/api/messages", h.base()))
        .json(&serde_json::json!({ "from": "nope", "to": channel.phone.as_str(), "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.json::<Value>().await.unwrap()["field"], "from");
    let response = h
        .http
        .post(format!("{}/sandbox/api/messages", h.base()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The WebSocket: no session, no socket; a frame it cannot read gets an error and the
    // connection keeps working.
    let anonymous = h.http.get(format!("{}/ws", h.base())).header("connection", "upgrade").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let mut live = h.live(&admin, None).await;
    live.send_text("{not json").await;
    assert!(matches!(live.frame().await, ServerFrame::Error { .. }));
    live.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(live.frame().await, ServerFrame::Pong);
}

#[tokio::test]
async fn no_channel_sends_more_than_its_limit_in_any_second() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let mut channels = Vec::new();
    for i in 1..=3 {
        channels.push(h.create_channel(&admin, &format!("Bulk {i}"), &format!("+62 811 5000 00{i}"), 5).await);
    }
    // 150 messages per channel at 5 per second: 30 seconds of sending.
    for (c, channel) in channels.iter().enumerate() {
        let id = channel.id.0.to_string();
        let to = format!("+628123456{c}100");
        for n in 0..150 {
            let text = format!("promo {n}");
            let (status, body) =
                h.call(&admin, "send_message", &[("channel_id", &id), ("to", &to), ("text", &text)]).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let worker = h.worker();
    for (c, _) in channels.iter().enumerate() {
        let to = PhoneNumber::parse(&format!("+628123456{c}100")).unwrap();
        let times = eventually(Duration::from_secs(90), "every message to arrive", || async {
            let messages = h.bus.sandbox_messages(&to).await.unwrap();
            (messages.len() == 150).then(|| messages.iter().map(|m| m.at.0).collect::<Vec<_>>())
        })
        .await;
        let mut times = times;
        times.sort_unstable();
        let worst =
            times.iter().enumerate().map(|(i, t)| times[i..].iter().take_while(|u| **u < t + 1000).count()).max();
        assert!(worst.unwrap() <= 5, "channel {c} sent {worst:?} messages within one second");
    }
    worker.stop().await;
}
