//! The shared inbox against the whole pipeline (server, worker, sandbox network, real Redis and
//! SQLite): opening a conversation sends read receipts once, an agent's typing reaches the phone,
//! notes never do, a failed send can be retried, and another workspace can touch none of it.

mod common;

use std::time::Duration;

use balas_domain::{
    Activity, ClientFrame, ConversationView, LiveEvent, Message, MessageStatus, PhoneNumber, ReceiptKind,
    SandboxPacket, ServerFrame,
};
use common::{Harness, eventually, next_message, wait_connected};
use reqwest::StatusCode;

/// Whether the customer's phone got a packet matching `wanted`.
async fn phone_got(h: &Harness, phone: &PhoneNumber, wanted: impl Fn(&SandboxPacket) -> bool) -> bool {
    h.bus.sandbox_inbox(phone).await.unwrap().iter().any(|entry| wanted(&entry.packet))
}

#[tokio::test]
async fn agents_work_a_conversation_and_the_customer_sees_only_what_is_meant_for_them() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 001", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let customer = PhoneNumber::parse("+6281234567031").unwrap();
    let first = h.customer_send(customer.as_str(), &channel.phone, "Halo, ada yang bisa bantu?").await;
    let (_, _, conversation) = next_message(&mut live).await;
    let id = conversation.0.to_string();

    // Opening the conversation marks it read: the other agents hear it, the customer gets blue
    // ticks, once however often it is opened.
    let (status, body) = h.call(&admin, "conversation", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: ConversationView = serde_json::from_value(body).unwrap();
    assert_eq!((view.messages.len(), view.conversation.unread, view.more), (1, 0, false));
    loop {
        if let LiveEvent::ConversationUpdated { conversation: updated } = live.event().await.event {
            assert_eq!((updated.id, updated.unread), (conversation, 0));
            break;
        }
    }
    let read = |p: &SandboxPacket| matches!(p, SandboxPacket::Receipt { wa_id, receipt: ReceiptKind::Read, .. } if *wa_id == first);
    eventually(Duration::from_secs(10), "the customer gets a read receipt", || async {
        phone_got(&h, &customer, read).await.then_some(())
    })
    .await;
    h.call(&admin, "conversation", &[("id", &id)]).await;
    let receipts = h.bus.sandbox_inbox(&customer).await.unwrap().iter().filter(|e| read(&e.packet)).count();
    assert_eq!(receipts, 1, "one read receipt per message");

    // The agent types: other agents see who, the customer sees "typing…".
    let typing = ClientFrame::Activity { conversation_id: conversation, activity: Activity::Typing };
    live.send_text(&serde_json::to_string(&typing).unwrap()).await;
    loop {
        if let LiveEvent::AgentActivity { conversation_id, name, activity, .. } = live.event().await.event {
            assert_eq!((conversation_id, name.as_str(), activity), (conversation, "Ana Admin", Activity::Typing));
            break;
        }
    }
    eventually(Duration::from_secs(10), "the customer sees the agent typing", || async {
        phone_got(
            &h,
            &customer,
            |p| matches!(p, SandboxPacket::Typing { typing: true, from, .. } if *from == channel.phone),
        )
        .await
        .then_some(())
    })
    .await;

    // A private note is shown to agents and never sent; a reply after it is.
    let (status, body) =
        h.call(&admin, "reply", &[("conversation", &id), ("text", "VIP, be kind"), ("note", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let note: Message = serde_json::from_value(body).unwrap();
    assert!(note.note);
    let (status, _) = h.call(&admin, "reply", &[("conversation", &id), ("text", "Tentu kak"), ("note", "false")]).await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(10), "the reply reaches the phone", || async {
        let got = h.bus.sandbox_messages(&customer).await.unwrap();
        got.iter().any(|m| m.text == "Tentu kak").then_some(())
    })
    .await;
    let texts: Vec<String> = h.bus.sandbox_messages(&customer).await.unwrap().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["Tentu kak"], "the note never left");

    // Bad input is refused with the field, and nothing is queued.
    let backlog = h.bus.send_backlog(channel.id).await.unwrap();
    let (status, body) = h.call(&admin, "reply", &[("conversation", &id), ("text", "  "), ("note", "false")]).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("text")));
    let long = "x".repeat(4097);
    let (status, body) = h.call(&admin, "reply", &[("conversation", &id), ("text", &long), ("note", "false")]).await;
    assert_eq!(
        (status, body["errors"][0]["issue"]["kind"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long"))
    );
    let (status, _) = h.call(&admin, "set_status", &[("conversation", &id), ("status", "closed")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(h.bus.send_backlog(channel.id).await.unwrap() <= backlog);

    // Another workspace can neither read nor change it, and learns nothing about it.
    for (name, form) in [
        ("conversation", vec![("id", id.as_str())]),
        ("older_messages", vec![("conversation", id.as_str()), ("before", "999999")]),
        ("mark_read", vec![("conversation", id.as_str())]),
        ("reply", vec![("conversation", id.as_str()), ("text", "hi"), ("note", "false")]),
        ("assign", vec![("conversation", id.as_str())]),
        ("set_status", vec![("conversation", id.as_str()), ("status", "resolved")]),
    ] {
        let (status, body) = h.call(&other, name, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        assert!(!body.to_string().contains("Halo"), "{name} leaked: {body}");
    }
    let mut theirs = h.live(&other, None).await;
    theirs.send_text(&serde_json::to_string(&typing).unwrap()).await;
    assert!(matches!(theirs.frame().await, ServerFrame::Error { message } if message.contains("activity refused")));
    let unchanged = h.store.conversation(channel.workspace_id, conversation).await.unwrap().unwrap();
    assert_eq!(unchanged.status, balas_domain::ConversationStatus::Open);
    // Nor can its members be given the conversation.
    let olga = h.store.login_record(&balas_domain::Email::parse("olga@other.example").unwrap()).await.unwrap().unwrap();
    let (status, body) =
        h.call(&admin, "assign", &[("conversation", &id), ("assignee", &olga.user_id.0.to_string())]).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("assignee")));
    worker.stop().await;
}

/// Collects a message's live status changes until `wanted`.
async fn statuses_until(
    live: &mut common::Live,
    id: balas_domain::MessageId,
    wanted: MessageStatus,
    statuses: &mut Vec<MessageStatus>,
) {
    loop {
        if let LiveEvent::MessageStatus { message_id, status, .. } = live.event().await.event
            && message_id == id
        {
            statuses.push(status);
            if status == wanted {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_failed_send_can_be_retried_from_the_inbox() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 002", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let channel_id = channel.id.0.to_string();
    // A number that is not on WhatsApp fails for good.
    let (status, body) =
        h.call(&admin, "send_message", &[("channel_id", &channel_id), ("to", "+6281200000"), ("text", "Halo")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doomed: Message = serde_json::from_value(body).unwrap();
    let mut statuses = Vec::new();
    statuses_until(&mut live, doomed.id, MessageStatus::Failed, &mut statuses).await;
    // Retrying runs it again (a new job of the same message): queued, then failed again.
    let (status, body) = h.call(&admin, "retry", &[("message", &doomed.id.0.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    statuses_until(&mut live, doomed.id, MessageStatus::Failed, &mut statuses).await;
    assert_eq!(statuses, [MessageStatus::Failed, MessageStatus::Queued, MessageStatus::Failed]);
    // Only a failed message of the caller's workspace can be retried.
    let (status, _) = h.call(&admin, "retry", &[("message", "999999")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    worker.stop().await;
}
