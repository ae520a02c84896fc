//! Storage conformance for the CRM, on SQLite and on PostgreSQL: search, filters, sorting and
//! pages of the contact list; labels (unique names, bulk labelling, deletion); opt-out changes
//! that happen once; segments; and another workspace reaching none of it.

use balas_domain::{Attribute, AttributeFilter, AttributeKey, AttributeKind, AttributeOp};
use balas_domain::{
    Channel, ContactFilter, ContactId, ContactSort, Email, LabelColor, LabelName, OptOutFilter, WorkspaceId,
};
use balas_storage::{AttributeWrite, Conflict, ImportContact, NewInbound, Store, StoreError};
use balas_testkit::conformance;

mod common;

conformance!(
    contacts_are_searched_filtered_sorted_and_paged,
    labels_and_opt_out_stay_in_their_workspace,
    attributes_are_kept_filtered_and_scoped,
    merging_keeps_everything_of_both_contacts,
    conversations_carry_labels,
    large_imports_are_searchable_at_once
);

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
    store.edit_contact(ws, sari, Some("Sari Dewi"), &phone("+6281234560001"), Some(&email), &[]).await.unwrap();
    let taken = store.edit_contact(ws, sari, None, &phone("+6281234560002"), None, &[]).await;
    assert!(matches!(taken, Err(StoreError::Conflict(Conflict::PhoneTaken))), "{taken:?}");

    // Search by name (any case), by email, by part of the number; LIKE's wildcards are literal.
    assert_eq!(phones(&store, ws, &filter("sARI"), 0, 10).await, (vec!["+6281234560001".into()], 1));
    assert_eq!(phones(&store, ws, &filter("shop.example"), 0, 10).await.1, 1);
    assert_eq!(phones(&store, ws, &filter("0812 3456"), 0, 10).await.1, 2);
    assert_eq!(phones(&store, ws, &filter("100%"), 0, 10).await, (vec!["+6281234560002".into()], 1));
    assert_eq!(phones(&store, ws, &filter("1_0"), 0, 10).await.1, 0);
    // Short searches (under three characters) take the slower path and agree.
    assert_eq!(phones(&store, ws, &filter("sA"), 0, 10).await, (vec!["+6281234560001".into()], 1));
    assert_eq!(phones(&store, ws, &filter("99"), 0, 10).await, (vec!["+6281299990003".into()], 1));

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

/// Defines an attribute and returns its definition.
async fn define(store: &Store, ws: WorkspaceId, key: &str, kind: AttributeKind, options: &[&str]) -> Attribute {
    let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    let name = LabelName::parse(key).unwrap();
    let id = store.create_attribute(ws, &AttributeKey::parse(key).unwrap(), &name, kind, &options, T0).await.unwrap();
    store.attributes(ws).await.unwrap().into_iter().find(|a| a.id == id).unwrap()
}

fn write(attribute: &Attribute, raw: &str) -> AttributeWrite {
    AttributeWrite::of(attribute, attribute.value(raw).unwrap())
}

fn on(attribute: &Attribute, op: AttributeOp, value: &str) -> ContactFilter {
    let wanted = AttributeFilter { attribute: attribute.id, op, value: value.into() };
    ContactFilter { attribute: Some(wanted.checked(attribute).unwrap()), ..ContactFilter::default() }
}

async fn attributes_are_kept_filtered_and_scoped(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let theirs = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let sari = customer(&store, &sales, "+6281234560001", Some("Sari"), 0).await;
    let budi = customer(&store, &sales, "+6281234560002", Some("Budi"), 0).await;
    customer(&store, &sales, "+6281234560003", Some("Nia"), 0).await;
    let city = define(&store, ws, "city", AttributeKind::Text, &[]).await;
    let spent = define(&store, ws, "spent", AttributeKind::Number, &[]).await;
    let birthday = define(&store, ws, "birthday", AttributeKind::Date, &[]).await;
    let tier = define(&store, ws, "tier", AttributeKind::OneOf, &["Gold", "Silver"]).await;
    let again = store.create_attribute(ws, &city.key, &city.name, AttributeKind::Text, &[], T0).await;
    assert!(matches!(again, Err(StoreError::Conflict(Conflict::AttributeKeyTaken))), "{again:?}");
    let their_city = define(&store, theirs, "city", AttributeKind::Text, &[]).await;

    let number = |n: &str| phone(n);
    let sari_values =
        [write(&city, "Jakarta Selatan"), write(&spent, "1500"), write(&birthday, "7/3/1990"), write(&tier, "gold")];
    let edited =
        store.edit_contact(ws, sari, Some("Sari"), &number("+6281234560001"), None, &sari_values).await.unwrap();
    assert_eq!(edited.attributes.get("birthday").map(String::as_str), Some("1990-03-07"));
    assert_eq!(edited.attributes.get("tier").map(String::as_str), Some("Gold"));
    let budi_values = [write(&city, "Bandung"), write(&spent, "99.5"), write(&birthday, "2001-12-31")];
    store.edit_contact(ws, budi, Some("Budi"), &number("+6281234560002"), None, &budi_values).await.unwrap();

    // Text contains (any case); numbers compare as numbers (1500 > 99.5), dates as days.
    assert_eq!(phones(&store, ws, &on(&city, AttributeOp::Is, "jakarta"), 0, 10).await.1, 1);
    assert_eq!(phones(&store, ws, &on(&spent, AttributeOp::AtLeast, "100"), 0, 10).await.0, ["+6281234560001"]);
    assert_eq!(phones(&store, ws, &on(&spent, AttributeOp::AtMost, "100"), 0, 10).await.0, ["+6281234560002"]);
    assert_eq!(phones(&store, ws, &on(&spent, AttributeOp::Is, "99,5"), 0, 10).await.1, 1);
    assert_eq!(
        phones(&store, ws, &on(&birthday, AttributeOp::AtLeast, "2000-01-01"), 0, 10).await.0,
        ["+6281234560002"]
    );
    assert_eq!(phones(&store, ws, &on(&tier, AttributeOp::Is, "Gold"), 0, 10).await.1, 1);
    assert_eq!(phones(&store, ws, &on(&tier, AttributeOp::Set, ""), 0, 10).await.1, 1);
    assert_eq!(phones(&store, ws, &on(&tier, AttributeOp::Unset, ""), 0, 10).await.1, 2);
    // Another workspace's attribute matches nothing here.
    let foreign = ContactFilter {
        attribute: Some(AttributeFilter { attribute: their_city.id, op: AttributeOp::Set, value: String::new() }),
        ..ContactFilter::default()
    };
    assert_eq!(phones(&store, ws, &foreign, 0, 10).await.1, 0);
    // A write of another workspace's attribute is ignored.
    store
        .edit_contact(ws, sari, Some("Sari"), &number("+6281234560001"), None, &[write(&their_city, "Medan")])
        .await
        .unwrap();
    assert_eq!(
        store.contact(ws, sari).await.unwrap().attributes.get("city").map(String::as_str),
        Some("Jakarta Selatan")
    );

    // An empty value clears; a list keeps options in use.
    let cleared = AttributeWrite::of(&city, None);
    let edited = store.edit_contact(ws, budi, Some("Budi"), &number("+6281234560002"), None, &[cleared]).await.unwrap();
    assert!(!edited.attributes.contains_key("city"));
    let dropped = store.update_attribute(ws, tier.id, &tier.name, &["Silver".into()]).await;
    assert!(matches!(dropped, Err(StoreError::Conflict(Conflict::OptionInUse))), "{dropped:?}");
    store
        .update_attribute(
            ws,
            tier.id,
            &LabelName::parse("Tier").unwrap(),
            &["Gold".into(), "Silver".into(), "Bronze".into()],
        )
        .await
        .unwrap();
    assert_eq!(store.attributes(ws).await.unwrap().iter().find(|a| a.id == tier.id).unwrap().options.len(), 3);
    assert!(matches!(store.update_attribute(theirs, tier.id, &tier.name, &[]).await, Err(StoreError::NotFound)));

    // Imports set values (others stay) in the same transaction.
    let imported = ImportContact {
        phone: number("+6281234560002"),
        name: None,
        email: None,
        labels: vec![],
        opted_out: false,
        attributes: vec![write(&tier, "Silver")],
    };
    let fresh =
        ImportContact { phone: number("+6281234560009"), attributes: vec![write(&spent, "5")], ..imported.clone() };
    assert_eq!(store.import_contacts(ws, &[imported, fresh], T0.plus_millis(7), &|_| {}).await.unwrap(), (1, 1));
    let budi_now = store.contact(ws, budi).await.unwrap();
    assert_eq!(
        (budi_now.attributes.get("tier").map(String::as_str), budi_now.attributes.get("spent").map(String::as_str)),
        (Some("Silver"), Some("99.5"))
    );
    assert_eq!(phones(&store, ws, &on(&spent, AttributeOp::AtMost, "10"), 0, 10).await.0, ["+6281234560009"]);

    // Deleting a definition takes its values with it; the other workspace's stays.
    assert!(matches!(store.delete_attribute(theirs, city.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.delete_attribute(ws, city.id).await.unwrap(), "city");
    assert!(!store.contact(ws, sari).await.unwrap().attributes.contains_key("city"));
    assert_eq!(store.attributes(theirs).await.unwrap().len(), 1);
}

async fn merging_keeps_everything_of_both_contacts(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let theirs = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let support = channel(&store, ws, "+6281100000002").await;
    let their_sales = channel(&store, theirs, "+6281100000009").await;
    // Keep has a conversation on sales; other on sales (joins keep's) and on support (moves).
    let keep = customer(&store, &sales, "+6281234560001", None, 10).await;
    let other = customer(&store, &sales, "+6281234560002", Some("Sari Dewi"), 20).await;
    customer(&store, &support, "+6281234560002", Some("Sari Dewi"), 30).await;
    let stranger = customer(&store, &their_sales, "+6281234560003", None, 0).await;
    let color = LabelColor::parse("red").unwrap();
    let vip = store.create_label(ws, &LabelName::parse("VIP").unwrap(), &color, T0).await.unwrap();
    let new = store.create_label(ws, &LabelName::parse("New").unwrap(), &color, T0).await.unwrap();
    store.label_contacts(ws, vip, &[keep, other], true).await.unwrap();
    store.label_contacts(ws, new, &[other], true).await.unwrap();
    let city = define(&store, ws, "city", AttributeKind::Text, &[]).await;
    let tier = define(&store, ws, "tier", AttributeKind::OneOf, &["Gold"]).await;
    store.edit_contact(ws, keep, None, &phone("+6281234560001"), None, &[write(&city, "Bandung")]).await.unwrap();
    let values = [write(&city, "Jakarta"), write(&tier, "Gold")];
    let email = Email::parse("sari@shop.example").unwrap();
    store.edit_contact(ws, other, Some("Sari Dewi"), &phone("+6281234560002"), Some(&email), &values).await.unwrap();
    store.set_opted_out(ws, other, true, T0).await.unwrap();
    let admin = store.agents(ws).await.unwrap()[0].id;
    let note = balas_domain::MessageText::parse("VIP since 2020").unwrap();
    store.add_contact_note(ws, other, admin, &note, T0).await.unwrap();
    let other_sales =
        store.contact_conversations(ws, other).await.unwrap().into_iter().find(|c| c.channel_id == sales.id).unwrap();
    store.label_conversation(ws, other_sales.id, new, true).await.unwrap();
    // Keep's conversation was resolved; the other's is open with unread messages: still open.
    let keep_sales = store.contact_conversations(ws, keep).await.unwrap()[0].id;
    store.set_conversation_status(ws, keep_sales, balas_domain::ConversationStatus::Resolved).await.unwrap();
    // The AI answered in both sales conversations this month.
    store.add_ai_usage(ws, keep_sales, "2026-11", 100).await.unwrap();
    store.add_ai_usage(ws, other_sales.id, "2026-11", 40).await.unwrap();
    store.add_ai_usage(ws, other_sales.id, "2026-10", 7).await.unwrap();

    // Not across workspaces, not with itself.
    assert!(matches!(store.merge_contacts(ws, keep, stranger).await, Err(StoreError::NotFound)));
    assert!(matches!(store.merge_contacts(ws, keep, keep).await, Err(StoreError::NotFound)));

    let balas_storage::ContactsMerged { contact: merged, gone, joined } =
        store.merge_contacts(ws, keep, other).await.unwrap();
    assert_eq!(gone.as_str(), "+6281234560002");
    assert_eq!(merged.phone.as_str(), "+6281234560001", "keep's number stays");
    assert_eq!((merged.name.as_deref(), merged.email.as_deref()), (Some("Sari Dewi"), Some("sari@shop.example")));
    assert_eq!(merged.attributes.get("city").map(String::as_str), Some("Bandung"), "keep's own value wins");
    assert_eq!(merged.attributes.get("tier").map(String::as_str), Some("Gold"));
    assert_eq!(merged.labels, {
        let mut both = vec![vip, new];
        both.sort();
        both
    });
    assert!(merged.opted_out(), "stays opted out when either was");
    assert_eq!(merged.last_message_at, Some(T0.plus_millis(30)));
    assert!(matches!(store.contact(ws, other).await, Err(StoreError::NotFound)));
    assert_eq!(store.contact_notes(ws, keep).await.unwrap().len(), 1);
    // One conversation per channel, with every message of both.
    let conversations = store.contact_conversations(ws, keep).await.unwrap();
    assert_eq!(conversations.len(), 2);
    let on_sales = conversations.iter().find(|c| c.channel_id == sales.id).unwrap();
    assert_eq!(on_sales.labels, [new]);
    let messages = store.messages(ws, on_sales.id, None, 50).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(on_sales.last_message_at, T0.plus_millis(20));
    assert_eq!(on_sales.unread, 2);
    assert_eq!(on_sales.status, balas_domain::ConversationStatus::Open);
    // The other's conversation on that channel joined keep's, and is gone.
    assert_eq!(joined.len(), 1);
    let (gone_conversation, into) = joined[0];
    assert_eq!(into, on_sales.id);
    assert!(store.conversation(ws, gone_conversation).await.unwrap().is_none());
    // The AI's tokens stay counted, on the joined conversation, month by month.
    assert_eq!(store.ai_usage(ws, "2026-11", Some(into)).await.unwrap(), (140, 140));
    assert_eq!(store.ai_usage(ws, "2026-10", Some(into)).await.unwrap(), (7, 7));
    let top = store.ai_top_conversations(ws, "2026-11", 5).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!((top[0].conversation_id, top[0].tokens, top[0].contact_phone.as_str()), (into, 140, "+6281234560001"));
}

async fn conversations_carry_labels(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let theirs = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let their_sales = channel(&store, theirs, "+6281100000009").await;
    let sari = customer(&store, &sales, "+6281234560001", None, 0).await;
    let stranger = customer(&store, &their_sales, "+6281234560003", None, 0).await;
    let conversation = store.contact_conversations(ws, sari).await.unwrap()[0].id;
    let their_conversation = store.contact_conversations(theirs, stranger).await.unwrap()[0].id;
    let color = LabelColor::parse("red").unwrap();
    let urgent = store.create_label(ws, &LabelName::parse("Urgent").unwrap(), &color, T0).await.unwrap();
    let refund = store.create_label(ws, &LabelName::parse("Refund").unwrap(), &color, T0).await.unwrap();
    let their_label = store.create_label(theirs, &LabelName::parse("Urgent").unwrap(), &color, T0).await.unwrap();

    assert!(store.label_conversation(ws, conversation, urgent, true).await.unwrap());
    assert!(!store.label_conversation(ws, conversation, urgent, true).await.unwrap(), "once");
    assert!(store.label_conversation(ws, conversation, refund, true).await.unwrap());
    let mut both = vec![urgent, refund];
    both.sort();
    assert_eq!(store.conversation(ws, conversation).await.unwrap().unwrap().labels, both);
    // The inbox filters by label.
    let admin = store.agents(ws).await.unwrap()[0].id;
    let by_label = |label| balas_domain::InboxFilter { label: Some(label), ..Default::default() };
    let (listed, _) = store.conversations(ws, admin, &by_label(urgent), None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [conversation]);
    let (listed, _) = store.conversations(ws, admin, &by_label(their_label), None, 10).await.unwrap();
    assert!(listed.is_empty(), "another workspace's label lists nothing");
    // Neither another workspace's label nor its conversation.
    assert!(matches!(store.label_conversation(ws, conversation, their_label, true).await, Err(StoreError::NotFound)));
    assert!(matches!(store.label_conversation(ws, their_conversation, urgent, true).await, Err(StoreError::NotFound)));
    assert!(store.label_conversation(ws, conversation, urgent, false).await.unwrap());
    assert_eq!(store.conversation(ws, conversation).await.unwrap().unwrap().labels, [refund]);
    // Deleting a label takes it off conversations too.
    store.delete_label(ws, refund).await.unwrap();
    assert!(store.conversation(ws, conversation).await.unwrap().unwrap().labels.is_empty());
}

async fn large_imports_are_searchable_at_once(store: Store) {
    // 5,000 rows: enough for PostgreSQL's vacuum and analyze after the import.
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let rows: Vec<ImportContact> = (0..5_000)
        .map(|n| ImportContact {
            phone: phone(&format!("+6281300{n:05}")),
            name: Some(format!("Pelanggan {n}")),
            email: None,
            labels: vec![],
            opted_out: n % 10 == 0,
            attributes: vec![],
        })
        .collect();
    assert_eq!(store.import_contacts(ws, &rows, T0, &|_| {}).await.unwrap(), (5_000, 0));
    assert_eq!(phones(&store, ws, &filter("pelanggan 4321"), 0, 10).await, (vec!["+628130004321".into()], 1));
    assert_eq!(phones(&store, ws, &filter("0813 0000 12"), 0, 10).await.1, 10);
    let out = ContactFilter { opt_out: OptOutFilter::OptedOut, ..ContactFilter::default() };
    assert_eq!(phones(&store, ws, &out, 0, 10).await.1, 500);
}
