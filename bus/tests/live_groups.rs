//! Consumer groups on the live event stream (as the webhook dispatcher reads it) on a real Redis:
//! what a stopped consumer read and never acknowledged is taken over by another, once it has
//! been idle long enough, and only then.

use balas_bus::Bus;
use balas_domain::{ChannelId, ConversationId, LiveEvent, WorkspaceId};

fn typing(conversation: i64) -> LiveEvent {
    LiveEvent::Typing { conversation_id: ConversationId(conversation), channel_id: ChannelId(1), typing: true }
}

#[tokio::test]
async fn a_stopped_consumers_events_are_taken_over() {
    let bus = Bus::connect(&balas_testkit::redis_url(), &balas_testkit::redis_prefix()).await.unwrap();
    bus.ensure_live_group("hooks").await.unwrap();
    bus.ensure_live_group("hooks").await.unwrap(); // a second instance starting: no error
    for conversation in 1..=3 {
        bus.publish_live(WorkspaceId(7), &typing(conversation)).await.unwrap();
    }
    // Instance A reads them, then dies before acknowledging.
    let (read, ids) = bus.read_live_group("hooks", "a", 10, false).await.unwrap();
    assert_eq!((read.len(), ids.len()), (3, 3));
    // Instance B sees nothing new, and cannot take A's events while they are fresh.
    let (fresh, _) = bus.read_live_group("hooks", "b", 10, true).await.unwrap();
    assert!(fresh.is_empty());
    let (early, early_ids) = bus.claim_stale_live("hooks", "b", 60_000, 10).await.unwrap();
    assert!(early.is_empty() && early_ids.is_empty(), "fresh events stay with their reader");
    // Once idle long enough, B takes them, in order, with their workspace.
    let (taken, taken_ids) = bus.claim_stale_live("hooks", "b", 0, 10).await.unwrap();
    assert_eq!(taken_ids, ids);
    assert_eq!(taken.iter().map(|e| (e.workspace_id, e.event.clone())).collect::<Vec<_>>(), {
        (1..=3).map(|c| (WorkspaceId(7), typing(c))).collect::<Vec<_>>()
    });
    // They are B's now: its own pending list has them, A's does not; acknowledged, they are gone.
    assert_eq!(bus.read_live_group("hooks", "b", 10, true).await.unwrap().1, ids);
    assert!(bus.read_live_group("hooks", "a", 10, true).await.unwrap().1.is_empty());
    bus.ack_live("hooks", &taken_ids).await.unwrap();
    assert!(bus.claim_stale_live("hooks", "c", 0, 10).await.unwrap().1.is_empty());
}
