//! Linking a new device by pairing code (phone number instead of QR), end to end with the real client.

mod common;

use std::time::Duration;

use balas_fakewa::{FakeWa, PairCodeRefusal};
use common::*;
use whatsapp_rust::pair_code::PairCodeRejection;
use whatsapp_rust::prelude::*;

/// Waits for the client's `Event::PairingCode`: its code and how long it is valid.
async fn pairing_code(client: &mut TestClient, secs: u64) -> (String, Duration) {
    wait_for(client, secs, |e| match e {
        Event::PairingCode(p) => Some((p.code.clone(), p.timeout)),
        Event::PairingCodeError(e) => panic!("pairing code refused: {e:?}"),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn client_shows_a_pairing_code_and_the_server_records_the_request() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = start_pair_code_client(&server, "6281200000002").await;

    let (code, timeout) = pairing_code(&mut client, 30).await;
    assert_eq!(code.len(), 8, "code {code}");
    assert!(code.bytes().all(|b| b"123456789ABCDEFGHJKLMNPQRSTVWXYZ".contains(&b)), "code {code}");
    assert!(timeout > Duration::from_secs(100) && timeout <= Duration::from_secs(180), "{timeout:?}");

    let requests = server.pairing_code_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.phone, "6281200000002");
    assert!(request.pairing_ref.is_some());
    assert!(request.noise_key_matches, "the request carries the connection's noise key");
    assert!(request.push_notification);
    assert!(!request.platform_display.is_empty());
    client.handle.shutdown().await;
}

#[tokio::test]
async fn entering_the_code_on_the_phone_pairs_then_connects() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    let mut client = start_pair_code_client(&server, "6281200000003").await;
    let (code, _) = pairing_code(&mut client, 30).await;

    // A wrong code does not open the client's key bundle; the phone gives up and nothing is paired.
    let wrong = if code == "ABCDEFGH" { "HGFEDCBA" } else { "ABCDEFGH" };
    let err = server.enter_code("6281200000003", wrong).await.unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err:#}");
    // A number that asked for no code cannot be linked.
    let err = server.enter_code("6281299999999", &code).await.unwrap_err();
    assert!(err.to_string().contains("no open connection"), "{err:#}");

    server.enter_code_as("6281200000003", &code, "Toko Maju").await.unwrap();
    let (jid, name) = wait_for(&mut client, 20, |e| match e {
        Event::PairSuccess(p) => Some((p.id.to_string(), p.business_name.clone())),
        _ => None,
    })
    .await;
    assert_eq!(jid, "6281200000003:1@s.whatsapp.net");
    assert_eq!(name, "Toko Maju");

    connected(&mut client, 30).await;
    assert_eq!(server.logged_in_phones(), vec!["6281200000003".to_owned()]);
    assert!(client.handle.client().is_logged_in());
    client.handle.shutdown().await;
}

#[tokio::test]
async fn a_refused_number_makes_the_client_report_a_pairing_code_error() {
    init_logs();
    let server = FakeWa::start().await.unwrap();
    server.set_pair_code_rejection("6281200000004", Some(PairCodeRefusal::BadRequest));
    let mut client = start_pair_code_client(&server, "6281200000004").await;

    let rejection = wait_for(&mut client, 30, |e| match e {
        Event::PairingCodeError(e) => Some(e.rejection),
        Event::PairingCode(p) => panic!("got a code {} for a refused number", p.code),
        _ => None,
    })
    .await;
    assert_eq!(rejection, Some(PairCodeRejection::BadRequest));
    let requests = server.pairing_code_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].phone, "6281200000004");
    assert_eq!(requests[0].pairing_ref, None);
    client.handle.shutdown().await;
}
