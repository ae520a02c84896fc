//! Storage conformance for channels and messages, on SQLite and on PostgreSQL: inbound messages
//! are stored once, statuses only move forward, sending is scoped to the channel's workspace, and
//! concurrent ingest of one contact's first messages makes one contact and one conversation,
//! files are kept with their messages, and ingest's batches are stored in order, all or nothing.

use balas_domain::{
    ChannelName, ChannelState, ConversationStatus, Media, MediaKind, MediaName, MessageStatus, MessageText, Provider,
    RatePerSecond,
};
use balas_storage::{
    Conflict, Ingested, IngestedOutcome, MessageKey, NewChannel, NewInbound, NewOutbound, Store, StoreError,
};

use balas_testkit::conformance;

mod common;

conformance!(
    inbound_messages_are_stored_once,
    statuses_only_move_forward,
    sending_is_scoped_to_the_workspace,
    channel_numbers_are_unique_and_states_recorded,
    concurrent_first_messages_make_one_conversation,
    files_are_kept_with_their_messages,
    ingest_batches_are_stored_in_order_all_or_nothing,
);

use common::{T0, channel, phone, reply, workspace};

async fn inbound_messages_are_stored_once(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let customer = phone("+6281234567890");
    let message = NewInbound {
        channel: &sales,
        wa_id: "WA1",
        from: &customer,
        push_name: Some("Sari"),
        text: "Halo 👋",
        media: None,
    };
    let (stored, conversation) = store.store_inbound(&message, T0).await.unwrap().expect("first time stored");
    assert_eq!((stored.body.as_str(), stored.status), ("Halo 👋", MessageStatus::Received));
    assert_eq!((conversation.unread, conversation.contact_name.as_deref()), (1, Some("Sari")));
    assert!(store.store_inbound(&message, T0.plus_millis(5)).await.unwrap().is_none(), "second time: nothing");
    let again = store.message_by_wa_id(sales.id, "WA1").await.unwrap().unwrap();
    assert_eq!(again.0.id, stored.id);
    let history = store.messages(ws, conversation.id, None, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    // A second message counts as unread too, and a resolved conversation opens again.
    let second = NewInbound { wa_id: "WA2", text: "masih ada?", ..message };
    let (_, conversation) = store.store_inbound(&second, T0.plus_millis(10)).await.unwrap().unwrap();
    assert_eq!((conversation.unread, conversation.status), (2, ConversationStatus::Open));
    assert_eq!(conversation.last_message_at, T0.plus_millis(10));
    // The same WhatsApp id on another channel is another message.
    let other = channel(&store, ws, "+6281100000002").await;
    let elsewhere = NewInbound { channel: &other, ..message };
    assert!(store.store_inbound(&elsewhere, T0).await.unwrap().is_some());
}

async fn files_are_kept_with_their_messages(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let customer = phone("+6281234567890");
    let photo = Media {
        kind: MediaKind::Image,
        mime: "image/jpeg".into(),
        file_name: None,
        size: 48_213,
        name: MediaName::new([9; 16], "image/jpeg"),
    };
    let inbound =
        NewInbound { channel: &sales, wa_id: "WA1", from: &customer, push_name: None, text: "", media: Some(&photo) };
    let (stored, conversation) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();
    assert_eq!((stored.body.as_str(), stored.media.as_ref()), ("", Some(&photo)));
    assert_eq!(conversation.last_preview.as_deref(), Some("📷 Photo"));
    let text = MessageText::parse("x").unwrap();
    let document = Media {
        kind: MediaKind::Document,
        mime: "application/pdf".into(),
        file_name: Some("invoice.pdf".into()),
        name: MediaName::new([8; 16], "application/pdf"),
        ..photo.clone()
    };
    let outbound =
        NewOutbound { text: "your invoice", media: Some(&document), ..reply(ws, sales.id, &customer, &text, "OUT1") };
    let (queued, conversation) = store.queue_message(&outbound, T0.plus_millis(5)).await.unwrap();
    assert_eq!(queued.media.as_ref(), Some(&document));
    assert_eq!(conversation.last_preview.as_deref(), Some("📄 invoice.pdf · your invoice"));
    let history = store.messages(ws, conversation.id, None, 10).await.unwrap();
    let files: Vec<_> = history.iter().map(|m| m.media.clone()).collect();
    assert!(files.contains(&Some(photo)) && files.contains(&Some(document)), "{files:?}");
}

async fn statuses_only_move_forward(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let (to, text) = (phone("+6281234567890"), MessageText::parse("Pesanan dikirim").unwrap());
    let outbound = reply(ws, sales.id, &to, &text, "OUT1");
    let (message, _) = store.queue_message(&outbound, T0).await.unwrap();
    assert_eq!(message.status, MessageStatus::Queued);
    let by_wa = MessageKey::WaId(sales.id, "OUT1");
    // A delivery receipt that overtakes the "sent" report: delivered, and "sent" is then too late.
    let change = store.advance_message(by_wa, MessageStatus::Delivered, None, T0).await.unwrap().unwrap();
    assert_eq!((change.message_id, change.status), (message.id, MessageStatus::Delivered));
    assert!(store.advance_message(by_wa, MessageStatus::Sent, None, T0).await.unwrap().is_none());
    assert!(store.advance_message(by_wa, MessageStatus::Delivered, None, T0).await.unwrap().is_none(), "repeat");
    let failed = store.advance_message(MessageKey::Id(message.id), MessageStatus::Failed, Some("x"), T0).await.unwrap();
    assert!(failed.is_none(), "a delivered message did not fail");
    assert!(store.advance_message(by_wa, MessageStatus::Read, None, T0).await.unwrap().is_some());
    assert_eq!(store.message(ws, message.id).await.unwrap().unwrap().status, MessageStatus::Read);

    // A queued message can fail, with its reason kept.
    let doomed = NewOutbound { wa_id: "OUT2", ..outbound };
    let (doomed, _) = store.queue_message(&doomed, T0).await.unwrap();
    let reason = "this number is not on WhatsApp";
    let change =
        store.advance_message(MessageKey::Id(doomed.id), MessageStatus::Failed, Some(reason), T0).await.unwrap();
    assert_eq!(change.unwrap().error.as_deref(), Some(reason));
    let stored = store.message(ws, doomed.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.error.as_deref()), (MessageStatus::Failed, Some(reason)));
    // Receipts never touch inbound messages.
    let customer = phone("+6281234567891");
    let inbound =
        NewInbound { channel: &sales, wa_id: "IN1", from: &customer, push_name: None, text: "hi", media: None };
    store.store_inbound(&inbound, T0).await.unwrap();
    assert!(
        store
            .advance_message(MessageKey::WaId(sales.id, "IN1"), MessageStatus::Read, None, T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn sending_is_scoped_to_the_workspace(store: Store) {
    let mine = workspace(&store, "Toko", "a@example.com").await;
    let theirs = workspace(&store, "Other", "b@example.com").await;
    let their_channel = channel(&store, theirs, "+6281100000009").await;
    let (to, text) = (phone("+6281234567890"), MessageText::parse("hi").unwrap());
    let outbound = reply(mine, their_channel.id, &to, &text, "X1");
    assert!(matches!(store.queue_message(&outbound, T0).await, Err(StoreError::NotFound)));
    assert!(store.channels(mine).await.unwrap().is_empty());
    assert!(store.conversation_with(their_channel.id, &to).await.unwrap().is_none(), "nothing was left behind");
    let (message, _) = store.queue_message(&NewOutbound { workspace_id: theirs, ..outbound }, T0).await.unwrap();
    assert!(store.message(mine, message.id).await.unwrap().is_none(), "not readable from another workspace");
    assert!(store.message(theirs, message.id).await.unwrap().is_some());
}

async fn channel_numbers_are_unique_and_states_recorded(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let other = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    assert_eq!(sales.state, ChannelState::Idle);
    let (name, number) = (ChannelName::parse("Copy").unwrap(), phone("+6281100000001"));
    let copy = NewChannel {
        workspace_id: other,
        name: &name,
        provider: Provider::Sandbox,
        phone: &number,
        rate: RatePerSecond::DEFAULT,
        link_method: balas_domain::LinkMethod::Qr,
    };
    assert!(matches!(store.create_channel(&copy, T0).await, Err(StoreError::Conflict(Conflict::PhoneTaken))));
    assert!(store.set_channel_state(sales.id, ChannelState::Connected, None).await.unwrap());
    assert!(!store.set_channel_state(sales.id, ChannelState::Connected, None).await.unwrap(), "no change");
    assert!(store.set_channel_state(sales.id, ChannelState::Banned, Some("until noon")).await.unwrap());
    let stored = store.channel(sales.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.state_detail.as_deref()), (ChannelState::Banned, Some("until noon")));
    assert_eq!(store.all_channels().await.unwrap().len(), 1);
}

async fn concurrent_first_messages_make_one_conversation(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let customer = phone("+6281234567890");
    let ids: Vec<String> = (0..8).map(|i| format!("C{i}")).collect();
    let writes = ids.iter().map(|wa_id| {
        let store = store.clone();
        let sales = sales.clone();
        let customer = customer.clone();
        async move {
            let message =
                NewInbound { channel: &sales, wa_id, from: &customer, push_name: None, text: "burst", media: None };
            store.store_inbound(&message, T0).await
        }
    });
    let results = futures::future::join_all(writes).await;
    let conversations: std::collections::HashSet<_> =
        results.into_iter().map(|r| r.expect("stored").expect("new").1.id).collect();
    assert_eq!(conversations.len(), 1, "one contact, one conversation");
    let conversation = store.conversation_with(sales.id, &customer).await.unwrap().unwrap();
    assert_eq!(conversation.unread, 8);
}

async fn ingest_batches_are_stored_in_order_all_or_nothing(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let customer = phone("+6281234567890");
    let (text, to) = (MessageText::parse("Pesanan dikirim").unwrap(), phone("+6281234567899"));
    let (reply, _) = store.queue_message(&reply(ws, sales.id, &to, &text, "OUT1"), T0).await.unwrap();
    let first = NewInbound {
        channel: &sales,
        wa_id: "WA1",
        from: &customer,
        push_name: Some("Sari"),
        text: "Halo",
        media: None,
    };
    let second = NewInbound { wa_id: "WA2", text: "masih ada?", ..first.clone() };
    let by_wa = MessageKey::WaId(sales.id, "OUT1");
    let batch = [
        Ingested::Inbound(first.clone()),
        Ingested::Status { key: by_wa, status: MessageStatus::Sent, error: None },
        Ingested::Inbound(second),
        // Redelivered: found, not stored again, and the conversation is not touched.
        Ingested::Inbound(NewInbound { push_name: Some("Someone else"), ..first.clone() }),
        Ingested::Status { key: by_wa, status: MessageStatus::Read, error: None },
        // Too late: no change.
        Ingested::Status { key: by_wa, status: MessageStatus::Delivered, error: None },
    ];
    let outcomes = store.store_ingested(&batch, T0).await.unwrap();
    let inbound = |i: usize| match &outcomes[i] {
        IngestedOutcome::Inbound(Some((message, conversation))) => (message.clone(), conversation.clone()),
        other => panic!("item {i}: {other:?}"),
    };
    let status = |i: usize| match &outcomes[i] {
        IngestedOutcome::Status(change) => change.as_ref().map(|c| (c.message_id, c.status)),
        other => panic!("item {i}: {other:?}"),
    };
    let ((one, _), (two, conversation), (again, after)) = (inbound(0), inbound(2), inbound(3));
    assert_eq!((one.body.as_str(), two.body.as_str()), ("Halo", "masih ada?"));
    assert_eq!((conversation.unread, conversation.contact_name.as_deref()), (2, Some("Sari")));
    assert_eq!((again.id, after.unread, after.contact_name.as_deref()), (one.id, 2, Some("Sari")));
    assert_eq!(status(1), Some((reply.id, MessageStatus::Sent)));
    assert_eq!(status(4), Some((reply.id, MessageStatus::Read)));
    assert_eq!(status(5), None);
    assert_eq!(store.messages(ws, conversation.id, None, 10).await.unwrap().len(), 2, "stored once each");

    // One item the database refuses (its channel is not in the database) and the whole batch is
    // left unstored, for ingest to try one event at a time.
    let ghost = balas_domain::Channel { id: balas_domain::ChannelId(sales.id.0 + 1000), ..sales.clone() };
    let third = NewInbound { wa_id: "WA3", text: "halo lagi", ..first.clone() };
    let refused = [
        Ingested::Inbound(third.clone()),
        Ingested::Inbound(NewInbound { channel: &ghost, wa_id: "WA4", ..first.clone() }),
    ];
    let error = store.store_ingested(&refused, T0.plus_millis(10)).await.unwrap_err();
    assert!(error.is_refusal(), "{error:?}");
    assert!(store.message_by_wa_id(sales.id, "WA3").await.unwrap().is_none(), "nothing of the batch is stored");
    let summary = store.conversation(ws, conversation.id).await.unwrap().unwrap();
    assert_eq!((summary.unread, summary.last_message_at), (2, T0));
    // Alone, the good one is stored.
    assert!(store.store_inbound(&third, T0.plus_millis(20)).await.unwrap().is_some());
}
