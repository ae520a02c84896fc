//! A registered client: login, kicks and server pushes, with the real client.

mod common;

use balas_fakewa::{ChatState, FakeWa, Kick, ReceiptKind, Rejection};
use common::*;
use std::time::Duration;
use whatsapp_rust::prelude::*;
use whatsapp_rust::types::presence::ChatPresence;

#[tokio::test]
async fn registered_client_logs_in_and_is_logged_out_by_a_kick() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880001").await;
    assert_eq!(server.logged_in_phones(), vec!["5511988880001".to_owned()]);

    assert_eq!(server.kick(Some("5511988880001"), Kick::LoggedOut), 1);
    let on_connect = wait_for(&mut client, 10, |e| match e {
        Event::LoggedOut(l) => Some(l.on_connect),
        _ => None,
    })
    .await;
    assert!(!on_connect);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn kick_with_temp_ban_reports_code_and_expiry() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880002").await;

    assert_eq!(server.kick(None, Kick::TempBan { code: 101, expire_secs: 3600 }), 1);
    let (code, expire) = wait_for(&mut client, 10, |e| match e {
        Event::TemporaryBan(b) => Some((b.code.clone(), b.expire)),
        _ => None,
    })
    .await;
    assert_eq!(expire.num_seconds(), 3600);
    assert_eq!(code.code(), 101);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn kick_replaced_reports_stream_replaced() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880003").await;

    assert_eq!(server.kick(Some("5511988880003"), Kick::Replaced), 1);
    wait_for(&mut client, 10, |e| matches!(e, Event::StreamReplaced(_)).then_some(())).await;
    client.handle.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_reconnects() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880004").await;
    let before = server.handshakes();

    assert_eq!(server.kick(None, Kick::Drop), 1);
    wait_for(&mut client, 10, |e| matches!(e, Event::Disconnected(_)).then_some(())).await;
    connected(&mut client, 30).await;
    assert!(server.handshakes() > before);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn rejected_logins_get_logged_out_or_banned_at_connect() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    server.set_rejection("5511988880005", Some(Rejection::LoggedOut));
    let mut client = start_client(&server, registered_backend("5511988880005").await).await;
    let on_connect = wait_for(&mut client, 20, |e| match e {
        Event::LoggedOut(l) => Some(l.on_connect),
        _ => None,
    })
    .await;
    assert!(on_connect);
    client.handle.shutdown().await;

    server.set_rejection("5511988880006", Some(Rejection::TempBan { code: 102, expire_secs: 60 }));
    let mut client = start_client(&server, registered_backend("5511988880006").await).await;
    let expire = wait_for(&mut client, 20, |e| match e {
        Event::TemporaryBan(b) => Some(b.expire),
        _ => None,
    })
    .await;
    assert_eq!(expire.num_seconds(), 60);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn receipts_and_chatstates_reach_the_client() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880007").await;

    server.push_receipt("5511988880007", "5511977770001", &["MSG1", "MSG2"], ReceiptKind::Read).unwrap();
    let (ids, kind, chat) = wait_for(&mut client, 10, |e| match e {
        Event::Receipt(r) => Some((r.message_ids.clone(), r.r#type.clone(), r.source.chat.to_string())),
        _ => None,
    })
    .await;
    assert_eq!(chat, "5511977770001@s.whatsapp.net");
    assert!(ids.contains(&"MSG1".to_owned()) && ids.contains(&"MSG2".to_owned()), "{ids:?}");
    assert_eq!(kind.as_wire_str(), "read");

    server.push_receipt("5511988880007", "5511977770001", &["MSG3"], ReceiptKind::Delivered).unwrap();
    let ids = wait_for(&mut client, 10, |e| match e {
        Event::Receipt(r) => Some(r.message_ids.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ids, vec!["MSG3".to_owned()]);

    server.push_chatstate("5511988880007", "5511977770001", ChatState::Composing).unwrap();
    let state = wait_for(&mut client, 10, |e| match e {
        Event::ChatPresence(p) => Some(p.state),
        _ => None,
    })
    .await;
    assert_eq!(state, ChatPresence::Composing);
    server.push_chatstate("5511988880007", "5511977770001", ChatState::Paused).unwrap();
    let state = wait_for(&mut client, 10, |e| match e {
        Event::ChatPresence(p) => Some(p.state),
        _ => None,
    })
    .await;
    assert_eq!(state, ChatPresence::Paused);

    assert!(server.push_chatstate("5500000000000", "5511977770001", ChatState::Paused).is_err());
    client.handle.shutdown().await;
}

#[tokio::test]
async fn idle_session_stays_up_answering_keepalives() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880008").await;

    // The client pings every 15-30 s and drops the socket if a ping goes unanswered for 20 s.
    let trouble = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            let event = client.events.recv().await.expect("event channel open");
            if matches!(
                *event,
                Event::Disconnected(_) | Event::LoggedOut(_) | Event::StreamError(_) | Event::ConnectFailure(_)
            ) {
                return event;
            }
        }
    })
    .await;
    assert!(trouble.is_err(), "idle session had trouble: {trouble:?}");
    assert!(server.pings_received() >= 1);
    assert_eq!(server.handshakes(), 1);
    assert_eq!(server.open_connections(), 1);

    client.handle.shutdown().await;
    assert!(server.wait_for_open_connections(0, Duration::from_secs(5)).await, "shutdown closes the socket");
}

#[tokio::test]
async fn stopping_the_server_closes_every_connection() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = connected_client(&server, "5511988880012").await;

    server.stop();
    assert!(server.wait_for_open_connections(0, Duration::from_secs(5)).await);
    wait_for(&mut client, 10, |e| matches!(e, Event::Disconnected(_)).then_some(())).await;
    assert!(server.logged_in_phones().is_empty());
    client.handle.shutdown().await;
}
