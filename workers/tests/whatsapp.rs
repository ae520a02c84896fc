//! Real WhatsApp sessions against a local fake WhatsApp server that speaks the real protocol: a
//! number is linked by QR code from the dashboard, its session lives in the database so another
//! worker resumes it without a new link, and WhatsApp's logouts and bans show as such.

mod common;

use std::time::Duration;

use balas_domain::{Channel, ChannelState, LinkMethod, LiveEvent, Pairing, ServerFrame};
use balas_fakewa::{FakeWa, Kick, PairCodeRefusal};
use common::{Harness, Live, eventually};
use reqwest::StatusCode;

const PHONE: &str = "+6281200000001";
const WAIT: Duration = Duration::from_secs(60);

async fn harness(fake: &FakeWa) -> Harness {
    let url = fake.url();
    Harness::start(move |s| {
        s.whatsapp_url = url;
        s.whatsapp_version = "2.3000.1023".into();
    })
    .await
}

async fn link(h: &Harness, admin: &common::Browser, method: &str) -> Channel {
    let form = [("name", "Support"), ("phone", PHONE), ("rate", "5"), ("method", method)];
    let (status, body) = h.call(admin, "link_whatsapp_number", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The next change of `channel` on the live socket: its state, or the whole channel. (Linking
/// waits on WhatsApp's own timers, so this allows more than a frame's usual wait.)
async fn next_change(live: &mut Live, channel: &Channel) -> LiveEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(ServerFrame::Event { event }) = live.quiet_for(left).await else {
            assert!(tokio::time::Instant::now() < deadline, "no change of the channel within {WAIT:?}");
            continue;
        };
        match &event.event {
            LiveEvent::ChannelState { channel_id, .. } if *channel_id == channel.id => return event.event,
            LiveEvent::ChannelUpdated { channel: c } if c.id == channel.id => return event.event,
            _ => {}
        }
    }
}

/// The next code to link `channel` with, as the dashboard gets it (with the channel then).
async fn next_pairing(live: &mut Live, channel: &Channel) -> (Pairing, Channel) {
    loop {
        if let LiveEvent::ChannelUpdated { channel: c } = next_change(live, channel).await
            && let Some(pairing) = c.pairing.clone()
        {
            return (pairing, *c);
        }
    }
}

async fn wait_state(live: &mut Live, channel: &Channel, wanted: ChannelState) -> Option<String> {
    loop {
        if let LiveEvent::ChannelState { state, detail, .. } = next_change(live, channel).await
            && state == wanted
        {
            return detail;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_linked_by_qr_code_resumes_on_another_worker_without_a_new_link() {
    let fake = FakeWa::start().await.unwrap();
    let h = harness(&fake).await;
    let admin = h.admin().await;
    let mut live = h.live(&admin, None).await;
    let channel = link(&h, &admin, "qr").await;
    assert_eq!((channel.provider, channel.link_method), (balas_domain::Provider::Whatsapp, LinkMethod::Qr));
    let worker = h.worker();

    // The dashboard gets the QR code with its expiry, and the channel waits for a link.
    let (pairing, waiting) = next_pairing(&mut live, &channel).await;
    assert_eq!(waiting.state, ChannelState::Pairing);
    assert_eq!(pairing.method, LinkMethod::Qr);
    assert!(pairing.expires_at.0 > balas_backend::now().0 + 30_000, "a first code lasts about a minute");
    let code = pairing.code;
    assert!(code.starts_with("2@") || code.contains(','), "a WhatsApp QR payload: {code}");

    // The phone scans it: the page learns the linked number and name, then that it is connected.
    fake.scan(&code, PHONE.trim_start_matches('+'), "Toko Maju").await.unwrap();
    let linked = loop {
        if let LiveEvent::ChannelUpdated { channel: c } = next_change(&mut live, &channel).await
            && c.linked_name.is_some()
        {
            break c;
        }
    };
    assert_eq!(linked.linked_name.as_deref(), Some("Toko Maju"));
    assert_eq!(linked.pairing, None);
    wait_state(&mut live, &channel, ChannelState::Connected).await;
    let stored = h.store.wa_session_size(channel.id).await.unwrap();
    assert!(stored > 0, "the session lives in the database");

    // Another worker takes the number over from the session in the database: no new code.
    worker.stop().await;
    wait_state(&mut live, &channel, ChannelState::Idle).await;
    let logins_before = fake.handshakes();
    let second = h.worker();
    loop {
        match next_change(&mut live, &channel).await {
            LiveEvent::ChannelState { state: ChannelState::Connected, .. } => break,
            LiveEvent::ChannelUpdated { channel: c } => assert_eq!(c.pairing, None, "no new link was asked for"),
            LiveEvent::ChannelState { state, .. } => assert_ne!(state, ChannelState::Pairing),
            _ => {}
        }
    }
    assert!(fake.handshakes() > logins_before);
    assert_eq!(fake.logged_in_phones(), [PHONE.trim_start_matches('+')]);

    // The phone ends the link: the channel says so, and the session is forgotten.
    fake.kick(Some(PHONE.trim_start_matches('+')), Kick::LoggedOut);
    let detail = wait_state(&mut live, &channel, ChannelState::LoggedOut).await;
    assert!(detail.unwrap_or_default().contains("link the number again"));
    eventually(WAIT, "the session to be forgotten", || async {
        (h.store.wa_session_size(channel.id).await.unwrap() == 0).then_some(())
    })
    .await;

    // The admin links it again: a new code comes (from a new device).
    let (status, body) =
        h.call(&admin, "relink_channel", &[("channel_id", &channel.id.0.to_string()), ("method", "qr")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(next_pairing(&mut live, &channel).await.0.code, code);

    // WhatsApp cannot be reached at all: the channel shows it is trying, never that it is connected.
    fake.stop();
    loop {
        match next_change(&mut live, &channel).await {
            LiveEvent::ChannelState { state: ChannelState::Reconnecting, .. } => break,
            LiveEvent::ChannelState { state, .. } => assert_ne!(state, ChannelState::Connected),
            _ => {}
        }
    }
    let settled = live.quiet_for(Duration::from_secs(3)).await;
    assert!(settled.as_ref().is_none_or(|frame| !format!("{frame:?}").contains("Connected")), "{settled:?}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_show_with_their_end_and_bad_link_requests_change_nothing() {
    let fake = FakeWa::start().await.unwrap();
    let h = harness(&fake).await;
    let admin = h.admin().await;
    let mut live = h.live(&admin, None).await;

    // Bad requests: an invalid number, an unknown method, a number already linked.
    let bad = [("name", "Support"), ("phone", "0812"), ("rate", "5"), ("method", "qr")];
    let (status, body) = h.call(&admin, "link_whatsapp_number", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("phone"), "{body}");
    let odd = [("name", "Support"), ("phone", PHONE), ("rate", "5"), ("method", "carrier-pigeon")];
    assert_eq!(h.call(&admin, "link_whatsapp_number", &odd).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let channel = link(&h, &admin, "qr").await;
    let (status, body) = h
        .call(
            &admin,
            "link_whatsapp_number",
            &bad.map(|(k, v)| match k {
                "phone" => (k, PHONE),
                _ => (k, v),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("taken"), "{body}");
    assert_eq!(h.store.channels(channel.workspace_id).await.unwrap().len(), 1);
    // A connected (or sandbox) channel cannot be asked to link again; another workspace's is not found.
    let other = h.other_workspace().await;
    let id = channel.id.0.to_string();
    let (status, _) = h.call(&other, "relink_channel", &[("channel_id", &id), ("method", "qr")]).await;
    assert_ne!(status, StatusCode::OK);

    let worker = h.worker();
    let code = next_pairing(&mut live, &channel).await.0.code;
    fake.scan(&code, PHONE.trim_start_matches('+'), "Toko Maju").await.unwrap();
    wait_state(&mut live, &channel, ChannelState::Connected).await;
    let (status, _) = h.call(&admin, "relink_channel", &[("channel_id", &id), ("method", "qr")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a connected number is not linked again");

    // The connection drops: the channel says so, and the session comes back by itself.
    fake.kick(None, Kick::Drop);
    let detail = wait_state(&mut live, &channel, ChannelState::Reconnecting).await.unwrap_or_default();
    assert!(detail.contains("dropped"), "{detail}");
    wait_state(&mut live, &channel, ChannelState::Connected).await;

    // WhatsApp bans the number for an hour: the channel shows it with its end.
    fake.kick(None, Kick::TempBan { code: 101, expire_secs: 3_600 });
    let detail = wait_state(&mut live, &channel, ChannelState::Banned).await.unwrap_or_default();
    assert!(detail.contains("until"), "{detail}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_is_linked_with_a_code_typed_on_the_phone() {
    let fake = FakeWa::start().await.unwrap();
    let h = harness(&fake).await;
    let admin = h.admin().await;
    let mut live = h.live(&admin, None).await;
    let digits = PHONE.trim_start_matches('+');
    // WhatsApp refuses the first request (a number it does not accept): the channel says why.
    fake.set_pair_code_rejection(digits, Some(PairCodeRefusal::BadRequest));
    let channel = link(&h, &admin, "code").await;
    assert_eq!(channel.link_method, LinkMethod::Code);
    let worker = h.worker();
    let detail = wait_state(&mut live, &channel, ChannelState::Pairing).await;
    let detail = match detail {
        Some(detail) => detail,
        None => wait_state(&mut live, &channel, ChannelState::Pairing).await.unwrap_or_default(),
    };
    assert!(detail.contains("refused the pairing code"), "{detail}");
    assert_eq!(fake.pairing_code_requests()[0].phone, digits);

    // Accepted: the page shows the 8-character code to type, for the number the admin gave.
    fake.set_pair_code_rejection(digits, None);
    let id = channel.id.0.to_string();
    let (status, body) = h.call(&admin, "relink_channel", &[("channel_id", &id), ("method", "code")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (pairing, _) = next_pairing(&mut live, &channel).await;
    assert_eq!(pairing.method, LinkMethod::Code);
    let code = pairing.code;
    assert_eq!(code.chars().filter(char::is_ascii_alphanumeric).count(), 8, "{code}");
    // The phone's owner types it: linked and connected.
    fake.enter_code_as(digits, &code, "Toko Maju").await.unwrap();
    wait_state(&mut live, &channel, ChannelState::Connected).await;
    let stored = h.store.channel(channel.id).await.unwrap().unwrap();
    assert_eq!((stored.linked_name.as_deref(), stored.pairing), (Some("Toko Maju"), None));
    worker.stop().await;
}
