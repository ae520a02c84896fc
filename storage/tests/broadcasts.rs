//! Storage conformance for broadcasts, on SQLite and on PostgreSQL: recipients stored once per
//! number (opted-out and invalid ones skipped), a recipient queued once whatever happens, the
//! counts following the messages' statuses, state changes only from the allowed states, the
//! sending rules, and another workspace reaching none of it.

use balas_domain::{
    Audience, BroadcastStatus, Channel, ContactFilter, ContactId, ConversationStatus, LabelColor, LabelName,
    MessageStatus, MissingRule, RecipientState, SenderKind, SendingRules, SkipReason, Timestamp, WorkspaceId,
};
use balas_storage::{AudienceQuery, MessageKey, NewBroadcast, NewInbound, NewOutbound, Store, StoreError};
use balas_testkit::conformance;

mod common;

conformance!(recipients_are_stored_and_queued_once, broadcasts_change_state_and_stay_in_their_workspace);

use common::{T0, channel, phone, workspace};

async fn customer(store: &Store, channel: &Channel, number: &str, name: Option<&str>) -> ContactId {
    let from = phone(number);
    let wa_id = format!("WA-{number}");
    let message = NewInbound { channel, wa_id: &wa_id, from: &from, push_name: name, text: "halo", media: None };
    store.store_inbound(&message, T0).await.unwrap().unwrap();
    store.contact_by_phone(channel.workspace_id, &from).await.unwrap().unwrap().id
}

fn new_broadcast<'a>(
    ws: WorkspaceId,
    channel: &Channel,
    name: &'a LabelName,
    audience: &'a Audience,
    query: AudienceQuery<'a>,
    send_at: Timestamp,
) -> NewBroadcast<'a> {
    static SKIP: MissingRule = MissingRule::Skip;
    NewBroadcast {
        workspace_id: ws,
        channel_id: channel.id,
        name,
        text: "Hi {{name}}",
        missing: &SKIP,
        audience,
        query,
        send_at,
        created_by: None,
        duplicates: 0,
    }
}

async fn recipients_are_stored_and_queued_once(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let ana = customer(&store, &sales, "+6281200000001", Some("Ana")).await;
    let budi = customer(&store, &sales, "+6281200000002", Some("Budi")).await;
    let citra = customer(&store, &sales, "+6281200000003", None).await;
    customer(&store, &sales, "+6281200000004", Some("Dewi")).await;
    store.set_opted_out(ws, citra, true, T0).await.unwrap();
    let vip = store
        .create_label(ws, &LabelName::parse("VIP").unwrap(), &LabelColor::parse("red").unwrap(), T0)
        .await
        .unwrap();
    store.label_contacts(ws, vip, &[ana, budi, citra], true).await.unwrap();

    // Labels: the opted-out contact is a recipient, skipped with the reason.
    let name = LabelName::parse("Promo").unwrap();
    let audience = Audience::Labels { labels: vec![vip] };
    let labels = [vip];
    let new = new_broadcast(ws, &sales, &name, &audience, AudienceQuery::Labels(&labels), T0);
    let promo = store.create_broadcast(&new, T0).await.unwrap();
    assert_eq!(promo.status, BroadcastStatus::Running);
    assert_eq!((promo.counts.total, promo.counts.pending, promo.counts.skipped), (3, 2, 1));
    let skipped = store.broadcast_recipients(ws, promo.id, Some(RecipientState::Skipped), 0, 10).await.unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].phone.as_str(), skipped[0].skipped.clone()), ("+6281200000003", Some(SkipReason::OptedOut)));

    // The whole workspace, and a filter (a segment's) agree with the contact list.
    let everyone = Audience::All;
    let all =
        store.create_broadcast(&new_broadcast(ws, &sales, &name, &everyone, AudienceQuery::All, T0), T0).await.unwrap();
    assert_eq!((all.counts.total, all.counts.skipped), (4, 1));
    let filter = ContactFilter { search: "budi".into(), ..ContactFilter::default() };
    let segment = Audience::Segment { segment_id: 1 };
    let one = store
        .create_broadcast(&new_broadcast(ws, &sales, &name, &segment, AudienceQuery::Filter(&filter), T0), T0)
        .await
        .unwrap();
    assert_eq!(one.counts.total, 1);
    let (total, opted_out, samples) =
        store.audience_contacts(ws, &AudienceQuery::Labels(&labels), 5, T0).await.unwrap();
    assert_eq!((total, opted_out, samples.len()), (3, 1, 2));

    // A list: known and new numbers; invalid ones are kept as written, skipped.
    let valid = [phone("+6281200000001"), phone("+6281200000003"), phone("+6281299999999")];
    let invalid = ["0812-oops".to_owned()];
    let list = Audience::List { phones: vec![] };
    let query = AudienceQuery::List { valid: &valid, invalid: &invalid };
    let listed = store.create_broadcast(&new_broadcast(ws, &sales, &name, &list, query, T0), T0).await.unwrap();
    assert_eq!((listed.counts.total, listed.counts.pending, listed.counts.skipped), (4, 2, 2));
    let shown = store.broadcast_recipients(ws, listed.id, None, 0, 10).await.unwrap();
    assert!(shown.iter().any(|r| r.phone == "0812-oops" && r.skipped == Some(SkipReason::InvalidNumber)));
    assert!(shown.iter().any(|r| r.phone == "+6281200000001" && r.name.as_deref() == Some("Ana")));

    // Queued once: the second claim of the same recipient stores nothing.
    let pending = store.pending_recipients(promo.id, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let first = pending.iter().find(|r| r.contact.as_ref().and_then(|c| c.name.as_deref()) == Some("Ana")).unwrap();
    let outbound = NewOutbound {
        workspace_id: ws,
        channel_id: sales.id,
        to: &first.phone,
        text: "Hi Ana",
        media: None,
        sender: SenderKind::Broadcast,
        sender_user: None,
        wa_id: "3EB0BROADCAST1",
    };
    let (message, conversation) =
        store.queue_broadcast_message(first.id, &outbound, T0.plus_millis(10)).await.unwrap().unwrap();
    // Ana's conversation existed (she wrote first): it stays open.
    assert_eq!(conversation.status, ConversationStatus::Open);
    let again = NewOutbound { wa_id: "3EB0BROADCAST2", ..outbound.clone() };
    assert!(store.queue_broadcast_message(first.id, &again, T0.plus_millis(11)).await.unwrap().is_none());
    let in_flight = store.in_flight(promo.id).await.unwrap();
    assert_eq!(in_flight.iter().map(|m| m.message_id).collect::<Vec<_>>(), [message.id]);
    assert_eq!(in_flight[0].wa_id, "3EB0BROADCAST1");

    // A number that never wrote gets a conversation that starts resolved.
    let stranger = store.pending_recipients(listed.id, 10).await.unwrap();
    let new_number = stranger.iter().find(|r| r.contact.is_none()).expect("the unknown number");
    let to_stranger = NewOutbound { to: &new_number.phone, wa_id: "3EB0BROADCAST3", ..outbound.clone() };
    let (_, fresh) = store.queue_broadcast_message(new_number.id, &to_stranger, T0).await.unwrap().unwrap();
    assert_eq!(fresh.status, ConversationStatus::Resolved);

    // The counts follow the message; the chart counts it when it left.
    store.advance_message(MessageKey::Id(message.id), MessageStatus::Sent, None, T0.plus_millis(2_500)).await.unwrap();
    assert!(store.in_flight(promo.id).await.unwrap().is_empty());
    let promo = store.broadcast(ws, promo.id).await.unwrap();
    assert_eq!((promo.counts.sent, promo.counts.pending, promo.counts.queued), (1, 1, 0));
    assert_eq!(promo.started_at, Some(T0), "it started when it was created");
    let series = store.send_series(&promo, 1_000).await.unwrap();
    assert_eq!(series.counts, vec![0, 0, 1]);
    store.advance_message(MessageKey::Id(message.id), MessageStatus::Failed, Some("no"), T0).await.unwrap();
    assert_eq!(store.broadcast(ws, promo.id).await.unwrap().counts.failed, 0, "a status never goes back");
    assert_eq!(store.recent_failures(promo.id, 10).await.unwrap(), vec![false]);
    assert_eq!(store.bulk_sends_since(sales.id, T0).await.unwrap(), 2);
    assert_eq!(store.bulk_sends_since(sales.id, T0.plus_millis(11)).await.unwrap(), 0);

    // Skipping and cancelling touch only pending recipients.
    let next = store.pending_recipients(promo.id, 10).await.unwrap();
    store.skip_recipient(next[0].id, &SkipReason::Missing { key: "tier".into() }).await.unwrap();
    store.skip_recipient(first.id, &SkipReason::TooLong).await.unwrap();
    let promo = store.broadcast(ws, promo.id).await.unwrap();
    assert_eq!((promo.counts.skipped, promo.counts.sent, promo.counts.pending), (2, 1, 0));
    assert_eq!(store.cancel_recipients(all.id, &[]).await.unwrap(), 3);
    let all = store.broadcast(ws, all.id).await.unwrap();
    assert_eq!((all.counts.cancelled, all.counts.skipped, all.counts.pending), (3, 1, 0));
}

async fn broadcasts_change_state_and_stay_in_their_workspace(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let other = workspace(&store, "Lain", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    customer(&store, &sales, "+6281200000001", Some("Ana")).await;
    let name = LabelName::parse("Later").unwrap();
    let audience = Audience::All;
    let later = T0.plus_millis(60_000);
    let new = new_broadcast(ws, &sales, &name, &audience, AudienceQuery::All, later);
    let scheduled = store.create_broadcast(&new, T0).await.unwrap();
    assert_eq!(scheduled.status, BroadcastStatus::Scheduled);
    assert!(store.due_broadcasts(T0).await.unwrap().is_empty(), "not before its time");
    assert_eq!(store.due_broadcasts(later).await.unwrap(), vec![(ws, scheduled.id)]);
    let running = store.broadcast(ws, scheduled.id).await.unwrap();
    assert_eq!((running.status, running.started_at), (BroadcastStatus::Running, Some(later)));

    // Only from the allowed states, with the reason kept.
    let paused = store
        .set_broadcast_status(ws, running.id, &[BroadcastStatus::Running], BroadcastStatus::Paused, Some("by Ana"), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((paused.status, paused.paused_reason.as_deref()), (BroadcastStatus::Paused, Some("by Ana")));
    let twice = store
        .set_broadcast_status(ws, running.id, &[BroadcastStatus::Running], BroadcastStatus::Paused, None, T0)
        .await
        .unwrap();
    assert!(twice.is_none());
    assert!(store.due_broadcasts(later).await.unwrap().is_empty(), "a paused broadcast is not planned");
    assert!(!store.set_broadcast_waiting(running.id, Some("outside hours")).await.unwrap(), "only a running one waits");
    let from = [BroadcastStatus::Paused];
    let done = store.set_broadcast_status(ws, running.id, &from, BroadcastStatus::Cancelled, None, T0).await.unwrap();
    assert!(done.unwrap().finished_at.is_some());

    // Another workspace sees and changes nothing.
    assert!(matches!(store.broadcast(other, running.id).await, Err(StoreError::NotFound)));
    assert!(store.broadcasts(other, 10).await.unwrap().is_empty());
    assert!(store.broadcast_recipients(other, running.id, None, 0, 10).await.unwrap().is_empty());
    let from = [BroadcastStatus::Cancelled];
    assert!(
        store
            .set_broadcast_status(other, running.id, &from, BroadcastStatus::Running, None, T0)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.broadcasts(ws, 10).await.unwrap().len(), 1);

    // Sending rules: the defaults until set, then what was set, per workspace.
    assert_eq!(store.sending_rules(ws).await.unwrap(), SendingRules::default());
    let office = SendingRules { time_zone: "Asia/Makassar".into(), from_hour: 8, to_hour: 20, daily_cap: 300 };
    store.set_sending_rules(ws, &office).await.unwrap();
    store.set_sending_rules(ws, &office).await.unwrap();
    assert_eq!(store.sending_rules(ws).await.unwrap(), office);
    assert_eq!(store.sending_rules(other).await.unwrap(), SendingRules::default());
}
