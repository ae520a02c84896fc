//! Storage conformance for the AI agent, on SQLite and on PostgreSQL: the provider (its key kept
//! unless replaced), profile versions, turning a channel's AI on, token use per month, the
//! handover, and what pauses the AI in a conversation (an agent's reply, an assignment).

use balas_domain::{
    AiActive, AiProfile, ConversationStatus, Email, MessageText, PersonName, Role, SenderKind, SendingRules, UserId,
    WorkspaceId, WorkspaceName,
};
use balas_storage::{NewInbound, NewMember, Store, StoreError};
use balas_testkit::conformance;

mod common;

conformance!(providers_profiles_and_usage, handovers_and_what_pauses_the_ai, a_turns_context_in_one_read);

use common::{T0, channel, phone, reply, workspace};

async fn workspace_and_admin(store: &Store) -> (WorkspaceId, UserId) {
    let (email, name) = (Email::parse("a@example.com").unwrap(), PersonName::parse("Admin").unwrap());
    let member = NewMember {
        email: &email,
        name: &name,
        role: Role::Admin,
        password_hash: Some("h"),
        must_change_password: false,
    };
    store.create_workspace(&WorkspaceName::parse("Toko").unwrap(), &member, T0).await.unwrap()
}

async fn providers_profiles_and_usage(store: Store) {
    let (ws, admin) = workspace_and_admin(&store).await;
    let other = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;

    // The provider: saved, then changed with the key kept.
    assert!(store.ai_settings(ws).await.unwrap().is_none());
    store.set_ai_settings(ws, "https://api.example.com/v1", Some("sk-abcd1234"), "m1", 0, T0).await.unwrap();
    store.set_ai_settings(ws, "https://llm.example.com/v1", None, "m2", 5_000, T0).await.unwrap();
    let saved = store.ai_settings(ws).await.unwrap().unwrap();
    assert_eq!((saved.api_key.as_str(), saved.settings.key_hint.as_deref()), ("sk-abcd1234", Some("1234")));
    assert_eq!((saved.settings.base_url.as_str(), saved.settings.model.as_str()), ("https://llm.example.com/v1", "m2"));
    assert_eq!(saved.settings.monthly_token_cap, 5_000);
    assert!(store.ai_settings(other).await.unwrap().is_none());

    // A channel starts with the default profile, off, at version 0.
    let fresh = store.ai_channel(ws, sales.id).await.unwrap().unwrap();
    assert_eq!((fresh.enabled, fresh.version, fresh.profile.clone()), (false, 0, AiProfile::default()));
    assert!(store.ai_channel(other, sales.id).await.unwrap().is_none(), "another workspace sees nothing");

    // Versions: each save is one, newest first, with who and what.
    let night = AiProfile { active: AiActive::OutsideHours { from_hour: 8, to_hour: 17 }, ..AiProfile::default() };
    assert_eq!(store.save_ai_profile(ws, sales.id, &AiProfile::default(), "first", admin, T0).await.unwrap(), 1);
    assert_eq!(store.save_ai_profile(ws, sales.id, &night, "active", admin, T0).await.unwrap(), 2);
    let versions = store.ai_profile_versions(ws, sales.id, 10).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.note.as_str())).collect::<Vec<_>>(),
        [(2, "active"), (1, "first")]
    );
    assert_eq!((versions[0].profile.clone(), versions[0].changed_by.as_deref()), (night.clone(), Some("Admin")));
    assert!(matches!(store.save_ai_profile(other, sales.id, &night, "x", admin, T0).await, Err(StoreError::NotFound)));
    assert!(store.ai_profile_versions(other, sales.id, 10).await.unwrap().is_empty());

    // On and off keep the profile; another workspace cannot.
    store.set_ai_enabled(ws, sales.id, true, &AiProfile::default(), T0).await.unwrap();
    let on = store.ai_channel(ws, sales.id).await.unwrap().unwrap();
    assert_eq!((on.enabled, on.version, on.profile), (true, 2, night));
    assert!(matches!(
        store.set_ai_enabled(other, sales.id, false, &AiProfile::default(), T0).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.ai_channels(ws).await.unwrap().len(), 1);
    assert!(store.ai_channels(other).await.unwrap().is_empty());

    // Token use adds up per conversation and month.
    let from = phone("+6281200000001");
    let inbound = NewInbound { channel: &sales, wa_id: "W1", from: &from, push_name: None, text: "halo", media: None };
    let (_, conversation) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();
    store.add_ai_usage(ws, conversation.id, "2026-11", 100).await.unwrap();
    store.add_ai_usage(ws, conversation.id, "2026-11", 50).await.unwrap();
    store.add_ai_usage(ws, conversation.id, "2026-10", 7).await.unwrap();
    assert_eq!(store.ai_usage(ws, "2026-11", Some(conversation.id)).await.unwrap(), (150, 150));
    assert_eq!(store.ai_usage(ws, "2026-10", None).await.unwrap(), (7, 0));
    assert_eq!(store.ai_usage(other, "2026-11", None).await.unwrap(), (0, 0));
    // Where the month's tokens went: most first, that month only, this workspace only.
    let from = phone("+6281200000002");
    let inbound =
        NewInbound { channel: &sales, wa_id: "W2", from: &from, push_name: Some("Sari"), text: "halo", media: None };
    let (_, second) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();
    store.add_ai_usage(ws, second.id, "2026-11", 400).await.unwrap();
    let top = store.ai_top_conversations(ws, "2026-11", 5).await.unwrap();
    assert_eq!(
        top.iter().map(|c| (c.conversation_id, c.contact_name.as_deref(), c.tokens)).collect::<Vec<_>>(),
        [(second.id, Some("Sari"), 400), (conversation.id, None, 150)]
    );
    assert_eq!((top[1].contact_phone.as_str(), top[1].channel_name.as_str()), ("+6281200000001", sales.name.as_str()));
    assert_eq!(store.ai_top_conversations(ws, "2026-11", 1).await.unwrap().len(), 1);
    assert_eq!(store.ai_top_conversations(ws, "2026-10", 5).await.unwrap()[0].tokens, 7);
    assert!(store.ai_top_conversations(other, "2026-11", 5).await.unwrap().is_empty());
}

async fn handovers_and_what_pauses_the_ai(store: Store) {
    let (ws, admin) = workspace_and_admin(&store).await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let from = phone("+6281200000001");
    let inbound = NewInbound { channel: &sales, wa_id: "W1", from: &from, push_name: None, text: "halo", media: None };
    let (_, conversation) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();
    assert!(!conversation.ai_paused);

    // The AI's answer does not pause it; the handover does, with a note from the AI.
    let text = MessageText::parse("Halo! Ada yang bisa dibantu?").unwrap();
    let mut answer = reply(ws, sales.id, &from, &text, "A1");
    answer.sender = SenderKind::Ai;
    let (_, after_answer) = store.queue_message(&answer, T0).await.unwrap();
    assert!(!after_answer.ai_paused);
    let (note, handed) = store.hand_over(conversation.id, "The AI handed over: x", "note-1", T0).await.unwrap();
    assert_eq!((note.note, note.sender, note.body.as_str()), (true, SenderKind::Ai, "The AI handed over: x"));
    assert_eq!((handed.status, handed.assignee, handed.ai_paused), (ConversationStatus::Pending, None, true));
    let recent = store.recent_messages(conversation.id, 10).await.unwrap();
    assert_eq!(
        recent.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["halo", text.as_str(), "The AI handed over: x"]
    );
    assert_eq!(store.recent_messages(conversation.id, 1).await.unwrap()[0].body, "The AI handed over: x");

    // Handed back; an agent's reply pauses it again.
    let back = store.set_ai_paused(ws, conversation.id, false).await.unwrap();
    assert!(!back.ai_paused);
    let other = workspace(&store, "Other", "b@example.com").await;
    assert!(matches!(store.set_ai_paused(other, conversation.id, true).await, Err(StoreError::NotFound)));
    let agent_text = MessageText::parse("Saya Rina").unwrap();
    let (_, after_agent) = store.queue_message(&reply(ws, sales.id, &from, &agent_text, "A2"), T0).await.unwrap();
    assert!(after_agent.ai_paused, "an agent's reply takes the conversation over");

    // Assigning it to a member pauses it too; unassigning does not resume it.
    store.set_ai_paused(ws, conversation.id, false).await.unwrap();
    assert!(store.assign(ws, conversation.id, Some(admin)).await.unwrap().ai_paused);
    store.set_ai_paused(ws, conversation.id, false).await.unwrap();
    assert!(!store.assign(ws, conversation.id, None).await.unwrap().ai_paused);
}

async fn a_turns_context_in_one_read(store: Store) {
    let (ws, admin) = workspace_and_admin(&store).await;
    let other = workspace(&store, "Other", "b@example.com").await;
    let sales = channel(&store, ws, "+6281100000001").await;
    let from = phone("+6281200000001");
    let inbound = NewInbound { channel: &sales, wa_id: "W1", from: &from, push_name: None, text: "halo", media: None };
    let (_, conversation) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();

    // Nothing set up: the default profile, off; no provider, no time zone, nothing counted.
    let bare = store.ai_turn_context(ws, conversation.id, "2026-11").await.unwrap().unwrap();
    assert_eq!(bare.conversation, conversation);
    assert_eq!((bare.channel.channel_id, bare.channel.enabled, bare.channel.version), (sales.id, false, 0));
    assert_eq!(bare.channel.profile, AiProfile::default());
    assert!(!bare.contact_opted_out);
    assert!(bare.settings.is_none() && bare.time_zone.is_none());
    assert_eq!(bare.tokens_used, 0);
    assert!(store.ai_turn_context(other, conversation.id, "2026-11").await.unwrap().is_none(), "not another's");

    // Everything set: it reads what the separate reads do.
    let night = AiProfile { active: AiActive::OutsideHours { from_hour: 8, to_hour: 17 }, ..AiProfile::default() };
    store.save_ai_profile(ws, sales.id, &night, "night", admin, T0).await.unwrap();
    store.set_ai_enabled(ws, sales.id, true, &night, T0).await.unwrap();
    store.set_ai_settings(ws, "https://llm.example.com/v1", Some("sk-abcd1234"), "m1", 0, T0).await.unwrap();
    let rules = SendingRules { time_zone: "Asia/Makassar".into(), ..SendingRules::default() };
    store.set_sending_rules(ws, &rules).await.unwrap();
    store.add_ai_usage(ws, conversation.id, "2026-11", 100).await.unwrap();
    store.set_opted_out(ws, conversation.contact_id, true, T0).await.unwrap();
    store.set_ai_paused(ws, conversation.id, true).await.unwrap();
    let full = store.ai_turn_context(ws, conversation.id, "2026-11").await.unwrap().unwrap();
    assert_eq!(Some(&full.channel), store.ai_channel(ws, sales.id).await.unwrap().as_ref());
    assert_eq!((full.channel.enabled, full.channel.profile.clone()), (true, night));
    let settings = full.settings.unwrap();
    assert_eq!(settings.settings, store.ai_settings(ws).await.unwrap().unwrap().settings);
    assert_eq!(settings.api_key, "sk-abcd1234");
    assert_eq!(full.time_zone.as_deref(), Some("Asia/Makassar"));
    assert!(full.contact_opted_out && full.conversation.ai_paused);
    assert_eq!(full.tokens_used, 0, "without a cap the month's use is not counted");

    // With a cap, the workspace's use this month (every conversation, not other months).
    store.set_ai_settings(ws, "https://llm.example.com/v1", None, "m1", 1_000, T0).await.unwrap();
    let second = phone("+6281200000002");
    let inbound = NewInbound { channel: &sales, wa_id: "W2", from: &second, push_name: None, text: "hi", media: None };
    let (_, another) = store.store_inbound(&inbound, T0).await.unwrap().unwrap();
    store.add_ai_usage(ws, another.id, "2026-11", 20).await.unwrap();
    store.add_ai_usage(ws, another.id, "2026-10", 7).await.unwrap();
    let capped = store.ai_turn_context(ws, conversation.id, "2026-11").await.unwrap().unwrap();
    assert_eq!(capped.tokens_used, 120);
    assert_eq!(capped.settings.unwrap().settings.monthly_token_cap, 1_000);

    // The AI's answer: while an agent holds the conversation only its tokens are counted; once
    // handed back it is stored, queued, with its tokens, in the same write.
    let text = MessageText::parse("Halo!").unwrap();
    let mut answer = reply(ws, sales.id, &from, &text, "A1");
    answer.sender = SenderKind::Ai;
    assert!(store.queue_ai_answer(conversation.id, &answer, "2026-11", 30, T0).await.unwrap().is_none());
    assert_eq!(store.recent_messages(conversation.id, 10).await.unwrap().len(), 1, "nothing stored over the agent");
    assert_eq!(store.ai_usage(ws, "2026-11", Some(conversation.id)).await.unwrap(), (150, 130));
    store.set_ai_paused(ws, conversation.id, false).await.unwrap();
    let (message, after) = store.queue_ai_answer(conversation.id, &answer, "2026-11", 5, T0).await.unwrap().unwrap();
    assert_eq!(
        (message.sender, message.body.as_str(), after.id, after.ai_paused),
        (SenderKind::Ai, "Halo!", conversation.id, false)
    );
    assert_eq!(store.ai_usage(ws, "2026-11", Some(conversation.id)).await.unwrap(), (155, 135));
    // Not another workspace's conversation.
    let mut theirs = reply(other, sales.id, &from, &text, "A2");
    theirs.sender = SenderKind::Ai;
    assert!(store.queue_ai_answer(conversation.id, &theirs, "2026-11", 0, T0).await.unwrap().is_none());
}
