//! QR pairing of a new device, end to end with the real client.

mod common;

use balas_fakewa::FakeWa;
use common::*;
use whatsapp_rust::prelude::*;

#[tokio::test]
async fn new_client_gets_qr_codes_and_a_fresh_one_after_refs_rotate() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = start_client(&server, memory_backend()).await;

    let first = next_qr(&mut client, 20).await;
    let fields: Vec<&str> = first.split(',').collect();
    assert_eq!(fields.len(), 5, "ref,noise,identity,adv,client_type: {first}");
    assert!(fields[0].starts_with("2@"), "ref {}", fields[0]);
    for key in &fields[1..4] {
        assert_eq!(key.len(), 44, "base64 of 32 bytes: {key}");
    }
    assert_eq!(server.handshakes(), 1);
    assert_eq!(server.open_connections(), 1);

    assert_eq!(server.refresh_pairing_refs(), 1);
    let second = next_qr(&mut client, 10).await;
    assert_ne!(first, second);
    assert_ne!(first.split(',').next(), second.split(',').next(), "a new ref");
    assert_eq!(first.split(',').nth(1), second.split(',').nth(1), "same device keys");

    // The old ref is no longer valid; the new one is.
    assert!(server.scan(&first, "5511999990001", "Shop").await.is_err());
    client.handle.shutdown().await;
}

#[tokio::test]
async fn scanning_the_qr_code_pairs_then_connects() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = start_client(&server, memory_backend()).await;

    let qr = next_qr(&mut client, 20).await;
    server.scan(&qr, "5511999990002", "Padaria Central").await.unwrap();

    let (jid, name) = wait_for(&mut client, 10, |e| match e {
        Event::PairSuccess(p) => Some((p.id.to_string(), p.business_name.clone())),
        _ => None,
    })
    .await;
    assert_eq!(jid, "5511999990002:1@s.whatsapp.net");
    assert_eq!(name, "Padaria Central");

    // 515 restart, reconnect as the new device, <success>, then Connected.
    connected(&mut client, 30).await;
    assert_eq!(server.logged_in_phones(), vec!["5511999990002".to_owned()]);
    assert!(server.handshakes() >= 2);
    assert!(client.handle.client().is_logged_in());
    client.handle.shutdown().await;
}
