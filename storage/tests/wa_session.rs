//! Storage conformance for the WhatsApp session store, on SQLite and on PostgreSQL: entries per
//! channel and space, prefixes matched literally, all-or-nothing batches, and fencing (a worker
//! whose claim was overtaken cannot write, and nothing of its batch lands).

use balas_storage::{Conflict, SessionWrite, Store, StoreError};
use balas_testkit::conformance;

mod common;
use common::{channel, workspace};

conformance!(entries_are_kept_per_channel_and_space, a_stale_claim_cannot_write, forgetting_clears_only_that_session);

fn put(space: &'static str, key: &str, value: &[u8]) -> SessionWrite {
    SessionWrite::Put { space, key: key.to_owned(), value: value.to_vec() }
}

async fn entries_are_kept_per_channel_and_space(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let one = channel(&store, ws, "+6281100000001").await.id;
    let two = channel(&store, ws, "+6281100000002").await.id;
    let (f1, f2) = (store.claim_wa_session(one).await.unwrap(), store.claim_wa_session(two).await.unwrap());
    let binary: Vec<u8> = (0..=255).collect();
    store
        .write_wa_session(
            one,
            f1,
            &[
                put("session", "628123@s.whatsapp.net", &binary),
                put("session", "628123:5@s.whatsapp.net", b"b"),
                put("session", "6281234@s.whatsapp.net", b"c"),
                put("session", "A_B%", b"literal"),
                put("session", "axb", b"not a prefix match"),
                put("identity", "628123@s.whatsapp.net", b"id"),
            ],
        )
        .await
        .unwrap();
    store.write_wa_session(two, f2, &[put("session", "628123@s.whatsapp.net", b"other")]).await.unwrap();

    assert_eq!(store.wa_session_entry(one, "session", "628123@s.whatsapp.net").await.unwrap(), Some(binary));
    assert_eq!(store.wa_session_entry(two, "session", "628123@s.whatsapp.net").await.unwrap(), Some(b"other".to_vec()));
    assert_eq!(store.wa_session_entry(one, "identity", "missing").await.unwrap(), None);
    let keys = |entries: Vec<(String, Vec<u8>)>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(store.wa_session_entries(one, "session", "628123").await.unwrap()),
        ["6281234@s.whatsapp.net", "628123:5@s.whatsapp.net", "628123@s.whatsapp.net"]
    );
    // `_` and `%` are not wildcards, and case counts.
    assert_eq!(keys(store.wa_session_entries(one, "session", "A_").await.unwrap()), ["A_B%"]);
    assert!(store.wa_session_entries(one, "session", "a_").await.unwrap().is_empty());
    assert_eq!(store.wa_session_entries(one, "session", "").await.unwrap().len(), 5);

    // Overwrite, delete and clear.
    store
        .write_wa_session(
            one,
            f1,
            &[
                put("session", "axb", b"new"),
                SessionWrite::Delete { space: "session", key: "A_B%".into() },
                SessionWrite::Clear { space: "identity" },
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.wa_session_entry(one, "session", "axb").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(store.wa_session_entry(one, "session", "A_B%").await.unwrap(), None);
    assert!(store.wa_session_entries(one, "identity", "").await.unwrap().is_empty());
    assert_eq!(store.wa_session_size(one).await.unwrap(), 4);
    assert_eq!(store.wa_session_size(two).await.unwrap(), 1);
}

async fn a_stale_claim_cannot_write(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let id = channel(&store, ws, "+6281100000001").await.id;
    let old = store.claim_wa_session(id).await.unwrap();
    store.write_wa_session(id, old, &[put("device", "", b"v1")]).await.unwrap();
    let new = store.claim_wa_session(id).await.unwrap();
    assert!(new > old);
    // The old holder's whole batch is refused: not even its first write lands.
    let stale = store.write_wa_session(id, old, &[put("device", "", b"stale"), put("prekey", "1", b"x")]).await;
    assert!(matches!(stale, Err(StoreError::Conflict(Conflict::SessionTaken))), "{stale:?}");
    assert!(matches!(store.forget_wa_session(id, old).await, Err(StoreError::Conflict(Conflict::SessionTaken))));
    assert_eq!(store.wa_session_entry(id, "device", "").await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(store.wa_session_entry(id, "prekey", "1").await.unwrap(), None);
    store.write_wa_session(id, new, &[put("device", "", b"v2")]).await.unwrap();
    assert_eq!(store.wa_session_entry(id, "device", "").await.unwrap(), Some(b"v2".to_vec()));
    // A token for a channel that was never claimed, or a channel that does not exist.
    let other = channel(&store, ws, "+6281100000002").await.id;
    assert!(store.write_wa_session(other, new, &[put("device", "", b"x")]).await.is_err());
    assert!(matches!(store.claim_wa_session(balas_domain::ChannelId(9_999)).await, Err(StoreError::NotFound)));
}

async fn forgetting_clears_only_that_session(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let one = channel(&store, ws, "+6281100000001").await.id;
    let two = channel(&store, ws, "+6281100000002").await.id;
    let (f1, f2) = (store.claim_wa_session(one).await.unwrap(), store.claim_wa_session(two).await.unwrap());
    store.write_wa_session(one, f1, &[put("device", "", b"a"), put("prekey", "1", b"k")]).await.unwrap();
    store.write_wa_session(two, f2, &[put("device", "", b"b")]).await.unwrap();
    store.forget_wa_session(one, f1).await.unwrap();
    assert_eq!(store.wa_session_size(one).await.unwrap(), 0);
    assert_eq!(store.wa_session_entry(two, "device", "").await.unwrap(), Some(b"b".to_vec()));
    // The holder keeps its claim: it can link the number again.
    store.write_wa_session(one, f1, &[put("device", "", b"again")]).await.unwrap();
    assert_eq!(store.wa_session_size(one).await.unwrap(), 1);
}
