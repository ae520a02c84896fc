//! Storage conformance for the shared inbox, on SQLite and on PostgreSQL: the list's filters,
//! search and paging, assignment within the workspace, what agents have read (each customer
//! message gets one read receipt), private notes, retries of failed sends and canned responses.

use balas_domain::{
    Assignment, AuditAction, ConversationStatus, Email, InboxFilter, MessageStatus, MessageText, PersonName, Role,
    SenderKind, Shortcut, UserId,
};
use balas_storage::{Audit, Conflict, ListCursor, MessageKey, NewInbound, NewMember, NewOutbound, Store, StoreError};
use balas_testkit::conformance;

mod common;
use common::{T0, channel, phone, reply, workspace};

conformance!(
    the_list_filters_searches_and_pages,
    assignment_stays_in_the_workspace,
    reading_returns_each_customer_message_once,
    notes_are_private_messages_and_failed_sends_can_be_retried,
    canned_responses_have_unique_shortcuts,
);

async fn inbound(store: &Store, channel: &balas_domain::Channel, from: &str, name: Option<&str>, wa_id: &str, at: i64) {
    let from = phone(from);
    let message = NewInbound { channel, wa_id, from: &from, push_name: name, text: "halo", media: None };
    store.store_inbound(&message, T0.plus_millis(at)).await.unwrap().unwrap();
}

async fn the_list_filters_searches_and_pages(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let me = store.agents(ws).await.unwrap()[0].id;
    let sales = channel(&store, ws, "+6281100000001").await;
    let support = channel(&store, ws, "+6281100000002").await;
    inbound(&store, &sales, "+6281234560001", Some("Siti Rahma"), "A1", 1).await;
    inbound(&store, &sales, "+6281234560002", Some("Budi 100%_off"), "A2", 2).await;
    inbound(&store, &support, "+6281234560003", None, "A3", 3).await;
    inbound(&store, &sales, "+6281234560001", Some("Siti Rahma"), "A4", 4).await;
    let all = InboxFilter::default();
    let (list, more) = store.conversations(ws, me, &all, None, 10).await.unwrap();
    assert!(!more);
    // Newest activity first: Siti wrote last.
    let names: Vec<_> = list.iter().map(|c| c.contact_name.clone()).collect();
    assert_eq!(names, [Some("Siti Rahma".into()), None, Some("Budi 100%_off".into())]);
    assert_eq!(list[0].last_preview.as_deref(), Some("halo"));
    assert_eq!(store.total_unread(ws).await.unwrap(), 4);

    let search = |text: &str| InboxFilter { search: text.into(), ..InboxFilter::default() };
    for (text, expected) in [
        ("siti", 1),
        ("RAHMA", 1),
        ("560003", 1),
        ("+62 812 3456", 3),
        ("100%", 1),
        ("%", 1),
        ("_", 1),
        ("i%", 0),
        ("zz", 0),
    ] {
        let found = store.conversations(ws, me, &search(text), None, 10).await.unwrap().0;
        assert_eq!(found.len(), expected, "search {text:?}");
        assert!(found.iter().all(|c| search(text).matches(c, me)), "the browser's filter agrees for {text:?}");
    }
    let by_channel = InboxFilter { channel: Some(support.id), ..InboxFilter::default() };
    assert_eq!(store.conversations(ws, me, &by_channel, None, 10).await.unwrap().0.len(), 1);

    // Status and assignment filters.
    store.set_conversation_status(ws, list[1].id, ConversationStatus::Resolved).await.unwrap();
    store.assign(ws, list[2].id, Some(me)).await.unwrap();
    let open = InboxFilter { status: Some(ConversationStatus::Open), ..InboxFilter::default() };
    assert_eq!(store.conversations(ws, me, &open, None, 10).await.unwrap().0.len(), 2);
    let mine = InboxFilter { assignment: Assignment::Mine, ..InboxFilter::default() };
    let found = store.conversations(ws, me, &mine, None, 10).await.unwrap().0;
    assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [list[2].id]);
    let unassigned = InboxFilter { assignment: Assignment::Unassigned, ..InboxFilter::default() };
    assert_eq!(store.conversations(ws, me, &unassigned, None, 10).await.unwrap().0.len(), 2);

    // Pages: two, then the rest, with nothing twice.
    let (first, more) = store.conversations(ws, me, &all, None, 2).await.unwrap();
    assert!(more);
    let cursor = ListCursor { last_message_at: first[1].last_message_at, id: first[1].id };
    let (rest, more) = store.conversations(ws, me, &all, Some(cursor), 2).await.unwrap();
    assert!(!more);
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), [list[2].id]);

    // Another workspace sees none of it.
    let other = workspace(&store, "Other", "b@example.com").await;
    let stranger = store.agents(other).await.unwrap()[0].id;
    assert!(store.conversations(other, stranger, &all, None, 10).await.unwrap().0.is_empty());
    assert_eq!(store.total_unread(other).await.unwrap(), 0);
    assert!(store.conversation(other, list[0].id).await.unwrap().is_none());
    assert!(store.contact_conversations(other, list[0].contact_id).await.unwrap().is_empty());
    assert_eq!(store.contact_conversations(ws, list[0].contact_id).await.unwrap().len(), 1);
}

async fn assignment_stays_in_the_workspace(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let other = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    inbound(&store, &sales, "+6281234560001", None, "A1", 1).await;
    let conversation = store.conversations(ws, UserId(0), &InboxFilter::default(), None, 1).await.unwrap().0[0].clone();
    let (email, name) = (Email::parse("budi@example.com").unwrap(), PersonName::parse("Budi").unwrap());
    let agent =
        NewMember { email: &email, name: &name, role: Role::Agent, password_hash: None, must_change_password: false };
    let audit = Audit {
        workspace_id: ws,
        actor: None,
        action: AuditAction::MemberAdded,
        subject: "budi@example.com",
        detail: "",
        ip: None,
        at: T0,
    };
    let budi = store.add_member(ws, &agent, None, &audit).await.unwrap();
    let agents = store.agents(ws).await.unwrap();
    assert_eq!(agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["Admin", "Budi"]);

    let assigned = store.assign(ws, conversation.id, Some(budi)).await.unwrap();
    assert_eq!(assigned.assignee, Some(budi));
    // A member of another workspace cannot be given the conversation, nor can that workspace touch it.
    let stranger = store.agents(other).await.unwrap()[0].id;
    assert!(matches!(store.assign(ws, conversation.id, Some(stranger)).await, Err(StoreError::NotFound)));
    assert!(matches!(store.assign(other, conversation.id, None).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.set_conversation_status(other, conversation.id, ConversationStatus::Resolved).await,
        Err(StoreError::NotFound)
    ));
    let unchanged = store.conversation(ws, conversation.id).await.unwrap().unwrap();
    assert_eq!((unchanged.assignee, unchanged.status), (Some(budi), ConversationStatus::Open));
    assert_eq!(store.assign(ws, conversation.id, None).await.unwrap().assignee, None);
}

async fn reading_returns_each_customer_message_once(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    inbound(&store, &sales, "+6281234560001", None, "A1", 1).await;
    inbound(&store, &sales, "+6281234560001", None, "A2", 2).await;
    let id = store.conversations(ws, UserId(0), &InboxFilter::default(), None, 1).await.unwrap().0[0].id;
    let read = store.mark_conversation_read(ws, id).await.unwrap().unwrap();
    assert_eq!(read.wa_ids, ["A1", "A2"]);
    assert!(read.was_unread);
    assert_eq!((read.conversation.unread, read.phone.as_str()), (0, "+6281234560001"));
    assert_eq!(store.total_unread(ws).await.unwrap(), 0);
    // Opening it again sends nothing again; a new message is the only one to read next time.
    let again = store.mark_conversation_read(ws, id).await.unwrap().unwrap();
    assert!(again.wa_ids.is_empty() && !again.was_unread);
    inbound(&store, &sales, "+6281234560001", None, "A3", 3).await;
    assert_eq!(store.mark_conversation_read(ws, id).await.unwrap().unwrap().wa_ids, ["A3"]);
    // Not another workspace's to read.
    let other = workspace(&store, "Other", "b@example.com").await;
    assert!(store.mark_conversation_read(other, id).await.unwrap().is_none());
}

async fn notes_are_private_messages_and_failed_sends_can_be_retried(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let admin = store.agents(ws).await.unwrap()[0].id;
    let sales = channel(&store, ws, "+6281100000001").await;
    let (to, text) = (phone("+6281234560001"), MessageText::parse("Pesanan dikirim").unwrap());
    let outbound = NewOutbound { sender_user: Some(admin), ..reply(ws, sales.id, &to, &text, "OUT1") };
    let (sent, conversation) = store.queue_message(&outbound, T0).await.unwrap();
    assert_eq!(conversation.last_preview.as_deref(), Some("Pesanan dikirim"));

    let body = MessageText::parse("VIP: give the discount").unwrap();
    let (note, after) = store.add_note(ws, conversation.id, admin, &body, "note-1", T0.plus_millis(5)).await.unwrap();
    assert!(note.note);
    assert_eq!((note.sender, note.sender_user), (SenderKind::Agent, Some(admin)));
    // A note does not move the conversation up the list, and receipts never touch it.
    assert_eq!(after.last_message_at, conversation.last_message_at);
    assert!(store.advance_message(MessageKey::Id(note.id), MessageStatus::Read, None, T0).await.unwrap().is_none());
    let other = workspace(&store, "Other", "b@example.com").await;
    assert!(matches!(
        store.add_note(other, conversation.id, admin, &body, "note-2", T0).await,
        Err(StoreError::NotFound)
    ));
    let history = store.messages(ws, conversation.id, None, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.note).collect::<Vec<_>>(), [false, true]);

    // Only a failed message can be retried, and each retry is numbered.
    assert!(matches!(store.requeue_failed(ws, sent.id, T0).await, Err(StoreError::NotFound)));
    store.advance_message(MessageKey::Id(sent.id), MessageStatus::Failed, Some("gave up"), T0).await.unwrap();
    let first = store.requeue_failed(ws, sent.id, T0.plus_millis(9)).await.unwrap();
    assert_eq!((first.retry, first.message.status, first.message.error), (1, MessageStatus::Queued, None));
    assert_eq!(first.to, to);
    assert!(matches!(store.requeue_failed(ws, sent.id, T0).await, Err(StoreError::NotFound)), "queued, not failed");
    store.advance_message(MessageKey::Id(sent.id), MessageStatus::Failed, Some("again"), T0).await.unwrap();
    assert!(matches!(store.requeue_failed(other, sent.id, T0).await, Err(StoreError::NotFound)));
    assert_eq!(store.requeue_failed(ws, sent.id, T0).await.unwrap().retry, 2);
    assert!(matches!(store.requeue_failed(ws, note.id, T0).await, Err(StoreError::NotFound)));
}

async fn canned_responses_have_unique_shortcuts(store: Store) {
    let ws = workspace(&store, "Toko", "a@example.com").await;
    let other = workspace(&store, "Other", "b@example.com").await;
    let (thanks, body) = (Shortcut::parse("thanks").unwrap(), MessageText::parse("Terima kasih!").unwrap());
    let created = store.create_canned_response(ws, &thanks, &body, T0).await.unwrap();
    assert!(matches!(
        store.create_canned_response(ws, &thanks, &body, T0).await,
        Err(StoreError::Conflict(Conflict::ShortcutTaken))
    ));
    // Shortcuts are per workspace.
    store.create_canned_response(other, &thanks, &body, T0).await.unwrap();
    let hours = Shortcut::parse("hours").unwrap();
    store.create_canned_response(ws, &hours, &body, T0).await.unwrap();
    let list = store.canned_responses(ws).await.unwrap();
    assert_eq!(list.iter().map(|c| c.shortcut.as_str()).collect::<Vec<_>>(), ["hours", "thanks"]);
    assert!(matches!(store.delete_canned_response(other, created.id).await, Err(StoreError::NotFound)));
    store.delete_canned_response(ws, created.id).await.unwrap();
    assert_eq!(store.canned_responses(ws).await.unwrap().len(), 1);
}
