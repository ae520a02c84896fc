//! Outgoing webhooks through the whole system: a receiver in this test gets a customer's message,
//! message statuses and a finished broadcast, each signed with the webhook's secret; a receiver
//! that fails is tried again with backoff and every attempt logged; a delivery that failed for good
//! is replayed; bad webhooks are refused with the reason; another workspace reaches none of it.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use balas_domain::PhoneNumber;
use common::{Browser, Harness, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A webhook receiver: it keeps every request, and fails (500) the first `fail_first` ones, or
/// every one while `down` is set.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail_first: Arc<AtomicU32>,
    down: Arc<AtomicBool>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> (AxumStatus, &'static str) {
    receiver.got.lock().unwrap().push((headers, body));
    let left = receiver.fail_first.load(Ordering::SeqCst);
    if left > 0 {
        receiver.fail_first.store(left - 1, Ordering::SeqCst);
        return (AxumStatus::INTERNAL_SERVER_ERROR, "not yet");
    }
    if receiver.down.load(Ordering::SeqCst) {
        return (AxumStatus::SERVICE_UNAVAILABLE, "down for maintenance");
    }
    (AxumStatus::OK, "thanks")
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// The events of this type received so far (and accepted or not), with their headers.
    fn events(&self, kind: &str) -> Vec<(HeaderMap, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(headers, body)| {
                let value: Value = serde_json::from_str(body).ok()?;
                (value["type"] == json!(kind)).then(|| (headers.clone(), value))
            })
            .collect()
    }
}

/// Checks a request's signature with the secret, as a receiver would.
fn signed(headers: &HeaderMap, body: &Value, secret: &str) -> bool {
    let header = headers["balas-signature"].to_str().unwrap();
    let at: i64 = header.trim_start_matches("t=").split(',').next().unwrap().parse().unwrap();
    header == balas_backend::webhooks::signature(secret, at, &body.to_string())
}

async fn hook(h: &Harness, admin: &Browser, url: &str, events: &[&str]) -> (i64, String) {
    let mut form: Vec<(String, String)> = vec![("url".into(), url.into())];
    form.extend(events.iter().enumerate().map(|(i, e)| (format!("events[{i}]"), (*e).to_owned())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = h.call(admin, "create_webhook", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["webhook"]["id"].as_i64().unwrap(), body["secret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn events_reach_webhooks_signed_and_failures_are_retried_logged_and_replayed() {
    let h = Harness::start(|s| s.webhook_retry_base_ms = 100).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Hooks", "+62 811 7800 001", 20).await;
    let worker = h.worker();

    // Refused with the reason, nothing stored.
    let (status, body) =
        h.call(&admin, "create_webhook", &[("url", "ftp://erp.example"), ("events[0]", "order.paid")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let issues: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["issue"]["kind"].as_str().unwrap()).collect();
    assert_eq!(issues, ["invalid_url", "not_allowed"]);
    let agent = h.agent(&admin, "budi@example.com").await;
    let (status, _) =
        h.call(&agent, "create_webhook", &[("url", "https://x.example"), ("events[0]", "message.status")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A receiver that fails its first two requests.
    let receiver = Receiver::default();
    receiver.fail_first.store(2, Ordering::SeqCst);
    let url = receiver.start().await;
    let (id, secret) = hook(&h, &admin, &url, &["message.received", "message.status", "broadcast.finished"]).await;

    let customer = "+6281278000001";
    h.customer_send(customer, &channel.phone, "Halo, pesanan saya?").await;
    let received = eventually(Duration::from_secs(30), "the message to reach the webhook", || async {
        let got = receiver.events("message.received");
        (got.len() >= 3).then_some(got)
    })
    .await;
    // The same delivery three times (two refused, then taken), each signed.
    assert!(received.iter().all(|(headers, body)| signed(headers, body, &secret)), "every request is signed");
    assert!(received.windows(2).all(|w| w[0].1["id"] == w[1].1["id"]), "one event, tried again");
    let (headers, event) = &received[2];
    assert_eq!(event["data"]["from"], json!(customer));
    assert_eq!(event["data"]["text"], json!("Halo, pesanan saya?"));
    assert_eq!(headers["balas-event"], "message.received");
    assert!(!signed(headers, event, "whsec_wrong"), "another secret does not verify");
    let (status, log) = h.call(&admin, "webhook_deliveries", &[("id", &id.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let first = log.as_array().unwrap().iter().find(|d| d["event"] == json!("message.received")).unwrap().clone();
    assert_eq!(
        (&first["state"], &first["attempts"], &first["last_status"]),
        (&json!("delivered"), &json!(3), &json!(200))
    );

    // An agent's reply: its statuses follow (sent, delivered).
    let conversation =
        h.store.conversation_with(channel.id, &PhoneNumber::parse(customer).unwrap()).await.unwrap().unwrap();
    let (status, sent) = h
        .call(
            &admin,
            "reply",
            &[("conversation", &conversation.id.0.to_string()), ("text", "Sudah dikirim"), ("note", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    eventually(Duration::from_secs(30), "the reply's delivery to reach the webhook", || async {
        receiver.events("message.status").iter().any(|(_, e)| e["data"]["status"] == json!("delivered")).then_some(())
    })
    .await;

    // A broadcast that finishes.
    let draft = json!({ "draft": { "name": "Hook", "channel_id": channel.id.0,
        "audience": { "kind": "list", "phones": ["+6281278000002"] }, "text": "Promo" } });
    let (status, _) = h.call_json(&admin, "create_broadcast", &draft).await;
    assert_eq!(status, StatusCode::OK);
    let finished = eventually(Duration::from_secs(30), "the broadcast's end to reach the webhook", || async {
        receiver.events("broadcast.finished").into_iter().next()
    })
    .await;
    assert_eq!(finished.1["data"]["name"], json!("Hook"));
    assert_eq!(finished.1["data"]["counts"]["total"], json!(1));

    // A receiver that stays down: eight attempts, then failed; replayed once it is back.
    receiver.down.store(true, Ordering::SeqCst);
    h.customer_send(customer, &channel.phone, "Masih di sana?").await;
    let failed = eventually(Duration::from_secs(60), "the delivery to fail for good", || async {
        let (_, log) = h.call(&admin, "webhook_deliveries", &[("id", &id.to_string())]).await;
        log.as_array()?.iter().find(|d| d["state"] == json!("failed")).cloned()
    })
    .await;
    assert_eq!(failed["attempts"], json!(balas_backend::webhooks::MAX_ATTEMPTS));
    assert_eq!((&failed["last_status"], &failed["last_response"]), (&json!(503), &json!("down for maintenance")));
    receiver.down.store(false, Ordering::SeqCst);
    let stranger = h.other_workspace().await;
    let (status, _) = h.call(&stranger, "replay_delivery", &[("id", &failed["id"].to_string())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, theirs) = h.call(&stranger, "webhook_deliveries", &[("id", &id.to_string())]).await;
    assert_eq!((status, theirs), (StatusCode::OK, json!([])), "another workspace's log is empty to them");
    let (status, _) = h.call(&admin, "replay_delivery", &[("id", &failed["id"].to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(30), "the replayed delivery to arrive", || async {
        let (_, log) = h.call(&admin, "webhook_deliveries", &[("id", &id.to_string())]).await;
        let again = log.as_array()?.iter().find(|d| d["id"] == failed["id"])?.clone();
        (again["state"] == json!("delivered")).then_some(())
    })
    .await;

    // Deleting the webhook stops deliveries to it.
    let (status, _) = h.call(&admin, "delete_webhook", &[("id", &id.to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, hooks) = h.call(&admin, "webhooks", &[]).await;
    assert_eq!(hooks, json!([]));
    worker.stop().await;
}
