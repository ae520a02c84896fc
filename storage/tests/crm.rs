//! Storage conformance for the CRM, on SQLite and on PostgreSQL: search, filters, sorting and
//! pages of the contact list; labels (unique names, bulk labelling, deletion); opt-out changes
//! that happen once; segments; and another workspace reaching none of it.

use balas_domain::{
    Channel, ContactFilter, ContactId, ContactSort, Email, LabelColor, LabelName, OptOutFilter, WorkspaceId,
};
use balas_storage::{Conflict, NewInbound, Store, StoreError};
use balas_testkit::conformance;

mod common;

conformance!(contacts_are_searched_filtered_sorted_and_paged, labels_and_opt_out_stay_in_their_workspace);

use common::{T0, channel, phone, workspace};

/// A customer writes to `channel` at `T0 + at` ms; returns the contact's id.
async fn customer(store: &Store, channel: &Channel, number: &str, name: Option<&str>, at: i64) -> ContactId {
    let from = phone(number);
    let wa_id = format!("WA-{number}-{at}");
    let message = NewInbound { channel, wa_id: &wa_id, from: &from, push_name: name, text: "halo", media: None };
    store.store_inbound(&message, T0.plus_millis(at)).await.unwrap().unwrap();
    store.contact_by_phone(channel.workspace_id, &from).await.unwrap().unwrap().id
}

fn filter(search: &str) -> ContactFilter {
    ContactFilter { search: search.into(), ..ContactFilter::default() }
}

async fn phones(store: &Store, ws: WorkspaceId, filter: &ContactFilter, page: u32, size: u32) -> (Vec<String>, i64) {
    let (list, total) = store.contacts(ws, filter, page, size, T0.plus_millis(1_000)).await.unwrap();
    (list.into_iter().map(|c| c.phone.to_string()).collect(), total)
}

async fn contacts_are_searched_filtered_sorted_and_paged(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let sari = customer(&store, &sales, "+6281234560001", Some("Sari Dewi"), 30).await;
    customer(&store, &sales, "+6281234560002", Some("Budi 100%"), 10).await;
    customer(&store, &sales, "+6281299990003", None, 20).await;
    let email = Email::parse("sari@shop.example").unwrap();
    store.edit_contact(ws, sari, Some("Sari Dewi"), &phone("+6281234560001"), Some(&email)).await.unwrap();
    let taken = store.edit_contact(ws, sari, None, &phone("+6281234560002"), None).await;
    assert!(matches!(taken, Err(StoreError::Conflict(Conflict::PhoneTaken))), "{taken:?}");

    // Search by name (any case), by email, by part of the number; LIKE's wildcards are literal.
    assert_eq!(phones(&store, ws, &filter("sARI"), 0, 10).await, (vec!["+6281234560001".into()], 1));
    assert_eq!(phones(&store, ws, &filter("shop.example"), 0, 10).await.1, 1);
    assert_eq!(phones(&store, ws, &filter("0812 3456"), 0, 10).await.1, 2);
    assert_eq!(phones(&store, ws, &filter("100%"), 0, 10).await, (vec!["+6281234560002".into()], 1));
    assert_eq!(phones(&store, ws, &filter("1_0"), 0, 10).await.1, 0);

    // Sorted by latest message (newest first), by name (nameless last), by creation; paged with
    // the total of all pages.
    let recent = ContactFilter::default();
    let (all, total) = phones(&store, ws, &recent, 0, 10).await;
    assert_eq!((all, total), (vec!["+6281234560001".into(), "+6281299990003".into(), "+6281234560002".into()], 3));
    let by_name = ContactFilter { sort: ContactSort::Name, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &by_name, 0, 10).await.0, ["+6281234560002", "+6281234560001", "+6281299990003"]);
    let by_created = ContactFilter { sort: ContactSort::Created, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &by_created, 0, 10).await.0[0], "+6281234560001");
    assert_eq!(phones(&store, ws, &recent, 1, 2).await, (vec!["+6281234560002".into()], 3));
    assert_eq!(phones(&store, ws, &recent, 5, 2).await, (vec![], 3));

    // A label filters; so does the opt-out state.
    let vip = store
        .create_label(ws, &LabelName::parse("VIP").unwrap(), &LabelColor::parse("purple").unwrap(), T0)
        .await
        .unwrap();
    assert_eq!(store.label_contacts(ws, vip, &[sari, sari], true).await.unwrap(), 1, "a label goes on once");
    let labelled = ContactFilter { label: Some(vip), ..ContactFilter::default() };
    let (list, total) = store.contacts(ws, &labelled, 0, 10, T0).await.unwrap();
    assert_eq!((list.len(), total, list[0].labels.clone()), (1, 1, vec![vip]));
    assert!(store.set_opted_out(ws, sari, true, T0.plus_millis(99)).await.unwrap().is_some());
    let out = ContactFilter { opt_out: OptOutFilter::OptedOut, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &out, 0, 10).await, (vec!["+6281234560001".into()], 1));
    let subscribed = ContactFilter { opt_out: OptOutFilter::Subscribed, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &subscribed, 0, 10).await.1, 2);
    let both = ContactFilter { label: Some(vip), opt_out: OptOutFilter::Subscribed, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &both, 0, 10).await.1, 0);

    // "Last message within N days", counted at a given time.
    let active = ContactFilter { active_days: Some(1), ..ContactFilter::default() };
    let day_later = T0.plus_millis(86_400_000 + 15);
    assert_eq!(store.count_contacts(ws, &active, day_later).await.unwrap(), 2);
    assert_eq!(store.count_contacts(ws, &active, T0.plus_millis(86_400_000 * 2)).await.unwrap(), 0);

    // Segments keep a filter under a name unique in the workspace.
    let name = LabelName::parse("VIP buyers").unwrap();
    let segment = store.create_segment(ws, &name, &labelled, T0).await.unwrap();
    let again = store.create_segment(ws, &LabelName::parse("vip BUYERS").unwrap(), &recent, T0).await;
    assert!(matches!(again, Err(StoreError::Conflict(Conflict::LabelTaken))), "{again:?}");
    let saved = store.segments(ws).await.unwrap();
    assert_eq!((saved.len(), &saved[0].filter), (1, &labelled));
    assert_eq!(store.count_contacts(ws, &saved[0].filter, T0).await.unwrap(), 1);
    let theirs = workspace(&store, "Other", "b@example.com").await;
    assert!(store.segments(theirs).await.unwrap().is_empty());
    assert!(matches!(store.delete_segment(theirs, segment).await, Err(StoreError::NotFound)));
    store.delete_segment(ws, segment).await.unwrap();
    assert!(store.segments(ws).await.unwrap().is_empty());
}

async fn labels_and_opt_out_stay_in_their_workspace(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let theirs = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let their_sales = channel(&store, theirs, "+6281100000009").await;
    let mine = customer(&store, &sales, "+6281234560001", None, 0).await;
    let their_customer = customer(&store, &their_sales, "+6281234560001", None, 0).await;
    let color = LabelColor::parse("red").unwrap();

    // Label names are unique per workspace, in any case.
    let vip = store.create_label(ws, &LabelName::parse("VIP").unwrap(), &color, T0).await.unwrap();
    let again = store.create_label(ws, &LabelName::parse("vip").unwrap(), &color, T0).await;
    assert!(matches!(again, Err(StoreError::Conflict(Conflict::LabelTaken))), "{again:?}");
    let their_vip = store.create_label(theirs, &LabelName::parse("VIP").unwrap(), &color, T0).await.unwrap();

    // Another workspace's contact or label is untouched.
    assert_eq!(store.label_contacts(ws, vip, &[mine, their_customer], true).await.unwrap(), 1);
    assert!(matches!(store.label_contacts(ws, their_vip, &[mine], true).await, Err(StoreError::NotFound)));
    assert_eq!(store.contact(theirs, their_customer).await.unwrap().labels, []);
    assert!(matches!(store.contact(ws, their_customer).await, Err(StoreError::NotFound)));
    assert!(matches!(store.set_opted_out(ws, their_customer, true, T0).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_label(ws, their_vip).await, Err(StoreError::NotFound)));
    let labels = store.labels(ws).await.unwrap();
    assert_eq!((labels.len(), labels[0].contacts), (1, 1));

    // Opting out and in happens once each way.
    assert!(store.set_opted_out(ws, mine, true, T0).await.unwrap().is_some());
    assert!(store.set_opted_out(ws, mine, true, T0.plus_millis(5)).await.unwrap().is_none());
    assert_eq!(store.contact(ws, mine).await.unwrap().opted_out_at, Some(T0));
    assert!(store.set_opted_out(ws, mine, false, T0).await.unwrap().is_some());
    assert!(store.set_opted_out(ws, mine, false, T0).await.unwrap().is_none());

    // Notes belong to a contact of the workspace; deleting the contact takes its notes and
    // conversations with it.
    let admin = store.agents(ws).await.unwrap()[0].id;
    let note = balas_domain::MessageText::parse("prefers calls after 5pm").unwrap();
    store.add_contact_note(ws, mine, admin, &note, T0).await.unwrap();
    assert!(matches!(store.add_contact_note(ws, their_customer, admin, &note, T0).await, Err(StoreError::NotFound)));
    let notes = store.contact_notes(ws, mine).await.unwrap();
    assert_eq!(
        (notes.len(), notes[0].author.as_deref(), notes[0].body.as_str()),
        (1, Some("Admin"), "prefers calls after 5pm")
    );
    assert!(store.contact_notes(theirs, mine).await.unwrap().is_empty());
    assert!(matches!(store.delete_contact(theirs, mine).await, Err(StoreError::NotFound)));

    // Deleting a label takes it off its contacts.
    assert_eq!(store.delete_label(ws, vip).await.unwrap(), "VIP");
    assert_eq!(store.contact(ws, mine).await.unwrap().labels, []);

    // Stop keywords: the defaults until set.
    assert_eq!(store.stop_keywords(ws).await.unwrap(), None);
    store.set_stop_keywords(ws, &["HALT".into()]).await.unwrap();
    assert_eq!(store.stop_keywords(ws).await.unwrap(), Some(vec!["HALT".to_owned()]));
    assert_eq!(store.stop_keywords(theirs).await.unwrap(), None);

    assert_eq!(store.delete_contact(ws, mine).await.unwrap().as_str(), "+6281234560001");
    assert!(matches!(store.contact(ws, mine).await, Err(StoreError::NotFound)));
    assert!(store.contact_conversations(ws, mine).await.unwrap().is_empty());
    assert!(store.contact_notes(ws, mine).await.unwrap().is_empty());
    assert!(store.contact(theirs, their_customer).await.is_ok(), "the other workspace's contact stays");
}
